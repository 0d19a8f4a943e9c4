//! The command line (docs/contract.md, docs/command-line.md): one binary, subcommands, every flag also an
//! environment variable. `serve`'s flags are `PULLSECRET_INJECTOR_<FLAG>` (a container's configuration); every other
//! subcommand's are scoped by its name, `PULLSECRET_INJECTOR_<SUBCOMMAND>_<FLAG>`, so that a variable set for one
//! command (`PULLSECRET_INJECTOR_MUTATE_OUTPUT=patch`) never changes another (`verify -o`). [`command`] applies that
//! rule to every flag of those subcommands, the shared groups included; parse with [`parse`].

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::commands::live::ClusterArgs;
use crate::commands::mutate::MutateOutput;
use crate::serve::config::{NodeArgs, PolicyArgs, ServeConfig, parse_duration};

#[derive(Debug, Parser)]
#[command(
    name = "pullsecret-injector",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("PULLSECRET_INJECTOR_COMMIT"), ")"),
    about = "Adds to every Pod the imagePullSecrets the kubelet will actually use, matched with the kubelet's own rules",
    long_about = None,
    propagate_version = true,
    after_help = ENVIRONMENT
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

const ENVIRONMENT: &str = "Environment: serve's flags can also be set as PULLSECRET_INJECTOR_<FLAG> \
(--tls-cert is PULLSECRET_INJECTOR_TLS_CERT); every other command's as PULLSECRET_INJECTOR_<COMMAND>_<FLAG> \
(mutate -o is PULLSECRET_INJECTOR_MUTATE_OUTPUT). A flag on the command line wins. --help on each command lists them.

Exit status: 0 success; 1 the command found a problem (mutate: a denial, or a warning with --fail-on-warning; \
verify: a credential that does not work); 2 unusable input or flags.";

/// The prefix of every environment variable.
pub const ENV_PREFIX: &str = "PULLSECRET_INJECTOR_";

/// The subcommands whose variables are scoped by their name (every one but `serve`, whose flags configure a
/// container and keep `PULLSECRET_INJECTOR_<FLAG>`).
pub const SCOPED: [&str; 4] = ["mutate", "explain", "verify", "certs"];

/// The environment variable of flag `--long` of `subcommand`.
pub fn env_name(subcommand: &str, long: &str) -> String {
    let flag = long.to_uppercase().replace('-', "_");
    if SCOPED.contains(&subcommand) {
        format!("{ENV_PREFIX}{}_{flag}", subcommand.to_uppercase())
    } else {
        format!("{ENV_PREFIX}{flag}")
    }
}

/// The command line with the environment rule applied: each flag of a [`SCOPED`] subcommand reads only its own
/// scoped variable (whatever variable a shared flag group declares for `serve`).
pub fn command() -> clap::Command {
    let mut command = Cli::command();
    for subcommand in SCOPED {
        command = command.mut_subcommand(subcommand, |sub| {
            sub.mut_args(|arg| match arg.get_long() {
                Some(long) if long != "help" && long != "version" => {
                    // clap takes a `&'static str` here (owned names need its `string` feature): these few names are
                    // made once per process.
                    let name: &'static str = Box::leak(env_name(subcommand, long).into_boxed_str());
                    arg.env(name)
                }
                _ => arg.env(None),
            })
        });
    }
    command
}

/// The file name a kubectl plugin has (`kubectl pullsecret ...` runs `kubectl-pullsecret` from the PATH).
pub const PLUGIN_FILE: &str = "kubectl-pullsecret";

/// How usage lines name the program: `kubectl pullsecret` when run as the plugin, else the binary's name. Only
/// display: every subcommand works the same either way.
pub fn display_name(argv0: &std::ffi::OsStr) -> Option<&'static str> {
    let file = std::path::Path::new(argv0).file_name()?;
    (file == PLUGIN_FILE).then_some("kubectl pullsecret")
}

/// Parses the process's arguments with [`command`]; a usage error exits 2 with clap's message, `--help` 0.
pub fn parse() -> Cli {
    let mut command = command();
    if let Some(name) = std::env::args_os().next().as_deref().and_then(display_name) {
        command = command.bin_name(name);
    }
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process: boxing would only add noise
pub enum Command {
    /// Add to Pods, workloads and manifest streams what the webhook would add (or answer an AdmissionReview), with
    /// the credentials of --secrets files, or read (list only) from the cluster of the kubeconfig context.
    #[command(after_help = MUTATE_EXAMPLES)]
    Mutate(MutateCmd),
    /// Explain which credentials the kubelet uses for an image, or every image of a Pod or workload, key by key.
    #[command(after_help = EXPLAIN_EXAMPLES)]
    Explain(ExplainCmd),
    /// Run the admission webhook (HTTPS) and its admin endpoints (HTTP).
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeConfig),
    /// Check that each registry credential in the Secrets really authenticates (Docker Registry HTTP API v2).
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify(VerifyCmd),
    /// Create a CA and a serving certificate for the webhook (development, or self-signed installs).
    #[command(after_help = CERTS_EXAMPLES)]
    Certs(CertsCmd),
    /// Print the ClusterPullSecret CustomResourceDefinition as YAML.
    Crd,
}

