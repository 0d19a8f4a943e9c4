//! What the decision may inject in a namespace: its pull Secrets (registry keys only, never credentials) plus the
//! credentials `ClusterPullSecret`s distribute to it, and the namespace's labels.
//!
//! [`CredentialIndex`] holds the primary state: every Secret reduced to what matching needs, the namespaces'
//! labels and the distributions. It does not keep snapshots itself: a change only marks its namespace dirty, in a
//! first-in first-out queue that coalesces repeated changes of one namespace ([`CredentialIndex::next_dirty`]).
//! Whoever serves admission (`live::LiveCredentials`) takes the namespaces from that queue one at a time, builds
//! each one's [`NamespaceCredentials`] off the request path from [`ViewInputs`] (one sort, no quadratic step) and
//! publishes it as an immutable snapshot. The same index serves `mutate`/`explain` and the secrets directory, which
//! build a namespace's view on demand with [`CredentialIndex::view`], so the three reach the same decision from
//! the same objects.
//!
//! What one tenant can make the index spend is bounded ([`IndexLimits`]): a Secret whose payload is larger than
//! `max_secret_bytes` or that holds more than `max_keys_per_secret` registry keys is not indexed, and a namespace
//! indexes at most `max_keys_per_namespace` keys. A Secret left out by a bound stays a candidate *with no keys*:
//! it is never injected (the webhook cannot tell which images it covers, and injecting it for none is exact for a
//! Pod that does not list it), and its name still shadows a distributed credential of that name (the kubelet reads
//! that Secret, not the distribution).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::Selector;

use crate::core::cluster_pull_secret::{self, ClusterPullSecret};
use crate::core::expiry::{self, UnixTime};
use crate::core::pod;
use crate::interner::Interner;
use crate::kubelet::docker_config::{self, RegistryEntry, SecretKind};
use crate::kubelet::keyring::Keyring;

/// `--max-secret-bytes` default: the payload size a pull Secret may have to be indexed.
pub const DEFAULT_MAX_SECRET_BYTES: usize = 256 * 1024;
/// `--max-keys-per-secret` default.
pub const DEFAULT_MAX_KEYS_PER_SECRET: usize = 1_000;
/// `--max-keys-per-namespace` default.
pub const DEFAULT_MAX_KEYS_PER_NAMESPACE: usize = 10_000;

/// What one Secret and one namespace may cost the index (issue 11, class 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexLimits {
    /// A pull Secret whose payload (the type's data key) is larger is not decoded.
    pub max_secret_bytes: usize,
    /// A pull Secret with more registry keys is not indexed.
    pub max_keys_per_secret: usize,
    /// Keys a namespace's snapshot holds at most; a Secret counts at least one. Distributed credentials are taken
    /// first, then the namespace's own Secrets in name order; one that does not fit in what is left is not indexed.
    pub max_keys_per_namespace: usize,
}

impl Default for IndexLimits {
    fn default() -> Self {
        Self {
            max_secret_bytes: DEFAULT_MAX_SECRET_BYTES,
            max_keys_per_secret: DEFAULT_MAX_KEYS_PER_SECRET,
            max_keys_per_namespace: DEFAULT_MAX_KEYS_PER_NAMESPACE,
        }
    }
}

/// A bound of [`IndexLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Limit {
    SecretBytes,
    KeysPerSecret,
    KeysPerNamespace,
}

impl Limit {
    pub const ALL: [Limit; 3] = [Limit::SecretBytes, Limit::KeysPerSecret, Limit::KeysPerNamespace];

    /// The metric label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::SecretBytes => "secret_bytes",
            Self::KeysPerSecret => "keys_per_secret",
            Self::KeysPerNamespace => "keys_per_namespace",
        }
    }

    /// The flag that sets it.
    pub fn flag(self) -> &'static str {
        match self {
            Self::SecretBytes => "--max-secret-bytes",
            Self::KeysPerSecret => "--max-keys-per-secret",
            Self::KeysPerNamespace => "--max-keys-per-namespace",
        }
    }
}

/// A Secret left out of the index by a bound: which one, the Secret's size in its unit, and the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    pub limit: Limit,
    pub size: usize,
    pub max: usize,
}

/// A Secret the kubelet would read as a pull Secret (R1), reduced to what matching needs. It names no namespace:
/// equal candidates of different namespaces (the same Secret copied everywhere) share one allocation in the index
/// ([`CandidateSecret::shared`]).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CandidateSecret {
    /// The name a Pod lists in `imagePullSecrets`.
    pub name: String,
    /// Which payload the kubelet reads (R1).
    pub kind: SecretKind,
    /// The registry keys as written in the Secret, or why the kubelet would fail to decode it (R4). Empty for a
    /// Secret left out of the index by a bound ([`IndexLimits`]).
    pub keys: Result<Vec<String>, String>,
    pub origin: Origin,
    /// The ServiceAccount the Secret is bound to ([`SERVICE_ACCOUNT_ANNOTATION`]): it is injected only into Pods
    /// running as that account. `None` for an unbound Secret (and for a distributed credential: its copies do not
    /// carry the annotation).
    pub service_account: Option<Box<str>>,
    /// The bound of [`IndexLimits`] that left this Secret without keys (then `keys` is empty): the webhook cannot
    /// tell which images it covers, or whether the kubelet can decode it, so it is never added to a Pod.
    pub over_limit: Option<Limit>,
    /// When its credential expires ([`expiry`]: the annotation, or a JWT's `exp`), computed while indexing: the
    /// payload is not kept, only this time.
    pub expires_at: Option<UnixTime>,
}

/// The expiry of a pull Secret whose payload the kubelet decodes to `entries` ([`expiry::secret_expiry`] over its
/// annotation and those entries): the one place a Secret's expiry is read, for the index and `verify`.
pub fn expiry_of(secret: &Secret, entries: &[RegistryEntry]) -> Option<UnixTime> {
    let annotation = secret.metadata.annotations.as_ref().and_then(|a| a.get(expiry::EXPIRES_AT_ANNOTATION));
    expiry::secret_expiry(annotation.map(String::as_str), entries)
}

/// What the index keeps of a pull Secret's payload, decoded once as the kubelet decodes it: its registry keys (or
/// why the kubelet cannot decode it) and its expiry. The credentials are dropped before this returns.
fn keys_and_expiry(
    secret: &Secret,
    kind: SecretKind,
    payload: &[u8],
) -> (Result<Vec<String>, String>, Option<UnixTime>) {
    match docker_config::decode(kind, payload) {
        Ok(entries) => {
            let expires_at = expiry_of(secret, &entries);
            // Exactly the keys: collecting in place would keep the entries' allocation with the keys.
            let mut keys = Vec::with_capacity(entries.len());
            keys.extend(entries.into_iter().map(|entry| entry.key));
            (Ok(keys), expires_at)
        }
        Err(error) => (Err(error.to_string()), None),
    }
}

/// The annotation that binds a pull Secret to one ServiceAccount of its namespace (the token controller's, and
/// OpenShift's `<sa>-dockercfg-*` Secrets carry it). A bound Secret is injected only into that account's Pods.
pub const SERVICE_ACCOUNT_ANNOTATION: &str = "kubernetes.io/service-account.name";

/// The ServiceAccount a Secret is bound to: the value of [`SERVICE_ACCOUNT_ANNOTATION`], `None` when absent or empty.
pub fn bound_service_account(secret: &Secret) -> Option<Box<str>> {
    let annotations = secret.metadata.annotations.as_ref()?;
    annotations.get(SERVICE_ACCOUNT_ANNOTATION).filter(|sa| !sa.is_empty()).map(|sa| sa.as_str().into())
}

/// Keys can carry `user:password@` (the kubelet ignores it, R16): Debug shows them redacted.
impl std::fmt::Debug for CandidateSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys =
            self.keys.as_ref().map(|keys| keys.iter().map(|k| docker_config::redact_userinfo(k)).collect::<Vec<_>>());
        f.debug_struct("CandidateSecret")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("keys", &keys)
            .field("origin", &self.origin)
            .field("service_account", &self.service_account)
            .field("over_limit", &self.over_limit)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Where a candidate comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A Secret in the Pod's own namespace.
    Namespace,
    /// The credential a `ClusterPullSecret` distributes to the namespace; its copy may not exist yet (the kubelet
    /// re-reads a referenced Secret on every retry, so a Pod admitted before the copy recovers on its own).
    Distributed { cluster_pull_secret: String },
}

impl CandidateSecret {
    /// Reduces a Secret to a candidate, or `None` when the kubelet ignores it as a pull Secret (R2): another type,
    /// or the type's data key missing or empty. `stringData` (as written in a manifest) is honoured like the
    /// API server does: it wins over `data`. No bound applies: see [`Reduced::of`].
    pub fn from_secret(secret: &Secret) -> Option<Self> {
        let (kind, payload) = pull_payload(secret)?;
        let (keys, expires_at) = keys_and_expiry(secret, kind, payload);
        Some(Self {
            name: secret.metadata.name.clone()?,
            kind,
            keys,
            origin: Origin::Namespace,
            service_account: bound_service_account(secret),
            over_limit: None,
            expires_at,
        })
    }

    pub fn is_decodable(&self) -> bool {
        self.keys.is_ok()
    }

