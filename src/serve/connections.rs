//! The accept loop of both ports and its connection guards (docs/security.md), for HTTP/1.1 and HTTP/2 alike:
//!
//! - every connection gets `header_read_timeout` for its TLS handshake, then again for its first request's
//!   headers (an HTTP/2 client that sends the preface and nothing else is closed);
//! - a connection without a request in progress is closed after `idle_timeout` (HTTP/2: GOAWAY);
//! - each request has `request_timeout` to arrive whole (408 otherwise);
//! - HTTP/2 connections have at most `max_concurrent_streams` requests in progress;
//! - at most `max_connections` are open. At the limit, a new client is not left in the backlog while others
//!   hold connections without using them: the connection that has waited longest on its client (one that never
//!   completed a request first: a handshake, headers or a body that does not come) is closed to make room.
//!   Connections whose request the webhook is working on are never closed; when all are, new clients wait.
//!
//! Each connection's task drives hyper's connection and a deadline computed from its [`Activity`] (what its
//! requests are doing, reported by a wrapper around the service and around each request body).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt as _;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::serve::config::Limits;

/// Time a connection gets to close by itself once told to (an HTTP/2 GOAWAY and its PING round trip, an answer
/// being written) before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How often the accept loop tries again to make room while every connection is busy.
const ROOM_RETRY: Duration = Duration::from_millis(50);
/// Connection events that an attack repeats (connections closed to make room, failed handshakes) are logged
/// at most once per this, with a count.
const EVENT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown`, then lets in-flight requests finish for at
/// most `drain` and closes what is left. `name` labels the logs.
pub(crate) async fn serve(
    name: &'static str,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    limits: Limits,
    shutdown: Shutdown,
    drain: Duration,
) {
    let registry = Arc::new(Registry::default());
    let events = Arc::new(EventLog::new(name));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let stop = shutdown.clone().wait();
    let mut stop = std::pin::pin!(stop);
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = tokio::select! {
            biased;
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually EMFILE: back off briefly instead of spinning.
                    warn!(listener = name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // One accepted connection at most waits here, so the process holds at most max_connections + 1 sockets of
        // this port; the others wait in the listen backlog.
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => tokio::select! {
                () = &mut stop => break,
                permit = make_room(&registry, &permits, &events) => permit,
            },
        };
        let _ = tcp.set_nodelay(true);
        let registered = Registry::register(&registry, permit);
        let task = connection(tcp, tls.clone(), app.clone(), limits, registered, shutdown.clone(), events.clone());
        connections.spawn(task.instrument(info_span!("conn", listener = name, %peer)));
    }
    drop(listener);
    let drained = tokio::time::timeout(drain, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        warn!(listener = name, ?drain, "in-flight requests did not finish in time");
        connections.shutdown().await;
    }
}

/// At the connection limit: closes the connection that has waited longest on its client (see [`Registry`]) and
/// returns the permit it frees. When every connection is busy, waits for one to finish and tries again.
async fn make_room(registry: &Registry, permits: &Arc<Semaphore>, events: &EventLog) -> OwnedSemaphorePermit {
    let mut victim = None;
    loop {
        if victim.is_none_or(|id| !registry.contains(id)) {
            victim = registry.evict_one();
            if victim.is_some() {
                events.evicted();
            }
        }
        tokio::select! {
            permit = Arc::clone(permits).acquire_owned() => return permit.expect("the semaphore is never closed"),
            () = tokio::time::sleep(ROOM_RETRY) => {}
        }
    }
}

/// One connection, from the TLS handshake (when `tls`) to its close.
async fn connection(
    tcp: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    limits: Limits,
    registered: Registered,
    shutdown: Shutdown,
    events: Arc<EventLog>,
) {
    let activity = Arc::clone(&registered.activity);
    let stop = shutdown.wait();
    let mut stop = std::pin::pin!(stop);
    let Some(acceptor) = tls else {
        return serve_http(tcp, app, &limits, &activity, stop).await;
    };
    let handshake = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(tcp));
    let tls = tokio::select! {
        handshake = handshake => match handshake {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => return events.handshake_failed(&error),
            Err(_) => return debug!("TLS handshake timed out"),
        },
        () = activity.until_evicted() => return debug!("closed during its TLS handshake to make room"),
        () = &mut stop => return,
    };
    serve_http(tls, app, &limits, &activity, stop).await
}

/// HTTP/1.1 or HTTP/2 on an established connection, under the guards of the module documentation.
async fn serve_http<I>(
    io: I,
    app: Router,
    limits: &Limits,
    activity: &Arc<Activity>,
    mut stop: Pin<&mut impl Future<Output = ()>>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let first_request_by = Instant::now() + limits.header_read_timeout;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        // Our own PINGs find a dead peer while a request is in progress; the peer's PINGs are answered but are no
        // request: they do not keep an idle connection open.
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    let service = {
        let activity = Arc::clone(activity);
        let request_timeout = limits.request_timeout;
        hyper::service::service_fn(move |request: axum::http::Request<Incoming>| {
            let (request, in_flight) = Activity::begin(&activity, request);
            let answer = app.clone().oneshot(request);
            async move {
                let answer = tokio::time::timeout(request_timeout, answer).await.unwrap_or_else(|_| {
                    Ok((StatusCode::REQUEST_TIMEOUT, "request not received within the request timeout\n")
                        .into_response())
                });
                drop(in_flight);
                answer
            }
        })
    };
    let connection = builder.serve_connection(TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);
    let mut closing_since: Option<Instant> = None;
    loop {
        let deadline = activity.deadline(first_request_by, limits.idle_timeout, closing_since);
        let expired = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(error) = ended {
                    debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = &mut stop, if closing_since.is_none() => {
                connection.as_mut().graceful_shutdown();
                closing_since = Some(Instant::now());
            }
            () = activity.changed.notified() => {
                if closing_since.is_none() && activity.evicted.load(Ordering::SeqCst) {
                    if activity.in_flight.load(Ordering::SeqCst) > 0 || activity.answered.load(Ordering::SeqCst) == 0 {
                        return debug!("closed to make room: it kept its connection without completing a request");
                    }
                    debug!("idle connection closed to make room");
                    connection.as_mut().graceful_shutdown();
                    closing_since = Some(Instant::now());
                }
            }
            () = expired => {
                if closing_since.is_some() {
                    return debug!("closed: it did not close by itself after a graceful shutdown");
                }
                if activity.started.load(Ordering::SeqCst) == 0 {
                    return debug!("closed: no request within the header read timeout");
                }
                debug!("idle timeout");
                connection.as_mut().graceful_shutdown();
                closing_since = Some(Instant::now());
            }
        }
    }
}

/// The open connections of one port, for choosing which one makes room at the limit.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    connections: Mutex<HashMap<u64, Arc<Activity>>>,
}

/// A connection's place in its [`Registry`] and its permit, given up when dropped (when its task ends, or is
/// aborted): the permit first, so that a connection gone from the registry has always freed its slot.
struct Registered {
    registry: Arc<Registry>,
    id: u64,
    activity: Arc<Activity>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Registry {
    fn register(registry: &Arc<Self>, permit: OwnedSemaphorePermit) -> Registered {
        let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        registry.lock().insert(id, Arc::clone(&activity));
        Registered { registry: Arc::clone(registry), id, activity, permit: Some(permit) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.connections.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn contains(&self, id: u64) -> bool {
        self.lock().contains_key(&id)
    }

    /// Tells one connection to close: among those with no request being handled (each waits on its client: for
    /// a handshake, headers, a body, or a next request), one that never completed a request if any, and of
    /// those the one whose client made progress longest ago. Returns its id, or `None` when all are busy.
    fn evict_one(&self) -> Option<u64> {
        let connections = self.lock();
        let (id, victim) = connections
            .iter()
            .filter(|(_, a)| !a.evicted.load(Ordering::SeqCst) && a.handling.load(Ordering::SeqCst) == 0)
            .min_by_key(|(_, a)| (a.answered.load(Ordering::SeqCst) > 0, a.times().progress))?;
        victim.evicted.store(true, Ordering::SeqCst);
        victim.changed.notify_one();
        Some(*id)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.registry.lock().remove(&self.id);
    }
}

/// What a connection is doing, shared by its task, its requests and the accept loop.
struct Activity {
    /// Requests whose headers arrived and whose answer is not produced yet.
    in_flight: AtomicUsize,
    /// Of those, the ones whose body has arrived whole: the webhook works on them, the client waits.
    handling: AtomicUsize,
    /// Requests whose headers arrived.
    started: AtomicU64,
    /// Requests answered.
    answered: AtomicU64,
    times: Mutex<Times>,
    /// Told to close to make room.
    evicted: AtomicBool,
    /// Woken on every change above.
    changed: Notify,
}

#[derive(Clone, Copy)]
struct Times {
    /// When the last request in progress ended (or the connection opened).
    idle_since: Instant,
    /// When the client last made progress: opened, sent headers, completed a body; or was answered.
    progress: Instant,
}

impl Activity {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            in_flight: AtomicUsize::new(0),
            handling: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            times: Mutex::new(Times { idle_since: now, progress: now }),
            evicted: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn times(&self) -> Times {
        *self.times.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update_times(&self, update: impl FnOnce(&mut Times)) {
        update(&mut self.times.lock().unwrap_or_else(PoisonError::into_inner));
    }

    async fn until_evicted(&self) {
        while !self.evicted.load(Ordering::SeqCst) {
            self.changed.notified().await;
        }
    }

    /// When the connection must be acted on, if nothing changes meanwhile: `None` while a request is in progress
    /// (the request timeout bounds it); the first request's deadline; the end of the idle timeout; or, once told
    /// to close, the end of its grace.
    fn deadline(
        &self,
        first_request_by: Instant,
        idle_timeout: Duration,
        closing_since: Option<Instant>,
    ) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let idle_since = self.times().idle_since;
        Some(match closing_since {
            Some(since) => since.max(idle_since) + CLOSE_GRACE,
            None if self.started.load(Ordering::SeqCst) == 0 => first_request_by,
            None => idle_since + idle_timeout,
        })
    }

    /// A request's headers arrived: its body is wrapped to report when it is complete.
    fn begin(
        activity: &Arc<Self>,
        request: axum::http::Request<Incoming>,
    ) -> (axum::http::Request<TrackedBody>, InFlight) {
        activity.started.fetch_add(1, Ordering::SeqCst);
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        activity.update_times(|t| t.progress = Instant::now());
        let progress =
            Arc::new(RequestProgress { activity: Arc::clone(activity), body_complete: AtomicBool::new(false) });
        let (parts, body) = request.into_parts();
        if body.is_end_stream() {
            progress.body_complete();
        }
        activity.changed.notify_one();
        let body = TrackedBody { inner: body, progress: Some(Arc::clone(&progress)) };
        (axum::http::Request::from_parts(parts, body), InFlight(progress))
    }
}

/// One request of a connection.
struct RequestProgress {
    activity: Arc<Activity>,
    body_complete: AtomicBool,
}

impl RequestProgress {
    fn body_complete(&self) {
        if !self.body_complete.swap(true, Ordering::SeqCst) {
            self.activity.handling.fetch_add(1, Ordering::SeqCst);
            self.activity.update_times(|t| t.progress = Instant::now());
            self.activity.changed.notify_one();
        }
    }
}

/// Held while a request is in progress; its drop (answer produced, timed out, or the stream reset) ends it.
struct InFlight(Arc<RequestProgress>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0.activity;
        // The answer is counted and the request is out of flight before `handling` lets the accept loop choose
        // this connection to make room: chosen, it then sees an answered connection without a request in
        // progress and closes it gracefully, delivering the answer, instead of cutting it off as one holding its
        // slot. (With HTTP/2 this runs on the stream's own task, while the connection's task and the accept loop
        // run.)
        activity.answered.fetch_add(1, Ordering::SeqCst);
        let now = Instant::now();
        let last = activity.in_flight.fetch_sub(1, Ordering::SeqCst) == 1;
        activity.update_times(|t| {
            t.progress = now;
            if last {
                t.idle_since = now;
            }
        });
        // Marked complete for good: a body read after the answer (discarded, see `discard`) changes nothing.
        if self.0.body_complete.swap(true, Ordering::SeqCst) {
            activity.handling.fetch_sub(1, Ordering::SeqCst);
        }
        activity.changed.notify_one();
    }
}

/// A request body that reports to its connection once it has arrived whole.
struct TrackedBody {
    inner: Incoming,
    /// `None` once reported.
    progress: Option<Arc<RequestProgress>>,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if (frame.is_none() || self.inner.is_end_stream())
            && let Some(progress) = self.progress.take()
        {
            progress.body_complete();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Log lines for connection events that an attacker can repeat at will: the first one at once, then at most one
/// summary per [`EVENT_LOG_INTERVAL`].
struct EventLog {
    listener: &'static str,
    state: Mutex<EventCounts>,
}

#[derive(Default)]
struct EventCounts {
    logged_at: Option<Instant>,
    evicted: u64,
    handshakes_failed: u64,
    last_handshake_error: String,
}

impl EventLog {
    fn new(listener: &'static str) -> Self {
        Self { listener, state: Mutex::new(EventCounts::default()) }
    }

    fn evicted(&self) {
        self.note(|counts| counts.evicted += 1);
    }

    fn handshake_failed(&self, error: &std::io::Error) {
        debug!(%error, "TLS handshake failed");
        self.note(|counts| {
            counts.handshakes_failed += 1;
            counts.last_handshake_error = error.to_string();
        });
    }

    fn note(&self, count: impl FnOnce(&mut EventCounts)) {
        let mut counts = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        count(&mut counts);
        if counts.logged_at.is_some_and(|at| at.elapsed() < EVENT_LOG_INTERVAL) {
            return;
        }
        let listener = self.listener;
        if counts.evicted > 0 {
            warn!(
                listener,
                closed = counts.evicted,
                "connection limit reached: closed connections that kept their slot without completing a request \
                 (or idle ones) to make room"
            );
        }
        if counts.handshakes_failed > 0 {
            info!(listener, failed = counts.handshakes_failed, last_error = %counts.last_handshake_error, "TLS handshakes failed");
        }
        *counts = EventCounts { logged_at: Some(Instant::now()), ..EventCounts::default() };
    }
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
