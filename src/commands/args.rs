//! The command line (docs/contract.md): one binary, subcommands, every flag also an environment variable
//! `PULLSECRET_INJECTOR_<FLAG>`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::commands::offline::MutateOutput;
use crate::serve::config::{PolicyArgs, ServeConfig, parse_duration};

#[derive(Debug, Parser)]
#[command(
    name = "pullsecret-injector",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("PULLSECRET_INJECTOR_COMMIT"), ")"),
    about = "Adds to every Pod the imagePullSecrets the kubelet will actually use, matched with the kubelet's own rules",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process: boxing would only add noise
pub enum Command {
    /// Show what the webhook would do to a Pod or AdmissionReview, offline (nothing is sent anywhere).
    #[command(after_help = MUTATE_EXAMPLES)]
    Mutate(MutateCmd),
    /// Explain which credentials the kubelet uses for one image, key by key.
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
  kubectl get secrets -A --field-selector type=kubernetes.io/dockerconfigjson -o yaml > s.yaml
  pullsecret-injector verify --secrets s.yaml --ca-file corp-ca.pem -o json

Exit status: 0 when every entry is ok or skipped, 1 otherwise, 2 for unusable input.";

#[derive(Debug, clap::Args)]
pub struct VerifyCmd {
    #[command(flatten)]
    pub secrets: SecretsArgs,
    /// Namespace of Secret manifests that do not name one.
    #[arg(short = 'n', long = "namespace", default_value = "default", env = "PULLSECRET_INJECTOR_NAMESPACE")]
    pub namespace: String,
    /// Extra CA certificate(s) (PEM) to trust, for registries with a private CA.
    #[arg(long, value_name = "FILE", env = "PULLSECRET_INJECTOR_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify registry certificates (self-signed registries). Credentials are then sent to whoever answers.
    #[arg(long, env = "PULLSECRET_INJECTOR_INSECURE_SKIP_TLS_VERIFY")]
    pub insecure_skip_tls_verify: bool,
    /// Time limit of each request to a registry.
    #[arg(long, default_value = "10s", value_parser = parse_duration, env = "PULLSECRET_INJECTOR_TIMEOUT")]
    pub timeout: Duration,
    /// Checks run in parallel at most.
    #[arg(long, default_value_t = 8, env = "PULLSECRET_INJECTOR_CONCURRENCY")]
    pub concurrency: usize,
    /// Output: `text` (a table and lint notes) or `json` (an array of {namespace, secret, registry, status, detail}).
    #[arg(short = 'o', long = "output", value_enum, default_value = "text", env = "PULLSECRET_INJECTOR_OUTPUT")]
    pub output: crate::verify::VerifyOutput,
}

const CERTS_EXAMPLES: &str = "Examples:
  pullsecret-injector certs --out certs --dns localhost --ip 127.0.0.1
  pullsecret-injector certs --out certs --dns pullsecret-injector.pullsecret-injector.svc";

#[derive(Debug, clap::Args)]
pub struct CertsCmd {
    /// Directory to write ca.crt, tls.crt and tls.key (0600) into; created if missing.
    #[arg(long, value_name = "DIR", env = "PULLSECRET_INJECTOR_OUT")]
    pub out: PathBuf,
    /// DNS name for the serving certificate. Repeatable, or comma-separated.
    #[arg(long = "dns", value_name = "NAME", env = "PULLSECRET_INJECTOR_DNS", value_delimiter = ',')]
    pub dns: Vec<String>,
    /// IP address for the serving certificate. Repeatable, or comma-separated.
    #[arg(long = "ip", value_name = "ADDR", env = "PULLSECRET_INJECTOR_IP", value_delimiter = ',')]
    pub ip: Vec<IpAddr>,
    /// Validity in days.
    #[arg(long, default_value_t = 365, env = "PULLSECRET_INJECTOR_DAYS")]
    pub days: u32,
}

const MUTATE_EXAMPLES: &str = "Examples:
  pullsecret-injector mutate --secrets secrets/ -f pod.yaml
  kubectl get pod web -o yaml | pullsecret-injector mutate --secrets secrets.yaml -o patch
  pullsecret-injector mutate --secrets secrets/ -f review.json            # prints the response AdmissionReview";

const EXPLAIN_EXAMPLES: &str = "Examples:
  pullsecret-injector explain registry.example.com:5000/team/app:1.2 --secrets secrets/ -n team
  pullsecret-injector explain nginx --secrets secrets.yaml";

/// Flags shared by the commands that read credential manifests.
#[derive(Debug, clap::Args)]
pub struct SecretsArgs {
    /// Files or directories of Secret manifests (YAML multi-document or JSON, `kind: List` too); Namespaces and
    /// ClusterPullSecrets in them are used as well. Repeatable, or comma-separated.
    #[arg(
        long = "secrets",
        value_name = "PATH",
        required = true,
        env = "PULLSECRET_INJECTOR_SECRETS",
        value_delimiter = ','
    )]
    pub secrets: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct MutateCmd {
    #[command(flatten)]
    pub secrets: SecretsArgs,
    /// The Pod manifest or AdmissionReview request (JSON or YAML); `-` reads stdin.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE",
        default_value = "-",
        env = "PULLSECRET_INJECTOR_FILENAME"
    )]
    pub file: PathBuf,
    /// Output: `yaml`/`json` (the patched Pod; default for a Pod), `patch` (the JSON patch), `review` (the response
    /// AdmissionReview; default for an AdmissionReview).
    #[arg(short = 'o', long = "output", value_enum, env = "PULLSECRET_INJECTOR_OUTPUT")]
    pub output: Option<MutateOutput>,
    /// Namespace of a Pod and of Secret manifests that do not name one (like kubectl's current namespace).
    #[arg(short = 'n', long = "namespace", default_value = "default", env = "PULLSECRET_INJECTOR_NAMESPACE")]
    pub namespace: String,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, clap::Args)]
pub struct ExplainCmd {
    /// The image as written in a Pod, e.g. `nginx`, `registry.example.com:5000/team/app:1.2`.
    pub image: String,
    #[command(flatten)]
    pub secrets: SecretsArgs,
    /// The Pod's namespace (also the namespace of Secret manifests that do not name one).
    #[arg(short = 'n', long = "namespace", default_value = "default", env = "PULLSECRET_INJECTOR_NAMESPACE")]
    pub namespace: String,
    /// A Secret the Pod already lists in `imagePullSecrets`, in order. Repeatable.
    #[arg(long = "listed", value_name = "NAME", env = "PULLSECRET_INJECTOR_LISTED", value_delimiter = ',')]
    pub listed: Vec<String>,
}
