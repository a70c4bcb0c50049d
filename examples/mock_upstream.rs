//! The fast mock upstream of the load benchmark, as a server.
//!
//! ```sh
//! cargo run --release --example mock_upstream -- 127.0.0.1:19100
//! ```
//!
//! See `bench/mock_upstream.rs` for what it answers.

#[path = "../bench/mock_upstream.rs"]
mod mock_upstream;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:19100".into());
    // One thread: the upstream should not take the cores the gateway and
    // the load generator need.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("mock upstream on http://{}", listener.local_addr()?);
        mock_upstream::serve(listener).await;
        Ok(())
    })
}
