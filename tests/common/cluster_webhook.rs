//! `pullsecret-injector serve` in cluster mode against a [`ControlPlane`], with the manifests' RBAC (through the
//! ServiceAccount's token) and the manifests' own `MutatingWebhookConfiguration`, pointed at it by URL and
//! narrowed to the namespaces labelled `pullsecret-injector.test/webhook=<name>`, so webhooks of several tests
//! (each with its own flags) share one control plane without seeing each other's Pods.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::control_plane::{BIN, ControlPlane, WEBHOOK_LABEL, rendered_manifests, run, run_with_input};

/// How long the webhook may take to start and sync its caches.
const START_WAIT: Duration = Duration::from_secs(60);

pub struct ClusterWebhook {
    /// The value of [`WEBHOOK_LABEL`] that sends a namespace's Pods here; also the configuration's name suffix.
    pub name: String,
    pub webhook: SocketAddr,
    pub admin: SocketAddr,
    /// Where `certs` wrote the serving certificate (rewrite it to rotate).
    pub certs: PathBuf,
    /// Every line the process wrote on stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
    child: Child,
    kubeconfig: PathBuf,
    configuration: String,
    _dir: tempfile::TempDir,
}

impl ClusterWebhook {
    /// Starts the webhook with `extra` flags, waits for `/readyz`, then registers it for the namespaces labelled
    /// with `name`. The process is killed and the registration removed when this is dropped.
    pub fn start(cp: &ControlPlane, name: &str, extra: &[&str]) -> ClusterWebhook {
        let dir = tempfile::tempdir().expect("a folder for the webhook's certificates");
        let certs = dir.path().join("certs");
        write_certs(&certs);
        let kubeconfig = cp.webhook_kubeconfig().to_path_buf();
        let mut child = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--", BIN, "serve"])
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--reload-interval", "200ms"])
            .arg("--tls-cert")
            .arg(certs.join("tls.crt"))
            .arg("--tls-key")
            .arg(certs.join("tls.key"))
            .args(extra)
            .env_clear()
            .env("KUBECONFIG", &kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pullsecret-injector serve");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (serving_tx, serving_rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let log2 = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(" serving ") || line.contains("\"serving\"") {
                    let _ = serving_tx.send(line.clone());
                }
                log2.lock().unwrap().push(line);
            }
        });
        let serving = serving_rx
            .recv_timeout(START_WAIT)
            .unwrap_or_else(|_| panic!("serve did not start; its log:\n{}", log.lock().unwrap().join("\n")));
        let field = |key: &str| -> SocketAddr {
            let value = serving.split_whitespace().find_map(|w| w.strip_prefix(key)).unwrap_or_else(|| panic!("{key}"));
            value.trim_matches('"').parse().unwrap_or_else(|e| panic!("{key}{value}: {e}"))
        };
        let mut hook = ClusterWebhook {
            name: name.to_string(),
            webhook: field("listen="),
            admin: field("admin="),
            certs,
            log,
            child,
            kubeconfig: cp.kubeconfig.clone(),
            configuration: format!("pullsecret-injector-test-{name}"),
            _dir: dir,
        };
        hook.await_ready();
        hook.register(cp);
        hook
    }

    /// Waits until `/readyz` answers 200 (the caches have synced).
    pub fn await_ready(&mut self) {
        let deadline = Instant::now() + START_WAIT;
        while self.admin_get("/readyz").0 != 200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("serve exited ({status}); its log:\n{}", self.log.lock().unwrap().join("\n"));
            }
            assert!(
                Instant::now() < deadline,
                "serve not ready after {START_WAIT:?}; its log:\n{}",
                self.log.lock().unwrap().join("\n")
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// GET on the admin port: (status, body); status 0 when nothing answers.
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5", "-w", "\n%{http_code}"])
            .arg(format!("http://{}{path}", self.admin))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// Writes a new serving certificate (a new CA too) and updates the registration's caBundle: a rotation as
    /// cert-manager does it, while the API server keeps calling.
    pub fn rotate_certificate(&self, cp: &ControlPlane) {
        let fresh = self._dir.path().join("fresh");
        write_certs(&fresh);
        // The CA first in the registration, with the old one kept, so calls succeed throughout; then the files.
        let old_ca = std::fs::read_to_string(self.certs.join("ca.crt")).unwrap();
        let new_ca = std::fs::read_to_string(fresh.join("ca.crt")).unwrap();
        self.patch_ca_bundle(cp, &format!("{old_ca}{new_ca}"));
        for file in ["ca.crt", "tls.crt", "tls.key"] {
            std::fs::copy(fresh.join(file), self.certs.join(file.to_string() + ".new")).unwrap();
        }
        for file in ["tls.key", "tls.crt", "ca.crt"] {
            std::fs::rename(self.certs.join(file.to_string() + ".new"), self.certs.join(file)).unwrap();
        }
    }

    fn patch_ca_bundle(&self, cp: &ControlPlane, pem: &str) {
        let patch =
            json!([{"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": STANDARD.encode(pem)}]);
        run(cp.kubectl().args([
            "patch",
            "mutatingwebhookconfiguration",
            &self.configuration,
            "--type=json",
            "-p",
            &patch.to_string(),
        ]));
    }

    /// The manifests' configuration, called by URL, for this webhook's namespaces only.
    fn register(&self, cp: &ControlPlane) {
        let mut configuration = rendered_manifests("manifests/base")
            .into_iter()
            .find(|o| o["kind"] == "MutatingWebhookConfiguration")
            .expect("the manifests register a MutatingWebhookConfiguration");
        configuration["metadata"] = json!({"name": self.configuration});
        let ca = std::fs::read(self.certs.join("ca.crt")).unwrap();
        for hook in configuration["webhooks"].as_array_mut().unwrap() {
            hook["clientConfig"] =
                json!({"url": format!("https://{}/mutate", self.webhook), "caBundle": STANDARD.encode(&ca)});
            hook["namespaceSelector"]["matchExpressions"]
                .as_array_mut()
                .expect("the manifests' namespaceSelector has matchExpressions")
                .push(json!({"key": WEBHOOK_LABEL, "operator": "In", "values": [self.name]}));
        }
        run_with_input(cp.kubectl().args(["apply", "-f", "-"]), &configuration.to_string());
    }

    /// Kills the process (SIGKILL): the API server then finds nobody at the URL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The log so far, one line each.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for ClusterWebhook {
    fn drop(&mut self) {
        self.kill();
        let _ = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["delete", "mutatingwebhookconfiguration", &self.configuration, "--ignore-not-found", "--wait=false"])
            .stdin(Stdio::null())
            .output();
    }
}

/// A CA and a serving certificate for 127.0.0.1 from the binary's own `certs` subcommand.
fn write_certs(out: &Path) {
    run(Command::new(BIN).args(["certs", "--dns", "localhost", "--ip", "127.0.0.1", "--out"]).arg(out).env_clear());
}

/// The JSON of one object through the admin kubeconfig; None when it does not exist.
pub fn get(cp: &ControlPlane, what: &[&str]) -> Option<Value> {
    let out = run(cp.kubectl().arg("get").args(what).args(["-o", "json", "--ignore-not-found"]));
    if out.trim().is_empty() { None } else { Some(serde_json::from_str(&out).expect("kubectl prints JSON")) }
}
