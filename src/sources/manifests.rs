//! Reading Kubernetes manifests from files and directories: YAML (multi-document) or JSON, `kind: List` included.
//!
//! Used by `mutate`, `explain`, `verify` and the local credential source of `serve`. Like `kubectl apply -f DIR`,
//! a directory is read one level deep, in name order, and hidden entries (such as the `..data` links of a mounted
//! Secret volume) are skipped.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use serde::de::DeserializeSeed as _;
use serde_json::Value;
use serde_yaml_ng::Value as YamlValue;

use crate::core::cluster_pull_secret::ClusterPullSecret;
use crate::core::credentials::{CredentialIndex, IndexLimits, NamespaceFacts, Reduced, StagedSecrets};
use crate::kubelet::docker_config::SecretKind;

/// Why manifests could not be read. The message names the file (and document) and the problem, on one line.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {what}")]
    Parse { path: PathBuf, what: String },
    #[error("{path}: document {index}: {kind} {name:?} is malformed: {what}")]
    Object { path: PathBuf, index: usize, kind: String, name: String, what: String },
}

/// The objects the credential inputs may hold; other kinds are ignored.
#[derive(Debug, Default, Clone)]
pub struct Manifests {
    pub secrets: Vec<Secret>,
    pub namespaces: Vec<Namespace>,
    pub cluster_pull_secrets: Vec<ClusterPullSecret>,
}

impl Manifests {
    /// Reads every path (file or directory). Objects without a namespace are placed in `default_namespace`,
    /// as `kubectl apply` places them in the context's namespace.
    pub fn load(paths: &[PathBuf], default_namespace: &str) -> Result<Self, InputError> {
        let mut out = Manifests::default();
        read(paths, default_namespace, &mut out)?;
        Ok(out)
    }

    /// Adds the objects of one file's text.
    pub fn add_documents(&mut self, path: &Path, text: &str, default_namespace: &str) -> Result<(), InputError> {
        add_documents(path, text, default_namespace, self)
    }

    /// A credential index over these objects, exactly as `serve` would build it from the cluster (default bounds).
    pub fn index(&self) -> CredentialIndex {
        self.index_with(IndexLimits::default())
    }

    /// [`Manifests::index`] with these bounds.
    pub fn index_with(&self, limits: IndexLimits) -> CredentialIndex {
        let mut inputs = IndexInputs::new(limits);
        self.secrets.iter().for_each(|secret| inputs.add_secret(secret));
        self.namespaces.iter().cloned().for_each(|namespace| inputs.namespace(namespace));
        self.cluster_pull_secrets.iter().cloned().for_each(|cps| inputs.cluster_pull_secret(cps));
        inputs.index()
    }
}

/// Where the objects of manifests go as they are read: kept whole ([`Manifests`]: the command line, `verify`), or
/// reduced at once to what an index keeps ([`IndexInputs`]: `serve --secrets-dir`).
pub trait ObjectSink {
    fn secret(&mut self, secret: Secret);
    fn namespace(&mut self, namespace: Namespace);
    fn cluster_pull_secret(&mut self, cps: ClusterPullSecret);
}

impl ObjectSink for Manifests {
    fn secret(&mut self, secret: Secret) {
        self.secrets.push(secret);
    }
    fn namespace(&mut self, namespace: Namespace) {
        self.namespaces.push(namespace);
    }
    fn cluster_pull_secret(&mut self, cps: ClusterPullSecret) {
        self.cluster_pull_secrets.push(cps);
    }
}

/// What a credential index is built from, each object reduced as soon as it is read (the same reductions as the
/// cluster's watches: `Reduced::of`, [`NamespaceFacts`]): a directory of 100,000 Secrets costs what the index keeps
/// plus one file's objects, not every parsed Secret with its credentials.
pub struct IndexInputs {
    limits: IndexLimits,
    /// One per pull-Secret type, in the order of [`SecretKind::ALL`].
    secrets: [StagedSecrets; 2],
    /// (namespace, name) of the Secrets of other types: they take their names.
    others: Vec<(String, String)>,
    namespaces: NamespaceFacts,
    cluster_pull_secrets: Vec<ClusterPullSecret>,
}

