//! A catalogue of bad inputs against the running webhook: the real TLS accept loop (`http::serve_https`) on
//! 127.0.0.1:0 with the real router, reached by reqwest (an ordinary HTTPS client trusting only the test CA) for
//! well-framed bodies and by a hand-written HTTP/1.1 client over tokio-rustls for broken framing.
//!
//! Every case must end in a clear 4xx, a refusal carrying the uid, or an allowed answer (unchanged, or patched with
//! only `imagePullSecrets`) whose warnings are bounded: at most 21 (docs/contract.md: 20 plus one summary line), each one
//! line of at most 256 characters. After the whole catalogue the server must still answer a normal review
//! correctly, no task may have panicked (a panic hook counts them), and the `internal_error` outcome of `/metrics`
//! (what the handler's `catch_unwind` records) must not appear.
//!
//! Two more tests put the server under faults it must absorb: a panic while deciding (allowed unchanged, counted
//! as `internal_error`), and more clients than `--max-connections` (the extra ones wait, then are served).
//!
//! `cargo test --test bad_input -- --nocapture` prints the catalogue with the observed result of each case
//! (docs/reliability.md quotes it). Cases the webhook answers against the contract today are kept apart in
//! [`warning_bound_cases`], which found a bug once (docs/reliability.md).

mod common;

use std::collections::BTreeSet;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pullsecret_injector::core::admission::WARNING_PREFIX;
use pullsecret_injector::core::credentials::{CredentialSource, NamespaceCredentials};
use pullsecret_injector::core::decision::{MAX_WARNING_CHARS, MAX_WARNINGS};
use pullsecret_injector::metrics::Metrics;
use pullsecret_injector::serve::config::Limits;
use pullsecret_injector::serve::http::{self, AppState};
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use common::metric;
use common::review::{self, containers, pod_review, to_body};
use common::tls::{self, SERVER_NAME, TlsServer, request_head};

/// Bound of every wait: a hang fails the case instead of the whole run.
const WAIT: Duration = Duration::from_secs(10);
/// The server's request timeout here: short, so that a body that never comes is answered within the test budget.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The production default of `--max-body-bytes` (7 MiB).
const MAX_BODY: usize = 7 * 1024 * 1024;

// --- Panic counter ----------------------------------------------------------------------------------

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// The message of the panic that `a_panic_while_deciding_allows_the_pod_unchanged` injects on purpose; the
/// counter leaves it out, as that test may run while the catalogue does.
const INJECTED_PANIC: &str = "fault injected by the test";

/// Counts every panic of the process (the server's tasks run in it), then reports it as usual.
fn count_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&INJECTED_PANIC) {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

// --- Credentials ------------------------------------------------------------------------------------

/// A `kubernetes.io/dockerconfigjson` Secret whose payload has one entry per key (fake credentials).
fn pull_secret(namespace: &str, name: &str, keys: &[&str]) -> Value {
    let auths: serde_json::Map<String, Value> = keys
        .iter()
        .map(|key| ((*key).to_owned(), json!({"username": "u", "password": "p", "auth": STANDARD.encode("u:p")})))
        .collect();
    secret_with_payload(namespace, name, &json!({ "auths": auths }).to_string())
}

fn secret_with_payload(namespace: &str, name: &str, payload: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": STANDARD.encode(payload)},
    })
}

/// The long keys and names of the `hostile` namespace.
fn ten_kb_key() -> String {
    format!("registry.example.com/{}", "a".repeat(10 * 1024))
}

fn long_secret_name() -> String {
    // 253 characters: the longest name the API server accepts for a Secret.
    format!("undecodable-{}", "n".repeat(253 - 12))
}

/// Namespace `default`: one Secret for `registry.example.com`. Namespace `hostile`: one Secret per kind of hostile
/// registry key, each decodable (the kubelet keeps the Secret and drops or keeps the key by its own rules), and one
/// Secret the kubelet cannot decode, with control characters in the key its error names. Namespace `long-names`:
/// undecodable Secrets whose warnings reach the length bound: one with a 10 KB key in its error, one with the
/// longest name the API server accepts.
fn manifests() -> Vec<Value> {
    let ten_kb = ten_kb_key();
    let bad_auth = |key: &str| json!({"auths": {key: {"auth": "not base64!"}}}).to_string();
    vec![
        pull_secret("default", "good", &["registry.example.com"]),
        pull_secret("hostile", "ten-kb-key", &[&ten_kb]),
        pull_secret("hostile", "query", &["registry.example.com?x=1"]),
        pull_secret("hostile", "fragment", &["registry.example.com#frag"]),
        pull_secret("hostile", "bracket", &["registry.example.com[", "[registry.example.com]:5000"]),
        pull_secret("hostile", "unicode", &["régistry.example.com", "registry.example.com/☃", "例え.jp"]),
        pull_secret("hostile", "userinfo", &["https://user:pass@registry.example.com"]),
        pull_secret("hostile", "empty-key", &[""]),
        pull_secret(
            "hostile",
            "go-url-errors",
            &[
                "registry.example.com:port",
                "https://registry.example.com:*/",
                "registry.example.com/%zz",
                "http://[::1",
                "%",
                " registry.example.com",
                "registry.example.com\u{0}",
                "registry.example.com\n/x",
                "\u{7f}",
            ],
        ),
        secret_with_payload("hostile", "undecodable-control-characters", &bad_auth("registry.example.com\n\u{1b}[31m")),
        secret_with_payload("long-names", "undecodable-ten-kb-key", &bad_auth(&ten_kb)),
        secret_with_payload("long-names", &long_secret_name(), &bad_auth("registry.example.com")),
    ]
}

/// The state `serve` builds over [`manifests`], ready.
fn app_state() -> AppState {
    common::app_state("hostile.json", &serde_json::to_string(&manifests()).unwrap())
}

// --- Requests ---------------------------------------------------------------------------------------

fn pod(spec: Value) -> Value {
    review::pod_with_spec("default", spec)
}

/// The review every "still works" check sends: one image that the `good` Secret matches.
fn normal_review(uid: &str) -> Value {
    pod_review(uid, "default", &["registry.example.com/team/app:1.0"])
}

