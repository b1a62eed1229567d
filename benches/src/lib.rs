//! Cachalot benches: criterion benches in `benches/`; in `src/bin/`, the redis-benchmark
//! harness (`compare`), the hit-ratio harness (`hitratio`) and the active expiry
//! measurement (`expiry`).

pub mod expiry;
pub mod table;
pub mod trace;
