//! Issue 11, classes 8 and 12-14: what a tenant with only namespaced rights (the built-in `edit` ClusterRole bound
//! in its own namespace, impersonated with the admin kubeconfig) could do to everyone else through the webhook and
//! the ClusterPullSecret controller, against the real API server of `tests/cluster/control-plane.sh` and the
//! webhook binary in cluster mode with the manifests' RBAC (`ClusterWebhook`).
//!
//! Each test starts its own webhook, registered for its own namespaces only, and the tests of this file run one
//! at a time: one test's flood must not disturb another's webhook. Every wait is a bounded poll on an observable
//! outcome (what a server-side dry run injects, a Secret's data, a condition); the only pacing is the attacker's own
//! (a relabel every second). What a test asserts is an outcome observed while the attack provably still runs (the
//! attacker's own progress counted before and after it), never a duration: speed is measured by the benchmarks.
//! The durations these tests observe are printed (`cargo test --test tenant_attacks -- --nocapture`) and recorded
//! in docs/multi-tenancy.md.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use common::cluster_webhook::ClusterWebhook;
use common::control_plane::{ControlPlane, WEBHOOK_LABEL};
use common::kubectl::{self, CLUSTER_PULL_SECRETS, Created, Kubectl, condition, poll, pull_secret_names};

const POLL: Duration = Duration::from_millis(100);
/// The webhook or the controller following a change: normally well under a second.
const WAIT: Duration = Duration::from_secs(60);
/// The label the tests' ClusterPullSecrets select namespaces by (its value is the test's prefix).
const SELECT_LABEL: &str = "tenant-attacks.pullsecret-injector.test/selected";
/// The webhook's memory limit in manifests/base/deployment.yaml.
const MEMORY_LIMIT_BYTES: u64 = 128 * 1024 * 1024;

const CORP_SERVER: &str = "registry.corp.e2e.invalid";
const CORP_IMAGE: &str = "registry.corp.e2e.invalid/platform/base:1.0";
const CANARY_SERVER: &str = "canary.e2e.invalid";
const CANARY_IMAGE: &str = "canary.e2e.invalid/probe:1.0";
const TENANT_B_SERVER: &str = "registry-b.e2e.invalid";
const TENANT_B_IMAGE: &str = "registry-b.e2e.invalid/team/app:1.0";

/// The tests of this file one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// One test's namespaces, tenants and ClusterPullSecrets, deleted when it ends (also when it fails).
struct World {
    cp: &'static ControlPlane,
    admin: Kubectl<'static>,
    prefix: String,
    webhook: String,
    created: Created<'static>,
}

impl World {
    /// `test` is a short DNS-label-safe name; the world's namespaces are sent to the webhook named `webhook`.
    fn new(cp: &'static ControlPlane, test: &str, webhook: &ClusterWebhook) -> Self {
        let admin = Kubectl::admin(cp);
        Self {
            cp,
            created: Created::new(admin.clone(), false, ""),
            admin,
            prefix: format!("ta-{test}-{}", common::random_suffix()),
            webhook: webhook.name.clone(),
        }
    }

    /// The admin creates namespace `<prefix>-<role>` (sent to the webhook) and binds `edit` there to `user`, who
    /// is then a tenant with only namespaced rights.
    fn tenant(&mut self, role: &str, user: &str) -> (String, Kubectl<'static>) {
        let name = self.namespace(role);
        self.admin.must(&[
            "create",
            "rolebinding",
            "tenant-edit",
            "--clusterrole=edit",
            &format!("--user={user}"),
            "-n",
            &name,
        ]);
        let tenant = Kubectl::tenant(self.cp, user);
        // The authorizer follows RoleBindings through a watch: a few milliseconds.
        poll(&format!("{user} allowed to create Secrets in {name}"), WAIT, POLL, || {
            match tenant.run(&["auth", "can-i", "create", "secrets", "-n", &name], None).stdout.trim() {
                "yes" => Ok(()),
                other => Err(other.to_string()),
            }
        });
        let cannot = tenant.run(&["auth", "can-i", "list", "secrets", "--all-namespaces"], None);
        assert_eq!(cannot.stdout.trim(), "no", "{user} has namespaced rights only");
        (name, tenant)
    }

