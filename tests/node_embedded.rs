//! The embedded node (sled log, HTTP ingest): ingest answers, dead letters,
//! an injected agent panic, a parked poison record, and a crash loop of 20
//! SIGKILLs while a publisher keeps sending.

// Integration tests around real processes: deadlines need the clock.
#![allow(clippy::disallowed_methods)]

mod support {
    pub mod nats;
    pub mod node;
    pub mod stream;
}

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use faultline::engine::{Agent, Proposal};
use faultline::events::{Event, Timestamp};
use faultline::log::{read_all, Durability, Seq, SledLog};
use faultline::node::settings::{NodeSettings, RawNode};
use faultline::node::{agent_specs, AgentSpec, Node};
use rand_chacha::rand_core::SeedableRng;
use rand_distr::{Distribution, Uniform};
use support::node::NodeProc;
use support::stream::{check_log, config, events, future_base};

fn settings(dir: &std::path::Path, extra: &[(&str, &str)]) -> NodeSettings {
    let mut raw = RawNode::default();
    let mut p = faultline::config::Problems::default();
    raw.set("data", &dir.display().to_string(), "test", &mut p);
    raw.set("http", "127.0.0.1:0", "test", &mut p);
    raw.set("max_ahead_s", "7200", "test", &mut p);
    for (k, v) in extra {
        raw.set(k, v, "test", &mut p);
    }
    assert!(p.list().is_empty());
    NodeSettings::from_layers(&raw, &[], &RawNode::default()).unwrap()
}

