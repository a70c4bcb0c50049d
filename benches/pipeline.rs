//! The whole default stack per request, in process: an HTTP request into the
//! gateway's `HttpService`, through every layer, to an upstream client that
//! answers at once with prebuilt bytes, and the response body read out. No
//! sockets, so this is what llmgate itself costs per request (the load
//! benchmark, `bench/load.sh`, measures it over loopback against nginx).

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use llmgate::config::Config;
use llmgate::provider::HttpClient;
use tower::ServiceExt;

/// The system allocator, counting allocations (printed per request).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const CONFIG: &str = r#"
[[providers]]
name = "mock"
kind = "openai"
base_url = "http://127.0.0.1:9/v1"

[[models]]
name = "gpt-bench"
targets = [{ provider = "mock", model = "mock" }]

[[models]]
name = "claude-bench"
targets = [{ provider = "mock", model = "mock" }]
"#;

const COMPLETION: &str = r#"{"id":"chatcmpl-mock","object":"chat.completion","created":1,"model":"mock","choices":[{"index":0,"message":{"role":"assistant","content":"tok tok tok tok tok tok tok tok","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}"#;

const OPENAI: &str = r#"{"model":"gpt-bench","max_tokens":64,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark, briefly please."}]}"#;
const ANTHROPIC: &str = r#"{"model":"claude-bench","max_tokens":64,"system":"You are terse.","messages":[{"role":"user","content":"Say hello to the benchmark, briefly please."}]}"#;

fn pipeline(c: &mut Criterion) {
    let upstream = tower::service_fn(|_req: http::Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(
            http::Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(COMPLETION.as_bytes())))
                .unwrap(),
        )
    });
    // A Prometheus recorder, as the example gateway installs, so that
    // metrics cost what they cost.
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::set_global_recorder(prometheus).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let gateway = Config::from_toml(CONFIG)
        .unwrap()
        .build_with(Some(HttpClient::new(upstream)))
        .unwrap();
    let mut group = c.benchmark_group("pipeline");
    for (name, path, body) in [
        ("openai_to_openai", "/v1/chat/completions", OPENAI),
        ("anthropic_to_openai", "/v1/messages", ANTHROPIC),
    ] {
        let call = || {
            let req = http::Request::post(path)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap();
            let http = gateway.http.clone();
            rt.block_on(async move {
                let resp = http.oneshot(req).await.unwrap();
                assert_eq!(resp.status(), 200);
                black_box(resp.into_body().collect().await.unwrap().to_bytes())
            })
        };
        call();
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..1000 {
            call();
        }
        let per_request = (ALLOCATIONS.load(Ordering::Relaxed) - before) / 1000;
        println!("pipeline/{name}: {per_request} allocations per request");
        group.bench_function(name, |b| b.iter(call));
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
