//! The objects of a manifest stream as `mutate` and `explain` read them: which ones carry a Pod (a Pod, or a
//! workload's Pod template, [`workload::locate`]), where in their document, in which namespace, and the Pod the
//! webhook will see for each. Documents are kept as parsed, keys in the order written ([`YamlValue`]), so that a
//! patched stream comes out as it came in.

use serde_json::Value;
use serde_yaml_ng::Value as YamlValue;

use crate::commands::CliError;
use crate::core::pod::{PodError, PodView};
use crate::core::workload::{self, PodLocation};
use crate::safe_text;
use crate::sources::manifests;

/// One object of the input that carries a Pod.
#[derive(Debug, Clone)]
pub struct PodObject {
    /// Its document, an index into the input's documents.
    pub doc: usize,
    /// The JSON pointer of the object in its document: empty, or `/items/3` for an item of a `List`.
    pub at: String,
    pub location: PodLocation,
    /// How messages name the object: `Deployment "web"`.
    pub label: String,
    /// Where it is, for messages: `document 2`, `document 1, item 3`; empty for the only object of a one-document
    /// input.
    pub place: String,
    /// The namespace its Pods are created in: the object's own, else `-n`.
    pub namespace: String,
    /// The Pod the webhook sees: the object itself, or what its controller creates from the template.
    pub pod: Value,
    pub view: PodView,
}

impl PodObject {
    /// The JSON pointer of the Pod spec in the document: where the patch adds `imagePullSecrets`.
    pub fn spec_pointer(&self) -> String {
        format!("{}{}", self.at, self.location.spec)
    }

    /// A bare Pod, the only object of its input: its messages are the webhook's own, without a label.
    pub fn is_lone_pod(&self, documents: usize) -> bool {
        documents == 1 && self.at.is_empty() && self.location.template.is_empty()
    }
}

/// The objects of an input: those that carry a Pod, and a note for each other one (passed through unchanged).
#[derive(Debug, Default)]
pub struct Objects {
    pub pods: Vec<PodObject>,
    pub notes: Vec<String>,
    /// Where the input holds a Secret (`input: place: Secret "name"`): printing the stream would print its
    /// data.
    pub secrets: Vec<String>,
}

/// Reads the objects of `docs` (from the input named `input`). `kind: List` (any kind ending in `List` with
/// `items`) is opened, item by item. Unusable input (exit 2): an AdmissionReview among other documents, an object
/// of a Pod-carrying kind without a Pod template, a Pod that cannot be read, a namespace that is not a string.
pub fn read(input: &str, docs: &[YamlValue], default_namespace: &str) -> Result<Objects, CliError> {
    let mut reader = Reader { input, default_namespace, objects: Objects::default() };
    let single = docs.len() == 1;
    for (doc, value) in docs.iter().enumerate() {
        let place = if single { String::new() } else { format!("document {}", doc + 1) };
        reader.walk(doc, value, String::new(), place, ("", ""))?;
    }
    Ok(reader.objects)
}

/// What [`read`] carries through a document.
struct Reader<'a> {
    input: &'a str,
    default_namespace: &'a str,
    objects: Objects,
}

