//! The decision: which pull Secrets to add to a Pod, the JSON patch that adds them, and the warnings.
//!
//! Pure: a function of the Pod, its namespace's candidates and the policy. `serve`, `mutate` and `explain` all
//! call it, so they cannot disagree.
//!
//! The rule (spec §2.J): build the keyring the kubelet would build from the Pod's final `imagePullSecrets` (those
//! listed, in order, then every decodable candidate), look up each image, and add each candidate that contributes a
//! credential to at least one image. Looking up over the whole keyring matters: a direct match anywhere suppresses
//! the `index.docker.io` fallback (R32), and removing the candidates that contribute nothing changes no lookup.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use json_patch::Patch;

use crate::core::credentials::{NamespaceCredentials, SERVICE_ACCOUNT_ANNOTATION};
use crate::core::expiry::{self, Clock, UnixTime};
use crate::core::pod::{self, ContainerKind, KUBESPHERE_ANNOTATION, KubeSphereChoice, PodView};
use crate::kubelet::credential_provider::NodeProviders;
use crate::kubelet::keyring::{Keyring, LookupTarget};
use crate::kubelet::reference::{self, ImageRef};

/// The API server truncates warnings over 256 characters (docs/contract.md: one line, at most 256).
pub const MAX_WARNING_CHARS: usize = 256;
/// More warnings than this are summarised in one last line; a client shows them all, one per line.
pub const MAX_WARNINGS: usize = 20;

/// A registry pattern of `--deny-unmatched`, written like a docker config key and matched like one.
#[derive(Debug, Clone)]
pub struct RegistryPattern {
    written: String,
    keyring: Keyring<()>,
}

impl RegistryPattern {
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// Whether an image's lookup name falls under this pattern, exactly as a pull Secret with this single key
    /// would match it (including the Docker Hub fallback for `https://index.docker.io/v1/`).
    pub fn matches(&self, target: &str) -> bool {
        self.matches_target(&LookupTarget::new(target))
    }

    fn matches_target(&self, target: &LookupTarget) -> bool {
        !self.keyring.lookup(target).is_empty()
    }
}

impl FromStr for RegistryPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err("a registry pattern cannot be empty".into());
        }
        let mut keyring = Keyring::new();
        if !keyring.add(s, ()) {
            return Err(format!("{s:?} is not a valid registry key (the kubelet would drop it)"));
        }
        Ok(Self { written: s.to_string(), keyring })
    }
}

/// Platform policy applied on top of injection.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Images under these patterns must end up with a credential.
    pub deny_unmatched: Vec<RegistryPattern>,
    /// Audit mode: report a policy violation as a warning instead of denying the Pod.
    pub audit_only: bool,
    /// Images under these patterns that end up without a credential get a warning (`--warn-unmatched`), whatever
    /// the namespace's keys.
    pub warn_unmatched: Vec<RegistryPattern>,
    /// The nodes' credential providers (`--credential-provider-config`, the kubelet's own file): an image one of
    /// them matches gets its credential from the node, so it is neither warned about nor denied as unmatched.
    pub node_providers: NodeProviders,
    /// "Now", to judge expiry: the system clock, or a fixed one in tests.
    pub clock: Clock,
    /// An injected credential that expires within this gets a warning (`--expiry-warning`; zero: none).
    pub expiry_warning: Duration,
}

/// Why injection did not run for this Pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptOut {
    Pod,
    Namespace,
}

/// What happened to one container image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOutcome {
    pub kind: ContainerKind,
    pub container: String,
    /// The image as written (`None` when the container has none).
    pub image: Option<String>,
    /// The name the kubelet looks up, or why the kubelet refuses the reference.
    pub lookup: Result<String, String>,
    /// Pull Secrets whose credentials the kubelet will try for this image, in its order (a name may repeat, R6).
    pub credentials: Vec<String>,
    /// The node's credential providers the kubelet calls for this image, after the Pod's Secrets (its union
    /// keyring: Secrets first, then the node's), in the file's order.
    pub node_providers: Vec<String>,
}

/// The full decision for one Pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Names to append to `spec.imagePullSecrets`, in the order the patch adds them.
    pub add: Vec<String>,
    pub warnings: Vec<String>,
    /// Set when policy refuses the Pod: the message for the user.
    pub denied: Option<String>,
    pub opt_out: Option<OptOut>,
    pub images: Vec<ImageOutcome>,
}

/// Who put a keyring member there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    /// The i-th entry of the Pod's own list.
    Listed(usize),
    /// The candidate at this index of the namespace's `secrets`.
    Candidate(usize),
}

/// `explain`: every normalized key of the Pod's keyring (its listed Secrets and, when `inject`, the candidates not
/// listed) with its Secrets and whether (and why) it matches `target`, in the kubelet's order. The same keyring view
/// and lookup rule as [`decide`]; warnings about undecodable Secrets go to `warnings`.
pub fn explain_keys(
    pod: &PodView,
    ns: &NamespaceCredentials,
    inject: bool,
    now: UnixTime,
    target: &str,
    warnings: &mut Vec<String>,
) -> Vec<KeyExplanation> {
    PodMembers::new(pod, ns, inject, now, warnings).explain(target)
}

/// `explain`: the candidates the Pod's ServiceAccount leaves out (bound to another account), with that account,
/// in name order. The same rule as [`decide`].
pub fn excluded_by_service_account<'a>(pod: &PodView, ns: &'a NamespaceCredentials) -> Vec<(&'a str, &'a str)> {
    let inject = !ns.opted_out() && !pod::opted_out(&pod.labels);
    // Who is bound to which account does not depend on time: nothing counts as expired here.
    PodMembers::new(pod, ns, inject, UnixTime::MIN, &mut Vec::new())
        .excluded
        .iter()
        .map(|&i| {
            let secret = &ns.secrets[i as usize];
            (secret.name.as_str(), secret.service_account.as_deref().unwrap_or_default())
        })
        .collect()
}

/// `explain`: why an image (its lookup name `target`) that gets no credential would be warned about, in the words of
/// [`decide`]'s warning (a matching Secret whose credential expired, a Secret bound to another ServiceAccount, a key
/// naming its registry that does not match, a `--warn-unmatched` pattern), or `None` when nothing in the namespace
/// speaks of its registry.
pub fn unmatched_reason(pod: &PodView, ns: &NamespaceCredentials, policy: &Policy, target: &str) -> Option<String> {
    let image = reference::parse_normalized_named(target).ok()?;
    let members = PodMembers::new(pod, ns, true, policy.clock.now(), &mut Vec::new());
    let lookup = LookupTarget::new(target);
    let mut slots = Vec::new();
    if !members.lookup(&lookup, &mut slots).is_empty() || policy.node_providers.matching(&lookup).next().is_some() {
        return None;
    }
    members.expired_match(&lookup, &slots, true).or_else(|| members.unmatched(pod, &image, &lookup, &slots, policy))
}

/// One normalized key of a Pod's keyring, as `explain` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExplanation {
    pub key: String,
    /// The Secrets holding this key, in keyring order.
    pub secrets: Vec<String>,
    pub matched: bool,
    pub reason: String,
}

