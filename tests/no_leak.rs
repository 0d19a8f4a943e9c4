//! Credentials never leak: with known passwords, `auth` strings, an identity token and the base64 of every whole
//! `.dockerconfigjson` in the Secrets, every code path runs and none of these strings may appear in anything it
//! prints, answers, exports or formats:
//!
//! - `serve` (the binary, `--log-level trace`, once with `--log-format json` and once with `text`): admission
//!   requests that inject, are denied by `--deny-unmatched`, are skipped, are invalid, and list an undecodable
//!   Secret; periodic credential checks (`--verify-interval`, Basic authentication against a real registry);
//!   a `--secrets-dir` reload that rotates a password and one that fails on a broken file; SIGTERM; its whole
//!   stderr, every answer, and `/metrics`.
//! - `mutate` (every `-o`, a Pod and an AdmissionReview, a denial, warnings), `explain`, `verify` (text and json,
//!   with and without the registry's CA, `--insecure-skip-tls-verify`), `certs`, and error exits.
//! - In process: `Debug` of `CredentialIndex`, `NamespaceCredentials`, `CandidateSecret`,
//!   `docker_config::RegistryEntry`, decode errors (`Debug` and `Display`), decisions and reviews.
//!
//! Issue 11: the namespace `hostile` holds a password written into registry keys in every spelling of userinfo
//! (`HTTPS://`, `Http://`, `oci://`, `//`, no scheme, userinfo before the scheme, a `/` in the password, `%40`,
//! `%2540`, an encoded scheme, a full-width `＠`) and keys and a Secret name full of control and bidi characters.
//! Every human-readable output (`explain`, `verify` text and JSON, `mutate`'s stderr and its review, the answers'
//! warnings, both log formats, `/metrics`) must show neither the password nor a control character, and a Pod name
//! holding a newline and a whole log line must not forge a line of the text log.
//!
//! The registry is Debian's `docker-registry` with htpasswd (bcrypt) authentication and TLS, as in
//! `tests/registry.rs` (same user, password and hash); without it, the registry Secret points at a closed port and
//! the tests say so on stderr. No Secret names a public registry: nothing here leaves the machine.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pullsecret_injector::core::admission;
use pullsecret_injector::core::credentials::CandidateSecret;
use pullsecret_injector::core::decision::{self, Policy};
use pullsecret_injector::core::pod::PodView;
use pullsecret_injector::kubelet::docker_config::{self, SecretKind};
use pullsecret_injector::serve::certs;
use pullsecret_injector::sources::manifests::Manifests;
use serde_json::{Value, json};

use common::binary::{Run, Served, run};
use common::registry::{self, Auth, PASSWORD, REGISTRY_BIN, Registry, Tls, USER, basic};
use common::review;
use common::{bounded, metric, unsafe_char, write_manifests};

const WRONG_PASSWORD: &str = "wrong-Pa55-7f3c91d0";
const ROTATED_PASSWORD: &str = "rotated-Pa55-2b8e44a1";
const IDENTITY_TOKEN: &str = "identity-T0ken-c5a1e9f3";
/// A password written into a registry key's userinfo (`https://alice:…@host`), which the kubelet discards.
const KEY_PASSWORD: &str = "in-key-Pa55-91d2e7";

/// A registry host that only the `--deny-unmatched` pattern names.
const DENIED_HOST: &str = "deny.registry.invalid";

/// A whole text log line hidden in a Pod name after a newline (issue 11, class 9).
const FORGED_LINE: &str = "2030-01-01T00:00:00.000000Z  INFO pullsecret_injector::serve::http: forged-log-line";

/// The registry keys of the namespace `hostile`: `KEY_PASSWORD` as userinfo in every spelling (issue 11, class 1),
/// then keys that only carry control and bidi characters (class 9). Hosts end in `.invalid`: nothing is reached.
fn hostile_keys() -> Vec<String> {
    let (u, p) = (USER, KEY_PASSWORD);
    vec![
        format!("HTTPS://{u}:{p}@s1.registry.invalid"),
        format!("Http://{u}:{p}@s2.registry.invalid:5000/team"),
        format!("oci://{u}:{p}@s3.registry.invalid"),
        format!("//{u}:{p}@s4.registry.invalid"),
        format!("{u}:{p}@s5.registry.invalid"),
        format!("{u}:{p}@HTTPS://s6.registry.invalid"),
        format!("https://{u}:{p}%40s7.registry.invalid"),
        format!("https%3A%2F%2F{u}%3A{p}%40s8.registry.invalid"),
        format!("https://{u}:{p}/x@s9.registry.invalid"),
        format!("https://{u}:{p}%2540s10.registry.invalid"),
        format!("HTTPS://{u}:{p}@s11.registry.invalid/\n\u{1b}[31m\u{202e}"),
        format!("\u{1b}]0;title\u{7}{u}:{p}@s12.registry.invalid\0"),
        format!("https://{u}:{p}\u{ff20}s13.registry.invalid"),
        format!(" https://{u}:{p}@s14.registry.invalid"),
        "ctl\u{1b}[2J\0\n\u{202e}.registry.invalid".to_owned(),
        format!("s15.registry.invalid\r\n{FORGED_LINE}"),
        "s16.registry.invalid/\u{2066}\u{200b}\u{feff}\u{e0041}\u{85}\u{7f}".to_owned(),
    ]
}

