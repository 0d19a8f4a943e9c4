//! The pure plan of a `ClusterPullSecret` pass: the copy's shape and identity (labels, annotations, owner
//! reference, payload hash), what the controller keeps of the Secrets it observes, and the actions that take the
//! existing copies to the wanted ones. No I/O: `controller` executes what this decides.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use crate::core::cluster_pull_secret::{ClusterPullSecret, SourceSecretRef};
use crate::core::credentials::pull_payload;
use crate::kubelet::docker_config::{self, SecretKind};

/// Field manager of every write, and the reporting controller of Events.
pub const FIELD_MANAGER: &str = "pullsecret-injector";
/// Standard label naming the tool that manages a copy.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "pullsecret-injector";
/// Label naming the `ClusterPullSecret` a copy belongs to.
pub const OWNER_LABEL: &str = "pullsecret-injector.io/cluster-pull-secret";
/// Annotation `<namespace>/<name>` of the source Secret.
pub const SOURCE_ANNOTATION: &str = "pullsecret-injector.io/source";
/// Annotation: [`source_hash`] of the content the copy was written with.
pub const HASH_ANNOTATION: &str = "pullsecret-injector.io/source-hash";
/// Annotation set in memory only, by [`observe_copy`], on the copies the copy watch caches: [`source_hash`] of
/// the payload the copy really holds. Never written to the API server; a value sent by the API server is
/// overwritten.
pub const OBSERVED_HASH_ANNOTATION: &str = "pullsecret-injector.io/observed-payload-hash";

/// Reduces a copy as the copy watch delivers it to what the controller keeps: its metadata and the
/// [`source_hash`] of the payload it holds ([`OBSERVED_HASH_ANNOTATION`]); the data is dropped.
pub fn observe_copy(secret: &mut Secret) {
    let kind = match secret.type_.as_deref() {
        Some(t) if t == SecretKind::DockerConfigJson.secret_type() => Some(SecretKind::DockerConfigJson),
        Some(t) if t == SecretKind::DockerCfg.secret_type() => Some(SecretKind::DockerCfg),
        _ => None,
    };
    let observed = kind.map(|kind| {
        let payload = secret.data.as_ref().and_then(|d| d.get(kind.data_key())).map(|b| b.0.as_slice());
        source_hash(kind, payload.unwrap_or_default())
    });
    secret.data = None;
    secret.string_data = None;
    secret.metadata.managed_fields = None;
    let annotations = secret.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.remove(OBSERVED_HASH_ANNOTATION);
    if let Some(observed) = observed {
        annotations.insert(OBSERVED_HASH_ANNOTATION.to_string(), observed);
    }
}

// --- The source -------------------------------------------------------------------------------------------

/// The part of the source Secret that is copied: the payload the kubelet reads (R1), nothing else. Its `Debug`
/// shows the kind and hash only.
#[derive(Clone, PartialEq, Eq)]
pub struct SourcePayload {
    pub kind: SecretKind,
    pub payload: Vec<u8>,
    /// [`source_hash`] of `kind` and `payload`.
    pub hash: String,
}

impl fmt::Debug for SourcePayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourcePayload").field("kind", &self.kind).field("hash", &self.hash).finish_non_exhaustive()
    }
}

/// What the source Secret allows this pass to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceState {
    Usable(SourcePayload),
    NotFound,
    /// Wrong type, missing or empty payload, or a payload the kubelet cannot decode; the reason names no
    /// credential.
    Undecodable(String),
}

impl SourceState {
    /// Reads a source Secret (`None`: it does not exist). Only the type's own key is kept: other data keys are not
    /// the kubelet's business and are not distributed.
    pub fn from_secret(secret: Option<&Secret>) -> Self {
        let Some(secret) = secret else { return Self::NotFound };
        let Some((kind, payload)) = pull_payload(secret) else {
            return Self::Undecodable(match secret.type_.as_deref().and_then(SecretKind::of_type) {
                Some(kind) => format!("data key {} is missing or empty", kind.data_key()),
                None => format!(
                    "type {:?} is not {} or {}",
                    secret.type_.as_deref().unwrap_or(""),
                    SecretKind::DockerConfigJson.secret_type(),
                    SecretKind::DockerCfg.secret_type()
                ),
            });
        };
        let key = kind.data_key();
        match docker_config::decode_keys(kind, payload) {
            Ok(_) => Self::Usable(SourcePayload { kind, payload: payload.to_vec(), hash: source_hash(kind, payload) }),
            Err(e) => Self::Undecodable(format!("{key}: {e}")),
        }
    }

