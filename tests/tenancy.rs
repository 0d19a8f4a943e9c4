//! Tenancy guarantees: a Pod only ever receives names of Secrets in its own namespace, or of copies a
//! ClusterPullSecret selected for that namespace; nothing a tenant controls (Pod labels, annotations, Secret names,
//! the object's own `metadata.namespace`, wildcard keys) makes another namespace's credentials flow to it.

use std::path::Path;

use base64::Engine as _;
use pullsecret_injector::core::admission;
use pullsecret_injector::core::credentials::CredentialIndex;
use pullsecret_injector::core::decision::Policy;
use pullsecret_injector::sources::manifests::Manifests;
use serde_json::{Value, json};

const WORLD: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: tenant-a, labels: {tier: external}}
---
apiVersion: v1
kind: Namespace
metadata: {name: tenant-b, labels: {tier: internal}}
---
apiVersion: v1
kind: Namespace
metadata: {name: tenant-c, labels: {tier: internal, pullsecret-injector.io/inject: disabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: platform-creds}
---
# Tenant B's own credential, with a key that matches every single-label host (and the Docker Hub fallback key).
apiVersion: v1
kind: Secret
metadata: {name: b-private, namespace: tenant-b}
type: kubernetes.io/dockerconfigjson
stringData: {.dockerconfigjson: '{"auths":{"registry.b.example.com":{"auth":"Yjpi"},"https://index.docker.io/v1/":{"auth":"Yjpi"}}}'}
---
apiVersion: v1
kind: Secret
metadata: {name: corp, namespace: platform-creds}
type: kubernetes.io/dockerconfigjson
stringData: {.dockerconfigjson: '{"auths":{"*.corp.example.com":{"auth":"Yzpj"}}}'}
---
apiVersion: pullsecret-injector.io/v1alpha1
kind: ClusterPullSecret
metadata: {name: corp-registry}
spec:
  secretRef: {namespace: platform-creds, name: corp}
  namespaceSelector: {matchLabels: {tier: internal}}
"#;

fn world() -> CredentialIndex {
    world_with(&[])
}

/// The world plus tenant Secrets `(namespace, name, .dockerconfigjson)`.
fn world_with(tenant_secrets: &[(&str, &str, &str)]) -> CredentialIndex {
    let mut m = Manifests::default();
    m.add_documents(Path::new("world.yaml"), WORLD, "default").unwrap();
    for (namespace, name, payload) in tenant_secrets {
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": payload},
        });
        m.add_documents(Path::new("tenant.json"), &secret.to_string(), "default").unwrap();
    }
    m.index()
}

