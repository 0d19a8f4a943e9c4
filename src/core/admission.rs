//! AdmissionReview v1 in, AdmissionReview v1 out: the translation between the API server's protocol and the
//! decision. Synchronous and free of I/O, so `serve` and `mutate` share it byte for byte.
//!
//! Errors follow docs/contract.md: a body that is not an AdmissionReview is rejected (HTTP 400, or `allowed: false`
//! when its `uid` is known); a review we cannot act on (another kind or operation, a Pod we do not understand) is
//! allowed unchanged with a warning, because the webhook never blocks a Pod for its own limits.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::core::credentials::CredentialSource;
use crate::core::decision::{self, Decision, Policy};
use crate::core::pod::{PodError, PodView, RawPod};

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";
/// Prefix of every warning, so that `kubectl` users know where it comes from.
pub const WARNING_PREFIX: &str = "pullsecret-injector: ";

/// How a review was answered, for logs and metrics (`as_str` is the metric label): the one list of outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Secrets were added.
    Patched,
    /// Allowed without a patch: nothing to add, opted out, or nothing we act on.
    Unchanged,
    /// Refused by `--deny-unmatched`.
    Denied,
    /// Allowed unchanged because we could not act (not a Pod CREATE, Pod not understood).
    Skipped,
    /// The body was not a usable AdmissionReview.
    Invalid,
    /// The decision failed (a bug): allowed unchanged, never blocked.
    InternalError,
    /// Answered before the credentials' first sync: allowed unchanged with a warning, never denied.
    CredentialsNotLoaded,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Patched => "patched",
            Outcome::Unchanged => "unchanged",
            Outcome::Denied => "denied",
            Outcome::Skipped => "skipped",
            Outcome::Invalid => "invalid",
            Outcome::InternalError => "internal_error",
            Outcome::CredentialsNotLoaded => "credentials_not_loaded",
        }
    }
}

/// The identity of the request, for logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub uid: String,
    pub namespace: String,
    pub pod: String,
    pub dry_run: bool,
}

/// Everything `review` produced.
#[derive(Debug)]
pub struct Reviewed {
    pub outcome: Outcome,
    /// HTTP status to answer with: 200, or 400 when the body is unusable and has no `uid`.
    pub http_status: u16,
    /// The response body: an AdmissionReview, or a one-line reason with 400.
    pub body: Vec<u8>,
    pub info: RequestInfo,
    /// The decision, when one was made.
    pub decision: Option<Decision>,
    /// Why the review was skipped or invalid (also in the body).
    pub reason: Option<String>,
}

/// An AdmissionReview as read, with the request's object read as `O`: a Pod in one pass on the hot path, or kept
/// raw by the fallback that words every error.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<O> {
    api_version: Option<String>,
    kind: Option<String>,
    request: Option<Request<O>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request<O> {
    uid: Option<String>,
    kind: Option<GroupVersionKind>,
    sub_resource: Option<String>,
    namespace: Option<String>,
    operation: Option<String>,
    /// `None` for an absent or `null` object, as both paths treat them.
    object: Option<O>,
    #[serde(default)]
    dry_run: Option<bool>,
    user_info: Option<UserInfo>,
}

/// Who sent the request to the API server.
#[derive(Deserialize, Default)]
struct UserInfo {
    username: Option<String>,
    groups: Option<Vec<String>>,
}

impl UserInfo {
    /// A kubelet's identity (`system:node:<name>` in `system:nodes`), the only one that creates real mirror Pods.
    fn is_node(&self) -> bool {
        self.username.as_deref().is_some_and(|u| u.starts_with("system:node:"))
            && self.groups.iter().flatten().any(|g| g == "system:nodes")
    }
}

impl<O> Envelope<O> {
    /// The same envelope with the object read further.
    fn map_object<P>(self, f: impl FnOnce(O) -> Option<P>) -> Envelope<P> {
        Envelope {
            api_version: self.api_version,
            kind: self.kind,
            request: self.request.map(|r| Request {
                uid: r.uid,
                kind: r.kind,
                sub_resource: r.sub_resource,
                namespace: r.namespace,
                operation: r.operation,
                object: r.object.and_then(f),
                dry_run: r.dry_run,
                user_info: r.user_info,
            }),
        }
    }
}

