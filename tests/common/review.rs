//! AdmissionReviews as the API server sends them, and what the webhook's answer does to their Pod.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// One container per image, named `c0`, `c1`, ...
pub fn containers(images: &[&str]) -> Value {
    images.iter().enumerate().map(|(i, image)| json!({"name": format!("c{i}"), "image": image})).collect()
}

/// A Pod named `p` in `namespace` with one container per image.
pub fn pod(namespace: &str, images: &[&str]) -> Value {
    pod_with_spec(namespace, json!({ "containers": containers(images) }))
}

/// A Pod named `p` in `namespace` with this `spec`.
pub fn pod_with_spec(namespace: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": namespace}, "spec": spec})
}

/// A Pod CREATE review as the API server sends it, around `pod`: its `metadata.namespace`, when it has metadata, is
/// the request's, as the API server sets it.
pub fn review(uid: &str, namespace: &str, mut pod: Value) -> Value {
    if let Some(metadata) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("namespace".into(), json!(namespace));
    }
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "tester", "groups": ["system:authenticated"]},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        }
    })
}

/// A Pod CREATE review of a Pod with these images in `namespace`.
pub fn pod_review(uid: &str, namespace: &str, images: &[&str]) -> Value {
    review(uid, namespace, pod(namespace, images))
}

pub fn to_body(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value serializes")
}

/// The review's Pod after the answer's JSON patch (unchanged when there is none), as the API server applies it.
/// A patch must say it is a JSONPatch, and an answer without one must not name a patch type.
pub fn patched_pod(review: &Value, answer: &Value) -> Value {
    let response = &answer["response"];
    let mut pod = review["request"]["object"].clone();
    match response["patch"].as_str() {
        Some(patch) => {
            assert_eq!(response["patchType"], "JSONPatch", "{answer}");
            let patch = STANDARD.decode(patch).expect("the patch is base64");
            let patch: json_patch::Patch = serde_json::from_slice(&patch).expect("the patch is a JSON Patch");
            json_patch::patch(&mut pod, &patch).expect("the patch applies to the request's object");
        }
        None => assert!(response.get("patchType").is_none(), "patchType without a patch: {answer}"),
    }
    pod
}

/// The names in a Pod's `spec.imagePullSecrets`, in order (each entry must have one).
pub fn pull_secret_names(pod: &Value) -> Vec<String> {
    pod["spec"]["imagePullSecrets"]
        .as_array()
        .map(|list| {
            list.iter().map(|entry| entry["name"].as_str().expect("each entry has a name").to_owned()).collect()
        })
        .unwrap_or_default()
}
