//! Helpers shared by the integration tests (each test crate uses the ones it needs):
//! - [`binary`]: the built binary, one-off runs and `serve` on ephemeral ports; [`process`]: child processes that
//!   never outlive their test, bounded waits.
//! - [`tls`]: the webhook's TLS accept loop in process and its clients; [`review`]: AdmissionReviews and what an
//!   answer's patch does to their Pod.
//! - [`fake_api`]: a fake kube-apiserver behind the real kube-rs client.
//! - [`registry`]: Debian's `docker-registry`.
//! - [`control_plane`], [`cluster_webhook`], [`kubectl`], [`kube_binaries`]: a real control plane, the webhook
//!   registered with it, and `kubectl` as the administrator or a tenant.
#![allow(dead_code)]

pub mod binary;
pub mod cluster_webhook;
pub mod control_plane;
pub mod fake_api;
pub mod kube_binaries;
pub mod kubectl;
pub mod process;
pub mod registry;
pub mod review;
pub mod tls;

use std::hash::{BuildHasher as _, RandomState};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pullsecret_injector::core::decision::Policy;
use pullsecret_injector::metrics::Metrics;
use pullsecret_injector::serve::http::AppState;
use pullsecret_injector::sources::live::{LiveCredentials, Readiness};
use pullsecret_injector::sources::manifests::Manifests;
use serde_json::Value;

/// Bound of a single wait in process (an answer, a readiness, a metric): a hang fails the test instead of the run.
pub const WAIT: Duration = Duration::from_secs(20);

/// `future`, which must complete within [`WAIT`]; `what` names it when it does not.
pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future).await.unwrap_or_else(|_| panic!("timed out after {WAIT:?}: {what}"))
}

/// The state `serve` builds in local mode over the manifests in `text` (YAML or JSON, read as file `name`), ready.
pub fn app_state(name: &str, text: &str) -> AppState {
    let metrics = Arc::new(Metrics::new());
    let live = Arc::new(LiveCredentials::new(metrics.clone()));
    let mut manifests = Manifests::default();
    manifests.add_documents(Path::new(name), text, "default").expect("the test manifests parse");
    live.replace(manifests.index());
    AppState {
        credentials: live,
        policy: Arc::new(Policy::default()),
        metrics,
        readiness: Arc::new(Readiness::waiting_for(&[])),
    }
}

/// The value of `series` (name and labels, exactly as exposed) in an OpenMetrics exposition.
pub fn metric(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Whether a character must never reach a human-readable output: an independent list (not the library's), for
/// control characters, bidi controls, zero-width and other invisible characters, line separators.
pub fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{061C}'
                | '\u{FEFF}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// Writes manifests as one multi-document YAML file.
pub fn write_manifests(path: &Path, manifests: &[Value]) {
    let documents: Vec<String> = manifests.iter().map(|m| serde_yaml_ng::to_string(m).unwrap()).collect();
    std::fs::write(path, documents.join("---\n")).unwrap();
}

/// A loopback port that was free a moment ago (for a process that binds it itself, or for nobody to listen on).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

/// Eight random hex digits, for names that must not collide with those of another run.
pub fn random_suffix() -> String {
    // RandomState is seeded from the OS's randomness; the clock and pid make the id unique even without it.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    let hash = RandomState::new().hash_one((now, std::process::id()));
    format!("{:08x}", hash & 0xffff_ffff)
}
