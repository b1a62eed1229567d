//! Cachalot benches: criterion benches in `benches/`, the redis-benchmark harness in `src/bin/`.

pub mod table;
pub mod trace;