/// A Secret name with control and bidi characters (local mode accepts any name).
const HOSTILE_NAME: &str = "ctl-name\n\u{1b}[2J\u{202e}";

// --- What must never be printed -----------------------------------------------------------------------

/// The forbidden strings, each with a label that says what it is (never the value itself).
#[derive(Default, Clone)]
struct Needles(Vec<(String, String)>);

impl Needles {
    fn add(&mut self, label: impl Into<String>, value: impl Into<String>) {
        self.0.push((label.into(), value.into()));
    }
}

/// Every output checked, and every leak found (as "output: what"), so a failure names them all at once.
struct Audit {
    needles: Needles,
    outputs: usize,
    /// Outputs also checked for control and bidi characters.
    displays: usize,
    leaks: Vec<String>,
}

fn truncate(line: &str) -> String {
    line.chars().take(160).collect()
}

impl Audit {
    fn new(needles: &Needles) -> Self {
        Self { needles: needles.clone(), outputs: 0, displays: 0, leaks: Vec::new() }
    }

    fn check(&mut self, output: &str, text: &str) {
        self.outputs += 1;
        for (label, value) in &self.needles.0 {
            if text.contains(value.as_str()) {
                self.leaks.push(format!("{output}: {label}"));
            }
        }
    }

    /// [`Self::check`], and a human-readable output: no line holds a control or bidi character (lines end at `\n`).
    fn display(&mut self, output: &str, text: &str) {
        self.check(output, text);
        self.displays += 1;
        for (i, line) in text.split('\n').enumerate() {
            if let Some(c) = line.chars().find(|c| unsafe_char(*c)) {
                self.leaks.push(format!("{output}: line {} holds {:?}: {:?}", i + 1, c, truncate(line)));
                break;
            }
        }
    }

    /// The `warnings` and `status.message` of an AdmissionReview answer, as kubectl shows them.
    fn review_warnings(&mut self, output: &str, answer: &str) {
        let Ok(answer) = serde_json::from_str::<Value>(answer) else { return };
        let mut shown: Vec<String> = answer["response"]["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w.as_str().map(str::to_owned))
            .collect();
        shown.extend(answer["response"]["status"]["message"].as_str().map(str::to_owned));
        for warning in &shown {
            assert!(!warning.contains('\n'), "{output}: a warning spans lines: {warning:?}");
        }
        self.display(&format!("{output}: warnings"), &shown.join("\n"));
    }

    fn finish(self, what: &str) {
        eprintln!(
            "{what}: {} outputs checked against {} credential strings, {} of them also for control characters",
            self.outputs,
            self.needles.0.len(),
            self.displays
        );
        assert!(self.outputs > 0, "nothing was checked");
        assert!(self.leaks.is_empty(), "{what}: credentials leaked:\n{}", self.leaks.join("\n"));
    }
}

// --- The Secrets ----------------------------------------------------------------------------------------

/// A Secret as `kubectl get secret -o yaml` shows one after `kubectl apply`: base64 `data`, and the
/// last-applied-configuration annotation repeating the whole manifest (so the base64 payload twice).
fn secret(namespace: &str, name: &str, kind: SecretKind, payload: &str, needles: &mut Needles) -> Value {
    let data = STANDARD.encode(payload);
    needles.add(format!("the base64 {} of Secret {namespace}/{name}", kind.data_key()), data.clone());
    let applied = json!({
        "apiVersion": "v1", "kind": "Secret", "type": kind.secret_type(),
        "metadata": {"name": name, "namespace": namespace},
        "data": {kind.data_key(): data},
    });
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": kind.secret_type(),
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied.to_string()},
        },
        "data": {kind.data_key(): data},
    })
}

fn config(entries: Value) -> String {
    json!({ "auths": entries }).to_string()
}

