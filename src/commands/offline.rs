//! `mutate` and `explain`: the webhook's decision on local files, with nothing sent anywhere.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::core::admission::{self, Outcome};
use crate::core::credentials::{CredentialIndex, CredentialSource, NamespaceCredentials};
use crate::core::decision::{self, Policy};
use crate::core::pod::{ContainerImage, ContainerKind, PodView};
use crate::kubelet::keyring;
use crate::kubelet::reference;
use crate::safe_text;
use crate::sources::manifests::{self, InputError, Manifests};

impl CredentialSource for CredentialIndex {
    fn namespace(&self, namespace: &str) -> Arc<NamespaceCredentials> {
        self.view(namespace)
    }
}

/// A command-line failure: exit code 2 (unusable input), or 1 (ran, found a problem: the policy denies the Pod).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    /// `--deny-unmatched` refuses the Pod (exit 1, for every `-o`): the reason the API server would show.
    #[error("denied by pullsecret-injector: {0}")]
    Denied(String),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Denied(_) => 1,
            Self::Usage(_) | Self::Input(_) | Self::Io(_) => 2,
        }
    }
}

/// What `mutate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MutateOutput {
    /// The patched Pod as YAML (default for a Pod).
    Yaml,
    /// The patched Pod as JSON.
    Json,
    /// The JSON patch (`[]` when nothing is added).
    Patch,
    /// The response AdmissionReview exactly as `serve` answers (default for an AdmissionReview).
    Review,
}

/// Arguments of `mutate`, already parsed.
pub struct MutateArgs<'a> {
    pub secrets: &'a [PathBuf],
    pub file: &'a Path,
    pub output: Option<MutateOutput>,
    pub namespace: &'a str,
    pub policy: &'a Policy,
}

/// Runs `mutate`: writes the result to `out`, warnings to `err`. A Pod the policy denies is
/// [`CliError::Denied`] (exit 1) whatever the output: `-o review` still prints the answer (`allowed: false`) first,
/// the other outputs print nothing, so that a CI step that runs `mutate` fails on a denial.
pub fn mutate(args: &MutateArgs<'_>, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let (label, text) = read_input(args.file)?;
    let mut docs = manifests::parse_documents(Path::new(&label), &text)?;
    if docs.len() != 1 {
        return Err(CliError::Usage(format!(
            "{label}: expected one Pod or AdmissionReview, found {} documents",
            docs.len()
        )));
    }
    let doc = docs.remove(0);
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    let (body, object, is_review) = match kind.as_str() {
        admission::KIND => {
            let object = doc.pointer("/request/object").cloned().unwrap_or(Value::Null);
            (serde_json::to_vec(&doc).expect("a JSON value serializes"), object, true)
        }
        "Pod" => {
            let namespace = doc.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or(args.namespace);
            (admission::review_for_pod(&doc, namespace), doc.clone(), false)
        }
        other => {
            return Err(CliError::Usage(format!(
                "{label}: expected a Pod or an AdmissionReview, found kind {other:?}"
            )));
        }
    };
    let index = Manifests::load(args.secrets, args.namespace)?.index();
    let reviewed = admission::review(&body, &index, args.policy);
    if reviewed.outcome == Outcome::Invalid {
        return Err(CliError::Usage(format!(
            "{label}: {}",
            reviewed.reason.unwrap_or_else(|| "invalid AdmissionReview".into())
        )));
    }
    let output = args.output.unwrap_or(if is_review { MutateOutput::Review } else { MutateOutput::Yaml });
    let denied = reviewed.decision.as_ref().and_then(|d| d.denied.clone());
    if output == MutateOutput::Review {
        let value: Value = serde_json::from_slice(&reviewed.body).expect("our own response is JSON");
        writeln!(out, "{}", serde_json::to_string_pretty(&value).expect("JSON serializes"))?;
        return match denied {
            Some(message) => Err(CliError::Denied(safe_text::text(&message).into_owned())),
            None => Ok(()),
        };
    }

    // Human outputs: warnings and denials go to stderr, as kubectl shows them, one safe line each.
    if let Some(reason) = &reviewed.reason {
        writeln!(err, "Warning: {}{}", admission::WARNING_PREFIX, safe_text::text(reason))?;
    }
    let decision = reviewed.decision.unwrap_or_default();
    for warning in &decision.warnings {
        writeln!(err, "Warning: {}{}", admission::WARNING_PREFIX, safe_text::text(warning))?;
    }
    if let Some(message) = denied {
        return Err(CliError::Denied(safe_text::text(&message).into_owned()));
    }
    let patch = match PodView::from_value(&object) {
        Ok(pod) => decision::patch(&pod, &decision.add, decision::POD_SPEC),
        Err(_) => None,
    };
    let patch = patch.unwrap_or_default();
    match output {
        MutateOutput::Patch => writeln!(out, "{}", serde_json::to_string_pretty(&patch).expect("JSON serializes"))?,
        MutateOutput::Yaml | MutateOutput::Json => {
            let mut pod = object;
            json_patch::patch(&mut pod, &patch)
                .map_err(|e| CliError::Usage(format!("{label}: the patch does not apply: {e}")))?;
            if output == MutateOutput::Json {
                writeln!(out, "{}", serde_json::to_string_pretty(&pod).expect("JSON serializes"))?;
            } else {
                write!(out, "{}", serde_yaml_ng::to_string(&pod).expect("JSON values serialize to YAML"))?;
            }
        }
        MutateOutput::Review => unreachable!("handled above"),
    }
    Ok(())
}

