//! The sink's IO shell: the writer thread's record sink, the task that
//! encodes, batches and writes with the `influxdb2` client, and the spool
//! it falls back on.
//!
//! ```text
//! writer thread ── records ──▶ queue (bounded) ──▶ sink task: encode, batch ── influxdb2 ──▶ /api/v2/write
//!      └── queue full: encode, straight to the spool ──▲     │ failed: spool, back off
//! ticket export ── lines ──▶ spool (synced) ──────────────┘     │ refused (4xx): rejected.lp
//! ```
//!
//! The writer thread never waits on the network and does little: it
//! copies the records that have a line (an `Arc` and a few numbers each)
//! into an unbounded channel whose contents are counted; above the limit
//! it encodes them and appends them to the spool itself (a synced file
//! write, as its own store writes are). The sink task does the rest:
//! [`Batcher`] decides, this file does the IO.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::batcher::{Action, Batcher, BatcherConfig, Flight, Outcome};
use super::encode::{Encoder, has_line};
use super::line::LineBuf;
use super::spool::{Dropped, Spool};
use crate::runtime::{Backoff, LiveMetrics};
use crate::store::RecordSink;
use fleetcare_ingest::pipeline::Record;

/// Everything the sink needs, resolved from `[influxdb]`.
#[derive(Clone)]
pub struct Settings {
    pub url: String,
    pub org: String,
    pub bucket: String,
    pub token: String,
    pub batch_lines: usize,
    pub flush_interval: Duration,
    pub timeout: Duration,
    pub max_retry_delay: Duration,
    pub buffer_dir: PathBuf,
    pub max_buffer_bytes: u64,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &"(secret)")
            .field("batch_lines", &self.batch_lines)
            .field("buffer_dir", &self.buffer_dir)
            .finish_non_exhaustive()
    }
}

/// The sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot open the InfluxDB spool in {dir}: {source}")]
    Spool {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("the InfluxDB url {url:?} is not an http:// or https:// address without a path")]
    Url { url: String },
    #[error(
        "[influxdb] takes its token from the environment variable {var}, which is not set; set it (empty for a server without auth) or remove [influxdb]"
    )]
    Token { var: String },
}

impl Settings {
    /// The settings of `[influxdb]`, the token read from the environment.
    pub fn from_config(
        c: &crate::config::InfluxConfig,
        data_dir: &Path,
    ) -> Result<Self, SinkError> {
        let token = std::env::var(&c.token_env).map_err(|_| SinkError::Token {
            var: c.token_env.clone(),
        })?;
        Ok(Self {
            url: c.url.clone(),
            org: c.org.clone(),
            bucket: c.bucket.clone(),
            token,
            batch_lines: c.batch_lines,
            flush_interval: c.flush_interval,
            timeout: c.timeout,
            max_retry_delay: c.max_retry_delay,
            buffer_dir: c.buffer_dir(data_dir),
            max_buffer_bytes: c.max_buffer_bytes,
        })
    }
}

/// How one write went, with what to log.
#[derive(Debug)]
enum WriteResult {
    Written,
    /// Send again later; `operator` when a person must act (bad token,
    /// unknown bucket).
    Failed {
        error: String,
        operator: bool,
    },
    Rejected {
        error: String,
    },
}

impl WriteResult {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Written => Outcome::Written,
            Self::Failed { .. } => Outcome::Failed,
            Self::Rejected { .. } => Outcome::Rejected,
        }
    }
}

