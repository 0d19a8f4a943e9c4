//! `explain`: why an image, or every image of a Pod or workload, gets (or does not get) each credential, key by key,
//! ending with the one-line answer ("web will get: a, b; container x has no credential because ...").
//!
//! Every line is display-safe ([`say`]); no credential is ever printed: keys are shown with [`safe_text::key`]
//! (userinfo redacted in any spelling), Secrets by name.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use kube::Resource as _;
use kube::api::ApiResource;

use crate::commands::live::Credentials;
use crate::commands::objects::{self, PodObject};
use crate::commands::{CliError, read_input};
use crate::core::cluster_pull_secret::ClusterPullSecret;
use crate::core::credentials::{NamespaceCredentials, Origin, SERVICE_ACCOUNT_ANNOTATION};
use crate::core::decision::{self, Decision, ImageOutcome, OptOut, Policy};
use crate::core::expiry;
use crate::core::pod::{ContainerImage, ContainerKind, INJECT_DISABLED, INJECT_LABEL, PodView};
use crate::kubelet::keyring;
use crate::safe_text;
use crate::sources::manifests;
use crate::sources::snapshot::Snapshot;

/// What to explain: one image (as written in a Pod), the Pod of one object in a file, or of one object in the
/// cluster (`pod/web`, live mode).
pub enum Subject<'a> {
    Image(&'a str),
    File(&'a Path),
    Object(ApiResource, &'a str),
}

/// Arguments of `explain`, already parsed.
pub struct ExplainArgs<'a> {
    pub subject: Subject<'a>,
    pub credentials: Credentials<'a>,
    /// The namespace of the image, and of manifests without one.
    pub namespace: &'a str,
    /// For an image: the Secrets its Pod already lists, in order.
    pub listed: &'a [String],
    /// The decision's policy: here, the nodes' credential providers (`--credential-provider-config`).
    pub policy: &'a Policy,
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

/// What `explain` knows of the namespace: its credentials as admission sees them, and where each came from.
struct Namespace<'a> {
    name: &'a str,
    view: std::sync::Arc<NamespaceCredentials>,
    snapshot: &'a Snapshot,
    policy: &'a Policy,
    /// Secret name → "copy of ClusterPullSecret NAME" (or why it only claims to be one).
    provenance: BTreeMap<String, String>,
}

impl<'a> Namespace<'a> {
    fn new(name: &'a str, snapshot: &'a Snapshot, policy: &'a Policy) -> Self {
        let (view, manifests) = (snapshot.index.view(name), &snapshot.manifests);
        let mut provenance = BTreeMap::new();
        // A credential the webhook offers for a ClusterPullSecret whose copy is not among the inputs (not written
        // yet, or not exported): the kubelet will read the copy once the controller writes it.
        for secret in &view.secrets {
            if let Origin::Distributed { cluster_pull_secret } = &secret.origin {
                provenance.insert(
                    secret.name.clone(),
                    format!("copy of ClusterPullSecret {}, not in the inputs yet", shown_name(cluster_pull_secret)),
                );
            }
        }
        // A copy among the inputs: a controller ownerReference to a ClusterPullSecret, as the controller judges it.
        let kind = ClusterPullSecret::kind(&());
        let api_version = ClusterPullSecret::api_version(&());
        for secret in &manifests.secrets {
            if secret.metadata.namespace.as_deref() != Some(name) {
                continue;
            }
            let Some(secret_name) = &secret.metadata.name else { continue };
            let owner = secret
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true) && o.kind == kind && o.api_version == api_version);
            let Some(owner) = owner else { continue };
            let known = manifests.cluster_pull_secrets.iter().find(|c| c.metadata.name.as_deref() == Some(&owner.name));
            let uid = known.and_then(|c| c.metadata.uid.as_deref());
            let text = match uid {
                Some(uid) if uid != owner.uid => format!(
                    "claims to be a copy of ClusterPullSecret {}, but its owner's uid is not that one's",
                    shown_name(&owner.name)
                ),
                _ => format!("copy of ClusterPullSecret {}", shown_name(&owner.name)),
            };
            provenance.insert(secret_name.clone(), text);
        }
        Self { name, view, snapshot, policy, provenance }
    }

    /// A Secret name with where it came from: `corp (copy of ClusterPullSecret corp)`.
    fn secret(&self, name: &str) -> String {
        match self.provenance.get(name) {
            Some(provenance) => format!("{} ({provenance})", shown_name(name)),
            None => shown_name(name),
        }
    }

    /// What a name the Pod lists is, for the kubelet.
    fn listed(&self, name: &str) -> String {
        if let Some(candidate) = self.view.get(name) {
            return match &candidate.keys {
                Ok(keys) => format!("pull Secret, {} key{}", keys.len(), if keys.len() == 1 { "" } else { "s" }),
                Err(reason) => format!("the kubelet cannot decode it ({}): every pull of the Pod fails", reason),
            };
        }
        let other =
            self.snapshot.manifests.secrets.iter().find(|s| {
                s.metadata.namespace.as_deref() == Some(self.name) && s.metadata.name.as_deref() == Some(name)
            });
        match other {
            Some(secret) => format!(
                "listed, but of type {}: the kubelet reads no credential from it",
                safe_text::line(secret.type_.as_deref().unwrap_or("Opaque"), 253)
            ),
            None if self.snapshot.other_secrets.contains(&(self.name.to_string(), name.to_string())) => {
                "listed, but not a pull Secret: the kubelet reads no credential from it".into()
            }
            None => format!("listed but not found: no Secret of that name in namespace {}", shown_name(self.name)),
        }
    }
}