fn read_input(file: &Path) -> Result<(String, String), CliError> {
    if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| CliError::Usage(format!("stdin: cannot read: {e}")))?;
        return Ok(("stdin".into(), text));
    }
    let text =
        std::fs::read_to_string(file).map_err(|e| CliError::Usage(format!("{}: cannot read: {e}", file.display())))?;
    Ok((file.display().to_string(), text))
}

/// Writes one line of `explain`. Whatever it quotes (the image, keys, Secret names, reasons), it stays one line of
/// display-safe text ([`safe_text::text`]): no control or bidi character, no URL userinfo.
fn say(out: &mut dyn Write, line: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    writeln!(out, "{}", safe_text::text(&line.to_string()))
}

/// A Secret name as `explain` shows it: escaped, and bounded like a Kubernetes name (local files can hold anything).
fn shown_name(name: &str) -> String {
    safe_text::line(name, 253)
}

/// Runs `explain`: why IMAGE gets (or does not get) each credential in NAMESPACE. Keys are shown with
/// [`safe_text::key`] (userinfo redacted in any spelling, escaped, bounded); every line goes through [`say`].
pub fn explain(
    image: &str,
    secrets: &[PathBuf],
    namespace: &str,
    listed: &[String],
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let index = Manifests::load(secrets, namespace)?.index();
    let view = index.view(namespace);
    let shown_image = safe_text::line(image, 1024);
    say(out, format_args!("Image:      {shown_image}"))?;
    let target = match reference::parse_normalized_named(image) {
        Ok(r) => r.name(),
        Err(e) => {
            say(out, format_args!("Lookup:     none: the kubelet refuses this reference ({e}): InvalidImageName"))?;
            return Ok(());
        }
    };
    say(out, format_args!("Lookup:     {target}   (the name the kubelet matches keys against)"))?;
    say(
        out,
        format_args!(
            "Namespace:  {}{}",
            shown_name(namespace),
            if view.opted_out() { "   (opted out: nothing is injected)" } else { "" }
        ),
    )?;
    let pod = PodView {
        namespace: Some(namespace.to_string()),
        images: vec![ContainerImage {
            kind: ContainerKind::Regular,
            container: "explain".into(),
            image: Some(image.into()),
        }],
        pull_secrets: Some(listed.iter().map(|n| Some(n.clone())).collect()),
        ..Default::default()
    };
    let mut warnings = Vec::new();
    let verdicts = decision::explain_keys(&pod, &view, !view.opted_out(), &target, &mut warnings);
    writeln!(out)?;
    if verdicts.is_empty() {
        say(out, format_args!("No pull Secret key in namespace {}.", shown_name(namespace)))?;
    } else {
        say(out, format_args!("Keys, in the kubelet's order (descending byte order of the normalized key):"))?;
    }
    for v in &verdicts {
        let mark = if v.matched { "MATCH   " } else { "no match" };
        // The normalized key keeps the userinfo of a key with an unrecognized scheme (`HTTPS://u:p@h`).
        let secrets: Vec<String> = v.secrets.iter().map(|s| shown_name(s)).collect();
        say(
            out,
            format_args!("  {mark}  {:<40}  from {}  ({})", safe_text::key(&v.key), secrets.join(", "), v.reason),
        )?;
    }
    for secret in &view.secrets {
        if let Ok(keys) = &secret.keys {
            for key in keys {
                // A key can carry `user:password@` (the kubelet ignores it): never print that part.
                let shown = safe_text::key(key);
                let review = keyring::key_notes(key);
                if review.dropped {
                    say(out, format_args!("  dropped   {shown:<40}  from {}", shown_name(&secret.name)))?;
                }
                for note in review.notes {
                    say(out, format_args!("  note      {shown}: {}", safe_text::line(&note, 1024)))?;
                }
            }
        }
    }
    for w in &warnings {
        say(out, format_args!("  skipped   {}", safe_text::line(w, 1024)))?;
    }
    let decision = decision::decide(&pod, &view, &Policy::default());
    let credentials = decision.images.first().map(|i| i.credentials.clone()).unwrap_or_default();
    writeln!(out)?;
    if credentials.is_empty() {
        say(out, format_args!("Credentials: none: the kubelet pulls {shown_image} anonymously."))?;
    } else {
        say(
            out,
            format_args!("Credentials, in the order the kubelet tries them (first success wins, no anonymous retry):"),
        )?;
        for (i, name) in credentials.iter().enumerate() {
            say(out, format_args!("  {}. {}", i + 1, shown_name(name)))?;
        }
    }
    if !decision.add.is_empty() {
        let added: Vec<String> = decision.add.iter().map(|n| shown_name(n)).collect();
        say(out, format_args!("Injected:   {}", added.join(", ")))?;
    }
    Ok(())
}