/// `review` changed by `edit`.
fn edited(mut review: Value, edit: impl FnOnce(&mut Value)) -> Value {
    edit(&mut review);
    review
}

/// `depth` nested arrays, closed: `[[[…]]]`.
fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// A review whose Pod carries `depth` nested arrays in a field the webhook does not read (`spec.affinity`).
fn deeply_nested_review(uid: &str, depth: usize) -> Vec<u8> {
    let marker = "\"NESTED\"";
    let spec = json!({"containers": containers(&["registry.example.com/app"]), "affinity": "NESTED"});
    let text = serde_json::to_string(&review::review(uid, "default", pod(spec))).unwrap();
    text.replacen(marker, &nested_arrays(depth), 1).into_bytes()
}

// --- The catalogue ----------------------------------------------------------------------------------

/// How a case is sent.
enum Send {
    /// A well-framed POST /mutate with this body, by reqwest.
    Body(Vec<u8>),
    /// These bytes on a fresh TLS connection, by hand; then the response (or the connection's end) is read.
    Raw(Vec<u8>),
    /// These bytes, then the client closes its side (TLS close_notify and TCP FIN) and reads what comes back.
    RawThenClose(Vec<u8>),
}

/// What the contract allows as the answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// HTTP 400 with a one-line text reason: the body is unusable and no uid can be read.
    BadRequest,
    /// HTTP 200, `allowed: false`, `status.code` 400 and the request's uid: not an AdmissionReview, uid readable.
    Refused,
    /// HTTP 413.
    TooLarge,
    /// HTTP 200, allowed, no patch, and a warning containing this text.
    Skipped(&'static str),
    /// HTTP 200, allowed, the patch adds exactly these names (no patch when empty), and when given, a warning
    /// containing this text.
    Allowed(&'static [&'static str], Option<&'static str>),
    /// The HTTP layer refuses the framing: exactly this 4xx status.
    Http(u16),
    /// A 4xx, or the connection closed without an answer (the client is gone; nothing can be answered).
    FourXxOrClosed,
}

impl Expect {
    fn describe(self) -> String {
        match self {
            Expect::BadRequest => "400, one-line reason".into(),
            Expect::Refused => "200, allowed: false, status 400, uid echoed".into(),
            Expect::TooLarge => "413".into(),
            Expect::Skipped(text) => format!("200, allowed unchanged, warning \"{text}\""),
            Expect::Allowed([], None) => "200, allowed unchanged".into(),
            Expect::Allowed([], Some(text)) => format!("200, allowed unchanged, warning \"{text}\""),
            Expect::Allowed(names, None) => format!("200, patch adds {}", names.join(", ")),
            Expect::Allowed(names, Some(text)) => format!("200, patch adds {}, warning \"{text}\"", names.join(", ")),
            Expect::Http(status) => format!("{status}"),
            Expect::FourXxOrClosed => "4xx or closed".into(),
        }
    }
}

struct Case {
    name: String,
    send: Send,
    expect: Expect,
}

fn case(name: impl Into<String>, send: Send, expect: Expect) -> Case {
    Case { name: name.into(), send, expect }
}

fn body(value: &Value) -> Send {
    Send::Body(to_body(value))
}

/// Cases the webhook answers against docs/contract.md today (warnings longer than 256 characters or spanning lines).
/// They run in `warnings_are_bounded_for_every_input` (they were bugs once: docs/reliability.md).
fn warning_bound_cases() -> Vec<Case> {
    vec![
        // admission::skipped puts the request's own strings into the warning without bounding or escaping them.
        case(
            "request.kind of 10 KB with a newline",
            body(&edited(normal_review("b-1"), |r| {
                r["request"]["kind"]["kind"] = json!(format!("{}\nInjected: line", "K".repeat(10_240)))
            })),
            Expect::Skipped("only Pod CREATE"),
        ),
        case(
            "operation with control characters",
            body(&edited(normal_review("b-2"), |r| r["request"]["operation"] = json!("CREATE\r\n\u{1b}[2J"))),
            Expect::Skipped("only Pod CREATE"),
        ),
        case(
            "object of kind \"Deploy\\nment\" in a Pod review",
            body(&review::review("b-3", "default", json!({"kind": "Deploy\nment", "spec": {}}))),
            Expect::Skipped("not a Pod"),
        ),
        // serde's message quotes the wrongly typed value.
        case(
            "containers is a 10 KB string",
            body(&review::review("b-4", "default", pod(json!({"containers": "c".repeat(10_240)})))),
            Expect::Skipped("not understood"),
        ),
        // decision bounds a warning to 256 characters, then admission prepends "pullsecret-injector: " (21 more).
        case(
            "an undecodable Secret with a 253-character name, listed by the Pod",
            body(&review::review(
                "b-5",
                "long-names",
                pod(json!({"containers": containers(&["registry.example.com/app"]),
                    "imagePullSecrets": [{"name": long_secret_name()}]})),
            )),
            Expect::Allowed(&[], Some("every image pull of this Pod will fail")),
        ),
        // "ephemeral container " + a name cut to 40 + an image cut to 100 + the key, its Secret and why: cut at 256.
        case(
            "an ephemeral container with a long name and a long unmatched private image",
            body(&review::review(
                "b-7",
                "default",
                pod(json!({"containers": [], "ephemeralContainers": [
                    {"name": "d".repeat(60), "image": format!("registry.example.com:5000/{}", "q".repeat(120))}
                ]})),
            )),
            Expect::Allowed(&[], Some("registry.example.com:5000/")),
        ),
        case(
            "an undecodable Secret with a 10 KB key listed by the Pod",
            body(&review::review(
                "b-6",
                "long-names",
                pod(json!({"containers": containers(&["nginx"]),
                    "imagePullSecrets": [{"name": "undecodable-ten-kb-key"}]})),
            )),
            Expect::Allowed(&[], Some("every image pull of this Pod will fail")),
        ),
    ]
}

