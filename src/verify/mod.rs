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

/// Which kinds of local addresses a check may connect to. Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7,
/// 100.64/10) are always allowed: on-premises registries such as `10.10.10.10:443` are normal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    /// 127/8, `::1`.
    pub loopback: bool,
    /// 169.254/16, fe80::/10, and the cloud metadata addresses outside them (`fd00:ec2::254`, `100.100.100.200`).
    pub link_local: bool,
    /// 0/8, `::`, broadcast and multicast: nothing a registry can be.
    pub unspecified: bool,
}

impl AddressPolicy {
    /// Every address (the `verify` command; `serve --verify-allow-local-addresses`).
    pub const ANY: Self = Self { loopback: true, link_local: true, unspecified: true };
    /// No loopback, link-local or unspecified address (the periodic checks' default).
    pub const REMOTE: Self = Self { loopback: false, link_local: false, unspecified: false };

    /// `Err(what the address is)` when the policy refuses `ip`, after unwrapping IPv4 addresses carried in IPv6 ones
    /// (IPv4-mapped and -compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`).
    pub fn check(&self, ip: IpAddr) -> Result<(), &'static str> {
        match address_class(ip) {
            Some(AddressClass::Loopback) if !self.loopback => Err("a loopback address"),
            Some(AddressClass::LinkLocal) if !self.link_local => Err("a link-local or cloud metadata address"),
            Some(AddressClass::Unspecified) if !self.unspecified => {
                Err("an unspecified, broadcast or multicast address")
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddressClass {
    Loopback,
    LinkLocal,
    Unspecified,
}

fn address_class(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                return v4_class(v4);
            }
            let segments = v6.segments();
            if v6.is_unspecified() || v6.is_multicast() {
                Some(AddressClass::Unspecified)
            } else if v6.is_loopback() {
                Some(AddressClass::Loopback)
            } else if segments[0] & 0xffc0 == 0xfe80 || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some(AddressClass::LinkLocal)
            } else {
                None
            }
        }
    }
}

fn v4_class(v4: Ipv4Addr) -> Option<AddressClass> {
    if v4.is_loopback() {
        Some(AddressClass::Loopback)
    } else if v4.is_link_local() || v4 == Ipv4Addr::new(100, 100, 100, 200) {
        Some(AddressClass::LinkLocal)
    } else if v4.octets()[0] == 0 || v4.is_broadcast() || v4.is_multicast() {
        Some(AddressClass::Unspecified)
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address stands for, in the forms a connection can reach it by.
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // IPv4-mapped ::ffff:a.b.c.d and IPv4-translated ::ffff:0:a.b.c.d.
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low),
        // IPv4-compatible ::a.b.c.d (deprecated), but not `::` and `::1` themselves.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 || lo > 1 => Some(low),
        // NAT64 well-known prefix 64:ff9b::/96 and local-use 64:ff9b:1::/48.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, ..] => Some(low),
        // 6to4 2002:AABB:CCDD::/48.
        [0x2002, a, b, ..] => Some(Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8)),
        _ => None,
    }
}

/// A connection the checks refuse to make (an address the [`AddressPolicy`] refuses, a downgrade to plain HTTP).
#[derive(Debug)]
struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Checks an address literal of a URL against the policy; names are checked by [`GuardedResolver`].
fn check_url_host(url: &Url, policy: AddressPolicy) -> Result<(), Refused> {
    // `Url` writes every IPv4 spelling (`2130706433`, `0x7f.1`) in dotted form and IPv6 in brackets.
    let host = url.host_str().unwrap_or_default();
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let Ok(ip) = literal.parse::<IpAddr>() else { return Ok(()) };
    policy.check(ip).map_err(|what| Refused(refusal(&ip.to_string(), ip, what)))
}

fn refusal(host: &str, ip: IpAddr, what: &str) -> String {
    let host = safe_text::line(host, MAX_HOST_CHARS);
    let named = if host == ip.to_string() { host } else { format!("{host} ({ip})") };
    format!(
        "refused to connect to {named}: {what}; periodic checks only reach registries on other hosts \
         (serve --verify-allow-local-addresses allows it)"
    )
}

/// The resolver of a client with a restricting [`AddressPolicy`]: resolves with the system resolver and refuses
/// the name when any of its addresses is refused, so that a name cannot reach what its address literal could not.
struct GuardedResolver {
    policy: AddressPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for address in &addresses {
                if let Err(what) = policy.check(address.ip()) {
                    return Err(Box::new(Refused(refusal(&host, address.ip(), what))) as _);
                }
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The redirect rules: at most [`MAX_REDIRECTS`]; http or https only; a URL every HTTP client accepts; never from
/// HTTPS to HTTP, and plain HTTP only on the host of a request that started there; address literals checked
/// against the policy (names are checked by the resolver when connecting).
fn redirect_policy(policy: AddressPolicy) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let next = attempt.url().clone();
        let Some(first) = attempt.previous().first().cloned() else { return attempt.follow() };
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(Refused(format!("more than {MAX_REDIRECTS} redirects")));
        }
        if let Err(reason) = usable_url(&next) {
            return attempt.error(Refused(format!("redirect refused: {reason}")));
        }
        if next.scheme() == "http" && (first.scheme() != "http" || !same_host(&first, &next)) {
            let reason = if first.scheme() == "https" {
                "from HTTPS to plain HTTP: credentials are never downgraded"
            } else {
                "to plain HTTP on another host"
            };
            return attempt.error(Refused(format!("redirect to {} refused: {reason}", shown_host(&next))));
        }
        if let Err(refused) = check_url_host(&next, policy) {
            return attempt.error(Refused(format!("redirect {refused}")));
        }
        attempt.follow()
    })
}

fn same_host(a: &Url, b: &Url) -> bool {
    match (a.host_str(), b.host_str()) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

/// `host[:port]` of a URL, display-safe.
fn shown_host(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    let shown = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    safe_text::line(&shown, MAX_HOST_CHARS + 6)
}

/// Whether a URL can be requested at all: http or https, a host of at most [`MAX_HOST_CHARS`], at most
/// [`MAX_URL_BYTES`] long and acceptable to `http::Uri`.
fn usable_url(url: &Url) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {:?} is neither http nor https", safe_text::line(url.scheme(), 32)));
    }
    match url.host_str() {
        None | Some("") => return Err("no host".to_owned()),
        Some(host) if host.chars().count() > MAX_HOST_CHARS => {
            return Err(format!("host longer than {MAX_HOST_CHARS} characters"));
        }
        Some(_) => {}
    }
    if url.as_str().len() > MAX_URL_BYTES {
        return Err(format!("URL longer than {MAX_URL_BYTES} bytes"));
    }
    url.as_str().parse::<hyper::Uri>().map(|_| ()).map_err(|e| format!("unusable URL: {e}"))
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
                let expires_at = expiry_of(secret, kind, payload);
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