#[derive(Deserialize)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
}

/// Just the uid, read leniently from a body that failed the strict parse.
#[derive(Deserialize)]
struct UidOnly {
    request: Option<UidOnlyRequest>,
}
#[derive(Deserialize)]
struct UidOnlyRequest {
    uid: Option<serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

#[derive(Serialize)]
struct StatusOut<'a> {
    code: u16,
    message: &'a str,
    reason: &'static str,
}

/// Answers one AdmissionReview body.
///
/// Nearly every body reads in one pass, the Pod included. Any body that does not (not JSON, a field of the wrong
/// type, an object that is no Pod-shaped JSON) is read again with the object kept raw, which alone words the
/// errors; when the first pass succeeds the two agree on everything.
pub fn review(body: &[u8], credentials: &dyn CredentialSource, policy: &Policy) -> Reviewed {
    if let Ok(parsed) = serde_json::from_slice::<Envelope<RawPod>>(body) {
        return review_parsed(body, parsed.map_object(|pod| Some(pod.into_view())), credentials, policy);
    }
    review_two_pass(body, credentials, policy)
}

/// The fallback: the object kept raw while the review is checked, then read as a Pod, wording every error.
fn review_two_pass(body: &[u8], credentials: &dyn CredentialSource, policy: &Policy) -> Reviewed {
    let parsed: Envelope<Box<RawValue>> = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        Err(e) => return invalid(body, format!("request body is not an AdmissionReview: {e}")),
    };
    let parsed = parsed.map_object(|raw| (raw.get() != "null").then(|| PodView::from_json(raw.get())));
    review_parsed(body, parsed, credentials, policy)
}

/// The checks and the decision once the body is read; `pod` is `None` when the request has no object.
fn review_parsed(
    body: &[u8],
    parsed: Envelope<Result<PodView, PodError>>,
    credentials: &dyn CredentialSource,
    policy: &Policy,
) -> Reviewed {
    let Envelope { api_version, kind, request } = parsed;
    if api_version.as_deref() != Some(API_VERSION) || kind.as_deref() != Some(KIND) {
        return invalid(
            body,
            format!(
                "expected apiVersion {API_VERSION} kind {KIND}, got apiVersion {:?} kind {:?}",
                api_version.unwrap_or_default(),
                kind.unwrap_or_default()
            ),
        );
    }
    let Some(mut request) = request else {
        return invalid(body, "AdmissionReview has no request".into());
    };
    let pod = request.object.take();
    let uid = match request.uid {
        Some(uid) if !uid.is_empty() => uid,
        _ => return invalid(body, "AdmissionReview request has no uid".into()),
    };
    let mut info = RequestInfo {
        uid,
        namespace: request.namespace.unwrap_or_default(),
        dry_run: request.dry_run.unwrap_or(false),
        ..Default::default()
    };

    let is_pod = request.kind.as_ref().is_some_and(|k| k.group.is_empty() && k.kind == "Pod");
    let operation = request.operation.as_deref().unwrap_or_default();
    if !is_pod || operation != "CREATE" || request.sub_resource.as_deref().is_some_and(|s| !s.is_empty()) {
        let what = request.kind.as_ref().map(|k| k.kind.as_str()).unwrap_or("unknown kind");
        return skipped(info, format!("only Pod CREATE is handled, got {operation} of {what}; left unchanged"));
    }
    let Some(pod) = pod else {
        return skipped(info, "request has no object; left unchanged".into());
    };
    let pod = match pod {
        Ok(pod) => pod,
        Err(e) => return skipped(info, format!("{e}; left unchanged")),
    };
    info.pod = pod.display_name().to_string();
    // The Pod lives in request.namespace, which the API server fills from the URL it authorized; the object's own
    // field is only what the client wrote. A review without one, or with two that differ, names no namespace we
    // may read credentials from.
    if info.namespace.is_empty() {
        return skipped(info, "request has no namespace; left unchanged".into());
    }
    if pod.namespace.as_deref().is_some_and(|ns| !ns.is_empty() && ns != info.namespace) {
        return skipped(info, "object namespace differs from the request's; left unchanged".into());
    }
    // A static Pod's mirror: its images are pulled from the node's file, never with pull Secrets, and the API
    // server refuses a mirror Pod that references Secrets. Only a node creates real ones; a tenant's Pod that
    // merely carries the annotation goes through the decision (and its policy) like any other.
    if pod.mirror && request.user_info.as_ref().is_some_and(UserInfo::is_node) {
        return skipped(info, "mirror Pod created by its node; left unchanged".into());
    }
    let namespace_view = credentials.namespace(&info.namespace);
    let decision = decision::decide(&pod, &namespace_view, policy);
    respond(info, &pod, decision)
}

