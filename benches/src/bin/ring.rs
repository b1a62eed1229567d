//! Cluster placement: how even the ring's slot map is and how many slots a join or a leave
//! moves, for 2 to 64 shards. Prints a table for `docs/benchmarks.md`.
//!
//! For each seed, shard ids are drawn at random; for each n, the map of the first n shards
//! is compared with the map after the (n+1)-th joins, and the map of n+1 shards with the
//! map after a randomly chosen one of them leaves. Both are divided by the ideal
//! 16384/(n+1), the slots the joiner or leaver owns on average. "old→old" counts the
//! moves between two shards that are neither the joiner nor the leaver, the cascades the
//! load bound causes. "max/mean" is the n-shard map's largest slot count over 16384/n.
//! "build µs" is the median time to place the virtual nodes and compute the n-shard map.
//!
//! ```sh
//! cargo run --release -p cachalot-benches --bin ring -- --seeds 8 --markdown
//! ```

use std::error::Error;
use std::process::ExitCode;
use std::time::Instant;

use cachalot_benches::table::render;
use cachalot_protocol::SLOT_COUNT;
use cachalot_server::cluster::{HashRing, RingConfig, ShardId, ShardSet, SlotMap};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Parser)]
#[command(about = "Balance and movement of the cluster ring's slot map")]
struct Args {
    /// Random shard-id sets per n.
    #[arg(long, default_value_t = 8)]
    seeds: u64,
    /// Smallest shard count.
    #[arg(long, default_value_t = 2)]
    min: usize,
    /// Largest shard count.
    #[arg(long, default_value_t = 64)]
    max: usize,
    /// Virtual nodes per unit of weight.
    #[arg(long, default_value_t = cachalot_server::cluster::ring::DEFAULT_VNODES_PER_WEIGHT)]
    vnodes: u32,
    /// ε in millionths.
    #[arg(long, default_value_t = cachalot_server::cluster::ring::DEFAULT_EPSILON_PPM)]
    epsilon_ppm: u32,
    /// Print a markdown table.
    #[arg(long)]
    markdown: bool,
}

/// One n's figures over all seeds.
#[derive(Default)]
struct Row {
    max_over_mean: Vec<f64>,
    join: Vec<f64>,
    leave: Vec<f64>,
    join_old_to_old: Vec<usize>,
    leave_old_to_old: Vec<usize>,
    build_micros: Vec<f64>,
}

fn build(shards: &ShardSet, config: RingConfig) -> Result<SlotMap, Box<dyn Error>> {
    Ok(HashRing::new(shards, config)?.slot_map())
}

/// Moves from `old` to `new`, and how many of them are between two shards other than
/// `changed`.
fn moves(old: &SlotMap, new: &SlotMap, changed: ShardId) -> (usize, usize) {
    let all = old.moves_to(new);
    let old_to_old = all
        .iter()
        .filter(|m| m.from != changed && m.to != changed)
        .count();
    (all.len(), old_to_old)
}

fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    let config = RingConfig::new(args.vnodes, args.epsilon_ppm)?;
    let slots = f64::from(SLOT_COUNT);
    let mut rows: Vec<(usize, Row)> = (args.min..=args.max).map(|n| (n, Row::default())).collect();
    for seed in 0..args.seeds {
        let mut rng = StdRng::seed_from_u64(seed);
        for (n, row) in &mut rows {
            let n = *n;
            let ids: Vec<ShardId> = (0..=n).map(|_| ShardId::new(rng.gen())).collect();
            let small = ShardSet::uniform(ids[..n].iter().copied())?;
            let large = ShardSet::uniform(ids.iter().copied())?;
            let start = Instant::now();
            let before = build(&small, config)?;
            row.build_micros.push(start.elapsed().as_secs_f64() * 1e6);
            let after_join = build(&large, config)?;
            let leaver = ids[rng.gen_range(0..=n)];
            let after_leave = build(&large.without(leaver), config)?;

            let max = before.slot_counts().map(|(_, c)| c).max().unwrap_or(0);
            row.max_over_mean.push(f64::from(max) / (slots / n as f64));
            let ideal = slots / (n + 1) as f64;
            let (join, join_o2o) = moves(&before, &after_join, ids[n]);
            let (leave, leave_o2o) = moves(&after_join, &after_leave, leaver);
            row.join.push(join as f64 / ideal);
            row.leave.push(leave as f64 / ideal);
            row.join_old_to_old.push(join_o2o);
            row.leave_old_to_old.push(leave_o2o);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let worst = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let mut table = vec![[
        "n",
        "max/mean (worst)",
        "join moved/ideal (mean)",
        "join (worst)",
        "leave moved/ideal (mean)",
        "leave (worst)",
        "old→old join (max)",
        "old→old leave (max)",
        "build µs (median)",
    ]
    .map(String::from)
    .to_vec()];
    for (n, row) in &rows {
        let mut build = row.build_micros.clone();
        build.sort_by(f64::total_cmp);
        table.push(vec![
            n.to_string(),
            format!("{:.4}", worst(&row.max_over_mean)),
            format!("{:.3}", mean(&row.join)),
            format!("{:.3}", worst(&row.join)),
            format!("{:.3}", mean(&row.leave)),
            format!("{:.3}", worst(&row.leave)),
            row.join_old_to_old.iter().max().unwrap_or(&0).to_string(),
            row.leave_old_to_old.iter().max().unwrap_or(&0).to_string(),
            format!("{:.0}", build.get(build.len() / 2).unwrap_or(&0.0)),
        ]);
    }
    let all = |f: fn(&Row) -> &Vec<f64>| -> Vec<f64> {
        rows.iter()
            .flat_map(|(_, r)| f(r).iter().copied())
            .collect()
    };
    let all_o2o = |f: fn(&Row) -> &Vec<usize>| -> Vec<f64> {
        rows.iter()
            .flat_map(|(_, r)| f(r).iter().map(|&c| c as f64))
            .collect()
    };
    let (mm, join, leave, build_all) = (
        all(|r| &r.max_over_mean),
        all(|r| &r.join),
        all(|r| &r.leave),
        all(|r| &r.build_micros),
    );
    let (jo, lo) = (
        all_o2o(|r| &r.join_old_to_old),
        all_o2o(|r| &r.leave_old_to_old),
    );
    let per_n_mean =
        |f: fn(&Row) -> &Vec<f64>| rows.iter().map(|(_, r)| mean(f(r))).fold(0.0, f64::max);
    table.push(vec![
        "worst n".into(),
        format!("{:.4}", per_n_mean(|r| &r.max_over_mean)),
        format!("{:.3}", per_n_mean(|r| &r.join)),
        "".into(),
        format!("{:.3}", per_n_mean(|r| &r.leave)),
        "".into(),
        "".into(),
        "".into(),
        "".into(),
    ]);
    table.push(vec![
        "worst".into(),
        format!("{:.4}", worst(&mm)),
        "".into(),
        format!("{:.3}", worst(&join)),
        "".into(),
        format!("{:.3}", worst(&leave)),
        format!("{:.0}", worst(&jo)),
        format!("{:.0}", worst(&lo)),
        format!("{:.0}", worst(&build_all)),
    ]);
    table.push(vec![
        "mean".into(),
        format!("{:.4}", mean(&mm)),
        format!("{:.3}", mean(&join)),
        "".into(),
        format!("{:.3}", mean(&leave)),
        "".into(),
        format!("{:.1}", mean(&jo)),
        format!("{:.1}", mean(&lo)),
        format!("{:.0}", mean(&build_all)),
    ]);
    print!("{}", render(&table, args.markdown));
    Ok(())
}

fn main() -> ExitCode {
    cachalot_benches::exit_code(run(&Args::parse()))
}
