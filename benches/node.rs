//! The node on JetStream against a real nats-server, in one run:
//!
//! 1. **raw consume**: N stored events read through an ordered consumer and
//!    decoded, nothing else (the ceiling);
//! 2. **pipeline**: a node started over the same N events, every default
//!    agent applying them and writing its decisions, timed until every agent
//!    has applied the last one. Steps 1 and 2 alternate for several rounds
//!    (each node with a snapshot bucket of its own, so it starts from
//!    nothing) and the medians are compared: on a shared two-core machine a
//!    single pair of runs differs by ±15 % from one run to the next;
//! 3. **sustained**: half as many events again, published flat out while the
//!    node runs, timed until every agent has applied the last one;
//! 4. **latency**: with the node caught up, traffic offered at 1,000
//!    events/s and at half the sustained rate, evenly (a batch every
//!    millisecond, sent without waiting for earlier acknowledgements), plus
//!    a breaker command every millisecond (each one sent once the last is
//!    acknowledged; `FAULTLINE_BENCH_PROBE_MS` to space them further):
//!    about 10,000 probes per load, so the p99 rests on about 100 of them,
//!    and 1,000 decisions a second to write. For each command, the time from its
//!    publish acknowledgement to the breaker's decision arriving on
//!    `faultline.out.breaker.<service>` (p50, p99). Beside it, the same
//!    probes' own publish-to-acknowledgement time: what the server and the
//!    machine take for one round trip at that load, the floor under any
//!    decision latency.
//!
//! `cargo bench --bench node` (N = 100 000; `FAULTLINE_BENCH_EVENTS` to
//! change it; `FAULTLINE_BENCH_ROUNDS` rounds, default 5). Needs a
//! nats-server ≥ 2.11 (see README); the server runs with its default
//! periodic fsync, as in production.

// A benchmark measures wall-clock time.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/support/nats.rs"]
mod nats;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faultline::config::Config;
use faultline::events::{Event, Timestamp};
use faultline::node::jetstream::{decode, JetStream};
use faultline::node::settings::{NodeSettings, RawNode};
use faultline::node::{agent_specs, wall_now, Node};
use faultline::tools::load::{Generator, Profile};
use faultline::tools::target::Target;
use futures_util::StreamExt;

fn settings(url: &str, http: &str, bucket: &str) -> NodeSettings {
    let mut raw = RawNode::default();
    let mut p = faultline::config::Problems::default();
    raw.set("nats_url", url, "bench", &mut p);
    raw.set("snapshot_bucket", bucket, "bench", &mut p);
    raw.set("http", http, "bench", &mut p);
    raw.set("log_format", "text", "bench", &mut p);
    // FAULTLINE_* variables apply, as for `faultline run` (e.g. FAULTLINE_SNAPSHOT_EVERY).
    let env: Vec<(String, String)> = std::env::vars().collect();
    NodeSettings::from_layers(&RawNode::default(), &env, &raw).expect("valid bench settings")
}

