//! `verify` against real registries, and proof with a real client that `mutate` injects the right Secret.
//!
//! The registry is Debian's `docker-registry` (the Distribution project's registry 2.x), started per test on
//! 127.0.0.1 with a free port, a temporary storage directory, htpasswd (bcrypt) or token authentication, and TLS
//! from a CA made here with rcgen. `make test` installs it (tests/install-deps.sh); without it these tests say
//! so on stderr and pass vacuously. The skopeo test likewise needs `/usr/bin/skopeo`.
//!
//! Every Secret in these tests carries the same username and password; only the registry key differs, so
//! whatever distinguishes the outcomes is the key matching, as it is for the kubelet.

mod common;

use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SigningKey as _,
};
use serde_json::{Value, json};

use common::binary::{self, RUN_WAIT, Run, Served};
use common::process::Reaped;
use common::registry::{Auth, PASSWORD, REGISTRY_BIN, Registry, Tls, USER, basic};
use common::{free_port, write_manifests};

const SKOPEO_BIN: &str = "/usr/bin/skopeo";

/// Every Secret here carries `USER` and `PASSWORD` (common::registry's, which its htpasswd accepts: the `ok`
/// cases below prove it is right), or this wrong password.
const WRONG_PASSWORD: &str = "not-the-Pa55word";

// --- Availability ----------------------------------------------------------------------------------

fn have(binary: &str) -> bool {
    let present = Path::new(binary).is_file();
    if !present {
        eprintln!("SKIPPED: {binary} is not installed (`make test-deps` installs it); this test checks nothing");
    }
    present
}

// --- Certificates ----------------------------------------------------------------------------------

/// A CA and a serving certificate for 127.0.0.1 and localhost, as PEM files in `dir`.
struct Pki {
    ca_file: PathBuf,
    /// A directory with only `ca.crt`, as skopeo's `--cert-dir` wants it.
    ca_dir: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

fn pki(dir: &Path) -> Pki {
    let (ca_params, ca_key, ca_pem) = ca("pullsecret-injector verify test CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "test registry");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();

    let ca_dir = dir.join("ca");
    std::fs::create_dir_all(&ca_dir).unwrap();
    let pki =
        Pki { ca_file: ca_dir.join("ca.crt"), ca_dir, cert_file: dir.join("tls.crt"), key_file: dir.join("tls.key") };
    std::fs::write(&pki.ca_file, ca_pem).unwrap();
    std::fs::write(&pki.cert_file, cert.pem()).unwrap();
    std::fs::write(&pki.key_file, key.serialize_pem()).unwrap();
    pki
}

// --- The registry ----------------------------------------------------------------------------------

impl Pki {
    /// The serving certificate, for a registry with TLS.
    fn tls(&self) -> Tls<'_> {
        Tls { cert_file: &self.cert_file, key_file: &self.key_file }
    }
}

/// Distribution's token authentication with this file's token service: `realm` issues JWTs signed by a
/// certificate of `root_bundle`.
fn token_auth<'a>(realm: &'a str, root_bundle: &'a Path) -> Auth<'a> {
    Auth::Token { realm, service: TOKEN_SERVICE, issuer: TOKEN_ISSUER, root_bundle }
}

// --- Secrets and the binary ------------------------------------------------------------------------

/// A `kubernetes.io/dockerconfigjson` Secret with one entry.
fn pull_secret(namespace: &str, name: &str, key: &str, password: &str) -> Value {
    let payload = json!({ "auths": { key: { "auth": basic(USER, password) } } });
    secret_manifest(namespace, name, "kubernetes.io/dockerconfigjson", ".dockerconfigjson", &payload.to_string())
}

fn secret_manifest(namespace: &str, name: &str, type_: &str, data_key: &str, payload: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": name, "namespace": namespace },
        "type": type_,
        "data": { data_key: STANDARD.encode(payload) },
    })
}

/// Runs the binary (everything here is on loopback, and no proxy is asked).
fn run(args: &[&str]) -> Run {
    binary::run(args, None)
}

/// Runs `verify -o json` and returns the exit code and (secret, registry, status, detail) rows.
fn verify_json(secrets: &Path, extra: &[&str]) -> (i32, Vec<(String, String, String, String)>) {
    let mut args = vec!["verify", "--secrets", secrets.to_str().unwrap(), "-o", "json", "--timeout", "5s"];
    args.extend_from_slice(extra);
    let run = run(&args);
    let rows: Vec<Value> = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("verify -o json printed no JSON array ({e}): {}\n{}", run.stdout, run.stderr));
    let rows = rows
        .iter()
        .map(|row| {
            // Exactly docs/contract.md's fields; every Secret of these tests lives in team-a.
            let mut fields: Vec<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
            fields.sort_unstable();
            assert_eq!(fields, ["detail", "namespace", "registry", "secret", "status"], "{row}");
            assert_eq!(row["namespace"], "team-a", "{row}");
            let field = |name: &str| row[name].as_str().unwrap_or_else(|| panic!("{name} missing: {row}")).to_owned();
            (field("secret"), field("registry"), field("status"), field("detail"))
        })
        .collect::<Vec<_>>();
    for (_, _, _, detail) in &rows {
        assert_no_credentials(detail);
    }
    assert_no_credentials(&run.stderr);
    (run.code, rows)
}

/// The promise that no password, `auth` string or token is ever printed.
fn assert_no_credentials(text: &str) {
    for secret in [PASSWORD, WRONG_PASSWORD, &basic(USER, PASSWORD), &basic(USER, WRONG_PASSWORD)] {
        assert!(!text.contains(secret), "a credential was printed: {text}");
    }
    assert!(!text.contains("eyJ"), "something like a JWT was printed: {text}");
}

