//! The `ClusterPullSecret` controller (the "distributor"): keeps a copy of each resource's source Secret in every
//! namespace its selector picks, follows the source's rotation, and removes the copies it manages from namespaces
//! that are no longer selected.
//!
//! What it guarantees (docs/contract.md, `ClusterPullSecret`):
//! - A copy exists only in a selected namespace: one whose labels match `namespaceSelector`, that is not opted out
//!   (`pullsecret-injector.io/inject: disabled`, the same rule as admission) and that is not terminating.
//! - A Secret it does not manage is never written or deleted. "Managed" means a controller `ownerReference` to
//!   this `ClusterPullSecret`'s `uid` (what the garbage collector deletes with it), not labels a tenant can put on
//!   any Secret: the labels `app.kubernetes.io/managed-by: pullsecret-injector` and
//!   `pullsecret-injector.io/cluster-pull-secret: <name>` only mark what the copy cache keeps. Anything else of the target
//!   name is a conflict, reported by a condition and a Warning Event on the resource (in the `default` namespace,
//!   never in the tenant's).
//! - A copy edited by someone else (a tenant with `patch secrets` in its namespace, issue 11 class 14) is restored:
//!   each copy's payload is hashed on arrival (then dropped) and compared with the
//!   `source-hash` the controller wrote; a difference is drift, restored by the same uid-guarded apply as an
//!   update, counted in `pullsecret_injector_copies_restored_total` and reported by a Warning Event. Copies are created with `POST` (atomic "only if absent";
//!   a server-side apply would take over a Secret created between our look and our write) and updated with a
//!   forced server-side apply that names the copy's `uid` (the API server refuses it if the copy was replaced by
//!   another object since we looked); deletes carry a `uid` precondition for the same reason.
//! - A missing source keeps existing copies (a transient deletion must not break running pulls); an undecodable
//!   source is not propagated (the kubelet would fail every pull of a Pod that lists it, R4). Both are reported.
//!   Copies in namespaces that are no longer selected are removed whatever the source's state: access ends with
//!   selection.
//! - Deleting the resource deletes its copies through garbage collection: each copy has an `ownerReference` to its
//!   (cluster-scoped) `ClusterPullSecret`, with `blockOwnerDeletion: false`. That needs no finalizer, works when
//!   the controller is down, and needs no permission on `clusterpullsecrets/finalizers`.
//!
//! It opens no watch of its own: the credential cache's watches (`sources::cluster`) feed it ([`feeds`]), so a
//! replica watches each collection once. Nothing it keeps holds a credential: namespaces are kept as metadata,
//! copies are reduced to their metadata and the hash of their payload before they reach it ([`observe_copy`]),
//! other Secrets to their metadata, and the source is read with a `GET` on each pass and dropped. Secret data never reaches a log line, an Event or a condition.
//!
//! Every replica runs the controller, without leader election: for the same inputs every replica wants the same
//! objects, and every write is idempotent (a forced server-side apply with one field manager; a create that finds
//! the same copy already made by another replica counts as done; deletes tolerate "not found"), and a status is
//! written only when it changes. So replicas converge instead of fighting; the worst case is an Event reported
//! once per replica.
//!
//! Triggers: the resource itself; any change of a Namespace, and a change of a copy that needs action (deleted, or
//! its payload no longer what the controller wrote, [`copy_needs_a_pass`]) reconciles every `ClusterPullSecret`
//! (a Namespace's new labels can deselect it, which no mapping from the new labels can tell; resources are few,
//! each pass reads only local caches plus one `GET`); a change of a pull Secret that is the source of a resource
//! reconciles that resource; and a resync every [`RESYNC`]. No debounce: kube-runtime's trailing-edge debounce
//! keeps postponing a pass while events keep coming, which a tenant's flood would turn into starvation (issue 11,
//! class 13); a resource has at most one pass running and one pending, so a flood costs at most back-to-back
//! passes, and a rotation waits at most for the pass in progress.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::{Receiver, channel, unbounded};
use futures::{FutureExt as _, Stream, StreamExt as _};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::core::Selector;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

use crate::core::cluster_pull_secret::{self, ClusterPullSecret, ClusterPullSecretStatus, SourceSecretRef};
use crate::core::credentials::pull_payload;
use crate::kubelet::docker_config::{self, SecretKind};
use crate::metrics::Metrics;
use crate::sources::cluster::{Tap, Taps};

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

/// Condition types on `ClusterPullSecret.status`.
pub const READY: &str = "Ready";
pub const SOURCE_READY: &str = "SourceReady";
pub const CONFLICT: &str = "Conflict";

/// Full pass for every resource at this interval, whatever the watches say.
pub const RESYNC: Duration = Duration::from_secs(300);
/// How long a pass waits for the namespace and copy caches' first list.
const CACHE_SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Error backoff: first retry after this, doubling per consecutive failure, at most [`RESYNC`].
const ERROR_BACKOFF: Duration = Duration::from_secs(5);
/// API requests (probes, writes) in flight per pass.
const REQUEST_CONCURRENCY: usize = 8;
/// Conflicting namespaces named in a condition or Event message.
const MAX_NAMED_NAMESPACES: usize = 5;