fn post(url: &str, content_type: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(format!("{url}/v1/events"))
        .header("Content-Type", content_type)
        .send(&body[..])
        .expect("node answers");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

async fn post_async(
    url: String,
    content_type: &'static str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    tokio::task::spawn_blocking(move || post(&url, content_type, body))
        .await
        .unwrap()
}

async fn wait_caught_up(node: &Node) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let last = node.backend.last_seq().await.unwrap();
        if node
            .shared
            .statuses()
            .values()
            .all(|s| s.caught_up && s.applied >= last)
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "agents did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn log_records(dir: &std::path::Path) -> Vec<(Seq, Event)> {
    let log = SledLog::open(dir, Durability::Buffered).unwrap();
    read_all(&log, 1).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_answers_per_event_and_keeps_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        settings(dir.path(), &[("max_body_bytes", "4096")]),
        config(),
        agent_specs(&config()),
    )
    .await
    .unwrap();
    let url = format!("http://{}", node.http_addr);
    let lines = events(future_base(), 6);
    let bad = lines[1]
        .replace("\"status\":200", "\"status\":1000")
        .replace("\"status\":500", "\"status\":1000");
    let body = format!("{}\n{bad}\n{}\nnot json\n", lines[0], lines[2]);
    let (status, answer) = post_async(url.clone(), "application/x-ndjson", body.into_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(2), Some(2)),
        "{answer}"
    );
    assert_eq!(answer["results"][1]["reason"], "invalid");
    assert!(
        answer["results"][1]["error"]
            .as_str()
            .unwrap()
            .contains("data.status"),
        "{answer}"
    );
    assert_eq!(answer["results"][3]["reason"], "malformed");

    // Sent again: duplicates, nothing appended twice.
    let (status, again) = post_async(
        url.clone(),
        "application/json",
        format!("[{},{}]", lines[0], lines[2]).into_bytes(),
    )
    .await;
    assert_eq!(
        (status, again["duplicates"].as_u64()),
        (200, Some(2)),
        "{again}"
    );

    // Everything refused: 400 with details; too far ahead: reason "future".
    let far = lines[3].replace(&future_base().to_string()[..4], "2100");
    let (status, all_bad) = post_async(
        url.clone(),
        "application/json",
        format!("[{bad},{far}]").into_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{all_bad}");
    assert_eq!(all_bad["results"][1]["reason"], "future", "{all_bad}");
    // Over the size limit: 413.
    let (status, _) = post_async(url.clone(), "application/json", vec![b' '; 8192]).await;
    assert_eq!(status, 413);

    let metrics = tokio::task::spawn_blocking(move || {
        ureq::get(format!("{url}/metrics"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        metrics.contains("faultline_events_ingested_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("faultline_events_rejected_total{reason=\"invalid\"} 2"),
        "{metrics}"
    );
    node.shutdown().await.unwrap();

    let log = SledLog::open(dir.path(), Durability::Buffered).unwrap();
    let dead = log.dead_letters().unwrap();
    let reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(reasons, ["invalid", "malformed", "invalid", "future"]);
    assert_eq!(dead[0].original, bad.as_bytes());
}

/// Wraps an agent; panics when it meets `poison`, `times` times in all.
struct Flaky {
    inner: Box<dyn Agent>,
    poison: String,
    left: Arc<AtomicU32>,
}

impl Agent for Flaky {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn view(&self, service: Option<&str>) -> Option<serde_json::Value> {
        self.inner.view(service)
    }
    fn apply(&mut self, seq: Seq, record: &Event, out: &mut Vec<Proposal>) {
        self.inner.apply(seq, record, out);
        if record.id == self.poison
            && self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            panic!("injected panic on {}", record.id);
        }
    }
    fn next_deadline(&self) -> Option<Timestamp> {
        self.inner.next_deadline()
    }
    fn snapshot(&self) -> Vec<u8> {
        self.inner.snapshot()
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.inner.restore(bytes)
    }
}

fn flaky_specs(poison: &str, times: u32) -> (Vec<AgentSpec>, Arc<AtomicU32>) {
    let left = Arc::new(AtomicU32::new(times));
    let specs = agent_specs(&config())
        .into_iter()
        .map(|s| {
            if s.name != "breaker" {
                return s;
            }
            let (make, poison, left) = (s.make.clone(), poison.to_owned(), left.clone());
            AgentSpec {
                name: s.name,
                make: Arc::new(move || {
                    Box::new(Flaky {
                        inner: make(),
                        poison: poison.clone(),
                        left: left.clone(),
                    }) as Box<dyn Agent>
                }),
            }
        })
        .collect();
    (specs, left)
}

async fn run_with(
    specs: Vec<AgentSpec>,
    lines: &[String],
    extra: &[(&str, &str)],
) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(settings(dir.path(), extra), config(), specs)
        .await
        .unwrap();
    let url = format!("http://{}", node.http_addr);
    for chunk in lines.chunks(25) {
        let (status, a) = post_async(
            url.clone(),
            "application/x-ndjson",
            chunk.join("\n").into_bytes(),
        )
        .await;
        assert_eq!(status, 200, "{a}");
    }
    wait_caught_up(&node).await;
    let metrics = node.shared.metrics.render();
    node.shutdown().await.unwrap();
    (dir, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_agent_restarts_from_its_snapshot_and_decides_the_same() {
    let lines = events(future_base(), 600);
    let (specs, left) = flaky_specs("ev-450", 1);
    let (dir, metrics) = run_with(
        specs,
        &lines,
        &[("snapshot_every", "40"), ("snapshot_min_interval_ms", "0")],
    )
    .await;
    assert_eq!(left.load(Ordering::SeqCst), 0, "the panic was injected");
    assert!(
        metrics.contains("faultline_agent_restarts_total{agent=\"breaker\"} 1"),
        "{metrics}"
    );
    check_log(&log_records(dir.path()), &lines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_keeps_crashing_an_agent_is_parked_and_the_node_goes_on() {
    let lines = events(future_base(), 120);
    let (specs, _) = flaky_specs("ev-60", u32::MAX);
    let (dir, metrics) = run_with(
        specs,
        &lines,
        &[("crash_limit", "3"), ("restart_limit", "5")],
    )
    .await;
    assert!(
        metrics.contains("faultline_records_parked_total{agent=\"breaker\"} 1"),
        "{metrics}"
    );
    let dead = SledLog::open(dir.path(), Durability::Buffered)
        .unwrap()
        .dead_letters()
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "agent_crash");
    assert!(
        dead[0].message.contains("crashed agent breaker 3 times"),
        "{}",
        dead[0].message
    );
    // The breaker went on past the parked record: it decided on later input.
    let later = log_records(dir.path())
        .iter()
        .filter(|(_, e)| e.source == "faultline/breaker")
        .filter_map(|(_, e)| {
            e.causeid
                .as_deref()?
                .strip_prefix("ev-")?
                .parse::<u32>()
                .ok()
        })
        .filter(|n| *n > 60)
        .count();
    assert!(
        later > 0,
        "no breaker decision on input after the parked ev-60"
    );
}

#[test]
fn kill_9_twenty_times_while_publishing_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, support::stream::POLICY).unwrap();
    let port = support::nats::free_port();
    let lines = events(future_base(), 1200);
    let args: Vec<String> = vec![
        "--data".into(),
        data.display().to_string(),
        "--config".into(),
        policy.display().to_string(),
        "--set".into(),
        "max_ahead_s=7200".into(),
        "--set".into(),
        "snapshot_every=97".into(),
        // Every 97 records, however fast they come: crashes land between snapshots.
        "--set".into(),
        "snapshot_min_interval_ms=0".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = dir.path().join("node.log");
    let done = Arc::new(AtomicBool::new(false));
    let publisher = {
        let lines = lines.clone();
        let done = done.clone();
        let url = format!("http://127.0.0.1:{port}");
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .into();
            for chunk in lines.chunks(10) {
                let body = chunk.join("\n");
                loop {
                    let sent = agent
                        .post(format!("{url}/v1/events"))
                        .header("Content-Type", "application/x-ndjson")
                        .send(body.as_bytes());
                    match sent {
                        Ok(r) if r.status() == 200 => break,
                        _ => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
    let pause = Uniform::new(30u64, 330).unwrap();
    let mut kills = 0;
    while kills < 20 {
        let node = NodeProc::start_live(port, &args, &log);
        std::thread::sleep(Duration::from_millis(pause.sample(&mut rng)));
        node.kill9();
        kills += 1;
    }
    let mut node = NodeProc::start_live(port, &args, &log);
    publisher.join().unwrap();
    assert!(done.load(Ordering::SeqCst));
    node.wait_idle(Duration::from_secs(60));
    assert!(
        node.terminate(Duration::from_secs(10)),
        "graceful stop within 10 s"
    );
    check_log(&log_records(&data), &lines);
}