/// CPU seconds (user + system) a process has used so far, from /proc.
fn cpu_s(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: state is field 0; utime 11, stime 12 (clock ticks, 100/s).
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn command(id: String, service: &str, action: &str) -> Event {
    serde_json::from_value(serde_json::json!({
        "specversion": "1.0", "id": id, "source": "bench", "type": "faultline.command",
        "subject": service, "time": wall_now(), "data": {"action": action, "by": "bench"},
    }))
    .expect("a valid command")
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // binary without it, as a quick smoke run of the same code.
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("FAULTLINE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 100_000 } else { 2_000 });
    let probe_for = Duration::from_secs(if full { 10 } else { 1 });
    let probe_every = Duration::from_millis(
        std::env::var("FAULTLINE_BENCH_PROBE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
    );
    let server = nats::NatsServer::start_for_bench();
    let url = server.url();
    let server_pid = server.pid().map(|p| p.to_string()).unwrap_or_default();
    let cpu = move || (cpu_s("self"), cpu_s(&server_pid));
    // The node runs in a runtime of its own, as under `faultline run`;
    // publishers and probes in another, so that they compete with the node
    // for the cores (as other processes would), not for its task queue.
    let node_rt = faultline::node::runtime(Some(2)).unwrap();
    let node_handle = node_rt.handle().clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let probe_for = probe_for;
        let rounds: usize = std::env::var("FAULTLINE_BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if full { 5 } else { 1 })
            .max(1);
        let settings_for = |round: usize| settings(&url, "127.0.0.1:0", &format!("bench_snapshots_{round}"));
        let settings = settings_for(0);
        // The stream, as the node creates it.
        let (js, _) = JetStream::open(&settings).await.expect("JetStream is up");

        // N observations, timed as a backlog ending now.
        let profile = Profile::named("baseline").unwrap();
        let per_second = profile.services * (profile.instances + profile.samples);
        let length = (n / per_second + 2) as u64;
        let start = Timestamp::from_nanos(wall_now().nanos() - length as i64 * 1_000_000_000);
        let mut generator = Generator::new(profile, 1, start, length);
        let mut events = generator.topology();
        let mut k = 0;
        while events.len() < n {
            events.extend(generator.second(k));
            k += 1;
        }
        events.truncate(n);
        let target = Target::Nats { url: url.clone(), prefix: "faultline".into() };
        let sender = Arc::new(target.sender().await.unwrap());
        let t0 = Instant::now();
        for chunk in events.chunks(1000) {
            sender.send(chunk).await.unwrap();
        }
        let publish_s = t0.elapsed().as_secs_f64();
        let last_input = js.last_seq().await.unwrap();

        // The agents alone: the same events through an in-memory engine, one thread.
        let config = Config::defaults();
        let mut engine = faultline::process::engine(&config);
        let mut scratch = Vec::new();
        let t0 = Instant::now();
        for e in &events {
            engine.ingest(e.clone(), &mut scratch);
            scratch.clear();
        }
        let apply_s = t0.elapsed().as_secs_f64();

        // 1 and 2, alternating: raw consume, then a fresh node's pipeline.
        let mut raw_runs = Vec::new();
        let mut pipe_runs = Vec::new();
        let mut node = None;
        let mut start_s = 0.0;
        let mut finished = Vec::new();
        for round in 0..rounds {
            let c0 = cpu();
            let t0 = Instant::now();
            let mut reader = js.raw_reader(1, "faultline.>".into()).await.unwrap();
            let mut read = 0u64;
            while reader.position < last_input {
                for m in reader.raw_batch(512, Duration::from_secs(5)).await.unwrap() {
                    let _ = std::hint::black_box(decode("faultline", &m));
                    read += 1;
                }
            }
            let raw_s = t0.elapsed().as_secs_f64();
            let c1 = cpu();
            drop(reader);
            raw_runs.push(Run::new(read, raw_s, c0, c1));

            if let Some(previous) = node.take() {
                node_handle.spawn(Node::shutdown(previous)).await.unwrap().unwrap();
            }
            let t0 = Instant::now();
            let started = {
                let (settings, config) = (settings_for(round), config.clone());
                node_handle
                    .spawn(async move { Node::start(settings, config.clone(), agent_specs(&config)).await })
                    .await
                    .unwrap()
                    .unwrap()
            };
            start_s = t0.elapsed().as_secs_f64();
            let c0 = cpu();
            let t0 = Instant::now();
            finished = caught_up(&started, last_input, t0).await;
            let pipeline_s = t0.elapsed().as_secs_f64();
            let c1 = cpu();
            pipe_runs.push(Run::new(last_input, pipeline_s, c0, c1));
            node = Some(started);
        }
        let node = node.expect("at least one round");
        let decisions = js.last_seq().await.unwrap() - last_input;
        let raw = Run::median(&raw_runs);
        let pipe = Run::median(&pipe_runs);
        let (raw_rate, pipeline_rate) = (raw.rate(), pipe.rate());

        // 3. The sustained rate: events published flat out while the node
        // runs, publisher, server and node sharing the machine, timed until
        // every agent has applied the last one.
        let live_n = n / 2;
        let mut live = Vec::with_capacity(live_n);
        while live.len() < live_n {
            live.extend(generator.second(k));
            k += 1;
        }
        live.truncate(live_n);
        let t0 = Instant::now();
        let mut inflight = futures_util::stream::iter(live.chunks(250).map(|c| {
            let (sender, c) = (sender.clone(), c.to_vec());
            async move { sender.send(&c).await.unwrap() }
        }))
        .buffer_unordered(8);
        while inflight.next().await.is_some() {}
        let live_last = js.last_seq().await.unwrap();
        caught_up(&node, live_last, t0).await;
        let live_rate = live_n as f64 / t0.elapsed().as_secs_f64();

        // 4. Latency at a light load and at half the sustained rate.
        let offered = live_rate / 2.0;
        let client = faultline::tools::target::nats_connect(&url).await.unwrap();
        let mut out = client.subscribe("faultline.out.breaker.bench-probe").await.unwrap();
        client.flush().await.unwrap();
        let received: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let sink = received.clone();
        tokio::spawn(async move {
            while let Some(m) = out.next().await {
                if let Ok(e) = faultline::events::Codec::MsgPack.decode(&m.payload) {
                    if let Some(cause) = e.causeid {
                        sink.lock().unwrap().insert(cause, Instant::now());
                    }
                }
            }
        });
        let mut lines = Vec::new();
        for (label, offered) in [("a light load", 1_000.0), ("half the sustained rate", offered)] {
            let mut probe = Probe { sender: sender.clone(), generator: &mut generator, k: &mut k, received: &received, every: probe_every };
            let Latency { achieved, decisions: lat, acks, sent } =
                probe.run(offered, probe_for, lines.len() as u64).await;
            if !full { assert_eq!(lat.len(), sent, "every probe gets its decision"); }
            lines.push(format!(
                "  latency at {achieved:.0} events/s offered ({label}): publish-ack -> decision p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} of {sent} probes answered)",
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
                lat.last().copied().unwrap_or(f64::NAN),
                lat.len(),
            ));
            lines.push(format!(
                "    baseline, the same probes' publish -> ack: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                percentile(&acks, 0.5),
                percentile(&acks, 0.99),
                acks.last().copied().unwrap_or(f64::NAN),
            ));
        }
        node_handle.spawn(node.shutdown()).await.unwrap().unwrap();

        println!("node bench: {n} stored events (baseline profile, 6 agents), nats-server on loopback");
        println!("  publish (acked, batches of 1000) {:>10.0} events/s", n as f64 / publish_s);
        println!("  raw consume + decode             {raw_rate:>10.0} events/s  (median of {rounds} rounds: {})", Run::list(&raw_runs));
        println!(
            "  agents alone (in memory, 1 thread){:>9.0} events/s",
            n as f64 / apply_s
        );
        println!("  node start (connect, streams, snapshots) {:.0} ms, not counted below", start_s * 1e3);
        println!(
            "  node pipeline (all agents)       {pipeline_rate:>10.0} events/s  = {:.0} % of raw (median of {rounds} rounds: {}; {decisions} decisions written)",
            100.0 * pipeline_rate / raw_rate,
            Run::list(&pipe_runs),
        );
        let ratios: Vec<String> = (raw_runs.iter().zip(&pipe_runs))
            .map(|(r, p)| format!("{:.0} %", 100.0 * p.rate() / r.rate()))
            .collect();
        println!("    pipeline / raw, round by round: {}", ratios.join(", "));
        let (rc, rs) = raw.cpu_per_record();
        let (pc, ps) = pipe.cpu_per_record();
        println!(
            "  CPU per record: raw consume {rc:.1} µs client + {rs:.1} µs nats-server; pipeline {pc:.1} µs node + {ps:.1} µs nats-server (2 cores)"
        );
        println!(
            "  sustained (publishing while the node runs, same machine) {live_rate:>7.0} events/s"
        );
        for (name, secs) in &finished {
            println!("    {name:<10} caught up after {secs:>6.2} s ({:>8.0} events/s)", last_input as f64 / secs);
        }
        for l in lines {
            println!("{l}");
        }
    });
    node_rt.shutdown_timeout(Duration::from_secs(5));
}

/// One timed read of the stored events.
#[derive(Clone, Copy)]
struct Run {
    records: u64,
    secs: f64,
    /// CPU seconds used meanwhile: this process, nats-server.
    cpu: (f64, f64),
}

impl Run {
    fn new(records: u64, secs: f64, c0: (f64, f64), c1: (f64, f64)) -> Self {
        Self {
            records,
            secs,
            cpu: (c1.0 - c0.0, c1.1 - c0.1),
        }
    }

    fn rate(&self) -> f64 {
        self.records as f64 / self.secs
    }

    /// µs of CPU per record: this process, nats-server.
    fn cpu_per_record(&self) -> (f64, f64) {
        let n = self.records as f64;
        (self.cpu.0 * 1e6 / n, self.cpu.1 * 1e6 / n)
    }

    /// The run with the median rate.
    fn median(runs: &[Run]) -> Run {
        let mut sorted = runs.to_vec();
        sorted.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
        sorted[sorted.len() / 2]
    }

    fn list(runs: &[Run]) -> String {
        let rates: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.rate())).collect();
        rates.join(", ")
    }
}

