//! What the decision may inject in a namespace: its pull Secrets (registry keys only, never credentials) plus the
//! credentials `ClusterPullSecret`s distribute to it, and the namespace's labels.
//!
//! [`CredentialIndex`] keeps, per namespace, an immutable snapshot that admission reads with one `Arc` clone. It is
//! fed by the cluster watchers in `serve`, by the secrets directory, and by the manifests given to `mutate`/`explain`,
//! so the three reach the same decision from the same objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::{Selector, SelectorExt};

use crate::crd::ClusterPullSecret;
use crate::dockerconfig::{self, SecretKind};
use crate::keyring::{IndexedKeyring, Keyring};
use crate::pod;

/// A Secret the kubelet would read as a pull Secret (R1), reduced to what matching needs.
#[derive(Clone, PartialEq, Eq)]
pub struct CandidateSecret {
    /// The name a Pod lists in `imagePullSecrets`.
    pub name: String,
    /// Which payload the kubelet reads (R1).
    pub kind: SecretKind,
    /// The registry keys as written in the Secret, or why the kubelet would fail to decode it (R4).
    pub keys: Result<Vec<String>, String>,
    pub origin: Origin,
}

/// Keys can carry `user:password@` (the kubelet ignores it, R16): Debug shows them redacted.
impl std::fmt::Debug for CandidateSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys =
            self.keys.as_ref().map(|keys| keys.iter().map(|k| dockerconfig::redact_userinfo(k)).collect::<Vec<_>>());
        f.debug_struct("CandidateSecret")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("keys", &keys)
            .field("origin", &self.origin)
            .finish()
    }
}

/// Where a candidate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// API server does: it wins over `data`.
    pub fn from_secret(secret: &Secret) -> Option<Self> {
        let kind = match secret.type_.as_deref()? {
            t if t == SecretKind::DockerConfigJson.secret_type() => SecretKind::DockerConfigJson,
            t if t == SecretKind::DockerCfg.secret_type() => SecretKind::DockerCfg,
            _ => return None,
        };
        let key = kind.data_key();
        let payload: &[u8] = match secret.string_data.as_ref().and_then(|d| d.get(key)) {
            Some(text) => text.as_bytes(),
            None => &secret.data.as_ref()?.get(key)?.0,
        };
        if payload.is_empty() {
            return None;
        }
        Some(Self {
            name: secret.metadata.name.clone()?,
            kind,
            keys: dockerconfig::decode_keys(kind, payload).map_err(|e| e.to_string()),
            origin: Origin::Namespace,
        })
    }

    pub fn is_decodable(&self) -> bool {
        self.keys.is_ok()
    }
}

/// One namespace as admission sees it.
///
/// Built with [`NamespaceCredentials::new`], which also parses every registry key of every candidate once into
/// an indexed keyring: admission then combines it with a Pod's own list without parsing a key again.
#[derive(Clone, Default)]
pub struct NamespaceCredentials {
    /// The Namespace's labels; empty when the Namespace is unknown.
    pub labels: BTreeMap<String, String>,
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
    pub keyring: IndexedKeyring<u32>,
    /// Indices in `secrets` of the candidates the kubelet cannot decode (for the warnings), ascending.
    pub undecodable: Vec<u32>,
}

