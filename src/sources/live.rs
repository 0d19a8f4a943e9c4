//! The live credential cache of `serve`: a [`CredentialIndex`] fed by one source (the cluster's watches, or the
//! secrets directory), the immutable per-namespace snapshots admission reads, and the readiness it reports.
//!
//! Admission never waits on index maintenance (issue 11, class 12). A change only updates the index's primary
//! maps and marks its namespace dirty (microseconds, under a mutex admission never takes). A builder thread takes
//! the dirty namespaces in turn, first in first out (a namespace that keeps changing is rebuilt once per round:
//! one namespace's flood cannot delay another's, class 13), builds each snapshot without holding any lock, and
//! publishes it with one atomic pointer swap. Admission clones one namespace's `Arc` from a map whose lock is held
//! for a lookup by readers and, by the builder, only to insert a namespace seen for the first time.
//!
//! How far behind the published snapshots are is measured ([`LiveCredentials::lag`]): exported as
//! `pullsecret_injector_cache_lag_seconds`, and `/readyz` turns 503 when it exceeds `--max-cache-lag`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::core::credentials::{
    CredentialIndex, CredentialSource, IndexLimits, Limit, NamespaceCredentials, OverLimit, UNSEEN_NAMESPACE,
    ViewInputs,
};
use crate::metrics::{KindLabels, LimitLabels, MAX_EXPIRY_SERIES, Metrics, SecretLabels};

/// `--max-cache-lag` default.
pub const DEFAULT_MAX_CACHE_LAG: Duration = Duration::from_secs(60);

/// What the live index is allowed to cost, and how late it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexOptions {
    pub limits: IndexLimits,
    /// `/readyz` answers 503 while the cache lags more than this; zero turns the check off.
    pub max_lag: Duration,
}

impl Default for IndexOptions {
    fn default() -> Self {
        Self { limits: IndexLimits::default(), max_lag: DEFAULT_MAX_CACHE_LAG }
    }
}

/// The readiness part of the serving certificate; every other part is a credential source.
pub const CERTIFICATE: &str = "certificate";

/// What `/readyz` waits for: every source's first sync and a loaded certificate; and what it refuses after SIGTERM.
#[derive(Debug, Default)]
pub struct Readiness {
    pending: Mutex<BTreeSet<&'static str>>,
    shutting_down: AtomicBool,
    lag_limit: Mutex<Option<LagLimit>>,
}

/// How far behind the credential cache may be before `/readyz` turns 503.
struct LagLimit {
    max: Duration,
    probe: Box<dyn Fn() -> Duration + Send + Sync>,
}

impl fmt::Debug for LagLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LagLimit").field("max", &self.max).finish_non_exhaustive()
    }
}

