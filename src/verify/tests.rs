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
    for status in [Status::Unauthorized, Status::Unreachable, Status::TlsError, Status::InvalidSecret, Status::Error] {
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
    assert!(
        notes
            .contains(&"ns/legacy: .dockerconfigjson has no registry entries (they belong under \"auths\")".to_owned())
    );
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
    assert!(results[2].detail.starts_with("the kubelet cannot decode .dockerconfigjson: "), "{}", results[2].detail);
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
    for (path, words) in [(&not_pem, "contains no PEM certificate"), (&garbage, "--ca-file"), (&missing, "cannot read")]
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
