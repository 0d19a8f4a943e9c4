//! Periodic credential checks in `serve` (`--verify-interval`, off by default): every interval, run `verify` over the
//! pull Secrets, export one gauge per (namespace, Secret, registry) with the status as a label, and, in the cluster,
//! publish a Warning Event on a Secret whose credential stops working.
//!
//! Credential data is read for the check and dropped when the pass ends; metrics and Events carry names, the registry
//! key and the status, never a credential. Every value is display-safe ([`crate::safe_text`]): the key redacted (any
//! spelling of `user:password@`), escaped and at most 256 characters, names escaped and bounded (namespace 63,
//! Secret 253 characters, as Kubernetes bounds them), so that a tenant's Secret cannot put control characters, a
//! password or a 100 KB string into a label.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tracing::{info, warn};

use crate::kubelet::docker_config::SecretKind;
use crate::metrics::{CheckLabels, Metrics};
use crate::safe_text;
use crate::sources::directory::DEFAULT_NAMESPACE;
use crate::sources::manifests::Manifests;
use crate::sources::snapshot;
use crate::verify::{self, CheckResult, Status, VerifyOptions};

/// Where the Secrets to check come from.
#[derive(Clone)]
pub enum CheckSource {
    Cluster(Client),
    Directory(PathBuf),
}

/// Runs the checks every `interval` until `shutdown`.
pub async fn check_periodically(
    source: CheckSource,
    interval: Duration,
    options: VerifyOptions,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let recorder = match &source {
        CheckSource::Cluster(client) => Some(Recorder::new(client.clone(), Reporter::from("pullsecret-injector"))),
        CheckSource::Directory(_) => None,
    };
    let mut previous: HashMap<(String, String, String), Status> = HashMap::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        let secrets = match load(&source).await {
            Ok(secrets) => secrets,
            Err(error) => {
                warn!(%error, "credential check: cannot read the Secrets; will retry");
                continue;
            }
        };
        let results = match verify::verify(&secrets, &options).await {
            Ok(results) => results,
            Err(error) => {
                warn!(%error, "credential check failed to start");
                continue;
            }
        };
        drop(secrets);
        publish_metrics(&metrics, &results);
        let failing = results.iter().filter(|r| !matches!(r.status, Status::Ok | Status::Skipped)).count();
        info!(checked = results.len(), failing, "credential check done");
        for result in &results {
            let id = (result.namespace.clone(), result.secret.clone(), result.registry.clone());
            let was = previous.insert(id, result.status);
            if stopped_working(was, result.status) {
                warn!(namespace = %result.namespace, secret = %result.secret, registry = %result.registry,
                      status = %result.status, detail = %result.detail, "credential stopped working");
                if let Some(recorder) = &recorder {
                    publish_event(recorder, result).await;
                }
            }
        }
    }
}

/// A credential "stops working" when it is failing now and was not failing at the previous check (a first check
/// that fails counts too: the Event is how people learn about it).
fn stopped_working(previous: Option<Status>, now: Status) -> bool {
    let failing = |s: Status| !matches!(s, Status::Ok | Status::Skipped);
    failing(now) && !previous.is_some_and(failing)
}

/// Bounds of the label values of `pullsecret_injector_credential_check`.
const MAX_NAMESPACE_LABEL: usize = 63;
const MAX_SECRET_LABEL: usize = 253;

/// One gauge per entry, value 1, with the current status as a label; entries gone since the last pass disappear.
fn publish_metrics(metrics: &Metrics, results: &[CheckResult]) {
    metrics.credential_checks.clear();
    for r in results {
        // `verify` made these display-safe already; labels are bounded and escaped here as well, whatever the caller.
        let labels = CheckLabels {
            namespace: safe_text::label(&r.namespace, MAX_NAMESPACE_LABEL),
            secret: safe_text::label(&r.secret, MAX_SECRET_LABEL),
            registry: safe_text::key(&r.registry),
            status: r.status.as_str(),
        };
        metrics.credential_checks.get_or_create(&labels).set(1);
    }
}

async fn load(source: &CheckSource) -> Result<Vec<Secret>, String> {
    match source {
        CheckSource::Directory(dir) => {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || Manifests::load(&[dir], DEFAULT_NAMESPACE).map(|m| m.secrets))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
        }
        CheckSource::Cluster(client) => {
            let mut out = Vec::new();
            for kind in SecretKind::ALL {
                out.extend(snapshot::list_pull_secrets(client, kind, None).await.map_err(|e| e.to_string())?);
            }
            Ok(out)
        }
    }
}

async fn publish_event(recorder: &Recorder, result: &CheckResult) {
    let reference = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Secret".into()),
        namespace: Some(result.namespace.clone()),
        name: Some(result.secret.clone()),
        ..Default::default()
    };
    let event = Event {
        type_: EventType::Warning,
        reason: "CredentialCheckFailed".into(),
        note: Some(format!("{}: {} ({})", result.registry, result.status, result.detail).chars().take(1000).collect()),
        action: "Verify".into(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, &reference).await {
        warn!(namespace = %result.namespace, secret = %result.secret, %error, "could not publish an Event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_only_when_a_credential_starts_failing() {
        assert!(stopped_working(None, Status::Unauthorized), "failing at the first check");
        assert!(stopped_working(Some(Status::Ok), Status::Unreachable));
        assert!(!stopped_working(Some(Status::Unauthorized), Status::Unauthorized), "still failing: no repeat");
        assert!(!stopped_working(Some(Status::Unauthorized), Status::Ok));
        assert!(!stopped_working(None, Status::Skipped));
    }

    #[test]
    fn metrics_follow_the_last_pass_only() {
        let metrics = Metrics::new();
        let result = |secret: &str, status| CheckResult {
            namespace: "ns".into(),
            secret: secret.into(),
            registry: "r.example.com".into(),
            status,
            detail: String::new(),
            expires_at: None,
        };
        publish_metrics(&metrics, &[result("a", Status::Ok), result("b", Status::Unauthorized)]);
        publish_metrics(&metrics, &[result("a", Status::Unauthorized)]);
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"credential_check{namespace="ns",secret="a",registry="r.example.com",status="unauthorized"} 1"#
            ),
            "{text}"
        );
        assert!(!text.contains(r#"secret="b""#), "{text}");
        assert!(!text.contains(r#"status="ok""#), "{text}");
    }

    /// Issue 11, class 11: label values are bounded, escaped and redacted whatever the result holds.
    #[test]
    fn labels_are_bounded_escaped_and_redacted() {
        let metrics = Metrics::new();
        let hostile = CheckResult {
            namespace: format!("ns\n\u{1b}[2J{}", "n".repeat(1000)),
            secret: format!("s\u{202e}\0{}", "s".repeat(100_000)),
            registry: format!("HTTPS://user:Label-Secret-1@{}", "r".repeat(100_000)),
            status: Status::Unauthorized,
            detail: String::new(),
            expires_at: None,
        };
        publish_metrics(&metrics, &[hostile]);
        let text = metrics.encode();
        let line = text.lines().find(|l| l.starts_with("pullsecret_injector_credential_check{")).expect(&text);
        assert!(!line.contains("Label-Secret-1"), "{line}");
        assert!(safe_text::is_safe(line), "{line:?}");
        assert!(line.len() < 63 * 4 + 253 * 4 + 256 * 4 + 200, "{} bytes", line.len());
    }
}
