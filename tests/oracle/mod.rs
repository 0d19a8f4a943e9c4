//! The kubelet as a test oracle: `tests/cluster/kubelet-oracle` runs the kubelet's own Go code (the release pinned in
//! `tests/cluster/go.mod`) on JSON lines. This module holds what both differential drivers need: a case and its JSON
//! line, a generator of cases (driven by a seeded RNG in `tests/kubelet_oracle.rs`, by the fuzzer's bytes in
//! `fuzz/fuzz_targets/kubelet_oracle.rs`), the Rust core's answer, and the comparison.
//!
//! The Rust answer uses the library exactly as the decision does (`docker_config::classify`/`decode`,
//! `keyring::Keyring`, `reference::parse_normalized_named`); nothing here re-implements a matching rule.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use pullsecret_injector::kubelet::docker_config;
use pullsecret_injector::kubelet::keyring::{self, Keyring};
use pullsecret_injector::kubelet::reference;
use serde_json::Value;

// --- cases ---------------------------------------------------------------------------------------------------------

/// A pull Secret as the kubelet gets it from the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub name: String,
    pub type_: String,
    pub data: BTreeMap<String, Vec<u8>>,
}

impl Secret {
    /// A Secret of `type_` holding `payload` under `data_key`.
    pub fn new(name: &str, type_: &str, data_key: &str, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.to_owned(),
            type_: type_.to_owned(),
            data: BTreeMap::from([(data_key.to_owned(), payload.into())]),
        }
    }

    /// A well-typed `kubernetes.io/dockerconfigjson` Secret.
    pub fn config_json(name: &str, payload: &str) -> Self {
        Self::new(name, DOCKER_CONFIG_JSON.0, DOCKER_CONFIG_JSON.1, payload)
    }

    /// A well-typed `kubernetes.io/dockercfg` Secret.
    pub fn dockercfg(name: &str, payload: &str) -> Self {
        Self::new(name, DOCKERCFG.0, DOCKERCFG.1, payload)
    }

    /// A `kubernetes.io/dockerconfigjson` Secret whose entries are `keys`, each with username `u<i>`.
    pub fn with_keys(name: &str, keys: &[&str]) -> Self {
        let entries: Vec<String> =
            keys.iter().enumerate().map(|(i, key)| format!(r#"{}:{{"username":"u{i}"}}"#, quote(key))).collect();
        Self::config_json(name, &format!(r#"{{"auths":{{{}}}}}"#, entries.join(",")))
    }
}

const DOCKER_CONFIG_JSON: (&str, &str) = ("kubernetes.io/dockerconfigjson", ".dockerconfigjson");
const DOCKERCFG: (&str, &str) = ("kubernetes.io/dockercfg", ".dockercfg");

/// One question for the kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Case {
    /// `secrets.MakeDockerKeyring(secrets)`, then `Lookup` of each image's lookup string (`applyDefaultImageTag`,
    /// `parsers.ParseImageName`), or of each string as is when `raw`.
    Lookup { secrets: Vec<Secret>, images: Vec<String>, raw: bool },
    /// An exec credential provider's `matchImages` against a lookup string (`URLsMatchStr`, any pattern).
    Match { patterns: Vec<String>, target: String },
}

impl Case {
    /// The case as the oracle reads it: one JSON line (without the newline). Also the form printed on a
    /// disagreement, and read back by [`Case::from_json`] to replay it.
    pub fn to_json(&self) -> String {
        // Written directly rather than through `serde_json::Value`: tens of thousands of cases per test run.
        let mut out = String::with_capacity(512);
        let strings = |out: &mut String, items: &[String]| {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&quote(item));
            }
            out.push(']');
        };
        match self {
            Case::Lookup { secrets, images, raw } => {
                out.push_str(r#"{"secrets":["#);
                for (i, s) in secrets.iter().enumerate() {
                    let data: Vec<String> =
                        s.data.iter().map(|(k, v)| format!(r#"{}:"{}""#, quote(k), BASE64.encode(v))).collect();
                    let comma = if i > 0 { "," } else { "" };
                    let (name, type_, data) = (quote(&s.name), quote(&s.type_), data.join(","));
                    out.push_str(&format!(r#"{comma}{{"name":{name},"type":{type_},"data":{{{data}}}}}"#));
                }
                out.push_str(r#"],"images":"#);
                strings(&mut out, images);
                out.push_str(&format!(r#","raw":{raw}}}"#));
            }
            Case::Match { patterns, target } => {
                out.push_str(r#"{"patterns":"#);
                strings(&mut out, patterns);
                out.push_str(&format!(r#","target":{}}}"#, quote(target)));
            }
        }
        out
    }

    pub fn from_json(line: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let strings = |v: &Value| -> Result<Vec<String>, String> {
            let items = v.as_array().ok_or("expected an array of strings")?;
            items.iter().map(|s| s.as_str().map(str::to_owned).ok_or_else(|| "expected a string".to_owned())).collect()
        };
        if let Some(patterns) = value.get("patterns") {
            let target = value["target"].as_str().ok_or("target: expected a string")?.to_owned();
            return Ok(Case::Match { patterns: strings(patterns)?, target });
        }
        let mut secrets = Vec::new();
        for s in value["secrets"].as_array().ok_or("secrets: expected an array")? {
            let mut data = BTreeMap::new();
            for (key, payload) in s["data"].as_object().into_iter().flatten() {
                let payload = BASE64.decode(payload.as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
                data.insert(key.clone(), payload);
            }
            let text = |field: &str| s[field].as_str().unwrap_or_default().to_owned();
            secrets.push(Secret { name: text("name"), type_: text("type"), data });
        }
        Ok(Case::Lookup { secrets, images: strings(&value["images"])?, raw: value["raw"].as_bool().unwrap_or(false) })
    }
}

// --- answers -------------------------------------------------------------------------------------------------------

/// A credential the kubelet would try, attributed to the position of its Secret in the case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Credential {
    pub secret: usize,
    pub username: String,
    pub password: String,
    pub email: String,
}

/// One image: its lookup string (or why it does not parse) and the credentials in the kubelet's try order
/// (`None` when not looked up: the image does not parse, or the keyring could not be built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageAnswer<C> {
    pub lookup: Result<String, String>,
    pub credentials: Option<Vec<C>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<C> {
    Lookup { keyring_error: Option<String>, images: Vec<ImageAnswer<C>> },
    Match(bool),
}

/// The Rust core's credential, with the key it came from as written: within one Secret, the kubelet adds entries in
/// Go map order, which is random, so entries of one Secret whose keys normalize alike come in any order (R18). The
/// comparison uses the key to allow exactly that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurCredential {
    pub credential: Credential,
    pub written_key: String,
}

/// The Rust core's answer, computed the way the decision computes it.
pub fn ours(case: &Case) -> Answer<OurCredential> {
    let (secrets, images, raw) = match case {
        Case::Match { patterns, target } => {
            let hit = patterns.iter().any(|p| keyring::urls_match_str(p, target));
            return Answer::Match(hit);
        }
        Case::Lookup { secrets, images, raw } => (secrets, images, *raw),
    };
    // MakeDockerKeyring: one keyring over every pull Secret, in Pod order; the first undecodable one fails it (R4).
    let mut ring = Keyring::new();
    let mut keyring_error = None;
    for (i, secret) in secrets.iter().enumerate() {
        let Some((kind, payload)) =
            docker_config::classify(Some(&secret.type_), |key| secret.data.get(key).map(Vec::as_slice))
        else {
            continue;
        };
        match docker_config::decode(kind, payload) {
            Ok(entries) => {
                for entry in entries {
                    let credential = Credential {
                        secret: i,
                        username: entry.username,
                        password: entry.password,
                        email: entry.email,
                    };
                    ring.add(&entry.key, OurCredential { credential, written_key: entry.key.clone() });
                }
            }
            Err(error) => {
                keyring_error = Some(error.to_string());
                break;
            }
        }
    }
    let images = images
        .iter()
        .map(|image| {
            let lookup = if raw {
                Ok(image.clone())
            } else {
                reference::parse_normalized_named(image).map(|r| r.name()).map_err(|e| e.to_string())
            };
            let credentials = match (&lookup, &keyring_error) {
                (Ok(target), None) => Some(ring.lookup_str(target)),
                _ => None,
            };
            ImageAnswer { lookup, credentials }
        })
        .collect();
    Answer::Lookup { keyring_error, images }
}

/// The oracle's answer line, read.
pub fn theirs(line: &str) -> Result<Answer<Credential>, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("unreadable answer: {e}"))?;
    if let Some(bad) = value.get("bad_request") {
        return Err(format!("the oracle could not read the case: {bad}"));
    }
    if let Some(matched) = value.get("matched") {
        return matched.as_bool().map(Answer::Match).ok_or_else(|| "matched: expected a boolean".to_owned());
    }
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let keyring_error = value.get("keyring_error").map(text);
    let mut images = Vec::new();
    for image in value["images"].as_array().into_iter().flatten() {
        let lookup = match (image.get("lookup"), image.get("parse_error")) {
            (Some(lookup), None) => Ok(text(lookup)),
            (None, Some(error)) => Err(text(error)),
            _ => return Err(format!("image answer without exactly one of lookup and parse_error: {image}")),
        };
        let credentials = image["credentials"].as_array().map(|credentials| {
            credentials
                .iter()
                .map(|c| Credential {
                    secret: c["secret"].as_u64().unwrap_or(u64::MAX) as usize,
                    username: text(&c["username"]),
                    password: text(&c["password"]),
                    email: text(&c["email"]),
                })
                .collect()
        });
        images.push(ImageAnswer { lookup, credentials });
    }
    Ok(Answer::Lookup { keyring_error, images })
}

/// `Ok` when the Rust core agrees with the kubelet's answer line, else why not.
///
/// Keyring errors are compared as "fails or not" (Go's and our messages differ in wording); an image that does
/// not parse must fail with our reason (Go's message is `couldn't parse image name "<image>": <reason>`).
pub fn compare(ours: &Answer<OurCredential>, theirs: &Answer<Credential>) -> Result<(), String> {
    let (ours_error, ours_images, theirs_error, theirs_images) = match (ours, theirs) {
        (Answer::Match(a), Answer::Match(b)) if a == b => return Ok(()),
        (Answer::Lookup { keyring_error: oe, images: oi }, Answer::Lookup { keyring_error: te, images: ti }) => {
            (oe, oi, te, ti)
        }
        _ => return Err(format!("matchImages: ours {ours:?}, the kubelet's {theirs:?}")),
    };
    if ours_error.is_some() != theirs_error.is_some() {
        return Err(format!("MakeDockerKeyring: ours {ours_error:?}, the kubelet's {theirs_error:?}"));
    }
    if ours_images.len() != theirs_images.len() {
        return Err(format!("{} image answers, the kubelet gave {}", ours_images.len(), theirs_images.len()));
    }
    for (i, (o, t)) in ours_images.iter().zip(theirs_images).enumerate() {
        let lookup_agrees = match (&o.lookup, &t.lookup) {
            (Ok(a), Ok(b)) => a == b,
            (Err(reason), Err(message)) => {
                message.starts_with("couldn't parse image name ") && message.ends_with(&format!(": {reason}"))
            }
            _ => false,
        };
        if !lookup_agrees {
            return Err(format!("image {i}: lookup string ours {:?}, the kubelet's {:?}", o.lookup, t.lookup));
        }
        let credentials_agree = match (&o.credentials, &t.credentials) {
            (None, None) => true,
            (Some(a), Some(b)) => same_credentials(a, b),
            _ => false,
        };
        if !credentials_agree {
            let ours: Option<Vec<&Credential>> =
                o.credentials.as_ref().map(|c| c.iter().map(|c| &c.credential).collect());
            return Err(format!(
                "image {i}: credentials\n  ours:          {ours:?}\n  the kubelet's: {:?}",
                t.credentials
            ));
        }
    }
    Ok(())
}

/// Equal lists, except that a run of credentials from one Secret under one normalized key may come in any order
/// (R18: the kubelet adds a Secret's entries in Go map iteration order).
fn same_credentials(ours: &[OurCredential], theirs: &[Credential]) -> bool {
    if ours.len() != theirs.len() {
        return false;
    }
    if ours.iter().zip(theirs).all(|(o, t)| o.credential == *t) {
        return true;
    }
    let run_key = |c: &OurCredential| (c.credential.secret, keyring::normalize_key(&c.written_key));
    let mut start = 0;
    while start < ours.len() {
        let first = run_key(&ours[start]);
        let run = ours[start..].iter().take_while(|c| run_key(c) == first).count();
        let mut a: Vec<&Credential> = ours[start..start + run].iter().map(|c| &c.credential).collect();
        let mut b: Vec<&Credential> = theirs[start..start + run].iter().collect();
        a.sort();
        b.sort();
        if a != b {
            return false;
        }
        start += run;
    }
    true
}

// --- the oracle process --------------------------------------------------------------------------------------------

/// A running `kubelet-oracle`.
pub struct Oracle {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    pub fn spawn(program: &Path) -> Self {
        let mut child = Command::new(program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Self { child, stdin, stdout }
    }

    /// One case, one answer line.
    pub fn ask(&mut self, line: &str) -> String {
        let stdin = self.stdin.as_mut().expect("oracle stdin open");
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).expect("write to the oracle");
        self.read_answer()
    }

    /// Many cases, pipelined: a thread makes (`line(i)`) and writes them while this one hands each answer to
    /// `each` as it arrives, so the oracle, the writer and the caller's own work run side by side.
    pub fn ask_each(
        &mut self,
        count: usize,
        mut line: impl FnMut(usize) -> String + Send,
        mut each: impl FnMut(usize, &str),
    ) {
        let stdin = self.stdin.take().expect("oracle stdin open");
        let stdin = std::thread::scope(|scope| {
            let writer = scope.spawn(move || {
                let mut out = std::io::BufWriter::new(stdin);
                for i in 0..count {
                    writeln!(out, "{}", line(i)).expect("write to the oracle");
                }
                out.into_inner().expect("write to the oracle")
            });
            for i in 0..count {
                each(i, &self.read_answer());
            }
            writer.join().expect("the writer thread")
        });
        self.stdin = Some(stdin);
    }

    fn read_answer(&mut self) -> String {
        let mut answer = String::new();
        let read = self.stdout.read_line(&mut answer).expect("read from the oracle");
        assert!(read > 0, "the oracle exited: {:?}", self.child.try_wait());
        answer.truncate(answer.trim_end().len());
        answer
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        drop(self.stdin.take()); // end of input: the oracle exits
        let _ = self.child.wait();
    }
}

// --- generation ----------------------------------------------------------------------------------------------------

/// Where the generator's choices come from: a seeded RNG, or a fuzzer's bytes.
pub trait Source {
    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize;
    /// Free text for the corners no list anticipates.
    fn text(&mut self) -> String;
}

/// SplitMix64: small, fast, and the same sequence everywhere for a seed.
pub struct Rng(pub u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Source for Rng {
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn text(&mut self) -> String {
        const CHARS: &str = "abregxAZ05..::////*?#[]@%-_ \\=+~!$&'(,;\"éſ\0\n\u{7f}\u{FEFF}\u{1F600}";
        let len = self.below(16);
        (0..len).map(|_| CHARS.chars().nth(self.below(CHARS.chars().count())).unwrap_or('a')).collect()
    }
}

fn chance(src: &mut impl Source, percent: usize) -> bool {
    src.below(100) < percent
}

fn pick<'a>(src: &mut impl Source, items: &[&'a str]) -> &'a str {
    items[src.below(items.len())]
}

/// A JSON string literal (by hand: serde_json's serializer is slow in the debug build the tests run in).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const SCHEMES: &[&str] = &["https://", "http://"];
const ODD_SCHEMES: &[&str] = &["HTTPS://", "Http://", "oci://", "https://https://", "http:/", "https:"];
const USERINFO: &[&str] = &["user@", "u:p@", "a%20b@", "@", "u@x@", "u:p:q@"];
/// Hosts that images and keys share, so that they match often.
#[rustfmt::skip]
const HOSTS: &[&str] = &[
    "registry.example.com", "reg.example.com", "example.com", "a.example.com", "docker.io", "index.docker.io",
    "registry-1.docker.io", "hub.docker.com", "localhost", "quay.io", "us.gcr.io", "10.0.0.5", "127.0.0.1",
    "[fc00::1]", "[::1]", "Foo", "LOCALHOST", "Registry.Example.com", "DOCKER.IO", "h.example.com.", "xn--n3h.com",
    "test-com", "a_b.c", "é.example.com", "prefix-good.example.com", "reg1.example.com",
];
/// Hosts only keys have: globs and what Go's URL parser makes of odd characters.
#[rustfmt::skip]
const KEY_HOSTS: &[&str] = &[
    "*", "*.example.com", "*.*", "docker.*", "*.docker.io", "reg*.example.com", "*-good.example.com",
    "*.*.example.com", "10.0.0.*", "[*]", "re[g].example.com", "[a-z]eg.example.com", "[^x]eg.example.com",
    "r\\eg.example.com", "x[fc00::1]", "a.b[fc00::1]", "[fc00::*]", "reg?.example.com", "?.example.com", "fc00::1",
    "[fc00::1", "fc00::1]", "[fe80::1%25eth0]", "[fe80::1%2525.x]", "%41.example.com", "reg%2Eexample.com", "",
    "re g.example.com", "REG.EXAMPLE.COM", "*.EXAMPLE.com", "reg.example.com:5000@h", "[", "]",
];
const LABELS: &[&str] = &["reg", "a", "b", "example", "com", "io", "docker", "x-y", "0", "5", "*", "r*", "A", "é", ""];
#[rustfmt::skip]
const PORTS: &[&str] = &[
    ":5000", ":5000", ":5000", ":443", ":05000", ":", ":1111", ":99999", ":*", ":abc", ":5000:5000", ":-1", ":5000]",
];
#[rustfmt::skip]
const KEY_PATHS: &[&str] =
    &["/", "/v1/", "/v2/", "/team", "/team/", "/library", "/library/nginx", "/v2/team", "/myorg", "/app", "/pong"];
#[rustfmt::skip]
const ODD_KEY_PATHS: &[&str] = &[
    "/v1", "/v2", "/v3/", "/Team", "/te%61m", "/v1/library", "/%zz", "/a%2Fb", "/v%31/", "/*", "?x", "#frag", "/a?b",
    "/a#b", "//", "/v2/v1/", "/team/app", "/%3Fx", "/%25", "/é", "/team/app:v1", "/v1//", "/library/",
];
#[rustfmt::skip]
const PATH_PARTS: &[&str] = &[
    "team", "app", "library", "nginx", "myorg", "myorg2", "x", "a-b", "a_b", "a__b", "a.b", "v1", "team2", "pong",
    "pongz", "te.am", "a--b", "0", "busybox",
];
const BAD_PATH_PARTS: &[&str] = &["A", "-a", "a___b", "a.", "", "a..b", "é"];
/// What a glob in a key's host is replaced with to make an image host (so that globs match).
const GLOB_FILL: &[&str] = &["reg", "a", "example", "com", "x", "prefix", "docker"];
#[rustfmt::skip]
const SHORT_IMAGES: &[&str] = &[
    "nginx", "library/nginx", "myorg/app", "myorg2/app", "google/docker-registry", "localhost", "example.com",
    "localhost:5000", "reg.example.com:5000", "busybox:1.36", "team/app:v1", "library/team/app",
];
#[rustfmt::skip]
const BAD_IMAGES: &[&str] = &[
    "", "-x", "a///b", "a/", "/a", "BAD/Image", "docker/Docker", "https://x.com/y", "[fc00::1]:5000",
    "fc00::1:5000/x", "a:b:c", "nginx:", "nginx@", ":tag", "x@sha256:abc", "[fc00::1]/", "a b", "nginx:-x",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "[::ffff:1.2.3.4]:5000/x",
    "[fe80::1%eth0]:5000/x", "reg.example.com:/x", "localhost:abc/x",
];
const TAGS: &[&str] = &[":v1", ":latest", ":5000", ":1.2.3", ":A_b", ":_x", ":x-", ":v1", ":latest", ":.x", ":"];
const HEX: &str = "0123456789abcdef";

/// Host, port and path of the keys generated so far in a case: images are built from them half of the time.
#[derive(Default)]
struct Context {
    places: Vec<(String, String, String)>,
    /// Keys as written, to repeat exactly or in an equivalent spelling (R18).
    keys: Vec<String>,
}

fn gen_host(src: &mut impl Source) -> String {
    match src.below(100) {
        0..55 => pick(src, HOSTS).to_owned(),
        55..72 => pick(src, KEY_HOSTS).to_owned(),
        72..95 => {
            let labels = 1 + src.below(4);
            (0..labels).map(|_| pick(src, LABELS)).collect::<Vec<_>>().join(".")
        }
        _ => src.text(),
    }
}

/// One of `plain` mostly, one of `odd` sometimes.
fn plain_or_odd<'a>(src: &mut impl Source, plain: &[&'a str], odd: &[&'a str]) -> &'a str {
    if chance(src, 75) { pick(src, plain) } else { pick(src, odd) }
}

/// A registry key as someone might write it in a Secret.
fn gen_key(src: &mut impl Source, ctx: &mut Context) -> String {
    if !ctx.keys.is_empty() && chance(src, 12) {
        // The same key again, or spelled differently but normalized alike (R18).
        let key = ctx.keys[src.below(ctx.keys.len())].clone();
        let bare = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(&key);
        return match src.below(6) {
            0 => key.clone(),
            1 => format!("https://{bare}"),
            2 => format!("http://{bare}/"),
            3 => format!("https://{bare}/v2/"),
            4 => format!("user@{bare}"),
            _ => format!("{bare}/v1/"),
        };
    }
    if chance(src, 4) {
        let key = src.text();
        ctx.keys.push(key.clone());
        return key;
    }
    let host = gen_host(src);
    let port = if chance(src, 20) { pick(src, PORTS) } else { "" };
    let path = if chance(src, 45) { plain_or_odd(src, KEY_PATHS, ODD_KEY_PATHS) } else { "" };
    let scheme = if chance(src, 30) { plain_or_odd(src, SCHEMES, ODD_SCHEMES) } else { "" };
    let userinfo = if chance(src, 5) { pick(src, USERINFO) } else { "" };
    ctx.places.push((host.clone(), port.to_owned(), path.to_owned()));
    let key = format!("{scheme}{userinfo}{host}{port}{path}");
    ctx.keys.push(key.clone());
    key
}

fn gen_path(src: &mut impl Source) -> String {
    let parts = 1 + src.below(3);
    let part = |src: &mut _| if chance(src, 3) { pick(src, BAD_PATH_PARTS) } else { pick(src, PATH_PARTS) };
    (0..parts).map(|_| part(src)).collect::<Vec<_>>().join("/")
}

/// An image host from a key's host: each `*` filled in, so that the key's glob matches it.
fn fill_globs(src: &mut impl Source, host: &str) -> String {
    let mut out = String::new();
    for c in host.chars() {
        if c == '*' { out.push_str(pick(src, GLOB_FILL)) } else { out.push(c) }
    }
    out
}

fn hex(src: &mut impl Source, len: usize) -> String {
    (0..len).map(|_| char::from(HEX.as_bytes()[src.below(16)])).collect()
}

fn gen_digest(src: &mut impl Source) -> String {
    match src.below(12) {
        0..7 => format!("@sha256:{}", hex(src, 64)),
        7 => format!("@sha256:{}", hex(src, 63)),
        8 => format!("@sha512:{}", hex(src, 128)),
        9 => format!("@sha384:{}", hex(src, 96)),
        10 => format!("@foo:{}", hex(src, 32)),
        _ => format!("@sha256:{}", hex(src, 64).to_uppercase()),
    }
}

/// Whether a host can start an image reference (a rough cut, only to steer generation towards matching images).
fn image_host(host: &str) -> bool {
    let bracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    match bracketed {
        Some(address) => address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
        None => host.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        }),
    }
}

/// An image as written in a Pod.
fn gen_image(src: &mut impl Source, ctx: &Context) -> String {
    let mut image = match src.below(100) {
        0..15 => return pick(src, SHORT_IMAGES).to_owned(),
        15..21 => return pick(src, BAD_IMAGES).to_owned(),
        21..23 => return src.text(),
        23..25 => return format!("reg.example.com/{}", "a".repeat(250 + src.below(10))),
        25..27 => return "a".repeat(245 + src.below(6)),
        _ => {
            let (host, port) = match ctx.places.len() {
                n if n > 0 && chance(src, 75) => {
                    let (host, port, path) = ctx.places[src.below(n)].clone();
                    let mut host = fill_globs(src, &host);
                    if !image_host(&host) && chance(src, 70) {
                        host = pick(src, HOSTS).to_owned();
                    }
                    // Mostly the key's port and path, when an image can have them: the path as the start of the
                    // image path makes prefixes match (and half-match: `team` and `team2`).
                    let digits = port.len() > 1 && port[1..].bytes().all(|b| b.is_ascii_digit());
                    let port = if digits || chance(src, 10) { port } else { String::new() };
                    let path = path.trim_start_matches('/');
                    let plain =
                        path.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"/._-".contains(&b));
                    if !path.is_empty() && (plain || chance(src, 10)) && chance(src, 60) {
                        let sep = if chance(src, 75) { "/" } else { "" };
                        return format!("{host}{port}/{}{sep}{}", path.trim_end_matches('/'), gen_path(src));
                    }
                    (host, port)
                }
                _ => (pick(src, HOSTS).to_owned(), if chance(src, 15) { pick(src, PORTS) } else { "" }.to_owned()),
            };
            format!("{host}{port}/{}", gen_path(src))
        }
    };
    if chance(src, 20) {
        image.push_str(pick(src, TAGS));
    }
    if chance(src, 8) {
        image.push_str(&gen_digest(src));
    }
    if chance(src, 2) {
        // Something stray anywhere.
        let at = image.char_indices().map(|(i, _)| i).nth(src.below(image.chars().count())).unwrap_or(0);
        image.insert_str(at, &src.text());
    }
    image
}

/// A lookup string handed to `Lookup` as is: what an image turns into, and what it never can.
fn gen_target(src: &mut impl Source, ctx: &Context) -> String {
    if chance(src, 50) {
        let image = gen_image(src, ctx);
        if let Ok(r) = reference::parse_normalized_named(&image) {
            return r.name();
        }
        return image;
    }
    let (host, port, path) = match ctx.places.len() {
        n if n > 0 && chance(src, 70) => ctx.places[src.below(n)].clone(),
        _ => (gen_host(src), pick(src, PORTS).to_owned(), plain_or_odd(src, KEY_PATHS, ODD_KEY_PATHS).to_owned()),
    };
    let tail = if chance(src, 60) { format!("/{}", gen_path(src)) } else { String::new() };
    format!("{host}{}{}{tail}", if chance(src, 50) { port.as_str() } else { "" }, path.trim_end_matches('/'))
}

fn base64_auth(src: &mut impl Source, user: &str, pass: &str) -> String {
    let encoded = BASE64.encode(format!("{user}:{pass}"));
    match src.below(10) {
        0 => encoded.trim_end_matches('=').to_owned(), // unpadded (R10.2)
        1 => {
            let at = src.below(encoded.len() + 1);
            format!("{}\n{}\r\n", &encoded[..at], &encoded[at..]) // newlines are skipped (R10.3)
        }
        _ => encoded,
    }
}

/// One registry entry's JSON value; credentials unique to (secret, entry) so that orders are visible.
fn gen_entry(src: &mut impl Source, secret: usize, entry: usize) -> String {
    let (user, pass) = (format!("u{secret}.{entry}"), format!("p{secret}.{entry}"));
    let email = if chance(src, 30) { format!(r#","email":"e{secret}.{entry}@x""#) } else { String::new() };
    match src.below(1000) {
        0..300 => format!(r#"{{"username":{},"password":{}{email}}}"#, quote(&user), quote(&pass)),
        300..640 => format!(r#"{{"auth":{}{email}}}"#, quote(&base64_auth(src, &user, &pass))),
        640..700 => format!(r#"{{"Username":{},"PASSWORD":{},"auth":""}}"#, quote(&user), quote(&pass)),
        700..760 => format!(r#"{{"username":"ignored","auth":{}}}"#, quote(&base64_auth(src, &user, &pass))),
        760..800 => format!(r#"{{"auth":{}}}"#, quote(&BASE64.encode(format!("{user}:{pass}:x")))),
        800..840 => format!(r#"{{"identitytoken":"t","username":{}}}"#, quote(&user)),
        840..880 => pick(src, &["null", "{}", r#"{"x":[1,{"y":null}]}"#, r#"{"username":null}"#]).to_owned(),
        880..920 => format!(r#"{{"username":{},"username":"last"}}"#, quote(&user)),
        920..970 => format!(r#"{{"username":{},"password":{}}}"#, quote(&src.text()), quote(&pass)),
        970..976 => format!(r#"{{"username":"{user}\ud800\ufffd\ud83d\ude00\u00e9"}}"#), // escapes, a lone surrogate
        // Fatal for the whole Secret, and so for the keyring (R4, R11).
        976..988 => {
            let auth = pick(src, &["pants", "cGFudHM=", "Zm9vOmJhcg== ", "-_86", "Zm9vOmJhcg=", "\n\n", "Og==Og=="]);
            format!(r#"{{"auth":{}}}"#, quote(auth))
        }
        988..994 => pick(src, &[r#"{"username":123}"#, r#"{"email":false}"#, "[]", r#""x""#]).to_owned(),
        _ => format!(r#"{{"auth":{}}}"#, quote(&src.text())),
    }
}

/// A payload for a Secret of either kind.
fn gen_payload<S: Source>(src: &mut S, config_json: bool, secret: usize, ctx: &mut Context) -> Vec<u8> {
    if src.below(1000) < 8 {
        return match src.below(3) {
            0 => src.text().into_bytes(),
            1 => vec![b'{', 0xff, b'}'],
            _ => pick(src, &["[]", "{", "{} x", "\u{FEFF}{}", "null", " {}\n", r#"{"HttpHeaders":5}"#, "5"]).into(),
        };
    }
    let entries = |src: &mut S, ctx: &mut Context, first: usize| {
        let count = src.below(6);
        (first..first + count)
            .map(|e| format!("{}:{}", quote(&gen_key(src, ctx)), gen_entry(src, secret, e)))
            .collect::<Vec<_>>()
            .join(",")
    };
    let text = if config_json {
        match src.below(100) {
            0..78 => format!(r#"{{"auths":{{{}}}}}"#, entries(src, ctx, 0)),
            78..84 => {
                format!(r#"{{{}:{{{}}}}}"#, quote(pick(src, &["Auths", "AUTHS", "auth\u{17F}"])), entries(src, ctx, 0))
            }
            84..88 => format!("{{{}}}", entries(src, ctx, 0)), // legacy shape: no entries (R3)
            88..92 => pick(src, &[r#"{"auths":null}"#, "{}", "null", r#"{"auths":{}}"#]).to_owned(),
            92..96 => format!(r#"{{"auths":{{{}}},"Auths":{{{}}}}}"#, entries(src, ctx, 0), entries(src, ctx, 10)),
            _ => format!(
                r#"{{"credsStore":"desktop","auths":{{{}}},"HttpHeaders":{{"X-A":"b"}},"credHelpers":{{"r.io":"x"}}}}"#,
                entries(src, ctx, 0)
            ),
        }
    } else if chance(src, 8) {
        format!(r#"{{"auths":{{{}}}}}"#, entries(src, ctx, 0)) // one entry keyed "auths" (R3)
    } else {
        format!("{{{}}}", entries(src, ctx, 0))
    };
    text.into_bytes()
}

fn gen_secret(src: &mut impl Source, index: usize, ctx: &mut Context) -> Secret {
    let config_json = chance(src, 70);
    let payload = gen_payload(src, config_json, index, ctx);
    let (own, other) = if config_json { (DOCKER_CONFIG_JSON, DOCKERCFG) } else { (DOCKERCFG, DOCKER_CONFIG_JSON) };
    let type_ = match src.below(100) {
        0..90 => own.0,
        90..93 => other.0,
        _ => pick(src, &["Opaque", "kubernetes.io/basic-auth", "", "kubernetes.io/DockerConfigJson"]),
    };
    let mut data = BTreeMap::new();
    let (data_key, payload) = match src.below(100) {
        0..91 => (Some(own.1), payload),
        91..94 => (Some(other.1), payload),
        94..97 => (Some(own.1), Vec::new()),
        _ => (None, payload),
    };
    if let Some(data_key) = data_key {
        data.insert(data_key.to_owned(), payload);
    }
    if chance(src, 3) {
        data.insert("other".to_owned(), b"{}".to_vec());
    }
    // A name listed twice is read twice (R6); names only label the answer.
    let name = if index > 0 && chance(src, 5) { "s0".to_owned() } else { format!("s{index}") };
    Secret { name, type_: type_.to_owned(), data }
}

/// One case: mostly a Pod's Secrets and images, sometimes raw lookup strings, sometimes a `matchImages` question.
pub fn generate(src: &mut impl Source) -> Case {
    let mut ctx = Context::default();
    let kind = src.below(100);
    if kind < 8 {
        let patterns = (0..1 + src.below(3)).map(|_| gen_key(src, &mut ctx)).collect();
        return Case::Match { patterns, target: gen_target(src, &ctx) };
    }
    let count = if chance(src, 5) { 0 } else { 1 + src.below(4) };
    let secrets = (0..count).map(|i| gen_secret(src, i, &mut ctx)).collect();
    let raw = kind < 20;
    let count = 1 + src.below(4);
    let images = (0..count).map(|_| if raw { gen_target(src, &ctx) } else { gen_image(src, &ctx) }).collect();
    Case::Lookup { secrets, images, raw }
}
