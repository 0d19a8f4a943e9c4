//! The kubelet's pull-Secret keyring (`BasicDockerKeyring` in `pkg/credentialprovider/keyring.go`):
//! how config keys are normalized (spec R13-R19), how one key is matched against an image's lookup
//! string (R24-R27), the try order (R28, R34) and the Docker Hub fallback (R29-R32).
//!
//! Everything here reproduces the kubelet built with Go 1.26 (Kubernetes 1.36), odd corners
//! included; the Go parsing it relies on lives in [`crate::kubelet::go_url`] and [`crate::kubelet::go_glob`].
//! [`lint_key`] separately points out keys that almost certainly do not do what their author meant.

use std::sync::{Arc, LazyLock, Mutex};

use smallvec::{SmallVec, smallvec};

use crate::interner::Interner;
use crate::kubelet::go_glob;
use crate::kubelet::go_url::{self, GoUrl, UrlError};

/// The normalized key whose items the Docker Hub fallback returns (R29: exactly this string).
pub const DOCKER_HUB_FALLBACK_KEY: &str = "index.docker.io";

/// R13-R16: the normalized key `BasicDockerKeyring.Add` stores, or None when the entry is dropped (R14).
pub fn normalize_key(key_as_written: &str) -> Option<String> {
    try_normalize_key(key_as_written).ok()
}

/// [`normalize_key`] with the reason a key is dropped.
pub fn try_normalize_key(key_as_written: &str) -> Result<String, UrlError> {
    let url = parse_as_written(key_as_written)?;
    Ok(key_from_url(url))
}

/// R13-R14: `https://` is prepended unless the key starts with the exact, case-sensitive bytes
/// `https://` or `http://`.
fn parse_as_written(key: &str) -> Result<GoUrl, UrlError> {
    if key.starts_with("https://") || key.starts_with("http://") {
        go_url::parse(key)
    } else {
        go_url::parse(&format!("https://{key}"))
    }
}

/// R15-R16: strip one leading `/v1` or `/v2` of a `/v1/` or `/v2/` path prefix, drop a path of
/// `""` or `"/"`, and keep the host (with port) verbatim.
fn key_from_url(url: GoUrl) -> String {
    let path = effective_path(&url.path);
    let mut key = url.host;
    if !path.is_empty() && path != "/" {
        key.push_str(path);
    }
    key
}

fn effective_path(path: &str) -> &str {
    if path.starts_with("/v1/") || path.starts_with("/v2/") { &path[3..] } else { path }
}

/// R24-R27: `URLsMatchStr(key, target)`, where `key` is a NORMALIZED key and `target` a lookup
/// string (`ImageRef::name()`). This is the direct match only; the fallback is [`Keyring::lookup`]'s.
pub fn urls_match_str(key: &str, target: &str) -> bool {
    UrlPattern::parse(key).matches(&LookupTarget::new(target))
}

/// The first argument of `URLsMatchStr` parsed once, taken as given (no normalization): a credential provider's
/// `matchImages` entry, which the kubelet matches against every image it pulls. [`urls_match_str`] is this.
#[derive(Debug, Clone)]
pub struct UrlPattern(Result<SplitUrl, UrlError>);

impl UrlPattern {
    pub fn parse(pattern: &str) -> Self {
        Self(SplitUrl::parse(pattern))
    }

    /// `URLsMatchStr(pattern, target)` (R24-R27): a pattern or target that does not parse matches nothing.
    pub fn matches(&self, target: &LookupTarget) -> bool {
        match (&self.0, &target.parsed) {
            (Ok(pattern), Ok(target)) => pattern.check(target) == Reason::Matched,
            _ => false,
        }
    }
}

/// R29 `isDefaultRegistryMatch`: whether the Docker Hub fallback may apply to `target`. Also true
/// for `localhost/...` and upper-case first segments (`Foo/bar`), which are not Docker Hub (M31, M38).
pub fn is_default_registry_match(target: &str) -> bool {
    let (first, rest) = match target.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (target, None),
    };
    if first.is_empty() {
        return false;
    }
    if rest.is_none() || first == "docker.io" || first == "index.docker.io" {
        return true;
    }
    !first.contains('.') && !first.contains(':')
}

/// A host and path as `URLsMatch` sees them: `url.Parse("https://" + s)`, then `SplitURL`
/// (R25: `net.SplitHostPort`, or the whole host verbatim with an empty port when that fails).
#[derive(Debug, Clone)]
struct SplitUrl {
    /// Host without the port; brackets removed only when a port was split off.
    host: String,
    port: String,
    /// `strings.Split(host, ".")` length; an empty host is one (empty) label.
    labels: usize,
    path: String,
}

impl SplitUrl {
    fn parse(schemeless: &str) -> Result<Self, UrlError> {
        if let Some(plain) = Self::parse_plain(schemeless) {
            return Ok(plain);
        }
        let url = go_url::parse(&format!("https://{schemeless}"))?;
        let (host, port) = match go_url::split_host_port(&url.host) {
            Ok((host, port)) => (host.to_owned(), port.to_owned()),
            Err(_) => (url.host, String::new()),
        };
        let labels = host.bytes().filter(|&b| b == b'.').count() + 1;
        Ok(Self { host, port, labels, path: url.path })
    }

    /// The common case without the general parser: a host of letters, digits, `.` and `-`, an optional `:` and
    /// digits, then a path without `%`, `?`, `#` or control characters (every image name the kubelet accepts, and
    /// most keys). For these Go's parse changes nothing: no userinfo, no escapes, no query or fragment, a valid
    /// optional port, no brackets for `SplitHostPort`. Anything else returns `None` and takes the general path.
    fn parse_plain(schemeless: &str) -> Option<Self> {
        let (authority, path) = schemeless.find('/').map_or((schemeless, ""), |i| schemeless.split_at(i));
        let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
        let plain_host = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        let plain_port = port.bytes().all(|b| b.is_ascii_digit());
        let plain_path = path.bytes().all(|b| (b' '..0x7f).contains(&b) && !matches!(b, b'%' | b'?' | b'#'));
        (plain_host && plain_port && plain_path).then(|| Self {
            host: host.to_owned(),
            port: port.to_owned(),
            labels: host.bytes().filter(|&b| b == b'.').count() + 1,
            path: path.to_owned(),
        })
    }

    /// `URLsMatch(self, target)`, in the kubelet's order: port, label count, path prefix, globs.
    /// Allocation-free.
    fn check(&self, target: &Self) -> Reason {
        if self.port != target.port {
            return Reason::PortDiffers;
        }
        if self.labels != target.labels {
            return Reason::LabelCountDiffers;
        }
        if !target.path.starts_with(&self.path) {
            return Reason::PathNotPrefix;
        }
        for (label, (pattern, name)) in self.host.split('.').zip(target.host.split('.')).enumerate() {
            match go_glob::matches(pattern, name) {
                Ok(true) => {}
                Ok(false) => return Reason::LabelMismatch { label },
                Err(_) => return Reason::BadPattern { label },
            }
        }
        Reason::Matched
    }
}

/// The outcome of matching one normalized key directly against a lookup string (R24-R27).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Every condition of R26 holds.
    Matched,
    /// The stored key cannot be parsed again at lookup (e.g. `%25` decoded to a bare `%`).
    KeyUnparsable,
    /// The lookup string is not a valid URL host and path.
    TargetUnparsable,
    /// R26a: port strings differ (no default ports, compared verbatim).
    PortDiffers,
    /// R26b: the hosts have different numbers of `.`-separated labels.
    LabelCountDiffers,
    /// R26c: the key's path is not a string prefix of the image's path.
    PathNotPrefix,
    /// R26d: host label `label` (0-based) does not match the key's glob (case-sensitive).
    LabelMismatch { label: usize },
    /// R26d: host label `label` of the key is a malformed glob pattern.
    BadPattern { label: usize },
}

impl Reason {
    /// A short human description.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Matched => "matches",
            Self::KeyUnparsable => "the stored key cannot be parsed again at lookup",
            Self::TargetUnparsable => "the image name cannot be parsed as a URL",
            Self::PortDiffers => "port differs",
            Self::LabelCountDiffers => "number of host labels differs",
            Self::PathNotPrefix => "key path is not a prefix of the image path",
            Self::LabelMismatch { .. } => "a host label does not match the key's glob",
            Self::BadPattern { .. } => "a host label of the key is a malformed glob",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LabelMismatch { label } | Self::BadPattern { label } => {
                write!(f, "{} (label {})", self.describe(), label + 1)
            }
            _ => f.write_str(self.describe()),
        }
    }
}

/// What the Docker Hub fallback (R29, R32) did for the `index.docker.io` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// No key matched directly and the image counts as Docker Hub: its items are returned.
    Used,
    /// Another key of this keyring matched directly, which turns the fallback off (R32).
    SuppressedByDirectMatch,
    /// `isDefaultRegistryMatch` is false for the image (it names a registry host).
    NotDefaultRegistry,
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Used => "matched by the Docker Hub fallback: no key matches the image directly",
            Self::SuppressedByDirectMatch => "Docker Hub fallback not used: another key matched directly",
            Self::NotDefaultRegistry => "Docker Hub fallback not applicable: the image names a registry host",
        })
    }
}

