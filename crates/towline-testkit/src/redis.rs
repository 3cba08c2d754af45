//! [`RedisServer`]: a real `redis-server` on `127.0.0.1`, started for one test and stopped
//! on drop.

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How long a starting `redis-server` may take to say it accepts connections: it takes a few
/// milliseconds on loopback; a second is a machine in trouble, ten a broken one.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How many free ports are tried when another process takes the one picked first.
const START_TRIES: usize = 5;

/// The line `redis-server` logs once it accepts connections (Redis 5 to 8, and Valkey).
const READY_LINE: &str = "Ready to accept connections";

/// Numbers the temporary directories of this process's servers.
static SERVERS: AtomicU64 = AtomicU64::new(0);

/// A real `redis-server` process on `127.0.0.1` at a free port: no persistence
/// (`--save "" --appendonly no`), its own temporary directory, stopped on drop.
///
/// Tests of shared stores use it, never a shared or remote Redis. It can be
/// [stopped](Self::stop) and [restarted](Self::restart) on the same port, to test what
/// clients do while Redis is down and after it returns.
///
/// Where `redis-server` is not installed, [`start`](Self::start) prints that the test
/// skipped and how to install it, and answers `None`, so that `cargo test` passes on any
/// machine; when the `CI` environment variable is set it panics instead, so that CI never
/// skips these tests silently.
///
/// ```
/// use towline_testkit::RedisServer;
///
/// let Some(mut redis) = RedisServer::start() else { return };
/// assert!(redis.url().starts_with("redis://127.0.0.1:"));
/// assert!(redis.ping());
/// let port = redis.port();
/// redis.stop();
/// assert!(!redis.ping());
/// redis.restart();
/// assert_eq!(redis.port(), port);
/// assert!(redis.ping());
/// ```
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("running", &self.child.is_some())
            .finish()
    }
}

impl RedisServer {
    /// Whether a `redis-server` binary is on the `PATH`.
    ///
    /// ```
    /// let _installed: bool = towline_testkit::RedisServer::is_installed();
    /// ```
    pub fn is_installed() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Starts `redis-server` at a free port of `127.0.0.1` and waits until it accepts
    /// connections; `None` (after printing why) if it is not installed and `CI` is not set.
    ///
    /// # Panics
    ///
    /// If `redis-server` is not installed and `CI` is set, or if it does not start.
    ///
    /// ```
    /// if let Some(redis) = towline_testkit::RedisServer::start() {
    ///     assert!(redis.ping());
    /// }
    /// ```
    pub fn start() -> Option<RedisServer> {
        if !Self::is_installed() {
            let message = "redis-server is not installed: install it with \
                           `apt-get install redis-server` (or your system's package)";
            if std::env::var_os("CI").is_some() {
                panic!("{message}; CI is set, so Redis tests must run, not skip");
            }
            eprintln!("SKIPPED: this Redis test did not run: {message}");
            return None;
        }
        let n = SERVERS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("towline-redis-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the redis-server directory");
        let mut last_error = String::new();
        for _ in 0..START_TRIES {
            let port = free_port();
            let mut server = RedisServer {
                port,
                dir: dir.clone(),
                child: None,
            };
            match server.spawn() {
                Ok(()) => return Some(server),
                Err(error) => last_error = error,
            }
        }
        panic!("redis-server did not start: {last_error}");
    }

    /// The port it listens on (the same after a [restart](Self::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`, for a Redis client.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Whether it answers a `PING` now (within a second).
    pub fn ping(&self) -> bool {
        ping(self.port)
    }

    /// How many times the server has run `command` (lowercase, as `INFO commandstats` names
    /// it: `"evalsha"`, `"pttl"`), the commands scripts call included; 0 if it never ran or
    /// does not answer. To count round trips: a script's `EVALSHA` is one.
    ///
    /// ```no_run
    /// # use towline_testkit::RedisServer;
    /// let server = RedisServer::start().expect("redis-server installed");
    /// assert_eq!(server.command_calls("evalsha"), 0);
    /// ```
    pub fn command_calls(&self, command: &str) -> u64 {
        let prefix = format!("cmdstat_{command}:calls=");
        info(self.port, "commandstats")
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.strip_prefix(prefix.as_str()))
            .filter_map(|rest| rest.split(',').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Kills the process (`SIGKILL`, as a crash would) and waits for it to end: clients see
    /// their connections reset and new ones refused. Nothing is kept (no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty, and waits until it accepts connections
    /// (stopping it first if it runs).
    ///
    /// # Panics
    ///
    /// If it does not start (another process took the port meanwhile, say).
    pub fn restart(&mut self) {
        self.stop();
        if let Err(error) = self.spawn() {
            panic!(
                "redis-server did not restart on port {}: {error}",
                self.port
            );
        }
    }

    /// Runs `redis-server` on `self.port` and waits for its ready line.
    fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--daemonize", "no", "--logfile", "", "--loglevel", "notice"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("spawn: {error}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (ready, wait) = mpsc::channel();
        // Reads the log until the ready line (or the end: the process exited), then drains
        // it so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            let mut seen = Vec::new();
            loop {
                line.clear();
                match lines.read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        let _ = ready.send(Err(seen.join("")));
                        return;
                    }
                    Ok(_) if line.contains(READY_LINE) => break,
                    Ok(_) => seen.push(line.clone()),
                }
            }
            let _ = ready.send(Ok(()));
            let _ = std::io::copy(&mut lines, &mut std::io::sink());
        });
        let outcome = match wait.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) if ping(self.port) => Ok(()),
            Ok(Ok(())) => Err("ready, but it does not answer PING".to_owned()),
            Ok(Err(log)) => Err(format!("it exited: {log}")),
            Err(_) => Err(format!("not ready within {START_TIMEOUT:?}")),
        };
        if outcome.is_err() {
            let _ = child.kill();
            let _ = child.wait();
            return outcome;
        }
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port of `127.0.0.1` free now (the OS picks it; it may be taken again before use, which
/// [`RedisServer::start`] survives by trying another).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind 127.0.0.1:0")
}

fn ping(port: u16) -> bool {
    let limit = Duration::from_secs(1);
    let Ok(mut stream) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), limit) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(limit));
    let _ = stream.set_write_timeout(Some(limit));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

/// The text of `INFO <section>`, read over a plain connection (a bulk string: its length,
/// then the text).
fn info(port: u16, section: &str) -> Option<String> {
    let limit = Duration::from_secs(1);
    let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), limit).ok()?;
    stream.set_read_timeout(Some(limit)).ok()?;
    stream
        .write_all(format!("INFO {section}\r\n").as_bytes())
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    reader.read_line(&mut head).ok()?;
    let len: usize = head.strip_prefix('$')?.trim_end().parse().ok()?;
    let mut text = vec![0; len];
    reader.read_exact(&mut text).ok()?;
    String::from_utf8(text).ok()
}