/// Every case, in the order the catalogue table lists them.
fn catalogue() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(envelope_cases());
    cases.extend(pod_shape_cases());
    cases.extend(image_cases());
    cases.extend(hostile_key_cases());
    cases.extend(size_and_depth_cases());
    cases.extend(framing_cases());
    cases
}

/// The AdmissionReview envelope: encoding, kind, version, uid, request.
fn envelope_cases() -> Vec<Case> {
    let normal = to_body(&normal_review("e-0"));
    let normal_text = String::from_utf8(normal.clone()).unwrap();
    // In `options.kind` (the webhook reads `userInfo` since mirror Pods are checked against it).
    let mut non_utf8_string = normal_text.replace("\"CreateOptions\"", "\"Create\u{0}Options\"").into_bytes();
    let at = non_utf8_string.iter().position(|b| *b == 0).unwrap();
    non_utf8_string[at] = 0xff;
    let mut non_utf8_image = normal_text.replace("team/app", "team/a\u{0}pp").into_bytes();
    let at = non_utf8_image.iter().position(|b| *b == 0).unwrap();
    non_utf8_image[at] = 0xc3;
    vec![
        case("empty body", Send::Body(Vec::new()), Expect::BadRequest),
        case("truncated JSON (the first half of a review)", Send::Body(normal[..normal.len() / 2].to_vec()), {
            Expect::BadRequest
        }),
        case(
            "not UTF-8 at all (0xff 0xfe …)",
            Send::Body(vec![0xff, 0xfe, 0x00, 0x7b, 0x80, 0x81]),
            Expect::BadRequest,
        ),
        // serde_json checks UTF-8 only in the strings it decodes: a field the webhook skips is skipped unread.
        case("invalid UTF-8 in a field the webhook ignores", Send::Body(non_utf8_string), {
            Expect::Allowed(&["good"], None)
        }),
        case("invalid UTF-8 in the image (uid readable)", Send::Body(non_utf8_image), Expect::Refused),
        case("UTF-8 byte order mark before the JSON", Send::Body([&b"\xef\xbb\xbf"[..], &normal].concat()), {
            Expect::BadRequest
        }),
        case("JSON null", Send::Body(b"null".to_vec()), Expect::BadRequest),
        case("JSON array", Send::Body(b"[]".to_vec()), Expect::BadRequest),
        case("JSON string", Send::Body(b"\"AdmissionReview\"".to_vec()), Expect::BadRequest),
        case(
            "kind AdmissionRequest (uid readable)",
            body(&edited(normal_review("e-1"), |r| r["kind"] = json!("AdmissionRequest"))),
            Expect::Refused,
        ),
        case(
            "kind Pod (a bare Pod posted, no uid)",
            body(&pod(json!({"containers": containers(&["nginx"])}))),
            Expect::BadRequest,
        ),
        case(
            "kind missing",
            body(&edited(normal_review("e-2"), |r| drop(r.as_object_mut().unwrap().remove("kind")))),
            Expect::Refused,
        ),
        case(
            "apiVersion admission.k8s.io/v1beta1",
            body(&edited(normal_review("e-3"), |r| r["apiVersion"] = json!("admission.k8s.io/v1beta1"))),
            Expect::Refused,
        ),
        case(
            "apiVersion 42 (not a string)",
            body(&edited(normal_review("e-4"), |r| r["apiVersion"] = json!(42))),
            Expect::Refused,
        ),
        case(
            "duplicate apiVersion field",
            Send::Body(normal_text.replacen('{', "{\"apiVersion\":\"admission.k8s.io/v1\",", 1).into_bytes()),
            Expect::Refused,
        ),
        case(
            "uid missing",
            body(&edited(normal_review("x"), |r| drop(r["request"].as_object_mut().unwrap().remove("uid")))),
            Expect::BadRequest,
        ),
        case("uid empty", body(&normal_review("")), Expect::BadRequest),
        case("uid a number", body(&edited(normal_review("x"), |r| r["request"]["uid"] = json!(42))), {
            Expect::BadRequest
        }),
        case("uid nested 200 arrays deep", Send::Body(with_raw_uid(&nested_arrays(200))), Expect::BadRequest),
        case(
            "uid of 10 KB with control characters",
            body(&normal_review(&format!("{}\n\r\u{0}", "u".repeat(10_240)))),
            Expect::Allowed(&["good"], None),
        ),
        case("request missing", body(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})), {
            Expect::BadRequest
        }),
        case("request null", body(&edited(normal_review("x"), |r| r["request"] = Value::Null)), Expect::BadRequest),
        case(
            "dryRun \"yes\" (not a boolean)",
            body(&edited(normal_review("e-5"), |r| r["request"]["dryRun"] = json!("yes"))),
            Expect::Refused,
        ),
        case(
            "a Deployment review",
            body(&edited(normal_review("e-6"), |r| {
                r["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
                r["request"]["resource"] = json!({"group": "apps", "version": "v1", "resource": "deployments"});
                let template = json!({"spec": {"containers": containers(&["registry.example.com/app"])}});
                r["request"]["object"] = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "d"}, "spec": {"template": template}});
            })),
            Expect::Skipped("Deployment"),
        ),
        case(
            "Pod UPDATE",
            body(&edited(normal_review("e-7"), |r| r["request"]["operation"] = json!("UPDATE"))),
            Expect::Skipped("only Pod CREATE"),
        ),
        case(
            "Pod subresource (ephemeralcontainers)",
            body(&edited(normal_review("e-8"), |r| r["request"]["subResource"] = json!("ephemeralcontainers"))),
            Expect::Skipped("only Pod CREATE"),
        ),
        case(
            "oldObject only, object null (a DELETE)",
            body(&edited(normal_review("e-9"), |r| {
                r["request"]["operation"] = json!("DELETE");
                r["request"]["oldObject"] = r["request"]["object"].take();
            })),
            Expect::Skipped("DELETE"),
        ),
        case(
            "oldObject only, object null, on CREATE",
            body(&edited(normal_review("e-10"), |r| r["request"]["oldObject"] = r["request"]["object"].take())),
            Expect::Skipped("no object"),
        ),
        case(
            "object missing on CREATE",
            body(&edited(normal_review("e-11"), |r| drop(r["request"].as_object_mut().unwrap().remove("object")))),
            Expect::Skipped("no object"),
        ),
    ]
}