/// Label selector of every copy this tool manages (the copy watch): a first filter only, a tenant can set it.
pub fn managed_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")
}

/// Field selector of the copy watch of one pull-Secret type: a copy always has its source's type, so Secrets of
/// other types that carry the labels (issue 11, class 13) never reach the controller.
pub fn copy_type_selector(kind: SecretKind) -> String {
    format!("type={}", kind.secret_type())
}

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

/// Namespaces a [`Desired`] selects ([`cluster_pull_secret::selects`], the rule admission uses too).
pub fn selected_namespaces<'a>(
    selector: &Selector,
    namespaces: impl IntoIterator<Item = &'a ObjectMeta>,
) -> BTreeSet<String> {
    let empty = BTreeMap::new();
    namespaces
        .into_iter()
        .filter(|ns| {
            cluster_pull_secret::selects(
                selector,
                ns.labels.as_ref().unwrap_or(&empty),
                ns.deletion_timestamp.is_some(),
            )
        })
        .filter_map(|ns| ns.name.clone())
        .collect()
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

// --- Status (pure) ----------------------------------------------------------------------------------------

/// What a pass found and did, for the status and Events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Why `namespaceSelector` could not be parsed.
    pub invalid_selector: Option<String>,
    /// `None`: the source is usable; otherwise (reason, message).
    pub source_problem: Option<(&'static str, String)>,
    pub selected: u32,
    /// Selected namespaces holding a current copy after the pass.
    pub synced: u32,
    /// Namespaces (sorted) where a Secret of the target name is not ours.
    pub conflicts: Vec<String>,
    /// One short line per failed write: namespace, verb, HTTP status; no message body.
    pub failures: Vec<String>,
    pub created: u32,
    pub updated: u32,
    pub deleted: u32,
    /// Namespaces (sorted) whose copy had been changed by someone else and was restored.
    pub restored: Vec<String>,
}

/// A condition as this controller sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionSpec {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

/// The three conditions for an outcome.
pub fn conditions_for(outcome: &PassReport, target_name: &str, source: &SourceSecretRef) -> [ConditionSpec; 3] {
    let source_ready = match &outcome.source_problem {
        None => ConditionSpec {
            type_: SOURCE_READY,
            status: true,
            reason: "SourceValid",
            message: format!("Secret {}/{} is a valid pull Secret", source.namespace, source.name),
        },
        Some((reason, message)) => {
            ConditionSpec { type_: SOURCE_READY, status: false, reason, message: message.clone() }
        }
    };
    let conflict = if outcome.conflicts.is_empty() {
        ConditionSpec {
            type_: CONFLICT,
            status: false,
            reason: "NoConflict",
            message: "no unmanaged Secret is in the way".into(),
        }
    } else {
        ConditionSpec {
            type_: CONFLICT,
            status: true,
            reason: "SecretNotManaged",
            message: conflict_message(target_name, &outcome.conflicts),
        }
    };
    let (status, reason, message) = if let Some(why) = &outcome.invalid_selector {
        (false, "InvalidSelector", format!("namespaceSelector is invalid: {why}; copies are left as they are"))
    } else if outcome.source_problem.is_some() {
        (false, "SourceNotReady", format!("{}; existing copies are kept", source_ready.message))
    } else if !outcome.failures.is_empty() {
        let shown = outcome.failures.iter().take(MAX_NAMED_NAMESPACES).cloned().collect::<Vec<_>>().join("; ");
        (false, "SyncFailed", format!("{} write(s) failed, retrying: {shown}", outcome.failures.len()))
    } else if !outcome.conflicts.is_empty() {
        (false, "Conflict", conflict.message.clone())
    } else {
        (true, "Synced", format!("{} of {} selected namespaces hold a current copy", outcome.synced, outcome.selected))
    };
    [ConditionSpec { type_: READY, status, reason, message }, source_ready, conflict]
}

fn conflict_message(target_name: &str, namespaces: &[String]) -> String {
    let shown = namespaces.iter().take(MAX_NAMED_NAMESPACES).cloned().collect::<Vec<_>>().join(", ");
    let more = namespaces.len().saturating_sub(MAX_NAMED_NAMESPACES);
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    format!(
        "a Secret named {target_name:?} that this ClusterPullSecret does not manage exists in {} namespace(s): \
         {shown}{more}; it is left untouched",
        namespaces.len()
    )
}

/// The status for an outcome. A condition keeps its `lastTransitionTime` while its status does not change, so a
/// pass that changes nothing produces a status equal to the previous one (and no write).
pub fn status_for(
    previous: Option<&ClusterPullSecretStatus>,
    generation: Option<i64>,
    specs: &[ConditionSpec],
    outcome: &PassReport,
    now: Timestamp,
) -> ClusterPullSecretStatus {
    let now = Time(Timestamp::from_second(now.as_second()).unwrap_or(now));
    let conditions = specs
        .iter()
        .map(|spec| {
            let status = if spec.status { "True" } else { "False" };
            let old = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == spec.type_));
            let last_transition_time =
                old.filter(|c| c.status == status).map(|c| c.last_transition_time.clone()).unwrap_or(now.clone());
            Condition {
                type_: spec.type_.to_string(),
                status: status.to_string(),
                reason: spec.reason.to_string(),
                message: spec.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect();
    let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    ClusterPullSecretStatus {
        selected_namespaces: count(outcome.selected),
        synced_copies: count(outcome.synced),
        conditions,
    }
}

/// An Event to publish about the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// Events for a pass: a Warning when a problem appears or changes (not on every resync, so a standing problem is
/// not repeated every five minutes), a Normal one when copies were written or removed.
pub fn events_for(
    previous: Option<&ClusterPullSecretStatus>,
    specs: &[ConditionSpec],
    outcome: &PassReport,
) -> Vec<EventSpec> {
    let mut events = Vec::new();
    for spec in specs {
        let problem = match spec.type_ {
            SOURCE_READY => !spec.status,
            CONFLICT => spec.status,
            // The other Ready reasons repeat SourceReady or Conflict.
            _ => !spec.status && matches!(spec.reason, "InvalidSelector" | "SyncFailed"),
        };
        let unchanged = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == spec.type_)).is_some_and(|c| {
            c.status == if spec.status { "True" } else { "False" }
                && c.reason == spec.reason
                && c.message == spec.message
        });
        if problem && !unchanged {
            let reason = if spec.type_ == CONFLICT { "Conflict" } else { spec.reason };
            events.push(EventSpec { warning: true, reason: reason.to_string(), note: spec.message.clone() });
        }
    }
    if !outcome.restored.is_empty() {
        let shown = outcome.restored.iter().take(MAX_NAMED_NAMESPACES).cloned().collect::<Vec<_>>().join(", ");
        let more = outcome.restored.len().saturating_sub(MAX_NAMED_NAMESPACES);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        events.push(EventSpec {
            warning: true,
            reason: "CopyModified".into(),
            note: format!(
                "the copy in {} namespace(s) had been changed since it was written and was restored: {shown}{more}",
                outcome.restored.len()
            ),
        });
    }
    if outcome.created + outcome.updated + outcome.deleted > 0 {
        events.push(EventSpec {
            warning: false,
            reason: "Synced".into(),
            note: format!(
                "copies created: {}, updated: {}, deleted: {}",
                outcome.created, outcome.updated, outcome.deleted
            ),
        });
    }
    events
}

