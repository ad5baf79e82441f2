//! `fleetcare bench condition` (issue 23): the condition detector's
//! quality on simulated fleets whose degradations are known, beside a
//! fixed-threshold baseline on the same data, as a table on stdout.

use std::io::{self, Write};

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::catalog::{Catalog, TruckModel};
use crate::config::Config;
use crate::report::condition::detector::Params;
use crate::simulate::condition::{self, ConditionOptions, Detector, Score};

#[derive(Debug, Subcommand)]
pub(super) enum BenchCommand {
    /// Recall before the fault code, lead time and false alarms of the condition detector and of fixed thresholds.
    Condition(ConditionBench),
}

#[derive(Debug, Args)]
pub(super) struct ConditionBench {
    #[arg(long, default_value_t = 200)]
    trucks: u32,
    #[arg(long, default_value_t = 180)]
    days: u32,
    /// Seeds to simulate, comma-separated (the detector was tuned on 1–3).
    #[arg(long, value_delimiter = ',', default_values_t = [101u64, 102, 103, 104, 105])]
    seeds: Vec<u64>,
    /// CUSUM allowance in day standard deviations (tuning; default the detector's).
    #[arg(long)]
    k: Option<f64>,
    /// CUSUM decision interval (tuning; default the detector's).
    #[arg(long)]
    h: Option<f64>,
    /// Learning days (tuning; default the detector's).
    #[arg(long)]
    learn_days: Option<i64>,
    /// The fixed-threshold baseline's quantile of the model's learning-period hourly means.
    #[arg(long, default_value_t = BASELINE_QUANTILE)]
    baseline_quantile: f64,
    /// Also score an EWMA chart on the same baseline: `LAMBDA,LIMIT` (limit in day standard deviations).
    #[arg(long, value_name = "LAMBDA,LIMIT", value_delimiter = ',')]
    ewma: Option<Vec<f64>>,
    /// Leave load, speed and ambient out of the baseline (to measure what conditioning is worth).
    #[arg(long)]
    unconditioned: bool,
}

/// The fixed-threshold baseline's default quantile of learning-period
/// hourly means: the healthy fleet's worst hour.
const BASELINE_QUANTILE: f64 = 1.0;

fn row(out: &mut impl Write, seed: &str, name: &str, s: &Score) -> io::Result<()> {
    writeln!(
        out,
        "{seed:>6}  {name:<16} {:>7} {:>6.3} {:>10} {:>12} {:>10.2}",
        s.planted,
        s.recall(),
        s.median_lead_days()
            .map_or_else(|| "-".to_owned(), |d| format!("{d:.1}")),
        s.false_alarms,
        s.false_alarms_per_100_truck_months(),
    )
}

pub(super) fn run(config: &Config, command: &BenchCommand) -> anyhow::Result<()> {
    let BenchCommand::Condition(args) = command;
    let catalog = Catalog::load(&config.models_dir)
        .context("fix the truck-model catalogue or point --models at another")?;
    let models: Vec<&TruckModel> = catalog.models().collect();
    let d = Params::default();
    let params = Params {
        k: args.k.unwrap_or(d.k),
        h: args.h.unwrap_or(d.h),
        learn_days: args.learn_days.unwrap_or(d.learn_days),
        conditioned: !args.unconditioned,
        ..d
    };
    let mut detectors = vec![
        ("fleetcare cusum", Detector::Cusum(params)),
        (
            "fixed threshold",
            Detector::FixedThreshold {
                quantile: args.baseline_quantile,
            },
        ),
    ];
    if let Some([lambda, limit]) = args.ewma.as_deref() {
        detectors.push((
            "ewma",
            Detector::Ewma {
                params,
                lambda: *lambda,
                limit: *limit,
            },
        ));
    }
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "condition bench: {} trucks × {} days per seed",
        args.trucks, args.days
    )?;
    writeln!(
        out,
        "{:>6}  {:<16} {:>7} {:>6} {:>10} {:>12} {:>10}",
        "seed", "detector", "planted", "recall", "lead_days", "false_alarms", "fa/100tm"
    )?;
    let mut all: Vec<Vec<Score>> = vec![Vec::new(); detectors.len()];
    for &seed in &args.seeds {
        let fleet = condition::simulate(
            &ConditionOptions {
                trucks: args.trucks,
                days: args.days,
                seed,
            },
            &models,
        );
        for ((name, d), scores) in detectors.iter().zip(all.iter_mut()) {
            let s = condition::score(&fleet, d);
            row(&mut out, &seed.to_string(), name, &s)?;
            scores.push(s);
        }
    }
    for ((name, _), scores) in detectors.iter().zip(&all) {
        row(&mut out, "all", name, &Score::pooled(scores))?;
    }
    out.flush().context("cannot write to stdout")
}