/// What one latency probe run measured.
struct Latency {
    /// Events per second achieved.
    achieved: f64,
    /// Publish-ack to decision, sorted (ms).
    decisions: Vec<f64>,
    /// Publish to ack of the same probes, sorted (ms).
    acks: Vec<f64>,
    /// Probes sent.
    sent: usize,
}

/// Waits until every agent has applied `seq`; returns when each did
/// (seconds since `t0`).
async fn caught_up(node: &Node, seq: u64, t0: Instant) -> Vec<(&'static str, f64)> {
    let mut finished: Vec<(&'static str, f64)> = Vec::new();
    loop {
        let statuses = node.shared.statuses();
        for (name, s) in &statuses {
            if s.applied >= seq && !finished.iter().any(|(n, _)| n == name) {
                finished.push((name, t0.elapsed().as_secs_f64()));
            }
        }
        if finished.len() == statuses.len() {
            return finished;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Offered load with breaker commands as probes.
struct Probe<'a> {
    sender: Arc<faultline::tools::target::Sender>,
    generator: &'a mut Generator,
    k: &'a mut u64,
    received: &'a Arc<Mutex<HashMap<String, Instant>>>,
    /// Time between two probes.
    every: Duration,
}

impl Probe<'_> {
    /// Offers `offered` events/s for `run`, evenly: a small batch every
    /// millisecond (bursts would measure how long a burst takes to drain,
    /// not steady latency), each sent without waiting for earlier ones'
    /// acknowledgements. Beside it, one probe every `every`, in order: a
    /// breaker command alternately forcing `bench-probe` open and resetting
    /// it, so each causes a decision. Returns the rate achieved, the sorted
    /// latencies (ms), each probe's own publish-to-ack time (ms) and the
    /// probes sent.
    async fn run(&mut self, offered: f64, run: Duration, round: u64) -> Latency {
        let acked: Arc<Mutex<Vec<(String, Instant, Instant)>>> = Arc::default();
        let probes = tokio::spawn({
            let (sender, acked, every) = (self.sender.clone(), acked.clone(), self.every);
            async move {
                // Closed first, unmeasured: a phase that ended on a
                // force_open would leave the next phase's first one
                // changing nothing, so deciding nothing.
                let reset = command(format!("probe-{round}-closed"), "bench-probe", "reset");
                sender.send(&[reset]).await.unwrap();
                let t0 = Instant::now();
                let mut i = 0u32;
                while t0.elapsed() < run {
                    let id = format!("probe-{round}-{i}");
                    let action = if i % 2 == 0 { "force_open" } else { "reset" };
                    let sent = Instant::now();
                    sender
                        .send(&[command(id.clone(), "bench-probe", action)])
                        .await
                        .unwrap();
                    acked.lock().unwrap().push((id, sent, Instant::now()));
                    i += 1;
                    if let Some(wait) = (t0 + every * i).checked_duration_since(Instant::now()) {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        });
        let tick = Duration::from_millis(1);
        let mut sends = Vec::new();
        let mut backlog = Vec::new();
        let mut offered_so_far = 0usize;
        let t0 = Instant::now();
        let mut i = 0u32;
        while t0.elapsed() < run {
            let target = (offered * f64::from(i + 1) * tick.as_secs_f64()) as usize;
            let n = target.saturating_sub(offered_so_far);
            while backlog.len() < n {
                backlog.extend(self.generator.second(*self.k));
                *self.k += 1;
            }
            let batch: Vec<Event> = backlog.drain(..n).collect();
            offered_so_far += n;
            let sender = self.sender.clone();
            sends.push(tokio::spawn(
                async move { sender.send(&batch).await.unwrap() },
            ));
            i += 1;
            if let Some(wait) = (t0 + tick * i).checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
        }
        for s in sends {
            s.await.unwrap();
        }
        probes.await.unwrap();
        let acked = acked.lock().unwrap().clone();
        let achieved = offered_so_far as f64 / t0.elapsed().as_secs_f64();
        // Until every probe's decision has arrived, or 10 s for stragglers
        // (those left unanswered are reported, not waited for forever).
        let deadline = Instant::now() + Duration::from_secs(10);
        let answered =
            |got: &HashMap<String, Instant>| acked.iter().all(|(id, ..)| got.contains_key(id));
        while !answered(&self.received.lock().unwrap()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let got = self.received.lock().unwrap().clone();
        let mut lat: Vec<f64> = acked
            .iter()
            .filter_map(|(id, _, at)| {
                got.get(id)
                    .map(|r| r.saturating_duration_since(*at).as_secs_f64() * 1e3)
            })
            .collect();
        lat.sort_by(f64::total_cmp);
        let mut acks: Vec<f64> = acked
            .iter()
            .map(|(_, sent, at)| at.saturating_duration_since(*sent).as_secs_f64() * 1e3)
            .collect();
        acks.sort_by(f64::total_cmp);
        Latency {
            achieved,
            decisions: lat,
            acks,
            sent: acked.len(),
        }
    }
}
