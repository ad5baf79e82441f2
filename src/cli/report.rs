//! `fleetcare report due|recurring|trends|parts|claims|kpis|condition` (contracts C6, C10, C12): the jobs of
//! [`crate::report`] over the store and the registry, printed as a table,
//! JSON or CSV on stdout.

use std::io::{self, Write};

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};

use crate::catalog::Catalog;
use crate::config::Config;
use crate::db::Db;
use crate::registry::ServiceHistory;
use crate::report::output::{self, Format, Row};
use crate::report::{self, Context, Registry};
use crate::store::{Snapshot, Store};

#[derive(Debug, Args)]
pub(super) struct ReportArgs {
    #[command(subcommand)]
    report: Which,
}

#[derive(Debug, Subcommand)]
enum Which {
    /// Maintenance due: tasks due soon or overdue, the deciding meter and the forecast date.
    Due {
        /// Also list tasks that are ok.
        #[arg(long)]
        all: bool,
        /// Print each task's next service by date and by meter (the invoice line) instead.
        #[arg(long, conflicts_with = "all")]
        next: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Recurring failures, repeat repairs and batch defects.
    Recurring {
        #[command(flatten)]
        common: Common,
    },
    /// Weekly fault episodes per model and code, and per 1000 engine hours.
    Trends {
        /// Weeks to cover, the as-of week included [default: trend_weeks of the config, 12].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=520))]
        weeks: Option<u32>,
        #[command(flatten)]
        common: Common,
    },
    /// Condition signals that drifted from the vehicle's and its peers' normal under the same load, speed and ambient (C12).
    Condition {
        #[command(flatten)]
        common: Common,
    },
    /// Weekly spare-part demand (planned and corrective) against stock; --reorder: what to order.
    Parts {
        /// Weeks to forecast [default: parts_weeks of the config, 12].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=520))]
        weeks: Option<u32>,
        /// One row per part and depot (the vehicles' depots).
        #[arg(long)]
        by_depot: bool,
        /// Per part and depot: on_hand, on_order, weekly_demand, lead time, reorder_point, order_qty, order_by.
        #[arg(long, conflicts_with = "by_depot")]
        reorder: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Warranty claims: covered parts and labour of tickets closed in a period.
    Claims {
        #[command(flatten)]
        period: PeriodArgs,
        /// How rows are printed.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Service KPIs of tickets closed in a period: first-time fixes, response, on-site and delivery times, downtime, SLA, satisfaction.
    Kpis {
        #[command(flatten)]
        period: PeriodArgs,
        /// One row per outlet, technician or model [default: one row for all].
        #[arg(long, value_enum)]
        by: Option<report::KpiBy>,
        /// How rows are printed.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// `--from D --to D`: days closed tickets count in, both included.
#[derive(Debug, Args)]
pub(super) struct PeriodArgs {
    /// The first day (YYYY-MM-DD, UTC) [default: the first ticket's].
    #[arg(long, value_name = "DATE")]
    from: Option<NaiveDate>,
    /// The last day (YYYY-MM-DD, UTC) [default: today].
    #[arg(long, value_name = "DATE")]
    to: Option<NaiveDate>,
}

impl PeriodArgs {
    pub(super) fn period(&self) -> anyhow::Result<report::Period> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            anyhow::bail!("--from {from} is after --to {to}; give the earlier day first");
        }
        Ok(report::Period {
            from: self.from,
            to: self.to,
        })
    }
}

#[derive(Debug, Args)]
struct Common {
    /// The time the report describes: RFC 3339, or a date for its 00:00 UTC [default: now].
    #[arg(long, value_name = "TIME", value_parser = parse_as_of)]
    as_of: Option<DateTime<Utc>>,
    /// How rows are printed.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn parse_as_of(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            format!("{text:?} is not a time; give RFC 3339 (2026-03-01T08:00:00Z) or a date (2026-03-01)")
        })
}

fn context<'a>(
    catalog: &'a Catalog,
    config: &'a Config,
    registry: &'a Registry,
    as_of: DateTime<Utc>,
) -> Context<'a> {
    Context {
        catalog,
        registry,
        detect: &config.detect,
        as_of,
    }
}

const UNREADABLE: &str = "cannot read the fleet registry from the database";
const FAILED: &str = "the report could not be computed";

