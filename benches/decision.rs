//! The decision core, without HTTP: `decision::decide` on a parsed Pod, and `admission::review` on a body
//! (JSON in, AdmissionReview with its patch out) through the same `LiveCredentials` cache `serve` reads.
//!
//! `cargo bench --bench decision` measures; `cargo test --benches` (and `make test`) runs each benchmark once.

use std::sync::Arc;

use divan::{Bencher, black_box};
use pullsecret_injector::core::admission;
use pullsecret_injector::core::credentials::{CredentialIndex, CredentialSource};
use pullsecret_injector::core::decision::{self, Policy};
use pullsecret_injector::core::pod::PodView;
use pullsecret_injector::kubelet::docker_config::SecretKind;
use pullsecret_injector::metrics::Metrics;
use pullsecret_injector::sources::live::LiveCredentials;

#[path = "common/workload.rs"]
mod workload;

fn main() {
    divan::main();
}

fn index_of(secrets: &[k8s_openapi::api::core::v1::Secret]) -> CredentialIndex {
    let mut index = CredentialIndex::new();
    index.replace_secrets(SecretKind::DockerConfigJson, secrets);
    index
}

/// The reference case: a 2-container Pod, 10 candidate Secrets.
#[divan::bench]
fn decide_typical_2_containers_10_secrets(bencher: Bencher) {
    let index = index_of(&workload::typical_secrets("team-a"));
    let ns = index.view("team-a");
    let pod = PodView::from_value(&workload::typical_pod("team-a")).unwrap();
    let policy = Policy::default();
    assert_eq!(decision::decide(&pod, &ns, &policy).add, ["internal", "dockerhub"]);
    bencher.bench(|| decision::decide(black_box(&pod), black_box(&ns), &policy));
}

/// The typical case with the nodes' credential providers (`--credential-provider-config`: the EKS, GKE and AKS
/// plugins' usual `matchImages`, none matching these images, so every entry is tried for each image) and
/// `--expiry-warning`: the per-Pod cost of issue 12 items 2 and 5.
#[divan::bench]
fn decide_typical_with_node_providers(bencher: Bencher) {
    let index = index_of(&workload::typical_secrets("team-a"));
    let ns = index.view("team-a");
    let pod = PodView::from_value(&workload::typical_pod("team-a")).unwrap();
    let config = r#"{"apiVersion": "kubelet.config.k8s.io/v1", "kind": "CredentialProviderConfig", "providers": [
        {"name": "ecr-credential-provider", "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
         "defaultCacheDuration": "12h", "matchImages": ["*.dkr.ecr.*.amazonaws.com", "*.dkr.ecr.*.amazonaws.com.cn",
         "*.dkr.ecr-fips.*.amazonaws.com", "*.dkr.ecr.us-iso-east-1.c2s.ic.gov"]},
        {"name": "gcp-credential-provider", "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
         "defaultCacheDuration": "1m", "matchImages": ["container.cloud.google.com", "gcr.io", "*.gcr.io", "*.pkg.dev"]},
        {"name": "acr-credential-provider", "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
         "defaultCacheDuration": "10m", "matchImages": ["*.azurecr.io", "*.azurecr.cn", "*.azurecr.de", "*.azurecr.us"]}
    ]}"#;
    let policy = Policy {
        node_providers: pullsecret_injector::kubelet::credential_provider::NodeProviders::parse(config).unwrap(),
        expiry_warning: std::time::Duration::from_secs(86_400),
        ..Policy::default()
    };
    assert_eq!(decision::decide(&pod, &ns, &policy).add, ["internal", "dockerhub"]);
    bencher.bench(|| decision::decide(black_box(&pod), black_box(&ns), &policy));
}

/// The large case: a 20-container Pod, 500 candidate Secrets in its namespace.
#[divan::bench]
fn decide_large_20_containers_500_secrets(bencher: Bencher) {
    let index = index_of(&workload::large_secrets("big", 500));
    let ns = index.view("big");
    assert_eq!(ns.secrets.len(), 500);
    let pod = PodView::from_value(&workload::large_pod("big")).unwrap();
    let policy = Policy::default();
    assert!(decision::decide(&pod, &ns, &policy).add.len() >= 10);
    bencher.bench(|| decision::decide(black_box(&pod), black_box(&ns), &policy));
}

/// The typical Pod as a whole AdmissionReview body: parse, decide, patch, encode.
#[divan::bench]
fn review_typical_2_containers_10_secrets(bencher: Bencher) {
    let live = live(&workload::typical_secrets("team-a"));
    let body = admission::review_for_pod(&workload::typical_pod("team-a"), "team-a");
    review_bench(bencher, &live, &body);
}

/// The large Pod as a whole AdmissionReview body.
#[divan::bench]
fn review_large_20_containers_500_secrets(bencher: Bencher) {
    let live = live(&workload::large_secrets("big", 500));
    let body = admission::review_for_pod(&workload::large_pod("big"), "big");
    review_bench(bencher, &live, &body);
}

/// The real request path minus HTTP: a fixture body (a ReplicaSet's Pod with ECR and GCR images) in one
/// namespace among 1,000 holding 10,000 Secrets, through `LiveCredentials` and `admission::review`.
#[divan::bench]
fn review_fixture_1000_namespaces_10000_secrets(bencher: Bencher) {
    let live = live(&workload::fleet_secrets(1000));
    assert_eq!(live.read(|i| i.secret_count()), 10_000);
    let body = workload::fixture_in_namespace(workload::FIXTURE_BODIES[0], "team-0500");
    review_bench(bencher, &live, &body);
}

/// Each fixture body as served (10 Secrets in its namespace).
#[divan::bench(args = workload::FIXTURE_BODIES)]
fn review_fixture(bencher: Bencher, fixture: &str) {
    let live = live(&workload::fleet_secrets(3));
    let body = workload::read_fixture(fixture);
    review_bench(bencher, &live, &body);
}

fn live(secrets: &[k8s_openapi::api::core::v1::Secret]) -> LiveCredentials {
    let live = LiveCredentials::new(Arc::new(Metrics::new()));
    live.replace(index_of(secrets));
    live
}

fn review_bench(bencher: Bencher, live: &LiveCredentials, body: &[u8]) {
    let policy = Policy::default();
    let source: &dyn CredentialSource = live;
    let first = admission::review(body, source, &policy);
    assert_eq!(first.outcome, admission::Outcome::Patched, "{}", String::from_utf8_lossy(&first.body));
    bencher.bench(|| admission::review(black_box(body), source, &policy));
}