impl IndexInputs {
    pub fn new(limits: IndexLimits) -> Self {
        Self {
            limits,
            secrets: SecretKind::ALL.map(StagedSecrets::new),
            others: Vec::new(),
            namespaces: NamespaceFacts::default(),
            cluster_pull_secrets: Vec::new(),
        }
    }

    /// Reads every path as [`Manifests::load`] does, reducing each object as it is read.
    pub fn load(paths: &[PathBuf], default_namespace: &str, limits: IndexLimits) -> Result<Self, InputError> {
        let mut inputs = Self::new(limits);
        read(paths, default_namespace, &mut inputs)?;
        Ok(inputs)
    }

    /// The index of these objects (namespaces, distributions, then each pull-Secret type and the other Secrets'
    /// names, as the watches deliver them).
    pub fn index(self) -> CredentialIndex {
        let mut index = CredentialIndex::with_limits(self.limits);
        index.replace_namespace_facts(self.namespaces);
        index.replace_cluster_pull_secrets(&self.cluster_pull_secrets);
        for staged in self.secrets {
            index.replace_staged(staged);
        }
        index.replace_other_secrets(self.others);
        index
    }
}

impl IndexInputs {
    /// One Secret, reduced (the payload is not kept).
    fn add_secret(&mut self, secret: &Secret) {
        let (Some(ns), Some(reduced)) = (secret.metadata.namespace.as_deref(), Reduced::of(secret, &self.limits))
        else {
            return;
        };
        match reduced.kind() {
            Some(kind) => {
                if let Some(staged) = self.secrets.iter_mut().find(|staged| staged.kind() == kind) {
                    staged.add(ns, reduced);
                }
            }
            None => self.others.push((ns.to_string(), reduced.name().to_string())),
        }
    }
}

impl ObjectSink for IndexInputs {
    fn secret(&mut self, secret: Secret) {
        self.add_secret(&secret);
    }
    fn namespace(&mut self, namespace: Namespace) {
        self.namespaces.add(namespace);
    }
    fn cluster_pull_secret(&mut self, cps: ClusterPullSecret) {
        self.cluster_pull_secrets.push(cps);
    }
}

/// Reads every path (file or directory), file by file, into `sink`.
fn read(paths: &[PathBuf], default_namespace: &str, sink: &mut impl ObjectSink) -> Result<(), InputError> {
    for path in paths {
        for file in manifest_files(path)? {
            let text =
                std::fs::read_to_string(&file).map_err(|source| InputError::Read { path: file.clone(), source })?;
            add_documents(&file, &text, default_namespace, sink)?;
        }
    }
    Ok(())
}

/// Adds the objects of one file's text to `sink`.
fn add_documents(
    path: &Path,
    text: &str,
    default_namespace: &str,
    sink: &mut impl ObjectSink,
) -> Result<(), InputError> {
    for (index, doc) in parse_documents(path, text)?.into_iter().enumerate() {
        for item in flatten_lists(doc) {
            add_object(path, index + 1, item, default_namespace, sink)?;
        }
    }
    Ok(())
}

fn add_object(
    path: &Path,
    index: usize,
    object: Value,
    default_namespace: &str,
    sink: &mut impl ObjectSink,
) -> Result<(), InputError> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let malformed = |e: serde_json::Error| InputError::Object {
        path: path.to_path_buf(),
        index,
        kind: kind.clone(),
        name: name.clone(),
        what: shape_error(&e),
    };
    match (api_version, kind.as_str()) {
        ("v1", "Secret") => {
            let mut secret: Secret = serde_json::from_value(object).map_err(malformed)?;
            secret.metadata.namespace.get_or_insert_with(|| default_namespace.to_string());
            sink.secret(secret);
        }
        ("v1", "Namespace") => sink.namespace(serde_json::from_value(object).map_err(malformed)?),
        ("pullsecret-injector.io/v1alpha1", "ClusterPullSecret") => {
            sink.cluster_pull_secret(serde_json::from_value(object).map_err(malformed)?)
        }
        _ => {}
    }
    Ok(())
}

