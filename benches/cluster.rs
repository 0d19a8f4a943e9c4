//! The scale suite (`make bench`, BENCHMARKS.md): the webhook holding 10,000 and 100,000 pull Secrets, in local mode
//! (`serve --secrets-dir`) and in cluster mode against a real kube-apiserver (the pinned control plane of
//! `tests/cluster/control-plane.sh`, every object created through the API, timed apart).
//!
//! ```text
//! cluster scale --server-bin PATH --loadgen-bin PATH --work DIR [--sizes 10000,100000] [--record FILE]
//!               [--relist-seconds 45] [--modes local,cluster]
//! cluster plot --records FILE --out PNG
//! cluster run --server-bin PATH --work DIR [--namespaces 1000] [--loadgen-bin PATH] [--record FILE]
//! cluster compare --server-bins PATH[,PATH...] --work DIR [--namespaces 1000] [--rounds 3] [--hold]
//! ```
//!
//! Workload (`benches/common/workload.rs`): ten pull Secrets per namespace in the typical key mix, one unrelated
//! Opaque Secret per namespace (10%), one namespace in ten labelled for one ClusterPullSecret. Measured per mode and
//! size: time from `spawn` to the first `200` from `/readyz`; VmRSS once synced and VmHWM at the end (the peak,
//! relist included); the server's CPU time for 1,000 pull Secret updates (credential rotations: in cluster mode
//! merge patches through the API, in local mode 100 namespace files rewritten, which the directory source answers
//! with a full reload), net of its idle CPU; reviews at 2,000/s (`loadgen load`, the fixture Pod CREATEs) while the
//! cache relists: in cluster mode kube-apiserver is restarted (the control plane's SIGHUP) and the watches relist
//! once it is back; in local mode a file is rewritten every 3 s, each a full reload. Cluster mode also: the watch
//! streams opened and the bytes of LIST responses and watch events (a streamed list) during the start, as
//! differences of the API server's own metrics (`apiserver_longrunning_requests{verb="WATCH"}`,
//! `apiserver_response_sizes_sum{verb="LIST"}`, `apiserver_watch_events_sizes_sum`).
//!
//! Without `run` or `scale` (as `cargo test --benches` runs it) it does a small self-check: both modes with 5
//! namespaces, without the load (the load generator is another bench binary).

#[path = "common/plot.rs"]
mod plot;
#[path = "common/process.rs"]
mod process;
#[path = "common/workload.rs"]
mod workload;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use process::{cpu_seconds, http_get, http_get_ok, metric_sum, proc_status_kib};
use pullsecret_injector::core::cluster_pull_secret::ClusterPullSecret;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Figures = BTreeMap<String, f64>;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Reviews per second while the cache relists.
const RELIST_RATE: u32 = 2000;
/// Pull Secrets per namespace.
const PER_NAMESPACE: usize = workload::TYPICAL_KEYS.len();

struct Options {
    server: PathBuf,
    loadgen: Option<PathBuf>,
    work: PathBuf,
    record: Option<PathBuf>,
    relist_seconds: f64,
}