/// One normalized key of a keyring, judged against one lookup string (for `explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVerdict {
    /// Its slot, whose items ([`Keyring::items`]) are in add order (R18).
    pub slot: u32,
    /// The normalized key (R16).
    pub key: String,
    /// Whether the slot's items are part of [`Keyring::lookup`]'s result (directly or by the fallback).
    pub matched: bool,
    /// The direct-match outcome (R24-R27).
    pub reason: Reason,
    /// Set only for the `index.docker.io` key when it did not match directly.
    pub fallback: Option<Fallback>,
}

impl KeyVerdict {
    /// One line for `explain`: the direct-match reason, plus what the Docker Hub fallback did when
    /// it concerns this key (a fallback match has a direct reason such as a label-count mismatch).
    pub fn describe(&self) -> String {
        match self.fallback {
            Some(Fallback::Used) => Fallback::Used.to_string(),
            Some(fallback) => format!("{}; {fallback}", self.reason),
            None => self.reason.to_string(),
        }
    }
}

#[derive(Clone)]
struct Slot<T> {
    /// The key and its pattern (`slot.key`, `slot.pattern` through `Deref`), shared by every keyring that holds
    /// the key ([`ParsedKey::interned`]).
    parsed: Arc<ParsedKey>,
    /// Usually one (a key is in one Secret of the namespace): kept inline, without an allocation per slot.
    items: SmallVec<[T; 1]>,
}

impl<T> std::ops::Deref for Slot<T> {
    type Target = ParsedKey;
    fn deref(&self) -> &ParsedKey {
        &self.parsed
    }
}

/// A normalized key and its parse, which depends on the key alone.
struct ParsedKey {
    key: String,
    /// Parsed once at add time so that lookup never re-parses keys.
    pattern: Result<SplitUrl, UrlError>,
}

/// The keys of the keyrings alive, each parsed once: a cluster's namespaces mostly hold the same few registry keys
/// (Docker Hub, GHCR, a company registry...), and each namespace's snapshot has its own keyring. Sharing them keeps
/// about 200 bytes per Secret out of every snapshot (BENCHMARKS.md, scale) and skips their parse.
static INTERNED: LazyLock<Mutex<Interner<String, ParsedKey>>> = LazyLock::new(Mutex::default);

impl ParsedKey {
    fn interned(key: String) -> Arc<Self> {
        let mut interned = INTERNED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        interned.get_or_make(key, |key| Self { key: key.clone(), pattern: SplitUrl::parse(key) })
    }
}

/// A normalized key keeps the userinfo of a key with an unrecognized scheme (`HTTPS://user:pass@host`): `Debug`
/// shows it redacted ([`crate::safe_text::key`]), and not the parsed pattern (which holds it too).
impl<T: std::fmt::Debug> std::fmt::Debug for Slot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("key", &crate::safe_text::key(&self.key))
            .field("parses", &self.pattern.is_ok())
            .field("items", &self.items)
            .finish()
    }
}

/// One pull-Secret keyring (R18-R19, R28-R32): items of type `T` (e.g. a Secret index) added in Pod
/// `imagePullSecrets` order, and the one lookup path of the project (admission, `mutate`, `explain` and the
/// differential tests against the kubelet all go through [`Keyring::direct_matches`]).
///
/// Slots are kept unique and in descending byte order of the normalized key (the order `Add` re-sorts to after
/// every call), so lookups never sort. They are indexed so that a lookup checks only the keys that can match
/// instead of every key (a namespace may hold thousands; admission looks up every image of every Pod): a key whose
/// host has no glob metacharacter matches only a target with exactly that host and port (R26a, R26b and R26d: same
/// label count, each label equal), so those slots are found by binary search on the target's host and port, and
/// among them only the keys whose path is a prefix of the target's (R26c) are candidates, found by a few binary
/// searches on the path ([`Keyring::path_prefixes`]); the keys with a glob are grouped by the target's port and
/// label count (R26a, R26b), and within a group by their literal labels after the last label with a glob, which
/// must equal the target's labels there (R26d: a label without a metacharacter matches only itself). Every
/// candidate then goes through [`SplitUrl::check`]: only keys that cannot match are skipped
/// (`tests::the_index_skips_only_keys_that_cannot_match`, `tests::index_agrees_with_a_scan_of_every_slot`).
#[derive(Debug, Clone)]
pub struct Keyring<T> {
    slots: Vec<Slot<T>>,
    /// Slots of the keys without a glob in their host, sorted by host, port, path, then slot (try order).
    by_host: Vec<u32>,
    /// The keys with a glob in their host, grouped by port and label count, sorted by (port, labels): a target is
    /// checked against one group at most, found by binary search.
    globbed: Vec<GlobGroup>,
    /// The slot of `index.docker.io`, if any (R29).
    fallback: Option<u32>,
}

#[derive(Debug, Clone)]
struct GlobGroup {
    port: String,
    labels: usize,
    /// Sorted by (`globs`, literal suffix, slot).
    entries: Vec<GlobEntry>,
}

/// Groups of the index up to this size are checked key by key: a search costs more than it saves on so few.
const SCAN_AT_MOST: usize = 8;

/// A key with a glob in its host, split where its literal labels start.
#[derive(Debug, Clone, Copy)]
struct GlobEntry {
    /// How many leading labels of the host run up to the last label with a glob metacharacter (at least one).
    globs: u32,
    /// Byte offset in the host of the labels after those (the host's length when the last label has a glob).
    literal_from: u32,
    slot: u32,
}

/// Whether a host (or label) has a glob metacharacter of `path.Match`: without one, a label matches only itself.
fn has_glob(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
}

/// The byte offset in `host` after its first `n` labels (and the `.` that ends them), or `host.len()` when it has `n`
/// labels or fewer.
fn after_labels(host: &str, n: usize) -> usize {
    match n.checked_sub(1) {
        None => 0,
        Some(dots) => host.bytes().enumerate().filter(|&(_, b)| b == b'.').nth(dots).map_or(host.len(), |(i, _)| i + 1),
    }
}

impl<T> Default for Keyring<T> {
    fn default() -> Self {
        Self { slots: Vec::new(), by_host: Vec::new(), globbed: Vec::new(), fallback: None }
    }
}

