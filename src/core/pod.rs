//! The few parts of a Pod that the decision reads, extracted without owning the rest of it.
//!
//! The webhook must never lose data it does not understand, so it does not round-trip the Pod through typed
//! structs: it reads this view, and patches the original JSON.
//!
//! Fields the API server validates only after admission (image volumes, the KubeSphere annotation) are read
//! leniently: a malformed entry is skipped or reported, never a reason to leave the whole Pod undecided.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::kubelet::docker_config::{drain_map, drain_seq};
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Label that opts a Pod or a Namespace out of injection (docs/contract.md).
pub const INJECT_LABEL: &str = "pullsecret-injector.io/inject";
/// The value of [`INJECT_LABEL`] that disables injection.
pub const INJECT_DISABLED: &str = "disabled";
/// The ServiceAccount a Pod runs as when its spec names none (the API server's ServiceAccount admission sets it).
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// KubeSphere's annotation: a JSON object mapping a container name to the pull Secret chosen for it
/// (docs/matching.md, "KubeSphere").
pub const KUBESPHERE_ANNOTATION: &str = "kubesphere.io/imagepullsecrets";

/// Whether a set of labels carries the opt-out.
pub fn opted_out(labels: &BTreeMap<String, String>) -> bool {
    labels.get(INJECT_LABEL).is_some_and(|v| v == INJECT_DISABLED)
}

/// Where an image of the Pod comes from: an image volume or one of the three container lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContainerKind {
    /// `spec.volumes[].image.reference` (Kubernetes 1.33+): pulled with the Pod's pull Secrets before any
    /// container starts.
    Volume,
    Init,
    Regular,
    Ephemeral,
}

impl ContainerKind {
    /// The field name in the Pod spec.
    pub const fn field(self) -> &'static str {
        match self {
            ContainerKind::Volume => "volumes",
            ContainerKind::Init => "initContainers",
            ContainerKind::Regular => "containers",
            ContainerKind::Ephemeral => "ephemeralContainers",
        }
    }

    /// How a user names this kind of image's owner in a message.
    pub const fn noun(self) -> &'static str {
        match self {
            ContainerKind::Volume => "volume",
            ContainerKind::Init => "init container",
            ContainerKind::Regular => "container",
            ContainerKind::Ephemeral => "ephemeral container",
        }
    }
}

/// One image of the Pod as written: a container's image, or an image volume's reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    pub kind: ContainerKind,
    /// The container's (or the volume's) name; empty when the Pod did not set one (validation rejects it later).
    pub container: String,
    /// The image as written; `None` when absent (a Pod can be created without one if a later
    /// admission step fills it in, so this is not our error).
    pub image: Option<String>,
}

/// The Pod's `kubesphere.io/imagepullsecrets` annotation, read ([`KUBESPHERE_ANNOTATION`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeSphereChoice {
    /// The entries in the annotation's order: the container name, and the Secret name (`None` when the value is
    /// not a string).
    Entries(Vec<(String, Option<String>)>),
    /// Not a JSON object of strings: why.
    Malformed(String),
}

/// What the decision needs to know about a Pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodView {
    pub name: Option<String>,
    pub generate_name: Option<String>,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Images of image volumes, init containers, containers and ephemeral containers, in that order (the kubelet
    /// pulls image volumes before it starts any container, then starts containers in that order).
    pub images: Vec<ContainerImage>,
    /// `spec.imagePullSecrets` as written: `None` when the field is absent or null (then a patch must create it);
    /// each entry's name, `None` for an entry without one.
    pub pull_secrets: Option<Vec<Option<String>>>,
    /// Whether the Pod carries [`MIRROR_ANNOTATION`]: a node's reflection of a static Pod, if a node created it.
    pub mirror: bool,
    /// `spec.serviceAccountName`, else the deprecated `spec.serviceAccount`; see [`PodView::service_account`].
    pub service_account: Option<String>,
    /// The [`KUBESPHERE_ANNOTATION`], when the Pod carries it.
    pub kubesphere: Option<KubeSphereChoice>,
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

    /// The ServiceAccount the Pod runs as: `spec.serviceAccountName`, else the deprecated `spec.serviceAccount`
    /// (the API server copies one to the other), else [`DEFAULT_SERVICE_ACCOUNT`].
    pub fn service_account(&self) -> &str {
        self.service_account.as_deref().filter(|s| !s.is_empty()).unwrap_or(DEFAULT_SERVICE_ACCOUNT)
    }
}

