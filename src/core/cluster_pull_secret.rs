//! The `ClusterPullSecret` custom resource (docs/contract.md): a platform team's credential, distributed to the
//! namespaces its selector picks.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use kube::core::{Selector, SelectorExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::pod;

/// The one rule for which namespaces a ClusterPullSecret selects, shared by the credential index (what admission
/// offers) and the controller (where copies go): the selector matches the namespace's labels, the namespace has not
/// opted out (`pullsecret-injector.io/inject: disabled`, the label admission honours) and is not terminating (no Pod
/// can be created there, and a copy written there would only be deleted with it).
pub fn selects(selector: &Selector, labels: &BTreeMap<String, String>, terminating: bool) -> bool {
    !terminating && !pod::opted_out(labels) && selector.matches(labels)
}

/// Distributes one pull Secret to every namespace selected by `namespaceSelector`.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "pullsecret-injector.io",
    version = "v1alpha1",
    kind = "ClusterPullSecret",
    shortname = "cps",
    status = "ClusterPullSecretStatus",
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".spec.secretRef.name"}"#,
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.targetName"}"#,
    printcolumn = r#"{"name":"Selected","type":"integer","jsonPath":".status.selectedNamespaces"}"#,
    printcolumn = r#"{"name":"Synced","type":"integer","jsonPath":".status.syncedCopies"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPullSecretSpec {
    /// The source `kubernetes.io/dockerconfigjson` or `kubernetes.io/dockercfg` Secret.
    pub secret_ref: SourceSecretRef,
    /// Which namespaces receive a copy; `{}` selects all namespaces.
    #[serde(default)]
    pub namespace_selector: LabelSelector,
    /// Name of the copy in each namespace; defaults to the resource's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
}

/// Namespace and name of the source Secret.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SourceSecretRef {
    pub namespace: String,
    pub name: String,
}

/// What the controller observed on its last pass.
// Counts are `i32` (`int32`), as in every Kubernetes API: the API server does not know schemars' `uint32` format
// and warns about it on every apply.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPullSecretStatus {
    /// How many namespaces the selector picks.
    #[serde(default)]
    pub selected_namespaces: i32,
    /// How many of them hold an up-to-date managed copy.
    #[serde(default)]
    pub synced_copies: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl ClusterPullSecret {
    /// The name of the copy in each selected namespace.
    pub fn target_name(&self) -> &str {
        self.spec.target_name.as_deref().filter(|n| !n.is_empty()).or(self.metadata.name.as_deref()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt as _;

    use super::ClusterPullSecret;

    /// Every `format` in the schema is one the API server knows (k8s.io/kube-openapi's validate formats plus the
    /// integer and number widths); an unknown one makes `kubectl apply` print a warning.
    #[test]
    fn the_schema_uses_only_formats_the_api_server_knows() {
        fn formats(value: &serde_json::Value, out: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(f)) = map.get("format") {
                        out.push(f.clone());
                    }
                    map.values().for_each(|v| formats(v, out));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| formats(v, out)),
                _ => {}
            }
        }
        let crd = serde_json::to_value(ClusterPullSecret::crd()).unwrap();
        let mut found = Vec::new();
        formats(&crd, &mut found);
        let known = ["int32", "int64", "float", "double", "byte", "date", "date-time", "duration", "password", "uri"];
        let unknown: Vec<_> = found.iter().filter(|f| !known.contains(&f.as_str())).collect();
        assert!(!found.is_empty() && unknown.is_empty(), "formats {found:?}; unknown to the API server: {unknown:?}");
    }
}
