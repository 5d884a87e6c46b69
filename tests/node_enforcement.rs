//! What enforcers and on-call see of a running node: current state over HTTP
//! (`/v1/state/<agent>/<service>`), the bearer token on `/v1/*`, and hub
//! escalations forwarded to an Alertmanager-style webhook that fails once
//! (retried) and is re-sent while the escalation is active.

// Integration tests around real listeners: deadlines need the clock.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faultline::config::Config;
use faultline::node::settings::{NodeSettings, RawNode};
use faultline::node::{agent_specs, Node};

const SCENARIO: &str = "tests/scenarios/hub/05_critical_incident_escalates_exactly_once";

fn settings(dir: &Path, extra: &[(&str, &str)]) -> NodeSettings {
    let mut raw = RawNode::default();
    let mut p = faultline::config::Problems::default();
    raw.set("data", &dir.display().to_string(), "test", &mut p);
    raw.set("http", "127.0.0.1:0", "test", &mut p);
    for (k, v) in extra {
        raw.set(k, v, "test", &mut p);
    }
    assert!(p.list().is_empty(), "{:?}", p.list());
    NodeSettings::from_layers(&raw, &[], &RawNode::default()).unwrap()
}

/// A webhook receiver: answers 500 to the first post, 200 after; keeps
/// every body it was sent (with the status it answered).
/// Posts the receiver got: the status it answered and the body.
type Posts = Arc<Mutex<Vec<(u16, serde_json::Value)>>>;

fn receiver() -> (String, Posts) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let mut length = 0;
            let mut path = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if path.is_empty() {
                    path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
                line.clear();
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut got = keep.lock().unwrap();
            let status = if got.is_empty() { 500 } else { 200 };
            assert_eq!(path, "/api/v2/alerts");
            got.push((status, serde_json::from_slice(&body).unwrap()));
            drop(got);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

fn get(url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut r = req.call().unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    (r.status().as_u16(), serde_json::from_str(&text).unwrap())
}

fn post(url: &str, token: Option<&str>, body: Vec<u8>) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent
        .post(format!("{url}/v1/events"))
        .header("Content-Type", "application/x-ndjson");
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    req.send(&body[..]).unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_queryable_behind_the_token_and_escalations_reach_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, got) = receiver();
    let config = Config::load(&Path::new(SCENARIO).join("config.toml")).unwrap();
    let node = Node::start(
        settings(
            dir.path(),
            &[
                ("http_token", "s3cret"),
                ("alert_webhook", &hook),
                ("alert_repeat_s", "1"),
            ],
        ),
        config.clone(),
        agent_specs(&config),
    )
    .await
    .unwrap();
    let base = format!("http://{}", node.http_addr);
    let input = std::fs::read(Path::new(SCENARIO).join("input.jsonl")).unwrap();

    let (b, i) = (base.clone(), input.clone());
    let statuses = tokio::task::spawn_blocking(move || {
        [
            post(&b, None, i.clone()),
            post(&b, Some("wrong"), i.clone()),
            post(&b, Some("s3cret"), i),
        ]
    })
    .await
    .unwrap();
    assert_eq!(
        statuses,
        [401, 401, 200],
        "no token, wrong token, right token"
    );

    // The breaker opened on pay: its state says so, for anyone holding the token.
    let b = base.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    let open = loop {
        let b = b.clone();
        let (status, v) = tokio::task::spawn_blocking(move || {
            get(&format!("{b}/v1/state/breaker/pay"), Some("s3cret"))
        })
        .await
        .unwrap();
        if status == 200 && v["state"]["service"]["state"] != "closed" {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "breaker state never left closed: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(open["agent"], "breaker");
    assert_eq!(open["service"], "pay");
    assert!(open["applied_seq"].as_u64().unwrap() >= 2, "{open}");
    let b = base.clone();
    let answers = tokio::task::spawn_blocking(move || {
        [
            get(&format!("{b}/v1/state/breaker/pay"), None),
            get(&format!("{b}/v1/state/router/pay"), Some("s3cret")),
            get(&format!("{b}/v1/state/breaker/ghost"), Some("s3cret")),
            get(&format!("{b}/v1/state/hub"), Some("s3cret")),
        ]
    })
    .await
    .unwrap();
    assert_eq!(answers[0].0, 401);
    assert_eq!(answers[1].0, 404);
    assert!(
        answers[1].1["error"]
            .as_str()
            .unwrap()
            .contains("running: breaker, hub"),
        "{}",
        answers[1].1
    );
    assert_eq!(answers[2].0, 404);
    assert!(answers[2].1["error"].as_str().unwrap().contains("ghost"));
    assert_eq!(answers[3].0, 200);
    assert!(answers[3].1["state"]["incidents"].is_array());

    // The escalation: refused once (500), retried, then re-sent while active
    // (or sent again as resolved).
    let deadline = Instant::now() + Duration::from_secs(20);
    let posts = loop {
        let posts = got.lock().unwrap().clone();
        let delivered_twice = posts.iter().filter(|(s, _)| *s == 200).count() >= 2;
        if delivered_twice {
            break posts;
        }
        assert!(Instant::now() < deadline, "webhook got {posts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(posts[0].0, 500);
    assert_eq!(
        posts[1].1, posts[0].1,
        "the failed post is retried as it was"
    );
    let first = &posts[0].1[0];
    assert_eq!(first["labels"]["alertname"], "FaultlineEscalation");
    assert_eq!(first["labels"]["service"], "pay");
    assert_eq!(first["labels"]["severity"], "critical");
    assert!(first["labels"]["incident"]
        .as_str()
        .unwrap()
        .starts_with("inc-"));
    assert_eq!(first["annotations"]["triggers"], "critical");
    assert!(first["startsAt"]
        .as_str()
        .unwrap()
        .starts_with("2026-01-01T00:00:0"));
    assert!(first["endsAt"].is_string() && first["generatorURL"].is_string());
    let later = &posts.last().unwrap().1;
    assert!(
        later
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["labels"]["incident"] == first["labels"]["incident"]),
        "the escalation is sent again: {later}"
    );
    node.shutdown().await.unwrap();
}
