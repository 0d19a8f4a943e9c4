//! The webhook server, end to end (docs/contract.md, `serve`).
//!
//! In process: the real routers (`webhook_router`, `admin_router`) driven with `oneshot`, and the real TLS accept
//! loop (`serve_https`) on 127.0.0.1:0, reached by reqwest (an ordinary HTTPS client) and by a minimal HTTP/1.1
//! client over tokio-rustls wherever a test must own the bytes and the connection: keep-alive, the peer
//! certificate, a body sent in halves, headers sent one byte at a time.
//!
//! The binary: `pullsecret-injector serve` in local mode (`--secrets-dir`, certificates from its own `certs`
//! subcommand), its SIGTERM sequence, its reload of the directory, and its startup errors.
//!
//! The AdmissionReview bodies are real captures; `tests/data/server/INDEX.md` names their sources.

mod common;

use std::ffi::OsString;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pullsecret_injector::core::decision::Policy;
use pullsecret_injector::serve::certs::Bundle;
use pullsecret_injector::serve::config::Limits;
use pullsecret_injector::serve::http::{self, AppState, CREDENTIALS_NOT_LOADED};
use pullsecret_injector::sources::live::{CERTIFICATE, Readiness};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tower::ServiceExt as _;

use common::binary::{self, Options, Served, dev_certs};
use common::review::{self, to_body};
use common::tls::{
    self, Conn, Connections, Response, SERVER_NAME, TlsServer, bundle, https_client, leaf, post_reqwest, request_head,
    until_closed,
};
use common::{bounded, metric};

// --- Fixtures ----------------------------------------------------------------------------------------

const NGINX_KUBECTL: &[u8] = include_bytes!("data/server/cloud-custodian_cloud-custodian_nginx-kubectl-apply.json");
const GKE_ECHO: &[u8] = include_bytes!("data/server/kube-rs_kube_gke-echo-pod.json");
const DRYRUN_MINIMAL: &[u8] = include_bytes!("data/server/normalzzz_webhook-learning_dryrun-minimal.json");
const MALFORMED_NO_UID: &[u8] =
    include_bytes!("data/server/rtisma_admission-controller-webhook-demo_malformed-no-uid.json");
const REPLICASET_INIT: &[u8] =
    include_bytes!("data/server/salesforce_generic-sidecar-injector_replicaset-initcontainers.json");

/// Pull Secrets for the fixtures' namespaces (fake credentials). Each namespace also holds a Secret that matches
/// none of its Pod's images, so an injector that added everything would fail.
const SECRETS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: dockerhub, namespace: default}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"https://index.docker.io/v1/":{"username":"hub-user","password":"example-password-1"}}}'
---
apiVersion: v1
kind: Secret
metadata: {name: quay, namespace: default}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"quay.io":{"username":"quay-user","password":"example-password-2"}}}'
---
apiVersion: v1
kind: Secret
metadata: {name: hub, namespace: colin-coder}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"https://index.docker.io/v1/":{"username":"colin","password":"example-password-3"}}}'
---
apiVersion: v1
kind: Secret
metadata: {name: gcr, namespace: keymaker}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"gcr.io":{"username":"_json_key","password":"example-password-4"}}}'
---
apiVersion: v1
kind: Secret
metadata: {name: ecr, namespace: keymaker}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"791719295754.dkr.ecr.us-east-2.amazonaws.com":{"username":"AWS","password":"example-password-5"}}}'
---
apiVersion: v1
kind: Secret
metadata: {name: unrelated, namespace: keymaker}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"registry.example.com":{"username":"someone","password":"example-password-6"}}}'
"#;

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// `review` with `request.namespace` replaced.
fn in_namespace(review: &[u8], namespace: &str) -> Vec<u8> {
    let mut review = json(review);
    review["request"]["namespace"] = json!(namespace);
    to_body(&review)
}

/// A Pod CREATE review of a Pod with these images, in namespace `default`.
fn pod_review(uid: &str, images: &[&str]) -> Vec<u8> {
    to_body(&review::pod_review(uid, "default", images))
}

/// The state `serve` builds, over `yaml`'s manifests; ready unless told otherwise.
fn app_state(yaml: &str) -> AppState {
    common::app_state("secrets.yaml", yaml)
}

/// Checks a 200 AdmissionReview answer to `request` and returns the names its patch adds to the Pod (empty when
/// there is no patch), after applying the patch to the request's object: the patch must touch nothing else.
fn injected(request: &[u8], response: &[u8]) -> Vec<String> {
    let (request, response) = (json(request), json(response));
    assert_eq!(response["apiVersion"], "admission.k8s.io/v1", "{response}");
    assert_eq!(response["kind"], "AdmissionReview", "{response}");
    let answer = &response["response"];
    assert_eq!(answer["uid"], request["request"]["uid"], "the answer carries the request's uid");
    assert_eq!(answer["allowed"], true, "{response}");
    let pod = review::patched_pod(&request, &response);
    if answer.get("patch").is_none() {
        return Vec::new();
    }
    assert!(pod["spec"]["imagePullSecrets"].is_array(), "the patched Pod lists imagePullSecrets: {pod}");
    let names = review::pull_secret_names(&pod);
    let mut untouched = pod;
    untouched["spec"].as_object_mut().unwrap().remove("imagePullSecrets");
    assert_eq!(untouched, request["request"]["object"], "the patch changes nothing but imagePullSecrets");
    names
}

/// `request` with its object replaced by the object patched per `response`.
fn reinvocation(request: &[u8], response: &[u8]) -> Vec<u8> {
    let mut request = json(request);
    let answer = &json(response)["response"];
    let patch = STANDARD.decode(answer["patch"].as_str().unwrap()).unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    json_patch::patch(&mut request["request"]["object"], &patch).unwrap();
    to_body(&request)
}