    pub fn hash(&self) -> Option<&str> {
        match self {
            Self::Usable(p) => Some(&p.hash),
            _ => None,
        }
    }
}

/// SHA-256 (lowercase hex) of a copy's content: its type, data key and payload, each length-prefixed so that no
/// two contents share an encoding.
pub fn source_hash(kind: SecretKind, payload: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [kind.secret_type().as_bytes(), kind.data_key().as_bytes(), payload] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The copy of `source` that `cps` keeps in `namespace`. `uid` (of the existing copy, for an update) makes the
/// API server refuse the write if the Secret there is no longer that copy.
pub fn copy_secret(cps: &ClusterPullSecret, namespace: &str, source: &SourcePayload, uid: Option<&str>) -> Secret {
    let cps_name = cps.name_any();
    let owner = cps.metadata.uid.clone().map(|uid| OwnerReference {
        api_version: ClusterPullSecret::api_version(&()).into_owned(),
        kind: ClusterPullSecret::kind(&()).into_owned(),
        name: cps_name.clone(),
        uid,
        controller: Some(true),
        // true would need `update` on clusterpullsecrets/finalizers, and deleting the resource need not wait.
        block_owner_deletion: Some(false),
    });
    let SourceSecretRef { namespace: source_ns, name: source_name } = &cps.spec.secret_ref;
    Secret {
        metadata: ObjectMeta {
            name: Some(cps.target_name().to_string()),
            namespace: Some(namespace.to_string()),
            uid: uid.map(str::to_string),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string()),
                (OWNER_LABEL.to_string(), cps_name.clone()),
            ])),
            annotations: Some(BTreeMap::from([
                (SOURCE_ANNOTATION.to_string(), format!("{source_ns}/{source_name}")),
                (HASH_ANNOTATION.to_string(), source.hash.clone()),
            ])),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        type_: Some(source.kind.secret_type().to_string()),
        data: Some(BTreeMap::from([(source.kind.data_key().to_string(), ByteString(source.payload.clone()))])),
        ..Default::default()
    }
}

// --- Planning (pure) --------------------------------------------------------------------------------------

/// A Secret named like a copy, or a copy, as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingSecret {
    pub namespace: String,
    pub name: String,
    /// The `uid` of the `ClusterPullSecret` its controller `ownerReference` names (kind `ClusterPullSecret`,
    /// `controller: true`): a copy is a `ClusterPullSecret`'s when this is its uid. Labels do not count.
    pub owner_uid: Option<String>,
    /// Its [`HASH_ANNOTATION`]: what the controller wrote.
    pub source_hash: Option<String>,
    /// The [`source_hash`] of the payload it holds, when known (a copy from the copy watch, see
    /// [`observe_copy`]; not a Secret read as metadata only).
    pub payload_hash: Option<String>,
    pub uid: Option<String>,
}

impl ExistingSecret {
    /// From metadata only (a probe): the payload is unknown.
    pub fn from_meta(meta: &ObjectMeta) -> Option<Self> {
        let owner_uid = meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| {
                o.controller == Some(true)
                    && o.kind == ClusterPullSecret::kind(&())
                    && o.api_version == ClusterPullSecret::api_version(&())
            })
            .map(|o| o.uid.clone());
        Some(Self {
            namespace: meta.namespace.clone()?,
            name: meta.name.clone()?,
            owner_uid,
            source_hash: meta.annotations.as_ref().and_then(|a| a.get(HASH_ANNOTATION)).cloned(),
            payload_hash: None,
            uid: meta.uid.clone(),
        })
    }

    /// From a copy the copy watch cached (reduced by [`observe_copy`]).
    pub fn from_copy(copy: &Secret) -> Option<Self> {
        let mut existing = Self::from_meta(&copy.metadata)?;
        existing.payload_hash =
            copy.metadata.annotations.as_ref().and_then(|a| a.get(OBSERVED_HASH_ANNOTATION)).cloned();
        Some(existing)
    }

    /// Its payload is no longer what the controller wrote (or its record of that was edited): drift.
    pub fn drifted(&self) -> bool {
        self.payload_hash.is_some() && self.payload_hash != self.source_hash
    }
}