fn status_of<'a>(rows: &'a [(String, String, String, String)], secret: &str) -> (&'a str, &'a str) {
    let row = rows.iter().find(|r| r.0 == secret).unwrap_or_else(|| panic!("no row for {secret}: {rows:#?}"));
    (row.2.as_str(), row.3.as_str())
}

// --- verify ----------------------------------------------------------------------------------------

/// One run over every kind of entry: right and wrong password on a TLS registry, a plain-HTTP registry, a
/// stopped registry, a wildcard key, an undecodable Secret, a non-pull Secret. Exit 1 because some fail.
#[test]
fn verify_reports_each_status_against_real_registries() {
    if !have(REGISTRY_BIN) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let tls = Registry::start(dir.path(), "tls", Some(pki.tls()), Auth::Htpasswd);
    let plain = Registry::start(dir.path(), "plain", None, Auth::Htpasswd);
    let stopped_host = Registry::start(dir.path(), "stopped", Some(pki.tls()), Auth::Htpasswd).host();

    let plain_key = format!("http://{}", plain.host());
    let legacy = json!({ plain_key.clone(): { "username": USER, "password": PASSWORD } });
    let secrets = dir.path().join("secrets.yaml");
    write_manifests(
        &secrets,
        &[
            pull_secret("team-a", "good", &tls.host(), PASSWORD),
            pull_secret("team-a", "wrong-password", &format!("https://{}/v2/", tls.host()), WRONG_PASSWORD),
            // The legacy type, and plain HTTP because the key says http://.
            secret_manifest("team-a", "plain-http", "kubernetes.io/dockercfg", ".dockercfg", &legacy.to_string()),
            pull_secret("team-a", "stopped", &stopped_host, PASSWORD),
            // Scheme mistakes: HTTPS to a plain-HTTP registry, plain HTTP to a TLS one.
            pull_secret("team-a", "https-to-plain", &plain.host(), PASSWORD),
            pull_secret("team-a", "http-to-tls", &format!("http://{}", tls.host()), PASSWORD),
            pull_secret("team-a", "wildcard", "*.registry.example", PASSWORD),
            secret_manifest(
                "team-a",
                "undecodable",
                "kubernetes.io/dockerconfigjson",
                ".dockerconfigjson",
                r#"{"auths":{"127.0.0.1":{"auth":"not base64!"}}}"#,
            ),
            secret_manifest("team-a", "opaque", "Opaque", ".dockerconfigjson", r#"{"auths":{"x.io":{}}}"#),
        ],
    );

    let (code, rows) = verify_json(&secrets, &["--ca-file", pki.ca_file.to_str().unwrap()]);
    let summary: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_str())).collect();
    let wrong_key = format!("https://{}/v2/", tls.host());
    assert_eq!(
        summary,
        vec![
            ("good", tls.host().as_str(), "ok"),
            ("wrong-password", wrong_key.as_str(), "unauthorized"),
            ("plain-http", plain_key.as_str(), "ok"),
            ("stopped", stopped_host.as_str(), "unreachable"),
            ("https-to-plain", plain.host().as_str(), "tls-error"),
            ("http-to-tls", format!("http://{}", tls.host()).as_str(), "error"),
            ("wildcard", "*.registry.example", "skipped"),
            ("undecodable", "", "invalid-secret"),
        ],
        "{rows:#?}"
    );
    assert_eq!(code, 1, "failed entries exit 1");
    assert_eq!(status_of(&rows, "good").1, "authenticated as user \"alice\" (Basic)");
    assert!(status_of(&rows, "wrong-password").1.contains("rejected the credentials of user \"alice\" (HTTP 401)"));
    assert!(status_of(&rows, "stopped").1.contains("cannot connect"), "{rows:#?}");
    assert!(status_of(&rows, "https-to-plain").1.contains("write the key as http://"), "{rows:#?}");
    assert!(status_of(&rows, "http-to-tls").1.contains("write the key without http://"), "{rows:#?}");
    assert!(status_of(&rows, "undecodable").1.contains(".dockerconfigjson"), "{rows:#?}");
}

/// An unknown CA is a tls-error; `--ca-file` with the right CA makes it ok (exit 0), with another CA it stays a
/// tls-error, and `--insecure-skip-tls-verify` skips the check. Unusable flags exit 2 with one line naming them.
#[test]
fn tls_trust_follows_the_ca_file() {
    if !have(REGISTRY_BIN) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let registry = Registry::start(dir.path(), "tls", Some(pki.tls()), Auth::Htpasswd);
    let secrets = dir.path().join("secrets.yaml");
    write_manifests(&secrets, &[pull_secret("team-a", "good", &registry.host(), PASSWORD)]);
    let other_ca = dir.path().join("other-ca.crt");
    std::fs::write(&other_ca, ca("some other CA").2).unwrap();

    let (code, rows) = verify_json(&secrets, &[]);
    assert_eq!((code, status_of(&rows, "good").0), (1, "tls-error"), "{rows:#?}");
    assert!(status_of(&rows, "good").1.contains("unknown authority"), "{rows:#?}");

    let (code, rows) = verify_json(&secrets, &["--ca-file", other_ca.to_str().unwrap()]);
    assert_eq!((code, status_of(&rows, "good").0), (1, "tls-error"), "{rows:#?}");

    let (code, rows) = verify_json(&secrets, &["--ca-file", pki.ca_file.to_str().unwrap()]);
    assert_eq!((code, status_of(&rows, "good").0), (0, "ok"), "{rows:#?}");

    let (code, rows) = verify_json(&secrets, &["--insecure-skip-tls-verify"]);
    assert_eq!((code, status_of(&rows, "good").0), (0, "ok"), "{rows:#?}");

    // The text table, for people.
    let text = run(&["verify", "--secrets", secrets.to_str().unwrap(), "--ca-file", pki.ca_file.to_str().unwrap()]);
    assert_eq!(text.code, 0, "{}{}", text.stdout, text.stderr);
    let row = text.stdout.lines().find(|l| l.starts_with("team-a/good")).expect(&text.stdout);
    assert!(row.contains(&registry.host()) && row.contains(" ok ") && row.contains("(Basic)"), "{row}");
}