/// The Pod's keyring (spec §2.J) as a view over the namespace's keyring, whose keys were parsed when the
/// namespace's snapshot was built: nothing is parsed or sorted per Pod.
///
/// The Pod's keyring has exactly the namespace keyring's keys, with fewer items: the listed Secrets the namespace
/// holds (a name listed twice counts twice, R6), then the Secrets the KubeSphere annotation chooses (the patch
/// appends them first), and, when injecting, every other candidate except those bound to another ServiceAccount
/// and those whose credential expired (docs/matching.md section 7); in a slot, the kubelet's add order puts the listed and chosen ones first, in list order, then the candidates in
/// name order. A slot left without items is a key the Pod's keyring does not have, so it adds nothing and does not
/// count as a direct match for the Docker Hub fallback (R32). The tests build the same keyring key by key, as the
/// kubelet does, and compare.
struct PodMembers<'a> {
    ns: &'a NamespaceCredentials,
    /// Each listed name, with the index of its decodable candidate when the namespace has one; after the Pod's own
    /// list, the Secrets chosen by the KubeSphere annotation (all decodable candidates).
    listed: Vec<(&'a str, Option<u32>)>,
    /// How many entries of `listed` the Pod lists itself: the others are chosen, and added by the patch.
    own: usize,
    /// Indices of the candidates that are not members as candidates, sorted: those listed or chosen (members
    /// already) and those bound to another ServiceAccount.
    skip: Vec<u32>,
    /// Indices of the candidates left out because they are bound to another ServiceAccount, ascending.
    excluded: Vec<u32>,
    /// Indices of the candidates left out because their credential has expired, ascending.
    expired: Vec<u32>,
    inject: bool,
}

impl<'a> PodMembers<'a> {
    /// Also pushes the warnings `PodKeyring::build` pushes, in the same order.
    fn new(
        pod: &'a PodView,
        ns: &'a NamespaceCredentials,
        inject: bool,
        now: UnixTime,
        warnings: &mut Vec<String>,
    ) -> Self {
        let mut listed = Vec::new();
        let mut skip = Vec::new();
        let mut warned: Vec<&str> = Vec::new();
        for name in pod.listed_secrets() {
            let Some(i) = ns.position(name) else {
                listed.push((name, None));
                continue;
            };
            let secret = &ns.secrets[i];
            let i = i as u32;
            skip.push(i);
            match &secret.keys {
                Ok(_) => {
                    listed.push((name, Some(i)));
                    if let Some(at) = secret.expires_at.filter(|&at| at <= now)
                        && !warned.contains(&name)
                    {
                        warned.push(name);
                        warnings.push(format!(
                            "imagePullSecret {:?} expired at {}: pulls with it will fail until it is renewed",
                            short(name, 60),
                            expiry::format_rfc3339(at)
                        ));
                    }
                }
                Err(reason) => {
                    listed.push((name, None));
                    if !warned.contains(&name) {
                        warned.push(name);
                        warnings.push(undecodable_listed(name, reason));
                    }
                }
            }
        }
        let own = listed.len();
        if inject && let Some(choice) = &pod.kubesphere {
            choose(choice, ns, now, &mut listed, &mut skip, warnings);
        }
        skip.sort_unstable();
        let mut excluded = Vec::new();
        if inject && !ns.keys().bound.is_empty() {
            let account = pod.service_account();
            excluded.extend(ns.keys().bound.iter().copied().filter(|i| {
                skip.binary_search(i).is_err() && ns.secrets[*i as usize].service_account.as_deref() != Some(account)
            }));
            skip.extend_from_slice(&excluded);
            skip.sort_unstable();
        }
        // An expired credential is never injected: the registry would refuse it, and the kubelet does not retry
        // anonymously. Only candidates with an expiry are looked at, so a Pod pays nothing for the rule.
        let mut expired = Vec::new();
        if inject {
            expired.extend(ns.keys().expiring.iter().copied().filter(|i| {
                skip.binary_search(i).is_err() && ns.secrets[*i as usize].expires_at.is_some_and(|at| at <= now)
            }));
            skip.extend_from_slice(&expired);
            skip.sort_unstable();
        }
        Self { ns, listed, own, skip, excluded, expired, inject }
    }

    /// The names the KubeSphere annotation adds, in its order.
    fn chosen(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.listed[self.own..].iter().map(|(name, _)| *name)
    }

    /// The members of one slot of the namespace keyring, in the kubelet's add order.
    fn expand(&self, slot: u32, out: &mut Vec<Member>) {
        let items = self.ns.keys().keyring.items(slot);
        for (position, &(_, candidate)) in self.listed.iter().enumerate() {
            if let Some(c) = candidate {
                // One item per key of the Secret that normalizes to this slot (R18).
                out.extend(items.iter().filter(|&&i| i == c).map(|_| Member::Listed(position)));
            }
        }
        if self.inject {
            out.extend(
                items.iter().filter(|i| self.skip.binary_search(i).is_err()).map(|&i| Member::Candidate(i as usize)),
            );
        }
    }

    /// Whether the Pod's keyring has the key of this slot (it has at least one member), without collecting them.
    fn present(&self, slot: u32) -> bool {
        let items = self.ns.keys().keyring.items(slot);
        items.iter().any(|i| {
            self.listed.iter().any(|&(_, c)| c == Some(*i)) || (self.inject && self.skip.binary_search(i).is_err())
        })
    }

    /// `Keyring::lookup` on the Pod's keyring (R28-R32). `slots` is left holding the namespace keyring's direct
    /// matches, members or not.
    fn lookup(&self, target: &LookupTarget, slots: &mut Vec<u32>) -> Vec<Member> {
        let keyring = &self.ns.keys().keyring;
        slots.clear();
        keyring.direct_matches(target, slots);
        let mut members = Vec::new();
        for &slot in slots.iter() {
            self.expand(slot, &mut members);
        }
        if members.is_empty()
            && let Some(slot) = keyring.fallback_slot(target)
        {
            self.expand(slot, &mut members);
        }
        members
    }

