//! Live cluster mode against a real API server (the shared control plane of tests/common, as in
//! tests/real_cluster.rs): `explain`, `mutate` and `verify` without `--secrets` read the Secrets, Namespaces and
//! ClusterPullSecrets of a kubeconfig context, `explain KIND/NAME` the live object, and the binary works as the
//! kubectl plugin `kubectl pullsecret` with the real kubectl. No webhook is registered here: the objects are stored
//! as created, and what the command line says is compared with what the webhook's rules give.
//!
//! A Secret value planted in the cluster (a pull Secret's password, an Opaque Secret's value) never appears in any
//! output.

mod common;

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use common::binary::{self, Run};
use common::control_plane::ControlPlane;
use common::kubectl::{self, Kubectl};
use common::process::output_within;

const REGISTRY: &str = "registry-a.live.invalid";
const IMAGE: &str = "registry-a.live.invalid/team/app:1.0";
/// Values planted in the cluster that no output may show.
const PLANTED_PASSWORD: &str = "planted-Pull-Pa55word-7f3a";
const PLANTED_OPAQUE: &str = "planted-Opaque-value-91bc";

/// A namespace of this test with a pull Secret `regcred` for [`REGISTRY`], an Opaque Secret, a Deployment `web`
/// and a Pod `solo` of [`IMAGE`]; deleted when dropped.
struct Fixture {
    cp: &'static ControlPlane,
    namespace: String,
}

impl Fixture {
    fn new(test: &str) -> Self {
        let cp = ControlPlane::shared();
        let namespace = format!("psi-live-{}-{test}", common::random_suffix());
        let admin = Kubectl::admin(cp);
        admin.must(&["create", "namespace", &namespace]);
        admin.create_pull_secret(&namespace, "regcred", REGISTRY, PLANTED_PASSWORD);
        admin.must(&[
            "create",
            "secret",
            "generic",
            "opaque",
            "-n",
            &namespace,
            &format!("--from-literal=token={PLANTED_OPAQUE}"),
        ]);
        admin.must(&["create", "deployment", "web", "-n", &namespace, &format!("--image={IMAGE}")]);
        admin.manifest(&["create", "-n", &namespace], &kubectl::pod("solo", &[IMAGE])).expect_success();
        Self { cp, namespace }
    }

    fn kubeconfig(&self) -> &str {
        self.cp.kubeconfig.to_str().unwrap()
    }

    /// The binary with `args`, `--kubeconfig` the administrator's.
    fn run(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--kubeconfig", self.kubeconfig()]);
        let started = std::time::Instant::now();
        let run = binary::run(&all, None);
        // A number for people (no assertion on time): one process, a kubeconfig read, one list per collection.
        eprintln!("{:?}: {:?}", args, started.elapsed());
        run
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = Kubectl::admin(self.cp).run(&["delete", "namespace", &self.namespace, "--wait=false"], None);
    }
}

/// The promise: nothing planted in the cluster is printed, in any spelling the API or a config uses.
fn assert_nothing_planted(run: &Run) {
    let auth = STANDARD.encode(format!("e2e:{PLANTED_PASSWORD}"));
    for text in [&run.stdout, &run.stderr] {
        for planted in [PLANTED_PASSWORD, PLANTED_OPAQUE, &STANDARD.encode(PLANTED_OPAQUE), &auth] {
            assert!(!text.contains(planted), "a planted Secret value was printed: {run:?}");
        }
    }
}

fn answer(run: &Run) -> &str {
    run.stdout.lines().last().unwrap_or_default()
}

