//! A real Kubernetes control plane for the tests (`tests/cluster/control-plane.sh`: etcd, kube-apiserver and
//! kube-controller-manager of the pinned release, loopback only), and the webhook binary running against it with
//! the manifests' own RBAC and `MutatingWebhookConfiguration`.
//!
//! Nothing outlives the test process: the script and every component carry a parent-death signal (`setpriv
//! --pdeathsig KILL`), and the shared control plane is started from a thread that lives as long as the process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use super::kube_binaries::kube_binaries;
pub use super::process::{run, run_with_input};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The label a namespace carries to be sent to one test webhook (its value names the webhook).
pub const WEBHOOK_LABEL: &str = "pullsecret-injector.test/webhook";
/// Where the manifests install the webhook's ServiceAccount.
pub const INSTALL_NAMESPACE: &str = "pullsecret-injector";

/// One running control plane.
pub struct ControlPlane {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub apiserver: String,
    pub etcd: String,
    pub ca_file: PathBuf,
    script: Mutex<Script>,
    /// The manifests' RBAC and CRD applied, and a kubeconfig for the webhook's ServiceAccount: made on first use.
    webhook_kubeconfig: OnceLock<PathBuf>,
}

struct Script {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl ControlPlane {
    /// The control plane every test of this process shares (started on first use, about 5 s).
    pub fn shared() -> &'static ControlPlane {
        static SHARED: OnceLock<ControlPlane> = OnceLock::new();
        SHARED.get_or_init(|| on_keeper(ControlPlane::start_here))
    }

    /// A control plane of its own, stopped when dropped (or when the calling thread ends): for tests that restart
    /// or break it.
    pub fn dedicated() -> ControlPlane {
        ControlPlane::start_here()
    }

