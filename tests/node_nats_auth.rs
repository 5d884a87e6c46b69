//! The subject permissions in `deploy/nats/faultline-permissions.conf`,
//! checked against a real nats-server that includes exactly that file: a
//! node with the node user runs (streams, bucket, consumers, decisions, state
//! replies); a publisher may publish observations but neither decisions nor
//! commands; an enforcer reads decisions and asks for state but cannot
//! publish into the log; a wrong password is refused.

// Integration tests around real processes: deadlines need the clock.
#![allow(clippy::disallowed_methods)]

mod support {
    pub mod nats;
    pub mod node;
    pub mod plain;
    pub mod stream;
}

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use support::nats::NatsServer;
use support::node::start_policy_node;
use support::plain::publish;
use support::stream::{events, future_base, offline};

const PASSWORDS: [(&str, &str); 4] = [
    ("FAULTLINE_NODE_PASSWORD", "node-pw"),
    ("FAULTLINE_PUBLISHER_PASSWORD", "pub-pw"),
    ("FAULTLINE_OPERATOR_PASSWORD", "op-pw"),
    ("FAULTLINE_ENFORCER_PASSWORD", "enf-pw"),
];

async fn connect(url: &str, user: &str, password: &str) -> Result<async_nats::Client, String> {
    async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
        .request_timeout(Some(Duration::from_secs(2)))
        .connect(url)
        .await
        .map_err(|e| e.to_string())
}

#[test]
fn deploy_permissions_let_each_role_do_its_job_and_no_more() {
    let nats = NatsServer::start_with(
        Some(Path::new("deploy/nats/faultline-permissions.conf")),
        &PASSWORDS,
    );
    let dir = tempfile::tempdir().unwrap();
    let url = nats.url();
    let node = start_policy_node(
        dir.path(),
        &["--nats", &url],
        &[
            "--set",
            "nats_user=faultline-node",
            "--set",
            "nats_password=node-pw",
        ],
    );
    let log = dir.path().join("node.log");
    let lines = events(future_base(), 200);
    let expected = offline(&lines);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert!(
            connect(&url, "publisher", "wrong").await.is_err(),
            "a wrong password is refused"
        );
        let enforcer = connect(&url, "enforcer", "enf-pw").await.unwrap();
        let mut out = enforcer.subscribe("faultline.out.>").await.unwrap();
        enforcer.flush().await.unwrap();

        let publisher = connect(&url, "publisher", "pub-pw").await.unwrap();
        let mut js = jetstream::new(publisher.clone());
        js.set_timeout(Duration::from_secs(2));
        let op_js = jetstream::new(connect(&url, "operator", "op-pw").await.unwrap());
        for (i, line) in lines.iter().enumerate() {
            if i % 10 == 5 {
                // Commands are for operators.
                if i == 5 {
                    assert!(publish(&js, "ev-5", line).await.is_err());
                }
                publish(&op_js, &format!("ev-{i}"), line).await.unwrap();
                continue;
            }
            publish(&js, &format!("ev-{i}"), line).await.unwrap();
        }
        // A publisher cannot forge a decision.
        let forged = lines[0].replace("faultline.request", "faultline.breaker");
        let forged_subject = "faultline.out.breaker.pay".to_owned();
        let sent = js.publish(forged_subject, forged.into()).await;
        let acked = match sent {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        assert!(
            !acked,
            "a publisher's decision is not taken into the stream"
        );

        let mut received = 0;
        while received < expected.len() {
            tokio::time::timeout(Duration::from_secs(30), out.next())
                .await
                .expect("the enforcer receives every decision")
                .unwrap();
            received += 1;
        }
        let reply = enforcer
            .request("faultline.state.breaker.pay", "".into())
            .await
            .expect("the enforcer may ask for state");
        let state: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
        assert!(state["state"]["service"]["state"].is_string(), "{state}");
        // ... but not write into the log.
        let enf_js = jetstream::new(enforcer.clone());
        assert!(publish(&enf_js, "enf-1", &lines[0]).await.is_err());
    });
    assert!(node.terminate(Duration::from_secs(10)));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.to_lowercase().contains("permission"),
        "the node needs no subject the file withholds:\n{text}"
    );
}