    /// `self`, shared with an equal candidate that is alive (of another namespace): a cluster's namespaces mostly
    /// hold the same Secrets (a registry's credential copied into each), which the index then keeps once.
    pub fn shared(self) -> Arc<Self> {
        static SHARED: LazyLock<Mutex<Interner<u64, CandidateSecret>>> = LazyLock::new(Mutex::default);
        SHARED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).share(self)
    }

    /// The same candidate without keys: what a Secret left out by `limit` is.
    fn without_keys(&self, limit: Limit) -> Self {
        Self { keys: Ok(Vec::new()), over_limit: Some(limit), ..self.clone() }
    }

    /// What it costs a namespace's bound: its keys, at least one.
    fn cost(&self) -> usize {
        self.keys.as_ref().map_or(1, |keys| keys.len().max(1))
    }
}

/// The pull-Secret kind of a Secret, and its payload when the kubelet reads it (R1-R2, `docker_config::classify`).
/// `stringData` is read as the API server stores it: its entries overwrite `data`'s (manifests on disk carry it).
pub fn pull_payload(secret: &Secret) -> Option<(SecretKind, &[u8])> {
    docker_config::classify(secret.type_.as_deref(), |key| match secret.string_data.as_ref().and_then(|d| d.get(key)) {
        Some(text) => Some(text.as_bytes()),
        None => Some(secret.data.as_ref()?.get(key)?.0.as_slice()),
    })
}

/// What the index keeps of one Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reduced {
    /// A pull Secret the kubelet reads; `over` when a bound left its keys out (the candidate then has none).
    Candidate { candidate: CandidateSecret, over: Option<OverLimit> },
    /// A Secret of a pull type whose payload is missing or empty: the kubelet finds no credential in it (R2), but
    /// its name is taken.
    Ignored { name: String, kind: SecretKind },
    /// A Secret of any other type (`Opaque`, ...): no credential for the kubelet, but its name is taken.
    Other { name: String },
}

impl Reduced {
    /// Reduces a Secret within `limits`: a payload over `max_secret_bytes` is not even decoded. `None` for a
    /// Secret without a name.
    pub fn of(secret: &Secret, limits: &IndexLimits) -> Option<Self> {
        let name = secret.metadata.name.clone()?;
        let Some(kind) = secret.type_.as_deref().and_then(SecretKind::of_type) else {
            return Some(Self::Other { name });
        };
        let Some((_, payload)) = pull_payload(secret) else { return Some(Self::Ignored { name, kind }) };
        let service_account = bound_service_account(secret);
        let empty = |over: OverLimit, name: String, service_account| Self::Candidate {
            candidate: CandidateSecret {
                name,
                kind,
                keys: Ok(Vec::new()),
                origin: Origin::Namespace,
                service_account,
                over_limit: Some(over.limit),
                expires_at: None,
            },
            over: Some(over),
        };
        if payload.len() > limits.max_secret_bytes {
            let over = OverLimit { limit: Limit::SecretBytes, size: payload.len(), max: limits.max_secret_bytes };
            return Some(empty(over, name, service_account));
        }
        let (keys, expires_at) = keys_and_expiry(secret, kind, payload);
        if let Ok(keys) = &keys
            && keys.len() > limits.max_keys_per_secret
        {
            let over = OverLimit { limit: Limit::KeysPerSecret, size: keys.len(), max: limits.max_keys_per_secret };
            return Some(empty(over, name, service_account));
        }
        let candidate = CandidateSecret {
            name,
            kind,
            keys,
            origin: Origin::Namespace,
            service_account,
            over_limit: None,
            expires_at,
        };
        Some(Self::Candidate { candidate, over: None })
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Candidate { candidate, .. } => &candidate.name,
            Self::Ignored { name, .. } | Self::Other { name } => name,
        }
    }

    /// The pull-Secret type, `None` for another type.
    pub fn kind(&self) -> Option<SecretKind> {
        match self {
            Self::Candidate { candidate, .. } => Some(candidate.kind),
            Self::Ignored { kind, .. } => Some(*kind),
            Self::Other { .. } => None,
        }
    }
}

/// A Namespace's labels, shared by the index and every snapshot of the namespace.
pub type Labels = Arc<BTreeMap<String, String>>;

/// One namespace as admission sees it.
///
/// Built with [`NamespaceCredentials::new`], which also parses every registry key of every candidate once into
/// an indexed keyring: admission then combines it with a Pod's own list without parsing a key again.
#[derive(Clone, Default)]
pub struct NamespaceCredentials {
    /// The Namespace's labels; empty when the Namespace is unknown. Shared with the index (one copy per namespace,
    /// not one per snapshot).
    pub labels: Labels,
    /// Candidates sorted by name, one per name: a Secret in the namespace shadows a distributed credential of the
    /// same name (that Secret is what the kubelet will read).
    pub secrets: Vec<Arc<CandidateSecret>>,
    /// Derived from `secrets`: see [`NamespaceKeys`].
    keys: NamespaceKeys,
}

/// Every registry key of a namespace's candidates, normalized and parsed once (R13-R16, R24).
#[derive(Debug, Clone, Default)]
pub struct NamespaceKeys {
    /// The keyring of every decodable candidate, added in `secrets` order; each item is the candidate's index in
    /// `secrets`. A Pod's keyring has the same keys with fewer items (see `decision`).
    pub keyring: Keyring<u32>,
    /// Indices in `secrets` of the candidates the kubelet cannot decode (for the warnings), ascending.
    pub undecodable: Vec<u32>,
    /// Indices in `secrets` of the candidates bound to a ServiceAccount ([`CandidateSecret::service_account`]),
    /// ascending: usually none, so a Pod pays nothing for the rule.
    pub bound: Vec<u32>,
    /// Indices in `secrets` of the candidates with an expiry ([`CandidateSecret::expires_at`]), ascending.
    pub expiring: Vec<u32>,
}

impl NamespaceCredentials {
    /// `secrets` must be sorted by name with unique names. O(k log k) in the number of keys: one sort, each
    /// distinct key parsed once.
    pub fn new(labels: Labels, secrets: Vec<Arc<CandidateSecret>>) -> Self {
        debug_assert!(secrets.windows(2).all(|w| w[0].name < w[1].name), "sorted, unique names");
        let index = |i: usize| u32::try_from(i).expect("fewer than 2^32 Secrets in a namespace");
        let entries = secrets
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.keys.as_ref().ok().map(|keys| (i, keys)))
            .flat_map(|(i, keys)| keys.iter().map(move |key| (key.as_str(), index(i))));
        let keyring = Keyring::from_entries(entries);
        let undecodable = secrets.iter().enumerate().filter(|(_, s)| s.keys.is_err()).map(|(i, _)| index(i)).collect();
        let bound =
            secrets.iter().enumerate().filter(|(_, s)| s.service_account.is_some()).map(|(i, _)| index(i)).collect();
        let expiring =
            secrets.iter().enumerate().filter(|(_, s)| s.expires_at.is_some()).map(|(i, _)| index(i)).collect();
        let keys = NamespaceKeys { keyring, undecodable, bound, expiring };
        Self { labels, secrets, keys }
    }

    pub fn get(&self, name: &str) -> Option<&CandidateSecret> {
        self.position(name).map(|i| &*self.secrets[i])
    }

    /// The index of the candidate named `name` in `secrets`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.secrets.binary_search_by(|s| s.name.as_str().cmp(name)).ok()
    }

    /// The candidates' registry keys, parsed.
    pub fn keys(&self) -> &NamespaceKeys {
        &self.keys
    }

    /// The Namespace carries the opt-out label.
    pub fn opted_out(&self) -> bool {
        pod::opted_out(&self.labels)
    }
}

/// Equal when labels and candidates are: the keys are derived from them.
impl PartialEq for NamespaceCredentials {
    fn eq(&self, other: &Self) -> bool {
        self.labels == other.labels && self.secrets == other.secrets
    }
}

impl Eq for NamespaceCredentials {}

impl std::fmt::Debug for NamespaceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamespaceCredentials")
            .field("labels", &self.labels)
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

/// Read side used by admission: the current snapshot of one namespace.
pub trait CredentialSource: Send + Sync {
    fn namespace(&self, namespace: &str) -> Arc<NamespaceCredentials>;
}

/// A `ClusterPullSecret` reduced to what distribution needs.
#[derive(Debug, Clone)]
struct Distribution {
    source: (String, String),
    target_name: String,
    /// `None` when the selector cannot be parsed: it then selects nothing.
    selector: Option<Selector>,
    /// The candidate it offers (the source's keys under the target name), shared by every namespace; `None` while
    /// the source is not a pull Secret the index holds.
    offered: Option<(Arc<CandidateSecret>, Option<OverLimit>)>,
}

impl Distribution {
    fn of(cps: &ClusterPullSecret) -> Self {
        Self {
            source: (cps.spec.secret_ref.namespace.clone(), cps.spec.secret_ref.name.clone()),
            target_name: cps.target_name().to_string(),
            selector: Selector::try_from(cps.spec.namespace_selector.clone()).ok(),
            offered: None,
        }
    }
}

/// A Secret's name as the index keys it: names repeat across namespaces (`regcred` everywhere), so each is kept once.
type Name = Arc<str>;

/// `name`, shared with the same name of other namespaces.
fn shared_name(name: &str) -> Name {
    static NAMES: LazyLock<Mutex<Interner<u64, str>>> = LazyLock::new(Mutex::default);
    NAMES.lock().unwrap_or_else(std::sync::PoisonError::into_inner).share_str(name)
}

