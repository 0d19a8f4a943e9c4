//! The cluster as credential source: kube-rs watches over pull Secrets, Namespaces and ClusterPullSecrets that
//! keep the [`LiveCredentials`] index current.
//!
//! Watch as little as possible, keep as little as possible: Secrets are watched with a `type=` field selector (one
//! watch per pull-Secret type), and every object is reduced on arrival to what matching needs (registry keys and
//! decodability, or labels), within the index's bounds and before the index's lock is taken; a (re)list arrives as
//! events on the watch itself where the API server streams lists ([`watcher`]), and each pull Secret of it is staged
//! as it arrives, in the form the index keeps (`StagedSecrets`), and swapped in when the list ends.
//! That is why this feeds our own index and not a reflector `Store`, which would hold whole objects. Secrets of other
//! types matter only when they hold a distribution's `targetName` (the kubelet then reads them, not the
//! distribution): one metadata-only watch per target name, started and stopped with the distributions, learns those.
//!
//! One set of watches per replica: the `ClusterPullSecret` controller opens none of its own but receives these
//! watches' events through [`Taps`] (`distribute::controller::feeds`), each reduced first to what it keeps (no
//! Secret data). A replica therefore opens four watch streams (two Secret types, Namespaces, ClusterPullSecrets)
//! plus one per distributed `targetName`.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::channel::mpsc::Sender;
use futures::{SinkExt as _, Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::task::{AbortHandle, JoinSet};
use tracing::{info, warn};

use crate::core::cluster_pull_secret::ClusterPullSecret;
use crate::core::credentials::{CredentialIndex, IndexLimits, Reduced, StagedSecrets};
use crate::kubelet::docker_config::SecretKind;
use crate::metrics::{KindLabels, Metrics};
use crate::sources::live::{LiveCredentials, Readiness};

/// Readiness parts, one per watch, and `secret-names`: for every distribution's `targetName`, the Secrets of other
/// types that hold that name are known (a distributed credential is not offered where one does, class 8).
pub const SYNC_PARTS: [&str; 5] = [
    "secrets/kubernetes.io/dockerconfigjson",
    "secrets/kubernetes.io/dockercfg",
    "namespaces",
    "clusterpullsecrets",
    "secret-names",
];

/// Where the watches' events also go in this replica (the ClusterPullSecret controller), so that each collection is
/// watched once. A subscriber gets every event in order, reduced first; a slow one slows the watch (its channel is
/// bounded), one that is gone is dropped.
#[derive(Default)]
pub struct Taps {
    pub namespaces: Option<Tap<Namespace>>,
    pub cluster_pull_secrets: Option<Tap<ClusterPullSecret>>,
    /// One per pull-Secret type, in the order of [`SecretKind::ALL`].
    pub secrets: [Option<Tap<Secret>>; 2],
}

/// One subscriber of one watch: its channel and what it keeps of each object.
pub struct Tap<K> {
    pub sender: Sender<Event<K>>,
    pub reduce: fn(&mut K),
}

impl<K: Clone> Tap<K> {
    /// The subscriber's copy of `event`, reduced.
    fn reduced(&self, event: &Event<K>) -> Event<K> {
        let reduced = |object: &K| {
            let mut object = object.clone();
            (self.reduce)(&mut object);
            object
        };
        match event {
            Event::Init => Event::Init,
            Event::InitDone => Event::InitDone,
            Event::InitApply(object) => Event::InitApply(reduced(object)),
            Event::Apply(object) => Event::Apply(reduced(object)),
            Event::Delete(object) => Event::Delete(reduced(object)),
        }
    }
}

/// How often `pullsecret_injector_cache_lag_seconds` is refreshed.
const LAG_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Runs every watch until the returned future is dropped. Each watch retries with kube-rs' default backoff; each
/// marks its readiness part once its first complete list is visible to admission.
pub async fn watch(
    client: Client,
    live: Arc<LiveCredentials>,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
    taps: Taps,
) {
    let Taps { namespaces: namespace_tap, cluster_pull_secrets: cps_tap, secrets: [json_tap, cfg_tap] } = taps;
    live.update(|index| index.learn_other_secrets_by_name());
    let max_lag = live.options().max_lag;
    if !max_lag.is_zero() {
        let weak: Weak<LiveCredentials> = Arc::downgrade(&live);
        readiness.limit_lag(max_lag, move || weak.upgrade().map_or(Duration::ZERO, |live| live.lag()));
    }
    let limits = live.options().limits;
    let sinks = Sinks { live: live.clone(), readiness: readiness.clone(), metrics: metrics.clone() };
    let secrets = |kind: SecretKind, part: &'static str, tap: Option<Tap<Secret>>| {
        let api: Api<Secret> = Api::all(client.clone());
        let config = watcher::Config::default().fields(&pull_secret_selector(kind));
        drive(watcher(api, config), tap, Some(part), "secrets", sinks.clone(), SecretFeed::new(kind, limits))
    };
    let namespaces = drive(
        watcher(Api::<Namespace>::all(client.clone()), watcher::Config::default()),
        namespace_tap,
        Some(SYNC_PARTS[2]),
        "namespaces",
        sinks.clone(),
        NamespaceFeed::default(),
    );
    let cluster_pull_secrets = drive(
        watcher(Api::<ClusterPullSecret>::all(client.clone()), watcher::Config::default()),
        cps_tap,
        Some(SYNC_PARTS[3]),
        "clusterpullsecrets",
        sinks.clone(),
        ClusterPullSecretFeed::default(),
    );
    let lag = async {
        let mut ticker = tokio::time::interval(LAG_REPORT_INTERVAL);
        loop {
            ticker.tick().await;
            metrics.cache_lag.set(live.lag().as_secs_f64());
        }
    };
    futures::join!(
        secrets(SecretKind::DockerConfigJson, SYNC_PARTS[0], json_tap),
        secrets(SecretKind::DockerCfg, SYNC_PARTS[1], cfg_tap),
        namespaces,
        cluster_pull_secrets,
        other_secrets_by_name(client.clone(), live.clone(), readiness.clone(), metrics.clone()),
        lag,
    );
}

