//! `kubectl` (`$KUBECTL`, default `kubectl`) against a [`ControlPlane`] or the current context, as a chosen identity:
//! the administrator, or a tenant impersonated with the admin kubeconfig (`--as=<user>
//! --as-group=system:authenticated`), so a test acts with exactly the rights a RoleBinding gives that user; a kube-rs
//! client with the same identity for what kubectl is too slow for (floods); the objects a test creates, deleted
//! when it ends; and bounded polling.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::control_plane::ControlPlane;
pub use super::review::pull_secret_names;

/// The group every authenticated user has: what a tenant's requests carry besides its name.
pub const AUTHENTICATED: &str = "system:authenticated";
/// Bounds every single kubectl request, so a hung API server fails a test instead of hanging it.
pub const REQUEST_TIMEOUT: &str = "--request-timeout=30s";

/// The kubectl program: `$KUBECTL`, default `kubectl`.
pub fn program() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// The outcome of one kubectl invocation.
#[derive(Debug)]
pub struct Output {
    /// The command line, for messages (passwords redacted).
    pub command: String,
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Fails the test, naming the command and quoting kubectl's stderr, unless kubectl succeeded.
    pub fn expect_success(self) -> Self {
        assert!(self.success, "`{}` failed: {}", self.command, self.stderr.trim());
        self
    }
}

/// kubectl as one identity.
#[derive(Clone)]
pub struct Kubectl<'a> {
    /// `None`: the current context of the kubeconfig (`make e2e`).
    cp: Option<&'a ControlPlane>,
    /// `None`: the administrator (system:masters, or whoever the current context is).
    user: Option<String>,
}

impl<'a> Kubectl<'a> {
    pub fn admin(cp: &'a ControlPlane) -> Self {
        Self { cp: Some(cp), user: None }
    }

    /// A tenant: the user `name` in the group `system:authenticated`, and nothing else.
    pub fn tenant(cp: &'a ControlPlane, name: &str) -> Self {
        Self { cp: Some(cp), user: Some(name.to_string()) }
    }

