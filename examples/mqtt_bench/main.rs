//! The MQTT ingest benchmark's two halves (driven by `bench/mqtt.sh`).
//!
//! `serve` runs a broker (the embedded one: its edge and the internal
//! rumqttd, or none with an external URL) and what takes the messages, in
//! one process as `fleetcare run` does:
//! - `--mode store`: fleetcare's own live path (writer, store, and the
//!   edge or the MQTT source, acknowledging after storage) — the same
//!   functions `run` calls;
//! - `--mode discard`: what only counts: with an external broker a QoS 1
//!   subscriber; with the embedded one the edge, whose messages are
//!   counted and acknowledged at once instead of stored (the edge hands
//!   gateways' messages to the writer, not to a broker).
//!
//! It prints `ready mqtt=HOST:PORT`, and once `--expect` messages are in,
//! one line of figures: messages/s from the first message to the last,
//! CAN frames/s (store mode), and the process's peak RSS; then a `cpu:`
//! line, the CPU time its threads used from `ready` to the last message
//! (`cpu.rs`). It then serves on until SIGTERM: with the embedded broker
//! an early exit could take the last PUBACKs to the publisher with it,
//! and the publisher would wait for them forever.
//!
//! `publish` publishes a recording as fast as the broker takes it (QoS 1),
//! with the lean client of `pipelined.rs`, or with `--client rumqttc`
//! through the same code as `fleetcare simulate --mqtt`, and prints the
//! CPU time it used (the lean client's reading of the recording, before
//! it connects, not counted).

#![allow(clippy::print_stdout)]

mod cpu;
mod pipelined;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use cpu::CpuReading;
use fleetcare::config::{Config, EmbeddedAck, MqttConfig};
use fleetcare::runtime::LiveMetrics;
use fleetcare::simulate::publish::{PublishOptions, publish_recordings};
use fleetcare::sources::broker::InternalBroker;
use fleetcare::sources::edge::Edge;
use fleetcare::sources::mqtt::{self, Connection, MqttError, SourceConfig};
use fleetcare::store::{Incoming, IngestHandle, Store};
use fleetcare::store::{WriterConfig, spawn_writer};
use rumqttc::{AsyncClient, Event, Packet, QoS};

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Client {
    Pipelined,
    Rumqttc,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Store,
    Discard,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    Serve {
        #[arg(long, value_enum)]
        mode: Mode,
        /// `embedded`, or mqtt://host:port of an external broker.
        #[arg(long)]
        broker: String,
        #[arg(long)]
        expect: u64,
        /// The store (store mode).
        #[arg(long)]
        data: Option<PathBuf>,
        /// A topic prefix of this run's own.
        #[arg(long, default_value = "fleet")]
        prefix: String,
        /// Acknowledge on receipt (`[mqtt] embedded_ack = "on_receipt"`);
        /// embedded broker only.
        #[arg(long)]
        ack_on_receipt: bool,
    },
    Publish {
        /// host:port
        #[arg(long)]
        broker: String,
        #[arg(long)]
        recording: PathBuf,
        #[arg(long, value_enum, default_value = "pipelined")]
        client: Client,
        /// Messages published and not yet acknowledged, at most.
        #[arg(long, default_value_t = 1000)]
        window: u16,
    },
}

/// No message for this long after the first: the rest are not coming.
const IDLE: Duration = Duration::from_secs(10);

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.command {
        Cmd::Serve {
            mode,
            broker,
            expect,
            data,
            prefix,
            ack_on_receipt,
        } => runtime.block_on(serve(mode, &broker, expect, data, prefix, ack_on_receipt)),
        Cmd::Publish {
            broker,
            recording,
            client,
            window,
        } => runtime.block_on(async {
            let addr: std::net::SocketAddr = broker.parse().context("--broker is host:port")?;
            let client_id = format!("bench-pub-{}", std::process::id());
            let (messages, seconds, cpu_start) = match client {
                Client::Pipelined => {
                    let encoded =
                        tokio::task::spawn_blocking(move || pipelined::encode(&recording))
                            .await??;
                    let cpu_start = CpuReading::now();
                    let n = encoded.messages() as u64;
                    let secs =
                        pipelined::publish(addr, &client_id, &encoded, window.into()).await?;
                    (n, secs, cpu_start)
                }
                Client::Rumqttc => {
                    let cpu_start = CpuReading::now();
                    let s = publish_recordings(
                        &[recording],
                        &Connection::plain(addr, None),
                        &PublishOptions {
                            client_id,
                            speed: 0.0,
                            inflight: window,
                        },
                    )
                    .await?;
                    (s.messages, s.seconds, cpu_start)
                }
            };
            println!(
                "published {messages} messages in {seconds:.2} s ({:.0}/s)",
                messages as f64 / seconds
            );
            if let Some(cpu) = CpuReading::now().since(&cpu_start) {
                println!("cpu: {cpu}");
            }
            Ok(())
        }),
    }
}

