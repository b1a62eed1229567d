//! Test support for Cachalot's end-to-end tests: start real `cachalot-server` processes on
//! free loopback ports and stop them when the handle drops.
//!
//! The server binary is found next to the test executable's directory (`target/<profile>`),
//! where `cargo test --workspace` builds it (the server package has integration tests,
//! which makes cargo build its binary first), or at `$CACHALOT_SERVER_BIN`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one run of a Redis tool may take before the test fails.
const TOOL_TIMEOUT_SECS: u64 = 120;
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
        let mut all = vec!["--port", "0"];
        all.extend_from_slice(args);
        match ServerProcess::spawn(&all) {
            Ok(server) => server,
            Err(log) => panic!("cachalot-server exited before listening; log:\n{log}"),
        }
    }

    /// Starts a node on `port` with extra flags; `None` if it exits before listening (most
    /// likely: another process took the port), so the caller can retry on other ports.
    pub fn try_start_on(port: u16, args: &[&str]) -> Option<ServerProcess> {
        let port = port.to_string();
        let mut all = vec!["--port", port.as_str()];
        all.extend_from_slice(args);
        ServerProcess::spawn(&all).ok()
    }

    /// Spawns the server and waits for its ready line; `Err` with its log if it exits
    /// first. Panics if it neither listens nor exits within the start timeout.
    fn spawn(args: &[&str]) -> Result<ServerProcess, String> {
        let mut cmd = Command::new(server_binary());
        cmd.args(["--bind", "127.0.0.1"])
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
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Its stderr closed without the ready line: the process is exiting.
                let _ = child.kill();
                let _ = child.wait();
                return Err(log.lock().expect("log lock").join("\n"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "cachalot-server did not start listening within {START_TIMEOUT_SECS}s; log:\n{}",
                    log.lock().expect("log lock").join("\n")
                );
            }
        };
        Ok(ServerProcess {
            child: Some(child),
            addr,
            log,
        })
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

    /// Stops it (`SIGSTOP`) and waits until every thread has stopped.
    pub fn pause(&self) {
        self.signal("STOP");
        wait_until_stopped(self.pid());
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

/// A loopback port that was free a moment ago (the OS picked it for a listener that is
/// closed again); callers that start a server on it retry if it was taken meanwhile.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
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

/// What a finished tool run printed.
pub struct ToolRun {
    /// How it exited.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs the Redis tool `tool` with `args`, feeding it `stdin`, and waits for it with a deadline.
pub fn run_tool(tool: &str, args: &[&str], stdin: &[u8]) -> ToolRun {
    let mut child = Command::new(redis_tool(tool))
        .args(args)
        .env_remove("REDISCLI_AUTH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {tool}: {e}"));
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        // The tool may exit before reading everything (for example on an error).
        let _ = input.write_all(&stdin);
    });
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    // Wait on a thread and take its answer with a deadline; kill the tool if it hangs.
    let pid = child.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(Duration::from_secs(TOOL_TIMEOUT_SECS)) {
        Ok(status) => status.expect("wait for the tool"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            let _ = waiter.join();
            panic!("{tool} {args:?} did not finish within {TOOL_TIMEOUT_SECS}s");
        }
    };
    let _ = feeder.join();
    ToolRun {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Kills the node in `slot` (SIGKILL), reaps it and leaves the slot empty.
fn kill_in(slot: &mut Option<ServerProcess>) {
    if let Some(node) = slot.take() {
        node.signal("KILL");
        drop(node);
    }
}

/// Calls `spawn` until a node starts (the port may linger briefly after a kill); panics
/// naming `port` after the start timeout.
fn respawn(port: u16, mut spawn: impl FnMut() -> Option<ServerProcess>) -> ServerProcess {
    let deadline = Instant::now() + Duration::from_secs(START_TIMEOUT_SECS);
    while Instant::now() < deadline {
        if let Some(node) = spawn() {
            return node;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
    panic!("the node did not restart on port {port}");
}

/// Runs `redis-benchmark --cluster` (SET and GET, 2000 requests, 4 clients) against the
/// cluster that the node on `port` belongs to, checks that it succeeded without an error
/// and found `masters` masters, and returns what it printed.
pub fn benchmark_cluster(port: u16, masters: usize) -> String {
    let port = port.to_string();
    let args = [
        "--cluster",
        "-p",
        &port,
        "-t",
        "set,get",
        "-n",
        "2000",
        "-c",
        "4",
        "-q",
    ];
    let out = run_tool("redis-benchmark", &args, b"");
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(out.status.success(), "redis-benchmark: {text}");
    assert!(
        text.contains(&format!("Cluster has {masters} master nodes")),
        "{text}"
    );
    assert!(text.contains("SET: ") && text.contains("GET: "), "{text}");
    assert!(!text.to_lowercase().contains("error"), "{text}");
    text
}

/// Attempts at finding free ports that stay free until a static cluster's nodes bind them.
const CLUSTER_START_ATTEMPTS: usize = 5;

/// Nodes started with one `--cluster-shards` list (shard `i + 1` is `nodes()[i]`), each a
/// real process; all are killed on drop.
pub struct StaticCluster {
    nodes: Vec<Option<ServerProcess>>,
    ports: Vec<u16>,
    shards: String,
    extra: Vec<String>,
}

impl StaticCluster {
    /// Starts `n` nodes on free loopback ports with `extra` flags each.
    pub fn start(n: usize, extra: &[&str]) -> StaticCluster {
        for _ in 0..CLUSTER_START_ATTEMPTS {
            let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
            let shards = ports
                .iter()
                .enumerate()
                .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
                .collect::<Vec<_>>()
                .join(",");
            let mut cluster = StaticCluster {
                nodes: Vec::new(),
                ports,
                shards,
                extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            };
            let started: Vec<Option<ServerProcess>> =
                (0..n).map_while(|i| cluster.spawn(i).map(Some)).collect();
            if started.len() == n {
                cluster.nodes = started;
                return cluster;
            }
        }
        panic!("could not start {n} cluster nodes in {CLUSTER_START_ATTEMPTS} attempts");
    }

    fn spawn(&self, i: usize) -> Option<ServerProcess> {
        let id = (i + 1).to_string();
        let mut args = vec![
            "--cluster-enabled",
            "yes",
            "--cluster-shards",
            self.shards.as_str(),
            "--cluster-id",
            id.as_str(),
        ];
        args.extend(self.extra.iter().map(String::as_str));
        ServerProcess::try_start_on(self.ports[i], &args)
    }

    /// The running node `i` (panics if it was stopped).
    pub fn node(&self, i: usize) -> &ServerProcess {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// Every node's `host:port`.
    pub fn addrs(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// The `--cluster-shards` list every node was given.
    pub fn shard_list(&self) -> &str {
        &self.shards
    }

    /// Hands the running nodes over to the caller (they are killed when it drops them);
    /// the cluster keeps their ports and settings, so [`restart`](Self::restart) still works.
    pub fn take_nodes(&mut self) -> Vec<ServerProcess> {
        self.nodes.iter_mut().filter_map(Option::take).collect()
    }

    /// How many nodes the cluster has (running or not).
    pub fn len(&self) -> usize {
        self.ports.len()
    }

    /// Whether the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    /// Kills node `i` (SIGKILL) and reaps it.
    pub fn kill(&mut self, i: usize) {
        kill_in(&mut self.nodes[i]);
    }

    /// Starts node `i` again on its port, with its old settings (and empty data). Retries
    /// for a while: the port may linger briefly after the kill.
    pub fn restart(&mut self, i: usize) {
        let node = respawn(self.ports[i], || self.spawn(i));
        self.nodes[i] = Some(node);
    }
}

/// How long a dynamic cluster may take to settle (joins, migrations, elections).
const SETTLE_TIMEOUT_SECS: u64 = 60;

/// A dynamic cluster: node 0 starts a new cluster, the others join it with
/// `--cluster-join`; each node has its own data directory (removed on drop) and its own
/// client and bus ports, kept across restarts. All nodes are killed on drop.
pub struct DynamicCluster {
    nodes: Vec<Option<ServerProcess>>,
    ports: Vec<(u16, u16)>,
    dirs: Vec<PathBuf>,
    extra: Vec<String>,
}

impl DynamicCluster {
    /// Starts `n` nodes, each a new shard, and waits until every slot is where the ring
    /// puts it.
    pub fn start(n: usize, extra: &[&str]) -> DynamicCluster {
        let mut cluster = DynamicCluster {
            nodes: Vec::new(),
            ports: Vec::new(),
            dirs: Vec::new(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        for _ in 0..n {
            cluster.add_node(&[]);
            cluster.wait_settled();
        }
        cluster
    }

    /// Starts one more node that joins through node 0 (or starts the cluster, if it is the
    /// first), with `flags` added; its index. Does not wait for its slots.
    pub fn add_node(&mut self, flags: &[&str]) -> usize {
        let i = self.nodes.len();
        let dir = std::env::temp_dir().join(format!(
            "cachalot-cluster-{}-{}-{i}",
            std::process::id(),
            unique()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create data dir");
        self.dirs.push(dir);
        self.ports.push((0, 0));
        self.nodes.push(None);
        for _ in 0..CLUSTER_START_ATTEMPTS {
            self.ports[i] = (free_port(), free_port());
            if let Some(node) = self.spawn(i, flags) {
                self.nodes[i] = Some(node);
                return i;
            }
        }
        panic!("node {i} did not start in {CLUSTER_START_ATTEMPTS} attempts");
    }

    fn spawn(&self, i: usize, flags: &[&str]) -> Option<ServerProcess> {
        let (port, bus) = self.ports[i];
        let bus = bus.to_string();
        let dir = self.dirs[i].to_string_lossy().into_owned();
        let seed = self
            .ports
            .iter()
            .enumerate()
            .find(|&(j, _)| j != i && self.nodes.get(j).is_some_and(Option::is_some))
            .map(|(_, (p, _))| format!("127.0.0.1:{p}"));
        let mut args = vec![
            "--cluster-enabled",
            "yes",
            "--cluster-bus-port",
            bus.as_str(),
            "--dir",
            dir.as_str(),
        ];
        if let Some(seed) = &seed {
            args.extend(["--cluster-join", seed.as_str()]);
        }
        args.extend(self.extra.iter().map(String::as_str));
        args.extend_from_slice(flags);
        ServerProcess::try_start_on(port, &args)
    }

    /// The running node `i` (panics if it was stopped).
    pub fn node(&self, i: usize) -> &ServerProcess {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// Indices of the running nodes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_some())
            .collect()
    }

    /// How many nodes were started (running or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node was started.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The `--requirepass` every node was given, if any.
    pub fn password(&self) -> Option<&str> {
        self.extra
            .iter()
            .position(|a| a == "--requirepass")
            .and_then(|i| self.extra.get(i + 1))
            .map(String::as_str)
    }

    /// Kills node `i` (SIGKILL) and reaps it; its data directory stays.
    pub fn kill(&mut self, i: usize) {
        kill_in(&mut self.nodes[i]);
    }

    /// Starts node `i` again with its ports and data directory (its keys are gone: a cache
    /// keeps them in memory only). Retries while the port lingers after the kill.
    pub fn restart(&mut self, i: usize) {
        let node = respawn(self.ports[i].0, || self.spawn(i, &[]));
        self.nodes[i] = Some(node);
    }

    /// `CLUSTER INFO` of node `i` as `field -> value`.
    pub fn info(&self, i: usize) -> std::collections::BTreeMap<String, String> {
        let text = command_as(self.node(i).addr(), self.password(), &["CLUSTER", "INFO"])
            .unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect()
    }

    /// Waits until every running node reports the same epoch, no slot migrating, and as
    /// many known nodes as `members` (default: the running ones).
    pub fn wait_settled_with(&self, members: usize) {
        let deadline = Instant::now() + Duration::from_secs(SETTLE_TIMEOUT_SECS);
        let mut last = Vec::new();
        while Instant::now() < deadline {
            last = self.running().iter().map(|&i| self.info(i)).collect();
            let field = |m: &std::collections::BTreeMap<String, String>, k: &str| {
                m.get(k).cloned().unwrap_or_default()
            };
            let epochs: Vec<String> = last
                .iter()
                .map(|m| field(m, "cluster_current_epoch"))
                .collect();
            let settled = !last.is_empty()
                && epochs.iter().all(|e| !e.is_empty() && *e == epochs[0])
                && last.iter().all(|m| {
                    field(m, "cluster_state") == "ok"
                        && field(m, "cluster_slots_migrating") == "0"
                        && field(m, "cluster_known_nodes") == members.to_string()
                });
            if settled {
                return;
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
        panic!("the cluster did not settle in {SETTLE_TIMEOUT_SECS}s: {last:?}");
    }

    /// [`wait_settled_with`](Self::wait_settled_with) the running nodes as members.
    pub fn wait_settled(&self) {
        self.wait_settled_with(self.running().len());
    }
}

impl Drop for DynamicCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.take();
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A number unique within this process, for directory names.
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Sends one command and returns its reply as text: a simple string, an error (`Err`), an
/// integer, or a bulk string. Enough for the cluster admin commands and `CLUSTER INFO`.
pub fn command(addr: SocketAddr, args: &[&str]) -> Result<String, String> {
    command_as(addr, None, args)
}

/// [`command`] after `AUTH password`, when one is given.
pub fn command_as(
    addr: SocketAddr,
    password: Option<&str>,
    args: &[&str],
) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let encode = |args: &[&str]| {
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        req
    };
    let mut req = String::new();
    if let Some(p) = password {
        req.push_str(&encode(&["AUTH", p]));
    }
    req.push_str(&encode(args));
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    if password.is_some() {
        let mut ok = String::new();
        r.read_line(&mut ok).map_err(|e| e.to_string())?;
        if !ok.starts_with("+OK") {
            return Err(ok.trim_end().trim_start_matches('-').to_owned());
        }
    }
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end();
    match line.as_bytes().first() {
        Some(b'+') | Some(b':') => Ok(line[1..].to_owned()),
        Some(b'-') => Err(line[1..].to_owned()),
        Some(b'$') | Some(b'=') => {
            let len: usize = line[1..]
                .parse()
                .map_err(|_| format!("bad length {line}"))?;
            let mut body = vec![0; len + 2];
            r.read_exact(&mut body).map_err(|e| e.to_string())?;
            body.truncate(len);
            let text = String::from_utf8_lossy(&body).into_owned();
            // RESP3 verbatim strings start with their format.
            Ok(text.strip_prefix("txt:").map(str::to_owned).unwrap_or(text))
        }
        _ => Err(format!("unexpected reply {line}")),
    }
}

/// Waits (up to 5 s) until every thread of process `pid` is stopped: `kill -STOP`
/// returns once the signal is sent, and a thread running on the other core can still
/// answer a request before it stops.
pub fn wait_until_stopped(pid: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let all_stopped = || {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return false;
        };
        tasks.flatten().all(|t| {
            std::fs::read_to_string(t.path().join("stat"))
                .ok()
                .and_then(|stat| {
                    stat.rsplit(')')
                        .next()
                        .map(|rest| rest.trim_start().starts_with('T'))
                })
                .unwrap_or(false)
        })
    };
    while !all_stopped() {
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} did not stop"
        );
        std::thread::park_timeout(Duration::from_millis(5));
    }
}

/// Polls `ok` every 20 ms until it holds; panics naming `what` after `secs` seconds.
pub fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// One field of `INFO <section>` of the node at `addr`; empty when absent.
pub fn info_field(addr: SocketAddr, section: &str, name: &str) -> String {
    command(addr, &["INFO", section])
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_default()
        .trim()
        .to_owned()
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