const SERVE_EXAMPLES: &str = "Examples:
  pullsecret-injector serve --tls-cert certs/tls.crt --tls-key certs/tls.key --secrets-dir examples/secrets
  pullsecret-injector serve --tls-cert /tls/tls.crt --tls-key /tls/tls.key --deny-unmatched '*.corp.example.com'

Without --secrets-dir the credentials come from the cluster (in-cluster config or KUBECONFIG).
Endpoints: POST https://LISTEN/mutate; GET http://ADMIN-LISTEN/healthz, /readyz, /metrics.";

const VERIFY_EXAMPLES: &str = "Examples:
  pullsecret-injector verify --secrets secrets/
  pullsecret-injector verify -n shop    # the pull Secrets of namespace shop, read from the cluster (-A: all)
  kubectl get secrets -A --field-selector type=kubernetes.io/dockerconfigjson -o yaml > s.yaml
  pullsecret-injector verify --secrets s.yaml --ca-file corp-ca.pem -o json
  pullsecret-injector verify --secrets secrets/ -o jsonl | jq -c 'select(.status != \"ok\")'

Exit status: 0 when every entry is ok or skipped, 1 otherwise, 2 for unusable input.";

#[derive(Debug, clap::Args)]
pub struct VerifyCmd {
    #[command(flatten)]
    pub secrets: SecretsArgs,
    /// Namespace of Secret manifests that do not name one (default: `default`). Reading the cluster (no
    /// --secrets): the namespace whose pull Secrets are checked (default: the context's).
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
    /// Without --secrets: check the pull Secrets of every namespace.
    #[arg(short = 'A', long, conflicts_with_all = ["namespace", "secrets"])]
    pub all_namespaces: bool,
    /// Extra CA certificate(s) (PEM) to trust, for registries with a private CA.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify registry certificates (self-signed registries). Credentials are then sent to whoever answers.
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
    /// Time limit of each request to a registry.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Checks run in parallel at most.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Output: `text` (a table and lint notes), `json` (an array of {namespace, secret, registry, status, detail}) or
    /// `jsonl` (one such object per line, printed as each check completes). On a terminal, a progress line goes to
    /// stderr while the checks run.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: crate::verify::VerifyOutput,
}

const CERTS_EXAMPLES: &str = "Examples:
  pullsecret-injector certs --out certs --dns localhost --ip 127.0.0.1
  pullsecret-injector certs --out certs --dns pullsecret-injector.pullsecret-injector.svc";

#[derive(Debug, clap::Args)]
pub struct CertsCmd {
    /// Directory to write ca.crt, tls.crt and tls.key (0600) into; created if missing.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// DNS name for the serving certificate (RFC 1123, lowercase; `*.` wildcard first label allowed). Repeatable, or
    /// comma-separated.
    #[arg(long = "dns", value_name = "NAME", value_delimiter = ',')]
    pub dns: Vec<String>,
    /// IP address for the serving certificate. Repeatable, or comma-separated.
    #[arg(long = "ip", value_name = "ADDR", value_delimiter = ',')]
    pub ip: Vec<IpAddr>,
    /// Validity in days, 1 to 3650.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
}

const MUTATE_EXAMPLES: &str = "Examples:
  pullsecret-injector mutate --secrets secrets/ -f deployment.yaml
  kubectl create deployment web --image=registry.example.com/web:1 --dry-run=client -o yaml \\
    | pullsecret-injector mutate --secrets secrets/ -n shop
  kustomize build prod/ | pullsecret-injector mutate --secrets secrets/ --pass-secrets > out.yaml
  kubectl get pod web -o yaml | pullsecret-injector mutate --secrets secrets.yaml -o patch
  pullsecret-injector mutate --secrets secrets/ -f review.json    # the response AdmissionReview
  pullsecret-injector mutate -f deployment.yaml -n shop    # the credentials of the current kubectl context

Input: Pods, Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs, ReplicationControllers and \
PodTemplates, alone, in a kind: List or as several YAML documents (every other object passes through unchanged, \
with a note on stderr); or one AdmissionReview. The output keeps the documents and their key order; comments are \
not kept. As a Helm post-renderer, a script that runs: exec pullsecret-injector mutate --secrets DIR \
--pass-secrets (docs/command-line.md).

Exit status: 0 nothing denied; 1 a Pod denied by --deny-unmatched (then only -o review prints), or any warning \
with --fail-on-warning (after the output); 2 unusable input.";

const EXPLAIN_EXAMPLES: &str = "Examples:
  pullsecret-injector explain registry.example.com:5000/team/app:1.2 --secrets secrets/ -n team
  pullsecret-injector explain nginx --secrets secrets.yaml --listed my-hub-login
  pullsecret-injector explain -f deployment.yaml --secrets secrets/
  pullsecret-injector explain deployment/web -n shop    # the live object and the cluster's credentials
  kubectl pullsecret explain pod/web    # as a kubectl plugin (installed as kubectl-pullsecret)

Ends with the one-line answer: what the webhook adds, and why an image gets no credential.";

