//! Load generator and end-to-end benchmark driver for `serve` (see BENCHMARKS.md).
//!
//! HTTP/1.1 over TLS on loopback, written against tokio-rustls directly (no HTTP client library) so that the
//! generator spends as little of the machine's two cores as possible. Subcommands:
//!
//! - `load --url https://127.0.0.1:PORT/mutate --ca FILE --body FILE... [--connections N] [--duration S]
//!   [--warmup S] [--rate R] [--new-connection] [--threads N] [--label L --record FILE]`: closed loop at full
//!   load on N keep-alive connections; `--rate` for an open loop at a fixed rate with a latency histogram (latency
//!   counted from the scheduled send time when the generator is behind, so a stalled server cannot hide its
//!   queue); `--new-connection` for a fresh TCP connection and full TLS handshake (no resumption) per request.
//! - `suite --server-bin FILE --refserver-bin FILE --work DIR --record FILE`: every end-to-end figure for both
//!   the webhook and the reference server (time to ready, RSS, the three loads).
//! - `gen-secrets --out DIR --namespaces N`: ten pull Secrets per namespace as manifests, for `--secrets-dir`.
//! - `report --decision FILE --records FILE`: the Markdown table of `make bench`.
//!
//! Without a subcommand (as `cargo test --benches` runs it) it serves the webhook in-process on an ephemeral
//! port and runs each load mode for a fraction of a second against it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use process::{http_get_ok, proc_status_kib};

#[path = "common/process.rs"]
mod process;
#[path = "common/workload.rs"]
mod workload;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The scale suite's rows (`benches/cluster.rs scale`, labels `scale-<mode>-<pull Secrets>`), one per mode and size.
fn scale_table(out: &mut String, values: &BTreeMap<(String, String), f64>) -> std::fmt::Result {
    let mut rows: Vec<(usize, &str)> = values
        .keys()
        .filter_map(|(label, _)| {
            let rest = label.strip_prefix("scale-")?;
            let (mode, size) = rest.split_once('-')?;
            Some((size.parse().ok()?, if mode == "local" { "local" } else { "cluster" }))
        })
        .collect();
    rows.sort();
    rows.dedup();
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n### Scale: local mode and cluster mode against the real kube-apiserver (`--log-level warn`)\n")?;
    writeln!(
        out,
        "| mode | pull Secrets (namespaces) | created through the API | time to ready | RSS after sync | RSS peak | \
         CPU per 1,000 updates | watch streams | initial lists read | 2,000 reviews/s during relist: p50 / p99 / max | \
         relists |"
    )?;
    writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")?;
    for (size, mode) in rows {
        let get = |metric: &str| values.get(&(format!("scale-{mode}-{size}"), metric.to_string())).copied();
        let fmt =
            |v: Option<f64>, unit: &str, digits: usize| v.map_or("–".into(), |v| format!("{v:.digits$} {unit}"));
        let ms = |metric: &str| get(metric).map_or("–".into(), |v| format!("{v:.2}"));
        writeln!(
            out,
            "| {mode} | {size} ({}) | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} ms | {} |",
            size / 10,
            fmt(get("create_s"), "s", 1),
            fmt(get("ready_ms"), "ms", 0),
            fmt(get("rss_mib"), "MiB", 1),
            fmt(get("rss_peak_mib"), "MiB", 1),
            fmt(get("update_cpu_ms_per_1000"), "ms", 0),
            get("watch_streams").map_or("–".into(), |v| format!("{v:.0}")),
            fmt(get("list_mib"), "MiB", 1),
            ms("relist.p50_ms"),
            ms("relist.p99_ms"),
            ms("relist.max_ms"),
            get("relists").map_or("–".into(), |v| format!("{v:.0}")),
        )?;
    }
    Ok(())
}

fn main() {
    // cargo passes `--bench` to bench binaries; test filters and other harness flags are ignored too.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let result = match args.first().map(String::as_str) {
        Some("load") => run_load_command(&Flags::parse(&args[1..])),
        Some("suite") => suite(&Flags::parse(&args[1..])),
        Some("gen-secrets") => gen_secrets(&Flags::parse(&args[1..])),
        Some("report") => report(&Flags::parse(&args[1..])),
        _ => self_check(),
    };
    if let Err(e) = result {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Flags

#[derive(Default)]
struct Flags(BTreeMap<String, Vec<String>>);

impl Flags {
    fn parse(args: &[String]) -> Self {
        let mut flags = Flags::default();
        let mut it = args.iter().peekable();
        while let Some(arg) = it.next() {
            let Some(name) = arg.strip_prefix("--") else { continue };
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().expect("peeked").clone(),
                _ => String::new(),
            };
            flags.0.entry(name.to_string()).or_default().push(value);
        }
        flags
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.last()).map(String::as_str)
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0.get(name).cloned().unwrap_or_default()
    }

    fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    fn require(&self, name: &str) -> Result<&str, BoxError> {
        self.get(name).ok_or_else(|| format!("--{name} is required").into())
    }

    fn number(&self, name: &str, default: f64) -> Result<f64, BoxError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name} {v:?}: not a number").into()),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP/1.1 over TLS