    /// Whoever the current context of the kubeconfig is.
    pub fn current_context() -> Kubectl<'static> {
        Kubectl { cp: None, user: None }
    }

    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    fn command(&self) -> Command {
        let mut command = Command::new(program());
        if let Some(cp) = self.cp {
            command.arg("--kubeconfig").arg(&cp.kubeconfig);
        }
        command.arg(REQUEST_TIMEOUT);
        if let Some(user) = &self.user {
            command.arg(format!("--as={user}")).arg(format!("--as-group={AUTHENTICATED}"));
        }
        command
    }

    /// The command as a shell line for messages, with the value of `--docker-password` left out: test passwords are
    /// fake, but a habit of printing credentials is not one to teach.
    fn command_line(&self, args: &[&str]) -> String {
        let who = self.user.as_deref().map(|u| format!("--as={u}"));
        let shown =
            args.iter().map(|a| if a.starts_with("--docker-password=") { "--docker-password=<redacted>" } else { a });
        [program()].into_iter().chain(who).chain(shown.map(String::from)).collect::<Vec<_>>().join(" ")
    }

    /// Runs kubectl with `args` (and `input` on stdin). Never panics, so `Drop` can use it.
    pub fn run(&self, args: &[&str], input: Option<&str>) -> Output {
        let command = self.command_line(args);
        let failed =
            |why: String| Output { command: command.clone(), success: false, stdout: String::new(), stderr: why };
        let child = self
            .command()
            .args(args)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) => return failed(format!("cannot run {}: {e}", program())),
        };
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            // kubectl reads all of its input before it writes anything, so writing first cannot deadlock. A failed
            // write shows up as kubectl's own error.
            let _ = stdin.write_all(text.as_bytes());
        }
        match child.wait_with_output() {
            Ok(out) => Output {
                command,
                success: out.status.success(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            Err(e) => failed(format!("waiting for {}: {e}", program())),
        }
    }

    /// Runs kubectl, which must succeed; returns its stdout.
    pub fn must(&self, args: &[&str]) -> String {
        self.run(args, None).expect_success().stdout
    }

    /// `kubectl <verb> -f -` with `manifest` (as JSON).
    pub fn manifest(&self, verb: &[&str], manifest: &Value) -> Output {
        let mut args = verb.to_vec();
        args.extend(["-f", "-"]);
        self.run(&args, Some(&manifest.to_string()))
    }

    /// `kubectl get <what> -o json`; `None` when it does not exist.
    pub fn get(&self, what: &[&str]) -> Option<Value> {
        let mut args = vec!["get"];
        args.extend(what);
        args.extend(["-o", "json", "--ignore-not-found"]);
        let out = self.must(&args);
        if out.trim().is_empty() {
            return None;
        }
        Some(serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl get {what:?}: output is not JSON: {e}")))
    }

    /// A server-side dry run of `pod` in `namespace` (the webhook is called, nothing is stored): the Pod as
    /// admitted, or the refusal's text.
    pub fn dry_run_pod(&self, namespace: &str, pod: &Value) -> Result<Value, String> {
        let out = self.manifest(&["create", "--dry-run=server", "-o", "json", "-n", namespace], pod);
        if out.success {
            Ok(serde_json::from_str(&out.stdout).expect("kubectl create -o json prints the object"))
        } else {
            Err(out.stderr)
        }
    }

    /// A pull Secret made the way every registry's documentation says: `kubectl create secret docker-registry`.
    pub fn create_pull_secret(&self, namespace: &str, name: &str, server: &str, password: &str) {
        let args = pull_secret_args(namespace, name, server, password, &[]);
        self.must(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// Rotates a pull Secret in place: the same command, rendered client-side, then `kubectl replace`.
    pub fn rotate_pull_secret(&self, namespace: &str, name: &str, server: &str, password: &str) {
        let args = pull_secret_args(namespace, name, server, password, &["--dry-run=client", "-o", "json"]);
        let rendered = self.must(&args.iter().map(String::as_str).collect::<Vec<_>>());
        self.run(&["replace", "-f", "-"], Some(&rendered)).expect_success();
    }

    /// Sets `label` (`key=value`) on a namespace.
    pub fn label_namespace(&self, namespace: &str, label: &str) {
        self.must(&["label", "namespace", namespace, label, "--overwrite"]);
    }

    /// Removes the label `key` from a namespace.
    pub fn unlabel_namespace(&self, namespace: &str, key: &str) {
        self.must(&["label", "namespace", namespace, &format!("{key}-")]);
    }

    /// Waits until the webhook's caches hold what a test relies on: a server-side dry run of `probe` in `namespace`
    /// (nothing is created, nothing else happens) gets exactly `expected` injected (in any order).
    pub fn await_injection(
        &self,
        namespace: &str,
        probe: &Value,
        expected: &[&str],
        wait: Duration,
        interval: Duration,
    ) {
        let expected = sorted(expected);
        poll(&format!("the webhook to inject {expected:?} into a dry-run Pod in {namespace}"), wait, interval, || {
            let answer = self.dry_run_pod(namespace, probe)?;
            let got = sorted(&pull_secret_names(&answer));
            if got == expected { Ok(()) } else { Err(format!("injected {got:?}")) }
        });
    }

    /// A kube-rs client with this identity (the admin kubeconfig, impersonating as kubectl does). Local control
    /// planes only.
    pub async fn client(&self) -> kube::Client {
        let cp = self.cp.expect("a kube-rs client needs the local control plane");
        let kubeconfig = kube::config::Kubeconfig::read_from(&cp.kubeconfig).expect("the admin kubeconfig");
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("a client configuration");
        if let Some(user) = &self.user {
            config.auth_info.impersonate = Some(user.clone());
            config.auth_info.impersonate_groups = Some(vec![AUTHENTICATED.to_string()]);
        }
        kube::Client::try_from(config).expect("a client")
    }
}

fn pull_secret_args<'s>(
    namespace: &'s str,
    name: &'s str,
    server: &str,
    password: &str,
    extra: &[&'s str],
) -> Vec<String> {
    let mut args: Vec<String> =
        ["create", "secret", "docker-registry", name, "-n", namespace].map(String::from).to_vec();
    args.push(format!("--docker-server={server}"));
    args.push("--docker-username=e2e".into());
    args.push(format!("--docker-password={password}"));
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// A Pod with one container per image (`c0`, `c1`, ...) that satisfies the `restricted` Pod Security level, so it
/// is admitted wherever a cluster enforces it by default.
pub fn pod(name: &str, images: &[&str]) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": pod_spec(images)})
}

/// The spec of [`pod`].
pub fn pod_spec(images: &[&str]) -> Value {
    let containers: Vec<Value> =
        images.iter().enumerate().map(|(i, image)| container(&format!("c{i}"), image)).collect();
    json!({
        "terminationGracePeriodSeconds": 1,
        "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": containers,
    })
}

/// A container of [`pod`].
pub fn container(name: &str, image: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
    })
}

/// The payload the kubelet reads (base64 as the API returns it). Compared, never printed: it holds a password.
pub fn payload(secret: &Value) -> Option<&str> {
    secret["data"][".dockerconfigjson"].as_str()
}

/// The condition of `type_` in an object's `status.conditions`.
pub fn condition<'v>(object: &'v Value, type_: &str) -> Option<&'v Value> {
    object["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

pub fn sorted<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|s| s.as_ref().to_string()).collect();
    names.sort();
    names
}

