//! Cachalot benches: criterion benches in `benches/`; in `src/bin/`, the redis-benchmark
//! harness (`compare`), the hit-ratio harness (`hitratio`), the active expiry measurement
//! (`expiry`), memory per entry (`memory`) and the cache-aside comparison through
//! cachalot-server and redis-server (`serverhit`).

use std::error::Error;
use std::process::ExitCode;

pub mod expiry;
pub mod process;
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