/// The review's JSON with the value of its uid replaced by `raw_json`.
fn with_raw_uid(raw_json: &str) -> Vec<u8> {
    let text = serde_json::to_string(&normal_review("x")).unwrap();
    text.replacen("\"uid\":\"x\"", &format!("\"uid\":{raw_json}"), 1).into_bytes()
}

/// Pods the webhook cannot read, or reads with odd fields.
fn pod_shape_cases() -> Vec<Case> {
    let with_pod = |uid: &str, pod_value: Value| body(&review::review(uid, "default", pod_value));
    let image = containers(&["registry.example.com/app"]);
    vec![
        case("object is a string", with_pod("p-1", json!("a Pod")), Expect::Skipped("not understood")),
        case("object is an array", with_pod("p-2", json!([1, 2])), Expect::Skipped("not understood")),
        case(
            "object of kind Deployment in a Pod review",
            with_pod("p-3", json!({"kind": "Deployment", "spec": {"containers": image}})),
            Expect::Skipped("not a Pod"),
        ),
        case("Pod without spec", with_pod("p-4", json!({"kind": "Pod", "metadata": {}})), Expect::Skipped("no spec")),
        case(
            "containers is a string",
            with_pod("p-5", pod(json!({"containers": "registry.example.com/app"}))),
            Expect::Skipped("not understood"),
        ),
        case(
            "image is a number",
            with_pod("p-6", pod(json!({"containers": [{"name": "c", "image": 42}]}))),
            Expect::Skipped("not understood"),
        ),
        case(
            "image null, container without name",
            with_pod("p-7", pod(json!({"containers": [{"image": null}, {}]}))),
            Expect::Allowed(&[], None),
        ),
        case("no containers at all", with_pod("p-8", pod(json!({"containers": []}))), Expect::Allowed(&[], None)),
        case(
            "labels with a non-string value",
            with_pod("p-9", json!({"kind": "Pod", "metadata": {"labels": {"a": 1}}, "spec": {"containers": image}})),
            Expect::Skipped("not understood"),
        ),
        case(
            "imagePullSecrets is a string",
            with_pod("p-10", pod(json!({"containers": image, "imagePullSecrets": "good"}))),
            Expect::Skipped("not understood"),
        ),
        case(
            "imagePullSecrets with null, {}, \"\", a 10 KB name and good",
            with_pod(
                "p-11",
                pod(json!({"containers": image, "imagePullSecrets":
                    [null, {}, {"name": ""}, {"name": "n".repeat(10_240)}, {"name": "good"}]})),
            ),
            Expect::Allowed(&[], None),
        ),
        case(
            "every container list, each with a hostile entry",
            with_pod(
                "p-12",
                pod(json!({
                    "initContainers": [{"name": "i\n", "image": "registry.example.com/init"}],
                    "containers": [{"name": "c".repeat(10_240), "image": "quay.io/x/y"}],
                    "ephemeralContainers": [{"name": "\u{0}", "image": "registry.example.com/NOT-lower-case"}],
                })),
            ),
            Expect::Allowed(&["good"], Some("InvalidImageName")),
        ),
    ]
}

/// Hostile image strings, one Pod each, in namespace `default`.
fn image_cases() -> Vec<Case> {
    let ten_kb = format!("registry.example.com/{}", "a".repeat(10 * 1024));
    let ten_kb_tag = format!("registry.example.com/app:{}", "t".repeat(10 * 1024));
    let images: [(&str, String, &str); 14] = [
        ("unicode registry", "régistry.example.com/app".into(), "InvalidImageName"),
        ("unicode path", "registry.example.com/äpp".into(), "InvalidImageName"),
        ("emoji image", "🐳".into(), "InvalidImageName"),
        ("image of 10 KB", ten_kb, "InvalidImageName"),
        ("tag of 10 KB", ten_kb_tag, "InvalidImageName"),
        ("newline and ANSI escape", "registry.example.com/app\n\u{1b}[31mred".into(), "InvalidImageName"),
        ("carriage return", "registry.example.com/app\r".into(), "InvalidImageName"),
        ("NUL", "registry.example.com/app\u{0}".into(), "InvalidImageName"),
        ("DEL and C1 control", "registry.example.com/a\u{7f}\u{85}pp".into(), "InvalidImageName"),
        ("empty image", String::new(), "InvalidImageName"),
        ("only spaces", "   ".into(), "InvalidImageName"),
        ("right-to-left override", "registry.example.com/\u{202e}ppa".into(), "InvalidImageName"),
        ("digest of the wrong length", "registry.example.com/app@sha256:abc".into(), "InvalidImageName"),
        (
            "private image on a port no key names, with a 256-char path",
            format!("registry.example.com:5000/{}", "p".repeat(230)),
            "registry.example.com:5000/",
        ),
    ];
    images
        .into_iter()
        .enumerate()
        .map(|(i, (label, image, warning))| {
            case(
                format!("image: {label}"),
                body(&pod_review(&format!("i-{i}"), "default", &[&image])),
                Expect::Allowed(&[], Some(warning)),
            )
        })
        .collect()
}

/// A Pod in namespace `hostile` with these images, listing the Secret the kubelet cannot decode.
fn listing_undecodable(uid: &str, images: &[&str]) -> Value {
    review::review(
        uid,
        "hostile",
        pod(json!({"containers": containers(images),
            "imagePullSecrets": [{"name": "undecodable-control-characters"}]})),
    )
}

