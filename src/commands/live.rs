//! Live cluster mode: `mutate`, `explain` and `verify` without `--secrets` read the cluster of the current
//! kubeconfig context (`--kubeconfig`, `--context`, `-n` as kubectl spells them), read-only: one list per
//! collection the webhook watches (`sources::snapshot`, the webhook's own RBAC), and, for `explain KIND/NAME`, one
//! `get` of that object.
//!
//! Every failure (no kubeconfig, an unreachable server, a refused request, an object that does not exist) is one
//! `error:` line and exit 2. No message quotes an object's content: a Secret's data never reaches the terminal.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, ReplicationController, Secret};
use kube::api::{ApiResource, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::commands::CliError;
use crate::core::credentials::IndexLimits;
use crate::kubelet::docker_config::SecretKind;
use crate::safe_text;
use crate::serve::config::parse_duration;
use crate::sources::manifests::{Manifests, without_values};
use crate::sources::snapshot::{self, Snapshot};

/// `--kubeconfig` and `--context`, as kubectl spells them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// Without --secrets: the kubeconfig file to read the cluster from (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE", conflicts_with = "secrets")]
    pub kubeconfig: Option<PathBuf>,
    /// Without --secrets: the kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "NAME", conflicts_with = "secrets")]
    pub context: Option<String>,
    /// Without --secrets: how long to wait for the API server, to connect and for each answer (kubectl's flag of
    /// the same name); `0s`: no limit. A server that accepts and never answers is an error, not a hang.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
}

/// Where the credentials come from: manifests on disk, or the cluster.
pub enum Credentials<'a> {
    Files(&'a [PathBuf]),
    Cluster(&'a Cluster),
}

impl Credentials<'_> {
    /// Reads them once. `namespace` is where Secret manifests that name none are placed.
    pub fn load(&self, namespace: &str) -> Result<Snapshot, CliError> {
        self.load_for(namespace, namespace, &[])
    }

    /// [`Credentials::load`], and, from the cluster, whether each of the names a Pod in `pod_namespace` lists that
    /// is no pull Secret is a Secret of another type (its metadata only: `explain` then says so instead of "not
    /// found").
    pub fn load_for(&self, namespace: &str, pod_namespace: &str, listed: &[&str]) -> Result<Snapshot, CliError> {
        match self {
            Self::Files(paths) => Ok(Snapshot::of_manifests(Manifests::load(paths, namespace)?)),
            Self::Cluster(cluster) => {
                let mut snapshot = cluster.snapshot()?;
                cluster.learn_other_secrets(&mut snapshot, pod_namespace, listed)?;
                Ok(snapshot)
            }
        }
    }
}

/// A connection to the cluster of a kubeconfig context, with the runtime its requests run on.
pub struct Cluster {
    runtime: tokio::runtime::Runtime,
    client: Client,
    /// The context's namespace (`default` when it names none): where `-n` defaults to, as for kubectl.
    pub namespace: String,
    /// The API server, for messages.
    server: String,
}

/// kubectl's names for one kind (singular, plural, short), and its API resource.
type Kind = (&'static [&'static str], fn() -> ApiResource);

/// The kinds `explain KIND/NAME` fetches.
const KINDS: [Kind; 8] = [
    (&["pod", "pods", "po"], || ApiResource::erase::<Pod>(&())),
    (&["deployment", "deployments", "deploy"], || ApiResource::erase::<Deployment>(&())),
    (&["statefulset", "statefulsets", "sts"], || ApiResource::erase::<StatefulSet>(&())),
    (&["daemonset", "daemonsets", "ds"], || ApiResource::erase::<DaemonSet>(&())),
    (&["replicaset", "replicasets", "rs"], || ApiResource::erase::<ReplicaSet>(&())),
    (&["job", "jobs"], || ApiResource::erase::<Job>(&())),
    (&["cronjob", "cronjobs", "cj"], || ApiResource::erase::<CronJob>(&())),
    (&["replicationcontroller", "replicationcontrollers", "rc"], || ApiResource::erase::<ReplicationController>(&())),
];

