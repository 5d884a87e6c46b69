//! A `faultline run` process for tests: started with flags, waited for on
//! `/livez`, killed by PID (SIGKILL for crash tests, SIGTERM for a graceful stop).

#![allow(dead_code)]
// Test harness around real processes: deadlines need the clock.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NodeProc {
    child: Child,
    pub http: String,
}

impl NodeProc {
    /// Starts a node listening on `port`; extra args follow `run`.
    pub fn start(port: u16, args: &[&str], log: &Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_faultline"))
            .arg("run")
            .arg("--http")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("faultline starts");
        Self {
            child,
            http: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Starts a node on `port` and waits until it is live. If the node
    /// exits because the port is held (a client's probe can connect to
    /// itself on a free port in the ephemeral range, holding it for a few
    /// milliseconds), it starts again, up to five times; any other failure
    /// panics with the node's log.
    pub fn start_live(port: u16, args: &[&str], log: &Path) -> Self {
        for _ in 0..5 {
            let before = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
            let mut node = Self::start(port, args, log);
            if node.wait_live() {
                return node;
            }
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let new = text.get(before as usize..).unwrap_or_default();
            assert!(
                new.contains("Address already in use"),
                "node did not start:\n{new}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("port {port} stayed in use; see {}", log.display())
    }

    /// Waits until `/livez` answers (or the process exits).
    pub fn wait_live(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if ureq::get(format!("{}/livez", self.http)).call().is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits until `/readyz` says every agent caught up and the consumer lag is 0.
    pub fn wait_idle(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            assert!(
                Instant::now() < deadline,
                "node did not catch up in {timeout:?}"
            );
            assert!(self.child.try_wait().unwrap().is_none(), "node exited");
            let ready = ureq::get(format!("{}/readyz", self.http)).call().is_ok();
            let idle = ready
                && ureq::get(format!("{}/metrics", self.http))
                    .call()
                    .ok()
                    .and_then(|mut r| r.body_mut().read_to_string().ok())
                    .is_some_and(|m| {
                        m.lines()
                            .filter(|l| l.starts_with("faultline_consumer_lag{"))
                            .all(|l| l.ends_with(" 0"))
                            && m.contains("faultline_consumer_lag{")
                    });
            if idle {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits; returns whether it exited 0 within `timeout`.
    pub fn terminate(mut self, timeout: Duration) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a node on a free port running the test policy (written into
/// `dir`), with `backend` (`--nats URL` or `--data DIR`), a raised
/// `max_ahead_s`, and `extra` arguments; waits until it is live.
pub fn start_policy_node(dir: &Path, backend: &[&str], extra: &[&str]) -> NodeProc {
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, super::stream::POLICY).unwrap();
    let log = dir.join("node.log");
    let mut args = backend.to_vec();
    args.extend_from_slice(&[
        "--config",
        policy.to_str().unwrap(),
        "--set",
        "max_ahead_s=7200",
    ]);
    args.extend_from_slice(extra);
    NodeProc::start_live(super::nats::free_port(), &args, &log)
}