#[test]
fn unusable_flags_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.yaml");
    write_manifests(&secrets, &[pull_secret("team-a", "good", "127.0.0.1:1", PASSWORD)]);
    let missing = dir.path().join("missing-ca.crt");
    let not_pem = dir.path().join("not-pem.crt");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    for ca_file in [&missing, &not_pem] {
        let run = run(&["verify", "--secrets", secrets.to_str().unwrap(), "--ca-file", ca_file.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        assert!(run.stderr.contains("--ca-file") && run.stderr.contains(ca_file.to_str().unwrap()), "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
}

// --- Bearer tokens ---------------------------------------------------------------------------------

const TOKEN_SERVICE: &str = "verify-test-registry";
const TOKEN_ISSUER: &str = "verify-test-issuer";

/// A token service as Distribution's token authentication expects it: `GET /token?service=..` with Basic
/// credentials answers `{"token": JWT}`, the JWT signed (ES256) by a certificate that chains to the registry's
/// `rootcertbundle` and carried in the `x5c` header. Served over HTTPS with `tls` (the registry's certificate),
/// else over plain HTTP; `requests` counts what it received.
struct TokenService {
    runtime: tokio::runtime::Runtime,
    realm: String,
    root_bundle: PathBuf,
    requests: Arc<AtomicUsize>,
}

fn token_service(dir: &Path, tls: Option<&Pki>) -> TokenService {
    let (ca_params, ca_key, ca_pem) = ca("token signing CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let signing_key = std::sync::Arc::new(KeyPair::generate().unwrap());
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "token signer");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let signing_cert = params.signed_by(signing_key.as_ref(), &issuer).unwrap();
    let x5c = STANDARD.encode(signing_cert.der());
    let root_bundle = dir.join("token-ca.crt");
    std::fs::write(&root_bundle, ca_pem).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let expected = format!("Basic {}", basic(USER, PASSWORD));
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let handler = move |headers: axum::http::HeaderMap, uri: axum::http::Uri| {
        counter.fetch_add(1, Ordering::SeqCst);
        let authorized = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
        let right_service = uri.query().unwrap_or("").split('&').any(|p| p == format!("service={TOKEN_SERVICE}"));
        let answer = if authorized && right_service {
            let jwt = sign_jwt(&signing_key, &x5c);
            (axum::http::StatusCode::OK, json!({ "token": jwt, "expires_in": 300 }).to_string())
        } else {
            (axum::http::StatusCode::UNAUTHORIZED, json!({ "details": "bad credentials" }).to_string())
        };
        async move { answer }
    };
    let app = axum::Router::new().route("/token", axum::routing::get(handler));
    let (scheme, address) = match tls {
        Some(pki) => ("https", serve_tls(&runtime, pki, app)),
        None => ("http", serve_plain(&runtime, app)),
    };
    TokenService { runtime, realm: format!("{scheme}://{address}/token"), root_bundle, requests }
}

// --- Hostile servers -------------------------------------------------------------------------------------

/// Serves `app` over plain HTTP on 127.0.0.1; the address.
fn serve_plain(runtime: &tokio::runtime::Runtime, app: axum::Router) -> SocketAddr {
    let listener = runtime.block_on(tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))).unwrap();
    let address = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// A TLS listener for `axum::serve`, with the certificate of `pki` (valid for 127.0.0.1 and localhost). A failed
/// handshake is skipped.
struct TlsListener {
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, peer)) = self.listener.accept().await else { continue };
            let handshake = tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(tcp)).await;
            if let Ok(Ok(tls)) = handshake {
                return (tls, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// Serves `app` over HTTPS on 127.0.0.1 with the certificate of `pki`; the address.
fn serve_tls(runtime: &tokio::runtime::Runtime, pki: &Pki, app: axum::Router) -> SocketAddr {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certificates: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&pki.cert_file).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(&pki.key_file).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))).unwrap();
    let address = listener.local_addr().unwrap();
    let listener = TlsListener { listener, acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) };
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// An endless token response: 64 KiB chunks for as long as the client reads, counted in `produced`.
fn endless_token_endpoint(produced: Arc<AtomicU64>) -> axum::Router {
    let handler = move || {
        let produced = produced.clone();
        async move {
            let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
            let stream = futures::stream::repeat_with(move || {
                produced.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                Ok::<_, std::io::Error>(chunk.clone())
            });
            axum::body::Body::from_stream(stream)
        }
    };
    axum::Router::new().route("/token", axum::routing::get(handler))
}