    fn name(&self, member: Member) -> &'a str {
        match member {
            Member::Listed(i) => self.listed[i].0,
            Member::Candidate(i) => &self.ns.secrets[i].name,
        }
    }

    /// The warning for an expired candidate that would have given an image a credential (a direct match, or the
    /// Docker Hub fallback when nothing else matched), naming the Secret and the time, never a value.
    fn expired_match(&self, target: &LookupTarget, slots: &[u32], unmatched: bool) -> Option<String> {
        if self.expired.is_empty() {
            return None;
        }
        let keyring = &self.ns.keys().keyring;
        let fallback = keyring.fallback_slot(target).filter(|_| unmatched);
        let i = slots
            .iter()
            .chain(fallback.iter())
            .find_map(|&slot| keyring.items(slot).iter().find(|i| self.expired.binary_search(i).is_ok()))?;
        let secret = &self.ns.secrets[*i as usize];
        Some(format!(
            "Secret {:?} not injected: its credential expired at {}",
            short(&secret.name, 60),
            expiry::format_rfc3339(secret.expires_at.unwrap_or_default())
        ))
    }

    /// [`explain_keys`]: the namespace keyring's verdicts over the slots the Pod's keyring holds.
    fn explain(&self, target: &str) -> Vec<KeyExplanation> {
        let members = |slot: u32| {
            let mut out = Vec::new();
            self.expand(slot, &mut out);
            out
        };
        self.ns
            .keys()
            .keyring
            .explain(target, |slot| self.present(slot))
            .into_iter()
            .map(|v| KeyExplanation {
                secrets: members(v.slot).into_iter().map(|m| self.name(m).to_string()).collect(),
                reason: v.describe(),
                key: v.key,
                matched: v.matched,
            })
            .collect()
    }

    /// Why an image that got no credential deserves a warning, if it does (docs/matching.md, "Warnings"): a Secret
    /// bound to another ServiceAccount would have matched it; a key of the Pod's keyring names its registry but
    /// does not match (port, path, wildcard width); or a `--warn-unmatched` pattern covers it. `slots` are the
    /// direct matches [`PodMembers::lookup`] left.
    fn unmatched(
        &self,
        pod: &PodView,
        image: &ImageRef,
        target: &LookupTarget,
        slots: &[u32],
        policy: &Policy,
    ) -> Option<String> {
        let keyring = &self.ns.keys().keyring;
        if !self.excluded.is_empty() {
            let fallback = keyring.fallback_slot(target);
            for &slot in slots.iter().chain(fallback.iter()) {
                let bound = keyring.items(slot).iter().find(|i| self.excluded.binary_search(i).is_ok());
                if let Some(&i) = bound {
                    let secret = &self.ns.secrets[i as usize];
                    return Some(format!(
                        "Secret {:?} matches but is bound to ServiceAccount {:?} ({SERVICE_ACCOUNT_ANNOTATION}), not \
                         {:?}",
                        short(&secret.name, 60),
                        short(secret.service_account.as_deref().unwrap_or_default(), 60),
                        short(pod.service_account(), 60),
                    ));
                }
            }
        }
        // Official Docker Hub images are public: a key of another Docker Hub path is no reason to speak.
        let official = image.is_docker_hub() && image.path.starts_with("library/");
        if !official && let Some((slot, miss)) = keyring.near_miss(target, |slot| self.present(slot)) {
            let mut members = Vec::new();
            self.expand(slot, &mut members);
            let secret = members.first().map_or("", |&m| self.name(m));
            return Some(format!(
                "key \"{}\" of Secret {:?} names its registry, but {miss}",
                short(&crate::safe_text::key(keyring.key(slot)), 80),
                short(secret, 60)
            ));
        }
        let pattern = policy.warn_unmatched.iter().find(|p| p.matches_target(target))?;
        Some(format!("no pull Secret in this namespace matches it (--warn-unmatched {})", short(pattern.as_str(), 80)))
    }
}

/// Issue 12 item 6: the Secrets the KubeSphere annotation names, in its order, become members as if listed after
/// the Pod's own list (the patch adds them first): each that the namespace holds as a decodable, indexed pull
/// Secret and that the Pod does not already list. Every other entry is a warning, and so is a malformed annotation.
fn choose<'a>(
    choice: &'a KubeSphereChoice,
    ns: &NamespaceCredentials,
    now: UnixTime,
    listed: &mut Vec<(&'a str, Option<u32>)>,
    skip: &mut Vec<u32>,
    warnings: &mut Vec<String>,
) {
    let entries = match choice {
        KubeSphereChoice::Entries(entries) => entries,
        KubeSphereChoice::Malformed(reason) => {
            warnings.push(format!("annotation {KUBESPHERE_ANNOTATION} ignored: {reason}"));
            return;
        }
    };
    let mut seen: HashSet<&str> = listed.iter().map(|(name, _)| *name).collect();
    for (container, secret) in entries {
        let container = short(container, 40);
        let Some(name) = secret.as_deref() else {
            warnings.push(format!(
                "annotation {KUBESPHERE_ANNOTATION}: the value for container {container:?} is not a Secret name; ignored"
            ));
            continue;
        };
        if name.is_empty() || !seen.insert(name) {
            continue;
        }
        let not_added = |why: String| {
            format!(
                "Secret {:?} named by {KUBESPHERE_ANNOTATION} for container {container:?} not added: {why}",
                short(name, 60)
            )
        };
        let Some(i) = ns.position(name) else {
            warnings.push(not_added("no pull Secret of that name in this namespace".into()));
            continue;
        };
        let secret = &ns.secrets[i];
        match (&secret.keys, secret.over_limit) {
            (Err(reason), _) => {
                warnings.push(not_added(format!("the kubelet cannot decode it ({reason}); it would fail every pull")))
            }
            (Ok(_), Some(limit)) => warnings
                .push(not_added(format!("it is over an index bound ({}), so its keys are unknown", limit.flag()))),
            (Ok(_), None) if secret.expires_at.is_some_and(|at| at <= now) => warnings.push(not_added(format!(
                "it expired at {}",
                expiry::format_rfc3339(secret.expires_at.unwrap_or_default())
            ))),
            (Ok(_), None) => {
                listed.push((name, Some(i as u32)));
                skip.push(i as u32);
            }
        }
    }
}

