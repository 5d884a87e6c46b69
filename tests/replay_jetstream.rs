//! `faultline replay` and `faultline export` on the log a JetStream node
//! wrote, against a real nats-server started by the test: a plain NATS
//! client publishes (bad input included), the node is SIGKILLed halfway and
//! restarted, then stopped; replay of the stream reproduces every decision,
//! ranges select exactly the records a direct read of the stream says, and
//! a bundle cut from the stream replays to the same report.

// Integration tests around real processes: deadlines need the clock.
#![allow(clippy::disallowed_methods)]

mod support {
    pub mod js_read;
    pub mod nats;
    pub mod node;
    pub mod plain;
    pub mod replay;
    pub mod stream;
}

use std::time::Duration;

use async_nats::jetstream;
use support::js_read::read_stream;
use support::nats::NatsServer;
use support::node::start_policy_node;
use support::plain::publish;
use support::replay::{expect, ok, report};
use support::stream::{events, future_base, offline};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_jetstream_node_log_replays_exactly() {
    let nats = NatsServer::start();
    let url = nats.url();
    let dir = tempfile::tempdir().unwrap();
    let backend = ["--nats", url.as_str()];
    let extra = [
        "--set",
        "snapshot_every=97",
        "--set",
        "snapshot_min_interval_ms=0",
    ];
    let lines = events(future_base(), 600);
    let rt = runtime();
    let js = rt.block_on(async { jetstream::new(async_nats::connect(&url).await.unwrap()) });
    let send = |range: std::ops::Range<usize>| {
        rt.block_on(async {
            for i in range {
                if i == 100 {
                    publish(&js, "bad-json", "{not json").await.unwrap();
                }
                publish(&js, &format!("ev-{i}"), &lines[i]).await.unwrap();
            }
        })
    };

    // Half the stream, a crash, a restart from the snapshots, the rest.
    let node = start_policy_node(dir.path(), &backend, &extra);
    send(0..300);
    node.kill9();
    let mut node = start_policy_node(dir.path(), &backend, &extra);
    send(300..lines.len());
    node.wait_idle(Duration::from_secs(60));
    assert!(node.terminate(Duration::from_secs(10)), "graceful stop");

    let records = rt.block_on(read_stream(&url, "FAULTLINE"));
    let expected = offline(&lines).len() as u64;
    let (_, logged) = expect(&records, |_, _| true);
    assert!(expected > 20, "the stream makes decisions: {expected}");
    assert_eq!(logged, expected, "the node made what `process` makes");

    // The whole stream: every decision reproduced, the bad input counted.
    let r = report(&["--nats", &url]);
    assert_eq!(r["fidelity"]["logged"], expected);
    assert_eq!(r["fidelity"]["reproduced"], expected);
    assert_eq!(r["fidelity"]["new"], 0);
    assert_eq!(r["source"]["refused"], 1, "the bad input: {}", r["source"]);
    let source = r["source"]["description"].as_str().unwrap();
    assert!(source.contains("JetStream stream FAULTLINE"), "{source}");
    let breaker_opened = r["timeline"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["agent"] == "breaker" && e["service"] == "pay");
    assert!(breaker_opened, "pay's breaker decision is on the timeline");

    // A sequence range and a time range select what the stream holds there.
    let last = records.last().unwrap().0;
    let (from, to) = (last / 3, 2 * last / 3);
    let r = report(&[
        "--nats",
        &url,
        "--from",
        &from.to_string(),
        "--to",
        &to.to_string(),
    ]);
    let (n, d) = expect(&records, |s, e| {
        (from..=to).contains(&e.causeseq.unwrap_or(s))
    });
    assert_eq!(r["counts"]["selected"], n);
    assert_eq!(
        (&r["fidelity"]["logged"], &r["fidelity"]["reproduced"]),
        (&d.into(), &d.into())
    );
    assert!(d > 0, "the range holds decisions");

    let times: Vec<_> = records.iter().map(|(_, e)| e.time).collect();
    let (tf, tt) = (times[times.len() / 2], times[3 * times.len() / 4]);
    let r = report(&[
        "--nats",
        &url,
        "--from",
        &tf.to_string(),
        "--to",
        &tt.to_string(),
    ]);
    let (n, d) = expect(&records, |_, e| e.time >= tf && e.time <= tt);
    assert_eq!(r["counts"]["selected"], n);
    assert_eq!(r["fidelity"]["reproduced"], d);

    // A bundle cut from the stream replays to the same report.
    let bundle = dir.path().join("slice.bundle");
    let bundle_s = bundle.display().to_string();
    let range = ["--from", &tf.to_string(), "--to", &tt.to_string()];
    let mut args = vec!["export", "--nats", &url, "--out", &bundle_s];
    args.extend_from_slice(&range);
    ok(&args);
    let mut from_bundle = report(&["--bundle", &bundle_s]);
    let mut from_log = r;
    for r in [&mut from_bundle, &mut from_log] {
        r.as_object_mut().unwrap().remove("source");
    }
    assert_eq!(from_bundle, from_log);
}
