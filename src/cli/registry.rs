//! `fleetcare vehicles import|unknown`, `services import` (contract C4):
//! the fleet registry in the database; `stock import|receive|order|transfer`
//! (C11): the parts ledger.
//!
//! The database is async (sqlx); these commands run it on a small runtime
//! of their own, so the rest of the CLI (`decode`) stays plain sync code.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::catalog::Catalog;
use crate::config::Config;
use crate::db::Db;
use crate::registry::{self, ImportError, SeenVehicle};

/// Which C4 file an import command reads.
#[derive(Debug, Clone, Copy)]
pub(super) enum ImportFile {
    Vehicles,
    Services,
    /// Counts, booked as adjustments.
    Stock,
    Outlets,
    /// Receipts of ordered parts.
    Receipts,
    /// Order lines placed.
    Orders,
    Fleets,
}

/// Who the ledger names for what the command line books.
const CLI_ACTOR: &str = "cli";

/// Imports `file`, printing the summary on stdout; refused rows go to
/// stderr one per line, and nothing from the file is applied.
pub(super) fn import(config: &Config, what: ImportFile, file: &Path) -> anyhow::Result<()> {
    let catalog = Catalog::load(&config.models_dir).context("fix the truck-model catalogue")?;
    let result = runtime()?.block_on(async {
        let db = Db::connect(config).await?;
        let result = match what {
            ImportFile::Vehicles => registry::import_vehicles(&db, &catalog, file).await,
            ImportFile::Services => {
                registry::import_services(&db, &catalog, file, Utc::now()).await
            }
            ImportFile::Stock => {
                crate::parts::import_counts(&db, &catalog, file, CLI_ACTOR, Utc::now()).await
            }
            ImportFile::Receipts => {
                crate::parts::import_receipts(&db, &catalog, file, CLI_ACTOR, Utc::now()).await
            }
            ImportFile::Orders => {
                crate::parts::import_orders(&db, &catalog, file, CLI_ACTOR, Utc::now()).await
            }
            ImportFile::Outlets => registry::import_outlets(&db, file).await,
            ImportFile::Fleets => registry::import_fleets(&db, file).await,
        };
        db.close().await;
        result
    });
    match result {
        Ok(summary) => {
            writeln!(io::stdout().lock(), "{summary}").context("cannot write to stdout")?;
            Ok(())
        }
        Err(ImportError::Rows { path, rows, total }) => {
            let mut err = io::stderr().lock();
            for row in &rows {
                writeln!(err, "{}:{row}", path.display())?;
            }
            if total > rows.len() {
                writeln!(
                    err,
                    "{}: {} more rows refused",
                    path.display(),
                    total - rows.len()
                )?;
            }
            let rows_word = if total == 1 { "row" } else { "rows" };
            anyhow::bail!(
                "nothing was imported from {}: fix the {total} {rows_word} above and import the file again",
                path.display()
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// `stock transfer`: moves `qty` of `part` between two depots and prints
/// what is left at the first (a negative stock is booked and warned of).
pub(super) fn transfer(config: &Config, args: &TransferArgs) -> anyhow::Result<()> {
    let catalog = Catalog::load(&config.models_dir).context("fix the truck-model catalogue")?;
    let part = catalog
        .part(args.part.as_str())
        .with_context(|| {
            format!(
                "part {:?} is not in the catalogue's parts.toml; fix the id",
                args.part
            )
        })?
        .id
        .clone();
    let depot = |name: &str| {
        crate::registry::Depot::new(name).with_context(|| format!("depot {name:?} is not valid"))
    };
    let (from, to) = (depot(&args.from)?, depot(&args.to)?);
    anyhow::ensure!(
        from != to,
        "--from and --to name the same depot; name two depots"
    );
    anyhow::ensure!(args.qty > 0, "--qty is 0; move at least one");
    let reference = args
        .reference
        .clone()
        .unwrap_or_else(|| Utc::now().format("%Y%m%dT%H%M%SZ").to_string());
    anyhow::ensure!(
        crate::parts::valid_reference(&reference),
        "--reference {reference:?} is not a reference; give 1 to 64 printable characters"
    );
    let left = runtime()?.block_on(async {
        let db = Db::connect(config).await?;
        let left = crate::parts::transfer(
            &db,
            &part,
            &from,
            &to,
            args.qty,
            &reference,
            CLI_ACTOR,
            Utc::now(),
        )
        .await;
        db.close().await;
        left
    })?;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "moved {} × {part} from {from} to {to} (reference transfer:{reference}); {left} left at {from}",
        args.qty
    )?;
    if left < 0 {
        writeln!(
            io::stderr().lock(),
            "warning: stock of {part} at {from} is now {left}: count it or book the missing receipt"
        )?;
    }
    Ok(())
}

/// `stock transfer` options.
#[derive(Debug, clap::Args)]
pub(super) struct TransferArgs {
    /// The part (an id of parts.toml).
    #[arg(long)]
    part: String,
    /// The depot the parts leave.
    #[arg(long)]
    from: String,
    /// The depot the parts go to.
    #[arg(long)]
    to: String,
    /// How many.
    #[arg(long)]
    qty: u32,
    /// The transfer's reference [default: the time, e.g. 20260301T080000Z].
    #[arg(long)]
    reference: Option<String>,
}

/// Where `vehicles unknown` learns which vehicles have sent data.
pub(super) type SeenSource = fn(&Config) -> anyhow::Result<Vec<SeenVehicle>>;

/// The vehicles the store under the data directory has data from.
pub(super) fn seen_in_store(config: &Config) -> anyhow::Result<Vec<SeenVehicle>> {
    let seen = crate::store::seen_vehicles(&config.data_dir, config.pipeline())
        .context("cannot read the vehicles seen from the store; check --data")?;
    Ok(seen
        .into_iter()
        .map(|s| SeenVehicle {
            fleet: s.fleet,
            vehicle: s.vehicle,
            first_seen: s.first_seen.to_datetime(),
            last_seen: s.last_seen.to_datetime(),
        })
        .collect())
}

/// Lists the vehicles `seen` names that are not in the registry, as a
/// table on stdout.
pub(super) fn unknown(config: &Config, seen: SeenSource) -> anyhow::Result<()> {
    let seen = seen(config)?;
    let unknown = runtime()?.block_on(async {
        let db = Db::connect(config).await?;
        let unknown = registry::unknown_vehicles(&db, &seen).await;
        db.close().await;
        unknown
    })?;
    let mut out = io::stdout().lock();
    if unknown.is_empty() {
        writeln!(out, "every vehicle that sent data is in the registry")?;
        return Ok(());
    }
    let time = |t: Option<DateTime<Utc>>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
        )
    };
    let rows: Vec<[String; 5]> = unknown
        .iter()
        .map(|u| {
            [
                u.seen.fleet.to_string(),
                u.seen.vehicle.to_string(),
                time(u.seen.first_seen),
                time(u.seen.last_seen),
                u.registered_fleet
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |f| format!("registered in fleet {f}")),
            ]
        })
        .collect();
    let header = ["fleet", "vehicle", "first_seen", "last_seen", "note"].map(String::from);
    let table: Vec<Vec<String>> = std::iter::once(header.to_vec())
        .chain(rows.into_iter().map(Vec::from))
        .collect();
    crate::report::output::write_columns(&mut out, &table)?;
    let n = unknown.len();
    writeln!(
        out,
        "{n} {} sent data but {} not in the registry; add {} with fleetcare vehicles import",
        if n == 1 { "vehicle" } else { "vehicles" },
        if n == 1 { "is" } else { "are" },
        if n == 1 { "it" } else { "them" },
    )?;
    Ok(())
}

/// One thread is enough for a command that runs one transaction; the
/// database's own threads (SQLite) and sockets (PostgreSQL) need the IO and
/// time drivers.
pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