impl<T: Clone> Keyring<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one config entry as the kubelet's `Add` does; returns false when the key is dropped (R14). Entries that
    /// normalize to the same key share a slot, in add order (R18). Re-indexes the keyring (O(n log n)): bulk
    /// builds use [`Keyring::from_entries`].
    pub fn add(&mut self, key_as_written: &str, item: T) -> bool {
        let Ok(key) = try_normalize_key(key_as_written) else {
            return false;
        };
        // Descending order: a slot comes before `key` when its key is greater.
        match self.slots.binary_search_by(|slot| key.as_str().cmp(&slot.key)) {
            Ok(i) => self.slots[i].items.push(item),
            Err(i) => {
                // The kubelet re-parses the normalized string at lookup, which can differ from
                // the parse at add time (`https://https://h` is stored as `https://h`, host `https:`).
                self.slots.insert(i, Slot { parsed: ParsedKey::interned(key), items: smallvec![item] });
                self.index();
            }
        }
        true
    }

    /// The keyring [`Keyring::add`] builds from `entries` added in order, in O(n log n) instead of O(n²): every
    /// key is normalized once, the entries are sorted once (stably, so entries of one normalized key keep their
    /// add order, R18), and each distinct key is parsed once. Dropped keys (R14) are skipped, as `add` does.
    pub fn from_entries<'k>(entries: impl IntoIterator<Item = (&'k str, T)>) -> Self {
        let mut normalized: Vec<(String, T)> =
            entries.into_iter().filter_map(|(key, item)| try_normalize_key(key).ok().map(|key| (key, item))).collect();
        // Descending byte order of the key, the order `add` keeps; stable, so add order within a key.
        normalized.sort_by(|a, b| b.0.cmp(&a.0));
        let mut slots: Vec<Slot<T>> = Vec::new();
        for (key, item) in normalized {
            match slots.last_mut() {
                Some(slot) if slot.key == key => slot.items.push(item),
                _ => slots.push(Slot { parsed: ParsedKey::interned(key), items: smallvec![item] }),
            }
        }
        slots.shrink_to_fit();
        let mut keyring = Self { slots, ..Self::default() };
        keyring.index();
        keyring
    }

    /// Rebuilds the lookup index from the slots.
    fn index(&mut self) {
        let mut by_host = Vec::new();
        // (port, labels, globs, literal suffix, slot) of every globbed key, grouped below: O(n log n) however many
        // groups there are.
        let mut shapes: Vec<(&str, usize, u32, &str, u32)> = Vec::new();
        let mut fallback = None;
        for (i, slot) in self.slots.iter().enumerate() {
            let i = u32::try_from(i).expect("fewer than 2^32 keys");
            if slot.key == DOCKER_HUB_FALLBACK_KEY {
                fallback = Some(i);
            }
            // A key that cannot be parsed again never matches directly (it may still be the fallback).
            let Ok(pattern) = &slot.pattern else { continue };
            if has_glob(&pattern.host) {
                let globs = pattern
                    .host
                    .split('.')
                    .enumerate()
                    .filter(|(_, l)| has_glob(l))
                    .last()
                    .map_or(0, |(label, _)| label + 1);
                let globs = u32::try_from(globs).expect("fewer than 2^32 labels");
                let literal = &pattern.host[after_labels(&pattern.host, globs as usize)..];
                shapes.push((pattern.port.as_str(), pattern.labels, globs, literal, i));
            } else {
                by_host.push(i);
            }
        }
        // Sorted by shape, then literal labels, then slot.
        shapes.sort_unstable();
        let mut globbed: Vec<GlobGroup> = Vec::new();
        for (port, labels, globs, literal, slot) in shapes {
            let host = self.slots[slot as usize].pattern.as_ref().map_or(0, |p| p.host.len());
            let literal_from = u32::try_from(host - literal.len()).expect("hosts shorter than 4 GiB");
            let entry = GlobEntry { globs, literal_from, slot };
            match globbed.last_mut() {
                Some(group) if group.port == port && group.labels == labels => group.entries.push(entry),
                _ => globbed.push(GlobGroup { port: port.to_string(), labels, entries: vec![entry] }),
            }
        }
        let slots = &self.slots;
        let parts = |i: &u32| {
            slots[*i as usize]
                .pattern
                .as_ref()
                .map_or(("", "", ""), |p| (p.host.as_str(), p.port.as_str(), p.path.as_str()))
        };
        by_host.sort_by(|a, b| parts(a).cmp(&parts(b)).then(a.cmp(b)));
        // A namespace's keyring lives as long as its snapshot: exactly sized.
        by_host.shrink_to_fit();
        globbed.shrink_to_fit();
        self.by_host = by_host;
        self.globbed = globbed;
        self.fallback = fallback;
    }

    /// Number of distinct normalized keys.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The normalized keys in try order (descending bytes).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|slot| slot.key.as_str())
    }

    /// The normalized key of a slot.
    pub fn key(&self, slot: u32) -> &str {
        &self.slots[slot as usize].key
    }

    /// The items of a slot, in add order (R18).
    pub fn items(&self, slot: u32) -> &[T] {
        &self.slots[slot as usize].items
    }

    /// The parsed key of a slot in the index (whose patterns all parsed).
    fn indexed(&self, slot: u32) -> Option<&SplitUrl> {
        self.slots[slot as usize].pattern.as_ref().ok()
    }

    /// The host of a slot in `by_host`.
    fn indexed_host(&self, slot: u32) -> &str {
        self.indexed(slot).map_or("", |p| p.host.as_str())
    }

    /// The slots of `by_host` whose host is `host`: usually none or one, so the end is looked for one by one first.
    fn same_host(&self, host: &str) -> &[u32] {
        let first = self.by_host.partition_point(|&i| self.indexed_host(i) < host);
        let rest = &self.by_host[first..];
        let same = |i: &u32| self.indexed_host(*i) == host;
        let mut count = rest.iter().take(SCAN_AT_MOST).take_while(|i| same(i)).count();
        if count == SCAN_AT_MOST {
            count += rest[count..].partition_point(same);
        }
        &rest[..count]
    }

    /// The literal labels of a globbed key (after its last label with a glob).
    fn literal_labels(&self, entry: &GlobEntry) -> &str {
        self.indexed(entry.slot).map_or("", |p| &p.host[entry.literal_from as usize..])
    }

    /// Calls `candidate` for every slot of `group` (slots of one host and port, sorted by path) whose path is a
    /// prefix of `path` (R26c), and for no other. Every such path is at most the largest key path `k` that is not
    /// greater than `path`; when `k` is not a prefix of `path`, the key paths that are share with `path` no more
    /// than `k` does, so they are the prefixes of that common part: each step keeps only a shorter prefix of `path`
    /// (one binary search per key that matches or per place where `path` and the keys part ways).
    fn path_prefixes(&self, group: &[u32], path: &str, mut candidate: impl FnMut(u32)) {
        let path_of = |i: &u32| self.indexed(*i).map_or(&b""[..], |p| p.path.as_bytes());
        let mut rest = path.as_bytes();
        let mut end = group.len();
        loop {
            let below = group[..end].partition_point(|i| path_of(i) <= rest);
            let Some(last) = below.checked_sub(1) else { break };
            let key = path_of(&group[last]);
            let common = key.iter().zip(rest).take_while(|(a, b)| a == b).count();
            if common == key.len() {
                // `key` is a prefix: every slot with that path is a candidate; the others are shorter.
                let first = group[..below].partition_point(|i| path_of(i) < key);
                group[first..below].iter().for_each(|&i| candidate(i));
                let Some(shorter) = key.len().checked_sub(1) else { break };
                rest = &rest[..shorter];
                end = first;
            } else {
                rest = &rest[..common];
                end = last;
            }
        }
    }

    /// Appends to `out` the slots that match `target` directly (R24-R27), in the kubelet's try order.
    pub fn direct_matches(&self, target: &LookupTarget, out: &mut Vec<u32>) {
        // A target that fails to parse matches no key, but the fallback still applies (as in Go, where each
        // URLsMatchStr call just errors).
        let Ok(target_url) = &target.parsed else { return };
        let start = out.len();
        let mut check = |i: u32| {
            if self.indexed(i).is_some_and(|pattern| pattern.check(target_url) == Reason::Matched) {
                out.push(i);
            }
        };
        let same_host = self.same_host(&target_url.host);
        if same_host.len() <= SCAN_AT_MOST {
            same_host.iter().for_each(|&i| check(i));
        } else {
            let port = target_url.port.as_str();
            let port_of = |i: &u32| self.indexed(*i).map_or("", |p| p.port.as_str());
            let first = same_host.partition_point(|i| port_of(i) < port);
            let count = same_host[first..].partition_point(|i| port_of(i) == port);
            self.path_prefixes(&same_host[first..first + count], &target_url.path, &mut check);
        }
        let group = self
            .globbed
            .binary_search_by(|g| (g.port.as_str(), g.labels).cmp(&(target_url.port.as_str(), target_url.labels)))
            .map_or(&[][..], |i| self.globbed[i].entries.as_slice());
        if group.len() <= SCAN_AT_MOST {
            group.iter().for_each(|e| check(e.slot));
        } else {
            let mut rest = group;
            while let Some(head) = rest.first() {
                let globs = head.globs;
                let (same, tail) = rest.split_at(rest.partition_point(|e| e.globs == globs));
                rest = tail;
                let literal = &target_url.host[after_labels(&target_url.host, globs as usize)..];
                let first = same.partition_point(|e| self.literal_labels(e) < literal);
                let count = same[first..].partition_point(|e| self.literal_labels(e) == literal);
                same[first..first + count].iter().for_each(|e| check(e.slot));
            }
        }
        out[start..].sort_unstable();
    }

    /// The `index.docker.io` slot when the Docker Hub fallback may apply to `target` (R29); the caller uses it
    /// only when no item matched directly (R32).
    pub fn fallback_slot(&self, target: &LookupTarget) -> Option<u32> {
        self.fallback.filter(|_| target.default_registry)
    }

    /// R28-R32, R34: the items in the kubelet's try order (descending byte order of the normalized key, then add
    /// order), or the `index.docker.io` items when nothing matched directly and the target counts as Docker Hub.
    pub fn lookup(&self, target: &LookupTarget) -> Vec<T> {
        let mut slots = Vec::new();
        self.direct_matches(target, &mut slots);
        let mut out: Vec<T> = slots.iter().flat_map(|&i| self.items(i).iter().cloned()).collect();
        if out.is_empty()
            && let Some(i) = self.fallback_slot(target)
        {
            out.extend(self.items(i).iter().cloned());
        }
        out
    }

    /// [`Keyring::lookup`] of a lookup string parsed here.
    pub fn lookup_str(&self, target: &str) -> Vec<T> {
        self.lookup(&LookupTarget::new(target))
    }

    /// One verdict per slot `present` keeps, in try order, for `explain`: the matches are exactly the lookup's
    /// ([`Keyring::direct_matches`] and the fallback rule, over the present slots only: a Pod's keyring holds a
    /// subset of its namespace's keys, R32), each with the reason of the direct comparison.
    pub fn explain(&self, target: &str, present: impl Fn(u32) -> bool) -> Vec<KeyVerdict> {
        let lookup = LookupTarget::new(target);
        let mut direct = Vec::new();
        self.direct_matches(&lookup, &mut direct);
        direct.retain(|&i| present(i));
        let fallback = self.fallback_slot(&lookup).filter(|&i| direct.is_empty() && present(i));
        let mut verdicts = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            let i = i as u32;
            if !present(i) {
                continue;
            }
            let reason = match (&slot.pattern, &lookup.parsed) {
                (Err(_), _) => Reason::KeyUnparsable,
                (Ok(_), Err(_)) => Reason::TargetUnparsable,
                (Ok(pattern), Ok(target_url)) => pattern.check(target_url),
            };
            let direct_match = direct.binary_search(&i).is_ok();
            let fallback_note = (Some(i) == self.fallback && !direct_match).then(|| {
                if !direct.is_empty() {
                    Fallback::SuppressedByDirectMatch
                } else if fallback == Some(i) {
                    Fallback::Used
                } else {
                    Fallback::NotDefaultRegistry
                }
            });
            verdicts.push(KeyVerdict {
                slot: i,
                key: slot.key.clone(),
                matched: direct_match || fallback == Some(i),
                reason,
                fallback: fallback_note,
            });
        }
        verdicts
    }
}