/// Sends a Pod CREATE review for `request_namespace` and returns the names the patch adds.
fn injected(index: &CredentialIndex, request_namespace: &str, pod: Value) -> Vec<String> {
    let body = admission::review_for_pod(&pod, request_namespace);
    let reviewed = admission::review(&body, index, &Policy::default());
    let response: Value = serde_json::from_slice(&reviewed.body).unwrap();
    let mut patched = pod.clone();
    if let Some(p) = response["response"]["patch"].as_str() {
        let patch: json_patch::Patch =
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(p).unwrap()).unwrap();
        json_patch::patch(&mut patched, &patch).unwrap();
    }
    let before = pod["spec"]["imagePullSecrets"].as_array().map_or(0, Vec::len);
    patched["spec"]["imagePullSecrets"]
        .as_array()
        .map(|a| a[before..].iter().map(|e| e["name"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn pod(namespace: &str, images: &[&str]) -> Value {
    let containers: Vec<Value> = images.iter().map(|i| json!({"name": "c", "image": i})).collect();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": namespace}, "spec": {"containers": containers}})
}

#[test]
fn another_namespaces_secret_is_never_a_candidate() {
    let index = world();
    // Tenant A uses tenant B's registry and Docker Hub: B's Secret matches both, but lives in B.
    let names = injected(&index, "tenant-a", pod("tenant-a", &["registry.b.example.com/app", "nginx"]));
    assert!(names.is_empty(), "{names:?}");
    // Listing B's Secret by name does not make it resolvable in A (a LocalObjectReference), nor inject anything.
    let mut p = pod("tenant-a", &["registry.b.example.com/app"]);
    p["spec"]["imagePullSecrets"] = json!([{"name": "b-private"}]);
    assert!(injected(&index, "tenant-a", p).is_empty());
    // In B itself, it is injected.
    assert_eq!(injected(&index, "tenant-b", pod("tenant-b", &["registry.b.example.com/app"])), ["b-private"]);
}

#[test]
fn the_object_cannot_claim_another_namespace() {
    // The API server sets request.namespace; a Pod whose own metadata says otherwise does not get B's Secrets.
    let index = world();
    assert!(injected(&index, "tenant-a", pod("tenant-b", &["registry.b.example.com/app"])).is_empty());
}

#[test]
fn distribution_follows_namespace_labels_not_pod_labels() {
    let index = world();
    let image = "registry.corp.example.com/base/app";
    assert_eq!(injected(&index, "tenant-b", pod("tenant-b", &[image])), ["corp-registry"]);
    // Tenant A labels its Pod (and annotates it) like a selected namespace: no effect.
    let mut p = pod("tenant-a", &[image]);
    p["metadata"]["labels"] = json!({"tier": "internal"});
    p["metadata"]["annotations"] = json!({"pullsecret-injector.io/cluster-pull-secret": "corp-registry"});
    assert!(injected(&index, "tenant-a", p).is_empty());
    // A namespace that opted out receives no distribution, even when selected.
    assert!(injected(&index, "tenant-c", pod("tenant-c", &[image])).is_empty());
}

#[test]
fn a_tenant_secret_named_like_the_distribution_only_shadows_it_in_its_own_namespace() {
    let index = world_with(&[("tenant-b", "corp-registry", r#"{"auths":{"registry.b.example.com":{"auth":"Yjpi"}}}"#)]);
    // In B, the name now means B's own Secret (what the kubelet will read): it does not match the corp registry.
    assert!(injected(&index, "tenant-b", pod("tenant-b", &["registry.corp.example.com/app"])).is_empty());
    assert!(
        injected(&index, "tenant-b", pod("tenant-b", &["registry.b.example.com/app"]))
            .contains(&"corp-registry".into())
    );
    // Elsewhere nothing changes: the platform credential is distributed only where selected.
    let view = index.view("platform-creds");
    assert!(view.get("corp-registry").is_none());
}

#[test]
fn a_tenant_wildcard_key_reaches_only_its_own_namespace() {
    let index =
        world_with(&[("tenant-a", "catch-all", r#"{"auths":{"*.*.*":{"auth":"YTph"},"*.*.*.*":{"auth":"YTph"}}}"#)]);
    assert_eq!(injected(&index, "tenant-a", pod("tenant-a", &["registry.corp.example.com/app"])), ["catch-all"]);
    let b = injected(&index, "tenant-b", pod("tenant-b", &["registry.corp.example.com/app"]));
    assert_eq!(b, ["corp-registry"], "tenant A's catch-all key is invisible in B");
}

/// Issue 11, class 8, through admission and `--deny-unmatched`: a tenant's Secret that is not a pull Secret the
/// kubelet can use, named like the distributed credential, is what the kubelet reads in that namespace, so the
/// name is not injected and the policy is not satisfied (it was both before); listing it by name changes nothing.
/// Without any Secret of that name the race rule still injects the distributed name.
#[test]
fn a_non_pull_secret_named_like_the_distribution_satisfies_nothing() {
    let deny: Policy =
        Policy { deny_unmatched: vec!["*.corp.example.com".parse().unwrap()], audit_only: false, ..Policy::default() };
    let image = "registry.corp.example.com/base/app";
    let decide = |index: &CredentialIndex, listed: bool| {
        let mut p = pod("tenant-b", &[image]);
        if listed {
            p["spec"]["imagePullSecrets"] = json!([{"name": "corp-registry"}]);
        }
        let body = admission::review_for_pod(&p, "tenant-b");
        let response: Value = serde_json::from_slice(&admission::review(&body, index, &deny).body).unwrap();
        (response["response"]["allowed"].as_bool().unwrap(), response["response"]["patch"].is_string())
    };
    assert_eq!(decide(&world(), false), (true, true), "no Secret of that name: the distributed name is injected");
    let tenant_secrets = [
        ("Opaque", json!({"stringData": {".dockerconfigjson": r#"{"auths":{"*.corp.example.com":{}}}"#}})),
        ("kubernetes.io/basic-auth", json!({"stringData": {"username": "u", "password": "p"}})),
        ("kubernetes.io/dockerconfigjson", json!({"data": {}})),
        ("kubernetes.io/dockercfg", json!({"stringData": {".dockerconfigjson": r#"{"auths":{}}"#}})),
    ];
    for (type_, fields) in tenant_secrets {
        let mut m = Manifests::default();
        m.add_documents(Path::new("world.yaml"), WORLD, "default").unwrap();
        let mut secret = json!({
            "apiVersion": "v1", "kind": "Secret", "type": type_,
            "metadata": {"name": "corp-registry", "namespace": "tenant-b"},
        });
        for (k, v) in fields.as_object().unwrap() {
            secret[k] = v.clone();
        }
        m.add_documents(Path::new("tenant.json"), &secret.to_string(), "default").unwrap();
        let index = m.index();
        assert_eq!(decide(&index, false), (false, false), "{type_}: denied, nothing injected");
        assert_eq!(decide(&index, true), (false, false), "{type_}: listed by name, still no credential");
    }
}
