//! Objects that carry a Pod: a Pod itself, and the workloads whose controllers create Pods from a template. The
//! webhook only ever sees the Pods; `mutate` and `explain` read these objects to show what those Pods will get, and
//! patch the template so that the result is what the webhook would have added to every Pod.
//!
//! Pure: which kinds, where their Pod spec is, and the Pod a controller would create from a template.

use serde_json::{Map, Value};

/// Where an object's Pod is, as JSON pointers (RFC 6901) into the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodLocation {
    /// The kind, as written (`Deployment`).
    pub kind: &'static str,
    /// The Pod template (`metadata` and `spec`); empty for a Pod, whose template is the whole object.
    pub template: &'static str,
    /// The Pod spec, where `imagePullSecrets` goes.
    pub spec: &'static str,
}

/// The kinds that carry a Pod (group, kind, location). The group is checked, not the version: a Deployment of
/// `apps/v1` and one of the older `extensions/v1beta1` have the same template; a `Deployment` of another API group
/// (a custom resource) is not one of these.
const KINDS: &[(&[&str], PodLocation)] = &[
    (&[""], PodLocation { kind: "Pod", template: "", spec: "/spec" }),
    (
        &["apps", "extensions"],
        PodLocation { kind: "Deployment", template: "/spec/template", spec: "/spec/template/spec" },
    ),
    (
        &["apps", "extensions"],
        PodLocation { kind: "ReplicaSet", template: "/spec/template", spec: "/spec/template/spec" },
    ),
    (
        &["apps", "extensions"],
        PodLocation { kind: "DaemonSet", template: "/spec/template", spec: "/spec/template/spec" },
    ),
    (&["apps"], PodLocation { kind: "StatefulSet", template: "/spec/template", spec: "/spec/template/spec" }),
    (&["batch"], PodLocation { kind: "Job", template: "/spec/template", spec: "/spec/template/spec" }),
    (
        &["batch"],
        PodLocation {
            kind: "CronJob",
            template: "/spec/jobTemplate/spec/template",
            spec: "/spec/jobTemplate/spec/template/spec",
        },
    ),
    (&[""], PodLocation { kind: "ReplicationController", template: "/spec/template", spec: "/spec/template/spec" }),
    (&[""], PodLocation { kind: "PodTemplate", template: "/template", spec: "/template/spec" }),
];

/// Where the Pod of an object of this `apiVersion` and `kind` is, or `None` when the object carries no Pod.
pub fn locate(api_version: &str, kind: &str) -> Option<PodLocation> {
    // `v1` is the core group; `apps/v1` is group `apps`.
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    KINDS.iter().find(|(groups, at)| at.kind == kind && groups.contains(&group)).map(|(_, at)| *at)
}

/// The kinds [`locate`] knows, for messages and help.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    KINDS.iter().map(|(_, at)| at.kind)
}

/// The Pod a controller creates from `template` in `namespace`: the template's metadata (its labels decide the Pod's
/// opt-out) with that namespace, and its spec. A template without a name gets `generateName` `<owner>-`, as
/// controllers name their Pods. Whatever the template holds is kept: the decision reads the Pod as the webhook
/// would, and reports what it cannot read.
pub fn pod_from_template(template: &Value, namespace: &str, owner: &str) -> Value {
    let mut metadata = match template.get("metadata") {
        Some(Value::Object(metadata)) => metadata.clone(),
        _ => Map::new(),
    };
    metadata.insert("namespace".into(), Value::String(namespace.into()));
    let named = |key: &str| metadata.get(key).and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    if !named("name") && !named("generateName") && !owner.is_empty() {
        metadata.insert("generateName".into(), Value::String(format!("{owner}-")));
    }
    let mut pod = Map::new();
    pod.insert("apiVersion".into(), Value::String("v1".into()));
    pod.insert("kind".into(), Value::String("Pod".into()));
    pod.insert("metadata".into(), Value::Object(metadata));
    if let Some(spec) = template.get("spec") {
        pod.insert("spec".into(), spec.clone());
    }
    Value::Object(pod)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_kind_with_a_pod_is_located_by_group_and_kind() {
        // (apiVersion, kind, spec pointer or None)
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("v1", "Pod", Some("/spec")),
            ("apps/v1", "Deployment", Some("/spec/template/spec")),
            ("extensions/v1beta1", "Deployment", Some("/spec/template/spec")),
            ("apps/v1beta2", "ReplicaSet", Some("/spec/template/spec")),
            ("apps/v1", "DaemonSet", Some("/spec/template/spec")),
            ("apps/v1", "StatefulSet", Some("/spec/template/spec")),
            ("batch/v1", "Job", Some("/spec/template/spec")),
            ("batch/v1", "CronJob", Some("/spec/jobTemplate/spec/template/spec")),
            ("batch/v1beta1", "CronJob", Some("/spec/jobTemplate/spec/template/spec")),
            ("v1", "ReplicationController", Some("/spec/template/spec")),
            ("v1", "PodTemplate", Some("/template/spec")),
            // Not these kinds: another group, another kind, case matters, no apiVersion for a grouped kind.
            ("example.com/v1", "Deployment", None),
            ("apps/v1", "Pod", None),
            ("v1", "Deployment", None),
            ("", "Deployment", None),
            ("v1", "pod", None),
            ("v1", "Service", None),
            ("v1", "List", None),
            ("argoproj.io/v1alpha1", "Rollout", None),
        ];
        for (api_version, kind, spec) in cases {
            assert_eq!(locate(api_version, kind).map(|at| at.spec), *spec, "{api_version} {kind}");
        }
        // The spec is always under the template, and the template is where the location says.
        for (_, at) in KINDS {
            assert_eq!(at.spec, format!("{}/spec", at.template), "{}", at.kind);
        }
        assert_eq!(kinds().count(), 9);
    }

    #[test]
    fn a_template_becomes_the_pod_its_controller_creates() {
        let template = json!({"metadata": {"labels": {"app": "web"}, "namespace": "elsewhere"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let pod = pod_from_template(&template, "shop", "web");
        assert_eq!(
            pod,
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"labels": {"app": "web"}, "namespace": "shop", "generateName": "web-"},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
            "the owner's namespace wins (controllers create Pods in their own namespace)"
        );
        // A template without metadata or spec, or of the wrong shape, still gives a Pod for the decision to judge.
        assert_eq!(
            pod_from_template(&json!({}), "ns", ""),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "ns"}})
        );
        assert_eq!(
            pod_from_template(&json!({"metadata": "x", "spec": 3}), "ns", "o"),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "ns", "generateName": "o-"}, "spec": 3})
        );
        let named = pod_from_template(&json!({"metadata": {"name": "p"}}), "ns", "o");
        assert!(named["metadata"].get("generateName").is_none());
    }
}
