//! OpenMetrics for `/metrics`. Labels carry outcomes, kinds and resource names only: never a Secret's content, never
//! a Pod name. `credential_expiry_timestamp_seconds` names the namespace and Secret of each credential with a known
//! expiry (names only, bounded, at most [`MAX_EXPIRY_SERIES`] series). The one other exception is opt-in:
//! `pullsecret_injector_credential_check` (`--verify-interval`) names the namespace, Secret and registry key of each
//! credential entry, so that operators know which credential fails; its values are display-safe (key userinfo
//! redacted in any spelling, control characters escaped) and bounded (63, 253 and 256 characters: see
//! `checks::publish_metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::core::admission::Outcome;

/// `outcome` is `admission::Outcome::as_str`: the one list of outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

/// A bound of the credential index (`credentials::Limit::label`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    pub limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

/// One credential entry of `--verify-interval` checks. Opt-in; one series per credential entry. Values are made
/// display-safe and bounded by `checks::publish_metrics` (`safe_text::label`, `safe_text::key`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub namespace: String,
    pub secret: String,
    /// The key as written, userinfo redacted in any spelling, escaped, at most 256 characters.
    pub registry: String,
    pub status: &'static str,
}

/// A pull Secret whose credential expires (`core::expiry`): names only, display-safe and bounded (63 and 253
/// characters), one series per such Secret, at most [`MAX_EXPIRY_SERIES`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SecretLabels {
    pub namespace: String,
    pub secret: String,
}

/// At most this many `credential_expiry_timestamp_seconds` series: a tenant creating Secrets cannot grow the
/// exposition without bound (the rest are counted in `credential_expiry_unexported`).
pub const MAX_EXPIRY_SERIES: usize = 10_000;

