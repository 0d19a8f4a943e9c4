//! `verify`: do the credentials in pull Secrets actually work (docs/contract.md `verify`)?
//!
//! Every registry entry of every `kubernetes.io/dockerconfigjson` / `kubernetes.io/dockercfg` Secret is tried
//! against the registry its key names, with the Docker Registry HTTP API v2 handshake a container runtime
//! performs: `GET /v2/` without credentials, then the authentication the registry's `WWW-Authenticate`
//! challenge asks for (Basic, or a Bearer token fetched from the challenge's realm with Basic credentials).
//!
//! Secrets are decoded exactly as the kubelet decodes them ([`crate::kubelet::docker_config`]), so an entry that works
//! here is the credential the kubelet hands to the runtime, and a Secret the kubelet cannot decode (R4) is
//! reported as `invalid-secret` instead of being checked.
//!
//! Credentials never leave this module except in the `Authorization` header of a request to the registry or
//! its token realm: details name the username at most, and a final scrub removes any credential that a
//! server might echo back (`scrub`). Every field of a result is display-safe ([`crate::safe_text`]): the key is
//! shown redacted, escaped and bounded, names and details escaped.
//!
//! Registries, their token endpoints and the keys that name them are all untrusted (the periodic checks of
//! `serve` read Secrets that tenants write):
//!
//! - a token response is read as a stream and abandoned past [`MAX_TOKEN_RESPONSE_BYTES`];
//! - credentials never travel over plain HTTP unless the key itself says `http://`, and then only to that
//!   registry's own host: an HTTPS registry naming an `http://` realm, and any redirect from HTTPS to HTTP (or,
//!   for an `http://` key, to another host) are refused;
//! - with [`AddressPolicy::REMOTE`] (the periodic checks' default) no connection goes to a loopback, link-local
//!   (cloud metadata included) or unspecified address: every address a name resolves to is checked before
//!   connecting (a custom resolver; HTTP proxies are not used then), address literals in keys, realms and
//!   redirects too, IPv4-mapped and other IPv6 forms of these included;
//! - nothing a registry or a key holds can panic a check: URLs are validated before reqwest sees them, and a
//!   panic would still only turn that one entry into an `error` row.

pub mod periodic;
pub mod progress;

mod address;
mod handshake;
mod report;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures::{FutureExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::Secret;
use reqwest::header::WWW_AUTHENTICATE;
use reqwest::{Client, StatusCode, Url};
use serde::Serialize;

use crate::core::credentials::{expiry_of, pull_payload};
use crate::core::expiry::{self, UnixTime};
use crate::kubelet::docker_config::{self, DecodeError, RegistryEntry, SecretKind};
use crate::kubelet::keyring;
use crate::safe_text;

pub use address::AddressPolicy;
use address::*;
use handshake::*;
pub use report::{all_ok, render};

/// What `--insecure-skip-tls-verify` should print on stderr before checking (the CLI prints it).
pub const INSECURE_WARNING: &str = concat!(
    "warning: --insecure-skip-tls-verify: registry certificates are not verified; ",
    "credentials may be sent to an impostor"
);

/// Where Docker Hub's registry API is served: keys that name Docker Hub (`index.docker.io`, `docker.io`,
/// `https://index.docker.io/v1/`, ...) are checked here.
const DOCKER_HUB_REGISTRY: &str = "https://registry-1.docker.io";

/// Normalized hosts that mean Docker Hub.
const DOCKER_HUB_HOSTS: [&str; 3] = ["index.docker.io", "docker.io", "registry-1.docker.io"];

/// A token response is a small JSON object; anything bigger is not one, and is not read further.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 1 << 20;

/// A DNS name has at most 253 characters; a key naming a longer host is reported, never resolved.
const MAX_HOST_CHARS: usize = 253;

/// `http::Uri` (hence every HTTP client) refuses longer URLs.
const MAX_URL_BYTES: usize = 65_534;

/// Redirects followed at most per request.
const MAX_REDIRECTS: usize = 5;

/// Namespace and Secret names in results: Kubernetes names have at most 253 characters; local files can hold
/// anything.
const MAX_NAME_CHARS: usize = 253;

/// Details are one line of at most this many characters.
const MAX_DETAIL_CHARS: usize = 512;

/// Secrets shorter than this are not scrubbed from details: they would garble ordinary words, and a
/// one-to-three character password is not a secret worth the noise.
const MIN_SCRUB_LEN: usize = 4;

/// `-o` of `verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyOutput {
    /// A table for people, followed by lint notes.
    Text,
    /// Exactly the JSON array of results (docs/contract.md); lint notes go to stderr.
    Json,
    /// One JSON object per entry (the fields of `json`), printed as each check completes; lint notes go to stderr.
    Jsonl,
}

