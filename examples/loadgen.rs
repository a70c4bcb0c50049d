//! The load generator of the benchmark, for what `wrk` does not measure:
//! streams (events per second, time to first token), many open streams
//! held at once (for memory), and the gateway's overhead header.
//!
//! ```sh
//! loadgen stream   URL BODY_FILE [CONCURRENCY] [SECONDS]   # JSON: events/s, ttft
//! loadgen hold     URL BODY_FILE [STREAMS] [SECONDS]       # holds N streams open
//! loadgen overhead URL BODY_FILE [REQUESTS]                # JSON: overhead header vs latency
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client(pool: usize) -> HttpClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(pool)
        .build(http)
}

fn request(url: &str, body: &Bytes) -> http::Request<Full<Bytes>> {
    http::Request::post(url)
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(Full::new(body.clone()))
        .expect("a valid request")
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Reads one stream to its end: (time to the first content, events).
async fn one_stream(client: &HttpClient, url: &str, body: &Bytes) -> Option<(Duration, u64)> {
    let start = Instant::now();
    let resp = client.request(request(url, body)).await.ok()?;
    if !resp.status().is_success() {
        let _ = resp.into_body().collect().await;
        return None;
    }
    let mut body = resp.into_body();
    let mut ttft = None;
    let mut events = 0u64;
    let mut carry = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.ok()?.into_data() else {
            continue;
        };
        if ttft.is_none() && memchr::memmem::find(&data, b"tok").is_some() {
            ttft = Some(start.elapsed());
        }
        carry.extend_from_slice(&data);
        events += memchr::memmem::find_iter(&carry, b"data:").count() as u64;
        // Keep a tail in case "data:" is split between reads.
        let keep = carry.len().min(4);
        carry.drain(..carry.len() - keep);
        events -= memchr::memmem::find_iter(&carry, b"data:").count() as u64;
    }
    Some((ttft?, events))
}

async fn stream_mode(url: String, body: Bytes, concurrency: usize, seconds: u64) {
    let client = client(concurrency);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let events = Arc::new(AtomicU64::new(0));
    let streams = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let ttfts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        let (events, streams, errors, ttfts) = (
            events.clone(),
            streams.clone(),
            errors.clone(),
            ttfts.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                match one_stream(&client, &url, &body).await {
                    Some((ttft, n)) => {
                        events.fetch_add(n, Ordering::Relaxed);
                        streams.fetch_add(1, Ordering::Relaxed);
                        ttfts.lock().unwrap().push(ttft.as_micros() as u64);
                    }
                    None => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    let mut t = ttfts.lock().unwrap().clone();
    t.sort_unstable();
    println!(
        "{{\"streams\":{},\"events\":{},\"events_per_sec\":{:.0},\"ttft_p50_us\":{},\"ttft_p99_us\":{},\"errors\":{}}}",
        streams.load(Ordering::Relaxed),
        events.load(Ordering::Relaxed),
        events.load(Ordering::Relaxed) as f64 / secs,
        percentile(&t, 0.5),
        percentile(&t, 0.99),
        errors.load(Ordering::Relaxed)
    );
}

async fn hold_mode(url: String, body: Bytes, streams: usize, seconds: u64) {
    let client = client(streams);
    let opened = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let (client, url, body, opened) =
            (client.clone(), url.clone(), body.clone(), opened.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(resp) = client.request(request(&url, &body)).await else {
                return;
            };
            let mut body = resp.into_body();
            // Hold the stream open, reading what comes.
            let mut counted = false;
            while let Some(Ok(frame)) = body.frame().await {
                if !counted && frame.is_data() {
                    counted = true;
                    opened.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    let start = Instant::now();
    while opened.load(Ordering::SeqCst) < streams && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("holding {} streams", opened.load(Ordering::SeqCst));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    for t in tasks {
        t.abort();
    }
}

async fn overhead_mode(url: String, body: Bytes, requests: usize) {
    let client = client(1);
    let mut latencies = Vec::with_capacity(requests);
    let mut overheads = Vec::with_capacity(requests);
    for _ in 0..requests {
        let start = Instant::now();
        let Ok(resp) = client.request(request(&url, &body)).await else {
            continue;
        };
        let header = resp
            .headers()
            .get("x-llmgate-overhead-ms")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok());
        let _ = resp.into_body().collect().await;
        latencies.push(start.elapsed().as_micros() as u64);
        if let Some(ms) = header {
            overheads.push((ms * 1000.0) as u64);
        }
    }
    latencies.sort_unstable();
    overheads.sort_unstable();
    println!(
        "{{\"requests\":{},\"latency_p50_us\":{},\"overhead_header_p50_us\":{},\"overhead_header_p99_us\":{}}}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&overheads, 0.5),
        percentile(&overheads, 0.99)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: loadgen stream|hold|overhead URL BODY_FILE [N] [SECONDS]";
    if args.len() < 4 {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let (mode, url) = (args[1].clone(), args[2].clone());
    let body = Bytes::from(std::fs::read(&args[3]).unwrap_or_else(|e| {
        eprintln!("{}: {e}", args[3]);
        std::process::exit(2)
    }));
    let n = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        match mode.as_str() {
            "stream" => stream_mode(url, body, n(4, 64) as usize, n(5, 10)).await,
            "hold" => hold_mode(url, body, n(4, 1000) as usize, n(5, 5)).await,
            "overhead" => overhead_mode(url, body, n(4, 2000) as usize).await,
            _ => {
                eprintln!("{usage}");
                std::process::exit(2);
            }
        }
    });
}
