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