/// serde's message for a wrongly shaped Secret, Namespace or ClusterPullSecret, without the offending value (see
/// [`without_values`]); a `data` value that is not base64 says so.
fn shape_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if !text.starts_with("invalid type: ")
        && !text.starts_with("invalid value: ")
        && (text.contains("base64") || text.starts_with("Invalid"))
    {
        return "a data value is not valid base64".into();
    }
    without_values(&text)
}

/// serde's message for a wrongly shaped object, without the offending value: serde quotes it (`invalid type: string
/// "…", expected a sequence`), and in a manifest that value can be a credential. Other messages (a missing field,
/// a wrong length) quote no value and are kept.
pub fn without_values(text: &str) -> String {
    // serde_yaml puts the path first (`spec.x: invalid type: ...`).
    let Some(at) =
        ["invalid type: ", "invalid value: "].iter().filter_map(|p| text.find(p).map(|i| (i, p.len()))).min()
    else {
        return text.to_string();
    };
    let (prefix, rest) = (&text[..at.0], &text[at.0 + at.1..]);
    let found = rest.split([' ', ',']).next().unwrap_or("value");
    match text.rsplit_once(", expected ") {
        Some((_, expected)) => format!("{prefix}invalid {found}, expected {expected}"),
        None => format!("{prefix}invalid {found}"),
    }
}

/// The files a path names: itself, or a directory's visible `.yaml`, `.yml` and `.json` files in name order.
pub fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, InputError> {
    let meta = std::fs::metadata(path).map_err(|source| InputError::Read { path: path.to_path_buf(), source })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| InputError::Read { path: path.to_path_buf(), source })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| InputError::Read { path: path.to_path_buf(), source })?;
        let file = entry.path();
        let visible = !entry.file_name().to_string_lossy().starts_with('.');
        let manifest = matches!(file.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"));
        if visible && manifest && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// Splits a file's text into documents as JSON values (the credential inputs: key order does not matter there).
/// See [`parse_ordered_documents`]; scalars are taken as the YAML library resolves them (YAML 1.2), so that a file
/// of credentials that loaded before still loads (a Namespace label `x: y` is no boolean here).
pub fn parse_documents(path: &Path, text: &str) -> Result<Vec<Value>, InputError> {
    parse(path, text, Scalars::Yaml12)?
        .into_iter()
        .enumerate()
        .map(|(i, doc)| {
            serde_json::to_value(&doc).map_err(|e| InputError::Parse {
                path: path.to_path_buf(),
                what: format!("document {}: not a JSON-compatible object: {e}", i + 1),
            })
        })
        .collect()
}

/// Splits a file's text into documents, each keeping its keys in the order written: JSON (one value, or an array
/// of them) or YAML (any number of `---` separated documents; empty ones skipped). JSON is read by the JSON parser
/// so its errors point at the right place. YAML merge keys (`<<: *base`) are applied, as kubectl applies them.
///
/// Bounded whatever the input: nesting deeper than 128 levels is an error (both parsers), and so is a stream that
/// expands to more than [`max_values`] values once YAML aliases are resolved (an alias "bomb" repeats a subtree
/// exponentially or quadratically; a document without aliases has at most about one value per byte). Errors name the
/// document and never quote a value (a value can be a credential).
///
/// Plain scalars are read as Kubernetes reads them (YAML 1.1, [`yaml11_scalar`]): what `mutate` writes back is what
/// `kubectl apply` would have sent.
pub fn parse_ordered_documents(path: &Path, text: &str) -> Result<Vec<YamlValue>, InputError> {
    parse(path, text, Scalars::Yaml11)
}

/// How plain YAML scalars are resolved.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scalars {
    /// As the YAML library does (YAML 1.2 core schema).
    Yaml12,
    /// As sigs.k8s.io/yaml does (YAML 1.1: `on`, `no`, `0644`...).
    Yaml11,
}

