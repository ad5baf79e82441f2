//! Ticket throughput and latency with concurrent clients (issue 6), on
//! SQLite and on PostgreSQL, through the same `Tickets` API the HTTP API
//! calls.
//!
//! Three phases, each with every client running at once: `raise` (one
//! new ticket per call: distinct keys), then `dispatch` (open →
//! dispatched, with assignee and outlet), then `diagnose` (dispatched →
//! diagnosing). Per phase it prints operations per second (operations over
//! the phase's wall time) and the p50 and p99 latency of one call.
//!
//! ```text
//! cargo run --release --example tickets_bench -- [--clients 50] [--per-client 40]
//! ```
//! PostgreSQL: `--postgres URL`, or FLEETCARE_BENCH_POSTGRES_URL /
//! FLEETCARE_TEST_POSTGRES_URL; a scratch database is created on that
//! server and dropped afterwards.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use clap::Parser;
use fleetcare::db::{Db, sqlite_url};
use fleetcare::tickets::{
    NewAlert, Priority, SlaConfig, TicketId, TicketKind, TicketState, Tickets, Transition,
};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use sqlx::{AnyConnection, AssertSqlSafe, Connection};
use tokio::task::JoinSet;

#[derive(Debug, Parser)]
struct Args {
    /// Concurrent clients.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Tickets each client raises (and then moves twice).
    #[arg(long, default_value_t = 40)]
    per_client: usize,
    /// A PostgreSQL server URL (a scratch database is made on it).
    #[arg(long)]
    postgres: Option<String>,
    /// Run on SQLite only.
    #[arg(long)]
    sqlite_only: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let db = Db::connect_url(&sqlite_url(&dir.path().join("bench.db"))?).await?;
        bench("sqlite", db, &args).await?;
        if args.sqlite_only {
            return Ok(());
        }
        let server = args
            .postgres
            .clone()
            .or_else(|| std::env::var("FLEETCARE_BENCH_POSTGRES_URL").ok())
            .or_else(|| std::env::var("FLEETCARE_TEST_POSTGRES_URL").ok());
        let Some(server) = server else {
            println!("postgresql: skipped (no --postgres URL and no FLEETCARE_BENCH_POSTGRES_URL)");
            return Ok(());
        };
        let name = format!("fleetcare_bench_{}", std::process::id());
        admin(&server, &format!("CREATE DATABASE {name}")).await?;
        let result = async {
            let db = Db::connect_url(&with_database(&server, &name)).await?;
            bench("postgresql", db, &args).await
        }
        .await;
        admin(&server, &format!("DROP DATABASE {name} WITH (FORCE)")).await?;
        result
    })
}

async fn bench(backend: &str, db: Db, args: &Args) -> anyhow::Result<()> {
    let tickets = Tickets::new(db.clone(), SlaConfig::default());
    println!(
        "{backend}: {} clients x {} tickets (pool of the default size)",
        args.clients, args.per_client
    );
    let ids = phase(
        backend,
        "raise",
        &tickets,
        args,
        |t, client, i, _| async move {
            let alert = NewAlert {
                kind: TicketKind::Fault,
                fleet: Some(FleetId::new("bench")?),
                vehicle: Some(VehicleId::new(&format!("BENCH-{client:03}"))?),
                model: None,
                key: format!("{}:1", i + 1),
                priority: Priority::P2,
                title: "bench".to_owned(),
                details: String::new(),
                at: Utc::now(),
            };
            Ok(t.raise(alert).await?.ticket().id)
        },
        Vec::new(),
    )
    .await?;
    let ids = phase(
        backend,
        "dispatch",
        &tickets,
        args,
        |t, _, _, id| async move {
            let move_ = Transition {
                assignee: Some("tech".to_owned()),
                outlet: Some("workshop".to_owned()),
                ..Transition::to(TicketState::Dispatched)
            };
            Ok(t.transition(id, move_, "bench", Utc::now()).await?.id)
        },
        ids,
    )
    .await?;
    phase(
        backend,
        "diagnose",
        &tickets,
        args,
        |t, _, _, id| async move {
            let move_ = Transition::to(TicketState::Diagnosing);
            Ok(t.transition(id, move_, "bench", Utc::now()).await?.id)
        },
        ids,
    )
    .await?;
    db.close().await;
    Ok(())
}

/// Runs `op` `per_client` times in each client at once; `ids[client][i]`
/// is the ticket the call works on (empty for raise). Returns the tickets
/// the calls returned, per client.
async fn phase<F, Fut>(
    backend: &str,
    name: &str,
    tickets: &Tickets,
    args: &Args,
    op: F,
    ids: Vec<Vec<TicketId>>,
) -> anyhow::Result<Vec<Vec<TicketId>>>
where
    F: Fn(Tickets, usize, usize, TicketId) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<TicketId>> + Send,
{
    let started = Instant::now();
    let mut set = JoinSet::new();
    for client in 0..args.clients {
        let tickets = tickets.clone();
        let op = op.clone();
        let mine = ids.get(client).cloned().unwrap_or_default();
        let n = args.per_client;
        set.spawn(async move {
            let mut latencies = Vec::with_capacity(n);
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let id = mine.get(i).copied().unwrap_or(TicketId(0));
                let t = Instant::now();
                out.push(op(tickets.clone(), client, i, id).await?);
                latencies.push(t.elapsed());
            }
            anyhow::Ok((client, out, latencies))
        });
    }
    let mut all = Vec::new();
    let mut by_client = vec![Vec::new(); args.clients];
    while let Some(done) = set.join_next().await {
        let (client, out, latencies) = done.context("a client panicked")??;
        by_client[client] = out;
        all.extend(latencies);
    }
    let wall = started.elapsed();
    all.sort_unstable();
    let pct = |p: f64| -> Duration {
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        all[i]
    };
    println!(
        "{backend:<10} {name:<8} {:>6} ops in {:>6.2} s  {:>8.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        all.len(),
        wall.as_secs_f64(),
        all.len() as f64 / wall.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
    Ok(by_client)
}

/// `server` with its database name replaced by `name`.
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = server
        .split_once('?')
        .map_or((server, None), |(b, q)| (b, Some(q)));
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

async fn admin(server: &str, statement: &str) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(server)
        .await
        .context("cannot connect to the PostgreSQL server")?;
    // The database name is made here, not taken from input.
    sqlx::raw_sql(AssertSqlSafe(statement.to_owned()))
        .execute(&mut conn)
        .await
        .with_context(|| format!("{statement} failed"))?;
    conn.close().await?;
    Ok(())
}