/// Whether a change of a cached copy calls for a pass: it is some `ClusterPullSecret`'s (`owner_uids`) and it was
/// deleted (or lost its labels) or drifted. The controller's own writes, and Secrets that only carry the labels,
/// call for nothing.
pub fn copy_needs_a_pass(copy: &Secret, deleted: bool, owner_uids: &BTreeSet<String>) -> bool {
    ExistingSecret::from_copy(copy)
        .is_some_and(|e| e.owner_uid.as_ref().is_some_and(|uid| owner_uids.contains(uid)) && (deleted || e.drifted()))
}

/// What one pass wants for one `ClusterPullSecret`.
#[derive(Debug, Clone, Copy)]
pub struct Desired<'a> {
    pub cluster_pull_secret: &'a str,
    /// The resource's `uid`: a Secret whose controller `ownerReference` names it is its copy.
    pub uid: Option<&'a str>,
    pub target_name: &'a str,
    /// Namespaces that must hold a copy; `None` when the selector is invalid: then no copy is created, updated or
    /// removed for selection reasons (an edit error must not wipe every copy).
    pub selected: Option<&'a BTreeSet<String>>,
    /// The hash a current copy has; `None` when the source is missing or undecodable.
    pub source_hash: Option<&'a str>,
}

/// One step of a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyAction {
    /// Selected, no Secret of the target name: create the copy.
    Create { namespace: String },
    /// Selected, our copy is stale: rewrite it (guarded by its `uid`).
    Update { namespace: String, uid: Option<String> },
    /// Selected, our copy was changed by someone else since we wrote it: rewrite it as [`CopyAction::Update`]
    /// does, and report it.
    Restore { namespace: String, uid: Option<String> },
    /// Selected, our copy is current.
    Skip { namespace: String },
    /// Selected, but the source is unusable: an existing copy is kept as it is, a missing one is not created.
    Hold { namespace: String },
    /// Selected, but a Secret of the target name that this resource does not manage is there: left alone.
    Conflict { namespace: String },
    /// A copy of ours that must go: namespace no longer selected, or named after a former `targetName`.
    Delete { namespace: String, name: String, uid: Option<String> },
}

impl CopyAction {
    pub fn namespace(&self) -> &str {
        match self {
            Self::Create { namespace }
            | Self::Update { namespace, .. }
            | Self::Restore { namespace, .. }
            | Self::Skip { namespace }
            | Self::Hold { namespace }
            | Self::Conflict { namespace }
            | Self::Delete { namespace, .. } => namespace,
        }
    }
}

/// Selected namespaces where `existing` (the managed-copy cache) has no Secret of the target name: whether some
/// other Secret is there must be asked (a `GET` of its metadata) before creating anything.
pub fn namespaces_to_probe(desired: &Desired<'_>, existing: &[ExistingSecret]) -> Vec<String> {
    let Some(selected) = desired.selected else { return Vec::new() };
    let known: BTreeSet<&str> =
        existing.iter().filter(|e| e.name == desired.target_name).map(|e| e.namespace.as_str()).collect();
    selected.iter().filter(|ns| !known.contains(ns.as_str())).cloned().collect()
}