/// The Secrets of every test, for a registry at `registry`, and the strings none of their outputs may contain.
/// Every credential-bearing field and every way the kubelet can fail to decode one is represented.
fn fixture_secrets(registry: &str) -> (Vec<Value>, Needles) {
    let mut needles = Needles::default();
    needles.add("the password", PASSWORD);
    needles.add("the password in a key", KEY_PASSWORD);
    needles.add("the wrong password", WRONG_PASSWORD);
    needles.add("the identity token", IDENTITY_TOKEN);
    needles.add("the auth string", basic(USER, PASSWORD));
    needles.add("the wrong auth string", basic(USER, WRONG_PASSWORD));
    needles.add("the base64 password (an auth without ':')", STANDARD.encode(PASSWORD));
    let json = SecretKind::DockerConfigJson;
    let full_entry = json!({"username": USER, "password": PASSWORD, "auth": basic(USER, PASSWORD),
        "email": "alice@example.com"});
    let manifests = vec![
        secret("default", "registry", json, &config(json!({ registry: full_entry.clone() })), &mut needles),
        secret(
            "default",
            "wrong-password",
            json,
            &config(json!({ format!("https://{registry}/v2/"): {"auth": basic(USER, WRONG_PASSWORD)} })),
            &mut needles,
        ),
        secret(
            "default",
            "unreachable",
            json,
            &config(json!({"127.0.0.1:1": {"username": USER, "password": PASSWORD}})),
            &mut needles,
        ),
        secret(
            "default",
            "legacy",
            SecretKind::DockerCfg,
            &json!({"legacy.registry.invalid": {"auth": basic(USER, PASSWORD), "email": "alice@example.com"}})
                .to_string(),
            &mut needles,
        ),
        secret(
            "default",
            "identity-token",
            json,
            &config(json!({"token.registry.invalid": {"identitytoken": IDENTITY_TOKEN, "auth": basic(USER, "")}})),
            &mut needles,
        ),
        // Undecodable, each with the password in the part that fails.
        secret(
            "default",
            "broken-auth",
            json,
            &config(json!({"broken.registry.invalid": {"auth": format!("{PASSWORD}%not-base64")}})),
            &mut needles,
        ),
        secret(
            "default",
            "auth-without-colon",
            json,
            &config(json!({"nocolon.registry.invalid": {"auth": STANDARD.encode(PASSWORD)}})),
            &mut needles,
        ),
        secret(
            "default",
            "truncated-json",
            json,
            &format!(r#"{{"auths":{{"json.registry.invalid":{{"password":"{PASSWORD}""#),
            &mut needles,
        ),
        secret(
            "default",
            "wrong-type",
            json,
            &config(json!({"type.registry.invalid": {"password": [PASSWORD], "auth": basic(USER, PASSWORD)}})),
            &mut needles,
        ),
        // As written by hand: `stringData`, which the API server would turn into `data`.
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "string-data", "namespace": "default"},
            "stringData": {".dockerconfigjson": config(json!({"string.registry.invalid": full_entry.clone()}))},
        }),
        // Not a pull Secret: ignored, and never shown either.
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "opaque", "namespace": "default"},
            "data": {
                "password": STANDARD.encode(PASSWORD),
                ".dockerconfigjson": STANDARD.encode(config(json!({ registry: full_entry.clone() }))),
            },
        }),
        secret("team", "registry", json, &config(json!({ registry: full_entry })), &mut needles),
    ];
    let mut manifests = manifests;
    manifests.extend(hostile_secrets(&mut needles));
    (manifests, needles)
}

/// The namespace `hostile`: every hostile key in one decodable Secret (explain's verdicts and notes, `verify`'s rows,
/// the periodic checks' labels and logs), each in an undecodable Secret of its own (the decode error quotes the key:
/// warnings, `explain`'s `skipped` lines, `verify`'s `invalid-secret` rows), and a Secret with a hostile name.
fn hostile_secrets(needles: &mut Needles) -> Vec<Value> {
    let json = SecretKind::DockerConfigJson;
    let keys = hostile_keys();
    let entries: serde_json::Map<String, Value> =
        keys.iter().map(|k| (k.clone(), json!({"username": USER, "password": "short"}))).collect();
    let mut out = vec![secret("hostile", "spellings", json, &config(entries.into()), needles)];
    for (i, key) in keys.iter().enumerate() {
        let payload = config(json!({ key: {"auth": "not base64!"} }));
        out.push(secret("hostile", &format!("broken-{i}"), json, &payload, needles));
    }
    out.push(secret(
        "hostile",
        HOSTILE_NAME,
        json,
        &config(json!({"hostile-name.registry.invalid": {"username": USER, "password": "short"}})),
        needles,
    ));
    out
}

/// Names of the undecodable Secrets of `hostile`.
fn hostile_broken() -> Vec<String> {
    (0..hostile_keys().len()).map(|i| format!("broken-{i}")).collect()
}

// --- The registry ---------------------------------------------------------------------------------------

/// `docker-registry` with TLS and htpasswd on 127.0.0.1 and its CA file; `None` when it is not installed.
fn start_registry(dir: &Path) -> Option<(Registry, PathBuf)> {
    if !registry::installed() {
        eprintln!("SKIPPED: {REGISTRY_BIN} is not installed; the registry Secret points at a closed port");
        return None;
    }
    let pki = dir.join("registry-pki");
    let bundle = certs::generate(&["localhost".into()], &[IpAddr::V4(Ipv4Addr::LOCALHOST)], 1).unwrap();
    certs::write_bundle(&pki, &bundle).unwrap();
    let tls = Tls { cert_file: &pki.join(certs::CERT_FILE), key_file: &pki.join(certs::KEY_FILE) };
    let registry = Registry::start(dir, "registry", Some(tls), Auth::Htpasswd);
    Some((registry, pki.join(certs::CA_CERT_FILE)))
}

/// The registry (when installed), the Secrets file and the strings to look for.
struct World {
    dir: tempfile::TempDir,
    /// The registry and its CA file.
    registry: Option<(Registry, PathBuf)>,
    registry_host: String,
    secrets_file: PathBuf,
    needles: Needles,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let registry = start_registry(dir.path());
        let registry_host = registry.as_ref().map_or_else(|| "127.0.0.1:1".to_owned(), |(r, _)| r.host());
        let (manifests, needles) = fixture_secrets(&registry_host);
        let secrets_file = dir.path().join("secrets.yaml");
        write_manifests(&secrets_file, &manifests);
        Self { dir, registry, registry_host, secrets_file, needles }
    }

    fn ca_args(&self) -> Vec<String> {
        self.registry.as_ref().map(|(_, ca)| vec!["--ca-file".to_owned(), path(ca)]).unwrap_or_default()
    }
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

// --- Reviews --------------------------------------------------------------------------------------------

fn pod(namespace: &str, images: &[&str], listed: &[&str]) -> Value {
    let mut pod = review::pod(namespace, images);
    if !listed.is_empty() {
        pod["spec"]["imagePullSecrets"] = listed.iter().map(|n| json!({"name": n})).collect();
    }
    pod
}

