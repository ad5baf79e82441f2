//! `fleetcare tickets list | show ID | move ID STATE` (contract C6): the
//! ticket store from the command line, for the after-sales desk and for
//! scripts. `list` prints a table, `show` the ticket as the API gives it
//! (JSON), `move` one line saying what changed.

use std::io::{self, Write};

use anyhow::Context;
use chrono::{SecondsFormat, Utc};
use clap::{Args, Subcommand};
use fleetcare_ingest::ids::{FleetId, VehicleId};

use super::registry::runtime;
use crate::config::{Config, Zone};
use crate::db::Db;
use crate::tickets::{
    Outcome, TicketFilter, TicketId, TicketKind, TicketState, TicketWithEvents, Tickets, Transition,
};

#[derive(Debug, Subcommand)]
pub(super) enum TicketsCommand {
    /// List tickets, newest first.
    List(ListArgs),
    /// One ticket with its history, as JSON.
    Show {
        /// The ticket number.
        id: TicketId,
    },
    /// Move a ticket to another state (C8); refused moves name the allowed ones.
    Move(MoveArgs),
}

#[derive(Debug, Args)]
pub(super) struct ListArgs {
    /// Only tickets in this state (open, dispatched, …, closed, cancelled).
    #[arg(long)]
    state: Option<TicketState>,
    /// Only tickets of this kind (fault, maintenance, recurring, repeat_repair, batch_defect, complaint, manual).
    #[arg(long)]
    kind: Option<TicketKind>,
    #[arg(long)]
    fleet: Option<FleetId>,
    #[arg(long)]
    vehicle: Option<VehicleId>,
}

#[derive(Debug, Args)]
pub(super) struct MoveArgs {
    /// The ticket number.
    id: TicketId,
    /// The state to move to.
    state: TicketState,
    /// What happened, for the history.
    #[arg(long)]
    note: Option<String>,
    /// The technician (needed to dispatch).
    #[arg(long)]
    assignee: Option<String>,
    /// The service outlet: own workshop or partner (needed to dispatch).
    #[arg(long)]
    outlet: Option<String>,
    /// The customer's satisfaction score, 1 to 5 (needed to close).
    #[arg(long)]
    satisfaction: Option<u8>,
    /// repaired, part_replaced, no_fault_found or misuse.
    #[arg(long)]
    outcome: Option<Outcome>,
    /// Labour hours spent in total.
    #[arg(long)]
    labour_hours: Option<f64>,
    /// A part used, as PART=QTY (repeat for several).
    #[arg(long = "part", value_name = "PART=QTY", value_parser = part_used)]
    parts: Vec<(String, u32)>,
    /// At closing: false declines every warranty claim; true accepts a warranty that was unknown at intake (papers checked).
    #[arg(long)]
    warranty: Option<bool>,
    /// A technician is on site with the customer (meets the on-site deadline).
    #[arg(long)]
    on_site: bool,
    /// The outlet's zone, city or rural: the on-site deadline is counted again.
    #[arg(long, value_parser = zone)]
    zone: Option<Zone>,
    /// Closing a service visit: a task done (repeat; default: all of the visit's).
    #[arg(long = "task", value_name = "TASK")]
    tasks_done: Vec<String>,
    /// Who makes the change, for the history [default: $USER].
    #[arg(long)]
    actor: Option<String>,
}

fn zone(text: &str) -> Result<Zone, String> {
    text.parse()
}

fn part_used(text: &str) -> Result<(String, u32), String> {
    let (part, qty) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not PART=QTY, e.g. FLT-OIL-01=2"))?;
    let qty = qty
        .parse()
        .map_err(|_| format!("the quantity in {text:?} is not a whole number"))?;
    Ok((part.to_owned(), qty))
}

pub(super) fn run(config: &Config, command: TicketsCommand) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let db = Db::connect(config).await?;
        let tickets = Tickets::new(db.clone(), config.sla.clone()).with_meters(
            std::sync::Arc::new(crate::tickets::StoreMeters {
                store: std::sync::Arc::new(crate::store::StoreReader::new(
                    &config.data_dir,
                    config.pipeline(),
                )),
            }),
        );
        // Titles in each fleet's language need the catalogue's names; a
        // catalogue that cannot be read leaves them in English.
        let catalog = crate::catalog::Catalog::load(&config.models_dir).ok();
        let lang = Languages {
            db: &db,
            catalog: catalog.as_ref(),
        };
        let result = match command {
            TicketsCommand::List(args) => list(&tickets, args, lang).await,
            TicketsCommand::Show { id } => show(&tickets, id, lang).await,
            TicketsCommand::Move(args) => move_ticket(&tickets, args).await,
        };
        db.close().await;
        result
    })
}

