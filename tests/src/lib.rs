//! Test support for Cachalot's end-to-end tests: start real `cachalot-server` processes on
//! free loopback ports and stop them when the handle drops.
//!
//! The server binary is found next to the test executable's directory (`target/<profile>`),
//! where `cargo test --workspace` builds it (the server package has integration tests,
//! which makes cargo build its binary first), or at `$CACHALOT_SERVER_BIN`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a server may take to start listening.
const START_TIMEOUT_SECS: u64 = 20;
/// Log lines kept for the panic message when a server misbehaves.
const KEPT_LOG_LINES: usize = 200;

/// Path of the `cachalot-server` binary under test.
pub fn server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("CACHALOT_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/cachalot-server
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join(format!("cachalot-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not found: run the suite with `cargo test --workspace` (which builds it) or set CACHALOT_SERVER_BIN",
        bin.display()
    );
    bin
}

/// A running `cachalot-server` process; killed (and reaped) on drop.
pub struct ServerProcess {
    child: Option<Child>,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts a node with default settings on a free port.
    pub fn start() -> ServerProcess {
        ServerProcess::start_with(&[])
    }

    /// Starts a node with extra flags (for example `["--maxmemory", "1mb"]`).
    pub fn start_with(args: &[&str]) -> ServerProcess {
        let mut cmd = Command::new(server_binary());
        cmd.args(["--port", "0", "--bind", "127.0.0.1"])
            .args(args)
            .env_remove("CACHALOT_PORT")
            .env_remove("CACHALOT_BIND")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn cachalot-server");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<SocketAddr>();
        let log_writer = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send(addr);
                }
                let mut kept = log_writer.lock().expect("log lock");
                if kept.len() == KEPT_LOG_LINES {
                    kept.remove(0);
                }
                kept.push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(START_TIMEOUT_SECS)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "cachalot-server did not start listening within {START_TIMEOUT_SECS}s; log:\n{}",
                    log.lock().expect("log lock").join("\n")
                );
            }
        };
        ServerProcess {
            child: Some(child),
            addr,
            log,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A `redis://` URL for it.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The log lines seen so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    /// Sends a signal (`"TERM"`, `"INT"`, `"KILL"`, `"STOP"`, `"CONT"`) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit by itself, up to `timeout`; kills it after that.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::park_timeout(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Extracts the bound address from the server's "ready to accept connections" log line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("ready to accept connections") {
        return None;
    }
    let start = line.find("addr=")? + "addr=".len();
    line[start..].split_whitespace().next()?.parse().ok()
}

/// Path of a Redis tool (`redis-cli`, `redis-benchmark`), which `.ci/run` installs.
pub fn redis_tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!("{name} not found on PATH: install Debian's redis-tools and redis-server packages (.ci/run does)")
    })
}

#[cfg(test)]
mod tests {
    use super::listening_addr;

    #[test]
    fn the_ready_line_yields_the_address() {
        let line = "2026-11-22T00:00:00Z  INFO cachalot_server::net::listener: cachalot-server ready to accept connections addr=127.0.0.1:40123";
        assert_eq!(listening_addr(line).map(|a| a.port()), Some(40123));
        assert_eq!(listening_addr("something else addr=1.2.3.4:5"), None);
    }
}