fn review(uid: &str, pod: Value) -> Value {
    let namespace = pod["metadata"]["namespace"].as_str().expect("a namespace").to_owned();
    review::review(uid, &namespace, pod)
}

/// A review for `serve`, and the answer the contract requires.
struct ReviewCase {
    label: &'static str,
    body: Vec<u8>,
    status: u16,
    /// `response.allowed`, for a 200 answer.
    allowed: Option<bool>,
    patched: bool,
}

/// One review of each outcome: injected, denied, warned about, skipped, refused, invalid.
fn reviews(registry: &str) -> Vec<ReviewCase> {
    let image = format!("{registry}/team/app:1");
    let case = |label, review: &Value, status, allowed, patched| ReviewCase {
        label,
        body: serde_json::to_vec(review).unwrap(),
        status,
        allowed,
        patched,
    };
    let mut skipped = review("skip", pod("default", &[&image], &[]));
    skipped["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let mut refused = review("refuse", pod("default", &[&image], &[]));
    refused["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let mut no_uid = review("x", pod("default", &[&image], &[]));
    no_uid["request"].as_object_mut().unwrap().remove("uid");
    let injected = review("inject", pod("default", &[&image, "legacy.registry.invalid/x", "nginx"], &[]));
    let denied = review("deny", pod("default", &[&format!("{DENIED_HOST}/app")], &[]));
    let listed = review("listed", pod("default", &["broken.registry.invalid/app"], &["broken-auth", "wrong-type"]));
    let broken = hostile_broken();
    let broken: Vec<&str> = broken.iter().map(String::as_str).collect();
    let hostile =
        review("hostile", pod("hostile", &["s1.registry.invalid/app", "hostile-name.registry.invalid/x"], &broken));
    let mut forged = review("forged", pod("default", &[&image], &[]));
    forged["request"]["object"]["metadata"]["name"] = json!(format!("p\n{FORGED_LINE}"));
    vec![
        case("inject", &injected, 200, Some(true), true),
        case("inject in another namespace", &review("team", pod("team", &[&image], &[])), 200, Some(true), true),
        case("deny", &denied, 200, Some(false), false),
        case("undecodable Secrets listed", &listed, 200, Some(true), false),
        case("hostile keys and names", &hostile, 200, Some(true), true),
        case("a Pod name forging a log line", &forged, 200, Some(true), true),
        case("skip", &skipped, 200, Some(true), false),
        case("refuse (v1beta1)", &refused, 200, Some(false), false),
        case("invalid (no uid)", &no_uid, 400, None, false),
    ]
}

// --- serve ------------------------------------------------------------------------------------------------

/// `serve` over `secrets_dir` with every path on: trace logs in `log_format`, fast reloads, periodic checks (of
/// the registry on loopback, trusting its CA), `--deny-unmatched`.
fn serve(world: &World, certs_dir: &Path, secrets_dir: &Path, log_format: &str) -> Served {
    let mut flags = args(&["--secrets-dir", &path(secrets_dir)]);
    flags.extend(args(&["--reload-interval", "50ms", "--shutdown-delay", "0s", "--verify-interval", "200ms"]));
    // The registry is on loopback, which periodic checks refuse by default.
    flags.push("--verify-allow-local-addresses".into());
    flags.extend(args(&["--deny-unmatched", DENIED_HOST, "--log-level", "trace", "--log-format", log_format]));
    if let Some((_, ca)) = &world.registry {
        flags.extend(["--verify-ca-file".to_owned(), path(ca)]);
    }
    Served::start(certs_dir, &flags)
}

/// One `serve` run over every path, auditing its answers, `/metrics` and whole stderr.
async fn serve_run(world: &World, log_format: &str, audit: &mut Audit) {
    let run_dir = world.dir.path().join(format!("serve-{log_format}"));
    let secrets_dir = run_dir.join("secrets");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    std::fs::copy(&world.secrets_file, secrets_dir.join("secrets.yaml")).unwrap();
    let certs_dir = run_dir.join("certs");
    let bundle = certs::generate(&["localhost".into()], &[IpAddr::V4(Ipv4Addr::LOCALHOST)], 1).unwrap();
    certs::write_bundle(&certs_dir, &bundle).unwrap();

    let mut served = serve(world, &certs_dir, &secrets_dir, log_format);
    served.until_ready().await;

    for case in reviews(&world.registry_host) {
        let (status, answer) = served.mutate(&case.body).await;
        let answer = String::from_utf8(answer).expect("a UTF-8 answer");
        let label = case.label;
        assert_eq!(status, case.status, "{label}: {answer}");
        if let Some(allowed) = case.allowed {
            let answer: Value = serde_json::from_str(&answer).unwrap();
            assert_eq!(answer["response"]["allowed"], allowed, "{label}: {answer}");
            assert_eq!(answer["response"].get("patch").is_some(), case.patched, "{label}: {answer}");
        }
        audit.display(&format!("serve --log-format {log_format}: answer to {label}"), &answer);
        audit.review_warnings(&format!("serve --log-format {log_format}: answer to {label}"), &answer);
    }

    // A check round against the registries, then a rotation, then a broken file with the password in it.
    let checked_ok = if world.registry.is_some() { r#"status="ok""# } else { "pullsecret_injector_credential_check{" };
    let metrics = served
        .until_metrics("a credential check round", |m| m.contains(checked_ok) && m.contains(r#"namespace="hostile""#))
        .await;
    audit.display(&format!("serve --log-format {log_format}: /metrics after a check round"), &metrics);
    // Class 11: the hostile entries are there, bounded and redacted.
    let hostile_series = metrics.lines().filter(|l| l.contains(r#"namespace="hostile""#)).count();
    assert!(hostile_series >= hostile_keys().len(), "{metrics}");
    assert!(metrics.lines().all(|l| l.len() < 2048), "a label value is unbounded:\n{metrics}");

    let rotated = secret(
        "default",
        "registry",
        SecretKind::DockerConfigJson,
        &config(json!({ world.registry_host.clone(): {"username": USER, "password": ROTATED_PASSWORD} })),
        &mut Needles::default(),
    );
    write_manifests(&secrets_dir.join("secrets.yaml"), &[rotated]);
    let success = r#"pullsecret_injector_secrets_dir_reloads_total{result="success"}"#;
    served.until_metrics("the rotation reload", |m| metric(m, success).is_some_and(|n| n >= 1.0)).await;
    std::fs::write(
        secrets_dir.join("broken.yaml"),
        // The flow mapping of `metadata` is never closed.
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: broken-yaml\ntype: kubernetes.io/dockerconfigjson\n\
             stringData:\n  .dockerconfigjson: '{}'\n",
            config(json!({"r.registry.invalid": {"password": PASSWORD}}))
        ),
    )
    .unwrap();
    let error = r#"pullsecret_injector_secrets_dir_reloads_total{result="error"}"#;
    let metrics = served.until_metrics("the failed reload", |m| metric(m, error).is_some_and(|n| n >= 1.0)).await;
    audit.display(&format!("serve --log-format {log_format}: /metrics at the end"), &metrics);

    served.terminate();
    let status = bounded("exit after SIGTERM", served.exited()).await;
    assert_eq!(status.code(), Some(0));
    let stderr = served.whole_log();
    assert!(stderr.contains("stopped"), "--log-format {log_format}: serve did not log its stop:\n{stderr}");
    for needle in ["injected", "denied", "not handled", "credential check done", "reload failed", "broken.yaml"] {
        assert!(stderr.contains(needle), "--log-format {log_format}: no {needle:?} in the log:\n{stderr}");
    }
    assert!(stderr.contains("TRACE"), "--log-level trace logs at trace level:\n{stderr}");
    eprintln!("serve --log-format {log_format}: {} lines of log", stderr.lines().count());
    if log_format == "json" {
        assert!(stderr.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "not JSON lines:\n{stderr}");
    }
    // Class 9: the Pod name was logged, on the line of its admission, and started no line of its own.
    let forged: Vec<&str> = stderr.lines().filter(|l| l.contains("forged-log-line")).collect();
    assert!(!forged.is_empty(), "the forged Pod's admission was not logged:\n{stderr}");
    assert!(!stderr.lines().any(|l| l.starts_with("2030-01-01")), "a Pod name forged a log line:\n{stderr}");
    if log_format == "text" {
        assert!(forged.iter().any(|l| l.contains("pod=p\\n2030")), "{forged:#?}");
    }
    audit.display(&format!("serve --log-format {log_format} --log-level trace: stderr"), &stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_never_logs_answers_or_exports_a_credential() {
    let world = World::new();
    let mut needles = world.needles.clone();
    needles.add("the rotated password", ROTATED_PASSWORD);
    needles.add("the rotated auth string", basic(USER, ROTATED_PASSWORD));
    let mut audit = Audit::new(&needles);
    serve_run(&world, "json", &mut audit).await;
    serve_run(&world, "text", &mut audit).await;
    audit.finish("serve");
}

// --- The offline commands ---------------------------------------------------------------------------------

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

/// Runs a command, checks its exit code, audits stdout and stderr, both human-readable (no control characters).
fn audited(audit: &mut Audit, label: &str, args: Vec<String>, stdin: Option<&[u8]>, code: i32) -> Run {
    let run = run(&args, stdin);
    assert_eq!(run.code, code, "{label}: {args:?}\nstdout: {}\nstderr: {}", run.stdout, run.stderr);
    audit.display(&format!("{label}: stdout"), &run.stdout);
    audit.display(&format!("{label}: stderr"), &run.stderr);
    run
}

/// [`audited`] for a command whose stdout is data (`mutate -o yaml|json|patch` echoes the Pod, whose strings are
/// the input's): stdout is audited for credentials only.
fn audited_data(audit: &mut Audit, label: &str, args: Vec<String>, stdin: Option<&[u8]>, code: i32) -> Run {
    let run = run(&args, stdin);
    assert_eq!(run.code, code, "{label}: {args:?}\nstdout: {}\nstderr: {}", run.stdout, run.stderr);
    audit.check(&format!("{label}: stdout"), &run.stdout);
    audit.display(&format!("{label}: stderr"), &run.stderr);
    run
}

#[test]
fn offline_commands_never_print_a_credential() {
    let world = World::new();
    let mut audit = Audit::new(&world.needles);
    let secrets = path(&world.secrets_file);
    let image = format!("{}/team/app:1", world.registry_host);

    // mutate: a Pod (every -o), an AdmissionReview (default and -o patch), a denial, warnings, stdin.
    let pod_file = world.dir.path().join("pod.yaml");
    let listed = pod("default", &[&image, "legacy.registry.invalid/x", "quay.io/x/y"], &["broken-auth"]);
    std::fs::write(&pod_file, serde_yaml_ng::to_string(&listed).unwrap()).unwrap();
    for output in ["yaml", "json", "patch", "review"] {
        let label = format!("mutate -o {output} (Pod)");
        audited(
            &mut audit,
            &label,
            args(&["mutate", "--secrets", &secrets, "-f", &path(&pod_file), "-o", output]),
            None,
            0,
        );
    }
    let review_file = world.dir.path().join("review.json");
    std::fs::write(&review_file, serde_json::to_vec(&review("u", listed.clone())).unwrap()).unwrap();
    audited(
        &mut audit,
        "mutate (AdmissionReview)",
        args(&["mutate", "--secrets", &secrets, "-f", &path(&review_file)]),
        None,
        0,
    );
    audited(
        &mut audit,
        "mutate -o patch (AdmissionReview)",
        args(&["mutate", "--secrets", &secrets, "-f", &path(&review_file), "-o", "patch"]),
        None,
        0,
    );
    let denied = serde_yaml_ng::to_string(&pod("default", &[&format!("{DENIED_HOST}/app")], &[])).unwrap();
    let run = audited(
        &mut audit,
        "mutate --deny-unmatched",
        args(&["mutate", "--secrets", &secrets, "--deny-unmatched", DENIED_HOST]),
        Some(denied.as_bytes()),
        1,
    );
    assert!(run.stderr.contains("denied"), "{}", run.stderr);
    let team = serde_yaml_ng::to_string(&pod("team", &[&image], &[])).unwrap();
    audited(
        &mut audit,
        "mutate -n team",
        args(&["mutate", "--secrets", &secrets, "-n", "team"]),
        Some(team.as_bytes()),
        0,
    );

    // explain: matched, fallback-free Hub, undecodable keys, listed undecodable Secrets, an invalid reference.
    for (label, image, extra) in [
        ("explain (registry)", image.as_str(), &[][..]),
        ("explain (legacy dockercfg)", "legacy.registry.invalid/x", &[][..]),
        ("explain (identity token)", "token.registry.invalid/x", &[][..]),
        ("explain (Docker Hub)", "nginx", &[][..]),
        (
            "explain (undecodable keys)",
            "broken.registry.invalid/app",
            &["--listed", "broken-auth,auth-without-colon"][..],
        ),
        (
            "explain (truncated JSON listed)",
            "json.registry.invalid/app",
            &["--listed", "truncated-json,wrong-type"][..],
        ),
        ("explain (invalid reference)", "Invalid//ref", &[][..]),
        ("explain -n team", image.as_str(), &["-n", "team"][..]),
    ] {
        let mut command = args(&["explain", image, "--secrets", &secrets]);
        command.extend(args(extra));
        audited(&mut audit, label, command, None, 0);
    }

    // Issue 11: the namespace `hostile` through explain and mutate (verify below reads it with the rest).
    let broken = hostile_broken().join(",");
    for (label, image, listed) in [
        ("explain -n hostile", "s1.registry.invalid/app", true),
        ("explain -n hostile (a hostile image)", "s5.registry.invalid/app\n\u{1b}[31m\u{202e}", false),
        ("explain -n hostile (the hostile name)", "hostile-name.registry.invalid/x", false),
    ] {
        let mut command = args(&["explain", image, "--secrets", &secrets, "-n", "hostile"]);
        if listed {
            command.extend(args(&["--listed", &broken]));
        }
        let run = audited(&mut audit, label, command, None, 0);
        if listed {
            // Every spelling is shown (redacted), and each broken Secret is named.
            assert!(run.stdout.matches("<redacted>@").count() >= hostile_keys().len() - 4, "{}", run.stdout);
            assert!(run.stdout.contains("broken-0"), "{}", run.stdout);
        }
    }
    let hostile_pod = pod("hostile", &["s1.registry.invalid/app", "hostile-name.registry.invalid/x"], &[]);
    let mut hostile_listed = hostile_pod.clone();
    hostile_listed["spec"]["imagePullSecrets"] = hostile_broken().iter().map(|n| json!({"name": n})).collect();
    let hostile_file = world.dir.path().join("hostile-pod.json");
    std::fs::write(&hostile_file, serde_json::to_vec(&hostile_listed).unwrap()).unwrap();
    for output in ["yaml", "json", "patch"] {
        let run = audited_data(
            &mut audit,
            &format!("mutate -o {output} -n hostile"),
            args(&["mutate", "--secrets", &secrets, "-f", &path(&hostile_file), "-o", output]),
            None,
            0,
        );
        assert!(run.stderr.contains("Warning: pullsecret-injector: every image pull"), "{}", run.stderr);
    }
    let hostile_review = world.dir.path().join("hostile-review.json");
    std::fs::write(&hostile_review, serde_json::to_vec(&review("h", hostile_listed)).unwrap()).unwrap();
    let run = audited(
        &mut audit,
        "mutate -o review -n hostile",
        args(&["mutate", "--secrets", &secrets, "-f", &path(&hostile_review)]),
        None,
        0,
    );
    audit.review_warnings("mutate -o review -n hostile", &run.stdout);

    // verify: every status; text and json; the registry's CA, none, and --insecure-skip-tls-verify.
    let verify = |extra: &[String]| {
        let mut command = args(&["verify", "--secrets", &secrets, "--timeout", "3s"]);
        command.extend_from_slice(extra);
        command
    };
    let ca = world.ca_args();
    let json_run =
        audited(&mut audit, "verify -o json", verify(&[ca.clone(), args(&["-o", "json"])].concat()), None, 1);
    let rows: Vec<Value> = serde_json::from_str(&json_run.stdout).expect("verify -o json prints an array");
    let status = |secret: &str| -> String {
        rows.iter()
            .find(|r| r["secret"] == secret)
            .map(|r| r["status"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    if world.registry.is_some() {
        assert_eq!(status("registry"), "ok", "the password was sent and accepted: {rows:#?}");
        assert_eq!(status("wrong-password"), "unauthorized", "{rows:#?}");
    }
    assert_eq!(status("unreachable"), "unreachable", "{rows:#?}");
    assert_eq!(status("broken-auth"), "invalid-secret", "{rows:#?}");
    // Every hostile entry has its row, its key shown redacted.
    let hostile_rows: Vec<&Value> = rows.iter().filter(|r| r["namespace"] == "hostile").collect();
    assert!(hostile_rows.len() >= 2 * hostile_keys().len(), "{hostile_rows:#?}");
    assert!(hostile_rows.iter().filter(|r| r["registry"].as_str().unwrap().contains("<redacted>@")).count() >= 13);
    audited(&mut audit, "verify (text)", verify(&ca), None, 1);
    audited(&mut audit, "verify without the CA", verify(&[]), None, 1);
    audited(&mut audit, "verify --insecure-skip-tls-verify", verify(&args(&["--insecure-skip-tls-verify"])), None, 1);

    // Error exits that read the Secrets or the input.
    let not_a_pod = world.dir.path().join("not-a-pod.yaml");
    std::fs::copy(&world.secrets_file, &not_a_pod).unwrap();
    audited(
        &mut audit,
        "mutate -f (the Secrets file)",
        args(&["mutate", "--secrets", &secrets, "-f", &path(&not_a_pod)]),
        None,
        2,
    );
    let secret_json = world.dir.path().join("secret.json");
    let (manifests, _) = fixture_secrets(&world.registry_host);
    std::fs::write(&secret_json, serde_json::to_vec(&manifests[0]).unwrap()).unwrap();
    audited(
        &mut audit,
        "mutate -f (one Secret as JSON)",
        args(&["mutate", "--secrets", &secrets, "-f", &path(&secret_json)]),
        None,
        2,
    );

    // certs: prints the caBundle, never the private key.
    let out = world.dir.path().join("certs");
    let run = audited(
        &mut audit,
        "certs",
        args(&["certs", "--out", &path(&out), "--dns", "localhost", "--ip", "127.0.0.1"]),
        None,
        0,
    );
    let key = std::fs::read_to_string(out.join(certs::KEY_FILE)).unwrap();
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains("PRIVATE KEY") && !text.contains(&key_body[..40]), "certs printed its key");
    }
    audit.finish("offline commands");
}

// --- In process -------------------------------------------------------------------------------------------

#[test]
fn debug_and_error_values_never_hold_a_credential() {
    let (manifests, needles) = fixture_secrets("registry.registry.invalid:5000");
    let mut audit = Audit::new(&needles);
    let mut loaded = Manifests::default();
    loaded.add_documents(Path::new("secrets.json"), &serde_json::to_string(&manifests).unwrap(), "default").unwrap();
    let index = loaded.index();
    audit.check("CredentialIndex", &format!("{index:?} {index:#?}"));
    for namespace in ["default", "team", "absent"] {
        let view = index.view(namespace);
        audit.check("NamespaceCredentials", &format!("{view:?} {view:#?} {:?}", view.keys()));
        for candidate in &view.secrets {
            audit.check("CandidateSecret", &format!("{candidate:?} {:?}", candidate.keys));
        }
    }
    let mut decoded = 0;
    for secret in &loaded.secrets {
        if let Some(candidate) = CandidateSecret::from_secret(secret) {
            audit.check("CandidateSecret::from_secret", &format!("{candidate:#?}"));
        }
        let Some((kind, payload)) = pull_payload(secret) else { continue };
        match docker_config::decode(kind, &payload) {
            Ok(entries) => {
                decoded += entries.len();
                audit.check("RegistryEntry", &format!("{entries:?} {entries:#?}"));
            }
            Err(error) => audit.check("DecodeError", &format!("{error} {error:?} {error:#?}")),
        }
        if let Err(error) = docker_config::decode_keys(kind, &payload) {
            audit.check("DecodeError (keys)", &format!("{error} {error:?}"));
        }
    }
    assert!(decoded >= 5, "the decodable Secrets were decoded ({decoded} entries)");

    // The decision and the review built from it.
    let pod = pod("default", &["registry.registry.invalid:5000/app", "broken.registry.invalid/x"], &["broken-auth"]);
    let view = PodView::from_value(&pod).unwrap();
    let decision = decision::decide(&view, &index.view("default"), &Policy::default());
    assert!(!decision.add.is_empty());
    audit.check("Decision", &format!("{decision:?}"));
    let reviewed = admission::review(&serde_json::to_vec(&review("u", pod)).unwrap(), &index, &Policy::default());
    audit.check("Reviewed", &format!("{reviewed:?} {}", String::from_utf8_lossy(&reviewed.body)));
    audit.finish("in process");
}

/// The payload the kubelet reads from a Secret: `stringData` (as written in a manifest) wins over `data`.
fn pull_payload(secret: &k8s_openapi::api::core::v1::Secret) -> Option<(SecretKind, Vec<u8>)> {
    let kind = [SecretKind::DockerConfigJson, SecretKind::DockerCfg]
        .into_iter()
        .find(|k| secret.type_.as_deref() == Some(k.secret_type()))?;
    let from_string = secret.string_data.as_ref().and_then(|d| d.get(kind.data_key())).map(|s| s.as_bytes().to_vec());
    let payload = from_string.or_else(|| secret.data.as_ref()?.get(kind.data_key()).map(|b| b.0.clone()))?;
    Some((kind, payload))
}

// --- Bugs found here once ---------------------------------------------------------------------------------------------

/// A Secret whose `stringData` (or `data`) is written as one string instead of a map, a likely slip when writing a
/// manifest by hand: every command that reads it fails (right), and its error names the problem without quoting the
/// string (serde's "invalid type: string \"…\", expected a map" would copy the whole payload).
#[test]
fn a_wrongly_typed_payload_is_not_quoted_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let payload = config(json!({"r.registry.invalid": {"username": USER, "password": PASSWORD}}));
    let mut needles = Needles::default();
    needles.add("the password", PASSWORD);
    needles.add("the base64 .dockerconfigjson", STANDARD.encode(&payload));
    let mut audit = Audit::new(&needles);
    let bundle = certs::generate(&["localhost".into()], &[IpAddr::V4(Ipv4Addr::LOCALHOST)], 1).unwrap();
    certs::write_bundle(dir.path(), &bundle).unwrap();
    let manifests = [("stringData", json!(payload)), ("data", json!(STANDARD.encode(&payload)))];
    for (field, value) in manifests {
        let secrets_dir = dir.path().join(field);
        std::fs::create_dir(&secrets_dir).unwrap();
        let mut manifest = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "mistaken", "namespace": "default"}});
        manifest[field] = value;
        write_manifests(&secrets_dir.join("mistaken.yaml"), &[manifest]);
        let secrets = path(&secrets_dir);
        let pod = serde_yaml_ng::to_string(&pod("default", &["r.registry.invalid/app"], &[])).unwrap();
        audited(
            &mut audit,
            &format!("mutate ({field})"),
            args(&["mutate", "--secrets", &secrets]),
            Some(pod.as_bytes()),
            2,
        );
        audited(&mut audit, &format!("explain ({field})"), args(&["explain", "nginx", "--secrets", &secrets]), None, 2);
        audited(&mut audit, &format!("verify ({field})"), args(&["verify", "--secrets", &secrets]), None, 2);
        let serve = args(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &path(&dir.path().join(certs::CERT_FILE)),
            "--tls-key",
            &path(&dir.path().join(certs::KEY_FILE)),
            "--secrets-dir",
            &secrets,
        ]);
        audited(&mut audit, &format!("serve ({field})"), serve, None, 2);
    }
    audit.finish("wrongly typed payloads");
}

/// A password written into a registry key (`https://alice:PASSWORD@host`): the kubelet discards the userinfo
/// (spec R16), `verify` and the decode errors redact it, but `explain` prints the key as written in its `dropped`
/// and `note` lines, and `CandidateSecret`'s derived `Debug` (so `NamespaceCredentials`' and `CredentialIndex`')
/// shows the keys as written.
#[test]
fn a_password_in_a_registry_key_is_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let mut needles = Needles::default();
    needles.add("the password in the key", KEY_PASSWORD);
    let mut audit = Audit::new(&needles);
    let mut keys = vec![
        format!("https://{USER}:{KEY_PASSWORD}@userinfo.registry.invalid"),
        format!("https://{USER}:{KEY_PASSWORD}@dropped.registry.invalid:port/"),
    ];
    keys.extend(hostile_keys());
    let entries: serde_json::Map<String, Value> =
        keys.iter().map(|k| (k.clone(), json!({"username": USER, "password": "p"}))).collect();
    let manifest =
        secret("default", "userinfo", SecretKind::DockerConfigJson, &config(entries.into()), &mut Needles::default());
    let secrets_file = dir.path().join("secrets.yaml");
    write_manifests(&secrets_file, std::slice::from_ref(&manifest));
    let secrets = path(&secrets_file);
    let image = "userinfo.registry.invalid/app";

    audited(&mut audit, "explain", args(&["explain", image, "--secrets", &secrets]), None, 0);
    let pod = serde_json::to_string(&review("u", pod("default", &[image], &[]))).unwrap();
    audited(&mut audit, "mutate", args(&["mutate", "--secrets", &secrets]), Some(pod.as_bytes()), 0);
    audited(
        &mut audit,
        "verify -o json",
        args(&["verify", "--secrets", &secrets, "-o", "json", "--timeout", "2s"]),
        None,
        1,
    );
    audited(&mut audit, "verify", args(&["verify", "--secrets", &secrets, "--timeout", "2s"]), None, 1);

    let mut loaded = Manifests::default();
    loaded.add_documents(Path::new("secrets.json"), &serde_json::to_string(&[manifest]).unwrap(), "default").unwrap();
    let index = loaded.index();
    let view = index.view("default");
    audit.check("CandidateSecret", &format!("{:?}", view.secrets));
    audit.check("NamespaceCredentials", &format!("{view:?} {:?}", view.keys()));
    audit.check("CredentialIndex", &format!("{index:?}"));
    audit.finish("a password in a registry key");
}
