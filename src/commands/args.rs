//! The command line (docs/contract.md): one binary, subcommands, every flag also an environment variable
//! `PULLSECRET_INJECTOR_<FLAG>`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::commands::offline::MutateOutput;
use crate::core::decision::{Policy, RegistryPattern};

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
    Serve(ServeCmd),
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

/// Parses `10s`, `500ms`, `2m`, `1h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration like 10s or 500ms: {e}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ServeCmd {
    /// Address of the HTTPS webhook (`POST /mutate`).
    #[arg(long, default_value = "0.0.0.0:8443", env = "PULLSECRET_INJECTOR_LISTEN")]
    pub listen: SocketAddr,
    /// Address of the plain-HTTP admin endpoints (`/healthz`, `/readyz`, `/metrics`).
    #[arg(long, default_value = "0.0.0.0:8080", env = "PULLSECRET_INJECTOR_ADMIN_LISTEN")]
    pub admin_listen: SocketAddr,
    /// Serving certificate (PEM, chain allowed). Re-read when it changes, without a restart.
    #[arg(long, value_name = "FILE", env = "PULLSECRET_INJECTOR_TLS_CERT")]
    pub tls_cert: PathBuf,
    /// Private key of the serving certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", env = "PULLSECRET_INJECTOR_TLS_KEY")]
    pub tls_key: PathBuf,
    /// Local mode: read Secret (and Namespace, ClusterPullSecret) manifests from this directory instead of the
    /// cluster, and re-read it when it changes.
    #[arg(long, value_name = "DIR", env = "PULLSECRET_INJECTOR_SECRETS_DIR")]
    pub secrets_dir: Option<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Largest AdmissionReview body accepted; larger gets HTTP 413.
    #[arg(long, default_value_t = 7 * 1024 * 1024, value_name = "BYTES", env = "PULLSECRET_INJECTOR_MAX_BODY_BYTES")]
    pub max_body_bytes: usize,
    /// On SIGTERM, how long to take at most before exiting.
    #[arg(long, default_value = "10s", value_parser = parse_duration, env = "PULLSECRET_INJECTOR_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Duration,
    /// On SIGTERM, how long to keep answering while `/readyz` reports 503, so the Service stops routing here first.
    #[arg(long, default_value = "3s", value_parser = parse_duration, env = "PULLSECRET_INJECTOR_SHUTDOWN_DELAY")]
    pub shutdown_delay: Duration,
    /// How often the certificate files and `--secrets-dir` are checked for changes.
    #[arg(long, default_value = "2s", value_parser = parse_duration, env = "PULLSECRET_INJECTOR_RELOAD_INTERVAL")]
    pub reload_interval: Duration,
    /// Time a client has for the TLS handshake, then for the headers of its first request (HTTP/1.1 or HTTP/2),
    /// and with HTTP/1.1 keep-alive for each next request's headers after an answer. Both ports.
    #[arg(long, default_value = "10s", value_parser = parse_duration, env = "PULLSECRET_INJECTOR_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Duration,
    /// Time a client has for sending a whole request (408 otherwise). Both ports.
    #[arg(long, default_value = "30s", value_parser = parse_duration, env = "PULLSECRET_INJECTOR_REQUEST_TIMEOUT")]
    pub request_timeout: Duration,
    /// A connection with no request in progress is closed after this (HTTP/2 with a GOAWAY). Both ports.
    #[arg(long, default_value = "30s", value_parser = parse_duration, env = "PULLSECRET_INJECTOR_IDLE_TIMEOUT")]
    pub idle_timeout: Duration,
    /// Check every credential against its registry this often (`verify`'s handshake), exporting
    /// `pullsecret_injector_credential_check` and, in a cluster, a Warning Event on a Secret whose credential stops
    /// working. `0s` (default) turns checks off.
    #[arg(long, default_value = "0s", value_parser = parse_duration, env = "PULLSECRET_INJECTOR_VERIFY_INTERVAL")]
    pub verify_interval: Duration,
    /// Extra CA certificate(s) (PEM) trusted by the periodic checks.
    #[arg(long, value_name = "FILE", env = "PULLSECRET_INJECTOR_VERIFY_CA_FILE")]
    pub verify_ca_file: Option<PathBuf>,
    /// Let the periodic checks connect to loopback, link-local (cloud metadata) and unspecified addresses. Off by
    /// default: the keys come from tenants' Secrets, and a check must not become a way to reach this Pod's own
    /// ports or the node's metadata service. Private ranges (10.0.0.0/8, ...) are always allowed.
    #[arg(long, env = "PULLSECRET_INJECTOR_VERIFY_ALLOW_LOCAL_ADDRESSES")]
    pub verify_allow_local_addresses: bool,
    /// Open webhook connections at most (the API server keeps a few alive). At the limit, the connection that has
    /// waited longest on its client (no request completed first) is closed to make room; while all are busy, new
    /// clients wait in the backlog.
    #[arg(long, default_value_t = 1024, env = "PULLSECRET_INJECTOR_MAX_CONNECTIONS")]
    pub max_connections: usize,
    /// Open admin connections at most (probes and metrics scrapers need a few), with the same behaviour at the
    /// limit: the admin port can never use up the file descriptors the webhook needs.
    #[arg(long, default_value_t = 16, env = "PULLSECRET_INJECTOR_ADMIN_MAX_CONNECTIONS")]
    pub admin_max_connections: usize,
    /// Mutual TLS: accept on the webhook port only clients presenting a certificate signed by a CA in this PEM
    /// file (the API server's admission client certificate; see docs/security.md). Re-read when it changes, like
    /// --tls-cert; an unusable new file keeps the previous CA.
    #[arg(long, value_name = "FILE", env = "PULLSECRET_INJECTOR_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    #[command(flatten)]
    pub index: IndexArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Bounds of the credential index: what one tenant's Secrets may cost every other tenant (docs/multi-tenancy.md).