/// The response for a decision.
fn respond(info: RequestInfo, pod: &PodView, decision: Decision) -> Reviewed {
    let warnings: Vec<String> = decision.warnings.iter().map(|w| warning_line(w)).collect();
    let (outcome, allowed, status, patch) = match &decision.denied {
        Some(message) => (Outcome::Denied, false, Some(StatusOut { code: 403, message, reason: "Forbidden" }), None),
        None => match decision::patch_json(pod, &decision.add, decision::POD_SPEC) {
            Some(bytes) => {
                (Outcome::Patched, true, None, Some(base64::engine::general_purpose::STANDARD.encode(bytes)))
            }
            None => (Outcome::Unchanged, true, None, None),
        },
    };
    let patch_type = patch.as_ref().map(|_| "JSONPatch");
    let body = encode(ResponseOut { uid: &info.uid, allowed, status, patch, patch_type, warnings: &warnings });
    Reviewed { outcome, http_status: 200, body, info, decision: Some(decision), reason: None }
}

/// One warning as the API server shows it: prefixed, one line, at most 256 characters in all (the reason may quote
/// request fields of any length and content).
fn warning_line(text: &str) -> String {
    decision::short(&format!("{WARNING_PREFIX}{text}"), decision::MAX_WARNING_CHARS)
}

fn skipped(info: RequestInfo, reason: String) -> Reviewed {
    let warnings = [warning_line(&reason)];
    let body = encode(ResponseOut {
        uid: &info.uid,
        allowed: true,
        status: None,
        patch: None,
        patch_type: None,
        warnings: &warnings,
    });
    Reviewed { outcome: Outcome::Skipped, http_status: 200, body, info, decision: None, reason: Some(reason) }
}

/// A body we cannot use: 400 with the reason, or a refusal carrying the uid when one can be read.
fn invalid(body: &[u8], reason: String) -> Reviewed {
    let reason = reason.replace('\n', " ");
    let uid = lenient_uid(body);
    let info = RequestInfo { uid: uid.clone().unwrap_or_default(), ..Default::default() };
    let (http_status, body) = match uid {
        Some(uid) => {
            let status = StatusOut { code: 400, message: &reason, reason: "BadRequest" };
            let out = ResponseOut {
                uid: &uid,
                allowed: false,
                status: Some(status),
                patch: None,
                patch_type: None,
                warnings: &[],
            };
            (200, encode(out))
        }
        None => (400, format!("{reason}\n").into_bytes()),
    };
    Reviewed { outcome: Outcome::Invalid, http_status, body, info, decision: None, reason: Some(reason) }
}

/// The answer when deciding failed inside the webhook: allowed unchanged with a warning (the webhook never blocks
/// a Pod for its own failure), or HTTP 500 when not even the uid can be read.
pub fn internal_error(body: &[u8]) -> Reviewed {
    let reason = "internal error; Pod left unchanged".to_string();
    let Some(uid) = lenient_uid(body) else {
        return Reviewed {
            outcome: Outcome::InternalError,
            http_status: 500,
            body: format!("{reason}\n").into_bytes(),
            info: RequestInfo::default(),
            decision: None,
            reason: Some(reason),
        };
    };
    Reviewed { outcome: Outcome::InternalError, ..skipped(RequestInfo { uid, ..Default::default() }, reason) }
}

fn lenient_uid(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<UidOnly>(body)
        .ok()
        .and_then(|r| r.request?.uid)
        .and_then(|uid| uid.as_str().map(str::to_string))
        .filter(|uid| !uid.is_empty())
}

