//! Interoperability with the real `redis-cli` and `redis-benchmark` (Debian redis-tools):
//! their interactive mode fed from stdin, mass insertion with `--pipe`, `--scan`, and a
//! benchmark smoke run.

use cachalot_tests::{run_tool as run, ServerProcess};
use std::collections::BTreeSet;

/// Keys written by the mass-insertion test.
const PIPE_KEYS: usize = 100_000;

/// Runs `redis-cli -p PORT <args>` and returns its output, requiring success.
fn cli(server: &ServerProcess, args: &[&str], stdin: &[u8]) -> String {
    let port = server.port().to_string();
    let mut all = vec!["-p", port.as_str()];
    all.extend_from_slice(args);
    let out = run("redis-cli", &all, stdin);
    assert!(out.status.success(), "redis-cli {all:?}: {}", out.stderr);
    out.stdout
}

/// Encodes commands as the RESP text `--pipe` expects.
fn resp_commands<'a>(commands: impl Iterator<Item = Vec<&'a str>>) -> Vec<u8> {
    let mut out = Vec::new();
    for args in commands {
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    out
}

#[test]
fn redis_cli_runs_commands_read_from_stdin() {
    let server = ServerProcess::start();
    let script = "SET greeting hello\nGET greeting\nHSET user:1 name ada lang rust\n\
                  HGETALL user:1\nTTL greeting\nEXPIRE greeting 100\nTTL greeting\n\
                  INCR greeting\nGET missing\nDBSIZE\n";
    // Piped output is redis-cli's raw format: one value per line, nil as an empty line,
    // and an error followed by an empty line.
    let raw = cli(&server, &[], script.as_bytes());
    let lines: Vec<&str> = raw.lines().collect();
    assert_eq!(lines[..3], ["OK", "hello", "2"], "{raw}");
    let pairs: BTreeSet<(&str, &str)> = lines[3..7].chunks(2).map(|p| (p[0], p[1])).collect();
    assert_eq!(
        pairs,
        BTreeSet::from([("name", "ada"), ("lang", "rust")]),
        "{raw}"
    );
    assert_eq!(
        lines[7..],
        [
            "-1",
            "1",
            "100",
            "ERR value is not an integer or out of range",
            "",
            "",
            "2"
        ],
        "{raw}"
    );

    // --no-raw prints what a terminal user sees.
    let script = "GET greeting\nHGETALL nothing\nHGET user:1 name\nGET missing\nINCR user:1\n\
                  TTL greeting\n";
    let pretty = cli(&server, &["--no-raw"], script.as_bytes());
    assert_eq!(
        pretty.lines().collect::<Vec<_>>(),
        [
            "\"hello\"",
            "(empty array)",
            "\"ada\"",
            "(nil)",
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
            "(integer) 100",
        ],
        "{pretty}"
    );
}

#[test]
fn redis_cli_pipe_mass_inserts_a_hundred_thousand_keys() {
    let server = ServerProcess::start();
    let keys: Vec<String> = (0..PIPE_KEYS).map(|i| format!("mass:{i}")).collect();
    let protocol = resp_commands(keys.iter().map(|k| vec!["SET", k.as_str(), "value"]));
    let summary = cli(&server, &["--pipe"], &protocol);
    assert!(
        summary.contains(&format!("errors: 0, replies: {PIPE_KEYS}")),
        "{summary}"
    );
    assert_eq!(cli(&server, &["DBSIZE"], b"").trim(), PIPE_KEYS.to_string());
    assert_eq!(cli(&server, &["GET", "mass:99999"], b"").trim(), "value");
}

#[test]
fn redis_cli_scan_lists_every_key_exactly_as_inserted() {
    let server = ServerProcess::start();
    let mut users: BTreeSet<String> = (0..1_500).map(|i| format!("user:{i}")).collect();
    users.insert("user:with space".to_owned());
    users.insert("user:ünïcødé".to_owned());
    users.insert("user:\"quoted\"".to_owned());
    let others: BTreeSet<String> = (0..700).map(|i| format!("session:{i:04}")).collect();
    let protocol = resp_commands(
        users
            .iter()
            .chain(&others)
            .map(|k| vec!["SET", k.as_str(), "1"]),
    );
    let summary = cli(&server, &["--pipe"], &protocol);
    assert!(summary.contains("errors: 0, replies: 2203"), "{summary}");
    // A hash too, so that SCAN returns keys of every type.
    cli(&server, &["HSET", "session:hash", "f", "v"], b"");

    let all = cli(&server, &["--scan"], b"");
    let listed: BTreeSet<String> = all.lines().map(str::to_owned).collect();
    let mut want: BTreeSet<String> = users.union(&others).cloned().collect();
    want.insert("session:hash".to_owned());
    assert_eq!(listed.len(), want.len(), "distinct keys listed");
    assert_eq!(listed, want);
    let repeats = all.lines().count() - listed.len();
    assert!(repeats <= want.len() / 10, "{repeats} keys listed twice");

    let matched = cli(&server, &["--scan", "--pattern", "user:*"], b"");
    let listed: BTreeSet<String> = matched.lines().map(str::to_owned).collect();
    assert_eq!(listed, users);
}

#[test]
fn redis_benchmark_runs_each_requested_test() {
    let server = ServerProcess::start();
    let port = server.port().to_string();
    let args = [
        "-p",
        &port,
        "-n",
        "2000",
        "-c",
        "10",
        "-t",
        "set,get,incr,mset,ping",
        "-q",
    ];
    let out = run("redis-benchmark", &args, b"");
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    // Progress updates end in CR; each finished test prints one summary line.
    let finished: Vec<&str> = out
        .stdout
        .split(['\r', '\n'])
        .filter(|l| l.contains("requests per second"))
        .map(|l| l.trim().split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        finished,
        [
            "PING_INLINE",
            "PING_MBULK",
            "SET",
            "GET",
            "INCR",
            "MSET (10 keys)"
        ],
        "{}",
        out.stdout
    );
}

#[test]
fn redis_cli_reports_its_version_and_reads_info() {
    let version = run("redis-cli", &["--version"], b"");
    assert!(version.status.success());
    assert!(
        version.stdout.starts_with("redis-cli "),
        "{}",
        version.stdout
    );
    let server = ServerProcess::start();
    let info = cli(&server, &["--no-raw", "INFO", "server"], b"");
    assert!(info.contains("redis_version:7.2.4"), "{info}");
    assert!(
        info.contains(&format!("tcp_port:{}", server.port())),
        "{info}"
    );
}
