//! llmgate served by plain hyper, without axum: the HTTP tier is a tower
//! service, so hyper-util's `TowerToHyperService` is all the glue needed.
//!
//! ```sh
//! cargo run --example hyper_server        # mock provider on 127.0.0.1:8081
//! ```

use std::error::Error;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use llmgate::config::Config;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let gateway = Config::mock().build()?;
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("llmgate (plain hyper) on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(gateway.http.clone());
        tokio::spawn(async move {
            let conn = auto::Builder::new(TokioExecutor::new());
            if let Err(e) = conn.serve_connection(TokioIo::new(stream), service).await {
                eprintln!("connection error: {e}");
            }
        });
    }
}