/// Decides for one Pod in one namespace.
pub fn decide(pod: &PodView, ns: &NamespaceCredentials, policy: &Policy) -> Decision {
    let opt_out = if ns.opted_out() {
        Some(OptOut::Namespace)
    } else if pod::opted_out(&pod.labels) {
        Some(OptOut::Pod)
    } else {
        None
    };
    let inject = opt_out.is_none();
    let now = policy.clock.now();
    let mut warnings = Vec::new();
    let keyring = PodMembers::new(pod, ns, inject, now, &mut warnings);
    let mut slots = Vec::new();

    // The annotation's choices first, in its order; then each candidate that contributes a credential.
    let mut add: Vec<String> = keyring.chosen().map(str::to_string).collect();
    let mut images = Vec::with_capacity(pod.images.len());
    let mut violations = Vec::new();
    for container in &pod.images {
        let Some(image) = container.image.as_deref() else {
            images.push(ImageOutcome {
                kind: container.kind,
                container: container.container.clone(),
                image: None,
                lookup: Err("no image".into()),
                credentials: Vec::new(),
                node_providers: Vec::new(),
            });
            continue;
        };
        let parsed = match reference::parse_normalized_named(image) {
            Ok(parsed) => parsed,
            Err(e) => {
                warnings.push(format!(
                    "{} {:?}: image {} is invalid ({e}): the kubelet will refuse it (InvalidImageName)",
                    container.kind.noun(),
                    short(&container.container, 40),
                    short(image, 100),
                ));
                images.push(ImageOutcome {
                    kind: container.kind,
                    container: container.container.clone(),
                    image: Some(image.to_string()),
                    lookup: Err(e.to_string()),
                    credentials: Vec::new(),
                    node_providers: Vec::new(),
                });
                continue;
            }
        };
        let target = parsed.name();
        let lookup_target = LookupTarget::new(&target);
        let members = keyring.lookup(&lookup_target, &mut slots);
        if let Some(warning) = keyring.expired_match(&lookup_target, &slots, members.is_empty()) {
            warnings.push(warning);
        }
        for member in &members {
            if let Member::Candidate(i) = *member {
                let name = &ns.secrets[i].name;
                if !add.contains(name) {
                    add.push(name.clone());
                }
            }
        }
        let node_providers: Vec<String> = policy.node_providers.matching(&lookup_target).map(str::to_string).collect();
        // An image a node's provider covers has a credential, from the node: nothing to warn about or deny.
        if members.is_empty() && node_providers.is_empty() {
            if policy.deny_unmatched.iter().any(|p| p.matches_target(&lookup_target))
                && opt_out != Some(OptOut::Namespace)
            {
                violations.push(format!(
                    "{} {:?} image {}",
                    container.kind.noun(),
                    short(&container.container, 40),
                    short(image, 100)
                ));
            } else if inject && let Some(why) = keyring.unmatched(pod, &parsed, &lookup_target, &slots, policy) {
                warnings.push(format!(
                    "{} {:?}: no credential for image {}: {why}; pulled anonymously",
                    container.kind.noun(),
                    short(&container.container, 40),
                    short(image, 100),
                ));
            }
        }
        images.push(ImageOutcome {
            kind: container.kind,
            container: container.container.clone(),
            image: Some(image.to_string()),
            lookup: Ok(target),
            credentials: members.iter().map(|m| keyring.name(*m).to_string()).collect(),
            node_providers,
        });
    }

    // Injected, but not for long: the owner can renew it before pulls start failing.
    for name in &add {
        let at = ns.get(name).and_then(|s| s.expires_at);
        if let Some(at) = at.filter(|&at| expiry::expires_within(at, now, policy.expiry_warning)) {
            warnings.push(format!(
                "Secret {:?} injected, but its credential expires at {} (within --expiry-warning {})",
                short(name, 60),
                expiry::format_rfc3339(at),
                humantime::format_duration(policy.expiry_warning)
            ));
        }
    }

    let mut denied = None;
    if !violations.is_empty() {
        let mut message = String::from("no pull credential for a registry that requires one: ");
        message.push_str(&violations.join("; "));
        if policy.audit_only {
            for v in &violations {
                warnings.push(format!("policy (audit): no pull credential for {v}"));
            }
        } else {
            denied = Some(message);
        }
    }
    if !inject {
        // Opted out: only policy speaks; the Pod's owner asked to be left alone.
        warnings.retain(|w| w.starts_with("policy"));
    }
    Decision { add, warnings: finish_warnings(warnings), denied, opt_out, images }
}

/// Where a Pod's spec is in the object the webhook answers for: the Pod itself (the admission hot path).
pub const POD_SPEC: &str = "/spec";

/// [`patch_json`] as a `json_patch::Patch` (to apply it locally: `mutate`).
pub fn patch(pod: &PodView, add: &[String], spec: &str) -> Option<Patch> {
    let bytes = patch_json(pod, add, spec)?;
    Some(serde_json::from_slice(&bytes).expect("patch_json writes a valid JSON patch"))
}