impl Readiness {
    /// Readiness that waits for each of `parts` to be marked done.
    pub fn waiting_for(parts: &[&'static str]) -> Self {
        Self {
            pending: Mutex::new(parts.iter().copied().collect()),
            shutting_down: AtomicBool::new(false),
            lag_limit: Mutex::new(None),
        }
    }

    /// From now on, not ready while `probe` (the credential cache's lag) exceeds `max`.
    pub fn limit_lag(&self, max: Duration, probe: impl Fn() -> Duration + Send + Sync + 'static) {
        *self.lag_limit.lock().expect("readiness lock") = Some(LagLimit { max, probe: Box::new(probe) });
    }

    /// Whether `part` has not completed yet.
    pub fn is_pending(&self, part: &str) -> bool {
        self.pending.lock().expect("readiness lock").contains(part)
    }

    pub fn mark_done(&self, part: &'static str) {
        self.pending.lock().expect("readiness lock").remove(part);
    }

    pub fn start_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Every credential source has completed its first sync: whatever is still pending is at most the
    /// [`CERTIFICATE`]. Unlike [`Readiness::check`], shutdown does not matter: a draining replica still decides
    /// with the credentials it has.
    pub fn credentials_loaded(&self) -> bool {
        self.pending.lock().expect("readiness lock").iter().all(|part| *part == CERTIFICATE)
    }

    /// `Ok` when ready, else what is still missing (for the `/readyz` body).
    pub fn check(&self) -> Result<(), String> {
        if self.is_shutting_down() {
            return Err("shutting down".into());
        }
        let pending = self.pending.lock().expect("readiness lock");
        if !pending.is_empty() {
            return Err(format!("waiting for: {}", pending.iter().copied().collect::<Vec<_>>().join(", ")));
        }
        drop(pending);
        if let Some(limit) = &*self.lag_limit.lock().expect("readiness lock") {
            let lag = (limit.probe)();
            if lag > limit.max {
                return Err(format!(
                    "the credential cache lags {:.1}s behind the API server (more than --max-cache-lag {:?})",
                    lag.as_secs_f64(),
                    limit.max
                ));
            }
        }
        Ok(())
    }
}

/// The index admission reads: the primary state, the published snapshots, and the thread that builds them.
pub struct LiveCredentials {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the builder: something is dirty, or the cache is closing.
    wake: Condvar,
    /// One slot per known namespace; a slot is swapped, never locked, when its namespace is rebuilt.
    published: RwLock<HashMap<String, Arc<ArcSwap<NamespaceCredentials>>>>,
    /// The snapshot of a namespace the index does not know.
    unseen: ArcSwap<NamespaceCredentials>,
    /// Every change up to this number is visible to admission.
    progress: watch::Sender<u64>,
    /// [`CredentialIndex::distribution_epoch`], for the watches that follow the distributions' target names.
    distributions: watch::Sender<u64>,
    lag: LagClock,
    metrics: Arc<Metrics>,
    options: IndexOptions,
}

struct State {
    index: CredentialIndex,
    /// Bumped by [`LiveCredentials::replace`]: a snapshot built from an older index is not published.
    generation: u64,
    closed: bool,
    /// Per namespace, the Secrets a bound leaves without keys (a warning is logged when this changes).
    over_limit: HashMap<String, Vec<(String, OverLimit)>>,
    over_counts: [i64; 3],
    /// Per namespace, the Secrets with an expiry and whether each has a `credential_expiry` series.
    expiring: HashMap<String, Vec<(String, bool)>>,
    /// Series of `credential_expiry` now exported.
    expiry_series: usize,
    /// Expiring credentials without a series (over `MAX_EXPIRY_SERIES`): kept as a count, not recounted per
    /// namespace rebuilt (that was namespaces × expiring credentials after a relist).
    expiry_unexported: usize,
}

/// Since when the oldest change not yet visible to admission is waiting (0: none), in microseconds since `base`
/// plus one: admission-free, lock-free reads for the metric and `/readyz`.
struct LagClock {
    base: Instant,
    oldest: AtomicU64,
}

impl LagClock {
    fn encode(&self, since: Instant) -> u64 {
        since.saturating_duration_since(self.base).as_micros() as u64 + 1
    }

    fn set(&self, since: Option<Instant>) {
        self.oldest.store(since.map_or(0, |t| self.encode(t)), Ordering::SeqCst);
    }

    /// Starts the clock unless it runs already (it then counts from an older change).
    fn start(&self, since: Instant) {
        let _ = self.oldest.compare_exchange(0, self.encode(since), Ordering::SeqCst, Ordering::SeqCst);
    }

    fn lag(&self) -> Duration {
        match self.oldest.load(Ordering::SeqCst) {
            0 => Duration::ZERO,
            t => (Instant::now().saturating_duration_since(self.base)).saturating_sub(Duration::from_micros(t - 1)),
        }
    }
}

impl LiveCredentials {
    /// A cache with the default bounds and lag limit.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self::with_options(metrics, IndexOptions::default())
    }

