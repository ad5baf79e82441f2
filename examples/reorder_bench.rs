//! The reorder report (`report parts --reorder`, issue 22) over a large
//! ledger: `--parts` parts × `--depots` depots with a year of movements
//! (`--per-pair` movements each: receipts, issues, counts), on SQLite or
//! the PostgreSQL server `--postgres` names.
//!
//! The catalogue is the shipped one plus generated parts up to `--parts`;
//! `--vehicles-per-depot` trucks of the shipped models at each depot give
//! the shipped parts their forecast demand. Prints how long booking the
//! movements took, then, `--runs` times, reading the stock (the sums of
//! the ledger) and computing the rows, as a figure for
//! docs/benchmarks.md. "stock sums alone" is one sum of the whole ledger
//! (`GET /stock` without filters); the report itself sums it once more.
//!
//! ```text
//! cargo run --example reorder_bench -- [--parts 2000] [--depots 50] [--per-pair 12]
//! ```

#![allow(clippy::print_stdout)]

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use chrono::{TimeDelta, Utc};
use clap::Parser;
use fleetcare::catalog::{Catalog, PartId};
use fleetcare::config::Config;
use fleetcare::db::Db;
use fleetcare::parts::{MovementKind, NewMovement};
use fleetcare::registry::{Depot, ServiceHistory};
use fleetcare::report::{self, Context, Registry};
use fleetcare::store::Store;

#[derive(Debug, Parser)]
struct Args {
    /// Parts in the catalogue (the shipped ones, then generated ones).
    #[arg(long, default_value_t = 2000)]
    parts: usize,
    /// Depots, each stocking every part.
    #[arg(long, default_value_t = 50)]
    depots: usize,
    /// Movements per (part, depot) over the year.
    #[arg(long, default_value_t = 12)]
    per_pair: usize,
    /// Trucks per depot (of the shipped models, in turn).
    #[arg(long, default_value_t = 4)]
    vehicles_per_depot: usize,
    /// Times the report is read and computed.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// A PostgreSQL database to fill (it must be empty); default: SQLite
    /// in a temporary directory.
    #[arg(long)]
    postgres: Option<String>,
}

/// Movements booked per transaction.
const BATCH: usize = 20_000;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models)?;
    for entry in std::fs::read_dir(&shipped)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, models.join(path.file_name().context("a file name")?))?;
        }
    }
    let catalog = Catalog::load(&models)?;
    let mut parts_toml = std::fs::read_to_string(shipped.join("parts.toml"))?;
    for i in catalog.parts().count()..args.parts {
        write!(
            parts_toml,
            "\n[[part]]\nid = \"BENCH-{i:05}\"\nname = \"Bench part {i}\"\nunit = \"pcs\"\nlead_time_days = {}\n",
            7 + i % 30
        )?;
    }
    std::fs::write(models.join("parts.toml"), parts_toml)?;
    let catalog = Catalog::load(&models)?;
    let parts: Vec<PartId> = catalog.parts().map(|p| p.id.clone()).collect();
    let depots: Vec<Depot> = (0..args.depots)
        .map(|d| Depot::new(&format!("depot-{d:02}")))
        .collect::<Result<_, _>>()?;
    let model_ids: Vec<String> = catalog.models().map(|m| m.id.to_string()).collect();

    let mut vehicles = String::from("vehicle_id,fleet_id,model_id,vin,commissioned_on,depot\n");
    for (d, depot) in depots.iter().enumerate() {
        for v in 0..args.vehicles_per_depot {
            let model = &model_ids[(d + v) % model_ids.len()];
            writeln!(
                vehicles,
                "T-{d:02}-{v},fleet-{},{model},,2025-01-01,{depot}",
                d % 5
            )?;
        }
    }
    let vehicles_csv = dir.path().join("vehicles.csv");
    std::fs::write(&vehicles_csv, vehicles)?;

    let config = Config {
        data_dir: dir.path().join("data"),
        models_dir: models,
        database: fleetcare::config::DatabaseConfig {
            url: args.postgres.clone(),
        },
        ..Config::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let db = rt.block_on(Db::connect(&config))?;
    rt.block_on(fleetcare::registry::import_vehicles(
        &db,
        &catalog,
        &vehicles_csv,
    ))?;

    // A year of movements: a count first, then receipts and issues in
    // turn, a day apart per (part, depot) so the year is covered.
    let now = Utc::now();
    let start = now - TimeDelta::days(365);
    let pairs = parts.len() * depots.len();
    let total = pairs * args.per_pair;
    let booking = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for k in 0..args.per_pair {
        let at = start + TimeDelta::days((365 * k / args.per_pair.max(1)) as i64);
        for (i, part) in parts.iter().enumerate() {
            for (d, depot) in depots.iter().enumerate() {
                // A first count of 0 to 39, then issues of 2 and receipts
                // of 2 in turn.
                let (kind, qty, reference) = match k {
                    0 => (
                        MovementKind::Adjust,
                        ((i * 7 + d * 3) % 40) as i64,
                        "count:bench.csv".to_owned(),
                    ),
                    k if k % 2 == 1 => (MovementKind::Issue, -2, format!("ticket:{k}")),
                    _ => (MovementKind::Receipt, 2, format!("order:PO-{k}")),
                };
                batch.push(NewMovement {
                    part: part.clone(),
                    depot: depot.clone(),
                    kind,
                    qty,
                    at,
                    reference,
                    actor: "bench".to_owned(),
                });
                if batch.len() == BATCH {
                    rt.block_on(fleetcare::parts::record(&db, &batch))?;
                    batch.clear();
                }
            }
        }
    }
    rt.block_on(fleetcare::parts::record(&db, &batch))?;
    let booked = booking.elapsed();
    println!(
        "booked {total} movements ({} parts × {} depots × {}) in {:.1} s ({:.0} movements/s)",
        parts.len(),
        depots.len(),
        args.per_pair,
        booked.as_secs_f64(),
        total as f64 / booked.as_secs_f64()
    );

    let store = Store::open_read_only(&config.data_dir, config.pipeline())?.snapshot()?;
    for run in 1..=args.runs {
        let t = Instant::now();
        let pairs = rt.block_on(fleetcare::parts::balances(&db))?.len();
        let read = t.elapsed();
        // What the report reads: the registry with the ledger summed once.
        let (registry, balances) = rt.block_on(Registry::load_with_balances(
            &db,
            now,
            ServiceHistory::LastServicesAndRepairs,
        ))?;
        let loaded = t.elapsed();
        let ctx = Context {
            catalog: &catalog,
            registry: &registry,
            detect: &config.detect,
            as_of: now,
        };
        let rows = report::reorder::reorder(&store, &ctx, &balances, None)?;
        let all = t.elapsed();
        let to_order = rows.iter().filter(|r| r.order_qty > 0).count();
        anyhow::ensure!(pairs == balances.len(), "the two sums disagree");
        println!(
            "run {run}: {} rows ({to_order} to order): stock sums alone {:.0} ms; the report: registry and stock {:.0} ms, forecast and reorder {:.0} ms, together {:.0} ms",
            rows.len(),
            read.as_secs_f64() * 1e3,
            (loaded - read).as_secs_f64() * 1e3,
            (all - loaded).as_secs_f64() * 1e3,
            (all - read).as_secs_f64() * 1e3,
        );
    }
    rt.block_on(db.close());
    Ok(())
}