/// Runs `explain`.
pub fn explain(args: &ExplainArgs<'_>, out: &mut dyn Write) -> Result<(), CliError> {
    match &args.subject {
        Subject::Image(image) => {
            let listed: Vec<&str> = args.listed.iter().map(String::as_str).collect();
            let snapshot = args.credentials.load_for(args.namespace, args.namespace, &listed)?;
            let ns = Namespace::new(args.namespace, &snapshot, args.policy);
            explain_image(image, &ns, args.listed, out)?;
        }
        Subject::File(file) => {
            let (input, text) = read_input(file)?;
            explain_object(args, &input, &text, out)?;
        }
        Subject::Object(resource, name) => {
            let Credentials::Cluster(cluster) = &args.credentials else {
                return Err(CliError::Usage("explain KIND/NAME reads the cluster: give no --secrets".into()));
            };
            let text = cluster.get(resource, name, args.namespace)?;
            let input = format!("{}/{name}", resource.kind.to_lowercase());
            explain_object(args, &input, &text, out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The Pod of the one object of `text` (a file's, or the object the cluster returned), every image.
fn explain_object(args: &ExplainArgs<'_>, input: &str, text: &str, out: &mut dyn Write) -> Result<(), CliError> {
    let docs = manifests::parse_ordered_documents(Path::new(input), text)?;
    let mut found = objects::read(input, &docs, args.namespace)?.pods;
    if found.len() != 1 {
        return Err(CliError::Usage(format!(
            "{input}: explain -f takes one Pod or one object with a Pod template; this input has {}",
            found.len()
        )));
    }
    let object = found.remove(0);
    let listed: Vec<&str> = object.view.listed_secrets().collect();
    let snapshot = args.credentials.load_for(args.namespace, &object.namespace, &listed)?;
    let ns = Namespace::new(&object.namespace, &snapshot, args.policy);
    explain_pod(&object, &ns, out)
}

/// One image in the namespace, for a Pod that lists `listed`.
fn explain_image(image: &str, ns: &Namespace<'_>, listed: &[String], out: &mut dyn Write) -> Result<(), CliError> {
    let shown_image = safe_text::line(image, 1024);
    say(out, format_args!("Image:      {shown_image}"))?;
    let pod = PodView {
        namespace: Some(ns.name.to_string()),
        images: vec![ContainerImage {
            kind: ContainerKind::Regular,
            container: "explain".into(),
            image: Some(image.into()),
        }],
        pull_secrets: Some(listed.iter().map(|n| Some(n.clone())).collect()),
        ..Default::default()
    };
    let decision = decision::decide(&pod, &ns.view, ns.policy);
    let outcome = &decision.images[0];
    match &outcome.lookup {
        Ok(target) => say(out, format_args!("Lookup:     {target}   (the name the kubelet matches keys against)"))?,
        Err(e) => {
            say(out, format_args!("Lookup:     none: the kubelet refuses this reference ({e}): InvalidImageName"))?
        }
    }
    namespace_lines(&pod, ns, out)?;
    if let Ok(target) = &outcome.lookup {
        writeln!(out)?;
        keys(&pod, ns, target, decision.opt_out.is_none(), out)?;
        lint(ns, out)?;
        writeln!(out)?;
        credentials(outcome, ns, &shown_image, out)?;
        injected(&decision, ns, out)?;
    }
    writeln!(out)?;
    say(out, format_args!("Answer: {}", answer(&shown_image, &pod, &decision, ns, true)))?;
    Ok(())
}

/// Every image of an object's Pod.
fn explain_pod(object: &PodObject, ns: &Namespace<'_>, out: &mut dyn Write) -> Result<(), CliError> {
    let pod = &object.view;
    let what = if object.location.template.is_empty() { "" } else { "   (the Pods of its template)" };
    say(out, format_args!("Object:     {}{what}", object.label))?;
    namespace_lines(pod, ns, out)?;
    let decision = decision::decide(pod, &ns.view, ns.policy);
    for outcome in &decision.images {
        writeln!(out)?;
        let image = outcome.image.as_deref().map(|i| safe_text::line(i, 1024));
        say(
            out,
            format_args!(
                "== {} {}: {}",
                outcome.kind.noun(),
                quoted(&outcome.container),
                image.as_deref().unwrap_or("no image")
            ),
        )?;
        match &outcome.lookup {
            Ok(target) => {
                say(out, format_args!("Lookup:     {target}"))?;
                keys(pod, ns, target, decision.opt_out.is_none(), out)?;
                credentials(outcome, ns, image.as_deref().unwrap_or_default(), out)?;
            }
            Err(e) if outcome.image.is_some() => {
                say(out, format_args!("Lookup:     none: the kubelet refuses this reference ({e}): InvalidImageName"))?
            }
            Err(_) => {}
        }
    }
    writeln!(out)?;
    lint(ns, out)?;
    injected(&decision, ns, out)?;
    writeln!(out)?;
    say(out, format_args!("Answer: {}", answer(&object.label, pod, &decision, ns, false)))?;
    Ok(())
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", safe_text::line(name, 253))
}

/// The namespace (and opt-out) and the Secrets the Pod lists.
fn namespace_lines(pod: &PodView, ns: &Namespace<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    let opted = if ns.view.opted_out() {
        format!("   (opted out: {INJECT_LABEL}: {INJECT_DISABLED}; nothing is injected)")
    } else if crate::core::pod::opted_out(&pod.labels) {
        format!("   (the Pod is opted out: {INJECT_LABEL}: {INJECT_DISABLED}; nothing is injected)")
    } else {
        String::new()
    };
    say(out, format_args!("Namespace:  {}{opted}", shown_name(ns.name)))?;
    let excluded = decision::excluded_by_service_account(pod, &ns.view);
    if !excluded.is_empty() {
        say(out, format_args!("ServiceAccount: {}", shown_name(pod.service_account())))?;
        for (name, account) in excluded {
            say(
                out,
                format_args!(
                    "  excluded  {}: bound to ServiceAccount {} ({SERVICE_ACCOUNT_ANNOTATION})",
                    ns.secret(name),
                    shown_name(account)
                ),
            )?;
        }
    }
    let listed: Vec<&str> = pod.listed_secrets().collect();
    if !listed.is_empty() {
        say(out, format_args!("Listed:     the Pod's imagePullSecrets, in order"))?;
        for name in listed {
            say(out, format_args!("  {:<30}  {}", ns.secret(name), ns.listed(name)))?;
        }
    }
    // Issue 12 item 4: Secrets bound to another ServiceAccount are not injected (the rule is decide's).
    let left_out = decision::excluded_by_service_account(pod, &ns.view);
    if !left_out.is_empty() {
        let account = quoted(pod.service_account());
        say(out, format_args!("ServiceAccount: {account}   (Secrets bound to another account are not injected)"))?;
        for (name, bound) in left_out {
            say(
                out,
                format_args!(
                    "  left out  {}: bound to ServiceAccount {} ({SERVICE_ACCOUNT_ANNOTATION})",
                    ns.secret(name),
                    quoted(bound)
                ),
            )?;
        }
    }
    Ok(())
}

/// The keys of the Pod's keyring in the kubelet's order, each matching `target` or not, and why.
fn keys(pod: &PodView, ns: &Namespace<'_>, target: &str, inject: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let verdicts = decision::explain_keys(pod, &ns.view, inject, ns.policy.clock.now(), target, &mut Vec::new());
    if verdicts.is_empty() {
        return say(out, format_args!("No pull Secret key in namespace {}.", shown_name(ns.name)));
    }
    say(out, format_args!("Keys, in the kubelet's order (descending byte order of the normalized key):"))?;
    for v in &verdicts {
        let mark = if v.matched { "MATCH   " } else { "no match" };
        // The normalized key keeps the userinfo of a key with an unrecognized scheme (`HTTPS://u:p@h`).
        let secrets: Vec<String> = v.secrets.iter().map(|s| ns.secret(s)).collect();
        say(
            out,
            format_args!("  {mark}  {:<40}  from {}  ({})", safe_text::key(&v.key), secrets.join(", "), v.reason),
        )?;
    }
    Ok(())
}

/// Keys the kubelet drops or that do not do what their author meant, and Secrets the kubelet cannot decode.
fn lint(ns: &Namespace<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    let now = ns.policy.clock.now();
    for secret in &ns.view.secrets {
        // The decision's rule (docs/matching.md section 7): an expired credential is never injected.
        if let Some(at) = secret.expires_at {
            let (mark, what) = if at <= now { ("expired", "expired at") } else { ("expires", "expires at") };
            let soon = expiry::expires_within(at, now, ns.policy.expiry_warning);
            say(
                out,
                format_args!(
                    "  {mark:<8}  Secret {}: its credential {what} {}{}",
                    quoted(&secret.name),
                    expiry::format_rfc3339(at),
                    if at <= now {
                        "; never injected".to_string()
                    } else if soon {
                        format!(
                            "; within --expiry-warning {}: a Pod it is injected into is warned",
                            humantime::format_duration(ns.policy.expiry_warning)
                        )
                    } else {
                        String::new()
                    }
                ),
            )?;
        }
        match &secret.keys {
            Ok(keys) => {
                for key in keys {
                    // A key can carry `user:password@` (the kubelet ignores it): never print that part.
                    let shown = safe_text::key(key);
                    let review = keyring::key_notes(key);
                    if review.dropped {
                        say(out, format_args!("  dropped   {shown:<40}  from {}", ns.secret(&secret.name)))?;
                    }
                    for note in review.notes {
                        say(out, format_args!("  note      {shown}: {}", safe_text::line(&note, 1024)))?;
                    }
                }
            }
            Err(reason) => say(
                out,
                format_args!(
                    "  skipped   Secret {} skipped: the kubelet cannot decode it ({})",
                    quoted(&secret.name),
                    safe_text::line(reason, 1024)
                ),
            )?,
        }
    }
    Ok(())
}

/// The credentials the kubelet tries for one image, in its order: the Pod's Secrets, then the node's providers
/// (the kubelet's union keyring).
fn credentials(outcome: &ImageOutcome, ns: &Namespace<'_>, image: &str, out: &mut dyn Write) -> std::io::Result<()> {
    if outcome.credentials.is_empty() && outcome.node_providers.is_empty() {
        return say(out, format_args!("Credentials: none: the kubelet pulls {image} anonymously."));
    }
    say(
        out,
        format_args!("Credentials, in the order the kubelet tries them (first success wins, no anonymous retry):"),
    )?;
    let secrets = outcome.credentials.iter().map(|name| ns.secret(name));
    let node = outcome.node_providers.iter().map(|name| format!("node credential provider {}", shown_name(name)));
    for (i, line) in secrets.chain(node).enumerate() {
        say(out, format_args!("  {}. {line}", i + 1))?;
    }
    Ok(())
}

fn injected(decision: &Decision, ns: &Namespace<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    if decision.add.is_empty() {
        return Ok(());
    }
    let added: Vec<String> = decision.add.iter().map(|n| ns.secret(n)).collect();
    say(out, format_args!("Injected:   {}", added.join(", ")))
}

/// The one-line answer: what the webhook adds, and why each image without a credential has none. `single`: the
/// subject is one image, so an image is "it", not a container.
fn answer(subject: &str, pod: &PodView, decision: &Decision, ns: &Namespace<'_>, single: bool) -> String {
    let mut parts = Vec::new();
    let lacking: Vec<&ImageOutcome> =
        decision.images.iter().filter(|i| i.credentials.is_empty() && i.node_providers.is_empty()).collect();
    if decision.add.is_empty() {
        if decision.images.iter().all(|i| !i.credentials.is_empty()) {
            parts.push(format!(
                "{subject} will get no Secret: the Secrets it lists already give every image a credential"
            ));
        } else {
            parts.push(format!("{subject} will get no Secret"));
        }
    } else {
        let names: Vec<String> = decision.add.iter().map(|n| shown_name(n)).collect();
        parts.push(format!("{subject} will get: {}", names.join(", ")));
    }
    let who = |image: &ImageOutcome| {
        if single { "it".to_string() } else { format!("{} {}", image.kind.noun(), quoted(&image.container)) }
    };
    for image in decision.images.iter().filter(|i| i.credentials.is_empty() && !i.node_providers.is_empty()) {
        let names: Vec<String> = image.node_providers.iter().map(|n| shown_name(n)).collect();
        parts.push(format!(
            "{} gets its credential from the node (credential provider {})",
            who(image),
            names.join(", ")
        ));
    }
    for image in lacking {
        let who = who(image);
        parts.push(format!("{who} has no credential because {}", why_none(image, pod, decision, ns)));
    }
    format!("{}.", parts.join("; "))
}

/// Why an image gets no credential, most decisive reason first.
fn why_none(image: &ImageOutcome, pod: &PodView, decision: &Decision, ns: &Namespace<'_>) -> String {
    let Some(written) = image.image.as_deref() else { return "it has no image".into() };
    let target = match &image.lookup {
        Ok(target) => target,
        Err(_) => {
            return format!("the kubelet refuses the reference {} (InvalidImageName)", safe_text::line(written, 256));
        }
    };
    let anonymous =
        if image_is_docker_hub(target) { " (pulled anonymously from Docker Hub)" } else { " (pulled anonymously)" };
    if let Some(opt_out) = decision.opt_out {
        let would = decision::explain_keys(pod, &ns.view, true, ns.policy.clock.now(), target, &mut Vec::new())
            .iter()
            .any(|v| v.matched);
        if would {
            return match opt_out {
                OptOut::Namespace => format!(
                    "namespace {} is opted out ({INJECT_LABEL}: {INJECT_DISABLED}), so nothing is injected",
                    shown_name(ns.name)
                ),
                OptOut::Pod => {
                    format!("the Pod is opted out ({INJECT_LABEL}: {INJECT_DISABLED}), so nothing is injected")
                }
            };
        }
    }
    if ns.view.secrets.is_empty() {
        return format!("namespace {} has no pull Secret{anonymous}", shown_name(ns.name));
    }
    // The webhook's own words when it would warn: a Secret bound to another ServiceAccount, or a key that names
    // the registry but does not match it.
    if let Some(reason) = decision::unmatched_reason(pod, &ns.view, ns.policy, target) {
        return format!("{reason}{anonymous}");
    }
    let undecodable: Vec<String> =
        ns.view.secrets.iter().filter(|s| !s.is_decodable()).map(|s| quoted(&s.name)).collect();
    let unknown = if undecodable.is_empty() {
        String::new()
    } else {
        format!("; the keys of {} are unknown: the kubelet cannot decode it", undecodable.join(", "))
    };
    format!("no key in namespace {} matches {target}{anonymous}{unknown}", shown_name(ns.name))
}

fn image_is_docker_hub(target: &str) -> bool {
    target.starts_with("docker.io/")
}