fn encode(response: ResponseOut<'_>) -> Vec<u8> {
    serde_json::to_vec(&ReviewOut { api_version: API_VERSION, kind: KIND, response })
        .expect("an AdmissionReview always serializes")
}

/// A Pod CREATE review around `pod`, for `mutate` given a bare Pod (so both inputs take the same path).
pub fn review_for_pod(pod: &serde_json::Value, namespace: &str) -> Vec<u8> {
    let name = pod.pointer("/metadata/name").cloned().unwrap_or(serde_json::Value::Null);
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "request": {
            "uid": "00000000-0000-0000-0000-000000000000",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {},
            "object": pod,
            "dryRun": true,
        }
    }))
    .expect("a JSON value always serializes")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::core::credentials::{CandidateSecret, NamespaceCredentials, Origin};
    use crate::kubelet::docker_config::SecretKind;

    struct OneNamespace(Arc<NamespaceCredentials>);

    impl CredentialSource for OneNamespace {
        fn namespace(&self, _: &str) -> Arc<NamespaceCredentials> {
            self.0.clone()
        }
    }

    fn review_of(request: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": API_VERSION, "kind": KIND, "request": request})).unwrap()
    }

    fn pod_request(object: Value) -> Value {
        json!({
            "uid": "u-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "team",
            "operation": "CREATE",
            "userInfo": {"username": "x", "extra": {"k": ["v"]}},
            "object": object,
        })
    }

    /// The one-pass read is only a shortcut: for every shape of body (read in one pass or not), `review` answers
    /// byte for byte what the two-pass path answers.
    #[test]
    fn one_pass_and_two_pass_answer_the_same() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "web-", "labels": {"a": "b"}, "managedFields": [{"x": 1}]},
            "spec": {"containers": [{"name": "app", "image": "reg.example.com/app:1", "env": [{"name": "A"}]},
                                    {"name": "hub", "image": "nginx"}],
                     "volumes": [{"name": "v", "emptyDir": {}}]}
        });
        let mut listed = pod.clone();
        listed["spec"]["imagePullSecrets"] = json!([{"name": "hub"}]);
        let mut opted_out = pod.clone();
        opted_out["metadata"]["labels"] = json!({crate::core::pod::INJECT_LABEL: crate::core::pod::INJECT_DISABLED});
        let mut no_namespace = pod_request(pod.clone());
        no_namespace["namespace"] = json!("");
        no_namespace["object"]["metadata"]["namespace"] = json!("other");
        let mut update = pod_request(pod.clone());
        update["operation"] = json!("UPDATE");
        let mut subresource = pod_request(pod.clone());
        subresource["subResource"] = json!("ephemeralcontainers");
        let mut no_uid = pod_request(pod.clone());
        no_uid["uid"] = json!("");
        let mut dry_run = pod_request(pod.clone());
        dry_run["dryRun"] = json!(true);
        let mut no_object = pod_request(Value::Null);
        no_object.as_object_mut().unwrap().remove("object");
        let mut deployment = pod_request(json!({"kind": "Deployment", "spec": {"template": {}}}));
        deployment["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});

        // (case, body, read in one pass)
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            ("patched", review_of(pod_request(pod.clone())), true),
            ("listed", review_of(pod_request(listed)), true),
            ("opted out", review_of(pod_request(opted_out)), true),
            ("no request namespace", review_of(no_namespace), true),
            ("update", review_of(update), true),
            ("subresource", review_of(subresource), true),
            ("no uid", review_of(no_uid), true),
            ("dry run", review_of(dry_run), true),
            ("object null", review_of(pod_request(Value::Null)), true),
            ("no object", review_of(no_object), true),
            ("another kind", review_of(deployment), true),
            ("a Deployment as a Pod", review_of(pod_request(json!({"kind": "Deployment", "spec": {}}))), true),
            ("no spec", review_of(pod_request(json!({"kind": "Pod"}))), true),
            ("no request", serde_json::to_vec(&json!({"apiVersion": API_VERSION, "kind": KIND})).unwrap(), true),
            ("wrong version", br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#.to_vec(), true),
            ("containers not a list", review_of(pod_request(json!({"spec": {"containers": "nginx"}}))), false),
            ("image not a string", review_of(pod_request(json!({"spec": {"containers": [{"image": 5}]}}))), false),
            ("object not an object", review_of(pod_request(json!([1, 2]))), false),
            ("uid not a string", review_of(json!({"uid": 5})), false),
            ("not JSON", b"{not json".to_vec(), false),
        ];
        let ns = Arc::new(NamespaceCredentials::new(
            Default::default(),
            ["hub", "reg"]
                .iter()
                .zip(["https://index.docker.io/v1/", "reg.example.com"])
                .map(|(name, key)| {
                    Arc::new(CandidateSecret {
                        name: name.to_string(),
                        kind: SecretKind::DockerConfigJson,
                        keys: Ok(vec![key.to_string()]),
                        origin: Origin::Namespace,
                        service_account: None,
                        over_limit: None,
                        expires_at: None,
                    })
                })
                .collect(),
        ));
        let source = OneNamespace(ns);
        let policy = Policy::default();
        for (case, body, one_pass) in cases {
            assert_eq!(serde_json::from_slice::<Envelope<RawPod>>(&body).is_ok(), one_pass, "{case}: path taken");
            let (fast, slow) = (review(&body, &source, &policy), review_two_pass(&body, &source, &policy));
            assert_eq!(String::from_utf8_lossy(&fast.body), String::from_utf8_lossy(&slow.body), "{case}");
            assert_eq!(
                (fast.outcome, fast.http_status, &fast.info, &fast.decision, &fast.reason),
                (slow.outcome, slow.http_status, &slow.info, &slow.decision, &slow.reason),
                "{case}"
            );
        }
    }

    /// The namespace is the request's (what the API server authorized), never the object's; mirror Pods are
    /// skipped only when a node creates them.
    #[test]
    fn namespace_comes_from_the_request_and_only_nodes_skip_with_mirror_pods() {
        let ns = Arc::new(NamespaceCredentials::new(
            Default::default(),
            vec![Arc::new(CandidateSecret {
                name: "reg".into(),
                kind: SecretKind::DockerConfigJson,
                keys: Ok(vec!["reg.example.com".into()]),
                origin: Origin::Namespace,
                service_account: None,
                over_limit: None,
                expires_at: None,
            })],
        ));
        let source = OneNamespace(ns);
        let pod =
            json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "a", "image": "reg.example.com/a"}]}});
        let outcome = |request: Value| review(&review_of(request), &source, &Policy::default()).outcome;
        assert_eq!(outcome(pod_request(pod.clone())), Outcome::Patched);

        let mut same = pod.clone();
        same["metadata"]["namespace"] = json!("team");
        assert_eq!(outcome(pod_request(same)), Outcome::Patched, "the object may repeat the request's namespace");
        let mut other = pod.clone();
        other["metadata"]["namespace"] = json!("other-tenant");
        assert_eq!(outcome(pod_request(other.clone())), Outcome::Skipped, "object namespace differs");
        let mut no_namespace = pod_request(other);
        no_namespace.as_object_mut().unwrap().remove("namespace");
        assert_eq!(outcome(no_namespace), Outcome::Skipped, "no request namespace");

        let mut mirror = pod.clone();
        mirror["metadata"]["annotations"] = json!({crate::core::pod::MIRROR_ANNOTATION: "x"});
        let as_user = |username: &str, groups: &[&str]| {
            let mut request = pod_request(mirror.clone());
            request["userInfo"] = json!({"username": username, "groups": groups});
            outcome(request)
        };
        assert_eq!(as_user("system:node:n1", &["system:nodes", "system:authenticated"]), Outcome::Skipped);
        assert_eq!(as_user("tenant", &["system:authenticated"]), Outcome::Patched, "a tenant's mirror annotation");
        assert_eq!(as_user("system:node:n1", &["system:authenticated"]), Outcome::Patched, "not in system:nodes");
        assert_eq!(as_user("system:nodes", &["system:nodes"]), Outcome::Patched, "not a node's user name");
    }
}
