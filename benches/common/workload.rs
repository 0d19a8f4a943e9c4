//! The workloads every benchmark shares: the pull Secrets of a namespace, a fleet of namespaces, and Pods.
//!
//! Keys are the shapes seen in real clusters (Docker Hub's legacy URL, cloud registries, globs, ports, paths), so
//! that matching does the work it does in production. Credentials are placeholders.

#![allow(dead_code)] // each bench binary uses part of it

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

/// The ten pull Secrets of a typical namespace: (name, registry key). `{ns}` is replaced by the namespace.
pub const TYPICAL_KEYS: [(&str, &str); 10] = [
    ("dockerhub", "https://index.docker.io/v1/"),
    ("ghcr", "ghcr.io"),
    ("quay", "quay.io/{ns}"),
    ("ecr", "*.dkr.ecr.us-east-2.amazonaws.com"),
    ("gcr", "gcr.io"),
    ("gitlab", "registry.gitlab.com"),
    ("harbor", "harbor.example.com"),
    ("nexus", "nexus.example.com:8443"),
    ("internal", "registry.example.com/{ns}/"),
    ("artifacts", "europe-docker.pkg.dev"),
];

/// Namespaces the fixture AdmissionReviews name: the fleet includes them so that every fixture finds Secrets.
pub const FIXTURE_NAMESPACES: [&str; 3] = ["default", "colin-coder", "keymaker"];

/// The fixture AdmissionReview bodies that are Pod CREATEs (the load of the end-to-end benchmarks).
pub const FIXTURE_BODIES: [&str; 4] = [
    "salesforce_generic-sidecar-injector_replicaset-initcontainers.json",
    "cloud-custodian_cloud-custodian_nginx-kubectl-apply.json",
    "kube-rs_kube_gke-echo-pod.json",
    "normalzzz_webhook-learning_dryrun-minimal.json",
];

/// Where the fixture copies live (see benches/data/INDEX.md for their sources).
pub fn data_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/data"))
}

pub fn read_fixture(name: &str) -> Vec<u8> {
    let path = data_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A `kubernetes.io/dockerconfigjson` Secret with one placeholder credential per key.
pub fn secret(namespace: &str, name: &str, keys: &[String]) -> Secret {
    let config = dockerconfigjson(keys);
    Secret {
        metadata: ObjectMeta { namespace: Some(namespace.into()), name: Some(name.into()), ..Default::default() },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some([(".dockerconfigjson".to_string(), ByteString(config.into_bytes()))].into()),
        ..Default::default()
    }
}

fn dockerconfigjson(keys: &[String]) -> String {
    dockerconfigjson_rotated(keys, 0)
}

/// The config of [`dockerconfigjson`] after `rotation` credential rotations (same keys, another password).
pub fn dockerconfigjson_rotated(keys: &[String], rotation: u32) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("robot:placeholder-password-{rotation}"));
    let auths: BTreeMap<&str, Value> = keys.iter().map(|k| (k.as_str(), json!({ "auth": auth }))).collect();
    json!({ "auths": auths }).to_string()
}

/// The ten Secrets of a typical namespace.
pub fn typical_secrets(namespace: &str) -> Vec<Secret> {
    TYPICAL_KEYS.iter().map(|(name, key)| secret(namespace, name, &[key.replace("{ns}", namespace)])).collect()
}

/// A large namespace: the ten typical Secrets plus generated ones, `total` in all, one key each (every fifth
/// Secret has two), in the five shapes of key the kubelet treats differently.
pub fn large_secrets(namespace: &str, total: usize) -> Vec<Secret> {
    let mut out = typical_secrets(namespace);
    for i in 0..total.saturating_sub(out.len()) {
        let key = match i % 5 {
            0 => format!("reg-{i}.example.com"),
            1 => format!("https://reg-{i}.example.com/v2/"),
            2 => format!("*.reg-{i}.example.net"),
            3 => format!("reg.example.org/team-{i}"),
            _ => format!("reg-{i}.example.com:5000"),
        };
        let keys = if i % 5 == 4 { vec![key, format!("mirror-{i}.example.com")] } else { vec![key] };
        out.push(secret(namespace, &format!("gen-{i:04}"), &keys));
    }
    out
}

/// `namespaces` namespaces (the fixtures' first) of ten typical Secrets each.
pub fn fleet_namespaces(namespaces: usize) -> Vec<String> {
    let mut names: Vec<String> = FIXTURE_NAMESPACES.iter().map(|s| s.to_string()).collect();
    let mut i = 0;
    while names.len() < namespaces {
        names.push(format!("team-{i:04}"));
        i += 1;
    }
    names.truncate(namespaces);
    names
}

pub fn fleet_secrets(namespaces: usize) -> Vec<Secret> {
    fleet_namespaces(namespaces).iter().flat_map(|ns| typical_secrets(ns)).collect()
}

/// Writes the fleet as `kubectl get secret -o yaml`-like manifests, one file per namespace, for `--secrets-dir`.
pub fn write_fleet_dir(dir: &Path, namespaces: usize) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut count = 0;
    for ns in fleet_namespaces(namespaces) {
        let mut text = String::new();
        for (name, key) in TYPICAL_KEYS {
            let config = dockerconfigjson(&[key.replace("{ns}", &ns)]);
            let data = base64::engine::general_purpose::STANDARD.encode(config);
            if !text.is_empty() {
                text.push_str("---\n");
            }
            write!(
                text,
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
                 type: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {data}\n"
            )
            .expect("writing to a String");
            count += 1;
        }
        std::fs::write(dir.join(format!("{ns}.yaml")), text)?;
    }
    Ok(count)
}

