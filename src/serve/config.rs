//! The flags of `serve`, used as they are by the server: clap parses them into these structs, and `serve::run` reads
//! them (defaults are written once, in the `#[arg]` attributes; [`defaults`] gives them to code and tests). The
//! policy and logging flags are shared with the offline commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Command, FromArgMatches};

use crate::core::decision::{Policy, RegistryPattern};
use crate::kubelet::credential_provider::{self, NodeProviders};
use crate::verify::{AddressPolicy, VerifyOptions};

/// Limits of a listener (the webhook's, or the admin port's: see [`Limits::admin`]).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Limits {
    /// Largest AdmissionReview body accepted; larger gets HTTP 413.
    #[arg(long, default_value_t = 7 * 1024 * 1024, value_name = "BYTES", env = "PULLSECRET_INJECTOR_MAX_BODY_BYTES")]
    pub max_body_bytes: usize,
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
    /// Open webhook connections at most (the API server keeps a few alive). At the limit, the connection that has
    /// waited longest on its client (no request completed first) is closed to make room; while all are busy, new
    /// clients wait in the backlog.
    #[arg(long, default_value_t = 1024, env = "PULLSECRET_INJECTOR_MAX_CONNECTIONS")]
    pub max_connections: usize,
    /// HTTP/2 streams (requests) in progress at once on one connection (not a flag).
    #[arg(skip = 32u32)]
    pub max_concurrent_streams: u32,
}

/// The flags' defaults (written once, in the `#[arg]` attributes above).
impl Default for Limits {
    fn default() -> Self {
        defaults()
    }
}

impl Limits {
    /// The admin port's limits: the same timeouts, its own connection limit.
    pub fn admin(&self, max_connections: usize) -> Self {
        Self { max_connections, ..*self }
    }
}

/// A flag group's defaults, as clap gives them to an empty command line (environment variables ignored).
pub fn defaults<T: Args + FromArgMatches>() -> T {
    let command = T::augment_args(Command::new("defaults")).mut_args(|arg| arg.env(None));
    let matches = command.try_get_matches_from(["defaults"]).expect("every flag of a group has a default");
    T::from_arg_matches(&matches).expect("the defaults parse")
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
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
    /// On SIGTERM, how long to take at most before exiting.
    #[arg(long, default_value = "10s", value_parser = parse_duration, env = "PULLSECRET_INJECTOR_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Duration,
    /// On SIGTERM, how long to keep answering while `/readyz` reports 503, so the Service stops routing here first.
    #[arg(long, default_value = "3s", value_parser = parse_duration, env = "PULLSECRET_INJECTOR_SHUTDOWN_DELAY")]
    pub shutdown_delay: Duration,
    /// How often the certificate files and `--secrets-dir` are checked for changes.
    #[arg(long, default_value = "2s", value_parser = parse_duration, env = "PULLSECRET_INJECTOR_RELOAD_INTERVAL")]
    pub reload_interval: Duration,
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
    pub limits: Limits,
    #[command(flatten)]
    pub index: IndexArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Bounds of the credential index: what one tenant's Secrets may cost every other tenant (docs/multi-tenancy.md).
#[derive(Debug, Clone, clap::Args)]
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

impl ServeConfig {
    /// Periodic credential checks (`--verify-interval`): `None` when off.
    pub fn periodic_checks(&self) -> Option<(Duration, VerifyOptions)> {
        (!self.verify_interval.is_zero()).then(|| {
            let addresses = if self.verify_allow_local_addresses { AddressPolicy::ANY } else { AddressPolicy::REMOTE };
            (
                self.verify_interval,
                VerifyOptions { ca_file: self.verify_ca_file.clone(), addresses, ..Default::default() },
            )
        })
    }
}

/// Logging flags.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, value_enum, default_value = "text", env = "PULLSECRET_INJECTOR_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `pullsecret_injector=debug`.
    #[arg(long, default_value = "info", env = "PULLSECRET_INJECTOR_LOG_LEVEL")]
    pub log_level: String,
}

