//! A `metrics` recorder for the tests: counters, gauges and histogram
//! samples kept by name and labels, never reset, so that parallel tests
//! (each with its own label values, or looking for their own samples) can
//! read their own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

#[derive(Default)]
struct Capture {
    counters: Mutex<HashMap<Key, Arc<Value>>>,
    gauges: Mutex<HashMap<Key, Arc<Value>>>,
    histograms: Mutex<HashMap<Key, Arc<Samples>>>,
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, v: f64) {
        self.0.lock().unwrap().push(v);
    }
}

#[derive(Default)]
struct Value(AtomicU64);

impl CounterFn for Value {
    fn increment(&self, v: u64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    fn absolute(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
}

impl GaugeFn for Value {
    fn increment(&self, v: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + v).to_bits())
            });
    }
    fn decrement(&self, v: f64) {
        GaugeFn::increment(self, -v);
    }
    fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(entry(&self.counters, key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(entry(&self.gauges, key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(entry(&self.histograms, key))
    }
}

/// The value kept for `key`, made on first use.
fn entry<V: Default>(map: &Mutex<HashMap<Key, Arc<V>>>, key: &Key) -> Arc<V> {
    map.lock().unwrap().entry(key.clone()).or_default().clone()
}

static CAPTURE: OnceLock<Arc<Capture>> = OnceLock::new();

struct Shared(Arc<Capture>);

impl Recorder for Shared {
    fn describe_counter(&self, k: KeyName, u: Option<Unit>, d: SharedString) {
        self.0.describe_counter(k, u, d)
    }
    fn describe_gauge(&self, k: KeyName, u: Option<Unit>, d: SharedString) {
        self.0.describe_gauge(k, u, d)
    }
    fn describe_histogram(&self, k: KeyName, u: Option<Unit>, d: SharedString) {
        self.0.describe_histogram(k, u, d)
    }
    fn register_counter(&self, key: &Key, m: &Metadata<'_>) -> Counter {
        self.0.register_counter(key, m)
    }
    fn register_gauge(&self, key: &Key, m: &Metadata<'_>) -> Gauge {
        self.0.register_gauge(key, m)
    }
    fn register_histogram(&self, key: &Key, m: &Metadata<'_>) -> Histogram {
        self.0.register_histogram(key, m)
    }
}

fn capture() -> &'static Arc<Capture> {
    CAPTURE.get_or_init(|| {
        let c = Arc::new(Capture::default());
        let _ = metrics::set_global_recorder(Shared(c.clone()));
        c
    })
}

/// Installs the recorder (once per test binary).
pub fn install() {
    capture();
}

fn matches(key: &Key, name: &str, labels: &[(&str, &str)]) -> bool {
    key.name() == name
        && labels
            .iter()
            .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
}

/// The sum of the counters `name` whose labels include `labels`.
pub fn counter(name: &str, labels: &[(&str, &str)]) -> u64 {
    capture()
        .counters
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| matches(k, name, labels))
        .map(|(_, v)| v.0.load(Ordering::Relaxed))
        .sum()
}

/// Every sample of the histograms `name` whose labels include `labels`.
pub fn histogram(name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    capture()
        .histograms
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| matches(k, name, labels))
        .flat_map(|(_, v)| v.0.lock().unwrap().clone())
        .collect()
}
