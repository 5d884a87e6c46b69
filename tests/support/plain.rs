//! Publishing the way any service would: a plain NATS client, JSON bodies,
//! `Nats-Msg-Id` for dedupe, no faultline code.

#![allow(dead_code)]

use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;

/// Publishes one JSON line the way any service would: plain NATS, no faultline code.
pub async fn publish(js: &jetstream::Context, id: &str, line: &str) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    let kind = v["type"]
        .as_str()
        .and_then(|t| t.strip_prefix("faultline."))
        .unwrap_or("request");
    let subject = format!(
        "faultline.in.{}.{kind}",
        v["subject"].as_str().unwrap_or("unknown")
    );
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
    let ack = js
        .publish_with_headers(subject, headers, Bytes::from(line.to_owned()))
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(5), ack)
        .await
        .map_err(|_| "ack timeout".to_owned())?
        .map_err(|e| e.to_string())?;
    Ok(())
}
