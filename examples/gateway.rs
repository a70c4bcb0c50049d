//! The example gateway: llmgate's whole stack in an axum app.
//!
//! ```sh
//! cargo run --example gateway                         # built-in mock provider, 127.0.0.1:8080
//! cargo run --example gateway -- --config gw.toml     # real providers (see llmgate::config)
//! cargo run --example gateway -- --listen 0.0.0.0:9000
//! ```
//!
//! Routes: `POST /v1/messages`, `POST /v1/messages/count_tokens`,
//! `POST /v1/chat/completions`, `GET /v1/models` (the gateway), `GET /health`,
//! `GET /metrics` (Prometheus exposition), `GET /stats` (the request tracker).
//! `RUST_LOG=llmgate=debug` shows a line per request.

use std::error::Error;

use axum::routing::get;
use axum::{Json, Router};
use llmgate::config::Config;
use metrics_exporter_prometheus::PrometheusBuilder;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let mut args = std::env::args().skip(1);
    let (mut config_path, mut listen) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config_path = args.next(),
            "--listen" => listen = args.next(),
            "-h" | "--help" => {
                println!("usage: gateway [--config FILE] [--listen ADDR]");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}` (try --help)").into()),
        }
    }
    let config = match &config_path {
        Some(path) => Config::from_file(path)?,
        None => Config::mock(),
    };
    let gateway = config.build()?;
    let addr = listen.unwrap_or(gateway.listen.clone());

    let prometheus = PrometheusBuilder::new().install_recorder()?;
    let tracker = gateway.tracker.clone();
    let app = Router::new()
        .route_service("/v1/messages", gateway.http.clone())
        .route_service("/v1/messages/count_tokens", gateway.http.clone())
        .route_service("/v1/chat/completions", gateway.http.clone())
        .route_service("/v1/models", gateway.http.clone())
        .route("/health", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || std::future::ready(prometheus.render())),
        )
        .route(
            "/stats",
            get(move || std::future::ready(Json(tracker.snapshot()))),
        );

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let source = config_path
        .as_deref()
        .unwrap_or("the built-in mock provider");
    println!(
        "llmgate listening on http://{} ({source})",
        listener.local_addr()?
    );
    println!(
        "try: curl -s http://{}/v1/messages -H 'content-type: application/json' \
         -d '{{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64,\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
