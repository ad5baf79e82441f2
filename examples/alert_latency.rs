//! Critical-DM1-to-ticket latency (driven by `bench/alerts.sh`): publishes
//! red-stop-lamp DM1s, each for a registered truck of its own (so each
//! opens a P1 ticket), to a running `fleetcare run`, and times each until its alert
//! arrives on `{prefix}/{fleet}/alerts` — the alert is sent right after
//! the ticket is committed, so this bounds the ticket latency from above.
//! Prints p50, p99 and the maximum.
//!
//! The DM1s go out on a connection of their own (the gateway's), apart
//! from the alert subscription (the operator's), as in the field. With the
//! embedded broker both connect to fleetcare's edge: the DM1 goes to the
//! store's writer, the alert comes from rumqttd over the subscriber's
//! link (docs/decisions.md).

#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Parser;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

#[derive(Debug, Parser)]
struct Args {
    /// host:port of the broker fleetcare uses.
    #[arg(long)]
    broker: String,
    #[arg(long, default_value = "fleet")]
    prefix: String,
    /// DM1s to time.
    #[arg(long, default_value_t = 200)]
    count: u32,
    /// Pause between them.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    every: Duration,
    /// Names this run's trucks `LAT-{run}-00000`, `-00001`, … in fleet
    /// `latency` (default: the process id). Only registered trucks get
    /// tickets: import them first (bench/alerts.sh does).
    #[arg(long)]
    run: Option<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (host, port) = args
        .broker
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("--broker is host:port"))?;
    let mut o = MqttOptions::new(
        format!("alert-latency-{}", std::process::id()),
        host,
        port.parse()?,
    );
    o.set_max_packet_size(1 << 20, 1 << 20);
    let mut gateway_options = o.clone();
    gateway_options.set_client_id(format!("alert-latency-gateway-{}", std::process::id()));
    let (client, mut eventloop) = AsyncClient::new(o, 1000);
    fleetcare::sources::mqtt::without_nagle(&mut eventloop);
    let (gateway, mut gateway_loop) = AsyncClient::new(gateway_options, 1000);
    fleetcare::sources::mqtt::without_nagle(&mut gateway_loop);
    let fleet = "latency";
    client
        .subscribe(format!("{}/{fleet}/alerts", args.prefix), QoS::AtLeastOnce)
        .await?;
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = eventloop.poll().await? {
            break;
        }
    }
    // Connected before the first DM1 is timed.
    loop {
        if let Event::Incoming(Packet::ConnAck(_)) = gateway_loop.poll().await? {
            break;
        }
    }
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let mut latencies = Vec::new();
    let mut next = tokio::time::interval(args.every);
    let mut i = 0u32;
    let t0 = chrono::Utc::now().timestamp();
    let run = args
        .run
        .clone()
        .unwrap_or_else(|| std::process::id().to_string());
    let mut last_alert = Instant::now();
    while latencies.len() < args.count as usize {
        if i == args.count && last_alert.elapsed() > Duration::from_secs(30) {
            println!(
                "{} alerts never arrived",
                args.count as usize - latencies.len()
            );
            break;
        }
        tokio::select! {
            _ = next.tick(), if i < args.count => {
                // A truck per DM1 and per run: a truck with an open
                // ticket for this fault would only add an occurrence.
                let vehicle = format!("LAT-{run}-{i:05}");
                // Red stop lamp on, SPN 100 FMI 1.
                let payload = format!("({t0}.000000) can0 18FECA00#10FF64000101FFFF\n");
                sent.insert(vehicle.clone(), Instant::now());
                gateway
                    .publish(format!("{}/{fleet}/{vehicle}/can", args.prefix), QoS::AtLeastOnce, false, payload)
                    .await?;
                i += 1;
            }
            // The gateway's connection only publishes; a lost broker ends the run.
            e = gateway_loop.poll() => {
                e?;
            }
            e = eventloop.poll() => {
                if let Event::Incoming(Packet::Publish(p)) = e? {
                    let alert: serde_json::Value = serde_json::from_slice(&p.payload)?;
                    if let Some(start) = alert["vehicle"].as_str().and_then(|v| sent.remove(v)) {
                        latencies.push(start.elapsed());
                        last_alert = Instant::now();
                    }
                }
            }
        }
    }
    latencies.sort();
    println!(
        "critical DM1 to alert (ticket committed): {} samples, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    Ok(())
}