// --- Runtime ----------------------------------------------------------------------------------------------

/// Why a pass failed (the controller retries with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the namespace and copy caches did not sync within {0:?}")]
    CachesNotSynced(Duration),
    #[error("reading source Secret {namespace}/{name}: {source}")]
    ReadSource {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("looking for Secret {namespace}/{name}: {source}")]
    Probe {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("{} copy write(s) failed: {}", .0.len(), .0.join("; "))]
    Writes(Vec<String>),
    #[error("writing status: {0}")]
    Status(#[source] kube::Error),
}

/// Shared state of the reconciler: the client, the caches, the Event recorder and the metrics.
pub struct Context {
    client: Client,
    namespaces: Store<Namespace>,
    /// One store per pull-Secret type.
    copies: Vec<Store<Secret>>,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    /// Consecutive failures per resource, for the error backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// `namespaces` holds every Namespace's metadata; `copies` every Secret of a pull-Secret type labelled
    /// [`managed_selector`], reduced by [`observe_copy`].
    pub fn new(
        client: Client,
        namespaces: Store<Namespace>,
        copies: Vec<Store<Secret>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let recorder = Recorder::new(client.clone(), Reporter::from(FIELD_MANAGER));
        Self { client, namespaces, copies, recorder, metrics, failures: Mutex::default() }
    }

    async fn caches_synced(&self) -> Result<(), Error> {
        // Deciding on an empty cache would delete every copy: wait for the first complete list of each.
        let both = async {
            if self.namespaces.wait_until_ready().await.is_err() {
                return false;
            }
            for copies in &self.copies {
                if copies.wait_until_ready().await.is_err() {
                    return false;
                }
            }
            true
        };
        match tokio::time::timeout(CACHE_SYNC_TIMEOUT, both).await {
            Ok(true) => Ok(()),
            _ => Err(Error::CachesNotSynced(CACHE_SYNC_TIMEOUT)),
        }
    }