fn parse(path: &Path, text: &str, scalars: Scalars) -> Result<Vec<YamlValue>, InputError> {
    let parse_error = |what: String| InputError::Parse { path: path.to_path_buf(), what };
    let budget = Budget::new(max_values(text.len()));
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut de = serde_json::Deserializer::from_str(trimmed);
        // JSON has no plain scalars to resolve.
        let value = BoundedValue { budget: &budget, source: None }
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| parse_error(format!("invalid JSON: {e}")))?;
        let docs = match value {
            YamlValue::Sequence(items) => items,
            other => vec![other],
        };
        for (i, doc) in docs.iter().enumerate() {
            if !doc.is_mapping() {
                return Err(parse_error(format!("item {} is not a Kubernetes object", i + 1)));
            }
        }
        return Ok(docs);
    }
    let mut docs = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let source = (scalars == Scalars::Yaml11).then_some(text);
        let value = BoundedValue { budget: &budget, source }
            .deserialize(doc)
            .and_then(|mut v| v.apply_merge().map(|()| v))
            .map_err(|e| parse_error(format!("document {}: invalid YAML: {e}", i + 1)))?;
        if value.is_null() {
            continue;
        }
        if !value.is_mapping() {
            return Err(parse_error(format!("document {} is not a Kubernetes object", i + 1)));
        }
        docs.push(value);
    }
    Ok(docs)
}

/// What YAML 1.1 (sigs.k8s.io/yaml, hence kubectl, Helm and the API server) makes of a plain scalar that YAML 1.2
/// readers take for a string: `y`, `yes`, `on` and their spellings (true), `n`, `no`, `off` (false), integers with a
/// leading zero (octal), with `_` separators or a `0b` prefix, as Go's `strconv.ParseInt(s, 0, 64)` reads them after
/// the underscores are dropped. `None`: a string for both.
pub fn yaml11_scalar(s: &str) -> Option<YamlValue> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => return Some(YamlValue::Bool(true)),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => return Some(YamlValue::Bool(false)),
        _ => {}
    }
    // Go resolves a number only from a digit, a sign or a `.` (`_1` is a string).
    if !s.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) {
        return None;
    }
    let plain = s.replace('_', "");
    let (negative, unsigned) = match plain.as_bytes().first()? {
        b'-' => (true, &plain[1..]),
        b'+' => (false, &plain[1..]),
        _ => (false, plain.as_str()),
    };
    let (radix, digits) = match unsigned.get(..2) {
        Some("0x" | "0X") => (16, &unsigned[2..]),
        Some("0o" | "0O") => (8, &unsigned[2..]),
        Some("0b" | "0B") => (2, &unsigned[2..]),
        _ if unsigned.len() > 1 && unsigned.starts_with('0') => (8, &unsigned[1..]),
        _ => (10, unsigned),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        let value = i64::try_from(magnitude).ok().map(|m| -m).or((magnitude == 1 << 63).then_some(i64::MIN))?;
        Some(YamlValue::Number(value.into()))
    } else {
        Some(YamlValue::Number(magnitude.into()))
    }
}

/// The most values an input of `bytes` bytes may hold once parsed: twice what any input without aliases can reach
/// (a value takes at least two bytes, as in `[1,1]` or `- \n`), plus room for the aliases of hand-written files.
pub fn max_values(bytes: usize) -> usize {
    bytes.saturating_add(100_000)
}

/// Values left to build in one input.
struct Budget(std::cell::Cell<usize>);

impl Budget {
    fn new(max: usize) -> Self {
        Self(std::cell::Cell::new(max))
    }

    fn take<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.0.get().checked_sub(1) {
            Some(left) => {
                self.0.set(left);
                Ok(())
            }
            None => Err(E::custom("the input expands to too many values (aliases repeating a subtree?); refused")),
        }
    }
}

/// A YAML value built within a [`Budget`], keys in the order written; a key written twice is an error (as kubectl
/// reports it), never a silent choice.
struct BoundedValue<'b> {
    budget: &'b Budget,
    /// With YAML 1.1 scalars, the whole input: a string borrowed from it can be told plain (`on`) or quoted
    /// (`"on"`), or tagged (`!!str on`). `None`: scalars as the YAML library resolves them.
    source: Option<&'b str>,
}