/// What the index holds of one Secret name in a namespace (from the pull-Secret watches).
#[derive(Debug, Clone)]
enum Entry {
    Candidate {
        secret: Arc<CandidateSecret>,
        /// Rare: boxed, so that an entry is two pointers.
        over: Option<Box<OverLimit>>,
    },
    /// A pull-type Secret without a payload: no candidate, the name taken.
    Ignored(SecretKind),
}

impl Entry {
    /// What the index keeps of a Secret of a pull type: its name and entry; the name alone (`Err`) for a Secret of
    /// another type.
    fn of(reduced: Reduced) -> Result<(String, Self), String> {
        match reduced {
            Reduced::Candidate { candidate, over } => {
                Ok((candidate.name.clone(), Self::Candidate { secret: candidate.shared(), over: over.map(Box::new) }))
            }
            Reduced::Ignored { name, kind } => Ok((name, Self::Ignored(kind))),
            Reduced::Other { name } => Err(name),
        }
    }

    fn kind(&self) -> SecretKind {
        match self {
            Self::Candidate { secret, .. } => secret.kind,
            Self::Ignored(kind) => *kind,
        }
    }
}

/// The Secrets of one pull type that a (re)list has delivered so far, in the form the index keeps them
/// ([`Entry`]: no payload, no metadata beyond the name), by namespace. A watch stages each Secret as it arrives and
/// hands the whole list to [`CredentialIndex::replace_staged`] once it is complete, so a list costs what the index
/// will keep, not the Secrets or a buffer of them.
#[derive(Debug)]
pub struct StagedSecrets {
    kind: SecretKind,
    secrets: HashMap<String, BTreeMap<Name, Entry>>,
}

impl StagedSecrets {
    pub fn new(kind: SecretKind) -> Self {
        Self { kind, secrets: HashMap::new() }
    }

    pub fn kind(&self) -> SecretKind {
        self.kind
    }

    /// Stages one Secret of `namespace` (the same [`Entry`] the index makes of a watch event); one of another kind
    /// or type is ignored, and a later one of the same name wins.
    pub fn add(&mut self, namespace: &str, reduced: Reduced) {
        let Ok((name, entry)) = Entry::of(reduced) else { return };
        if entry.kind() != self.kind {
            return;
        }
        // One key per namespace, not one per Secret.
        match self.secrets.get_mut(namespace) {
            Some(entries) => {
                entries.insert(shared_name(&name), entry);
            }
            None => {
                self.secrets.insert(namespace.to_string(), BTreeMap::from([(shared_name(&name), entry)]));
            }
        }
    }

    /// The number of Secrets staged.
    pub fn len(&self) -> usize {
        self.secrets.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

/// The key of the view of a namespace the index does not know (no labels, no Secrets): no namespace has an
/// empty name.
pub const UNSEEN_NAMESPACE: &str = "";

/// Namespaces whose snapshot is out of date, in the order they became so; each at most once.
#[derive(Debug, Default)]
struct DirtyQueue {
    queue: VecDeque<Dirty>,
    queued: HashSet<String>,
}

/// A namespace whose snapshot is out of date since `since`, by changes from number `change` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirty {
    pub namespace: String,
    pub since: Instant,
    pub change: u64,
}

/// All candidates and namespace labels, and which namespaces' snapshots are out of date.
#[derive(Debug, Default)]
pub struct CredentialIndex {
    limits: IndexLimits,
    secrets: HashMap<String, BTreeMap<Name, Entry>>,
    /// Names taken by Secrets of other types, by name, with their namespaces.
    others: HashMap<String, BTreeSet<String>>,
    /// Cluster mode: `others` only knows the names it was told about, each once its list completed (`others_listed`);
    /// until then a distribution of that name is not offered. Off: `others` holds every Secret of another type.
    others_by_name: bool,
    others_listed: HashSet<String>,
    /// Each known namespace: its labels, and whether it is terminating.
    namespaces: HashMap<String, (Labels, bool)>,
    distributions: BTreeMap<String, Distribution>,
    distributions_listed: bool,
    candidate_count: usize,
    /// Of those, the candidates the kubelet cannot decode (a Pod hears of one only when it lists it).
    undecodable_count: usize,
    dirty: DirtyQueue,
    /// The number of the change in progress (see [`CredentialIndex::start_change`]).
    change: u64,
    /// Bumped whenever the set of target names or of their lists changes.
    distribution_epoch: u64,
}

impl CredentialIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_limits(limits: IndexLimits) -> Self {
        Self { limits, ..Self::default() }
    }

    pub fn limits(&self) -> &IndexLimits {
        &self.limits
    }

    /// The number of the last change started.
    pub fn change_number(&self) -> u64 {
        self.change
    }

    /// Goes on numbering changes from `change` (an index that replaces another).
    pub fn continue_changes_from(&mut self, change: u64) {
        self.change = self.change.max(change);
    }

    /// Numbers the changes that follow (the dirty namespaces remember the first change that made them so).
    pub fn start_change(&mut self) -> u64 {
        self.change += 1;
        self.change
    }

    /// Secrets of types other than pull Secrets are learnt per name (cluster mode: one watch per `targetName`,
    /// [`CredentialIndex::replace_other_secrets_named`]), not from every Secret.
    pub fn learn_other_secrets_by_name(&mut self) {
        if !self.others_by_name {
            self.others_by_name = true;
            self.distribution_epoch += 1;
            self.touch_all();
        }
    }

    // --- Secrets ----------------------------------------------------------------------------------------------

    /// Adds or replaces a Secret, of any type: a pull Secret becomes a candidate; a Secret the kubelet finds no
    /// credential in (another type, or an empty payload) only takes its name.
    pub fn apply_secret(&mut self, secret: &Secret) {
        let (Some(ns), Some(reduced)) = (&secret.metadata.namespace, Reduced::of(secret, &self.limits)) else {
            return;
        };
        self.apply_reduced(ns, reduced);
    }

    /// [`CredentialIndex::apply_secret`] for a Secret already reduced.
    pub fn apply_reduced(&mut self, namespace: &str, reduced: Reduced) {
        match Entry::of(reduced) {
            Err(name) => {
                self.remove_entry(namespace, &name, None);
                self.apply_other_secret(namespace, &name);
            }
            Ok((name, entry)) => {
                self.remove_other(namespace, &name);
                self.set_entry(namespace, &name, Some(entry));
            }
        }
    }

    /// Removes a Secret whatever its type.
    pub fn delete_secret(&mut self, namespace: &str, name: &str) {
        self.remove_entry(namespace, name, None);
        self.remove_other(namespace, name);
    }

    /// Removes a pull Secret of `kind` (a watch of that type saw it go): a Secret of that name with another type,
    /// seen since by another watch, stays.
    pub fn delete_secret_of_kind(&mut self, kind: SecretKind, namespace: &str, name: &str) {
        self.remove_entry(namespace, name, Some(kind));
    }

    /// A Secret of another type takes `name` in `namespace`.
    pub fn apply_other_secret(&mut self, namespace: &str, name: &str) {
        if self.others.entry(name.to_string()).or_default().insert(namespace.to_string()) {
            self.touch_if_target(namespace, name);
        }
    }

    /// A Secret of another type named `name` left `namespace`.
    pub fn delete_other_secret(&mut self, namespace: &str, name: &str) {
        self.remove_other(namespace, name);
    }

    /// Every Secret of another type named `name` (one list of the watch of that name); the name counts as known
    /// from now on.
    pub fn replace_other_secrets_named(&mut self, name: &str, namespaces: impl IntoIterator<Item = String>) {
        let new: BTreeSet<String> = namespaces.into_iter().collect();
        let old = self.others.remove(name).unwrap_or_default();
        for ns in old.symmetric_difference(&new) {
            self.touch_if_target(ns, name);
        }
        if !new.is_empty() {
            self.others.insert(name.to_string(), new);
        }
        if self.others_listed.insert(name.to_string()) {
            self.distribution_epoch += 1;
            self.touch_all_for_target(name);
        }
    }

    /// Forgets what is known of Secrets of other types named `name` (no distribution uses that name any more).
    pub fn forget_other_secrets_named(&mut self, name: &str) {
        for ns in self.others.remove(name).unwrap_or_default() {
            self.touch(&ns);
        }
        if self.others_listed.remove(name) {
            self.distribution_epoch += 1;
        }
    }

    /// Replaces every Secret of other types at once (local mode: the objects of a directory or of the command
    /// line), given as (namespace, name).
    pub fn replace_other_secrets(&mut self, secrets: impl IntoIterator<Item = (String, String)>) {
        for (name, namespaces) in std::mem::take(&mut self.others) {
            for ns in namespaces {
                self.touch_if_target(&ns, &name);
            }
        }
        for (ns, name) in secrets {
            self.apply_other_secret(&ns, &name);
        }
    }

