//! `serve`: the HTTPS webhook (`POST /mutate`) and the plain-HTTP admin port (`/healthz`, `/readyz`, `/metrics`).
//!
//! Handlers only translate: the body goes to [`admission::review`] unchanged and its answer comes back unchanged.
//! The TLS listener is our own accept loop (rustls config with a hot-swappable certificate, a handshake timeout,
//! a connection limit, header-read timeouts) feeding hyper's HTTP/1.1 + HTTP/2 server, with graceful drain.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::admission::{self, Outcome};
use crate::cache::Readiness;
use crate::credentials::CredentialSource;
use crate::decision::Policy;
use crate::metrics::{Metrics, OutcomeLabel};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub credentials: Arc<dyn CredentialSource>,
    pub policy: Arc<Policy>,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
}

/// Limits of the HTTPS listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body; larger gets 413.
    pub max_body_bytes: usize,
    /// Time a client has to send the request headers (slowloris guard), and to finish the TLS handshake.
    pub header_read_timeout: Duration,
    /// Time a client has to send the whole request.
    pub request_timeout: Duration,
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 7 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// The webhook's routes.
pub fn webhook_router(state: AppState, limits: Limits) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
        .with_state(state)
}

/// The admin routes: liveness, readiness, metrics.
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.readiness.check() {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.encode();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

async fn mutate(State(state): State<AppState>, body: Bytes) -> Response {
    let started = Instant::now();
    // The decision is pure and synchronous; a bug in it must not take the connection down with it, so a panic
    // becomes "allowed unchanged" (the webhook never blocks a Pod for its own failure).
    let reviewed = std::panic::catch_unwind(AssertUnwindSafe(|| {
        admission::review(&body, state.credentials.as_ref(), &state.policy)
    }));
    let elapsed = started.elapsed().as_secs_f64();
    let reviewed = match reviewed {
        Ok(reviewed) => reviewed,
        Err(_) => {
            let reviewed = admission::internal_error(&body);
            warn!(uid = %reviewed.info.uid, "internal error while deciding; Pod allowed unchanged");
            state.metrics.record(OutcomeLabel::internal_error, 0, 0, elapsed);
            return reply(reviewed.http_status, reviewed.body);
        }
    };
    let injected = reviewed.decision.as_ref().map_or(0, |d| if d.denied.is_none() { d.add.len() } else { 0 });
    let warnings = reviewed.decision.as_ref().map_or(0, |d| d.warnings.len());
    state.metrics.record(reviewed.outcome.into(), injected, warnings, elapsed);
    if reviewed.outcome == Outcome::Unchanged && !tracing::enabled!(tracing::Level::DEBUG) {
        // Its only log line is at debug: do not build the span for nothing.
        return reply(reviewed.http_status, reviewed.body);
    }
    let span = info_span!(
        "admission",
        uid = %reviewed.info.uid,
        namespace = %reviewed.info.namespace,
        pod = %reviewed.info.pod,
        dry_run = reviewed.info.dry_run,
    );
    span.in_scope(|| {
        let latency_us = (elapsed * 1e6) as u64;
        let outcome = reviewed.outcome.as_str();
        match (reviewed.outcome, &reviewed.decision) {
            (Outcome::Patched, Some(d)) => info!(outcome, injected = ?d.add, warnings, latency_us, "injected"),
            (Outcome::Denied, Some(d)) => {
                info!(outcome, reason = d.denied.as_deref().unwrap_or_default(), latency_us, "denied")
            }
            (Outcome::Skipped | Outcome::Invalid, _) => {
                info!(outcome, reason = reviewed.reason.as_deref().unwrap_or_default(), latency_us, "not handled")
            }
            _ => debug!(outcome, warnings, latency_us, "nothing to inject"),
        }
    });
    reply(reviewed.http_status, reviewed.body)
}

fn reply(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status == StatusCode::OK { "application/json" } else { "text/plain; charset=utf-8" };
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response()
}

/// A signal that flips once, to stop accepting and drain.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    /// Resolves once shutdown has begun.
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Serves `app` over TLS on `listener` until `shutdown`, then lets in-flight requests finish for at most `drain`.
pub async fn serve_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: Limits,
    shutdown: Shutdown,
    drain: Duration,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let stop = shutdown.clone().wait();
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            _ = &mut stop => break,
            permit = permits.clone().acquire_owned() => permit.expect("semaphore never closed"),
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually EMFILE: back off briefly instead of spinning.
                    warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        let handshake_timeout = limits.header_read_timeout;
        tokio::spawn(
            async move {
                let _permit = permit;
                let mut tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(error)) => return debug!(%error, "TLS handshake failed"),
                    Err(_) => return debug!("TLS handshake timed out"),
                };
                // hyper's header-read timeout starts once the protocol is known, which takes a first byte: a client
                // that finishes the handshake and then sends nothing would hold its connection (and a permit) forever.
                // The TLS stream keeps what it decrypted (it is an `AsyncBufRead`): hyper reads that byte again.
                match tokio::time::timeout(handshake_timeout, tls.fill_buf()).await {
                    Ok(Ok(buffered)) if !buffered.is_empty() => {}
                    Ok(Ok(_)) => return debug!("connection closed before a request"),
                    Ok(Err(error)) => return debug!(%error, "connection failed before a request"),
                    Err(_) => return debug!("no request within the header read timeout"),
                }
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder.http1().timer(TokioTimer::new()).header_read_timeout(handshake_timeout).keep_alive(true);
                builder.http2().timer(TokioTimer::new()).max_concurrent_streams(256);
                let service = TowerToHyperService::new(app);
                let connection = builder.serve_connection(TokioIo::new(tls), service);
                if let Err(error) = watcher.watch(connection).await {
                    debug!(%error, "connection ended with an error");
                }
            }
            .instrument(info_span!("conn", %peer)),
        );
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        warn!(?drain, "in-flight requests did not finish in time");
    }
}

/// Serves the admin routes over plain HTTP until `shutdown`.
pub async fn serve_admin(listener: TcpListener, app: Router, shutdown: Shutdown) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(shutdown.wait()).await
}

/// Binds a listener, naming the flag in the error.
pub async fn bind(addr: SocketAddr, flag: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| format!("{flag} {addr}: cannot listen: {e}"))
}