/// The `visit_*` methods for the JSON scalars (other than strings) and `null`, for a visitor that does not want
/// them: the value is dropped and `$value` returned. With `visit_str`, `visit_seq` and `visit_map`, these are every
/// method `deserialize_any` calls, for the text parser and for `serde_json::Value` alike.
macro_rules! scalars_are {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
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
    annotations: Option<RawAnnotations>,
}

/// The annotations the decision reads; every other one is skipped unread, whatever its value.
#[derive(Deserialize, Default)]
struct RawAnnotations {
    #[serde(rename = "kubernetes.io/config.mirror")]
    mirror: Option<IgnoredAny>,
    #[serde(rename = "kubesphere.io/imagepullsecrets")]
    kubesphere: Option<LenientString>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSpec {
    containers: Option<Vec<RawContainer>>,
    init_containers: Option<Vec<RawContainer>>,
    ephemeral_containers: Option<Vec<RawContainer>>,
    image_pull_secrets: Option<Vec<Option<RawReference>>>,
    volumes: Option<ImageVolumes>,
    service_account_name: Option<String>,
    service_account: Option<String>,
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
        let annotations = meta.annotations.unwrap_or_default();
        let volumes = spec.volumes.map(|v| v.0).unwrap_or_default();
        let mut images = Vec::with_capacity(volumes.len());
        images.extend(volumes.into_iter().map(|(name, reference)| ContainerImage {
            kind: ContainerKind::Volume,
            container: name,
            image: reference,
        }));
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
            mirror: annotations.mirror.is_some(),
            images,
            pull_secrets: spec
                .image_pull_secrets
                .map(|list| list.into_iter().map(|r| r.and_then(|r| r.name)).collect()),
            service_account: spec.service_account_name.filter(|s| !s.is_empty()).or(spec.service_account),
            kubesphere: annotations.kubesphere.map(|value| match value.0 {
                Some(text) => KubeSphereChoice::parse(&text),
                None => KubeSphereChoice::Malformed("the annotation's value is not a string".into()),
            }),
        })
    }
}

impl KubeSphereChoice {
    /// Reads the annotation's JSON text: an object of container name to Secret name, in document order. Anything
    /// else is [`KubeSphereChoice::Malformed`], with a reason that quotes nothing of the text.
    pub fn parse(text: &str) -> Self {
        let mut de = serde_json::Deserializer::from_str(text);
        match de::Deserializer::deserialize_any(&mut de, ChoiceVisitor).and_then(|entries| de.end().map(|()| entries)) {
            Ok(Some(entries)) => Self::Entries(entries),
            Ok(None) => Self::Malformed("not a JSON object".into()),
            Err(e) => Self::Malformed(format!("invalid JSON at line {} column {}", e.line(), e.column())),
        }
    }
}

/// The annotation's object, as (container, Secret) pairs in document order; `None` for another JSON type.
struct ChoiceVisitor;

