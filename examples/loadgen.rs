//! The load generator of the benchmark, for what `wrk` does not measure:
//! streams (events per second, time to first token), many open streams
//! held at once (for memory), and the gateway's overhead header and
//! histogram.
//!
//! ```sh
//! loadgen stream   URL BODY_FILE [CONCURRENCY] [SECONDS]   # JSON: events/s, ttft
//! loadgen hold     URL BODY_FILE [STREAMS] [SECONDS]       # holds N streams open
//! loadgen overhead URL BODY_FILE [REQUESTS]                # JSON: overhead header and histogram vs latency
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

/// The gateway's `llmgate_gateway_overhead_seconds` histogram, summed over
/// its label sets: cumulative bucket counts by upper bound, sum and count.
#[derive(Default)]
struct Histogram {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

impl Histogram {
    /// Reads it from a Prometheus exposition (`/metrics`).
    fn parse(text: &str) -> Self {
        const NAME: &str = "llmgate_gateway_overhead_seconds";
        let mut h = Histogram::default();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(NAME) else {
                continue;
            };
            let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            if rest.starts_with("_sum") {
                h.sum += value;
            } else if rest.starts_with("_count") {
                h.count += value;
            } else if rest.starts_with("_bucket") {
                let le = rest
                    .split_once(",le=\"")
                    .or_else(|| rest.split_once("{le=\""))
                    .map(|(_, r)| r)
                    .and_then(|r| r.split('"').next())
                    .map(|le| {
                        if le == "+Inf" {
                            f64::INFINITY
                        } else {
                            le.parse().unwrap_or(f64::NAN)
                        }
                    });
                if let Some(le) = le.filter(|le| !le.is_nan()) {
                    match h.buckets.iter_mut().find(|(b, _)| *b == le) {
                        Some((_, c)) => *c += value,
                        None => h.buckets.push((le, value)),
                    }
                }
            }
        }
        h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        h
    }

    /// What was recorded between `before` and `self`; `None` when the
    /// counts went back (the gateway restarted in between).
    fn since(&self, before: &Histogram) -> Option<Histogram> {
        if self.count < before.count {
            return None;
        }
        let at = |le: f64| {
            before
                .buckets
                .iter()
                .find(|(b, _)| *b == le)
                .map_or(0.0, |(_, c)| *c)
        };
        Some(Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|&(le, c)| (le, c - at(le)))
                .collect(),
            sum: self.sum - before.sum,
            count: self.count - before.count,
        })
    }

    /// The `q` quantile, interpolated linearly within its bucket (as
    /// Prometheus's `histogram_quantile` does), in seconds.
    fn quantile(&self, q: f64) -> f64 {
        let total = self.buckets.last().map_or(0.0, |b| b.1);
        if total <= 0.0 {
            return 0.0;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for &(le, count) in &self.buckets {
            if count >= rank {
                if le.is_infinite() {
                    return lower;
                }
                let within = count - below;
                return lower
                    + (le - lower)
                        * if within > 0.0 {
                            (rank - below) / within
                        } else {
                            1.0
                        };
            }
            (lower, below) = (le, count);
        }
        lower
    }
}

/// The gateway's histogram, read from `/metrics` next to `url`.
async fn scrape(client: &HttpClient, url: &str) -> Option<Histogram> {
    let uri: http::Uri = url.parse().ok()?;
    let metrics = format!("{}://{}/metrics", uri.scheme_str()?, uri.authority()?);
    let resp = client.get(metrics.parse().ok()?).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    Some(Histogram::parse(std::str::from_utf8(&body).ok()?))
}

async fn overhead_mode(url: String, body: Bytes, requests: usize) {
    let client = client(1);
    let before = scrape(&client, &url).await;
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
            overheads.push((ms * 1000.0).round() as u64);
        }
    }
    // The histogram of these requests alone: nothing else runs meanwhile.
    let after = scrape(&client, &url).await;
    let histogram = before
        .zip(after)
        .and_then(|(b, a)| a.since(&b))
        .filter(|h| h.count > 0.0 && !h.buckets.is_empty());
    // JSON `null` when the gateway exports no such histogram (no buckets
    // set: a summary instead) or could not be read.
    let (hist_p50, hist_mean) = match histogram {
        Some(h) => (
            format!("{:.0}", h.quantile(0.5) * 1e6),
            format!("{:.0}", h.sum / h.count * 1e6),
        ),
        None => {
            eprintln!("no overhead histogram with buckets at {url}'s /metrics");
            ("null".to_owned(), "null".to_owned())
        }
    };
    let header_mean = overheads.iter().sum::<u64>() / overheads.len().max(1) as u64;
    latencies.sort_unstable();
    overheads.sort_unstable();
    println!(
        "{{\"requests\":{},\"latency_p50_us\":{},\"overhead_header_p50_us\":{},\"overhead_header_p99_us\":{},\"overhead_header_mean_us\":{},\"overhead_histogram_p50_us\":{},\"overhead_histogram_mean_us\":{}}}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&overheads, 0.5),
        percentile(&overheads, 0.99),
        header_mean,
        hist_p50,
        hist_mean,
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