/// Where and what to send.
struct Target {
    addr: SocketAddr,
    server_name: ServerName<'static>,
    tls: Arc<tokio_rustls::TlsConnector>,
    /// Complete requests (head and body), sent round-robin; `close` variants ask the server to close.
    keep_alive: Vec<Vec<u8>>,
    close: Vec<Vec<u8>>,
}

impl Target {
    fn new(url: &str, ca_pem: &[u8], bodies: &[Vec<u8>]) -> Result<Self, BoxError> {
        let rest = url.strip_prefix("https://").ok_or("--url must be https://HOST:PORT/PATH")?;
        let (authority, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, "/".into()));
        let addr: SocketAddr = authority.parse().map_err(|_| format!("{authority}: give an IP address and port"))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(cert?)?;
        }
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
        // A full handshake for every new connection, as a client without a session cache does.
        config.resumption = rustls::client::Resumption::disabled();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let request = |body: &[u8], close: bool| {
            let mut r = format!(
                "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
                 accept: application/json\r\ncontent-length: {}\r\n{}\r\n",
                body.len(),
                if close { "connection: close\r\n" } else { "" }
            )
            .into_bytes();
            r.extend_from_slice(body);
            r
        };
        Ok(Self {
            addr,
            server_name: ServerName::IpAddress(addr.ip().into()),
            tls: Arc::new(tokio_rustls::TlsConnector::from(Arc::new(config))),
            keep_alive: bodies.iter().map(|b| request(b, false)).collect(),
            close: bodies.iter().map(|b| request(b, true)).collect(),
        })
    }
}

struct Connection {
    io: TlsStream<TcpStream>,
    buf: Vec<u8>,
}

impl Connection {
    async fn open(target: &Target) -> Result<Self, BoxError> {
        let tcp = TcpStream::connect(target.addr).await?;
        tcp.set_nodelay(true)?;
        let io = target.tls.connect(target.server_name.clone(), tcp).await?;
        Ok(Self { io, buf: Vec::with_capacity(16 * 1024) })
    }