/// A fake registry whose `GET /v2/` answers `answer` (status, headers); counts requests.
fn fake_registry(
    requests: Arc<AtomicUsize>,
    answer: impl Fn(&axum::http::HeaderMap) -> (u16, Vec<(&'static str, String)>) + Clone + Send + Sync + 'static,
) -> axum::Router {
    let handler = move |headers: axum::http::HeaderMap| {
        requests.fetch_add(1, Ordering::SeqCst);
        let (status, extra) = answer(&headers);
        async move {
            let mut response = axum::http::Response::builder().status(status);
            for (name, value) in extra {
                response = response.header(name, value);
            }
            response.body(axum::body::Body::empty()).unwrap()
        }
    };
    axum::Router::new().route("/v2/", axum::routing::get(handler.clone())).route("/token", axum::routing::get(handler))
}

/// A JWT as Distribution 2.x verifies it (`registry/auth/token`): ES256 over `header.claims`, the signature as
/// the raw 64-byte r||s (JWS), not the DER that rcgen's signer returns.
fn sign_jwt(key: &KeyPair, x5c: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let header = json!({ "typ": "JWT", "alg": "ES256", "x5c": [x5c] });
    let claims = json!({
        "iss": TOKEN_ISSUER, "sub": USER, "aud": TOKEN_SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", rand_suffix()), "access": [],
    });
    let signing_input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let der = key.sign(signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(ecdsa_der_to_raw(&der)))
}

fn rand_suffix() -> u32 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos()
}

/// `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (short lengths: P-256) to 32-byte r || 32-byte s.
fn ecdsa_der_to_raw(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x30, "a DER sequence");
    let mut rest = &der[2..];
    let mut raw = Vec::with_capacity(64);
    for _ in 0..2 {
        assert_eq!(rest[0], 0x02, "a DER integer");
        let len = usize::from(rest[1]);
        let value = &rest[2..2 + len];
        let value = &value[value.iter().take_while(|b| **b == 0).count()..];
        raw.extend(std::iter::repeat_n(0, 32 - value.len()));
        raw.extend_from_slice(value);
        rest = &rest[2 + len..];
    }
    raw
}

/// The Bearer flow against Distribution's real token authentication: the registry challenges with a realm,
/// `verify` gets a JWT there with Basic credentials, and the registry accepts it only if it is genuine.
#[test]
fn verify_follows_bearer_token_challenges() {
    if !have(REGISTRY_BIN) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let tokens = token_service(dir.path(), Some(&pki));
    let registry =
        Registry::start(dir.path(), "token", Some(pki.tls()), token_auth(&tokens.realm, &tokens.root_bundle));
    let secrets = dir.path().join("secrets.yaml");
    write_manifests(
        &secrets,
        &[
            pull_secret("team-a", "good", &registry.host(), PASSWORD),
            pull_secret("team-a", "wrong-password", &registry.host(), WRONG_PASSWORD),
        ],
    );
    let (code, rows) = verify_json(&secrets, &["--ca-file", pki.ca_file.to_str().unwrap()]);
    let token_host = tokens.realm.trim_start_matches("https://").trim_end_matches("/token");
    assert_eq!(
        status_of(&rows, "good"),
        ("ok", format!("authenticated as user \"alice\" (Bearer token from {token_host})").as_str()),
        "{rows:#?}\n{}",
        registry.logs()
    );
    let (status, detail) = status_of(&rows, "wrong-password");
    assert_eq!(status, "unauthorized", "{rows:#?}");
    assert!(detail.starts_with(&format!("token endpoint {token_host} rejected the credentials")), "{detail}");
    assert_eq!(code, 1);

    // The registry really checks the token: a self-consistent one whose certificate does not chain to the
    // registry's bundle is refused.
    let forger = KeyPair::generate().unwrap();
    let forger_cert = CertificateParams::new(Vec::<String>::new()).unwrap().self_signed(&forger).unwrap();
    let forged = sign_jwt(&forger, &STANDARD.encode(forger_cert.der()));
    let client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&pki.ca_file).unwrap()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://{}/v2/", registry.host());
    let status = tokens.runtime.block_on(async { client.get(&url).bearer_auth(forged).send().await.unwrap().status() });
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
}

// --- mutate's choice, checked by a real client -----------------------------------------------------

/// Writes an OCI image layout holding one tiny image tagged `1`: an empty layer tar, a config, a manifest.
fn write_oci_layout(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let add_blob = |bytes: &[u8]| {
        let digest = sha256_hex(bytes);
        std::fs::write(blobs.join(&digest), bytes).unwrap();
        json!({ "digest": format!("sha256:{digest}"), "size": bytes.len() })
    };
    // An empty tar archive: two zero blocks.
    let layer = add_blob(&[0u8; 1024]);
    let config = json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": { "type": "layers", "diff_ids": [layer["digest"]] },
    });
    let config = add_blob(config.to_string().as_bytes());
    // A blob's {digest, size} plus its media type.
    let descriptor = |media_type: &str, blob: &Value| {
        let mut descriptor = blob.clone();
        descriptor["mediaType"] = json!(media_type);
        descriptor
    };
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", &layer)],
    });
    let manifest = add_blob(manifest.to_string().as_bytes());
    let mut entry = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
    entry["annotations"] = json!({ "org.opencontainers.image.ref.name": "1" });
    let index = json!({ "schemaVersion": 2, "manifests": [entry] });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// SHA-256 by coreutils' `sha256sum` (the project has no hashing crate, and this is test-only).
fn sha256_hex(bytes: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
}

