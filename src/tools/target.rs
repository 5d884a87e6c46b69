//! Where tools send and read: JetStream or a node's HTTP API.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use async_nats::jetstream;
use bytes::Bytes;

use crate::events::subject::input_subject;
use crate::events::{Codec, Event};
use crate::node::settings::{NodeSettings, RawNode};

/// How to reach the node (from `--nats`/`--http`).
#[derive(Clone, Debug)]
pub enum Target {
    /// JetStream at this URL, under this subject prefix.
    Nats {
        /// Server URL.
        url: String,
        /// Subject prefix (`faultline`).
        prefix: String,
    },
    /// A node's HTTP base URL (`http://127.0.0.1:7070`) and bearer token.
    Http {
        /// Base URL.
        url: String,
        /// Bearer token, if the node requires one.
        token: Option<String>,
    },
}

impl Target {
    /// From the command line: exactly one of `nats` and `http`.
    pub fn from_flags(
        nats: Option<String>,
        http: Option<String>,
        prefix: String,
        token: Option<String>,
    ) -> Result<Self> {
        let token = token.or_else(|| std::env::var("FAULTLINE_HTTP_TOKEN").ok());
        match (nats, http) {
            (Some(url), None) => Ok(Self::Nats { url, prefix }),
            (None, Some(url)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    bail!("--http {url:?}: expected a URL like http://127.0.0.1:7070");
                }
                Ok(Self::Http {
                    url: url.trim_end_matches('/').to_owned(),
                    token,
                })
            }
            (Some(_), Some(_)) => bail!("give one of --nats and --http, not both"),
            (None, None) => bail!(
                "say where the node is: --nats nats://HOST:4222 (JetStream) or --http http://HOST:7070 (embedded)"
            ),
        }
    }

    /// Opens a sender.
    pub async fn sender(&self) -> Result<Sender> {
        match self {
            Self::Nats { url, prefix } => {
                let client = nats_connect(url).await?;
                Ok(Sender::Nats {
                    js: jetstream::new(client),
                    prefix: prefix.clone(),
                })
            }
            Self::Http { url, token } => Ok(Sender::Http {
                agent: http_agent(),
                url: format!("{url}/v1/events"),
                token: token.clone(),
            }),
        }
    }
}

/// A NATS connection with the node's credential settings
/// (`FAULTLINE_NATS_USER`, `_PASSWORD`, `_TOKEN`, `_NKEY`, `_CREDS`, `_TLS_*`).
pub async fn nats_connect(url: &str) -> Result<async_nats::Client> {
    let mut raw = RawNode::default();
    let mut problems = crate::config::Problems::default();
    raw.set("nats_url", url, "--nats", &mut problems);
    let env: Vec<(String, String)> = std::env::vars().collect();
    let settings =
        NodeSettings::from_layers(&RawNode::default(), &env, &raw).map_err(|e| anyhow!("{e}"))?;
    let options = crate::node::jetstream::connect_options(&settings)
        .await
        .map_err(|e| anyhow!("{e}"))?
        .connection_timeout(Duration::from_secs(10));
    options
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to NATS at {url}"))
}

/// A blocking HTTP agent that returns error statuses as answers.
pub fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// What the node said about a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Taken into the log.
    pub accepted: u64,
    /// Already in the log (same id).
    pub duplicates: u64,
    /// Refused: (index in the batch, reason).
    pub rejected: Vec<(usize, String)>,
}

impl Outcome {
    /// Adds `other`'s counts, shifting its indices by `offset`.
    pub fn absorb(&mut self, other: Outcome, offset: usize) {
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        (self.rejected).extend(other.rejected.into_iter().map(|(i, r)| (i + offset, r)));
    }
}

/// Sends batches of validated events.
pub enum Sender {
    /// JetStream publishes with `Nats-Msg-Id`, acknowledged.
    Nats {
        /// The context.
        js: jetstream::Context,
        /// Subject prefix.
        prefix: String,
    },
    /// HTTP ingest.
    Http {
        /// The agent.
        agent: ureq::Agent,
        /// `<base>/v1/events`.
        url: String,
        /// Bearer token.
        token: Option<String>,
    },
}

impl Sender {
    /// Sends `events` (JSON bodies); returns once the node has them durable.
    pub async fn send(&self, events: &[Event]) -> Result<Outcome> {
        match self {
            Self::Nats { js, prefix } => {
                let mut acks = Vec::with_capacity(events.len());
                for e in events {
                    let subject = input_subject(prefix, &e.subject, e.event_type().kind());
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert(async_nats::header::NATS_MESSAGE_ID, e.id.as_str());
                    let body = Bytes::from(Codec::Json.encode(e));
                    let ack = js
                        .publish_with_headers(subject.clone(), headers, body)
                        .await
                        .with_context(|| format!("publishing {} to {subject}", e.id))?;
                    acks.push((e.id.as_str(), ack));
                }
                let mut out = Outcome::default();
                for (id, ack) in acks {
                    let ack = ack
                        .await
                        .with_context(|| format!("no acknowledgement for {id} (is the FAULTLINE stream there? is a node running?)"))?;
                    if ack.duplicate {
                        out.duplicates += 1;
                    } else {
                        out.accepted += 1;
                    }
                }
                Ok(out)
            }
            Self::Http { agent, url, token } => {
                let mut body = Vec::new();
                for e in events {
                    body.extend_from_slice(&Codec::Json.encode(e));
                    body.push(b'\n');
                }
                let (agent, url, token) = (agent.clone(), url.clone(), token.clone());
                tokio::task::spawn_blocking(move || {
                    post_lines(&agent, &url, token.as_deref(), &body)
                })
                .await
                .map_err(|e| anyhow!("{e}"))?
            }
        }
    }
}

fn post_lines(agent: &ureq::Agent, url: &str, token: Option<&str>, body: &[u8]) -> Result<Outcome> {
    let mut req = agent
        .post(url)
        .header("Content-Type", "application/x-ndjson");
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut r = req.send(body).with_context(|| format!("POST {url}"))?;
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if status != 200 && status != 400 {
        bail!(
            "POST {url}: HTTP {status}: {}",
            v["error"].as_str().unwrap_or(&text)
        );
    }
    let count = |k: &str| v[k].as_u64().unwrap_or(0);
    let rejected = (v["results"].as_array().into_iter().flatten())
        .filter(|r| r["status"] == "rejected")
        .map(|r| {
            (
                r["index"].as_u64().unwrap_or(0) as usize,
                r["error"].as_str().unwrap_or("rejected").to_owned(),
            )
        })
        .collect();
    Ok(Outcome {
        accepted: count("accepted"),
        duplicates: count("duplicates"),
        rejected,
    })
}