    pub fn with_options(metrics: Arc<Metrics>, options: IndexOptions) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                index: CredentialIndex::with_limits(options.limits),
                generation: 0,
                closed: false,
                over_limit: HashMap::new(),
                over_counts: [0; 3],
                expiring: HashMap::new(),
                expiry_series: 0,
                expiry_unexported: 0,
            }),
            wake: Condvar::new(),
            published: RwLock::new(HashMap::new()),
            unseen: ArcSwap::from_pointee(NamespaceCredentials::default()),
            progress: watch::Sender::new(0),
            distributions: watch::Sender::new(0),
            lag: LagClock { base: Instant::now(), oldest: AtomicU64::new(0) },
            metrics,
            options,
        });
        let builder = shared.clone();
        std::thread::Builder::new()
            .name("credential-index".into())
            .spawn(move || {
                // Rebuilding 10,000 namespaces after a relist takes a core for a while; admission's threads come
                // first (Linux applies a nice value to the calling thread only). Best effort: unprivileged raising
                // of the nice value always succeeds.
                let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), BUILDER_NICE);
                build_dirty_namespaces(builder)
            })
            .expect("spawn the credential index builder");
        Self { shared }
    }

    pub fn options(&self) -> &IndexOptions {
        &self.shared.options
    }

    /// Applies a change to the index: the namespaces it touches are rebuilt and published shortly after, by the
    /// builder thread. Returns at once.
    pub fn update<R>(&self, change: impl FnOnce(&mut CredentialIndex) -> R) -> R {
        let mut st = self.shared.lock();
        st.index.start_change();
        let epoch = st.index.distribution_epoch();
        let result = change(&mut st.index);
        if let Some((since, _)) = st.index.oldest_dirty() {
            self.shared.lag.start(since);
        }
        self.shared.report(&st);
        let new_epoch = st.index.distribution_epoch();
        drop(st);
        if new_epoch != epoch {
            self.shared.distributions.send_replace(new_epoch);
        }
        self.shared.wake.notify_all();
        result
    }

    /// Replaces the whole index (the secrets directory reloads this way) and publishes every snapshot of the new
    /// one at once, before returning.
    pub fn replace(&self, mut new: CredentialIndex) {
        let mut st = self.shared.lock();
        let change = st.index.start_change();
        new.continue_changes_from(change);
        new.clear_dirty();
        let mut published = HashMap::new();
        let mut unseen = Arc::new(NamespaceCredentials::default());
        let mut over_limit = HashMap::new();
        for ns in new.known_namespaces() {
            let built = new.view_inputs(&ns).build();
            if !built.over_limit.is_empty() {
                over_limit.insert(ns.clone(), built.over_limit);
            }
            if ns == UNSEEN_NAMESPACE {
                unseen = Arc::new(built.view);
            } else {
                published.insert(ns, Arc::new(ArcSwap::from_pointee(built.view)));
            }
        }
        st.index = new;
        st.generation += 1;
        let namespaces: BTreeSet<String> = st.expiring.keys().cloned().chain(published.keys().cloned()).collect();
        for ns in namespaces {
            let view = published.get(&ns).map(|slot| slot.load_full());
            self.shared.record_expiry(&mut st, &ns, view.as_deref());
        }
        *self.shared.published.write().expect("published snapshots lock") = published;
        self.shared.unseen.store(unseen);
        let old = std::mem::take(&mut st.over_limit);
        for ns in old.keys().chain(over_limit.keys()).cloned().collect::<BTreeSet<_>>() {
            let now = over_limit.remove(&ns).unwrap_or_default();
            self.shared.record_over_limit(&mut st, &ns, now);
        }
        self.shared.lag.set(None);
        self.shared.report(&st);
        let epoch = st.index.distribution_epoch();
        drop(st);
        self.shared.progress.send_replace(change);
        self.shared.distributions.send_replace(epoch);
    }

    /// Runs `read` over the index (for the controller and tests).
    pub fn read<R>(&self, read: impl FnOnce(&CredentialIndex) -> R) -> R {
        read(&self.shared.lock().index)
    }

    /// Returns once every change applied so far is visible to admission.
    pub async fn flush(&self) {
        let target = self.shared.lock().index.change_number();
        let mut progress = self.shared.progress.subscribe();
        let _ = progress.wait_for(|done| *done >= target).await;
    }

    /// How long the oldest change not yet visible to admission has been waiting (zero when none is).
    pub fn lag(&self) -> Duration {
        self.shared.lag.lag()
    }

    /// Changes whenever the distributions' target names, or whether they are all known, may have changed.
    pub fn distribution_changes(&self) -> watch::Receiver<u64> {
        self.shared.distributions.subscribe()
    }
}

