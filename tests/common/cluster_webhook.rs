//! `pullsecret-injector serve` in cluster mode against a [`ControlPlane`], with the manifests' RBAC (through the
//! ServiceAccount's token) and the manifests' own `MutatingWebhookConfiguration`, pointed at it by URL and
//! narrowed to the namespaces labelled `pullsecret-injector.test/webhook=<name>`, so webhooks of several tests
//! (each with its own flags) share one control plane without seeing each other's Pods.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::binary::{Options, Served, certs};
use super::control_plane::{ControlPlane, WEBHOOK_LABEL, rendered_manifests, run, run_with_input};

/// How long the webhook may take to start and sync its caches.
const START_WAIT: Duration = Duration::from_secs(60);

pub struct ClusterWebhook {
    /// The value of [`WEBHOOK_LABEL`] that sends a namespace's Pods here; also the configuration's name suffix.
    pub name: String,
    pub webhook: SocketAddr,
    pub admin: SocketAddr,
    /// Where `certs` wrote the serving certificate (rewrite it to rotate).
    pub certs: PathBuf,
    served: Served,
    kubeconfig: PathBuf,
    configuration: String,
    _dir: tempfile::TempDir,
}

impl ClusterWebhook {
    /// Starts the webhook with `extra` flags, waits for `/readyz`, then registers it for the namespaces labelled
    /// with `name`. The process is killed and the registration removed when this is dropped.
    pub fn start(cp: &ControlPlane, name: &str, extra: &[&str]) -> ClusterWebhook {
        let dir = tempfile::tempdir().expect("a folder for the webhook's certificates");
        let certs_dir = dir.path().join("certs");
        certs(&certs_dir);
        let kubeconfig = cp.webhook_kubeconfig().to_path_buf();
        let mut args = vec!["--reload-interval", "200ms"];
        args.extend(extra);
        let env = [("KUBECONFIG", kubeconfig.as_os_str())];
        let served = Served::start_with(&certs_dir, &args, Options { env: &env, ..Options::default() });
        let mut hook = ClusterWebhook {
            name: name.to_string(),
            webhook: served.webhook,
            admin: served.admin,
            certs: certs_dir,
            served,
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
        self.served.until_ready_blocking(START_WAIT);
    }

    /// GET on the admin port: (status, body); status 0 when nothing answers.
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        self.served.admin_get_blocking(path)
    }

    /// The process id of the webhook.
    pub fn pid(&self) -> u32 {
        self.served.pid()
    }

    /// Writes a new serving certificate (a new CA too) and updates the registration's caBundle: a rotation as
    /// cert-manager does it, while the API server keeps calling.
    pub fn rotate_certificate(&self, cp: &ControlPlane) {
        let fresh = self._dir.path().join("fresh");
        certs(&fresh);
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
        self.served.kill();
    }

    /// The log so far, one line each.
    pub fn log_text(&self) -> String {
        self.served.log()
    }
}

impl Drop for ClusterWebhook {
    fn drop(&mut self) {
        self.kill();
        let _ = Command::new(super::kubectl::program())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["delete", "mutatingwebhookconfiguration", &self.configuration, "--ignore-not-found", "--wait=false"])
            .stdin(Stdio::null())
            .output();
    }
}