/// The JSON patch that appends `add` to the Pod's list (docs/contract.md): one `add` of the whole array when the
/// field is absent, else one `add .../-` per name; `None` when there is nothing to add. `spec` is the JSON pointer
/// of the Pod spec in the patched object: [`POD_SPEC`] for a Pod, `/spec/template/spec` for a Deployment's
/// template, `/items/3/spec/jobTemplate/spec/template/spec` for a CronJob in a List. The one patch writer: the
/// bytes are written directly, without building JSON values first (the admission response carries them
/// base64-encoded).
pub fn patch_json(pod: &PodView, add: &[String], spec: &str) -> Option<Vec<u8>> {
    if add.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(64 + add.iter().map(|n| n.len() + 48 + spec.len()).sum::<usize>());
    let name = |out: &mut Vec<u8>, name: &String| {
        out.extend_from_slice(br#"{"name":"#);
        serde_json::to_writer(&mut *out, name).expect("writing to a Vec never fails");
        out.push(b'}');
    };
    // `"<spec>/imagePullSecrets<tail>"`, the pointer escaped as a JSON string (whatever a caller passes).
    let path = |out: &mut Vec<u8>, tail: &[u8]| {
        serde_json::to_writer(&mut *out, spec).expect("writing to a Vec never fails");
        out.pop(); // the closing quote
        out.extend_from_slice(b"/imagePullSecrets");
        out.extend_from_slice(tail);
        out.push(b'"');
    };
    if pod.pull_secrets.is_none() {
        out.extend_from_slice(br#"[{"op":"add","path":"#);
        path(&mut out, b"");
        out.extend_from_slice(br#","value":["#);
        for (i, n) in add.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            name(&mut out, n);
        }
        out.extend_from_slice(b"]}]");
    } else {
        out.push(b'[');
        for (i, n) in add.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"op":"add","path":"#);
            path(&mut out, b"/-");
            out.extend_from_slice(br#","value":"#);
            name(&mut out, n);
            out.push(b'}');
        }
        out.push(b']');
    }
    Some(out)
}

/// The warning for an undecodable Secret the Pod lists: the consequence first, so that bounding a long reason
/// never cuts it off.
fn undecodable_listed(name: &str, reason: &str) -> String {
    format!(
        "every image pull of this Pod will fail: imagePullSecret {name:?} cannot be decoded by the kubelet ({reason})"
    )
}

/// Deduplicates, bounds each warning to one line of at most [`MAX_WARNING_CHARS`], and bounds their number.
fn finish_warnings(mut warnings: Vec<String>) -> Vec<String> {
    if warnings.is_empty() {
        return warnings;
    }
    let mut seen = HashSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    let extra = warnings.len().saturating_sub(MAX_WARNINGS);
    warnings.truncate(MAX_WARNINGS);
    let mut out: Vec<String> = warnings.into_iter().map(|w| short(&w, MAX_WARNING_CHARS)).collect();
    if extra > 0 {
        out.push(format!("... and {extra} more warnings (run `pullsecret-injector mutate` on this Pod to see all)"));
    }
    out
}

/// One printable line of at most `max` characters ([`crate::safe_text::line`]): URL userinfo redacted, control and
/// bidi characters escaped, the tail cut with `…`. Every warning and denial goes through it.
pub(crate) fn short(text: &str, max: usize) -> String {
    crate::safe_text::line(text, max)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::core::credentials::{CandidateSecret, Origin};
    use crate::kubelet::docker_config::SecretKind;

    fn candidate(name: &str, keys: &[&str]) -> Arc<CandidateSecret> {
        Arc::new(CandidateSecret {
            name: name.into(),
            kind: SecretKind::DockerConfigJson,
            keys: Ok(keys.iter().map(|k| k.to_string()).collect()),
            origin: Origin::Namespace,
            service_account: None,
            over_limit: None,
            expires_at: None,
        })
    }

    fn bound(name: &str, account: &str, keys: &[&str]) -> Arc<CandidateSecret> {
        let mut secret = Arc::unwrap_or_clone(candidate(name, keys));
        secret.service_account = Some(account.into());
        Arc::new(secret)
    }

    fn over_limit(name: &str) -> Arc<CandidateSecret> {
        let mut secret = Arc::unwrap_or_clone(candidate(name, &[]));
        secret.over_limit = Some(crate::core::credentials::Limit::KeysPerSecret);
        Arc::new(secret)
    }

    fn undecodable(name: &str) -> Arc<CandidateSecret> {
        Arc::new(CandidateSecret {
            name: name.into(),
            kind: SecretKind::DockerConfigJson,
            keys: Err("auth of \"r.io\" is not valid base64".into()),
            origin: Origin::Namespace,
            service_account: None,
            over_limit: None,
            expires_at: None,
        })
    }

    fn namespace(secrets: Vec<Arc<CandidateSecret>>) -> NamespaceCredentials {
        let mut secrets = secrets;
        secrets.sort_by(|a, b| a.name.cmp(&b.name));
        NamespaceCredentials::new(Default::default(), secrets)
    }

    fn pod_json(images: &[&str], listed: Option<&[&str]>) -> Value {
        let containers: Vec<Value> =
            images.iter().enumerate().map(|(i, image)| json!({"name": format!("c{i}"), "image": image})).collect();
        let mut pod =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}});
        if let Some(listed) = listed {
            pod["spec"]["imagePullSecrets"] = listed.iter().map(|n| json!({"name": n})).collect();
        }
        pod
    }

    /// Decides, applies the patch to the Pod like the API server does, and returns the final list of names.
    fn final_list(pod: &Value, ns: &NamespaceCredentials, policy: &Policy) -> (Vec<String>, Decision) {
        let view = PodView::from_value(pod).unwrap();
        let decision = decide(&view, ns, policy);
        let mut patched = pod.clone();
        if let Some(p) = patch(&view, &decision.add, POD_SPEC) {
            json_patch::patch(&mut patched, &p).unwrap();
        }
        let names = patched["spec"]["imagePullSecrets"]
            .as_array()
            .map(|a| a.iter().map(|e| e["name"].as_str().unwrap_or_default().to_string()).collect())
            .unwrap_or_default();
        (names, decision)
    }

    /// The kubelet's keyring for the Pod's final list, built key by key exactly as the kubelet builds it: the
    /// reference `PodMembers` is compared with.
    struct PodKeyring<'a> {
        keyring: Keyring<Member>,
        listed: Vec<&'a str>,
        ns: &'a NamespaceCredentials,
    }

    impl<'a> PodKeyring<'a> {
        /// Builds the keyring from the Pod's final list as the kubelet reads it: its listed Secrets (in order), then,
        /// when `inject`, the Secrets the KubeSphere annotation chooses (decodable, indexed, not listed, first time
        /// named) and every decodable candidate neither listed nor chosen nor bound to another ServiceAccount.
        /// Warnings about undecodable listed Secrets go to `warnings`.
        fn build(pod: &'a PodView, ns: &'a NamespaceCredentials, inject: bool, warnings: &mut Vec<String>) -> Self {
            let mut listed: Vec<&str> = pod.listed_secrets().collect();
            if inject && let Some(KubeSphereChoice::Entries(entries)) = &pod.kubesphere {
                for name in entries.iter().filter_map(|(_, s)| s.as_deref()) {
                    let usable = ns.get(name).is_some_and(|s| s.keys.is_ok() && s.over_limit.is_none());
                    if usable && !listed.contains(&name) {
                        listed.push(name);
                    }
                }
            }
            let mut keyring = Keyring::new();
            let mut seen = HashSet::with_capacity(listed.len());
            for (i, name) in listed.iter().enumerate() {
                let Some(secret) = ns.get(name) else { continue };
                match &secret.keys {
                    Ok(keys) => {
                        for key in keys {
                            keyring.add(key, Member::Listed(i));
                        }
                    }
                    Err(reason) if seen.insert(*name) => warnings.push(undecodable_listed(name, reason)),
                    Err(_) => {}
                }
            }
            if inject {
                let listed_set: HashSet<&str> = listed.iter().copied().collect();
                for (i, secret) in ns.secrets.iter().enumerate() {
                    let other_account = secret.service_account.as_deref().is_some_and(|sa| sa != pod.service_account());
                    if listed_set.contains(secret.name.as_str()) || other_account {
                        continue;
                    }
                    if let Ok(keys) = &secret.keys {
                        let member = Member::Candidate(i);
                        for key in keys {
                            keyring.add(key, member);
                        }
                    }
                }
            }
            Self { keyring, listed, ns }
        }

        fn name(&self, member: Member) -> &'a str {
            match member {
                Member::Listed(i) => self.listed[i],
                Member::Candidate(i) => &self.ns.secrets[i].name,
            }
        }

        /// Every normalized key with its Secrets and whether (and why) it matches `target`, in the kubelet's order.
        fn explain(&self, target: &str) -> Vec<KeyExplanation> {
            self.keyring
                .explain(target, |_| true)
                .into_iter()
                .map(|v| KeyExplanation {
                    secrets: self.keyring.items(v.slot).iter().map(|m| self.name(*m).to_string()).collect(),
                    reason: v.describe(),
                    key: v.key,
                    matched: v.matched,
                })
                .collect()
        }
    }

    /// `decide`'s keyring view over the namespace's parsed keys (`PodMembers`) gives the lookups and warnings of the
    /// keyring the kubelet builds key by key (`PodKeyring`), for every combination here of listed Secrets (absent,
    /// unknown, repeated, undecodable, sharing keys with candidates), opt-out, and images reaching direct matches,
    /// shared slots, globs, dropped keys and the Docker Hub fallback (R6, R18, R28-R32).
    #[test]
    fn pod_members_agree_with_the_kubelets_keyring() {
        let ns = namespace(vec![
            candidate("hub", &["https://index.docker.io/v1/"]),
            candidate("hub2", &["index.docker.io", "docker.io/myorg"]),
            candidate("org", &["docker.io/myorg", "docker.io/myorg"]),
            candidate("reg", &["registry.example.com", "https://registry.example.com/v2/"]),
            candidate("team", &["registry.example.com/team"]),
            candidate("glob", &["*.example.com", "*.*"]),
            candidate("port", &["registry.example.com:5000"]),
            candidate("dropped", &["https://reg.example.com:port/", "[bad"]),
            candidate("reparse", &["https://https://h"]),
            undecodable("broken"),
            undecodable("broken2"),
            bound("builder-pull", "builder", &["registry.example.com", "docker.io/myorg"]),
            bound("default-pull", "default", &["*.example.com"]),
            over_limit("huge"),
        ]);
        let listed_cases: &[Option<&[&str]>] = &[
            None,
            Some(&[]),
            Some(&["org"]),
            Some(&["team", "reg", "team"]),
            Some(&["missing", "hub2", ""]),
            Some(&["broken", "broken", "glob"]),
            Some(&["hub", "org", "hub2", "reg", "team", "glob", "port", "dropped", "reparse", "broken2"]),
            Some(&["builder-pull", "huge"]),
        ];
        // (serviceAccountName, kubesphere.io/imagepullsecrets)
        let pod_cases: &[(Option<&str>, Option<&str>)] = &[
            (None, None),
            (Some("builder"), None),
            (
                None,
                Some(r#"{"a":"team","b":"builder-pull","c":"broken","d":"missing","e":"org","f":"team","g":"huge"}"#),
            ),
            (Some("builder"), Some(r#"{"x":"hub","y":"default-pull"}"#)),
            (None, Some("{not json")),
        ];
        let images = [
            "nginx",
            "myorg/app",
            "docker.io/myorg2/app",
            "registry.example.com/team/app",
            "registry.example.com/other",
            "registry.example.com:5000/app",
            "a.example.com/x",
            "localhost/app",
            "h/app",
            "unknown.example.io/app",
        ];
        for (listed, &(account, annotation)) in listed_cases.iter().flat_map(|l| pod_cases.iter().map(move |p| (l, p)))
        {
            for inject in [true, false] {
                let mut pod = pod_json(&images, *listed);
                pod["spec"]["serviceAccountName"] = json!(account);
                if let Some(annotation) = annotation {
                    pod["metadata"]["annotations"] = json!({pod::KUBESPHERE_ANNOTATION: annotation});
                }
                let view = PodView::from_value(&pod).unwrap();
                let (mut slow_warnings, mut fast_warnings) = (Vec::new(), Vec::new());
                let slow = PodKeyring::build(&view, &ns, inject, &mut slow_warnings);
                let fast = PodMembers::new(&view, &ns, inject, UnixTime::MIN, &mut fast_warnings);
                // The annotation's own warnings are the fidelity tests' business.
                fast_warnings.retain(|w| !w.contains(pod::KUBESPHERE_ANNOTATION));
                assert_eq!(fast_warnings, slow_warnings, "{listed:?} inject={inject}");
                let chosen: Vec<&str> = fast.chosen().collect();
                assert_eq!(chosen, slow.listed[fast.own..], "{listed:?} {annotation:?} inject={inject}");
                for image in images {
                    let target = reference::parse_normalized_named(image).unwrap().name();
                    let want: Vec<&str> = slow.keyring.lookup_str(&target).into_iter().map(|m| slow.name(m)).collect();
                    let got: Vec<&str> = fast
                        .lookup(&LookupTarget::new(&target), &mut Vec::new())
                        .into_iter()
                        .map(|m| fast.name(m))
                        .collect();
                    assert_eq!(got, want, "{image} with {listed:?} inject={inject}");
                    assert_eq!(fast.explain(&target), slow.explain(&target), "{image} with {listed:?} inject={inject}");
                }
            }
        }
    }

    /// `patch_json` writes a JSON patch that parses and applies, for names that need escaping too: the Pod's list
    /// afterwards is its own entries, then exactly the names added.
    #[test]
    fn patch_json_is_the_serialized_patch() {
        let names: Vec<String> =
            ["a", "pull-secret", "quo\"te", "back\\slash", "ünï", "tab\t"].map(String::from).into();
        for listed in [None, Some(&["x"][..]), Some(&[][..])] {
            let pod = pod_json(&["nginx"], listed);
            let view = PodView::from_value(&pod).unwrap();
            assert!(patch_json(&view, &[], POD_SPEC).is_none());
            for n in 1..=names.len() {
                let bytes = patch_json(&view, &names[..n], POD_SPEC).unwrap();
                let parsed: Patch = serde_json::from_slice(&bytes).unwrap();
                let mut patched = pod.clone();
                json_patch::patch(&mut patched, &parsed).unwrap();
                let list: Vec<&str> = patched["spec"]["imagePullSecrets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["name"].as_str().unwrap())
                    .collect();
                let want: Vec<&str> =
                    listed.unwrap_or_default().iter().copied().chain(names[..n].iter().map(String::as_str)).collect();
                assert_eq!(list, want, "{listed:?} {n}");
            }
        }
    }

    /// The admission hot path's bytes, exactly: the API server decodes them, and the benchmarks and every recorded
    /// answer assume this shape (no spaces, `op`, `path`, `value` in this order).
    #[test]
    fn patch_json_bytes_for_a_pod_are_fixed() {
        let names: Vec<String> = vec!["a".into(), "b".into()];
        let absent = PodView::from_value(&pod_json(&["nginx"], None)).unwrap();
        let present = PodView::from_value(&pod_json(&["nginx"], Some(&["x"]))).unwrap();
        let cases: [(&PodView, &str); 2] = [
            (&absent, r#"[{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"a"},{"name":"b"}]}]"#),
            (
                &present,
                r#"[{"op":"add","path":"/spec/imagePullSecrets/-","value":{"name":"a"}},{"op":"add","path":"/spec/imagePullSecrets/-","value":{"name":"b"}}]"#,
            ),
        ];
        for (pod, want) in cases {
            assert_eq!(String::from_utf8(patch_json(pod, &names, POD_SPEC).unwrap()).unwrap(), want);
        }
    }

    /// The same patch for a Pod spec anywhere in an object (a workload's template, a List's item): applied to the
    /// object, it changes that spec's list and nothing else; a pointer that needs JSON escaping stays valid JSON.
    #[test]
    fn patch_paths_follow_the_pod_spec() {
        let names: Vec<String> = vec!["a".into(), "quo\"te".into()];
        // (JSON pointer of the Pod spec, the object with the Pod spec {} planted there)
        let cases: &[(&str, Value)] = &[
            (POD_SPEC, json!({"kind": "Pod", "spec": {}})),
            ("/spec/template/spec", json!({"kind": "Deployment", "spec": {"replicas": 2, "template": {"spec": {}}}})),
            (
                "/spec/jobTemplate/spec/template/spec",
                json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {}}}}}}),
            ),
            ("/template/spec", json!({"kind": "PodTemplate", "template": {"spec": {}}})),
            (
                "/items/1/spec/template/spec",
                json!({"kind": "List", "items": [{}, {"spec": {"template": {"spec": {}}}}]}),
            ),
            ("/we\"ird~1key/spec", json!({"we\"ird/key": {"spec": {}}})),
        ];
        for (spec, object) in cases {
            let pointer = *spec;
            for listed in [None, Some(&["x"][..])] {
                let pod = pod_json(&["nginx"], listed);
                let view = PodView::from_value(&pod).unwrap();
                let mut want = object.clone();
                *want.pointer_mut(pointer).unwrap() = pod["spec"].clone();
                let bytes = patch_json(&view, &names, spec).unwrap();
                let parsed: Patch = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{spec}: {e}"));
                assert_eq!(patch(&view, &names, spec), Some(parsed.clone()), "{spec}: patch parses patch_json");
                let mut patched = want.clone();
                json_patch::patch(&mut patched, &parsed).unwrap_or_else(|e| panic!("{spec} {listed:?}: {e}"));
                let list = patched.pointer_mut(pointer).unwrap().as_object_mut().unwrap().remove("imagePullSecrets");
                let got: Vec<String> =
                    list.unwrap().as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect();
                let expected: Vec<String> =
                    listed.unwrap_or_default().iter().map(|n| n.to_string()).chain(names.iter().cloned()).collect();
                assert_eq!(got, expected, "{spec} {listed:?}");
                if listed.is_some() {
                    patched.pointer_mut(pointer).unwrap()["imagePullSecrets"] = json!([{"name": "x"}]);
                }
                assert_eq!(patched, want, "{spec} {listed:?}: nothing else changes");
            }
        }
    }

    /// (case, images, candidates with their keys, expected final list)
    type InjectionCase<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a [&'a str])], &'a [&'a str]);

    #[test]
    fn injects_only_what_the_kubelet_matches() {
        let cases: &[InjectionCase] = &[
            (
                "exact host",
                &["registry.example.com/app"],
                &[("a", &["registry.example.com"]), ("b", &["other.example.com"])],
                &["a"],
            ),
            ("port must match (M63)", &["registry.example.com/app"], &[("a", &["registry.example.com:443"])], &[]),
            (
                "port matches (M61)",
                &["registry.example.com:5000/app"],
                &[("a", &["registry.example.com:5000"])],
                &["a"],
            ),
            ("wildcard one label (M100)", &["sub.corp.example/app"], &[("w", &["*.corp.example"])], &["w"]),
            ("wildcard not two labels (M101)", &["a.sub.corp.example/app"], &[("w", &["*.corp.example"])], &[]),
            (
                "string prefix /team matches /team2 (M112)",
                &["example.com/team2/app"],
                &[("t", &["example.com/team"])],
                &["t"],
            ),
            ("docker.io/nginx key misses nginx (M13)", &["nginx"], &[("d", &["docker.io/nginx"])], &[]),
            ("registry-1.docker.io misses Hub (M18)", &["nginx"], &[("r", &["registry-1.docker.io"])], &[]),
            ("index.docker.io fallback (M1)", &["nginx"], &[("hub", &["https://index.docker.io/v1/"])], &["hub"]),
            (
                "fallback suppressed by a direct match (C1)",
                &["myorg/app"],
                &[("org", &["docker.io/myorg"]), ("hub", &["https://index.docker.io/v1/"])],
                &["org"],
            ),
            (
                "fallback when the direct key misses (C2)",
                &["nginx"],
                &[("org", &["docker.io/myorg"]), ("hub", &["https://index.docker.io/v1/"])],
                &["hub"],
            ),
            (
                "all matching keys contribute, in try order (R28, C3)",
                &["example.com/team/app"],
                &[("ada", &["example.com"]), ("grace", &["example.com/team"])],
                &["grace", "ada"],
            ),
            ("case-sensitive (M52)", &["registry.example.com/app"], &[("u", &["Registry.Example.com"])], &[]),
            ("bare localhost:5000 is Docker Hub (M35)", &["localhost:5000"], &[("l", &["localhost:5000"])], &[]),
        ];
        for (case, images, candidates, expected) in cases {
            let ns = namespace(candidates.iter().map(|(n, k)| candidate(n, k)).collect());
            let (names, _) = final_list(&pod_json(images, None), &ns, &Policy::default());
            assert_eq!(names, *expected, "{case}");
        }
    }

    #[test]
    fn a_listed_secret_matching_directly_suppresses_the_hub_fallback() {
        // R32 over the Pod's whole keyring: "mine" (listed) matches docker.io directly, so the kubelet would never
        // use the index.docker.io candidate: injecting it would add nothing.
        let ns = namespace(vec![candidate("mine", &["docker.io"]), candidate("hub", &["https://index.docker.io/v1/"])]);
        let (names, decision) = final_list(&pod_json(&["nginx"], Some(&["mine"])), &ns, &Policy::default());
        assert_eq!(names, ["mine"]);
        assert!(decision.add.is_empty());
        assert_eq!(decision.images[0].credentials, ["mine"]);
    }

    #[test]
    fn patch_shapes_follow_the_contract() {
        let ns = namespace(vec![candidate("a", &["r.example.com"]), candidate("b", &["r.example.com/x"])]);
        let pod = PodView::from_value(&pod_json(&["r.example.com/x/app"], None)).unwrap();
        let d = decide(&pod, &ns, &Policy::default());
        let p = serde_json::to_value(patch(&pod, &d.add, POD_SPEC).unwrap()).unwrap();
        assert_eq!(
            p,
            json!([{"op": "add", "path": "/spec/imagePullSecrets", "value": [{"name": "b"}, {"name": "a"}]}])
        );

        let pod = PodView::from_value(&pod_json(&["r.example.com/x/app"], Some(&["a"]))).unwrap();
        let d = decide(&pod, &ns, &Policy::default());
        let p = serde_json::to_value(patch(&pod, &d.add, POD_SPEC).unwrap()).unwrap();
        assert_eq!(p, json!([{"op": "add", "path": "/spec/imagePullSecrets/-", "value": {"name": "b"}}]));

        let pod = PodView::from_value(&pod_json(&["other.example.com/app"], None)).unwrap();
        assert!(
            patch(&pod, &decide(&pod, &ns, &Policy::default()).add, POD_SPEC).is_none(),
            "nothing to add: no patch"
        );
    }

    #[test]
    fn existing_entries_are_kept_as_they_are_and_reinvocation_is_a_no_op() {
        let ns = namespace(vec![candidate("a", &["r.example.com"]), candidate("b", &["s.example.com"])]);
        let pod = json!({"kind": "Pod", "metadata": {}, "spec": {
            "containers": [{"name": "x", "image": "r.example.com/x"}, {"name": "y", "image": "s.example.com/y"}],
            "imagePullSecrets": [{"name": "zz-missing"}, {"name": "a"}, {"name": "a"}, {}]
        }});
        let (names, decision) = final_list(&pod, &ns, &Policy::default());
        assert_eq!(names, ["zz-missing", "a", "a", "", "b"], "order kept, duplicates untouched, only b added");
        assert_eq!(decision.add, ["b"]);
        // Reinvocation (reinvocationPolicy: IfNeeded) sees the patched Pod: nothing more to add.
        let view = PodView::from_value(&pod).unwrap();
        let mut patched = pod.clone();
        json_patch::patch(&mut patched, &patch(&view, &decision.add, POD_SPEC).unwrap()).unwrap();
        let again = decide(&PodView::from_value(&patched).unwrap(), &ns, &Policy::default());
        assert!(again.add.is_empty());
    }

    #[test]
    fn every_container_list_counts() {
        let ns = namespace(vec![candidate("i", &["init.example.com"]), candidate("e", &["debug.example.com"])]);
        let pod = json!({"kind": "Pod", "spec": {
            "initContainers": [{"name": "i", "image": "init.example.com/i"}],
            "containers": [{"name": "c", "image": "nginx"}],
            "ephemeralContainers": [{"name": "e", "image": "debug.example.com/e"}]
        }});
        let (names, _) = final_list(&pod, &ns, &Policy::default());
        assert_eq!(names, ["i", "e"]);
    }

    #[test]
    fn undecodable_secrets_are_never_injected_and_named_only_to_pods_that_list_them() {
        let ns = namespace(vec![undecodable("broken"), candidate("ok", &["r.io"])]);
        let (names, d) = final_list(&pod_json(&["r.io/app"], None), &ns, &Policy::default());
        assert_eq!(names, ["ok"]);
        assert!(d.warnings.is_empty(), "its keys are unknown: no image of this Pod would match it: {:?}", d.warnings);
        let (_, d) = final_list(&pod_json(&["r.io/app"], Some(&["broken"])), &ns, &Policy::default());
        assert!(d.warnings.iter().any(|w| w.contains("every image pull of this Pod will fail")), "{:?}", d.warnings);
    }

    #[test]
    fn warnings_name_invalid_references_but_not_public_images() {
        let ns = namespace(vec![]);
        let (_, d) =
            final_list(&pod_json(&["quay.io/org/app:1", "nginx", "Docker/Docker"], None), &ns, &Policy::default());
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        assert!(d.warnings[0].contains("InvalidImageName"));
        assert!(!d.warnings.iter().any(|w| w.contains("quay.io")), "no key names quay.io: nothing to act on");
    }

    #[test]
    fn warnings_are_single_bounded_lines() {
        let hostile = format!("reg.example.com/{}\n\u{1b}[31m", "a".repeat(10_000));
        let many: Vec<String> = (0..50).map(|i| format!("r{i}.example.com/app")).collect();
        let mut images: Vec<&str> = many.iter().map(String::as_str).collect();
        images.push(&hostile);
        let policy = Policy { warn_unmatched: vec!["*.example.com".parse().unwrap()], ..Policy::default() };
        let (_, d) = final_list(&pod_json(&images, None), &namespace(vec![]), &policy);
        assert_eq!(d.warnings.len(), MAX_WARNINGS + 1);
        for w in &d.warnings {
            assert!(w.chars().count() <= MAX_WARNING_CHARS, "{w}");
            assert!(!w.chars().any(char::is_control), "{w:?}");
        }
        assert!(d.warnings.last().unwrap().contains("31 more"));
    }

    /// Issue 11, classes 1 and 9: a warning about an undecodable Secret quotes its key (redacted, whatever the
    /// spelling of the userinfo) and never carries a control or bidi character from the key or the Secret's name.
    #[test]
    fn warnings_never_carry_userinfo_or_terminal_controls_from_a_secret() {
        const CANARY: &str = "Canary-9f1c";
        let spellings = [
            format!("HTTPS://user:{CANARY}@r.io"),
            format!("Http://user:{CANARY}@r.io"),
            format!("oci://user:{CANARY}@r.io"),
            format!("//user:{CANARY}@r.io"),
            format!("user:{CANARY}@r.io"),
            format!("https://user:{CANARY}%40r.io"),
            format!("user:{CANARY}@HTTPS://r.io\n\u{1b}[2J\u{202e}"),
        ];
        for key in &spellings {
            let payload = json!({"auths": {key: {"auth": "not base64!"}}}).to_string();
            let reason = crate::kubelet::docker_config::decode_keys(SecretKind::DockerConfigJson, payload.as_bytes())
                .map(|_| ())
                .unwrap_err()
                .to_string();
            let secret = Arc::new(CandidateSecret {
                name: "bro\u{202e}ken\n".into(),
                kind: SecretKind::DockerConfigJson,
                keys: Err(reason),
                origin: Origin::Namespace,
                service_account: None,
                over_limit: None,
                expires_at: None,
            });
            let ns = namespace(vec![secret]);
            for listed in [None, Some(&["bro\u{202e}ken\n"][..])] {
                let (_, d) = final_list(&pod_json(&["r.io/app"], listed), &ns, &Policy::default());
                assert_eq!(d.warnings.is_empty(), listed.is_none(), "{key:?}: named only to a Pod that lists it");
                for w in &d.warnings {
                    assert!(!w.contains(CANARY), "{key:?}: {w}");
                    assert!(crate::safe_text::is_safe(w), "{key:?}: {w:?}");
                }
            }
        }
    }

    fn policy(patterns: &[&str], audit_only: bool) -> Policy {
        Policy {
            deny_unmatched: patterns.iter().map(|p| p.parse().unwrap()).collect(),
            audit_only,
            ..Policy::default()
        }
    }

    #[test]
    fn deny_unmatched_denies_only_what_stays_without_credential() {
        let p = policy(&["*.corp.example.com"], false);
        let (_, d) = final_list(&pod_json(&["registry.corp.example.com/app"], None), &namespace(vec![]), &p);
        let message = d.denied.expect("denied");
        assert!(message.contains("container \"c0\"") && message.contains("registry.corp.example.com/app"), "{message}");

        let ns = namespace(vec![candidate("corp", &["*.corp.example.com"])]);
        let (names, d) = final_list(&pod_json(&["registry.corp.example.com/app"], None), &ns, &p);
        assert_eq!((names, d.denied), (vec!["corp".to_string()], None));

        let (_, d) = final_list(&pod_json(&["a.b.corp.example.com/app", "quay.io/x"], None), &namespace(vec![]), &p);
        assert_eq!(d.denied, None, "outside the pattern (two labels, other registry)");
    }

    #[test]
    fn opt_out_labels() {
        let ns = namespace(vec![candidate("corp", &["*.corp.example.com"])]);
        let p = policy(&["*.corp.example.com"], false);
        let mut pod = pod_json(&["registry.corp.example.com/app"], None);
        pod["metadata"]["labels"] = json!({ pod::INJECT_LABEL: pod::INJECT_DISABLED });
        let (names, d) = final_list(&pod, &ns, &p);
        assert!(names.is_empty() && d.opt_out == Some(OptOut::Pod));
        assert!(d.denied.is_some(), "a Pod's own label does not exempt it from policy");

        let mut opted_ns = namespace(vec![candidate("corp", &["*.corp.example.com"])]);
        Arc::make_mut(&mut opted_ns.labels).insert(pod::INJECT_LABEL.into(), pod::INJECT_DISABLED.into());
        let (names, d) = final_list(&pod_json(&["registry.corp.example.com/app"], None), &opted_ns, &p);
        assert!(names.is_empty() && d.denied.is_none() && d.opt_out == Some(OptOut::Namespace));
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn audit_mode_warns_instead_of_denying() {
        let p = policy(&["registry.example.com:5000/team"], true);
        let (_, d) = final_list(&pod_json(&["registry.example.com:5000/team/app"], None), &namespace(vec![]), &p);
        assert_eq!(d.denied, None);
        assert!(d.warnings.iter().any(|w| w.starts_with("policy (audit)")), "{:?}", d.warnings);
    }

    #[test]
    fn registry_patterns_reject_keys_the_kubelet_drops() {
        assert!("registry.example.com:*".parse::<RegistryPattern>().is_err());
        assert!("".parse::<RegistryPattern>().is_err());
        let hub: RegistryPattern = "https://index.docker.io/v1/".parse().unwrap();
        assert!(hub.matches("docker.io/library/nginx"), "written like a docker config key, matched like one");
    }
}

#[cfg(test)]
mod fidelity_tests;