fn main() -> Result<(), BoxError> {
    // cargo passes `--bench` to bench binaries; test filters and other harness flags are ignored too.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let command = args.first().map(String::as_str);
    if command == Some("plot") {
        let text = std::fs::read_to_string(flag("--records").ok_or("--records FILE")?)?;
        let records = text
            .lines()
            .filter_map(|l| {
                let mut fields = l.split('\t');
                let (label, metric, value) = (fields.next()?, fields.next()?, fields.next()?.parse().ok()?);
                Some(((label.to_string(), metric.to_string()), value))
            })
            .collect();
        std::fs::write(flag("--out").ok_or("--out PNG")?, scale_plot(&records))?;
        return Ok(());
    }
    if command == Some("compare") {
        let servers = flag("--server-bins").ok_or("--server-bins PATH[,PATH...]")?;
        let servers: Vec<PathBuf> = servers.split(',').map(PathBuf::from).collect();
        let namespaces = flag("--namespaces").map_or(Ok(1000), |n| n.parse())?;
        let rounds = flag("--rounds").map_or(Ok(3), |n| n.parse())?;
        return compare(
            &servers,
            Path::new(&flag("--work").ok_or("--work DIR")?),
            namespaces,
            rounds,
            args.iter().any(|a| a == "--hold"),
        );
    }
    if !matches!(command, Some("run" | "scale")) {
        let work = tempfile::tempdir()?;
        let options = Options {
            server: PathBuf::from(env!("CARGO_BIN_EXE_pullsecret-injector")),
            loadgen: None,
            work: work.path().to_path_buf(),
            record: None,
            relist_seconds: 0.0,
        };
        let local = local_mode(&options, 5)?;
        assert!(local["ready_ms"] > 0.0 && local["update_cpu_ms_per_1000"].is_finite(), "{local:?}");
        let cluster = cluster_mode(&options, 5)?;
        assert!(cluster["ready_ms"] > 0.0 && cluster["watch_streams"] >= 1.0, "{cluster:?}");
        return Ok(());
    }
    let options = Options {
        server: PathBuf::from(flag("--server-bin").ok_or("--server-bin PATH")?),
        loadgen: flag("--loadgen-bin").map(PathBuf::from),
        work: PathBuf::from(flag("--work").ok_or("--work DIR")?),
        record: flag("--record").map(PathBuf::from),
        relist_seconds: flag("--relist-seconds").map_or(Ok(45.0), |s| s.parse())?,
    };
    let (sizes, modes): (Vec<usize>, Vec<String>) = if command == Some("run") {
        let namespaces: usize = flag("--namespaces").map_or(Ok(1000), |n| n.parse())?;
        (vec![namespaces * PER_NAMESPACE], vec!["cluster".into()])
    } else {
        let sizes = flag("--sizes").unwrap_or_else(|| "10000,100000".into());
        let modes = flag("--modes").unwrap_or_else(|| "local,cluster".into());
        (
            sizes.split(',').map(|s| s.trim().parse()).collect::<Result<_, _>>()?,
            modes.split(',').map(|s| s.trim().to_string()).collect(),
        )
    };
    let mut records = BTreeMap::new();
    for secrets in sizes {
        let namespaces = secrets.div_ceil(PER_NAMESPACE);
        for mode in &modes {
            let figures = match mode.as_str() {
                "local" => local_mode(&options, namespaces)?,
                "cluster" => cluster_mode(&options, namespaces)?,
                other => return Err(format!("--modes: unknown mode {other:?}").into()),
            };
            let label = format!("scale-{mode}-{}", namespaces * PER_NAMESPACE);
            if let Some(path) = &options.record {
                let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
                for (metric, value) in &figures {
                    writeln!(file, "{label}\t{metric}\t{value}")?;
                }
            }
            records.extend(figures.into_iter().map(|(metric, value)| ((label.clone(), metric), value)));
        }
    }
    if let Some(path) = flag("--plot") {
        std::fs::write(&path, scale_plot(&records))?;
        println!("scale: plot written to {path}");
    }
    Ok(())
}

/// RSS after sync and time to ready against the number of pull Secrets, local and cluster mode, with the targets.
fn scale_plot(records: &BTreeMap<(String, String), f64>) -> Vec<u8> {
    let series = |metric: &str| -> Vec<plot::Series> {
        [("local", "LOCAL", [31, 119, 180]), ("cluster", "CLUSTER", [255, 127, 14])]
            .into_iter()
            .map(|(mode, name, color)| plot::Series {
                name: name.into(),
                color,
                points: records
                    .iter()
                    .filter(|((_, m), v)| m == metric && v.is_finite())
                    .filter_map(|((label, _), v)| {
                        Some((label.strip_prefix(&format!("scale-{mode}-"))?.parse::<f64>().ok()?, *v))
                    })
                    .collect(),
            })
            .collect()
    };
    plot::png(&[
        plot::Panel {
            title: "RSS AFTER SYNC (MIB)".into(),
            series: series("rss_mib"),
            lines: vec![(16.0, "TARGET AT 10K: 16".into()), (64.0, "TARGET AT 100K: 64".into())],
        },
        plot::Panel {
            title: "TIME TO READY (MS)".into(),
            series: series("ready_ms"),
            lines: vec![(5000.0, "TARGET, CLUSTER AT 100K: 5000".into())],
        },
    ])
}