impl Reader<'_> {
    /// One value of document `doc` at pointer `at`; `implied` is the (apiVersion, kind) of an item of a typed list.
    fn walk(
        &mut self,
        doc: usize,
        value: &YamlValue,
        at: String,
        place: String,
        implied: (&str, &str),
    ) -> Result<(), CliError> {
        let (input, default_namespace) = (self.input, self.default_namespace);
        let objects = &mut self.objects;
        // The items of a typed list (`DeploymentList`, `SecretList`, as the API server returns them) carry no kind of
        // their own: the list's says what they are.
        let field = |name: &str| value.get(name).and_then(YamlValue::as_str).filter(|v| !v.is_empty());
        let kind = field("kind").unwrap_or(implied.1);
        let api_version = field("apiVersion").unwrap_or(implied.0);
        let label = label_of(kind, value);
        let context = |what: &str| context(input, &place, &label, what);
        if kind == crate::core::admission::KIND {
            return Err(CliError::Usage(context("an AdmissionReview must be the only document of the input")));
        }
        if kind.ends_with("List")
            && let Some(YamlValue::Sequence(items)) = value.get("items")
        {
            let item_kind = kind.strip_suffix("List").unwrap_or_default();
            let item_implied = if item_kind.is_empty() { ("", "") } else { (api_version, item_kind) };
            for (i, item) in items.iter().enumerate() {
                let item_place =
                    if place.is_empty() { format!("item {}", i + 1) } else { format!("{place}, item {}", i + 1) };
                let item_at = format!("{at}/items/{i}");
                self.walk(doc, item, item_at, item_place, item_implied)?;
            }
            return Ok(());
        }
        let Some(location) = workload::locate(api_version, kind) else {
            let what = if value.is_mapping() { "carries no Pod" } else { "is not an object" };
            objects.notes.push(context(&format!("{what}; passed through unchanged")));
            if kind == SECRET {
                objects.secrets.push(located(input, &place, &label));
            }
            return Ok(());
        };
        let namespace = match value.get("metadata").and_then(|m| m.get("namespace")) {
            None | Some(YamlValue::Null) => default_namespace.to_string(),
            Some(YamlValue::String(ns)) if ns.is_empty() => default_namespace.to_string(),
            Some(YamlValue::String(ns)) => ns.clone(),
            Some(_) => return Err(CliError::Usage(context("metadata.namespace is not a string"))),
        };
        let pod = if location.template.is_empty() {
            json(value).map_err(|e| CliError::Usage(context(&e)))?
        } else {
            let template = match pointer(value, location.template) {
                Some(template @ YamlValue::Mapping(_)) => template,
                _ => {
                    return Err(CliError::Usage(context(&format!("no Pod template at {}", dotted(location.template)))));
                }
            };
            let owner =
                value.get("metadata").and_then(|m| m.get("name")).and_then(YamlValue::as_str).unwrap_or_default();
            let template = json(template).map_err(|e| CliError::Usage(context(&e)))?;
            workload::pod_from_template(&template, &namespace, owner)
        };
        let view = PodView::from_value(&pod).map_err(|e| {
            let what = match &e {
                PodError::Shape(text) => format!("the Pod cannot be read: {}", manifests::without_values(text)),
                other => other.to_string(),
            };
            let what =
                if location.template.is_empty() { what } else { format!("{} ({what})", dotted(location.template)) };
            CliError::Usage(context(&what))
        })?;
        objects.pods.push(PodObject { doc, at, location, label, place, namespace, pod, view });
        Ok(())
    }
}

const SECRET: &str = "Secret";

/// Whether an object is a Secret (whose data is a credential, or may be): any object of kind `Secret`, whatever its
/// `apiVersion` says, so that no spelling gets one printed.
pub fn is_secret(value: &YamlValue) -> bool {
    value.get("kind").and_then(YamlValue::as_str) == Some(SECRET)
}

/// `input: place: label: what`, one display-safe line.
fn context(input: &str, place: &str, label: &str, what: &str) -> String {
    format!("{}: {}", located(input, place, label), safe_text::text(what))
}

/// `input: place: label`, display-safe: where an object is.
fn located(input: &str, place: &str, label: &str) -> String {
    let mut out = String::from(input);
    for part in [place, label] {
        if !part.is_empty() {
            out.push_str(": ");
            out.push_str(part);
        }
    }
    safe_text::text(&out).into_owned()
}

/// How messages name an object: its kind and name, display-safe and bounded (`Deployment "web"`).
pub fn label(value: &YamlValue) -> String {
    label_of(value.get("kind").and_then(YamlValue::as_str).unwrap_or_default(), value)
}

