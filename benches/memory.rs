//! Where the credential cache's memory goes (BENCHMARKS.md, scale): the growth of this process's RSS over each stage of what `serve` builds from N pull Secrets (ten per namespace, one Opaque per namespace, one
//! namespace in ten labelled for a ClusterPullSecret), in bytes per pull Secret.
//!
//! ```text
//! memory [--secrets 100000]
//! ```
//!
//! Stages: the Secrets staged as a watch's (re)list receives them (`Reduced`, then `StagedSecrets::add`: the form
//! the index keeps), the index holding them (`CredentialIndex::replace_staged`, namespaces and the
//! ClusterPullSecret), and the published per-namespace snapshots with their parsed keyrings
//! (`LiveCredentials::replace`). Under `cargo test --benches`: 1,000 Secrets.

#[path = "common/process.rs"]
mod process;
#[path = "common/workload.rs"]
mod workload;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt as _;
use pullsecret_injector::core::cluster_pull_secret::ClusterPullSecret;
use pullsecret_injector::core::credentials::{CredentialIndex, IndexLimits, Reduced, StagedSecrets};
use pullsecret_injector::kubelet::docker_config::SecretKind;
use pullsecret_injector::metrics::Metrics;
use pullsecret_injector::sources::live::LiveCredentials;

/// This process's resident memory in bytes (`unsafe` is forbidden here, so no counting allocator: RSS growth is the
/// heap with the allocator's own overhead, which is what the server pays).
fn live() -> isize {
    (process::proc_status_kib(std::process::id(), "VmRSS") * 1024.0) as isize
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run = args.first().map(String::as_str) == Some("run");
    let secrets: usize = args
        .iter()
        .position(|a| a == "--secrets")
        .and_then(|i| args.get(i + 1))
        .map_or(if run { 100_000 } else { 1000 }, |n| n.parse().expect("--secrets N"));
    let namespaces = secrets.div_ceil(workload::TYPICAL_KEYS.len());
    let names = workload::fleet_namespaces(namespaces);

    // Inputs, not counted: the Secrets as the watches receive them.
    let pull: Vec<_> = names.iter().flat_map(|ns| workload::typical_secrets(ns)).collect();
    let opaque: Vec<_> = names.iter().map(|ns| workload::opaque_secret(ns)).collect();
    let namespace_objects: Vec<Namespace> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut labels = serde_json::Map::new();
            if workload::is_shared(i) {
                labels.insert(workload::SHARED_LABEL.0.into(), workload::SHARED_LABEL.1.into());
            }
            serde_json::from_value(serde_json::json!({ "metadata": { "name": name, "labels": labels } }))
                .expect("a Namespace")
        })
        .collect();
    let cps: ClusterPullSecret =
        serde_json::from_value(workload::shared_cluster_pull_secret()).expect("a ClusterPullSecret");
    let metrics = Arc::new(Metrics::new());
    let live_cache = LiveCredentials::new(metrics);

    let base = live();
    let limits = IndexLimits::default();
    // What `sources::cluster::SecretFeed` does with each Secret of a list as it arrives.
    let mut staged = StagedSecrets::new(SecretKind::DockerConfigJson);
    for secret in &pull {
        staged.add(
            secret.metadata.namespace.as_deref().expect("namespaced"),
            Reduced::of(secret, &limits).expect("named"),
        );
    }
    assert_eq!(staged.len(), pull.len());
    let reduced_bytes = live() - base;

    let before_index = live();
    let mut index = CredentialIndex::with_limits(limits);
    index.replace_staged(staged);
    let pull_index = live() - before_index;
    let before = live();
    index.replace_other_secrets(opaque.iter().map(|s| (s.namespace().expect("namespaced"), s.name_any())));
    let others = live() - before;
    let before = live();
    index.replace_namespaces(&namespace_objects);
    index.replace_cluster_pull_secrets([&cps]);
    let namespaces_bytes = live() - before;

    let before = live();
    live_cache.replace(index);
    let snapshots = live() - before;
    let total = live() - base;

    let per = |bytes: isize| bytes as f64 / secrets as f64;
    println!("memory: {secrets} pull Secrets in {namespaces} namespaces (+{namespaces} Opaque), RSS growth:");
    for (stage, bytes) in [
        ("staged, as a relist receives them", reduced_bytes),
        ("index: pull Secrets", pull_index),
        ("index: Opaque Secrets' names", others),
        ("index: namespaces and the ClusterPullSecret", namespaces_bytes),
        ("published snapshots (keyrings)", snapshots),
        ("index + snapshots", total),
    ] {
        println!("  {stage:<45} {:>8.1} MiB {:>7.0} B per pull Secret", bytes as f64 / 1_048_576.0, per(bytes));
    }
    assert!(total > 0 && snapshots > 0);
}
