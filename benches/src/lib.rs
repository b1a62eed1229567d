//! Cachalot benches: criterion benches in `benches/`; in `src/bin/`, the redis-benchmark
//! harness (`compare`), the hit-ratio harness (`hitratio`), the active expiry measurement
//! (`expiry`), memory per entry (`memory`), store reads against moka (`getratio`) and the
//! cache-aside comparison through cachalot-server and redis-server (`serverhit`).

use std::error::Error;
use std::process::ExitCode;

pub mod expiry;
pub mod process;
pub mod reads;
pub mod table;
pub mod trace;

/// A harness's exit: success, or the error printed to stderr and a failure code.
pub fn exit_code(result: Result<(), Box<dyn Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `run` on a multi-thread tokio runtime of `threads` workers (the async harnesses'
/// client side), then exits as [`exit_code`] does.
pub fn exit_code_async(
    threads: usize,
    run: impl std::future::Future<Output = Result<(), Box<dyn Error>>>,
) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build();
    exit_code(match runtime {
        Ok(rt) => rt.block_on(run),
        Err(e) => Err(e.into()),
    })
}

/// Parses a comma-separated list (blank items skipped) with `parse`.
pub fn parse_list<T>(
    list: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse)
        .collect()
}