/// Cluster objects a test creates, deleted (namespaces with everything in them) when this is dropped, also when
/// the test fails; `keep` leaves them for a post-mortem.
pub struct Created<'a> {
    admin: Kubectl<'a>,
    /// (resource, name) of cluster-scoped objects, in creation order.
    objects: Vec<(&'static str, String)>,
    keep: bool,
    /// How to delete the leftovers by hand, for the message of a failed cleanup.
    hint: String,
}

impl<'a> Created<'a> {
    pub fn new(admin: Kubectl<'a>, keep: bool, hint: impl Into<String>) -> Self {
        Self { admin, objects: Vec::new(), keep, hint: hint.into() }
    }

    /// Deletes `name` of `resource` (cluster-scoped) at the end too.
    pub fn track(&mut self, resource: &'static str, name: &str) {
        self.objects.push((resource, name.to_string()));
    }

    /// Creates the namespace `name` with `labels`; returns once its `default` ServiceAccount exists (the
    /// ServiceAccount admission plugin refuses Pods until a controller has created it), polled every `interval` for
    /// at most `wait`.
    pub fn namespace(&mut self, name: &str, labels: &[(&str, &str)], wait: Duration, interval: Duration) -> String {
        let labels: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        // Registered before it exists: a failure half-way still gets cleaned up (deletes ignore "not found").
        self.track("namespace", name);
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
        self.admin.manifest(&["create"], &namespace).expect_success();
        poll(&format!("ServiceAccount {name}/default"), wait, interval, || {
            self.admin
                .get(&["serviceaccount", "default", "-n", name])
                .map(drop)
                .ok_or_else(|| "not created yet".to_string())
        });
        name.to_string()
    }

    /// Creates the `ClusterPullSecret` `name` (with `labels`) that distributes `source` (namespace, name) as `target`
    /// to the namespaces labelled `selector` (key, value).
    pub fn cluster_pull_secret(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        source: (&str, &str),
        selector: (&str, &str),
        target: &str,
    ) -> String {
        let labels: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        self.track(CLUSTER_PULL_SECRETS, name);
        let mut match_labels = serde_json::Map::new();
        match_labels.insert(selector.0.into(), selector.1.into());
        let cps = json!({
            "apiVersion": "pullsecret-injector.io/v1alpha1",
            "kind": "ClusterPullSecret",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "secretRef": {"namespace": source.0, "name": source.1},
                "namespaceSelector": {"matchLabels": match_labels},
                "targetName": target,
            },
        });
        self.admin.manifest(&["create"], &cps).expect_success();
        name.to_string()
    }
}

impl Drop for Created<'_> {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("keeping {:?}", self.objects);
            return;
        }
        // Without waiting: namespace deletion takes a while, and names are never reused.
        for (resource, name) in self.objects.iter().rev() {
            let out = self.admin.run(&["delete", resource, name, "--ignore-not-found", "--wait=false"], None);
            if !out.success {
                eprintln!("cleanup: `{}` failed: {}; {}", out.command, out.stderr.trim(), self.hint);
            }
        }
    }
}

/// The full resource name of ClusterPullSecrets: unambiguous whatever else the cluster serves.
pub const CLUSTER_PULL_SECRETS: &str = "clusterpullsecrets.pullsecret-injector.io";

/// Calls `check` every `interval` until it returns `Ok`, for at most `timeout`; then fails the test with what it
/// last observed.
pub fn poll<T>(what: &str, timeout: Duration, interval: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last observed: {last}")
            }
            Err(_) => thread::sleep(interval),
        }
    }
}
