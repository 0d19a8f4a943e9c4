//! Decoding of pull-Secret payloads (`kubernetes.io/dockerconfigjson`, `kubernetes.io/dockercfg`)
//! exactly as the kubelet does it (spec §2.A R1–R4, §2.B R8–R12, §5 D1–D32, §7).
//!
//! The kubelet decodes these payloads with Go `encoding/json` into `DockerConfigJSON` / `DockerConfig`.
//! A Secret it cannot decode breaks the pulls of every image of the Pod (R4), so the webhook must accept
//! and reject exactly the same payloads. The Go behaviour reproduced here:
//!
//! - Field names match case-insensitively under Unicode simple folding (`AUTHS`, `Auth`, `uſername`).
//! - Keys are seen in document order, duplicates included: the last value wins for a string field, a
//!   second `auths` object merges into the same map, `"auths": null` drops the map, `null` leaves a
//!   string field as it was.
//! - Entries: `username`, `password`, `email`, `auth` must be strings or null; any other field is
//!   ignored whatever its type; an entry must be an object or null.
//! - Syntax is strict (no BOM, no trailing garbage, no control characters in strings), while invalid
//!   UTF-8 and lone surrogate escapes inside strings silently become U+FFFD.
//! - `auth` is base64 in Go's lenient flavour (R10, `decode_auth`).
//!
//! Parsing uses serde_json's streaming deserializer with visitors that see every key/value pair. Two
//! Go behaviours serde_json cannot express are handled by a lexical pre-pass (`go_normalize`):
//! U+FFFD for lone surrogate escapes (serde_json's validating mode rejects them, and its raw-bytes mode
//! lets control characters through and cannot tell an escaped surrogate from raw bytes) and Go's
//! nesting limit (serde_json skips ignored values at any depth).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The two Secret types whose payload the kubelet reads as registry credentials (R1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// `kubernetes.io/dockerconfigjson`: `{"auths": {<key>: <entry>}}` under `.dockerconfigjson`.
    DockerConfigJson,
    /// `kubernetes.io/dockercfg`: the legacy `{<key>: <entry>}` under `.dockercfg`.
    DockerCfg,
}

impl SecretKind {
    /// Both kinds, in the order the kubelet tests them.
    pub const ALL: [Self; 2] = [Self::DockerConfigJson, Self::DockerCfg];

    /// The kind a Secret `type` names, exactly (the type is case-sensitive); `None` for every other type.
    pub fn of_type(secret_type: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.secret_type() == secret_type)
    }

    /// The Secret `type` that selects this payload.
    pub const fn secret_type(self) -> &'static str {
        match self {
            Self::DockerConfigJson => "kubernetes.io/dockerconfigjson",
            Self::DockerCfg => "kubernetes.io/dockercfg",
        }
    }

    /// The `data` key that holds the payload.
    pub const fn data_key(self) -> &'static str {
        match self {
            Self::DockerConfigJson => ".dockerconfigjson",
            Self::DockerCfg => ".dockercfg",
        }
    }
}

/// R1/R2: which payload of a Secret the kubelet reads, from its `type` and data keys (`payload_of` looks a data key
/// up). `None` means the kubelet silently ignores the Secret: another type, a data key that does not belong to the
/// type (D31), or an empty payload. The one copy of this rule: `core::credentials::pull_payload` applies it to a
/// Kubernetes Secret for every caller.
pub fn classify<'a>(
    secret_type: Option<&str>,
    payload_of: impl FnOnce(&str) -> Option<&'a [u8]>,
) -> Option<(SecretKind, &'a [u8])> {
    // The type must be exactly one of the two, and the payload must sit under that type's own key, non-empty.
    let kind = SecretKind::of_type(secret_type?)?;
    let payload = payload_of(kind.data_key())?;
    (!payload.is_empty()).then_some((kind, payload))
}

/// One registry entry as the kubelet keeps it (R12): only username, password and email survive;
/// `auth` has been folded into username/password (R9) and token fields are dropped (D19, D20).
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    /// The registry key exactly as written in the payload (not normalized; see R13–R16).
    pub key: String,
    pub username: String,
    pub password: String,
    pub email: String,
}

impl RegistryEntry {
    /// D32: the entry as the kubelet's `DockerConfigEntry.MarshalJSON` writes it: empty
    /// `username`/`password`/`email` omitted, `auth` always set to base64(`username:password`), and
    /// strings escaped like Go's `json.Marshal`. Contains the credentials: never log it.
    pub fn to_config_entry_json(&self) -> String {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.username, self.password));
        let fields = [
            ("username", self.username.as_str()),
            ("password", self.password.as_str()),
            ("email", self.email.as_str()),
            ("auth", auth.as_str()),
        ];
        let mut out = String::from("{");
        // `omitempty` on every field; `auth` is never empty because it encodes at least ":".
        for (name, value) in fields.into_iter().filter(|(_, value)| !value.is_empty()) {
            if out.len() > 1 {
                out.push(',');
            }
            push_go_json_string(&mut out, name);
            out.push(':');
            push_go_json_string(&mut out, value);
        }
        out.push('}');
        out
    }
}

impl fmt::Debug for RegistryEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryEntry")
            .field("key", &redact_userinfo(&self.key))
            .field("username", &self.username)
            .field("password", &Redacted(&self.password))
            .field("email", &self.email)
            .finish()
    }
}

/// Shows whether a secret is set, never its value.
struct Redacted<'a>(&'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "<redacted>" })
    }
}

/// Why the kubelet would fail to decode a payload (R4: such a Secret breaks every pull of the Pod).
/// Messages say what and where; they never contain a credential, and registry keys in them are quoted,
/// shortened and stripped of any `user:password@`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON at all: Go's syntax check fails before anything is decoded.
    #[error("invalid JSON at line {line} column {column}: {reason}")]
    Syntax { line: usize, column: usize, reason: String },
    /// Nested deeper than Go's `encoding/json` scanner allows.
    #[error("invalid JSON: nested more than {GO_MAX_NESTING_DEPTH} levels deep")]
    TooDeep,
    /// A value of the wrong JSON type where the kubelet's Go types expect something else.
    #[error("{path} must be {expected}, found {found}")]
    WrongType { path: String, expected: &'static str, found: &'static str },
    /// R10/R11: `auth` is not base64 as the kubelet decodes it.
    #[error("{path} is not valid base64: {reason}")]
    AuthNotBase64 { path: String, reason: String },
    /// R10.4/R11: the decoded `auth` has no `:` between username and password.
    #[error("{path} does not decode to \"username:password\" (no ':')")]
    AuthWithoutColon { path: String },
}

/// Go's `encoding/json` scanner rejects documents nested deeper than this (`maxNestingDepth`).
const GO_MAX_NESTING_DEPTH: usize = 10_000;

/// Keys and names in error messages are cut to this many characters so a warning stays short.
const MAX_SHOWN_CHARS: usize = 80;

/// Full decode (for `verify`). Entries come in document order (the kubelet's Go map has no order);
/// a key written twice keeps its last value at its first position, like a map.
pub fn decode(kind: SecretKind, payload: &[u8]) -> Result<Vec<RegistryEntry>, DecodeError> {
    decode_with(kind, payload, true)
}

