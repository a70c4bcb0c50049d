"""Turns the load benchmark's raw results into the table of RESULTS.md."""
import datetime
import json
import statistics
import sys

path, rss_start, rss_idle, rss_held, held, commit, machine, secs, rounds, ngx_idle, ngx_held = sys.argv[1:12]
rows = [json.loads(l) for l in open(path) if l.strip()]

# When set, figures come from that round's rows alone (the targets table's last column).
only_round = None

def med(scenario, target, key):
    # A figure a round could not measure is null (e.g. no overhead histogram).
    vals = [r["data"].get(key) for r in rows if r["scenario"] == scenario and r["target"] == target
            and only_round in (None, r["round"])]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else float("nan")

TARGETS = ["direct", "nginx", "hyper", "same", "convert"]
NAMES = {"direct": "direct to the mock", "nginx": "nginx pass-through",
         "hyper": "bare hyper proxy (Rust floor)",
         "same": "llmgate same format (OpenAI→OpenAI)", "convert": "llmgate conversion (Anthropic→OpenAI)"}
out = []
p = out.append
p("# Load benchmark results\n")
p(f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
p(f"- commit: `{commit}`")
p(f"- machine: {machine}")
p(f"- method: `bash bench/load.sh` — every figure is the median of {rounds} rounds of {secs} s per target;"
  " the targets alternate within each round (with one connection they alternate every second, and the figure"
  f" is the median of the {int(rounds) * int(secs)} one-second slices). wrk (1 thread) for requests, `examples/loadgen.rs` for streams;"
  " mock upstream on one thread, nginx `worker_processes auto`, the bare hyper proxy and the example gateway"
  " thread-per-core (one runtime per core), built with the `release-lto` profile; the gateway runs its default"
  " stack (auth, resolve, preprocess, metrics with a Prometheus recorder, timeouts, fallback, retry, hedge,"
  " balance) with `RUST_LOG=warn`.\n")

p("## Requests\n")
p("| requests | conns | target | req/s | p50 µs | p99 µs | req/s vs nginx | p99 vs nginx | req/s vs direct | added p50 µs |")
p("|---|---|---|---|---|---|---|---|---|---|")
for size in ["small", "large"]:
    for conns in ["1", "32"]:
        sc = f"{size}-{conns}"
        n_rps, n_p99, d_rps, d_p50 = med(sc, "nginx", "rps"), med(sc, "nginx", "p99_us"), med(sc, "direct", "rps"), med(sc, "direct", "p50_us")
        for t in TARGETS:
            rps, p50, p99 = med(sc, t, "rps"), med(sc, t, "p50_us"), med(sc, t, "p99_us")
            label = "~200 B" if size == "small" else "~31 KB"
            p(f"| {label} | {conns} | {NAMES[t]} | {rps:,.0f} | {p50:,.0f} | {p99:,.0f} | {rps / n_rps:.2f} | {p99 / n_p99:.2f} | {rps / d_rps:.2f} | {p50 - d_p50:,.0f} |")

p("\n## Streams (100 content events each, 64 at once)\n")
p("| target | events/s | vs direct | TTFT p50 µs | added TTFT p50 µs | TTFT p99 µs | errors |")
p("|---|---|---|---|---|---|---|")
d_ev, d_ttft = med("stream-64", "direct", "events_per_sec"), med("stream-64", "direct", "ttft_p50_us")
for t in TARGETS:
    ev, tt, t99, err = (med("stream-64", t, k) for k in ["events_per_sec", "ttft_p50_us", "ttft_p99_us", "errors"])
    p(f"| {NAMES[t]} | {ev:,.0f} | {ev / d_ev:.2f} | {tt:,.0f} | {tt - d_ttft:,.0f} | {t99:,.0f} | {err:.0f} |")

p("\n## Streams one at a time (time to first token without load)\n")
p("| target | TTFT p50 µs | added TTFT p50 µs | TTFT p99 µs | events/s | errors |")
p("|---|---|---|---|---|---|")
d1 = med("stream-1", "direct", "ttft_p50_us")
for t in TARGETS:
    ev, tt, t99, err = (med("stream-1", t, k) for k in ["events_per_sec", "ttft_p50_us", "ttft_p99_us", "errors"])
    p(f"| {NAMES[t]} | {tt:,.0f} | {tt - d1:,.0f} | {t99:,.0f} | {ev:,.0f} | {err:.0f} |")

p("\n## Overhead header and histogram vs measured added latency (1 connection, small requests)\n")
p("| target | header p50 µs | histogram p50 µs | measured added p50 µs (target − direct, wrk) | header / measured | histogram / measured | added over the bare hyper proxy µs | header / that | histogram / that |")
p("|---|---|---|---|---|---|---|---|---|")
added = {}
def ratio(a, b):
    # One-connection latency is noisy: the floor can measure slower than llmgate.
    return f"{a / b:.2f}" if b > 0 else "— (measured no added time)"
for t in ["same", "convert"]:
    header = med("overhead", t, "overhead_header_p50_us")
    hist = med("overhead", t, "overhead_histogram_p50_us")
    measured = med("small-1", t, "p50_us") - med("small-1", "direct", "p50_us")
    over_floor = med("small-1", t, "p50_us") - med("small-1", "hyper", "p50_us")
    added[t] = (header, hist, measured)
    p(f"| {NAMES[t]} | {header:,.0f} | {hist:,.0f} | {measured:,.0f} | {ratio(header, measured)} | {ratio(hist, measured)}"
      f" | {over_floor:,.0f} | {ratio(header, over_floor)} | {ratio(hist, over_floor)} |")
p("\nThe header counts the time from the HTTP tier's call to the response headers minus the upstream's time"
  " on the wire (from the upstream connection's last write to its first read after it); it cannot see hyper"
  " reading the client's request and writing the answer, the second loopback hop, or the wake-ups, which the"
  " bare hyper proxy pays too (the last three columns). The histogram is"
  " `llmgate_gateway_overhead_seconds` (recorded by the HTTP tier with the header's value), read from the gateway's `/metrics` before and after the same requests"
  " as the header (`loadgen overhead`), its median interpolated within its bucket as Prometheus's"
  " `histogram_quantile` does; it records the value the header carries.")
p("\n## Memory (gateway RSS)\n")
p(f"- at start: {int(rss_start) / 1024:.1f} MiB; idle 2 s after the load: {int(rss_idle) / 1024:.1f} MiB;"
  f" with {held} open streams: {int(rss_held) / 1024:.1f} MiB")
p(f"- for reference, nginx (master and workers) holding the same streams: {int(ngx_held) / 1024:.1f} MiB"
  f" ({int(ngx_idle) / 1024:.1f} MiB idle)\n")

p("## Targets\n")
p("The last column gives the figure of each round alone (the ratios within one round, whose targets ran"
  " at most half a minute apart): how far it moves within a run.\n")
p("| target | measured | goal | met | rounds alone |")
p("|---|---|---|---|---|")
ROUNDS = sorted({r["round"] for r in rows})
def spread(figure):
    """`figure()` computed from each round's rows alone."""
    global only_round
    vals = []
    for only_round in ROUNDS:
        try:
            v = figure()
        except ZeroDivisionError:
            continue
        if v == v:  # not NaN
            vals.append(v)
    only_round = None
    return vals
def check(name, value, goal, ok, figure=None, fmt="{:.2f}"):
    vals = spread(figure) if figure else []
    alone = f"{fmt.format(min(vals))}–{fmt.format(max(vals))}" if vals else "—"
    p(f"| {name} | {value} | {goal} | {'yes' if ok else '**no**'} | {alone} |")
def ratio_of(scenario, target, key, ref="nginx"):
    return lambda: med(scenario, target, key) / med(scenario, ref, key)
r = med("small-32", "convert", "rps") / med("small-32", "nginx", "rps")
check("conversion, small, 32 conns: throughput vs nginx", f"{r:.2f}", "≥ 0.60", r >= 0.60,
      ratio_of("small-32", "convert", "rps"))
r = med("small-32", "convert", "p99_us") / med("small-32", "nginx", "p99_us")
check("conversion, small, 32 conns: p99 vs nginx", f"{r:.2f}", "≤ 2.0", r <= 2.0,
      ratio_of("small-32", "convert", "p99_us"))
r = med("small-32", "same", "rps") / med("small-32", "nginx", "rps")
check("same format, small, 32 conns: throughput vs nginx", f"{r:.2f}", "≥ 0.80", r >= 0.80,
      ratio_of("small-32", "same", "rps"))
n_added = med("small-1", "nginx", "p50_us") - med("small-1", "direct", "p50_us")
def added_ratio(t):
    d = lambda x: med("small-1", x, "p50_us") - med("small-1", "direct", "p50_us")
    return lambda: d(t) / d("nginx")
for t in ["same", "convert"]:
    a = med("small-1", t, "p50_us") - med("small-1", "direct", "p50_us")
    check(f"1 conn: added p50, {t} vs nginx's", f"{a:,.0f} µs vs {n_added:,.0f} µs = {a / n_added:.2f}", "≤ 1.5", a <= 1.5 * n_added,
          added_ratio(t))
for t in ["same", "convert"]:
    r = med("stream-64", t, "events_per_sec") / d_ev
    check(f"streams: events/s vs direct, {t}", f"{r:.2f}", "≥ 0.70", r >= 0.70,
          ratio_of("stream-64", t, "events_per_sec", "direct"))
    a = med("stream-64", t, "ttft_p50_us") - d_ttft
    check(f"streams: added TTFT p50, {t}", f"{a:,.0f} µs", "< 200 µs", a < 200,
          lambda t=t: med("stream-64", t, "ttft_p50_us") - med("stream-64", "direct", "ttft_p50_us"), "{:,.0f} µs")
# The limits are in MB (10^6 bytes); RSS is read in KiB.
def mb(kib):
    return int(kib) * 1024 / 1e6
check("idle RSS", f"{int(rss_idle) / 1024:.1f} MiB = {mb(rss_idle):.1f} MB", "≤ 15 MB", mb(rss_idle) <= 15)
check(f"RSS with {held} open streams", f"{int(rss_held) / 1024:.1f} MiB = {mb(rss_held):.1f} MB", "≤ 64 MB",
      mb(rss_held) <= 64 and int(held) >= 1000)
for t in ["same", "convert"]:
    h, g, m = added[t]
    measured = lambda t=t: med("small-1", t, "p50_us") - med("small-1", "direct", "p50_us")
    check(f"overhead header vs measured added latency, {t}", f"{h / m:.2f}", "within 25 % (0.75–1.25)", 0.75 <= h / m <= 1.25,
          lambda t=t, m=measured: med("overhead", t, "overhead_header_p50_us") / m())
    check(f"overhead histogram vs measured added latency, {t}", f"{g / m:.2f}", "within 25 % (0.75–1.25)", 0.75 <= g / m <= 1.25,
          lambda t=t, m=measured: med("overhead", t, "overhead_histogram_p50_us") / m())
print("\n".join(out))