// ---------------------------------------------------------------------------------------------------------------
// The scale suite (benches/cluster.rs `scale`): per namespace the ten typical pull Secrets and one unrelated Opaque
// Secret (10% of the Secrets); one namespace in ten labelled [`SHARED_LABEL`], which one ClusterPullSecret selects.

/// The label of the namespaces the scale suite's ClusterPullSecret selects (one in ten).
pub const SHARED_LABEL: (&str, &str) = ("bench.pullsecret-injector.io/shared", "true");
/// The ClusterPullSecret of the scale suite: distributes `default/harbor` as `shared-pull`.
pub const SHARED_CPS: &str = "bench-shared";

/// Whether the `i`th namespace of [`fleet_namespaces`] carries [`SHARED_LABEL`].
pub fn is_shared(i: usize) -> bool {
    i.is_multiple_of(10)
}

/// The unrelated Secret of each namespace.
pub fn opaque_secret(namespace: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            namespace: Some(namespace.into()),
            name: Some("app-config".into()),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some([("config.yaml".to_string(), ByteString(b"log: info\n".to_vec()))].into()),
        ..Default::default()
    }
}

/// The scale suite's ClusterPullSecret as the API takes it.
pub fn shared_cluster_pull_secret() -> Value {
    json!({
        "apiVersion": "pullsecret-injector.io/v1alpha1",
        "kind": "ClusterPullSecret",
        "metadata": { "name": SHARED_CPS },
        "spec": {
            "secretRef": { "namespace": "default", "name": "harbor" },
            "namespaceSelector": { "matchLabels": { SHARED_LABEL.0: SHARED_LABEL.1 } },
            "targetName": "shared-pull",
        },
    })
}

/// The YAML of one namespace of the scale suite (the Namespace, its pull Secrets after `rotation` rotations, the
/// Opaque Secret), for `--secrets-dir`.
pub fn scale_namespace_yaml(i: usize, ns: &str, rotation: u32) -> String {
    let mut text = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n");
    if is_shared(i) {
        write!(text, "  labels:\n    {}: \"{}\"\n", SHARED_LABEL.0, SHARED_LABEL.1).expect("writing to a String");
    }
    for (name, key) in TYPICAL_KEYS {
        let config = dockerconfigjson_rotated(&[key.replace("{ns}", ns)], rotation);
        let data = base64::engine::general_purpose::STANDARD.encode(config);
        write!(
            text,
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
             type: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {data}\n"
        )
        .expect("writing to a String");
    }
    write!(
        text,
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: app-config\n  namespace: {ns}\ntype: Opaque\n\
         data:\n  config.yaml: bG9nOiBpbmZvCg==\n"
    )
    .expect("writing to a String");
    text
}

/// Writes the scale suite's fleet as manifests, one file per namespace plus the ClusterPullSecret; returns the
/// number of pull Secrets.
pub fn write_scale_dir(dir: &Path, namespaces: usize) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    for (i, ns) in fleet_namespaces(namespaces).iter().enumerate() {
        std::fs::write(dir.join(format!("{ns}.yaml")), scale_namespace_yaml(i, ns, 0))?;
    }
    let cps = serde_yaml_ng::to_string(&shared_cluster_pull_secret()).expect("serializes");
    std::fs::write(dir.join("cluster-pull-secret.yaml"), cps)?;
    Ok(namespaces * TYPICAL_KEYS.len())
}

/// A Pod of `containers` containers (the first tenth init containers) with the given images, cycled.
pub fn pod(containers: usize, images: &[String]) -> Value {
    let init = containers / 10;
    let container = |i: usize| json!({ "name": format!("c{i}"), "image": images[i % images.len()] });
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "generateName": "web-", "labels": { "app": "web" } },
        "spec": {
            "initContainers": (0..init).map(container).collect::<Vec<_>>(),
            "containers": (init..containers).map(container).collect::<Vec<_>>(),
        }
    })
}

/// The typical Pod: an application image from the namespace's own registry and a Docker Hub sidecar.
pub fn typical_pod(namespace: &str) -> Value {
    pod(2, &[format!("registry.example.com/{namespace}/api:v1.2.3"), "nginx:1.27".into()])
}

/// Twenty containers over every kind of registry, some matching generated keys deep in the keyring, some none.
pub fn large_pod(namespace: &str) -> Value {
    let images = vec![
        format!("registry.example.com/{namespace}/api:v1.2.3"),
        "nginx:1.27".into(),
        "791719295754.dkr.ecr.us-east-2.amazonaws.com/dva/bootstrap:6".into(),
        "gcr.io/project/keymaker-client:latest".into(),
        "reg-5.example.com/app/web:1".into(),
        "reg-100.example.com/app/worker@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        "eu.reg-2.example.net/app:2".into(),
        "reg.example.org/team-3/tool:3".into(),
        "reg-4.example.com:5000/cache:4".into(),
        "mirror-9.example.com/lib/base:9".into(),
        "ghcr.io/org/cli:0.9".into(),
        "quay.io/prometheus/node-exporter:v1.8.0".into(),
        "mcr.microsoft.com/dotnet/runtime:8.0".into(),
        "docker.io/bitnami/redis:7.2".into(),
        "registry.gitlab.com/group/project/image:main".into(),
        "harbor.example.com/library/app:5".into(),
        "nexus.example.com:8443/releases/app:6".into(),
        "europe-docker.pkg.dev/project/repo/app:7".into(),
        "reg-480.example.com/late/match:8".into(),
        "unknown.example.io/anonymous:1".into(),
    ];
    pod(20, &images)
}

/// A fixture AdmissionReview with its namespace replaced.
pub fn fixture_in_namespace(fixture: &str, namespace: &str) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&read_fixture(fixture)).expect("fixture is JSON");
    review["request"]["namespace"] = namespace.into();
    serde_json::to_vec(&review).expect("serializes")
}
