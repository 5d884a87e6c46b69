//! Node settings: where the node listens, stores and connects, and how often
//! it snapshots. Not part of the policy: changing a port must not invalidate
//! snapshots, so the `[node]` table of the policy file is left out of the
//! policy hash (see [`crate::config::Config::hash`]).
//!
//! Three layers, later ones winning: the `[node]` table of the file given with
//! `--config`, environment variables `FAULTLINE_<KEY>` (the key upper-cased,
//! e.g. `FAULTLINE_NATS_URL`), then command-line flags. Every value is
//! validated at start and every problem is reported at once, with where the
//! value came from.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{ConfigError, ConfigProblem, Problems};

/// Every `[node]` key, as written in the file; the environment variable is
/// `FAULTLINE_` + the key upper-cased.
pub const KEYS: [&str; 32] = [
    "data",
    "http",
    "nats_url",
    "prefix",
    "stream",
    "dlq_stream",
    "snapshot_bucket",
    "replicas",
    "duplicate_window_s",
    "max_age_s",
    "snapshot_every",
    "snapshot_interval_s",
    "snapshot_min_interval_ms",
    "max_ahead_s",
    "max_body_bytes",
    "shutdown_timeout_s",
    "restart_limit",
    "restart_window_s",
    "crash_limit",
    "log_format",
    "nats_user",
    "nats_password",
    "nats_token",
    "nats_nkey",
    "nats_creds",
    "nats_tls_ca",
    "nats_tls_cert",
    "nats_tls_key",
    "http_token",
    "alert_webhook",
    "alert_repeat_s",
    "alert_timeout_s",
];

/// The `[node]` table as written; every key optional.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    data: Option<String>,
    http: Option<String>,
    nats_url: Option<String>,
    prefix: Option<String>,
    stream: Option<String>,
    dlq_stream: Option<String>,
    snapshot_bucket: Option<String>,
    replicas: Option<u64>,
    duplicate_window_s: Option<u64>,
    max_age_s: Option<u64>,
    snapshot_every: Option<u64>,
    snapshot_interval_s: Option<u64>,
    snapshot_min_interval_ms: Option<u64>,
    max_ahead_s: Option<u64>,
    max_body_bytes: Option<u64>,
    shutdown_timeout_s: Option<u64>,
    restart_limit: Option<u64>,
    restart_window_s: Option<u64>,
    crash_limit: Option<u64>,
    log_format: Option<String>,
    nats_user: Option<String>,
    nats_password: Option<String>,
    nats_token: Option<String>,
    nats_nkey: Option<String>,
    nats_creds: Option<String>,
    nats_tls_ca: Option<String>,
    nats_tls_cert: Option<String>,
    nats_tls_key: Option<String>,
    http_token: Option<String>,
    alert_webhook: Option<String>,
    alert_repeat_s: Option<u64>,
    alert_timeout_s: Option<u64>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Credentials and TLS for the NATS connection. Secrets are never logged:
/// `Debug` shows which kinds are set, not their values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NatsAuth {
    /// User name (with `password`).
    pub user: Option<String>,
    /// Password for `user`.
    pub password: Option<String>,
    /// Token authentication.
    pub token: Option<String>,
    /// An nkey seed (`SU...`).
    pub nkey: Option<String>,
    /// A `.creds` file (JWT + nkey seed).
    pub creds: Option<PathBuf>,
    /// CA certificate to trust (PEM).
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM).
    pub tls_key: Option<PathBuf>,
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |o: bool| if o { "set" } else { "unset" };
        f.debug_struct("NatsAuth")
            .field("user", &self.user)
            .field("password", &set(self.password.is_some()))
            .field("token", &set(self.token.is_some()))
            .field("nkey", &set(self.nkey.is_some()))
            .field("creds", &self.creds)
            .field("tls_ca", &self.tls_ca)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .finish()
    }
}