impl<'de> Visitor<'de> for ChoiceVisitor {
    type Value = Option<Vec<(String, Option<String>)>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((container, secret)) = map.next_entry::<String, LenientString>()? {
            entries.push((container, secret.0));
        }
        Ok(Some(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    scalars_are!(None);
}

/// A string, or `None` for any other JSON value (read and dropped): what a field the API server validates only
/// after admission may hold.
struct LenientString(Option<String>);

impl<'de> Deserialize<'de> for LenientString {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientString;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<LenientString, E> {
                Ok(LenientString(Some(s.to_owned())))
            }

            fn visit_string<E: de::Error>(self, s: String) -> Result<LenientString, E> {
                Ok(LenientString(Some(s)))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<LenientString, A::Error> {
                drain_seq(seq).map(|()| LenientString(None))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<LenientString, A::Error> {
                drain_map(map).map(|()| LenientString(None))
            }

            scalars_are!(LenientString(None));
        }
        deserializer.deserialize_any(V)
    }
}

/// `spec.volumes`, reduced to its image volumes: (volume name, `image.reference`), in order. An entry, or the whole
/// field, of an unexpected shape is skipped: the API server validates volumes after admission.
struct ImageVolumes(Vec<(String, Option<String>)>);

impl<'de> Deserialize<'de> for ImageVolumes {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ImageVolumes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ImageVolumes, A::Error> {
                let mut out = Vec::new();
                while let Some(volume) = seq.next_element::<Volume>()? {
                    if let Volume { name, image: Some(reference) } = volume {
                        out.push((name.unwrap_or_default(), reference));
                    }
                }
                Ok(ImageVolumes(out))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ImageVolumes, A::Error> {
                drain_map(map).map(|()| ImageVolumes(Vec::new()))
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<ImageVolumes, E> {
                Ok(ImageVolumes(Vec::new()))
            }

            scalars_are!(ImageVolumes(Vec::new()));
        }
        deserializer.deserialize_any(V)
    }
}

/// One entry of `spec.volumes`: its name when it is a string, and `Some(image.reference)` when `image` is an
/// object (an image volume; the reference `None` when absent or not a string). Any other shape is no volume.
#[derive(Default)]
struct Volume {
    name: Option<String>,
    image: Option<Option<String>>,
}

impl<'de> Deserialize<'de> for Volume {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Volume;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Volume, A::Error> {
                let mut volume = Volume::default();
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::Name => volume.name = map.next_value::<LenientString>()?.0,
                        Field::Image => volume.image = map.next_value::<ImageSource>()?.0,
                        Field::Reference | Field::Other => map.next_value::<IgnoredAny>().map(drop)?,
                    }
                }
                Ok(volume)
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Volume, E> {
                Ok(Volume::default())
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Volume, A::Error> {
                drain_seq(seq).map(|()| Volume::default())
            }

            scalars_are!(Volume::default());
        }
        deserializer.deserialize_any(V)
    }
}

/// `volumes[].image`: `Some(reference)` when it is an object.
struct ImageSource(Option<Option<String>>);

impl<'de> Deserialize<'de> for ImageSource {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ImageSource;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ImageSource, A::Error> {
                let mut reference = None;
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::Reference => reference = map.next_value::<LenientString>()?.0,
                        Field::Name | Field::Image | Field::Other => map.next_value::<IgnoredAny>().map(drop)?,
                    }
                }
                Ok(ImageSource(Some(reference)))
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<ImageSource, E> {
                Ok(ImageSource(None))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ImageSource, A::Error> {
                drain_seq(seq).map(|()| ImageSource(None))
            }

            scalars_are!(ImageSource(None));
        }
        deserializer.deserialize_any(V)
    }
}

