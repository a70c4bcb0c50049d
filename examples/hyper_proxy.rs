//! The load benchmark's Rust floor: a bare hyper reverse proxy that forwards
//! bytes and understands nothing, built the way the example gateway is
//! (thread-per-core, a pooled hyper-util client per thread, mimalloc). What
//! llmgate adds over it is the cost of the pipeline; what it costs over
//! nginx is the cost of hyper and tokio. `LLMGATE_THREADS` sets its thread
//! count, as for the gateway.
//!
//! ```sh
//! cargo run --release --example hyper_proxy -- 127.0.0.1:19400 http://127.0.0.1:19100
//! ```

use std::cell::RefCell;
use std::error::Error;
use std::net::SocketAddr;

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Upstream = Client<HttpConnector, Full<Bytes>>;

thread_local! {
    static CLIENT: RefCell<Option<Upstream>> = const { RefCell::new(None) };
}

fn client() -> Upstream {
    CLIENT.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| {
                let mut http = HttpConnector::new();
                http.set_nodelay(true);
                Client::builder(TokioExecutor::new()).build(http)
            })
            .clone()
    })
}

async fn proxy(
    upstream: &'static str,
    req: http::Request<Incoming>,
) -> Result<http::Response<Incoming>, Box<dyn Error + Send + Sync>> {
    let (mut parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("{upstream}{path}").parse::<Uri>()?;
    parts.headers.remove(http::header::HOST);
    let resp = client()
        .request(http::Request::from_parts(parts, Full::new(body)))
        .await?;
    Ok(resp)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args.next().unwrap_or("127.0.0.1:19400".into()).parse()?;
    let upstream: &'static str = args
        .next()
        .unwrap_or("http://127.0.0.1:19100".into())
        .leak();
    // One server thread per core, as the example gateway; `LLMGATE_THREADS`
    // overrides the count for both.
    let threads = std::env::var("LLMGATE_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let servers: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || -> std::io::Result<()> {
                let socket = socket2::Socket::new(
                    socket2::Domain::for_address(addr),
                    socket2::Type::STREAM,
                    None,
                )?;
                socket.set_reuse_address(true)?;
                socket.set_reuse_port(true)?;
                socket.set_nonblocking(true)?;
                socket.bind(&addr.into())?;
                socket.listen(1024)?;
                let listener: std::net::TcpListener = socket.into();
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(async move {
                        let listener = tokio::net::TcpListener::from_std(listener)?;
                        loop {
                            let (stream, _) = listener.accept().await?;
                            let _ = stream.set_nodelay(true);
                            tokio::spawn(async move {
                                let service = service_fn(move |req| proxy(upstream, req));
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            });
                        }
                    })
            })
        })
        .collect();
    println!("hyper proxy on http://{addr} → {upstream} ({threads} threads)");
    for s in servers {
        s.join().map_err(|_| "server thread panicked")??;
    }
    Ok(())
}
