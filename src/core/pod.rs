//! The few parts of a Pod that the decision reads, extracted without owning the rest of it.
//!
//! The webhook must never lose data it does not understand, so it does not round-trip the Pod through typed
//! structs: it reads this view, and patches the original JSON.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Label that opts a Pod or a Namespace out of injection (docs/contract.md).
pub const INJECT_LABEL: &str = "pullsecret-injector.io/inject";
/// The value of [`INJECT_LABEL`] that disables injection.
pub const INJECT_DISABLED: &str = "disabled";

/// Whether a set of labels carries the opt-out.
pub fn opted_out(labels: &BTreeMap<String, String>) -> bool {
    labels.get(INJECT_LABEL).is_some_and(|v| v == INJECT_DISABLED)
}

/// Which list of the Pod spec a container comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContainerKind {
    Init,
    Regular,
    Ephemeral,
}

impl ContainerKind {
    /// The field name in the Pod spec.
    pub const fn field(self) -> &'static str {
        match self {
            ContainerKind::Init => "initContainers",
            ContainerKind::Regular => "containers",
            ContainerKind::Ephemeral => "ephemeralContainers",
        }
    }

    /// How a user names this kind of container in a message.
    pub const fn noun(self) -> &'static str {
        match self {
            ContainerKind::Init => "init container",
            ContainerKind::Regular => "container",
            ContainerKind::Ephemeral => "ephemeral container",
        }
    }
}

/// One container's image as written in the Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    pub kind: ContainerKind,
    /// The container name (empty when the Pod did not set one; validation rejects it later).
    pub container: String,
    /// The image as written; `None` when absent (a Pod can be created without one if a later
    /// admission step fills it in, so this is not our error).
    pub image: Option<String>,
}

/// What the decision needs to know about a Pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodView {
    pub name: Option<String>,
    pub generate_name: Option<String>,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Images of init containers, containers and ephemeral containers, in that order (the kubelet's start order).
    pub images: Vec<ContainerImage>,
    /// `spec.imagePullSecrets` as written: `None` when the field is absent or null (then a patch must create it);
    /// each entry's name, `None` for an entry without one.
    pub pull_secrets: Option<Vec<Option<String>>>,
    /// Whether the Pod carries [`MIRROR_ANNOTATION`]: a node's reflection of a static Pod, if a node created it.
    pub mirror: bool,
}

/// The annotation the kubelet sets on the mirror Pod of a static Pod (`kubetypes.ConfigMirrorAnnotationKey`).
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Why a Pod could not be read. The webhook allows such a Pod unchanged, with this as a warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodError {
    #[error("object is a {0}, not a Pod")]
    NotAPod(String),
    #[error("Pod has no spec")]
    NoSpec,
    #[error("Pod not understood: {0}")]
    Shape(String),
}

impl PodView {
    /// Reads the view from a Pod given as JSON text (the admission hot path: no intermediate `Value`).
    pub fn from_json(raw: &str) -> Result<Self, PodError> {
        let pod: RawPod = serde_json::from_str(raw).map_err(|e| PodError::Shape(e.to_string()))?;
        pod.into_view()
    }

    /// Reads the view from a Pod already parsed into a JSON value (manifests read from YAML).
    pub fn from_value(value: &serde_json::Value) -> Result<Self, PodError> {
        let pod = RawPod::deserialize(value).map_err(|e| PodError::Shape(e.to_string()))?;
        pod.into_view()
    }

    /// The name to show in logs and messages: the name, else the generateName prefix.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().filter(|n| !n.is_empty()).or(self.generate_name.as_deref()).unwrap_or("")
    }

    /// Names already listed in `spec.imagePullSecrets` (empty names skipped, as the kubelet does: R5).
    pub fn listed_secrets(&self) -> impl Iterator<Item = &str> {
        self.pull_secrets.iter().flatten().filter_map(|n| n.as_deref()).filter(|n| !n.is_empty())
    }
}

