//! The `ClusterPullSecret` controller against a fake API server, through the real kube-rs `Client`.
//!
//! The client's transport is a `tower_test` mock. [`Fake`] is a small stateful API server: it keeps Secrets,
//! answers `GET`/`POST`/`PATCH`/`DELETE` on them the way kube-apiserver does (metadata-only answers for a
//! `PartialObjectMetadata` Accept header, 409 AlreadyExists, the `uid` guards of apply and delete, 422 on a change of
//! `type`), takes status patches and Events, serves lists and streaming watches for `controller::distribute`, and
//! records every request. Tests drive `controller::reconcile` over caches filled as the watches would fill them,
//! then assert the exact API calls, their bodies, the resulting Secrets, and that no credential reached a status,
//! an Event or a log line; one test drives `controller::distribute` and its watches end to end.

mod common;

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::{Response, StatusCode};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::Event;
use pullsecret_injector::core::cluster_pull_secret::ClusterPullSecret;
use pullsecret_injector::distribute::controller::{self, Context, Namespaces};
use pullsecret_injector::distribute::plan;
use pullsecret_injector::metrics::Metrics;
use pullsecret_injector::serve::connections::Shutdown;
use pullsecret_injector::sources::cluster::{self, SYNC_PARTS};
use pullsecret_injector::sources::live::{LiveCredentials, Readiness};
use serde_json::{Value, json};

use common::fake_api::{self, ResponseBody, Watch, json_response, parse_query};

/// Bound of one wait for the controller in the `run` test (debounce 0.5 s plus a few round trips).
const WAIT: Duration = Duration::from_secs(8);

const SOURCE_PASSWORD: &str = "Pl4tform-R0tating-Pa55";
const SOURCE_PASSWORD_V2: &str = "Pl4tform-N3xt-Pa55-v2";
/// The content of a tenant's own Secret: it must never be read, let alone copied anywhere.
const TENANT_PASSWORD: &str = "Ten4nt-0wn-Pa55";
const REGISTRY: &str = "registry.corp.example.com";

const CPS_UID: &str = "6b1f1c52-2b55-4c0b-9d9e-7f0c8f3f6a10";
const CREATED: &str = "2026-01-10T08:00:00Z";

// --- Objects ----------------------------------------------------------------------------------------------

