//! `fleetcare tokens create --role ROLE [--fleet ID]...` (contract C6): a
//! new API bearer token, printed once on stdout; only its hash is stored.

use std::io::{self, Write};

use anyhow::Context;
use clap::{Args, ValueEnum};
use fleetcare_ingest::ids::FleetId;

use crate::config::Config;
use crate::db::Db;
use crate::http::api::{Role, create_token};

#[derive(Debug, Args)]
pub(super) struct CreateArgs {
    /// What the token may do: admin, support (every fleet), planner (reports), operator (its fleets).
    #[arg(long, value_enum)]
    role: RoleArg,
    /// A fleet the token may see; required (once or more) for an operator.
    #[arg(long = "fleet", value_name = "ID", value_parser = parse_fleet)]
    fleets: Vec<FleetId>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Support,
    Planner,
    Operator,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Support => Role::Support,
            RoleArg::Planner => Role::Planner,
            RoleArg::Operator => Role::Operator,
        }
    }
}

fn parse_fleet(text: &str) -> Result<FleetId, String> {
    FleetId::new(text).map_err(|e| e.to_string())
}

pub(super) fn create(config: &Config, args: &CreateArgs) -> anyhow::Result<()> {
    let role = Role::from(args.role);
    let token = super::registry::runtime()?.block_on(async {
        let db = Db::connect(config).await?;
        let token = create_token(&db, role, &args.fleets).await;
        db.close().await;
        anyhow::Ok(token?)
    })?;
    let mut out = io::stdout().lock();
    writeln!(out, "{token}")
        .and_then(|()| out.flush())
        .context("cannot write the token to stdout")
}