/// Pods in namespace `hostile`, whose Secrets hold the hostile keys.
fn hostile_key_cases() -> Vec<Case> {
    vec![
        // R16/R17: the scheme, userinfo, query and fragment are dropped; the other hostile keys are dropped by the
        // URL parser (R14) or match nothing.
        // The Pods list the undecodable Secret, so its warning (with the key its error names) is theirs.
        case(
            "hostile keys: registry.example.com/app",
            body(&listing_undecodable("k-1", &["registry.example.com/app"])),
            Expect::Allowed(&["fragment", "query", "userinfo"], Some("cannot be decoded")),
        ),
        case(
            "hostile keys: an image under the 10 KB key",
            body(&listing_undecodable("k-2", &[&format!("registry.example.com/{}", "a".repeat(200))])),
            Expect::Allowed(&["fragment", "query", "userinfo"], Some("cannot be decoded")),
        ),
        // A hostile key names the first image's registry on no port: that image's warning quotes it.
        case(
            "hostile keys: images matching no key, Docker Hub, invalid",
            body(&pod_review(
                "k-3",
                "hostile",
                &["registry.example.com:5000/app", "nginx", "régistry.example.com/app"],
            )),
            Expect::Allowed(&[], Some("registry.example.com:5000/app")),
        ),
    ]
}

/// Sizes and depths.
fn size_and_depth_cases() -> Vec<Case> {
    // 999 containers on ports of registry.example.com that its key does not name (each one a warning), then one on
    // registry.example.com: all 1,000 considered.
    let mut images: Vec<String> = (0..999).map(|i| format!("registry.example.com:{}/app:{i}", 5000 + i)).collect();
    images.push("registry.example.com/last".into());
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    let padded = |len: usize| {
        let mut body = to_body(&normal_review("s-1"));
        body.resize(len, b' ');
        body
    };
    vec![
        case("a Pod with 1,000 containers", body(&pod_review("s-0", "default", &images)), {
            Expect::Allowed(&["good"], Some("979 more warnings"))
        }),
        case(
            "body of exactly --max-body-bytes (7 MiB)",
            Send::Body(padded(MAX_BODY)),
            Expect::Allowed(&["good"], None),
        ),
        case("body one byte over --max-body-bytes", Send::Body(padded(MAX_BODY + 1)), Expect::TooLarge),
        case("10,000 unclosed [ as the body", Send::Body("[".repeat(10_000).into_bytes()), Expect::BadRequest),
        case("10,000 nested arrays as the body", Send::Body(nested_arrays(10_000).into_bytes()), Expect::BadRequest),
        case(
            "10,000 nested arrays in a Pod field the webhook ignores",
            Send::Body(deeply_nested_review("s-2", 10_000)),
            Expect::Allowed(&["good"], None),
        ),
        case(
            "1,000,000 nested arrays in a Pod field the webhook ignores (2 MB)",
            Send::Body(deeply_nested_review("s-3", 1_000_000)),
            Expect::Allowed(&["good"], None),
        ),
    ]
}

/// `\r\nX-Big: bbb…\r\n`: a header line of `len` bytes of value, to splice after the request line.
fn big_header(len: usize) -> String {
    format!("\r\nX-Big: {}\r\n", "b".repeat(len))
}

/// Broken HTTP framing, by hand.
fn framing_cases() -> Vec<Case> {
    let review = to_body(&normal_review("f-1"));
    let raw = |head: &str, body: &[u8]| [head.as_bytes(), body].concat();
    // Chunked (no Content-Length): 7 chunks of 1 MiB and one of 1 byte, one byte over the limit.
    let mut chunked_over = format!(
        "POST /mutate HTTP/1.1\r\nHost: {SERVER_NAME}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for chunk in std::iter::repeat_n(vec![b' '; 1024 * 1024], 7).chain([vec![b' ']]) {
        chunked_over.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked_over.extend_from_slice(&chunk);
        chunked_over.extend_from_slice(b"\r\n");
    }
    chunked_over.extend_from_slice(b"0\r\n\r\n");
    vec![
        case(
            "body shorter than Content-Length, then the client closes",
            Send::RawThenClose(raw(&request_head(review.len()), &review[..review.len() / 2])),
            Expect::FourXxOrClosed,
        ),
        // Answered at once from the announced length, not at the request timeout (a test below times it).
        case(
            "Content-Length of 8 MiB announced, body never sent",
            Send::Raw(request_head(8 * 1024 * 1024).into_bytes()),
            Expect::Http(413),
        ),
        case("chunked body one byte over --max-body-bytes", Send::Raw(chunked_over), Expect::Http(413)),
        case("garbage request line", Send::Raw(b"HELLO WORLD\r\n\r\n".to_vec()), Expect::Http(400)),
        case(
            "Content-Length not a number",
            Send::Raw(raw(
                &format!("POST /mutate HTTP/1.1\r\nHost: {SERVER_NAME}\r\nContent-Length: abc\r\n\r\n"),
                &review,
            )),
            Expect::Http(400),
        ),
        case(
            "two different Content-Length headers",
            Send::Raw(raw(
                &format!(
                    "POST /mutate HTTP/1.1\r\nHost: {SERVER_NAME}\r\nContent-Length: {}\r\nContent-Length: 5\r\n\r\n",
                    review.len()
                ),
                &review,
            )),
            Expect::Http(400),
        ),
        case(
            "chunk size not hexadecimal",
            Send::Raw(
                format!(
                    "POST /mutate HTTP/1.1\r\nHost: {SERVER_NAME}\r\nTransfer-Encoding: chunked\r\n\r\n\
                     zz\r\n{{}}\r\n0\r\n\r\n"
                )
                .into_bytes(),
            ),
            Expect::FourXxOrClosed,
        ),
        // hyper reads headers into a buffer of about 400 KB: a 100 KB header is served, a 1 MiB one refused.
        case(
            "a 100 KB header",
            Send::Raw(raw(&request_head(review.len()).replacen("\r\n", &big_header(100 * 1024), 1), &review)),
            Expect::Allowed(&["good"], None),
        ),
        case(
            "a 1 MiB header",
            Send::Raw(raw(&request_head(review.len()).replacen("\r\n", &big_header(1024 * 1024), 1), &review)),
            Expect::Http(431),
        ),
        case(
            "header with a NUL byte",
            Send::Raw(raw(&request_head(review.len()).replacen("\r\n", "\r\nX-Nul: a\0b\r\n", 1), &review)),
            Expect::Http(400),
        ),
        case(
            "GET /mutate",
            Send::Raw(format!("GET /mutate HTTP/1.1\r\nHost: {SERVER_NAME}\r\n\r\n").into_bytes()),
            Expect::Http(405),
        ),
        case(
            "POST to an unknown path",
            Send::Raw(raw(&request_head(review.len()).replacen("/mutate", "/mutate/../admin", 1), &review)),
            Expect::Http(404),
        ),
    ]
}

