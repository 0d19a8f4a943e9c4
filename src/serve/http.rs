//! `serve`: the HTTPS webhook (`POST /mutate`) and the plain-HTTP admin port (`/healthz`, `/readyz`, `/metrics`).
//!
//! Handlers only translate: the body goes to [`admission::review`] unchanged and its answer comes back unchanged.
//! Both ports are served by [`crate::serve::connections`], which applies the connection guards ([`Limits`]) to every
//! connection: rustls with a hot-swappable certificate on the webhook port, plain HTTP on the admin port.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tracing::{debug, info, info_span, warn};

use crate::core::admission::{self, Outcome, RequestInfo};
use crate::core::credentials::{CredentialSource, NamespaceCredentials};
use crate::core::decision::Policy;
use crate::metrics::Metrics;
use crate::serve::config::Limits;
use crate::serve::connections::{self, Shutdown};
use crate::sources::live::Readiness;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub credentials: Arc<dyn CredentialSource>,
    pub policy: Arc<Policy>,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
}

/// The warning of a review answered before the credentials' first sync.
pub const CREDENTIALS_NOT_LOADED: &str = "credentials not loaded yet (the webhook is starting or cannot reach the \
                                          API server): Pod left unchanged, no imagePullSecrets added";

/// The webhook's routes.
///
/// The request timeout is not here but in the accept loop, which applies it to every request of both ports.
pub fn webhook_router(state: AppState, limits: Limits) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(limits, refuse_announced_oversize))
        .with_state(state)
}

/// 413 at once for a body whose Content-Length is over the limit, instead of waiting for a body that will be
/// refused anyway (or for the request timeout, when the client sends nothing).
///
/// What the client sends meanwhile is read and discarded (a body up to twice the limit, within the header read
/// timeout): closing a socket with unread data makes the kernel reset the connection, and a client still writing
/// its body would then lose the answer. A larger body, or a slower one, gets the connection closed after that.
async fn refuse_announced_oversize(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let announced = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let max = limits.max_body_bytes;
    match announced {
        Some(length) if length > max as u64 => {
            tokio::spawn(discard(request.into_body(), max.saturating_mul(2), limits.header_read_timeout));
            let reason = format!("request body of {length} bytes is over the limit of {max} (--max-body-bytes)\n");
            (StatusCode::PAYLOAD_TOO_LARGE, reason).into_response()
        }
        _ => next.run(request).await,
    }
}

async fn discard(body: axum::body::Body, max_bytes: usize, within: Duration) {
    use futures::StreamExt as _;
    let mut chunks = body.into_data_stream();
    let _ = tokio::time::timeout(within, async {
        let mut read = 0;
        while let Some(Ok(chunk)) = chunks.next().await {
            read += chunk.len();
            if read >= max_bytes {
                return;
            }
        }
    })
    .await;
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

/// Offers no credential anywhere: what the webhook knows before its first sync.
struct NoCredentials;

impl CredentialSource for NoCredentials {
    fn namespace(&self, _namespace: &str) -> Arc<NamespaceCredentials> {
        Arc::new(NamespaceCredentials::default())
    }
}

async fn mutate(State(state): State<AppState>, body: Bytes) -> Response {
    let started = Instant::now();
    // Before the first sync the webhook knows no Secret: deciding would warn "pulled anonymously" for every
    // private image and let --deny-unmatched deny Pods whose Secrets exist. The review is still read (a body that
    // is no AdmissionReview, or a review of something else, gets its usual answer), without credentials or policy.
    let loaded = state.readiness.credentials_loaded();
    // The decision is pure and synchronous; a bug in it must not take the connection down with it, so a panic
    // becomes "allowed unchanged" (the webhook never blocks a Pod for its own failure).
    let reviewed = std::panic::catch_unwind(AssertUnwindSafe(|| {
        if loaded {
            admission::review(&body, state.credentials.as_ref(), &state.policy)
        } else {
            admission::review(&body, &NoCredentials, &Policy::default())
        }
    }));
    let elapsed = started.elapsed().as_secs_f64();
    let reviewed = match reviewed {
        Ok(reviewed) => reviewed,
        Err(_) => {
            let reviewed = admission::internal_error(&body);
            warn!(uid = %reviewed.info.uid, "internal error while deciding; Pod allowed unchanged");
            state.metrics.record(reviewed.outcome, 0, 0, elapsed);
            return reply(reviewed.http_status, reviewed.body);
        }
    };
    if !loaded && !matches!(reviewed.outcome, Outcome::Skipped | Outcome::Invalid) {
        return credentials_not_loaded(&state, &reviewed.info, elapsed);
    }
    let injected = reviewed.decision.as_ref().map_or(0, |d| if d.denied.is_none() { d.add.len() } else { 0 });
    let warnings = reviewed.decision.as_ref().map_or(0, |d| d.warnings.len());
    state.metrics.record(reviewed.outcome, injected, warnings, elapsed);
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

/// A Pod CREATE before the credentials' first sync: allowed unchanged with a warning, counted, logged.
fn credentials_not_loaded(state: &AppState, info: &RequestInfo, elapsed: f64) -> Response {
    state.metrics.record(Outcome::CredentialsNotLoaded, 0, 1, elapsed);
    warn!(
        uid = %info.uid,
        namespace = %info.namespace,
        pod = %info.pod,
        outcome = Outcome::CredentialsNotLoaded.as_str(),
        "credentials not loaded yet; Pod allowed unchanged"
    );
    let answer = serde_json::json!({
        "apiVersion": admission::API_VERSION,
        "kind": admission::KIND,
        "response": {
            "uid": info.uid,
            "allowed": true,
            "warnings": [format!("{}{CREDENTIALS_NOT_LOADED}", admission::WARNING_PREFIX)],
        },
    });
    reply(200, serde_json::to_vec(&answer).expect("a JSON value always serializes"))
}

fn reply(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status == StatusCode::OK { "application/json" } else { "text/plain; charset=utf-8" };
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response()
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
    connections::serve("webhook", listener, Some(acceptor), app, limits, shutdown, drain).await
}

/// Serves the admin routes over plain HTTP until `shutdown`, with the same guards as the webhook.
pub async fn serve_admin(listener: TcpListener, app: Router, limits: Limits, shutdown: Shutdown, drain: Duration) {
    connections::serve("admin", listener, None, app, limits, shutdown, drain).await
}

/// Binds a listener, naming the flag in the error.
pub async fn bind(addr: SocketAddr, flag: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| format!("{flag} {addr}: cannot listen: {e}"))
}