    /// Sends one request and reads its response; returns the status.
    async fn exchange(&mut self, request: &[u8]) -> Result<u16, BoxError> {
        self.io.write_all(request).await?;
        self.io.flush().await?;
        loop {
            if let Some((status, total)) = parse_head(&self.buf)? {
                while self.buf.len() < total {
                    self.fill().await?;
                }
                self.buf.drain(..total);
                return Ok(status);
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<(), BoxError> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.io.read(&mut chunk).await?;
        if n == 0 {
            return Err("connection closed mid-response".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// Status and total length (head and body) of the response at the start of `buf`, once its head is complete.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize)>, BoxError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return Ok(None) };
    let head = std::str::from_utf8(&buf[..end])?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line.get(9..12).and_then(|s| s.parse().ok()).ok_or("malformed status line")?;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.trim().parse::<usize>()?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("chunked responses are not supported".into());
        }
    }
    Ok(Some((status, end + 4 + length.unwrap_or(0))))
}

// ---------------------------------------------------------------------------------------------------------------
// Load

#[derive(Clone, Copy)]
struct LoadOptions {
    connections: usize,
    duration: Duration,
    warmup: Duration,
    /// Reviews per second in an open loop; `None` for a closed loop at full load.
    rate: Option<f64>,
    new_connection: bool,
    threads: usize,
}

#[derive(Default)]
struct Samples {
    latencies_ns: Vec<u64>,
    ok: u64,
    /// Non-200 answers and transport errors.
    errors: u64,
    first_error: Option<String>,
}

impl Samples {
    fn merge(&mut self, other: Samples) {
        self.latencies_ns.extend(other.latencies_ns);
        self.ok += other.ok;
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

struct Outcome {
    samples: Samples,
    seconds: f64,
    /// CPU seconds the generator itself used over the measured window.
    generator_cpu: f64,
}

impl Outcome {
    fn rate(&self) -> f64 {
        (self.samples.ok + self.samples.errors) as f64 / self.seconds
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let l = &self.samples.latencies_ns;
        if l.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * (l.len() - 1) as f64).round() as usize;
        l[i.min(l.len() - 1)] as f64 / 1e6
    }
}

fn run_load(target: Arc<Target>, options: LoadOptions) -> Result<Outcome, BoxError> {
    let runtime = if options.threads > 1 {
        tokio::runtime::Builder::new_multi_thread().worker_threads(options.threads).enable_all().build()?
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    };
    runtime.block_on(async move {
        // Keep-alive connections are opened before the clock starts.
        let mut connections = Vec::new();
        if !options.new_connection {
            for _ in 0..options.connections {
                connections.push(Some(Connection::open(&target).await?));
            }
        } else {
            connections.resize_with(options.connections, || None);
        }
        let start = Instant::now() + Duration::from_millis(5);
        let measure_from = start + options.warmup;
        let end = measure_from + options.duration;
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for (id, connection) in connections.into_iter().enumerate() {
            let (target, next) = (target.clone(), next.clone());
            tasks.push(tokio::spawn(worker(id, connection, target, options, next, start, measure_from, end)));
        }
        let cpu_before = process_cpu_seconds(std::process::id());
        tokio::time::sleep_until(measure_from.into()).await;
        let cpu_at_measure = process_cpu_seconds(std::process::id());
        let mut samples = Samples::default();
        for task in tasks {
            samples.merge(task.await?);
        }
        let cpu_after = process_cpu_seconds(std::process::id());
        let _ = cpu_before;
        samples.latencies_ns.sort_unstable();
        Ok(Outcome { samples, seconds: options.duration.as_secs_f64(), generator_cpu: cpu_after - cpu_at_measure })
    })
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    id: usize,
    mut connection: Option<Connection>,
    target: Arc<Target>,
    options: LoadOptions,
    next: Arc<AtomicU64>,
    start: Instant,
    measure_from: Instant,
    end: Instant,
) -> Samples {
    let mut samples = Samples::default();
    let interval_ns = options.rate.map(|r| (1e9 / r) as u64);
    let mut request_index = id;
    loop {
        let sent_at = match interval_ns {
            Some(interval) => {
                let scheduled = start + Duration::from_nanos(next.fetch_add(1, Ordering::Relaxed) * interval);
                if scheduled >= end {
                    break;
                }
                let now = Instant::now();
                if now >= scheduled {
                    // Behind schedule: the wait counts as latency (no coordinated omission).
                    scheduled
                } else {
                    // Ahead: the timer's own lateness (tokio's 1 ms wheel) is the generator's, not the server's.
                    tokio::time::sleep_until(scheduled.into()).await;
                    Instant::now()
                }
            }
            None => {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                now
            }
        };
        let which = request_index % target.keep_alive.len();
        request_index += options.connections;
        let result = match &mut connection {
            Some(conn) => conn.exchange(&target.keep_alive[which]).await,
            None => match Connection::open(&target).await {
                Ok(mut conn) => conn.exchange(&target.close[which]).await,
                Err(e) => Err(e),
            },
        };
        let done = Instant::now();
        let measured = sent_at >= measure_from && sent_at < end;
        match result {
            Ok(200) if measured => {
                samples.ok += 1;
                samples.latencies_ns.push((done - sent_at).as_nanos() as u64);
            }
            Ok(_) if !measured => {}
            Ok(status) => {
                samples.errors += 1;
                samples.first_error.get_or_insert_with(|| format!("HTTP {status}"));
            }
            Err(e) => {
                if measured {
                    samples.errors += 1;
                    samples.first_error.get_or_insert_with(|| e.to_string());
                }
                if connection.is_some() {
                    connection = Connection::open(&target).await.ok();
                    if connection.is_none() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
        if connection.is_none() && !options.new_connection {
            connection = Connection::open(&target).await.ok();
        }
    }
    samples
}

fn load_options(flags: &Flags) -> Result<LoadOptions, BoxError> {
    Ok(LoadOptions {
        connections: flags.number("connections", 32.0)? as usize,
        duration: Duration::from_secs_f64(flags.number("duration", 10.0)?),
        warmup: Duration::from_secs_f64(flags.number("warmup", 1.0)?),
        rate: flags.get("rate").map(|r| r.parse()).transpose().map_err(|_| "--rate: not a number")?,
        new_connection: flags.has("new-connection"),
        threads: flags.number("threads", 1.0)? as usize,
    })
}

fn describe(options: &LoadOptions) -> String {
    let mode = match (options.rate, options.new_connection) {
        (Some(r), false) => format!("fixed rate {r:.0}/s, keep-alive"),
        (Some(r), true) => format!("fixed rate {r:.0}/s, new connection per request"),
        (None, false) => "full load, keep-alive".into(),
        (None, true) => "full load, new connection per request".into(),
    };
    format!("{mode}, {} connections, {:.1} s", options.connections, options.duration.as_secs_f64())
}

fn print_outcome(label: &str, options: &LoadOptions, outcome: &Outcome, histogram: bool) {
    let s = &outcome.samples;
    println!(
        "{label}: {}: {:.0} reviews/s ({} ok, {} errors{}), latency p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, \
         p99.9 {:.3} ms, max {:.3} ms; generator CPU {:.0}%",
        describe(options),
        outcome.rate(),
        s.ok,
        s.errors,
        s.first_error.as_deref().map(|e| format!(", first: {e}")).unwrap_or_default(),
        outcome.percentile_ms(50.0),
        outcome.percentile_ms(90.0),
        outcome.percentile_ms(99.0),
        outcome.percentile_ms(99.9),
        outcome.percentile_ms(100.0),
        100.0 * outcome.generator_cpu / outcome.seconds,
    );
    if histogram && !s.latencies_ns.is_empty() {
        // Powers of two from 64 µs: enough to see a tail at a glance.
        let mut bounds: Vec<u64> = (6..16).map(|i| 1u64 << i).map(|us| us * 1000).collect();
        bounds.push(u64::MAX);
        let mut counts = vec![0u64; bounds.len()];
        for &l in &s.latencies_ns {
            counts[bounds.iter().position(|&b| l < b).expect("last bound is MAX")] += 1;
        }
        let total = s.latencies_ns.len() as f64;
        let mut lower = 0;
        for (bound, count) in bounds.iter().zip(&counts) {
            if *count > 0 {
                let upper =
                    if *bound == u64::MAX { "     inf".to_string() } else { format!("{:>8.3}", *bound as f64 / 1e6) };
                println!(
                    "    [{:>8.3}, {upper}) ms {:>8} {:>6.2}% {}",
                    lower as f64 / 1e6,
                    count,
                    100.0 * *count as f64 / total,
                    "#".repeat((60.0 * *count as f64 / total).ceil() as usize)
                );
            }
            lower = *bound;
        }
    }
}

fn record(path: Option<&str>, label: &str, metric: &str, value: f64) -> Result<(), BoxError> {
    let Some(path) = path else { return Ok(()) };
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    writeln!(file, "{label}\t{metric}\t{value}")?;
    Ok(())
}

fn record_outcome(path: Option<&str>, label: &str, mode: &str, outcome: &Outcome) -> Result<(), BoxError> {
    record(path, label, &format!("{mode}.rate"), outcome.rate())?;
    for (name, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("max", 100.0)] {
        record(path, label, &format!("{mode}.{name}_ms"), outcome.percentile_ms(p))?;
    }
    record(path, label, &format!("{mode}.errors"), outcome.samples.errors as f64)?;
    record(path, label, &format!("{mode}.generator_cpu"), outcome.generator_cpu / outcome.seconds)
}

fn read_bodies(flags: &Flags) -> Result<Vec<Vec<u8>>, BoxError> {
    let files = flags.all("body");
    if files.is_empty() {
        return Ok(workload::FIXTURE_BODIES.iter().map(|f| workload::read_fixture(f)).collect());
    }
    files.iter().map(|f| std::fs::read(f).map_err(|e| format!("--body {f}: {e}").into())).collect()
}

fn run_load_command(flags: &Flags) -> Result<(), BoxError> {
    let ca = std::fs::read(flags.require("ca")?)?;
    let target = Arc::new(Target::new(flags.require("url")?, &ca, &read_bodies(flags)?)?);
    let options = load_options(flags)?;
    let outcome = run_load(target, options)?;
    let label = flags.get("label").unwrap_or("load");
    print_outcome(label, &options, &outcome, options.rate.is_some());
    record_outcome(flags.get("record"), label, flags.get("mode").unwrap_or("load"), &outcome)
}

// ---------------------------------------------------------------------------------------------------------------
// Processes: start, readiness, memory, CPU

/// A free loopback port (bound then released; the server binds it right after).
fn free_port() -> Result<u16, BoxError> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Server {
    child: Child,
    started: Instant,
}

impl Server {
    fn start(program: &Path, args: &[String], log: &Path) -> Result<Self, BoxError> {
        let log = std::fs::File::create(log)?;
        let started = Instant::now();
        let child =
            Command::new(program).args(args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn()?;
        Ok(Self { child, started })
    }

    /// Polls `/readyz` every 200 µs; the time from spawn to the first 200.
    fn wait_ready(&mut self, admin: SocketAddr) -> Result<Duration, BoxError> {
        let deadline = self.started + Duration::from_secs(60);
        loop {
            if http_get_ok(admin, "/readyz") {
                return Ok(self.started.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("server exited before ready: {status}").into());
            }
            if Instant::now() > deadline {
                return Err("server not ready after 60 s".into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn memory_kib(&self, field: &str) -> f64 {
        proc_status_kib(self.child.id(), field)
    }

    fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User and system CPU seconds of a process (Linux's USER_HZ is 100).
fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return f64::NAN };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(14) + ticks(15)) / 100.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

// ---------------------------------------------------------------------------------------------------------------
// The suite

struct Endpoints {
    listen: SocketAddr,
    admin: SocketAddr,
}

fn endpoints() -> Result<Endpoints, BoxError> {
    Ok(Endpoints {
        listen: format!("127.0.0.1:{}", free_port()?).parse()?,
        admin: format!("127.0.0.1:{}", free_port()?).parse()?,
    })
}

fn suite(flags: &Flags) -> Result<(), BoxError> {
    let server_bin = PathBuf::from(flags.require("server-bin")?);
    let refserver_bin = PathBuf::from(flags.require("refserver-bin")?);
    let work = PathBuf::from(flags.require("work")?);
    let record_to = flags.get("record");
    let extra_server_args: Vec<String> =
        flags.all("server-arg").iter().flat_map(|a| a.split_whitespace().map(str::to_string)).collect();
    let load = load_options(flags)?;
    let rate = flags.number("rate", 2000.0)?;
    let ready_runs = flags.number("ready-runs", 5.0)? as usize;
    std::fs::create_dir_all(&work)?;

    let certs = work.join("certs");
    process::make_certs(&server_bin, &certs)?;
    let (cert, key, ca) = (certs.join("tls.crt"), certs.join("tls.key"), std::fs::read(certs.join("ca.crt"))?);
    let small_dir = work.join("secrets-3ns");
    let fleet_dir = work.join("secrets-1000ns");
    for dir in [&small_dir, &fleet_dir] {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
    }
    workload::write_fleet_dir(&small_dir, workload::FIXTURE_NAMESPACES.len())?;
    let fleet_count = workload::write_fleet_dir(&fleet_dir, 1000)?;
    println!("suite: {fleet_count} Secrets in 1000 namespaces written to {}", fleet_dir.display());

    let bodies: Vec<Vec<u8>> = workload::FIXTURE_BODIES.iter().map(|f| workload::read_fixture(f)).collect();
    let webhook_args = |e: &Endpoints, dir: &Path| -> Vec<String> {
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--listen".into(),
            e.listen.to_string(),
            "--admin-listen".into(),
            e.admin.to_string(),
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
            "--secrets-dir".into(),
            dir.display().to_string(),
        ];
        args.extend(extra_server_args.iter().cloned());
        args
    };
    let ref_args = |e: &Endpoints| -> Vec<String> {
        vec![
            "--listen".into(),
            e.listen.to_string(),
            "--admin-listen".into(),
            e.admin.to_string(),
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
        ]
    };

    let quiet = |mut args: Vec<String>| {
        args.extend(["--log-level".into(), "warn".into()]);
        args
    };
    type ArgsFor<'a> = Box<dyn Fn(&Endpoints) -> Vec<String> + 'a>;
    let servers: Vec<(&str, &Path, ArgsFor<'_>, ArgsFor<'_>)> = vec![
        (
            "webhook",
            server_bin.as_path(),
            Box::new(|e: &Endpoints| webhook_args(e, &small_dir)),
            Box::new(|e: &Endpoints| webhook_args(e, &fleet_dir)),
        ),
        // The same, without the one info line per admission: what that line costs.
        (
            "webhook-warn",
            server_bin.as_path(),
            Box::new(|e: &Endpoints| quiet(webhook_args(e, &small_dir))),
            Box::new(|e: &Endpoints| quiet(webhook_args(e, &fleet_dir))),
        ),
        ("reference", refserver_bin.as_path(), Box::new(ref_args), Box::new(ref_args)),
    ];
    for (label, program, idle_args, loaded_args) in &servers {
        // Time to ready and idle memory: a fresh process each time, 30 Secrets in 3 namespaces.
        let (mut ready, mut rss) = (Vec::new(), Vec::new());
        for run in 0..ready_runs {
            let e = endpoints()?;
            let mut server = Server::start(program, &idle_args(&e), &work.join(format!("{label}-idle-{run}.log")))?;
            ready.push(server.wait_ready(e.admin)?.as_secs_f64() * 1e3);
            std::thread::sleep(Duration::from_millis(300));
            rss.push(server.memory_kib("VmRSS") / 1024.0);
        }
        let (ready_ms, rss_idle) = (median(ready), median(rss));
        println!("{label}: ready in {ready_ms:.1} ms (median of {ready_runs}), RSS idle {rss_idle:.1} MiB");
        record(record_to, label, "ready_ms", ready_ms)?;
        record(record_to, label, "rss_idle_mib", rss_idle)?;

        // 10,000 Secrets in 1,000 namespaces (the reference server holds none): ready, memory, then the loads.
        let e = endpoints()?;
        let mut server = Server::start(program, &loaded_args(&e), &work.join(format!("{label}-load.log")))?;
        let ready_fleet = server.wait_ready(e.admin)?.as_secs_f64() * 1e3;
        std::thread::sleep(Duration::from_millis(300));
        let rss_fleet = server.memory_kib("VmRSS") / 1024.0;
        println!("{label}: with the 1000-namespace directory: ready in {ready_fleet:.1} ms, RSS {rss_fleet:.1} MiB");
        record(record_to, label, "ready_10k_ms", ready_fleet)?;
        record(record_to, label, "rss_10k_mib", rss_fleet)?;

        let target = Arc::new(Target::new(&format!("https://{}/mutate", e.listen), &ca, &bodies)?);
        let phases = [
            ("keepalive", LoadOptions { rate: None, new_connection: false, ..load }),
            ("fixed_rate", LoadOptions { rate: Some(rate), new_connection: false, ..load }),
            ("new_connection", LoadOptions { rate: None, new_connection: true, ..load }),
        ];
        for (mode, options) in phases {
            let cpu_before = server.cpu_seconds();
            let outcome = run_load(target.clone(), options)?;
            // Includes the warm-up: the server's CPU per review, as a share of the whole phase.
            let cpu = server.cpu_seconds() - cpu_before;
            let served = outcome.rate() * (options.duration + options.warmup).as_secs_f64();
            print_outcome(label, &options, &outcome, mode == "fixed_rate");
            println!("    server CPU {:.1} µs per review", 1e6 * cpu / served.max(1.0));
            record_outcome(record_to, label, mode, &outcome)?;
            record(record_to, label, &format!("{mode}.server_cpu_us"), 1e6 * cpu / served.max(1.0))?;
        }
        let (rss_after, hwm) = (server.memory_kib("VmRSS") / 1024.0, server.memory_kib("VmHWM") / 1024.0);
        println!("{label}: after the loads: RSS {rss_after:.1} MiB, peak {hwm:.1} MiB");
        record(record_to, label, "rss_after_load_mib", rss_after)?;
        record(record_to, label, "rss_peak_mib", hwm)?;
    }
    Ok(())
}

fn gen_secrets(flags: &Flags) -> Result<(), BoxError> {
    let out = PathBuf::from(flags.require("out")?);
    let namespaces = flags.number("namespaces", 1000.0)? as usize;
    let n = workload::write_fleet_dir(&out, namespaces)?;
    println!("{n} Secrets in {namespaces} namespaces written to {}", out.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// The report

/// Median times of divan's table, by benchmark name (`group/arg` for parameterised ones), in µs.
fn parse_divan(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let mut parent = String::new();
    for line in text.lines() {
        // The tree drawing uses the column separator too: take it off first. Each level is three characters.
        let row = line.trim_start_matches(['│', '├', '╰', '─', ' ']);
        let depth = (line.chars().count() - row.chars().count()) / 3;
        let columns: Vec<&str> = row.split('│').collect();
        let Some(name) = columns.first().and_then(|c| c.split_whitespace().next()) else { continue };
        if columns.len() < 4 || depth == 0 {
            continue;
        }
        match parse_duration_us(columns[2].trim()) {
            Some(us) if depth == 1 => out.push((name.to_string(), us)),
            Some(us) => out.push((format!("{parent}/{name}"), us)),
            None => parent = name.to_string(),
        }
    }
    out
}

fn parse_duration_us(text: &str) -> Option<f64> {
    let (value, unit) = text.split_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let scale = match unit.trim() {
        "ns" => 1e-3,
        "µs" | "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        _ => return None,
    };
    Some(value * scale)
}

fn report(flags: &Flags) -> Result<(), BoxError> {
    let mut out = String::new();
    let check = |ok: bool| if ok { "yes" } else { "**NO**" };
    if let Some(path) = flags.get("decision") {
        let text = std::fs::read_to_string(path)?;
        writeln!(out, "### Decision core (divan, median)\n")?;
        writeln!(out, "| benchmark | median | target | met |")?;
        writeln!(out, "| --- | ---: | ---: | :---: |")?;
        for (name, us) in parse_divan(&text) {
            let target = if name.starts_with("decide_typical") {
                Some(5.0)
            } else if name.starts_with("decide_large") {
                Some(100.0)
            } else {
                None
            };
            let (target_text, met) = match target {
                Some(t) => (format!("< {t} µs"), check(us < t).to_string()),
                None => (String::new(), String::new()),
            };
            writeln!(out, "| {name} | {us:.2} µs | {target_text} | {met} |")?;
        }
        writeln!(out)?;
    }
    if let Some(path) = flags.get("records") {
        let text = std::fs::read_to_string(path)?;
        let mut values: BTreeMap<(String, String), f64> = BTreeMap::new();
        for line in text.lines() {
            let mut parts = line.split('\t');
            if let (Some(label), Some(metric), Some(value)) = (parts.next(), parts.next(), parts.next()) {
                values.insert((label.into(), metric.into()), value.parse().unwrap_or(f64::NAN));
            }
        }
        let get = |label: &str, metric: &str| values.get(&(label.into(), metric.into())).copied();
        writeln!(out, "### End to end over TLS on loopback (HTTP/1.1)\n")?;
        writeln!(
            out,
            "| figure | webhook | reference | webhook / reference | target | met | webhook, `--log-level warn` |"
        )?;
        writeln!(out, "| --- | ---: | ---: | ---: | --- | :---: | ---: |")?;
        // (metric, name, unit, target: (limit, higher is better))
        type Row = (&'static str, &'static str, &'static str, Option<(f64, bool)>);
        let rows: [Row; 17] = [
            ("keepalive.rate", "keep-alive, full load: reviews/s", "/s", Some((15000.0, true))),
            ("keepalive.p50_ms", "keep-alive, full load: p50", "ms", None),
            ("keepalive.p99_ms", "keep-alive, full load: p99", "ms", None),
            ("keepalive.server_cpu_us", "keep-alive: server CPU per review", "µs", None),
            ("fixed_rate.rate", "fixed rate: reviews/s achieved", "/s", None),
            ("fixed_rate.p50_ms", "fixed rate: p50", "ms", None),
            ("fixed_rate.p99_ms", "fixed rate: p99", "ms", Some((2.0, false))),
            ("fixed_rate.max_ms", "fixed rate: max", "ms", None),
            ("new_connection.rate", "new TLS connection per request: reviews/s", "/s", None),
            ("new_connection.p50_ms", "new TLS connection per request: p50", "ms", None),
            ("new_connection.p99_ms", "new TLS connection per request: p99", "ms", None),
            ("rss_idle_mib", "RSS idle (30 Secrets)", "MiB", Some((20.0, false))),
            ("rss_10k_mib", "RSS with 10,000 Secrets in 1,000 namespaces", "MiB", Some((40.0, false))),
            ("rss_peak_mib", "RSS peak after the loads", "MiB", None),
            ("ready_ms", "time to ready (30 Secrets)", "ms", Some((200.0, false))),
            ("ready_10k_ms", "time to ready (10,000 Secrets)", "ms", None),
            ("keepalive.generator_cpu", "load generator CPU (keep-alive)", "cores", None),
        ];
        for (metric, name, unit, target) in rows {
            let (w, r) = (get("webhook", metric), get("reference", metric));
            let fmt = |v: Option<f64>| match v {
                Some(v) if unit == "/s" => format!("{v:.0}"),
                Some(v) if unit == "cores" => format!("{v:.2}"),
                Some(v) => format!("{v:.2} {unit}"),
                None => "–".into(),
            };
            let ratio = match (w, r) {
                (Some(w), Some(r)) if r > 0.0 => format!("{:.2}", w / r),
                _ => "–".into(),
            };
            let (target_text, met) = match (target, w) {
                (Some((limit, true)), Some(w)) => (format!("≥ {limit:.0}"), check(w >= limit).to_string()),
                (Some((limit, false)), Some(w)) => (format!("< {limit} {unit}"), check(w < limit).to_string()),
                _ => (String::new(), String::new()),
            };
            let quiet = fmt(get("webhook-warn", metric));
            writeln!(out, "| {name} | {} | {} | {ratio} | {target_text} | {met} | {quiet} |", fmt(w), fmt(r))?;
        }
        if let (Some(w), Some(r)) = (get("webhook", "keepalive.rate"), get("reference", "keepalive.rate")) {
            writeln!(
                out,
                "| keep-alive throughput as a share of the reference | {:.0}% | | | ≥ 70% | {} | {} |",
                100.0 * w / r,
                check(w / r >= 0.7),
                get("webhook-warn", "keepalive.rate").map_or("–".into(), |q| format!("{:.0}%", 100.0 * q / r)),
            )?;
        }
        scale_table(&mut out, &values)?;
    }
    match flags.get("out") {
        Some(path) => std::fs::write(path, &out)?,
        None => print!("{out}"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Self-check (`cargo test --benches`): every load mode, briefly, against the webhook served in-process.

fn self_check() -> Result<(), BoxError> {
    use pullsecret_injector::core::credentials::CredentialIndex;
    use pullsecret_injector::metrics::Metrics;
    use pullsecret_injector::serve::config::Limits;
    use pullsecret_injector::serve::connections::Shutdown;
    use pullsecret_injector::serve::http::{self, AppState};
    use pullsecret_injector::sources::live::{LiveCredentials, Readiness};

    let divan = "decision     fastest │ slowest │ median │ mean │ samples │ iters\n\
                 ├─ decide    1 µs    │ 2 µs    │ 1.5 µs │ 1 µs │ 100     │ 100\n\
                 ├─ review            │         │        │      │         │\n\
                 │  ╰─ a.json 3 µs    │ 4 µs    │ 1.5 ms │ 3 µs │ 100     │ 100\n";
    let parsed = parse_divan(divan);
    assert_eq!(parsed, [("decide".to_string(), 1.5), ("review/a.json".to_string(), 1500.0)], "divan table");

    let dir = tempfile::tempdir()?;
    let bundle = pullsecret_injector::serve::certs::generate(&[], &["127.0.0.1".parse()?], 1)?;
    pullsecret_injector::serve::certs::write_bundle(dir.path(), &bundle)?;
    let certs =
        pullsecret_injector::serve::tls::CertStore::load(&dir.path().join("tls.crt"), &dir.path().join("tls.key"))?;
    let metrics = Arc::new(Metrics::new());
    let live = Arc::new(LiveCredentials::new(metrics.clone()));
    let mut index = CredentialIndex::new();
    index.replace_secrets(
        pullsecret_injector::kubelet::docker_config::SecretKind::DockerConfigJson,
        &workload::fleet_secrets(workload::FIXTURE_NAMESPACES.len()),
    );
    live.replace(index);
    let state = AppState {
        credentials: live,
        policy: Default::default(),
        metrics,
        readiness: Arc::new(Readiness::waiting_for(&[])),
    };

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop, shutdown) = Shutdown::new();
    let limits = Limits::default();
    let served = runtime.spawn(http::serve_https(
        listener,
        certs.server_config(),
        http::webhook_router(state, limits),
        limits,
        shutdown,
        Duration::from_secs(1),
    ));

    let bodies: Vec<Vec<u8>> = workload::FIXTURE_BODIES.iter().map(|f| workload::read_fixture(f)).collect();
    let target = Arc::new(Target::new(&format!("https://{addr}/mutate"), bundle.ca_cert_pem.as_bytes(), &bodies)?);
    let brief = LoadOptions {
        connections: 2,
        duration: Duration::from_millis(200),
        warmup: Duration::from_millis(50),
        rate: None,
        new_connection: false,
        threads: 1,
    };
    for options in [brief, LoadOptions { rate: Some(200.0), ..brief }, LoadOptions { new_connection: true, ..brief }] {
        let outcome = run_load(target.clone(), options)?;
        print_outcome("self-check", &options, &outcome, options.rate.is_some());
        if outcome.samples.errors > 0 || outcome.samples.ok == 0 {
            return Err(format!("self-check failed: {}", describe(&options)).into());
        }
    }
    let _ = stop.send(true);
    runtime.block_on(served)?;
    println!("loadgen self-check: ok");
    Ok(())
}