#[derive(Debug, clap::Args)]
pub struct IndexArgs {
    /// A pull Secret whose payload is larger than this is not indexed: never injected (the webhook cannot tell
    /// which images it covers), logged, and counted in `pullsecret_injector_index_limited_secrets`; its name still
    /// hides a distributed credential of that name.
    #[arg(
        long,
        default_value_t = crate::core::credentials::DEFAULT_MAX_SECRET_BYTES,
        value_name = "BYTES",
        value_parser = positive,
        env = "PULLSECRET_INJECTOR_MAX_SECRET_BYTES"
    )]
    pub max_secret_bytes: usize,
    /// A pull Secret with more registry keys than this is not indexed either, with the same consequences.
    #[arg(
        long,
        default_value_t = crate::core::credentials::DEFAULT_MAX_KEYS_PER_SECRET,
        value_name = "N",
        value_parser = positive,
        env = "PULLSECRET_INJECTOR_MAX_KEYS_PER_SECRET"
    )]
    pub max_keys_per_secret: usize,
    /// Registry keys indexed per namespace at most (a Secret counts at least one): distributed credentials first,
    /// then the namespace's own Secrets in name order; a Secret that does not fit in what is left is not indexed,
    /// with the same consequences.
    #[arg(
        long,
        default_value_t = crate::core::credentials::DEFAULT_MAX_KEYS_PER_NAMESPACE,
        value_name = "N",
        value_parser = positive,
        env = "PULLSECRET_INJECTOR_MAX_KEYS_PER_NAMESPACE"
    )]
    pub max_keys_per_namespace: usize,
    /// `/readyz` answers 503 while a change of the cluster's credentials has waited longer than this to become
    /// visible to admission (`pullsecret_injector_cache_lag_seconds`). `0s` turns the check off.
    #[arg(long, default_value = "60s", value_parser = parse_duration, env = "PULLSECRET_INJECTOR_MAX_CACHE_LAG")]
    pub max_cache_lag: Duration,
}

impl IndexArgs {
    pub fn options(&self) -> crate::sources::live::IndexOptions {
        crate::sources::live::IndexOptions {
            limits: crate::core::credentials::IndexLimits {
                max_secret_bytes: self.max_secret_bytes,
                max_keys_per_secret: self.max_keys_per_secret,
                max_keys_per_namespace: self.max_keys_per_namespace,
            },
            max_lag: self.max_cache_lag,
        }
    }
}

/// A whole number of at least 1.
fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{s:?} is not a whole number: {e}")),
    }
}

/// Logging flags.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, value_enum, default_value = "text", env = "PULLSECRET_INJECTOR_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `pullsecret_injector=debug`.
    #[arg(long, default_value = "info", env = "PULLSECRET_INJECTOR_LOG_LEVEL")]
    pub log_level: String,
}

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

/// Flags of the platform policy.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// Deny a Pod with an image under this registry pattern (written like a docker config key, e.g.
    /// `*.corp.example.com` or `registry.example.com:5000/team`) for which no credential is found. Repeatable, or
    /// comma-separated. Namespaces labelled `pullsecret-injector.io/inject: disabled` are exempt.
    #[arg(
        long = "deny-unmatched",
        value_name = "PATTERN",
        env = "PULLSECRET_INJECTOR_DENY_UNMATCHED",
        value_delimiter = ','
    )]
    pub deny_unmatched: Vec<RegistryPattern>,
    /// Audit mode: report `--deny-unmatched` violations as warnings instead of denying the Pod.
    #[arg(long = "policy-audit", env = "PULLSECRET_INJECTOR_POLICY_AUDIT")]
    pub policy_audit: bool,
}

impl PolicyArgs {
    pub fn policy(&self) -> Policy {
        Policy { deny_unmatched: self.deny_unmatched.clone(), audit_only: self.policy_audit }
    }
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