/// One watch of `api`, retried with kube-rs' default backoff. Its (re)lists are streamed over the watch
/// (`sendInitialEvents`, KEP-3157's streaming lists): the API server sends each object from its watch cache as one
/// event, so no page of objects is held and decoded at once and no page waits for the one before it (100,000 pull
/// Secrets: ready in 1.5 s instead of 5 s, BENCHMARKS.md). An API server without the `WatchList` feature refuses
/// the parameter (422); that watch then lists in pages of 500 for the rest of the process.
fn watcher<K>(api: Api<K>, config: watcher::Config) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let streaming = watcher::watcher(api.clone(), config.clone().streaming_lists()).default_backoff().boxed();
    futures::stream::unfold((streaming, Some((api, config))), |(mut stream, mut paged)| async move {
        loop {
            let event = stream.next().await?;
            if let Err(error) = &event
                && refuses_streaming_lists(error)
                && let Some((api, config)) = paged.take()
            {
                info!(%error, "the API server does not stream lists (its WatchList feature is off): paged lists");
                stream = watcher::watcher(api, config).default_backoff().boxed();
                continue;
            }
            return Some((event, (stream, paged)));
        }
    })
}

/// The API server refused `sendInitialEvents` (validation of the list options: 422, naming the parameter).
fn refuses_streaming_lists(error: &watcher::Error) -> bool {
    let status = match error {
        watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::InitialListFailed(kube::Error::Api(status)) => status,
        watcher::Error::WatchError(status) => status,
        _ => return false,
    };
    status.code == 422 && status.message.contains("sendInitialEvents")
}

/// The field selector of the pull Secrets of one type: the Secret watches (and the command line's one-shot lists)
/// read no other Secret.
pub fn pull_secret_selector(kind: SecretKind) -> String {
    format!("type={}", kind.secret_type())
}

/// The field selector of the watch of the Secrets of other types named `name`: the pull-Secret watches see the
/// others. A tenant's Secret of another type that takes a distribution's `targetName` is what the kubelet reads
/// in its namespace, so the webhook must know it (issue 11, class 8); metadata only, one name: a tenant's other
/// Secrets cost nothing.
pub fn other_secrets_selector(name: &str) -> String {
    format!(
        "metadata.name={name},type!={},type!={}",
        SecretKind::DockerConfigJson.secret_type(),
        SecretKind::DockerCfg.secret_type()
    )
}

