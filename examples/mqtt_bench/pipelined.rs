//! The benchmark's publisher: a lean QoS 1 client that encodes the whole
//! recording before it connects, then writes it in large chunks with up
//! to `window` messages unacknowledged, reading PUBACKs on a task of its
//! own. The packets are rumqttc's own encoding (`mqttbytes`).
//!
//! Why not rumqttc's event loop, as `fleetcare simulate --mqtt` uses: it
//! writes and flushes every publish on its own (`EventLoop::select`), one
//! syscall per message, and on this 2-core machine that publisher took
//! about as much CPU as the broker and fleetcare together. The publisher
//! stands in for 5,000 gateways on hardware of their own; whatever it
//! costs here is taken from the system under test and lowers both the
//! discard-only and fleetcare's figures.
//!
//! It does no reconnects, TLS or sessions: a benchmark that lost its
//! broker has failed.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::BytesMut;
use fleetcare::lines::BoundedLines;
use fleetcare::recording::{self, MAX_LINE};
use fleetcare::simulate::publish::publishable;
use rumqttc::mqttbytes::v4::{Connect, ConnectReturnCode, Disconnect, Packet, Publish};
use rumqttc::mqttbytes::{self, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::Semaphore;

/// Messages written with one syscall at most.
const CHUNK: usize = 256;
/// The largest packet the broker may send us (PUBACKs are 4 bytes).
const MAX_INCOMING: usize = 1 << 16;

/// A recording as the bytes of its PUBLISH packets, packet ids already set.
pub(crate) struct Encoded {
    bytes: BytesMut,
    /// Where each packet ends in `bytes`.
    ends: Vec<usize>,
}

impl Encoded {
    pub(crate) fn messages(&self) -> usize {
        self.ends.len()
    }

    fn start(&self, i: usize) -> usize {
        if i == 0 { 0 } else { self.ends[i - 1] }
    }
}

/// The packet id of the `i`th message: 1, 2, … 65535, 1, … (0 is not one).
fn pkid(i: usize) -> u16 {
    (i % usize::from(u16::MAX)) as u16 + 1
}

pub(crate) fn encode(path: &Path) -> anyhow::Result<Encoded> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = BoundedLines::new(std::io::BufReader::with_capacity(1 << 20, file), MAX_LINE);
    let mut out = BytesMut::new();
    let mut ends = Vec::new();
    while let Some((_, line)) = lines
        .next_line()
        .with_context(|| format!("cannot read {}", path.display()))?
    {
        // What `simulate --mqtt` skips, for the same reasons: a line
        // that is no message, a topic no client may publish to.
        let Some(Ok(r)) = recording::parse(line) else {
            continue;
        };
        if !publishable(&r.topic) {
            continue;
        }
        let mut p = Publish::new(r.topic.as_ref(), QoS::AtLeastOnce, r.payload.as_bytes());
        p.pkid = pkid(ends.len());
        p.write(&mut out)
            .map_err(|e| anyhow::anyhow!("cannot encode a message: {e:?}"))?;
        ends.push(out.len());
    }
    Ok(Encoded { bytes: out, ends })
}

/// Publishes `encoded` and returns once every message is acknowledged:
/// the seconds from the first byte written to the last PUBACK.
pub(crate) async fn publish(
    addr: SocketAddr,
    client_id: &str,
    encoded: &Encoded,
    window: usize,
) -> anyhow::Result<f64> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let mut buf = BytesMut::with_capacity(1 << 16);
    let mut connect = Connect::new(client_id);
    // Longer than any run: this client sends no PINGREQs.
    connect.keep_alive = u16::MAX;
    connect.clean_session = true;
    connect
        .write(&mut buf)
        .map_err(|e| anyhow::anyhow!("cannot encode CONNECT: {e:?}"))?;
    stream.write_all(&buf).await?;
    buf.clear();
    match read_packet(&mut stream, &mut buf).await? {
        Packet::ConnAck(a) if a.code == ConnectReturnCode::Success => {}
        other => bail!("the broker refused the connection: {other:?}"),
    }

    let (mut rd, mut wr) = stream.into_split();
    let credit = Arc::new(Semaphore::new(window.max(1)));
    let n = encoded.messages();
    let acks = {
        let credit = credit.clone();
        tokio::spawn(async move {
            let counted = count_acks(&mut rd, &mut buf, n, &credit).await;
            if counted.is_err() {
                // Wakes the writing loop, which then reports this error.
                credit.close();
            }
            counted
        })
    };

    let started = Instant::now();
    let mut i = 0;
    while i < n {
        // Only this loop takes credit, so what is available now stays so.
        let k = credit.available_permits().clamp(1, CHUNK).min(n - i);
        let Ok(permits) = credit.acquire_many(k as u32).await else {
            break;
        };
        permits.forget();
        wr.write_all(&encoded.bytes[encoded.start(i)..encoded.ends[i + k - 1]])
            .await
            .with_context(|| format!("publishing ({i} of {n} written)"))?;
        i += k;
    }
    let finished = acks.await??;
    let mut bye = BytesMut::new();
    Disconnect
        .write(&mut bye)
        .map_err(|e| anyhow::anyhow!("cannot encode DISCONNECT: {e:?}"))?;
    wr.write_all(&bye).await?;
    wr.shutdown().await?;
    Ok(finished.duration_since(started).as_secs_f64())
}

/// Reads PUBACKs until `n` have come, giving their credit back as they do;
/// returns when the last one came.
async fn count_acks(
    rd: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    n: usize,
    credit: &Semaphore,
) -> anyhow::Result<Instant> {
    let mut acked = 0usize;
    while acked < n {
        let read = rd
            .read_buf(buf)
            .await
            .with_context(|| format!("reading acknowledgements ({acked} of {n} in)"))?;
        if read == 0 {
            bail!("the broker closed the connection after {acked} of {n} acknowledgements");
        }
        let mut newly = 0;
        loop {
            match Packet::read(buf, MAX_INCOMING) {
                Ok(Packet::PubAck(a)) => {
                    // Both brokers acknowledge a connection's QoS 1
                    // messages in order; counting relies on it.
                    let want = pkid(acked + newly);
                    if a.pkid != want {
                        bail!("PUBACK {} where {want} was next", a.pkid);
                    }
                    newly += 1;
                }
                Ok(other) => bail!("unexpected packet from the broker: {other:?}"),
                Err(mqttbytes::Error::InsufficientBytes(_)) => break,
                Err(e) => bail!("bad packet from the broker: {e:?}"),
            }
        }
        acked += newly;
        credit.add_permits(newly);
    }
    Ok(Instant::now())
}

async fn read_packet(stream: &mut TcpStream, buf: &mut BytesMut) -> anyhow::Result<Packet> {
    loop {
        match Packet::read(buf, MAX_INCOMING) {
            Ok(p) => return Ok(p),
            Err(mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => bail!("bad packet from the broker: {e:?}"),
        }
        if stream.read_buf(buf).await? == 0 {
            bail!("the broker closed the connection");
        }
    }
}
