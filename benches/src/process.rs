//! Server processes for the harnesses that drive real servers (`compare`, `serverhit`):
//! a free loopback port, and a child that is started, waited for and killed on drop.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A server process listening on `port`, killed (and reaped) when dropped.
pub struct Running {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
}

impl Running {
    /// Spawns `cmd` (which must make the server listen on 127.0.0.1:`port`) and waits until
    /// the port accepts connections, for at most `timeout`.
    ///
    /// # Errors
    /// The spawn's error, or a timeout (the child is killed then).
    pub fn spawn(cmd: &mut Command, port: u16, timeout: Duration) -> io::Result<Running> {
        let running = Running {
            child: cmd.spawn()?,
            port,
        };
        let deadline = Instant::now() + timeout;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nothing listening on port {port} after {timeout:?}"),
                ));
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
        Ok(running)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on right now.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How long a cluster node may take to accept connections.
const NODE_START_TIMEOUT_SECS: u64 = 10;

/// Starts `shards` `cachalot-server` processes from `bin` on free loopback ports as one
/// static cluster (`--cluster-shards`, ids 1..=n), each with `extra` flags; returns the
/// processes and their `host:port`s.
///
/// # Errors
/// No free port, or a node that does not start listening.
pub fn start_static_cluster(
    bin: &std::path::Path,
    shards: usize,
    extra: &[&str],
) -> Result<(Vec<Running>, Vec<String>), Box<dyn std::error::Error>> {
    let ports: Vec<u16> = (0..shards).map(|_| free_port()).collect::<Result<_, _>>()?;
    let list = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut servers = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let mut cmd = Command::new(bin);
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--cluster-enabled", "yes", "--cluster-shards", &list])
            .args(["--cluster-id", &(i + 1).to_string()])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit());
        servers.push(Running::spawn(
            &mut cmd,
            *port,
            Duration::from_secs(NODE_START_TIMEOUT_SECS),
        )?);
    }
    let addrs = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    Ok((servers, addrs))
}
