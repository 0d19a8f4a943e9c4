//! `mutate`: the webhook's decision on manifests, offline, with nothing sent anywhere.
//!
//! The input is a stream: a Pod, any workload with a Pod template (Deployment, ReplicaSet, StatefulSet, DaemonSet,
//! Job, CronJob, ReplicationController, PodTemplate), a `kind: List`, or several YAML documents; every other object
//! passes through unchanged (a note on stderr). Each Pod is decided exactly as `serve` decides it: a Pod CREATE
//! review of the Pod (or of the Pod the controller creates from the template) through [`admission::review`]. The
//! patch of each goes where its Pod spec is ([`decision::patch`] with the spec's pointer), and the stream comes out
//! with its documents, keys and values as they came in, plus the Secrets added. An AdmissionReview, alone, is
//! answered as `serve` answers it.

use std::io::Write;
use std::path::Path;

use serde_json::Value;
use serde_yaml_ng::Value as YamlValue;

use crate::commands::live::Credentials;
use crate::commands::objects::{self, PodObject};
use crate::commands::{CliError, read_input, yaml};
use crate::core::admission::{self, Outcome};
use crate::core::credentials::CredentialIndex;
use crate::core::decision::{self, Policy};
use crate::core::pod::PodView;
use crate::safe_text;
use crate::sources::manifests;

/// What `mutate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MutateOutput {
    /// The input with the Secrets added, as YAML (the default, except for an AdmissionReview).
    Yaml,
    /// The input with the Secrets added, as JSON (several documents become one `v1` `List`).
    Json,
    /// The JSON patch for the one document of the input (`[]` when nothing is added).
    Patch,
    /// The response AdmissionReview exactly as `serve` answers (the default for an AdmissionReview).
    Review,
}

/// Arguments of `mutate`, already parsed.
pub struct MutateArgs<'a> {
    pub credentials: Credentials<'a>,
    pub file: &'a Path,
    pub output: Option<MutateOutput>,
    pub namespace: &'a str,
    pub policy: &'a Policy,
    /// Exit 1 when there is any warning.
    pub fail_on_warning: bool,
    /// Print the input's Secrets with the rest (a post-renderer must); without it, `-o yaml` and `-o json` refuse an
    /// input that holds a Secret, so that `mutate` never prints a credential by mistake (a CI log).
    pub pass_secrets: bool,
}

/// The refusal of an output that would print a Secret's data.
fn secret_in_output(at: &str) -> CliError {
    CliError::Usage(format!(
        "{at}: a Secret: -o yaml and -o json would print its data; give --pass-secrets to pass the input's Secrets \
         through (as a post-renderer must)"
    ))
}

/// The webhook's answer for one object's Pod.
struct Judged {
    object: PodObject,
    /// The response AdmissionReview, as `serve` sends it.
    body: Vec<u8>,
    warnings: Vec<String>,
    denied: Option<String>,
    patch: json_patch::Patch,
}