    fn record_result(&self, name: &str, failed: bool) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failed {
            let n = failures.entry(name.to_string()).or_default();
            *n = n.saturating_add(1);
            *n
        } else {
            failures.remove(name);
            0
        }
    }

    async fn publish(&self, cps: &ClusterPullSecret, event: &EventSpec) {
        let event = KubeEvent {
            type_: if event.warning { EventType::Warning } else { EventType::Normal },
            reason: event.reason.clone(),
            note: Some(event.note.clone()),
            action: "Distribute".into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &cps.object_ref(&())).await {
            warn!(cluster_pull_secret = %cps.name_any(), reason = %event.reason, %error, "could not publish an Event");
        }
    }
}

/// One pass over one `ClusterPullSecret`.
pub async fn reconcile(cps: Arc<ClusterPullSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.caches_synced().await?;
    if cps.metadata.deletion_timestamp.is_some() {
        // Garbage collection removes the copies (ownerReferences).
        return Ok(Action::await_change());
    }
    let name = cps.name_any();
    let target = cps.target_name().to_string();
    let source_ref = &cps.spec.secret_ref;

    let selector = Selector::try_from(cps.spec.namespace_selector.clone()).map_err(|e| e.to_string());
    let selected = selector.as_ref().ok().map(|selector| {
        let namespaces = ctx.namespaces.state();
        selected_namespaces(selector, namespaces.iter().map(|ns| &ns.metadata))
    });

    let source_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &source_ref.namespace);
    let source = source_api.get_opt(&source_ref.name).await.map_err(|source| Error::ReadSource {
        namespace: source_ref.namespace.clone(),
        name: source_ref.name.clone(),
        source,
    })?;
    let source = SourceState::from_secret(source.as_ref());

    // Only what concerns this resource: its own copies (by owner uid) and whatever holds the target name.
    let uid = cps.metadata.uid.as_deref();
    let mut existing: Vec<ExistingSecret> = ctx
        .copies
        .iter()
        .flat_map(|store| store.state())
        .filter_map(|copy| ExistingSecret::from_copy(&copy))
        .filter(|e| e.name == target || (uid.is_some() && e.owner_uid.as_deref() == uid))
        .collect();
    let desired = Desired {
        cluster_pull_secret: &name,
        uid,
        target_name: &target,
        selected: selected.as_ref(),
        source_hash: source.hash(),
    };
    let probes = futures::stream::iter(namespaces_to_probe(&desired, &existing))
        .map(|ns| {
            let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
            let target = target.clone();
            async move {
                api.get_metadata_opt(&target).await.map_err(|source| Error::Probe {
                    namespace: ns,
                    name: target,
                    source,
                })
            }
        })
        .buffer_unordered(REQUEST_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    for probed in probes {
        existing.extend(probed?.and_then(|meta| ExistingSecret::from_meta(&meta.metadata)));
    }

    let actions = plan(&desired, &existing);
    let mut outcome = PassReport {
        invalid_selector: selector.err(),
        source_problem: match &source {
            SourceState::Usable(_) => None,
            SourceState::NotFound => Some((
                "SourceNotFound",
                format!("source Secret {}/{} does not exist", source_ref.namespace, source_ref.name),
            )),
            SourceState::Undecodable(why) => Some((
                "SourceUndecodable",
                format!("source Secret {}/{} cannot be used: {why}", source_ref.namespace, source_ref.name),
            )),
        },
        selected: selected.as_ref().map_or(0, |s| s.len() as u32),
        ..Default::default()
    };
    // `buffered` keeps the results in the order of the actions.
    let results: Vec<Result<Written, String>> = futures::stream::iter(actions.clone())
        .map(|action| execute(&ctx, &cps, &source, action))
        .buffered(REQUEST_CONCURRENCY)
        .collect()
        .await;
    for (action, result) in actions.iter().zip(results) {
        match (action, result) {
            (CopyAction::Conflict { namespace }, _) => outcome.conflicts.push(namespace.clone()),
            (_, Err(failure)) => outcome.failures.push(failure),
            (CopyAction::Skip { .. }, _) => outcome.synced += 1,
            (CopyAction::Create { .. }, Ok(written)) => {
                outcome.created += u32::from(written == Written::Changed);
                outcome.synced += 1;
            }
            (CopyAction::Update { .. }, Ok(written)) => {
                outcome.updated += u32::from(written == Written::Changed);
                outcome.synced += 1;
            }
            (CopyAction::Restore { namespace, .. }, Ok(written)) => {
                if written == Written::Changed {
                    outcome.restored.push(namespace.clone());
                    ctx.metrics.copies_restored.inc();
                }
                outcome.synced += 1;
            }
            (CopyAction::Delete { .. }, Ok(written)) => outcome.deleted += u32::from(written == Written::Changed),
            (CopyAction::Hold { .. }, _) => {}
        }
    }
    outcome.conflicts.sort();
    outcome.failures.sort();
    outcome.restored.sort();

    let specs = conditions_for(&outcome, &target, source_ref);
    let previous = cps.status.as_ref();
    let status = status_for(previous, cps.metadata.generation, &specs, &outcome, Timestamp::now());
    if previous != Some(&status) {
        let api: Api<ClusterPullSecret> = Api::all(ctx.client.clone());
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({ "status": status })))
            .await
            .map_err(Error::Status)?;
    }
    for event in events_for(previous, &specs, &outcome) {
        ctx.publish(&cps, &event).await;
    }
    if !outcome.conflicts.is_empty() {
        debug!(cluster_pull_secret = %name, conflicts = ?outcome.conflicts, "Secrets not managed by us are in the way");
    }
    if outcome.failures.is_empty() { Ok(Action::requeue(RESYNC)) } else { Err(Error::Writes(outcome.failures)) }
}