    /// The admin creates namespace `<prefix>-<role>`, sent to the webhook, ready for Pods.
    fn namespace(&mut self, role: &str) -> String {
        let name = format!("{}-{role}", self.prefix);
        self.created.namespace(&name, &[(WEBHOOK_LABEL, &self.webhook)], WAIT, POLL)
    }

    /// Selects `namespace` for this world's ClusterPullSecrets.
    fn select(&self, namespace: &str) {
        self.admin.label_namespace(namespace, &format!("{SELECT_LABEL}={}", self.prefix));
    }

    /// A ClusterPullSecret named `<prefix>-<name>` that distributes `source` as `target` to the selected namespaces.
    fn cluster_pull_secret(&mut self, name: &str, source: (&str, &str), target: &str) -> String {
        let name = format!("{}-{name}", self.prefix);
        self.created.cluster_pull_secret(&name, &[], source, (SELECT_LABEL, &self.prefix), target)
    }
}

/// A dockerconfigjson Secret object whose payload holds these registry keys (entries without credentials, which
/// the kubelet accepts: only the keys matter here).
fn pull_secret_object(namespace: &str, name: &str, keys: impl IntoIterator<Item = String>) -> Value {
    let auths: serde_json::Map<String, Value> = keys.into_iter().map(|k| (k, json!({}))).collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": STANDARD.encode(json!({"auths": auths}).to_string())},
    })
}

fn pod(images: &[&str]) -> Value {
    kubectl::pod("probe", images)
}

/// The payload the kubelet reads, as the API returns it (compared, never printed).
fn payload(secret: &Value) -> Option<String> {
    kubectl::payload(secret).map(String::from)
}

/// Waits until a dry-run Pod with `images` in `namespace` gets exactly `expected` from the webhook.
fn await_injection(who: &Kubectl, namespace: &str, images: &[&str], expected: &[&str]) {
    who.await_injection(namespace, &pod(images), expected, WAIT, POLL);
}

/// Whether a dry-run Pod with `images` in `namespace` gets exactly `expected`.
fn injects(who: &Kubectl, namespace: &str, images: &[&str], expected: &[&str]) -> bool {
    who.dry_run_pod(namespace, &pod(images)).is_ok_and(|admitted| pull_secret_names(&admitted) == expected)
}

/// Polls `check` every [`POLL`] until it holds, for at most `timeout`; returns how long that took (printed, never
/// asserted on).
fn took_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    poll(what, timeout, POLL, || if check() { Ok(started.elapsed()) } else { Err("not yet".to_string()) })
}

/// A metric's value on the webhook's admin port (0 when absent).
fn metric(hook: &ClusterWebhook, series: &str) -> f64 {
    common::metric(&hook.admin_get("/metrics").1, series).unwrap_or(0.0)
}

/// The webhook process's peak resident memory, from /proc.
fn peak_memory_bytes(hook: &ClusterWebhook) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", hook.pid())).expect("/proc/PID/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib * 1024
}

/// Runs an attacker's loop on a thread until the returned guard is dropped, counting the rounds it completes.
struct Attack {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Attack {
    fn start(mut round: impl FnMut(usize) + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicUsize::new(0));
        let (stopped, done) = (stop.clone(), rounds.clone());
        let thread = thread::spawn(move || {
            let mut i = 0;
            while !stopped.load(Ordering::SeqCst) {
                round(i);
                i += 1;
                done.store(i, Ordering::SeqCst);
            }
        });
        Self { stop, rounds, thread: Some(thread) }
    }

    /// The rounds completed so far.
    fn rounds(&self) -> usize {
        self.rounds.load(Ordering::SeqCst)
    }