/// Flags of the platform policy.
#[derive(Debug, Clone, clap::Args)]
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
    /// Warn about a Pod with an image under this registry pattern (written like `--deny-unmatched`) that gets no
    /// credential. Without it, an image without credential is warned about only when a key of the namespace names
    /// its registry but does not match it (docs/matching.md). Repeatable, or comma-separated.
    #[arg(
        long = "warn-unmatched",
        value_name = "PATTERN",
        env = "PULLSECRET_INJECTOR_WARN_UNMATCHED",
        value_delimiter = ','
    )]
    pub warn_unmatched: Vec<RegistryPattern>,
    /// Warn about a Pod that gets a credential expiring within this (the Secret's
    /// `pullsecret-injector.io/expires-at` annotation, RFC 3339, or the `exp` of a JWT password the kubelet sends). An expired
    /// credential is never injected, whatever this is. `0s`: no warning before expiry.
    #[arg(long, default_value = "24h", value_parser = parse_duration, env = "PULLSECRET_INJECTOR_EXPIRY_WARNING")]
    pub expiry_warning: Duration,
    #[command(flatten)]
    pub node: NodeArgs,
}

impl PolicyArgs {
    pub fn policy(&self) -> Policy {
        Policy {
            deny_unmatched: self.deny_unmatched.clone(),
            audit_only: self.policy_audit,
            warn_unmatched: self.warn_unmatched.clone(),
            node_providers: self.node.providers(),
            clock: Default::default(),
            expiry_warning: self.expiry_warning,
        }
    }
}

/// What the nodes' kubelets are configured with (`serve`, `mutate` and `explain`).
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// The nodes' kubelet credential provider configuration (the file of the kubelet's
    /// `--image-credential-provider-config`: a `CredentialProviderConfig`, YAML or JSON, kubelet.config.k8s.io/v1,
    /// v1beta1 or v1alpha1). An image one of its providers' `matchImages` matches (as the kubelet matches them)
    /// gets its credential from the node: no warning, and `--deny-unmatched` is satisfied. Pull Secrets are still
    /// injected where they match. Read once at startup; a file the kubelet would refuse is refused.
    #[arg(
        long = "credential-provider-config",
        value_name = "FILE",
        env = "PULLSECRET_INJECTOR_CREDENTIAL_PROVIDER_CONFIG",
        value_parser = read_credential_provider_config
    )]
    pub credential_provider_config: Option<NodeProviders>,
}

impl NodeArgs {
    pub fn providers(&self) -> NodeProviders {
        self.credential_provider_config.clone().unwrap_or_default()
    }
}

/// Reads and validates `--credential-provider-config` while the command line is parsed, so that a bad file stops
/// every command at startup (exit 2), with clap naming the flag and the file.
fn read_credential_provider_config(path: &str) -> Result<NodeProviders, String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(credential_provider::MAX_CONFIG_BYTES as u64 + 1).read_to_string(&mut text))
        .map_err(|e| format!("cannot read {path:?}: {e}"))?;
    // The file is the operator's, not a tenant's; still, the message is printed to a terminal or a log.
    NodeProviders::parse(&text).map_err(|e| crate::safe_text::line(&format!("{path:?}: {e}"), 2048))
}

/// Parses `10s`, `500ms`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration like 10s or 500ms: {e}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults code and tests get are the flags' defaults, as `--help` shows them.
    #[test]
    fn limits_default_to_the_flags_defaults() {
        let limits = Limits::default();
        assert_eq!(limits.max_body_bytes, 7 * 1024 * 1024);
        assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
        assert_eq!(limits.request_timeout, Duration::from_secs(30));
        assert_eq!(limits.idle_timeout, Duration::from_secs(30));
        assert_eq!(limits.max_connections, 1024);
        assert_eq!(limits.max_concurrent_streams, 32);
        let index = defaults::<IndexArgs>().options();
        assert_eq!(index.limits, crate::core::credentials::IndexLimits::default());
        assert_eq!(index.max_lag, Duration::from_secs(60));
    }
}