/// The field names the volume visitors look for, read without allocating.
enum Field {
    Name,
    Image,
    Reference,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Field, E> {
                Ok(match s {
                    "name" => Field::Name,
                    "image" => Field::Image,
                    "reference" => Field::Reference,
                    _ => Field::Other,
                })
            }
        }
        deserializer.deserialize_identifier(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Both entry points (JSON text on the hot path, a parsed value for manifests) read the same view.
    fn both(pod: &serde_json::Value) -> Result<PodView, PodError> {
        let from_value = PodView::from_value(pod);
        let from_json = PodView::from_json(&pod.to_string());
        assert_eq!(from_json, from_value, "{pod}");
        from_value
    }

    #[test]
    fn reads_all_container_lists_in_start_order() {
        let pod = json!({
            "kind": "Pod",
            "metadata": {"generateName": "web-", "labels": {"a": "b"}},
            "spec": {
                "containers": [{"name": "app", "image": "reg.example.com/app:1"}],
                "initContainers": [{"name": "init", "image": "busybox"}],
                "ephemeralContainers": [{"name": "debug", "image": "alpine"}],
                "volumes": [{"name": "models", "image": {"reference": "reg.example.com/models:v1"}}],
                "imagePullSecrets": [{"name": "a"}, {}, {"name": ""}, null]
            }
        });
        let view = both(&pod).unwrap();
        let order: Vec<_> = view.images.iter().map(|i| (i.kind, i.container.as_str())).collect();
        assert_eq!(
            order,
            [
                (ContainerKind::Volume, "models"),
                (ContainerKind::Init, "init"),
                (ContainerKind::Regular, "app"),
                (ContainerKind::Ephemeral, "debug")
            ]
        );
        assert_eq!(view.display_name(), "web-");
        assert_eq!(view.pull_secrets.as_ref().unwrap().len(), 4);
        assert_eq!(view.listed_secrets().collect::<Vec<_>>(), ["a"]);
    }

    /// Issue 12 item 1: image volumes are images, in `spec.volumes` order; every other volume, and any entry of an
    /// unexpected shape, is skipped without failing the Pod (the API server validates volumes after admission).
    #[test]
    fn image_volumes_are_read_leniently() {
        let volumes = json!([
            {"name": "cm", "configMap": {"name": "x"}},
            {"name": "first", "image": {"reference": "reg.example.com/a:1", "pullPolicy": "Always"}},
            5,
            "volume",
            null,
            [1, {"image": {"reference": "nested.example.com/x"}}],
            {"name": "no-reference", "image": {}},
            {"name": "number-reference", "image": {"reference": 5}},
            {"name": "null-image", "image": null},
            {"name": "string-image", "image": "reg.example.com/b"},
            {"name": 7, "image": {"reference": "reg.example.com/unnamed"}},
            {"image": {"reference": ["x"], "reference2": {"a": [1]}}, "name": {"x": 1}},
            {"name": "dup", "image": {"reference": "one.example.com/x", "reference": "two.example.com/x"}},
            {"name": "last", "emptyDir": {}, "image": {"reference": "reg.example.com/\u{202e}z"}}
        ]);
        let pod = json!({"spec": {"containers": [{"name": "c", "image": "nginx"}], "volumes": volumes}});
        let view = both(&pod).unwrap();
        let got: Vec<(ContainerKind, &str, Option<&str>)> =
            view.images.iter().map(|i| (i.kind, i.container.as_str(), i.image.as_deref())).collect();
        assert_eq!(
            got,
            [
                (ContainerKind::Volume, "first", Some("reg.example.com/a:1")),
                (ContainerKind::Volume, "no-reference", None),
                (ContainerKind::Volume, "number-reference", None),
                (ContainerKind::Volume, "", Some("reg.example.com/unnamed")),
                (ContainerKind::Volume, "", None),
                (ContainerKind::Volume, "dup", Some("two.example.com/x")),
                (ContainerKind::Volume, "last", Some("reg.example.com/\u{202e}z")),
                (ContainerKind::Regular, "c", Some("nginx")),
            ]
        );
        for odd in [json!("volumes"), json!(5), json!(null), json!({"a": [1]}), json!(true), json!([])] {
            let pod = json!({"spec": {"containers": [{"name": "c", "image": "nginx"}], "volumes": odd}});
            let view = both(&pod).unwrap();
            assert_eq!(view.images.len(), 1, "{odd}");
        }
    }

    #[test]
    fn service_account_defaults_like_the_api_server() {
        let sa = |spec: serde_json::Value| both(&json!({"spec": spec})).unwrap().service_account().to_string();
        assert_eq!(sa(json!({})), "default");
        assert_eq!(sa(json!({"serviceAccountName": ""})), "default");
        assert_eq!(sa(json!({"serviceAccountName": null})), "default");
        assert_eq!(sa(json!({"serviceAccountName": "builder"})), "builder");
        assert_eq!(sa(json!({"serviceAccount": "legacy"})), "legacy", "the deprecated field");
        assert_eq!(sa(json!({"serviceAccountName": "new", "serviceAccount": "legacy"})), "new");
        assert_eq!(sa(json!({"serviceAccountName": "", "serviceAccount": "legacy"})), "legacy");
    }

    /// Issue 12 item 6: the annotation is read in its own order; a value that is not a string is kept as such, and
    /// anything but a JSON object is malformed (never an error for the Pod); reasons quote nothing of the text.
    #[test]
    fn kubesphere_annotation_is_read_in_order_and_never_fails_the_pod() {
        let choice = |value: serde_json::Value| {
            let pod = json!({"metadata": {"annotations": {KUBESPHERE_ANNOTATION: value, "other": 5}}, "spec": {}});
            both(&pod).unwrap().kubesphere.unwrap()
        };
        let entries = |pairs: &[(&str, Option<&str>)]| {
            KubeSphereChoice::Entries(pairs.iter().map(|(c, s)| (c.to_string(), s.map(String::from))).collect())
        };
        assert_eq!(choice(json!("{}")), entries(&[]));
        assert_eq!(
            choice(json!(r#"{"zeta":"s1","alpha":"s2","mid":5,"x":null,"y":{"a":1},"zeta":"s3"}"#)),
            entries(&[
                ("zeta", Some("s1")),
                ("alpha", Some("s2")),
                ("mid", None),
                ("x", None),
                ("y", None),
                ("zeta", Some("s3"))
            ])
        );
        assert_eq!(choice(json!(" {\"c\" : \"s\"} \n")), entries(&[("c", Some("s"))]));
        const CANARY: &str = "Canary-7d1e";
        for malformed in [
            format!("{{\"c\": \"{CANARY}\""),
            format!("{{\"c\": \"s\"}} {CANARY}"),
            format!("[\"{CANARY}\"]"),
            format!("\"{CANARY}\""),
            "".into(),
            "null".into(),
            "5".into(),
            "{'c': 's'}".into(),
            "\u{feff}{}".into(),
        ] {
            match choice(json!(malformed)) {
                KubeSphereChoice::Malformed(reason) => assert!(!reason.contains(CANARY), "{malformed:?}: {reason}"),
                other => panic!("{malformed:?}: {other:?}"),
            }
        }
        assert!(matches!(choice(json!({"c": "s"})), KubeSphereChoice::Malformed(_)), "an object, not a string");
        assert!(matches!(choice(json!(5)), KubeSphereChoice::Malformed(_)));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(KubeSphereChoice::parse(&deep), KubeSphereChoice::Malformed(_)), "too deep, no overflow");
        let huge: String =
            format!("{{{}}}", (0..20_000).map(|i| format!("\"c{i}\":\"s{i}\"")).collect::<Vec<_>>().join(","));
        match KubeSphereChoice::parse(&huge) {
            KubeSphereChoice::Entries(e) => assert_eq!((e.len(), e[19_999].0.as_str()), (20_000, "c19999")),
            other => panic!("{other:?}"),
        }
        assert_eq!(both(&json!({"spec": {}})).unwrap().kubesphere, None);
    }

    /// Annotations other than the ones read may hold anything; the mirror annotation counts whatever its value.
    #[test]
    fn other_annotations_are_skipped_unread() {
        let pod = json!({"metadata": {"annotations": {"a": {"b": [1]}, MIRROR_ANNOTATION: "x"}}, "spec": {}});
        assert!(both(&pod).unwrap().mirror);
        let pod = json!({"metadata": {"annotations": {"a": "b"}}, "spec": {}});
        assert!(!both(&pod).unwrap().mirror);
        let pod = json!({"metadata": {"annotations": null}, "spec": {}});
        assert!(!both(&pod).unwrap().mirror);
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
        assert!(matches!(
            PodView::from_json(r#"{"spec":{"volumes":[{"image":{"reference":"x"}}"#),
            Err(PodError::Shape(_))
        ));
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
