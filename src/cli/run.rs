//! `fleetcare run`: the service ([`crate::app::Service`]) until SIGTERM or
//! SIGINT, with the ready line of contract C6 on stdout.

use std::io::Write;

use anyhow::Context;

use crate::app::Service;
use crate::config::Config;

pub(super) fn run(config: &Config) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let service = Service::start(config.clone()).await?;
        print_ready(&service)?;
        service.run_until(wait_for_stop_signal()).await
    })
}

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fleetcare")
        .build()
        .context("cannot start the async runtime")
}

/// `fleetcare ready: http=HOST:PORT mqtt=HOST:PORT`, so that scripts can
/// use port 0 and find the ports.
pub(super) fn print_ready(service: &Service) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", service.ready().line())?;
    out.flush()?;
    Ok(())
}

pub(super) async fn wait_for_stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