/// How `verify` talks to registries.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// A PEM file of CA certificates trusted in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any registry certificate (print [`INSECURE_WARNING`]).
    pub insecure_skip_tls_verify: bool,
    /// Bound of every single request (connect, TLS, headers and body).
    pub timeout: Duration,
    /// Entries checked at the same time (at least 1).
    pub concurrency: usize,
    /// Which addresses may be connected to (registries, token realms, redirects).
    pub addresses: AddressPolicy,
}

impl Default for VerifyOptions {
    /// The periodic checks' defaults: [`AddressPolicy::REMOTE`]. The `verify` command, run by an operator on
    /// files they chose, uses [`AddressPolicy::ANY`].
    fn default() -> Self {
        Self {
            ca_file: None,
            insecure_skip_tls_verify: false,
            timeout: Duration::from_secs(10),
            concurrency: 8,
            addresses: AddressPolicy::REMOTE,
        }
    }
}

/// The outcome for one credential entry (or one undecodable Secret), as `-o json` prints it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckResult {
    pub namespace: String,
    /// The Secret's name.
    pub secret: String,
    /// The key as written in the Secret (a `user:password@` in it is redacted); `""` for an undecodable Secret.
    pub registry: String,
    pub status: Status,
    /// One line for people; never a password, `auth` string or token.
    pub detail: String,
    /// When the Secret's credential expires (RFC 3339, UTC: its expires-at annotation or a JWT's `exp`, see
    /// `core::expiry`); absent when it has no known expiry.
    #[serde(rename = "expiresAt", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// docs/contract.md's status values.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The registry accepted the credential (or needs none).
    Ok,
    /// The registry or its token service refused the credential.
    Unauthorized,
    /// No answer: connection refused, DNS failure, timeout.
    Unreachable,
    /// The TLS handshake failed, usually an untrusted or mismatched certificate.
    TlsError,
    /// The kubelet cannot decode the Secret (R4): every pull of a Pod that references it fails.
    InvalidSecret,
    /// The key names no single registry (wildcard) or is never used by the kubelet.
    Skipped,
    /// Anything else: not a registry, an unsupported challenge, a malformed token response.
    Error,
}

impl Status {
    /// The JSON spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Unauthorized => "unauthorized",
            Self::Unreachable => "unreachable",
            Self::TlsError => "tls-error",
            Self::InvalidSecret => "invalid-secret",
            Self::Skipped => "skipped",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why `verify` could not start (exit code 2: unusable flags).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("--ca-file {path}: cannot read: {source}")]
    CaFileRead { path: PathBuf, source: std::io::Error },
    #[error("--ca-file {path}: {reason}")]
    CaFileInvalid { path: PathBuf, reason: String },
    #[error("cannot set up the HTTPS client: {0}")]
    Client(String),
}

/// Checks every credential entry of every pull Secret (types `kubernetes.io/dockerconfigjson` and
/// `kubernetes.io/dockercfg`, R1; others are ignored, R2). `stringData` wins over `data` as on the API server.
/// An undecodable Secret gives one `invalid-secret` row with registry `""`. Results keep the input order:
/// Secrets as given, entries in document order.
pub async fn verify(secrets: &[Secret], options: &VerifyOptions) -> Result<Vec<CheckResult>, VerifyError> {
    verify_observed(secrets, options, &mut progress::Silent).await
}

/// [`verify`], telling `observer` of each entry as it completes (in completion order) and, every
/// [`progress::TICK`], how many are done and which pending one has been running longest. The results are still
/// returned in input order.
pub async fn verify_observed(
    secrets: &[Secret],
    options: &VerifyOptions,
    observer: &mut impl progress::Observer,
) -> Result<Vec<CheckResult>, VerifyError> {
    let client = build_client(options)?;
    let mut rows: Vec<Row> = Vec::new();
    for secret in secrets {
        let Some((kind, payload)) = pull_payload(secret) else { continue };
        let (namespace, name) = secret_name(secret);
        match docker_config::decode(kind, payload) {
            Ok(entries) => {
                let expires_at = expiry_of(secret, &entries);
                rows.extend(entries.into_iter().map(|entry| Row::Check {
                    namespace: namespace.clone(),
                    secret: name.clone(),
                    entry,
                    expires_at,
                }))
            }
            Err(error) => rows.push(Row::Done(invalid_secret(namespace, name, kind, &error))),
        }
    }

    let total = rows.len();
    let pending = progress::Pending::default();
    let (client, pending_ref) = (&client, &pending);
    let (timeout, addresses) = (options.timeout, options.addresses);
    let checks = futures::stream::iter(rows.into_iter().enumerate())
        .map(|(index, row)| async move {
            let result = match row {
                Row::Done(result) => result,
                Row::Check { namespace, secret, entry, expires_at } => {
                    let registry = safe_text::key(&entry.key);
                    let _running = pending_ref.start(index, format!("{namespace}/{secret} {registry}"));
                    // Nothing a key or a registry holds may panic `verify`; should a bug still do it, that entry
                    // alone becomes an `error` row.
                    let checked = std::panic::AssertUnwindSafe(check_entry(client, &entry, timeout, addresses))
                        .catch_unwind()
                        .await;
                    let (status, detail) = checked.unwrap_or_else(|_| {
                        (Status::Error, "internal error while checking this entry (a bug: please report it)".into())
                    });
                    tracing::debug!(%namespace, %secret, %registry, %status, "checked registry credential");
                    let expires_at = expires_at.map(expiry::format_rfc3339);
                    CheckResult { namespace, secret, registry, status, detail, expires_at }
                }
            };
            (index, result)
        })
        .buffer_unordered(options.concurrency.max(1));
    let mut checks = std::pin::pin!(checks);
    let mut results: Vec<Option<CheckResult>> = vec![None; total];
    let mut done = 0;
    let mut ticker = tokio::time::interval(progress::TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            next = checks.next() => {
                let Some((index, result)) = next else { break };
                done += 1;
                observer.done(&result);
                observer.progress(done, total, pending.slowest());
                results[index] = Some(result);
            }
            _ = ticker.tick() => observer.progress(done, total, pending.slowest()),
        }
    }
    observer.finished();
    Ok(results.into_iter().flatten().collect())
}