/// Validated node settings.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSettings {
    /// Sled data directory (embedded mode). Default `./faultline-data`.
    pub data: PathBuf,
    /// HTTP listen address (ingest, state, health, metrics). Default `127.0.0.1:7070`.
    pub http: SocketAddr,
    /// NATS server URL; `None` runs embedded on the sled log.
    pub nats_url: Option<String>,
    /// Subject prefix. Default `faultline`.
    pub prefix: String,
    /// JetStream stream holding inputs and decisions. Default `FAULTLINE`.
    pub stream: String,
    /// JetStream stream holding rejected input. Default `FAULTLINE_DLQ`.
    pub dlq_stream: String,
    /// KV bucket for snapshots. Default `faultline-snapshots`.
    pub snapshot_bucket: String,
    /// Stream and bucket replicas: 1 or 3. Default 1.
    pub replicas: usize,
    /// JetStream duplicate window, seconds. Default 120.
    pub duplicate_window_s: u64,
    /// Maximum age of log records, seconds; 0 keeps them forever. Default 0.
    pub max_age_s: u64,
    /// Snapshot each agent after this many records. Default 10 000.
    pub snapshot_every: u64,
    /// ... or after this many seconds with records applied. Default 60.
    pub snapshot_interval_s: u64,
    /// Never more often than once per this many milliseconds: an agent
    /// catching up on a backlog at 200,000 records/s would otherwise encode
    /// and store its whole state 20 times a second, while a restart replays
    /// one second of records in about a second. 0 snapshots on every
    /// `snapshot_every`. Default 1000.
    pub snapshot_min_interval_ms: u64,
    /// Input timed more than this many seconds ahead of the wall clock is rejected. Default 300.
    pub max_ahead_s: u64,
    /// Largest HTTP ingest body, bytes. Default 8 MiB.
    pub max_body_bytes: usize,
    /// Graceful shutdown must finish within this many seconds. Default 10.
    pub shutdown_timeout_s: u64,
    /// At most this many agent restarts ... Default 5.
    pub restart_limit: usize,
    /// ... within this many seconds, or the node fails. Default 60.
    pub restart_window_s: u64,
    /// A record that crashes an agent this many times is parked in the DLQ. Default 3.
    pub crash_limit: u32,
    /// Log format. Default text.
    pub log_format: LogFormat,
    /// NATS credentials and TLS.
    pub auth: NatsAuth,
    /// Bearer token required on `/v1/*` (ingest, commands, state); none when unset.
    pub http_token: Option<Secret>,
    /// Alertmanager base URL (`http://am:9093`); hub escalations are posted to
    /// `<url>/api/v2/alerts`. None: escalations only go to the log.
    pub alert_webhook: Option<String>,
    /// Active escalations are re-sent this often, seconds. Default 60.
    pub alert_repeat_s: u64,
    /// One webhook request may take this long, seconds. Default 10.
    pub alert_timeout_s: u64,
}

/// A secret setting: `Debug` says it is set, never what it is.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(set)")
    }
}

impl Default for NodeSettings {
    fn default() -> Self {
        Self::from_layers(&RawNode::default(), &[], &RawNode::default())
            .expect("the defaults are valid")
    }
}

impl RawNode {
    /// Reads `FAULTLINE_<KEY>` variables from `vars` (e.g. `std::env::vars()`).
    /// Values that do not parse are reported by [`NodeSettings::from_layers`].
    pub fn overlay_env(&mut self, vars: &[(String, String)], problems: &mut Problems) {
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("FAULTLINE_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            if !KEYS.contains(&key.as_str()) {
                continue;
            }
            self.set(&key, value, &format!("environment {name}"), problems);
        }
    }

    /// Sets one key from text.
    pub fn set(&mut self, key: &str, value: &str, origin: &str, problems: &mut Problems) {
        let text = || Some(value.to_owned());
        let mut number = || match value.trim().parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                problems.add(
                    format!("node.{key}"),
                    format!("{value:?} from {origin} is not a whole number"),
                );
                None
            }
        };
        match key {
            "data" => self.data = text(),
            "http" => self.http = text(),
            "nats_url" => self.nats_url = text(),
            "prefix" => self.prefix = text(),
            "stream" => self.stream = text(),
            "dlq_stream" => self.dlq_stream = text(),
            "snapshot_bucket" => self.snapshot_bucket = text(),
            "replicas" => self.replicas = number(),
            "duplicate_window_s" => self.duplicate_window_s = number(),
            "max_age_s" => self.max_age_s = number(),
            "snapshot_every" => self.snapshot_every = number(),
            "snapshot_interval_s" => self.snapshot_interval_s = number(),
            "snapshot_min_interval_ms" => self.snapshot_min_interval_ms = number(),
            "max_ahead_s" => self.max_ahead_s = number(),
            "max_body_bytes" => self.max_body_bytes = number(),
            "shutdown_timeout_s" => self.shutdown_timeout_s = number(),
            "restart_limit" => self.restart_limit = number(),
            "restart_window_s" => self.restart_window_s = number(),
            "crash_limit" => self.crash_limit = number(),
            "log_format" => self.log_format = text(),
            "nats_user" => self.nats_user = text(),
            "http_token" => self.http_token = text(),
            "alert_webhook" => self.alert_webhook = text(),
            "alert_repeat_s" => self.alert_repeat_s = number(),
            "alert_timeout_s" => self.alert_timeout_s = number(),
            "nats_password" => self.nats_password = text(),
            "nats_token" => self.nats_token = text(),
            "nats_nkey" => self.nats_nkey = text(),
            "nats_creds" => self.nats_creds = text(),
            "nats_tls_ca" => self.nats_tls_ca = text(),
            "nats_tls_cert" => self.nats_tls_cert = text(),
            "nats_tls_key" => self.nats_tls_key = text(),
            other => problems.add(
                format!("node.{other}"),
                format!("unknown key (from {origin})"),
            ),
        }
    }

    /// `self` with every key `over` sets replaced.
    fn merged(&self, over: &RawNode) -> RawNode {
        macro_rules! pick {
            ($($f:ident),*) => { RawNode { $($f: over.$f.clone().or_else(|| self.$f.clone()),)* } };
        }
        pick!(
            data,
            http,
            nats_url,
            prefix,
            stream,
            dlq_stream,
            snapshot_bucket,
            replicas,
            duplicate_window_s,
            max_age_s,
            snapshot_every,
            snapshot_interval_s,
            snapshot_min_interval_ms,
            max_ahead_s,
            max_body_bytes,
            shutdown_timeout_s,
            restart_limit,
            restart_window_s,
            crash_limit,
            log_format,
            nats_user,
            nats_password,
            nats_token,
            nats_nkey,
            nats_creds,
            nats_tls_ca,
            nats_tls_cert,
            nats_tls_key,
            http_token,
            alert_webhook,
            alert_repeat_s,
            alert_timeout_s
        )
    }
}

