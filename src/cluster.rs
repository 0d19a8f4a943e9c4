//! The cluster as credential source: kube-rs watches over pull Secrets, Namespaces and ClusterPullSecrets that
//! keep the [`LiveCredentials`] index current.
//!
//! Watch as little as possible, keep as little as possible: Secrets are watched with a `type=` field selector (one
//! watch per pull-Secret type), and every object is reduced on arrival to what matching needs (registry keys and
//! decodability, or labels); even a relist buffers only the reduced form. That is why this feeds our own index and
//! not a reflector `Store`, which would hold whole objects.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::cache::{LiveCredentials, Readiness};
use crate::crd::ClusterPullSecret;
use crate::credentials::CandidateSecret;
use crate::dockerconfig::SecretKind;
use crate::metrics::{KindLabels, Metrics};

/// Readiness parts, one per watch.
pub const SYNC_PARTS: [&str; 4] =
    ["secrets/kubernetes.io/dockerconfigjson", "secrets/kubernetes.io/dockercfg", "namespaces", "clusterpullsecrets"];

/// Runs every watch until the returned future is dropped. Each watch retries with kube-rs' default backoff; each
/// marks its readiness part on its first complete list.
pub async fn run(client: Client, live: Arc<LiveCredentials>, readiness: Arc<Readiness>, metrics: Arc<Metrics>) {
    let secrets = |kind: SecretKind, part: &'static str| {
        let api: Api<Secret> = Api::all(client.clone());
        let config = watcher::Config::default().fields(&format!("type={}", kind.secret_type()));
        watch(
            watcher(api, config),
            part,
            "secrets",
            live.clone(),
            readiness.clone(),
            metrics.clone(),
            SecretFeed { kind, buffer: Vec::new() },
        )
    };
    let namespaces = watch(
        watcher(Api::<Namespace>::all(client.clone()), watcher::Config::default()),
        SYNC_PARTS[2],
        "namespaces",
        live.clone(),
        readiness.clone(),
        metrics.clone(),
        NamespaceFeed { buffer: Vec::new() },
    );
    let cluster_pull_secrets = watch(
        watcher(Api::<ClusterPullSecret>::all(client.clone()), watcher::Config::default()),
        SYNC_PARTS[3],
        "clusterpullsecrets",
        live.clone(),
        readiness.clone(),
        metrics.clone(),
        ClusterPullSecretFeed { buffer: Vec::new() },
    );
    futures::join!(
        secrets(SecretKind::DockerConfigJson, SYNC_PARTS[0]),
        secrets(SecretKind::DockerCfg, SYNC_PARTS[1]),
        namespaces,
        cluster_pull_secrets
    );
}

fn watcher<K>(api: Api<K>, config: watcher::Config) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(api, config).default_backoff()
}

/// How one kind of object reaches the index.
trait Feed<K>: Send {
    /// Starts a (re)list: drops what an interrupted one buffered, so that objects gone since are not resurrected.
    fn restart(&mut self);
    /// Buffers one object of a relist.
    fn buffer(&mut self, object: K);
    /// Replaces the index's objects of this kind with the buffer.
    fn replace(&mut self, live: &LiveCredentials);
    fn apply(&self, object: &K, live: &LiveCredentials);
    fn delete(&self, object: &K, live: &LiveCredentials);
}

struct SecretFeed {
    kind: SecretKind,
    buffer: Vec<(String, CandidateSecret)>,
}

impl Feed<Secret> for SecretFeed {
    fn restart(&mut self) {
        self.buffer.clear();
    }
    fn buffer(&mut self, secret: Secret) {
        if let (Some(ns), Some(candidate)) = (secret.metadata.namespace.clone(), CandidateSecret::from_secret(&secret))
        {
            self.buffer.push((ns, candidate));
        }
    }
    fn replace(&mut self, live: &LiveCredentials) {
        let kind = self.kind;
        let buffer = std::mem::take(&mut self.buffer);
        live.update(|index| index.replace_candidates(kind, buffer));
    }
    fn apply(&self, secret: &Secret, live: &LiveCredentials) {
        live.update(|index| index.apply_secret(secret));
    }
    fn delete(&self, secret: &Secret, live: &LiveCredentials) {
        let ns = secret.namespace().unwrap_or_default();
        live.update(|index| index.delete_secret(&ns, &secret.name_any()));
    }
}

