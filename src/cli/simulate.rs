//! `fleetcare simulate`: a simulated fleet written as a recording (`--out`)
//! and/or published live to a broker (`--mqtt`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::config::Config;
use crate::simulate::publish::{PublishOptions, publish_recordings};
use crate::simulate::{RECORDING_FILE_FOR_MQTT, SimulateArgs};
use crate::sources::mqtt::Connection;

pub(super) fn run(config: &Config, args: &SimulateArgs) -> anyhow::Result<()> {
    let catalog = crate::catalog::Catalog::load(&config.models_dir)
        .context("fix the truck-model catalogue or point --models at another")?;
    // Without --out the recording is only a step on the way to the broker.
    let (out, scratch) = match &args.out {
        Some(o) => (o.clone(), None),
        None => {
            let d = tempfile_dir().context("cannot make a scratch folder for the recording")?;
            (d.join(RECORDING_FILE_FOR_MQTT), Some(d))
        }
    };
    let started = std::time::Instant::now();
    let summary = crate::simulate::run(
        &args.options(&config.mqtt.topic_prefix, out.clone()),
        &catalog,
    )
    .context("the simulation did not complete")?;
    eprintln!("{summary} in {:.1} s", started.elapsed().as_secs_f64());
    let result = match &args.mqtt {
        Some(url) => publish(config, url, &out, args.speed),
        None => Ok(()),
    };
    if let Some(d) = scratch {
        let _ = std::fs::remove_dir_all(d);
    }
    result
}

fn publish(config: &Config, url: &str, recording: &PathBuf, speed: f64) -> anyhow::Result<()> {
    let connection = Connection::external(&config.mqtt, url).context("fix --mqtt")?;
    let options = PublishOptions {
        client_id: format!("simulate-{}", std::process::id()),
        speed,
        inflight: 1000,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let s = runtime
        .block_on(publish_recordings(
            std::slice::from_ref(recording),
            &connection,
            &options,
        ))
        .context("publishing the simulated fleet failed")?;
    writeln!(
        std::io::stdout(),
        "published {} messages ({} bytes) to {url} in {:.1} s ({:.0}/s)",
        s.messages,
        s.bytes,
        s.seconds,
        s.messages as f64 / s.seconds.max(1e-9)
    )?;
    Ok(())
}

/// A fresh folder under the system's temporary directory.
fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "fleetcare-simulate-{}-{}",
        std::process::id(),
        crate::runtime::secret::random_hex(4).map_err(std::io::Error::other)?
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
