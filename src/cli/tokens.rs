//! `fleetcare tokens create --role ROLE [--fleet ID]... [--expires 90d]`,
//! `tokens list [--format table|json|csv]` and `tokens revoke ID`
//! (contract C6, C14): API bearer tokens. A new token is printed once on
//! stdout (only its hash is stored); the list names tokens by a prefix of
//! that hash, never by the token.

use std::io::{self, Write};

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, ValueEnum};
use fleetcare_ingest::ids::FleetId;

use crate::config::Config;
use crate::db::Db;
use crate::http::api::{Role, create_token_until, list_tokens, revoke_token};
use crate::report::output::{self, Format};

#[derive(Debug, Args)]
pub(super) struct CreateArgs {
    /// What the token may do: admin, support (every fleet, moves tickets), planner (reports), operator (its fleets).
    #[arg(long, value_enum)]
    role: RoleArg,
    /// A fleet the token may see; required (once or more) for an operator.
    #[arg(long = "fleet", value_name = "ID", value_parser = parse_fleet)]
    fleets: Vec<FleetId>,
    /// How long the token lives (e.g. 90d, 12h, 1year), or `never`.
    #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = parse_expiry)]
    expires: Expiry,
}

#[derive(Debug, Args)]
pub(super) struct ListArgs {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
pub(super) struct RevokeArgs {
    /// The token's id as `tokens list` shows it, or the token itself.
    id: String,
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

/// A token's lifetime from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    After(std::time::Duration),
    Never,
}

fn parse_expiry(text: &str) -> Result<Expiry, String> {
    if text == "never" {
        return Ok(Expiry::Never);
    }
    let d = humantime::parse_duration(text).map_err(|e| {
        format!("{text:?} is not a duration such as 90d, 12h or 1year, nor `never`: {e}")
    })?;
    if d.is_zero() {
        return Err("a token must live longer than zero; give e.g. 90d".to_owned());
    }
    // Well past any sensible lifetime; keeps the date arithmetic in range.
    if d > std::time::Duration::from_secs(100 * 366 * 24 * 3600) {
        return Err(format!("{text:?} is more than 100 years; use `never`"));
    }
    Ok(Expiry::After(d))
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn create(config: &Config, args: &CreateArgs) -> anyhow::Result<()> {
    let role = Role::from(args.role);
    let expires_at = match args.expires {
        Expiry::After(d) => Some(Utc::now() + d),
        Expiry::Never => None,
    };
    let token = super::registry::runtime()?.block_on(async {
        let db = Db::connect(config).await?;
        let token = create_token_until(&db, role, &args.fleets, expires_at).await;
        db.close().await;
        anyhow::Ok(token?)
    })?;
    let mut out = io::stdout().lock();
    writeln!(out, "{token}")
        .and_then(|()| out.flush())
        .context("cannot write the token to stdout")?;
    // Stdout carries the token alone; what to know about it goes to stderr.
    match expires_at {
        Some(t) => eprintln!("fleetcare tokens: the token expires at {}", time(t)),
        None => eprintln!(
            "fleetcare tokens: the token never expires; revoke it with `fleetcare tokens revoke` when it is no longer needed"
        ),
    }
    Ok(())
}

pub(super) fn list(config: &Config, args: &ListArgs) -> anyhow::Result<()> {
    let tokens = super::registry::runtime()?.block_on(async {
        let db = Db::connect(config).await?;
        let tokens = list_tokens(&db).await;
        db.close().await;
        anyhow::Ok(tokens?)
    })?;
    let mut out = io::stdout().lock();
    output::write(&mut out, &tokens, args.format)
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

pub(super) fn revoke(config: &Config, args: &RevokeArgs) -> anyhow::Result<()> {
    let revoked = super::registry::runtime()?.block_on(async {
        let db = Db::connect(config).await?;
        let revoked = revoke_token(&db, &args.id).await;
        db.close().await;
        anyhow::Ok(revoked?)
    })?;
    let t = &revoked.token;
    let fleets = if t.fleets.is_empty() {
        String::new()
    } else {
        format!(", fleets {}", t.fleets)
    };
    let what = if revoked.now {
        "revoked token"
    } else {
        "token was already revoked:"
    };
    writeln!(
        io::stdout().lock(),
        "{what} {} ({}{fleets}) at {}",
        t.id,
        t.role,
        t.revoked_at.as_deref().unwrap_or_default()
    )
    .context("cannot write to stdout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_durations_or_never() {
        assert_eq!(
            parse_expiry("90d"),
            Ok(Expiry::After(std::time::Duration::from_secs(90 * 86_400)))
        );
        assert_eq!(
            parse_expiry("12h"),
            Ok(Expiry::After(std::time::Duration::from_secs(12 * 3600)))
        );
        assert_eq!(parse_expiry("never"), Ok(Expiry::Never));
        for bad in ["0s", "soon", "-1d", "1000years"] {
            assert!(parse_expiry(bad).is_err(), "{bad}");
        }
    }
}
