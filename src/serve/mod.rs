//! `serve`: wires the certificate, the credential source, the two listeners and the shutdown sequence.
//!
//! Shutdown (SIGTERM or SIGINT): `/readyz` turns 503 at once; the webhook keeps answering for `--shutdown-delay`
//! so that endpoints and load balancers stop sending to this replica (a request sent to a closed port would make
//! the API server apply `failurePolicy: Ignore`, admitting a Pod without its Secrets); then it stops accepting and
//! lets in-flight requests finish; the process exits 0 within `--shutdown-timeout`.

pub mod certs;
pub mod config;
pub mod connections;
pub mod http;
pub mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use crate::distribute::controller;
use crate::metrics::{Metrics, ResultLabels};
use crate::serve::config::ServeConfig;
use crate::serve::connections::Shutdown;
use crate::serve::http::AppState;
use crate::serve::tls::{CertStore, ClientCa, TlsError};
use crate::sources::live::{self, LiveCredentials, Readiness};
use crate::sources::{cluster, directory};
use crate::verify::periodic::{self, CheckSource};

/// A failure to start: exit code 2 with this one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// Runs the server until SIGTERM/SIGINT and a clean drain.
pub async fn run(config: ServeConfig) -> Result<(), StartError> {
    let started = Instant::now();
    let metrics = Arc::new(Metrics::new());
    let parts: Vec<&'static str> = match config.secrets_dir {
        Some(_) => vec![live::CERTIFICATE, "secrets-dir"],
        None => [&[live::CERTIFICATE][..], &cluster::SYNC_PARTS[..]].concat(),
    };
    raise_fd_limit(config.limits.max_connections + config.admin_max_connections);
    let readiness = Arc::new(Readiness::waiting_for(&parts));
    let live = Arc::new(LiveCredentials::with_options(metrics.clone(), config.index.options()));
    let (stop_tx, shutdown) = Shutdown::new();

    let certs = CertStore::load(&config.tls_cert, &config.tls_key)
        .map_err(|e| StartError(format!("--tls-cert/--tls-key: {e}")))?;
    if let Some(t) = certs.not_after_unix() {
        metrics.tls_not_after.set(t);
    }
    let client_ca = match &config.client_ca {
        Some(path) => Some(ClientCa::load(path).map_err(|e| StartError(format!("--client-ca: {e}")))?),
        None => None,
    };
    readiness.mark_done(live::CERTIFICATE);

    let check_source = match &config.secrets_dir {
        Some(dir) => {
            let fingerprint = directory::load(dir, &live).map_err(|e| StartError(format!("--secrets-dir: {e}")))?;
            readiness.mark_done("secrets-dir");
            info!(dir = %dir.display(), secrets = live.read(|i| i.secret_count()), "credentials loaded from directory");
            tokio::spawn(directory::watch(
                dir.clone(),
                live.clone(),
                metrics.clone(),
                fingerprint,
                config.reload_interval,
                shutdown.clone().wait(),
            ));
            CheckSource::Directory(dir.clone())
        }
        None => {
            let client = kube::Client::try_default().await.map_err(|e| {
                StartError(format!(
                    "no Kubernetes API configuration (in-cluster or KUBECONFIG): {e}; use --secrets-dir for local mode"
                ))
            })?;
            // ClusterPullSecret distribution runs in every replica (its writes converge: see distribute/mod.rs).
            // It runs on the cache's watches: one set per replica.
            let (taps, feeds) = controller::feeds();
            tokio::spawn(controller::distribute(
                client.clone(),
                metrics.clone(),
                feeds,
                live.clone(),
                shutdown.clone().wait(),
            ));
            let (live, readiness, metrics) = (live.clone(), readiness.clone(), metrics.clone());
            let stop = shutdown.clone().wait();
            let check_client = client.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = cluster::watch(client, live, readiness, metrics, taps) => {}
                    _ = stop => {}
                }
            });
            CheckSource::Cluster(check_client)
        }
    };
    if let Some((interval, verify_options)) = config.periodic_checks() {
        info!(?interval, "periodic credential checks on");
        tokio::spawn(periodic::check_periodically(
            check_source,
            interval,
            verify_options,
            metrics.clone(),
            shutdown.clone().wait(),
        ));
    }

    let webhook_listener = http::bind(config.listen, "--listen").await.map_err(StartError)?;
    let admin_listener = http::bind(config.admin_listen, "--admin-listen").await.map_err(StartError)?;
    let state = AppState {
        credentials: live.clone(),
        policy: Arc::new(config.policy.policy()),
        metrics: metrics.clone(),
        readiness: readiness.clone(),
    };

    {
        let (certs, metrics) = (certs.clone(), metrics.clone());
        tokio::spawn(certs.clone().watch(
            config.reload_interval,
            shutdown.clone().wait(),
            move |result| match result {
                Ok(_) => {
                    metrics.tls_reloads.get_or_create(&ResultLabels { result: "success" }).inc();
                    if let Some(t) = certs.not_after_unix() {
                        metrics.tls_not_after.set(t);
                    }
                    info!("serving certificate reloaded");
                }
                Err(e) => {
                    metrics.tls_reloads.get_or_create(&ResultLabels { result: "error" }).inc();
                    error!(error = %e, "serving certificate reload failed; still serving the previous one");
                }
            },
        ));
    }

    if let Some(client_ca) = &client_ca {
        tokio::spawn(Arc::clone(client_ca).watch(
            config.reload_interval,
            shutdown.clone().wait(),
            |result: &Result<bool, TlsError>| match result {
                Ok(_) => info!("client CA reloaded"),
                Err(e) => error!(error = %e, "client CA reload failed; still verifying clients with the previous one"),
            },
        ));
    }

    info!(
        listen = %webhook_listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        admin = %admin_listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        startup_ms = started.elapsed().as_millis() as u64,
        mutual_tls = client_ca.is_some(),
        "serving"
    );
    let webhook = tokio::spawn(http::serve_https(
        webhook_listener,
        certs.server_config_with(client_ca.as_ref()),
        http::webhook_router(state.clone(), config.limits),
        config.limits,
        shutdown.clone(),
        config.shutdown_timeout,
    ));
    let (admin_stop_tx, admin_shutdown) = Shutdown::new();
    let admin = tokio::spawn(http::serve_admin(
        admin_listener,
        http::admin_router(state),
        config.limits.admin(config.admin_max_connections),
        admin_shutdown,
        ADMIN_DRAIN,
    ));

    wait_for_signal().await;
    let deadline = Instant::now() + config.shutdown_timeout;
    readiness.start_shutdown();
    info!(delay = ?config.shutdown_delay, "shutdown requested: not ready, draining");
    tokio::time::sleep(config.shutdown_delay.min(config.shutdown_timeout)).await;
    let _ = stop_tx.send(true);
    let remaining = deadline.saturating_duration_since(Instant::now());
    if tokio::time::timeout(remaining, webhook).await.is_err() {
        warn!("webhook did not drain before --shutdown-timeout");
    }
    let _ = admin_stop_tx.send(true);
    let _ = tokio::time::timeout(ADMIN_DRAIN + Duration::from_millis(100), admin).await;
    info!("stopped");
    Ok(())
}

/// How long the admin port may take to close after the webhook has drained.
const ADMIN_DRAIN: Duration = Duration::from_secs(1);

/// File descriptors `serve` needs besides its connections: listeners, the runtime, the Kubernetes client and its
/// watches, the credential checks, the files it reloads.
const FD_RESERVE: u64 = 64;

/// Raises the soft limit on open files to the hard limit, as Go programs do (many container runtimes start
/// processes with a soft limit of 1024), and warns when the connection limits still do not fit: a process out of
/// file descriptors can accept nothing, on either port.
fn raise_fd_limit(connections: usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let mut soft = limit.current;
    if limit.current != limit.maximum {
        match setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum }) {
            Ok(()) => soft = limit.maximum,
            Err(error) => warn!(%error, "cannot raise the open file limit to the hard limit"),
        }
    }
    let needed = connections as u64 + FD_RESERVE;
    if let Some(soft) = soft.filter(|soft| *soft < needed) {
        warn!(
            open_files = soft,
            needed,
            "the open file limit is below --max-connections + --admin-max-connections + {FD_RESERVE}: raise it \
             (ulimit -n) or lower the connection limits"
        );
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