fn label_of(kind: &str, value: &YamlValue) -> String {
    let kind = if kind.is_empty() { "object without kind".to_string() } else { safe_text::line(kind, 63) };
    match value.get("metadata").and_then(|m| m.get("name")).and_then(YamlValue::as_str) {
        Some(name) if !name.is_empty() => format!("{kind} \"{}\"", safe_text::line(name, 253)),
        _ => kind,
    }
}

/// `/spec/template` as a user writes it: `spec.template`.
pub fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

/// A YAML value as JSON (the decision reads JSON). Fails only for what JSON cannot hold, such as a mapping used as
/// a key; the message quotes no value.
pub fn json(value: &YamlValue) -> Result<Value, String> {
    serde_json::to_value(value)
        .map_err(|e| format!("not representable as JSON ({})", manifests::without_values(&e.to_string())))
}

/// The value at a JSON pointer (RFC 6901) in a YAML document.
pub fn pointer<'v>(value: &'v YamlValue, pointer: &str) -> Option<&'v YamlValue> {
    tokens(pointer).try_fold(value, |value, token| match value {
        YamlValue::Mapping(map) => map.get(token.as_str()),
        YamlValue::Sequence(items) => items.get(token.parse::<usize>().ok()?),
        _ => None,
    })
}

fn tokens(pointer: &str) -> impl Iterator<Item = String> + '_ {
    pointer.split('/').skip(1).map(|t| t.replace("~1", "/").replace("~0", "~"))
}