/// Why a key that names an image's registry host still does not match the image (R26): what a person can fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NearMiss {
    /// R26a: the same host with another port (ports are compared as written; none is not `443`).
    Port { key_port: String, image_port: String },
    /// R26c: the same host and port, but the key's path is not a prefix of the image's path.
    Path { key_path: String },
    /// R26b: a wildcard key whose labels match the end of the image's host, with another number of labels (each
    /// `*` stands for exactly one label).
    GlobWidth { key_labels: usize, image_labels: usize },
}

impl std::fmt::Display for NearMiss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let port = |p: &str| if p.is_empty() { "no port".to_string() } else { format!("port {p}") };
        match self {
            Self::Port { key_port, image_port } => {
                write!(f, "the key has {}, the image {}", port(key_port), port(image_port))
            }
            Self::Path { key_path } => write!(f, "the key covers only paths starting with {key_path}"),
            Self::GlobWidth { key_labels, image_labels } => write!(
                f,
                "the key matches hosts of exactly {key_labels} labels, the image's has {image_labels} (a * is one label)"
            ),
        }
    }
}

impl<T: Clone> Keyring<T> {
    /// The first key in try order, among the slots `present` keeps, that names `target`'s registry host without
    /// matching it, and why ([`NearMiss`]): a key without a wildcard with exactly the image's host, or a wildcard
    /// key whose host labels, aligned from the right, match the image's and whose last label has no wildcard.
    /// For warnings only: it never changes a lookup. Cost: one binary search and the wildcard keys.
    pub fn near_miss(&self, target: &LookupTarget, present: impl Fn(u32) -> bool) -> Option<(u32, NearMiss)> {
        let Ok(image) = &target.parsed else { return None };
        let host = image.host.as_str();
        let same_host = self.same_host(host).iter().copied();
        // The first tests of `SplitUrl::near_miss` for a wildcard key, on the literal labels the index keeps: a key
        // whose last label has a glob (no literal labels) is never a near miss, and the literal labels that align
        // with the image's must be equal.
        let globbed = self.globbed.iter().flat_map(|g| g.entries.iter()).filter_map(|e| {
            let literal = self.literal_labels(e);
            (!literal.is_empty() && label_suffixes_agree(literal, host)).then_some(e.slot)
        });
        let mut best: Option<(u32, NearMiss)> = None;
        for slot in same_host.chain(globbed) {
            if best.as_ref().is_some_and(|(b, _)| *b < slot) || !present(slot) {
                continue;
            }
            let Ok(key) = &self.slots[slot as usize].pattern else { continue };
            if let Some(miss) = key.near_miss(image) {
                best = Some((slot, miss));
            }
        }
        best
    }
}

impl SplitUrl {
    /// [`Keyring::near_miss`] for one parsed key.
    fn near_miss(&self, image: &Self) -> Option<NearMiss> {
        if self.host != image.host {
            // (Its only caller, `Keyring::near_miss`, has already dropped the wildcard keys whose literal labels
            // cannot align with the image's host, on the index.)
            let key_labels: Vec<&str> = self.host.split('.').collect();
            if !key_labels.iter().any(|l| has_glob(l)) || key_labels.last().is_none_or(|l| has_glob(l)) {
                return None;
            }
            let names_it = key_labels
                .iter()
                .rev()
                .zip(image.host.split('.').rev())
                .all(|(pattern, name)| go_glob::matches(pattern, name).unwrap_or(false));
            if !names_it {
                return None;
            }
            if self.labels != image.labels {
                return Some(NearMiss::GlobWidth { key_labels: self.labels, image_labels: image.labels });
            }
        }
        match self.check(image) {
            Reason::PortDiffers => Some(NearMiss::Port { key_port: self.port.clone(), image_port: image.port.clone() }),
            Reason::PathNotPrefix => Some(NearMiss::Path { key_path: self.path.clone() }),
            _ => None,
        }
    }
}

/// Whether two hosts agree on the labels they both have, aligned from the right (`b.example.com` and
/// `example.com` do; `a.example.com` and `b.example.com` do not).
fn label_suffixes_agree(a: &str, b: &str) -> bool {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    // `long.ends_with(short)` byte by byte from the end: most hosts differ in their last byte (no `memcmp` call).
    long.bytes().rev().zip(short.bytes().rev()).all(|(x, y)| x == y)
        && (long.len() == short.len() || long.as_bytes()[long.len() - short.len() - 1] == b'.')
}

/// A lookup string (`ImageRef::name()`) parsed once, as every key comparison re-parses it in Go.
#[derive(Debug, Clone)]
pub struct LookupTarget {
    parsed: Result<SplitUrl, UrlError>,
    /// R29 `isDefaultRegistryMatch`.
    default_registry: bool,
}

impl LookupTarget {
    pub fn new(target: &str) -> Self {
        Self { parsed: SplitUrl::parse(target), default_registry: is_default_registry_match(target) }
    }
}

/// What a person should hear about one key as written, the same in `explain` and `verify`: whether the kubelet
/// drops it (R14) and every note about it ([`lint_key`]); a dropped key always has a note saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyNotes {
    pub dropped: bool,
    pub notes: Vec<String>,
}

pub fn key_notes(key_as_written: &str) -> KeyNotes {
    let mut notes = lint_key(key_as_written);
    let dropped = normalize_key(key_as_written).is_none();
    if dropped && notes.is_empty() {
        notes.push("the kubelet drops this key (not a valid URL)".to_owned());
    }
    KeyNotes { dropped, notes }
}

/// Keys that almost certainly do not do what their author intended (spec 2.J policy (5), §6 item 4,
/// §7), as human-readable lines, with the likely intended key where it is obvious. Empty when the
/// key looks fine. The key as written is never echoed (it may carry `user:password@`); quoted
/// keys are normalized forms with any userinfo masked.
pub fn lint_key(key_as_written: &str) -> Vec<String> {
    let mut notes = Vec::new();
    let written = Written::new(key_as_written);
    lint_written_form(&written, &mut notes);

    let url = match parse_as_written(key_as_written) {
        Ok(url) => url,
        Err(err) => {
            notes.push(unparsable_note(&written, err));
            return notes;
        }
    };
    let path = effective_path(&url.path).to_owned();
    let host_with_port = url.host.clone();
    let key = key_from_url(url);
    if key.is_empty() {
        notes.push("the key normalizes to the empty string, which matches nothing".to_owned());
        return notes;
    }
    // What the kubelet re-parses at every lookup (R24).
    let split = match SplitUrl::parse(&key) {
        Ok(split) => split,
        Err(err) => {
            notes.push(format!(
                "the kubelet stores {}, which fails to parse again at lookup ({err}), so it never \
                 matches",
                quoted(&key)
            ));
            return notes;
        }
    };

    lint_host_syntax(&written, &split, &mut notes);
    if path == "/v1" || path == "/v2" {
        let fix =
            if split.host == DOCKER_HUB_FALLBACK_KEY { "https://index.docker.io/v1/" } else { host_with_port.as_str() };
        notes.push(format!(
            "`{path}` without a trailing slash is kept as a path (only `/v1/` and `/v2/` are \
             stripped): the kubelet stores {}; did you mean {}?",
            quoted(&key),
            quoted(fix)
        ));
    } else if written.bad_scheme.is_none() {
        lint_docker_hub(&key, &split, &path, &mut notes);
    }
    if written.bad_scheme.is_none() && split.host.bytes().any(|b| b.is_ascii_uppercase()) {
        let lowered = format!("{}{}", host_with_port.to_ascii_lowercase(), &key[host_with_port.len()..]);
        notes.push(format!(
            "the host has upper-case letters: matching is case-sensitive and registry hosts in \
             image names are lower-case in practice; did you mean {}?",
            quoted(&lowered)
        ));
    }
    if let Some(star) = path.find('*') {
        let fix = suggestion(&format!("{host_with_port}{}", &path[..star]));
        notes.push(format!(
            "`*` in a path is a literal character: paths are compared as plain string \
             prefixes{fix}"
        ));
    }
    notes
}

/// The parts of a key as written that the lints look at before any URL parsing.
struct Written<'a> {
    key: &'a str,
    /// The authority as written (after one recognized scheme, up to `/`, `?` or `#`).
    authority: &'a str,
    /// A scheme the kubelet does not strip (`HTTPS`, `oci`, or a second `https`), and the text
    /// after its `://`.
    bad_scheme: Option<(&'a str, &'a str)>,
}