/// What setting titles in the fleets' languages takes (C10).
#[derive(Clone, Copy)]
struct Languages<'a> {
    db: &'a Db,
    catalog: Option<&'a crate::catalog::Catalog>,
}

impl Languages<'_> {
    /// Each ticket's `title` in its fleet's language (`title_en` stays).
    async fn apply(self, found: &mut [crate::tickets::Ticket]) -> anyhow::Result<()> {
        if let Some(catalog) = self.catalog {
            let languages = crate::registry::fleets::languages(self.db).await?;
            crate::tickets::in_fleet_languages(found, catalog, &languages);
        }
        Ok(())
    }
}

async fn list(tickets: &Tickets, args: ListArgs, lang: Languages<'_>) -> anyhow::Result<()> {
    let filter = TicketFilter {
        state: args.state,
        kind: args.kind,
        fleet: args.fleet,
        vehicle: args.vehicle,
        fleets_visible: None,
    };
    let mut found = tickets.list(&filter).await?;
    lang.apply(&mut found).await?;
    let mut out = io::stdout().lock();
    if found.is_empty() {
        writeln!(out, "no tickets match")?;
        return Ok(());
    }
    let dash = || "-".to_owned();
    let rows: Vec<[String; 11]> = found
        .iter()
        .map(|t| {
            [
                t.id.to_string(),
                t.state.to_string(),
                t.priority.to_string(),
                t.kind.to_string(),
                t.fleet.as_ref().map_or_else(dash, ToString::to_string),
                t.vehicle
                    .as_ref()
                    .map(ToString::to_string)
                    .or_else(|| t.model.as_ref().map(|m| format!("model {m}")))
                    .unwrap_or_else(dash),
                t.key.clone(),
                t.occurrences.to_string(),
                t.warranty.status.as_str().to_owned(),
                if t.sla.breached {
                    "breached".to_owned()
                } else {
                    t.sla.resolve_by.to_rfc3339_opts(SecondsFormat::Secs, true)
                },
                t.title.clone(),
            ]
        })
        .collect();
    let header = [
        "id",
        "state",
        "prio",
        "kind",
        "fleet",
        "vehicle",
        "key",
        "seen",
        "warranty",
        "resolve_by",
        "title",
    ]
    .map(String::from);
    let table: Vec<Vec<String>> = std::iter::once(header.to_vec())
        .chain(rows.into_iter().map(Vec::from))
        .collect();
    crate::report::output::write_columns(&mut out, &table)?;
    Ok(())
}

async fn show(tickets: &Tickets, id: TicketId, lang: Languages<'_>) -> anyhow::Result<()> {
    let (mut ticket, events) = tickets.get(id).await?.with_context(|| {
        format!("there is no ticket {id}; list tickets with fleetcare tickets list")
    })?;
    let tasks = tickets.visit_tasks(id).await?;
    lang.apply(std::slice::from_mut(&mut ticket)).await?;
    let outlet_proposed = match (&ticket.outlet, &ticket.vehicle) {
        (None, Some(v)) => crate::registry::outlets::outlet_for_vehicle(tickets.db(), v).await?,
        _ => None,
    };
    let json = serde_json::to_string_pretty(&TicketWithEvents {
        ticket,
        events,
        outlet_proposed,
        tasks,
    })?;
    writeln!(io::stdout().lock(), "{json}")?;
    Ok(())
}

async fn move_ticket(tickets: &Tickets, args: MoveArgs) -> anyhow::Result<()> {
    let actor = args
        .actor
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".to_owned());
    let t = Transition {
        to: args.state,
        note: args.note,
        assignee: args.assignee,
        outlet: args.outlet,
        outcome: args.outcome,
        satisfaction: args.satisfaction,
        labour_hours: args.labour_hours,
        parts_used: args.parts,
        warranty: args.warranty,
        on_site: args.on_site.then_some(true),
        zone: args.zone,
        tasks_done: (!args.tasks_done.is_empty()).then_some(args.tasks_done),
    };
    let ticket = tickets.transition(args.id, t, &actor, Utc::now()).await?;
    writeln!(
        io::stdout().lock(),
        "ticket {} is now {} ({} {}, {})",
        ticket.id,
        ticket.state,
        ticket.kind,
        ticket.key,
        ticket.title
    )?;
    Ok(())
}
