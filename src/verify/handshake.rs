//! One entry's check: the endpoint its key names, the Docker Registry v2 handshake (`GET /v2/`, then Basic or a
//! Bearer token from the challenge's realm), and details that name what failed without a credential in them.

use super::*;

// --- Where to check --------------------------------------------------------------------------------

/// The registry API base a key names.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Endpoint {
    /// `scheme://host[:port]`, no trailing slash.
    pub(super) base: String,
}

/// Derives the registry endpoint from a key as written: `http://` keeps plain HTTP (the runtime must be
/// configured for an insecure registry then), anything else is HTTPS; host and port come from the key as the
/// kubelet normalizes it (R13-R16), the path is irrelevant because the API lives at the host's `/v2/`. The reason
/// of a key that names no registry never quotes the key beyond what [`safe_text`] shows.
pub(super) fn endpoint_for_key(key: &str) -> Result<Endpoint, String> {
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
pub(super) fn is_bracketed_ipv6(host: &str) -> bool {
    let Some(rest) = host.strip_prefix('[') else { return false };
    let Some((address, after)) = rest.split_once(']') else { return false };
    let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && address.parse::<Ipv6Addr>().is_ok()
}

// --- The handshake ---------------------------------------------------------------------------------

pub(super) fn build_client(options: &VerifyOptions) -> Result<Client, VerifyError> {
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
pub(super) async fn check_entry(
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

pub(super) struct Handshake<'a> {
    client: &'a Client,
    entry: &'a RegistryEntry,
    timeout: Duration,
    endpoint: &'a Endpoint,
    addresses: AddressPolicy,
}

pub(super) type Outcome = (Status, String);

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
pub(super) async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
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
pub(super) fn token_from_response(body: &[u8]) -> Option<String> {
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
pub(super) struct Challenge {
    pub(super) scheme: String,
    pub(super) params: Vec<(String, String)>,
}

impl Challenge {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// Parses `Bearer realm="https://auth/token",service="reg", Basic realm="x"`: challenges separated by commas,
/// params `name=token` or `name="quoted \" string"`. Malformed tails end the parse; what came before is kept.
pub(super) fn parse_challenges(header: &str) -> Vec<Challenge> {
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
pub(super) fn parse_quoted(text: &str) -> Option<(String, &str)> {
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

pub(super) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

// --- Errors and details ----------------------------------------------------------------------------

/// An error of type `E` in the chain of a request failure, opening `io::Error`s as [`find_rustls_error`] does.
pub(super) fn find_error<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
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
pub(super) fn find_rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
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

pub(super) fn describe_tls(error: &rustls::Error, base: &str) -> String {
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
pub(super) fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    one_line(&current.to_string())
}

/// The whole chain of messages, for errors that are rare enough to need every word.
pub(super) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut current = error.source();
    while let Some(e) = current {
        parts.push(e.to_string());
        current = e.source();
    }
    one_line(&parts.join(": "))
}

pub(super) fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes every credential from a detail (defense in depth: details are built from our own words, but error
/// messages of the HTTP stack and servers' URLs end up in them too). Whitespace is folded to one line, which is
/// then made display-safe and bounded ([`safe_text::line`]).
pub(super) fn scrub(detail: &str, secrets: &[&str]) -> String {
    let mut detail = one_line(detail);
    for secret in secrets.iter().filter(|s| s.len() >= MIN_SCRUB_LEN) {
        detail = detail.replace(secret, safe_text::REDACTED);
    }
    safe_text::line(&detail, MAX_DETAIL_CHARS)
}