/// skopeo with a private HOME and runtime dir, so no auth file of the machine is ever consulted.
fn skopeo(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(SKOPEO_BIN)
        .args(args)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("REGISTRY_AUTH_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The proof that `mutate`'s choice is right: an image is pushed to a registry that requires authentication;
/// of three Secrets with the same valid username and password (keys: the registry, another registry, the right
/// host with a wrong port), `mutate` injects exactly the one whose key names the registry, and a real client
/// (skopeo) given each Secret as its auth file can read the image with that one only.
#[test]
fn mutate_injects_the_secret_a_real_client_can_pull_with() {
    if !have(REGISTRY_BIN) || !have(SKOPEO_BIN) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let pki = pki(dir.path());
    let registry = Registry::start(dir.path(), "tls", Some(pki.tls()), Auth::Htpasswd);
    let image = format!("{}/demo/app:1", registry.host());
    let cert_dir = pki.ca_dir.to_str().unwrap();

    let layout = dir.path().join("layout");
    write_oci_layout(&layout);
    let creds = format!("{USER}:{PASSWORD}");
    let pushed = skopeo(
        &home,
        &[
            "--insecure-policy",
            "copy",
            "--dest-creds",
            &creds,
            "--dest-cert-dir",
            cert_dir,
            &format!("oci:{}:1", layout.display()),
            &format!("docker://{image}"),
        ],
    );
    assert!(pushed.status.success(), "skopeo copy: {}\n{}", String::from_utf8_lossy(&pushed.stderr), registry.logs());

    let wrong_port = loop {
        let port = free_port();
        if port != registry.port {
            break port;
        }
    };
    let candidates = [
        ("right-registry", registry.host()),
        ("other-registry", "registry.example.com".to_owned()),
        ("wrong-port", format!("127.0.0.1:{wrong_port}")),
    ];
    let secrets_dir = dir.path().join("secrets");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    for (name, key) in &candidates {
        write_manifests(&secrets_dir.join(format!("{name}.yaml")), &[pull_secret("default", name, key, PASSWORD)]);
    }
    let pod = dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: demo\n  namespace: default\n\
             spec:\n  containers:\n  - name: app\n    image: {image}\n"
        ),
    )
    .unwrap();
    let mutated =
        run(&["mutate", "--secrets", secrets_dir.to_str().unwrap(), "-f", pod.to_str().unwrap(), "-o", "json"]);
    assert_eq!(mutated.code, 0, "{}", mutated.stderr);
    let pod: Value = serde_json::from_str(&mutated.stdout).unwrap();
    let injected: Vec<&str> = pod["spec"]["imagePullSecrets"]
        .as_array()
        .unwrap_or_else(|| panic!("no imagePullSecrets: {pod}"))
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(injected, ["right-registry"]);

    let inspect = |auth: &[&str]| {
        let reference = format!("docker://{image}");
        let mut args = vec!["inspect", "--cert-dir", cert_dir];
        args.extend_from_slice(auth);
        args.push(&reference);
        skopeo(&home, &args)
    };
    for (name, _) in &candidates {
        // The Secret's .dockerconfigjson is an auth file as it stands.
        let text = std::fs::read_to_string(secrets_dir.join(format!("{name}.yaml"))).unwrap();
        let manifest: Value = serde_yaml_ng::from_str(&text).unwrap();
        let config = STANDARD.decode(manifest["data"][".dockerconfigjson"].as_str().unwrap()).unwrap();
        let auth_file = dir.path().join(format!("{name}.auth.json"));
        std::fs::write(&auth_file, config).unwrap();
        let output = inspect(&["--authfile", auth_file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if injected.contains(name) {
            assert!(output.status.success(), "{name}: skopeo inspect failed: {stderr}");
            let inspected: Value = serde_json::from_slice(&output.stdout).unwrap();
            assert_eq!(inspected["Name"], format!("{}/demo/app", registry.host()), "{inspected}");
        } else {
            assert!(!output.status.success(), "{name}: skopeo read the image with a Secret that was not injected");
            assert!(stderr.contains("unauthorized") || stderr.contains("authentication required"), "{name}: {stderr}");
        }
    }
    let anonymous = inspect(&["--no-creds"]);
    assert!(!anonymous.status.success(), "the registry served the image anonymously: the test proves nothing");
}

/// `serve --verify-interval`: the periodic checks export one gauge per credential entry with its current status,
/// and no credential reaches the metrics or the logs.
#[test]
fn serve_checks_credentials_periodically() {
    if !have(REGISTRY_BIN) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let registry = Registry::start(dir.path(), "tls", Some(pki.tls()), Auth::Htpasswd);
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    write_manifests(
        &secrets.join("pull.yaml"),
        &[
            pull_secret("team-a", "good", &registry.host(), PASSWORD),
            pull_secret("team-a", "wrong", &registry.host(), WRONG_PASSWORD),
        ],
    );
    let certs = binary::dev_certs(dir.path());
    let checked = |text: &str| text.contains(r#"secret="good""#) && text.contains(r#"secret="wrong""#);
    // The registry is on loopback, which periodic checks refuse by default.
    let ca = pki.ca_file.to_str().unwrap();
    let extra = ["--verify-ca-file", ca, "--verify-allow-local-addresses"];
    let (text, logs) = serve_until(&certs, &secrets, "200ms", &extra, &checked);
    let host = registry.host();
    assert!(text.contains(&format!(r#"pullsecret_injector_credential_check{{namespace="team-a",secret="good",registry="{host}",status="ok"}} 1"#)), "{text}");
    assert!(text.contains(&format!(r#"pullsecret_injector_credential_check{{namespace="team-a",secret="wrong",registry="{host}",status="unauthorized"}} 1"#)), "{text}");
    assert!(logs.contains("credential stopped working"), "{logs}");
    assert_no_credentials(&text);
    assert_no_credentials(&logs);
}

// --- Issue 11, class 4: hostile registries and token endpoints ---------------------------------------------------

/// The real registry, challenging for a token, names a plain-HTTP realm: an HTTPS registry's credentials are never
/// sent there (the token service receives nothing). A plain-HTTP key may use a plain-HTTP realm on its own host, not
/// on another one.
#[test]
fn credentials_never_travel_to_a_plain_http_token_realm() {
    if !have(REGISTRY_BIN) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let tokens = token_service(dir.path(), None);
    let auth = || token_auth(&tokens.realm, &tokens.root_bundle);
    let https = Registry::start(dir.path(), "https", Some(pki.tls()), auth());
    let plain = Registry::start(dir.path(), "plain", None, auth());
    // The same token service, named by another host name: "another host" for a plain-HTTP key.
    let other_realm = tokens.realm.replace("127.0.0.1", "localhost");
    let elsewhere = Registry::start(dir.path(), "elsewhere", None, token_auth(&other_realm, &tokens.root_bundle));
    let secrets = dir.path().join("secrets.yaml");
    write_manifests(
        &secrets,
        &[
            pull_secret("team-a", "https", &https.host(), PASSWORD),
            pull_secret("team-a", "plain", &format!("http://{}", plain.host()), PASSWORD),
            pull_secret("team-a", "elsewhere", &format!("http://{}", elsewhere.host()), PASSWORD),
        ],
    );
    let (code, rows) = verify_json(&secrets, &["--ca-file", pki.ca_file.to_str().unwrap()]);
    let token_host = tokens.realm.trim_start_matches("http://").trim_end_matches("/token");
    let (status, detail) = status_of(&rows, "https");
    assert_eq!(status, "error", "{rows:#?}");
    assert!(detail.starts_with(&format!("refused to send credentials to http://{token_host}")), "{detail}");
    let (status, detail) = status_of(&rows, "elsewhere");
    assert_eq!(status, "error", "{rows:#?}");
    assert!(detail.contains("a plain-HTTP token endpoint on another host"), "{detail}");
    // Only the plain registry's own realm was asked: once, and it issued the token.
    assert_eq!(status_of(&rows, "plain").0, "ok", "{rows:#?}\n{}", plain.logs());
    assert_eq!(tokens.requests.load(Ordering::SeqCst), 1, "the token service was asked only for the plain key");
    assert_eq!(code, 1);
}

/// A token endpoint whose answer never ends (a 3.4 GB body was seen): `verify` reads at most its 1 MiB cap, then
/// reports the entry; memory and time stay small. Against the real registry, which names the realm.
#[test]
fn an_endless_token_response_costs_at_most_the_cap() {
    if !have(REGISTRY_BIN) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let produced = Arc::new(AtomicU64::new(0));
    let address = serve_tls(&runtime, &pki, endless_token_endpoint(produced.clone()));
    let realm = format!("https://{address}/token");
    let root_bundle = dir.path().join("unused-bundle.crt");
    std::fs::write(&root_bundle, ca("unused").2).unwrap();
    let registry = Registry::start(dir.path(), "endless", Some(pki.tls()), token_auth(&realm, &root_bundle));
    let secrets = dir.path().join("secrets.yaml");
    write_manifests(&secrets, &[pull_secret("team-a", "endless", &registry.host(), PASSWORD)]);

    let started = Instant::now();
    let mut child = Reaped::spawn(
        Command::new(binary::BIN)
            .args(["verify", "--secrets", secrets.to_str().unwrap(), "-o", "json", "--timeout", "30s"])
            .args(["--ca-file", pki.ca_file.to_str().unwrap()])
            .env_clear()
            .env("NO_PROXY", "*")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    // The peak resident size, sampled while it runs (VmHWM only grows).
    let status_file = format!("/proc/{}/status", child.0.id());
    let mut peak_kib = 0u64;
    while child.0.try_wait().unwrap().is_none() {
        // Killed when `child` is dropped.
        assert!(started.elapsed() < Duration::from_secs(40), "verify did not finish");
        if let Ok(status) = std::fs::read_to_string(&status_file)
            && let Some(kib) = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))
        {
            peak_kib = peak_kib.max(kib.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    let mut stdout = Vec::new();
    child.0.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
    let code = child.0.wait().unwrap().code();
    let rows: Vec<Value> = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(rows[0]["status"], "error", "{rows:#?}");
    let detail = rows[0]["detail"].as_str().unwrap();
    assert!(detail.contains("answered more than 1024 KiB"), "{detail}");
    assert_eq!(code, Some(1));
    let produced = produced.load(Ordering::SeqCst);
    eprintln!(
        "endless token body: {} KiB produced by the server, peak RSS about {peak_kib} KiB, {:?}",
        produced / 1024,
        elapsed
    );
    assert!(produced < 32 << 20, "{produced} bytes streamed: the body was read past the cap");
    assert!(peak_kib < 128 * 1024, "peak RSS {peak_kib} KiB");
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}: the body was read until the timeout");
}

/// `serve --verify-interval` reads Secrets that tenants write: by default its checks connect to no loopback,
/// link-local (cloud metadata) or unspecified address, whatever the spelling (a name that resolves there, an
/// IPv4-mapped IPv6 address, a decimal IPv4). The fake registry on loopback sees no connection. With
/// `--verify-allow-local-addresses` it is checked.
#[test]
fn periodic_checks_refuse_local_addresses_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let address = serve_plain(&runtime, fake_registry(requests.clone(), |_| (200, vec![])));
    let port = address.port();
    let keys = [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        format!("http://2130706433:{port}"),
        format!("http://0.0.0.0:{port}"),
        "169.254.169.254".to_owned(),
        "http://[::ffff:a9fe:a9fe]/latest/meta-data/".to_owned(),
        "[fd00:ec2::254]:80".to_owned(),
    ];
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    let manifests: Vec<Value> =
        keys.iter().enumerate().map(|(i, key)| pull_secret("team-a", &format!("k{i}"), key, PASSWORD)).collect();
    write_manifests(&secrets.join("pull.yaml"), &manifests);
    let certs = binary::dev_certs(dir.path());
    let series = |text: &str, secret: &str| -> Option<String> {
        text.lines().find(|l| l.contains(&format!(r#"secret="{secret}""#))).map(str::to_owned)
    };
    let all_reported = |text: &str| (0..keys.len()).all(|i| series(text, &format!("k{i}")).is_some());

    let (metrics, logs) = serve_until(&certs, &secrets, "100ms", &[], &all_reported);
    for (i, key) in keys.iter().enumerate() {
        let line = series(&metrics, &format!("k{i}")).unwrap();
        assert!(line.contains(r#"status="error""#), "{key} must be refused: {line}");
    }
    assert_eq!(requests.load(Ordering::SeqCst), 0, "a refused check reached the registry");
    assert!(logs.contains("refused to connect to localhost ("), "{logs}");
    assert!(logs.contains("a loopback address"), "{logs}");
    assert!(logs.contains("a link-local or cloud metadata address"), "{logs}");

    let (metrics, _) = serve_until(&certs, &secrets, "100ms", &["--verify-allow-local-addresses"], &|text: &str| {
        series(text, "k0").is_some_and(|l| l.contains(r#"status="ok""#))
    });
    assert!(series(&metrics, "k1").is_some_and(|l| l.contains(r#"status="ok""#)), "{metrics}");
    assert!(requests.load(Ordering::SeqCst) >= 2, "allowed checks reach the registry");
}

/// `serve` over `secrets` with periodic checks every `interval` and `extra` flags, until its `/metrics` satisfy
/// `done`; then SIGTERM, from which it must exit 0. Returns that exposition and the whole log.
fn serve_until(
    certs: &Path,
    secrets: &Path,
    interval: &str,
    extra: &[&str],
    done: &dyn Fn(&str) -> bool,
) -> (String, String) {
    let secrets = secrets.to_str().unwrap();
    let mut args = vec!["--secrets-dir", secrets, "--verify-interval", interval, "--shutdown-delay", "0s"];
    args.extend(extra);
    let mut served = Served::start(certs, &args);
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let (_, text) = served.admin_get_blocking("/metrics");
        if done(&text) {
            break text;
        }
        assert!(Instant::now() < deadline, "no check results in /metrics:\n{text}\n{}", served.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    served.terminate();
    assert!(served.exited_within(RUN_WAIT).success(), "{}", served.log());
    (text, served.whole_log())
}

/// Redirects cannot escape the rules (in process, with the registries' loopback allowed and every other local
/// class refused): HTTPS to plain HTTP with credentials, to link-local and unspecified addresses in any spelling, a
/// token endpoint redirecting to plain HTTP, and redirect loops. The plain-HTTP server never hears from `verify`.
#[test]
fn redirects_cannot_escape_the_rules() {
    use pullsecret_injector::verify::{self, AddressPolicy, Status, VerifyOptions};
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let plain_requests = Arc::new(AtomicUsize::new(0));
    let plain = serve_plain(&runtime, fake_registry(plain_requests.clone(), |_| (200, vec![])));
    let expected_basic = format!("Basic {}", basic(USER, PASSWORD));

    // (secret, registry answer, words of the detail)
    type Answer = Box<dyn Fn(&axum::http::HeaderMap) -> (u16, Vec<(&'static str, String)>) + Send + Sync>;
    let redirect = |to: String| -> Answer { Box::new(move |_| (302, vec![("location", to.clone())])) };
    let downgrade: Answer = {
        let to = format!("http://{plain}/v2/");
        let expected = expected_basic.clone();
        Box::new(move |headers| match headers.get("authorization").and_then(|v| v.to_str().ok()) {
            Some(auth) if auth == expected => (307, vec![("location", to.clone())]),
            _ => (401, vec![("www-authenticate", "Basic realm=\"r\"".to_owned())]),
        })
    };
    let cases: Vec<(&str, Answer, &str)> = vec![
        ("downgrade", downgrade, "from HTTPS to plain HTTP"),
        ("metadata", redirect("https://169.254.169.254/latest/meta-data/".into()), "link-local or cloud metadata"),
        ("mapped", redirect("https://[::ffff:169.254.169.254]/".into()), "link-local or cloud metadata"),
        ("unspecified", redirect(format!("https://0.0.0.0:{}/v2/", plain.port())), "unspecified"),
        ("plain", redirect(format!("http://{plain}/v2/")), "from HTTPS to plain HTTP"),
        ("loop", redirect("/v2/".into()), "more than 5 redirects"),
    ];
    let mut secrets = Vec::new();
    let mut expected = Vec::new();
    for (name, answer, words) in cases {
        let answer = Arc::new(answer);
        let app = fake_registry(Arc::new(AtomicUsize::new(0)), move |h| answer(h));
        let address = serve_tls(&runtime, &pki, app);
        secrets.push(secret_for(name, &address.to_string()));
        expected.push((name, words));
    }
    // A token endpoint that redirects the Basic-authenticated token request to plain HTTP.
    let token_redirect = serve_tls(
        &runtime,
        &pki,
        fake_registry(Arc::new(AtomicUsize::new(0)), {
            let to = format!("http://{plain}/token");
            move |_| (307, vec![("location", to.clone())])
        }),
    );
    let challenge = format!("Bearer realm=\"https://{token_redirect}/token\",service=\"s\"");
    let bearer = serve_tls(
        &runtime,
        &pki,
        fake_registry(Arc::new(AtomicUsize::new(0)), move |_| (401, vec![("www-authenticate", challenge.clone())])),
    );
    secrets.push(secret_for("token-redirect", &bearer.to_string()));
    expected.push(("token-redirect", "from HTTPS to plain HTTP"));

    let options = VerifyOptions {
        ca_file: Some(pki.ca_file.clone()),
        timeout: Duration::from_secs(5),
        addresses: AddressPolicy { loopback: true, ..AddressPolicy::REMOTE },
        ..VerifyOptions::default()
    };
    let started = Instant::now();
    let results = runtime.block_on(verify::verify(&secrets, &options)).unwrap();
    for (name, words) in expected {
        let result = results.iter().find(|r| r.secret == name).unwrap();
        assert_eq!(result.status, Status::Error, "{name}: {result:?}");
        assert!(result.detail.contains(words), "{name}: {:?} lacks {words:?}", result.detail);
        assert_no_credentials(&result.detail);
    }
    assert_eq!(plain_requests.load(Ordering::SeqCst), 0, "the plain-HTTP server was reached");
    assert!(started.elapsed() < Duration::from_secs(5), "refusals are immediate, not timeouts");
}

/// A typed Secret for the in-process tests.
fn secret_for(name: &str, key: &str) -> k8s_openapi::api::core::v1::Secret {
    serde_json::from_value(pull_secret("team-a", name, key, PASSWORD)).unwrap()
}

// --- Results as they come --------------------------------------------------------------------------------

/// `-o jsonl` prints each entry's result the moment its check completes: with a registry that holds its answer
/// until the test lets it go, the fast entry's line (listed second) arrives while the slow one is still pending.
/// Piped, stderr carries no progress line and nothing holds a `\r`.
#[test]
fn jsonl_prints_each_result_as_it_completes() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let fast = serve_plain(&runtime, fake_registry(Arc::new(AtomicUsize::new(0)), |_| (200, Vec::new())));
    // The slow registry says when its request arrived, then answers only once released.
    let (arrived_tx, arrived) = std::sync::mpsc::channel::<()>();
    let release = Arc::new(tokio::sync::Notify::new());
    let slow_handler = {
        let release = release.clone();
        move || {
            let (arrived_tx, release) = (arrived_tx.clone(), release.clone());
            async move {
                let _ = arrived_tx.send(());
                release.notified().await;
                axum::http::StatusCode::OK
            }
        }
    };
    let slow = serve_plain(&runtime, axum::Router::new().route("/v2/", axum::routing::get(slow_handler)));
    let secrets = dir.path().join("secrets.yaml");
    write_manifests(
        &secrets,
        &[
            pull_secret("team-a", "slow", &format!("http://{slow}"), PASSWORD),
            pull_secret("team-a", "fast", &format!("http://{fast}"), PASSWORD),
        ],
    );

    let mut child = Reaped::spawn(
        Command::new(binary::BIN)
            .args(["verify", "--secrets", secrets.to_str().unwrap(), "-o", "jsonl", "--timeout", "60s"])
            .env_clear()
            .env("NO_PROXY", "*")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.0.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });

    arrived.recv_timeout(common::WAIT).expect("the slow registry was asked");
    let first = lines.recv_timeout(common::WAIT).expect("the fast entry's line, while the slow one is pending");
    let first: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("not one JSON object ({e}): {first}"));
    assert_eq!((first["secret"].as_str(), first["status"].as_str()), (Some("fast"), Some("ok")), "{first}");
    assert_eq!(first["registry"], format!("http://{fast}"));
    assert!(lines.try_recv().is_err(), "the slow entry is still pending");

    release.notify_one();
    let second = lines.recv_timeout(common::WAIT).expect("the slow entry's line once released");
    let second: Value = serde_json::from_str(&second).unwrap();
    assert_eq!((second["secret"].as_str(), second["status"].as_str()), (Some("slow"), Some("ok")), "{second}");
    assert_eq!(child.wait_within(common::WAIT).expect("verify ends").code(), Some(0));
    assert!(lines.recv_timeout(common::WAIT).is_err(), "exactly one line per entry");
    let stderr = stderr.join().unwrap();
    assert!(!stderr.contains('\r') && !stderr.contains("verify: "), "a progress line on a pipe: {stderr:?}");
    assert_no_credentials(&stderr);

    // The table, piped, is as before: no progress line, no `\r` anywhere.
    let fast_only = dir.path().join("fast.yaml");
    write_manifests(&fast_only, &[pull_secret("team-a", "fast", &format!("http://{fast}"), PASSWORD)]);
    let run = run(&["verify", "--secrets", fast_only.to_str().unwrap(), "--timeout", "60s"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("NAMESPACE/SECRET") && run.stdout.contains("1 entry checked: 1 ok"), "{run:?}");
    assert!(!run.stdout.contains('\r') && !run.stderr.contains('\r') && run.stderr.is_empty(), "{run:?}");
}

/// On a terminal (a pseudo-terminal from util-linux `script`), stderr carries the progress line, rewritten in place
/// with `\r` and erased before the table is printed.
#[test]
fn a_terminal_gets_a_progress_line_rewritten_in_place() {
    if !have("/usr/bin/script") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let fast = serve_plain(&runtime, fake_registry(Arc::new(AtomicUsize::new(0)), |_| (200, Vec::new())));
    let secrets = dir.path().join("secrets.yaml");
    write_manifests(&secrets, &[pull_secret("team-a", "fast", &format!("http://{fast}"), PASSWORD)]);
    let command_line = format!("{} verify --secrets {} --timeout 60s", binary::BIN, secrets.display());
    let out = common::process::output_within(
        Command::new("/usr/bin/script")
            .args(["-q", "-e", "-c", &command_line, "/dev/null"])
            .env_clear()
            .env("NO_PROXY", "*"),
        None,
        RUN_WAIT,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text:?}");
    // The last state of the line, then its erasure, then the table.
    assert!(text.contains("\rverify: 1/1 done\x1b[K\r\x1b[KNAMESPACE/SECRET"), "{text:?}");
    assert!(text.contains("1 entry checked: 1 ok"), "{text:?}");
    assert_no_credentials(&text);
}
