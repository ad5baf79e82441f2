//! Serves the API tests' fixture (two fleets, tickets, alerts, stored
//! messages) on 127.0.0.1 at a free port, for tests/api/schemathesis.sh:
//! prints one JSON line `{"address": "127.0.0.1:PORT", "admin": TOKEN,
//! "operator": TOKEN}` once it accepts connections, and serves until
//! SIGTERM or Ctrl-C. Test-only: the data lives in a temporary directory
//! removed on exit.

// The fixture is test code: a failure to build it is a panic, as in a test.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;

use tokio::signal::unix::{SignalKind, signal};

// The items the in-process tests use beyond building the fixture.
#[allow(dead_code)]
#[path = "../tests/api/fixture.rs"]
mod fixture;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (fixture, state) = fixture::fixture(None).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ready = serde_json::json!({
        "address": listener.local_addr()?.to_string(),
        "admin": fixture.admin,
        "operator": fixture.operator_a,
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{ready}")?;
    out.flush()?;
    drop(out);
    let mut term = signal(SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    fleetcare::http::api::serve(listener, state, shutdown).await?;
    drop(fixture);
    Ok(())
}