/// One write with the `influxdb2` client, bounded by `timeout` (the client
/// has none of its own). Server errors, 429, 408 and no answer are sent
/// again; 401, 403 and 404 too (a token or bucket an operator will fix,
/// so the data waits in the spool); other 4xx mean the batch itself is
/// wrong and are set aside.
async fn write(
    client: &influxdb2::Client,
    org: &str,
    bucket: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> WriteResult {
    let request = client.write_line_protocol(org, bucket, body);
    match tokio::time::timeout(timeout, request).await {
        Err(_) => WriteResult::Failed {
            error: format!("no answer within {timeout:?}"),
            operator: false,
        },
        Ok(Ok(())) => WriteResult::Written,
        Ok(Err(influxdb2::RequestError::Http { status, text })) => {
            let code = status.as_u16();
            let error = format!("HTTP {code}: {}", text.trim());
            match code {
                401 | 403 | 404 => WriteResult::Failed {
                    error,
                    operator: true,
                },
                408 | 429 | 500..=599 => WriteResult::Failed {
                    error,
                    operator: false,
                },
                _ => WriteResult::Rejected { error },
            }
        }
        Ok(Err(e)) => WriteResult::Failed {
            error: e.to_string(),
            operator: false,
        },
    }
}

/// What the sink task receives: the writer's records (encoded by the
/// task, off the writer thread), or lines; empty lines only wake it.
#[derive(Debug)]
enum Input {
    Records(Vec<Record>),
    Lines(Vec<u8>, usize),
}

impl Input {
    /// What it counts for in the queue limit (a record is about a line).
    fn weight(&self) -> usize {
        match self {
            Self::Records(r) => r.len(),
            Self::Lines(_, n) => *n,
        }
    }
}

/// A handle on the running sink. Clones share it; the sink task ends
/// (spooling what it holds) once every handle and record sink is dropped.
#[derive(Debug, Clone)]
pub struct InfluxSink {
    tx: mpsc::UnboundedSender<Input>,
    encoder: Encoder,
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    spool: Arc<Mutex<Spool>>,
    metrics: Arc<LiveMetrics>,
}

fn lock(spool: &Mutex<Spool>) -> std::sync::MutexGuard<'_, Spool> {
    spool.lock().unwrap_or_else(|e| e.into_inner())
}