    fn start_here() -> ControlPlane {
        let base = Path::new(ROOT).join("target/control-plane");
        std::fs::create_dir_all(&base).expect("create target/control-plane");
        let dir = tempfile::Builder::new().prefix("run-").tempdir_in(&base).expect("make a state folder").keep();
        let mut child = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--", "bash"])
            .arg(Path::new(ROOT).join("tests/cluster/control-plane.sh"))
            .arg("up")
            .arg(&dir)
            .env("PULLSECRET_INJECTOR_KUBE_BIN", kube_binaries())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tests/cluster/control-plane.sh");
        let stderr = child.stderr.take().unwrap();
        let errors = Arc::new(Mutex::new(String::new()));
        let errors2 = errors.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                errors2.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the control plane's stdout");
        if line.trim() != "ready" {
            let _ = child.wait();
            thread::sleep(Duration::from_millis(100)); // let the stderr reader drain
            panic!("the control plane did not start:\n{}", errors.lock().unwrap());
        }
        let env = std::fs::read_to_string(dir.join("env")).expect("control-plane.sh writes DIR/env");
        let var = |name: &str| -> String {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("DIR/env has no {name}"))
                .to_string()
        };
        ControlPlane {
            kubeconfig: dir.join("kubeconfig"),
            apiserver: var("APISERVER"),
            etcd: var("ETCD"),
            ca_file: PathBuf::from(var("CA_FILE")),
            dir,
            script: Mutex::new(Script { child, stdout }),
            webhook_kubeconfig: OnceLock::new(),
        }
    }

    /// Kills kube-apiserver and starts it again on the same etcd; returns once it is ready. Every open watch
    /// breaks, and clients resume from their last resourceVersion (or get `410 Gone`).
    pub fn restart_apiserver(&self) {
        let mut script = self.script.lock().unwrap();
        let pid = script.child.id().to_string();
        let status = Command::new("kill").args(["-HUP", &pid]).status().expect("run kill");
        assert!(status.success(), "kill -HUP {pid}");
        let mut line = String::new();
        script.stdout.read_line(&mut line).expect("read the control plane's stdout");
        assert_eq!(line.trim(), "restarted", "kube-apiserver did not come back (logs in {})", self.dir.display());
    }

    /// Compacts etcd's history up to its current revision (through etcd's JSON gateway), so a watch resumed
    /// from an older resourceVersion gets `410 Gone` and must relist.
    pub fn compact_etcd(&self) {
        let post = |path: &str, body: &Value| -> Value {
            let out = Command::new("curl")
                .args(["-fsS", "--max-time", "10", "-X", "POST", "-d", &body.to_string()])
                .arg(format!("{}{path}", self.etcd))
                .output()
                .expect("run curl");
            assert!(out.status.success(), "etcd {path}: {}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice(&out.stdout).expect("etcd answers JSON")
        };
        // A range request answers with the current revision in its header.
        let status = post("/v3/kv/range", &json!({"key": "AA=="}));
        let revision = status["header"]["revision"].as_str().expect("etcd reports its revision").to_string();
        post("/v3/kv/compaction", &json!({"revision": revision, "physical": true}));
    }

    /// `kubectl --kubeconfig <admin> ARGS` (with stdin), as the cluster administrator.
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new(super::kubectl::program());
        command.arg("--kubeconfig").arg(&self.kubeconfig).arg(super::kubectl::REQUEST_TIMEOUT);
        command
    }

    /// A kubeconfig for the webhook's own ServiceAccount, bound to nothing but the manifests' RBAC (applied here,
    /// with the CRD, on first use): a missing permission shows up as a failing test.
    pub fn webhook_kubeconfig(&self) -> &Path {
        self.webhook_kubeconfig.get_or_init(|| {
            let objects: Vec<Value> = rendered_manifests("manifests/base")
                .into_iter()
                .filter(|o| {
                    matches!(
                        o["kind"].as_str(),
                        Some(
                            "Namespace"
                                | "ServiceAccount"
                                | "ClusterRole"
                                | "ClusterRoleBinding"
                                | "Role"
                                | "RoleBinding"
                                | "CustomResourceDefinition"
                        )
                    )
                })
                .collect();
            let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
            run_with_input(self.kubectl().args(["apply", "-f", "-"]), &list.to_string());
            run(self.kubectl().args([
                "wait",
                "--for=condition=Established",
                "--timeout=30s",
                "crd/clusterpullsecrets.pullsecret-injector.io",
            ]));
            let token = run(self.kubectl().args([
                "create",
                "token",
                "pullsecret-injector",
                "-n",
                INSTALL_NAMESPACE,
                "--duration=48h",
            ]));
            let path = self.dir.join("webhook.kubeconfig");
            let config = format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster: {{server: \"{}\", \
                 certificate-authority: \"{}\"}}\nusers:\n- name: webhook\n  user: {{token: \"{}\"}}\n\
                 contexts:\n- name: local\n  context: {{cluster: local, user: webhook}}\ncurrent-context: local\n",
                self.apiserver,
                self.ca_file.display(),
                token.trim()
            );
            std::fs::write(&path, config).expect("write the webhook's kubeconfig");
            path
        })
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let script = self.script.get_mut().unwrap();
        let _ = script.child.kill();
        let _ = script.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `f` on a thread that lives as long as the test process and returns its result. A child process started
/// there with a parent-death signal lives until the process ends, not just until the calling test's thread ends
/// (the signal follows the thread that forked).
pub fn on_keeper<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    type Job = Box<dyn FnOnce() + Send>;
    static KEEPER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("process-keeper".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
                // Unreachable while the static holds the sender: the thread ends with the process.
            })
            .expect("spawn the keeper thread");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    // A panic in `f` is the caller's: carried back, and the keeper lives on.
    let job: Job = Box::new(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    keeper.lock().unwrap().send(job).expect("the keeper thread runs");
    match rx.recv().expect("the keeper thread answers") {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// `kubectl kustomize DIR` as JSON objects.
pub fn rendered_manifests(dir: &str) -> Vec<Value> {
    let yaml = run(Command::new("kubectl").arg("kustomize").arg(Path::new(ROOT).join(dir)));
    serde_yaml_ng::Deserializer::from_str(&yaml)
        .map(|doc| {
            let value: serde_yaml_ng::Value = serde::Deserialize::deserialize(doc).expect("kustomize renders YAML");
            serde_json::to_value(value).expect("a manifest is JSON-compatible")
        })
        .filter(|v| !v.is_null())
        .collect()
}