impl Drop for LiveCredentials {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

impl CredentialSource for LiveCredentials {
    fn namespace(&self, namespace: &str) -> Arc<NamespaceCredentials> {
        let slot = self.shared.published.read().expect("published snapshots lock").get(namespace).cloned();
        match slot {
            Some(slot) => slot.load_full(),
            None => self.shared.unseen.load_full(),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, namespace: &str, view: Option<NamespaceCredentials>) {
        if namespace == UNSEEN_NAMESPACE {
            self.unseen.store(Arc::new(view.unwrap_or_default()));
            return;
        }
        let Some(view) = view else {
            self.published.write().expect("published snapshots lock").remove(namespace);
            return;
        };
        let view = Arc::new(view);
        let slot = self.published.read().expect("published snapshots lock").get(namespace).cloned();
        match slot {
            Some(slot) => slot.store(view),
            None => {
                let mut published = self.published.write().expect("published snapshots lock");
                published.insert(namespace.to_string(), Arc::new(ArcSwap::new(view)));
            }
        }
    }

    /// Remembers the Secrets a bound leaves without keys in `namespace`; logs the new ones and updates the gauge.
    fn record_over_limit(&self, st: &mut State, namespace: &str, now: Vec<(String, OverLimit)>) {
        let before = st.over_limit.remove(namespace).unwrap_or_default();
        if before == now {
            if !now.is_empty() {
                st.over_limit.insert(namespace.to_string(), now);
            }
            return;
        }
        for limit in Limit::ALL {
            let count = |list: &[(String, OverLimit)]| list.iter().filter(|(_, o)| o.limit == limit).count() as i64;
            let i = limit as usize;
            st.over_counts[i] += count(&now) - count(&before);
            let gauge = self.metrics.index_limited_secrets.get_or_create(&LimitLabels { limit: limit.label() });
            gauge.set(st.over_counts[i]);
            let new: Vec<&(String, OverLimit)> = now
                .iter()
                .filter(|(name, o)| o.limit == limit && !before.iter().any(|(n, b)| n == name && b.limit == limit))
                .collect();
            if let Some((first, over)) = new.first() {
                let what = match limit {
                    Limit::SecretBytes => "bytes",
                    Limit::KeysPerSecret | Limit::KeysPerNamespace => "keys",
                };
                let names: Vec<&str> = new.iter().take(5).map(|(n, _)| n.as_str()).collect();
                warn!(
                    namespace,
                    secret = %first,
                    secrets = new.len(),
                    first_secrets = ?names,
                    size = over.size,
                    max = over.max,
                    unit = what,
                    flag = limit.flag(),
                    "pull Secret(s) over a bound of the credential index: kept without keys, never injected"
                );
            }
        }
        if !now.is_empty() {
            st.over_limit.insert(namespace.to_string(), now);
        }
    }

    /// Updates the `credential_expiry` series of `namespace` to its new snapshot (`None`: the namespace is gone).
    fn record_expiry(&self, st: &mut State, namespace: &str, view: Option<&NamespaceCredentials>) {
        if namespace == UNSEEN_NAMESPACE {
            return;
        }
        let labels = |name: &str| SecretLabels {
            namespace: crate::safe_text::label(namespace, 63),
            secret: crate::safe_text::label(name, 253),
        };
        for (name, exported) in st.expiring.remove(namespace).unwrap_or_default() {
            if exported {
                self.metrics.credential_expiry.remove(&labels(&name));
                st.expiry_series -= 1;
            } else {
                st.expiry_unexported -= 1;
            }
        }
        let mut now = Vec::new();
        for secret in view.map_or(&[][..], |v| &v.secrets[..]) {
            let Some(at) = secret.expires_at else { continue };
            let exported = st.expiry_series < MAX_EXPIRY_SERIES;
            if exported {
                self.metrics.credential_expiry.get_or_create(&labels(&secret.name)).set(at);
                st.expiry_series += 1;
            } else {
                st.expiry_unexported += 1;
            }
            now.push((secret.name.clone(), exported));
        }
        if !now.is_empty() {
            st.expiring.insert(namespace.to_string(), now);
        }
        self.metrics.credential_expiry_unexported.set(st.expiry_unexported as i64);
    }

    fn report(&self, st: &State) {
        let gauge = |kind: &'static str, n: usize| {
            self.metrics.cache_objects.get_or_create(&KindLabels { kind }).set(n as i64);
        };
        gauge("secrets", st.index.secret_count());
        gauge("undecodable_secrets", st.index.undecodable_count());
        gauge("namespaces", st.index.namespace_count());
        gauge("clusterpullsecrets", st.index.distribution_count());
    }
}

/// The nice value of the builder thread: below admission's (0), so that a rebuild of every namespace (after a relist)
/// does not take CPU time from reviews on a small machine.
const BUILDER_NICE: i32 = 10;

/// The builder thread: takes the dirty namespaces in queue order, builds each snapshot without holding the state
/// lock, publishes it unless the index was replaced meanwhile, and advances `progress`.
fn build_dirty_namespaces(shared: Arc<Shared>) {
    let mut st = shared.lock();
    loop {
        if st.closed {
            return;
        }
        let Some(dirty) = st.index.next_dirty() else {
            shared.lag.set(None);
            shared.progress.send_replace(st.index.change_number());
            st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        shared.lag.set(Some(dirty.since));
        let generation = st.generation;
        let inputs: Option<ViewInputs> =
            st.index.knows(&dirty.namespace).then(|| st.index.view_inputs(&dirty.namespace));
        drop(st);
        let started = Instant::now();
        let built = inputs.map(ViewInputs::build);
        let took = started.elapsed();
        st = shared.lock();
        if st.generation == generation {
            let (view, over) = match built {
                Some(built) => (Some(built.view), built.over_limit),
                None => (None, Vec::new()),
            };
            shared.record_expiry(&mut st, &dirty.namespace, view.as_ref());
            shared.publish(&dirty.namespace, view);
            shared.record_over_limit(&mut st, &dirty.namespace, over);
            shared.metrics.index_rebuilds.inc();
        }
        if took > Duration::from_millis(100) {
            debug!(namespace = %dirty.namespace, took_ms = took.as_millis() as u64, "slow namespace snapshot build");
        }
        // No lag is reported once nothing is left to build, before `flush` (which waits on progress) returns.
        let progress = match st.index.oldest_dirty() {
            Some((_, change)) => change.saturating_sub(1),
            None => {
                shared.lag.set(None);
                st.index.change_number()
            }
        };
        shared.progress.send_replace(progress);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The builder thread runs below admission's priority (`BUILDER_NICE`), as Linux reports it per thread.
    #[test]
    fn the_builder_thread_yields_the_cpu_to_admission() {
        let _live = LiveCredentials::new(Arc::new(Metrics::new()));
        let nice_of_builders = || -> Vec<i64> {
            let tasks = std::fs::read_dir("/proc/self/task").expect("Linux /proc");
            tasks
                .flatten()
                .filter(|task| {
                    // Linux keeps 15 bytes of a thread's name.
                    std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == "credential-inde")
                })
                .filter_map(|task| {
                    let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                    // Fields after the command (which ends with the last `)`): state is field 3, nice field 19.
                    stat.rsplit_once(')')?.1.split_whitespace().nth(16)?.parse().ok()
                })
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut nice = nice_of_builders();
        // The thread sets its priority as it starts.
        while !nice.contains(&i64::from(BUILDER_NICE)) && Instant::now() < deadline {
            std::thread::yield_now();
            nice = nice_of_builders();
        }
        assert!(nice.contains(&i64::from(BUILDER_NICE)), "nice values of the builder threads: {nice:?}");
    }

    #[test]
    fn ready_only_when_every_part_is_done_and_not_after_shutdown() {
        let r = Readiness::waiting_for(&["secrets", "certificate"]);
        assert_eq!(r.check(), Err("waiting for: certificate, secrets".into()));
        r.mark_done("secrets");
        assert!(r.check().is_err());
        r.mark_done("certificate");
        assert_eq!(r.check(), Ok(()));
        r.start_shutdown();
        assert_eq!(r.check(), Err("shutting down".into()));
    }

    #[test]
    fn credentials_are_loaded_once_every_part_but_the_certificate_is_done() {
        let r = Readiness::waiting_for(&[CERTIFICATE, "secrets", "namespaces"]);
        assert!(!r.credentials_loaded());
        r.mark_done("secrets");
        assert!(!r.credentials_loaded(), "namespaces still pending");
        r.mark_done("namespaces");
        assert!(r.credentials_loaded(), "the certificate is not a credential source");
        r.start_shutdown();
        assert!(r.credentials_loaded(), "shutdown does not unload credentials");
        assert!(Readiness::waiting_for(&[]).credentials_loaded());
    }

    use crate::core::credentials::{CredentialSource, IndexLimits};
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pull_secret(ns: &str, name: &str, keys: impl IntoIterator<Item = String>) -> Secret {
        let auths: serde_json::Map<String, serde_json::Value> =
            keys.into_iter().map(|k| (k, serde_json::json!({}))).collect();
        let json = serde_json::json!({ "auths": auths }).to_string();
        Secret {
            metadata: ObjectMeta { namespace: Some(ns.into()), name: Some(name.into()), ..Default::default() },
            type_: Some("kubernetes.io/dockerconfigjson".into()),
            data: Some([(".dockerconfigjson".to_string(), ByteString(json.into_bytes()))].into()),
            ..Default::default()
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    /// Issue 11, class 12: `update` leaves the build of a namespace of 60,000 keys to the builder thread, and while
    /// the builder has that namespace in hand, admission reads of every namespace are answered from the last
    /// published snapshots, and the lag is reported. "While" is proven, not timed: the reads run while this test
    /// holds the state lock after the builder took the namespace off the queue and before it published it, so the
    /// builder cannot publish until they are done.
    #[test]
    fn admission_never_waits_for_a_rebuild() {
        /// Bound of a wait that only a deadlock or a lost wake-up would reach.
        const DEADLINE: Duration = Duration::from_secs(60);
        let limits = IndexLimits {
            max_secret_bytes: usize::MAX,
            max_keys_per_secret: usize::MAX,
            max_keys_per_namespace: usize::MAX,
        };
        let live = Arc::new(LiveCredentials::with_options(
            Arc::new(Metrics::new()),
            IndexOptions { limits, ..Default::default() },
        ));
        live.update(|i| i.apply_secret(&pull_secret("quiet", "mine", ["quiet.example.com".to_string()])));
        runtime().block_on(live.flush());
        assert_eq!(live.namespace("quiet").secrets.len(), 1);

        // Each attempt rebuilds a namespace of its own; an attempt whose build completed before this test could
        // take the state lock proves nothing and is followed by another.
        let mut caught = None;
        for attempt in 0..20 {
            let namespace = format!("flood-{attempt}");
            let huge = pull_secret(&namespace, "huge", (0..60_000).map(|i| format!("r{i}.example.com")));
            live.update(|i| i.apply_secret(&huge));
            let deadline = Instant::now() + DEADLINE;
            let outcome = loop {
                // Some(answered) once the builder has taken the namespace off the queue, decided under the lock.
                let outcome = live.read(|index| {
                    if index.dirty_count() > 0 {
                        return None;
                    }
                    // Publishing takes the state lock, which this closure holds: the namespace is published or not,
                    // and stays so until the reads below are done.
                    let (answered_tx, answered) = std::sync::mpsc::channel();
                    let reader = live.clone();
                    let target = namespace.clone();
                    // On a thread of its own: a read that waited for the state lock would wait for this test, which
                    // then fails instead of hanging.
                    std::thread::spawn(move || {
                        let published = !reader.namespace(&target).secrets.is_empty();
                        let quiet: Vec<usize> = (0..100).map(|_| reader.namespace("quiet").secrets.len()).collect();
                        let _ = answered_tx.send((published, quiet, reader.lag()));
                    });
                    let answer = answered
                        .recv_timeout(DEADLINE)
                        .expect("admission reads are answered while the builder holds a namespace in hand");
                    Some(answer)
                });
                if let Some(outcome) = outcome {
                    break outcome;
                }
                assert!(Instant::now() < deadline, "the builder never took {namespace} off the queue");
                std::thread::sleep(Duration::from_millis(1));
            };
            let (published, quiet, lag) = outcome;
            if published {
                continue;
            }
            assert!(quiet.iter().all(|&n| n == 1), "another namespace's reads during the rebuild: {quiet:?}");
            assert!(lag > Duration::ZERO, "the rebuild in progress is reported as lag");
            caught = Some(namespace);
            break;
        }
        let namespace = caught.expect("a rebuild was caught in progress in one of 20 attempts");
        runtime().block_on(live.flush());
        assert_eq!(live.lag(), Duration::ZERO);
        assert_eq!(live.namespace(&namespace).keys().keyring.len(), 60_000);
    }

    #[test]
    fn replace_publishes_before_returning_and_updates_follow() {
        let live = LiveCredentials::new(Arc::new(Metrics::new()));
        let mut index = CredentialIndex::new();
        index.apply_secret(&pull_secret("a", "s", ["a.example.com".to_string()]));
        live.replace(index);
        assert_eq!(live.namespace("a").secrets.len(), 1, "visible when replace returns");
        live.update(|i| i.delete_secret("a", "s"));
        runtime().block_on(live.flush());
        assert!(live.namespace("a").secrets.is_empty());
        assert!(live.namespace("never-seen").secrets.is_empty());
    }

    /// Issue 11, class 12: a Secret over a bound is reported by the gauge (and a log line), and the gauge follows
    /// it when it goes.
    #[test]
    fn secrets_over_a_bound_are_counted() {
        let metrics = Arc::new(Metrics::new());
        let limits = IndexLimits { max_keys_per_secret: 3, ..IndexLimits::default() };
        let live = LiveCredentials::with_options(metrics.clone(), IndexOptions { limits, ..Default::default() });
        let gauge = || {
            let text = metrics.encode();
            let line = "pullsecret_injector_index_limited_secrets{limit=\"keys_per_secret\"} ";
            text.lines().find_map(|l| l.strip_prefix(line)).map(|n| n.to_string())
        };
        live.update(|i| i.apply_secret(&pull_secret("t", "wide", (0..4).map(|i| format!("r{i}.example.com")))));
        runtime().block_on(live.flush());
        assert_eq!(gauge().as_deref(), Some("1"));
        assert_eq!(live.namespace("t").get("wide").map(|s| s.keys.clone()), Some(Ok(vec![])));
        live.update(|i| i.delete_secret("t", "wide"));
        runtime().block_on(live.flush());
        assert_eq!(gauge().as_deref(), Some("0"));
    }

    /// Issue 12 item 5: each Secret with an expiry has one gauge series (names only), replaced when the Secret
    /// changes and removed when it goes, through both `update` and `replace`; a planted password never shows.
    #[test]
    fn each_expiring_credential_has_an_expiry_series() {
        let metrics = Arc::new(Metrics::new());
        let live = LiveCredentials::new(metrics.clone());
        let series = || {
            let text = metrics.encode();
            assert!(!text.contains("Planted-Canary"), "{text}");
            let prefix = "pullsecret_injector_credential_expiry_timestamp_seconds{";
            text.lines().filter(|l| l.starts_with(prefix)).map(|l| l[prefix.len()..].to_string()).collect::<Vec<_>>()
        };
        let expiring = |ns: &str, name: &str, at: &str| {
            let mut secret = pull_secret(ns, name, ["r.io".to_string()]);
            secret.metadata.annotations =
                Some([(crate::core::expiry::EXPIRES_AT_ANNOTATION.to_string(), at.to_string())].into());
            let payload = r#"{"auths":{"r.io":{"username":"u","password":"Planted-Canary"}}}"#;
            secret.data = Some([(".dockerconfigjson".to_string(), ByteString(payload.into()))].into());
            secret
        };
        live.update(|i| {
            i.apply_secret(&expiring("a", "s", "2026-12-04T16:00:00Z"));
            i.apply_secret(&pull_secret("a", "plain", ["r.io".to_string()]));
        });
        runtime().block_on(live.flush());
        assert_eq!(series(), [r#"namespace="a",secret="s"} 1796400000"#]);
        live.update(|i| i.apply_secret(&expiring("a", "s", "2026-12-04T17:00:00+00:00")));
        runtime().block_on(live.flush());
        assert_eq!(series(), [r#"namespace="a",secret="s"} 1796403600"#]);
        live.update(|i| i.delete_secret("a", "s"));
        runtime().block_on(live.flush());
        assert!(series().is_empty());
        let mut index = CredentialIndex::new();
        index.apply_secret(&expiring("b", "t", "2026-12-04T16:00:00Z"));
        live.replace(index);
        assert_eq!(series(), [r#"namespace="b",secret="t"} 1796400000"#]);
        live.replace(CredentialIndex::new());
        assert!(series().is_empty());
    }

    /// The series are bounded: past [`MAX_EXPIRY_SERIES`], Secrets with an expiry are counted, not exported, and a
    /// series freed makes room again at the next change.
    #[test]
    fn expiry_series_are_bounded() {
        let metrics = Arc::new(Metrics::new());
        let live = LiveCredentials::new(metrics.clone());
        let expiring = |ns: &str, name: &str| {
            let mut secret = pull_secret(ns, name, ["r.io".to_string()]);
            secret.metadata.annotations =
                Some([(crate::core::expiry::EXPIRES_AT_ANNOTATION.to_string(), "2026-12-04T16:00:00Z".into())].into());
            secret
        };
        let mut index = CredentialIndex::new();
        for i in 0..MAX_EXPIRY_SERIES + 5 {
            index.apply_secret(&expiring(&format!("ns{}", i / 1000), &format!("s{i}")));
        }
        live.replace(index);
        let text = metrics.encode();
        let series = text.lines().filter(|l| l.starts_with("pullsecret_injector_credential_expiry_timestamp_seconds{"));
        assert_eq!(series.count(), MAX_EXPIRY_SERIES);
        assert!(text.contains("pullsecret_injector_credential_expiry_unexported 5\n"), "the rest are counted");
        // The count follows each namespace as it is rebuilt: gone with them.
        live.replace(CredentialIndex::new());
        let text = metrics.encode();
        assert!(text.contains("pullsecret_injector_credential_expiry_unexported 0\n"), "{text}");
        assert!(!text.contains("pullsecret_injector_credential_expiry_timestamp_seconds{"), "{text}");
    }

    #[test]
    fn readiness_fails_while_the_cache_lags_too_much() {
        let r = Readiness::waiting_for(&[]);
        let lag = Arc::new(Mutex::new(Duration::ZERO));
        let probe = lag.clone();
        r.limit_lag(Duration::from_secs(60), move || *probe.lock().unwrap());
        assert_eq!(r.check(), Ok(()));
        *lag.lock().unwrap() = Duration::from_secs(61);
        let why = r.check().unwrap_err();
        assert!(why.contains("lags 61.0s") && why.contains("--max-cache-lag"), "{why}");
        *lag.lock().unwrap() = Duration::from_secs(1);
        assert_eq!(r.check(), Ok(()));
    }
}