async fn serve(
    mode: Mode,
    broker: &str,
    expect: u64,
    data: Option<PathBuf>,
    prefix: String,
    ack_on_receipt: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !ack_on_receipt || broker == "embedded",
        "--ack-on-receipt is for the embedded broker only"
    );
    // Taken before anything is printed: the script's SIGTERM may follow
    // the figures at once.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mqtt_config = MqttConfig {
        listen: "127.0.0.1:0".to_owned(),
        topic_prefix: prefix.clone(),
        client_id: format!("bench-{}", std::process::id()),
        embedded_ack: if ack_on_receipt {
            EmbeddedAck::OnReceipt
        } else {
            EmbeddedAck::AfterStore
        },
        ..MqttConfig::default()
    };
    let embedded = broker == "embedded";
    let config = Config {
        data_dir: data.clone().unwrap_or_default(),
        mqtt: mqtt_config,
        ..Config::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics = Arc::new(LiveMetrics::default());
    // The embedded broker as `fleetcare run` starts it; kept for the
    // whole run (it has no shutdown).
    let (edge, shown) = if embedded {
        let internal = InternalBroker::start(&config.mqtt)?;
        let edge = Edge::bind(&config, &internal, metrics.clone()).await?;
        let shown = edge.addr().to_string();
        std::mem::forget(internal);
        (Some(edge), shown)
    } else {
        let c = Connection::external(&config.mqtt, broker)?;
        (None, format!("{}:{}", c.host, c.port))
    };
    match (mode, edge) {
        (Mode::Discard, Some(edge)) => {
            // The edge with a sink that counts and acknowledges at once.
            let (tx, mut rx) =
                tokio::sync::mpsc::channel::<Incoming>(WriterConfig::default().queue);
            let handle = IngestHandle::from_sender(tx, metrics.clone());
            let source = edge.spawn(handle, stop_rx);
            let cpu_start = CpuReading::now();
            println!("ready mqtt={shown}");
            let mut count = 0u64;
            let mut first = None;
            let mut last = Instant::now();
            while count < expect {
                let idle = if first.is_some() {
                    IDLE
                } else {
                    Duration::from_secs(600)
                };
                match tokio::time::timeout(idle, rx.recv()).await {
                    Ok(Some(m)) => {
                        first.get_or_insert_with(Instant::now);
                        if let Some(ack) = m.on_stored {
                            ack();
                        }
                        count += 1;
                        last = Instant::now();
                    }
                    Ok(None) | Err(_) => {
                        println!(
                            "discard: only {count} of {expect} messages arrived (none for {} s)",
                            IDLE.as_secs()
                        );
                        break;
                    }
                }
            }
            let cpu = CpuReading::now().since(&cpu_start);
            print_discard(
                count,
                first.map_or(0.0, |f| last.duration_since(f).as_secs_f64()),
                cpu,
            );
            // Acknowledge what else comes until the end.
            tokio::spawn(async move {
                while let Some(m) = rx.recv().await {
                    if let Some(ack) = m.on_stored {
                        ack();
                    }
                }
            });
            let _ = stop_tx.send(true);
            let _ = source.await;
        }
        (Mode::Discard, None) => {
            let connection = Connection::external(&config.mqtt, broker)?;
            discard_subscriber(&config, connection, &prefix, &shown, expect).await?;
        }
        (Mode::Store, edge) => {
            let data = data.context("--data is needed in store mode")?;
            let store = Store::open(&data, config.pipeline())?;
            let (handle, writer) =
                spawn_writer(store, WriterConfig::default(), metrics.clone(), None)?;
            // As `fleetcare run`: the embedded broker's edge, or the
            // subscription to the external broker.
            let source: tokio::task::JoinHandle<Result<(), MqttError>> = match edge {
                Some(edge) => edge.spawn(handle, stop_rx),
                None => {
                    let connection = Connection::external(&config.mqtt, broker)?;
                    let source =
                        mqtt::spawn_source(SourceConfig::new(&config, connection), handle, stop_rx);
                    while metrics.mqtt_subscriptions.get() == 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    source
                }
            };
            let cpu_start = CpuReading::now();
            println!("ready mqtt={shown}");
            let mut first = None;
            let mut last = (0, Instant::now());
            let done = || metrics.stored.get() + metrics.duplicates.get();
            while done() < expect {
                if first.is_none() && metrics.received.get() > 0 {
                    first = Some(Instant::now());
                }
                if done() != last.0 {
                    last = (done(), Instant::now());
                } else if first.is_some() && last.1.elapsed() > IDLE {
                    println!(
                        "store: only {} of {expect} messages arrived (none for {} s)",
                        last.0,
                        IDLE.as_secs()
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            // Read before the writer ends: its thread's time goes with it.
            let cpu = CpuReading::now().since(&cpu_start);
            let secs = first.map_or(0.0, |f| last.1.duration_since(f).as_secs_f64());
            let expect = done();
            let _ = stop_tx.send(true);
            let _ = source.await;
            let store = tokio::task::spawn_blocking(move || writer.join())
                .await?
                .map_err(|_| anyhow::anyhow!("writer panicked"))??;
            let totals = store.totals();
            println!(
                "store: {expect} messages in {secs:.2} s: {:.0} msg/s, {:.0} CAN frames/s, {} batches; peak RSS {:.0} MB",
                expect as f64 / secs,
                totals.can_frames as f64 / secs,
                metrics.batches.get(),
                peak_rss_mb()
            );
            if let Some(cpu) = cpu {
                println!("cpu: {cpu}");
            }
        }
    }
    term.recv().await;
    Ok(())
}

fn print_discard(count: u64, secs: f64, cpu: Option<String>) {
    println!(
        "discard: {count} messages in {secs:.2} s: {:.0} msg/s; peak RSS {:.0} MB",
        count as f64 / secs,
        peak_rss_mb()
    );
    if let Some(cpu) = cpu {
        println!("cpu: {cpu}");
    }
}

/// A QoS 1 subscriber of the external broker that only counts.
async fn discard_subscriber(
    config: &Config,
    connection: Connection,
    prefix: &str,
    shown: &str,
    expect: u64,
) -> anyhow::Result<()> {
    let mut o = connection.options(&config.mqtt.client_id, Duration::from_secs(30), 16 << 20);
    o.set_clean_session(false);
    let (client, mut eventloop) = AsyncClient::new(o, 4096);
    client
        .subscribe(format!("{prefix}/+/+/+"), QoS::AtLeastOnce)
        .await?;
    // Wait for the subscription before saying ready.
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = eventloop.poll().await? {
            break;
        }
    }
    let cpu_start = CpuReading::now();
    println!("ready mqtt={shown}");
    let mut count = 0u64;
    let mut first = None;
    let mut last = Instant::now();
    while count < expect {
        // A broker that lost messages must not hang the benchmark.
        let idle = if first.is_some() {
            IDLE
        } else {
            Duration::from_secs(600)
        };
        match tokio::time::timeout(idle, eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::Publish(_)))) => {
                first.get_or_insert_with(Instant::now);
                count += 1;
                last = Instant::now();
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => {
                println!(
                    "discard: only {count} of {expect} messages arrived (none for {} s)",
                    IDLE.as_secs()
                );
                break;
            }
        }
    }
    let cpu = CpuReading::now().since(&cpu_start);
    let secs = first.map_or(0.0, |f: Instant| last.duration_since(f).as_secs_f64());
    print_discard(count, secs, cpu);
    Ok(())
}