fn warnings(response: &[u8]) -> Vec<String> {
    json(response)["response"]["warnings"]
        .as_array()
        .map(|w| w.iter().map(|w| w.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

// --- A: the routers, in process ----------------------------------------------------------------------

async fn call(router: Router, request: Request<Body>) -> (StatusCode, header::HeaderMap, Bytes) {
    let response = router.oneshot(request).await.expect("a Router never fails");
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.expect("the response body");
    (parts.status, parts.headers, body)
}

fn post_mutate(body: impl Into<Body>) -> Request<Body> {
    Request::post("/mutate").header(header::CONTENT_TYPE, "application/json").body(body.into()).unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn real_reviews_get_exactly_the_matching_secrets() {
    let router = http::webhook_router(app_state(SECRETS), Limits::default());
    let cases: [(&str, Vec<u8>, &[&str]); 6] = [
        ("kubectl apply of nginx (Docker Hub)", NGINX_KUBECTL.to_vec(), &["dockerhub"]),
        ("GKE capture, jmalloc/echo-server", GKE_ECHO.to_vec(), &["hub"]),
        ("dry run, nginx:stable-perl", DRYRUN_MINIMAL.to_vec(), &["dockerhub"]),
        // Init containers come first (ECR), then the GCR container; `unrelated` matches neither.
        ("ReplicaSet Pod, generateName, ECR + GCR", REPLICASET_INIT.to_vec(), &["ecr", "gcr"]),
        ("no Secret in the namespace", in_namespace(REPLICASET_INIT, "elsewhere"), &[]),
        ("only a Secret for another registry", in_namespace(GKE_ECHO, "keymaker"), &[]),
    ];
    for (label, request, expected) in cases {
        let (status, headers, body) = call(router.clone(), post_mutate(request.clone())).await;
        assert_eq!(status, StatusCode::OK, "{label}: {}", String::from_utf8_lossy(&body));
        assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{label}");
        assert_eq!(injected(&request, &body), expected, "{label}");
        if expected.is_empty() {
            continue;
        }
        // Reinvocation (or a retry) of the patched Pod is a no-op (docs/contract.md: minimal, idempotent patches).
        let again = reinvocation(&request, &body);
        let (status, _, body) = call(router.clone(), post_mutate(again.clone())).await;
        assert_eq!(status, StatusCode::OK, "{label}, reinvoked");
        assert_eq!(injected(&again, &body), Vec::<String>::new(), "{label}, reinvoked");
    }
}

/// Issue 12 item 3: images without a credential are allowed; they are warned about only where someone can act (here
/// no key of the namespace names their registries), or under `--warn-unmatched`.
#[tokio::test]
async fn private_images_without_a_credential_are_allowed_and_warned_about_under_warn_unmatched() {
    let request = in_namespace(REPLICASET_INIT, "elsewhere");
    let router = http::webhook_router(app_state(SECRETS), Limits::default());
    let (status, _, body) = call(router, post_mutate(request.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(warnings(&body), Vec::<String>::new(), "no key names their registries: nothing to act on");

    let mut state = app_state(SECRETS);
    let warn = ["*.dkr.ecr.*.amazonaws.com", "gcr.io"].map(|p| p.parse().unwrap()).to_vec();
    state.policy = Arc::new(Policy { warn_unmatched: warn, ..Policy::default() });
    let (status, _, body) = call(http::webhook_router(state, Limits::default()), post_mutate(request)).await;
    assert_eq!(status, StatusCode::OK);
    let warnings = warnings(&body);
    for image in ["791719295754.dkr.ecr.us-east-2.amazonaws.com/dva/pki_aws_bootstrap:6", "gcr.io/gsf-mgmt"] {
        assert!(warnings.iter().any(|w| w.contains(image)), "a warning names {image}: {warnings:?}");
    }
    assert!(warnings.iter().all(|w| w.starts_with("pullsecret-injector: ")), "{warnings:?}");
}

#[tokio::test]
async fn malformed_reviews_are_rejected_as_the_contract_says() {
    let router = http::webhook_router(app_state(SECRETS), Limits::default());

    // No uid: HTTP 400 and one line of reason.
    let (status, headers, body) = call(router.clone(), post_mutate(MALFORMED_NO_UID)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
    let reason = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(reason.lines().count(), 1, "{reason:?}");
    assert!(reason.contains("uid"), "{reason:?}");

    // Not JSON at all: the same.
    let (status, _, body) = call(router.clone(), post_mutate("this is not JSON\n{")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(String::from_utf8_lossy(&body).lines().count(), 1);

    // Not an AdmissionReview but the uid is readable: a refusal carrying the uid and the reason.
    let mut review = json(MALFORMED_NO_UID);
    review["request"]["uid"] = json!("4e9a1c2b-0000-4000-8000-00000000d00d");
    review["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (status, _, body) = call(router.clone(), post_mutate(to_body(&review))).await;
    assert_eq!(status, StatusCode::OK);
    let answer = &json(&body)["response"];
    assert_eq!(answer["uid"], "4e9a1c2b-0000-4000-8000-00000000d00d");
    assert_eq!(answer["allowed"], false);
    assert_eq!(answer["status"]["code"], 400);
    let message = answer["status"]["message"].as_str().unwrap();
    assert!(message.contains("v1beta1") && !message.contains('\n'), "{message:?}");

    // A well-formed review of kind "Pods" (the fixture given a uid): not a Pod CREATE, so it is allowed unchanged
    // with a warning naming the kind; the webhook never blocks for what it does not handle (docs/contract.md).
    let mut review = json(MALFORMED_NO_UID);
    review["request"]["uid"] = json!("4e9a1c2b-0000-4000-8000-00000000beef");
    let request = to_body(&review);
    let (status, _, body) = call(router, post_mutate(request.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(injected(&request, &body), Vec::<String>::new());
    let warnings = warnings(&body);
    assert!(warnings.len() == 1 && warnings[0].contains("Pods"), "{warnings:?}");
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_and_the_limit_itself_is_accepted() {
    let limit = 4096;
    let router = http::webhook_router(app_state(SECRETS), Limits { max_body_bytes: limit, ..Limits::default() });
    // The same review padded with JSON whitespace to exactly `limit` bytes, and to one byte more.
    let padded = |len: usize| {
        let mut body = DRYRUN_MINIMAL.to_vec();
        body.resize(len, b' ');
        body
    };
    let (status, _, body) = call(router.clone(), post_mutate(padded(limit))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(injected(DRYRUN_MINIMAL, &body), ["dockerhub"]);

    let (status, _, _) = call(router.clone(), post_mutate(padded(limit + 1))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Without a Content-Length (chunked), the limit holds as the body streams in.
    let chunks: Vec<Result<Bytes, io::Error>> = vec![Ok(Bytes::from(padded(limit))), Ok(Bytes::from_static(b" "))];
    let (status, _, _) = call(router, post_mutate(Body::from_stream(futures::stream::iter(chunks)))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn readyz_waits_for_every_part_and_turns_503_on_shutdown() {
    let mut state = app_state(SECRETS);
    let readiness = Arc::new(Readiness::waiting_for(&["certificate", "secrets-dir"]));
    state.readiness = readiness.clone();
    let admin = http::admin_router(state);
    let readyz = async || {
        let (status, _, body) = call(admin.clone(), get("/readyz")).await;
        (status, String::from_utf8(body.to_vec()).unwrap())
    };

    let (status, body) = readyz().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("certificate") && body.contains("secrets-dir"), "{body:?}");
    readiness.mark_done("certificate");
    let (status, body) = readyz().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("secrets-dir") && !body.contains("certificate"), "{body:?}");
    readiness.mark_done("secrets-dir");
    assert_eq!(readyz().await.0, StatusCode::OK);
    readiness.start_shutdown();
    let (status, body) = readyz().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("shutting down"), "{body:?}");
    // Liveness is not readiness: the process is still alive while it drains.
    assert_eq!(call(admin, get("/healthz")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_openmetrics_and_count_requests() {
    let state = app_state(SECRETS);
    let admin = http::admin_router(state.clone());
    let webhook = http::webhook_router(state, Limits::default());
    let scrape = async || {
        let (status, headers, body) = call(admin.clone(), get("/metrics")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/openmetrics-text; version=1.0.0; charset=utf-8");
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");
        text
    };
    let patched = r#"pullsecret_injector_admission_requests_total{outcome="patched"}"#;
    let invalid = r#"pullsecret_injector_admission_requests_total{outcome="invalid"}"#;

    let before = scrape().await;
    assert_eq!(metric(&before, patched).unwrap_or(0.0), 0.0);
    assert_eq!(metric(&before, r#"pullsecret_injector_cache_objects{kind="secrets"}"#), Some(6.0), "{before}");

    assert_eq!(call(webhook.clone(), post_mutate(REPLICASET_INIT)).await.0, StatusCode::OK);
    assert_eq!(call(webhook.clone(), post_mutate(NGINX_KUBECTL)).await.0, StatusCode::OK);
    assert_eq!(call(webhook, post_mutate(MALFORMED_NO_UID)).await.0, StatusCode::BAD_REQUEST);

    let after = scrape().await;
    assert_eq!(metric(&after, patched), Some(2.0), "{after}");
    assert_eq!(metric(&after, invalid), Some(1.0), "{after}");
    assert_eq!(metric(&after, "pullsecret_injector_injected_secrets_total"), Some(3.0), "{after}");
    assert_eq!(metric(&after, "pullsecret_injector_admission_duration_seconds_count"), Some(3.0), "{after}");
    // Labels never carry Secret names, namespaces or credentials.
    for secret in ["example-password", "keymaker", "dockerhub\""] {
        assert!(!after.contains(secret), "{secret} in /metrics");
    }
}

/// Issue 11, class 7: before the credentials' first sync the webhook knows no Secret. A Pod CREATE is then allowed
/// unchanged with one warning and counted, never decided: no "pulled anonymously" warning, no denial by
/// `--deny-unmatched`. Reviews of anything else get their usual answer. Once synced, the same reviews are decided.
#[tokio::test]
async fn reviews_are_decided_only_once_the_credentials_are_loaded() {
    let mut state = app_state(SECRETS);
    state.policy =
        Arc::new(Policy { deny_unmatched: vec!["gcr.io".parse().unwrap()], audit_only: false, ..Policy::default() });
    let readiness = Arc::new(Readiness::waiting_for(&[CERTIFICATE, "secrets", "namespaces"]));
    readiness.mark_done(CERTIFICATE);
    readiness.mark_done("secrets");
    state.readiness = readiness.clone();
    let webhook = http::webhook_router(state.clone(), Limits::default());
    let admin = http::admin_router(state);
    // Would be patched; would be denied (its gcr.io image has no credential in `elsewhere`).
    let denied = in_namespace(REPLICASET_INIT, "elsewhere");
    let mut not_a_pod = json(MALFORMED_NO_UID);
    not_a_pod["request"]["uid"] = json!("4e9a1c2b-0000-4000-8000-00000000beef");
    let not_a_pod = to_body(&not_a_pod);
    let expected_warning = format!("pullsecret-injector: {CREDENTIALS_NOT_LOADED}");

    for request in [NGINX_KUBECTL.to_vec(), denied.clone()] {
        let (status, _, body) = call(webhook.clone(), post_mutate(request.clone())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(injected(&request, &body), Vec::<String>::new(), "allowed, unchanged");
        assert_eq!(warnings(&body), std::slice::from_ref(&expected_warning));
    }
    let (status, _, body) = call(webhook.clone(), post_mutate(not_a_pod.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(warnings(&body)[0].contains("Pods"), "the usual answer: {:?}", warnings(&body));
    assert_eq!(call(webhook.clone(), post_mutate(MALFORMED_NO_UID)).await.0, StatusCode::BAD_REQUEST);
    let (_, _, text) = call(admin.clone(), get("/metrics")).await;
    let text = String::from_utf8(text.to_vec()).unwrap();
    let not_loaded = r#"pullsecret_injector_admission_requests_total{outcome="credentials_not_loaded"}"#;
    assert_eq!(metric(&text, not_loaded), Some(2.0), "{text}");
    assert_eq!(metric(&text, r#"pullsecret_injector_admission_requests_total{outcome="denied"}"#), None);
    assert_eq!(metric(&text, r#"pullsecret_injector_admission_requests_total{outcome="skipped"}"#), Some(1.0));

    // Synced: the same reviews are decided, the policy applies.
    readiness.mark_done("namespaces");
    let (_, _, body) = call(webhook.clone(), post_mutate(NGINX_KUBECTL)).await;
    assert_eq!(injected(NGINX_KUBECTL, &body), ["dockerhub"]);
    let (_, _, body) = call(webhook, post_mutate(denied)).await;
    assert_eq!(json(&body)["response"]["allowed"], false, "denied by --deny-unmatched once synced");
}

// --- A: the TLS server, in process -------------------------------------------------------------------

fn fast_limits() -> Limits {
    Limits { header_read_timeout: Duration::from_millis(500), ..Limits::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_reviews_over_keep_alive_connections() {
    let first = bundle("webhook.test");
    let app = http::webhook_router(app_state(SECRETS), Limits::default());
    let server = TlsServer::start(&first, app, Limits::default(), Duration::from_secs(5)).await;

    // An ordinary client (reqwest, rustls, the test CA as the only root), by IP and by name.
    let client = https_client(&[&first], Connections::Reused);
    for request in [NGINX_KUBECTL, REPLICASET_INIT] {
        let (status, body, served) = bounded("reqwest", post_reqwest(&client, &server.url(), request)).await.unwrap();
        assert_eq!(status, 200);
        assert!(!injected(request, &body).is_empty());
        assert_eq!(served, leaf(&first));
    }

    // Several requests on one connection, each answered in order on it.
    let mut conn = bounded("connect", Conn::open(server.addr, &[&first], "webhook.test")).await.unwrap();
    for (request, expected) in [
        (GKE_ECHO, &["hub"][..]),
        (REPLICASET_INIT, &["ecr", "gcr"]),
        (MALFORMED_NO_UID, &[]),
        (DRYRUN_MINIMAL, &["dockerhub"]),
    ] {
        let response = bounded("keep-alive request", conn.post(request)).await.unwrap();
        if request == MALFORMED_NO_UID {
            // A 400 does not cost the connection.
            assert_eq!(response.status, 400);
            continue;
        }
        assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
        assert_eq!(injected(request, &response.body), expected);
        assert_ne!(response.header("connection"), Some("close"));
    }

    // A client that trusts another CA, or asks for another name, is refused by its own TLS verification.
    let stranger = bundle("webhook.test");
    assert!(Conn::open(server.addr, &[&stranger], "webhook.test").await.is_err());
    assert!(Conn::open(server.addr, &[&first], "other.test").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_serves_new_connections_while_old_ones_keep_working() {
    let (first, second) = (bundle("first.test"), bundle("second.test"));
    let app = http::webhook_router(app_state(SECRETS), Limits::default());
    let server = TlsServer::start(&first, app, Limits::default(), Duration::from_secs(5)).await;
    let fingerprint_before = server.certs.fingerprint();

    let mut old = bounded("connect", Conn::open(server.addr, &[&first], "first.test")).await.unwrap();
    assert_eq!(old.peer_leaf(), leaf(&first));
    assert_eq!(bounded("request", old.post(NGINX_KUBECTL)).await.unwrap().status, 200);

    server.rotate(&second);
    assert_ne!(server.certs.fingerprint(), fingerprint_before);

    // A new connection gets the new certificate: it verifies against the new CA for the new DNS name only.
    let mut new = bounded("connect", Conn::open(server.addr, &[&second], "second.test")).await.unwrap();
    assert_eq!(new.peer_leaf(), leaf(&second));
    assert_eq!(bounded("request", new.post(GKE_ECHO)).await.unwrap().status, 200);
    assert!(Conn::open(server.addr, &[&first, &second], "first.test").await.is_err(), "first.test is gone");
    let (status, _, served) = bounded(
        "reqwest",
        post_reqwest(&https_client(&[&second], Connections::FullHandshake), &server.url(), DRYRUN_MINIMAL),
    )
    .await
    .unwrap();
    assert_eq!((status, served), (200, leaf(&second)));

    // The connection opened before the rotation keeps its session and keeps being answered.
    for request in [REPLICASET_INIT, DRYRUN_MINIMAL] {
        let response = bounded("request on the old connection", old.post(request)).await.unwrap();
        assert_eq!(response.status, 200);
        assert!(!injected(request, &response.body).is_empty());
    }
    assert_eq!(old.peer_leaf(), leaf(&first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_five_times_under_load_fails_no_request() {
    const ROTATIONS: usize = 5;
    /// Requests of the handshaking worker between two rotations; from the second on, each started after the swap.
    const AFTER_EACH_ROTATION: usize = 10;
    /// Bound of each worker's requests, far above what the rotations need.
    const MAX_PER_WORKER: usize = 2_000;
    let bundles: Vec<Bundle> = (0..=ROTATIONS).map(|i| bundle(&format!("gen{i}.test"))).collect();
    let trusted: Vec<&Bundle> = bundles.iter().collect();
    let app = http::webhook_router(app_state(SECRETS), Limits::default());
    let server = TlsServer::start(&bundles[0], app, Limits::default(), Duration::from_secs(5)).await;

    let (stop_tx, stop) = watch::channel(false);
    let (progress_tx, mut progress) = watch::channel(0usize);
    let spawn_worker = |client: reqwest::Client, progress_tx: Option<watch::Sender<usize>>| {
        let (url, stop) = (server.url(), stop.clone());
        tokio::spawn(async move {
            let (mut failures, mut served) = (Vec::new(), Vec::new());
            while !*stop.borrow() && served.len() + failures.len() < MAX_PER_WORKER {
                match post_reqwest(&client, &url, REPLICASET_INIT).await {
                    Ok((200, body, leaf)) if injected(REPLICASET_INIT, &body) == ["ecr", "gcr"] => served.push(leaf),
                    Ok((status, body, _)) => failures.push(format!("{status}: {}", String::from_utf8_lossy(&body))),
                    Err(error) => failures.push(format!("{error:?}")),
                }
                if let Some(progress) = &progress_tx {
                    progress.send_replace(served.len() + failures.len());
                }
            }
            (failures, served)
        })
    };
    // One worker makes a full handshake per request, so it sees every generation; the others connect the way
    // real clients do: a new connection resuming the TLS session, and one connection kept alive.
    let handshaking = spawn_worker(https_client(&trusted, Connections::FullHandshake), Some(progress_tx));
    let others = [
        spawn_worker(https_client(&trusted, Connections::New), None),
        spawn_worker(https_client(&trusted, Connections::Reused), None),
    ];

    for next in &bundles[1..] {
        let target = *progress.borrow() + AFTER_EACH_ROTATION;
        bounded("requests between rotations", progress.wait_for(|n| *n >= target)).await.expect("worker alive");
        server.rotate(next);
    }
    let target = *progress.borrow() + AFTER_EACH_ROTATION;
    bounded("requests after the last rotation", progress.wait_for(|n| *n >= target)).await.expect("worker alive");
    stop_tx.send(true).unwrap();

    let (failures, handshaken) = bounded("handshaking worker", handshaking).await.unwrap();
    assert!(failures.is_empty(), "failed requests with a full handshake each: {failures:#?}");
    for worker in others {
        let (failures, served) = bounded("load worker", worker).await.unwrap();
        assert!(failures.is_empty(), "failed requests: {failures:#?}");
        assert!(!served.is_empty());
    }
    // Every generation was served to the new connections that followed its rotation.
    for (i, bundle) in bundles.iter().enumerate() {
        assert!(handshaken.contains(&leaf(bundle)), "generation {i} was never served");
    }
}

/// The webhook's router over [`SECRETS`] on a TLS server that drains for at most `drain`, reporting each request as
/// soon as its headers are in (before its body is read).
async fn reporting_server(drain: Duration) -> (TlsServer, mpsc::UnboundedReceiver<()>) {
    let (arrived_tx, arrived) = mpsc::unbounded_channel();
    let router = http::webhook_router(app_state(SECRETS), Limits::default()).layer(tower::util::MapRequestLayer::new(
        move |request: Request<Body>| {
            let _ = arrived_tx.send(());
            request
        },
    ));
    (TlsServer::start(&bundle(SERVER_NAME), router, Limits::default(), drain).await, arrived)
}

/// Sends the head of a `POST /mutate` of `body` and only its first `sent` bytes.
async fn send_partly(conn: &mut Conn, body: &[u8], sent: usize) {
    let mut head = request_head(body.len()).into_bytes();
    head.extend_from_slice(&body[..sent]);
    conn.send(&head).await.unwrap();
}

async fn refused(addr: SocketAddr) {
    loop {
        match TcpStream::connect(addr).await {
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => return,
            // Queued in the backlog of a listener about to close, then reset with it: not yet refused.
            Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_request_in_flight_then_returns() {
    let drain = Duration::from_secs(10);
    let (mut server, mut arrived) = reporting_server(drain).await;

    // An idle keep-alive connection, which must not hold the drain up.
    let mut idle = connect(&server).await;
    assert_eq!(bounded("request", idle.post(GKE_ECHO)).await.unwrap().status, 200);
    bounded("arrival", arrived.recv()).await.unwrap();

    // A request whose body stops halfway.
    let mut slow = connect(&server).await;
    let half = REPLICASET_INIT.len() / 2;
    send_partly(&mut slow, REPLICASET_INIT, half).await;
    bounded("the slow request reaches the router", arrived.recv()).await.unwrap();

    let stopping = Instant::now();
    server.shutdown();
    bounded("the listener closes", refused(server.addr)).await;
    bounded("the idle connection is closed", idle.closed()).await;

    slow.send(&REPLICASET_INIT[half..]).await.unwrap();
    let response = bounded("the in-flight response", slow.read_response()).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(injected(REPLICASET_INIT, &response.body), ["ecr", "gcr"]);

    bounded("serve_https returns", server.task.take().unwrap()).await.unwrap();
    assert!(stopping.elapsed() < drain / 2, "returned once drained, not at the bound: {:?}", stopping.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_up_on_a_stuck_request_at_the_drain_bound() {
    let drain = Duration::from_millis(700);
    let (mut server, mut arrived) = reporting_server(drain).await;

    let mut stuck = connect(&server).await;
    send_partly(&mut stuck, DRYRUN_MINIMAL, 10).await;
    bounded("arrival", arrived.recv()).await.unwrap();

    let stopping = Instant::now();
    server.shutdown();
    bounded("serve_https returns", server.task.take().unwrap()).await.unwrap();
    let took = stopping.elapsed();
    assert!(took >= drain - Duration::from_millis(50), "returned before the drain bound: {took:?}");
    assert!(took < drain + Duration::from_secs(2), "returned long after the drain bound: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_is_cut_off_while_others_are_served() {
    let limits = fast_limits();
    let server = webhook_server(limits).await;
    let certificate = server.bundle.clone();

    let slow = connect(&server).await;
    let opened = Instant::now();
    let (mut reader, mut writer) = tokio::io::split(slow.io);
    let closed = tokio::spawn(async move {
        let mut buf = [0; 256];
        while let Ok(1..) = reader.read(&mut buf).await {}
        opened.elapsed()
    });
    // Headers one byte every 20 ms, never ending them (for at most 8 s).
    let dripping = tokio::spawn(async move {
        let header = b"POST /mutate HTTP/1.1\r\nHost: webhook.test\r\nX-Slow: ";
        for byte in header.iter().chain(std::iter::repeat(&b'a')).take(400) {
            if writer.write_all(&[*byte]).await.is_err() || writer.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    let client = https_client(&[&certificate], Connections::New);
    let mut first_served = None;
    for request in [NGINX_KUBECTL, GKE_ECHO, REPLICASET_INIT] {
        let (status, body, _) = bounded("request", post_reqwest(&client, &server.url(), request)).await.unwrap();
        assert_eq!(status, 200);
        assert!(!injected(request, &body).is_empty());
        first_served.get_or_insert(opened.elapsed());
    }

    let lived = bounded("the slow connection is closed", closed).await.unwrap();
    assert_cut_off_at_the_header_timeout(lived);
    let first_served = first_served.unwrap();
    assert!(first_served < lived, "served at {first_served:?}, while the slow client held its connection ({lived:?})");
    dripping.abort();
}

/// The webhook's router over [`SECRETS`] on a TLS server with a certificate for [`SERVER_NAME`].
async fn webhook_server(limits: Limits) -> TlsServer {
    let app = http::webhook_router(app_state(SECRETS), limits);
    TlsServer::start(&bundle(SERVER_NAME), app, limits, Duration::from_secs(5)).await
}

/// A connection to `server` for requests written by hand.
async fn connect(server: &TlsServer) -> Conn {
    bounded("connect", server.conn()).await.expect("a TLS connection")
}

fn assert_cut_off_at_the_header_timeout(lived: Duration) {
    assert!(lived >= Duration::from_millis(450), "closed before the timeout: {lived:?}");
    assert!(lived < Duration::from_secs(3), "closed long after the timeout: {lived:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_starts_the_handshake_is_cut_off() {
    let server = webhook_server(fast_limits()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let opened = Instant::now();
    let read = bounded("a silent TCP client is closed", tcp.read(&mut [0; 64])).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_cut_off_at_the_header_timeout(opened.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_silent_after_the_handshake_is_cut_off() {
    let server = webhook_server(fast_limits()).await;
    let tls = connect(&server).await;
    let opened = Instant::now();
    bounded("a silent TLS client is closed", tls.closed()).await;
    assert_cut_off_at_the_header_timeout(opened.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_the_request_timeout_gets_408() {
    let limits = Limits { request_timeout: Duration::from_millis(500), ..Limits::default() };
    let server = webhook_server(limits).await;

    let mut conn = connect(&server).await;
    send_partly(&mut conn, DRYRUN_MINIMAL, 100).await;
    let started = Instant::now();
    let response = bounded("the timeout response", conn.read_response()).await.unwrap();
    assert_eq!(response.status, 408);
    assert!(started.elapsed() >= Duration::from_millis(450), "{:?}", started.elapsed());
}

// --- A: connection guards (issue 11, class 2), in process --------------------------------------------

/// A TLS connection to `addr` offering `alpn`, trusting `bundle`'s CA, as `webhook.test`.
async fn tls_connect(addr: SocketAddr, bundle: &Bundle, alpn: &[&[u8]]) -> io::Result<TlsStream<TcpStream>> {
    tls::tls_connect(addr, &[bundle], SERVER_NAME, alpn).await
}

/// A real HTTP/2 client connection (the `h2` crate): its request handle, its PING handle, and the task driving it,
/// which ends when the server closes the connection.
struct H2 {
    send: h2::client::SendRequest<Bytes>,
    ping: h2::PingPong,
    driver: JoinHandle<Result<(), h2::Error>>,
}

async fn h2_connect(addr: SocketAddr, bundle: &Bundle) -> H2 {
    let tls = tls_connect(addr, bundle, &[b"h2"]).await.expect("TLS");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "HTTP/2 negotiated");
    let (send, mut connection) = h2::client::handshake(tls).await.expect("HTTP/2 handshake");
    let ping = connection.ping_pong().expect("the PING handle");
    H2 { send, ping, driver: tokio::spawn(connection) }
}

/// POST /mutate on its own stream; the status and the body.
async fn h2_post(send: &h2::client::SendRequest<Bytes>, body: &[u8]) -> Result<(u16, Vec<u8>), h2::Error> {
    let mut send = send.clone().ready().await?;
    let request = Request::post("https://webhook.test/mutate").header(header::CONTENT_TYPE, "application/json");
    let (response, mut stream) = send.send_request(request.body(()).unwrap(), false)?;
    stream.send_data(Bytes::copy_from_slice(body), true)?;
    let response = response.await?;
    let status = response.status().as_u16();
    let mut incoming = response.into_body();
    let mut answer = Vec::new();
    while let Some(chunk) = incoming.data().await {
        let chunk = chunk?;
        incoming.flow_control().release_capacity(chunk.len())?;
        answer.extend_from_slice(&chunk);
    }
    Ok((status, answer))
}

/// A router whose `/mutate` answers only when the test adds permits to the returned semaphore (one per answer; which
/// waiting request a permit answers is not defined), and reports each request once its body is in (as the webhook's
/// handler starts).
fn gated_router() -> (Router, Arc<tokio::sync::Semaphore>, mpsc::UnboundedReceiver<()>) {
    let (arrived_tx, arrived) = mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let gate = release.clone();
    let router = Router::new().route(
        "/mutate",
        axum::routing::post(move |_body: Bytes| {
            let (gate, arrived_tx) = (gate.clone(), arrived_tx.clone());
            async move {
                let _ = arrived_tx.send(());
                gate.acquire().await.expect("never closed").forget();
                "released"
            }
        }),
    );
    (router, release, arrived)
}

/// Ways to hold a connection without completing a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// TCP only, no TLS handshake.
    Tcp,
    /// The TLS handshake, then nothing.
    Tls,
    /// HTTP/2: the connection preface and an empty SETTINGS frame, then nothing (issue 11's attack).
    H2Preface,
    /// HTTP/1.1: headers never ended.
    H1Headers,
    /// HTTP/1.1: complete headers, the body stopped after 100 bytes.
    H1Body,
}

async fn hold(addr: SocketAddr, bundle: &Bundle, how: Hold) -> io::Result<Box<dyn AsyncRead + Unpin + Send>> {
    if how == Hold::Tcp {
        return Ok(Box::new(TcpStream::connect(addr).await?));
    }
    let alpn: &[&[u8]] = if how == Hold::H2Preface { &[b"h2"] } else { &[b"http/1.1"] };
    let mut tls = tls_connect(addr, bundle, alpn).await?;
    let bytes = match how {
        Hold::Tcp | Hold::Tls => Vec::new(),
        Hold::H2Preface => [&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..], &[0, 0, 0, 4, 0, 0, 0, 0, 0]].concat(),
        Hold::H1Headers => {
            b"POST /mutate HTTP/1.1\r\nHost: webhook.test\r\nContent-Type: application/json\r\n".to_vec()
        }
        Hold::H1Body => [request_head(NGINX_KUBECTL.len()).as_bytes(), &NGINX_KUBECTL[..100]].concat(),
    };
    tls.write_all(&bytes).await?;
    tls.flush().await?;
    Ok(Box::new(tls))
}

/// Issue 11, class 2: connections that never complete a request (idle HTTP/2 connections, silent TCP or TLS
/// clients, headers or a body that stop) cannot take the webhook down. With every slot of `--max-connections`
/// so held, a review on a new connection is answered at once (the oldest such connection makes room), and each
/// held connection is closed by its deadline at the latest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_held_without_a_request_cannot_stop_the_webhook() {
    const LIMIT: usize = 10;
    let limits = Limits {
        max_connections: LIMIT,
        header_read_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        // Longer than both: the connections below must be cut by the deadline of what they fail to send.
        idle_timeout: Duration::from_secs(3),
        ..Limits::default()
    };
    let server = webhook_server(limits).await;
    let certificate = server.bundle.clone();

    // Every slot held, two of each kind. The last ones complete a TLS handshake: the server has accepted them,
    // so it has accepted every earlier one too.
    let kinds = [Hold::Tcp, Hold::H1Body, Hold::H1Headers, Hold::Tls, Hold::H2Preface];
    let mut held = Vec::new();
    for how in kinds.iter().cycle().take(LIMIT) {
        let stream = bounded("hold a connection", hold(server.addr, &certificate, *how)).await.expect("held");
        let opened = Instant::now();
        held.push((
            *how,
            tokio::spawn(async move {
                until_closed(stream).await;
                opened.elapsed()
            }),
        ));
    }

    let started = Instant::now();
    let client = https_client(&[&certificate], Connections::New);
    let (status, body, _) = bounded("a review", post_reqwest(&client, &server.url(), NGINX_KUBECTL)).await.unwrap();
    let answered_in = started.elapsed();
    assert_eq!(status, 200);
    assert_eq!(injected(NGINX_KUBECTL, &body), ["dockerhub"]);
    // Milliseconds (see the figures printed below); without making room it waits for the first deadline.
    assert!(answered_in < Duration::from_millis(300), "answered after {answered_in:?}: it waited for a slot");

    // Each held connection is closed: to make room, or at the deadline of what it did not send (the first
    // request's headers: the header read timeout; a body: the request timeout, with a 408), never later.
    let mut lifetimes = Vec::new();
    for (how, closed) in held {
        let lived = bounded("a held connection is closed", closed).await.unwrap();
        let deadline = if how == Hold::H1Body { limits.request_timeout } else { limits.header_read_timeout };
        assert!(lived < deadline + Duration::from_millis(400), "{how:?} held for {lived:?}");
        lifetimes.push(format!("{how:?} {}ms", lived.as_millis()));
    }
    eprintln!("review answered in {answered_in:?} with all {LIMIT} slots held; held connections lived: {lifetimes:?}");

    // Afterwards, reviews over HTTP/1.1 and HTTP/2 are answered.
    let (status, body, _) = bounded("a review", post_reqwest(&client, &server.url(), GKE_ECHO)).await.unwrap();
    assert_eq!((status, injected(GKE_ECHO, &body)), (200, vec!["hub".to_owned()]));
    let h2 = h2_connect(server.addr, &certificate).await;
    let (status, body) = bounded("an HTTP/2 review", h2_post(&h2.send, DRYRUN_MINIMAL)).await.unwrap();
    assert_eq!((status, injected(DRYRUN_MINIMAL, &body)), (200, vec!["dockerhub".to_owned()]));
}

/// Issue 11, class 2, as the attacker ran it: one client keeps every slot of `--max-connections` busy with idle
/// HTTP/2 connections (the preface only), opening a new one as soon as one is closed, while the API server sends
/// reviews, each on a new connection. Every review is answered, without waiting for a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reopening_idle_http2_connections_cannot_stop_the_webhook() {
    const LIMIT: usize = 64;
    const REVIEWS: usize = 40;
    let limits = Limits {
        max_connections: LIMIT,
        // Longer than `bounded` waits for a review: a review answered at all was answered without any held
        // connection reaching its deadline (no timing assertion needed).
        header_read_timeout: 3 * common::WAIT,
        ..Limits::default()
    };
    let server = webhook_server(limits).await;
    let certificate = server.bundle.clone();

    let (stop_tx, stop) = watch::channel(false);
    let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut attackers = Vec::new();
    for _ in 0..LIMIT {
        let (stop, opened, certificate) = (stop.clone(), opened.clone(), certificate.clone());
        let addr = server.addr;
        attackers.push(tokio::spawn(async move {
            while !*stop.borrow() {
                if let Ok(stream) = hold(addr, &certificate, Hold::H2Preface).await {
                    opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let mut stop = stop.clone();
                    tokio::select! {
                        () = until_closed(stream) => {}
                        _ = stop.wait_for(|stop| *stop) => {}
                    }
                }
            }
        }));
    }
    // Every slot taken before the first review.
    bounded("the attacker holds every slot", async {
        while opened.load(std::sync::atomic::Ordering::Relaxed) < LIMIT {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    let client = https_client(&[&certificate], Connections::New);
    let mut latencies = Vec::new();
    for _ in 0..REVIEWS {
        let started = Instant::now();
        let (status, body, _) = bounded("a review", post_reqwest(&client, &server.url(), NGINX_KUBECTL)).await.unwrap();
        latencies.push(started.elapsed());
        assert_eq!((status, injected(NGINX_KUBECTL, &body)), (200, vec!["dockerhub".to_owned()]));
    }
    stop_tx.send(true).unwrap();
    for attacker in attackers {
        bounded("the attacker stops", attacker).await.unwrap();
    }
    latencies.sort();
    let (median, max) = (latencies[REVIEWS / 2], latencies[REVIEWS - 1]);
    eprintln!(
        "{REVIEWS} reviews answered while one client held all {LIMIT} slots with idle HTTP/2 connections \
         ({} opened): median {median:?}, max {max:?}",
        opened.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// Issue 11, class 2: an HTTP/2 connection has at most `max_concurrent_streams` requests in progress, and once
/// idle it is closed after the idle timeout with a GOAWAY; the client's PINGs, answered meanwhile, do not keep it
/// open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_are_bounded_and_an_idle_http2_connection_is_closed() {
    let limits = Limits { idle_timeout: Duration::from_millis(700), max_concurrent_streams: 2, ..Limits::default() };
    let certificate = bundle("webhook.test");
    let (app, release, mut arrived) = gated_router();
    let server = TlsServer::start(&certificate, app, limits, Duration::from_secs(5)).await;
    let mut h2 = h2_connect(server.addr, &certificate).await;

    release.add_permits(1);
    let (status, _) = bounded("a first request", h2_post(&h2.send, b"{}")).await.unwrap();
    assert_eq!(status, 200);
    bounded("arrival", arrived.recv()).await.unwrap();
    assert_eq!(h2.send.current_max_send_streams(), 2, "the server's SETTINGS_MAX_CONCURRENT_STREAMS");

    // Three requests at once: two are in progress, the third waits for a stream.
    let requests: Vec<_> = (0..3)
        .map(|_| {
            let send = h2.send.clone();
            tokio::spawn(async move { h2_post(&send, b"{}").await })
        })
        .collect();
    for _ in 0..2 {
        bounded("arrival", arrived.recv()).await.unwrap();
    }
    let third = tokio::time::timeout(Duration::from_millis(300), arrived.recv()).await;
    assert!(third.is_err(), "a third stream was in progress at once");
    release.add_permits(3);
    for request in requests {
        assert_eq!(bounded("answer", request).await.unwrap().unwrap().0, 200);
    }
    let idle_from = Instant::now();

    // Idle: PINGs every 100 ms are answered, and the connection is closed at the idle timeout all the same.
    let mut ping = h2.ping;
    let pinging = tokio::spawn(async move {
        let mut pongs = 0;
        while ping.ping(h2::Ping::opaque()).await.is_ok() {
            pongs += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        pongs
    });
    let ended = bounded("the idle connection is closed", &mut h2.driver).await.unwrap();
    let lived = idle_from.elapsed();
    assert!(ended.is_ok(), "closed gracefully (GOAWAY): {ended:?}");
    assert!(lived >= limits.idle_timeout - Duration::from_millis(100), "closed after {lived:?}");
    assert!(lived < limits.idle_timeout + Duration::from_secs(2), "closed after {lived:?}");
    let pongs = bounded("the pinger ends", pinging).await.unwrap();
    assert!(pongs >= 3, "PINGs were answered while idle: {pongs}");
}

/// An HTTP/1.1 keep-alive connection without a request is closed after the idle timeout, or earlier when the
/// header read timeout is shorter (with HTTP/1.1 it also bounds the wait for the next request's headers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http1_connection_is_closed() {
    let certificate = bundle("webhook.test");
    for (label, limits, expected) in [
        (
            "idle timeout",
            Limits {
                idle_timeout: Duration::from_millis(600),
                header_read_timeout: Duration::from_secs(5),
                ..Limits::default()
            },
            Duration::from_millis(600),
        ),
        (
            "header read timeout",
            Limits {
                idle_timeout: Duration::from_secs(30),
                header_read_timeout: Duration::from_millis(600),
                ..Limits::default()
            },
            Duration::from_millis(600),
        ),
    ] {
        let app = http::webhook_router(app_state(SECRETS), limits);
        let server = TlsServer::start(&certificate, app, limits, Duration::from_secs(5)).await;
        let mut conn = connect(&server).await;
        assert_eq!(bounded("request", conn.post(GKE_ECHO)).await.unwrap().status, 200, "{label}");
        let answered = Instant::now();
        bounded("the idle connection is closed", conn.closed()).await;
        let lived = answered.elapsed();
        assert!(lived >= expected - Duration::from_millis(100), "{label}: closed after {lived:?}");
        assert!(lived < expected + Duration::from_secs(2), "{label}: closed after {lived:?}");
    }
}

/// A Content-Length over `--max-body-bytes` is answered 413 at once, not at the request timeout; a client that
/// sends its oversized body anyway (here 1.5 times the limit) still receives the answer: what it sends is read
/// and discarded instead of the connection being reset under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_body_over_the_limit_gets_413_at_once() {
    let limits = Limits { max_body_bytes: 4096, ..Limits::default() };
    let server = webhook_server(limits).await;

    let mut conn = connect(&server).await;
    conn.send(request_head(8 * 1024 * 1024).as_bytes()).await.unwrap();
    let started = Instant::now();
    let response = bounded("413", conn.read_response()).await.unwrap();
    let took = started.elapsed();
    assert_eq!(response.status, 413);
    assert!(String::from_utf8_lossy(&response.body).contains("--max-body-bytes"));
    assert!(took < Duration::from_secs(1), "answered after {took:?} (request timeout {:?})", limits.request_timeout);
    eprintln!("Content-Length 8 MiB over a 4 KiB limit, no body sent: 413 after {took:?}");

    let conn = connect(&server).await;
    let (reader, mut writer) = tokio::io::split(conn.io);
    let length = limits.max_body_bytes * 3 / 2;
    let oversized = [request_head(length).into_bytes(), vec![b' '; length]].concat();
    let writing = tokio::spawn(async move { writer.write_all(&oversized).await });
    let mut status_line = String::new();
    bounded("the answer to a sent oversized body", BufReader::new(reader).read_line(&mut status_line)).await.unwrap();
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line:?}");
    bounded("the whole body is written", writing).await.unwrap().expect("no reset while the body was sent");
}

// --- B: the binary -----------------------------------------------------------------------------------

/// A Secret as `kubectl create secret docker-registry NAME --docker-server=REGISTRY ... -o yaml --dry-run=client`
/// prints it: base64 `data`, no namespace (the directory's default, `default`, applies).
fn secret_manifest(name: &str, registry: &str) -> String {
    let (user, password) = ("someone", format!("example-password-{name}"));
    let auth = STANDARD.encode(format!("{user}:{password}"));
    let config = json!({"auths": {registry: {"username": user, "password": password, "auth": auth}}});
    format!(
        "apiVersion: v1\ndata:\n  .dockerconfigjson: {}\nkind: Secret\nmetadata:\n  creationTimestamp: null\n  \
         name: {name}\ntype: kubernetes.io/dockerconfigjson\n",
        STANDARD.encode(config.to_string())
    )
}

/// A folder holding a CA and a serving certificate from the binary's `certs` subcommand (`certs/`) and a secrets
/// directory (`secrets/`) with one file, `file`, holding the Secret `name` for `registry`.
fn local_files(file: &str, name: &str, registry: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let certs = dev_certs(dir.path());
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join(file), secret_manifest(name, registry)).unwrap();
    (dir, certs, secrets)
}

/// `serve` in local mode over `secrets_dir`, reloading every 100 ms, with `extra` flags.
fn serve_local(certs: &Path, secrets_dir: &Path, extra: &[&str]) -> Served {
    let mut args = vec![OsString::from("--secrets-dir"), secrets_dir.into()];
    args.extend(["--reload-interval", "100ms"].iter().chain(extra).map(OsString::from));
    Served::start(certs, &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_then_drains_on_sigterm() {
    let (_dir, certs, secrets) = local_files("hub.yaml", "dockerhub", "https://index.docker.io/v1/");
    let mut served = serve_local(&certs, &secrets, &["--shutdown-delay", "2s", "--shutdown-timeout", "6s"]);
    assert!(!served.log().contains('\u{1b}'), "no ANSI colours when stderr is not a terminal");

    served.until_ready().await;
    let (status, body) = served.mutate(NGINX_KUBECTL).await;
    assert_eq!(status, 200);
    assert_eq!(injected(NGINX_KUBECTL, &body), ["dockerhub"]);

    let sigterm = Instant::now();
    served.terminate();
    bounded("/readyz 503 after SIGTERM", async {
        while served.admin_get("/readyz").await.0 != 503 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // During --shutdown-delay the webhook still accepts new connections and answers.
    let (status, body) = served.mutate(DRYRUN_MINIMAL).await;
    assert_eq!(status, 200);
    assert_eq!(injected(DRYRUN_MINIMAL, &body), ["dockerhub"]);
    assert!(sigterm.elapsed() < Duration::from_secs(2), "checked within the delay: {:?}", sigterm.elapsed());

    let status = bounded("exit after SIGTERM", served.exited()).await;
    let took = sigterm.elapsed();
    assert_eq!(status.code(), Some(0), "{}", served.log());
    assert!(took >= Duration::from_millis(1950), "exited before --shutdown-delay: {took:?}");
    assert!(took < Duration::from_secs(6), "exited after --shutdown-timeout: {took:?}");
    let log = served.log();
    assert!(log.contains("shutdown requested") && log.contains("stopped"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reloads_its_secrets_dir_and_keeps_credentials_on_a_broken_file() {
    let (_dir, certs, secrets) = local_files("a.yaml", "first", "registry-a.example.com");
    let served = serve_local(&certs, &secrets, &[]);
    served.until_ready().await;
    let review = pod_review(
        "7d3f0e2a-1111-4000-8000-000000000001",
        &["registry-a.example.com/team/app:1", "registry-b.example.com/team/worker:2"],
    );
    let (status, body) = served.mutate(&review).await;
    assert_eq!(status, 200);
    assert_eq!(injected(&review, &body), ["first"]);

    let success = r#"pullsecret_injector_secrets_dir_reloads_total{result="success"}"#;
    let error = r#"pullsecret_injector_secrets_dir_reloads_total{result="error"}"#;
    std::fs::write(secrets.join("b.yaml"), secret_manifest("second", "registry-b.example.com")).unwrap();
    served.until_metric(success, 1.0).await;
    let (status, body) = served.mutate(&review).await;
    assert_eq!(status, 200);
    assert_eq!(injected(&review, &body), ["first", "second"]);

    std::fs::write(secrets.join("c.yaml"), "apiVersion: v1\nkind: Secret\nmetadata: {name: [unclosed\n").unwrap();
    served.until_metric(error, 1.0).await;
    let (status, body) = served.mutate(&review).await;
    assert_eq!(status, 200);
    assert_eq!(injected(&review, &body), ["first", "second"], "the previous credentials keep working");
    assert_eq!(served.admin_get("/readyz").await.0, 200, "a broken reload does not make the webhook unready");
    let (_, metrics) = served.admin_get("/metrics").await;
    assert_eq!(metric(&metrics, success), Some(1.0), "{metrics}");
    let log = served.log();
    assert!(log.contains("c.yaml"), "the failed reload names the file: {log}");
    assert!(!log.contains("example-password"), "no credential in the log: {log}");
}

/// Issue 7: a certificate file replaced by garbage keeps the old certificate serving, and the failure is logged and
/// counted; a valid new pair afterwards is served and counted as a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_keeps_serving_when_its_certificate_turns_to_garbage() {
    let (_dir, certs, secrets) = local_files("a.yaml", "first", "registry-a.example.com");
    let served = serve_local(&certs, &secrets, &[]);
    served.until_ready().await;
    let review = pod_review("7d3f0e2a-2222-4000-8000-000000000002", &["registry-a.example.com/team/app:1"]);

    let error = r#"pullsecret_injector_tls_reloads_total{result="error"}"#;
    let success = r#"pullsecret_injector_tls_reloads_total{result="success"}"#;
    let original_crt = std::fs::read(certs.join("tls.crt")).unwrap();
    std::fs::write(certs.join("tls.crt"), "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n").unwrap();
    served.until_metric(error, 1.0).await;
    let (status, body) = served.mutate(&review).await;
    assert_eq!(status, 200, "new connections still get the previous certificate");
    assert_eq!(injected(&review, &body), ["first"]);
    assert_eq!(served.admin_get("/readyz").await.0, 200);
    assert!(served.log().contains("serving certificate reload failed"), "{}", served.log());

    std::fs::write(certs.join("tls.crt"), original_crt).unwrap();
    let (_, metrics) = served.admin_get("/metrics").await;
    assert_eq!(metric(&metrics, success), None, "restoring the loaded pair is no change: {metrics}");
    // A genuinely new pair (same CA) is swapped in and counted.
    let bundle =
        pullsecret_injector::serve::certs::generate(&["localhost".into()], &["127.0.0.1".parse().unwrap()], 1).unwrap();
    pullsecret_injector::serve::certs::write_bundle(&certs, &bundle).unwrap();
    served.until_metric(success, 1.0).await;
}

/// Runs `serve` expecting a startup failure; returns the stderr lines. No Kubernetes configuration is reachable.
fn failing_serve(args: &[String]) -> Vec<String> {
    let args: Vec<&str> = std::iter::once("serve").chain(args.iter().map(String::as_str)).collect();
    let run = binary::run_env(&args, None, &[("KUBECONFIG", "/nonexistent/kubeconfig")]);
    assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    run.stderr.lines().map(str::to_owned).collect()
}

#[test]
fn startup_errors_exit_2_with_one_line_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dev_certs(dir.path());
    let (cert, key) = (certs.join("tls.crt"), certs.join("tls.key"));
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let good = dir.path().join("good");
    std::fs::create_dir(&good).unwrap();
    std::fs::write(good.join("a.yaml"), secret_manifest("first", "registry-a.example.com")).unwrap();
    let bad = dir.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("broken.yaml"), "kind: Secret\nmetadata: [unclosed\n").unwrap();
    let missing = dir.path().join("missing.crt");
    let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let (good, bad, missing) = (good.to_str().unwrap(), bad.to_str().unwrap(), missing.to_str().unwrap());
    let serve = |listen: &str, admin: &str, cert: &str, secrets_dir: Option<&str>| -> Vec<String> {
        let mut args = vec!["--listen", listen, "--admin-listen", admin, "--tls-cert", cert, "--tls-key", key];
        if let Some(dir) = secrets_dir {
            args.extend(["--secrets-dir", dir]);
        }
        args.into_iter().map(str::to_owned).collect()
    };
    let any = "127.0.0.1:0";

    let not_a_ca = |args: Vec<String>| [args, vec!["--client-ca".to_owned(), key.to_owned()]].concat();
    let cases: [(&str, Vec<String>, &[&str]); 6] = [
        ("missing certificate", serve(any, any, missing, Some(good)), &["--tls-cert", "missing.crt"]),
        ("bad YAML in --secrets-dir", serve(any, any, cert, Some(bad)), &["--secrets-dir", "broken.yaml"]),
        ("--listen port in use", serve(&taken, any, cert, Some(good)), &["--listen", &taken]),
        ("--admin-listen port in use", serve(any, &taken, cert, Some(good)), &["--admin-listen", &taken]),
        ("no cluster and no --secrets-dir", serve(any, any, cert, None), &["--secrets-dir"]),
        ("--client-ca without a certificate", not_a_ca(serve(any, any, cert, Some(good))), &["--client-ca", "tls.key"]),
    ];
    for (label, args, expected) in cases {
        let stderr = failing_serve(&args);
        let errors: Vec<&String> = stderr.iter().filter(|line| line.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "{label}: one error line: {stderr:#?}");
        assert_eq!(stderr.last(), Some(errors[0]), "{label}: the error is the last line: {stderr:#?}");
        for needle in expected {
            assert!(errors[0].contains(needle), "{label}: {needle:?} in {:?}", errors[0]);
        }
    }
}

// --- B: the binary under attack (issue 11, classes 3, 7 and 10) -------------------------------------------

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the process's descriptors").count()
}

/// Issue 11, class 3: idle or half-sent requests on the admin port used to exhaust the process's file
/// descriptors and take `/mutate` down with them. The binary runs with 128 descriptors; 300 admin connections
/// (half silent, half stopping in the middle of their headers) cost it at most `--admin-max-connections`: the
/// webhook keeps answering, `/readyz` too (a probe gets in by closing a connection that sent nothing), and every
/// attacking connection is closed within the header read timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_cannot_use_up_the_descriptors_the_webhook_needs() {
    const ATTACKERS: usize = 300;
    let (_dir, certs, secrets) = local_files("hub.yaml", "dockerhub", "https://index.docker.io/v1/");
    let args: Vec<OsString> =
        ["--max-connections", "32", "--admin-max-connections", "4", "--header-read-timeout", "1s"]
            .iter()
            .map(OsString::from)
            .chain([OsString::from("--secrets-dir"), secrets.into(), "--reload-interval".into(), "100ms".into()])
            .collect();
    let served = Served::start_with(&certs, &args, Options { open_files: Some(128), ..Options::default() });
    served.until_ready().await;
    let pid = served.pid();
    let before = open_files(pid);

    let mut held = Vec::new();
    for i in 0..ATTACKERS {
        let mut tcp = bounded("connect", TcpStream::connect(served.admin)).await.unwrap();
        if i % 2 == 1 {
            tcp.write_all(b"GET /readyz HTTP/1.1\r\nHost: admin\r\n").await.unwrap();
        }
        let opened = Instant::now();
        held.push(tokio::spawn(async move {
            until_closed(tcp).await;
            opened.elapsed()
        }));
    }
    let during = open_files(pid);
    let started = Instant::now();
    let (status, body) = served.mutate(NGINX_KUBECTL).await;
    let mutate_took = started.elapsed();
    assert_eq!((status, injected(NGINX_KUBECTL, &body)), (200, vec!["dockerhub".to_owned()]));
    let started = Instant::now();
    assert_eq!(served.admin_get("/readyz").await, (200, "ok\n".to_owned()), "a probe still gets in");
    let readyz_took = started.elapsed();
    // At once, not when the attacking connections time out (1 s).
    assert!(
        mutate_took < Duration::from_millis(500) && readyz_took < Duration::from_millis(500),
        "{mutate_took:?} {readyz_took:?}"
    );
    // The admin port holds at most 4 connections (and one waiting for a slot).
    assert!(during <= before + 5, "{during} descriptors open under attack, {before} before");

    let mut longest = Duration::ZERO;
    for attacker in held {
        longest = longest.max(bounded("an attacking connection is closed", attacker).await.unwrap());
    }
    assert!(longest < Duration::from_secs(2), "an attacking connection lived {longest:?}");
    assert_eq!(served.admin_get("/readyz").await.0, 200);
    assert_eq!(served.mutate(NGINX_KUBECTL).await.0, 200);
    eprintln!(
        "{ATTACKERS} admin connections against a 128-descriptor process: {before} descriptors before, {during} \
         during; /mutate answered in {mutate_took:?}, /readyz in {readyz_took:?}; each closed within {longest:?}"
    );
    let log = served.log();
    assert!(!log.contains("accept failed") && !log.contains("Too many open files"), "{log}");
}

/// A kubeconfig for an API server that refuses every connection (a port nobody listens on).
fn unreachable_kubeconfig(dir: &Path) -> PathBuf {
    let port = common::free_port();
    let path = dir.join("kubeconfig");
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: down\n  cluster: {{server: 'https://127.0.0.1:{port}', \
         insecure-skip-tls-verify: true}}\nusers:\n- name: u\n  user: {{token: not-a-real-token}}\ncontexts:\n- name: down\n  \
         context: {{cluster: down, user: u}}\ncurrent-context: down\n"
    );
    std::fs::write(&path, config).unwrap();
    path
}

/// Issue 11, class 7, against the binary: with the API server unreachable (`/readyz` 503), a Pod CREATE whose
/// image `--deny-unmatched` covers is not denied but allowed unchanged with the "credentials not loaded yet"
/// warning, counted in `pullsecret_injector_admission_requests_total{outcome="credentials_not_loaded"}` and logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_its_first_sync_the_binary_allows_pods_unchanged_and_never_denies() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dev_certs(dir.path());
    let kubeconfig = unreachable_kubeconfig(dir.path());
    let args = ["--deny-unmatched", "registry.example.com", "--reload-interval", "100ms"];
    let env = [("KUBECONFIG", kubeconfig.as_os_str())];
    let served = Served::start_with(&certs, &args, Options { env: &env, ..Options::default() });
    let (status, body) = served.admin_get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("waiting for"), "{body}");

    let review = pod_review("7d3f0e2a-3333-4000-8000-000000000003", &["registry.example.com/team/app:1"]);
    let (status, body) = served.mutate(&review).await;
    assert_eq!(status, 200);
    assert_eq!(
        injected(&review, &body),
        Vec::<String>::new(),
        "allowed, unchanged: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(warnings(&body), [format!("pullsecret-injector: {CREDENTIALS_NOT_LOADED}")]);
    served.until_metric(r#"pullsecret_injector_admission_requests_total{outcome="credentials_not_loaded"}"#, 1.0).await;
    let (_, metrics) = served.admin_get("/metrics").await;
    assert_eq!(metric(&metrics, r#"pullsecret_injector_admission_requests_total{outcome="denied"}"#), None);
    assert_eq!(served.admin_get("/readyz").await.0, 503, "still not ready");
    assert!(served.log().contains("credentials not loaded yet"), "{}", served.log());
}

/// A CA for client certificates (the API server's side of mutual TLS), and client certificates it signs.
struct ClientAuthority {
    pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl ClientAuthority {
    fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self { pem, issuer: rcgen::Issuer::new(params, key) }
    }

    /// A client certificate (extended key usage clientAuth) and its key.
    fn client(&self, name: &str) -> Identity {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
        (vec![cert.der().clone()], key)
    }
}

type Identity = (Vec<CertificateDer<'static>>, rustls::pki_types::PrivateKeyDer<'static>);

/// POSTs `body` to the binary's webhook over `version`, presenting `identity` (or no certificate).
async fn post_with_identity(
    served: &Served,
    ca_pem: &[u8],
    identity: Option<Identity>,
    version: &'static rustls::SupportedProtocolVersion,
    body: &[u8],
) -> io::Result<Response> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem).unwrap()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(served.webhook).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await?;
    Conn::over(tls).post(body).await
}

/// Issue 11, class 10: with `--client-ca` the webhook port accepts only clients presenting a certificate signed by
/// that CA (the API server's admission client certificate). No certificate, or one from another CA, is refused
/// in the TLS handshake (TLS 1.2 and 1.3); the right one gets its review answered. The CA file is reloaded
/// like the serving certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_only_clients_with_its_certificates_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dev_certs(dir.path());
    let server_ca = std::fs::read(certs.join("ca.crt")).unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("hub.yaml"), secret_manifest("dockerhub", "https://index.docker.io/v1/")).unwrap();
    let (api_server_ca, other_ca) = (ClientAuthority::new("API server client CA"), ClientAuthority::new("other CA"));
    let ca_file = dir.path().join("client-ca.crt");
    std::fs::write(&ca_file, &api_server_ca.pem).unwrap();
    let served = serve_local(&certs, &secrets, &["--client-ca", ca_file.to_str().unwrap()]);
    served.until_ready().await;

    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let label = format!("{:?}", version.version);
        let post = |identity| post_with_identity(&served, &server_ca, identity, version, NGINX_KUBECTL);
        let response = bounded("the API server's client", post(Some(api_server_ca.client("kube-apiserver")))).await;
        let response = response.unwrap_or_else(|e| panic!("{label}: the API server's certificate: {e}"));
        assert_eq!((response.status, injected(NGINX_KUBECTL, &response.body)), (200, vec!["dockerhub".to_owned()]));
        for (who, identity) in [("no certificate", None), ("another CA", Some(other_ca.client("kube-apiserver")))] {
            let refused = bounded("a refused client", post(identity)).await;
            let Err(error) = refused else { panic!("{label}, {who}: served") };
            // The server's TLS alert, before any HTTP: TLS 1.2 fails the handshake, TLS 1.3 the first read.
            assert!(error.to_string().contains("received fatal alert"), "{label}, {who}: {error}");
            eprintln!("{label}, {who}: {error}");
        }
    }
    // reqwest without a client certificate: refused too.
    assert!(
        served.client().post(format!("https://{}/mutate", served.webhook)).body(NGINX_KUBECTL).send().await.is_err()
    );

    // Rotation: another CA replaces the file; new connections are verified against it, without a restart.
    std::fs::write(&ca_file, &other_ca.pem).unwrap();
    let post = |identity| post_with_identity(&served, &server_ca, identity, &rustls::version::TLS13, NGINX_KUBECTL);
    bounded("the new CA is used", async {
        while post(Some(other_ca.client("kube-apiserver"))).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(post(Some(api_server_ca.client("kube-apiserver"))).await.is_err(), "the replaced CA's client");
    assert!(served.log().contains("client CA reloaded"), "{}", served.log());
    // A broken file keeps the current CA.
    std::fs::write(&ca_file, "garbage").unwrap();
    bounded("the failed reload is logged", async {
        while !served.log().contains("client CA reload failed") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(post(Some(other_ca.client("kube-apiserver"))).await.unwrap().status, 200);
}
