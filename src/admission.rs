//! AdmissionReview v1 in, AdmissionReview v1 out: the translation between the API server's protocol and the
//! decision. Synchronous and free of I/O, so `serve` and `mutate` share it byte for byte.
//!
//! Errors follow CONTRACT.md: a body that is not an AdmissionReview is rejected (HTTP 400, or `allowed: false`
//! when its `uid` is known); a review we cannot act on (another kind or operation, a Pod we do not understand) is
//! allowed unchanged with a warning, because the webhook never blocks a Pod for its own limits.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::credentials::CredentialSource;
use crate::decision::{self, Decision, Policy};
use crate::pod::PodView;

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";
/// Prefix of every warning, so that `kubectl` users know where it comes from.
pub const WARNING_PREFIX: &str = "pullsecret-injector: ";

/// How a review ended, for logs and metrics (each variant is a metric label).
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
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Patched => "patched",
            Outcome::Unchanged => "unchanged",
            Outcome::Denied => "denied",
            Outcome::Skipped => "skipped",
            Outcome::Invalid => "invalid",
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn<'a> {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(borrow)]
    request: Option<RequestIn<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn<'a> {
    uid: Option<String>,
    kind: Option<GroupVersionKind>,
    sub_resource: Option<String>,
    namespace: Option<String>,
    operation: Option<String>,
    #[serde(borrow)]
    object: Option<&'a RawValue>,
    #[serde(default)]
    dry_run: Option<bool>,
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
pub fn review(body: &[u8], credentials: &dyn CredentialSource, policy: &Policy) -> Reviewed {
    let parsed: ReviewIn = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        Err(e) => return invalid(body, format!("request body is not an AdmissionReview: {e}")),
    };
    if parsed.api_version.as_deref() != Some(API_VERSION) || parsed.kind.as_deref() != Some(KIND) {
        return invalid(
            body,
            format!(
                "expected apiVersion {API_VERSION} kind {KIND}, got apiVersion {:?} kind {:?}",
                parsed.api_version.unwrap_or_default(),
                parsed.kind.unwrap_or_default()
            ),
        );
    }
    let Some(request) = parsed.request else {
        return invalid(body, "AdmissionReview has no request".into());
    };
    let uid = match request.uid {
        Some(uid) if !uid.is_empty() => uid,
        _ => return invalid(body, "AdmissionReview request has no uid".into()),
    };
    let mut info = RequestInfo {
        uid,
        namespace: request.namespace.clone().unwrap_or_default(),
        dry_run: request.dry_run.unwrap_or(false),
        ..Default::default()
    };

    let is_pod = request.kind.as_ref().is_some_and(|k| k.group.is_empty() && k.kind == "Pod");
    let operation = request.operation.as_deref().unwrap_or_default();
    if !is_pod || operation != "CREATE" || request.sub_resource.as_deref().is_some_and(|s| !s.is_empty()) {
        let what = request.kind.as_ref().map(|k| k.kind.as_str()).unwrap_or("unknown kind");
        return skipped(info, format!("only Pod CREATE is handled, got {operation} of {what}; left unchanged"));
    }
    let Some(object) = request.object.filter(|o| o.get() != "null") else {
        return skipped(info, "request has no object; left unchanged".into());
    };
    let pod = match PodView::from_json(object.get()) {
        Ok(pod) => pod,
        Err(e) => return skipped(info, format!("{e}; left unchanged")),
    };
    info.pod = pod.display_name().to_string();
    if info.namespace.is_empty() {
        info.namespace = pod.namespace.clone().unwrap_or_default();
    }
    let namespace_view = credentials.namespace(&info.namespace);
    let decision = decision::decide(&pod, &namespace_view, policy);
    respond(info, &pod, decision)
}

/// The response for a decision.
fn respond(info: RequestInfo, pod: &PodView, decision: Decision) -> Reviewed {
    let warnings: Vec<String> = decision.warnings.iter().map(|w| format!("{WARNING_PREFIX}{w}")).collect();
    let (outcome, allowed, status, patch) = match &decision.denied {
        Some(message) => (Outcome::Denied, false, Some(StatusOut { code: 403, message, reason: "Forbidden" }), None),
        None => match decision::patch(pod, &decision.add) {
            Some(patch) => {
                let bytes = serde_json::to_vec(&patch).expect("a JSON patch always serializes");
                (Outcome::Patched, true, None, Some(base64::engine::general_purpose::STANDARD.encode(bytes)))
            }
            None => (Outcome::Unchanged, true, None, None),
        },
    };
    let patch_type = patch.as_ref().map(|_| "JSONPatch");
    let body = encode(ResponseOut { uid: &info.uid, allowed, status, patch, patch_type, warnings: &warnings });
    Reviewed { outcome, http_status: 200, body, info, decision: Some(decision), reason: None }
}

fn skipped(info: RequestInfo, reason: String) -> Reviewed {
    let warnings = [format!("{WARNING_PREFIX}{reason}")];
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
            outcome: Outcome::Invalid,
            http_status: 500,
            body: format!("{reason}\n").into_bytes(),
            info: RequestInfo::default(),
            decision: None,
            reason: Some(reason),
        };
    };
    skipped(RequestInfo { uid, ..Default::default() }, reason)
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