struct NamespaceFeed {
    buffer: Vec<Namespace>,
}

impl Feed<Namespace> for NamespaceFeed {
    fn restart(&mut self) {
        self.buffer.clear();
    }
    fn buffer(&mut self, mut namespace: Namespace) {
        // Only the name and labels are used: drop the rest before buffering.
        namespace.metadata.managed_fields = None;
        namespace.metadata.annotations = None;
        namespace.spec = None;
        namespace.status = None;
        self.buffer.push(namespace);
    }
    fn replace(&mut self, live: &LiveCredentials) {
        let buffer = std::mem::take(&mut self.buffer);
        live.update(|index| index.replace_namespaces(&buffer));
    }
    fn apply(&self, namespace: &Namespace, live: &LiveCredentials) {
        live.update(|index| index.apply_namespace(namespace));
    }
    fn delete(&self, namespace: &Namespace, live: &LiveCredentials) {
        live.update(|index| index.delete_namespace(&namespace.name_any()));
    }
}

struct ClusterPullSecretFeed {
    buffer: Vec<ClusterPullSecret>,
}

impl Feed<ClusterPullSecret> for ClusterPullSecretFeed {
    fn restart(&mut self) {
        self.buffer.clear();
    }
    fn buffer(&mut self, cps: ClusterPullSecret) {
        self.buffer.push(cps);
    }
    fn replace(&mut self, live: &LiveCredentials) {
        let buffer = std::mem::take(&mut self.buffer);
        live.update(|index| index.replace_cluster_pull_secrets(&buffer));
    }
    fn apply(&self, cps: &ClusterPullSecret, live: &LiveCredentials) {
        live.update(|index| index.apply_cluster_pull_secret(cps));
    }
    fn delete(&self, cps: &ClusterPullSecret, live: &LiveCredentials) {
        live.update(|index| index.delete_cluster_pull_secret(&cps.name_any()));
    }
}

/// Drives one watch stream into the index.
async fn watch<K, F>(
    stream: impl Stream<Item = Result<Event<K>, watcher::Error>>,
    part: &'static str,
    kind_label: &'static str,
    live: Arc<LiveCredentials>,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
    mut feed: F,
) where
    F: Feed<K>,
{
    let mut stream = std::pin::pin!(stream);
    let mut synced_once = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => feed.restart(),
            Ok(Event::InitApply(object)) => feed.buffer(object),
            Ok(Event::InitDone) => {
                feed.replace(&live);
                if !synced_once {
                    synced_once = true;
                    readiness.mark_done(part);
                    info!(watch = part, "initial list synced");
                }
            }
            Ok(Event::Apply(object)) => feed.apply(&object, &live),
            Ok(Event::Delete(object)) => feed.delete(&object, &live),
            Err(error) => {
                metrics.watch_errors.get_or_create(&KindLabels { kind: kind_label }).inc();
                if !synced_once && part == SYNC_PARTS[3] && is_not_found(&error) {
                    // The CRD is not installed: injection works without distribution; keep retrying in case it
                    // is installed later, but do not hold readiness hostage to an optional feature.
                    synced_once = true;
                    readiness.mark_done(part);
                    warn!(watch = part, "ClusterPullSecret CRD not installed: distribution is off until it is");
                } else {
                    warn!(watch = part, %error, "watch failed; retrying with backoff");
                }
            }
        }
    }
}

fn is_not_found(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status)) => status.code == 404,
        _ => false,
    }
}