/// Same validation as [`decode`] (including `auth`), but keeps only the registry keys as written:
/// what matching needs, never credentials.
pub fn decode_keys(kind: SecretKind, payload: &[u8]) -> Result<Vec<String>, DecodeError> {
    // A new vector of exactly the keys: collecting in place would keep the entries' allocation (four
    // `RegistryEntry`s, 384 bytes, for one key) for as long as the index keeps the keys.
    decode_with(kind, payload, false).map(|entries| {
        let mut keys = Vec::with_capacity(entries.len());
        keys.extend(entries.into_iter().map(|e| e.key));
        keys
    })
}

fn decode_with(kind: SecretKind, payload: &[u8], keep_credentials: bool) -> Result<Vec<RegistryEntry>, DecodeError> {
    let text = go_lossy_utf8(payload);
    let text = go_normalize(&text)?;
    let mut ctx = Ctx { keep_credentials, registry: None, aborting: None, saved: None };
    let mut de = serde_json::Deserializer::from_str(&text);
    let parsed = match kind {
        SecretKind::DockerConfigJson => ObjectSeed(ConfigJsonDocument { ctx: &mut ctx }).deserialize(&mut de),
        SecretKind::DockerCfg => ObjectSeed(RegistryMap { ctx: &mut ctx, parent: None }).deserialize(&mut de),
    };
    // Go checks the syntax of the whole document before decoding, so a syntax error anywhere wins.
    parsed.and_then(|()| de.end()).map_err(syntax_error)?;
    ctx.finish()
}

/// Decoding state shared by the visitors. Errors are recorded, not returned, so that parsing goes on
/// and a later syntax error is reported instead, as Go does. Go aborts on an error inside a registry
/// entry (it comes from `DockerConfigEntry.UnmarshalJSON`) but only saves a type error elsewhere and
/// returns it at the end, so an entry error takes precedence over an earlier saved one.
struct Ctx {
    keep_credentials: bool,
    /// The registry map; `None` is Go's nil map (absent, or set to `null`).
    registry: Option<Registry>,
    aborting: Option<DecodeError>,
    saved: Option<DecodeError>,
}

impl Ctx {
    fn abort(&mut self, error: DecodeError) {
        self.aborting.get_or_insert(error);
    }

    fn save(&mut self, error: DecodeError) {
        self.saved.get_or_insert(error);
    }

    fn finish(self) -> Result<Vec<RegistryEntry>, DecodeError> {
        match self.aborting.or(self.saved) {
            Some(error) => Err(error),
            None => Ok(self.registry.map(|r| r.entries).unwrap_or_default()),
        }
    }
}

/// A Go `map[string]DockerConfigEntry` that remembers document order.
#[derive(Default)]
struct Registry {
    entries: Vec<RegistryEntry>,
    position: HashMap<String, usize>,
}

impl Registry {
    fn insert(&mut self, entry: RegistryEntry) {
        match self.position.get(&entry.key) {
            Some(&at) => self.entries[at] = entry,
            None => {
                self.position.insert(entry.key.clone(), self.entries.len());
                self.entries.push(entry);
            }
        }
    }
}

#[derive(Default)]
struct Credentials {
    username: String,
    password: String,
    email: String,
}

// --- JSON positions ------------------------------------------------------------------------------

/// A position that Go decodes into a struct or a map: an object fills it, `null` is handled per
/// target, any other JSON type is a type error.
trait ObjectTarget<'de>: Sized {
    type Output;
    fn object<A: MapAccess<'de>>(self, map: A) -> Result<Self::Output, A::Error>;
    fn null(self) -> Self::Output;
    fn wrong_type(self, found: &'static str) -> Self::Output;
}

struct ObjectSeed<T>(T);

impl<'de, T: ObjectTarget<'de>> DeserializeSeed<'de> for ObjectSeed<T> {
    type Value = T::Output;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<T::Output, D::Error> {
        deserializer.deserialize_any(self)
    }
}

