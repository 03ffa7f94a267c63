//! Redis for the black-box tests (STYLE.md: Redis is always real, each test uses its own key
//! prefix, a missing server is a failure with the command to start it).
//!
//! - [`shared_redis_layer`]: a config layer selecting the shared test Redis at
//!   127.0.0.1:6379 (`scripts/test` starts it) under a fresh key prefix;
//! - [`OwnedRedis`]: a `redis-server` the test owns (its own port and directory, AOF with
//!   `appendfsync always`), which the test can SIGKILL and restart.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shared test Redis.
pub const SHARED_REDIS_ADDR: &str = "127.0.0.1:6379";

/// What to run when the shared test Redis is not there.
pub const START_REDIS_HINT: &str =
    "start Redis: redis-server --daemonize yes --port 6379 --save '' --appendonly no";

/// True when a Redis server at `addr` answers `PING` with `PONG` within a second.
pub fn redis_answers(addr: &str) -> bool {
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let timeout = Some(Duration::from_secs(1));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return false;
    }
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// A fresh key prefix (`frontdesk-test:<uuid>:`), so tests sharing one Redis never meet.
pub fn unique_key_prefix() -> String {
    format!("frontdesk-test:{}:", uuid::Uuid::new_v4().simple())
}

/// A `[store]` config layer for the shared test Redis under a fresh key prefix.
///
/// Panics with [`START_REDIS_HINT`] when Redis is not reachable (never a silent skip).
pub fn shared_redis_layer() -> String {
    assert!(
        redis_answers(SHARED_REDIS_ADDR),
        "no Redis answers at {SHARED_REDIS_ADDR}; {START_REDIS_HINT}"
    );
    redis_layer(
        &format!("redis://{SHARED_REDIS_ADDR}/0"),
        &unique_key_prefix(),
    )
}

/// A `[store]` config layer for `url` with `key_prefix`.
pub fn redis_layer(url: &str, key_prefix: &str) -> String {
    format!("[store]\nredis_url = {url:?}\nkey_prefix = {key_prefix:?}\n")
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port on 127.0.0.1")
}

/// A `redis-server` owned by one test: its own port and data directory, AOF on with
/// `appendfsync always` (every acknowledged write is on disk), RDB snapshots off.
/// Killed (SIGKILL) when dropped.
pub struct OwnedRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnedRedis {
    /// Starts `redis-server` and waits until it answers `PING`.
    ///
    /// Panics when `redis-server` is not installed (with the command that installs it).
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for redis-server");
        let mut redis = Self {
            port: free_port(),
            dir,
            child: None,
        };
        redis.spawn();
        redis
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The data directory (AOF files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log: PathBuf = self.dir.path().join("redis.log");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot run redis-server ({err}); install it: apt-get update && apt-get install -y redis-server"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !redis_answers(&self.addr()) {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer within 10 s (log: {})",
                self.port,
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (no graceful shutdown, no final fsync) and wait for the process to go.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` sends SIGKILL on Unix.
            child.kill().expect("SIGKILL redis-server");
            child.wait().expect("reap redis-server");
        }
    }

    /// Starts it again on the same port and directory (it reloads the AOF).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        self.spawn();
    }
}

impl Drop for OwnedRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