impl NamespaceCredentials {
    /// `secrets` must be sorted by name with unique names.
    pub fn new(labels: BTreeMap<String, String>, secrets: Vec<Arc<CandidateSecret>>) -> Self {
        debug_assert!(secrets.windows(2).all(|w| w[0].name < w[1].name), "sorted, unique names");
        let mut keyring = Keyring::new();
        let mut undecodable = Vec::new();
        for (i, secret) in secrets.iter().enumerate() {
            let i = u32::try_from(i).expect("fewer than 2^32 Secrets in a namespace");
            match &secret.keys {
                Ok(keys) => {
                    for key in keys {
                        keyring.add(key, i);
                    }
                }
                Err(_) => undecodable.push(i),
            }
        }
        let keys = NamespaceKeys { keyring: IndexedKeyring::new(keyring), undecodable };
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
}

impl Distribution {
    fn of(cps: &ClusterPullSecret) -> Self {
        Self {
            source: (cps.spec.secret_ref.namespace.clone(), cps.spec.secret_ref.name.clone()),
            target_name: cps.target_name().to_string(),
            selector: Selector::try_from(cps.spec.namespace_selector.clone()).ok(),
        }
    }
}

/// All candidates and namespace labels, with a ready snapshot per namespace.
#[derive(Debug, Default)]
pub struct CredentialIndex {
    secrets: HashMap<String, BTreeMap<String, Arc<CandidateSecret>>>,
    namespaces: HashMap<String, BTreeMap<String, String>>,
    distributions: BTreeMap<String, Distribution>,
    views: HashMap<String, Arc<NamespaceCredentials>>,
    empty: Arc<NamespaceCredentials>,
}

impl CredentialIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a Secret (any type: one that is no pull Secret removes a previous candidate of that name).
    pub fn apply_secret(&mut self, secret: &Secret) {
        let (Some(ns), Some(name)) = (&secret.metadata.namespace, &secret.metadata.name) else {
            return;
        };
        match CandidateSecret::from_secret(secret) {
            Some(candidate) => {
                self.secrets.entry(ns.clone()).or_default().insert(name.clone(), Arc::new(candidate));
            }
            None => {
                if let Some(map) = self.secrets.get_mut(ns) {
                    map.remove(name);
                }
            }
        }
        self.refresh_after_secret_change(ns, name);
    }

    pub fn delete_secret(&mut self, namespace: &str, name: &str) {
        if let Some(map) = self.secrets.get_mut(namespace) {
            map.remove(name);
            if map.is_empty() {
                self.secrets.remove(namespace);
            }
        }
        self.refresh_after_secret_change(namespace, name);
    }

    /// Adds or replaces a Namespace (its labels decide opt-out and distribution).
    pub fn apply_namespace(&mut self, namespace: &Namespace) {
        let Some(name) = &namespace.metadata.name else { return };
        let labels = namespace.metadata.labels.clone().unwrap_or_default();
        if self.namespaces.get(name) != Some(&labels) {
            self.namespaces.insert(name.clone(), labels);
            self.rebuild(name);
        }
    }

    pub fn delete_namespace(&mut self, name: &str) {
        self.namespaces.remove(name);
        self.rebuild(name);
    }

    pub fn apply_cluster_pull_secret(&mut self, cps: &ClusterPullSecret) {
        let Some(name) = cps.metadata.name.clone() else { return };
        self.distributions.insert(name, Distribution::of(cps));
        self.rebuild_all();
    }

    pub fn delete_cluster_pull_secret(&mut self, name: &str) {
        if self.distributions.remove(name).is_some() {
            self.rebuild_all();
        }
    }