// Every `visit_*` that serde_json's `deserialize_any` can call is implemented, so serde's default
// "invalid type" errors (which quote the offending value) never occur.
impl<'de, T: ObjectTarget<'de>> Visitor<'de> for ObjectSeed<T> {
    type Value = T::Output;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED_OBJECT)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T::Output, A::Error> {
        self.0.object(map)
    }

    fn visit_unit<E: de::Error>(self) -> Result<T::Output, E> {
        Ok(self.0.null())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<T::Output, E> {
        Ok(self.0.wrong_type(FOUND_BOOLEAN))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<T::Output, E> {
        Ok(self.0.wrong_type(FOUND_NUMBER))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<T::Output, E> {
        Ok(self.0.wrong_type(FOUND_NUMBER))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<T::Output, E> {
        Ok(self.0.wrong_type(FOUND_NUMBER))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<T::Output, E> {
        Ok(self.0.wrong_type(FOUND_STRING))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T::Output, A::Error> {
        drain_seq(seq)?;
        Ok(self.0.wrong_type(FOUND_ARRAY))
    }
}

const FOUND_STRING: &str = "a string";
const FOUND_NUMBER: &str = "a number";
const FOUND_BOOLEAN: &str = "a boolean";
const FOUND_ARRAY: &str = "an array";
const FOUND_OBJECT: &str = "an object";
const EXPECTED_OBJECT: &str = "an object or null";
const EXPECTED_STRING: &str = "a string or null";

/// Reads and drops a sequence's elements (a lenient visitor's answer to a shape it does not take; also the Pod
/// view's, `core::pod`).
pub(crate) fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads and drops a map's entries (as [`drain_seq`]).
pub(crate) fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A value Go decodes into a `string`: a string sets it, `null` leaves it as it was, anything else
/// is a type error.
enum StringValue {
    Str(String),
    Null,
    Wrong(&'static str),
}

impl<'de> de::Deserialize<'de> for StringValue {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StringValueVisitor)
    }
}

struct StringValueVisitor;

impl<'de> Visitor<'de> for StringValueVisitor {
    type Value = StringValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED_STRING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<StringValue, E> {
        Ok(StringValue::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<StringValue, E> {
        Ok(StringValue::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<StringValue, E> {
        Ok(StringValue::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<StringValue, E> {
        Ok(StringValue::Wrong(FOUND_BOOLEAN))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<StringValue, E> {
        Ok(StringValue::Wrong(FOUND_NUMBER))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<StringValue, E> {
        Ok(StringValue::Wrong(FOUND_NUMBER))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<StringValue, E> {
        Ok(StringValue::Wrong(FOUND_NUMBER))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<StringValue, A::Error> {
        drain_seq(seq)?;
        Ok(StringValue::Wrong(FOUND_ARRAY))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StringValue, A::Error> {
        drain_map(map)?;
        Ok(StringValue::Wrong(FOUND_OBJECT))
    }
}

/// The whole `.dockerconfigjson` document: Go's `DockerConfigJSON{Auths, HTTPHeaders}` (R1, R3, R8).
struct ConfigJsonDocument<'c> {
    ctx: &'c mut Ctx,
}

impl<'de> ObjectTarget<'de> for ConfigJsonDocument<'_> {
    type Output = ();

    fn object<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key::<String>()? {
            if go_field_eq(&name, "auths") {
                // Go decodes into the existing map, so `auths` and `Auths` merge (§7).
                map.next_value_seed(ObjectSeed(RegistryMap { ctx: &mut *self.ctx, parent: Some(&name) }))?;
            } else if go_field_eq(&name, "HttpHeaders") {
                // Unused for matching, but a wrongly typed value is fatal (§7 item 5).
                map.next_value_seed(ObjectSeed(HttpHeaders { ctx: &mut *self.ctx, field: &name }))?;
            } else {
                // `credsStore`, `credHelpers`, …: not part of the Go type (D28), any type is fine.
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    // A document that is just `null` leaves the struct untouched: no entries (§7).
    fn null(self) {}

    fn wrong_type(self, found: &'static str) {
        self.ctx.save(DecodeError::WrongType { path: DOCUMENT.to_owned(), expected: EXPECTED_OBJECT, found });
    }
}

const DOCUMENT: &str = "the document";

/// Go's `map[string]DockerConfigEntry`: the value of `auths`, or the whole `.dockercfg` document.
struct RegistryMap<'c, 'n> {
    ctx: &'c mut Ctx,
    /// The `auths` field name as written; `None` for the `.dockercfg` document itself.
    parent: Option<&'n str>,
}

impl<'de> ObjectTarget<'de> for RegistryMap<'_, '_> {
    type Output = ();

    fn object<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut registry = self.ctx.registry.take().unwrap_or_default();
        while let Some(key) = map.next_key::<String>()? {
            let credentials =
                map.next_value_seed(ObjectSeed(EntryTarget { ctx: &mut *self.ctx, parent: self.parent, key: &key }))?;
            if let Some(Credentials { username, password, email }) = credentials {
                registry.insert(RegistryEntry { key, username, password, email });
            }
        }
        self.ctx.registry = Some(registry);
        Ok(())
    }

    // `null` makes the map nil, dropping what earlier `auths` fields put in it (D24, §7).
    fn null(self) {
        self.ctx.registry = None;
    }

    // D23, §7 item 5: `{"auths": []}` (or a `.dockercfg` that is an array) is fatal.
    fn wrong_type(self, found: &'static str) {
        let path = self.parent.map_or_else(|| DOCUMENT.to_owned(), quote_name);
        self.ctx.save(DecodeError::WrongType { path, expected: EXPECTED_OBJECT, found });
    }
}

/// One registry entry: Go's `DockerConfigEntry.UnmarshalJSON` (R8–R11). `None` when it failed.
struct EntryTarget<'c, 'n> {
    ctx: &'c mut Ctx,
    parent: Option<&'n str>,
    key: &'n str,
}

impl EntryTarget<'_, '_> {
    /// `auths["reg.io"]` (or `["reg.io"]` in a `.dockercfg`), for messages.
    fn path(&self) -> String {
        format!("{}[{}]", self.parent.map(quote_name).unwrap_or_default(), display_key(self.key))
    }
}

impl<'de> ObjectTarget<'de> for EntryTarget<'_, '_> {
    type Output = Option<Credentials>;

    fn object<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Credentials>, A::Error> {
        let mut fields = Credentials::default();
        let mut auth = String::new();
        let mut type_error = None;
        while let Some(name) = map.next_key::<String>()? {
            let slot = if go_field_eq(&name, "username") {
                &mut fields.username
            } else if go_field_eq(&name, "password") {
                &mut fields.password
            } else if go_field_eq(&name, "email") {
                &mut fields.email
            } else if go_field_eq(&name, "auth") {
                &mut auth
            } else {
                // `identitytoken`, `registrytoken`, `serveraddress`, …: dropped whatever their type (D19, D20, §7).
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            match map.next_value::<StringValue>()? {
                StringValue::Str(value) => *slot = value,
                // Go leaves a string field untouched on `null`, even after an earlier value.
                StringValue::Null => {}
                StringValue::Wrong(found) => {
                    type_error.get_or_insert_with(|| DecodeError::WrongType {
                        path: format!("{}.{}", self.path(), quote_name(&name)),
                        expected: EXPECTED_STRING,
                        found,
                    });
                }
            }
        }
        if let Some(error) = type_error {
            self.ctx.abort(error);
            return Ok(None);
        }
        // R9: a non-empty `auth` overrides username and password (D6, D18).
        if !auth.is_empty() {
            match decode_auth(&auth) {
                Ok((username, password)) => {
                    fields.username = username;
                    fields.password = password;
                }
                Err(problem) => {
                    self.ctx.abort(problem.into_error(format!("{}.auth", self.path())));
                    return Ok(None);
                }
            }
        }
        if !self.ctx.keep_credentials {
            fields = Credentials::default();
        }
        Ok(Some(fields))
    }

    // D26: `UnmarshalJSON("null")` decodes nothing, leaving an entry with empty fields.
    fn null(self) -> Option<Credentials> {
        Some(Credentials::default())
    }

    fn wrong_type(self, found: &'static str) -> Option<Credentials> {
        let path = self.path();
        self.ctx.abort(DecodeError::WrongType { path, expected: EXPECTED_OBJECT, found });
        None
    }
}

/// `HttpHeaders`: Go's `map[string]string`, unused but type-checked (§7 item 5).
struct HttpHeaders<'c, 'n> {
    ctx: &'c mut Ctx,
    field: &'n str,
}

impl<'de> ObjectTarget<'de> for HttpHeaders<'_, '_> {
    type Output = ();

    fn object<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key::<String>()? {
            if let StringValue::Wrong(found) = map.next_value::<StringValue>()? {
                self.ctx.save(DecodeError::WrongType {
                    path: format!("{}[{}]", quote_name(self.field), quote(&name)),
                    expected: EXPECTED_STRING,
                    found,
                });
            }
        }
        Ok(())
    }

    fn null(self) {}

    fn wrong_type(self, found: &'static str) {
        let path = quote_name(self.field);
        self.ctx.save(DecodeError::WrongType { path, expected: EXPECTED_OBJECT, found });
    }
}

/// Whether a JSON key selects the Go struct field `field` (ASCII). Go's `encoding/json` compares
/// names after Unicode simple case folding: ASCII letters ignore case, and the only non-ASCII
/// characters that fold onto ASCII letters are 'ſ' (U+017F, onto 's') and the Kelvin sign 'K'
/// (U+212A, onto 'k'). 'İ'/'ı' do not fold onto 'i'.
fn go_field_eq(key: &str, field: &str) -> bool {
    let mut key_chars = key.chars();
    field.chars().all(|f| {
        key_chars.next().is_some_and(|k| {
            let k = match k {
                '\u{17F}' => 's',
                '\u{212A}' => 'k',
                k => k,
            };
            k.eq_ignore_ascii_case(&f)
        })
    }) && key_chars.next().is_none()
}

// --- Go's string handling ----------------------------------------------------------------------

/// Bytes to text the way Go's JSON decoder and `string(bytes)` re-encoding treat invalid UTF-8: every
/// byte that does not start a valid sequence becomes one U+FFFD.
fn go_lossy_utf8(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        // Each byte of an invalid chunk is one failed `utf8.DecodeRune` in Go (the bytes after the
        // first are continuation bytes, which never start a sequence).
        out.extend(chunk.invalid().iter().map(|_| char::REPLACEMENT_CHARACTER));
    }
    Cow::Owned(out)
}

/// The lexical pre-pass: rewrites each `\uXXXX` escape that Go decodes to U+FFFD (a surrogate that
/// is not a high surrogate directly followed by an escaped low one) to `\ufffd`, so that serde_json's
/// strict string parsing accepts exactly what Go accepts; and enforces Go's nesting limit, which
/// serde_json does not apply to skipped values. Everything else is left to serde_json.
fn go_normalize(text: &str) -> Result<Cow<'_, str>, DecodeError> {
    let bytes = text.as_bytes();
    let mut lone_surrogates = Vec::new();
    let mut in_string = false;
    let mut depth = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        at += 1;
        if !in_string {
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > GO_MAX_NESTING_DEPTH {
                        return Err(DecodeError::TooDeep);
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = false,
            b'\\' => match (bytes.get(at), hex4(bytes, at + 1)) {
                (Some(b'u'), Some(unit)) => {
                    let escape = at - 1;
                    at += 5;
                    if (0xD800..0xDC00).contains(&unit)
                        && bytes.get(at..at + 2) == Some(b"\\u")
                        && hex4(bytes, at + 2).is_some_and(|low| (0xDC00..0xE000).contains(&low))
                    {
                        at += 6; // a valid pair
                    } else if (0xD800..0xE000).contains(&unit) {
                        lone_surrogates.push(escape);
                    }
                }
                // Any other escape is one ASCII byte (or invalid, which serde_json reports); skipping
                // it keeps an escaped quote from ending the string.
                (Some(next), _) if next.is_ascii() => at += 1,
                _ => {}
            },
            _ => {}
        }
    }
    if lone_surrogates.is_empty() {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for escape in lone_surrogates {
        out.push_str(&text[copied..escape]);
        out.push_str("\\ufffd");
        copied = escape + 6;
    }
    out.push_str(&text[copied..]);
    Ok(Cow::Owned(out))
}

/// The four hex digits of a `\u` escape starting at `at`, as Go's `getu4` reads them.
fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    digits.iter().try_fold(0u32, |acc, &d| Some(acc * 16 + char::from(d).to_digit(16)?))
}

/// Go's `json.Marshal` string encoding (HTML-safe by default; `\b` and `\f` short forms since Go 1.22).
fn push_go_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

// --- auth (R10, R11) ---------------------------------------------------------------------------

/// Go's `base64.StdEncoding`: padding required and exact; like Go (not `Strict`), nonzero trailing
/// bits are accepted (`YR==` decodes to "a", §7).
const GO_STD_ENCODING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// Go's `base64.RawStdEncoding`: no padding allowed; trailing bits accepted (`OgB` decodes, §7).
const GO_RAW_STD_ENCODING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

enum AuthProblem {
    NotBase64(String),
    NoColon,
}

impl AuthProblem {
    fn into_error(self, path: String) -> DecodeError {
        match self {
            Self::NotBase64(reason) => DecodeError::AuthNotBase64 { path, reason },
            Self::NoColon => DecodeError::AuthWithoutColon { path },
        }
    }
}

/// `decodeDockerConfigFieldAuth` (R10): the decoding and the problem found, never the value.
fn decode_auth(auth: &str) -> Result<(String, String), AuthProblem> {
    // R10.1/2: the padded decoder is chosen when the value ends with '=' once surrounding whitespace
    // is trimmed (Go's TrimSpace), but the untrimmed value is decoded.
    let padded = auth.trim_end().ends_with('=');
    // R10.3: both Go decoders skip '\r' and '\n' anywhere, even between two '='; everything else
    // outside the alphabet, spaces and tabs included, is an error.
    let kept: Vec<u8> = auth.bytes().filter(|b| !matches!(b, b'\r' | b'\n')).collect();
    let engine = if padded { &GO_STD_ENCODING } else { &GO_RAW_STD_ENCODING };
    let decoded =
        engine.decode(&kept).map_err(|error| AuthProblem::NotBase64(describe_base64_error(&error, auth, padded)))?;
    // R10.4: split at the first ':'; one must exist. Empty parts are fine (D16, D17).
    let colon = decoded.iter().position(|&b| b == b':').ok_or(AuthProblem::NoColon)?;
    Ok((go_lossy_utf8(&decoded[..colon]).into_owned(), go_lossy_utf8(&decoded[colon + 1..]).into_owned()))
}

/// A base64 error in words, with byte offsets into the original `auth` value; never the bytes.
fn describe_base64_error(error: &base64::DecodeError, auth: &str, padded: bool) -> String {
    use base64::DecodeError as E;
    // Offsets from the base64 crate count only the bytes kept after dropping '\r' and '\n'.
    let original_offset = |kept_offset: usize| {
        auth.bytes()
            .enumerate()
            .filter(|(_, b)| !matches!(b, b'\r' | b'\n'))
            .nth(kept_offset)
            .map_or(auth.len(), |(at, _)| at)
    };
    match *error {
        E::InvalidByte(offset, b'=') => {
            format!("unexpected '=' at byte {}", original_offset(offset))
        }
        E::InvalidByte(offset, _) => {
            format!("character outside the standard base64 alphabet at byte {}", original_offset(offset))
        }
        E::InvalidLastSymbol(offset, _) => {
            format!("invalid last character at byte {}", original_offset(offset))
        }
        E::InvalidLength(_) if padded => "wrong length for padded base64".to_owned(),
        E::InvalidLength(_) => "truncated (wrong length for unpadded base64)".to_owned(),
        E::InvalidPadding if padded => "wrong '=' padding".to_owned(),
        E::InvalidPadding => "unexpected '=' padding".to_owned(),
    }
}

// --- messages ----------------------------------------------------------------------------------

fn syntax_error(error: serde_json::Error) -> DecodeError {
    use serde_json::error::Category;
    let reason = match error.classify() {
        // serde_json's syntax messages are fixed texts that never quote the input.
        Category::Syntax | Category::Eof => {
            let message = error.to_string();
            message.rsplit_once(" at line ").map_or(message.clone(), |(reason, _)| reason.to_owned())
        }
        // The visitors never raise data errors; a fixed text keeps any value serde might quote out.
        Category::Data | Category::Io => "unexpected value".to_owned(),
    };
    DecodeError::Syntax { line: error.line(), column: error.column(), reason }
}

/// A registry key for a message: `user:password@` redacted, then [`quote`]d.
fn display_key(key: &str) -> String {
    quote(&redact_userinfo(key))
}

/// A field name as written (`Auths`, `uſername`): bare when it is a plain word, else quoted.
fn quote_name(name: &str) -> String {
    if !name.is_empty() && name.chars().all(char::is_alphanumeric) && name.chars().count() <= MAX_SHOWN_CHARS {
        name.to_owned()
    } else {
        quote(name)
    }
}

/// Quoted and escaped (one line whatever it contains) and cut to a bounded length.
fn quote(text: &str) -> String {
    let mut shown: String = text.chars().take(MAX_SHOWN_CHARS).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    crate::safe_text::escape(&format!("{shown:?}")).into_owned()
}

/// A key with its userinfo (`user:password@`, in any spelling) replaced by `<redacted>`: see
/// [`crate::safe_text::redact_userinfo`], the one implementation every output uses.
pub fn redact_userinfo(key: &str) -> Cow<'_, str> {
    crate::safe_text::redact_userinfo(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    use SecretKind::{DockerCfg, DockerConfigJson};

    /// The index keeps the keys for as long as the Secret exists: no spare capacity (the decoded entries'
    /// allocation was kept when the keys were collected in place).
    #[test]
    fn decoded_keys_hold_no_spare_capacity() {
        let keys = decode_keys(DockerConfigJson, br#"{"auths":{"r.io":{"auth":"dXNlcjpwYXNz"}}}"#).expect("decodes");
        assert_eq!(keys, ["r.io"]);
        assert_eq!(keys.capacity(), 1);
    }

    /// The class of an error, for tables.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Fail {
        Syntax,
        TooDeep,
        WrongType,
        NotBase64,
        NoColon,
    }

    fn fail_of(error: &DecodeError) -> Fail {
        match error {
            DecodeError::Syntax { .. } => Fail::Syntax,
            DecodeError::TooDeep => Fail::TooDeep,
            DecodeError::WrongType { .. } => Fail::WrongType,
            DecodeError::AuthNotBase64 { .. } => Fail::NotBase64,
            DecodeError::AuthWithoutColon { .. } => Fail::NoColon,
        }
    }

    /// (key, username, password) of each entry, in document order.
    type Rows = &'static [(&'static str, &'static str, &'static str)];
    type Outcome = Result<Vec<(String, String, String)>, Fail>;
    /// A whole payload: (vector id, kind, payload, expected entries or error class).
    type DocumentCase<'a> = (&'a str, SecretKind, &'a str, Result<Rows, Fail>);
    /// One entry or one `auth` value: (vector id, JSON or auth text, expected username/password or error class).
    type FieldCase = (&'static str, &'static str, Result<(&'static str, &'static str), Fail>);

    const FOO_BAR: Rows = &[("r.io", "foo", "bar")];
    const EMPTY_ENTRY: Rows = &[("r.io", "", "")];

    fn owned(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        rows.iter().map(|(k, u, p)| ((*k).to_owned(), (*u).to_owned(), (*p).to_owned())).collect()
    }

    /// Decodes with both entry points and checks that they agree.
    fn run(kind: SecretKind, payload: &[u8]) -> Outcome {
        let full = decode(kind, payload).map_err(|e| fail_of(&e));
        let keys = decode_keys(kind, payload).map_err(|e| fail_of(&e));
        assert_eq!(keys, full.as_ref().map(|entries| entries.iter().map(|e| e.key.clone()).collect()).map_err(|f| *f));
        full.map(|entries| entries.into_iter().map(|e| (e.key, e.username, e.password)).collect())
    }

    fn check_documents(table: &[DocumentCase<'_>]) {
        for (id, kind, payload, want) in table {
            assert_eq!(run(*kind, payload.as_bytes()), want.map(owned), "{id}: {kind:?} {payload:?}");
        }
    }

    #[rustfmt::skip]
    #[test]
    fn spec_document_vectors() {
        check_documents(&[
            ("D1", DockerConfigJson, r#"{"auths":{"test.registry.io":{"auth":"dXNlcjpwYXNzd29yZA=="}}}"#, Ok(&[("test.registry.io", "user", "password")])),
            ("D2", DockerCfg, r#"{"test.registry.io":{"auth":"dXNlcjpwYXNzd29yZA=="}}"#, Ok(&[("test.registry.io", "user", "password")])),
            ("D3", DockerConfigJson, r#"{"auths":{"test.registry.io":{"username":"user","password":"password"}}}"#, Ok(&[("test.registry.io", "user", "password")])),
            ("D21", DockerConfigJson, r#"{"r.io":{"auth":"Zm9vOmJhcg=="}}"#, Ok(&[])),
            ("D22", DockerCfg, r#"{"auths":{"r.io":{"auth":"Zm9vOmJhcg=="}}}"#, Ok(&[("auths", "", "")])),
            ("D23", DockerConfigJson, r#"{"auths":[]}"#, Err(Fail::WrongType)),
            ("D24 {}", DockerConfigJson, "{}", Ok(&[])),
            ("D24 null auths", DockerConfigJson, r#"{"auths":null}"#, Ok(&[])),
            ("D25", DockerConfigJson, r#"{"Auths":{"r.io":{"Auth":"Zm9vOmJhcg=="}}}"#, Ok(FOO_BAR)),
            ("D26", DockerConfigJson, r#"{"auths":{"r.io":null}}"#, Ok(EMPTY_ENTRY)),
            ("D27", DockerConfigJson, r#"{"auths":{"r.io":{"username":123}}}"#, Err(Fail::WrongType)),
            ("D28", DockerConfigJson, r#"{"auths":{"r.io":{"auth":"Zm9vOmJhcg=="}},"credsStore":"desktop","credHelpers":{"r.io":"x"}}"#, Ok(FOO_BAR)),
            // D29: dropping the unparsable key is the keyring's job (R14); decoding keeps both.
            ("D29", DockerConfigJson, r#"{"auths":{"r.io:abc":{"auth":"Zm9vOmJhcg=="},"ok.io":{"auth":"Zm9vOmJhcg=="}}}"#, Ok(&[("r.io:abc", "foo", "bar"), ("ok.io", "foo", "bar")])),
            // D30: the API server rejects these; should one get through, the kubelet cannot decode it either.
            ("D30 array", DockerConfigJson, "[]", Err(Fail::WrongType)),
            ("D30 string", DockerConfigJson, r#""x""#, Err(Fail::WrongType)),
            ("D30 not JSON", DockerConfigJson, "auths: {}", Err(Fail::Syntax)),
            ("D30 dockercfg array", DockerCfg, "[]", Err(Fail::WrongType)),
        ]);
    }

    /// Entry vectors, each inside both payload shapes.
    #[rustfmt::skip]
    #[test]
    fn spec_entry_vectors() {
        let table: &[FieldCase] = &[
            ("D4", r#"{"username":"foo","password":"bar","email":"foo@example.com"}"#, Ok(("foo", "bar"))),
            ("D5", r#"{"auth":"Zm9vOmJhcg==","email":"foo@example.com"}"#, Ok(("foo", "bar"))),
            ("D6", r#"{"username":"foo","password":"bar","auth":"cGluZzpwb25n"}"#, Ok(("ping", "pong"))),
            ("D7", r#"{"auth":"pants"}"#, Err(Fail::NotBase64)),
            ("D8", r#"{"email": false}"#, Err(Fail::WrongType)),
            ("D18", r#"{"auth":"","username":"foo","password":"bar"}"#, Ok(("foo", "bar"))),
            ("D19", r#"{"identitytoken":"tok"}"#, Ok(("", ""))),
            ("D20", r#"{"auth":"Zm9vOmJhcg==","identitytoken":"t","registrytoken":"r","serveraddress":"s.io"}"#, Ok(("foo", "bar"))),
            ("D26", "null", Ok(("", ""))),
            ("D27", r#"{"username":123}"#, Err(Fail::WrongType)),
            ("§7 {} entry", "{}", Ok(("", ""))),
        ];
        for (id, entry, want) in table {
            for (kind, payload) in [
                (DockerConfigJson, format!(r#"{{"auths":{{"r.io":{entry}}}}}"#)),
                (DockerCfg, format!(r#"{{"r.io":{entry}}}"#)),
            ] {
                let want = want.map(|(u, p)| owned(&[("r.io", u, p)]));
                assert_eq!(run(kind, payload.as_bytes()), want, "{id}: {kind:?} {payload}");
            }
        }
        // D4, D5: email is kept internally (R12).
        for id in ["D4", "D5"] {
            let entry = table.iter().find(|case| case.0 == id).unwrap().1;
            let entries = decode(DockerCfg, format!(r#"{{"r.io":{entry}}}"#).as_bytes()).unwrap();
            assert_eq!(entries[0].email, "foo@example.com", "{id}");
        }
    }

    /// R10 vectors D9–D17 and the §7 "auth field (base64)" facts.
    #[rustfmt::skip]
    #[test]
    fn auth_field_vectors() {
        let table: &[FieldCase] = &[
            ("D9", "cGFudHM=", Err(Fail::NoColon)),
            ("D10", "Zm9vOmJhcg", Ok(("foo", "bar"))),
            ("D11", "Zm9vOm\nJhcg==\n", Ok(("foo", "bar"))),
            ("D12", "Zm9vOmJhcg== ", Err(Fail::NotBase64)),
            ("D13", "Zm9vOmJhcg=", Err(Fail::NotBase64)),
            ("D14", "foo:bar", Err(Fail::NotBase64)),
            ("D15", "dXNlcjpwYTpzcw==", Ok(("user", "pa:ss"))),
            ("D16", "Og==", Ok(("", ""))),
            ("D17", "dXNlcjo=", Ok(("user", ""))),
            ("§7 trailing bits, unpadded", "OgB", Ok(("", "\0"))),
            ("§7 trailing bits, padded", "YR==", Err(Fail::NoColon)),
            ("§7 \\r \\n anywhere", "\r\nZm9v\r\nOmJh\ncg=\n=\r\n", Ok(("foo", "bar"))),
            ("§7 only newlines", "\n\n", Err(Fail::NoColon)),
            ("§7 space inside", "Zm9vOm Jhcg==", Err(Fail::NotBase64)),
            ("§7 leading space", " Zm9vOmJhcg==", Err(Fail::NotBase64)),
            ("§7 tab", "Zm9vOmJhcg\t", Err(Fail::NotBase64)),
            ("§7 URL-safe - _", "-_86", Err(Fail::NotBase64)),
            ("standard + / (bytes FB FF)", "+/86", Ok(("\u{FFFD}\u{FFFD}", ""))),
            ("'=' inside unpadded", "Zm9v=mJhcg", Err(Fail::NotBase64)),
            ("padding only", "====", Err(Fail::NotBase64)),
            ("unpadded, impossible length", "Zm9vO", Err(Fail::NotBase64)),
            ("padded, wrong length", "Zm9v=", Err(Fail::NotBase64)),
            ("data after padding", "Og==Og==", Err(Fail::NotBase64)),
        ];
        for (id, auth, want) in table {
            let auth_json = serde_json::to_string(auth).unwrap();
            let payload = format!(r#"{{"auths":{{"r.io":{{"username":"x","password":"y","auth":{auth_json}}}}}}}"#);
            let want = want.map(|(u, p)| owned(&[("r.io", u, p)]));
            assert_eq!(run(DockerConfigJson, payload.as_bytes()), want, "{id}: {auth:?}");
        }
    }

    /// §7 "JSON decoding" facts, §7 item 5, and the Go `encoding/json` behaviour behind them.
    #[rustfmt::skip]
    #[test]
    fn go_json_semantics() {
        let nested = |levels: usize| format!(r#"{{"x":{}{}}}"#, "[".repeat(levels - 1), "]".repeat(levels - 1));
        let (at_limit, beyond_limit) = (nested(GO_MAX_NESTING_DEPTH), nested(GO_MAX_NESTING_DEPTH + 1));
        check_documents(&[
            ("§7 last scalar wins", DockerConfigJson, r#"{"auths":{"r.io":{"username":"a","username":"foo","password":"bar"}}}"#, Ok(FOO_BAR)),
            ("null leaves a string field as it was", DockerConfigJson, r#"{"auths":{"r.io":{"username":"foo","Username":null,"password":"bar"}}}"#, Ok(FOO_BAR)),
            ("§7 duplicate key: last value, first position", DockerConfigJson, r#"{"auths":{"a.io":{"username":"1"},"b.io":{},"a.io":{"username":"2"}}}"#, Ok(&[("a.io", "2", ""), ("b.io", "", "")])),
            ("duplicate key: value replaced, not merged", DockerCfg, r#"{"a.io":{"username":"u","password":"p"},"a.io":{"username":"v"}}"#, Ok(&[("a.io", "v", "")])),
            ("§7 auths and Auths merge", DockerConfigJson, r#"{"auths":{"a.io":{}},"Auths":{"b.io":{}}}"#, Ok(&[("a.io", "", ""), ("b.io", "", "")])),
            ("§7 AUTHS", DockerConfigJson, r#"{"AUTHS":{"a.io":{}}}"#, Ok(&[("a.io", "", "")])),
            ("long s folds onto s", DockerConfigJson, r#"{"auth\u017f":{"a.io":{"u\u017fername":"foo"}}}"#, Ok(&[("a.io", "foo", "")])),
            ("auths null drops merged entries", DockerConfigJson, r#"{"auths":{"a.io":{}},"auths":null}"#, Ok(&[])),
            ("auths after null starts over", DockerConfigJson, r#"{"auths":{"a.io":{}},"auths":null,"auths":{"b.io":{}}}"#, Ok(&[("b.io", "", "")])),
            ("§7 null document", DockerConfigJson, "null", Ok(&[])),
            ("§7 null document, dockercfg", DockerCfg, " null ", Ok(&[])),
            ("§7 whitespace only", DockerConfigJson, " \n\t", Err(Fail::Syntax)),
            ("§7 UTF-8 BOM", DockerConfigJson, "\u{FEFF}{}", Err(Fail::Syntax)),
            ("§7 trailing garbage", DockerConfigJson, "{} x", Err(Fail::Syntax)),
            ("second document", DockerCfg, "{}{}", Err(Fail::Syntax)),
            ("§7 trailing whitespace", DockerConfigJson, "{} \r\n\t ", Ok(&[])),
            ("trailing comma", DockerConfigJson, r#"{"auths":{},}"#, Err(Fail::Syntax)),
            ("single quotes", DockerConfigJson, "{'auths':{}}", Err(Fail::Syntax)),
            ("literal tab in a key", DockerConfigJson, "{\"auths\":{\"a\tb\":{}}}", Err(Fail::Syntax)),
            ("literal newline in an ignored string", DockerConfigJson, "{\"x\":\"a\nb\"}", Err(Fail::Syntax)),
            ("invalid escape", DockerConfigJson, r#"{"auths":{"a\'b":{}}}"#, Err(Fail::Syntax)),
            ("§7 wrongly typed unknown fields", DockerConfigJson, r#"{"credsStore":5,"auths":{"r.io":{"identitytoken":5,"x":[1,{"y":null}],"auth":"Zm9vOmJhcg=="}}}"#, Ok(FOO_BAR)),
            ("huge number in an ignored field", DockerCfg, r#"{"r.io":{"x":1e999999,"username":"foo","password":"bar"}}"#, Ok(FOO_BAR)),
            ("escaped key", DockerCfg, r#"{"a\/b\u002ec":{}}"#, Ok(&[("a/b.c", "", "")])),
            ("§7 lone surrogates", DockerCfg, r#"{"a\ud800.io":{"username":"\udc00"}}"#, Ok(&[("a\u{FFFD}.io", "\u{FFFD}", "")])),
            ("surrogate pair", DockerCfg, r#"{"r.io":{"username":"\ud83d\ude00"}}"#, Ok(&[("r.io", "\u{1F600}", "")])),
            ("high surrogate, then a pair", DockerCfg, r#"{"r.io":{"username":"\ud800\ud800\udc00"}}"#, Ok(&[("r.io", "\u{FFFD}\u{10000}", "")])),
            ("high surrogate, then other escapes", DockerCfg, r#"{"r.io":{"username":"\ud800\u0041\ud800\n"}}"#, Ok(&[("r.io", "\u{FFFD}A\u{FFFD}\n", "")])),
            ("low then high surrogate", DockerCfg, r#"{"r.io":{"username":"\udc00\ud800"}}"#, Ok(&[("r.io", "\u{FFFD}\u{FFFD}", "")])),
            ("escaped backslash before u", DockerCfg, r#"{"r.io":{"username":"\\ud800"}}"#, Ok(&[("r.io", "\\ud800", "")])),
            ("lone surrogate in an ignored field", DockerCfg, r#"{"r.io":{"x":"\udfff"}}"#, Ok(EMPTY_ENTRY)),
            ("nesting at Go's limit", DockerConfigJson, &at_limit, Ok(&[])),
            ("nesting beyond Go's limit", DockerConfigJson, &beyond_limit, Err(Fail::TooDeep)),
            ("§7.5 dockercfg with auths array", DockerCfg, r#"{"auths":[]}"#, Err(Fail::WrongType)),
            ("dockercfg entry string", DockerCfg, r#"{"r.io":"x"}"#, Err(Fail::WrongType)),
            ("dockercfg entry number", DockerCfg, r#"{"r.io":1}"#, Err(Fail::WrongType)),
            ("entry array", DockerConfigJson, r#"{"auths":{"r.io":[]}}"#, Err(Fail::WrongType)),
            ("entry boolean", DockerConfigJson, r#"{"auths":{"r.io":true}}"#, Err(Fail::WrongType)),
            ("auths string", DockerConfigJson, r#"{"auths":"x"}"#, Err(Fail::WrongType)),
            ("auths number", DockerConfigJson, r#"{"auths":0}"#, Err(Fail::WrongType)),
            ("password object", DockerConfigJson, r#"{"auths":{"r.io":{"password":{}}}}"#, Err(Fail::WrongType)),
            ("auth array", DockerConfigJson, r#"{"auths":{"r.io":{"auth":["Zm9vOmJhcg=="]}}}"#, Err(Fail::WrongType)),
            ("§7.5 HttpHeaders array", DockerConfigJson, r#"{"auths":{},"HttpHeaders":[]}"#, Err(Fail::WrongType)),
            ("§7.5 httpheaders number", DockerConfigJson, r#"{"httpheaders":5}"#, Err(Fail::WrongType)),
            ("HttpHeaders value number", DockerConfigJson, r#"{"HTTPHEADERS":{"X-A":1}}"#, Err(Fail::WrongType)),
            ("HttpHeaders strings and null", DockerConfigJson, r#"{"HttpHeaders":{"X-A":"b","X-C":null},"auths":{"r.io":{}}}"#, Ok(EMPTY_ENTRY)),
            ("HttpHeaders null", DockerConfigJson, r#"{"HttpHeaders":null}"#, Ok(&[])),
            ("document number", DockerConfigJson, "5", Err(Fail::WrongType)),
            ("document boolean", DockerCfg, "true", Err(Fail::WrongType)),
            // Which error Go reports: syntax first, then an entry error, then a saved type error.
            ("syntax error after a type error", DockerConfigJson, r#"{"auths":[],"#, Err(Fail::Syntax)),
            ("entry error after a saved type error", DockerConfigJson, r#"{"HttpHeaders":5,"auths":{"r.io":{"auth":"pants"}}}"#, Err(Fail::NotBase64)),
            ("type error stops auth decoding", DockerConfigJson, r#"{"auths":{"r.io":{"auth":"pants","email":1}}}"#, Err(Fail::WrongType)),
        ]);
    }

    #[test]
    fn invalid_utf8_becomes_one_replacement_per_byte() {
        // Go replaces each byte that does not start a valid sequence: 0xFF; 0xE2 0x82 (a cut
        // three-byte sequence) as two; the UTF-8 form of a surrogate as three.
        let mut payload = br#"{"r.io":{"username":""#.to_vec();
        payload.extend_from_slice(b"\xff\xe2\x82x\xed\xa0\x80\",\"password\":\"\xc3\xa9\"}}");
        let want = owned(&[("r.io", "\u{FFFD}\u{FFFD}\u{FFFD}x\u{FFFD}\u{FFFD}\u{FFFD}", "é")]);
        assert_eq!(run(DockerCfg, &payload), Ok(want));
        // Outside a string it is a syntax error.
        assert_eq!(run(DockerCfg, b"{\xff}"), Err(Fail::Syntax));
        // Decoded `auth` bytes too ("/zo=" is FF 3A).
        assert_eq!(run(DockerCfg, br#"{"r.io":{"auth":"/zo="}}"#), Ok(owned(&[("r.io", "\u{FFFD}", "")])));
    }

    #[test]
    fn field_names_fold_like_go() {
        let table = [
            ("auths", "auths", true),
            ("AuThS", "auths", true),
            ("auth\u{17F}", "auths", true),
            ("\u{17F}", "S", true),
            ("\u{212A}ey", "key", true),
            ("ema\u{130}l", "email", false),
            ("ema\u{131}l", "email", false),
            ("auth", "auths", false),
            ("authss", "auths", false),
            ("auth_s", "auths", false),
            ("", "auth", false),
        ];
        for (key, field, want) in table {
            assert_eq!(go_field_eq(key, field), want, "{key:?} vs {field:?}");
        }
    }

    /// R1, R2, D30, D31, C12: the type and its own data key must go together.
    #[rustfmt::skip]
    #[test]
    fn classify_pairs_type_with_its_key() {
        const JSON: &[u8] = br#"{"auths":{}}"#;
        const CFG: &[u8] = b"{}";
        type Case = (&'static str, Option<&'static str>, &'static [(&'static str, &'static [u8])], Option<(SecretKind, &'static [u8])>);
        let table: &[Case] = &[
            ("R1 dockerconfigjson", Some("kubernetes.io/dockerconfigjson"), &[(".dockerconfigjson", JSON)], Some((DockerConfigJson, JSON))),
            ("R1 dockercfg", Some("kubernetes.io/dockercfg"), &[(".dockercfg", CFG)], Some((DockerCfg, CFG))),
            ("R1 both keys: the type decides", Some("kubernetes.io/dockercfg"), &[(".dockerconfigjson", JSON), (".dockercfg", CFG)], Some((DockerCfg, CFG))),
            ("R1 empty payload", Some("kubernetes.io/dockerconfigjson"), &[(".dockerconfigjson", b"")], None),
            ("D31 dockercfg type, .dockerconfigjson key", Some("kubernetes.io/dockercfg"), &[(".dockerconfigjson", JSON)], None),
            ("D31 dockerconfigjson type, .dockercfg key", Some("kubernetes.io/dockerconfigjson"), &[(".dockercfg", CFG)], None),
            ("C12 Opaque", Some("Opaque"), &[(".dockerconfigjson", JSON)], None),
            ("R2 basic-auth", Some("kubernetes.io/basic-auth"), &[(".dockercfg", CFG)], None),
            ("no type", None, &[(".dockerconfigjson", JSON)], None),
            ("type is case-sensitive", Some("kubernetes.io/DockerConfigJson"), &[(".dockerconfigjson", JSON)], None),
            ("no data", Some("kubernetes.io/dockerconfigjson"), &[], None),
        ];
        for (id, secret_type, data, want) in table {
            let data: std::collections::BTreeMap<String, Vec<u8>> = data.iter().map(|(k, v)| ((*k).to_owned(), v.to_vec())).collect();
            assert_eq!(classify(*secret_type, |key| data.get(key).map(Vec::as_slice)), *want, "{id}");
        }
    }

    #[test]
    fn d32_encoder_round_trip() {
        let entry = RegistryEntry {
            key: "r.io".to_owned(),
            username: "foo".to_owned(),
            password: "bar".to_owned(),
            email: "foo@example.com".to_owned(),
        };
        let json = entry.to_config_entry_json();
        assert_eq!(json, r#"{"username":"foo","password":"bar","email":"foo@example.com","auth":"Zm9vOmJhcg=="}"#);
        assert_eq!(decode(DockerCfg, format!(r#"{{"r.io":{json}}}"#).as_bytes()), Ok(vec![entry.clone()]));

        // `omitempty`, Go's HTML-safe escaping (`\b` short form since Go 1.22), `auth` always present.
        let odd = RegistryEntry {
            username: String::new(),
            password: "<&>\"\\\n\u{1}\u{8}\u{2028}".to_owned(),
            email: String::new(),
            ..entry.clone()
        };
        let json = odd.to_config_entry_json();
        assert_eq!(json, r#"{"password":"\u003c\u0026\u003e\"\\\n\u0001\b\u2028","auth":"OjwmPiJcCgEI4oCo"}"#);
        assert_eq!(decode(DockerCfg, format!(r#"{{"r.io":{json}}}"#).as_bytes()), Ok(vec![odd]));
        let empty = RegistryEntry { username: String::new(), password: String::new(), email: String::new(), ..entry };
        assert_eq!(empty.to_config_entry_json(), r#"{"auth":"Og=="}"#);
    }

    #[test]
    fn decode_keys_validates_but_keeps_no_credentials() {
        let payload = br#"{"auths":{"b.io":{"auth":"Zm9vOmJhcg=="},"a.io":{"username":"u","password":"p"}}}"#;
        assert_eq!(decode_keys(DockerConfigJson, payload), Ok(vec!["b.io".to_owned(), "a.io".to_owned()]));
        let entries = decode_with(DockerConfigJson, payload, false).unwrap();
        assert!(entries.iter().all(|e| e.username.is_empty() && e.password.is_empty() && e.email.is_empty()));
        let bad = br#"{"auths":{"b.io":{"auth":"Zm9vOmJhcg=="},"a.io":{"auth":"cGFudHM="}}}"#;
        assert!(matches!(decode_keys(DockerConfigJson, bad), Err(DecodeError::AuthWithoutColon { .. })));
    }

    #[test]
    fn debug_redacts_the_password() {
        let entry = RegistryEntry {
            key: "https://robot:hunter2@r.io/team".to_owned(),
            username: "robot".to_owned(),
            password: "s3cr3t-pw".to_owned(),
            email: "robot@example.com".to_owned(),
        };
        let shown = format!("{entry:?}");
        assert_eq!(
            shown,
            r#"RegistryEntry { key: "https://<redacted>@r.io/team", username: "robot", password: <redacted>, email: "robot@example.com" }"#
        );
        let empty = RegistryEntry { password: String::new(), ..entry };
        assert!(format!("{empty:?}").contains(r#"password: """#));
    }

    #[rustfmt::skip]
    #[test]
    fn messages_say_what_and_where_and_never_a_credential() {
        let too_deep = "[".repeat(GO_MAX_NESTING_DEPTH + 1);
        let long_key = format!(r#"{{"{}":1}}"#, "k".repeat(500));
        let cases: &[(&str, SecretKind, &str, &str)] = &[
            ("bad base64", DockerConfigJson, r#"{"auths":{"r.io":{"auth":"c2VjcmV0 OnB3"}}}"#, r#"auths["r.io"].auth is not valid base64: character outside the standard base64 alphabet at byte 8"#),
            ("offset counts skipped newlines", DockerConfigJson, r#"{"auths":{"r.io":{"auth":"\n\nc2Vj-"}}}"#, r#"auths["r.io"].auth is not valid base64: character outside the standard base64 alphabet at byte 6"#),
            ("wrong padding", DockerCfg, r#"{"r.io":{"auth":"c2VjcmV0=="}}"#, r#"["r.io"].auth is not valid base64: unexpected '=' at byte 8"#),
            ("no colon", DockerCfg, r#"{"r.io":{"auth":"cGFudHM="}}"#, r#"["r.io"].auth does not decode to "username:password" (no ':')"#),
            ("wrong type, names as written", DockerConfigJson, r#"{"Auths":{"r.io":{"PassWord":["hunter2"]}}}"#, r#"Auths["r.io"].PassWord must be a string or null, found an array"#),
            ("wrong entry type", DockerConfigJson, r#"{"auths":{"r.io":"hunter2"}}"#, r#"auths["r.io"] must be an object or null, found a string"#),
            ("wrong document type", DockerCfg, r#"["hunter2"]"#, "the document must be an object or null, found an array"),
            ("header value", DockerConfigJson, r#"{"HttpHeaders":{"Authorization":7}}"#, r#"HttpHeaders["Authorization"] must be a string or null, found a number"#),
            ("userinfo in a key", DockerConfigJson, r#"{"auths":{"https://bob:hunter2@r.io/x":{"auth":"!"}}}"#, r#"auths["https://<redacted>@r.io/x"].auth is not valid base64: character outside the standard base64 alphabet at byte 0"#),
            ("key kept on one line", DockerCfg, r#"{"a\nb":{"auth":"YQ"}}"#, r#"["a\nb"].auth does not decode to "username:password" (no ':')"#),
            ("long key shortened", DockerCfg, &long_key, &format!(r#"["{}…"] must be an object or null, found a number"#, "k".repeat(MAX_SHOWN_CHARS))),
            ("syntax", DockerConfigJson, "{\"auths\":\n{\"r.io\":{\"password\":\"hunter2\"}", "invalid JSON at line 2 column 30: EOF while parsing an object"),
            ("too deep", DockerCfg, &too_deep, "invalid JSON: nested more than 10000 levels deep"),
        ];
        for (id, kind, payload, want) in cases {
            let message = decode(*kind, payload.as_bytes()).unwrap_err().to_string();
            assert_eq!(message, *want, "{id}");
            assert!(!message.contains("hunter2") && !message.contains("c2Vj"), "{id}: {message}");
        }
    }
}