/// What a successful action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Changed,
    /// Already as wanted (or, for a delete, already gone): nothing was written.
    Unchanged,
}

/// Carries one action out. An error is one short line (verb, namespace/name, HTTP status and reason) fit for a
/// condition; the full error is logged.
async fn execute(
    ctx: &Context,
    cps: &ClusterPullSecret,
    source: &SourceState,
    action: CopyAction,
) -> Result<Written, String> {
    let cps_name = cps.name_any();
    let target = cps.target_name();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), action.namespace());
    let fail = |verb: &str, namespace: &str, name: &str, error: kube::Error| {
        warn!(cluster_pull_secret = %cps_name, namespace, secret = name, verb, %error, "copy write failed");
        format!("{verb} {namespace}/{name}: {}", short(&error))
    };
    match (&action, source) {
        (CopyAction::Create { namespace }, SourceState::Usable(payload)) => {
            match create(&api, cps, namespace, payload).await {
                Ok(()) => info!(cluster_pull_secret = %cps_name, namespace, secret = target, "copy created"),
                // Created since we looked: by another replica (the same copy: done), or by someone else (the
                // next pass reports the conflict).
                Err(kube::Error::Api(status)) if status.is_already_exists() => {
                    let now = api.get_metadata_opt(target).await.map_err(|e| fail("create", namespace, target, e))?;
                    let same = now.as_ref().and_then(|m| ExistingSecret::from_meta(&m.metadata)).is_some_and(|e| {
                        e.owner_uid.is_some()
                            && e.owner_uid == cps.metadata.uid
                            && e.source_hash.as_deref() == Some(payload.hash.as_str())
                    });
                    return if same {
                        Ok(Written::Unchanged)
                    } else {
                        Err(format!("create {namespace}/{target}: a Secret of that name appeared meanwhile"))
                    };
                }
                Err(e) => return Err(fail("create", namespace, target, e)),
            }
        }
        (
            CopyAction::Update { namespace, uid } | CopyAction::Restore { namespace, uid },
            SourceState::Usable(payload),
        ) => {
            let copy = copy_secret(cps, namespace, payload, uid.as_deref());
            let params = PatchParams::apply(FIELD_MANAGER).force();
            match api.patch(target, &params, &Patch::Apply(&copy)).await {
                Ok(_) => {}
                // The type of a Secret is immutable: a source re-created with the other pull-Secret type needs a
                // new copy. Only that rejection (a cause on field `type`) leads here, and the uid precondition
                // keeps the delete from removing anything but our copy.
                Err(kube::Error::Api(status)) if type_is_immutable(&status) => {
                    match delete(&api, target, uid.as_deref())
                        .await
                        .map_err(|e| fail("delete", namespace, target, e))?
                    {
                        Deleted::Yes | Deleted::AlreadyGone => {}
                        Deleted::NotOurs => {
                            return Err(format!("update {namespace}/{target}: replaced by another Secret"));
                        }
                    }
                    create(&api, cps, namespace, payload).await.map_err(|e| fail("create", namespace, target, e))?;
                }
                Err(e) => return Err(fail("update", namespace, target, e)),
            }
            if matches!(action, CopyAction::Restore { .. }) {
                warn!(cluster_pull_secret = %cps_name, namespace, secret = target, "copy had been modified: restored");
            } else {
                info!(cluster_pull_secret = %cps_name, namespace, secret = target, "copy updated");
            }
        }
        (CopyAction::Delete { namespace, name, uid }, _) => {
            match delete(&api, name, uid.as_deref()).await.map_err(|e| fail("delete", namespace, name, e))? {
                Deleted::Yes => info!(cluster_pull_secret = %cps_name, namespace, secret = %name, "copy deleted"),
                Deleted::AlreadyGone | Deleted::NotOurs => return Ok(Written::Unchanged),
            }
        }
        _ => return Ok(Written::Unchanged),
    }
    Ok(Written::Changed)
}

async fn create(
    api: &Api<Secret>,
    cps: &ClusterPullSecret,
    namespace: &str,
    payload: &SourcePayload,
) -> kube::Result<()> {
    let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    api.create(&params, &copy_secret(cps, namespace, payload, None)).await.map(drop)
}

