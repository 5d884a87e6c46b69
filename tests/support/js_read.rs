//! Reading a JetStream stream back in a test: an ordered consumer from the
//! start, every record decoded as the node decodes it.

#![allow(dead_code)]

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use faultline::events::Event;
use faultline::log::Seq;
use faultline::node::jetstream::{decode, RawMsg};
use futures_util::StreamExt;

/// Reads a stream from its start with an ordered consumer; `next` waits up to 10 s.
pub struct InOrder(consumer::pull::Ordered);

impl InOrder {
    pub async fn open(stream: &jetstream::stream::Stream) -> Self {
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig::default())
            .await
            .unwrap();
        Self(consumer.messages().await.unwrap())
    }

    pub async fn next(&mut self) -> jetstream::Message {
        tokio::time::timeout(Duration::from_secs(10), self.0.next())
            .await
            .expect("a message within 10 s")
            .unwrap()
            .unwrap()
    }
}

/// Every record of the stream, decoded (invalid input left out, as agents skip it).
pub async fn read_stream(url: &str, name: &str) -> Vec<(Seq, Event)> {
    let client = async_nats::connect(url).await.unwrap();
    let js = jetstream::new(client);
    let stream = js.get_stream(name).await.unwrap();
    let last = stream.cached_info().state.last_sequence;
    let mut msgs = InOrder::open(&stream).await;
    let mut out = Vec::new();
    let mut seq = 0;
    while seq < last {
        let m = msgs.next().await;
        seq = m.info().unwrap().stream_sequence;
        let m = m.message;
        let raw = RawMsg {
            seq,
            subject: m.subject.to_string(),
            headers: m.headers,
            payload: m.payload,
        };
        if let Ok(e) = decode("faultline", &raw) {
            out.push((seq, e));
        }
    }
    out
}