/// Writes the results: `text` is a table (namespace/secret, registry, status, detail), a summary line and the
/// lint notes; `json` is exactly the array of [`CheckResult`] on `out`, with lint notes on `err`.
pub fn render(
    results: &[CheckResult],
    lint: &[String],
    output: VerifyOutput,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<()> {
    match output {
        VerifyOutput::Json | VerifyOutput::Jsonl => {
            // `jsonl` printed each result as it completed (progress::Reporter).
            if output == VerifyOutput::Json {
                serde_json::to_writer_pretty(&mut *out, results).map_err(std::io::Error::other)?;
                writeln!(out)?;
            }
            for note in lint {
                writeln!(err, "note: {note}")?;
            }
        }
        VerifyOutput::Text => {
            render_table(results, out)?;
            if !lint.is_empty() {
                writeln!(out)?;
                writeln!(out, "Notes:")?;
                for note in lint {
                    writeln!(out, "  {note}")?;
                }
            }
        }
    }
    Ok(())
}

/// Exit 0 when every entry is ok or skipped (docs/contract.md), else 1.
pub fn all_ok(results: &[CheckResult]) -> bool {
    results.iter().all(|r| matches!(r.status, Status::Ok | Status::Skipped))
}

fn render_table(results: &[CheckResult], out: &mut dyn Write) -> std::io::Result<()> {
    if results.is_empty() {
        return writeln!(
            out,
            "No registry credentials to check (no kubernetes.io/dockerconfigjson or dockercfg Secrets)."
        );
    }
    let header = ["NAMESPACE/SECRET", "REGISTRY", "STATUS", "DETAIL"];
    // Results are display-safe already; escaping again is a no-op that keeps the table safe for any caller.
    let rows: Vec<[String; 4]> = results
        .iter()
        .map(|r| {
            let registry = if r.registry.is_empty() { "-".to_owned() } else { safe_text::key(&r.registry) };
            let secret = safe_text::text(&format!("{}/{}", r.namespace, r.secret)).into_owned();
            let mut detail = safe_text::text(&r.detail).into_owned();
            if let Some(at) = &r.expires_at {
                detail.push_str(&format!(" (credential expiry: {at})"));
            }
            [secret, registry, r.status.to_string(), detail]
        })
        .collect();
    let width = |column: usize| {
        rows.iter().map(|row| row[column].chars().count()).chain([header[column].len()]).max().unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2)];
    // Padded by hand: `{:width$}` panics on widths over 65,535, and a cell is as wide as its data.
    let mut line = |cells: [&str; 4]| {
        let mut text = String::new();
        for (cell, width) in cells.iter().zip(widths) {
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.chars().count()) + 2));
        }
        text.push_str(cells[3]);
        writeln!(out, "{}", text.trim_end())
    };
    line(header)?;
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3]])?;
    }
    let mut counts: Vec<(Status, usize)> = Vec::new();
    for r in results {
        match counts.iter_mut().find(|(status, _)| *status == r.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.status, 1)),
        }
    }
    let summary: Vec<String> = counts.iter().map(|(status, n)| format!("{n} {status}")).collect();
    writeln!(out)?;
    writeln!(out, "{} checked: {}", plural(results.len(), "entry", "entries"), summary.join(", "))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

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

// --- Where to check --------------------------------------------------------------------------------

/// The registry API base a key names.
#[derive(Debug, PartialEq, Eq)]
struct Endpoint {
    /// `scheme://host[:port]`, no trailing slash.
    base: String,
}

/// Derives the registry endpoint from a key as written: `http://` keeps plain HTTP (the runtime must be
/// configured for an insecure registry then), anything else is HTTPS; host and port come from the key as the
/// kubelet normalizes it (R13-R16), the path is irrelevant because the API lives at the host's `/v2/`. The reason
/// of a key that names no registry never quotes the key beyond what [`safe_text`] shows.
fn endpoint_for_key(key: &str) -> Result<Endpoint, String> {
    let body = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let authority = &body[..body.find('/').unwrap_or(body.len())];
    if authority.contains(['*', '?']) {
        return Err("wildcard key names no single registry host".to_owned());
    }
    // R17: `HTTPS://h`, `oci://h`, `https://https://h` keep their scheme as the host `HTTPS:`; such a key
    // never matches an image, so there is no registry to ask.
    if authority.ends_with(':') && body[authority.len()..].starts_with("//") {
        let scheme = safe_text::line(authority.rsplit(['@', '\u{FF20}', '\u{FE6B}']).next().unwrap_or_default(), 40);
        return Err(format!("the kubelet never matches this key: scheme `{scheme}//` is read as the host"));
    }
    let Some(normalized) = keyring::normalize_key(key) else {
        return Err("the kubelet drops this key (not a valid URL), so it is never used".to_owned());
    };
    let host = &normalized[..normalized.find('/').unwrap_or(normalized.len())];
    if host.is_empty() {
        return Err("the key names no registry host".to_owned());
    }
    if host.contains(['[', ']']) && !is_bracketed_ipv6(host) {
        return Err("wildcard key (a `[...]` class) names no single registry host".to_owned());
    }
    if DOCKER_HUB_HOSTS.contains(&host) {
        return Ok(Endpoint { base: DOCKER_HUB_REGISTRY.to_owned() });
    }
    if host.chars().count() > MAX_HOST_CHARS + 6 {
        return Err(format!("the key names a host longer than {MAX_HOST_CHARS} characters; no registry can serve it"));
    }
    let scheme = if key.starts_with("http://") { "http" } else { "https" };
    let base = format!("{scheme}://{host}");
    // The kubelet keeps some hosts no HTTP client can reach, e.g. port 99999 (ports are not range-checked).
    let shown = || safe_text::line(host, MAX_HOST_CHARS + 6);
    match Url::parse(&base) {
        Err(error) => Err(format!("no registry can serve {}: {error}", shown())),
        Ok(url) => match usable_url(&url) {
            Err(reason) => Err(format!("no registry can serve {}: {reason}", shown())),
            Ok(()) => Ok(Endpoint { base }),
        },
    }
}

/// `[v6]` or `[v6]:port`: a real address literal, not a glob class.
fn is_bracketed_ipv6(host: &str) -> bool {
    let Some(rest) = host.strip_prefix('[') else { return false };
    let Some((address, after)) = rest.split_once(']') else { return false };
    let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && address.parse::<Ipv6Addr>().is_ok()
}

// --- The handshake ---------------------------------------------------------------------------------

fn build_client(options: &VerifyOptions) -> Result<Client, VerifyError> {
    let mut builder = Client::builder()
        .use_rustls_tls()
        .timeout(options.timeout)
        .connect_timeout(options.timeout)
        .user_agent(concat!("pullsecret-injector/", env!("CARGO_PKG_VERSION")))
        .redirect(redirect_policy(options.addresses));
    if options.addresses != AddressPolicy::ANY {
        // Every name is resolved here and its addresses checked; a proxy would resolve names out of sight.
        builder = builder.dns_resolver(Arc::new(GuardedResolver { policy: options.addresses })).no_proxy();
    }
    if let Some(path) = &options.ca_file {
        let pem = std::fs::read(path).map_err(|source| VerifyError::CaFileRead { path: path.clone(), source })?;
        let invalid = |reason: String| VerifyError::CaFileInvalid { path: path.clone(), reason };
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| invalid(format!("not a PEM certificate bundle: {e}")))?;
        if certificates.is_empty() {
            return Err(invalid("contains no PEM certificate".to_owned()));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if options.insecure_skip_tls_verify {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|e| match &options.ca_file {
        Some(path) => {
            VerifyError::CaFileInvalid { path: path.clone(), reason: format!("unusable CA certificate: {}", chain(&e)) }
        }
        None => VerifyError::Client(chain(&e)),
    })
}

/// Checks one entry; the detail is scrubbed of the entry's credentials and display-safe.
async fn check_entry(
    client: &Client,
    entry: &RegistryEntry,
    timeout: Duration,
    addresses: AddressPolicy,
) -> (Status, String) {
    let (status, detail) = match endpoint_for_key(&entry.key) {
        Err(reason) => (Status::Skipped, reason),
        Ok(endpoint) => Handshake { client, entry, timeout, endpoint: &endpoint, addresses }.run().await,
    };
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", entry.username, entry.password));
    (status, scrub(&detail, &[&entry.password, &auth]))
}

struct Handshake<'a> {
    client: &'a Client,
    entry: &'a RegistryEntry,
    timeout: Duration,
    endpoint: &'a Endpoint,
    addresses: AddressPolicy,
}

