//! The runtime of the `ClusterPullSecret` controller (see the module above for what it guarantees): its feeds from
//! the credential cache's watches, the reconcile pass that executes a [`plan`](super::plan) and writes the
//! [`status`](super::status), and the writes themselves.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::{Receiver, channel, unbounded};
use futures::{FutureExt as _, Stream, StreamExt as _};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
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
use tracing::{debug, info, warn};

use crate::core::cluster_pull_secret::ClusterPullSecret;
use crate::metrics::Metrics;
use crate::sources::cluster::{Tap, Taps};
use crate::sources::live::LiveCredentials;

use super::plan::{
    CopyAction, Desired, ExistingSecret, FIELD_MANAGER, MANAGED_BY_LABEL, MANAGED_BY_VALUE, SourcePayload, SourceState,
    copy_needs_a_pass, copy_secret, namespaces_to_probe, observe_copy, plan,
};
use super::status::{EventSpec, PassReport, conditions_for, events_for, status_for};

/// Full pass for every resource at this interval, whatever the watches say.
pub const RESYNC: Duration = Duration::from_secs(300);
/// How long a pass waits for the namespace and copy caches' first list.
const CACHE_SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Error backoff: first retry after this, doubling per consecutive failure, at most [`RESYNC`].
const ERROR_BACKOFF: Duration = Duration::from_secs(5);
/// API requests (probes, writes) in flight per pass.
const REQUEST_CONCURRENCY: usize = 8;

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

/// Where a pass finds the Namespaces: the credential cache's index, which holds every Namespace's labels once per
/// replica for admission (the controller keeps no copy: at 10,000 namespaces one costs about 15 MiB, BENCHMARKS.md).
#[derive(Clone)]
pub struct Namespaces {
    pub live: Arc<LiveCredentials>,
    /// True once the index holds the namespace watch's first complete list.
    pub listed: tokio::sync::watch::Receiver<bool>,
}

/// Shared state of the reconciler: the client, the caches, the Event recorder and the metrics.
pub struct Context {
    client: Client,
    namespaces: Namespaces,
    /// One store per pull-Secret type.
    copies: Vec<Store<Secret>>,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    /// Consecutive failures per resource, for the error backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// `copies` holds every Secret of a pull-Secret type labelled `MANAGED_BY_LABEL=MANAGED_BY_VALUE`
    /// (`is_managed`), reduced by [`observe_copy`].
    pub fn new(client: Client, namespaces: Namespaces, copies: Vec<Store<Secret>>, metrics: Arc<Metrics>) -> Self {
        let recorder = Recorder::new(client.clone(), Reporter::from(FIELD_MANAGER));
        Self { client, namespaces, copies, recorder, metrics, failures: Mutex::default() }
    }

    async fn caches_synced(&self) -> Result<(), Error> {
        // Deciding on an empty cache would delete every copy: wait for the first complete list of each.
        let both = async {
            if self.namespaces.listed.clone().wait_for(|listed| *listed).await.is_err() {
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
    let selected =
        selector.as_ref().ok().map(|selector| ctx.namespaces.live.read(|index| index.namespaces_selected_by(selector)));

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
        namespaces: Some(Tap { sender: namespaces_tx, reduce: keep_name }),
        cluster_pull_secrets: Some(Tap { sender: cps_tx, reduce: |_| {} }),
        secrets: [
            Some(Tap { sender: json_tx, reduce: reduce_secret }),
            Some(Tap { sender: cfg_tx, reduce: reduce_secret }),
        ],
    };
    (taps, Feeds { namespaces, cluster_pull_secrets, secrets: [json, cfg] })
}

/// The controller hears of a Namespace change only to start passes, which read the index: the name is enough.
fn keep_name(namespace: &mut Namespace) {
    *namespace = Namespace {
        metadata: ObjectMeta { name: namespace.metadata.name.take(), ..ObjectMeta::default() },
        ..Namespace::default()
    };
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

/// Labelled `MANAGED_BY_LABEL=MANAGED_BY_VALUE`: a copy, or a Secret claiming to be one (a first filter only: a
/// tenant can set the label; ownership is the owner uid). Only Secrets of the pull-Secret types reach it (the
/// cache's watches select by `type=`), so Secrets of other types carrying the label never do (issue 11, class 13).
fn is_managed(secret: &Secret) -> bool {
    secret.labels().get(MANAGED_BY_LABEL).is_some_and(|v| v == MANAGED_BY_VALUE)
}

/// Runs the controller on the cache's watches ([`feeds`]) until `shutdown` resolves (then lets passes in flight
/// finish).
pub async fn distribute(
    client: Client,
    metrics: Arc<Metrics>,
    feeds: Feeds,
    live: Arc<LiveCredentials>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let Feeds { namespaces: namespace_events, cluster_pull_secrets, secrets } = feeds;
    // The cache's watch sends a Namespace event once the index holds it (`sources::cluster::drive`).
    let (listed_tx, listed) = tokio::sync::watch::channel(false);
    let namespace_changes = namespace_events.map(move |event| {
        if matches!(event, Event::InitDone) {
            listed_tx.send_replace(true);
        }
        Ok(event)
    });
    let namespaces = Namespaces { live, listed };

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
