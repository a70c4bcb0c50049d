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
//! `RUST_LOG=llmgate=debug` shows a line per request (`RUST_LOG` is a list of
//! `target=level` and a default level, e.g. `warn,llmgate=debug`).
//!
//! The server is thread-per-core: one single-threaded tokio runtime per CPU
//! (`LLMGATE_THREADS` overrides the count), all accepting on one listening
//! socket and sharing one gateway (its balancer state, tracker and metrics).
//! A request, its upstream call and its response stay on the thread that
//! accepted the connection, so the hot path has no cross-thread wake-ups;
//! llmgate's upstream client keeps a connection pool per thread for the same
//! reason. The layers themselves run on any tokio runtime.

use std::error::Error;

use axum::routing::get;
use axum::{Json, Router};
use llmgate::config::Config;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// mimalloc rather than the system allocator: a gateway allocates and frees
/// small buffers on every request from every thread, which glibc's malloc
/// serves markedly slower (see `bench/RESULTS.md`). It is built without
/// transparent huge pages (`no_thp`): with them, RSS counts whole 2 MiB pages
/// the gateway barely touches (1,000 open streams: 115 MB instead of 82 MB).
/// mimalloc returns freed pages to the OS 10 ms after they empty, but only
/// checks while the thread keeps allocating: each server thread therefore
/// has it collect once a second ([`allocator_upkeep`]), or an idle gateway
/// would keep what its last burst used. (Returning pages at once instead,
/// `MIMALLOC_PURGE_DELAY=0`, costs page faults on reuse: about 10 µs more
/// system time per request measured.)
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Bucket bounds of every histogram, in seconds (all of llmgate's
/// histograms are durations): from the 50 µs of the gateway's own overhead
/// to the minutes of a long generation.
const HISTOGRAM_BUCKETS: [f64; 20] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Bucket bounds of `llmgate_gateway_overhead_seconds`, in seconds: the
/// gateway's own time per request is tens to hundreds of microseconds, which
/// the common buckets above would lump into two, so this histogram counts in
/// steps of 10 µs up to 150 µs (under 15 % apart from 70 µs), of 25–50 µs to
/// 400 µs, and more coarsely to 10 ms (its median, interpolated within a
/// bucket, is then within a few percent of the header's; `bench/load.sh`
/// compares the two with the latency measured from outside).
const OVERHEAD_BUCKETS: [f64; 28] = [
    0.00001, 0.00002, 0.00003, 0.00004, 0.00005, 0.00006, 0.00007, 0.00008, 0.00009, 0.0001,
    0.00011, 0.00012, 0.00013, 0.00014, 0.00015, 0.000175, 0.0002, 0.000225, 0.00025, 0.0003,
    0.00035, 0.0004, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01,
];

/// Once a second, has mimalloc free this thread's empty pages and return
/// the free memory to the OS.
async fn allocator_upkeep() {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        // SAFETY: `mi_collect` only touches the calling thread's heap and
        // mimalloc's own thread-safe arenas; memory in use is left be.
        unsafe { libmimalloc_sys::mi_collect(true) };
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    // `RUST_LOG` as a list of `target=level` and a default level (`Targets`:
    // no span or field filters). `EnvFilter` would accept those too, but it
    // compiles its directive grammar into regexes that stay in memory for
    // the life of the process.
    let filter = match std::env::var("RUST_LOG") {
        // Pieces trimmed and empty ones dropped, as `EnvFilter` reads them
        // (`Targets` would read `info,` as `info` then `error`).
        Ok(spec) => (spec.split(',').map(str::trim).filter(|p| !p.is_empty()))
            .collect::<Vec<_>>()
            .join(",")
            .parse::<Targets>()
            .unwrap_or_else(|e| {
                eprintln!("RUST_LOG=`{spec}` ignored ({e}); logging at info");
                Targets::new().with_default(LevelFilter::INFO)
            }),
        Err(_) => Targets::new().with_default(LevelFilter::INFO),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer())
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

    // Histograms with fixed buckets (Prometheus histograms, which can be
    // aggregated across instances) rather than the exporter's default
    // summaries: a summary keeps a quantile sketch per series that grows
    // with the spread of the values (about 66 KiB each measured), and adding
    // to it costs more than counting into a bucket.
    let prometheus = PrometheusBuilder::new()
        .set_buckets(&HISTOGRAM_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full("llmgate_gateway_overhead_seconds".into()),
            &OVERHEAD_BUCKETS,
        )?
        .install_recorder()?;
    // The recorder keeps every histogram sample until it is drained (by a
    // scrape of /metrics or by upkeep): without upkeep, a gateway nobody
    // scrapes grows by every request. Drain it every five seconds.
    let upkeep = prometheus.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                upkeep.run_upkeep();
                // SAFETY: as in `allocator_upkeep`, for this thread's heap.
                unsafe { libmimalloc_sys::mi_collect(true) };
            }
        })?;
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

    let addr = std::net::ToSocketAddrs::to_socket_addrs(&addr)?
        .next()
        .ok_or_else(|| format!("`{addr}` resolves to no address"))?;
    let first = reuseport_listener(addr)?;
    let local = first.local_addr()?;
    let source = config_path
        .as_deref()
        .unwrap_or("the built-in mock provider");
    let threads = std::env::var("LLMGATE_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
        .max(1);
    println!("llmgate listening on http://{local} ({source}, {threads} threads)");
    println!(
        "try: curl -s http://{local}/v1/messages -H 'content-type: application/json' \
         -d '{{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64,\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'"
    );

    // One listening socket per thread on the same port (SO_REUSEPORT): the
    // kernel spreads new connections over the threads evenly, where one
    // shared socket lets whichever thread wakes first take them all.
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(reuseport_listener(local)?);
    }
    let servers = listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            let app = app.clone();
            Ok(std::thread::Builder::new()
                .name(format!("llmgate-{i}"))
                .spawn(move || serve(listener, app))?)
        })
        .collect::<Result<Vec<_>, Box<dyn Error>>>()?;
    for server in servers {
        server
            .join()
            .map_err(|_| "a server thread panicked")?
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A non-blocking listening socket on `addr` that other threads may bind too.
fn reuseport_listener(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// One server thread: a single-threaded runtime accepting on `listener`
/// until Ctrl-C, then waiting for the requests in flight to finish.
///
/// Connections are served by hyper's HTTP/1.1 server directly rather than
/// by `axum::serve`, whose HTTP/1-or-2 detection reads the first 24 bytes of
/// a connection on their own; hyper then reads the rest of the request into
/// a buffer it must grow, and every connection keeps 16 KiB of read buffer
/// instead of 8 KiB for its lifetime (16 MB more with 1,000 open streams).
/// Put a TLS terminator in front for HTTP/2.
fn serve(listener: std::net::TcpListener, app: Router) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;
    use llmgate::http::ArrivalIo;
    use tower::ServiceExt;

    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let mut http = hyper::server::conn::http1::Builder::new();
            // The timer enables hyper's 30 s limit on reading a request head.
            http.timer(TokioTimer::new());
            let graceful = GracefulShutdown::new();
            let upkeep = tokio::spawn(allocator_upkeep());
            let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
            loop {
                let tcp = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, _)) => tcp,
                        Err(e) => {
                            // Out of file descriptors and the like: back off
                            // rather than spin; the listener stays open.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                    _ = &mut ctrl_c => break,
                };
                let _ = tcp.set_nodelay(true);
                // The overhead counts from when each request's first bytes
                // are read, not from the router's call.
                let io = ArrivalIo::new(tcp);
                let arrival = io.arrival();
                let app = app.clone().map_request(move |mut req: http::Request<_>| {
                    req.extensions_mut().insert(arrival.clone());
                    req
                });
                let conn = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            graceful.shutdown().await;
            upkeep.abort();
            Ok(())
        })
}