impl NodeSettings {
    /// Validates the three layers (file `[node]` table, environment variables,
    /// flags), later layers winning; reports every problem at once.
    pub fn from_layers(
        file: &RawNode,
        env: &[(String, String)],
        flags: &RawNode,
    ) -> Result<Self, ConfigError> {
        let mut problems = Problems::default();
        let mut with_env = file.clone();
        with_env.overlay_env(env, &mut problems);
        let raw = with_env.merged(flags);
        let settings = Self::validate(&raw, &mut problems);
        let list = problems.list();
        if list.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError {
                origin: "node settings".to_owned(),
                problems: list,
            })
        }
    }

    fn validate(raw: &RawNode, problems: &mut Problems) -> Self {
        let name = |v: &Option<String>, default: &str, key: &str, problems: &mut Problems| {
            let v = v.clone().unwrap_or_else(|| default.to_owned());
            if !crate::events::subject::is_valid_token(&v) {
                problems.add(
                    format!("node.{key}"),
                    format!("{v:?} must be one NATS token: no dots, wildcards or spaces"),
                );
            }
            v
        };
        let at_least =
            |v: Option<u64>, default: u64, min: u64, key: &str, problems: &mut Problems| {
                let v = v.unwrap_or(default);
                if v < min {
                    problems.add(
                        format!("node.{key}"),
                        format!("{v} is below the minimum {min}"),
                    );
                }
                v
            };
        let http = raw
            .http
            .clone()
            .unwrap_or_else(|| "127.0.0.1:7070".to_owned());
        let http = http.parse().unwrap_or_else(|_| {
            problems.add(
                "node.http",
                format!("{http:?} is not an address like 127.0.0.1:7070"),
            );
            SocketAddr::from(([127, 0, 0, 1], 7070))
        });
        let nats_url = raw.nats_url.clone().filter(|u| !u.is_empty());
        if let Some(u) = &nats_url {
            if !(u.starts_with("nats://") || u.starts_with("tls://") || u.contains(':')) {
                problems.add(
                    "node.nats_url",
                    format!("{u:?} is not a NATS URL like nats://127.0.0.1:4222"),
                );
            }
        }
        if let (Some(ms), s) = (
            raw.snapshot_min_interval_ms,
            raw.snapshot_interval_s.unwrap_or(60),
        ) {
            if ms > s.saturating_mul(1000) {
                problems.add(
                    "node.snapshot_min_interval_ms",
                    format!(
                        "{ms} ms is longer than snapshot_interval_s ({s} s); make it at most {}",
                        s.saturating_mul(1000)
                    ),
                );
            }
        }
        let replicas = raw.replicas.unwrap_or(1);
        if replicas != 1 && replicas != 3 {
            problems.add("node.replicas", format!("{replicas} must be 1 or 3"));
        }
        let log_format = match raw.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                problems.add("node.log_format", format!("{other:?} is not text or json"));
                LogFormat::Text
            }
        };
        let alert_webhook = raw.alert_webhook.clone().filter(|u| !u.is_empty());
        if let Some(u) = &alert_webhook {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                problems.add(
                    "node.alert_webhook",
                    format!("{u:?} is not an http:// or https:// URL"),
                );
            }
        }
        let auth = NatsAuth {
            user: raw.nats_user.clone(),
            password: raw.nats_password.clone(),
            token: raw.nats_token.clone(),
            nkey: raw.nats_nkey.clone(),
            creds: raw.nats_creds.clone().map(PathBuf::from),
            tls_ca: raw.nats_tls_ca.clone().map(PathBuf::from),
            tls_cert: raw.nats_tls_cert.clone().map(PathBuf::from),
            tls_key: raw.nats_tls_key.clone().map(PathBuf::from),
        };
        if auth.user.is_some() != auth.password.is_some() {
            problems.add("node.nats_user", "nats_user and nats_password go together");
        }
        if auth.tls_cert.is_some() != auth.tls_key.is_some() {
            problems.add(
                "node.nats_tls_cert",
                "nats_tls_cert and nats_tls_key go together",
            );
        }
        let methods = [
            auth.user.is_some(),
            auth.token.is_some(),
            auth.nkey.is_some(),
            auth.creds.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            problems.add(
                "node.nats_user",
                "choose one of user/password, token, nkey or creds",
            );
        }
        Self {
            data: PathBuf::from(
                raw.data
                    .clone()
                    .unwrap_or_else(|| "./faultline-data".to_owned()),
            ),
            http,
            nats_url,
            prefix: name(&raw.prefix, "faultline", "prefix", problems),
            stream: name(&raw.stream, "FAULTLINE", "stream", problems),
            dlq_stream: name(&raw.dlq_stream, "FAULTLINE_DLQ", "dlq_stream", problems),
            snapshot_bucket: name(
                &raw.snapshot_bucket,
                "faultline-snapshots",
                "snapshot_bucket",
                problems,
            ),
            replicas: replicas as usize,
            duplicate_window_s: at_least(
                raw.duplicate_window_s,
                120,
                1,
                "duplicate_window_s",
                problems,
            ),
            max_age_s: raw.max_age_s.unwrap_or(0),
            snapshot_every: at_least(raw.snapshot_every, 10_000, 1, "snapshot_every", problems),
            snapshot_interval_s: at_least(
                raw.snapshot_interval_s,
                60,
                1,
                "snapshot_interval_s",
                problems,
            ),
            snapshot_min_interval_ms: raw.snapshot_min_interval_ms.unwrap_or(1000),
            max_ahead_s: raw.max_ahead_s.unwrap_or(300),
            max_body_bytes: at_least(
                raw.max_body_bytes,
                8 << 20,
                1024,
                "max_body_bytes",
                problems,
            ) as usize,
            shutdown_timeout_s: at_least(
                raw.shutdown_timeout_s,
                10,
                1,
                "shutdown_timeout_s",
                problems,
            ),
            restart_limit: at_least(raw.restart_limit, 5, 1, "restart_limit", problems) as usize,
            restart_window_s: at_least(raw.restart_window_s, 60, 1, "restart_window_s", problems),
            crash_limit: at_least(raw.crash_limit, 3, 1, "crash_limit", problems)
                .min(u32::MAX as u64) as u32,
            log_format,
            auth,
            http_token: raw.http_token.clone().filter(|t| !t.is_empty()).map(Secret),
            alert_webhook,
            alert_repeat_s: at_least(raw.alert_repeat_s, 60, 1, "alert_repeat_s", problems),
            alert_timeout_s: at_least(raw.alert_timeout_s, 10, 1, "alert_timeout_s", problems),
        }
    }
}