/// Every metric the server exports.
pub struct Metrics {
    pub requests: Family<OutcomeLabels, Counter>,
    pub injected_secrets: Counter,
    pub warnings: Counter,
    pub latency: Histogram,
    pub cache_objects: Family<KindLabels, Gauge>,
    pub watch_errors: Family<KindLabels, Counter>,
    pub watch_relists: Family<KindLabels, Counter>,
    pub source_reloads: Family<ResultLabels, Counter>,
    pub tls_reloads: Family<ResultLabels, Counter>,
    pub tls_not_after: Gauge,
    pub credential_checks: Family<CheckLabels, Gauge>,
    /// Secrets the credential index leaves without keys because of a bound (`--max-secret-bytes`, ...).
    pub index_limited_secrets: Family<LimitLabels, Gauge>,
    /// Age of the oldest change the credential index has received but admission does not see yet.
    pub cache_lag: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Namespace snapshots built off the request path.
    pub index_rebuilds: Counter,
    /// Distributed copies found modified (their data no longer what the controller wrote) and restored.
    pub copies_restored: Counter,
    /// When each pull Secret with an expiry expires (Unix seconds); Secrets without one have no series.
    pub credential_expiry: Family<SecretLabels, Gauge>,
    /// Secrets with an expiry left out of `credential_expiry` by [`MAX_EXPIRY_SERIES`].
    pub credential_expiry_unexported: Gauge,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pullsecret_injector");
        let requests = Family::<OutcomeLabels, Counter>::default();
        registry.register("admission_requests", "Admission reviews answered, by outcome", requests.clone());
        let injected_secrets = Counter::default();
        registry.register("injected_secrets", "Pull Secret names added to Pods", injected_secrets.clone());
        let warnings = Counter::default();
        registry.register("admission_warnings", "Warnings returned to API clients", warnings.clone());
        // 25 µs .. ~0.8 s: the decision takes microseconds; the tail shows contention or a huge Pod.
        let latency = Histogram::new(exponential_buckets(0.000_025, 2.0, 16));
        registry.register_with_unit(
            "admission_duration",
            "Time to answer one admission review, body parsed to response encoded",
            prometheus_client::registry::Unit::Seconds,
            latency.clone(),
        );
        let cache_objects = Family::<KindLabels, Gauge>::default();
        registry.register("cache_objects", "Objects held by the credential cache, by kind", cache_objects.clone());
        let watch_errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "watch_errors",
            "Errors of the Kubernetes watches (retried with backoff)",
            watch_errors.clone(),
        );
        let watch_relists = Family::<KindLabels, Counter>::default();
        registry.register(
            "watch_relists",
            "Full relists after the first sync (a watch that could not resume, e.g. 410 Gone after compaction)",
            watch_relists.clone(),
        );
        let source_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "secrets_dir_reloads",
            "Reloads of --secrets-dir, by result (an error keeps the previous credentials)",
            source_reloads.clone(),
        );
        let tls_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "tls_reloads",
            "Serving certificate reloads, by result (an error keeps the previous certificate)",
            tls_reloads.clone(),
        );
        let tls_not_after = Gauge::default();
        registry.register(
            "tls_certificate_not_after_timestamp_seconds",
            "Expiry of the serving certificate, as a Unix timestamp",
            tls_not_after.clone(),
        );
        let credential_checks = Family::<CheckLabels, Gauge>::default();
        registry.register(
            "credential_check",
            "Result of the last --verify-interval check of each credential entry (1 for the current status)",
            credential_checks.clone(),
        );
        let index_limited_secrets = Family::<LimitLabels, Gauge>::default();
        registry.register(
            "index_limited_secrets",
            "Secrets the credential index keeps without keys because they exceed a bound (never injected), by bound",
            index_limited_secrets.clone(),
        );
        let cache_lag = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register_with_unit(
            "cache_lag",
            "Age of the oldest change the credential cache has received but admission does not see yet (0: current)",
            prometheus_client::registry::Unit::Seconds,
            cache_lag.clone(),
        );
        let index_rebuilds = Counter::default();
        registry.register("index_rebuilds", "Namespace snapshots built off the request path", index_rebuilds.clone());
        let copies_restored = Counter::default();
        registry.register(
            "copies_restored",
            "Distributed copies found modified since the controller wrote them, and restored",
            copies_restored.clone(),
        );
        let credential_expiry = Family::<SecretLabels, Gauge>::default();
        registry.register(
            "credential_expiry_timestamp_seconds",
            "When the credential of each pull Secret with an expiry expires (its expires-at annotation or a JWT's exp), \
             as a Unix timestamp",
            credential_expiry.clone(),
        );
        let credential_expiry_unexported = Gauge::default();
        registry.register(
            "credential_expiry_unexported",
            "Pull Secrets with an expiry left out of credential_expiry_timestamp_seconds (over its series bound)",
            credential_expiry_unexported.clone(),
        );
        Self {
            credential_expiry,
            credential_expiry_unexported,
            index_limited_secrets,
            cache_lag,
            index_rebuilds,
            copies_restored,
            credential_checks,
            requests,
            injected_secrets,
            warnings,
            latency,
            cache_objects,
            watch_errors,
            watch_relists,
            source_reloads,
            tls_reloads,
            tls_not_after,
            registry,
        }
    }

    /// Counts one answered review.
    pub fn record(&self, outcome: Outcome, injected: usize, warnings: usize, seconds: f64) {
        self.requests.get_or_create(&OutcomeLabels { outcome: outcome.as_str() }).inc();
        self.injected_secrets.inc_by(injected as u64);
        self.warnings.inc_by(warnings as u64);
        self.latency.observe(seconds);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String never fails");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_counters_with_labels() {
        let m = Metrics::new();
        m.record(Outcome::Patched, 2, 1, 0.0001);
        m.cache_objects.get_or_create(&KindLabels { kind: "secrets" }).set(3);
        let text = m.encode();
        assert!(text.contains("pullsecret_injector_admission_requests_total{outcome=\"patched\"} 1"), "{text}");
        assert!(text.contains("pullsecret_injector_injected_secrets_total 2"), "{text}");
        assert!(text.contains("pullsecret_injector_cache_objects{kind=\"secrets\"} 3"), "{text}");
        assert!(text.contains("pullsecret_injector_admission_duration_seconds_count 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