impl InfluxSink {
    /// Opens the spool (sending what an earlier run left in it first) and
    /// starts the sink task on the current runtime.
    pub fn start(
        settings: Settings,
        encoder: Encoder,
        metrics: Arc<LiveMetrics>,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), SinkError> {
        let url = reqwest::Url::parse(&settings.url).map_err(|_| SinkError::Url {
            url: settings.url.clone(),
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.path() != "/" {
            // The client replaces the path with /api/v2/write.
            return Err(SinkError::Url { url: settings.url });
        }
        let batch = settings.batch_lines.max(1);
        let (spool, recovered) = Spool::open(
            &settings.buffer_dir,
            settings.max_buffer_bytes,
            batch as u64,
        )
        .map_err(|source| SinkError::Spool {
            dir: settings.buffer_dir.clone(),
            source,
        })?;
        if recovered.segments > 0 || recovered.cut_bytes > 0 {
            tracing::info!(
                lines = recovered.lines,
                segments = recovered.segments,
                cut_bytes = recovered.cut_bytes,
                dir = %settings.buffer_dir.display(),
                "InfluxDB spool holds lines from before; sending them first"
            );
        }
        metrics.influx_buffered_bytes.set(spool.bytes());
        let spool = Arc::new(Mutex::new(spool));
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = Self {
            tx,
            encoder: encoder.clone(),
            queued: Arc::new(AtomicUsize::new(0)),
            max_queued: batch * 4,
            spool: spool.clone(),
            metrics: metrics.clone(),
        };
        let batcher = Batcher::new(BatcherConfig {
            batch_lines: batch,
            flush_interval: settings.flush_interval,
            retry: Backoff::new(
                Duration::from_secs(1).min(settings.max_retry_delay),
                settings.max_retry_delay,
            ),
            max_pending_lines: batch * 2,
        });
        let client = influxdb2::Client::new(&settings.url, &settings.org, &settings.token);
        let task = Task {
            batcher,
            encoder,
            buf: LineBuf::new(),
            rx,
            queued: sink.queued.clone(),
            spool,
            metrics,
            client,
            settings,
            failing_since: None,
        };
        Ok((sink, tokio::spawn(task.run())))
    }

    /// The writer's record sink: hands each batch's records (those with a
    /// line) to the sink task without waiting; the task encodes them, so
    /// the writer thread only copies them (an `Arc` and a few numbers each).
    pub fn record_sink(&self) -> RecordSink {
        let sink = self.clone();
        Box::new(move |records| {
            let records: Vec<Record> = records.iter().filter(|r| has_line(r)).cloned().collect();
            if !records.is_empty() {
                sink.submit(Input::Records(records));
            }
        })
    }

    /// Hands lines to the sink task, as [`InfluxSink::record_sink`] does
    /// records.
    pub fn submit_lines(&self, body: Vec<u8>, lines: usize) {
        if lines > 0 {
            self.submit(Input::Lines(body, lines));
        }
    }

    /// Queues `input` for the sink task; over the queue limit (or with the
    /// task gone) it goes to the spool at once instead: blocking IO, so
    /// call from a blocking thread, as the writer is.
    fn submit(&self, input: Input) {
        let weight = input.weight();
        let before = self.queued.fetch_add(weight, Ordering::Relaxed);
        // An empty queue takes any batch, however large.
        let input = if before == 0 || before + weight <= self.max_queued {
            match self.tx.send(input) {
                Ok(()) => return,
                Err(mpsc::error::SendError(input)) => input,
            }
        } else {
            input
        };
        self.queued.fetch_sub(weight, Ordering::Relaxed);
        let (body, lines) = match input {
            Input::Lines(body, lines) => (body, lines),
            Input::Records(records) => {
                let mut buf = LineBuf::new();
                self.encoder.encode(&records, &mut buf);
                buf.take()
            }
        };
        if let Err(e) = self.spool_now(&body, lines) {
            self.metrics.influx_lines_dropped.inc_by(lines as u64);
            tracing::error!(error = %e, lines, "cannot spool InfluxDB lines; they are lost");
        }
    }

    /// Appends lines to the spool and syncs it before returning (blocking
    /// IO: call from a blocking thread). The sink task sends them in turn.
    pub fn spool_now(&self, body: &[u8], lines: usize) -> std::io::Result<()> {
        let mut spool = lock(&self.spool);
        let dropped = spool.append(body, lines as u64)?;
        account_spooled(&self.metrics, &spool, lines, dropped);
        drop(spool);
        // Wakes the task, which may be idle.
        let _ = self.tx.send(Input::Lines(Vec::new(), 0));
        Ok(())
    }
}

fn account_spooled(metrics: &LiveMetrics, spool: &Spool, lines: usize, dropped: Dropped) {
    metrics.influx_lines_spooled.inc_by(lines as u64);
    metrics.influx_buffered_bytes.set(spool.bytes());
    if dropped.lines > 0 {
        metrics.influx_lines_dropped.inc_by(dropped.lines);
        tracing::warn!(
            lines = dropped.lines,
            bytes = dropped.bytes,
            dir = %spool.dir().display(),
            "the InfluxDB spool is full; dropped its oldest lines (raise [influxdb] max_buffer_bytes to keep more)"
        );
    }
}

/// The write in flight.
struct InFlight {
    kind: Flight,
    /// The spool segment being sent.
    segment: Option<u64>,
    /// A copy of what is sent, to spool or set aside if it is not written.
    body: Vec<u8>,
    lines: usize,
    result: std::pin::Pin<Box<dyn std::future::Future<Output = WriteResult> + Send>>,
}

struct Task {
    batcher: Batcher,
    encoder: Encoder,
    /// Where the task encodes records.
    buf: LineBuf,
    rx: mpsc::UnboundedReceiver<Input>,
    queued: Arc<AtomicUsize>,
    spool: Arc<Mutex<Spool>>,
    metrics: Arc<LiveMetrics>,
    client: influxdb2::Client,
    settings: Settings,
    failing_since: Option<Instant>,
}

impl Task {
    /// Runs `f` on the spool on a blocking thread.
    async fn with_spool<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Spool) -> T + Send + 'static,
    ) -> T {
        let spool = self.spool.clone();
        match tokio::task::spawn_blocking(move || f(&mut lock(&spool))).await {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    fn spool_empty(&self) -> bool {
        lock(&self.spool).is_empty()
    }

    async fn spool_append(&self, body: Vec<u8>, lines: usize) {
        let metrics = self.metrics.clone();
        let result = self
            .with_spool(move |s| {
                let r = s.append(&body, lines as u64);
                if let Ok(dropped) = r {
                    account_spooled(&metrics, s, lines, dropped);
                }
                r.map(|_| ())
            })
            .await;
        if let Err(e) = result {
            self.metrics.influx_lines_dropped.inc_by(lines as u64);
            tracing::error!(error = %e, lines, dir = %self.settings.buffer_dir.display(), "cannot spool InfluxDB lines; they are lost");
        }
    }

    fn start_write(
        &self,
        kind: Flight,
        segment: Option<u64>,
        body: Vec<u8>,
        lines: usize,
    ) -> InFlight {
        let client = self.client.clone();
        let (org, bucket) = (self.settings.org.clone(), self.settings.bucket.clone());
        let timeout = self.settings.timeout;
        let copy = body.clone();
        InFlight {
            kind,
            segment,
            body,
            lines,
            result: Box::pin(async move { write(&client, &org, &bucket, copy, timeout).await }),
        }
    }

    /// Does what the batcher asks until it has nothing more.
    async fn act(&mut self, flight: &mut Option<InFlight>) {
        loop {
            let now = Instant::now();
            let empty = self.spool_empty();
            let Some(action) = self.batcher.poll(now, empty) else {
                return;
            };
            match action {
                Action::Send(body, lines) => {
                    *flight = Some(self.start_write(Flight::Memory, None, body, lines));
                }
                Action::Spool(body, lines) => self.spool_append(body, lines).await,
                Action::SendSpooled => match self.with_spool(|s| s.oldest()).await {
                    Ok(Some(s)) => {
                        *flight = Some(self.start_write(
                            Flight::Spooled,
                            Some(s.id),
                            s.body,
                            s.lines as usize,
                        ));
                    }
                    Ok(None) => self.batcher.written(Outcome::Written, now),
                    Err(e) => {
                        tracing::error!(error = %e, dir = %self.settings.buffer_dir.display(), "cannot read the InfluxDB spool");
                        self.batcher.written(Outcome::Failed, now);
                    }
                },
            }
        }
    }

    /// Settles a finished write: counts, spools, sets aside.
    async fn settle(&mut self, done: InFlight, result: WriteResult) {
        let lines = done.lines as u64;
        match &result {
            WriteResult::Written => {
                self.metrics.influx_lines_written.inc_by(lines);
                if let Some(since) = self.failing_since.take() {
                    tracing::info!(down_for = ?since.elapsed(), "InfluxDB writes work again; sending the spool");
                }
            }
            WriteResult::Failed { error, operator } => {
                self.metrics.influx_write_failures.inc();
                if self.failing_since.is_none() {
                    self.failing_since = Some(Instant::now());
                    if *operator {
                        tracing::error!(url = %self.settings.url, bucket = %self.settings.bucket, error, "InfluxDB refuses fleetcare's writes; check [influxdb] org, bucket and the token; lines are spooled meanwhile");
                    } else {
                        tracing::warn!(url = %self.settings.url, error, "InfluxDB write failed; spooling and retrying with back-off");
                    }
                } else {
                    tracing::debug!(error, "InfluxDB write failed again");
                }
            }
            WriteResult::Rejected { error } => {
                self.metrics.influx_lines_rejected.inc_by(lines);
                let path = self.settings.buffer_dir.join("rejected.lp");
                tracing::error!(error, lines, file = %path.display(), "InfluxDB refused a batch; it is kept in the file and not sent again");
                let header = format!("# {} {error}\n", chrono::Utc::now().to_rfc3339());
                if let Err(e) =
                    append_rejected(&path, &header, &done.body, self.settings.max_buffer_bytes)
                {
                    tracing::error!(error = %e, file = %path.display(), "cannot keep the refused batch");
                }
            }
        }
        match (done.kind, done.segment, result.outcome()) {
            (Flight::Memory, _, Outcome::Failed) => self.spool_append(done.body, done.lines).await,
            (Flight::Spooled, Some(id), Outcome::Failed) => {
                self.with_spool(move |s| s.unsent(id)).await;
            }
            (Flight::Spooled, Some(id), Outcome::Written | Outcome::Rejected) => {
                let metrics = self.metrics.clone();
                let removed = self
                    .with_spool(move |s| {
                        let r = s.sent(id);
                        metrics.influx_buffered_bytes.set(s.bytes());
                        r
                    })
                    .await;
                if let Err(e) = removed {
                    tracing::error!(error = %e, "cannot delete a sent InfluxDB spool segment; it will be sent again");
                }
            }
            _ => {}
        }
        self.batcher.written(result.outcome(), Instant::now());
        self.metrics
            .influx_failing
            .set(i64::from(self.batcher.server_failing()));
    }

    fn receive(&mut self, input: Input) {
        self.queued.fetch_sub(input.weight(), Ordering::Relaxed);
        match input {
            Input::Lines(body, lines) => self.batcher.push(&body, lines, Instant::now()),
            Input::Records(records) => {
                self.encoder.encode(&records, &mut self.buf);
                let (body, lines) = self.buf.take();
                self.batcher.push(&body, lines, Instant::now());
            }
        }
    }

    async fn run(mut self) {
        let mut flight: Option<InFlight> = None;
        let mut open = true;
        loop {
            if flight.is_none() {
                self.act(&mut flight).await;
            }
            if !open && flight.is_none() {
                break;
            }
            let deadline = self.batcher.deadline(self.spool_empty());
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                chunk = self.rx.recv(), if open => match chunk {
                    Some(c) => {
                        self.receive(c);
                        while let Ok(c) = self.rx.try_recv() {
                            self.receive(c);
                        }
                        if flight.is_some() {
                            // Only spooling happens while a write is in flight.
                            if let Some(Action::Spool(b, n)) = self.batcher.poll(Instant::now(), false) {
                                self.spool_append(b, n).await;
                            }
                        }
                    }
                    None => open = false,
                },
                result = async { (&mut flight.as_mut().expect("guarded").result).await }, if flight.is_some() => {
                    if let Some(done) = flight.take() {
                        self.settle(done, result).await;
                    }
                }
                () = sleep => {}
            }
        }
        // Every sender is gone: the last lines are written once if the
        // server is answering, else spooled for the next start.
        if let Some(action) = self.batcher.finish(self.spool_empty()) {
            match action {
                Action::Send(body, lines) => {
                    let mut done = self.start_write(Flight::Memory, None, body, lines);
                    let result = (&mut done.result).await;
                    self.settle(done, result).await;
                }
                Action::Spool(body, lines) => self.spool_append(body, lines).await,
                Action::SendSpooled => {}
            }
        }
        let spooled = lock(&self.spool).lines();
        tracing::info!(
            written = self.metrics.influx_lines_written.get(),
            spooled,
            "InfluxDB sink stopped"
        );
    }
}

/// Appends a refused batch (after a comment line saying why) to `path`,
/// unless the file already holds `limit` bytes.
fn append_rejected(path: &Path, header: &str, body: &[u8], limit: u64) -> std::io::Result<()> {
    use std::io::Write as _;
    if std::fs::metadata(path).is_ok_and(|m| m.len() >= limit) {
        return Err(std::io::Error::other("the file of refused batches is full"));
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(header.as_bytes())?;
    f.write_all(body)?;
    f.sync_data()
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use axum::extract::{Query, State};
    use axum::http::StatusCode;

    use super::*;

    /// A server that answers writes with scripted statuses (204 once the
    /// script is done) and keeps what it was sent.
    #[derive(Default)]
    struct Script {
        statuses: VecDeque<u16>,
        seen: Vec<(u16, String)>,
    }

    type Shared = Arc<Mutex<Script>>;

    async fn write(
        State(script): State<Shared>,
        Query(q): Query<std::collections::HashMap<String, String>>,
        body: axum::body::Bytes,
    ) -> StatusCode {
        assert_eq!(q.get("precision").map(String::as_str), Some("ns"));
        assert_eq!(q.get("bucket").map(String::as_str), Some("b"));
        let mut s = script.lock().unwrap();
        let status = s.statuses.pop_front().unwrap_or(204);
        s.seen
            .push((status, String::from_utf8_lossy(&body).into_owned()));
        StatusCode::from_u16(status).unwrap()
    }

    async fn server(statuses: &[u16]) -> (String, Shared) {
        let script: Shared = Arc::new(Mutex::new(Script {
            statuses: statuses.iter().copied().collect(),
            seen: Vec::new(),
        }));
        let app = axum::Router::new()
            .route("/api/v2/write", axum::routing::post(write))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, script)
    }

    fn settings(url: String, dir: &Path) -> Settings {
        Settings {
            url,
            org: "o".into(),
            bucket: "b".into(),
            token: "t".into(),
            batch_lines: 100,
            flush_interval: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
            max_retry_delay: Duration::from_millis(50),
            buffer_dir: dir.to_owned(),
            max_buffer_bytes: 1 << 20,
        }
    }

    fn encoder() -> Encoder {
        Encoder::new(Arc::default())
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn failures_are_retried_refusals_set_aside_and_auth_errors_kept() {
        let dir = tempfile::tempdir().unwrap();
        // a: 503, then 401 (both retried), then written; b: refused (400);
        // c: written.
        let (url, script) = server(&[503, 401, 204, 400]).await;
        let metrics = Arc::new(LiveMetrics::default());
        let (sink, task) =
            InfluxSink::start(settings(url, dir.path()), encoder(), metrics.clone()).unwrap();
        let seen = |n: usize| script.lock().unwrap().seen.len() >= n;

        sink.submit_lines(b"m a=1 1\n".to_vec(), 1);
        until("a is written on the third try", || seen(3)).await;
        sink.submit_lines(b"m b=1 2\n".to_vec(), 1);
        until("b is refused", || seen(4)).await;
        sink.submit_lines(b"m c=1 3\n".to_vec(), 1);
        until("c is written", || seen(5)).await;
        drop(sink);
        task.await.unwrap();

        let seen: Vec<(u16, String)> = script.lock().unwrap().seen.clone();
        let bodies: Vec<(u16, &str)> = seen.iter().map(|(s, b)| (*s, b.as_str())).collect();
        assert_eq!(
            bodies,
            [
                (503, "m a=1 1\n"),
                (401, "m a=1 1\n"),
                (204, "m a=1 1\n"),
                (400, "m b=1 2\n"),
                (204, "m c=1 3\n"),
            ]
        );
        assert_eq!(metrics.influx_lines_written.get(), 2);
        assert_eq!(metrics.influx_write_failures.get(), 2);
        assert_eq!(metrics.influx_lines_rejected.get(), 1);
        assert_eq!(metrics.influx_lines_dropped.get(), 0);
        assert_eq!(metrics.influx_buffered_bytes.get(), 0);
        let rejected = std::fs::read_to_string(dir.path().join("rejected.lp")).unwrap();
        assert!(rejected.starts_with("# "), "{rejected}");
        assert!(rejected.contains("HTTP 400"), "{rejected}");
        assert!(rejected.ends_with("m b=1 2\n"), "{rejected}");
    }

    #[tokio::test]
    async fn records_are_encoded_by_the_task_and_a_full_queue_spills_to_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        // Nothing listens here: every write fails, everything is spooled.
        let metrics = Arc::new(LiveMetrics::default());
        let (sink, task) = InfluxSink::start(
            settings("http://127.0.0.1:9".into(), dir.path()),
            encoder(),
            metrics.clone(),
        )
        .unwrap();
        let records = crate::sink::encode::tests::samples();
        let mut record_sink = sink.record_sink();
        // The task cannot run meanwhile (one-thread runtime, no await): the
        // queue takes 4 batches' worth (400 records, 80 calls); the writer
        // encodes and spools the rest itself.
        for _ in 0..200 {
            record_sink(&records);
        }
        assert_eq!(metrics.influx_lines_spooled.get(), 5 * 120);
        drop(record_sink);
        drop(sink);
        task.await.unwrap();
        let (spool, _) = Spool::open(dir.path(), 1 << 20, 100).unwrap();
        // Five lines a call (the dead letter has none), all of them kept.
        assert_eq!(spool.lines(), 5 * 200);
        assert_eq!(metrics.influx_lines_spooled.get(), 5 * 200);
        assert_eq!(metrics.influx_lines_dropped.get(), 0);
    }

    #[test]
    fn a_url_with_a_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let e = InfluxSink::start(
            settings("http://h:8086/influx".into(), dir.path()),
            encoder(),
            Arc::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("without a path"), "{e}");
    }
}
