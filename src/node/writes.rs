//! Decisions written behind the fold: sent at once, confirmed in order.
//!
//! An agent that waited for the log to acknowledge one batch's decisions
//! before applying the next put a server round trip between its batches
//! whenever it decided something. Under load that wait (p99 2–23 ms in
//! `benches/node.rs` on a shared two-core machine) was the largest part of
//! publish-to-decision latency the node itself controls, and while catching
//! up on a backlog it idled the agent once per deciding batch. An agent now
//! hands its decisions to the log and goes on folding; acknowledgements are
//! collected in the order the writes were sent, as they arrive.
//!
//! What keeps this safe:
//!
//! - **Snapshots wait for their writes.** A snapshot records [`Writes::sent`]
//!   when it is taken and is stored only once [`Writes::confirmed`] reaches
//!   it: every decision caused by a record the snapshot covers is durable
//!   first, which the exactly-once check after a crash relies on.
//! - **A failed write is sent again before anything after it is confirmed**,
//!   with backoff, its decisions kept in memory; the agent stops folding
//!   until it is durable (a log that refuses writes delays decisions, it
//!   does not lose them).
//! - **Bounded**: at most [`LIMIT`] decisions are in flight; a write that
//!   would pass it first waits for the oldest (one larger than the limit
//!   goes alone).
//!
//! A write sent again lands after later ones the server already stored.
//! That is allowed: the log is the truth, every agent (live and on replay)
//! applies decisions where the log put them, and decision ids do not depend
//! on position.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::NodeError;
use crate::events::Event;

/// Decisions in flight before the next write waits for the oldest.
pub const LIMIT: usize = 1024;

