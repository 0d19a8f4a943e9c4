//! Cluster mode against a real kube-apiserver (`make bench`, BENCHMARKS.md): the pinned control plane of
//! `tests/cluster/control-plane.sh`, a fleet of pull Secrets created through the API, then `serve` started in cluster
//! mode and measured: time from start to `/readyz`, RSS after sync and peak, the watch streams it opens and the bytes
//! its initial lists read (both from the API server's own metrics, as differences across the start).
//!
//! ```text
//! cluster run --server-bin PATH --work DIR [--namespaces 1000] [--record FILE]
//! ```
//!
//! Each namespace gets the ten typical pull Secrets of `benches/common/workload.rs` and one unrelated Opaque
//! Secret (10%). Without `run` (as `cargo test --benches` runs it) it does a small self-check: 5 namespaces.

#[path = "common/process.rs"]
mod process;
#[path = "common/workload.rs"]
mod workload;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use process::{http_get_ok, proc_status_kib};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn main() -> Result<(), BoxError> {
    // cargo passes `--bench` to bench binaries; test filters and other harness flags are ignored too.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    if args.first().map(String::as_str) != Some("run") {
        let work = tempfile::tempdir()?;
        let figures = run(Path::new(env!("CARGO_BIN_EXE_pullsecret-injector")), work.path(), 5)?;
        assert!(figures["ready_ms"] > 0.0 && figures["watch_streams"] >= 1.0, "{figures:?}");
        return Ok(());
    }
    let server = PathBuf::from(flag("--server-bin").ok_or("--server-bin PATH")?);
    let work = PathBuf::from(flag("--work").ok_or("--work DIR")?);
    let namespaces: usize = flag("--namespaces").map_or(Ok(1000), |n| n.parse())?;
    let figures = run(&server, &work, namespaces)?;
    if let Some(path) = flag("--record") {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        for (metric, value) in &figures {
            writeln!(file, "cluster-{namespaces}\t{metric}\t{value}")?;
        }
    }
    Ok(())
}

/// The whole measurement; returns the figures by name.
fn run(server: &Path, work: &Path, namespaces: usize) -> Result<BTreeMap<&'static str, f64>, BoxError> {
    let control_plane = ControlPlane::start(&work.join("control-plane"))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let client = runtime.block_on(control_plane.client())?;

    let created = Instant::now();
    let pull_secrets = runtime.block_on(create_fleet(client.clone(), namespaces))?;
    let create_s = created.elapsed().as_secs_f64();
    println!(
        "cluster: created {pull_secrets} pull Secrets (+{namespaces} Opaque) in {namespaces} namespaces in {create_s:.1} s"
    );

    let before = runtime.block_on(control_plane.metrics(&client))?;
    let admin = free_addr()?;
    let mut serve = Command::new(server)
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", &admin.to_string(), "--log-level", "warn"])
        .arg("--tls-cert")
        .arg(control_plane.dir.join("pki/apiserver.crt"))
        .arg("--tls-key")
        .arg(control_plane.dir.join("pki/apiserver.key"))
        .env("KUBECONFIG", control_plane.dir.join("kubeconfig"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("serve.log"))?)
        .spawn()?;
    let started = Instant::now();
    let ready = loop {
        if http_get_ok(admin, "/readyz") {
            break started.elapsed();
        }
        if let Some(status) = serve.try_wait()? {
            return Err(
                format!("serve exited before ready ({status}); see {}", work.join("serve.log").display()).into()
            );
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err("serve not ready after 300 s".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    // Readiness needs the credential watches only; the controller's open alongside. Read the figures once the
    // number of open watches has stayed the same for 2 s (at most 15 s).
    let mut after = runtime.block_on(control_plane.metrics(&client))?;
    let mut stable_since = Instant::now();
    while stable_since.elapsed() < Duration::from_secs(2) && started.elapsed() < ready + Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(250));
        let now = runtime.block_on(control_plane.metrics(&client))?;
        if now.watches != after.watches {
            stable_since = Instant::now();
        }
        after = now;
    }
    let rss = proc_status_kib(serve.id(), "VmRSS") / 1024.0;
    let peak = proc_status_kib(serve.id(), "VmHWM") / 1024.0;
    let _ = serve.kill();
    let _ = serve.wait();

    let mut figures = BTreeMap::new();
    figures.insert("create_s", create_s);
    figures.insert("ready_ms", ready.as_secs_f64() * 1000.0);
    figures.insert("rss_mib", rss);
    figures.insert("rss_peak_mib", peak);
    figures.insert("watch_streams", after.watches - before.watches);
    figures.insert("list_mib", (after.list_bytes - before.list_bytes) / 1_048_576.0);
    println!(
        "cluster: {pull_secrets} pull Secrets in {namespaces} namespaces: ready in {:.0} ms, RSS {rss:.1} MiB \
         (peak {peak:.1}), {} watch streams, initial lists read {:.1} MiB",
        figures["ready_ms"], figures["watch_streams"], figures["list_mib"]
    );
    Ok(figures)
}

/// Namespaces with the typical pull Secrets and one Opaque Secret each, created through the API, 32 at a time.
async fn create_fleet(client: kube::Client, namespaces: usize) -> Result<usize, BoxError> {
    let names = workload::fleet_namespaces(namespaces);
    futures::stream::iter(names.iter().filter(|n| *n != "default"))
        .map(|name| {
            let api: Api<Namespace> = Api::all(client.clone());
            let ns = Namespace {
                metadata: ObjectMeta { name: Some(name.clone()), ..Default::default() },
                ..Default::default()
            };
            async move { api.create(&PostParams::default(), &ns).await.map(drop) }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    let mut secrets: Vec<Secret> = names.iter().flat_map(|ns| workload::typical_secrets(ns)).collect();
    let pull_secrets = secrets.len();
    secrets.extend(names.iter().map(|ns| Secret {
        metadata: ObjectMeta { namespace: Some(ns.clone()), name: Some("app-config".into()), ..Default::default() },
        type_: Some("Opaque".into()),
        data: Some([("config.yaml".to_string(), ByteString(b"log: info\n".to_vec()))].into()),
        ..Default::default()
    }));
    futures::stream::iter(secrets)
        .map(|secret| {
            let api: Api<Secret> = Api::namespaced(client.clone(), secret.metadata.namespace.as_deref().unwrap());
            async move { api.create(&PostParams::default(), &secret).await.map(drop) }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(pull_secrets)
}

/// The control plane of the tests, started by its script; killed (with everything in it) when dropped.
struct ControlPlane {
    dir: PathBuf,
    script: Child,
}

/// What the API server's metrics say about long-running requests and lists.
struct ApiFigures {
    /// Open WATCH requests.
    watches: f64,
    /// Bytes of LIST responses so far.
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
        let mut line = String::new();
        BufReader::new(script.stdout.take().unwrap()).read_line(&mut line)?;
        if line.trim() != "ready" {
            return Err("the control plane did not start".into());
        }
        Ok(Self { dir: dir.to_path_buf(), script })
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
        Ok(ApiFigures {
            watches: sum("apiserver_longrunning_requests{", "WATCH"),
            list_bytes: sum("apiserver_response_sizes_sum{", "LIST"),
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