type Outcome = (Status, String);

impl Handshake<'_> {
    async fn run(&self) -> Outcome {
        let url = format!("{}/v2/", self.endpoint.base);
        // Names are checked by the resolver as they are connected to; address literals here.
        match Url::parse(&url) {
            Err(error) => return (Status::Error, format!("GET {url}: unusable URL: {error}")),
            Ok(parsed) => {
                if let Err(refused) = check_url_host(&parsed, self.addresses) {
                    return (Status::Error, refused.to_string());
                }
            }
        }
        let response = match self.client.get(&url).send().await {
            Ok(response) => response,
            Err(error) => return self.failure(&format!("GET {url}"), &error),
        };
        match response.status() {
            status if status.is_success() => {
                (Status::Ok, "registry allows anonymous access; credential not exercised".to_owned())
            }
            StatusCode::UNAUTHORIZED => {
                let challenges: Vec<Challenge> = response
                    .headers()
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|value| value.to_str().ok())
                    .flat_map(parse_challenges)
                    .collect();
                let bearer = challenges.iter().find(|c| c.scheme.eq_ignore_ascii_case("bearer"));
                let basic = challenges.iter().find(|c| c.scheme.eq_ignore_ascii_case("basic"));
                match (bearer, basic) {
                    (Some(bearer), _) => self.bearer(&url, bearer).await,
                    (None, Some(_)) => self.basic(&url).await,
                    (None, None) if challenges.is_empty() => {
                        (Status::Error, format!("GET {url} answered HTTP 401 without a WWW-Authenticate challenge"))
                    }
                    (None, None) => {
                        let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
                        (Status::Error, format!("unsupported authentication scheme {} at {url}", schemes.join(", ")))
                    }
                }
            }
            StatusCode::BAD_REQUEST if self.endpoint.base.starts_with("http://") => (
                Status::Error,
                format!("GET {url} answered HTTP 400; if the registry serves HTTPS, write the key without http://"),
            ),
            status => (
                Status::Error,
                format!("GET {url} answered HTTP {}; not a Docker Registry HTTP API v2 endpoint", status.as_u16()),
            ),
        }
    }

    async fn basic(&self, url: &str) -> Outcome {
        let request = self.client.get(url).basic_auth(&self.entry.username, Some(&self.entry.password));
        match request.send().await {
            Err(error) => self.failure(&format!("GET {url}"), &error),
            Ok(response) => match response.status() {
                status if status.is_success() => (Status::Ok, format!("authenticated as {} (Basic)", self.user())),
                status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => (
                    Status::Unauthorized,
                    format!(
                        "registry rejected the credentials of {} (HTTP {}){}",
                        self.user(),
                        status.as_u16(),
                        self.empty_hint()
                    ),
                ),
                status => (Status::Error, format!("GET {url} with Basic auth answered HTTP {}", status.as_u16())),
            },
        }
    }

    async fn bearer(&self, url: &str, challenge: &Challenge) -> Outcome {
        let Some(realm) = challenge.param("realm") else {
            return (Status::Error, format!("Bearer challenge of {url} has no realm"));
        };
        let mut token_url = match Url::parse(realm) {
            Ok(token_url) if usable_url(&token_url).is_ok() => token_url,
            _ => {
                let realm = safe_text::line(realm, 200);
                return (Status::Error, format!("Bearer challenge of {url} has an unusable realm {realm:?}"));
            }
        };
        // Credentials are never downgraded: a plain-HTTP realm only for a plain-HTTP registry, on its own host.
        if token_url.scheme() == "http" {
            let registry = Url::parse(&self.endpoint.base).ok();
            let own_host = registry.as_ref().is_some_and(|r| r.scheme() == "http" && same_host(r, &token_url));
            if !own_host {
                let why = if self.endpoint.base.starts_with("https://") {
                    "an HTTPS registry named a plain-HTTP token endpoint"
                } else {
                    "a plain-HTTP token endpoint on another host"
                };
                return (
                    Status::Error,
                    format!(
                        "refused to send credentials to http://{}: {why}; credentials never travel over plain HTTP \
                         unless the key says http://, and then only to that registry's host",
                        shown_host(&token_url)
                    ),
                );
            }
        }
        if let Err(refused) = check_url_host(&token_url, self.addresses) {
            return (Status::Error, format!("token endpoint {refused}"));
        }
        {
            // No scope: `GET /v2/` needs none, and a token without access is all the check needs.
            let mut query = token_url.query_pairs_mut();
            if let Some(service) = challenge.param("service") {
                query.append_pair("service", service);
            }
            if !self.entry.username.is_empty() {
                query.append_pair("account", &self.entry.username);
            }
        }
        let token_host = token_url.host_str().map(|host| match token_url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        });
        let token_host = safe_text::line(&token_host.unwrap_or_default(), MAX_HOST_CHARS + 6);
        let mut request = self.client.get(token_url.clone());
        if !self.entry.username.is_empty() || !self.entry.password.is_empty() {
            request = request.basic_auth(&self.entry.username, Some(&self.entry.password));
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return self.failure(&format!("token endpoint {token_host}"), &error),
        };
        let status = response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return (
                Status::Unauthorized,
                format!(
                    "token endpoint {token_host} rejected the credentials of {} (HTTP {}){}",
                    self.user(),
                    status.as_u16(),
                    self.empty_hint()
                ),
            );
        }
        if !status.is_success() {
            return (Status::Error, format!("token endpoint {token_host} answered HTTP {}", status.as_u16()));
        }
        let body = match read_capped(response, MAX_TOKEN_RESPONSE_BYTES).await {
            Ok(Some(body)) => body,
            Ok(None) => {
                return (
                    Status::Error,
                    format!(
                        "token endpoint {token_host} answered more than {} KiB; not a token response (not read further)",
                        MAX_TOKEN_RESPONSE_BYTES / 1024
                    ),
                );
            }
            Err(error) => return self.failure(&format!("token endpoint {token_host}"), &error),
        };
        let Some(token) = token_from_response(&body) else {
            return (Status::Error, format!("token endpoint {token_host} answered without a token"));
        };

        let response = match self.client.get(url).bearer_auth(&token).send().await {
            Ok(response) => response,
            Err(error) => return self.failure(&format!("GET {url}"), &error),
        };
        let outcome = match response.status() {
            status if status.is_success() => {
                (Status::Ok, format!("authenticated as {} (Bearer token from {token_host})", self.user()))
            }
            status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => (
                Status::Unauthorized,
                format!(
                    "registry refused the token issued to {} by {token_host} (HTTP {})",
                    self.user(),
                    status.as_u16()
                ),
            ),
            status => (Status::Error, format!("GET {url} with a Bearer token answered HTTP {}", status.as_u16())),
        };
        (outcome.0, scrub(&outcome.1, &[&token]))
    }

    /// Classifies a failed request: refused connections, TLS problems, unreachable hosts, timeouts, the rest.
    fn failure(&self, what: &str, error: &reqwest::Error) -> Outcome {
        if let Some(refused) = find_error::<Refused>(error) {
            return (Status::Error, format!("{what}: {refused}"));
        }
        if let Some(tls) = find_rustls_error(error) {
            return (Status::TlsError, format!("{what}: {}", describe_tls(tls, &self.endpoint.base)));
        }
        if error.is_timeout() {
            return (Status::Unreachable, format!("{what}: no answer within {}", seconds(self.timeout)));
        }
        let cause = innermost(error);
        if error.is_connect() {
            return (Status::Unreachable, format!("{what}: cannot connect: {cause}"));
        }
        (Status::Error, format!("{what}: {cause}"))
    }

    fn user(&self) -> String {
        format!("user {:?}", self.entry.username)
    }

    fn empty_hint(&self) -> &'static str {
        if self.entry.username.is_empty() && self.entry.password.is_empty() {
            "; the entry has no username and no password"
        } else {
            ""
        }
    }
}

