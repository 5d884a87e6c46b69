//! Engine snapshots: every agent's state plus the position in the log.
//!
//! A snapshot carries a format version and the hash of the configuration it
//! was taken under; one that does not match is refused (the caller replays the
//! log from the start instead), because state built under another policy is
//! not the state this policy would have built.

use serde::{Deserialize, Serialize};

use super::Engine;
use crate::log::{Seq, Snapshot};

/// Version of the snapshot encoding; bump when any agent's state changes shape.
pub const SNAPSHOT_FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Stored {
    format: u32,
    config_hash: String,
    covers: Seq,
    agents: Vec<(String, serde_bytes_compat::Bytes)>,
}

mod serde_bytes_compat {
    //! Agent states as msgpack binary rather than arrays of integers.
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Owned bytes serialised as a binary blob.
    pub struct Bytes(pub Vec<u8>);

    impl Serialize for Bytes {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    impl<'de> Deserialize<'de> for Bytes {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Bytes;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                    Ok(Bytes(v.to_vec()))
                }
                fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                    Ok(Bytes(v))
                }
            }
            d.deserialize_byte_buf(V)
        }
    }
}

/// Why a snapshot cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// Not decodable.
    #[error("snapshot does not decode: {0}")]
    Decode(String),
    /// Written by another snapshot format.
    #[error("snapshot format {found} is not {expected}; replay the log instead")]
    Format {
        /// In the snapshot.
        found: u32,
        /// This build's.
        expected: u32,
    },
    /// Taken under another configuration.
    #[error("snapshot was taken under config {found}, this engine runs {expected}; replay the log instead")]
    Config {
        /// In the snapshot.
        found: String,
        /// This engine's.
        expected: String,
    },
    /// Agents differ.
    #[error("snapshot has agents {found:?}, this engine runs {expected:?}")]
    Agents {
        /// In the snapshot.
        found: Vec<String>,
        /// This engine's.
        expected: Vec<String>,
    },
    /// An agent refused its state.
    #[error("agent {agent}: {message}")]
    Agent {
        /// Which.
        agent: String,
        /// Its complaint.
        message: String,
    },
}

impl Engine {
    /// Snapshots every agent; the snapshot covers everything applied so far.
    pub fn snapshot(&self) -> Snapshot {
        let covers = self.next_seq - 1;
        let stored = Stored {
            format: SNAPSHOT_FORMAT,
            config_hash: self.config_hash.clone(),
            covers,
            agents: self
                .agents
                .iter()
                .map(|a| (a.name().to_owned(), serde_bytes_compat::Bytes(a.snapshot())))
                .collect(),
        };
        let bytes = rmp_serde::to_vec_named(&stored).expect("snapshot encodes");
        Snapshot { covers, bytes }
    }

    /// Restores every agent from `snapshot`; the next record applied must be `covers + 1`.
    /// On error the engine is unchanged only if the error is detected before any
    /// agent is restored (format, config, agent set); otherwise rebuild it.
    pub fn restore(&mut self, snapshot: &Snapshot) -> Result<(), SnapshotError> {
        let stored: Stored = rmp_serde::from_slice(&snapshot.bytes)
            .map_err(|e| SnapshotError::Decode(e.to_string()))?;
        if stored.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format {
                found: stored.format,
                expected: SNAPSHOT_FORMAT,
            });
        }
        if stored.config_hash != self.config_hash {
            return Err(SnapshotError::Config {
                found: stored.config_hash,
                expected: self.config_hash.clone(),
            });
        }
        let found: Vec<String> = stored.agents.iter().map(|(n, _)| n.clone()).collect();
        let expected: Vec<String> = self.agents.iter().map(|a| a.name().to_owned()).collect();
        if found != expected {
            return Err(SnapshotError::Agents { found, expected });
        }
        for (agent, (name, bytes)) in self.agents.iter_mut().zip(stored.agents) {
            agent
                .restore(&bytes.0)
                .map_err(|message| SnapshotError::Agent {
                    agent: name,
                    message,
                })?;
        }
        self.next_seq = stored.covers + 1;
        Ok(())
    }
}