/// Flags shared by the commands that read credentials: files, or (without `--secrets`) the cluster.
#[derive(Debug, clap::Args)]
pub struct SecretsArgs {
    /// Files or directories of Secret manifests (YAML multi-document or JSON, `kind: List` too); Namespaces and
    /// ClusterPullSecrets in them are used as well. Repeatable, or comma-separated. Without it, the cluster of the
    /// current kubeconfig context is read (list only, the webhook's own permissions).
    #[arg(long = "secrets", value_name = "PATH", value_delimiter = ',')]
    pub secrets: Vec<PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, clap::Args)]
pub struct MutateCmd {
    #[command(flatten)]
    pub secrets: SecretsArgs,
    /// The manifests (JSON or YAML: Pods, workloads, Lists, several documents) or one AdmissionReview request;
    /// `-` reads stdin.
    #[arg(short = 'f', long = "filename", value_name = "FILE", default_value = "-")]
    pub file: PathBuf,
    /// Output: `yaml` (default) or `json`, the input with the Secrets added (several documents as JSON: one `v1`
    /// List); `patch`, the JSON patch of a one-document input; `review`, the response AdmissionReview (the default
    /// for an AdmissionReview).
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<MutateOutput>,
    /// Namespace of the objects and of Secret manifests that do not name one (like kubectl's current namespace;
    /// default: the context's without --secrets, else `default`).
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
    /// Exit 1 when the webhook would return any warning (a private image without credential, an undecodable
    /// Secret, an invalid image reference...), after printing the output.
    #[arg(long)]
    pub fail_on_warning: bool,
    /// Pass the input's Secrets through to the output (a post-renderer must: charts hold Secrets). Without it,
    /// `-o yaml` and `-o json` refuse an input holding a Secret (exit 2), so that a credential is never printed by
    /// mistake, e.g. into a CI log.
    #[arg(long)]
    pub pass_secrets: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["image", "filename"])))]
pub struct ExplainCmd {
    /// The image as written in a Pod, e.g. `nginx`, `registry.example.com:5000/team/app:1.2`; without --secrets,
    /// also an object of the cluster as kubectl names it: `pod/NAME`, `deployment/NAME`, `statefulset/NAME`,
    /// `daemonset/NAME`, `replicaset/NAME`, `job/NAME`, `cronjob/NAME` (write `docker.io/pod/x` for such an image).
    pub image: Option<String>,
    /// Instead of an image: a file (`-` for stdin) holding one Pod or one object with a Pod template (Deployment,
    /// Job, CronJob...): every image of its Pod is explained, with the Secrets it lists.
    #[arg(short = 'f', long = "filename", value_name = "FILE", conflicts_with = "listed")]
    pub filename: Option<PathBuf>,
    #[command(flatten)]
    pub secrets: SecretsArgs,
    /// The Pod's namespace (also the namespace of Secret manifests that do not name one); with `-f`, for an object
    /// that names none. Default: the context's without --secrets, else `default`.
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
    /// With an image: a Secret the Pod already lists in `imagePullSecrets`, in order. Repeatable.
    #[arg(long = "listed", value_name = "NAME", value_delimiter = ',')]
    pub listed: Vec<String>,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Mark a credential the image gets that expires within this: the window in which `serve` warns about it
    /// (its flag of the same name). An expired credential is never injected, whatever this is. `0s`: no mark.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub expiry_warning: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag of every subcommand has exactly the variable of the rule: `serve`'s unscoped, the others' scoped.
    #[test]
    fn every_flag_reads_its_own_commands_variable() {
        let command = command();
        let mut seen = 0;
        for sub in command.get_subcommands() {
            for arg in sub.get_arguments() {
                let Some(long) = arg.get_long().filter(|l| !matches!(*l, "help" | "version")) else { continue };
                let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
                assert_eq!(env, Some(env_name(sub.get_name(), long)), "{} --{long}", sub.get_name());
                seen += 1;
            }
        }
        assert!(seen > 40, "{seen} flags");
        assert_eq!(env_name("serve", "tls-cert"), "PULLSECRET_INJECTOR_TLS_CERT");
        assert_eq!(env_name("mutate", "output"), "PULLSECRET_INJECTOR_MUTATE_OUTPUT");
        assert_eq!(env_name("verify", "output"), "PULLSECRET_INJECTOR_VERIFY_OUTPUT");
        assert_eq!(env_name("mutate", "deny-unmatched"), "PULLSECRET_INJECTOR_MUTATE_DENY_UNMATCHED");
    }

    #[test]
    fn the_plugin_name_is_only_recognised_as_the_plugin_file() {
        use std::ffi::OsStr;
        assert_eq!(display_name(OsStr::new("/usr/local/bin/kubectl-pullsecret")), Some("kubectl pullsecret"));
        assert_eq!(display_name(OsStr::new("kubectl-pullsecret")), Some("kubectl pullsecret"));
        assert_eq!(display_name(OsStr::new("/usr/local/bin/pullsecret-injector")), None);
        assert_eq!(display_name(OsStr::new("kubectl-pullsecret-old")), None);
    }

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }
}