/// A running `serve` and where it answers.
struct Serve {
    child: Child,
    listen: SocketAddr,
    admin: SocketAddr,
    log: PathBuf,
}

impl Serve {
    fn start(
        server: &Path,
        args: &[std::ffi::OsString],
        kubeconfig: Option<&Path>,
        log: &Path,
    ) -> Result<Self, BoxError> {
        let (listen, admin) = (free_addr()?, free_addr()?);
        let mut command = Command::new(server);
        command
            .args(["serve", "--listen", &listen.to_string(), "--admin-listen", &admin.to_string()])
            .args(["--log-level", "warn"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?);
        if let Some(kubeconfig) = kubeconfig {
            command.env("KUBECONFIG", kubeconfig);
        }
        Ok(Self { child: command.spawn()?, listen, admin, log: log.to_path_buf() })
    }

    /// Polls `/readyz` every millisecond; the time from `start`.
    fn wait_ready(&mut self, started: Instant) -> Result<Duration, BoxError> {
        loop {
            if http_get_ok(self.admin, "/readyz") {
                return Ok(started.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("serve exited before ready ({status}); see {}", self.log.display()).into());
            }
            if started.elapsed() > Duration::from_secs(600) {
                return Err("serve not ready after 600 s".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn metric(&self, name: &str) -> f64 {
        http_get(self.admin, "/metrics").map_or(f64::NAN, |text| metric_sum(&text, name))
    }

    fn cpu(&self) -> f64 {
        cpu_seconds(self.child.id())
    }

    fn mib(&self, field: &str) -> f64 {
        proc_status_kib(self.child.id(), field) / 1024.0
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's CPU time (ms) for `updates` done by `update`, per 1,000, net of its idle CPU (measured for 2 s
/// first): the updates, then until its CPU time has not moved for 1 s (at most 60 s), and `done` says they are
/// all seen.
fn update_cpu(
    serve: &Serve,
    updates: usize,
    update: impl FnOnce() -> Result<(), BoxError>,
    done: impl Fn() -> bool,
) -> Result<f64, BoxError> {
    let idle_start = (Instant::now(), serve.cpu());
    std::thread::sleep(Duration::from_secs(2));
    let idle_rate = (serve.cpu() - idle_start.1) / idle_start.0.elapsed().as_secs_f64();
    let (start, cpu_start) = (Instant::now(), serve.cpu());
    update()?;
    let mut last = (Instant::now(), serve.cpu());
    while start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(250));
        let now = serve.cpu();
        if now > last.1 {
            last = (Instant::now(), now);
        } else if last.0.elapsed() >= Duration::from_secs(1) && done() {
            break;
        }
    }
    let cpu = serve.cpu() - cpu_start - idle_rate * start.elapsed().as_secs_f64();
    Ok(1000.0 * cpu * 1000.0 / updates.max(1) as f64)
}

/// Reviews at [`RELIST_RATE`] for `seconds` (after 1 s of warm-up) by `loadgen load`, while `during` runs on this
/// thread (it starts 2 s into the load); records `relist.*` under `label`.
fn load_during(
    options: &Options,
    serve: &Serve,
    ca: &Path,
    label: &str,
    during: impl FnOnce(Instant) -> Result<(), BoxError>,
) -> Result<(), BoxError> {
    let Some(loadgen) = &options.loadgen else { return Ok(()) };
    let mut command = Command::new(loadgen);
    command
        .arg("load")
        .args(["--url", &format!("https://{}/mutate", serve.listen)])
        .arg("--ca")
        .arg(ca)
        .args(["--connections", "32", "--warmup", "1", "--duration", &options.relist_seconds.to_string()])
        .args(["--rate", &RELIST_RATE.to_string(), "--label", label, "--mode", "relist"]);
    if let Some(record) = &options.record {
        command.arg("--record").arg(record);
    }
    let mut load = command.stdin(Stdio::null()).spawn()?;
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let outcome = during(started);
    let status = load.wait()?;
    outcome?;
    if !status.success() {
        return Err(format!("loadgen load: {status}").into());
    }
    Ok(())
}

/// Local mode: `serve --secrets-dir` over one manifest file per namespace.
fn local_mode(options: &Options, namespaces: usize) -> Result<Figures, BoxError> {
    let secrets = namespaces * PER_NAMESPACE;
    let work = options.work.join(format!("local-{secrets}"));
    let _ = std::fs::remove_dir_all(&work);
    let dir = work.join("secrets");
    let written = Instant::now();
    workload::write_scale_dir(&dir, namespaces)?;
    let write_s = written.elapsed().as_secs_f64();
    let certs = work.join("certs");
    process::make_certs(&options.server, &certs)?;
    let args: Vec<std::ffi::OsString> = vec![
        "--tls-cert".into(),
        certs.join("tls.crt").into(),
        "--tls-key".into(),
        certs.join("tls.key").into(),
        "--secrets-dir".into(),
        dir.clone().into(),
    ];
    let started = Instant::now();
    let mut serve = Serve::start(&options.server, &args, None, &work.join("serve.log"))?;
    let ready = serve.wait_ready(started)?;
    std::thread::sleep(Duration::from_secs(1));
    let (rss, sync_peak) = (serve.mib("VmRSS"), serve.mib("VmHWM"));

    // 1,000 rotations (or every pull Secret of a smaller fleet): the last 100 namespaces' files rewritten.
    let names = workload::fleet_namespaces(namespaces);
    let rotated: Vec<(usize, &String)> = names.iter().enumerate().rev().take(100).collect();
    let reloads = "pullsecret_injector_secrets_dir_reloads_total{result=\"success\"";
    let before = serve.metric(reloads);
    let cpu_per_1000 = update_cpu(
        &serve,
        rotated.len() * PER_NAMESPACE,
        || {
            for (i, ns) in &rotated {
                std::fs::write(dir.join(format!("{ns}.yaml")), workload::scale_namespace_yaml(*i, ns, 1))?;
            }
            Ok(())
        },
        || serve.metric(reloads) > before,
    )?;

    // Reviews while the directory reloads: one file rewritten every 3 s, each change a full reload.
    let label = format!("scale-local-{secrets}");
    let before = serve.metric(reloads);
    load_during(options, &serve, &certs.join("ca.crt"), &label, |started| {
        let mut rotation = 2;
        while started.elapsed().as_secs_f64() + 3.0 < options.relist_seconds {
            std::fs::write(
                dir.join(format!("{}.yaml", names[0])),
                workload::scale_namespace_yaml(0, &names[0], rotation),
            )?;
            rotation += 1;
            std::thread::sleep(Duration::from_secs(3));
        }
        Ok(())
    })?;
    let relists = serve.metric(reloads) - before;
    let peak = serve.mib("VmHWM");
    drop(serve);

    let figures: Figures = [
        ("write_s", write_s),
        ("ready_ms", ready.as_secs_f64() * 1000.0),
        ("rss_mib", rss),
        ("rss_sync_peak_mib", sync_peak),
        ("rss_peak_mib", peak),
        ("update_cpu_ms_per_1000", cpu_per_1000),
        ("relists", relists),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    println!(
        "local: {secrets} pull Secrets in {namespaces} namespaces (written in {write_s:.1} s): ready in {:.0} ms, \
         RSS {rss:.1} MiB (peak {peak:.1}), {cpu_per_1000:.0} ms CPU per 1,000 updates, {relists} reloads under load",
        figures["ready_ms"]
    );
    Ok(figures)
}

/// Cluster mode: a fresh control plane, the fleet created through the API, then `serve` with an admin kubeconfig.
fn cluster_mode(options: &Options, namespaces: usize) -> Result<Figures, BoxError> {
    let secrets = namespaces * PER_NAMESPACE;
    let work = options.work.join(format!("cluster-{secrets}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let mut control_plane = ControlPlane::start(&work.join("control-plane"))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let client = runtime.block_on(control_plane.client())?;

    let created = Instant::now();
    runtime.block_on(create_fleet(client.clone(), namespaces))?;
    let create_s = created.elapsed().as_secs_f64();
    println!(
        "cluster: created {secrets} pull Secrets (+{namespaces} Opaque, 1 ClusterPullSecret) in {namespaces} \
         namespaces through the API in {create_s:.1} s"
    );

    let synced = start_synced(&options.server, &control_plane, &runtime, &client, &work.join("serve.log"))?;
    let Synced { serve, ready, rss, sync_peak, watch_streams, list_mib } = synced;
    let dir = &control_plane.dir;

    // 1,000 credential rotations (or every pull Secret of a smaller fleet) in the last 100 namespaces.
    let names = workload::fleet_namespaces(namespaces);
    let rotated: Vec<String> = names.iter().rev().take(100).cloned().collect();
    let cpu_per_1000 = update_cpu(
        &serve,
        rotated.len() * PER_NAMESPACE,
        || runtime.block_on(rotate(client.clone(), &rotated, 1)),
        || true,
    )?;

    // Reviews while the cache relists: kube-apiserver restarted; the watches relist when it is back.
    let label = format!("scale-cluster-{secrets}");
    let relists = "pullsecret_injector_watch_relists_total";
    let relists_before = serve.metric(relists);
    // The two pull-Secret watches (their relists are the long ones), not the small lists of the other watches.
    let secret_relists = "pullsecret_injector_watch_relists_total{kind=\"secrets\"}";
    let secret_relists_before = serve.metric(secret_relists);
    let mut restart_s = f64::NAN;
    let mut relist_s = f64::NAN;
    load_during(options, &serve, &dir.join("pki/ca.crt"), &label, |started| {
        let sent = Instant::now();
        control_plane.restart()?;
        restart_s = sent.elapsed().as_secs_f64();
        while started.elapsed().as_secs_f64() < options.relist_seconds + 1.0 {
            if serve.metric(secret_relists) >= secret_relists_before + 2.0 {
                relist_s = sent.elapsed().as_secs_f64();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    })?;
    let relisted = serve.metric(relists) - relists_before;
    let peak = serve.mib("VmHWM");
    drop(serve);

    let figures: Figures = [
        ("create_s", create_s),
        ("ready_ms", ready.as_secs_f64() * 1000.0),
        ("rss_mib", rss),
        ("rss_sync_peak_mib", sync_peak),
        ("rss_peak_mib", peak),
        ("watch_streams", watch_streams),
        ("list_mib", list_mib),
        ("update_cpu_ms_per_1000", cpu_per_1000),
        ("relists", relisted),
        ("apiserver_restart_s", restart_s),
        ("relisted_after_s", relist_s),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    println!(
        "cluster: {secrets} pull Secrets in {namespaces} namespaces: ready in {:.0} ms, RSS {rss:.1} MiB (peak \
         {peak:.1}), {} watch streams, initial lists read {:.1} MiB, {cpu_per_1000:.0} ms CPU per 1,000 updates, \
         {relisted} relists (API server back after {restart_s:.1} s, Secret watches relisted after {relist_s:.1} s)",
        figures["ready_ms"], figures["watch_streams"], figures["list_mib"]
    );
    Ok(figures)
}

/// A `serve` in cluster mode that has synced, and what its start cost.
struct Synced {
    serve: Serve,
    ready: Duration,
    /// VmRSS and VmHWM once synced (MiB).
    rss: f64,
    sync_peak: f64,
    watch_streams: f64,
    list_mib: f64,
}

/// Starts `serve` against `control_plane` and waits until it is synced: ready, and the number of watches open on the
/// API server stable for 2 s (readiness needs the credential watches only; the controller's work goes on), at most
/// 15 s after ready.
fn start_synced(
    server: &Path,
    control_plane: &ControlPlane,
    runtime: &tokio::runtime::Runtime,
    client: &kube::Client,
    log: &Path,
) -> Result<Synced, BoxError> {
    let before = runtime.block_on(control_plane.metrics(client))?;
    let dir = &control_plane.dir;
    let args: Vec<std::ffi::OsString> = vec![
        "--tls-cert".into(),
        dir.join("pki/apiserver.crt").into(),
        "--tls-key".into(),
        dir.join("pki/apiserver.key").into(),
    ];
    let started = Instant::now();
    let mut serve = Serve::start(server, &args, Some(&dir.join("kubeconfig")), log)?;
    let ready = serve.wait_ready(started)?;
    let mut after = runtime.block_on(control_plane.metrics(client))?;
    let mut stable_since = Instant::now();
    while stable_since.elapsed() < Duration::from_secs(2) && started.elapsed() < ready + Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(250));
        let now = runtime.block_on(control_plane.metrics(client))?;
        if now.watches != after.watches {
            stable_since = Instant::now();
        }
        after = now;
    }
    let (rss, sync_peak) = (serve.mib("VmRSS"), serve.mib("VmHWM"));
    Ok(Synced {
        serve,
        ready,
        rss,
        sync_peak,
        watch_streams: after.watches - before.watches,
        list_mib: (after.list_bytes - before.list_bytes) / 1_048_576.0,
    })
}

/// `compare`: builds of the server started in turn against one control plane holding one fleet (created once), for
/// back-to-back figures of the start: time to ready, RSS once synced and its peak. Prints one line per start.
fn compare(servers: &[PathBuf], work: &Path, namespaces: usize, rounds: usize, hold: bool) -> Result<(), BoxError> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work)?;
    let control_plane = ControlPlane::start(&work.join("control-plane"))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let client = runtime.block_on(control_plane.client())?;
    let created = Instant::now();
    runtime.block_on(create_fleet(client.clone(), namespaces))?;
    println!(
        "compare: {} pull Secrets created in {:.1} s",
        namespaces * PER_NAMESPACE,
        created.elapsed().as_secs_f64()
    );
    for round in 1..=rounds {
        for server in servers {
            let synced = start_synced(server, &control_plane, &runtime, &client, &work.join("serve.log"))?;
            println!(
                "compare: round {round} {}: ready {:.0} ms, RSS synced {:.1} MiB, peak {:.1} MiB, {} watches, lists \
                 {:.1} MiB",
                server.display(),
                synced.ready.as_secs_f64() * 1000.0,
                synced.rss,
                synced.sync_peak,
                synced.watch_streams,
                synced.list_mib
            );
        }
    }
    if hold {
        println!(
            "compare: holding the control plane until standard input ends; KUBECONFIG={}",
            control_plane.dir.join("kubeconfig").display()
        );
        std::io::copy(&mut std::io::stdin(), &mut std::io::sink())?;
    }
    Ok(())
}

/// Runs `requests` 64 at a time.
async fn all<F: Future<Output = Result<(), kube::Error>>>(requests: impl Iterator<Item = F>) -> Result<(), BoxError> {
    futures::stream::iter(requests).buffer_unordered(64).try_collect::<Vec<()>>().await?;
    Ok(())
}

/// The CRD, the namespaces (one in ten labelled), their pull and Opaque Secrets and the ClusterPullSecret.
async fn create_fleet(client: kube::Client, namespaces: usize) -> Result<(), BoxError> {
    let crd: CustomResourceDefinition =
        serde_yaml_ng::from_str(&std::fs::read_to_string(Path::new(ROOT).join("manifests/base/crd.yaml"))?)?;
    Api::<CustomResourceDefinition>::all(client.clone()).create(&PostParams::default(), &crd).await?;
    let names = workload::fleet_namespaces(namespaces);
    let namespace_api: Api<Namespace> = Api::all(client.clone());
    all(names.iter().enumerate().map(|(i, name)| {
        let labels = workload::is_shared(i)
            .then(|| [(workload::SHARED_LABEL.0.to_string(), workload::SHARED_LABEL.1.to_string())].into());
        let ns = Namespace {
            metadata: ObjectMeta { name: Some(name.clone()), labels, ..Default::default() },
            ..Default::default()
        };
        let api = namespace_api.clone();
        async move {
            if name == "default" {
                api.patch(name, &PatchParams::default(), &Patch::Merge(&ns)).await.map(drop)
            } else {
                api.create(&PostParams::default(), &ns).await.map(drop)
            }
        }
    }))
    .await?;
    let secrets = names.iter().flat_map(|ns| {
        let mut secrets = workload::typical_secrets(ns);
        secrets.push(workload::opaque_secret(ns));
        secrets
    });
    all(secrets.map(|secret| {
        let api: Api<Secret> = Api::namespaced(client.clone(), secret.metadata.namespace.as_deref().unwrap());
        async move { api.create(&PostParams::default(), &secret).await.map(drop) }
    }))
    .await?;
    // The CRD takes a moment to be served.
    let cps: ClusterPullSecret = serde_json::from_value(workload::shared_cluster_pull_secret())?;
    let cps_api: Api<ClusterPullSecret> = Api::all(client);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match cps_api.create(&PostParams::default(), &cps).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Rotates the credentials of every pull Secret of `namespaces` (merge patches of their data).
async fn rotate(client: kube::Client, namespaces: &[String], rotation: u32) -> Result<(), BoxError> {
    use base64::Engine as _;
    let patches = namespaces.iter().flat_map(|ns| {
        workload::TYPICAL_KEYS.iter().map(move |(name, key)| {
            let config = workload::dockerconfigjson_rotated(&[key.replace("{ns}", ns)], rotation);
            let data = base64::engine::general_purpose::STANDARD.encode(config);
            (ns.clone(), name.to_string(), serde_json::json!({ "data": { ".dockerconfigjson": data } }))
        })
    });
    all(patches.map(|(ns, name, patch)| {
        let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
        async move { api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(drop) }
    }))
    .await
}

/// The control plane of the tests, started by its script; killed (with everything in it) when dropped.
struct ControlPlane {
    dir: PathBuf,
    script: Child,
    /// The script's stdout: `ready`, then `restarted` after each SIGHUP (kept open, or its next line kills it).
    lines: BufReader<ChildStdout>,
}

/// What the API server's metrics say about long-running requests and lists.
struct ApiFigures {
    /// Open WATCH requests.
    watches: f64,
    /// Bytes of LIST responses and of watch events so far (a streamed list arrives as watch events).
    list_bytes: f64,
}

impl ControlPlane {
    fn start(dir: &Path) -> Result<Self, BoxError> {
        let bin = Command::new("bash").arg(Path::new(ROOT).join("tests/cluster/build.sh")).output()?;
        if !bin.status.success() {
            return Err(format!("tests/cluster/build.sh: {}", String::from_utf8_lossy(&bin.stderr)).into());
        }
        let mut script = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--", "bash"])
            .arg(Path::new(ROOT).join("tests/cluster/control-plane.sh"))
            .arg("up")
            .arg(dir)
            .env("PULLSECRET_INJECTOR_KUBE_BIN", String::from_utf8(bin.stdout)?.trim())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut control_plane =
            Self { dir: dir.to_path_buf(), lines: BufReader::new(script.stdout.take().unwrap()), script };
        control_plane.expect("ready")?;
        Ok(control_plane)
    }

    fn expect(&mut self, word: &str) -> Result<(), BoxError> {
        let mut line = String::new();
        self.lines.read_line(&mut line)?;
        if line.trim() != word {
            return Err(format!("the control plane said {line:?}, not {word:?}").into());
        }
        Ok(())
    }

    /// Restarts kube-apiserver (on the same etcd) and waits until it is ready again.
    fn restart(&mut self) -> Result<(), BoxError> {
        // setpriv execs bash: the child is the script itself.
        let status = Command::new("kill").args(["-HUP", &self.script.id().to_string()]).status()?;
        if !status.success() {
            return Err("kill -HUP failed".into());
        }
        self.expect("restarted")
    }

    async fn client(&self) -> Result<kube::Client, BoxError> {
        let kubeconfig = kube::config::Kubeconfig::read_from(self.dir.join("kubeconfig"))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    async fn metrics(&self, client: &kube::Client) -> Result<ApiFigures, BoxError> {
        let request = http::Request::get("/metrics").body(Vec::new())?;
        let text = client.request_text(request).await?;
        let sum = |name: &str, verb: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(name) && l.contains(&format!("verb=\"{verb}\"")))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let watch_event_bytes: f64 = text
            .lines()
            .filter(|l| l.starts_with("apiserver_watch_events_sizes_sum{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        Ok(ApiFigures {
            watches: sum("apiserver_longrunning_requests{", "WATCH"),
            list_bytes: sum("apiserver_response_sizes_sum{", "LIST") + watch_event_bytes,
        })
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.script.kill();
        let _ = self.script.wait();
    }
}

fn free_addr() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}