/// Reads the `[node]` table from a policy file's text (absent: all defaults).
pub fn raw_from_toml(text: &str, origin: &str) -> Result<RawNode, ConfigError> {
    #[derive(Deserialize)]
    struct Wrapper {
        #[serde(default)]
        node: RawNode,
    }
    let table: toml::Table = toml::from_str(text).map_err(|e| one(origin, "", e.to_string()))?;
    let Some(node) = table.get("node") else {
        return Ok(RawNode::default());
    };
    let mut only = toml::Table::new();
    only.insert("node".to_owned(), node.clone());
    let w: Wrapper = only
        .try_into()
        .map_err(|e: toml::de::Error| one(origin, "node", e.to_string()))?;
    Ok(w.node)
}

fn one(origin: &str, path: &str, message: String) -> ConfigError {
    ConfigError {
        origin: origin.to_owned(),
        problems: vec![ConfigProblem {
            path: path.to_owned(),
            message: message.trim_end().to_owned(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let s = NodeSettings::default();
        assert_eq!(s.http.to_string(), "127.0.0.1:7070");
        assert_eq!(s.nats_url, None);
        assert_eq!((s.snapshot_every, s.snapshot_interval_s), (10_000, 60));
        assert_eq!(s.snapshot_min_interval_ms, 1000);
        assert_eq!(
            (s.restart_limit, s.restart_window_s, s.crash_limit),
            (5, 60, 3)
        );
    }

    #[test]
    fn flags_beat_environment_beat_file() {
        let file = raw_from_toml(
            "[node]\nhttp = \"127.0.0.1:1\"\nsnapshot_every = 5\nprefix = \"file\"\n",
            "f.toml",
        )
        .unwrap();
        let mut flags = RawNode::default();
        flags.set("http", "127.0.0.1:3", "--http", &mut Problems::default());
        let s = NodeSettings::from_layers(
            &file,
            &env(&[
                ("FAULTLINE_HTTP", "127.0.0.1:2"),
                ("FAULTLINE_PREFIX", "env"),
                ("HOME", "/"),
            ]),
            &flags,
        )
        .unwrap();
        assert_eq!(s.http.to_string(), "127.0.0.1:3");
        assert_eq!(s.prefix, "env");
        assert_eq!(s.snapshot_every, 5);
    }

    #[test]
    fn every_problem_is_reported_with_its_origin() {
        let file = raw_from_toml("[node]\nreplicas = 2\nlog_format = \"xml\"\n", "f.toml").unwrap();
        let err = NodeSettings::from_layers(
            &file,
            &env(&[
                ("FAULTLINE_SNAPSHOT_EVERY", "often"),
                ("FAULTLINE_PREFIX", "a.b"),
            ]),
            &RawNode::default(),
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "node.replicas: 2 must be 1 or 3",
            "node.log_format: \"xml\" is not text or json",
            "\"often\" from environment FAULTLINE_SNAPSHOT_EVERY is not a whole number",
            "node.prefix: \"a.b\" must be one NATS token",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }

    #[test]
    fn the_snapshot_minimum_interval_must_fit_in_the_snapshot_interval() {
        let file = raw_from_toml(
            "[node]\nsnapshot_interval_s = 30\nsnapshot_min_interval_ms = 45000\n",
            "f.toml",
        )
        .unwrap();
        let err = NodeSettings::from_layers(&file, &[], &RawNode::default()).unwrap_err();
        assert!(
            err.to_string().contains(
                "node.snapshot_min_interval_ms: 45000 ms is longer than snapshot_interval_s (30 s)"
            ),
            "{err}"
        );
        let env = env(&[("FAULTLINE_SNAPSHOT_MIN_INTERVAL_MS", "0")]);
        let s = NodeSettings::from_layers(&file, &env, &RawNode::default()).unwrap();
        assert_eq!(s.snapshot_min_interval_ms, 0);
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let err = raw_from_toml("[node]\nhtp = \"x\"\n", "f.toml").unwrap_err();
        assert!(err.to_string().contains("unknown field `htp`"), "{err}");
    }

    #[test]
    fn the_node_table_is_not_part_of_the_policy_hash() {
        let policy = "agents = [\"breaker\"]\n";
        let with_node = format!("{policy}[node]\nhttp = \"127.0.0.1:9\"\n");
        let a = crate::config::Config::from_toml(policy, "a").unwrap();
        let b = crate::config::Config::from_toml(&with_node, "b").unwrap();
        assert_eq!(a.hash(), b.hash());
        let c = crate::config::Config::from_toml("agents = [\"hub\"]\n", "c").unwrap();
        assert_ne!(a.hash(), c.hash());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let mut raw = RawNode::default();
        let mut p = Problems::default();
        raw.set("nats_user", "svc", "flag", &mut p);
        raw.set("nats_password", "hunter2", "flag", &mut p);
        let s = NodeSettings::from_layers(&raw, &[], &RawNode::default()).unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("svc"),
            "{shown}"
        );
    }
}