/// The fields of a Pod the view needs, as serde reads them (everything else is skipped unread).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawPod {
    kind: Option<String>,
    #[serde(default)]
    metadata: Option<RawMeta>,
    spec: Option<RawSpec>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    name: Option<String>,
    generate_name: Option<String>,
    namespace: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSpec {
    containers: Option<Vec<RawContainer>>,
    init_containers: Option<Vec<RawContainer>>,
    ephemeral_containers: Option<Vec<RawContainer>>,
    image_pull_secrets: Option<Vec<Option<RawReference>>>,
}

#[derive(Deserialize)]
struct RawContainer {
    name: Option<String>,
    image: Option<String>,
}

#[derive(Deserialize)]
struct RawReference {
    name: Option<String>,
}

impl RawPod {
    pub(crate) fn into_view(self) -> Result<PodView, PodError> {
        if let Some(kind) = self.kind.filter(|k| k != "Pod") {
            return Err(PodError::NotAPod(kind));
        }
        let spec = self.spec.ok_or(PodError::NoSpec)?;
        let meta = self.metadata.unwrap_or_default();
        let mut images = Vec::new();
        for (kind, list) in [
            (ContainerKind::Init, spec.init_containers),
            (ContainerKind::Regular, spec.containers),
            (ContainerKind::Ephemeral, spec.ephemeral_containers),
        ] {
            images.extend(list.into_iter().flatten().map(|c| ContainerImage {
                kind,
                container: c.name.unwrap_or_default(),
                image: c.image,
            }));
        }
        Ok(PodView {
            name: meta.name,
            generate_name: meta.generate_name,
            namespace: meta.namespace,
            labels: meta.labels.unwrap_or_default(),
            mirror: meta.annotations.is_some_and(|a| a.contains_key(MIRROR_ANNOTATION)),
            images,
            pull_secrets: spec
                .image_pull_secrets
                .map(|list| list.into_iter().map(|r| r.and_then(|r| r.name)).collect()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_all_container_lists_in_start_order() {
        let pod = json!({
            "kind": "Pod",
            "metadata": {"generateName": "web-", "labels": {"a": "b"}},
            "spec": {
                "containers": [{"name": "app", "image": "reg.example.com/app:1"}],
                "initContainers": [{"name": "init", "image": "busybox"}],
                "ephemeralContainers": [{"name": "debug", "image": "alpine"}],
                "imagePullSecrets": [{"name": "a"}, {}, {"name": ""}, null]
            }
        });
        let view = PodView::from_value(&pod).unwrap();
        let order: Vec<_> = view.images.iter().map(|i| (i.kind, i.container.as_str())).collect();
        assert_eq!(
            order,
            [(ContainerKind::Init, "init"), (ContainerKind::Regular, "app"), (ContainerKind::Ephemeral, "debug")]
        );
        assert_eq!(view.display_name(), "web-");
        assert_eq!(view.pull_secrets.as_ref().unwrap().len(), 4);
        assert_eq!(view.listed_secrets().collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn null_pull_secrets_is_absent() {
        let view = PodView::from_json(r#"{"spec":{"containers":[],"imagePullSecrets":null}}"#).unwrap();
        assert_eq!(view.pull_secrets, None);
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert_eq!(
            PodView::from_json(r#"{"kind":"Deployment","spec":{}}"#),
            Err(PodError::NotAPod("Deployment".into()))
        );
        assert_eq!(PodView::from_json(r#"{"kind":"Pod"}"#), Err(PodError::NoSpec));
        assert!(matches!(PodView::from_json(r#"{"spec":{"containers":"nginx"}}"#), Err(PodError::Shape(_))));
        assert!(matches!(PodView::from_json(r#"{"spec":{"containers":[{"image":5}]}}"#), Err(PodError::Shape(_))));
    }

    #[test]
    fn opt_out_needs_the_exact_value() {
        let mut labels = BTreeMap::new();
        assert!(!opted_out(&labels));
        labels.insert(INJECT_LABEL.into(), "Disabled".into());
        assert!(!opted_out(&labels));
        labels.insert(INJECT_LABEL.into(), INJECT_DISABLED.into());
        assert!(opted_out(&labels));
    }
}