impl<'a> Written<'a> {
    fn new(key: &'a str) -> Self {
        let body = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
        let authority = &body[..body.find(['/', '?', '#']).unwrap_or(body.len())];
        Self { key, authority, bad_scheme: scheme_prefix(body) }
    }

    /// `: the kubelet stores `K`` when the key is kept.
    fn stored(&self) -> String {
        normalize_key(self.key).map_or_else(String::new, |k| format!(": the kubelet stores {}", quoted(&k)))
    }
}

/// Scheme, userinfo, `?` and `#` problems (R13, R16, R17).
fn lint_written_form(written: &Written<'_>, notes: &mut Vec<String>) {
    if let Some((scheme, rest)) = written.bad_scheme {
        let fix = suggestion(rest);
        let stored = written.stored();
        notes.push(if scheme == "https" || scheme == "http" {
            format!(
                "the scheme is written twice and only the first one is stripped{stored}, which \
                 never matches{fix}"
            )
        } else {
            format!(
                "scheme `{scheme}://` is not recognized (only lower-case `https://` and `http://` \
                 are stripped){stored}, which never matches{fix}"
            )
        });
    } else if written.authority.contains('@') {
        notes.push(
            "contains userinfo (`user@`): the kubelet discards it; credentials belong in the \
             entry, not in the key"
                .to_owned(),
        );
    }
    let question = written.key.find('?');
    let hash = written.key.find('#');
    if let Some(q) = question
        && hash.is_none_or(|h| q < h)
    {
        let fix = suggestion(&written.key.replace('?', "*"));
        notes.push(format!(
            "`?` is not a wildcard: it starts a URL query and everything from it is ignored{}{fix}",
            written.stored()
        ));
    }
    if hash.is_some() {
        notes.push(format!("`#` starts a URL fragment and everything from it is ignored{}", written.stored()));
    }
}

/// R14: why the kubelet drops the key, or that it keeps a key that can never match.
fn unparsable_note(written: &Written<'_>, err: UrlError) -> String {
    if let UrlError::NotUtf8(_) = err {
        return format!("{err}: the kubelet keeps this key, but it can never match an image name");
    }
    let mut note = format!("the kubelet drops this key: it is not a valid URL ({err})");
    if err == UrlError::InvalidPort && written.authority.contains('*') {
        note.push_str("; ports cannot be wildcards, add one key per port");
    }
    if written.key.contains(['[', ']']) {
        note.push_str(
            "; kubelets built with Go 1.26 (Kubernetes 1.36) accept brackets only around an IPv6 address at \
             the start of the host (Go 1.25 dropped any text before the `[`), and `[...]` glob classes are not \
             portable across kubelet builds",
        );
    } else if err == UrlError::InvalidPort && written.authority.matches(':').count() > 1 {
        note.push_str(
            "; kubelets built with Go 1.26 (Kubernetes 1.36) reject a second colon in the host (Go 1.25 kept \
             such a key, matching nothing); write an IPv6 registry as `[address]:port`",
        );
    }
    note
}

/// Brackets (spec §7.1, §7.2) in a kept key (extra colons, §7.3, drop the key since Go 1.26).
fn lint_host_syntax(written: &Written<'_>, split: &SplitUrl, notes: &mut Vec<String>) {
    if written.key.contains(['[', ']']) {
        notes.push(
            "brackets are not portable: kubelets built with Go before 1.24.8/1.25.2 read them as \
             glob classes, newer ones accept only a bracketed IPv6 address"
                .to_owned(),
        );
        if split.host.starts_with('[') && split.port.is_empty() {
            notes.push(
                "a bracketed IPv6 host without a port never matches an image on that address \
                 (the brackets are read as a glob class); only a wildcard label such as `*` does"
                    .to_owned(),
            );
        }
    }
}

/// Docker Hub spellings that never match Docker Hub images (spec §6 item 4, R30-R31).
fn lint_docker_hub(key: &str, split: &SplitUrl, path: &str, notes: &mut Vec<String>) {
    const HUB: &str = "Docker Hub images are looked up as `docker.io/...`";
    const LOGIN_KEY: &str = "`https://index.docker.io/v1/`";
    let host = split.host.as_str();
    if host == "hub.docker.com" {
        notes.push(format!("{HUB}; `hub.docker.com` (the web site) never matches them; did you mean {LOGIN_KEY}?"));
    } else if host == "registry-1.docker.io" {
        notes.push(format!(
            "{HUB}; this key matches only images written with a `registry-1.docker.io/` prefix; \
             for Docker Hub use {LOGIN_KEY}"
        ));
    } else if host == DOCKER_HUB_FALLBACK_KEY && split.port.is_empty() && key != DOCKER_HUB_FALLBACK_KEY {
        notes.push(format!(
            "{HUB}, and only the exact key `index.docker.io` gets the Docker Hub fallback, so this \
             key never matches; did you mean {}?",
            quoted(&format!("docker.io{path}"))
        ));
    } else if split.labels >= 3 && host.ends_with(".docker.io") && host.contains('*') {
        notes.push(format!(
            "{HUB} (two host labels) and `*` never spans a `.`, so this key never matches them; \
             did you mean `docker.io` or {LOGIN_KEY}?"
        ));
    }
}

/// ` ; did you mean `X`?` for the normalized form of `candidate`, or nothing when it is dropped.
fn suggestion(candidate: &str) -> String {
    match normalize_key(candidate) {
        Some(k) if !k.is_empty() => format!("; did you mean {}?", quoted(&k)),
        _ => String::new(),
    }
}

/// A key in backquotes, with any `user[:password]@` replaced by `***@`: a key written with an
/// unrecognized scheme keeps its userinfo in the stored path.
fn quoted(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 2);
    out.push('`');
    for (i, segment) in key.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        match segment.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&segment[at..]);
            }
            None => out.push_str(segment),
        }
    }
    out.push('`');
    out
}