    /// Replaces every Secret of one kind at once (a relist of that kind's watch). Each kind has its own watch (a
    /// field selector takes one `type`), so a relist of one leaves the other alone.
    pub fn replace_secrets<'a>(&mut self, kind: SecretKind, secrets: impl IntoIterator<Item = &'a Secret>) {
        let mut staged = StagedSecrets::new(kind);
        for secret in secrets.into_iter().filter(|s| s.type_.as_deref() == Some(kind.secret_type())) {
            if let (Some(ns), Some(reduced)) = (secret.metadata.namespace.as_deref(), Reduced::of(secret, &self.limits))
            {
                staged.add(ns, reduced);
            }
        }
        self.replace_staged(staged);
    }

    /// Replaces every Secret of the staged kind with the staged ones (a relist of that kind's watch, which stages
    /// each Secret as it arrives): in one change, so readers see the index before or after the relist, never
    /// halfway.
    pub fn replace_staged(&mut self, staged: StagedSecrets) {
        let StagedSecrets { kind, secrets: new } = staged;
        // Old entries of this kind that are gone or changed, then the new ones.
        let namespaces: Vec<String> = self.secrets.keys().cloned().collect();
        for ns in namespaces {
            let keep = new.get(&ns);
            let stale: Vec<Name> = self.secrets[&ns]
                .iter()
                .filter(|(name, e)| e.kind() == kind && keep.is_none_or(|k| !k.contains_key(&**name)))
                .map(|(name, _)| name.clone())
                .collect();
            for name in stale {
                self.set_entry(&ns, &name, None);
            }
        }
        for (ns, entries) in new {
            if self.secrets.contains_key(&ns) {
                for (name, entry) in entries {
                    self.set_entry(&ns, &name, Some(entry));
                }
                continue;
            }
            // A namespace without Secrets in the index (every namespace on the first list): the staged map moves in
            // whole, which is what `set_entry` would build entry by entry, without a second copy of it at the peak.
            for entry in entries.values() {
                self.count((0, 0), Self::counts(Some(entry)));
            }
            let sourced = self.distributions_sourced_from(&ns, |name| entries.contains_key(name));
            self.secrets.insert(ns.clone(), entries);
            self.touch(&ns);
            self.refresh_offers(sourced);
        }
    }

    // --- Namespaces and distributions ---------------------------------------------------------------------------

    /// Adds or replaces a Namespace (its labels decide opt-out and distribution).
    pub fn apply_namespace(&mut self, namespace: &Namespace) {
        let Some(name) = &namespace.metadata.name else { return };
        let facts = namespace_facts(namespace);
        if self.namespaces.get(name) != Some(&facts) {
            self.namespaces.insert(name.clone(), facts);
            self.touch(name);
        }
    }

    pub fn delete_namespace(&mut self, name: &str) {
        if self.namespaces.remove(name).is_some() {
            self.touch(name);
        }
    }

    pub fn apply_cluster_pull_secret(&mut self, cps: &ClusterPullSecret) {
        let Some(name) = cps.metadata.name.clone() else { return };
        self.distributions.insert(name, Distribution::of(cps));
        self.distributions_changed();
    }

    pub fn delete_cluster_pull_secret(&mut self, name: &str) {
        if self.distributions.remove(name).is_some() {
            self.distributions_changed();
        }
    }

    /// Replaces every Namespace at once (a relist).
    pub fn replace_namespaces<'a>(&mut self, namespaces: impl IntoIterator<Item = &'a Namespace>) {
        self.replace_namespace_facts(NamespaceFacts::of_all(namespaces.into_iter().cloned()));
    }

    /// Replaces every Namespace at once with what a relist delivered, reduced as it arrived ([`NamespaceFacts`]).
    pub fn replace_namespace_facts(&mut self, facts: NamespaceFacts) {
        let new = facts.0;
        let changed: Vec<String> = self
            .namespaces
            .iter()
            .filter(|(name, labels)| new.get(*name) != Some(labels))
            .map(|(name, _)| name.clone())
            .chain(
                new.iter().filter(|(name, labels)| self.namespaces.get(*name) != Some(labels)).map(|(n, _)| n.clone()),
            )
            .collect();
        self.namespaces = new;
        for ns in changed {
            self.touch(&ns);
        }
    }

    /// Replaces every ClusterPullSecret at once (a relist); the distributions count as known from now on.
    pub fn replace_cluster_pull_secrets<'a>(&mut self, all: impl IntoIterator<Item = &'a ClusterPullSecret>) {
        self.distributions.clear();
        for cps in all {
            let Some(name) = cps.metadata.name.clone() else { continue };
            self.distributions.insert(name, Distribution::of(cps));
        }
        self.distributions_listed = true;
        self.distributions_changed();
    }

    // --- Reading ------------------------------------------------------------------------------------------------

    /// Number of candidate Secrets held (for metrics).
    pub fn secret_count(&self) -> usize {
        self.candidate_count
    }

    /// Number of candidate Secrets the kubelet cannot decode (for metrics: no Pod hears of them unless it lists
    /// them, docs/matching.md).
    pub fn undecodable_count(&self) -> usize {
        self.undecodable_count
    }

    pub fn namespace_count(&self) -> usize {
        self.namespaces.len()
    }

    pub fn distribution_count(&self) -> usize {
        self.distributions.len()
    }

    /// The snapshot of one namespace, built now (`mutate`, `explain`, tests); `serve` publishes snapshots instead.
    pub fn view(&self, namespace: &str) -> Arc<NamespaceCredentials> {
        Arc::new(self.view_inputs(namespace).build().view)
    }

    /// Whether the index knows anything of `namespace` (Secrets or labels); an unknown one is seen as
    /// [`UNSEEN_NAMESPACE`].
    pub fn knows(&self, namespace: &str) -> bool {
        namespace == UNSEEN_NAMESPACE
            || self.secrets.contains_key(namespace)
            || self.namespaces.contains_key(namespace)
            || self.others.values().any(|namespaces| namespaces.contains(namespace))
    }

    /// What building one namespace's snapshot needs, taken out of the index (shared `Arc`s, no key copied), so
    /// that the build runs without holding whatever guards the index.
    pub fn view_inputs(&self, namespace: &str) -> ViewInputs {
        let (labels, terminating) = self.namespaces.get(namespace).cloned().unwrap_or_default();
        let mut own = Vec::new();
        let mut taken = BTreeSet::new();
        for (name, entry) in self.secrets.get(namespace).into_iter().flatten() {
            match entry {
                Entry::Candidate { secret, over } => own.push((secret.clone(), over.as_deref().copied())),
                Entry::Ignored(_) => {
                    taken.insert(&**name);
                }
            }
        }
        let mut distributed: Vec<(Arc<CandidateSecret>, Option<OverLimit>)> = Vec::new();
        for d in self.distributions.values() {
            let Some((offered, over)) = &d.offered else { continue };
            let target = d.target_name.as_str();
            let shadowed = own.binary_search_by(|(s, _)| s.name.as_str().cmp(target)).is_ok()
                || taken.contains(target)
                || self.others.get(target).is_some_and(|namespaces| namespaces.contains(namespace))
                // Until the webhook knows whether a Secret of another type holds the name, it does not offer it.
                || (self.others_by_name && !self.others_listed.contains(target))
                || distributed.iter().any(|(s, _)| s.name == target);
            if !shadowed && d.selects(&labels, terminating) {
                distributed.push((offered.clone(), *over));
            }
        }
        ViewInputs { labels, own, distributed, limits: self.limits }
    }

    /// Namespaces a ClusterPullSecret selects (`explain`): known namespaces it selects ([`cluster_pull_secret::selects`]).
    pub fn selected_namespaces(&self, cluster_pull_secret: &str) -> Vec<String> {
        let selector = self.distributions.get(cluster_pull_secret).and_then(|d| d.selector.as_ref());
        selector.map_or_else(Vec::new, |selector| self.namespaces_selected_by(selector).into_iter().collect())
    }

    /// The known namespaces `selector` selects ([`cluster_pull_secret::selects`]): where the controller puts copies.
    /// The index holds each Namespace's labels once per replica, for admission and for the controller.
    pub fn namespaces_selected_by(&self, selector: &Selector) -> BTreeSet<String> {
        self.namespaces
            .iter()
            .filter(|(_, (labels, terminating))| cluster_pull_secret::selects(selector, labels, *terminating))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The `targetName`s of the distributions (each needs a watch of the Secrets of other types of that name).
    pub fn target_names(&self) -> BTreeSet<String> {
        self.distributions.values().map(|d| d.target_name.clone()).filter(|n| !n.is_empty()).collect()
    }

    /// Every distribution is known and, in cluster mode, so is every Secret of another type holding one of their
    /// names: only then can a distributed credential be offered wherever it is due.
    pub fn distributions_ready(&self) -> bool {
        self.distributions_listed
            && (!self.others_by_name || self.target_names().iter().all(|n| self.others_listed.contains(n)))
    }

    /// Marks the distributions as known without any (the ClusterPullSecret CRD is not installed).
    pub fn no_distributions(&mut self) {
        self.replace_cluster_pull_secrets(std::iter::empty());
    }

    /// Changes whenever [`CredentialIndex::target_names`] or [`CredentialIndex::distributions_ready`] may have.
    pub fn distribution_epoch(&self) -> u64 {
        self.distribution_epoch
    }

    // --- The dirty queue ----------------------------------------------------------------------------------------

    /// The namespace whose snapshot has been out of date longest, taken off the queue. A namespace changed again
    /// meanwhile comes back once, at the end of the queue: a namespace that changes all the time is rebuilt once
    /// per round, and every other one waits at most one round.
    pub fn next_dirty(&mut self) -> Option<Dirty> {
        let dirty = self.dirty.queue.pop_front()?;
        self.dirty.queued.remove(&dirty.namespace);
        Some(dirty)
    }

    /// The oldest out-of-date snapshot: since when, and from which change on.
    pub fn oldest_dirty(&self) -> Option<(Instant, u64)> {
        self.dirty.queue.front().map(|d| (d.since, d.change))
    }

    pub fn dirty_count(&self) -> usize {
        self.dirty.queue.len()
    }

    /// Takes every namespace off the queue (their snapshots were all rebuilt at once).
    pub fn clear_dirty(&mut self) {
        self.dirty = DirtyQueue::default();
    }

    /// Every namespace the index knows, plus [`UNSEEN_NAMESPACE`].
    pub fn known_namespaces(&self) -> BTreeSet<String> {
        self.secrets
            .keys()
            .chain(self.namespaces.keys())
            .chain(self.others.values().flatten())
            .cloned()
            .chain(std::iter::once(UNSEEN_NAMESPACE.to_string()))
            .collect()
    }

    fn touch(&mut self, namespace: &str) {
        if self.dirty.queued.insert(namespace.to_string()) {
            self.dirty.queue.push_back(Dirty {
                namespace: namespace.to_string(),
                since: Instant::now(),
                change: self.change,
            });
        }
    }

    fn touch_all(&mut self) {
        for ns in self.known_namespaces() {
            self.touch(&ns);
        }
    }

    /// A change of what holds `name` in `namespace` matters to that namespace only if a distribution uses the name.
    fn touch_if_target(&mut self, namespace: &str, name: &str) {
        if !self.others_by_name || self.distributions.values().any(|d| d.target_name == name) {
            self.touch(namespace);
        }
    }

    fn touch_all_for_target(&mut self, name: &str) {
        if self.distributions.values().any(|d| d.target_name == name) {
            self.touch_all();
        }
    }

    fn distributions_changed(&mut self) {
        let ids: Vec<String> = self.distributions.keys().cloned().collect();
        for id in ids {
            self.refresh_offer(&id);
        }
        self.distribution_epoch += 1;
        self.touch_all();
    }

    /// Recomputes what a distribution offers from its source.
    fn refresh_offer(&mut self, id: &str) {
        let Some(d) = self.distributions.get(id) else { return };
        let offered = match self.secrets.get(&d.source.0).and_then(|m| m.get(d.source.1.as_str())) {
            Some(Entry::Candidate { secret, over }) if !d.target_name.is_empty() => Some((
                Arc::new(CandidateSecret {
                    name: d.target_name.clone(),
                    kind: secret.kind,
                    keys: secret.keys.clone(),
                    origin: Origin::Distributed { cluster_pull_secret: id.to_string() },
                    service_account: None,
                    over_limit: secret.over_limit,
                    expires_at: secret.expires_at,
                }),
                over.as_deref().copied(),
            )),
            _ => None,
        };
        if let Some(d) = self.distributions.get_mut(id) {
            d.offered = offered;
        }
    }

    fn set_entry(&mut self, namespace: &str, name: &str, entry: Option<Entry>) {
        let (old, new) = match entry {
            Some(entry) => {
                let map = self.secrets.entry(namespace.to_string()).or_default();
                let old = map.insert(shared_name(name), entry);
                (old, map.get(name))
            }
            None => {
                let map = self.secrets.get_mut(namespace);
                let old = map.and_then(|m| m.remove(name));
                if self.secrets.get(namespace).is_some_and(BTreeMap::is_empty) {
                    self.secrets.remove(namespace);
                }
                (old, None)
            }
        };
        let is = Self::counts(new);
        self.count(Self::counts(old.as_ref()), is);
        self.touch(namespace);
        let sourced = self.distributions_sourced_from(namespace, |source| source == name);
        self.refresh_offers(sourced);
    }

    /// Updates `candidate_count` and `undecodable_count` for an entry that was `was` and is `is` ([`Self::counts`]).
    fn count(&mut self, was: (usize, usize), is: (usize, usize)) {
        self.candidate_count = self.candidate_count + is.0 - was.0;
        self.undecodable_count = self.undecodable_count + is.1 - was.1;
    }

    /// (candidate, undecodable candidate) as 0 or 1.
    fn counts(entry: Option<&Entry>) -> (usize, usize) {
        match entry {
            Some(Entry::Candidate { secret, .. }) => (1, usize::from(secret.keys.is_err())),
            _ => (0, 0),
        }
    }

    /// The distributions whose source is a Secret of `namespace` whose name satisfies `name`.
    fn distributions_sourced_from(&self, namespace: &str, name: impl Fn(&str) -> bool) -> Vec<String> {
        self.distributions
            .iter()
            .filter(|(_, d)| d.source.0 == namespace && name(&d.source.1))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The sources of `distributions` changed: their offers are read again, and every namespace they reach is out of
    /// date.
    fn refresh_offers(&mut self, distributions: Vec<String>) {
        if !distributions.is_empty() {
            for id in distributions {
                self.refresh_offer(&id);
            }
            self.touch_all();
        }
    }

    /// Removes the entry of `name` (only if of `kind`, when given).
    fn remove_entry(&mut self, namespace: &str, name: &str, kind: Option<SecretKind>) {
        let present =
            self.secrets.get(namespace).and_then(|m| m.get(name)).is_some_and(|e| kind.is_none_or(|k| e.kind() == k));
        if present {
            self.set_entry(namespace, name, None);
        }
    }

    fn remove_other(&mut self, namespace: &str, name: &str) {
        let Some(namespaces) = self.others.get_mut(name) else { return };
        if namespaces.remove(namespace) {
            if namespaces.is_empty() {
                self.others.remove(name);
            }
            self.touch_if_target(namespace, name);
        }
    }
}

impl Distribution {
    /// [`cluster_pull_secret::selects`]; a selector that cannot be parsed selects nothing.
    fn selects(&self, labels: &BTreeMap<String, String>, terminating: bool) -> bool {
        self.selector.as_ref().is_some_and(|s| cluster_pull_secret::selects(s, labels, terminating))
    }
}

/// What the index keeps of a Namespace: its labels and whether it is terminating.
fn namespace_facts(namespace: &Namespace) -> (Labels, bool) {
    facts(namespace.metadata.labels.clone(), namespace.metadata.deletion_timestamp.is_some())
}

fn facts(labels: Option<BTreeMap<String, String>>, terminating: bool) -> (Labels, bool) {
    (Arc::new(labels.unwrap_or_default()), terminating)
}

/// Namespaces of a (re)list as the index keeps them (name, labels, terminating), each reduced as it arrives: a list
/// of 10,000 Namespaces costs their labels, not 10,000 `Namespace` objects and a second copy of the labels.
#[derive(Debug, Default)]
pub struct NamespaceFacts(HashMap<String, (Labels, bool)>);

impl NamespaceFacts {
    /// Adds one Namespace (a later one of the same name wins); one without a name is ignored.
    pub fn add(&mut self, namespace: Namespace) {
        let metadata = namespace.metadata;
        let Some(name) = metadata.name else { return };
        self.0.insert(name, facts(metadata.labels, metadata.deletion_timestamp.is_some()));
    }

    fn of_all(namespaces: impl IntoIterator<Item = Namespace>) -> Self {
        let mut facts = Self::default();
        for namespace in namespaces {
            facts.add(namespace);
        }
        facts
    }
}

/// What one namespace's snapshot is built from ([`CredentialIndex::view_inputs`]).
#[derive(Debug, Clone)]
pub struct ViewInputs {
    labels: Labels,
    /// The namespace's own candidates, sorted by name, with the bound each one exceeded.
    own: Vec<(Arc<CandidateSecret>, Option<OverLimit>)>,
    /// The distributed credentials it gets (none of them shadowed), in ClusterPullSecret order.
    distributed: Vec<(Arc<CandidateSecret>, Option<OverLimit>)>,
    limits: IndexLimits,
}

/// A built snapshot, and the candidates a bound left without keys.
#[derive(Debug)]
pub struct BuiltView {
    pub view: NamespaceCredentials,
    /// (candidate name, bound), sorted by name.
    pub over_limit: Vec<(String, OverLimit)>,
}

impl ViewInputs {
    /// The namespace's snapshot: O(k log k) in its keys, at most `max_keys_per_namespace` of them.
    pub fn build(self) -> BuiltView {
        let mut budget = self.limits.max_keys_per_namespace;
        let mut over_limit = Vec::new();
        let mut secrets: Vec<Arc<CandidateSecret>> = Vec::with_capacity(self.own.len() + self.distributed.len());
        // Distributed credentials first (the platform's), then the namespace's own in name order.
        for (secret, over) in self.distributed.into_iter().chain(self.own) {
            if let Some(over) = over {
                over_limit.push((secret.name.clone(), over));
                budget = budget.saturating_sub(1);
                secrets.push(secret);
                continue;
            }
            let cost = secret.cost();
            if cost > budget {
                let size = cost;
                over_limit.push((
                    secret.name.clone(),
                    OverLimit { limit: Limit::KeysPerNamespace, size, max: self.limits.max_keys_per_namespace },
                ));
                budget = budget.saturating_sub(1);
                secrets.push(Arc::new(secret.without_keys(Limit::KeysPerNamespace)));
                continue;
            }
            budget -= cost;
            secrets.push(secret);
        }
        secrets.sort_by(|a, b| a.name.cmp(&b.name));
        over_limit.sort_by(|a, b| a.0.cmp(&b.0));
        BuiltView { view: NamespaceCredentials::new(self.labels, secrets), over_limit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cluster_pull_secret::{ClusterPullSecretSpec, SourceSecretRef};
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    pub(crate) fn docker_secret(ns: &str, name: &str, registry: &str) -> Secret {
        let json = format!(r#"{{"auths":{{"{registry}":{{"auth":"dXNlcjpwYXNz"}}}}}}"#);
        Secret {
            metadata: ObjectMeta { namespace: Some(ns.into()), name: Some(name.into()), ..Default::default() },
            type_: Some("kubernetes.io/dockerconfigjson".into()),
            data: Some([(".dockerconfigjson".to_string(), ByteString(json.into_bytes()))].into()),
            ..Default::default()
        }
    }

    fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn cps(name: &str, labels: &[(&str, &str)], target: Option<&str>) -> ClusterPullSecret {
        ClusterPullSecret::new(
            name,
            ClusterPullSecretSpec {
                secret_ref: SourceSecretRef { namespace: "platform".into(), name: "corp".into() },
                namespace_selector: LabelSelector {
                    match_labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                    ..Default::default()
                },
                target_name: target.map(str::to_string),
            },
        )
    }

    #[test]
    fn only_pull_secret_types_with_their_key_are_candidates() {
        let good = docker_secret("ns", "a", "reg.example.com");
        assert_eq!(CandidateSecret::from_secret(&good).unwrap().keys, Ok(vec!["reg.example.com".to_string()]));
        let mut opaque = good.clone();
        opaque.type_ = Some("Opaque".into());
        assert_eq!(CandidateSecret::from_secret(&opaque), None, "R2: other types are ignored");
        let mut wrong_key = good.clone();
        wrong_key.type_ = Some("kubernetes.io/dockercfg".into());
        assert_eq!(CandidateSecret::from_secret(&wrong_key), None, "R2: key does not match type");
        let mut empty = good.clone();
        empty.data = Some([(".dockerconfigjson".to_string(), ByteString(vec![]))].into());
        assert_eq!(CandidateSecret::from_secret(&empty), None, "R1: empty payload");
    }

    #[test]
    fn undecodable_secret_is_kept_with_its_reason() {
        let mut bad = docker_secret("ns", "bad", "reg.example.com");
        bad.data = Some(
            [(".dockerconfigjson".to_string(), ByteString(br#"{"auths":{"r.io":{"auth":"pants"}}}"#.to_vec()))].into(),
        );
        let c = CandidateSecret::from_secret(&bad).unwrap();
        assert!(!c.is_decodable());
        assert!(!c.keys.unwrap_err().contains("pants"), "never echo the auth value");
    }

    #[test]
    fn string_data_wins_over_data() {
        let mut s = docker_secret("ns", "a", "old.example.com");
        s.string_data =
            Some([(".dockerconfigjson".to_string(), r#"{"auths":{"new.example.com":{}}}"#.to_string())].into());
        assert_eq!(CandidateSecret::from_secret(&s).unwrap().keys, Ok(vec!["new.example.com".into()]));
    }

    #[test]
    fn snapshots_follow_changes_and_stay_per_namespace() {
        let mut index = CredentialIndex::new();
        index.apply_secret(&docker_secret("a", "s1", "reg.example.com"));
        index.apply_secret(&docker_secret("b", "s2", "reg.example.com"));
        let before = index.view("a");
        assert_eq!(before.secrets.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["s1"]);
        index.delete_secret("a", "s1");
        assert!(index.view("a").secrets.is_empty());
        assert_eq!(before.secrets.len(), 1, "an old snapshot is immutable");
        assert_eq!(index.view("b").secrets.len(), 1);
        // A Secret that changes to another type stops being a candidate.
        let mut now_opaque = docker_secret("b", "s2", "reg.example.com");
        now_opaque.type_ = Some("Opaque".into());
        index.apply_secret(&now_opaque);
        assert!(index.view("b").secrets.is_empty());
    }

    #[test]
    fn distribution_follows_selector_opt_out_and_shadowing() {
        let mut index = CredentialIndex::new();
        index.apply_secret(&docker_secret("platform", "corp", "corp.example.com"));
        index.apply_namespace(&namespace("t1", &[("tier", "internal")]));
        index.apply_namespace(&namespace("t2", &[("tier", "external")]));
        index.apply_namespace(&namespace("t3", &[("tier", "internal"), (pod::INJECT_LABEL, pod::INJECT_DISABLED)]));
        index.apply_cluster_pull_secret(&cps("corp-registry", &[("tier", "internal")], None));

        let t1 = index.view("t1");
        let c = t1.get("corp-registry").expect("selected namespace gets the credential");
        assert_eq!(c.origin, Origin::Distributed { cluster_pull_secret: "corp-registry".into() });
        assert_eq!(c.keys, Ok(vec!["corp.example.com".into()]));
        assert!(index.view("t2").get("corp-registry").is_none(), "not selected");
        assert!(index.view("t3").get("corp-registry").is_none(), "namespace opted out");
        assert_eq!(index.selected_namespaces("corp-registry"), ["t1"]);

        // A tenant's own Secret of that name shadows the distributed one (it is what the kubelet reads).
        index.apply_secret(&docker_secret("t1", "corp-registry", "tenant.example.com"));
        assert_eq!(index.view("t1").get("corp-registry").unwrap().origin, Origin::Namespace);

        // Relabelling a namespace moves the distribution with it.
        index.apply_namespace(&namespace("t2", &[("tier", "internal")]));
        assert!(index.view("t2").get("corp-registry").is_some());

        // Rotation of the source reaches every copy's candidate.
        index.apply_secret(&docker_secret("platform", "corp", "corp2.example.com"));
        assert_eq!(index.view("t2").get("corp-registry").unwrap().keys, Ok(vec!["corp2.example.com".into()]));

        // A terminating namespace is selected by neither the index nor the controller (one rule).
        let mut terminating = namespace("t2", &[("tier", "internal")]);
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()));
        index.apply_namespace(&terminating);
        assert!(index.view("t2").get("corp-registry").is_none(), "terminating");
        assert_eq!(index.selected_namespaces("corp-registry"), ["t1"]);
        index.apply_namespace(&namespace("t2", &[("tier", "internal")]));

        index.delete_cluster_pull_secret("corp-registry");
        assert!(index.view("t2").get("corp-registry").is_none());
    }

    #[test]
    fn target_name_and_empty_selector() {
        let mut index = CredentialIndex::new();
        index.apply_secret(&docker_secret("platform", "corp", "corp.example.com"));
        index.apply_namespace(&namespace("any", &[]));
        index.apply_cluster_pull_secret(&cps("c", &[], Some("pull-corp")));
        assert!(index.view("any").get("pull-corp").is_some(), "{{}} selects every namespace");
        assert!(
            index.view("not-seen-yet").get("pull-corp").is_some(),
            "a namespace not seen yet has no labels, and {{}} selects it too"
        );
        index.apply_cluster_pull_secret(&cps("c", &[("tier", "internal")], Some("pull-corp")));
        assert!(index.view("not-seen-yet").get("pull-corp").is_none());
    }

    /// A dockerconfigjson Secret the kubelet cannot decode (`auth` is not base64).
    fn broken(ns: &str, name: &str) -> Secret {
        secret_of_type(
            ns,
            name,
            "kubernetes.io/dockerconfigjson",
            &[(".dockerconfigjson", b"{\"auths\":{\"r.io\":{\"auth\":\"!\"}}}")],
        )
    }

    fn secret_of_type(ns: &str, name: &str, type_: &str, data: &[(&str, &[u8])]) -> Secret {
        Secret {
            metadata: ObjectMeta { namespace: Some(ns.into()), name: Some(name.into()), ..Default::default() },
            type_: Some(type_.into()),
            data: Some(data.iter().map(|(k, v)| (k.to_string(), ByteString(v.to_vec()))).collect()),
            ..Default::default()
        }
    }

    fn names(view: &NamespaceCredentials) -> Vec<(&str, bool)> {
        view.secrets.iter().map(|s| (s.name.as_str(), matches!(s.origin, Origin::Distributed { .. }))).collect()
    }

    /// Issue 11, class 8: a name counts only when the Secret behind it is a decodable pull Secret. Whatever a
    /// tenant puts under a distribution's `targetName` in its namespace is what the kubelet reads there, so the
    /// distributed credential is offered only where no Secret of that name exists yet (the race rule).
    #[test]
    fn a_distributed_name_is_offered_only_where_no_secret_of_that_name_exists() {
        let json = b"{\"auths\":{\"tenant.example.com\":{}}}";
        type Row<'a> = (&'a str, Option<Secret>, Vec<(&'a str, bool)>);
        let rows: Vec<Row> = vec![
            ("no Secret of that name yet: the race rule offers it", None, vec![("corp-registry", true)]),
            (
                "an Opaque Secret of that name",
                Some(secret_of_type("t1", "corp-registry", "Opaque", &[(".dockerconfigjson", json)])),
                vec![],
            ),
            (
                "a TLS Secret of that name",
                Some(secret_of_type(
                    "t1",
                    "corp-registry",
                    "kubernetes.io/tls",
                    &[("tls.crt", b"x"), ("tls.key", b"y")],
                )),
                vec![],
            ),
            (
                "a dockerconfigjson Secret of that name without its payload",
                Some(secret_of_type("t1", "corp-registry", "kubernetes.io/dockerconfigjson", &[])),
                vec![],
            ),
            (
                "a dockerconfigjson Secret of that name with an empty payload",
                Some(secret_of_type(
                    "t1",
                    "corp-registry",
                    "kubernetes.io/dockerconfigjson",
                    &[(".dockerconfigjson", b"")],
                )),
                vec![],
            ),
            (
                "a dockercfg Secret of that name with the other type's key",
                Some(secret_of_type("t1", "corp-registry", "kubernetes.io/dockercfg", &[(".dockerconfigjson", json)])),
                vec![],
            ),
            (
                "the tenant's own pull Secret of that name: it, not the distribution",
                Some(secret_of_type(
                    "t1",
                    "corp-registry",
                    "kubernetes.io/dockerconfigjson",
                    &[(".dockerconfigjson", json)],
                )),
                vec![("corp-registry", false)],
            ),
            (
                "an Opaque Secret of another name",
                Some(secret_of_type("t1", "unrelated", "Opaque", &[("k", b"v")])),
                vec![("corp-registry", true)],
            ),
            (
                "an Opaque Secret of that name in another namespace",
                Some(secret_of_type("t2", "corp-registry", "Opaque", &[("k", b"v")])),
                vec![("corp-registry", true)],
            ),
        ];
        for (what, tenant, expected) in rows {
            // Local mode (every Secret seen) and cluster mode (Secrets of other types learnt per target name).
            for by_name in [false, true] {
                let mut index = CredentialIndex::new();
                if by_name {
                    index.learn_other_secrets_by_name();
                }
                index.apply_secret(&docker_secret("platform", "corp", "corp.example.com"));
                index.apply_namespace(&namespace("t1", &[("tier", "internal")]));
                index.apply_namespace(&namespace("t2", &[("tier", "internal")]));
                index.replace_cluster_pull_secrets([&cps("corp", &[("tier", "internal")], Some("corp-registry"))]);
                if by_name {
                    assert!(
                        index.view("t1").get("corp-registry").is_none(),
                        "{what}: offered before its name is known"
                    );
                    assert!(!index.distributions_ready());
                    index.replace_other_secrets_named("corp-registry", []);
                    assert!(index.distributions_ready());
                }
                if let Some(secret) = &tenant {
                    match (by_name, secret.type_.as_deref()) {
                        // The name watch sees only other types, with their namespace.
                        (true, Some(t)) if !t.starts_with("kubernetes.io/docker") => {
                            if secret.metadata.name.as_deref() == Some("corp-registry") {
                                index
                                    .apply_other_secret(secret.metadata.namespace.as_deref().unwrap(), "corp-registry");
                            }
                        }
                        _ => index.apply_secret(secret),
                    }
                }
                assert_eq!(names(&index.view("t1")), expected, "{what} (by name: {by_name})");
                if let Some(secret) = &tenant {
                    // The tenant deletes it: the distribution is offered again.
                    let (ns, name) =
                        (secret.metadata.namespace.as_deref().unwrap(), secret.metadata.name.as_deref().unwrap());
                    index.delete_secret(ns, name);
                    assert_eq!(names(&index.view("t1")), [("corp-registry", true)], "{what}: deleted");
                }
            }
        }
    }

    /// Events of two watches about one name arrive in any order: the pull-Secret watch's delete of an old
    /// dockerconfigjson Secret does not remove the Opaque one that replaced it, and the other way round.
    #[test]
    fn deletes_from_one_watch_keep_what_another_watch_saw() {
        let mut index = CredentialIndex::new();
        index.learn_other_secrets_by_name();
        index.apply_secret(&docker_secret("platform", "corp", "corp.example.com"));
        index.apply_namespace(&namespace("t1", &[]));
        index.replace_cluster_pull_secrets([&cps("corp", &[], Some("corp-registry"))]);
        index.replace_other_secrets_named("corp-registry", []);
        // A pull Secret replaced by an Opaque one; the name watch reports first.
        index.apply_secret(&docker_secret("t1", "corp-registry", "tenant.example.com"));
        index.apply_other_secret("t1", "corp-registry");
        index.delete_secret_of_kind(SecretKind::DockerConfigJson, "t1", "corp-registry");
        assert!(index.view("t1").get("corp-registry").is_none(), "the Opaque Secret holds the name");
        // And back: the type watch reports the new pull Secret before the name watch reports the Opaque one gone.
        index.apply_secret(&docker_secret("t1", "corp-registry", "tenant.example.com"));
        index.delete_other_secret("t1", "corp-registry");
        let view = index.view("t1");
        let c = view.get("corp-registry").expect("the tenant's pull Secret");
        assert_eq!((c.origin.clone(), c.keys.clone()), (Origin::Namespace, Ok(vec!["tenant.example.com".into()])));
        // A name no distribution uses any more is forgotten.
        index.apply_other_secret("t1", "corp-registry");
        index.delete_cluster_pull_secret("corp");
        index.forget_other_secrets_named("corp-registry");
        assert!(index.target_names().is_empty() && index.distributions_ready());
    }

    fn docker_secret_with_keys(ns: &str, name: &str, keys: impl IntoIterator<Item = String>) -> Secret {
        let auths: serde_json::Map<String, serde_json::Value> =
            keys.into_iter().map(|k| (k, serde_json::json!({}))).collect();
        let json = serde_json::json!({ "auths": auths }).to_string();
        secret_of_type(ns, name, "kubernetes.io/dockerconfigjson", &[(".dockerconfigjson", json.as_bytes())])
    }

    /// Issue 11, class 12: a Secret over a bound is not indexed: a candidate without keys (never injected, the
    /// name still taken), reported with the bound, and nothing of it parsed.
    #[test]
    fn secrets_over_a_bound_are_kept_without_keys() {
        let limits = IndexLimits { max_secret_bytes: 4096, max_keys_per_secret: 10, max_keys_per_namespace: 25 };
        fn keys(prefix: &str, n: usize) -> Vec<String> {
            (0..n).map(|i| format!("{prefix}{i}.example.com")).collect()
        }
        let big = docker_secret_with_keys("t", "big", keys("b", 400));
        let many = docker_secret_with_keys("t", "many", keys("m", 11));
        let Some(Reduced::Candidate { candidate, over }) = Reduced::of(&big, &limits) else { panic!("a candidate") };
        assert_eq!((candidate.keys, over.map(|o| o.limit)), (Ok(vec![]), Some(Limit::SecretBytes)));
        let Some(Reduced::Candidate { candidate, over }) = Reduced::of(&many, &limits) else { panic!("a candidate") };
        assert_eq!(candidate.keys, Ok(vec![]));
        assert_eq!(over, Some(OverLimit { limit: Limit::KeysPerSecret, size: 11, max: 10 }));

        let mut index = CredentialIndex::with_limits(limits);
        index.apply_secret(&big);
        index.apply_secret(&many);
        // In name order: a (9) and b (9) fit, big counts one (6 left), c (9) and d (7) do not fit and count one
        // each (4 left), e (3) fits, many counts one.
        for (name, n) in [("a", 9), ("b", 9), ("c", 9), ("d", 7), ("e", 3)] {
            index.apply_secret(&docker_secret_with_keys("t", name, keys(name, n)));
        }
        let built = index.view_inputs("t").build();
        let over: Vec<(&str, Limit)> = built.over_limit.iter().map(|(n, o)| (n.as_str(), o.limit)).collect();
        assert_eq!(
            over,
            [
                ("big", Limit::SecretBytes),
                ("c", Limit::KeysPerNamespace),
                ("d", Limit::KeysPerNamespace),
                ("many", Limit::KeysPerSecret)
            ]
        );
        let view = built.view;
        assert_eq!(view.secrets.len(), 7, "every Secret keeps its name");
        assert_eq!(view.keys().keyring.len(), 9 + 9 + 3);
        for name in ["big", "many", "c", "d"] {
            assert_eq!(view.get(name).unwrap().keys, Ok(vec![]), "{name}");
        }
        // A tenant's over-bound Secret still holds the name of a distribution: the kubelet reads it, not the copy.
        index.apply_secret(&docker_secret("platform", "corp", "corp.example.com"));
        index.apply_cluster_pull_secret(&cps("corp", &[], Some("big")));
        assert_eq!(index.view("t").get("big").unwrap().origin, Origin::Namespace);
    }

    /// Issue 11, class 12: 60,000 keys in one Secret (the size of the attack), allowed by the bounds, build in one
    /// sort: the time the old one-by-one insertion took for 5,000.
    #[test]
    fn a_namespace_snapshot_builds_in_n_log_n() {
        let limits = IndexLimits {
            max_secret_bytes: usize::MAX,
            max_keys_per_secret: usize::MAX,
            max_keys_per_namespace: usize::MAX,
        };
        let mut index = CredentialIndex::with_limits(limits);
        index.apply_secret(&docker_secret_with_keys(
            "t",
            "huge",
            (0..60_000).map(|i| format!("r{i}.example.com:5000")),
        ));
        let started = Instant::now();
        let view = index.view("t");
        let took = started.elapsed();
        assert_eq!(view.keys().keyring.len(), 60_000);
        assert!(took < std::time::Duration::from_secs(30), "60,000 keys took {took:?}");
    }

    /// Issue 11, class 13: the dirty queue is first in, first out and coalesces: a namespace changed 10,000 times
    /// is rebuilt once per round, and another namespace's change waits one round at most.
    #[test]
    fn a_flood_in_one_namespace_does_not_delay_another() {
        let mut index = CredentialIndex::new();
        index.start_change();
        for i in 0..5_000 {
            index.apply_secret(&docker_secret("flood", &format!("s{i}"), "flood.example.com"));
        }
        let b_change = index.start_change();
        index.apply_secret(&docker_secret("quiet", "new", "quiet.example.com"));
        for i in 5_000..10_000 {
            index.start_change();
            index.apply_secret(&docker_secret("flood", &format!("s{i}"), "flood.example.com"));
        }
        assert_eq!(index.dirty_count(), 2, "one entry per namespace");
        assert_eq!(index.next_dirty().map(|d| (d.namespace, d.change)), Some(("flood".into(), 1)));
        // The flood goes on while `flood` is rebuilt: it comes back after `quiet`.
        index.start_change();
        index.apply_secret(&docker_secret("flood", "s-late", "flood.example.com"));
        assert_eq!(index.next_dirty().map(|d| (d.namespace, d.change)), Some(("quiet".into(), b_change)));
        assert_eq!(index.next_dirty().map(|d| d.namespace), Some("flood".into()));
        assert_eq!(index.next_dirty(), None);
        assert_eq!(index.secret_count(), 10_002);
    }

    fn annotated(mut secret: Secret, account: &str) -> Secret {
        secret.metadata.annotations = Some([(SERVICE_ACCOUNT_ANNOTATION.to_string(), account.to_string())].into());
        secret
    }

    /// Issue 12 item 4: the binding is read from the annotation (empty means none), kept on the candidate and in
    /// the namespace's `bound` list, and not carried by a distributed credential (its copies have no such
    /// annotation); a Secret over a bound says which one.
    #[test]
    fn candidates_carry_their_service_account_and_bound() {
        let limits = IndexLimits { max_secret_bytes: 200, ..IndexLimits::default() };
        let mut index = CredentialIndex::with_limits(limits);
        index.apply_secret(&annotated(docker_secret("t", "builder-pull", "r.example.com"), "builder"));
        index.apply_secret(&annotated(docker_secret("t", "empty-binding", "r.example.com"), ""));
        index.apply_secret(&docker_secret("t", "plain", "r.example.com"));
        let big = docker_secret_with_keys("t", "big", (0..20).map(|i| format!("r{i}.example.com")));
        index.apply_secret(&annotated(big, "deployer"));
        index.apply_secret(&annotated(docker_secret("platform", "corp", "corp.example.com"), "builder"));
        index.apply_namespace(&namespace("t", &[]));
        index.apply_cluster_pull_secret(&cps("corp", &[], Some("corp-copy")));
        let view = index.view("t");
        let facts = |name: &str| {
            let c = view.get(name).unwrap();
            (c.service_account.as_deref().map(str::to_string), c.over_limit)
        };
        assert_eq!(facts("builder-pull"), (Some("builder".into()), None));
        assert_eq!(facts("empty-binding"), (None, None));
        assert_eq!(facts("plain"), (None, None));
        assert_eq!(facts("big"), (Some("deployer".into()), Some(Limit::SecretBytes)));
        assert_eq!(facts("corp-copy"), (None, None), "a copy carries no binding");
        let bound: Vec<&str> = view.keys().bound.iter().map(|&i| view.secrets[i as usize].name.as_str()).collect();
        assert_eq!(bound, ["big", "builder-pull"]);
        let from_secret = CandidateSecret::from_secret(&annotated(docker_secret("t", "x", "r.io"), "sa")).unwrap();
        assert_eq!(from_secret.service_account.as_deref(), Some("sa"));
    }

    /// The gauge of undecodable Secrets follows every change (no Pod hears of them unless it lists them).
    #[test]
    fn undecodable_secrets_are_counted() {
        let mut index = CredentialIndex::new();
        index.apply_secret(&broken("a", "x"));
        index.apply_secret(&broken("b", "x"));
        index.apply_secret(&docker_secret("a", "ok", "r.io"));
        assert_eq!((index.secret_count(), index.undecodable_count()), (3, 2));
        index.apply_secret(&broken("a", "x"));
        assert_eq!(index.undecodable_count(), 2, "re-applied, counted once");
        index.apply_secret(&docker_secret("a", "x", "r.io"));
        assert_eq!(index.undecodable_count(), 1, "fixed");
        index.delete_secret("b", "x");
        assert_eq!(index.undecodable_count(), 0);
        index.replace_secrets(SecretKind::DockerConfigJson, [&broken("c", "y"), &broken("c", "z")]);
        assert_eq!((index.secret_count(), index.undecodable_count()), (2, 2), "a relist");
    }

    /// A watch's relist, staged Secret by Secret as the list arrives, replaces the Secrets of its kind in one
    /// change: those gone since go, the other kind's stay, a later Secret of a name wins, another kind is not staged.
    #[test]
    fn a_staged_relist_replaces_the_secrets_of_its_kind() {
        let limits = IndexLimits::default();
        let reduce = |secret: &Secret| Reduced::of(secret, &limits).expect("named");
        let cfg = secret_of_type("a", "cfg", "kubernetes.io/dockercfg", &[(".dockercfg", b"{\"r.io\":{}}")]);
        let mut index = CredentialIndex::new();
        index.apply_secret(&docker_secret("a", "gone", "r.io"));
        index.apply_secret(&docker_secret("a", "kept", "r.io"));
        index.apply_secret(&cfg);
        assert_eq!(index.secret_count(), 3);
        let mut staged = StagedSecrets::new(SecretKind::DockerConfigJson);
        staged.add("a", reduce(&docker_secret("a", "kept", "old.io")));
        staged.add("a", reduce(&docker_secret("a", "kept", "new.io")));
        staged.add("b", reduce(&docker_secret("b", "new", "r.io")));
        staged.add("a", reduce(&cfg));
        assert_eq!(staged.len(), 2);
        index.replace_staged(staged);
        assert_eq!(index.secret_count(), 3);
        let a = index.view("a");
        assert_eq!(a.secrets.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["cfg", "kept"]);
        assert_eq!(a.get("kept").expect("kept").keys, Ok(vec!["new.io".to_string()]));
        assert!(index.view("b").get("new").is_some());
    }

    /// The first list moves each namespace's staged map into the index whole: the same index as applying every
    /// Secret in turn (counts, views, the distribution whose source is among them, the namespaces to rebuild).
    #[test]
    fn a_first_staged_list_is_the_index_its_secrets_make_one_by_one() {
        let limits = IndexLimits::default();
        let secrets = [
            docker_secret("platform", "corp", "corp.example.com"),
            docker_secret("t1", "a", "r.io"),
            docker_secret("t1", "b", "q.io"),
            broken("t1", "c"),
            docker_secret("t2", "a", "r.io"),
            secret_of_type("t2", "empty", "kubernetes.io/dockerconfigjson", &[]),
        ];
        let setup = || {
            let mut index = CredentialIndex::new();
            index.apply_namespace(&namespace("t1", &[("tier", "internal")]));
            index.apply_namespace(&namespace("t2", &[]));
            index.apply_cluster_pull_secret(&cps("corp-registry", &[("tier", "internal")], None));
            index.clear_dirty();
            index
        };
        let mut one_by_one = setup();
        for secret in &secrets {
            one_by_one.apply_secret(secret);
        }
        let mut staged_list = setup();
        let mut staged = StagedSecrets::new(SecretKind::DockerConfigJson);
        for secret in &secrets {
            staged.add(secret.metadata.namespace.as_deref().unwrap(), Reduced::of(secret, &limits).unwrap());
        }
        staged_list.replace_staged(staged);
        assert_eq!(
            (staged_list.secret_count(), staged_list.undecodable_count()),
            (one_by_one.secret_count(), one_by_one.undecodable_count())
        );
        assert_eq!((staged_list.secret_count(), staged_list.undecodable_count()), (5, 1));
        let dirty = |index: &mut CredentialIndex| {
            let mut dirty = BTreeSet::new();
            while let Some(d) = index.next_dirty() {
                dirty.insert(d.namespace);
            }
            dirty
        };
        for ns in ["platform", "t1", "t2", "t3"] {
            assert_eq!(staged_list.view(ns), one_by_one.view(ns), "{ns}");
        }
        assert!(staged_list.view("t1").get("corp-registry").is_some(), "the distribution's source was staged");
        assert_eq!(dirty(&mut staged_list), dirty(&mut one_by_one));
    }

    /// The same Secret in two namespaces is one candidate in the index; another name or key is not shared, and
    /// sharing changes nothing that is read.
    #[test]
    fn equal_candidates_of_different_namespaces_share_one_allocation() {
        let mut index = CredentialIndex::new();
        index.apply_secret(&docker_secret("t1", "regcred", "registry.corp.example"));
        index.apply_secret(&docker_secret("t2", "regcred", "registry.corp.example"));
        index.apply_secret(&docker_secret("t3", "regcred", "other.corp.example"));
        index.apply_secret(&docker_secret("t4", "pull", "registry.corp.example"));
        fn candidate(index: &CredentialIndex, ns: &str) -> Arc<CandidateSecret> {
            index.view(ns).secrets[0].clone()
        }
        assert!(Arc::ptr_eq(&candidate(&index, "t1"), &candidate(&index, "t2")));
        assert!(!Arc::ptr_eq(&candidate(&index, "t1"), &candidate(&index, "t3")));
        assert!(!Arc::ptr_eq(&candidate(&index, "t1"), &candidate(&index, "t4")));
        assert_eq!(candidate(&index, "t2").keys, Ok(vec!["registry.corp.example".to_string()]));
        index.apply_secret(&docker_secret("t1", "regcred", "rotated.corp.example"));
        assert_eq!(candidate(&index, "t1").keys, Ok(vec!["rotated.corp.example".to_string()]));
        assert_eq!(
            candidate(&index, "t2").keys,
            Ok(vec!["registry.corp.example".to_string()]),
            "the other copy is intact"
        );
    }
}