/// The steps of one pass: one per selected namespace (sorted), then the deletions (sorted). `existing` holds
/// every managed copy (of any resource) plus the probed Secrets of the target name.
pub fn plan(desired: &Desired<'_>, existing: &[ExistingSecret]) -> Vec<CopyAction> {
    let ours = |e: &ExistingSecret| desired.uid.is_some() && e.owner_uid.as_deref() == desired.uid;
    let by_key: HashMap<(&str, &str), &ExistingSecret> =
        existing.iter().map(|e| ((e.namespace.as_str(), e.name.as_str()), e)).collect();
    let mut actions = Vec::new();
    for ns in desired.selected.into_iter().flatten() {
        let namespace = ns.clone();
        actions.push(match (by_key.get(&(ns.as_str(), desired.target_name)), desired.source_hash) {
            (Some(e), _) if !ours(e) => CopyAction::Conflict { namespace },
            (_, None) => CopyAction::Hold { namespace },
            (None, Some(_)) => CopyAction::Create { namespace },
            (Some(e), Some(_)) if e.drifted() => CopyAction::Restore { namespace, uid: e.uid.clone() },
            (Some(e), Some(hash)) if e.source_hash.as_deref() == Some(hash) && e.payload_hash.is_some() => {
                CopyAction::Skip { namespace }
            }
            (Some(e), Some(_)) => CopyAction::Update { namespace, uid: e.uid.clone() },
        });
    }
    let mut deletions: Vec<&ExistingSecret> = existing
        .iter()
        .filter(|e| ours(e))
        .filter(|e| {
            e.name != desired.target_name || desired.selected.is_some_and(|selected| !selected.contains(&e.namespace))
        })
        .collect();
    deletions.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    actions.extend(deletions.into_iter().map(|e| CopyAction::Delete {
        namespace: e.namespace.clone(),
        name: e.name.clone(),
        uid: e.uid.clone(),
    }));
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cluster_pull_secret::ClusterPullSecretSpec;
    use crate::core::credentials::CredentialIndex;
    use crate::core::pod;
    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
    use k8s_openapi::jiff::Timestamp;
    use kube::core::Selector;
    use serde_json::json;

    const PASSWORD: &str = "s3cr3t-Pa55";

    fn payload(registry: &str, password: &str) -> Vec<u8> {
        let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("user:{password}"));
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#).into_bytes()
    }

    fn secret(type_: &str, data: &[(&str, Vec<u8>)]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                namespace: Some("platform".into()),
                name: Some("corp".into()),
                ..Default::default()
            },
            type_: Some(type_.into()),
            data: Some(data.iter().map(|(k, v)| (k.to_string(), ByteString(v.clone()))).collect()),
            ..Default::default()
        }
    }

    fn good_source(version: &str) -> Secret {
        secret("kubernetes.io/dockerconfigjson", &[(".dockerconfigjson", payload("reg.corp.example", version))])
    }

    fn hash_of(version: &str) -> String {
        SourceState::from_secret(Some(&good_source(version))).hash().expect("usable").to_string()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
        LabelSelector { match_labels: Some(labels(pairs)), ..Default::default() }
    }

    fn cps(target: Option<&str>) -> ClusterPullSecret {
        let mut cps = ClusterPullSecret::new(
            "corp",
            ClusterPullSecretSpec {
                secret_ref: SourceSecretRef { namespace: "platform".into(), name: "corp".into() },
                namespace_selector: selector(&[("tier", "internal")]),
                target_name: target.map(str::to_string),
            },
        );
        cps.metadata.uid = Some("cps-uid".into());
        cps
    }

    struct Ns(&'static str, &'static [(&'static str, &'static str)], bool);

    fn meta(ns: &Ns) -> ObjectMeta {
        ObjectMeta {
            name: Some(ns.0.into()),
            labels: Some(labels(ns.1)),
            deletion_timestamp: ns.2.then_some(Time(Timestamp::UNIX_EPOCH)),
            ..Default::default()
        }
    }

    /// A Secret of `ns`/`name` whose controller ownerReference names the resource `owner` (its uid is
    /// `<owner>-uid`, `cps-uid` for `corp`), written for source `version`, holding that payload as observed.
    fn copy(owner: Option<&str>, ns: &str, name: &str, version: Option<&str>) -> ExistingSecret {
        ExistingSecret {
            namespace: ns.into(),
            name: name.into(),
            owner_uid: owner.map(|o| if o == "corp" { "cps-uid".to_string() } else { format!("{o}-uid") }),
            source_hash: version.map(hash_of),
            payload_hash: version.map(hash_of),
            uid: Some(format!("uid-{ns}-{name}")),
        }
    }
    /// Our copy written for `written` whose payload is now `holds`.
    fn drifted(ns: &str, written: &str, holds: &str) -> ExistingSecret {
        ExistingSecret { payload_hash: Some(hash_of(holds)), ..ours(ns, "corp", written) }
    }
    fn restore(ns: &str) -> CopyAction {
        CopyAction::Restore { namespace: ns.into(), uid: uid(ns, "corp") }
    }
    fn ours(ns: &str, name: &str, version: &str) -> ExistingSecret {
        copy(Some("corp"), ns, name, Some(version))
    }
    fn uid(ns: &str, name: &str) -> Option<String> {
        Some(format!("uid-{ns}-{name}"))
    }

    fn create(ns: &str) -> CopyAction {
        CopyAction::Create { namespace: ns.into() }
    }
    fn update(ns: &str) -> CopyAction {
        CopyAction::Update { namespace: ns.into(), uid: uid(ns, "corp") }
    }
    fn skip(ns: &str) -> CopyAction {
        CopyAction::Skip { namespace: ns.into() }
    }
    fn hold(ns: &str) -> CopyAction {
        CopyAction::Hold { namespace: ns.into() }
    }
    fn conflict(ns: &str) -> CopyAction {
        CopyAction::Conflict { namespace: ns.into() }
    }
    fn delete(ns: &str, name: &str) -> CopyAction {
        CopyAction::Delete { namespace: ns.into(), name: name.into(), uid: uid(ns, name) }
    }

    const INTERNAL: &[(&str, &str)] = &[("tier", "internal")];
    const INTERNAL_OPTED_OUT: &[(&str, &str)] = &[("tier", "internal"), (pod::INJECT_LABEL, pod::INJECT_DISABLED)];
    const NONE: &[(&str, &str)] = &[];

    #[test]
    fn plan_table() {
        let undecodable = secret(
            "kubernetes.io/dockerconfigjson",
            &[(".dockerconfigjson", br#"{"auths":{"reg.corp.example":{"auth":"not base64!"}}}"#.to_vec())],
        );
        let invalid = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "Matches".into(),
                values: None,
            }]),
            ..Default::default()
        };
        let tier_in = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["internal".into()]),
            }]),
            ..Default::default()
        };
        // (id, what, namespaces, selector, targetName, source, existing copies and probed Secrets, expected)
        type Row = (
            &'static str,
            &'static str,
            Vec<Ns>,
            LabelSelector,
            &'static str,
            Option<Secret>,
            Vec<ExistingSecret>,
            Vec<CopyAction>,
        );
        let rows: Vec<Row> = vec![
            (
                "P1",
                "creation in a selected namespace only",
                vec![Ns("a", INTERNAL, false), Ns("b", NONE, false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v1")),
                vec![],
                vec![create("a")],
            ),
            (
                "P2",
                "a current copy is left alone",
                vec![Ns("a", INTERNAL, false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v1")),
                vec![ours("a", "corp", "v1")],
                vec![skip("a")],
            ),
            (
                "P3",
                "rotation: the hash differs, the copy is rewritten",
                vec![Ns("a", INTERNAL, false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v2")),
                vec![ours("a", "corp", "v1")],
                vec![update("a")],
            ),
            (
                "P4",
                "relabel: no longer selected, our copy is deleted",
                vec![Ns("a", NONE, false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v1")),
                vec![ours("a", "corp", "v1")],
                vec![delete("a", "corp")],
            ),
            (
                "P5",
                "opt-out label on the namespace: deleted",
                vec![Ns("a", INTERNAL_OPTED_OUT, false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v1")),
                vec![ours("a", "corp", "v1")],
                vec![delete("a", "corp")],
            ),
            (
                "P6",
                "opt-out needs the exact value",
                vec![Ns("a", &[("tier", "internal"), (pod::INJECT_LABEL, "Disabled")], false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v1")),
                vec![ours("a", "corp", "v1")],
                vec![skip("a")],
            ),
            (
                "P7",
                "an unmanaged Secret of the target name is a conflict",
                vec![Ns("a", INTERNAL, false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v1")),
                vec![copy(None, "a", "corp", None)],
                vec![conflict("a")],
            ),
            (
                "P8",
                "an unmanaged Secret in an unselected namespace is never deleted",
                vec![Ns("a", NONE, false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v1")),
                vec![copy(None, "a", "corp", None)],
                vec![],
            ),
            (
                "P9",
                "another resource's copy: conflict where selected, untouched elsewhere",
                vec![Ns("a", INTERNAL, false), Ns("b", NONE, false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v1")),
                vec![copy(Some("other"), "a", "corp", Some("v1")), copy(Some("other"), "b", "corp", Some("v1"))],
                vec![conflict("a")],
            ),
            (
                "P10",
                "the conflict is reported even while the source is unusable",
                vec![Ns("a", INTERNAL, false)],
                selector(INTERNAL),
                "corp",
                None,
                vec![copy(None, "a", "corp", None)],
                vec![conflict("a")],
            ),
            (
                "P11",
                "targetName changed: new copy created, old one deleted",
                vec![Ns("a", INTERNAL, false)],
                selector(INTERNAL),
                "corp-new",
                Some(good_source("v1")),
                vec![ours("a", "corp", "v1")],
                vec![create("a"), delete("a", "corp")],
            ),
            (
                "P12",
                "source missing: copies kept, none created, deselected ones still removed",
                vec![Ns("a", INTERNAL, false), Ns("b", INTERNAL, false), Ns("c", NONE, false)],
                selector(INTERNAL),
                "corp",
                None,
                vec![ours("a", "corp", "v0"), ours("c", "corp", "v0")],
                vec![hold("a"), hold("b"), delete("c", "corp")],
            ),
            (
                "P13",
                "undecodable source: same as missing, nothing propagated",
                vec![Ns("a", INTERNAL, false), Ns("b", INTERNAL, false)],
                selector(INTERNAL),
                "corp",
                Some(undecodable),
                vec![ours("a", "corp", "v0")],
                vec![hold("a"), hold("b")],
            ),
            (
                "P14",
                "a terminating namespace is not selected",
                vec![Ns("a", INTERNAL, true)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v1")),
                vec![ours("a", "corp", "v1")],
                vec![delete("a", "corp")],
            ),
            (
                "P15",
                "{} selects every namespace that did not opt out",
                vec![Ns("a", NONE, false), Ns("b", &[(pod::INJECT_LABEL, pod::INJECT_DISABLED)], false)],
                LabelSelector::default(),
                "corp",
                Some(good_source("v1")),
                vec![],
                vec![create("a")],
            ),
            (
                "P16",
                "invalid selector: nothing created, updated or removed for selection, stale names still removed",
                vec![Ns("a", INTERNAL, false)],
                invalid,
                "corp",
                Some(good_source("v2")),
                vec![ours("a", "corp", "v1"), ours("a", "old-name", "v1")],
                vec![delete("a", "old-name")],
            ),
            (
                "P17",
                "matchExpressions",
                vec![Ns("a", INTERNAL, false), Ns("b", &[("tier", "external")], false)],
                tier_in,
                "corp",
                Some(good_source("v1")),
                vec![],
                vec![create("a")],
            ),
            (
                "P18",
                "no controller ownerReference to our uid: not ours, whatever its labels and annotations say",
                vec![Ns("a", INTERNAL, false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v1")),
                vec![copy(None, "a", "corp", Some("v1"))],
                vec![conflict("a")],
            ),
            (
                "P19",
                "class 14: a tenant rewrote our copy's payload: restored",
                vec![Ns("a", INTERNAL, false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v1")),
                vec![drifted("a", "v1", "tenant")],
                vec![restore("a")],
            ),
            (
                "P20",
                "class 14: drift while the source rotated: restored (counted as drift)",
                vec![Ns("a", INTERNAL, false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v2")),
                vec![drifted("a", "v1", "tenant")],
                vec![restore("a")],
            ),
            (
                "P21",
                "class 14: the payload is intact but our record of it was edited: restored",
                vec![Ns("a", INTERNAL, false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v1")),
                vec![ExistingSecret { source_hash: Some(hash_of("forged")), ..ours("a", "corp", "v1") }],
                vec![restore("a")],
            ),
            (
                "P22",
                "our copy found by a probe (labels removed, payload unknown): rewritten",
                vec![Ns("a", INTERNAL, false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v1")),
                vec![ExistingSecret { payload_hash: None, ..ours("a", "corp", "v1") }],
                vec![update("a")],
            ),
            (
                "P23",
                "class 13: labels copied onto a tenant's Secrets, no ownerReference: never deleted, never rewritten",
                vec![Ns("a", NONE, false), Ns("b", INTERNAL, false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v1")),
                vec![copy(None, "a", "corp", Some("v1")), copy(None, "b", "other-name", Some("v1"))],
                vec![create("b")],
            ),
            (
                "P24",
                "another resource's copy (another uid) of a former name: not ours to delete",
                vec![Ns("a", INTERNAL, false)],
                selector(INTERNAL),
                "corp",
                Some(good_source("v1")),
                vec![ours("a", "corp", "v1"), copy(Some("other"), "a", "old-name", Some("v1"))],
                vec![skip("a")],
            ),
        ];
        for (id, what, namespaces, label_selector, target, source, existing, expected) in rows {
            // The controller selects from the credential index's Namespaces, as admission does.
            let mut index = CredentialIndex::new();
            for ns in &namespaces {
                index.apply_namespace(&Namespace { metadata: meta(ns), ..Default::default() });
            }
            let selected = Selector::try_from(label_selector).ok().map(|s| index.namespaces_selected_by(&s));
            let source = SourceState::from_secret(source.as_ref());
            let desired = Desired {
                cluster_pull_secret: "corp",
                uid: Some("cps-uid"),
                target_name: target,
                selected: selected.as_ref(),
                source_hash: source.hash(),
            };
            assert_eq!(plan(&desired, &existing), expected, "{id}: {what}");
        }
    }

    #[test]
    fn probes_only_selected_namespaces_without_a_known_secret_of_the_target_name() {
        let selected: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
        let existing = vec![ours("a", "corp", "v1"), copy(Some("other"), "b", "corp", None), ours("c", "old", "v1")];
        let desired = Desired {
            cluster_pull_secret: "corp",
            uid: Some("cps-uid"),
            target_name: "corp",
            selected: Some(&selected),
            source_hash: None,
        };
        assert_eq!(namespaces_to_probe(&desired, &existing), vec!["c".to_string()]);
        assert!(namespaces_to_probe(&Desired { selected: None, ..desired }, &existing).is_empty());
    }

    #[test]
    fn ownership_is_the_controller_owner_reference_not_labels() {
        let with = |labels_: &[(&str, &str)], owners: Vec<OwnerReference>| {
            let m = ObjectMeta {
                namespace: Some("a".into()),
                name: Some("corp".into()),
                labels: Some(labels(labels_)),
                annotations: Some(labels(&[(HASH_ANNOTATION, "abc"), (OBSERVED_HASH_ANNOTATION, "forged")])),
                owner_references: Some(owners),
                uid: Some("u1".into()),
                ..Default::default()
            };
            ExistingSecret::from_meta(&m).unwrap()
        };
        let owner = |kind: &str, controller: Option<bool>| OwnerReference {
            api_version: "pullsecret-injector.io/v1alpha1".into(),
            kind: kind.into(),
            name: "corp".into(),
            uid: "cps-uid".into(),
            controller,
            block_owner_deletion: Some(false),
        };
        let both = [(MANAGED_BY_LABEL, MANAGED_BY_VALUE), (OWNER_LABEL, "corp")];
        let copy = with(&[], vec![owner("ClusterPullSecret", Some(true))]);
        assert_eq!(copy.owner_uid.as_deref(), Some("cps-uid"), "labels are not needed");
        assert_eq!((copy.source_hash.as_deref(), copy.uid.as_deref()), (Some("abc"), Some("u1")));
        assert_eq!(copy.payload_hash, None, "metadata never tells the payload, whatever an annotation claims");
        assert_eq!(with(&both, vec![]).owner_uid, None, "labels alone are not ours");
        assert_eq!(with(&both, vec![owner("ClusterPullSecret", None)]).owner_uid, None, "not the controller");
        assert_eq!(with(&both, vec![owner("Deployment", Some(true))]).owner_uid, None);
    }

    /// The copy watch keeps no payload, and the hash it keeps is computed, never taken from the object.
    #[test]
    fn observed_copies_keep_the_payload_hash_only() {
        let SourceState::Usable(p) = SourceState::from_secret(Some(&good_source("v1"))) else { panic!() };
        let mut copy = copy_secret(&cps(None), "team-a", &p, Some("copy-uid"));
        copy.data.as_mut().unwrap().insert("extra".into(), ByteString(b"ignored".to_vec()));
        copy.metadata.annotations.as_mut().unwrap().insert(OBSERVED_HASH_ANNOTATION.into(), "forged".into());
        observe_copy(&mut copy);
        assert_eq!((copy.data.as_ref(), copy.string_data.as_ref()), (None, None));
        let existing = ExistingSecret::from_copy(&copy).unwrap();
        assert_eq!(existing.payload_hash.as_deref(), Some(p.hash.as_str()));
        assert!(!existing.drifted());
        let owners: BTreeSet<String> = ["cps-uid".to_string()].into();
        assert!(!copy_needs_a_pass(&copy, false, &owners), "our own write calls for nothing");
        assert!(copy_needs_a_pass(&copy, true, &owners), "a deleted copy does");
        assert!(!copy_needs_a_pass(&copy, true, &BTreeSet::new()), "not a known resource's");

        let SourceState::Usable(tenant) = SourceState::from_secret(Some(&good_source("tenant"))) else { panic!() };
        let mut edited = copy_secret(&cps(None), "team-a", &p, Some("copy-uid"));
        edited.data = copy_secret(&cps(None), "team-a", &tenant, None).data;
        observe_copy(&mut edited);
        assert!(ExistingSecret::from_copy(&edited).unwrap().drifted());
        assert!(copy_needs_a_pass(&edited, false, &owners), "a drifted copy does");
    }

    #[test]
    fn source_states() {
        assert_eq!(SourceState::from_secret(None), SourceState::NotFound);
        let opaque = secret("Opaque", &[(".dockerconfigjson", payload("r.example", PASSWORD))]);
        assert!(
            matches!(SourceState::from_secret(Some(&opaque)), SourceState::Undecodable(m) if m.contains("\"Opaque\""))
        );
        let wrong_key = secret("kubernetes.io/dockercfg", &[(".dockerconfigjson", payload("r.example", PASSWORD))]);
        assert!(
            matches!(SourceState::from_secret(Some(&wrong_key)), SourceState::Undecodable(m) if m.contains(".dockercfg"))
        );
        let bad = secret(
            "kubernetes.io/dockerconfigjson",
            &[(".dockerconfigjson", format!(r#"{{"auths":{{"r.example":{{"auth":"{PASSWORD}%"}}}}}}"#).into_bytes())],
        );
        let SourceState::Undecodable(why) = SourceState::from_secret(Some(&bad)) else { panic!("bad auth decodes") };
        assert!(!why.contains(PASSWORD), "the reason must not quote the credential: {why}");

        let legacy = secret(
            "kubernetes.io/dockercfg",
            &[(".dockercfg", br#"{"r.example":{"auth":"dTpw"}}"#.to_vec()), ("extra", b"not copied".to_vec())],
        );
        let SourceState::Usable(p) = SourceState::from_secret(Some(&legacy)) else { panic!("valid dockercfg") };
        assert_eq!((p.kind, p.payload.as_slice()), (SecretKind::DockerCfg, &br#"{"r.example":{"auth":"dTpw"}}"#[..]));
        assert!(!format!("{p:?}").contains("dTpw"), "Debug never shows the payload");
    }

    #[test]
    fn hash_covers_type_and_payload() {
        let json = source_hash(SecretKind::DockerConfigJson, b"{}");
        assert_eq!(json.len(), 64);
        assert!(json.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(json, source_hash(SecretKind::DockerConfigJson, b"{}"));
        assert_ne!(json, source_hash(SecretKind::DockerCfg, b"{}"));
        assert_ne!(json, source_hash(SecretKind::DockerConfigJson, b"{ }"));
        assert_ne!(hash_of("v1"), hash_of("v2"));
    }

    #[test]
    fn copy_carries_labels_source_identity_owner_and_only_the_payload() {
        let SourceState::Usable(p) = SourceState::from_secret(Some(&good_source("v1"))) else { panic!() };
        let copy = copy_secret(&cps(Some("corp-registry")), "team-a", &p, None);
        let value = serde_json::to_value(&copy).unwrap();
        assert_eq!(
            value,
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "corp-registry",
                    "namespace": "team-a",
                    "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, OWNER_LABEL: "corp"},
                    "annotations": {SOURCE_ANNOTATION: "platform/corp", HASH_ANNOTATION: p.hash},
                    "ownerReferences": [{
                        "apiVersion": "pullsecret-injector.io/v1alpha1",
                        "kind": "ClusterPullSecret",
                        "name": "corp",
                        "uid": "cps-uid",
                        "controller": true,
                        "blockOwnerDeletion": false,
                    }],
                },
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &p.payload)},
            })
        );
        let update = copy_secret(&cps(None), "team-a", &p, Some("copy-uid"));
        assert_eq!(update.metadata.uid.as_deref(), Some("copy-uid"), "an update names the copy it replaces");
        assert_eq!(update.metadata.name.as_deref(), Some("corp"), "targetName defaults to the resource's name");
    }
}