// --- The server and its clients -----------------------------------------------------------------------

/// The webhook's router over `state` on a TLS server of its own, and the metrics `state` records.
async fn start(state: AppState, limits: Limits) -> (TlsServer, Arc<Metrics>) {
    let metrics = state.metrics.clone();
    (start_app(http::webhook_router(state, limits), limits).await, metrics)
}

/// Serves `app` (the webhook router or a stand-in) with a certificate for [`SERVER_NAME`].
async fn start_app(app: axum::Router, limits: Limits) -> TlsServer {
    TlsServer::start(&tls::bundle(SERVER_NAME), app, limits, Duration::from_secs(5)).await
}

/// What came back.
#[derive(Debug)]
enum Answer {
    Http {
        status: u16,
        body: Vec<u8>,
    },
    /// The server closed the connection without an HTTP response.
    Closed,
}

async fn send(server: &TlsServer, client: &reqwest::Client, send: &Send) -> Answer {
    match send {
        Send::Body(body) => {
            let response = client
                .post(server.url())
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("reqwest: {e:?}"));
            let status = response.status().as_u16();
            Answer::Http { status, body: response.bytes().await.unwrap().to_vec() }
        }
        Send::Raw(bytes) | Send::RawThenClose(bytes) => {
            let conn = server.connect().await.expect("TLS connection");
            let (reader, mut writer) = tokio::io::split(conn);
            let (bytes, close) = (bytes.clone(), matches!(send, Send::RawThenClose(_)));
            // Written while the answer is read: the server may answer (and close) before it has read everything,
            // and a write that fails then is not the result.
            let writing = tokio::spawn(async move {
                if writer.write_all(&bytes).await.is_ok() && writer.flush().await.is_ok() && close {
                    let _ = writer.shutdown().await;
                }
                writer
            });
            let answer = read_response(&mut BufReader::new(reader)).await;
            writing.abort();
            answer
        }
    }
}

/// Reads one HTTP/1.1 response, or notices that the connection ended without one.
async fn read_response(conn: &mut (impl AsyncBufRead + Unpin)) -> Answer {
    match tls::read_response(conn).await {
        Ok(response) => Answer::Http { status: response.status, body: response.body },
        Err(e) if e.kind() == io::ErrorKind::InvalidData => panic!("{e}"),
        Err(_) => Answer::Closed,
    }
}

/// The request's uid, when the case's body has one that the contract says must be echoed.
fn request_uid(send: &Send) -> Option<String> {
    let Send::Body(body) = send else { return None };
    let value: Value = serde_json::from_slice(body).ok()?;
    value.pointer("/request/uid")?.as_str().map(str::to_owned)
}

/// Checks an answer against the case; returns the result in a few words (for the table).
fn check(case: &Case, answer: &Answer) -> Result<String, String> {
    let (status, body) = match answer {
        Answer::Http { status, body } => (*status, body.as_slice()),
        Answer::Closed => {
            return match case.expect {
                Expect::FourXxOrClosed => Ok("connection closed".into()),
                _ => Err("the connection closed without an answer".into()),
            };
        }
    };
    let text = String::from_utf8_lossy(body);
    let shown = || text.chars().take(300).collect::<String>();
    match case.expect {
        Expect::BadRequest => {
            ensure(status == 400, || format!("status {status}: {}", shown()))?;
            ensure(text.lines().count() == 1 && text.ends_with('\n'), || format!("not one line: {:?}", shown()))?;
            Ok(format!("400 \"{}\"", text.trim_end().chars().take(70).collect::<String>()))
        }
        Expect::TooLarge => {
            ensure(status == 413, || format!("status {status}: {}", shown()))?;
            Ok("413".into())
        }
        Expect::Http(expected) => {
            ensure(status == expected, || format!("status {status}, expected {expected}: {}", shown()))?;
            Ok(format!("{status}"))
        }
        Expect::FourXxOrClosed => {
            ensure((400..500).contains(&status), || format!("status {status}: {}", shown()))?;
            Ok(format!("{status}"))
        }
        Expect::Refused | Expect::Skipped(_) | Expect::Allowed(..) => {
            ensure(status == 200, || format!("status {status}: {}", shown()))?;
            let review: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e}): {}", shown()))?;
            let response = &review["response"];
            ensure(review["apiVersion"] == "admission.k8s.io/v1" && review["kind"] == "AdmissionReview", || {
                format!("not an AdmissionReview v1: {}", shown())
            })?;
            if let Some(uid) = request_uid(&case.send) {
                ensure(response["uid"] == uid.as_str(), || format!("uid not echoed: {}", shown()))?;
            }
            let warnings = bounded_warnings(response)?;
            let warned = |needle: &str| warnings.iter().any(|w| w.contains(needle));
            match case.expect {
                Expect::Refused => {
                    ensure(response["allowed"] == false && response["status"]["code"] == 400, || {
                        format!("not a refusal with code 400: {}", shown())
                    })?;
                    let message = response["status"]["message"].as_str().unwrap_or_default();
                    ensure(!message.is_empty() && !message.contains('\n'), || format!("message {message:?}"))?;
                    Ok(format!("refused: \"{}\"", message.chars().take(60).collect::<String>()))
                }
                Expect::Skipped(needle) => {
                    ensure(response["allowed"] == true, || format!("not allowed: {}", shown()))?;
                    ensure(response.get("patch").is_none(), || format!("patched: {}", shown()))?;
                    ensure(warned(needle), || format!("no warning with {needle:?}: {warnings:?}"))?;
                    Ok(format!("allowed unchanged, {} warning(s)", warnings.len()))
                }
                Expect::Allowed(names, needle) => {
                    ensure(response["allowed"] == true, || format!("not allowed: {}", shown()))?;
                    let added = patch_names(&case.send, response)?;
                    let expected: BTreeSet<String> = names.iter().map(|n| (*n).to_owned()).collect();
                    ensure(
                        added.iter().cloned().collect::<BTreeSet<_>>() == expected && added.len() == names.len(),
                        || format!("patch adds {added:?}, expected {names:?}"),
                    )?;
                    if let Some(needle) = needle {
                        ensure(warned(needle), || format!("no warning with {needle:?}: {warnings:?}"))?;
                    }
                    let patched =
                        if added.is_empty() { "unchanged".to_owned() } else { format!("adds {}", added.join(", ")) };
                    Ok(format!("allowed, {patched}, {} warning(s)", warnings.len()))
                }
                _ => unreachable!(),
            }
        }
    }
}