    /// Whether the attacker is still at it (it only stops when dropped, or by failing).
    fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|thread| !thread.is_finished())
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Creates `count` Secrets through `client`, 16 requests at a time; `created` counts them as they land.
async fn flood(
    client: kube::Client,
    namespace: String,
    count: usize,
    created: Arc<AtomicUsize>,
    make: fn(&str, usize) -> Value,
) {
    let api: Api<Secret> = Api::namespaced(client, &namespace);
    futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            let secret: Secret = serde_json::from_value(make(&namespace, i)).expect("a Secret");
            let created = created.clone();
            async move {
                api.create(&PostParams::default(), &secret)
                    .await
                    .expect("the tenant may create Secrets in its namespace");
                created.fetch_add(1, Ordering::SeqCst);
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime")
}

// --- Class 8 ------------------------------------------------------------------------------------------------

/// Class 8: a tenant takes the distributed credential's name with a Secret of another type (`Opaque`, with a
/// docker-looking payload the kubelet ignores). The kubelet would find no pull credential under that name in its
/// namespace, so the webhook must neither inject the name nor let it satisfy `--deny-unmatched`, whether the Pod
/// lists it or not. The distribution still works where the name is free (with or without a copy yet).
#[test]
fn a_tenant_secret_of_another_type_under_the_distributed_name_is_no_credential() {
    let _serial = serial();
    let cp = ControlPlane::shared();
    let hook = ClusterWebhook::start(cp, "ta-names", &["--deny-unmatched", "*.corp.e2e.invalid"]);
    let mut w = World::new(cp, "names", &hook);
    let platform = w.namespace("platform");
    w.admin.create_pull_secret(&platform, "corp-source", CORP_SERVER, "platform-password");
    w.admin.create_pull_secret(&platform, "canary-source", CANARY_SERVER, "canary-password");
    let (tenant_ns, tenant) = w.tenant("a", "tenant-a");
    let other_ns = w.namespace("b");
    let cps = w.cluster_pull_secret("corp", (&platform, "corp-source"), "corp-registry");
    // A second distribution to the same namespaces, for another registry: it shows when the webhook has seen a
    // namespace's selection, so that no assertion below can pass only because the webhook has not seen it yet.
    w.cluster_pull_secret("canary", (&platform, "canary-source"), "canary-registry");

    // The tenant takes the name before its namespace is selected (it cannot stop the selection; it can race it).
    let opaque = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "corp-registry", "namespace": tenant_ns},
        "stringData": {".dockerconfigjson": json!({"auths": {CORP_SERVER: {"auth": STANDARD.encode("x:y")}}}).to_string()},
    });
    tenant.manifest(&["create"], &opaque).expect_success();
    w.select(&other_ns);
    w.select(&tenant_ns);

    await_injection(&w.admin, &other_ns, &[CORP_IMAGE], &["corp-registry"]);
    await_injection(&tenant, &tenant_ns, &[CANARY_IMAGE], &["canary-registry"]);
    // The webhook now knows the tenant's namespace is selected: the corp image has no credential there.
    for listed in [false, true] {
        let mut p = pod(&[CORP_IMAGE]);
        if listed {
            p["spec"]["imagePullSecrets"] = json!([{"name": "corp-registry"}]);
        }
        match tenant.dry_run_pod(&tenant_ns, &p) {
            Err(why) => assert!(
                why.contains("no pull credential") && why.contains(CORP_IMAGE),
                "listed: {listed}: denied for the right reason: {why}"
            ),
            Ok(admitted) => panic!(
                "listed: {listed}: admitted with {:?}, though {tenant_ns}/corp-registry is an Opaque Secret",
                pull_secret_names(&admitted)
            ),
        }
    }
    // The controller reports the name as taken, and never touched the tenant's Secret.
    poll(&format!("a Conflict condition on {cps} naming {tenant_ns}"), WAIT, POLL, || {
        let object = w.admin.get(&[CLUSTER_PULL_SECRETS, &cps]).ok_or("gone")?;
        match condition(&object, "Conflict") {
            Some(c) if c["status"] == "True" && c["message"].as_str().is_some_and(|m| m.contains(&tenant_ns)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let still = w.admin.get(&["secret", "corp-registry", "-n", &tenant_ns]).expect("the tenant's Secret");
    assert_eq!(still["type"], "Opaque");

    // The tenant gives the name back: the distribution reaches its namespace again.
    tenant.must(&["delete", "secret", "corp-registry", "-n", &tenant_ns]);
    await_injection(&tenant, &tenant_ns, &[CORP_IMAGE], &["corp-registry"]);
}

// --- Class 12 -----------------------------------------------------------------------------------------------

/// Class 12: a tenant creates two pull Secrets of 60,000 registry keys (about 700 KB of payload each) and
/// relabels them every second. Another tenant's Pods, admitted all the while, must get their Secret (the API server
/// gives a webhook 5 s, then admits the Pod without it: a webhook that stalls shows as a Pod without its Secret),
/// while the webhook provably takes in the relabels; `/readyz` stays 200, the huge Secrets are reported as not
/// indexed, and the webhook stays inside the manifests' memory limit.
#[test]
fn a_tenant_huge_pull_secret_relabelled_stalls_no_other_tenant() {
    /// Rounds of relabelling (one a second) during which tenant B's Pods are admitted.
    const ROUNDS: usize = 20;
    let _serial = serial();
    let cp = ControlPlane::shared();
    let hook = ClusterWebhook::start(cp, "ta-huge", &[]);
    let mut w = World::new(cp, "huge", &hook);
    let (ns_a, tenant_a) = w.tenant("a", "tenant-a");
    let (ns_b, tenant_b) = w.tenant("b", "tenant-b");
    tenant_b.create_pull_secret(&ns_b, "reg-b", TENANT_B_SERVER, "tenant-b-password");
    await_injection(&tenant_b, &ns_b, &[TENANT_B_IMAGE], &["reg-b"]);

    for name in ["huge-1", "huge-2"] {
        let huge = pull_secret_object(&ns_a, name, (0..60_000).map(|i| format!("k{i}")));
        assert!(huge.to_string().len() > 700_000);
        tenant_a.manifest(&["create"], &huge).expect_success();
    }
    let relabel = {
        let (tenant_a, ns_a) = (tenant_a.clone(), ns_a.clone());
        let started = Instant::now();
        Attack::start(move |i| {
            for name in ["huge-1", "huge-2"] {
                tenant_a.run(&["label", "secret", name, "-n", &ns_a, &format!("round={i}"), "--overwrite"], None);
            }
            // One round a second, as in the issue: the attacker's pace, not a wait for anything.
            let next = Duration::from_secs(i as u64 + 1);
            thread::sleep(next.saturating_sub(started.elapsed()));
        })
    };

    // Every admission below starts while the attack runs (it stops only when dropped, after the loop), and the
    // webhook's namespace rebuilds, counted before and after, show it took the relabels in meanwhile.
    let rebuilds = "pullsecret_injector_index_rebuilds_total";
    let rebuilds_before = metric(&hook, rebuilds);
    let mut latencies = Vec::new();
    while relabel.running() && relabel.rounds() < ROUNDS {
        let t = Instant::now();
        let answer = tenant_b.dry_run_pod(&ns_b, &pod(&[TENANT_B_IMAGE]));
        let took = t.elapsed();
        latencies.push(took);
        let names = answer.as_ref().map(pull_secret_names);
        assert_eq!(names, Ok(vec!["reg-b".to_string()]), "tenant B's Pod after {took:?}");
        assert_eq!(hook.admin_get("/readyz").0, 200, "ready throughout");
    }
    let rebuilt = metric(&hook, rebuilds) - rebuilds_before;
    assert!(relabel.rounds() >= ROUNDS, "the attacker stopped after {} rounds", relabel.rounds());
    drop(relabel);
    assert!(rebuilt > 0.0, "the webhook took in none of the relabels while tenant B's Pods were admitted");
    latencies.sort();
    let (median, slowest) = (latencies[latencies.len() / 2], *latencies.last().unwrap());
    let peak = peak_memory_bytes(&hook);
    eprintln!(
        "class 12: {} Pods of tenant B while two 60,000-key Secrets were relabelled every second ({rebuilt} namespace \
         rebuilds meanwhile): median {median:?}, slowest {slowest:?} (kubectl's whole round trip); webhook peak RSS \
         {:.1} MiB",
        latencies.len(),
        peak as f64 / 1048576.0
    );
    assert!(peak < MEMORY_LIMIT_BYTES, "peak RSS {peak} bytes, over the 128Mi limit");
    let limited = "pullsecret_injector_index_limited_secrets{limit=\"secret_bytes\"}";
    poll("both huge Secrets reported", WAIT, POLL, || {
        let n = metric(&hook, limited);
        if n == 2.0 { Ok(()) } else { Err(format!("{limited} {n}")) }
    });
    assert!(hook.log_text().contains("over a bound of the credential index"), "a warning is logged");
}

// --- Class 13 -----------------------------------------------------------------------------------------------

/// Class 13, the index: a tenant creates 3,000 small pull Secrets as fast as the API server takes them. Another
/// tenant's brand-new Secret, created a third of the way in, must reach its Pods while the flood is still being
/// created (it does not wait for the flood to be taken in: the webhook's updates are fair across namespaces), and
/// the webhook catches up with the flood itself.
#[test]
fn a_tenant_flood_of_pull_secrets_delays_no_other_tenant() {
    const FLOOD: usize = 3_000;
    let _serial = serial();
    let cp = ControlPlane::shared();
    let hook = ClusterWebhook::start(cp, "ta-flood", &[]);
    let mut w = World::new(cp, "flood", &hook);
    let (ns_a, tenant_a) = w.tenant("a", "tenant-a");
    let (ns_b, tenant_b) = w.tenant("b", "tenant-b");

    // Without a flood: how long a new Secret takes to reach a Pod (printed, for comparison).
    tenant_b.create_pull_secret(&ns_b, "reg-quiet", "quiet.e2e.invalid", "quiet-password");
    let t = Instant::now();
    await_injection(&tenant_b, &ns_b, &["quiet.e2e.invalid/app:1"], &["reg-quiet"]);
    let quiet = t.elapsed();

    let rt = runtime();
    let created = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let flood = rt.spawn(flood(rt.block_on(tenant_a.client()), ns_a.clone(), FLOOD, created.clone(), |ns, i| {
        pull_secret_object(ns, &format!("flood-{i}"), [format!("r{i}.flood.e2e.invalid")])
    }));
    poll("a third of the flood", WAIT, POLL, || {
        if created.load(Ordering::SeqCst) >= FLOOD / 3 {
            Ok(())
        } else {
            Err(format!("{}", created.load(Ordering::SeqCst)))
        }
    });
    tenant_b.create_pull_secret(&ns_b, "reg-b", TENANT_B_SERVER, "tenant-b-password");
    let during = took_until("tenant B's Secret to reach its Pods", Duration::from_secs(120), || {
        injects(&tenant_b, &ns_b, &[TENANT_B_IMAGE], &["reg-b"])
    });
    // Counted after tenant B's Secret was seen injected: the flood was still in progress then.
    let created_by_then = created.load(Ordering::SeqCst);
    rt.block_on(flood).expect("the flood completes");
    let flood_took = started.elapsed();
    // The webhook keeps up with the flood itself too: its last Secret reaches tenant A's Pods.
    let last_image = format!("r{}.flood.e2e.invalid/app:1", FLOOD - 1);
    let last_name = format!("flood-{}", FLOOD - 1);
    let catch_up = took_until("the flood's last Secret to reach tenant A's Pods", Duration::from_secs(120), || {
        injects(&tenant_a, &ns_a, &[&last_image], &[&last_name])
    });
    eprintln!(
        "class 13 (index): tenant A created {FLOOD} pull Secrets in {flood_took:?}; tenant B's new Secret reached its \
         Pods in {during:?} during the flood, {created_by_then} of its Secrets created by then ({quiet:?} without); \
         the flood's last Secret {catch_up:?} after it ended"
    );
    assert!(
        created_by_then < FLOOD,
        "tenant B's Secret reached its Pods only once all {FLOOD} Secrets of the flood were created: it waited for the \
         flood"
    );
}

/// Class 13, the controller: a tenant creates 2,000 `Opaque` Secrets labelled like the controller's copies and
/// keeps relabelling them. While it does (its patches are counted before and after each wait), a rotation of the
/// source must still reach the copies, and a newly selected namespace get its copy; and the controller leaves
/// every one of those Secrets alone.
#[test]
fn forged_copies_delay_neither_a_rotation_nor_a_new_copy() {
    const FORGED: usize = 2_000;
    let _serial = serial();
    let cp = ControlPlane::shared();
    let hook = ClusterWebhook::start(cp, "ta-forged", &[]);
    let mut w = World::new(cp, "forged", &hook);
    let platform = w.namespace("platform");
    w.admin.create_pull_secret(&platform, "corp-source", CORP_SERVER, "first-password");
    let (ns_a, tenant_a) = w.tenant("a", "tenant-a");
    let ns_b = w.namespace("b");
    let ns_c = w.namespace("c");
    let cps = w.cluster_pull_secret("corp", (&platform, "corp-source"), "corp-registry");
    w.select(&ns_b);
    let copy_in = |ns: &str| w.admin.get(&["secret", "corp-registry", "-n", ns]);
    poll("the first copy", WAIT, POLL, || copy_in(&ns_b).map(drop).ok_or("not yet".to_string()));

    let rt = runtime();
    let created = Arc::new(AtomicUsize::new(0));
    static CPS_NAME: Mutex<String> = Mutex::new(String::new());
    *CPS_NAME.lock().unwrap() = cps.clone();
    let forge = |ns: &str, i: usize| {
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {
                "name": format!("forged-{i}"), "namespace": ns,
                "labels": {
                    "app.kubernetes.io/managed-by": "pullsecret-injector",
                    "pullsecret-injector.io/cluster-pull-secret": *CPS_NAME.lock().unwrap(),
                },
            },
            "stringData": {"x": "y"},
        })
    };
    let client = rt.block_on(tenant_a.client());
    rt.block_on(flood(client.clone(), ns_a.clone(), FORGED, created.clone(), forge));
    // Then it keeps relabelling them, as fast as the API server lets it, until the test is done.
    let patched = Arc::new(AtomicUsize::new(0));
    let relabel = {
        let api: Api<Secret> = Api::namespaced(client, &ns_a);
        let handle = rt.handle().clone();
        let patched = patched.clone();
        Attack::start(move |round| {
            handle.block_on(
                futures::stream::iter(0..FORGED)
                    .map(|i| {
                        let (api, patched) = (api.clone(), patched.clone());
                        let patch = json!({"metadata": {"labels": {"round": round.to_string()}}});
                        async move {
                            let name = format!("forged-{i}");
                            if api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.is_ok() {
                                patched.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    })
                    .buffer_unordered(16)
                    .collect::<Vec<_>>(),
            );
        })
    };

    let before = payload(&copy_in(&ns_b).unwrap());
    let patched_before = patched.load(Ordering::SeqCst);
    let t = Instant::now();
    w.admin.rotate_pull_secret(&platform, "corp-source", CORP_SERVER, "rotated-password");
    let rotated = payload(&w.admin.get(&["secret", "corp-source", "-n", &platform]).unwrap());
    assert_ne!(rotated, before);
    // Timed from the rotation of the source.
    took_until("the rotation to reach the copy", Duration::from_secs(90), || {
        copy_in(&ns_b).is_some_and(|c| payload(&c) == rotated)
    });
    let rotation = t.elapsed();
    let patched_at_rotation = patched.load(Ordering::SeqCst);
    let t = Instant::now();
    w.select(&ns_c);
    took_until("the newly selected namespace's copy", Duration::from_secs(90), || copy_in(&ns_c).is_some());
    let new_copy = t.elapsed();
    let patched_at_new_copy = patched.load(Ordering::SeqCst);
    let relabelling = relabel.running();
    drop(relabel);
    eprintln!(
        "class 13 (controller): while {FORGED} forged copies were relabelled without a pause, a rotation reached the \
         copy in {rotation:?} and a newly selected namespace got its copy in {new_copy:?} ({} and {} patches \
         meanwhile)",
        patched_at_rotation - patched_before,
        patched_at_new_copy - patched_at_rotation
    );
    // Both happened while the attacker was at it: it patched forged copies during each wait, and it still runs.
    assert!(relabelling, "the attacker stopped");
    assert!(patched_at_rotation > patched_before, "no forged copy was patched while the rotation was awaited");
    assert!(patched_at_new_copy > patched_at_rotation, "no forged copy was patched while the new copy was awaited");
    let left = w.admin.must(&["get", "secrets", "-n", &ns_a, "-o", "name"]);
    assert_eq!(left.lines().filter(|l| l.contains("forged-")).count(), FORGED, "no forged Secret deleted");
}

// --- Class 14 -----------------------------------------------------------------------------------------------

/// Class 14: a tenant patches the copy distributed to its namespace with its own credentials. The controller
/// must notice (the copy's payload no longer hashes to what it wrote), restore it, count it, and say so in an
/// Event on the ClusterPullSecret; the status stays truthful.
#[test]
fn a_tenant_edit_of_its_copy_is_restored_counted_and_reported() {
    let _serial = serial();
    let cp = ControlPlane::shared();
    let hook = ClusterWebhook::start(cp, "ta-drift", &[]);
    let mut w = World::new(cp, "drift", &hook);
    let platform = w.namespace("platform");
    w.admin.create_pull_secret(&platform, "corp-source", CORP_SERVER, "platform-password");
    let (ns_a, tenant_a) = w.tenant("a", "tenant-a");
    let cps = w.cluster_pull_secret("corp", (&platform, "corp-source"), "corp-registry");
    w.select(&ns_a);
    let source = payload(&w.admin.get(&["secret", "corp-source", "-n", &platform]).unwrap());
    poll("the copy", WAIT, POLL, || match tenant_a.get(&["secret", "corp-registry", "-n", &ns_a]) {
        Some(copy) if payload(&copy) == source => Ok(()),
        other => Err(format!("{:?}", other.map(|c| c["metadata"]["name"].clone()))),
    });

    let own = json!({"auths": {CORP_SERVER: {"auth": STANDARD.encode("tenant:tenant-password")}}}).to_string();
    let patch = json!({"data": {".dockerconfigjson": STANDARD.encode(own)}}).to_string();
    let t = Instant::now();
    tenant_a.must(&["patch", "secret", "corp-registry", "-n", &ns_a, "--type=merge", "-p", &patch]);
    poll("the copy restored", WAIT, POLL, || {
        let copy = tenant_a.get(&["secret", "corp-registry", "-n", &ns_a]).ok_or("gone")?;
        if payload(&copy) == source { Ok(()) } else { Err("still the tenant's payload".to_string()) }
    });
    let restored = t.elapsed();
    eprintln!("class 14: the tenant's edit of its copy was undone in {restored:?}");
    poll("the restore counted", WAIT, POLL, || match metric(&hook, "pullsecret_injector_copies_restored_total") {
        n if n >= 1.0 => Ok(()),
        n => Err(format!("{n}")),
    });
    poll("a CopyModified Event on the ClusterPullSecret", WAIT, POLL, || {
        let events = w.admin.get(&["events.events.k8s.io", "-n", "default"]).ok_or("no list")?;
        let found = events["items"].as_array().into_iter().flatten().any(|e| {
            e["reason"] == "CopyModified"
                && e["regarding"]["name"] == cps.as_str()
                && e["note"].as_str().is_some_and(|n| n.contains(&ns_a))
        });
        if found { Ok(()) } else { Err("not yet".to_string()) }
    });
    let object = w.admin.get(&[CLUSTER_PULL_SECRETS, &cps]).unwrap();
    let ready = condition(&object, "Ready").cloned();
    assert_eq!(ready.map(|r| r["status"].clone()), Some(json!("True")), "{}", object["status"]);
}