    /// Replaces every Secret of one kind at once (a relist of that kind's watch), then rebuilds every snapshot once.
    /// Each kind has its own watch (a field selector takes one `type`), so a relist of one leaves the other alone.
    pub fn replace_secrets<'a>(&mut self, kind: SecretKind, secrets: impl IntoIterator<Item = &'a Secret>) {
        let candidates = secrets
            .into_iter()
            .filter(|s| s.type_.as_deref() == Some(kind.secret_type()))
            .filter_map(|s| Some((s.metadata.namespace.clone()?, CandidateSecret::from_secret(s)?)));
        self.replace_candidates(kind, candidates);
    }

    /// [`CredentialIndex::replace_secrets`] for Secrets already reduced to candidates (a watch buffers these, not
    /// whole Secrets, while it relists).
    pub fn replace_candidates(
        &mut self,
        kind: SecretKind,
        candidates: impl IntoIterator<Item = (String, CandidateSecret)>,
    ) {
        for map in self.secrets.values_mut() {
            map.retain(|_, s| s.kind != kind);
        }
        self.secrets.retain(|_, map| !map.is_empty());
        for (namespace, candidate) in candidates {
            if candidate.kind == kind {
                self.secrets.entry(namespace).or_default().insert(candidate.name.clone(), Arc::new(candidate));
            }
        }
        self.rebuild_all();
    }

    /// Replaces every Namespace at once (a relist).
    pub fn replace_namespaces<'a>(&mut self, namespaces: impl IntoIterator<Item = &'a Namespace>) {
        self.namespaces = namespaces
            .into_iter()
            .filter_map(|n| Some((n.metadata.name.clone()?, n.metadata.labels.clone().unwrap_or_default())))
            .collect();
        self.rebuild_all();
    }

    /// Replaces every ClusterPullSecret at once (a relist).
    pub fn replace_cluster_pull_secrets<'a>(&mut self, all: impl IntoIterator<Item = &'a ClusterPullSecret>) {
        self.distributions.clear();
        for cps in all {
            let Some(name) = cps.metadata.name.clone() else { continue };
            self.distributions.insert(name, Distribution::of(cps));
        }
        self.rebuild_all();
    }

    /// Number of candidate Secrets held (for metrics).
    pub fn secret_count(&self) -> usize {
        self.secrets.values().map(BTreeMap::len).sum()
    }

    pub fn namespace_count(&self) -> usize {
        self.namespaces.len()
    }

    pub fn distribution_count(&self) -> usize {
        self.distributions.len()
    }

    /// The snapshot of one namespace.
    pub fn view(&self, namespace: &str) -> Arc<NamespaceCredentials> {
        self.views.get(namespace).cloned().unwrap_or_else(|| self.empty.clone())
    }

    /// Namespaces a ClusterPullSecret selects (for the controller and `explain`): known namespaces whose labels
    /// match, minus those that opted out.
    pub fn selected_namespaces(&self, cluster_pull_secret: &str) -> Vec<String> {
        let Some(d) = self.distributions.get(cluster_pull_secret) else { return Vec::new() };
        let mut out: Vec<String> =
            self.namespaces.iter().filter(|(_, labels)| selects(d, labels)).map(|(name, _)| name.clone()).collect();
        out.sort();
        out
    }

    fn refresh_after_secret_change(&mut self, namespace: &str, name: &str) {
        let is_source = self.distributions.values().any(|d| d.source.0 == namespace && d.source.1 == name);
        if is_source {
            self.rebuild_all();
        } else {
            self.rebuild(namespace);
        }
    }

    fn rebuild_all(&mut self) {
        let names: BTreeSet<String> = self.secrets.keys().chain(self.namespaces.keys()).cloned().collect();
        self.views.clear();
        for ns in names {
            self.rebuild(&ns);
        }
        // A namespace the index has not seen (yet) is taken as one with no labels and no Secrets.
        self.empty = Arc::new(self.build_view(""));
    }

    /// Recomputes one namespace's snapshot from the primary maps.
    fn rebuild(&mut self, namespace: &str) {
        if !self.secrets.contains_key(namespace) && !self.namespaces.contains_key(namespace) {
            self.views.remove(namespace);
            return;
        }
        let view = self.build_view(namespace);
        self.views.insert(namespace.to_string(), Arc::new(view));
    }

    fn build_view(&self, namespace: &str) -> NamespaceCredentials {
        let labels = self.namespaces.get(namespace).cloned().unwrap_or_default();
        let mut by_name: BTreeMap<&str, Arc<CandidateSecret>> = BTreeMap::new();
        if let Some(own) = self.secrets.get(namespace) {
            by_name.extend(own.iter().map(|(n, s)| (n.as_str(), s.clone())));
        }
        for (cps_name, d) in &self.distributions {
            if d.target_name.is_empty() || by_name.contains_key(d.target_name.as_str()) || !selects(d, &labels) {
                continue;
            }
            let Some(source) = self.secrets.get(&d.source.0).and_then(|m| m.get(&d.source.1)) else {
                continue;
            };
            by_name.insert(
                d.target_name.as_str(),
                Arc::new(CandidateSecret {
                    name: d.target_name.clone(),
                    kind: source.kind,
                    keys: source.keys.clone(),
                    origin: Origin::Distributed { cluster_pull_secret: cps_name.clone() },
                }),
            );
        }
        NamespaceCredentials::new(labels, by_name.into_values().collect())
    }
}

fn selects(d: &Distribution, labels: &BTreeMap<String, String>) -> bool {
    !pod::opted_out(labels) && d.selector.as_ref().is_some_and(|s| s.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ClusterPullSecretSpec, SourceSecretRef};
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
}