fn dockerconfigjson(password: &str) -> Vec<u8> {
    let auth = STANDARD.encode(format!("robot$platform:{password}"));
    format!(r#"{{"auths":{{"{REGISTRY}":{{"auth":"{auth}"}}}}}}"#).into_bytes()
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The `source-hash` a copy of a dockerconfigjson payload carries (the documented encoding, computed here
/// independently of the controller's code).
fn hash(payload: &[u8]) -> String {
    sha256_hex(&[b"kubernetes.io/dockerconfigjson", b".dockerconfigjson", payload])
}

/// A Secret as the API server returns it.
fn secret(ns: &str, name: &str, uid: &str, type_: &str, data: &[(&str, &[u8])], meta: Value) -> Value {
    let mut metadata = json!({
        "name": name, "namespace": ns, "uid": uid, "resourceVersion": "1000", "creationTimestamp": CREATED,
    });
    for (k, v) in meta.as_object().into_iter().flatten() {
        metadata[k] = v.clone();
    }
    let data: serde_json::Map<String, Value> =
        data.iter().map(|(k, v)| (k.to_string(), STANDARD.encode(v).into())).collect();
    json!({"kind": "Secret", "apiVersion": "v1", "metadata": metadata, "type": type_, "data": data})
}

fn source(password: &str) -> Value {
    secret(
        "platform-creds",
        "corp-registry",
        "src-uid",
        "kubernetes.io/dockerconfigjson",
        &[(".dockerconfigjson", &dockerconfigjson(password))],
        json!({}),
    )
}

/// The `ownerReferences` of a copy of the `ClusterPullSecret` named `owner` (`corp` has [`CPS_UID`]).
fn owned_by(owner: &str) -> Value {
    let uid = if owner == "corp" { CPS_UID.to_string() } else { format!("{owner}-uid") };
    json!([{
        "apiVersion": "pullsecret-injector.io/v1alpha1", "kind": "ClusterPullSecret", "name": owner,
        "uid": uid, "controller": true, "blockOwnerDeletion": false,
    }])
}

/// A copy this controller wrote earlier, with the hash of `password`'s payload.
fn managed_copy(ns: &str, name: &str, owner: &str, password: &str) -> Value {
    let payload = dockerconfigjson(password);
    secret(
        ns,
        name,
        &format!("uid-{ns}-{name}"),
        "kubernetes.io/dockerconfigjson",
        &[(".dockerconfigjson", &payload)],
        json!({
            "labels": {"app.kubernetes.io/managed-by": "pullsecret-injector", "pullsecret-injector.io/cluster-pull-secret": owner},
            "annotations": {"pullsecret-injector.io/source": "platform-creds/corp-registry", "pullsecret-injector.io/source-hash": hash(&payload)},
            "ownerReferences": owned_by(owner),
        }),
    )
}

/// A tenant's own Secret that happens to have the target name.
fn tenant_secret(ns: &str) -> Value {
    secret(
        ns,
        "corp-registry",
        &format!("uid-{ns}-tenant"),
        "kubernetes.io/dockerconfigjson",
        &[(".dockerconfigjson", &dockerconfigjson(TENANT_PASSWORD))],
        json!({"labels": {"app": "billing"}}),
    )
}

fn namespace(name: &str, labels: Value, terminating: bool) -> Value {
    let mut meta = json!({"name": name, "uid": format!("ns-uid-{name}"), "resourceVersion": "10", "labels": labels, "creationTimestamp": CREATED});
    if terminating {
        meta["deletionTimestamp"] = "2026-01-11T00:00:00Z".into();
    }
    json!({"kind": "Namespace", "apiVersion": "v1", "metadata": meta, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

fn cps(status: Option<Value>) -> Value {
    let mut cps = json!({
        "apiVersion": "pullsecret-injector.io/v1alpha1",
        "kind": "ClusterPullSecret",
        "metadata": {"name": "corp", "uid": CPS_UID, "generation": 3, "resourceVersion": "500", "creationTimestamp": CREATED},
        "spec": {
            "secretRef": {"namespace": "platform-creds", "name": "corp-registry"},
            "namespaceSelector": {"matchLabels": {"tenant-tier": "internal"}},
            "targetName": "corp-registry",
        },
    });
    if let Some(status) = status {
        cps["status"] = status;
    }
    cps
}

fn as_meta(object: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": object["metadata"]})
}

/// The copy the controller must write for `password` in `ns` (request body of a create; an update adds `uid`).
fn expected_copy(ns: &str, password: &str) -> Value {
    let payload = dockerconfigjson(password);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "corp-registry",
            "namespace": ns,
            "labels": {"app.kubernetes.io/managed-by": "pullsecret-injector", "pullsecret-injector.io/cluster-pull-secret": "corp"},
            "annotations": {"pullsecret-injector.io/source": "platform-creds/corp-registry", "pullsecret-injector.io/source-hash": hash(&payload)},
            "ownerReferences": [{
                "apiVersion": "pullsecret-injector.io/v1alpha1", "kind": "ClusterPullSecret", "name": "corp",
                "uid": CPS_UID, "controller": true, "blockOwnerDeletion": false,
            }],
        },
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": STANDARD.encode(&payload)},
    })
}

// --- Fake API server --------------------------------------------------------------------------------------

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    metadata_only: bool,
    content_type: String,
    body: Value,
}

impl Seen {
    /// `METHOD path?query`, with ` (metadata)` for a metadata-only request.
    fn line(&self) -> String {
        // Parameters sorted and empty ones dropped: their order is kube-rs's business, not the API's.
        let mut params: Vec<&str> = self.query.split('&').filter(|p| !p.is_empty()).collect();
        params.sort_unstable();
        let query = if params.is_empty() { String::new() } else { format!("?{}", params.join("&")) };
        let meta = if self.metadata_only { " (metadata)" } else { "" };
        format!("{} {}{query}{meta}", self.method, self.path)
    }
}

#[derive(Default)]
struct World {
    secrets: BTreeMap<(String, String), Value>,
    namespaces: Vec<Value>,
    cps: Option<Value>,
    requests: Vec<Seen>,
    created: u32,
    resource_version: u64,
    /// Created right after a metadata `GET` finds nothing at its name: a race with another writer.
    appears_after_probe: Option<Value>,
    /// Open watch bodies, by collection.
    watches: BTreeMap<&'static str, Watch>,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<World>>);

impl Fake {
    fn new(namespaces: Vec<Value>, secrets: Vec<Value>) -> Self {
        let fake = Self::default();
        {
            let mut w = fake.world();
            w.namespaces = namespaces;
            w.resource_version = 2000;
            for s in secrets {
                let key = (
                    s["metadata"]["namespace"].as_str().unwrap().to_string(),
                    s["metadata"]["name"].as_str().unwrap().to_string(),
                );
                w.secrets.insert(key, s);
            }
        }
        fake
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn client(&self) -> kube::Client {
        let fake = self.clone();
        let (client, _task) = fake_api::client(move |request, respond| {
            let (parts, bytes) = request.into_parts();
            let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let seen = Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                query: parts.uri.query().unwrap_or("").to_string(),
                metadata_only: header("accept").contains("as=PartialObjectMetadata"),
                content_type: header("content-type"),
                body: if bytes.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&bytes).expect("JSON request body")
                },
            };
            respond.send_response(fake.answer(&seen));
        });
        client
    }

    fn secret(&self, ns: &str, name: &str) -> Option<Value> {
        self.world().secrets.get(&(ns.to_string(), name.to_string())).cloned()
    }

    fn requests(&self) -> Vec<Seen> {
        self.world().requests.clone()
    }

    fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.requests().iter().map(Seen::line).collect();
        lines.sort();
        lines
    }

    fn find(&self, method: &str, path: &str) -> Vec<Seen> {
        self.requests().into_iter().filter(|r| r.method == method && r.path == path).collect()
    }

    fn clear(&self) {
        self.world().requests.clear();
    }

    /// Sends a watch event on an open watch of `collection`.
    fn push(&self, collection: &'static str, kind: &str, object: Value) {
        let w = self.world();
        let watch = w.watches.get(collection).unwrap_or_else(|| panic!("no open watch of {collection}"));
        watch.send(kind, &object);
    }

    fn answer(&self, r: &Seen) -> Response<ResponseBody> {
        let mut w = self.world();
        w.requests.push(r.clone());
        let segments: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        let watching = r.query.split('&').any(|p| p == "watch=true");
        let (status, body) = match (r.method.as_str(), segments.as_slice()) {
            ("GET", ["api", "v1", "namespaces", ns, "secrets", name]) => {
                match w.secrets.get(&(ns.to_string(), name.to_string())) {
                    Some(s) if r.metadata_only => (StatusCode::OK, as_meta(s)),
                    Some(s) => (StatusCode::OK, s.clone()),
                    None => {
                        let racer = w.appears_after_probe.take_if(|s| {
                            r.metadata_only && s["metadata"]["namespace"] == *ns && s["metadata"]["name"] == *name
                        });
                        if let Some(racer) = racer {
                            w.secrets.insert((ns.to_string(), name.to_string()), racer);
                        }
                        not_found("secrets", name)
                    }
                }
            }
            ("POST", ["api", "v1", "namespaces", ns, "secrets"]) => {
                let name = r.body["metadata"]["name"].as_str().expect("a name").to_string();
                let key = (ns.to_string(), name.clone());
                if w.secrets.contains_key(&key) {
                    failure(StatusCode::CONFLICT, "AlreadyExists", &format!("secrets \"{name}\" already exists"), None)
                } else {
                    w.created += 1;
                    let uid = format!("uid-created-{}", w.created);
                    let stored = stored(&mut w, r.body.clone(), &uid);
                    w.secrets.insert(key, stored.clone());
                    (StatusCode::CREATED, stored)
                }
            }
            ("PATCH", ["api", "v1", "namespaces", ns, "secrets", name]) => {
                assert_eq!(r.content_type, "application/apply-patch+yaml", "copies are updated by server-side apply");
                let key = (ns.to_string(), name.to_string());
                let uid = r.body["metadata"]["uid"].as_str();
                match (w.secrets.get(&key).cloned(), uid) {
                    (None, Some(uid)) => failure(
                        StatusCode::CONFLICT,
                        "Conflict",
                        &format!(
                            "Operation cannot be fulfilled on secrets \"{name}\": uid mismatch: the provided object specified uid {uid}, and no existing object was found"
                        ),
                        None,
                    ),
                    (Some(current), Some(uid)) if current["metadata"]["uid"] != uid => invalid(name, "metadata.uid"),
                    (Some(current), _) if current["type"] != r.body["type"] => invalid(name, "type"),
                    (current, _) => {
                        let uid = current
                            .as_ref()
                            .map_or("uid-applied".to_string(), |c| c["metadata"]["uid"].as_str().unwrap().to_string());
                        let stored = stored(&mut w, r.body.clone(), &uid);
                        w.secrets.insert(key, stored.clone());
                        (StatusCode::OK, stored)
                    }
                }
            }
            ("DELETE", ["api", "v1", "namespaces", ns, "secrets", name]) => {
                let key = (ns.to_string(), name.to_string());
                let wanted = r.body["preconditions"]["uid"].as_str();
                match w.secrets.get(&key).cloned() {
                    None => not_found("secrets", name),
                    Some(current) if wanted.is_some_and(|u| current["metadata"]["uid"] != u) => failure(
                        StatusCode::CONFLICT,
                        "Conflict",
                        &format!(
                            "Operation cannot be fulfilled on secrets \"{name}\": Precondition failed: UID in precondition: {}, UID in object meta: {}",
                            wanted.unwrap(),
                            current["metadata"]["uid"].as_str().unwrap()
                        ),
                        None,
                    ),
                    Some(current) => {
                        w.secrets.remove(&key);
                        (StatusCode::OK, current)
                    }
                }
            }
            ("PATCH", ["apis", "pullsecret-injector.io", "v1alpha1", "clusterpullsecrets", "corp", "status"]) => {
                assert_eq!(r.content_type, "application/merge-patch+json");
                let mut object = w.cps.clone().unwrap_or_else(|| cps(None));
                object["status"] = r.body["status"].clone();
                w.cps = Some(object.clone());
                (StatusCode::OK, object)
            }
            ("POST", ["apis", "events.k8s.io", "v1", "namespaces", "default", "events"]) => {
                (StatusCode::CREATED, r.body.clone())
            }
            ("PATCH", ["apis", "events.k8s.io", "v1", "namespaces", "default", "events", _]) => {
                (StatusCode::OK, r.body.clone())
            }
            // Lists and watches of `controller::distribute`.
            ("GET", path) => {
                let Some(collection) = collection(path, &r.query) else {
                    return respond(not_found("unknown", &r.path));
                };
                if r.query.split('&').any(|p| p == "sendInitialEvents=true") {
                    // An API server whose WatchList feature is off: the watches list in pages instead.
                    let message = "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: \
                                   sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled";
                    return respond(failure(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message, None));
                }
                if watching {
                    let (watch, response) = Watch::open();
                    w.watches.insert(collection, watch);
                    return response;
                }
                (StatusCode::OK, list(&w, collection, &r.query, r.metadata_only))
            }
            _ => not_found("unknown", &r.path),
        };
        respond((status, body))
    }
}