/// `KIND/NAME` (kubectl's spelling, e.g. `pod/web`, `deploy/api`) when KIND is one `explain` fetches.
pub fn object_reference(text: &str) -> Option<(ApiResource, &str)> {
    let (kind, name) = text.split_once('/')?;
    let kind = kind.to_ascii_lowercase();
    // `deployment.apps/web`, as `kubectl get -o name` prints it: the suffix must be the kind's own API group, so
    // that a registry host (`pods.example.com/app`, `deploy.corp.io:5000/api`) stays an image.
    let (kind, group) = kind.split_once('.').unwrap_or((kind.as_str(), ""));
    let (_, resource) = KINDS.iter().find(|(names, _)| names.contains(&kind))?;
    let resource = resource();
    // An object name has no `/`, `:` or `@` (an image reference's path, tag or digest does).
    ((group.is_empty() || resource.group == group) && !name.is_empty() && !name.contains(['/', ':', '@']))
        .then_some((resource, name))
}

impl Cluster {
    /// Reads the kubeconfig and picks the context; nothing is sent yet.
    pub fn connect(args: &ClusterArgs) -> Result<Self, CliError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Usage(format!("cannot start the async runtime: {e}")))?;
        let kubeconfig = match &args.kubeconfig {
            Some(path) => Kubeconfig::read_from(path).map_err(|e| no_kubeconfig(Some(path), &e))?,
            None => Kubeconfig::read().map_err(|e| no_kubeconfig(None, &e))?,
        };
        let options = KubeConfigOptions { context: args.context.clone(), ..Default::default() };
        let mut config = runtime
            .block_on(Config::from_custom_kubeconfig(kubeconfig, &options))
            .map_err(|e| CliError::Usage(format!("kubeconfig: {}", one_line(&e))))?;
        let limit = Some(args.request_timeout).filter(|t| !t.is_zero());
        (config.connect_timeout, config.read_timeout, config.write_timeout) = (limit, limit, limit);
        let server = config.cluster_url.to_string();
        let namespace = config.default_namespace.clone();
        // The client spawns its request buffer on the runtime.
        let _entered = runtime.enter();
        let client = Client::try_from(config)
            .map_err(|e| CliError::Usage(format!("cannot set up a client for {server}: {}", one_line(&e))))?;
        Ok(Self { runtime, client, namespace, server })
    }

    /// Everything the webhook watches, listed once.
    pub fn snapshot(&self) -> Result<Snapshot, CliError> {
        self.runtime
            .block_on(Snapshot::list(&self.client, IndexLimits::default()))
            .map_err(|e| self.failed("list Secrets, Namespaces and ClusterPullSecrets", &e))
    }

    /// Which of `names` in `namespace` that are no pull Secret of `snapshot` exist (their metadata only).
    fn learn_other_secrets(&self, snapshot: &mut Snapshot, namespace: &str, names: &[&str]) -> Result<(), CliError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        for name in names {
            let known = snapshot.manifests.secrets.iter().any(|s| {
                s.metadata.namespace.as_deref() == Some(namespace) && s.metadata.name.as_deref() == Some(*name)
            });
            if known {
                continue;
            }
            let found = self
                .runtime
                .block_on(api.get_metadata_opt(name))
                .map_err(|e| self.failed(&format!("get secret/{name} in namespace {namespace} (metadata)"), &e))?;
            if found.is_some() {
                snapshot.other_secrets.insert((namespace.to_string(), name.to_string()));
            }
        }
        Ok(())
    }

    /// The pull Secrets of one namespace, or of all (`verify`).
    pub fn pull_secrets(&self, namespace: Option<&str>) -> Result<Manifests, CliError> {
        let mut manifests = Manifests::default();
        for kind in SecretKind::ALL {
            let secrets = self
                .runtime
                .block_on(snapshot::list_pull_secrets(&self.client, kind, namespace))
                .map_err(|e| self.failed(&format!("list Secrets of type {}", kind.secret_type()), &e))?;
            manifests.secrets.extend(secrets);
        }
        Ok(manifests)
    }

    /// The object `KIND/NAME` in `namespace`, as JSON text (`managedFields` dropped: noise for `explain`).
    pub fn get(&self, resource: &ApiResource, name: &str, namespace: &str) -> Result<String, CliError> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, resource);
        let what = format!("{}/{name} in namespace {namespace}", resource.kind.to_lowercase());
        let mut object = self.runtime.block_on(api.get(name)).map_err(|e| match &e {
            kube::Error::Api(status) if status.code == 404 => CliError::Usage(format!("{what}: not found")),
            _ => self.failed(&format!("get {what}"), &e),
        })?;
        object.metadata.managed_fields = None;
        serde_json::to_string(&object)
            .map_err(|e| CliError::Usage(format!("{what}: {}", without_values(&e.to_string()))))
    }

    /// One line for a failed request: what was asked, and why it failed, without quoting any object.
    fn failed(&self, what: &str, error: &kube::Error) -> CliError {
        let why = match error {
            kube::Error::Api(status) if status.code == 401 => {
                "unauthorized: the kubeconfig's credentials were refused".into()
            }
            // The server's words, bounded: it is not ours to print megabytes of.
            kube::Error::Api(status) if status.code == 403 => {
                format!("forbidden: {}", safe_text::line(&one_line(&status.message), 512))
            }
            kube::Error::Api(status) => {
                format!("the API server answered {}: {}", status.code, safe_text::line(&one_line(&status.message), 512))
            }
            kube::Error::SerdeError(e) => format!("unreadable answer: {}", without_values(&e.to_string())),
            other => {
                format!("cannot reach the API server at {}: {}", self.server, safe_text::line(&innermost(other), 512))
            }
        };
        CliError::Usage(format!("{what}: {why}"))
    }
}