fn ensure(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(why()) }
}

/// docs/contract.md: each warning one line of at most 256 characters, prefixed; at most 20 plus one summary line.
fn bounded_warnings(response: &Value) -> Result<Vec<String>, String> {
    let warnings: Vec<String> = match response.get("warnings") {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(|w| w.as_str().unwrap_or_default().to_owned()).collect(),
        Some(other) => return Err(format!("warnings is not an array: {other}")),
    };
    ensure(warnings.len() <= MAX_WARNINGS + 1, || format!("{} warnings", warnings.len()))?;
    for warning in &warnings {
        let chars = warning.chars().count();
        ensure(chars <= MAX_WARNING_CHARS, || format!("a warning of {chars} characters: {warning:?}"))?;
        ensure(!warning.chars().any(char::is_control), || format!("a warning with a control character: {warning:?}"))?;
        ensure(warning.starts_with(WARNING_PREFIX), || format!("a warning without the prefix: {warning:?}"))?;
    }
    Ok(warnings)
}

/// The names the answer's patch adds (non-empty, and nothing but `spec.imagePullSecrets` touched). When the request
/// parses as a JSON value (not the deeply nested ones: serde_json's own depth limit), the patch is also applied to
/// its Pod like the API server would.
fn patch_names(send: &Send, response: &Value) -> Result<Vec<String>, String> {
    let Some(patch) = response.get("patch") else {
        ensure(response.get("patchType").is_none(), || "patchType without a patch".into())?;
        return Ok(Vec::new());
    };
    ensure(response["patchType"] == "JSONPatch", || format!("patchType {}", response["patchType"]))?;
    let patch = STANDARD.decode(patch.as_str().unwrap_or_default()).map_err(|e| format!("patch not base64: {e}"))?;
    let operations: Vec<Value> = serde_json::from_slice(&patch).map_err(|e| format!("not JSON: {e}"))?;
    let name = |entry: &Value| entry["name"].as_str().unwrap_or_default().to_owned();
    let mut added = Vec::new();
    for op in &operations {
        ensure(op["op"] == "add", || format!("not an add: {op}"))?;
        match op["path"].as_str() {
            Some("/spec/imagePullSecrets") => added.extend(op["value"].as_array().into_iter().flatten().map(name)),
            Some("/spec/imagePullSecrets/-") => added.push(name(&op["value"])),
            _ => return Err(format!("an operation outside imagePullSecrets: {op}")),
        }
    }
    ensure(added.iter().all(|n| !n.is_empty()), || format!("an empty or missing name added: {added:?}"))?;
    let Send::Body(body) = send else { return Ok(added) };
    let Ok(request) = serde_json::from_slice::<Value>(body) else { return Ok(added) };
    let patch: json_patch::Patch = serde_json::from_slice(&patch).map_err(|e| format!("not a JSON patch: {e}"))?;
    let mut pod = request["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).map_err(|e| format!("the patch does not apply: {e}"))?;
    let listed = pod["spec"]["imagePullSecrets"].as_array().cloned().unwrap_or_default();
    let names: Vec<String> = listed.iter().map(|e| e["name"].as_str().unwrap_or_default().to_owned()).collect();
    ensure(names.ends_with(&added), || format!("the patched list {names:?} does not end with {added:?}"))?;
    Ok(added)
}

/// The normal review still gets exactly `good`.
async fn assert_still_serving(server: &TlsServer, client: &reqwest::Client, uid: &str) {
    let normal = case("normal review", body(&normal_review(uid)), Expect::Allowed(&["good"], None));
    let answer = tokio::time::timeout(WAIT, send(server, client, &normal.send)).await.expect("normal review");
    check(&normal, &answer).unwrap_or_else(|why| panic!("a normal review after the catalogue: {why}"));
}

/// Sends every case on `server`, each bounded by [`WAIT`]; returns the Markdown table of the results and the
/// failures.
async fn run(server: &TlsServer, client: &reqwest::Client, cases: &[Case]) -> (String, Vec<String>) {
    let mut table = vec!["| # | case | expected | observed |".to_owned(), "|---|---|---|---|".to_owned()];
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let result = match tokio::time::timeout(WAIT, send(server, client, &case.send)).await {
            Ok(answer) => check(case, &answer),
            Err(_) => Err(format!("no answer within {WAIT:?}")),
        };
        let observed = match &result {
            Ok(observed) => observed.clone(),
            Err(why) => format!("FAILED: {}", why.chars().take(160).collect::<String>()),
        };
        table.push(format!("| {} | {} | {} | {} |", i + 1, case.name, case.expect.describe(), observed));
        if let Err(why) = result {
            failures.push(format!("{}: {}", case.name, why.chars().take(600).collect::<String>()));
        }
    }
    (table.join("\n"), failures)
}

fn limits() -> Limits {
    Limits { max_body_bytes: MAX_BODY, request_timeout: REQUEST_TIMEOUT, ..Limits::default() }
}