/// Which watched collection a list or watch request is for, from its path and selectors.
fn collection(path: &[&str], query: &str) -> Option<&'static str> {
    let query = parse_query(query);
    let selector = |key: &str| query.get(key).cloned();
    const MANAGED: Option<&str> = Some("app.kubernetes.io/managed-by=pullsecret-injector");
    Some(match (path, selector("labelSelector").as_deref(), selector("fieldSelector").as_deref()) {
        (["apis", "pullsecret-injector.io", "v1alpha1", "clusterpullsecrets"], None, None) => "clusterpullsecrets",
        (["api", "v1", "namespaces"], None, None) => "namespaces",
        (["api", "v1", "secrets"], MANAGED, Some("type=kubernetes.io/dockerconfigjson")) => "copies-dockerconfigjson",
        (["api", "v1", "secrets"], MANAGED, Some("type=kubernetes.io/dockercfg")) => "copies-dockercfg",
        (["api", "v1", "secrets"], None, Some("type=kubernetes.io/dockerconfigjson")) => "sources-dockerconfigjson",
        (["api", "v1", "secrets"], None, Some("type=kubernetes.io/dockercfg")) => "sources-dockercfg",
        (["api", "v1", "secrets"], None, Some(fields)) if fields.starts_with("metadata.name=") => "other-types-by-name",
        _ => return None,
    })
}