/// The acknowledgement of one write, still to come: it resolves once the
/// write's records are durable.
pub struct Ack(BoxFuture<'static, Result<(), NodeError>>);

impl Ack {
    /// Resolves when `durable` does.
    pub fn new(durable: impl Future<Output = Result<(), NodeError>> + Send + 'static) -> Self {
        Self(durable.boxed())
    }

    /// Already known.
    pub fn ready(outcome: Result<(), NodeError>) -> Self {
        Self::new(futures_util::future::ready(outcome))
    }
}

/// Where writes go: the live log ([`super::backend::Backend`]).
pub trait Sink {
    /// Hands `records` to the log, in order, without waiting for them to be
    /// durable: the [`Ack`] says when they are.
    fn send(&self, records: &[Event]) -> impl Future<Output = Ack> + Send;
}

/// One write not yet confirmed.
struct InFlight {
    records: Vec<Event>,
    ack: Ack,
}

/// One agent's writes in flight, oldest first.
pub struct Writes {
    agent: &'static str,
    queue: VecDeque<InFlight>,
    sent: u64,
    confirmed: u64,
}

impl Writes {
    /// No writes yet, for `agent` (named in warnings).
    pub fn new(agent: &'static str) -> Self {
        Self {
            agent,
            queue: VecDeque::new(),
            sent: 0,
            confirmed: 0,
        }
    }

    /// Writes sent so far (empty ones are not writes).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Writes confirmed durable so far; the first `confirmed` sent.
    pub fn confirmed(&self) -> u64 {
        self.confirmed
    }

    /// Decisions sent and not yet confirmed.
    fn in_flight(&self) -> usize {
        self.queue.iter().map(|w| w.records.len()).sum()
    }

    /// Sends `records` (nothing when empty), first waiting for the oldest
    /// writes while they would take the decisions in flight past
    /// [`LIMIT`]. `durable` is called for each record once it is confirmed,
    /// in the order records were sent.
    pub async fn send(
        &mut self,
        sink: &impl Sink,
        records: Vec<Event>,
        durable: &mut impl FnMut(&Event),
    ) {
        if records.is_empty() {
            return;
        }
        while !self.queue.is_empty() && self.in_flight() + records.len() > LIMIT {
            self.confirm_oldest(sink, durable).await;
        }
        let ack = sink.send(&records).await;
        self.queue.push_back(InFlight { records, ack });
        self.sent += 1;
    }

    /// Confirms, oldest first, the writes already acknowledged; stops at the
    /// first still waiting. Waits only to send a failed write again.
    pub async fn settle(&mut self, sink: &impl Sink, durable: &mut impl FnMut(&Event)) {
        while let Some(oldest) = self.queue.front_mut() {
            match (&mut oldest.ack.0).now_or_never() {
                None => return,
                Some(Ok(())) => self.pop(durable),
                Some(Err(e)) => self.resend_oldest(sink, e, durable).await,
            }
        }
    }

    /// Waits until every write sent is durable.
    pub async fn drain(&mut self, sink: &impl Sink, durable: &mut impl FnMut(&Event)) {
        while !self.queue.is_empty() {
            self.confirm_oldest(sink, durable).await;
        }
    }

    async fn confirm_oldest(&mut self, sink: &impl Sink, durable: &mut impl FnMut(&Event)) {
        let Some(oldest) = self.queue.front_mut() else {
            return;
        };
        match (&mut oldest.ack.0).await {
            Ok(()) => self.pop(durable),
            Err(e) => self.resend_oldest(sink, e, durable).await,
        }
    }

    /// Sends the oldest write again, with backoff, until it is durable.
    async fn resend_oldest(
        &mut self,
        sink: &impl Sink,
        mut error: NodeError,
        durable: &mut impl FnMut(&Event),
    ) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let oldest = self
                .queue
                .front_mut()
                .expect("a failed write is in the queue");
            tracing::warn!(
                agent = self.agent,
                decisions = oldest.records.len(),
                error = %error,
                "writing decisions failed; retrying"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            oldest.ack = sink.send(&oldest.records).await;
            match (&mut oldest.ack.0).await {
                Ok(()) => return self.pop(durable),
                Err(e) => error = e,
            }
        }
    }

    fn pop(&mut self, durable: &mut impl FnMut(&Event)) {
        let done = self.queue.pop_front().expect("the oldest write");
        self.confirmed += 1;
        done.records.iter().for_each(durable);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::sync::oneshot;

    use super::*;
    use crate::events::observation::Tick;
    use crate::events::{Data, Timestamp};

    /// One write the fake sink was given, and how the test answers it.
    struct Sent {
        ids: Vec<String>,
        outcome: Option<oneshot::Sender<Result<(), NodeError>>>,
    }

    /// A sink whose writes are acknowledged (or failed) by the test.
    #[derive(Clone, Default)]
    struct Fake {
        sends: Arc<Mutex<Vec<Sent>>>,
    }

    impl Fake {
        fn ids(&self) -> Vec<Vec<String>> {
            let sends = self.sends.lock().unwrap();
            sends.iter().map(|s| s.ids.clone()).collect()
        }

        /// Settles the `n`th send (from 0).
        fn answer(&self, n: usize, outcome: Result<(), NodeError>) {
            let tx = self.sends.lock().unwrap()[n].outcome.take();
            tx.expect("answered once").send(outcome).unwrap();
        }

        async fn wait_for_sends(&self, n: usize) {
            while self.sends.lock().unwrap().len() < n {
                tokio::task::yield_now().await;
            }
        }
    }

    impl Sink for Fake {
        async fn send(&self, records: &[Event]) -> Ack {
            let (tx, rx) = oneshot::channel();
            let ids = records.iter().map(|r| r.id.clone()).collect();
            let outcome = Some(tx);
            self.sends.lock().unwrap().push(Sent { ids, outcome });
            Ack::new(async move { rx.await.expect("the test answers every send") })
        }
    }

    fn lost() -> NodeError {
        NodeError::Nats {
            what: "awaiting a publish ack".into(),
            message: "timed out".into(),
        }
    }

    fn write(ids: &[&str]) -> Vec<Event> {
        ids.iter()
            .map(|id| Event {
                id: (*id).to_owned(),
                source: "faultline/breaker".to_owned(),
                subject: "svc".to_owned(),
                time: Timestamp::from_nanos(0),
                datacontenttype: None,
                causeseq: None,
                causeid: None,
                data: Data::Tick(Tick {}),
            })
            .collect()
    }

    #[tokio::test]
    async fn acknowledgements_are_confirmed_in_the_order_writes_were_sent() {
        let sink = Fake::default();
        let mut writes = Writes::new("breaker");
        let mut confirmed = Vec::new();
        let mut count = |e: &Event| confirmed.push(e.id.clone());
        writes.send(&sink, write(&["a1", "a2"]), &mut count).await;
        writes.send(&sink, Vec::new(), &mut count).await;
        writes.send(&sink, write(&["b"]), &mut count).await;
        writes.send(&sink, write(&["c"]), &mut count).await;
        assert_eq!(writes.sent(), 3, "an empty write is not a write");
        // The later two are acknowledged first: nothing is confirmed past
        // the oldest, which still waits.
        sink.answer(2, Ok(()));
        sink.answer(1, Ok(()));
        writes.settle(&sink, &mut count).await;
        assert_eq!(writes.confirmed(), 0);
        sink.answer(0, Ok(()));
        writes.settle(&sink, &mut count).await;
        assert_eq!(writes.confirmed(), 3);
        assert_eq!(confirmed, ["a1", "a2", "b", "c"]);
    }

    #[tokio::test]
    async fn a_failed_write_is_sent_again_before_later_ones_are_confirmed() {
        let sink = Fake::default();
        let mut writes = Writes::new("breaker");
        let mut confirmed = Vec::new();
        let mut count = |e: &Event| confirmed.push(e.id.clone());
        writes.send(&sink, write(&["a"]), &mut count).await;
        writes.send(&sink, write(&["b"]), &mut count).await;
        sink.answer(1, Ok(()));
        sink.answer(0, Err(lost()));
        let server = async {
            sink.wait_for_sends(3).await;
            sink.answer(2, Err(lost()));
            sink.wait_for_sends(4).await;
            sink.answer(3, Ok(()));
        };
        tokio::join!(writes.settle(&sink, &mut count), server);
        assert_eq!(
            sink.ids(),
            [["a"], ["b"], ["a"], ["a"]],
            "sent again until durable"
        );
        assert_eq!(writes.confirmed(), 2);
        assert_eq!(confirmed, ["a", "b"]);
    }

    #[tokio::test]
    async fn a_write_that_would_pass_the_limit_waits_for_the_oldest() {
        let sink = Fake::default();
        let mut writes = Writes::new("breaker");
        let mut count = |_: &Event| {};
        let ids: Vec<String> = (0..LIMIT - 1).map(|i| i.to_string()).collect();
        let many: Vec<&str> = ids.iter().map(String::as_str).collect();
        writes.send(&sink, write(&many), &mut count).await;
        writes.send(&sink, write(&["fits"]), &mut count).await;
        let mut next = Box::pin(writes.send(&sink, write(&["past"]), &mut count));
        assert!(
            (&mut next).now_or_never().is_none(),
            "waits while {LIMIT} decisions are in flight"
        );
        sink.answer(0, Ok(()));
        next.await;
        assert_eq!((writes.sent(), writes.confirmed()), (3, 1));
        // Larger than the limit on its own: it goes once nothing else is in flight.
        let ids: Vec<String> = (0..LIMIT + 1).map(|i| format!("big-{i}")).collect();
        let big: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut huge = Box::pin(writes.send(&sink, write(&big), &mut count));
        assert!((&mut huge).now_or_never().is_none());
        sink.answer(1, Ok(()));
        sink.answer(2, Ok(()));
        huge.await;
        assert_eq!((writes.sent(), writes.confirmed()), (4, 3));
    }

    #[tokio::test]
    async fn drain_waits_for_every_write() {
        let sink = Fake::default();
        let mut writes = Writes::new("breaker");
        let mut count = |_: &Event| {};
        writes.send(&sink, write(&["a"]), &mut count).await;
        writes.send(&sink, write(&["b"]), &mut count).await;
        let server = async {
            tokio::task::yield_now().await;
            sink.answer(1, Ok(()));
            tokio::task::yield_now().await;
            sink.answer(0, Ok(()));
        };
        tokio::join!(writes.drain(&sink, &mut count), server);
        assert_eq!(writes.confirmed(), 2);
    }
}
