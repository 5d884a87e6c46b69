//! The operator tools against real nodes, through the binary as people run
//! them: `faultline publish` sends a file (and a second time, every event
//! is a duplicate), `faultline tail` prints exactly the decisions
//! `faultline process` makes for that file, `faultline load` publishes a
//! bounded profile. Once against an embedded node over HTTP, once against a
//! JetStream node.

// Integration tests around real processes: deadlines need the clock.
#![allow(clippy::disallowed_methods)]

mod support {
    pub mod nats;
    pub mod node;
    pub mod stream;
}

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use faultline::events::{Codec, Event};
use support::nats::NatsServer;
use support::node::start_policy_node;
use support::stream::{events, future_base, offline, per_input};

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("faultline runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `faultline tail` process, read while it runs (its output can exceed a
/// pipe's buffer) and given a deadline, so a broken tail fails the test
/// instead of hanging it.
struct Tail {
    child: Child,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Tail {
    /// Starts `faultline <args>`; returns once it says it is following.
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            out.read_to_string(&mut s).unwrap();
            s
        });
        let err = BufReader::new(child.stderr.take().unwrap());
        let (following, told) = mpsc::channel();
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in err.lines().map_while(Result::ok) {
                if line.starts_with("tail: following") {
                    let _ = following.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let mut t = Self {
            child,
            stdout,
            stderr,
        };
        if told.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = t.child.kill();
            panic!("tail did not start following: {}", t.stderr.join().unwrap());
        }
        t
    }

    /// Waits (at most 60 s) for it to exit after `--count` decisions; its stdout.
    fn finish(mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "tail still running after 60 s: {}",
                    self.stderr.join().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "tail: {}", self.stderr.join().unwrap());
        self.stdout.join().unwrap()
    }
}

/// Publishes the stream twice and tails its decisions; checks all three.
fn publish_and_tail(target: &[&str], dir: &Path, tail_first: bool) {
    let lines = events(future_base(), 600);
    let file = dir.join("events.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let expected = offline(&lines);
    let count = expected.len().to_string();
    let mut tail_args = vec!["tail", "--json", "--count", &count];
    tail_args.extend_from_slice(target);
    if !tail_first {
        tail_args.extend_from_slice(&["--after", "0"]);
    }
    // JetStream tails live: publishing starts once it says it is following.
    let tail = Tail::spawn(&tail_args);

    let mut publish = vec!["publish", "--input", file.to_str().unwrap()];
    publish.extend_from_slice(target);
    let first = faultline(&publish);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stderr).contains("600 accepted, 0 duplicates, 0 rejected"),
        "{}",
        text(&first.stderr)
    );
    let again = faultline(&publish);
    assert!(
        text(&again.stderr).contains("0 accepted, 600 duplicates"),
        "{}",
        text(&again.stderr)
    );

    let tailed: Vec<Event> = tail
        .finish()
        .lines()
        .map(|l| Codec::Json.decode(l.as_bytes()).unwrap())
        .collect();
    let ids: HashSet<String> = (0..lines.len()).map(|i| format!("ev-{i}")).collect();
    assert_eq!(per_input(&tailed, &ids), per_input(&expected, &ids));

    let mut filtered = vec![
        "tail",
        "--agent",
        "breaker",
        "--service",
        "pay",
        "--count",
        "1",
    ];
    filtered.extend_from_slice(target);
    if !tail_first {
        filtered.extend_from_slice(&["--after", "0"]);
        let line = Tail::spawn(&filtered).finish();
        assert!(
            line.contains(" breaker ") && line.contains(" pay ") && line.contains("-> open"),
            "{line}"
        );
    }

    let mut load = vec![
        "load",
        "--profile",
        "minimal",
        "--duration",
        "2",
        "--max-events",
        "10",
    ];
    load.extend_from_slice(target);
    let l = faultline(&load);
    assert!(l.status.success(), "{}", text(&l.stderr));
    assert!(
        text(&l.stderr).contains("sent 10 events") && text(&l.stderr).contains("10 accepted"),
        "{}",
        text(&l.stderr)
    );
}

#[test]
fn tools_against_an_embedded_node_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let node = start_policy_node(
        dir.path(),
        &["--data", data.to_str().unwrap()],
        &["--set", "http_token=t0ken"],
    );
    let url = node.http.clone();
    let one = dir.path().join("one.jsonl");
    std::fs::write(&one, &events(future_base(), 1)[0]).unwrap();
    let one = one.to_str().unwrap();
    let denied = faultline(&["publish", "--input", one, "--http", &url, "--token", "nope"]);
    assert!(!denied.status.success());
    assert!(
        text(&denied.stderr).contains("401"),
        "{}",
        text(&denied.stderr)
    );
    publish_and_tail(&["--http", &url, "--token", "t0ken"], dir.path(), false);
    assert!(node.terminate(Duration::from_secs(10)));
}

#[test]
fn tools_against_a_jetstream_node() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = nats.url();
    let node = start_policy_node(dir.path(), &["--nats", &url], &[]);
    publish_and_tail(&["--nats", &url], dir.path(), true);
    // A JetStream node takes HTTP ingest too: the events land in the stream.
    let extra = dir.path().join("extra.jsonl");
    let line = events(future_base(), 1)[0].replace("\"ev-0\"", "\"http-0\"");
    std::fs::write(&extra, line).unwrap();
    let http = node.http.clone();
    let out = faultline(&[
        "publish",
        "--input",
        extra.to_str().unwrap(),
        "--http",
        &http,
    ]);
    assert!(
        text(&out.stderr).contains("1 accepted"),
        "{}",
        text(&out.stderr)
    );
    assert!(node.terminate(Duration::from_secs(10)));
}