/// Runs `cases` against a fresh server and checks that it survived them: a normal review is still answered right,
/// nothing panicked, the accept loop runs, and `internal_error` was never recorded.
async fn survive(label: &str, cases: Vec<Case>) {
    count_panics();
    let panics_before = PANICS.load(Ordering::SeqCst);
    let (server, metrics) = start(app_state(), limits()).await;
    let client = server.client();
    assert_still_serving(&server, &client, "before").await;

    let started = Instant::now();
    let (table, failures) = run(&server, &client, &cases).await;
    eprintln!("{label}: {} bad inputs in {:?}\n{table}", cases.len(), started.elapsed());

    assert_still_serving(&server, &client, "after").await;
    let exposition = metrics.encode();
    let internal = r#"pullsecret_injector_admission_requests_total{outcome="internal_error"}"#;
    assert_eq!(metric(&exposition, internal), None, "a decision panicked: {exposition}");
    assert_eq!(PANICS.load(Ordering::SeqCst), panics_before, "a task panicked while serving the catalogue");
    assert!(server.is_serving(), "the accept loop ended");
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_a_clear_answer_and_the_server_keeps_serving() {
    survive("catalogue", catalogue()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_are_bounded_for_every_input() {
    survive("warning bounds", warning_bound_cases()).await;
}

/// A credential source that fails the way a bug in the decision would: by panicking while a review is decided.
struct PanickingCredentials;

impl CredentialSource for PanickingCredentials {
    fn namespace(&self, _namespace: &str) -> Arc<NamespaceCredentials> {
        std::panic::panic_any(INJECTED_PANIC)
    }
}

/// A panic while deciding (here: in the credential source, which the decision calls) allows the Pod unchanged
/// with a warning, counts `internal_error`, and costs neither the connection's server nor later requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_deciding_allows_the_pod_unchanged() {
    count_panics();
    let state = AppState { credentials: Arc::new(PanickingCredentials), ..app_state() };
    let (server, metrics) = start(state, limits()).await;
    let client = server.client();
    let faulted =
        |uid: &str| case("a panic while deciding", body(&normal_review(uid)), Expect::Skipped("internal error"));
    for uid in ["fault-1", "fault-2"] {
        let case = faulted(uid);
        let answer = tokio::time::timeout(WAIT, send(&server, &client, &case.send)).await.expect("an answer");
        check(&case, &answer).unwrap_or_else(|why| panic!("{uid}: {why}"));
    }
    let exposition = metrics.encode();
    let internal = r#"pullsecret_injector_admission_requests_total{outcome="internal_error"}"#;
    assert_eq!(metric(&exposition, internal), Some(2.0), "{exposition}");
    assert!(server.is_serving(), "the accept loop ended");
}

/// `--max-connections`: at the limit a new client is not left waiting while others keep connections they do not
/// use: the connection idle the longest is closed to make room, the others keep being served. A connection whose
/// request the webhook is working on is never closed: while every connection is busy, a new client waits in the
/// listen backlog (its TLS handshake does not start) until one is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_limit_idle_connections_make_room_and_busy_ones_are_kept() {
    // A stand-in for the webhook that reports each request as it arrives with the handle that answers it: the test
    // decides which request is answered when (a shared FIFO gate would answer whichever handler queued first, not
    // necessarily the one that arrived first).
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel::<tokio::sync::oneshot::Sender<()>>();
    let app = axum::Router::new().route(
        "/mutate",
        // Like the webhook's handler, it starts once the body has arrived whole.
        axum::routing::post(move |_body: axum::body::Bytes| {
            let arrived_tx = arrived_tx.clone();
            async move {
                let (release, released) = tokio::sync::oneshot::channel();
                let _ = arrived_tx.send(release);
                let _ = released.await;
                "released"
            }
        }),
    );
    // Requests are held as long as the test needs: the request timeout must not answer them first.
    let server = start_app(app, Limits { max_connections: 2, request_timeout: 6 * WAIT, ..limits() }).await;
    let body = to_body(&normal_review("held"));
    let request = [request_head(body.len()).into_bytes(), body].concat();
    let open = async || BufReader::new(tokio::time::timeout(WAIT, server.connect()).await.unwrap().unwrap());
    let mut send = async |conn: &mut BufReader<TlsStream<TcpStream>>| {
        conn.get_mut().write_all(&request).await.unwrap();
        conn.get_mut().flush().await.unwrap();
        tokio::time::timeout(WAIT, arrived.recv()).await.expect("the request reaches the handler").unwrap()
    };
    let answered = async |conn: &mut BufReader<TlsStream<TcpStream>>| {
        matches!(tokio::time::timeout(WAIT, read_response(conn)).await, Ok(Answer::Http { status: 200, .. }))
    };
    let closed = async |conn: &mut BufReader<TlsStream<TcpStream>>| {
        matches!(tokio::time::timeout(WAIT, conn.read(&mut [0; 64])).await, Ok(Ok(0) | Err(_)))
    };
    let release = |handle: tokio::sync::oneshot::Sender<()>| handle.send(()).expect("the handler waits");

    // Both connections busy: the third client's handshake waits.
    let (mut first, mut second) = (open().await, open().await);
    let first_request = send(&mut first).await;
    let second_request = send(&mut second).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls::client_config(&[&server.bundle]));
    let mut third =
        tokio::spawn(async move { connector.connect(ServerName::try_from(SERVER_NAME).unwrap(), tcp).await });
    let waited = tokio::time::timeout(Duration::from_millis(500), &mut third).await;
    assert!(waited.is_err(), "a third connection was accepted while both were busy");

    // The first is answered and turns idle: it makes room (closed after its answer); the busy second is kept.
    release(first_request);
    assert!(answered(&mut first).await, "the first request is answered");
    let third = tokio::time::timeout(WAIT, third).await.expect("accepted once a connection was idle").unwrap();
    let mut third = BufReader::new(third.expect("TLS handshake"));
    assert!(closed(&mut first).await, "the idle connection was closed to make room");
    release(second_request);
    assert!(answered(&mut second).await, "the busy connection was kept and answered");
    let third_request = send(&mut third).await;
    release(third_request);
    assert!(answered(&mut third).await, "the newcomer is served");

    // Both idle now (second, then third, answered): a newcomer gets in (within WAIT, far below the 30 s idle
    // timeout, so by making room), in place of the one idle longer.
    let mut fourth = open().await;
    assert!(closed(&mut second).await, "the connection idle the longest made room");
    let (third_request, fourth_request) = (send(&mut third).await, send(&mut fourth).await);
    release(third_request);
    release(fourth_request);
    assert!(answered(&mut third).await && answered(&mut fourth).await, "the others keep being served");
}