impl BoundedValue<'_> {
    /// Whether `v`, a string slice of the YAML 1.1 input, was written as a plain, untagged scalar: the character
    /// before it is no quote, and neither of the two tokens before it (a tag, an anchor) is a tag.
    fn is_plain_untagged(&self, v: &str) -> bool {
        let Some(source) = self.source else { return false };
        let start = (v.as_ptr() as usize).wrapping_sub(source.as_ptr() as usize);
        if start > source.len() || (start > 0 && matches!(source.as_bytes()[start - 1], b'"' | b'\'')) {
            return false;
        }
        // A tag and an anchor are short: look back a bounded window, so that a long flow collection without
        // spaces (`[a,a,a,...]`) costs no more per scalar.
        let from = (start.saturating_sub(256)..=start).find(|&i| source.is_char_boundary(i)).unwrap_or(start);
        // Only the tokens between the value and its key (`k:`) or sequence dash: a `!` in a comment or an earlier
        // value is no tag of this one.
        let tagged = source[from..start]
            .split_whitespace()
            .rev()
            .take_while(|token| !token.ends_with(':') && *token != "-")
            .take(2)
            .any(|token| token.trim_start_matches(['[', '{', ',']).starts_with('!'));
        !tagged
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for BoundedValue<'_> {
    type Value = YamlValue;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<YamlValue, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for BoundedValue<'_> {
    type Value = YamlValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a YAML or JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<YamlValue, E> {
        self.budget.take()?;
        Ok(YamlValue::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<YamlValue, E> {
        self.budget.take()?;
        Ok(YamlValue::Number(v.into()))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<YamlValue, E> {
        self.budget.take()?;
        Ok(YamlValue::Number(v.into()))
    }

    /// Integers beyond 64 bits (YAML has no bound) become floats, as JSON readers take them.
    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<YamlValue, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => self.visit_f64(v as f64),
        }
    }

    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<YamlValue, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => self.visit_f64(v as f64),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<YamlValue, E> {
        self.budget.take()?;
        Ok(YamlValue::Number(v.into()))
    }

    /// A string as the YAML library resolves it (YAML 1.2). Kubernetes reads YAML 1.1: a plain `on`, `no` or `y` is
    /// a boolean there, a plain `0644` an octal number, `1_000` a number. Taking them as Kubernetes does keeps what
    /// `mutate` writes back what `kubectl apply` would have sent.
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<YamlValue, E> {
        if self.is_plain_untagged(v)
            && let Some(value) = yaml11_scalar(v)
        {
            self.budget.take()?;
            return Ok(value);
        }
        self.visit_str(v)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<YamlValue, E> {
        self.budget.take()?;
        Ok(YamlValue::String(v.to_string()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<YamlValue, E> {
        self.budget.take()?;
        Ok(YamlValue::String(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<YamlValue, E> {
        self.budget.take()?;
        Ok(YamlValue::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<YamlValue, E> {
        self.visit_unit()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<YamlValue, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, deserializer)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<YamlValue, A::Error> {
        self.budget.take()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(BoundedValue { budget: self.budget, source: self.source })? {
            items.push(item);
        }
        Ok(YamlValue::Sequence(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<YamlValue, A::Error> {
        self.budget.take()?;
        let mut mapping = serde_yaml_ng::Mapping::new();
        while let Some(key) = map.next_key_seed(BoundedValue { budget: self.budget, source: self.source })? {
            let value = map.next_value_seed(BoundedValue { budget: self.budget, source: self.source })?;
            if mapping.contains_key(&key) {
                let shown = match &key {
                    YamlValue::String(k) => format!(" {:?}", crate::safe_text::line(k, 64)),
                    _ => String::new(),
                };
                return Err(serde::de::Error::custom(format!("duplicate key{shown} in a mapping")));
            }
            mapping.insert(key, value);
        }
        Ok(YamlValue::Mapping(mapping))
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<YamlValue, A::Error> {
        use serde::de::VariantAccess as _;
        self.budget.take()?;
        let (tag, contents): (String, _) = data.variant()?;
        // A tagged scalar keeps its text: the tag, not YAML 1.1, says what it is (`!x on` is "on" for Go).
        let value = contents.newtype_variant_seed(BoundedValue { budget: self.budget, source: None })?;
        Ok(YamlValue::Tagged(Box::new(serde_yaml_ng::value::TaggedValue {
            tag: serde_yaml_ng::value::Tag::new(tag),
            value,
        })))
    }
}

/// Expands `kind: List` (and `*List` kinds such as `SecretList`) into their items.
fn flatten_lists(doc: Value) -> Vec<Value> {
    let is_list = doc.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"));
    match doc {
        Value::Object(mut map) if is_list => match map.remove("items") {
            Some(Value::Array(items)) => items.into_iter().flat_map(flatten_lists).collect(),
            _ => Vec::new(),
        },
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_documents_read_plain_scalars_as_kubernetes_does() {
        // The first key at offset 0; quoted and tagged scalars keep their text.
        let text = "on: 1\na: on\nb: \"on\"\nc: 0644\nd: !!str off\ne: _1\nf: !x on\ng: 'no'\nh: [y, \"n\", 1_000]\n";
        let doc = parse_ordered_documents(Path::new("t.yaml"), text).unwrap().remove(0);
        let expected: YamlValue = serde_yaml_ng::from_str(
            "true: 1\na: true\nb: \"on\"\nc: 420\nd: off\ne: _1\nf: !x on\ng: 'no'\nh: [true, \"n\", 1000]\n",
        )
        .unwrap();
        assert_eq!(doc, expected);
        // A `!` in an earlier value or a comment tags nothing; a tag on the line before its value does.
        let text = "msg: \"Attention !\"\nenabled: on\n# note !\nmode: 0644\nx:\n- !!str on\n- on\nt: !!str\n  on\n";
        let doc = parse_ordered_documents(Path::new("t.yaml"), text).unwrap().remove(0);
        let expected: YamlValue =
            serde_yaml_ng::from_str("msg: \"Attention !\"\nenabled: true\nmode: 420\nx: [\"on\", true]\nt: \"on\"\n")
                .unwrap();
        assert_eq!(doc, expected);
        // Credentials are read as the YAML library resolves them: a label `x: y` stays a string.
        let docs = parse_documents(Path::new("t.yaml"), "a: on\nlabels: {x: y}\n").unwrap();
        assert_eq!(docs[0], serde_json::json!({"a": "on", "labels": {"x": "y"}}));
    }

    #[test]
    fn reads_multi_document_yaml_lists_and_ignores_other_kinds() {
        let text = r#"
apiVersion: v1
kind: Secret
metadata: {name: a}
type: kubernetes.io/dockerconfigjson
data: {.dockerconfigjson: e30=}
---
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: team, labels: {x: y}}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: ignored}
- apiVersion: v1
  kind: SecretList
  items:
  - apiVersion: v1
    kind: Secret
    metadata: {name: b, namespace: team}
"#;
        let mut m = Manifests::default();
        m.add_documents(Path::new("x.yaml"), text, "default").unwrap();
        let names: Vec<_> = m
            .secrets
            .iter()
            .map(|s| (s.metadata.namespace.clone().unwrap(), s.metadata.name.clone().unwrap()))
            .collect();
        assert_eq!(names, [("default".into(), "a".into()), ("team".into(), "b".into())]);
        assert_eq!(m.namespaces.len(), 1);
    }

    #[test]
    fn json_array_and_object() {
        let mut m = Manifests::default();
        m.add_documents(
            Path::new("x.json"),
            r#"[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a","namespace":"n"}}]"#,
            "default",
        )
        .unwrap();
        assert_eq!(m.secrets.len(), 1);
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let mut m = Manifests::default();
        let err = m.add_documents(Path::new("bad.yaml"), "a: [", "default").unwrap_err().to_string();
        assert!(err.starts_with("bad.yaml: document 1: invalid YAML"), "{err}");
        let err = m
            .add_documents(
                Path::new("s.yaml"),
                "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: not-base64!}\n",
                "default",
            )
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.yaml: document 1: Secret \"s\" is malformed"), "{err}");
        let err = m.add_documents(Path::new("j.json"), "{\"kind\": ", "default").unwrap_err().to_string();
        assert!(err.starts_with("j.json: invalid JSON"), "{err}");
        assert!(!err.contains('\n'));
    }

    fn ordered(text: &str) -> Result<Vec<YamlValue>, String> {
        parse_ordered_documents(Path::new("in.yaml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn documents_keep_their_key_order_in_yaml_and_json() {
        let yaml = ordered("kind: Pod\nzeta: 1\napiVersion: v1\nalpha: {b: 1, a: 2}\n").unwrap();
        let json = ordered(r#"{"kind": "Pod", "zeta": 1, "apiVersion": "v1", "alpha": {"b": 1, "a": 2}}"#).unwrap();
        for docs in [yaml, json] {
            let keys: Vec<&str> = docs[0].as_mapping().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
            assert_eq!(keys, ["kind", "zeta", "apiVersion", "alpha"]);
            let inner: Vec<&str> = docs[0]["alpha"].as_mapping().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
            assert_eq!(inner, ["b", "a"]);
        }
    }

    /// Hostile inputs end in one clear line naming the document, quickly and without a large allocation; none
    /// quotes a value.
    #[test]
    fn hostile_documents_are_refused_with_a_clear_error() {
        // The "billion laughs": each level repeats the previous nine times (9^9 strings once expanded).
        let mut bomb = String::from("a0: &a0 [\"lol\"]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            bomb.push_str(&format!("a{i}: &a{i} [{}]\n", [prev.as_str(); 9].join(", ")));
        }
        // Quadratic: a 20,000-item list repeated 20,000 times (4·10^8 values from 200 kB).
        let mut quadratic = String::from("base: &b [");
        quadratic.push_str(&vec!["x"; 20_000].join(","));
        quadratic.push_str("]\nrepeat: [");
        quadratic.push_str(&vec!["*b"; 20_000].join(","));
        quadratic.push_str("]\n");
        let deep_yaml = format!("kind: Pod\nspec: {}1{}\n", "[".repeat(10_000), "]".repeat(10_000));
        let deep_json = format!("{{\"kind\": {}1{}}}", "[".repeat(10_000), "]".repeat(10_000));
        // (input, what the error says)
        let cases: Vec<(String, &str)> = vec![
            (bomb, "document 1: invalid YAML: "),
            (quadratic, "too many values"),
            (deep_yaml, "recursion limit"),
            (deep_json, "recursion limit"),
            ("kind: Pod\nspec: {a: 1, a: 2}\n".into(), "duplicate key \"a\""),
            (r#"{"kind": "Pod", "kind": "Secret"}"#.into(), "duplicate key \"kind\""),
            ("kind: Pod\n---\n- hunter2\n".into(), "document 2 is not a Kubernetes object"),
            ("[1, \"hunter2\"]".into(), "item 1 is not a Kubernetes object"),
            ("kind: Pod\n<<: hunter2\n".into(), "document 1: invalid YAML"),
            ("a: !!binary aHVudGVyMg==\nb: [\n".into(), "document 1: invalid YAML"),
            ("kind: \"hunter2\n".into(), "document 1: invalid YAML"),
        ];
        for (text, want) in &cases {
            let started = std::time::Instant::now();
            let err = ordered(text).unwrap_err();
            assert!(err.contains(want), "{want}: {err}");
            assert!(err.starts_with("in.yaml: "), "{err}");
            assert!(!err.contains("hunter2") && !err.contains('\n'), "{err}");
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "{want}: {:?}", started.elapsed());
        }
        // Aliases a hand-written file uses, and merge keys as kubectl applies them, are fine.
        let docs = ordered(
            "base: &labels {app: web, tier: front}\nkind: Deployment\nmetadata: {labels: *labels}\nspec:\n  <<: {replicas: 2}\n  paused: false\n",
        )
        .unwrap();
        assert_eq!(docs[0]["metadata"]["labels"]["tier"], YamlValue::from("front"));
        assert_eq!(docs[0]["spec"]["replicas"], YamlValue::from(2));
        assert!(docs[0]["spec"].get("<<").is_none());
    }

    /// A large stream without aliases (10,000 documents, 3 MB) is within the bound: the bound is per byte.
    #[test]
    fn large_streams_are_within_the_bound() {
        let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {a: b}}\ndata: {k: [1, 2, 3, 4, 5, 6, 7, 8]}\n";
        let text: String = std::iter::repeat_n(doc, 10_000).collect::<Vec<_>>().join("---\n");
        assert_eq!(ordered(&text).unwrap().len(), 10_000);
        let dense = format!("k: [{}]\n", vec!["1"; 500_000].join(","));
        assert_eq!(ordered(&dense).unwrap()[0]["k"].as_sequence().unwrap().len(), 500_000);
    }

    #[test]
    fn directories_skip_hidden_and_non_manifest_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), "").unwrap();
        std::fs::write(dir.path().join("a.json"), "{}").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        std::fs::create_dir(dir.path().join("..data")).unwrap();
        std::fs::write(dir.path().join(".hidden.yaml"), "").unwrap();
        let files = manifest_files(dir.path()).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, ["a.json", "b.yaml"]);
    }

    /// `serve --secrets-dir` reduces each object as it is read; the index is the one the same objects make applied
    /// one by one, as watch events (pull Secrets of both types, one without payload, a Secret of another type under
    /// a distribution's name, a later Secret of the same name, namespaces and a ClusterPullSecret).
    #[test]
    fn objects_reduced_as_they_are_read_make_the_index_of_the_objects() {
        let text = r#"
apiVersion: v1
kind: Namespace
metadata: {name: team-a, labels: {tier: internal}}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b, labels: {tier: internal}}
---
apiVersion: pullsecret-injector.io/v1alpha1
kind: ClusterPullSecret
metadata: {name: corp}
spec:
  secretRef: {namespace: platform, name: corp-source}
  namespaceSelector: {matchLabels: {tier: internal}}
---
apiVersion: v1
kind: Secret
metadata: {name: corp-source, namespace: platform}
type: kubernetes.io/dockerconfigjson
stringData: {.dockerconfigjson: '{"auths":{"corp.example.com":{"auth":"dTpw"}}}'}
---
apiVersion: v1
kind: Secret
metadata: {name: quay, namespace: team-a}
type: kubernetes.io/dockerconfigjson
stringData: {.dockerconfigjson: '{"auths":{"quay.io":{"auth":"dTpw"}}}'}
---
apiVersion: v1
kind: Secret
metadata: {name: quay, namespace: team-a}
type: kubernetes.io/dockerconfigjson
stringData: {.dockerconfigjson: '{"auths":{"quay.io/later":{"auth":"dTpw"}}}'}
---
apiVersion: v1
kind: Secret
metadata: {name: legacy}
type: kubernetes.io/dockercfg
stringData: {.dockercfg: '{"gcr.io":{"auth":"dTpw"}}'}
---
apiVersion: v1
kind: Secret
metadata: {name: empty, namespace: team-a}
type: kubernetes.io/dockerconfigjson
---
apiVersion: v1
kind: Secret
metadata: {name: corp, namespace: team-b}
type: Opaque
"#;
        let mut manifests = Manifests::default();
        manifests.add_documents(Path::new("world.yaml"), text, "default").unwrap();
        let read = manifests.index();
        let mut one_by_one = CredentialIndex::new();
        manifests.namespaces.iter().for_each(|ns| one_by_one.apply_namespace(ns));
        manifests.cluster_pull_secrets.iter().for_each(|cps| one_by_one.apply_cluster_pull_secret(cps));
        manifests.secrets.iter().for_each(|secret| one_by_one.apply_secret(secret));
        assert_eq!(
            (read.secret_count(), read.namespace_count(), read.distribution_count()),
            (one_by_one.secret_count(), one_by_one.namespace_count(), one_by_one.distribution_count())
        );
        assert_eq!(read.secret_count(), 3, "corp-source, quay (the later one) and legacy");
        for ns in ["platform", "team-a", "team-b", "default"] {
            assert_eq!(read.view(ns), one_by_one.view(ns), "{ns}");
        }
        let names = |ns: &str| read.view(ns).secrets.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        assert_eq!(names("team-a"), ["corp", "quay"], "distributed, and the namespace's own");
        assert_eq!(names("team-b"), Vec::<String>::new(), "an Opaque Secret holds the distribution's name");
        assert_eq!(read.view("team-a").get("quay").unwrap().keys, Ok(vec!["quay.io/later".to_string()]));

        // The directory source reads the same objects file by file, reduced on the way.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("world.yaml"), text).unwrap();
        let from_dir = IndexInputs::load(&[dir.path().to_path_buf()], "default", IndexLimits::default()).unwrap();
        let from_dir = from_dir.index();
        for ns in ["platform", "team-a", "team-b", "default"] {
            assert_eq!(from_dir.view(ns), read.view(ns), "{ns}");
        }
    }
}