fn list(w: &World, collection: &str, query: &str, metadata_only: bool) -> Value {
    let secrets = |keep: &dyn Fn(&Value) -> bool| w.secrets.values().filter(|s| keep(s)).cloned().collect::<Vec<_>>();
    let labelled = |s: &Value| s["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pullsecret-injector";
    let items: Vec<Value> = match collection {
        "clusterpullsecrets" => w.cps.iter().cloned().collect(),
        "namespaces" => w.namespaces.clone(),
        "copies-dockerconfigjson" => secrets(&|s| labelled(s) && s["type"] == "kubernetes.io/dockerconfigjson"),
        "copies-dockercfg" => secrets(&|s| labelled(s) && s["type"] == "kubernetes.io/dockercfg"),
        "sources-dockerconfigjson" => secrets(&|s| s["type"] == "kubernetes.io/dockerconfigjson"),
        "other-types-by-name" => {
            // `metadata.name=NAME,type!=...,type!=...`: the Secrets of another type named NAME.
            let fields = parse_query(query).get("fieldSelector").cloned().unwrap_or_default();
            let name = fields.split(',').find_map(|f| f.strip_prefix("metadata.name=")).unwrap_or_default().to_string();
            let pull =
                |s: &Value| s["type"] == "kubernetes.io/dockerconfigjson" || s["type"] == "kubernetes.io/dockercfg";
            secrets(&|s| s["metadata"]["name"] == name.as_str() && !pull(s))
        }
        _ => secrets(&|s| s["type"] == "kubernetes.io/dockercfg"),
    };
    let meta = json!({"resourceVersion": w.resource_version.to_string()});
    if metadata_only {
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": meta, "items": items.iter().map(as_meta).collect::<Vec<_>>()})
    } else if collection == "clusterpullsecrets" {
        json!({"apiVersion": "pullsecret-injector.io/v1alpha1", "kind": "ClusterPullSecretList", "metadata": meta, "items": items})
    } else if collection == "namespaces" {
        json!({"apiVersion": "v1", "kind": "NamespaceList", "metadata": meta, "items": items})
    } else {
        json!({"apiVersion": "v1", "kind": "SecretList", "metadata": meta, "items": items})
    }
}

/// What the API server stores for a written Secret: the body plus system fields.
fn stored(w: &mut World, mut body: Value, uid: &str) -> Value {
    w.resource_version += 1;
    body["metadata"]["uid"] = uid.into();
    body["metadata"]["resourceVersion"] = w.resource_version.to_string().into();
    body["metadata"]["creationTimestamp"] = CREATED.into();
    body
}

fn failure(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> (StatusCode, Value) {
    (code, fake_api::failure(code, reason, message, details))
}

fn not_found(resource: &str, name: &str) -> (StatusCode, Value) {
    failure(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{resource} \"{name}\" not found"),
        Some(json!({"name": name, "kind": resource})),
    )
}

fn invalid(name: &str, field: &str) -> (StatusCode, Value) {
    failure(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        &format!("Secret \"{name}\" is invalid: {field}: Invalid value: \"…\": field is immutable"),
        Some(
            json!({"name": name, "kind": "Secret", "causes": [{"reason": "FieldValueInvalid", "message": "Invalid value: \"…\": field is immutable", "field": field}]}),
        ),
    )
}

fn respond((status, body): (StatusCode, Value)) -> Response<ResponseBody> {
    json_response(status, &body)
}

// --- Harness ----------------------------------------------------------------------------------------------

/// Caches filled as the controller's watches fill them: every Namespace's metadata, and per pull-Secret type every
/// Secret of that type labelled managed-by (taken from the fake's current Secrets), reduced by `observe_copy`.
fn caches(fake: &Fake) -> (Namespaces, Vec<Store<Secret>>) {
    let w = fake.world();
    // The controller reads the Namespaces from the credential index, listed.
    let live = Arc::new(LiveCredentials::new(Arc::new(Metrics::new())));
    let listed: Vec<Namespace> =
        w.namespaces.iter().map(|ns| serde_json::from_value(ns.clone()).expect("a Namespace")).collect();
    live.update(|index| index.replace_namespaces(&listed));
    let namespaces = Namespaces { live, listed: tokio::sync::watch::channel(true).1 };
    let mut copies = Vec::new();
    for type_ in ["kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg"] {
        let (store, mut writer) = reflector::store::<Secret>();
        writer.apply_watcher_event(&Event::Init);
        for s in w.secrets.values() {
            if s["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pullsecret-injector" && s["type"] == type_ {
                let mut copy: Secret = serde_json::from_value(s.clone()).expect("a Secret");
                plan::observe_copy(&mut copy);
                writer.apply_watcher_event(&Event::InitApply(copy));
            }
        }
        writer.apply_watcher_event(&Event::InitDone);
        copies.push(store);
    }
    (namespaces, copies)
}

/// Log lines written while `f` runs (every level), to check that no credential is logged.
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        (Self(buffer), tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Polls `done` until it holds, at most [`WAIT`].
async fn until(what: &str, done: impl Fn() -> bool) {
    let waited = tokio::time::timeout(WAIT, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out after {WAIT:?} waiting for {what}");
}

async fn reconcile(fake: &Fake, cps: Value) -> Result<Action, controller::Error> {
    reconcile_counted(fake, cps, Arc::new(Metrics::new())).await
}

async fn reconcile_counted(fake: &Fake, cps: Value, metrics: Arc<Metrics>) -> Result<Action, controller::Error> {
    let client = fake.client();
    let (namespaces, copies) = caches(fake);
    let ctx = Arc::new(Context::new(client, namespaces, copies, metrics));
    let cps: ClusterPullSecret = serde_json::from_value(cps).expect("a ClusterPullSecret");
    tokio::time::timeout(Duration::from_secs(5), controller::reconcile(Arc::new(cps), ctx)).await.expect("a pass ends")
}

fn strings(lines: &[&str]) -> Vec<String> {
    let mut lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    lines.sort();
    lines
}

/// No credential in anything but the copies themselves (status, Events, other requests, logs), and no tenant
/// credential anywhere.
fn assert_no_credentials(fake: &Fake, logs: &str) {
    let forms = |password: &str| {
        vec![
            password.to_string(),
            STANDARD.encode(format!("robot$platform:{password}")),
            STANDARD.encode(dockerconfigjson(password)),
        ]
    };
    let platform: Vec<String> = [SOURCE_PASSWORD, SOURCE_PASSWORD_V2].iter().flat_map(|p| forms(p)).collect();
    let tenant = forms(TENANT_PASSWORD);
    for r in fake.requests() {
        let text = r.body.to_string();
        let copy_write = r.path.starts_with("/api/v1/namespaces/") && matches!(r.method.as_str(), "POST" | "PATCH");
        for form in tenant.iter().chain(if copy_write { &[][..] } else { &platform[..] }) {
            assert!(!text.contains(form.as_str()), "a credential in {}: {text}", r.line());
        }
    }
    for form in platform.iter().chain(&tenant) {
        assert!(!logs.contains(form.as_str()), "a credential in the logs");
    }
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

fn events(fake: &Fake) -> Vec<(String, String, String)> {
    fake.find("POST", "/apis/events.k8s.io/v1/namespaces/default/events")
        .iter()
        .map(|e| {
            assert_eq!(e.body["regarding"]["kind"], "ClusterPullSecret");
            assert_eq!(e.body["regarding"]["name"], "corp");
            assert_eq!(e.body["regarding"]["uid"], CPS_UID);
            assert_eq!(e.body["reportingController"], "pullsecret-injector");
            (
                e.body["type"].as_str().unwrap().to_string(),
                e.body["reason"].as_str().unwrap().to_string(),
                e.body["note"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

// --- Tests ------------------------------------------------------------------------------------------------

/// The cluster of the main scenario: four internal namespaces (one opted out, one terminating), one other.
fn cluster() -> Vec<Value> {
    vec![
        namespace("platform-creds", json!({}), false),
        namespace("team-a", json!({"tenant-tier": "internal"}), false),
        namespace("team-b", json!({"tenant-tier": "internal"}), false),
        namespace("team-c", json!({"tenant-tier": "internal"}), false),
        namespace("team-d", json!({"tenant-tier": "internal", "pullsecret-injector.io/inject": "disabled"}), false),
        namespace("team-e", json!({"tenant-tier": "external"}), false),
        namespace("team-f", json!({"tenant-tier": "internal"}), true),
        namespace("team-g", json!({}), false),
    ]
}

#[tokio::test]
async fn creates_rotates_and_removes_copies_but_never_touches_an_unmanaged_secret() {
    let (logs, _guard) = Logs::capture();
    let fake = Fake::new(
        cluster(),
        vec![
            source(SOURCE_PASSWORD_V2),
            // team-a: nothing yet. team-b: our copy of the previous password (rotation).
            managed_copy("team-b", "corp-registry", "corp", SOURCE_PASSWORD),
            // team-c: the tenant's own Secret of the same name.
            tenant_secret("team-c"),
            // team-d opted out, team-e was relabelled: our copies there must go.
            managed_copy("team-d", "corp-registry", "corp", SOURCE_PASSWORD_V2),
            managed_copy("team-e", "corp-registry", "corp", SOURCE_PASSWORD_V2),
            // Another ClusterPullSecret's copy in an unselected namespace: not ours to delete.
            managed_copy("team-g", "corp-registry", "other", SOURCE_PASSWORD),
        ],
    );

    let action = reconcile(&fake, cps(None)).await.expect("the pass succeeds");
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));

    assert_eq!(
        fake.lines(),
        strings(&[
            "GET /api/v1/namespaces/platform-creds/secrets/corp-registry",
            "GET /api/v1/namespaces/team-a/secrets/corp-registry (metadata)",
            "GET /api/v1/namespaces/team-c/secrets/corp-registry (metadata)",
            "POST /api/v1/namespaces/team-a/secrets?fieldManager=pullsecret-injector",
            "PATCH /api/v1/namespaces/team-b/secrets/corp-registry?fieldManager=pullsecret-injector&force=true",
            "DELETE /api/v1/namespaces/team-d/secrets/corp-registry",
            "DELETE /api/v1/namespaces/team-e/secrets/corp-registry",
            "PATCH /apis/pullsecret-injector.io/v1alpha1/clusterpullsecrets/corp/status",
            "POST /apis/events.k8s.io/v1/namespaces/default/events",
            "POST /apis/events.k8s.io/v1/namespaces/default/events",
        ]),
        "exactly these API calls; none for the opted-out team-d's creation, the terminating team-f, team-g's foreign copy"
    );

    // The copy: same type and payload, labels, source identity, owner; created only where nothing was.
    let create = &fake.find("POST", "/api/v1/namespaces/team-a/secrets")[0];
    assert_eq!(create.body, expected_copy("team-a", SOURCE_PASSWORD_V2));
    // Rotation: a forced server-side apply guarded by the copy's uid.
    let update = &fake.find("PATCH", "/api/v1/namespaces/team-b/secrets/corp-registry")[0];
    let mut want = expected_copy("team-b", SOURCE_PASSWORD_V2);
    want["metadata"]["uid"] = "uid-team-b-corp-registry".into();
    assert_eq!(update.body, want);
    assert_eq!(fake.secret("team-b", "corp-registry").unwrap()["data"], want["data"], "rotated");
    // Deletes carry the copy's uid as precondition.
    for ns in ["team-d", "team-e"] {
        let delete = &fake.find("DELETE", &format!("/api/v1/namespaces/{ns}/secrets/corp-registry"))[0];
        assert_eq!(delete.body["preconditions"], json!({"uid": format!("uid-{ns}-corp-registry")}));
        assert!(fake.secret(ns, "corp-registry").is_none());
    }
    // The tenant's Secret: read as metadata only, never written.
    assert_eq!(fake.secret("team-c", "corp-registry"), Some(tenant_secret("team-c")));
    assert!(
        fake.requests().iter().filter(|r| r.path.contains("/team-c/")).all(|r| r.method == "GET" && r.metadata_only)
    );
    assert_eq!(
        fake.secret("team-g", "corp-registry"),
        Some(managed_copy("team-g", "corp-registry", "other", SOURCE_PASSWORD))
    );

    // Status: counts and the three conditions.
    let patch = &fake.find("PATCH", "/apis/pullsecret-injector.io/v1alpha1/clusterpullsecrets/corp/status")[0];
    let status = &patch.body["status"];
    assert_eq!(
        (status["selectedNamespaces"].as_u64(), status["syncedCopies"].as_u64()),
        (Some(3), Some(2)),
        "{status}"
    );
    let ready = condition(status, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str(), ready["observedGeneration"].as_i64()),
        (Some("False"), Some("Conflict"), Some(3))
    );
    let source_ready = condition(status, "SourceReady");
    assert_eq!((source_ready["status"].as_str(), source_ready["reason"].as_str()), (Some("True"), Some("SourceValid")));
    let conflict = condition(status, "Conflict");
    assert_eq!((conflict["status"].as_str(), conflict["reason"].as_str()), (Some("True"), Some("SecretNotManaged")));
    assert!(conflict["message"].as_str().unwrap().contains("in 1 namespace(s): team-c"), "{conflict}");
    assert!(ready["lastTransitionTime"].as_str().is_some_and(|t| t.ends_with('Z')));

    // Events on the resource (in `default`, not in the tenant's namespace).
    let events = events(&fake);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!((events[0].0.as_str(), events[0].1.as_str()), ("Warning", "Conflict"));
    assert!(events[0].2.contains("team-c"));
    assert_eq!(events[1], ("Normal".into(), "Synced".into(), "copies created: 1, updated: 1, deleted: 2".into()));
    let logged = logs.text();
    assert!(logged.contains("copy created") && logged.contains("team-a"), "the capture works: {logged}");
    assert_no_credentials(&fake, &logged);

    // A second pass over the updated caches and the written status changes nothing (replicas converge; no
    // write loop): only the source read and the probe of the conflicting namespace.
    fake.clear();
    let written = fake.world().cps.clone().unwrap();
    reconcile(&fake, written).await.expect("the second pass succeeds");
    assert_eq!(
        fake.lines(),
        strings(&[
            "GET /api/v1/namespaces/platform-creds/secrets/corp-registry",
            "GET /api/v1/namespaces/team-c/secrets/corp-registry (metadata)",
        ])
    );
}

#[tokio::test]
async fn a_missing_source_keeps_copies_and_is_reported() {
    let (logs, _guard) = Logs::capture();
    let fake = Fake::new(
        cluster(),
        vec![
            managed_copy("team-a", "corp-registry", "corp", SOURCE_PASSWORD),
            managed_copy("team-e", "corp-registry", "corp", SOURCE_PASSWORD),
        ],
    );
    reconcile(&fake, cps(None)).await.expect("a missing source is a state, not an error");
    assert_eq!(
        fake.lines(),
        strings(&[
            "GET /api/v1/namespaces/platform-creds/secrets/corp-registry",
            "GET /api/v1/namespaces/team-b/secrets/corp-registry (metadata)",
            "GET /api/v1/namespaces/team-c/secrets/corp-registry (metadata)",
            // team-e is no longer selected: its copy goes whatever the source's state.
            "DELETE /api/v1/namespaces/team-e/secrets/corp-registry",
            "PATCH /apis/pullsecret-injector.io/v1alpha1/clusterpullsecrets/corp/status",
            "POST /apis/events.k8s.io/v1/namespaces/default/events",
            "POST /apis/events.k8s.io/v1/namespaces/default/events",
        ])
    );
    assert!(
        fake.secret("team-a", "corp-registry").is_some(),
        "a transient deletion of the source must not break pulls"
    );
    let status = fake.world().cps.clone().unwrap()["status"].clone();
    let source_ready = condition(&status, "SourceReady");
    assert_eq!(
        (source_ready["status"].as_str(), source_ready["reason"].as_str()),
        (Some("False"), Some("SourceNotFound"))
    );
    assert_eq!(condition(&status, "Ready")["reason"], "SourceNotReady");
    assert_eq!(status["syncedCopies"], 0);
    let events = events(&fake);
    assert_eq!((events[0].0.as_str(), events[0].1.as_str()), ("Warning", "SourceNotFound"));
    assert!(events[0].2.contains("platform-creds/corp-registry"), "{events:?}");
    assert_no_credentials(&fake, &logs.text());
}

#[tokio::test]
async fn an_undecodable_source_is_not_propagated_and_its_reason_names_no_credential() {
    let (logs, _guard) = Logs::capture();
    let broken = secret(
        "platform-creds",
        "corp-registry",
        "src-uid",
        "kubernetes.io/dockerconfigjson",
        &[(".dockerconfigjson", format!(r#"{{"auths":{{"{REGISTRY}":{{"auth":"{TENANT_PASSWORD}%"}}}}}}"#).as_bytes())],
        json!({}),
    );
    let fake = Fake::new(cluster(), vec![broken, managed_copy("team-a", "corp-registry", "corp", SOURCE_PASSWORD)]);
    reconcile(&fake, cps(None)).await.expect("an undecodable source is a state, not an error");
    let writes: Vec<String> =
        fake.requests().iter().filter(|r| r.path.contains("/secrets") && r.method != "GET").map(Seen::line).collect();
    assert!(writes.is_empty(), "no copy written or removed: {writes:?}");
    let status = fake.world().cps.clone().unwrap()["status"].clone();
    let source_ready = condition(&status, "SourceReady");
    assert_eq!(
        (source_ready["status"].as_str(), source_ready["reason"].as_str()),
        (Some("False"), Some("SourceUndecodable"))
    );
    assert!(source_ready["message"].as_str().unwrap().contains("base64"), "{source_ready}");
    assert_eq!(events(&fake)[0].1, "SourceUndecodable");
    assert_no_credentials(&fake, &logs.text());
}

#[tokio::test]
async fn a_wrong_type_source_is_reported_as_undecodable() {
    let opaque = secret(
        "platform-creds",
        "corp-registry",
        "src-uid",
        "Opaque",
        &[("password", SOURCE_PASSWORD.as_bytes())],
        json!({}),
    );
    let fake = Fake::new(cluster(), vec![opaque]);
    reconcile(&fake, cps(None)).await.expect("a state, not an error");
    let status = fake.world().cps.clone().unwrap()["status"].clone();
    let source_ready = condition(&status, "SourceReady");
    assert_eq!(source_ready["reason"], "SourceUndecodable");
    assert!(source_ready["message"].as_str().unwrap().contains("\"Opaque\""), "{source_ready}");
    assert!(fake.requests().iter().all(|r| !(r.path.contains("/secrets") && r.method != "GET")));
}

#[tokio::test]
async fn a_new_target_name_moves_the_copies() {
    let fake = Fake::new(
        vec![namespace("team-a", json!({"tenant-tier": "internal"}), false)],
        vec![source(SOURCE_PASSWORD), managed_copy("team-a", "old-name", "corp", SOURCE_PASSWORD)],
    );
    reconcile(&fake, cps(None)).await.expect("the pass succeeds");
    assert!(fake.secret("team-a", "old-name").is_none());
    assert_eq!(
        fake.find("POST", "/api/v1/namespaces/team-a/secrets")[0].body,
        expected_copy("team-a", SOURCE_PASSWORD)
    );
    assert_eq!(
        fake.find("DELETE", "/api/v1/namespaces/team-a/secrets/old-name")[0].body["preconditions"]["uid"],
        "uid-team-a-old-name"
    );
}

#[tokio::test]
async fn a_source_recreated_with_the_other_type_replaces_the_copy() {
    // The copy is a legacy dockercfg; the source now is dockerconfigjson. `type` is immutable: the apply is
    // refused (422 on field `type`), so the copy is deleted (uid-guarded) and created again.
    let old = secret(
        "team-a",
        "corp-registry",
        "uid-team-a-legacy",
        "kubernetes.io/dockercfg",
        &[(".dockercfg", br#"{"registry.corp.example.com":{"auth":"dTpw"}}"#)],
        json!({
            "labels": {"app.kubernetes.io/managed-by": "pullsecret-injector", "pullsecret-injector.io/cluster-pull-secret": "corp"},
            "annotations": {"pullsecret-injector.io/source-hash": "0000"},
            "ownerReferences": owned_by("corp"),
        }),
    );
    let fake = Fake::new(
        vec![namespace("team-a", json!({"tenant-tier": "internal"}), false)],
        vec![source(SOURCE_PASSWORD), old],
    );
    reconcile(&fake, cps(None)).await.expect("the pass succeeds");
    let calls: Vec<String> = fake.requests().iter().filter(|r| r.path.contains("/team-a/")).map(Seen::line).collect();
    assert_eq!(
        calls,
        vec![
            "PATCH /api/v1/namespaces/team-a/secrets/corp-registry?fieldManager=pullsecret-injector&force=true",
            "DELETE /api/v1/namespaces/team-a/secrets/corp-registry",
            "POST /api/v1/namespaces/team-a/secrets?fieldManager=pullsecret-injector",
        ]
    );
    assert_eq!(
        fake.find("POST", "/api/v1/namespaces/team-a/secrets")[0].body,
        expected_copy("team-a", SOURCE_PASSWORD)
    );
    assert_eq!(fake.secret("team-a", "corp-registry").unwrap()["type"], "kubernetes.io/dockerconfigjson");
}

/// A pass decides nothing before the credential index holds the namespace watch's first list: on an empty index
/// every copy would look unwanted and be deleted. Once the list is in, the same pass keeps the copy.
#[tokio::test(start_paused = true)]
async fn a_pass_waits_for_the_indexs_namespace_list() {
    let fake = Fake::new(
        vec![namespace("team-a", json!({"tenant-tier": "internal"}), false)],
        vec![source(SOURCE_PASSWORD), managed_copy("team-a", "corp-registry", "corp", SOURCE_PASSWORD)],
    );
    let (_, copies) = caches(&fake);
    let (listed_tx, listed) = tokio::sync::watch::channel(false);
    let unlisted = Arc::new(LiveCredentials::new(Arc::new(Metrics::new())));
    let namespaces = Namespaces { live: unlisted.clone(), listed };
    let ctx = Arc::new(Context::new(fake.client(), namespaces, copies, Arc::new(Metrics::new())));
    let cps: ClusterPullSecret = serde_json::from_value(cps(None)).unwrap();
    let result = controller::reconcile(Arc::new(cps.clone()), ctx.clone()).await;
    assert!(matches!(result, Err(controller::Error::CachesNotSynced(_))), "{result:?}");
    let writes: Vec<String> = fake.requests().iter().filter(|r| r.method != "GET").map(Seen::line).collect();
    assert!(writes.is_empty(), "nothing written before the list: {writes:?}");

    let listed: Vec<Namespace> =
        fake.world().namespaces.iter().map(|ns| serde_json::from_value(ns.clone()).expect("a Namespace")).collect();
    unlisted.update(|index| index.replace_namespaces(&listed));
    listed_tx.send_replace(true);
    controller::reconcile(Arc::new(cps), ctx).await.expect("the pass succeeds");
    assert!(fake.find("DELETE", "/api/v1/namespaces/team-a/secrets/corp-registry").is_empty(), "the copy is kept");
    assert!(fake.secret("team-a", "corp-registry").is_some());
}

#[tokio::test]
async fn a_copy_replaced_since_the_cache_saw_it_is_left_alone() {
    // The cache still shows our stale copy, but the Secret there now is a tenant's (deleted and re-created).
    let fake = Fake::new(
        vec![namespace("team-a", json!({"tenant-tier": "internal"}), false)],
        vec![source(SOURCE_PASSWORD_V2), managed_copy("team-a", "corp-registry", "corp", SOURCE_PASSWORD)],
    );
    let client = fake.client();
    let (namespaces, copies) = caches(&fake);
    fake.world().secrets.insert(("team-a".into(), "corp-registry".into()), tenant_secret("team-a"));
    let ctx = Arc::new(Context::new(client, namespaces, copies, Arc::new(Metrics::new())));
    let cps: ClusterPullSecret = serde_json::from_value(cps(None)).unwrap();
    let result = controller::reconcile(Arc::new(cps), ctx).await;
    assert!(matches!(result, Err(controller::Error::Writes(ref w)) if w.len() == 1), "{result:?}");
    assert_eq!(fake.secret("team-a", "corp-registry"), Some(tenant_secret("team-a")), "the tenant's Secret is intact");
    let status = fake.world().cps.clone().unwrap()["status"].clone();
    assert_eq!(condition(&status, "Ready")["reason"], "SyncFailed");
}

#[tokio::test]
async fn a_copy_created_meanwhile_by_another_replica_counts_as_done() {
    // Between our probe and our POST, the other replica creates the same copy: 409 AlreadyExists, then a look
    // shows our own current copy: synced, not a failure (no status flapping between replicas).
    let fake =
        Fake::new(vec![namespace("team-a", json!({"tenant-tier": "internal"}), false)], vec![source(SOURCE_PASSWORD)]);
    fake.world().appears_after_probe = Some(managed_copy("team-a", "corp-registry", "corp", SOURCE_PASSWORD));
    reconcile(&fake, cps(None)).await.expect("the pass succeeds");
    let calls: Vec<String> = fake.requests().iter().filter(|r| r.path.contains("/team-a/")).map(Seen::line).collect();
    assert_eq!(
        calls,
        vec![
            "GET /api/v1/namespaces/team-a/secrets/corp-registry (metadata)",
            "POST /api/v1/namespaces/team-a/secrets?fieldManager=pullsecret-injector",
            "GET /api/v1/namespaces/team-a/secrets/corp-registry (metadata)",
        ]
    );
    let status = fake.world().cps.clone().unwrap()["status"].clone();
    assert_eq!(
        (status["syncedCopies"].as_u64(), condition(&status, "Ready")["reason"].as_str()),
        (Some(1), Some("Synced"))
    );
    assert!(events(&fake).is_empty(), "nothing changed by this replica, nothing wrong: no Event");
}

#[tokio::test]
async fn a_secret_created_meanwhile_by_a_tenant_is_not_overwritten() {
    let fake =
        Fake::new(vec![namespace("team-a", json!({"tenant-tier": "internal"}), false)], vec![source(SOURCE_PASSWORD)]);
    fake.world().appears_after_probe = Some(tenant_secret("team-a"));
    let result = reconcile(&fake, cps(None)).await;
    assert!(
        matches!(result, Err(controller::Error::Writes(ref w)) if w[0].contains("appeared meanwhile")),
        "{result:?}"
    );
    assert_eq!(fake.secret("team-a", "corp-registry"), Some(tenant_secret("team-a")));
    assert!(
        fake.requests()
            .iter()
            .all(|r| !(r.path.contains("/team-a/") && matches!(r.method.as_str(), "PATCH" | "PUT" | "DELETE")))
    );
}

/// Issue 11, class 14: a tenant with `patch secrets` in its namespace rewrote its copy's payload (labels and
/// annotations intact, so the copy still looks current). The pass sees the payload's hash differ from what it
/// wrote, restores it with the same uid-guarded apply as an update, counts it, and says so in a Warning Event;
/// the status stays Ready. The next pass changes nothing.
#[tokio::test]
async fn a_copy_a_tenant_edited_is_restored_counted_and_reported() {
    let (logs, _guard) = Logs::capture();
    let mut edited = managed_copy("team-a", "corp-registry", "corp", SOURCE_PASSWORD);
    edited["data"][".dockerconfigjson"] = STANDARD.encode(dockerconfigjson(TENANT_PASSWORD)).into();
    let fake = Fake::new(
        vec![namespace("team-a", json!({"tenant-tier": "internal"}), false)],
        vec![source(SOURCE_PASSWORD), edited],
    );
    let metrics = Arc::new(Metrics::new());
    reconcile_counted(&fake, cps(None), metrics.clone()).await.expect("the pass succeeds");
    let patch = &fake.find("PATCH", "/api/v1/namespaces/team-a/secrets/corp-registry");
    assert_eq!(patch.len(), 1, "{:?}", fake.lines());
    let mut want = expected_copy("team-a", SOURCE_PASSWORD);
    want["metadata"]["uid"] = "uid-team-a-corp-registry".into();
    assert_eq!(patch[0].body, want, "restored by a uid-guarded forced apply");
    assert_eq!(fake.secret("team-a", "corp-registry").unwrap()["data"], want["data"]);
    assert!(
        metrics.encode().lines().any(|l| l == "pullsecret_injector_copies_restored_total 1"),
        "{}",
        metrics.encode()
    );
    let events = events(&fake);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].0.as_str(), events[0].1.as_str()), ("Warning", "CopyModified"));
    assert!(events[0].2.contains("restored: team-a"), "{events:?}");
    let status = fake.world().cps.clone().unwrap()["status"].clone();
    assert_eq!(
        (status["syncedCopies"].as_u64(), condition(&status, "Ready")["reason"].as_str()),
        (Some(1), Some("Synced"))
    );
    assert_no_credentials(&fake, &logs.text());

    fake.clear();
    let written = fake.world().cps.clone().unwrap();
    reconcile_counted(&fake, written, metrics.clone()).await.expect("the second pass succeeds");
    assert_eq!(fake.lines(), strings(&["GET /api/v1/namespaces/platform-creds/secrets/corp-registry"]));
}

/// Issue 11, class 13: Secrets a tenant labels like copies are not copies: without a controller ownerReference
/// to this resource's uid, none is rewritten or deleted, wherever it is and whatever it is named; one that holds
/// the target name in a selected namespace is a conflict.
#[tokio::test]
async fn secrets_that_only_carry_the_labels_are_never_touched() {
    let forged = |ns: &str, name: &str, owners: Value| {
        let mut s = managed_copy(ns, name, "corp", TENANT_PASSWORD);
        s["metadata"]["ownerReferences"] = owners;
        s
    };
    let forgeries = vec![
        // Selected, at the target name, labels and annotations of a copy: a conflict, not an update.
        forged("team-a", "corp-registry", json!([])),
        // Selected, another name (a former targetName, to the controller's eyes): not deleted.
        forged("team-b", "old-name", json!([])),
        // Not selected: not deleted.
        forged("team-e", "corp-registry", json!([])),
        // Another resource's uid (a deleted and re-created one): not ours either.
        forged("team-e", "other", owned_by("corp-before-recreation")),
    ];
    let mut secrets = vec![source(SOURCE_PASSWORD)];
    secrets.extend(forgeries.iter().cloned());
    let fake = Fake::new(cluster(), secrets);
    reconcile(&fake, cps(None)).await.expect("the pass succeeds");
    for f in &forgeries {
        let (ns, name) = (f["metadata"]["namespace"].as_str().unwrap(), f["metadata"]["name"].as_str().unwrap());
        assert_eq!(fake.secret(ns, name).as_ref(), Some(f), "{ns}/{name} untouched");
        let path = format!("/api/v1/namespaces/{ns}/secrets/{name}");
        assert!(fake.requests().iter().all(|r| r.path != path || r.method == "GET"), "{ns}/{name}: {:?}", fake.lines());
    }
    let status = fake.world().cps.clone().unwrap()["status"].clone();
    let conflict = condition(&status, "Conflict");
    assert!(conflict["message"].as_str().unwrap().contains("in 1 namespace(s): team-a"), "{conflict}");
}

/// `controller::distribute` end to end, as `serve` runs it: on the credential cache's own watches (`cluster::watch`
/// with the controller's taps), opening none of its own; it follows a rotation and a new namespace through them,
/// ignores forged copies and restores an edited one.
#[tokio::test]
async fn distribute_runs_on_the_cache_watches_and_follows_rotation_and_new_namespaces() {
    let fake = Fake::new(
        vec![
            namespace("platform-creds", json!({}), false),
            namespace("team-a", json!({"tenant-tier": "internal"}), false),
        ],
        vec![source(SOURCE_PASSWORD)],
    );
    fake.world().cps = Some(cps(None));
    // The same shutdown signal `serve` hands its other tasks, and the same wiring of the cache's watches to the
    // controller.
    let (stop, shutdown) = Shutdown::new();
    let metrics = Arc::new(Metrics::new());
    let (taps, feeds) = controller::feeds();
    let live = Arc::new(LiveCredentials::new(metrics.clone()));
    let readiness = Arc::new(Readiness::waiting_for(&SYNC_PARTS));
    let cache = tokio::spawn(cluster::watch(fake.client(), live.clone(), readiness, metrics.clone(), taps));
    let task = tokio::spawn(controller::distribute(fake.client(), metrics.clone(), feeds, live, shutdown.wait()));

    until("the first copy", || fake.secret("team-a", "corp-registry").is_some()).await;
    assert_eq!(
        fake.secret("team-a", "corp-registry").unwrap()["data"],
        expected_copy("team-a", SOURCE_PASSWORD)["data"]
    );

    // Every watch is open (`collection` routes only those), once: the cache's four and its metadata-only watch of
    // the Secrets of other types under the distribution's targetName. The controller adds none.
    until("every watch", || fake.world().watches.len() == 5).await;
    let collections =
        ["/api/v1/secrets", "/api/v1/namespaces", "/apis/pullsecret-injector.io/v1alpha1/clusterpullsecrets"];
    let mut watched = Vec::new();
    for r in fake.requests().iter().filter(|r| r.method == "GET" && collections.contains(&r.path.as_str())) {
        let Some(what) = collection(&r.path.trim_start_matches('/').split('/').collect::<Vec<_>>(), &r.query) else {
            panic!("an unexpected list or watch: {}", r.line());
        };
        assert!(!what.starts_with("copies-"), "the controller watches copies of its own: {}", r.line());
        assert_eq!(r.metadata_only, what == "other-types-by-name", "{}", r.line());
        let streaming = r.query.split('&').any(|p| p == "sendInitialEvents=true");
        if r.query.split('&').any(|p| p == "watch=true") && !streaming {
            watched.push(what);
        }
    }
    watched.sort_unstable();
    let before_dedup = watched.len();
    watched.dedup();
    assert_eq!(watched.len(), before_dedup, "one watch per collection: {watched:?}");

    // Rotation: the source changes, its watch says so; the copy follows within seconds.
    let rotated = source(SOURCE_PASSWORD_V2);
    fake.world().secrets.insert(("platform-creds".into(), "corp-registry".into()), rotated.clone());
    fake.push("sources-dockerconfigjson", "MODIFIED", rotated.clone());
    until("the rotated copy", || {
        fake.secret("team-a", "corp-registry")
            .is_some_and(|s| s["data"] == expected_copy("team-a", SOURCE_PASSWORD_V2)["data"])
    })
    .await;

    // A namespace created later is served as it appears.
    let new_ns = namespace("team-new", json!({"tenant-tier": "internal"}), false);
    fake.world().namespaces.push(new_ns.clone());
    fake.push("namespaces", "ADDED", new_ns.clone());
    until("a copy in the new namespace", || fake.secret("team-new", "corp-registry").is_some()).await;

    // Issue 11, class 13: a tenant floods its namespace with pull Secrets carrying the copies' labels (and one
    // with an ownerReference to another uid): none calls for a pass. Then, class 14: the tenant rewrites its
    // copy's payload; the next event on the same watch (so after the whole flood) is restored by one pass.
    let source_reads = |fake: &Fake| fake.find("GET", "/api/v1/namespaces/platform-creds/secrets/corp-registry").len();
    let before = source_reads(&fake);
    for i in 0..300 {
        let mut forged = managed_copy("team-g", &format!("forged-{i}"), "corp", TENANT_PASSWORD);
        forged["metadata"]["ownerReferences"] = if i == 0 { owned_by("not-corp") } else { json!([]) };
        fake.push("sources-dockerconfigjson", "ADDED", forged);
    }
    let copy = fake.secret("team-a", "corp-registry").unwrap();
    let mut edited = copy.clone();
    edited["data"][".dockerconfigjson"] = STANDARD.encode(dockerconfigjson(TENANT_PASSWORD)).into();
    fake.world().secrets.insert(("team-a".into(), "corp-registry".into()), edited.clone());
    fake.push("sources-dockerconfigjson", "MODIFIED", edited);
    until("the edited copy restored", || {
        fake.secret("team-a", "corp-registry").is_some_and(|s| s["data"] == copy["data"])
    })
    .await;
    assert_eq!(source_reads(&fake) - before, 1, "one pass for the drift, none for the 300 forged Secrets");
    until("the restore counted", || {
        metrics.encode().lines().any(|l| l == "pullsecret_injector_copies_restored_total 1")
    })
    .await;
    until("a CopyModified Event", || events(&fake).iter().any(|e| e.0 == "Warning" && e.1 == "CopyModified")).await;
    assert!(fake.requests().iter().all(|r| !(r.path.contains("/forged-") && r.method != "GET")), "forged: untouched");

    let _ = stop.send(true);
    tokio::time::timeout(WAIT, task).await.expect("run stops on shutdown").expect("run does not panic");
    cache.abort();
}
