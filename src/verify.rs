//! `verify`: do the credentials in pull Secrets actually work (CONTRACT.md `verify`)?
//!
//! Every registry entry of every `kubernetes.io/dockerconfigjson` / `kubernetes.io/dockercfg` Secret is tried
//! against the registry its key names, with the Docker Registry HTTP API v2 handshake a container runtime
//! performs: `GET /v2/` without credentials, then the authentication the registry's `WWW-Authenticate`
//! challenge asks for (Basic, or a Bearer token fetched from the challenge's realm with Basic credentials).
//!
//! Secrets are decoded exactly as the kubelet decodes them ([`crate::dockerconfig`]), so an entry that works
//! here is the credential the kubelet hands to the runtime, and a Secret the kubelet cannot decode (R4) is
//! reported as `invalid-secret` instead of being checked.
//!
//! Credentials never leave this module except in the `Authorization` header of a request to the registry or
//! its token realm: details name the username at most, and a final scrub removes any credential that a
//! server might echo back (`scrub`).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use reqwest::header::WWW_AUTHENTICATE;
use reqwest::{Client, StatusCode, Url};
use serde::Serialize;

use crate::dockerconfig::redact_userinfo;
use crate::dockerconfig::{self, DecodeError, RegistryEntry, SecretKind};
use crate::keyring;

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

/// A token response is a small JSON object; anything bigger is not one.
const MAX_TOKEN_RESPONSE_BYTES: usize = 1 << 20;

/// Secrets shorter than this are not scrubbed from details: they would garble ordinary words, and a
/// one-to-three character password is not a secret worth the noise.
const MIN_SCRUB_LEN: usize = 4;

/// `-o` of `verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyOutput {
    /// A table for people, followed by lint notes.
    Text,
    /// Exactly the JSON array of results (CONTRACT.md); lint notes go to stderr.
    Json,
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
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self { ca_file: None, insecure_skip_tls_verify: false, timeout: Duration::from_secs(10), concurrency: 8 }
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
}