/// What a guarded delete did.
enum Deleted {
    Yes,
    AlreadyGone,
    /// The `uid` precondition failed: the Secret of that name is not the copy we knew; left alone.
    NotOurs,
}

async fn delete(api: &Api<Secret>, name: &str, uid: Option<&str>) -> kube::Result<Deleted> {
    let params = DeleteParams {
        preconditions: uid.map(|uid| Preconditions { uid: Some(uid.to_string()), resource_version: None }),
        ..Default::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(Deleted::Yes),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(Deleted::AlreadyGone),
        Err(kube::Error::Api(status)) if status.is_conflict() => Ok(Deleted::NotOurs),
        Err(e) => Err(e),
    }
}

/// The API server's answer to a change of a Secret's `type`: 422 with a cause on field `type`.
fn type_is_immutable(status: &kube::core::Status) -> bool {
    status.is_invalid() && status.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.field == "type"))
}

/// An API error as "409 Conflict"; other errors by kind only (their text may quote a request).
fn short(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} {}", status.code, status.reason),
        _ => "API request failed".to_string(),
    }
}

/// Retries a failed pass after 5 s, doubling per consecutive failure, at most [`RESYNC`].
pub fn error_policy(cps: Arc<ClusterPullSecret>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = ctx.record_result(&cps.name_any(), true);
    let delay = ERROR_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(6)).min(RESYNC);
    warn!(cluster_pull_secret = %cps.name_any(), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Capacity of each channel from the cache's watches to the controller: a burst this large is absorbed before the
/// watch waits for the controller.
const FEED_CAPACITY: usize = 1024;

/// The controller's ends of the cache's watches (`sources::cluster::Taps`): the controller opens no watch of its
/// own. Namespaces arrive as metadata, Secrets without data (a copy keeps the hash of its payload, see
/// [`observe_copy`]).
pub struct Feeds {
    namespaces: Receiver<Event<Namespace>>,
    cluster_pull_secrets: Receiver<Event<ClusterPullSecret>>,
    /// One per pull-Secret type (`SecretKind::ALL`).
    secrets: [Receiver<Event<Secret>>; 2],
}

/// The taps to give `sources::cluster::watch` and the feeds to give [`distribute`], connected.
pub fn feeds() -> (Taps, Feeds) {
    let (namespaces_tx, namespaces) = channel(FEED_CAPACITY);
    let (cps_tx, cluster_pull_secrets) = channel(FEED_CAPACITY);
    let (json_tx, json) = channel(FEED_CAPACITY);
    let (cfg_tx, cfg) = channel(FEED_CAPACITY);
    let taps = Taps {
        namespaces: Some(Tap { sender: namespaces_tx, reduce: keep_namespace_metadata }),
        cluster_pull_secrets: Some(Tap { sender: cps_tx, reduce: |_| {} }),
        secrets: [
            Some(Tap { sender: json_tx, reduce: reduce_secret }),
            Some(Tap { sender: cfg_tx, reduce: reduce_secret }),
        ],
    };
    (taps, Feeds { namespaces, cluster_pull_secrets, secrets: [json, cfg] })
}

/// What the controller keeps of a Namespace: names, labels and whether it is terminating.
fn keep_namespace_metadata(namespace: &mut Namespace) {
    namespace.metadata.managed_fields = None;
    namespace.metadata.annotations = None;
    namespace.spec = None;
    namespace.status = None;
}

/// What the controller keeps of a pull Secret: a copy it manages as [`observe_copy`] reduces it, any other Secret
/// as its metadata (it may be a source: its change triggers the resources that copy it).
fn reduce_secret(secret: &mut Secret) {
    if is_managed(secret) {
        observe_copy(secret);
    } else {
        secret.data = None;
        secret.string_data = None;
        secret.metadata.managed_fields = None;
        secret.metadata.annotations = None;
    }
}

/// Labelled [`managed_selector`]: a copy, or a Secret claiming to be one (ownership is the owner uid, not this).
fn is_managed(secret: &Secret) -> bool {
    secret.labels().get(MANAGED_BY_LABEL).is_some_and(|v| v == MANAGED_BY_VALUE)
}

/// Runs the controller on the cache's watches ([`feeds`]) until `shutdown` resolves (then lets passes in flight
/// finish).
pub async fn distribute(
    client: Client,
    metrics: Arc<Metrics>,
    feeds: Feeds,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let Feeds { namespaces: namespace_events, cluster_pull_secrets, secrets } = feeds;
    let (namespaces, namespace_writer) = reflector::store();
    let namespace_changes = namespace_events.map(Ok).reflect(namespace_writer);

    let (resources, resource_writer) = reflector::store();
    let resource_events = cluster_pull_secrets.map(Ok).reflect(resource_writer).applied_objects();
    let controller = Controller::for_stream(resource_events, resources.clone());

    let mut copies = Vec::new();
    let mut copy_changes = Vec::new();
    let mut source_changes = Vec::new();
    for events in secrets {
        let (store, writer) = reflector::store();
        let (ticks, sources) = copies_and_sources(events, writer, resources.clone());
        copies.push(store);
        copy_changes.push(ticks.boxed());
        source_changes.push(sources.boxed());
    }
    let cache_changes =
        futures::stream::select(changes(namespace_changes, "namespaces"), futures::stream::select_all(copy_changes));

    let ctx = Arc::new(Context::new(client, namespaces, copies, metrics));
    info!("ClusterPullSecret controller started");
    controller
        .reconcile_all_on(cache_changes)
        .reconcile_on(futures::stream::select_all(source_changes))
        .graceful_shutdown_on(shutdown.shared())
        .run(
            |cps, ctx: Arc<Context>| async move {
                let name = cps.name_any();
                let result = reconcile(cps, ctx.clone()).await;
                if result.is_ok() {
                    ctx.record_result(&name, false);
                }
                result
            },
            error_policy,
            ctx,
        )
        .for_each(|result| {
            if let Err(error) = result {
                match error {
                    // Already logged by error_policy.
                    controller::Error::ReconcilerFailed(..) => {}
                    other => warn!(error = %other, "ClusterPullSecret controller"),
                }
            }
            std::future::ready(())
        })
        .await;
    info!("ClusterPullSecret controller stopped");
}

/// Splits one pull-Secret type's events: the copies go into the copy cache (`writer`), giving a tick per change
/// that needs a pass ([`copy_needs_a_pass`]) and one per completed list; a change of any Secret that is the source
/// of resources gives those resources.
fn copies_and_sources(
    events: Receiver<Event<Secret>>,
    writer: reflector::store::Writer<Secret>,
    resources: Store<ClusterPullSecret>,
) -> (impl Stream<Item = ()> + Send + 'static, impl Stream<Item = ObjectRef<ClusterPullSecret>> + Send + 'static) {
    let (sources_tx, sources_rx) = unbounded();
    let mut writer = writer;
    let ticks = events.filter_map(move |event| {
        let owners =
            || -> BTreeSet<String> { resources.state().iter().filter_map(|cps| cps.metadata.uid.clone()).collect() };
        let (copy_event, changed) = match &event {
            Event::Init => (true, None),
            Event::InitApply(secret) => (is_managed(secret), None),
            Event::InitDone => (true, None),
            Event::Apply(secret) => (is_managed(secret), Some((secret, false))),
            Event::Delete(secret) => (is_managed(secret), Some((secret, true))),
        };
        if copy_event {
            writer.apply_watcher_event(&event);
        }
        let tick = match changed {
            None => matches!(event, Event::InitDone),
            Some((secret, deleted)) => {
                for resource in sources_of(&resources, &secret.metadata) {
                    // Only platform-owned source Secrets trigger; the controller drains these as they come.
                    let _ = sources_tx.unbounded_send(resource);
                }
                copy_event && copy_needs_a_pass(secret, deleted, &owners())
            }
        };
        std::future::ready(tick.then_some(()))
    });
    (ticks, sources_rx)
}

/// The resources whose source is this Secret.
fn sources_of(resources: &Store<ClusterPullSecret>, secret: &ObjectMeta) -> Vec<ObjectRef<ClusterPullSecret>> {
    let (Some(ns), Some(name)) = (&secret.namespace, &secret.name) else { return Vec::new() };
    resources
        .state()
        .iter()
        .filter(|cps| &cps.spec.secret_ref.namespace == ns && &cps.spec.secret_ref.name == name)
        .map(|cps| ObjectRef::from_obj(&**cps))
        .collect()
}

/// A tick per change of a cache (not per object of a relist: once when it completes).
fn changes<K>(
    events: impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
    what: &'static str,
) -> impl Stream<Item = ()> + Send + 'static {
    events.filter_map(move |event| {
        std::future::ready(match event {
            Ok(Event::Apply(_) | Event::Delete(_) | Event::InitDone) => Some(()),
            Ok(Event::Init | Event::InitApply(_)) => None,
            Err(error) => {
                warn!(watch = what, %error, "watch failed; retrying with backoff");
                None
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cluster_pull_secret::ClusterPullSecretSpec;
    use crate::core::pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

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
            let selected = Selector::try_from(label_selector)
                .ok()
                .map(|s| selected_namespaces(&s, namespaces.iter().map(meta).collect::<Vec<_>>().iter()));
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

    fn outcome() -> PassReport {
        PassReport { selected: 3, synced: 3, ..Default::default() }
    }

    fn source_ref() -> SourceSecretRef {
        SourceSecretRef { namespace: "platform".into(), name: "corp".into() }
    }

    #[test]
    fn ready_reason_names_the_first_problem() {
        let reason = |o: &PassReport| conditions_for(o, "corp", &source_ref())[0].reason;
        assert_eq!(reason(&outcome()), "Synced");
        let conflicted = PassReport { conflicts: vec!["a".into()], ..outcome() };
        assert_eq!(reason(&conflicted), "Conflict");
        let failed = PassReport { failures: vec!["create a/corp: 403 Forbidden".into()], ..conflicted.clone() };
        assert_eq!(reason(&failed), "SyncFailed");
        let missing = PassReport { source_problem: Some(("SourceNotFound", "gone".into())), ..failed.clone() };
        assert_eq!(reason(&missing), "SourceNotReady");
        assert_eq!(conditions_for(&missing, "corp", &source_ref())[1].reason, "SourceNotFound");
        let invalid = PassReport { invalid_selector: Some("bad operator".into()), ..missing };
        assert_eq!(reason(&invalid), "InvalidSelector");
    }

    #[test]
    fn conflict_message_names_at_most_five_namespaces() {
        let many = PassReport { conflicts: (1..=7).map(|i| format!("ns{i}")).collect(), ..outcome() };
        let [_, _, c] = conditions_for(&many, "corp", &source_ref());
        assert_eq!((c.type_, c.status, c.reason), (CONFLICT, true, "SecretNotManaged"));
        assert!(c.message.contains("in 7 namespace(s): ns1, ns2, ns3, ns4, ns5 and 2 more"), "{}", c.message);
        assert!(!c.message.contains("ns6"));
    }

    #[test]
    fn transition_time_is_kept_while_the_status_holds() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let t1 = Timestamp::from_second(1_700_000_600).unwrap();
        let specs = conditions_for(&outcome(), "corp", &source_ref());
        let first = status_for(None, Some(1), &specs, &outcome(), t0);
        assert!(
            first.conditions.iter().all(|c| c.last_transition_time == Time(t0) && c.observed_generation == Some(1))
        );
        assert_eq!(status_for(Some(&first), Some(1), &specs, &outcome(), t1), first, "nothing changed: same status");

        let fewer = PassReport { selected: 4, ..outcome() };
        let specs2 = conditions_for(&fewer, "corp", &source_ref());
        let second = status_for(Some(&first), Some(2), &specs2, &fewer, t1);
        let ready = &second.conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.last_transition_time.clone()),
            ("True", Time(t0)),
            "message changed only"
        );
        assert_eq!(ready.observed_generation, Some(2));

        let missing = PassReport { source_problem: Some(("SourceNotFound", "gone".into())), ..outcome() };
        let third = status_for(Some(&second), Some(2), &conditions_for(&missing, "corp", &source_ref()), &missing, t1);
        assert_eq!(third.conditions[1].status, "False");
        assert_eq!(third.conditions[1].last_transition_time, Time(t1), "status flipped: new transition time");
        assert_eq!(third.conditions[2].last_transition_time, Time(t0), "Conflict stayed False");

        let subsecond = Timestamp::from_second(1_700_000_000).unwrap() + Duration::from_millis(750);
        assert_eq!(
            status_for(None, None, &specs, &outcome(), subsecond).conditions[0].last_transition_time,
            Time(t0),
            "the API server keeps seconds: so do we, or every pass would differ"
        );
    }

    #[test]
    fn a_restored_copy_is_a_warning_naming_its_namespaces() {
        let restored = PassReport { restored: (1..=6).map(|i| format!("t{i}")).collect(), ..outcome() };
        let events = events_for(None, &conditions_for(&restored, "corp", &source_ref()), &restored);
        assert_eq!(
            events,
            vec![EventSpec {
                warning: true,
                reason: "CopyModified".into(),
                note: "the copy in 6 namespace(s) had been changed since it was written and was restored: t1, t2, \
                       t3, t4, t5 and 1 more"
                    .into(),
            }]
        );
    }

    #[test]
    fn warnings_on_a_new_problem_only_and_a_note_when_copies_change() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let missing = PassReport {
            source_problem: Some(("SourceNotFound", "source Secret platform/corp does not exist".into())),
            ..outcome()
        };
        let specs = conditions_for(&missing, "corp", &source_ref());
        let events = events_for(None, &specs, &missing);
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].warning, events[0].reason.as_str()), (true, "SourceNotFound"));
        let status = status_for(None, None, &specs, &missing, t0);
        assert!(events_for(Some(&status), &specs, &missing).is_empty(), "a standing problem is not repeated");

        let conflicted = PassReport { conflicts: vec!["a".into()], created: 1, ..outcome() };
        let specs = conditions_for(&conflicted, "corp", &source_ref());
        let events = events_for(Some(&status), &specs, &conflicted);
        let reasons: Vec<_> = events.iter().map(|e| (e.warning, e.reason.as_str())).collect();
        assert_eq!(reasons, vec![(true, "Conflict"), (false, "Synced")]);
        assert!(events[0].note.contains("in 1 namespace(s): a"));
        assert!(events_for(None, &conditions_for(&outcome(), "corp", &source_ref()), &outcome()).is_empty());
    }
}