/// Runs `mutate`: the result to `out`; warnings, notes and denials to `err`.
///
/// A Pod the policy denies is [`CliError::Denied`] (exit 1) whatever the output, with every denial on `err`;
/// `-o review` still prints the answer (`allowed: false`) first, the other outputs print nothing, so that a CI step
/// or a post-renderer fails instead of applying a stream the webhook would refuse. With `fail_on_warning`, any
/// warning is exit 1 after the output ([`CliError::Warnings`]).
pub fn mutate(args: &MutateArgs<'_>, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let (input, text) = read_input(args.file)?;
    let mut docs = manifests::parse_ordered_documents(Path::new(&input), &text)?;
    if docs.is_empty() {
        return Err(CliError::Usage(format!("{input}: no Kubernetes object in the input")));
    }
    let is_review = |doc: &YamlValue| doc.get("kind").and_then(YamlValue::as_str) == Some(admission::KIND);
    if docs.len() == 1 && is_review(&docs[0]) {
        let index = args.credentials.load(args.namespace)?.index;
        return review(args, &input, docs.remove(0), &index, out, err);
    }
    let found = objects::read(&input, &docs, args.namespace)?;
    let index = args.credentials.load(args.namespace)?.index;
    let output = args.output.unwrap_or(MutateOutput::Yaml);
    if output == MutateOutput::Review && (docs.len() != 1 || found.pods.len() != 1 || !found.pods[0].at.is_empty()) {
        return Err(CliError::Usage(format!(
            "{input}: -o review answers for one Pod, one object with a Pod template or one AdmissionReview; this input \
             has {} document(s) and {} object(s) with a Pod",
            docs.len(),
            found.pods.len()
        )));
    }
    if output == MutateOutput::Patch && docs.len() != 1 {
        return Err(CliError::Usage(format!(
            "{input}: -o patch prints the JSON patch of one document, and this input has {}: use -o yaml or -o json \
             for a stream",
            docs.len()
        )));
    }

    if matches!(output, MutateOutput::Yaml | MutateOutput::Json)
        && !args.pass_secrets
        && let Some(at) = found.secrets.first()
    {
        return Err(secret_in_output(at));
    }
    let mut judged = Vec::with_capacity(found.pods.len());
    for object in found.pods {
        judged.push(judge(&input, object, &index, args.policy)?);
    }
    for note in &found.notes {
        writeln!(err, "note: {note}")?;
    }
    let lone = judged.len() == 1 && judged[0].object.is_lone_pod(docs.len());
    // Messages name the object, except for a lone Pod: then they are the webhook's own lines, as kubectl shows them.
    let named = |j: &Judged, text: &str| {
        if lone { safe_text::text(text).into_owned() } else { format!("{}: {}", j.object.label, safe_text::text(text)) }
    };
    let mut warnings = 0;
    for j in &judged {
        for warning in &j.warnings {
            // `-o review` carries its warnings in the answer, as the webhook sends them.
            if output != MutateOutput::Review {
                writeln!(err, "Warning: {}{}", admission::WARNING_PREFIX, named(j, warning))?;
            }
            warnings += 1;
        }
    }
    let denied: Vec<String> = judged.iter().filter_map(|j| j.denied.as_deref().map(|d| named(j, d))).collect();

    match output {
        MutateOutput::Review => {
            let value: Value = serde_json::from_slice(&judged[0].body).expect("our own response is JSON");
            writeln!(out, "{}", serde_json::to_string_pretty(&value).expect("JSON serializes"))?;
        }
        _ if !denied.is_empty() => {}
        MutateOutput::Patch => {
            let operations: Vec<json_patch::PatchOperation> = judged.into_iter().flat_map(|j| j.patch.0).collect();
            let patch = json_patch::Patch(operations);
            writeln!(out, "{}", serde_json::to_string_pretty(&patch).expect("JSON serializes"))?;
        }
        MutateOutput::Yaml | MutateOutput::Json => {
            for j in &judged {
                objects::apply(&mut docs[j.object.doc], &j.patch).map_err(|e| {
                    CliError::Usage(format!("{input}: {}: the patch does not apply: {e}", j.object.label))
                })?;
            }
            let text = render(&input, docs, output)?;
            out.write_all(text.as_bytes())?;
        }
    }
    out.flush()?;
    if !denied.is_empty() {
        return Err(CliError::Denied(denied));
    }
    if args.fail_on_warning && warnings > 0 {
        return Err(CliError::Warnings(warnings));
    }
    Ok(())
}

/// Decides for one object's Pod through the webhook's own path: a Pod CREATE review in the object's namespace.
fn judge(input: &str, object: PodObject, index: &CredentialIndex, policy: &Policy) -> Result<Judged, CliError> {
    let body = admission::review_for_pod(&object.pod, &object.namespace);
    let reviewed = admission::review(&body, index, policy);
    if reviewed.outcome == Outcome::Invalid {
        // A review built here is always valid: reaching this is a bug, reported instead of guessed around.
        return Err(CliError::Usage(format!(
            "{input}: {}: the webhook refused the review built for it: {}",
            object.label,
            reviewed.reason.unwrap_or_default()
        )));
    }
    let mut warnings: Vec<String> = reviewed.reason.into_iter().collect();
    let decision = reviewed.decision.unwrap_or_default();
    warnings.extend(decision.warnings);
    let patch = decision::patch(&object.view, &decision.add, &object.spec_pointer()).unwrap_or_default();
    Ok(Judged { body: reviewed.body, warnings, denied: decision.denied, patch, object })
}