/// Applies a JSON patch of `add` operations (the only ones the patch writer writes) to a YAML document, keeping its
/// key order: an added key goes last in its mapping, a key that exists keeps its place (`imagePullSecrets: null`).
pub fn apply(document: &mut YamlValue, patch: &json_patch::Patch) -> Result<(), String> {
    let operations = serde_json::to_value(patch).map_err(|e| e.to_string())?;
    for operation in operations.as_array().into_iter().flatten() {
        let path = operation["path"].as_str().unwrap_or_default();
        if operation["op"] != "add" {
            return Err(format!("unexpected patch operation {} at {path}", operation["op"]));
        }
        let value = serde_yaml_ng::to_value(&operation["value"]).map_err(|e| e.to_string())?;
        let (parent, last) = path.rsplit_once('/').ok_or_else(|| format!("patch path {path:?} is not a pointer"))?;
        let last = last.replace("~1", "/").replace("~0", "~");
        let target = tokens(parent)
            .try_fold(&mut *document, |value, token| match value {
                YamlValue::Mapping(map) => map.get_mut(token.as_str()),
                YamlValue::Sequence(items) => items.get_mut(token.parse::<usize>().ok()?),
                _ => None,
            })
            .ok_or_else(|| format!("patch path {path:?} names nothing in the object"))?;
        match target {
            YamlValue::Mapping(map) => {
                map.insert(YamlValue::String(last), value);
            }
            YamlValue::Sequence(items) if last == "-" => items.push(value),
            _ => return Err(format!("patch path {path:?} does not end in a mapping or a list")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(text: &str) -> Vec<YamlValue> {
        manifests::parse_ordered_documents(std::path::Path::new("in.yaml"), text).unwrap()
    }

    fn found(text: &str) -> Vec<(String, String, String, String)> {
        let objects = read("in", &docs(text), "dflt").unwrap();
        objects.pods.iter().map(|p| (p.place.clone(), p.label.clone(), p.namespace.clone(), p.spec_pointer())).collect()
    }

    #[test]
    fn objects_that_carry_a_pod_are_found_in_documents_and_lists() {
        let text = "
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {template: {spec: {containers: [{name: c, image: nginx}]}}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
---
apiVersion: v1
kind: List
items:
- apiVersion: batch/v1
  kind: CronJob
  metadata: {name: nightly}
  spec: {jobTemplate: {spec: {template: {spec: {containers: []}}}}}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: cfg}
- apiVersion: v1
  kind: Pod
  metadata: {namespace: ''}
  spec: {containers: []}
- 42
";
        assert_eq!(
            found(text),
            [
                ("document 1".into(), "Deployment \"web\"".into(), "shop".into(), "/spec/template/spec".into()),
                (
                    "document 3, item 1".into(),
                    "CronJob \"nightly\"".into(),
                    "dflt".into(),
                    "/items/0/spec/jobTemplate/spec/template/spec".into()
                ),
                ("document 3, item 3".into(), "Pod".into(), "dflt".into(), "/items/2/spec".into()),
            ]
        );
        let notes = read("in", &docs(text), "dflt").unwrap().notes;
        assert_eq!(
            notes,
            [
                "in: document 2: Service \"web\": carries no Pod; passed through unchanged",
                "in: document 3, item 2: ConfigMap \"cfg\": carries no Pod; passed through unchanged",
                "in: document 3, item 4: object without kind: is not an object; passed through unchanged",
            ]
        );
    }

    /// The API server's typed lists: items without kind or apiVersion are what the list says.
    #[test]
    fn items_of_a_typed_list_are_of_its_kind() {
        let text = "apiVersion: apps/v1\nkind: DeploymentList\nitems:\n- metadata: {name: a}\n  spec: {template: {spec: {containers: []}}}\n";
        assert_eq!(
            found(text),
            [("item 1".into(), "Deployment \"a\"".into(), "dflt".into(), "/items/0/spec/template/spec".into())]
        );
        let secrets = "apiVersion: v1\nkind: SecretList\nitems:\n- metadata: {name: s}\n  data: {k: aHVudGVyMg==}\n- {kind: Secret, apiVersion: example.com/v1, metadata: {name: t}}\n";
        let objects = read("in", &docs(secrets), "dflt").unwrap();
        assert_eq!(objects.secrets, ["in: item 1: Secret \"s\"", "in: item 2: Secret \"t\""]);
        // A plain List says nothing about its items.
        let list = "apiVersion: v1\nkind: List\nitems:\n- metadata: {name: x}\n";
        assert_eq!(
            read("in", &docs(list), "dflt").unwrap().notes,
            ["in: item 1: object without kind \"x\": carries no Pod; passed through unchanged"]
        );
    }

    /// Names and kinds come from the input: every message that shows them stays one escaped line.
    #[test]
    fn names_with_control_characters_stay_one_safe_line() {
        let text = "apiVersion: v1\nkind: \"Con\\e[31mfig\\nMap\"\nmetadata: {name: \"a\\nb\\u202e\"}\n---\nkind: Pod\napiVersion: v1\nmetadata: {name: \"p\\r\\x1b]0;t\\x07\"}\n";
        let objects = read("in", &docs(text), "dflt").unwrap_err().to_string();
        assert!(
            !objects.contains('\n')
                && !objects.contains('\r')
                && !objects.contains('\u{1b}')
                && !objects.contains('\u{7}'),
            "{objects:?}"
        );
        let objects = read(
            "in",
            &docs(&text.replace("kind: Pod\napiVersion: v1\n", "kind: Pod\napiVersion: v1\nspec: {}\n")),
            "dflt",
        )
        .unwrap();
        for line in objects.notes.iter().chain(objects.pods.iter().map(|p| &p.label)) {
            assert!(!line.chars().any(|c| c.is_control() || c == '\u{202e}'), "{line:?}");
        }
    }

    #[test]
    fn a_template_pod_is_the_one_its_controller_creates() {
        let objects = read(
            "in",
            &docs("kind: Job\napiVersion: batch/v1\nmetadata: {name: j}\nspec: {template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x}]}}}\n"),
            "ns",
        )
        .unwrap();
        let pod = &objects.pods[0];
        assert_eq!(pod.place, "", "the only object of the input");
        assert_eq!(pod.view.namespace.as_deref(), Some("ns"));
        assert_eq!(pod.view.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(pod.view.images.len(), 1);
        assert!(!pod.is_lone_pod(1));
    }

    #[test]
    fn unusable_objects_are_errors_that_quote_no_value() {
        // (input, what the one-line error says)
        let cases: &[(&str, &str)] = &[
            (
                "kind: Deployment\napiVersion: apps/v1\nmetadata: {name: w}\nspec: {}\n",
                "in: Deployment \"w\": no Pod template at spec.template",
            ),
            (
                "kind: CronJob\napiVersion: batch/v1\nspec: {jobTemplate: {spec: {template: []}}}\n",
                "in: CronJob: no Pod template at spec.jobTemplate.spec.template",
            ),
            (
                "kind: Deployment\napiVersion: apps/v1\nspec: {template: {spec: {containers: hunter2-secret}}}\n",
                "in: Deployment: spec.template (the Pod cannot be read: invalid string, expected a sequence)",
            ),
            (
                "kind: Pod\napiVersion: v1\nspec: {containers: [{name: c, image: 7}], imagePullSecrets: \"hunter2\"}\n",
                "in: Pod: the Pod cannot be read: invalid",
            ),
            (
                "kind: Pod\napiVersion: v1\nmetadata: {namespace: [a]}\nspec: {}\n",
                "in: Pod: metadata.namespace is not a string",
            ),
            ("kind: Pod\napiVersion: v1\n", "in: Pod: Pod has no spec"),
            (
                "kind: Pod\napiVersion: v1\nspec: {}\n---\nkind: AdmissionReview\napiVersion: admission.k8s.io/v1\n",
                "in: document 2: AdmissionReview: an AdmissionReview must be the only document of the input",
            ),
            ("kind: Pod\napiVersion: v1\nspec: {containers: [{? [a]\n  : b}]}\n", "not representable as JSON"),
        ];
        for (text, want) in cases {
            let err = read("in", &docs(text), "ns").unwrap_err();
            assert_eq!(err.exit_code(), 2, "{text}");
            let message = err.to_string();
            assert!(message.contains(want), "{text}: {message}");
            assert!(!message.contains("hunter2") && !message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn pointers_and_adds_keep_the_documents_key_order() {
        let mut doc =
            docs("kind: X\nspec:\n  b: 1\n  imagePullSecrets: null\n  a: [1]\n  'we/ird': {z: 0}\n").remove(0);
        assert_eq!(pointer(&doc, "/spec/a/0"), Some(&YamlValue::from(1)));
        assert_eq!(pointer(&doc, "/spec/we~1ird/z"), Some(&YamlValue::from(0)));
        assert_eq!(pointer(&doc, "/spec/a/x"), None);
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "add", "path": "/spec/imagePullSecrets", "value": [{"name": "s"}]},
            {"op": "add", "path": "/spec/a/-", "value": 2},
            {"op": "add", "path": "/spec/we~1ird/new", "value": true},
        ]))
        .unwrap();
        apply(&mut doc, &patch).unwrap();
        assert_eq!(
            serde_yaml_ng::to_string(&doc).unwrap(),
            "kind: X\nspec:\n  b: 1\n  imagePullSecrets:\n  - name: s\n  a:\n  - 1\n  - 2\n  we/ird:\n    z: 0\n    new: true\n"
        );
        let bad: json_patch::Patch =
            serde_json::from_value(serde_json::json!([{"op": "add", "path": "/nope/x", "value": 1}])).unwrap();
        assert!(apply(&mut doc, &bad).unwrap_err().contains("names nothing"));
        let remove: json_patch::Patch =
            serde_json::from_value(serde_json::json!([{"op": "remove", "path": "/spec"}])).unwrap();
        assert!(apply(&mut doc, &remove).unwrap_err().contains("unexpected patch operation"));
    }
}
