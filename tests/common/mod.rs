//! Helpers shared by the integration tests (each test crate uses the ones it needs).
#![allow(dead_code)]

pub mod cluster_webhook;
pub mod control_plane;
pub mod kube_binaries;
pub mod kubectl;

use std::path::Path;
use std::sync::Arc;

use pullsecret_injector::core::decision::Policy;
use pullsecret_injector::metrics::Metrics;
use pullsecret_injector::serve::http::AppState;
use pullsecret_injector::sources::live::{LiveCredentials, Readiness};
use pullsecret_injector::sources::manifests::Manifests;

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