/// Keeps one metadata watch per distribution `targetName` (started and stopped as the distributions change), and
/// marks `secret-names` ready once the distributions and every one of those names are known and visible.
async fn other_secrets_by_name(
    client: Client,
    live: Arc<LiveCredentials>,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
) {
    let mut changes = live.distribution_changes();
    // Dropping the set (when `run` is dropped) aborts every watch.
    let mut tasks = JoinSet::new();
    let mut running: HashMap<String, AbortHandle> = HashMap::new();
    loop {
        changes.borrow_and_update();
        let (names, ready) = live.read(|index| (index.target_names(), index.distributions_ready()));
        running.retain(|name, task| {
            let keep = names.contains(name);
            if !keep {
                task.abort();
                live.update(|index| index.forget_other_secrets_named(name));
            }
            keep
        });
        for name in names {
            if running.contains_key(&name) {
                continue;
            }
            let api: Api<PartialObjectMeta<Secret>> = Api::all(client.clone());
            let config = watcher::Config::default().fields(&other_secrets_selector(&name));
            let stream = watcher(api, config);
            let task = drive(
                stream,
                None,
                None,
                "secret-names",
                Sinks { live: live.clone(), readiness: readiness.clone(), metrics: metrics.clone() },
                OtherSecretFeed::new(name.clone()),
            );
            running.insert(name, tasks.spawn(task));
        }
        while tasks.try_join_next().is_some() {}
        if ready && readiness.is_pending(SYNC_PARTS[4]) {
            live.flush().await;
            readiness.mark_done(SYNC_PARTS[4]);
            info!(watch = SYNC_PARTS[4], "Secrets holding distributed names known");
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// How one kind of object reaches the index: a watch's (re)list, and the one-shot list of the command line
/// (`sources::snapshot`), both buffer each object and then replace the index's objects of that kind with the buffer.
pub(crate) trait Feed<K>: Send {
    /// Starts a (re)list: drops what an interrupted one buffered, so that objects gone since are not resurrected.
    fn restart(&mut self);
    /// Buffers one object of a relist.
    fn buffer(&mut self, object: K);
    /// Replaces the index's objects of this kind with the buffer.
    fn replace(&mut self, index: &mut CredentialIndex);
    fn apply(&self, object: &K, live: &LiveCredentials);
    fn delete(&self, object: &K, live: &LiveCredentials);
}

/// Pull Secrets of one type. Each is reduced (decoded, within the bounds) before the index is touched, so the
/// index's lock is held for map updates only.
pub(crate) struct SecretFeed {
    limits: IndexLimits,
    /// The (re)list so far, each Secret staged as the index will keep it as soon as it arrives (page by page), so
    /// that neither the Secrets nor their reduced forms are held until the list ends.
    staged: StagedSecrets,
}

impl SecretFeed {
    pub(crate) fn new(kind: SecretKind, limits: IndexLimits) -> Self {
        Self { limits, staged: StagedSecrets::new(kind) }
    }
}

impl SecretFeed {
    /// Stages one Secret of a (re)list, reduced: only what the index keeps of it (the command line's one-shot list
    /// keeps the Secrets themselves, and stages them without a copy).
    pub(crate) fn stage(&mut self, secret: &Secret) {
        if let (Some(ns), Some(reduced)) = (secret.metadata.namespace.as_deref(), Reduced::of(secret, &self.limits)) {
            self.staged.add(ns, reduced);
        }
    }
}

impl Feed<Secret> for SecretFeed {
    fn restart(&mut self) {
        self.staged = StagedSecrets::new(self.staged.kind());
    }
    fn buffer(&mut self, secret: Secret) {
        self.stage(&secret);
    }
    fn replace(&mut self, index: &mut CredentialIndex) {
        let kind = self.staged.kind();
        index.replace_staged(std::mem::replace(&mut self.staged, StagedSecrets::new(kind)));
    }
    fn apply(&self, secret: &Secret, live: &LiveCredentials) {
        let (Some(ns), Some(reduced)) = (secret.metadata.namespace.as_deref(), Reduced::of(secret, &self.limits))
        else {
            return;
        };
        if reduced.kind() == Some(self.staged.kind()) {
            live.update(|index| index.apply_reduced(ns, reduced));
        }
    }
    fn delete(&self, secret: &Secret, live: &LiveCredentials) {
        let ns = secret.namespace().unwrap_or_default();
        live.update(|index| index.delete_secret_of_kind(self.staged.kind(), &ns, &secret.name_any()));
    }
}

/// Secrets of other types named like one distribution's `targetName` (metadata only).
pub(crate) struct OtherSecretFeed {
    name: String,
    buffer: Vec<String>,
}

impl OtherSecretFeed {
    pub(crate) fn new(name: String) -> Self {
        Self { name, buffer: Vec::new() }
    }
}

impl Feed<PartialObjectMeta<Secret>> for OtherSecretFeed {
    fn restart(&mut self) {
        self.buffer.clear();
    }
    fn buffer(&mut self, secret: PartialObjectMeta<Secret>) {
        if secret.metadata.name.as_deref() == Some(self.name.as_str())
            && let Some(ns) = secret.metadata.namespace
        {
            self.buffer.push(ns);
        }
    }
    fn replace(&mut self, index: &mut CredentialIndex) {
        index.replace_other_secrets_named(&self.name, std::mem::take(&mut self.buffer));
    }
    fn apply(&self, secret: &PartialObjectMeta<Secret>, live: &LiveCredentials) {
        if let (Some(ns), Some(name)) = (&secret.metadata.namespace, &secret.metadata.name) {
            live.update(|index| index.apply_other_secret(ns, name));
        }
    }
    fn delete(&self, secret: &PartialObjectMeta<Secret>, live: &LiveCredentials) {
        if let (Some(ns), Some(name)) = (&secret.metadata.namespace, &secret.metadata.name) {
            live.update(|index| index.delete_other_secret(ns, name));
        }
    }
}

#[derive(Default)]
pub(crate) struct NamespaceFeed {
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
    fn replace(&mut self, index: &mut CredentialIndex) {
        index.replace_namespaces(&std::mem::take(&mut self.buffer));
    }
    fn apply(&self, namespace: &Namespace, live: &LiveCredentials) {
        live.update(|index| index.apply_namespace(namespace));
    }
    fn delete(&self, namespace: &Namespace, live: &LiveCredentials) {
        live.update(|index| index.delete_namespace(&namespace.name_any()));
    }
}

#[derive(Default)]
pub(crate) struct ClusterPullSecretFeed {
    buffer: Vec<ClusterPullSecret>,
}

impl Feed<ClusterPullSecret> for ClusterPullSecretFeed {
    fn restart(&mut self) {
        self.buffer.clear();
    }
    fn buffer(&mut self, cps: ClusterPullSecret) {
        self.buffer.push(cps);
    }
    fn replace(&mut self, index: &mut CredentialIndex) {
        index.replace_cluster_pull_secrets(&std::mem::take(&mut self.buffer));
    }
    fn apply(&self, cps: &ClusterPullSecret, live: &LiveCredentials) {
        live.update(|index| index.apply_cluster_pull_secret(cps));
    }
    fn delete(&self, cps: &ClusterPullSecret, live: &LiveCredentials) {
        live.update(|index| index.delete_cluster_pull_secret(&cps.name_any()));
    }
}

/// During a (re)list, a watch yields to other tasks after this many objects.
const YIELD_EVERY: u32 = 16;

/// What every watch feeds.
#[derive(Clone)]
struct Sinks {
    live: Arc<LiveCredentials>,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
}

/// Drives one watch stream into the index (and its subscriber, if any).
async fn drive<K, F>(
    stream: impl Stream<Item = Result<Event<K>, watcher::Error>>,
    mut tap: Option<Tap<K>>,
    part: Option<&'static str>,
    kind_label: &'static str,
    sinks: Sinks,
    mut feed: F,
) where
    K: Clone,
    F: Feed<K>,
{
    let Sinks { live, readiness, metrics } = sinks;
    let mut stream = std::pin::pin!(stream);
    let mut synced_once = false;
    let mut listed = 0_u32;
    while let Some(event) = stream.next().await {
        // A (re)list delivers its objects back to back, each decoded here on a runtime thread that admission shares:
        // make room for reviews every few objects rather than at the runtime's budget (128 of them, milliseconds).
        if matches!(event, Ok(Event::InitApply(_))) {
            listed = listed.wrapping_add(1);
            if listed.is_multiple_of(YIELD_EVERY) {
                tokio::task::yield_now().await;
            }
        }
        // The subscriber hears of an event after the index holds it: the controller reads the index's Namespaces.
        let tapped = tap.as_ref().zip(event.as_ref().ok()).map(|(subscriber, event)| subscriber.reduced(event));
        match event {
            Ok(Event::Init) => feed.restart(),
            Ok(Event::InitApply(object)) => feed.buffer(object),
            Ok(Event::InitDone) => {
                live.update(|index| feed.replace(index));
                if synced_once {
                    metrics.watch_relists.get_or_create(&KindLabels { kind: kind_label }).inc();
                    info!(watch = kind_label, "relisted");
                } else {
                    synced_once = true;
                    if let Some(part) = part {
                        // Ready means admission sees the list, not only that the index holds it.
                        live.flush().await;
                        readiness.mark_done(part);
                        info!(watch = part, "initial list synced");
                    }
                }
            }
            Ok(Event::Apply(object)) => feed.apply(&object, &live),
            Ok(Event::Delete(object)) => feed.delete(&object, &live),
            Err(error) => {
                metrics.watch_errors.get_or_create(&KindLabels { kind: kind_label }).inc();
                if !synced_once && part == Some(SYNC_PARTS[3]) && is_not_found(&error) {
                    // The CRD is not installed: injection works without distribution; keep retrying in case it
                    // is installed later, but do not hold readiness hostage to an optional feature.
                    synced_once = true;
                    live.update(|index| index.no_distributions());
                    readiness.mark_done(SYNC_PARTS[3]);
                    warn!(
                        watch = SYNC_PARTS[3],
                        "ClusterPullSecret CRD not installed: distribution is off until it is"
                    );
                } else {
                    warn!(watch = kind_label, %error, "watch failed; retrying with backoff");
                }
            }
        }
        if let (Some(subscriber), Some(event)) = (&mut tap, tapped)
            && subscriber.sender.send(event).await.is_err()
        {
            tap = None;
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