/// The body of a response, read as a stream: `None` as soon as it exceeds `cap` bytes (announced or sent), so that
/// an endless body costs at most `cap` bytes and no more time than the request timeout.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response.content_length().is_some_and(|length| length > cap as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// `token` or, per the OAuth2 spelling, `access_token` of a token response.
fn token_from_response(body: &[u8]) -> Option<String> {
    if body.len() > MAX_TOKEN_RESPONSE_BYTES {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        token: Option<String>,
        access_token: Option<String>,
    }
    let parsed: TokenResponse = serde_json::from_slice(body).ok()?;
    [parsed.token, parsed.access_token].into_iter().flatten().find(|t| !t.is_empty())
}

/// One challenge of a `WWW-Authenticate` header (RFC 7235): a scheme and its auth-params.
#[derive(Debug, PartialEq, Eq)]
struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// Parses `Bearer realm="https://auth/token",service="reg", Basic realm="x"`: challenges separated by commas,
/// params `name=token` or `name="quoted \" string"`. Malformed tails end the parse; what came before is kept.
fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut challenges: Vec<Challenge> = Vec::new();
    let mut rest = header.trim_start();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        let name_len = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
        if name_len == 0 {
            break;
        }
        let name = &rest[..name_len];
        let after = rest[name_len..].trim_start_matches([' ', '\t']);
        if let Some(value_part) = after.strip_prefix('=') {
            // An auth-param of the current challenge.
            let value_part = value_part.trim_start_matches([' ', '\t']);
            let (value, remaining) = match value_part.strip_prefix('"') {
                Some(quoted) => match parse_quoted(quoted) {
                    Some(parsed) => parsed,
                    None => break,
                },
                None => {
                    let end = value_part.find([',', ' ', '\t']).unwrap_or(value_part.len());
                    (value_part[..end].to_owned(), &value_part[end..])
                }
            };
            match challenges.last_mut() {
                Some(challenge) => challenge.params.push((name.to_ascii_lowercase(), value)),
                None => break,
            }
            rest = remaining.trim_start_matches([' ', '\t']);
        } else {
            challenges.push(Challenge { scheme: name.to_owned(), params: Vec::new() });
            rest = after;
        }
    }
    challenges
}

/// The body of a quoted-string after its opening `"`: the unescaped value and the text after the closing `"`.
fn parse_quoted(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    None
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

// --- Errors and details ----------------------------------------------------------------------------

/// An error of type `E` in the chain of a request failure, opening `io::Error`s as [`find_rustls_error`] does.
fn find_error<'a, E: std::error::Error + 'static>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a E> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
            && let Some(found) = find_error::<E>(inner)
        {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// The rustls error behind a request failure, if any. `io::Error::source` skips the error it wraps, so each
/// `io::Error` of the chain is opened with `get_ref`.
fn find_rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
            && let Some(tls) = find_rustls_error(inner)
        {
            return Some(tls);
        }
        current = e.source();
    }
    None
}

fn describe_tls(error: &rustls::Error, base: &str) -> String {
    use rustls::CertificateError as Cert;
    let host = base.split_once("://").map_or(base, |(_, host)| host);
    match error {
        rustls::Error::InvalidCertificate(Cert::UnknownIssuer) => {
            "certificate signed by an unknown authority (pass its CA with --ca-file)".to_owned()
        }
        rustls::Error::InvalidCertificate(Cert::NotValidForName | Cert::NotValidForNameContext { .. }) => {
            format!("certificate is not valid for {host}")
        }
        rustls::Error::InvalidCertificate(Cert::Expired | Cert::ExpiredContext { .. }) => {
            "certificate has expired".to_owned()
        }
        rustls::Error::InvalidCertificate(other) => format!("invalid certificate: {other:?}"),
        rustls::Error::InvalidMessage(_) => {
            format!("TLS handshake failed ({error}); if the registry serves plain HTTP, write the key as http://{host}")
        }
        other => format!("TLS handshake failed: {other}"),
    }
}

/// The deepest cause's message: reqwest's and hyper's wrappers repeat the URL and say little.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    one_line(&current.to_string())
}

/// The whole chain of messages, for errors that are rare enough to need every word.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut current = error.source();
    while let Some(e) = current {
        parts.push(e.to_string());
        current = e.source();
    }
    one_line(&parts.join(": "))
}

fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes every credential from a detail (defense in depth: details are built from our own words, but error
/// messages of the HTTP stack and servers' URLs end up in them too). Whitespace is folded to one line, which is
/// then made display-safe and bounded ([`safe_text::line`]).
fn scrub(detail: &str, secrets: &[&str]) -> String {
    let mut detail = one_line(detail);
    for secret in secrets.iter().filter(|s| s.len() >= MIN_SCRUB_LEN) {
        detail = detail.replace(secret, safe_text::REDACTED);
    }
    safe_text::line(&detail, MAX_DETAIL_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::http::{HeaderMap, StatusCode as AxumStatus, Uri, header};
    use axum::routing::get;
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    const USER: &str = "alice";
    const PASSWORD: &str = "correct-horse-battery";
    const TOKEN: &str = "tok-3f9a8b7c6d5e";

    fn secret(namespace: &str, name: &str, type_: &str, data_key: &str, payload: &str) -> Secret {
        Secret {
            metadata: ObjectMeta { name: Some(name.into()), namespace: Some(namespace.into()), ..Default::default() },
            type_: Some(type_.into()),
            data: Some([(data_key.to_owned(), ByteString(payload.as_bytes().to_vec()))].into()),
            ..Default::default()
        }
    }

    /// The fake registries of these tests live on loopback.
    fn local() -> VerifyOptions {
        VerifyOptions { addresses: AddressPolicy::ANY, ..VerifyOptions::default() }
    }

    fn pull_secret(namespace: &str, name: &str, keys: &[(&str, &str, &str)]) -> Secret {
        // Written by hand so that the document order is the order given.
        let entries: Vec<String> = keys
            .iter()
            .map(|(key, user, password)| {
                let entry = serde_json::json!({ "username": user, "password": password });
                format!("{}:{entry}", serde_json::Value::from(*key))
            })
            .collect();
        let payload = format!("{{\"auths\":{{{}}}}}", entries.join(","));
        secret(namespace, name, "kubernetes.io/dockerconfigjson", ".dockerconfigjson", &payload)
    }

    /// Issue 12 item 5: `verify` shows when a credential expires (a JWT password's `exp` here), and neither the
    /// table nor the JSON carries the token or a part of it. A wildcard key is skipped: no network.
    #[tokio::test]
    async fn verify_shows_the_expiry_and_never_the_token() {
        let b64 = |t: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t);
        let token = format!("{}.{}.{}", b64("{}"), b64(r#"{"exp":1796400000,"c":"Canary-3d"}"#), b64("sig-Canary"));
        let secrets = [pull_secret("ns", "jwt", &[("*.example.com", "robot", &token)])];
        let results = verify(&secrets, &local()).await.unwrap();
        assert_eq!(results[0].status, Status::Skipped);
        assert_eq!(results[0].expires_at.as_deref(), Some("2026-12-04T16:00:00Z"));
        for output in [VerifyOutput::Text, VerifyOutput::Json] {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            render(&results, &lint(&secrets), output, &mut out, &mut err).unwrap();
            let text = String::from_utf8(out).unwrap() + &String::from_utf8(err).unwrap();
            assert!(text.contains("2026-12-04T16:00:00Z"), "{text}");
            assert!(!text.contains("Canary"), "{text}");
            for part in token.split('.') {
                assert!(!text.contains(part), "{text}");
            }
        }
    }

    #[test]
    fn endpoints_are_derived_from_the_key() {
        // (key as written, endpoint base or None for skipped)
        let table: &[(&str, Option<&str>)] = &[
            ("reg.example.com", Some("https://reg.example.com")),
            ("reg.example.com:5000", Some("https://reg.example.com:5000")),
            ("https://reg.example.com:5000/v2/", Some("https://reg.example.com:5000")),
            ("reg.example.com/team/app", Some("https://reg.example.com")),
            ("http://127.0.0.1:5000", Some("http://127.0.0.1:5000")),
            ("http://127.0.0.1:5000/v1/", Some("http://127.0.0.1:5000")),
            ("https://user:pw@reg.example.com", Some("https://reg.example.com")),
            // Docker Hub, every spelling whose host means it.
            ("https://index.docker.io/v1/", Some(DOCKER_HUB_REGISTRY)),
            ("index.docker.io", Some(DOCKER_HUB_REGISTRY)),
            ("docker.io", Some(DOCKER_HUB_REGISTRY)),
            ("docker.io/myorg", Some(DOCKER_HUB_REGISTRY)),
            ("registry-1.docker.io", Some(DOCKER_HUB_REGISTRY)),
            ("[fc00::1]:5000", Some("https://[fc00::1]:5000")),
            // No single host.
            ("*.example.com", None),
            ("https://*.example.com/v2/", None),
            ("reg?.example.com", None),
            // R17: unrecognized schemes become the host.
            ("HTTPS://reg.example.com", None),
            ("oci://reg.example.com", None),
            ("https://https://reg.example.com", None),
            ("reg.example.com:", Some("https://reg.example.com:")),
            ("reg.example.com:99999", None),
            ("user:pw@HTTPS://reg.example.com", None),
            ("*:5000", None),
            ("re[g].example.com", None),
            // Dropped by the kubelet (R14): never used, so never checked.
            ("reg.example.com:abc", None),
            ("", None),
        ];
        for (key, expected) in table {
            let got = endpoint_for_key(key).ok().map(|e| e.base);
            assert_eq!(got.as_deref(), *expected, "key {key:?}");
        }
    }

    #[test]
    fn skip_reasons_never_echo_userinfo() {
        for key in ["user:hunter22@HTTPS://reg.example.com", "user:hunter22@*.example.com", "user:hunter22@reg:abc"] {
            let reason = endpoint_for_key(key).unwrap_err();
            assert!(!reason.contains("hunter22"), "{key}: {reason}");
        }
    }

    #[test]
    fn challenges_are_parsed() {
        type Params = &'static [(&'static str, &'static str)];
        // (header, [(scheme, params)])
        let table: &[(&str, &[(&str, Params)])] = &[
            ("Basic realm=\"Registry Realm\"", &[("Basic", &[("realm", "Registry Realm")])]),
            (
                "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\"",
                &[("Bearer", &[("realm", "https://auth.docker.io/token"), ("service", "registry.docker.io")])],
            ),
            ("Bearer realm=https://a/t, service=reg", &[("Bearer", &[("realm", "https://a/t"), ("service", "reg")])]),
            ("Bearer realm=\"x\", Basic realm=\"y\"", &[("Bearer", &[("realm", "x")]), ("Basic", &[("realm", "y")])]),
            ("Bearer REALM=\"a\\\"b\"", &[("Bearer", &[("realm", "a\"b")])]),
            ("Negotiate", &[("Negotiate", &[])]),
            ("", &[]),
            // An unterminated quote ends the parse, keeping the scheme.
            ("Bearer realm=\"open", &[("Bearer", &[])]),
        ];
        for (header, expected) in table {
            let got = parse_challenges(header);
            let want: Vec<Challenge> = expected
                .iter()
                .map(|(scheme, params)| Challenge {
                    scheme: (*scheme).to_owned(),
                    params: params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                })
                .collect();
            assert_eq!(got, want, "header {header:?}");
        }
    }

    #[test]
    fn token_responses() {
        let table: &[(&str, Option<&str>)] = &[
            (r#"{"token":"a"}"#, Some("a")),
            (r#"{"access_token":"b"}"#, Some("b")),
            (r#"{"token":"","access_token":"c"}"#, Some("c")),
            (r#"{"token":"a","access_token":"b","expires_in":300}"#, Some("a")),
            (r#"{}"#, None),
            (r#"{"token":5}"#, None),
            ("not json", None),
        ];
        for (body, expected) in table {
            assert_eq!(token_from_response(body.as_bytes()).as_deref(), *expected, "body {body}");
        }
    }

    #[test]
    fn scrub_removes_credentials_and_newlines() {
        assert_eq!(scrub("a secret-pw b\nc", &["secret-pw"]), "a <redacted> b c");
        // Too short to be worth garbling the text.
        assert_eq!(scrub("user abc", &["abc"]), "user abc");
        // Any `@` of a key ends what is redacted: a key has no other use for one.
        assert_eq!(safe_text::key("https://u:p@reg.example.com/x@y"), "https://<redacted>@y");
        assert_eq!(safe_text::key("reg.example.com/x"), "reg.example.com/x");
    }

    #[test]
    fn all_ok_accepts_only_ok_and_skipped() {
        let row = |status| CheckResult {
            namespace: "ns".into(),
            secret: "s".into(),
            registry: "r".into(),
            status,
            detail: String::new(),
            expires_at: None,
        };
        for status in [Status::Ok, Status::Skipped] {
            assert!(all_ok(&[row(Status::Ok), row(status)]), "{status}");
        }
        for status in
            [Status::Unauthorized, Status::Unreachable, Status::TlsError, Status::InvalidSecret, Status::Error]
        {
            assert!(!all_ok(&[row(Status::Ok), row(status)]), "{status}");
        }
        assert!(all_ok(&[]));
    }

    #[test]
    fn json_output_is_exactly_the_contract_array() {
        let results = vec![CheckResult {
            namespace: "team-a".into(),
            secret: "regcred".into(),
            registry: "https://index.docker.io/v1/".into(),
            status: Status::TlsError,
            detail: "d".into(),
            expires_at: None,
        }];
        let (mut out, mut err) = (Vec::new(), Vec::new());
        render(&results, &["a note".into()], VerifyOutput::Json, &mut out, &mut err).unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!([{"namespace":"team-a","secret":"regcred","registry":"https://index.docker.io/v1/",
                "status":"tls-error","detail":"d"}])
        );
        assert_eq!(String::from_utf8(err).unwrap(), "note: a note\n");
        let expiring = CheckResult { expires_at: Some("2026-12-04T16:00:00Z".into()), ..results[0].clone() };
        assert_eq!(serde_json::to_value(&expiring).unwrap()["expiresAt"], "2026-12-04T16:00:00Z");
        let all = [
            Status::Ok,
            Status::Unauthorized,
            Status::Unreachable,
            Status::TlsError,
            Status::InvalidSecret,
            Status::Skipped,
            Status::Error,
        ];
        for status in all {
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::json!(status.as_str()));
        }
    }

    #[test]
    fn text_output_is_a_table_with_notes() {
        let results = vec![
            CheckResult {
                namespace: "ns".into(),
                secret: "a".into(),
                registry: "reg.example.com".into(),
                status: Status::Ok,
                detail: "fine".into(),
                expires_at: Some("2026-12-04T16:00:00Z".into()),
            },
            CheckResult {
                namespace: "ns".into(),
                secret: "broken".into(),
                registry: String::new(),
                status: Status::InvalidSecret,
                detail: "bad".into(),
                expires_at: None,
            },
        ];
        let (mut out, mut err) = (Vec::new(), Vec::new());
        render(&results, &["ns/a: a note".into()], VerifyOutput::Text, &mut out, &mut err).unwrap();
        let text = String::from_utf8(out).unwrap();
        let expected = "\
NAMESPACE/SECRET  REGISTRY         STATUS          DETAIL
ns/a              reg.example.com  ok              fine (credential expiry: 2026-12-04T16:00:00Z)
ns/broken         -                invalid-secret  bad

2 entries checked: 1 ok, 1 invalid-secret

Notes:
  ns/a: a note
";
        assert_eq!(text, expected);
        assert!(err.is_empty());
    }

    #[test]
    fn lint_names_dropped_keys_empty_payloads_and_duplicates() {
        let secrets = vec![
            pull_secret("ns", "a", &[("https://reg.example.com/v2/", "u", "p"), ("reg.example.com:abc", "u", "p")]),
            pull_secret("ns", "b", &[("reg.example.com", "u", "p")]),
            // Two spellings of one key inside one Secret: tried in Go map order.
            pull_secret("ns", "dup", &[("x.example.com", "u", "p"), ("https://x.example.com/v1/", "u", "p")]),
            // Same key in another namespace: not a duplicate.
            pull_secret("other", "c", &[("reg.example.com", "u", "p")]),
            secret("ns", "legacy", "kubernetes.io/dockerconfigjson", ".dockerconfigjson", r#"{"r.io":{}}"#),
            // Undecodable: verify's business, not lint's.
            secret("ns", "bad", "kubernetes.io/dockerconfigjson", ".dockerconfigjson", r#"{"auths":[]}"#),
            // Not a pull Secret (R2).
            secret("ns", "opaque", "Opaque", ".dockerconfigjson", r#"{"auths":{"x:abc":{}}}"#),
        ];
        let notes = lint(&secrets);
        let dropped: Vec<&String> = notes.iter().filter(|n| n.contains("drops")).collect();
        assert_eq!(dropped.len(), 1, "{notes:#?}");
        assert!(dropped[0].starts_with("ns/a: key \"reg.example.com:abc\": "), "{notes:#?}");
        assert!(notes.contains(
            &"ns/legacy: .dockerconfigjson has no registry entries (they belong under \"auths\")".to_owned()
        ));
        let duplicates: Vec<&String> = notes.iter().filter(|n| n.contains("normalize to")).collect();
        assert_eq!(duplicates.len(), 2, "{notes:#?}");
        assert_eq!(
            duplicates[0],
            "ns/a key \"https://reg.example.com/v2/\", ns/b key \"reg.example.com\": all normalize to \
             \"reg.example.com\"; a Pod that lists them gets every one tried, in imagePullSecrets order, until one \
             works"
        );
        assert!(
            duplicates[1].starts_with("ns/dup key \"x.example.com\", ns/dup key \"https://x.example.com/v1/\": ")
                && duplicates[1].contains("in random order within one Secret"),
            "{notes:#?}"
        );
        assert!(
            !notes.iter().any(|n| n.contains("other/") || n.contains("ns/bad") || n.contains("ns/opaque")),
            "{notes:#?}"
        );
    }

    #[test]
    fn string_data_wins_over_data() {
        let mut s = secret("ns", "s", "kubernetes.io/dockerconfigjson", ".dockerconfigjson", r#"{"auths":[]}"#);
        s.string_data = Some([(".dockerconfigjson".to_owned(), r#"{"auths":{"r.io":{}}}"#.to_owned())].into());
        let (kind, payload) = pull_payload(&s).unwrap();
        assert_eq!(kind, SecretKind::DockerConfigJson);
        assert_eq!(payload, br#"{"auths":{"r.io":{}}}"#);
    }

    // --- The handshake against fake registries -----------------------------------------------------

    /// Which answers the fake registry gives.
    #[derive(Clone, Copy)]
    enum Fake {
        Anonymous,
        Basic,
        /// Bearer with the token under `token`, or under `access_token` when true.
        Bearer {
            access_token: bool,
        },
        BearerWithoutToken,
        NoChallenge,
        Negotiate,
        NotARegistry,
    }

    struct FakeServer {
        base: String,
        /// Requests that carried the right credential or token.
        authorized: Arc<AtomicUsize>,
    }

    async fn fake_registry(kind: Fake) -> FakeServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let authorized = Arc::new(AtomicUsize::new(0));
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}")));
        let realm = format!("{base}/token");
        let v2 = {
            let (basic, authorized) = (basic.clone(), authorized.clone());
            move |headers: HeaderMap| async move {
                let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
                let challenge = match kind {
                    Fake::Anonymous => return (AxumStatus::OK, HeaderMap::new()),
                    Fake::NotARegistry => return (AxumStatus::NOT_FOUND, HeaderMap::new()),
                    Fake::NoChallenge => return (AxumStatus::UNAUTHORIZED, HeaderMap::new()),
                    Fake::Negotiate => "Negotiate".to_owned(),
                    Fake::Basic if auth == basic => {
                        authorized.fetch_add(1, Ordering::SeqCst);
                        return (AxumStatus::OK, HeaderMap::new());
                    }
                    Fake::Basic => "Basic realm=\"fake\"".to_owned(),
                    Fake::Bearer { .. } | Fake::BearerWithoutToken if auth == format!("Bearer {TOKEN}") => {
                        authorized.fetch_add(1, Ordering::SeqCst);
                        return (AxumStatus::OK, HeaderMap::new());
                    }
                    Fake::Bearer { .. } | Fake::BearerWithoutToken => {
                        format!("Bearer realm=\"{realm}\",service=\"fake-registry\"")
                    }
                };
                let mut headers = HeaderMap::new();
                headers.insert(header::WWW_AUTHENTICATE, challenge.parse().unwrap());
                (AxumStatus::UNAUTHORIZED, headers)
            }
        };
        let token = move |headers: HeaderMap, uri: Uri| async move {
            let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
            let query = uri.query().unwrap_or("");
            // The realm gets the challenge's service and the account, and no scope.
            assert!(query.contains("service=fake-registry"), "{query}");
            assert!(!query.contains("scope"), "{query}");
            if auth != basic {
                return (AxumStatus::UNAUTHORIZED, String::new());
            }
            let body = match kind {
                Fake::Bearer { access_token: true } => serde_json::json!({ "access_token": TOKEN }),
                Fake::BearerWithoutToken => serde_json::json!({ "expires_in": 60 }),
                _ => serde_json::json!({ "token": TOKEN }),
            };
            (AxumStatus::OK, body.to_string())
        };
        let app = Router::new().route("/v2/", get(v2)).route("/token", get(token));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeServer { base, authorized }
    }

    async fn check_against(base: &str, user: &str, password: &str) -> CheckResult {
        let secrets = [pull_secret("ns", "s", &[(base, user, password)])];
        let options = VerifyOptions { timeout: Duration::from_secs(5), ..local() };
        let mut results = verify(&secrets, &options).await.unwrap();
        assert_eq!(results.len(), 1);
        let result = results.remove(0);
        // The redaction promise, for every outcome.
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        for secret in [password, auth.as_str(), TOKEN].into_iter().filter(|s| !s.is_empty()) {
            assert!(!result.detail.contains(secret), "detail leaks a credential: {}", result.detail);
        }
        assert!(!result.detail.contains('\n'));
        result
    }

    #[tokio::test]
    async fn handshake_outcomes() {
        // (fake registry, password, expected status, words the detail must contain, authorized requests)
        let table: &[(Fake, &str, Status, &str, usize)] = &[
            (Fake::Anonymous, PASSWORD, Status::Ok, "anonymous access; credential not exercised", 0),
            (Fake::Basic, PASSWORD, Status::Ok, "authenticated as user \"alice\" (Basic)", 1),
            (
                Fake::Basic,
                "wrong-password",
                Status::Unauthorized,
                "registry rejected the credentials of user \"alice\" (HTTP 401)",
                0,
            ),
            (
                Fake::Bearer { access_token: false },
                PASSWORD,
                Status::Ok,
                "authenticated as user \"alice\" (Bearer token from 127.0.0.1:",
                1,
            ),
            (Fake::Bearer { access_token: true }, PASSWORD, Status::Ok, "(Bearer token from", 1),
            (
                Fake::Bearer { access_token: false },
                "wrong-password",
                Status::Unauthorized,
                "rejected the credentials of user \"alice\" (HTTP 401)",
                0,
            ),
            (Fake::BearerWithoutToken, PASSWORD, Status::Error, "answered without a token", 0),
            (Fake::NoChallenge, PASSWORD, Status::Error, "HTTP 401 without a WWW-Authenticate challenge", 0),
            (Fake::Negotiate, PASSWORD, Status::Error, "unsupported authentication scheme Negotiate", 0),
            (
                Fake::NotARegistry,
                PASSWORD,
                Status::Error,
                "answered HTTP 404; not a Docker Registry HTTP API v2 endpoint",
                0,
            ),
        ];
        for (i, (kind, password, status, words, authorized)) in table.iter().enumerate() {
            let server = fake_registry(*kind).await;
            let result = check_against(&server.base, USER, password).await;
            assert_eq!(result.status, *status, "case {i}: {result:?}");
            assert!(result.detail.contains(words), "case {i}: {:?} lacks {words:?}", result.detail);
            assert_eq!(server.authorized.load(Ordering::SeqCst), *authorized, "case {i}");
            assert_eq!(result.registry, server.base);
        }
    }

    #[tokio::test]
    async fn empty_credentials_are_named() {
        let server = fake_registry(Fake::Basic).await;
        let result = check_against(&server.base, "", "").await;
        assert_eq!(result.status, Status::Unauthorized);
        assert!(result.detail.ends_with("the entry has no username and no password"), "{}", result.detail);
    }

    #[tokio::test]
    async fn unreachable_and_timeouts() {
        // A port with nothing listening: bind, learn the port, close.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let result = check_against(&format!("http://127.0.0.1:{port}"), USER, PASSWORD).await;
        assert_eq!(result.status, Status::Unreachable, "{result:?}");
        assert!(result.detail.contains("cannot connect"), "{}", result.detail);

        // Accepts the connection, never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let holder = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                open.push(stream);
            }
        });
        let secrets = [pull_secret("ns", "s", &[(&format!("http://{addr}"), USER, PASSWORD)])];
        let options = VerifyOptions { timeout: Duration::from_millis(300), ..local() };
        let results = verify(&secrets, &options).await.unwrap();
        assert_eq!(results[0].status, Status::Unreachable, "{results:?}");
        assert!(results[0].detail.ends_with("no answer within 300ms"), "{}", results[0].detail);
        holder.abort();
    }

    #[tokio::test]
    async fn rows_keep_input_order_and_cover_every_kind_of_secret() {
        let server = fake_registry(Fake::Basic).await;
        let secrets = vec![
            pull_secret("ns", "first", &[(&server.base, USER, PASSWORD), ("*.example.com", USER, PASSWORD)]),
            secret(
                "ns",
                "broken",
                "kubernetes.io/dockerconfigjson",
                ".dockerconfigjson",
                r#"{"auths":{"r.io":{"auth":"pants"}}}"#,
            ),
            secret("ns", "opaque", "Opaque", ".dockerconfigjson", r#"{"auths":{"r.io":{}}}"#),
            secret(
                "ns",
                "legacy",
                "kubernetes.io/dockercfg",
                ".dockercfg",
                &format!(r#"{{"{}":{{"username":"{USER}","password":"wrong-one"}}}}"#, server.base),
            ),
        ];
        let options = VerifyOptions { concurrency: 2, ..local() };
        let results = verify(&secrets, &options).await.unwrap();
        let got: Vec<(&str, &str, Status)> =
            results.iter().map(|r| (r.secret.as_str(), r.registry.as_str(), r.status)).collect();
        assert_eq!(
            got,
            vec![
                ("first", server.base.as_str(), Status::Ok),
                ("first", "*.example.com", Status::Skipped),
                ("broken", "", Status::InvalidSecret),
                ("legacy", server.base.as_str(), Status::Unauthorized),
            ]
        );
        assert!(
            results[2].detail.starts_with("the kubelet cannot decode .dockerconfigjson: "),
            "{}",
            results[2].detail
        );
        assert!(!all_ok(&results));
    }

    #[tokio::test]
    async fn bad_ca_files_are_flag_errors() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("not.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        let missing = dir.path().join("missing.pem");
        for (path, words) in
            [(&not_pem, "contains no PEM certificate"), (&garbage, "--ca-file"), (&missing, "cannot read")]
        {
            let options = VerifyOptions { ca_file: Some(path.clone()), ..VerifyOptions::default() };
            let error = verify(&[], &options).await.unwrap_err();
            assert!(error.to_string().contains(words), "{path:?}: {error}");
            assert!(error.to_string().contains(&path.display().to_string()), "{error}");
        }
    }

    // --- Issue 11: hostile keys, registries and token endpoints ------------------------------------------------

    #[test]
    fn local_addresses_are_classified_in_every_spelling() {
        let refused: &[&str] = &[
            "127.0.0.1",
            "127.255.0.9",
            "::1",
            "169.254.169.254",
            "169.254.170.2",
            "fe80::1",
            "febf::1",
            "fd00:ec2::254",
            "100.100.100.200",
            "0.0.0.0",
            "0.1.2.3",
            "::",
            "255.255.255.255",
            "224.0.0.1",
            "ff02::1",
            // IPv4 carried in IPv6.
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0:127.0.0.1",
            "::127.0.0.1",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::7f00:1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
        ];
        for ip in refused {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(AddressPolicy::REMOTE.check(ip).is_err(), "{ip} must be refused");
            assert!(AddressPolicy::ANY.check(ip).is_ok(), "{ip} allowed with the flag");
        }
        let allowed: &[&str] = &[
            "10.10.10.10",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "8.8.8.8",
            "fc00::1",
            "fd12:3456::1",
            "2001:db8::1",
            "::ffff:10.10.10.10",
            "64:ff9b::a0a:a0a",
        ];
        for ip in allowed {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(AddressPolicy::REMOTE.check(ip).is_ok(), "{ip} must be allowed (private or public)");
        }
        // One class at a time.
        let loopback_only = AddressPolicy { loopback: true, ..AddressPolicy::REMOTE };
        assert!(loopback_only.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(loopback_only.check("169.254.169.254".parse().unwrap()).is_err());
        assert!(loopback_only.check("0.0.0.0".parse().unwrap()).is_err());
    }

    #[test]
    fn address_literals_in_urls_are_checked_in_every_spelling() {
        for url in [
            "http://127.0.0.1:5000/v2/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0:8080/",
            "http://[fe80::1%25eth0]/",
        ] {
            let Ok(parsed) = Url::parse(url) else { continue };
            assert!(check_url_host(&parsed, AddressPolicy::REMOTE).is_err(), "{url} ({parsed})");
        }
        let private = Url::parse("https://10.10.10.10:443/v2/").unwrap();
        assert!(check_url_host(&private, AddressPolicy::REMOTE).is_ok());
    }

    /// Class 5: hostile sizes give a clean per-entry result, never a panic, and the report stays printable.
    #[tokio::test]
    async fn hostile_sizes_are_clean_per_entry_results() {
        let keys = [
            "a".repeat(65_000) + ".example.com",
            format!("reg.example.com/{}", "a".repeat(65_600)),
            format!("reg.example.com:{}", "5".repeat(70_000)),
            format!("http://127.0.0.1:1/{}", "p".repeat(100_000)),
            format!("https://u:{}@reg.example.com", "p".repeat(100_000)),
            format!("{}.example.com", "a.".repeat(40_000)),
            "[".repeat(70_000),
            "\u{1b}".repeat(70_000),
        ];
        let entries: Vec<(&str, &str, &str)> = keys.iter().map(|k| (k.as_str(), USER, PASSWORD)).collect();
        let secrets = [pull_secret("ns", "s", &entries)];
        let options = VerifyOptions { timeout: Duration::from_millis(500), ..VerifyOptions::default() };
        let results = verify(&secrets, &options).await.unwrap();
        assert_eq!(results.len(), keys.len());
        for r in &results {
            assert!(r.registry.chars().count() <= safe_text::MAX_KEY_CHARS, "{}", r.registry.len());
            assert!(r.detail.chars().count() <= MAX_DETAIL_CHARS, "{}", r.detail.len());
            assert!(safe_text::is_safe(&r.registry) && safe_text::is_safe(&r.detail), "{r:?}");
            assert!(matches!(r.status, Status::Skipped | Status::Unreachable | Status::Error), "{r:?}");
        }
        let (mut out, mut err) = (Vec::new(), Vec::new());
        render(&results, &lint(&secrets), VerifyOutput::Text, &mut out, &mut err).unwrap();
        render(&results, &lint(&secrets), VerifyOutput::Json, &mut out, &mut err).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains(PASSWORD) && !text.contains(&"p".repeat(300)), "a credential was printed");
    }

    /// A token endpoint whose body never ends costs at most the cap.
    #[tokio::test]
    async fn an_endless_token_body_is_cut_at_the_cap() {
        use std::sync::atomic::AtomicU64;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let sent = Arc::new(AtomicU64::new(0));
        let realm = format!("{base}/token");
        let v2 = move || {
            let realm = realm.clone();
            async move {
                let mut headers = HeaderMap::new();
                headers.insert(header::WWW_AUTHENTICATE, format!("Bearer realm=\"{realm}\"").parse().unwrap());
                (AxumStatus::UNAUTHORIZED, headers)
            }
        };
        let counter = sent.clone();
        let token = move || {
            let counter = counter.clone();
            async move {
                let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
                let stream = futures::stream::repeat_with(move || {
                    counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(chunk.clone())
                });
                axum::body::Body::from_stream(stream)
            }
        };
        let app = Router::new().route("/v2/", get(v2)).route("/token", get(token));
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let result = check_against(&base, USER, PASSWORD).await;
        server.abort();
        assert_eq!(result.status, Status::Error, "{result:?}");
        assert!(result.detail.contains("more than 1024 KiB"), "{}", result.detail);
        // The server produced what the socket buffers took, not gigabytes.
        let produced = sent.load(Ordering::SeqCst);
        assert!(produced < 32 << 20, "{produced} bytes streamed");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            /// Class 5 at the root: whatever the key, the endpoint is a URL every HTTP client accepts, or a reason
            /// that is display-safe and shows no userinfo.
            #[test]
            fn every_key_gives_a_usable_endpoint_or_a_safe_reason(
                key in prop_oneof![
                    any::<String>(),
                    "(https?://|HTTPS://|//)?([a-z]{1,3}:QZQ[a-z]{1,4}@)?[a-z0-9.:\\[\\]%*?-]{0,40}(/[ -~]{0,20})?",
                    (0usize..3, 250usize..70_000).prop_map(|(kind, n)| match kind {
                        0 => "a".repeat(n),
                        1 => format!("reg.example.com:{}", "9".repeat(n)),
                        _ => format!("{}.example.com", "ab.".repeat(n / 3)),
                    }),
                ]
            ) {
                match endpoint_for_key(&key) {
                    Ok(endpoint) => {
                        let url = Url::parse(&endpoint.base).unwrap();
                        prop_assert!(usable_url(&url).is_ok(), "{}", endpoint.base);
                    }
                    Err(reason) => {
                        prop_assert!(safe_text::is_safe(&reason), "{:?}", reason);
                        prop_assert!(!reason.contains("QZQ"), "{}", reason);
                    }
                }
            }
        }
    }
}