fn no_kubeconfig(path: Option<&Path>, error: &kube::config::KubeconfigError) -> CliError {
    let why = match error {
        // The YAML parser's message quotes the lines around the error, which can be the user's token, password or
        // client key: only its first line (where, and what was expected), without a quoted value.
        kube::config::KubeconfigError::Parse(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            format!("not a valid kubeconfig: {}", without_values(first.split(" --> ").next().unwrap_or(first)))
        }
        other => innermost(other),
    };
    let detail = match path {
        Some(path) => format!("--kubeconfig {}: {why}", path.display()),
        None => format!("no kubeconfig ($KUBECONFIG or ~/.kube/config): {why}"),
    };
    CliError::Usage(format!("{detail}; give --secrets to work from files"))
}

/// The message of an error and its sources, on one line.
fn one_line(error: &dyn std::fmt::Display) -> String {
    error.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The error with its causes (`a: b: c`), on one line: kube's outer messages ("ServiceError") say little alone.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    one_line(&parts.join(": "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_spellings_of_the_kinds_explain_fetches() {
        for (text, kind, name) in [
            ("pod/web", "Pod", "web"),
            ("pods/web", "Pod", "web"),
            ("deploy/api", "Deployment", "api"),
            ("deployment.apps/api", "Deployment", "api"),
            ("CronJob/nightly", "CronJob", "nightly"),
            ("sts/db", "StatefulSet", "db"),
            ("ds/agent", "DaemonSet", "agent"),
            ("rs/web-5d9", "ReplicaSet", "web-5d9"),
            ("job/once", "Job", "once"),
            ("cronjob.batch/nightly", "CronJob", "nightly"),
        ] {
            let (resource, found) = object_reference(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!((resource.kind.as_str(), found), (kind, name), "{text}");
        }
        for image in [
            "nginx",
            "library/nginx",
            "registry.example.com/pod/web",
            "pod/",
            "service/web",
            "pod/a/b",
            "pods.example.com/app",
            "deploy.corp.io:5000/api:1.2",
            "pod/web:1",
            "job/x@sha256:0123",
            "deployment.batch/api",
        ] {
            assert!(object_reference(image).is_none(), "{image}");
        }
    }
}
