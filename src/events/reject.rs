//! Why an input was refused.
//!
//! Every rejection has a short machine token ([`Rejection::reason`]) that names
//! the dead-letter subject it goes to (`faultline.dlq.<reason>`) and the metric
//! it is counted under, and a message that names the offending field and value.

/// An input that will not enter the log.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// Bigger than the 64 KiB limit.
    #[error("event is {size} bytes, over the {limit}-byte limit; split it or send a window")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The content type is not one we decode.
    #[error("content type {content_type:?} is not supported; use application/cloudevents+json, application/json or application/msgpack")]
    UnsupportedContentType {
        /// What the publisher sent.
        content_type: String,
    },
    /// Not decodable as an event.
    #[error("{}", if path.is_empty() { message.clone() } else { format!("{path}: {message}") })]
    Malformed {
        /// Path of the offending field (`data.status`), empty for the whole event.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// `type` is not a faultline type.
    #[error("{message}")]
    UnknownType {
        /// Names the type and the accepted ones.
        message: String,
    },
    /// Decodes, but a value breaks a rule of the contract.
    #[error("{field} = {value}: {problem}")]
    Invalid {
        /// Path of the field.
        field: String,
        /// The offending value, as text.
        value: String,
        /// The rule it breaks.
        problem: String,
    },
    /// Timed further ahead of the node's wall clock than the configured bound.
    #[error("time {time} is {ahead_s}s ahead of this node's clock, over the {bound_s}s bound; check the publisher's clock")]
    TooFarAhead {
        /// The event's time (RFC 3339).
        time: String,
        /// How far ahead, seconds.
        ahead_s: i64,
        /// The bound (`node.max_ahead_s`).
        bound_s: u64,
    },
    /// A logged record that crashed an agent repeatedly; parked, not retried.
    #[error("record {seq} crashed agent {agent} {times} times; parked and skipped by that agent")]
    AgentCrash {
        /// The agent.
        agent: String,
        /// The record's sequence.
        seq: u64,
        /// How many crashes.
        times: u32,
    },
    /// A decision type sent as input; only agents write decisions.
    #[error("type {type_name} is a decision; decisions are written by faultline's agents, not published")]
    DecisionAsInput {
        /// The type.
        type_name: String,
    },
}

impl Rejection {
    /// A decode failure at `path`.
    pub fn malformed(path: &str, message: &str) -> Self {
        Self::Malformed {
            path: path.to_owned(),
            message: message.to_owned(),
        }
    }

    /// A rule violation of `field` by `value`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl std::fmt::Debug,
        problem: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            field: field.into(),
            value: format!("{value:?}"),
            problem: problem.into(),
        }
    }

    /// Token naming the DLQ subject and metric: `too_large`, `malformed`, ...
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::UnsupportedContentType { .. } => "content_type",
            Self::Malformed { .. } => "malformed",
            Self::UnknownType { .. } => "unknown_type",
            Self::Invalid { .. } => "invalid",
            Self::DecisionAsInput { .. } => "decision_as_input",
            Self::TooFarAhead { .. } => "future",
            Self::AgentCrash { .. } => "agent_crash",
        }
    }
}