/// What `due` and `parts` start from: the registry with the last
/// services, and the store's meters, read while those services arrive
/// (the database hands them over a row at a time, the slowest read here).
fn registry_and_meters(
    runtime: &tokio::runtime::Runtime,
    db: &Db,
    store: &Snapshot,
    catalog: &Catalog,
    config: &Config,
    as_of: DateTime<Utc>,
    with_balances: bool,
) -> anyhow::Result<(Registry, report::due::Meters, Vec<crate::parts::Balance>)> {
    // With the balances, the ledger is summed once for the registry's
    // stock and the reorder rows.
    let (mut registry, balances) = if with_balances {
        runtime.block_on(Registry::load_with_balances(
            db,
            as_of,
            ServiceHistory::Nothing,
        ))
    } else {
        runtime
            .block_on(Registry::load(db, as_of, ServiceHistory::Nothing))
            .map(|r| (r, Vec::new()))
    }
    .context(UNREADABLE)?;
    let (meters, services) = std::thread::scope(|scope| {
        let ctx = context(catalog, config, &registry, as_of);
        let meters = scope.spawn(move || report::due::read_meters(store, &ctx));
        let services = runtime.block_on(crate::registry::services_for_reports(
            db,
            as_of,
            ServiceHistory::LastServicesAndRepairs,
        ));
        (meters.join(), services)
    });
    let meters = match meters {
        Ok(m) => m.context(FAILED)?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    registry.services = services.context(UNREADABLE)?;
    Ok((registry, meters, balances))
}

fn print<R: Row>(rows: &[R], format: Format) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    output::write(&mut out, rows, format)
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

/// The reports over tickets: the database only.
fn ticket_report(config: &Config, which: &Which) -> anyhow::Result<()> {
    let runtime = super::registry::runtime()?;
    let db = runtime.block_on(Db::connect(config)).context(UNREADABLE)?;
    let tickets = crate::tickets::Tickets::new(db.clone(), config.sla.clone());
    let result = match which {
        Which::Claims { period, format } => {
            let period = period.period()?;
            let rows = runtime
                .block_on(report::claims::claims(&tickets, period, None))
                .context("cannot read the tickets from the database")?;
            print(&rows, *format)
        }
        Which::Kpis { period, by, format } => {
            let period = period.period()?;
            let rows = runtime
                .block_on(report::kpis::load_kpis(
                    &tickets,
                    period,
                    by.unwrap_or_default(),
                    None,
                ))
                .context("cannot read the tickets from the database")?;
            print(&rows, *format)
        }
        _ => Ok(()),
    };
    runtime.block_on(db.close());
    result
}

pub(super) fn run(config: &Config, args: &ReportArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let common = match &args.report {
        Which::Due { common, .. }
        | Which::Recurring { common }
        | Which::Trends { common, .. }
        | Which::Condition { common }
        | Which::Parts { common, .. } => common,
        which @ (Which::Claims { .. } | Which::Kpis { .. }) => {
            return ticket_report(config, which);
        }
    };
    let catalog = Catalog::load(&config.models_dir)
        .context("fix the truck-model catalogue or point --models at another")?;
    let as_of = common.as_of.unwrap_or_else(Utc::now);
    let store = Store::open_read_only(&config.data_dir, config.pipeline())
        .and_then(|s| s.snapshot())
        .context("cannot open the store; check --data")?;
    let runtime = super::registry::runtime()?;
    let db = runtime.block_on(Db::connect(config)).context(UNREADABLE)?;
    let load = |services| {
        runtime
            .block_on(Registry::load(&db, as_of, services))
            .context(UNREADABLE)
    };
    let rows = match &args.report {
        Which::Due { all, next, .. } => {
            let (registry, meters, _) =
                registry_and_meters(&runtime, &db, &store, &catalog, config, as_of, false)?;
            let ctx = context(&catalog, config, &registry, as_of);
            let tasks = report::due::assess_with(&ctx, &meters);
            if *next {
                print(
                    &report::due::next_service_rows(&tasks, ctx.as_of_date()),
                    common.format,
                )
            } else {
                print(
                    &report::due::due_rows(&tasks, ctx.as_of_date(), *all),
                    common.format,
                )
            }
        }
        Which::Parts {
            weeks,
            by_depot,
            reorder,
            ..
        } => {
            let (registry, meters, balances) =
                registry_and_meters(&runtime, &db, &store, &catalog, config, as_of, *reorder)?;
            let ctx = context(&catalog, config, &registry, as_of);
            let tasks = report::due::assess_with(&ctx, &meters);
            if *reorder {
                print(
                    &report::reorder::reorder_of(&store, &ctx, &tasks, &balances, *weeks)
                        .context(FAILED)?,
                    common.format,
                )
            } else {
                print(
                    &report::parts::parts_demand_of(&store, &ctx, &tasks, *weeks, *by_depot)
                        .context(FAILED)?,
                    common.format,
                )
            }
        }
        Which::Recurring { .. } => {
            let registry = load(ServiceHistory::Repairs)?;
            print(
                &report::recurring::recurring(&store, &context(&catalog, config, &registry, as_of))
                    .context(FAILED)?,
                common.format,
            )
        }
        Which::Condition { .. } => {
            let registry = load(ServiceHistory::Nothing)?;
            print(
                &report::condition::condition(&store, &context(&catalog, config, &registry, as_of))
                    .context(FAILED)?,
                common.format,
            )
        }
        Which::Claims { .. } | Which::Kpis { .. } => Ok(()),
        Which::Trends { weeks, .. } => {
            let registry = load(ServiceHistory::Nothing)?;
            print(
                &report::trends::trends(
                    &store,
                    &context(&catalog, config, &registry, as_of),
                    *weeks,
                )
                .context(FAILED)?,
                common.format,
            )
        }
    };
    runtime.block_on(db.close());
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Report computed."
    );
    rows
}