/// CONTRACT.md's status values.
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
    let client = build_client(options)?;
    let mut rows: Vec<Row> = Vec::new();
    for secret in secrets {
        let Some((kind, payload)) = pull_payload(secret) else { continue };
        let (namespace, name) = secret_name(secret);
        match dockerconfig::decode(kind, &payload) {
            Ok(entries) => rows.extend(entries.into_iter().map(|entry| Row::Check {
                namespace: namespace.clone(),
                secret: name.clone(),
                entry,
            })),
            Err(error) => rows.push(Row::Done(invalid_secret(namespace, name, kind, &error))),
        }
    }

    let client = &client;
    let timeout = options.timeout;
    let results = futures::stream::iter(rows)
        .map(|row| async move {
            match row {
                Row::Done(result) => result,
                Row::Check { namespace, secret, entry } => {
                    let (status, detail) = check_entry(client, &entry, timeout).await;
                    let registry = redact_userinfo(&entry.key).into_owned();
                    tracing::debug!(%namespace, %secret, %registry, %status, "checked registry credential");
                    CheckResult { namespace, secret, registry, status, detail }
                }
            }
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    Ok(results)
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
        let Ok(keys) = dockerconfig::decode_keys(kind, &payload) else { continue };
        if keys.is_empty() && kind == SecretKind::DockerConfigJson {
            notes.push(format!(
                "{namespace}/{name}: .dockerconfigjson has no registry entries (they belong under \"auths\")"
            ));
        }
        for key in keys {
            let shown = redact_userinfo(&key).into_owned();
            let key_notes = keyring::lint_key(&key);
            let normalized = keyring::normalize_key(&key);
            if normalized.is_none() && key_notes.is_empty() {
                notes.push(format!("{namespace}/{name}: key {shown:?}: the kubelet drops this key (not a valid URL)"));
            }
            notes.extend(key_notes.iter().map(|note| format!("{namespace}/{name}: key {shown:?}: {note}")));
            let Some(normalized) = normalized else { continue };
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
            "{}: all normalize to {normalized:?}; a Pod that lists them gets every one tried, in {order}, \
             until one works",
            named.join(", ")
        ));
    }
    notes
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
        VerifyOutput::Json => {
            serde_json::to_writer_pretty(&mut *out, results).map_err(std::io::Error::other)?;
            writeln!(out)?;
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

/// Exit 0 when every entry is ok or skipped (CONTRACT.md), else 1.
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
    let rows: Vec<[String; 4]> = results
        .iter()
        .map(|r| {
            let registry = if r.registry.is_empty() { "-".to_owned() } else { r.registry.clone() };
            [format!("{}/{}", r.namespace, r.secret), registry, r.status.to_string(), r.detail.clone()]
        })
        .collect();
    let width = |column: usize| {
        rows.iter().map(|row| row[column].chars().count()).chain([header[column].len()]).max().unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2)];
    let mut line = |cells: [&str; 4]| {
        writeln!(
            out,
            "{:w0$}  {:w1$}  {:w2$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )
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
    Check { namespace: String, secret: String, entry: RegistryEntry },
}

/// R1/R2 on the Secret as the API server stores it: `stringData` entries overwrite `data` entries.
fn pull_payload(secret: &Secret) -> Option<(SecretKind, Vec<u8>)> {
    let mut data: BTreeMap<String, Vec<u8>> =
        secret.data.iter().flatten().map(|(key, value)| (key.clone(), value.0.clone())).collect();
    data.extend(secret.string_data.iter().flatten().map(|(key, value)| (key.clone(), value.clone().into_bytes())));
    dockerconfig::classify(secret.type_.as_deref(), &data).map(|(kind, payload)| (kind, payload.to_vec()))
}

fn secret_name(secret: &Secret) -> (String, String) {
    let namespace = secret.metadata.namespace.clone().unwrap_or_else(|| "default".to_owned());
    (namespace, secret.metadata.name.clone().unwrap_or_default())
}

fn invalid_secret(namespace: String, secret: String, kind: SecretKind, error: &DecodeError) -> CheckResult {
    CheckResult {
        namespace,
        secret,
        registry: String::new(),
        status: Status::InvalidSecret,
        detail: one_line(&format!(
            "the kubelet cannot decode {}: {error}; every image pull of a Pod that references this Secret fails",
            kind.data_key()
        )),
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
/// kubelet normalizes it (R13-R16), the path is irrelevant because the API lives at the host's `/v2/`.
fn endpoint_for_key(key: &str) -> Result<Endpoint, String> {
    let body = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let authority = &body[..body.find('/').unwrap_or(body.len())];
    if authority.contains(['*', '?']) {
        return Err("wildcard key names no single registry host".to_owned());
    }
    // R17: `HTTPS://h`, `oci://h`, `https://https://h` keep their scheme as the host `HTTPS:`; such a key
    // never matches an image, so there is no registry to ask.
    if authority.ends_with(':') && body[authority.len()..].starts_with("//") {
        let scheme = authority.rsplit('@').next().unwrap_or_default();
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
    let scheme = if key.starts_with("http://") { "http" } else { "https" };
    let base = format!("{scheme}://{host}");
    // The kubelet keeps some hosts no HTTP client can reach, e.g. port 99999 (ports are not range-checked).
    if let Err(error) = Url::parse(&base) {
        return Err(format!("no registry can serve {host}: {error}"));
    }
    Ok(Endpoint { base })
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
        .redirect(reqwest::redirect::Policy::limited(5));
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

/// Checks one entry; the detail is scrubbed of the entry's credentials.
async fn check_entry(client: &Client, entry: &RegistryEntry, timeout: Duration) -> (Status, String) {
    let (status, detail) = match endpoint_for_key(&entry.key) {
        Err(reason) => (Status::Skipped, reason),
        Ok(endpoint) => Handshake { client, entry, timeout, endpoint: &endpoint }.run().await,
    };
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", entry.username, entry.password));
    (status, scrub(&detail, &[&entry.password, &auth]))
}

struct Handshake<'a> {
    client: &'a Client,
    entry: &'a RegistryEntry,
    timeout: Duration,
    endpoint: &'a Endpoint,
}

type Outcome = (Status, String);

impl Handshake<'_> {
    async fn run(&self) -> Outcome {
        let url = format!("{}/v2/", self.endpoint.base);
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
            Ok(token_url) if matches!(token_url.scheme(), "http" | "https") => token_url,
            _ => return (Status::Error, format!("Bearer challenge of {url} has an unusable realm {realm:?}")),
        };
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
        let token_host = token_host.unwrap_or_default();
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
        let body = match response.bytes().await {
            Ok(body) => body,
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

    /// Classifies a failed request: TLS problems, unreachable hosts, timeouts, the rest.
    fn failure(&self, what: &str, error: &reqwest::Error) -> Outcome {
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
/// messages of the HTTP stack and servers' URLs end up in them too). Whitespace is folded to one line.
fn scrub(detail: &str, secrets: &[&str]) -> String {
    let mut detail = one_line(detail);
    for secret in secrets.iter().filter(|s| s.len() >= MIN_SCRUB_LEN) {
        detail = detail.replace(secret, "<redacted>");
    }
    detail
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
        assert_eq!(redact_userinfo("https://u:p@reg.example.com/x@y"), "https://<redacted>@reg.example.com/x@y");
        assert_eq!(redact_userinfo("reg.example.com/x@y"), "reg.example.com/x@y");
    }

    #[test]
    fn all_ok_accepts_only_ok_and_skipped() {
        let row = |status| CheckResult {
            namespace: "ns".into(),
            secret: "s".into(),
            registry: "r".into(),
            status,
            detail: String::new(),
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
            },
            CheckResult {
                namespace: "ns".into(),
                secret: "broken".into(),
                registry: String::new(),
                status: Status::InvalidSecret,
                detail: "bad".into(),
            },
        ];
        let (mut out, mut err) = (Vec::new(), Vec::new());
        render(&results, &["ns/a: a note".into()], VerifyOutput::Text, &mut out, &mut err).unwrap();
        let text = String::from_utf8(out).unwrap();
        let expected = "\
NAMESPACE/SECRET  REGISTRY         STATUS          DETAIL
ns/a              reg.example.com  ok              fine
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
        let options = VerifyOptions { timeout: Duration::from_secs(5), ..VerifyOptions::default() };
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
        let options = VerifyOptions { timeout: Duration::from_millis(300), ..VerifyOptions::default() };
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
        let options = VerifyOptions { concurrency: 2, ..VerifyOptions::default() };
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
}
