//! `kubectl` against a [`ControlPlane`] as a chosen identity: the administrator, or a tenant impersonated with the
//! admin kubeconfig (`--as=<user> --as-group=system:authenticated`), so a test acts with exactly the rights a
//! RoleBinding gives that user; a kube-rs client with the same identity for what kubectl is too slow for (floods);
//! and bounded polling.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::control_plane::ControlPlane;

/// The group every authenticated user has: what a tenant's requests carry besides its name.
pub const AUTHENTICATED: &str = "system:authenticated";

/// The outcome of one kubectl invocation.
#[derive(Debug)]
pub struct Output {
    /// The command line, for messages.
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
    cp: &'a ControlPlane,
    /// `None`: the administrator (system:masters).
    user: Option<String>,
}

impl<'a> Kubectl<'a> {
    pub fn admin(cp: &'a ControlPlane) -> Self {
        Self { cp, user: None }
    }

    /// A tenant: the user `name` in the group `system:authenticated`, and nothing else.
    pub fn tenant(cp: &'a ControlPlane, name: &str) -> Self {
        Self { cp, user: Some(name.to_string()) }
    }

    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    fn command(&self) -> Command {
        let mut command = self.cp.kubectl();
        if let Some(user) = &self.user {
            command.arg(format!("--as={user}")).arg(format!("--as-group={AUTHENTICATED}"));
        }
        command
    }

    /// Runs kubectl with `args` (and `input` on stdin). Never panics.
    pub fn run(&self, args: &[&str], input: Option<&str>) -> Output {
        let who = self.user.as_deref().map_or(String::new(), |u| format!("--as={u} "));
        let command = format!("kubectl {who}{}", args.join(" "));
        let child = self
            .command()
            .args(args)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) => return Output { command, success: false, stdout: String::new(), stderr: e.to_string() },
        };
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            // kubectl reads all of its input before it writes anything: writing first cannot deadlock.
            let _ = stdin.write_all(text.as_bytes());
        }
        match child.wait_with_output() {
            Ok(out) => Output {
                command,
                success: out.status.success(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            Err(e) => Output { command, success: false, stdout: String::new(), stderr: e.to_string() },
        }
    }

    /// Runs kubectl, which must succeed; returns its stdout.
    pub fn must(&self, args: &[&str]) -> String {
        self.run(args, None).expect_success().stdout
    }

    /// `kubectl <verb> -f -` with `manifest`.
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
        if out.trim().is_empty() { None } else { Some(serde_json::from_str(&out).expect("kubectl prints JSON")) }
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

    /// A kube-rs client with this identity (the admin kubeconfig, impersonating as kubectl does).
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.cp.kubeconfig).expect("the admin kubeconfig");
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

/// The names in a Pod's `spec.imagePullSecrets`, in order.
pub fn pull_secret_names(pod: &Value) -> Vec<String> {
    pod["spec"]["imagePullSecrets"]
        .as_array()
        .map(|list| list.iter().filter_map(|r| r["name"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

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