/// An AdmissionReview, the only document of the input: answered as `serve` answers it.
fn review(
    args: &MutateArgs<'_>,
    input: &str,
    mut doc: YamlValue,
    index: &CredentialIndex,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let body = objects::json(&doc).map_err(|e| CliError::Usage(format!("{input}: {e}")))?;
    let body = serde_json::to_vec(&body).expect("a JSON value serializes");
    let reviewed = admission::review(&body, index, args.policy);
    if reviewed.outcome == Outcome::Invalid {
        return Err(CliError::Usage(format!(
            "{input}: {}",
            reviewed.reason.unwrap_or_else(|| "invalid AdmissionReview".into())
        )));
    }
    let output = args.output.unwrap_or(MutateOutput::Review);
    let denied = reviewed.decision.as_ref().and_then(|d| d.denied.clone());
    let warnings: Vec<String> =
        reviewed.reason.iter().chain(reviewed.decision.iter().flat_map(|d| &d.warnings)).cloned().collect();
    if output == MutateOutput::Review {
        let value: Value = serde_json::from_slice(&reviewed.body).expect("our own response is JSON");
        writeln!(out, "{}", serde_json::to_string_pretty(&value).expect("JSON serializes"))?;
    } else {
        // Human outputs: warnings and denials go to stderr, as kubectl shows them, one safe line each.
        for warning in &warnings {
            writeln!(err, "Warning: {}{}", admission::WARNING_PREFIX, safe_text::text(warning))?;
        }
        if denied.is_none() {
            let object = doc.get("request").and_then(|r| r.get("object")).cloned().unwrap_or(YamlValue::Null);
            let add = reviewed.decision.as_ref().map(|d| d.add.as_slice()).unwrap_or_default();
            let patch = match objects::json(&object).ok().and_then(|o| PodView::from_value(&o).ok()) {
                Some(pod) => decision::patch(&pod, add, decision::POD_SPEC).unwrap_or_default(),
                None => json_patch::Patch::default(),
            };
            if output != MutateOutput::Patch && !args.pass_secrets && objects::is_secret(&object) {
                return Err(secret_in_output(&format!("{input}: request.object")));
            }
            if output == MutateOutput::Patch {
                writeln!(out, "{}", serde_json::to_string_pretty(&patch).expect("JSON serializes"))?;
            } else {
                doc = object;
                objects::apply(&mut doc, &patch)
                    .map_err(|e| CliError::Usage(format!("{input}: the patch does not apply: {e}")))?;
                out.write_all(render(input, vec![doc], output)?.as_bytes())?;
            }
        }
    }
    out.flush()?;
    if let Some(message) = denied {
        return Err(CliError::Denied(vec![safe_text::text(&message).into_owned()]));
    }
    if args.fail_on_warning && !warnings.is_empty() {
        return Err(CliError::Warnings(warnings.len()));
    }
    Ok(())
}

/// The documents as the output asks: YAML documents separated by `---`, or JSON (one document as itself, several
/// as a `v1` `List`, as `kubectl create -o json` prints several objects).
fn render(input: &str, mut docs: Vec<YamlValue>, output: MutateOutput) -> Result<String, CliError> {
    let unwritable = |e: &dyn std::fmt::Display| {
        CliError::Usage(format!(
            "{input}: the result cannot be written as {output:?}: {}",
            manifests::without_values(&e.to_string())
        ))
    };
    if output == MutateOutput::Json {
        let value = if docs.len() == 1 {
            docs.remove(0)
        } else {
            let mut list = serde_yaml_ng::Mapping::new();
            list.insert("apiVersion".into(), "v1".into());
            list.insert("kind".into(), "List".into());
            list.insert("items".into(), YamlValue::Sequence(docs));
            YamlValue::Mapping(list)
        };
        let mut text = serde_json::to_string_pretty(&value).map_err(|e| unwritable(&e))?;
        text.push('\n');
        return Ok(text);
    }
    let mut text = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            text.push_str("---\n");
        }
        text.push_str(&yaml::to_string(doc).map_err(|e| unwritable(&e))?);
    }
    Ok(text)
}