/// `X://rest` where X is a URL scheme (`[A-Za-z][A-Za-z0-9+.-]*`).
fn scheme_prefix(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once("://")?;
    let mut bytes = scheme.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    (first_ok && rest_ok).then_some((scheme, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single_key_match(key: &str, target: &str) -> bool {
        let mut keyring = Keyring::new();
        keyring.add(key, ());
        !keyring.lookup_str(target).is_empty()
    }

    /// Spec §4 vectors M1-M120: (id, lookup string, config key as written, match), each with a
    /// keyring holding only that key so the Docker Hub fallback is evaluated in isolation. Shared with
    /// the differential test against the kubelet (tests/kubelet_oracle.rs).
    const MATCH_VECTORS: &[(&str, &str, &str, bool)] = include!("../../tests/data/spec_match_vectors.rs");

    #[test]
    fn spec_match_vectors() {
        assert_eq!(MATCH_VECTORS.len(), 120);
        for &(id, target, key, want) in MATCH_VECTORS {
            assert_eq!(single_key_match(key, target), want, "{id}: key {key:?} vs {target:?}");
        }
    }

    /// Every M vector through `explain`: the matched verdicts give exactly `lookup`'s result.
    #[test]
    fn explain_agrees_with_lookup() {
        let mut keyring = Keyring::new();
        for &(id, _, key, _) in MATCH_VECTORS {
            keyring.add(key, id);
        }
        for &(_, target, _, _) in MATCH_VECTORS {
            let from_explain: Vec<&str> = keyring
                .explain(target, |_| true)
                .into_iter()
                .filter(|v| v.matched)
                .flat_map(|v| keyring.items(v.slot).to_vec())
                .collect();
            assert_eq!(from_explain, keyring.lookup_str(target), "{target}");
        }
    }

    /// The kubelet's lookup without an index: every slot checked, in try order, then the fallback (R28-R32).
    fn scan_every_slot<T: Clone>(keyring: &Keyring<T>, target: &str) -> Vec<T> {
        let target = LookupTarget::new(target);
        let mut out = Vec::new();
        if let Ok(target_url) = &target.parsed {
            for slot in &keyring.slots {
                if slot.pattern.as_ref().is_ok_and(|p| p.check(target_url) == Reason::Matched) {
                    out.extend(slot.items.iter().cloned());
                }
            }
        }
        if out.is_empty() && target.default_registry {
            out.extend(keyring.fallback.iter().flat_map(|&i| keyring.items(i).iter().cloned()));
        }
        out
    }

    /// The index skips only keys that cannot match: every M vector alone (M1-M120, fallback included) and all 120
    /// keys in one keyring (try order, shared slots, R32) give what checking every slot gives.
    #[test]
    fn the_index_skips_only_keys_that_cannot_match() {
        let mut all = Keyring::new();
        for &(id, target, key, want) in MATCH_VECTORS {
            let mut single = Keyring::new();
            single.add(key, id);
            assert_eq!(single.lookup_str(target), scan_every_slot(&single, target), "{id}");
            assert_eq!(!single.lookup_str(target).is_empty(), want, "{id}");
            all.add(key, id);
        }
        assert!(!all.globbed.is_empty() && !all.by_host.is_empty() && all.fallback.is_some());
        for &(id, target, _, _) in MATCH_VECTORS {
            assert_eq!(all.lookup_str(target), scan_every_slot(&all, target), "{id}: {target}");
        }
        for target in ["foo/%zz", "localhost/app", "Foo/bar", "reg.example.com/app"] {
            assert_eq!(all.lookup_str(target), scan_every_slot(&all, target), "{target}");
        }
    }

    /// The index (hosts and ports, key paths that prefix the image's, literal labels after the globs) finds exactly
    /// the slots a check of every slot finds, over generated keys and images that share hosts, ports, path prefixes
    /// and label suffixes in every way, duplicates of one host and port (`h.x` and `h.x:`) and malformed globs.
    #[test]
    fn index_agrees_with_a_scan_of_every_slot() {
        use proptest::prelude::*;
        let label = prop::sample::select(vec!["a", "b", "ab", "*", "a*", "?", "[ab]", "[a", "x\\y", ""]);
        // Half of the hosts from a few, so that groups of one host and port, or one wildcard shape, grow past
        // `SCAN_AT_MOST` and are searched rather than scanned.
        let few =
            prop::sample::select(vec!["a.b", "ab.b", "a", "*.b", "a*.b", "*.*", "[a.b", "*"]).prop_map(String::from);
        let host = prop_oneof![few, prop::collection::vec(label, 1..4).prop_map(|labels| labels.join("."))];
        let port = prop::sample::select(vec!["", ":", ":5000", ":50"]);
        let path = prop::sample::select(vec!["", "/", "/a", "/a/", "/ab", "/a/b", "/a/bc", "/b", "/a%2Fb", "/aa"]);
        let key = (host.clone(), port.clone(), path.clone()).prop_map(|(h, p, q)| format!("{h}{p}{q}"));
        let image_host = prop::collection::vec(prop::sample::select(vec!["a", "b", "ab", "y"]), 1..4);
        let image = (image_host, prop::sample::select(vec!["", ":5000", ":50"]), path)
            .prop_map(|(h, p, q)| format!("{}{p}{q}/app", h.join(".")));
        let config = ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() };
        proptest!(config, |(keys in prop::collection::vec(key, 1..160), images in prop::collection::vec(image, 1..10))| {
            let keyring = Keyring::from_entries(keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)));
            for image in images.iter().map(String::as_str).chain(["a.b/a/b/app", "x.b/a/app", "a.b:5000/app"]) {
                prop_assert_eq!(keyring.lookup_str(image), scan_every_slot(&keyring, image), "{}", image);
            }
        });
        // Many keys of one host and port whose paths prefix one another, and wildcard keys of one shape.
        let mut keys: Vec<String> = (0..300).map(|i| format!("reg.example.org/team-{i}")).collect();
        keys.extend(
            ["reg.example.org", "reg.example.org/", "reg.example.org/team-1/", "reg.example.org/team"]
                .map(String::from),
        );
        keys.extend((0..100).map(|i| format!("*.reg-{i}.example.net")));
        keys.extend(["*.*.example.net", "eu.*.example.net", "*.reg-2.*.net", "eu.reg-2.example.*"].map(String::from));
        let keyring = Keyring::from_entries(keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)));
        for image in [
            "reg.example.org/team-1/x",
            "reg.example.org/team-10/x",
            "reg.example.org/team-299",
            "reg.example.org/team/x",
            "reg.example.org/x",
            "eu.reg-2.example.net/app",
            "eu.reg-20.example.net/app",
            "eu.reg-2.example.com/app",
        ] {
            assert_eq!(keyring.lookup_str(image), scan_every_slot(&keyring, image), "{image}");
        }
        // `reg.example.org` (twice: `reg.example.org/` is the same key), `/team`, `/team-1` and `/team-10`.
        assert_eq!(keyring.lookup_str("reg.example.org/team-10/x").len(), 5);
        assert_eq!(keyring.lookup_str("eu.reg-2.example.net/app").len(), 5);
    }

    /// Issue 11, class 12: the bulk build is exactly the keyring `add` builds entry by entry (same slots, same
    /// items in the same order, the same dropped keys), and it stays fast where `add` is quadratic.
    #[test]
    fn from_entries_is_add_in_one_sort() {
        let mut entries: Vec<(&str, usize)> = MATCH_VECTORS.iter().enumerate().map(|(i, v)| (v.2, i)).collect();
        // Duplicates that normalize to one key (R18 order), keys the kubelet drops (R14), the fallback key.
        entries.extend([
            ("https://registry.example.com/", 500),
            ("registry.example.com", 501),
            ("http://[::1", 502),
            ("registry.example.com/v1/", 503),
            ("", 504),
            ("https://index.docker.io/v1/", 505),
        ]);
        let mut one_by_one = Keyring::new();
        for &(key, item) in &entries {
            one_by_one.add(key, item);
        }
        let bulk = Keyring::from_entries(entries.iter().copied());
        let slots = |k: &Keyring<usize>| k.slots.iter().map(|s| (s.key.clone(), s.items.clone())).collect::<Vec<_>>();
        assert_eq!(slots(&bulk), slots(&one_by_one));
        for &(_, target, _, _) in MATCH_VECTORS {
            assert_eq!(bulk.lookup_str(target), one_by_one.lookup_str(target), "{target}");
        }

        // 60,000 distinct keys (the size of the Secret in the issue), each with a port and a glob so that every
        // key is its own index group too: built and indexed well within a second in a release build.
        let keys: Vec<String> = (0..60_000).map(|i| format!("*.r{i}.example.com:{}", 1000 + i)).collect();
        let started = std::time::Instant::now();
        let ring = Keyring::from_entries(keys.iter().map(|k| (k.as_str(), 0u32)));
        let took = started.elapsed();
        assert_eq!(ring.len(), 60_000);
        assert_eq!(ring.globbed.len(), 60_000);
        let hit = LookupTarget::new("a.r59999.example.com:60999/app");
        assert_eq!(ring.lookup(&hit), vec![0]);
        assert!(took < std::time::Duration::from_secs(20), "60,000 keys took {took:?}");
    }

    /// The shortcut parse agrees with Go's parse on every M vector target and key, and on generated strings
    /// around its edges (empty host, bare `:`, long ports, `%`, `?`, `#`, `@`, brackets, `_`, spaces, non-ASCII).
    #[test]
    fn plain_parse_agrees_with_the_general_parse() {
        let general = |s: &str| {
            let url = go_url::parse(&format!("https://{s}"))?;
            let (host, port) = match go_url::split_host_port(&url.host) {
                Ok((host, port)) => (host.to_owned(), port.to_owned()),
                Err(_) => (url.host, String::new()),
            };
            let labels = host.bytes().filter(|&b| b == b'.').count() + 1;
            Ok::<_, UrlError>((host, port, labels, url.path))
        };
        let fields = |s: &SplitUrl| (s.host.clone(), s.port.clone(), s.labels, s.path.clone());
        let mut inputs: Vec<String> = Vec::new();
        for &(_, target, key, _) in MATCH_VECTORS {
            inputs.push(target.to_owned());
            inputs.extend(normalize_key(key));
        }
        let hosts = ["", "h", "reg.example.com", "a-b.c", "A.B", "1.2.3.4", "a_b.c", "[::1]", "*.x", "é.x", "u@h"];
        let ports = ["", ":", ":5000", ":50x", "::1", ":99999999999"];
        let paths = ["", "/", "/a/b", "/A_b.c~d", "/%41", "/a?b", "/a#b", "/a b", "/@:[]", "/\u{7f}"];
        for host in hosts {
            for port in ports {
                for path in paths {
                    inputs.push(format!("{host}{port}{path}"));
                }
            }
        }
        let mut plain_count = 0;
        for input in &inputs {
            if let Some(plain) = SplitUrl::parse_plain(input) {
                plain_count += 1;
                assert_eq!(Ok(fields(&plain)), general(input), "{input:?}");
            }
            assert_eq!(SplitUrl::parse(input).map(|s| fields(&s)), general(input), "{input:?}");
        }
        assert!(plain_count > inputs.len() / 4, "the shortcut is taken: {plain_count} of {}", inputs.len());
    }

    /// Direct matches (no fallback) through the public `urls_match_str`, on normalized keys.
    #[test]
    fn urls_match_str_direct() {
        #[rustfmt::skip]
        let cases = [
            ("docker.io", "docker.io/library/nginx", true),
            ("index.docker.io", "docker.io/library/nginx", false), // only the fallback matches it
            ("[fc00::1]:5000", "[fc00::1]:5000/docker", true),
            ("*", "[fc00::1]/app", true),
            ("reg.example.com:", "reg.example.com/app", true),
            ("https://reg.example.com", "reg.example.com/app", false),
            ("bar.example.com/pong", "bar.example.com/pongz", true),
            ("reg.example.com/a%zz", "reg.example.com/a%zz", false), // key fails to parse
            ("reg.example.com", "reg.example.com/%zz", false),       // target fails to parse
        ];
        for (key, target, want) in cases {
            assert_eq!(urls_match_str(key, target), want, "{key:?} vs {target:?}");
        }
    }

    /// R29 `isDefaultRegistryMatch`, including S4 `TestIsDefaultRegistryMatch`.
    #[test]
    fn default_registry_match() {
        #[rustfmt::skip]
        let cases = [
            ("foo/bar", true),
            ("docker.io/foo/bar", true),
            ("index.docker.io/foo/bar", true),
            ("registry.tld/foo/bar", false),
            ("registry:5000/foo/bar", false),
            ("myhostdocker.io/foo/bar", false),
            ("localhost/app", true),
            ("Foo/bar", true),
            ("nginx", true),
            ("", false),
            ("/x", false),
            ("DOCKER.IO/nginx", false),
        ];
        for (target, want) in cases {
            assert_eq!(is_default_registry_match(target), want, "{target:?}");
        }
    }

    /// R13-R17, R30 and the §7 key facts: key as written -> normalized key (None = dropped).
    #[test]
    fn normalization() {
        #[rustfmt::skip]
        let cases: &[(&str, Option<&str>)] = &[
            ("https://index.docker.io/v1/", Some("index.docker.io")),
            ("index.docker.io", Some("index.docker.io")),
            ("http://index.docker.io/", Some("index.docker.io")),
            ("https://index.docker.io/v2/", Some("index.docker.io")),
            ("https://index.docker.io/v1", Some("index.docker.io/v1")),
            ("registry.example.com/v2", Some("registry.example.com/v2")),
            ("https://registry.example.com/v2/team", Some("registry.example.com/team")),
            ("registry.example.com/v3/", Some("registry.example.com/v3/")),
            ("example.com/team/", Some("example.com/team/")),
            ("user@registry.example.com", Some("registry.example.com")),
            ("user:pa%20ss@registry.example.com", Some("registry.example.com")),
            ("Registry.Example.com:05000", Some("Registry.Example.com:05000")),
            ("h.example.com.", Some("h.example.com.")),
            ("HTTPS://registry.example.com", Some("HTTPS://registry.example.com")),
            ("oci://registry.example.com", Some("oci://registry.example.com")),
            ("", Some("")),
            // §7: `?` and `#`
            ("reg?.example.com", Some("reg")),
            ("?.x.com", Some("")),
            ("10.0.0.5?:5000", Some("10.0.0.5")),
            ("reg.example.com#team", Some("reg.example.com")),
            ("reg.example.com/team#x?y", Some("reg.example.com/team")),
            // §7: double scheme, empty and unchecked ports
            ("https://https://reg.example.com", Some("https://reg.example.com")),
            ("reg.example.com:", Some("reg.example.com:")),
            ("reg.example.com:99999", Some("reg.example.com:99999")),
            // §7: percent-decoding and /v1/ /v2/ stripping
            ("x.com/team%2Fapp", Some("x.com/team/app")),
            ("x.com/v%31/", Some("x.com")),
            ("x.com/v%32/team", Some("x.com/team")),
            ("x.com/v2/v1/", Some("x.com/v1/")),
            ("x.com/v1//", Some("x.com//")),
            // R14: dropped entries
            ("host:abc", None),
            ("registry.example.com:*", None),
            ("a b.example.com", None),
            ("x.com/%zz", None),
            // §7.2, Go 1.26: brackets only at the start of the host
            ("[fc00::1]:5000", Some("[fc00::1]:5000")),
            ("[fc00::1]", Some("[fc00::1]")),
            ("x[fc00::1]:5000", None),
            ("a.b[fc00::1]:5000/app", None),
            ("[*]:5000", None),
            ("[fc00::*]:5000", None),
            ("[a.b]:5000", None),
            ("re[g].x.com", None),
            // §7.3, Go 1.26 urlstrictcolons: a second colon drops the key
            ("reg.example.com:5000:5000", None),
            ("fc00::1", None),
            ("fc00::1:5000", None),
            ("fc00::1]:5000", None),
        ];
        for &(key, want) in cases {
            assert_eq!(normalize_key(key).as_deref(), want, "normalize_key({key:?})");
        }
    }

    /// §7 matching facts: (key as written, lookup string, match).
    #[test]
    fn section7_match_facts() {
        #[rustfmt::skip]
        let cases = [
            ("10.0.0.5?:5000", "10.0.0.5/app", true),
            ("10.0.0.5?:5000", "10.0.0.5:5000/app", false),
            ("https://https://reg.example.com", "reg.example.com/app", false),
            ("reg.example.com:", "reg.example.com/app", true),
            ("reg.example.com:", "reg.example.com:5000/app", false),
            ("reg.example.com:99999", "reg.example.com:99999/app", true),
            ("x.com/team%2Fapp", "x.com/team/app", true),
            ("x.com/v%31/", "x.com/anything", true),
            ("x.com/v2/v1/", "x.com/v1/app", true),
            ("x.com/v2/v1/", "x.com/app", false),
            ("x.com/v1//", "x.com/app", false),
            ("?.x.com", "x.com/app", false),
            // §7.1: brackets are one label; `*` matches every single-label host
            ("*", "[fc00::1]/app", true),
            ("*", "[::1]/x", true),
            ("*", "localhost/x", true),
            ("*", "Foo/x", true),
            ("*", "LOCALHOST/x", true),
            ("*", "localhost:5000/x", false),
            ("*:5000", "[fc00::1]:5000/app", true),
            ("[fc00::1]", "[fc00::1]/app", false),
            // §7.2, Go 1.26: text before `[` drops the key (Go 1.25 rewrote it and matched)
            ("x[fc00::1]:5000", "[fc00::1]:5000/app", false),
            ("a.b[fc00::1]:5000/app", "[fc00::1]:5000/app", false),
            ("[*]:5000", "[fc00::1]:5000/app", false),
            ("re[g].x.com", "reg.x.com/app", false),
            // §7.3: dropped since Go 1.26 (kept but matching nothing before)
            ("reg.example.com:5000:5000", "reg.example.com:5000/app", false),
            ("fc00::1:5000", "[fc00::1]:5000/app", false),
            // R17
            ("HTTPS://registry.example.com", "registry.example.com/app", false),
            ("h.example.com.", "h.example.com/app", false),
            ("h.example.com.", "h.example.com./app", true),
            // A key whose stored form no longer parses never matches (`%25` -> bare `%`).
            ("reg.example.com/a%25zz", "reg.example.com/a%zz", false),
            // A decoded `?` is re-read as a query at lookup: the stored path is cut there.
            ("reg.example.com/a%3Fb", "reg.example.com/ax", true),
        ];
        for (key, target, want) in cases {
            assert_eq!(single_key_match(key, target), want, "key {key:?} vs {target:?}");
        }
        // §7: a bare `reg.example.com:5000` image is Docker Hub, so the fallback applies to it.
        assert!(single_key_match("https://index.docker.io/v1/", "docker.io/library/reg.example.com"));
        for target in ["aB/c", "A/b"] {
            assert!(single_key_match("https://index.docker.io/v1/", target), "{target}");
        }
    }

    /// Keyring over the pod's pull Secrets, in `imagePullSecrets` order.
    fn pod_keyring(secrets: &[(&'static str, &str)]) -> Keyring<&'static str> {
        let mut keyring = Keyring::new();
        for &(name, key) in secrets {
            assert!(keyring.add(key, name), "{key:?} dropped");
        }
        keyring
    }

    /// Spec §4.7 C1-C11. The node keyring (C8-C10) is modeled as a second, separate `Keyring`
    /// whose lookup result is appended after the pull-Secret keyring's (R33: UnionDockerKeyring
    /// looks each member up independently, so each has its own fallback, R32).
    #[test]
    fn spec_selection_vectors() {
        let c1 = pod_keyring(&[("S1", "docker.io/myorg"), ("S2", "https://index.docker.io/v1/")]);
        assert_eq!(c1.lookup_str("docker.io/myorg/app"), ["S1"], "C1");
        assert_eq!(c1.lookup_str("docker.io/library/nginx"), ["S2"], "C2");

        let c3 = pod_keyring(&[("S1", "example.com"), ("S2", "example.com/team")]);
        assert_eq!(c3.lookup_str("example.com/team/app"), ["S2", "S1"], "C3");

        let c4 = pod_keyring(&[("S1", "*.example.com"), ("S2", "reg.example.com")]);
        assert_eq!(c4.lookup_str("reg.example.com/app"), ["S2", "S1"], "C4");

        let c5 = pod_keyring(&[("S1", "a.example.com"), ("S2", "*.example.com/team")]);
        assert_eq!(c5.lookup_str("a.example.com/team/x"), ["S1", "S2"], "C5");

        let c6 = pod_keyring(&[("S1", "reg.example.com"), ("S2", "https://reg.example.com/v2/")]);
        assert_eq!(c6.lookup_str("reg.example.com/app"), ["S1", "S2"], "C6");
        let c7 = pod_keyring(&[("S2", "https://reg.example.com/v2/"), ("S1", "reg.example.com")]);
        assert_eq!(c7.lookup_str("reg.example.com/app"), ["S2", "S1"], "C7");

        let with_node = |pod: &Keyring<&'static str>, node: &Keyring<&'static str>, target: &str| {
            let mut all = pod.lookup_str(target);
            all.extend(node.lookup_str(target));
            all
        };
        let c8_pod = pod_keyring(&[("S1", "example.com/team")]);
        let c8_node = pod_keyring(&[("node", "example.com")]);
        assert_eq!(with_node(&c8_pod, &c8_node, "example.com/team/app"), ["S1", "node"], "C8");

        let c9_pod = pod_keyring(&[("S1", "other.io")]);
        let c9_node = pod_keyring(&[("node", "https://index.docker.io/v1/")]);
        assert_eq!(with_node(&c9_pod, &c9_node, "docker.io/library/nginx"), ["node"], "C9");

        let c10_pod = pod_keyring(&[("S1", "https://index.docker.io/v1/")]);
        let c10_node = pod_keyring(&[("node", "docker.io")]);
        assert_eq!(with_node(&c10_pod, &c10_node, "docker.io/library/nginx"), ["S1", "node"], "C10");

        let c11 = pod_keyring(&[("S1", "reg.example.com"), ("S1", "reg.example.com")]);
        assert_eq!(c11.lookup_str("reg.example.com/app"), ["S1", "S1"], "C11");
    }

    /// R19/R34: slots stay unique and in descending byte order whatever the add order, and the
    /// try order follows it (not specificity, not add order).
    #[test]
    fn keys_stay_sorted_descending() {
        let keys = ["b.example.com", "*.example.com", "a.example.com/team", "a.example.com", "z.io", "a.example.com"];
        let mut keyring = Keyring::new();
        for (i, key) in keys.iter().enumerate() {
            keyring.add(key, i);
        }
        let stored: Vec<&str> = keyring.keys().collect();
        assert_eq!(stored, ["z.io", "b.example.com", "a.example.com/team", "a.example.com", "*.example.com"]);
        assert_eq!(keyring.len(), 5);
        assert_eq!(keyring.lookup_str("a.example.com/team/x"), [2, 3, 5, 1]);
    }

    #[test]
    fn add_reports_dropped_keys() {
        let mut keyring = Keyring::new();
        assert!(!keyring.add("r.io:abc", 1));
        assert!(keyring.add("ok.io", 2));
        assert_eq!(keyring.keys().collect::<Vec<_>>(), ["ok.io"]);
        assert!(Keyring::<()>::new().is_empty());
    }

    #[test]
    fn explain_reasons() {
        let mut keyring = Keyring::new();
        for (i, key) in [
            "reg.example.com:5000",
            "*.*.example.com",
            "reg.example.com/other",
            "foo.example.com",
            "https://index.docker.io/v1/",
            "reg.example.com/a%25zz",
            "reg.example.com",
        ]
        .into_iter()
        .enumerate()
        {
            keyring.add(key, i);
        }
        let verdicts = keyring.explain("reg.example.com/app", |_| true);
        let got: Vec<(&str, bool, Reason, Option<Fallback>)> =
            verdicts.iter().map(|v| (v.key.as_str(), v.matched, v.reason, v.fallback)).collect();
        assert_eq!(
            got,
            [
                ("reg.example.com:5000", false, Reason::PortDiffers, None),
                ("reg.example.com/other", false, Reason::PathNotPrefix, None),
                ("reg.example.com/a%zz", false, Reason::KeyUnparsable, None),
                ("reg.example.com", true, Reason::Matched, None),
                ("index.docker.io", false, Reason::LabelMismatch { label: 0 }, Some(Fallback::SuppressedByDirectMatch)),
                ("foo.example.com", false, Reason::LabelMismatch { label: 0 }, None),
                ("*.*.example.com", false, Reason::LabelCountDiffers, None),
            ]
        );

        assert_eq!(
            verdicts[4].describe(),
            "a host label does not match the key's glob (label 1); Docker Hub fallback not used: another key matched directly"
        );
        assert_eq!(verdicts[3].describe(), "matches");

        let hub = keyring.explain("docker.io/library/nginx", |_| true);
        let fallback = hub.iter().find(|v| v.key == DOCKER_HUB_FALLBACK_KEY).map(|v| (v.matched, v.fallback));
        assert_eq!(fallback, Some((true, Some(Fallback::Used))));

        let other = keyring.explain("quay.io/x", |_| true);
        let fallback = other.iter().find(|v| v.key == DOCKER_HUB_FALLBACK_KEY).map(|v| (v.matched, v.fallback));
        assert_eq!(fallback, Some((false, Some(Fallback::NotDefaultRegistry))));

        let bad = keyring.explain("reg.example.com/%zz", |_| true);
        assert!(bad.iter().all(|v| !v.matched));
        assert_eq!(bad[0].reason, Reason::TargetUnparsable);

        // Go 1.25.5 drops `[` outside an IPv6 literal, but a zone may hold a `.`, which splits the
        // bracketed host into labels that are malformed globs. (The zone must still parse after
        // the stored key's `%25` became `%`, hence `%2525`: stored `[fe80::1%25.x]`.)
        let mut globs = Keyring::new();
        assert!(globs.add("[fe80::1%2525.x]", ()));
        assert_eq!(globs.keys().collect::<Vec<_>>(), ["[fe80::1%25.x]"]);
        assert_eq!(globs.explain("a.b", |_| true)[0].reason, Reason::BadPattern { label: 0 });
        assert_eq!(
            Reason::BadPattern { label: 1 }.to_string(),
            "a host label of the key is a malformed glob (label 2)"
        );
    }

    /// A target that cannot be parsed still gets the Docker Hub fallback, as in Go.
    #[test]
    fn unparsable_target_still_falls_back() {
        let keyring = pod_keyring(&[("S1", "https://index.docker.io/v1/")]);
        assert_eq!(keyring.lookup_str("foo/%zz"), ["S1"]);
    }

    /// (key as written, substrings the lint must contain), covering spec 2.J policy (5), §6 item 4 and §7.
    #[rustfmt::skip]
    const LINT_CASES: &[(&str, &[&str])] = &[
        ("reg?.example.com", &["`?` is not a wildcard", "stores `reg`", "did you mean `reg*.example.com`?"]),
        ("reg.example.com#team", &["`#` starts a URL fragment", "stores `reg.example.com`"]),
        ("HTTPS://registry.example.com", &["scheme `HTTPS://`", "did you mean `registry.example.com`?"]),
        ("oci://registry.example.com", &["scheme `oci://`"]),
        ("https://https://reg.example.com", &["written twice", "did you mean `reg.example.com`?"]),
        ("registry.example.com/v2", &["`/v2` without a trailing slash", "did you mean `registry.example.com`?"]),
        ("https://index.docker.io/v1", &["did you mean `https://index.docker.io/v1/`?"]),
        ("registry.example.com:*", &["drops this key", "ports cannot be wildcards"]),
        ("host:abc", &["drops this key"]),
        ("re[g].x.com", &["drops this key", "brackets"]),
        ("x[fc00::1]:5000", &["drops this key", "only around an IPv6 address at the start of the host"]),
        ("[fc00::1]", &["without a port never matches"]),
        ("fc00::1:5000", &["drops this key", "second colon"]),
        ("hub.docker.com", &["hub.docker.com", "https://index.docker.io/v1/"]),
        ("registry-1.docker.io", &["registry-1.docker.io/"]),
        ("index.docker.io/myorg", &["exact key `index.docker.io`", "did you mean `docker.io/myorg`?"]),
        ("*.docker.io", &["never spans"]),
        ("Registry.Example.com/Team", &["upper-case", "did you mean `registry.example.com/Team`?"]),
        ("example.com/team/*", &["literal", "did you mean `example.com/team/`?"]),
        ("?.x.com", &["empty string"]),
        ("reg.example.com/a%25zz", &["fails to parse again"]),
        ("reg.example.com/%ff", &["can never match"]),
        ("user@registry.example.com", &["userinfo"]),
    ];

    #[test]
    fn lint_flags_dead_keys() {
        for &(key, needles) in LINT_CASES {
            let notes = lint_key(key);
            for needle in needles {
                assert!(notes.iter().any(|n| n.contains(needle)), "lint_key({key:?}) = {notes:#?}, want {needle:?}");
            }
        }
    }

    #[test]
    fn lint_accepts_good_keys() {
        for key in [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "docker.io/library",
            "registry.example.com",
            "https://registry.example.com:5000/v2/",
            "*.example.com/team",
            "[fc00::1]:5000/team", // brackets still get the portability note, checked below
            "10.0.0.*:5000",
            "localhost:5000",
        ] {
            let notes = lint_key(key);
            let unexpected: Vec<_> = notes.iter().filter(|n| !n.contains("not portable")).collect();
            assert!(unexpected.is_empty(), "lint_key({key:?}) = {notes:#?}");
        }
        assert!(lint_key("[fc00::1]:5000").iter().any(|n| n.contains("not portable")));
    }

    /// Lint text never repeats userinfo from the key.
    #[test]
    fn lint_never_echoes_userinfo() {
        for key in [
            "alice:s3cret@reg?.example.com",
            "https://alice:s3cret@Reg.example.com/v2",
            "alice:s3cret@host:abc",
            "HTTPS://alice:s3cret@x.com#y",
        ] {
            for note in lint_key(key) {
                assert!(!note.contains("s3cret") && !note.contains("alice"), "{key:?}: {note}");
            }
        }
    }
}