/// Lint notes (not checks), one line each naming namespace/secret and the key: keys the kubelet can never
/// match or drops ([`keyring::lint_key`], R14), dockerconfigjson payloads without entries (R3), and one
/// normalized key held by several entries of a namespace (R18: all are tried, in `imagePullSecrets` order).
pub fn lint(secrets: &[Secret]) -> Vec<String> {
    let mut notes = Vec::new();
    // (namespace, normalized key) -> (secret, key as shown) of the entries holding it, in input order.
    let mut holders: Vec<(NamespacedKey, Vec<(String, String)>)> = Vec::new();
    for secret in secrets {
        let Some((kind, payload)) = pull_payload(secret) else { continue };
        let (namespace, name) = secret_name(secret);
        // Undecodable Secrets are `verify`'s invalid-secret rows, not lint notes.
        let Ok(keys) = docker_config::decode_keys(kind, payload) else { continue };
        if keys.is_empty() && kind == SecretKind::DockerConfigJson {
            notes.push(format!(
                "{namespace}/{name}: .dockerconfigjson has no registry entries (they belong under \"auths\")"
            ));
        }
        for key in keys {
            let shown = safe_text::key(&key);
            notes.extend(
                keyring::key_notes(&key)
                    .notes
                    .iter()
                    .map(|note| format!("{namespace}/{name}: key {shown:?}: {}", safe_text::text(note))),
            );
            let Some(normalized) = keyring::normalize_key(&key) else { continue };
            let slot = (namespace.clone(), normalized);
            match holders.iter_mut().find(|(k, _)| *k == slot) {
                Some((_, list)) => list.push((name.clone(), shown)),
                None => holders.push((slot, vec![(name.clone(), shown)])),
            }
        }
    }
    for ((namespace, normalized), list) in holders.into_iter().filter(|(_, list)| list.len() > 1) {
        let named: Vec<String> = list.iter().map(|(secret, key)| format!("{namespace}/{secret} key {key:?}")).collect();
        // R18: one keyring slot; the kubelet tries its credentials in imagePullSecrets order (Go map order
        // within one Secret) until one works, so a stale one only costs a failed attempt, unless it is the only one.
        let within_one_secret = list.iter().enumerate().any(|(i, (s, _))| list[..i].iter().any(|(t, _)| t == s));
        let order = if within_one_secret {
            "imagePullSecrets order, and in random order within one Secret"
        } else {
            "imagePullSecrets order"
        };
        notes.push(format!(
            "{}: all normalize to {:?}; a Pod that lists them gets every one tried, in {order}, until one works",
            named.join(", "),
            safe_text::key(&normalized)
        ));
    }
    // One display-safe line each, whatever the keys and names hold.
    notes.iter().map(|note| safe_text::text(note).into_owned()).collect()
}

/// A normalized key within one namespace, where the kubelet's keyring of a Pod can hold it.
type NamespacedKey = (String, String);

// --- Secrets ---------------------------------------------------------------------------------------

enum Row {
    Done(CheckResult),
    Check { namespace: String, secret: String, entry: RegistryEntry, expires_at: Option<UnixTime> },
}

/// The namespace and name of a Secret, display-safe (escaped, bounded).
fn secret_name(secret: &Secret) -> (String, String) {
    let namespace = secret.metadata.namespace.as_deref().unwrap_or("default");
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    (safe_text::line(namespace, MAX_NAME_CHARS), safe_text::line(name, MAX_NAME_CHARS))
}

fn invalid_secret(namespace: String, secret: String, kind: SecretKind, error: &DecodeError) -> CheckResult {
    CheckResult {
        namespace,
        secret,
        registry: String::new(),
        status: Status::InvalidSecret,
        detail: safe_text::line(
            &one_line(&format!(
                "the kubelet cannot decode {}: {error}; every image pull of a Pod that references this Secret fails",
                kind.data_key()
            )),
            MAX_DETAIL_CHARS,
        ),
        expires_at: None,
    }
}