#[test]
fn explain_reads_live_objects_and_the_clusters_credentials() {
    let f = Fixture::new("explain");
    let ns = f.namespace.as_str();

    let run = f.run(&["explain", "deployment/web", "-n", ns]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("Object:     Deployment \"web\""), "{run:?}");
    assert_eq!(answer(&run), "Answer: Deployment \"web\" will get: regcred.", "{run:?}");
    assert_nothing_planted(&run);

    let run = f.run(&["explain", "pod/solo", "-n", ns]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(answer(&run), "Answer: Pod \"solo\" will get: regcred.", "{run:?}");
    assert_nothing_planted(&run);

    // Names a Pod lists: a pull Secret, a Secret of another type (known by its metadata only), and none.
    let mut listing = kubectl::pod("listing", &[IMAGE]);
    listing["spec"]["imagePullSecrets"] =
        serde_json::json!([{"name": "opaque"}, {"name": "regcred"}, {"name": "ghost"}]);
    Kubectl::admin(f.cp).manifest(&["create", "-n", ns], &listing).expect_success();
    let run = f.run(&["explain", "pod/listing", "-n", ns]);
    assert_eq!(run.code, 0, "{run:?}");
    let line_of =
        |name: &str| run.stdout.lines().find(|l| l.contains(name) && l.contains("listed")).unwrap_or_default();
    assert!(line_of("opaque").contains("listed, but not a pull Secret"), "{run:?}");
    assert!(line_of("ghost").contains("listed but not found"), "{run:?}");
    assert_nothing_planted(&run);

    // An image, in the live namespace.
    let run = f.run(&["explain", IMAGE, "-n", ns]);
    assert_eq!((run.code, answer(&run)), (0, format!("Answer: {IMAGE} will get: regcred.").as_str()), "{run:?}");
    assert_nothing_planted(&run);

    // Not found, forbidden (the webhook's ServiceAccount may list Secrets but not get Pods), unreachable: one line,
    // exit 2.
    let run = f.run(&["explain", "pod/missing", "-n", ns]);
    assert_eq!((run.code, run.stderr.trim()), (2, format!("error: pod/missing in namespace {ns}: not found").as_str()));
    let webhook = f.cp.webhook_kubeconfig().to_str().unwrap();
    let run = binary::run(&["explain", "pod/solo", "-n", ns, "--kubeconfig", webhook], None);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.starts_with(&format!("error: get pod/solo in namespace {ns}: forbidden: ")), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[test]
fn mutate_and_verify_read_the_clusters_credentials() {
    let f = Fixture::new("mutate");
    let ns = f.namespace.as_str();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pod.yaml");
    common::write_manifests(&file, &[kubectl::pod("new", &[IMAGE])]);
    let file = file.to_str().unwrap();

    let run = f.run(&["mutate", "-f", file, "-n", ns, "-o", "patch"]);
    assert_eq!(run.code, 0, "{run:?}");
    let patch: Value = serde_json::from_str(&run.stdout).unwrap();
    let patch_value = patch.clone();
    assert_eq!(patch[0]["value"], serde_json::json!([{"name": "regcred"}]), "{run:?}");
    assert_nothing_planted(&run);

    // With the webhook's own ServiceAccount: the webhook's RBAC (list) is all live mode needs.
    let webhook = f.cp.webhook_kubeconfig().to_str().unwrap();
    let run = binary::run(&["mutate", "-f", file, "-n", ns, "-o", "patch", "--kubeconfig", webhook], None);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(serde_json::from_str::<Value>(&run.stdout).unwrap(), patch, "{run:?}");

    for output in ["yaml", "json", "review"] {
        let run = f.run(&["mutate", "-f", file, "-n", ns, "-o", output]);
        assert_eq!(run.code, 0, "{run:?}");
        let added = match output {
            "review" => {
                let review: Value = serde_json::from_str(&run.stdout).unwrap();
                let patch = STANDARD.decode(review["response"]["patch"].as_str().unwrap()).unwrap();
                serde_json::from_slice::<Value>(&patch).unwrap() == patch_value
            }
            _ => run.stdout.contains("name: regcred") || run.stdout.contains(r#""name": "regcred""#),
        };
        assert!(added, "{run:?}");
        assert_nothing_planted(&run);
    }

    // verify lists the namespace's pull Secrets (the Opaque one is never read); `.invalid` never resolves.
    let run = f.run(&["verify", "-n", ns, "-o", "json", "--timeout", "5s"]);
    let rows: Vec<Value> = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    assert_eq!(rows.len(), 1, "{run:?}");
    assert_eq!((rows[0]["namespace"].as_str(), rows[0]["secret"].as_str()), (Some(ns), Some("regcred")));
    assert_eq!(rows[0]["registry"], REGISTRY);
    assert_eq!(run.code, if rows[0]["status"] == "ok" { 0 } else { 1 }, "{run:?}");
    assert_nothing_planted(&run);
    // -A: every namespace's pull Secrets, this one's among them.
    let run = f.run(&["verify", "-A", "-o", "json", "--timeout", "5s"]);
    let rows: Vec<Value> = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    assert!(rows.iter().any(|r| r["namespace"] == ns && r["secret"] == "regcred"), "{run:?}");
    assert!(rows.iter().all(|r| r["secret"] != "opaque"), "{run:?}");
    assert_nothing_planted(&run);
    let run = f.run(&["verify", "-n", ns, "--timeout", "5s"]);
    assert!(run.stdout.contains(&format!("{ns}/regcred")), "{run:?}");
    assert_nothing_planted(&run);
}

/// `kubectl pullsecret ...`: the real kubectl finds the binary as `kubectl-pullsecret` on the PATH (the link `make
/// install` makes) and runs it with the rest of the command line; KUBECONFIG is how kubectl's context reaches it.
#[test]
fn the_binary_works_as_a_kubectl_plugin() {
    let f = Fixture::new("plugin");
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(binary::BIN, dir.path().join("kubectl-pullsecret")).unwrap();
    let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
    let kubectl = |args: &[&str]| {
        let mut command = Command::new(kubectl::program());
        command.args(args).env("PATH", &path).env("KUBECONFIG", f.kubeconfig()).env("NO_PROXY", "*");
        let out = output_within(&mut command, None, binary::RUN_WAIT);
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let plugins = kubectl(&["plugin", "list"]);
    assert!(plugins.stdout.contains("kubectl-pullsecret"), "{plugins:?}");

    let run = kubectl(&["pullsecret", "explain", "pod/solo", "-n", &f.namespace]);
    assert_eq!((run.code, answer(&run)), (0, "Answer: Pod \"solo\" will get: regcred."), "{run:?}");
    assert_nothing_planted(&run);

    // The usage line names the plugin as it was typed.
    let run = kubectl(&["pullsecret", "explain", "--help"]);
    assert!(run.stdout.contains("Usage: kubectl pullsecret explain "), "{run:?}");
}

/// A ClusterPullSecret's credential, read from the cluster, is offered where it selects (no controller runs here,
/// so the copy is "not in the inputs yet"), and not where a Secret of another type holds its target name (the
/// kubelet would read that one): the index is built by the webhook's own feeds.
#[test]
fn cluster_pull_secrets_are_read_as_the_webhook_reads_them() {
    let cp = ControlPlane::shared();
    cp.webhook_kubeconfig(); // installs the CRD
    let run_id = common::random_suffix();
    let admin = Kubectl::admin(cp);
    let mut created = kubectl::Created::new(admin.clone(), false, "kubectl delete ns,cps -l psi-live");
    let (wait, interval) = (std::time::Duration::from_secs(60), std::time::Duration::from_millis(100));
    let label = ("psi-live-tenant", run_id.as_str());
    let source = created.namespace(&format!("psi-live-{run_id}-src"), &[], wait, interval);
    let tenant = created.namespace(&format!("psi-live-{run_id}-a"), &[label], wait, interval);
    let taken = created.namespace(&format!("psi-live-{run_id}-b"), &[label], wait, interval);
    admin.create_pull_secret(&source, "corp-src", "corp.live.invalid", PLANTED_PASSWORD);
    admin.must(&[
        "create",
        "secret",
        "generic",
        "corp",
        "-n",
        &taken,
        &format!("--from-literal=token={PLANTED_OPAQUE}"),
    ]);
    let cps = created.cluster_pull_secret(&format!("psi-live-{run_id}"), &[], (&source, "corp-src"), label, "corp");

    let kubeconfig = cp.kubeconfig.to_str().unwrap();
    let explain = |namespace: &str| {
        let run =
            binary::run(&["explain", "corp.live.invalid/base:1", "-n", namespace, "--kubeconfig", kubeconfig], None);
        assert_eq!(run.code, 0, "{run:?}");
        assert_nothing_planted(&run);
        run
    };
    let run = explain(&tenant);
    assert_eq!(answer(&run), "Answer: corp.live.invalid/base:1 will get: corp.", "{run:?}");
    assert!(run.stdout.contains(&format!("copy of ClusterPullSecret {cps}, not in the inputs yet")), "{run:?}");
    let run = explain(&taken);
    assert!(answer(&run).starts_with("Answer: corp.live.invalid/base:1 will get no Secret"), "{run:?}");
}
