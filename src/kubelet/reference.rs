//! Image references, parsed exactly as the kubelet parses them (spec §2.D, R20–R23; vectors N1–N21).
//!
//! The kubelet's `parsers.ParseImageName` calls `ParseNormalizedNamed(image)` from distribution/reference
//! v0.6.0 and looks credentials up under `.Name()`. This is a port of that function together with the parts
//! of `reference.go`, `regexp.go` and `opencontainers/go-digest` v1.0.0 it reaches. The grammar is matched by
//! hand, in one linear pass per piece, instead of with a regex engine:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [ domain-and-port "/" ] remote-name
//! domain-and-port  := ( domain-name | "[" [a-fA-F0-9:]+ "]" ) [ ":" [0-9]+ ]
//! domain-name      := domain-component ( "." domain-component )*
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! remote-name      := path-component ( "/" path-component )*
//! path-component   := [a-z0-9]+ ( ( [._] | "__" | "-"+ ) [a-z0-9]+ )*
//! tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest           := algorithm ":" [0-9a-fA-F]{32,}
//! algorithm        := [A-Za-z][A-Za-z0-9]* ( [-_+.] [A-Za-z][A-Za-z0-9]* )*
//! ```
//!
//! Every piece of this grammar has a single possible split of the input (no `:` after the last `/` belongs
//! to the name, no `@` belongs to the name or tag, a domain never contains `/`), so the Go regexps' capture
//! groups are reproduced without backtracking.

use std::fmt;

/// Docker Hub's canonical domain (`defaultDomain`).
const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker Hub's legacy domain, rewritten to [`DEFAULT_DOMAIN`] (`legacyDefaultDomain`).
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Namespace of Docker Hub's official images (`officialRepoPrefix`).
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The only dot-less, colon-less, lower-case first segment that is a domain (`localhost`).
const LOCALHOST: &str = "localhost";
/// `RepositoryNameTotalLengthMax`. Since v0.6.0 it bounds the path only (spec §7 item 4).
pub const REPOSITORY_PATH_MAX_LEN: usize = 255;
/// A tag is one word character followed by at most 127 more (`[\w][\w.-]{0,127}`).
const TAG_MAX_LEN: usize = 128;
/// The shortest hex part the reference grammar accepts in a digest (`[[:xdigit:]]{32,}`).
const DIGEST_HEX_MIN_LEN: usize = 32;

/// A reference normalized as the kubelet sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry host and optional port, case preserved (R22). Empty in the one Go corner where the first
    /// segment looks like a domain to `splitDockerDomain` but is only valid as a path component
    /// (`a_b.c/app`): then the whole name is the path, exactly as in Go.
    pub domain: String,
    /// The repository path, `library/` included for Docker Hub official images (R21).
    pub path: String,
    /// The tag as written, if any. The kubelet's own default (`latest` when there is neither tag nor digest,
    /// N1) is not applied here: it does not affect the lookup string.
    pub tag: Option<String>,
    /// The digest as written (`algorithm:hex`), if any.
    pub digest: Option<String>,
}

impl ImageRef {
    /// `domain/path`: the string the kubelet passes to the keyring lookup (ParseNormalizedNamed(..).Name()).
    pub fn name(&self) -> String {
        // `repository.Name()` omits the separator when the domain is empty.
        if self.domain.is_empty() { self.path.clone() } else { format!("{}/{}", self.domain, self.path) }
    }

    /// true when the domain is Docker Hub (`docker.io`) after normalization.
    pub fn is_docker_hub(&self) -> bool {
        // Case-sensitive on purpose: `DOCKER.IO/nginx` is not Docker Hub for the kubelet (N20, R22).
        self.domain == DEFAULT_DOMAIN
    }
}

impl fmt::Display for ImageRef {
    /// The fully qualified reference, like Go's `String()`: `name[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Why the kubelet would refuse an image reference (it reports these as `InvalidImageName`, R23).
///
/// One variant per error `ParseNormalizedNamed` can return, with the Go message verbatim. Go's
/// `ErrNameEmpty` and "reference has no name" are unreachable through `ParseNormalizedNamed` (it always
/// hands `Parse` a `domain/...` string), so an empty image is [`ReferenceError::InvalidFormat`], as in Go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The whole image is 64 lower-case hex characters, which would be ambiguous with an image ID.
    #[error("invalid repository name ({name}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier { name: String },
    /// The repository part after domain splitting, up to its first `:`, has an upper-case character.
    #[error("invalid reference format: repository name ({remote}) must be lowercase")]
    RemoteNameNotLowercase { remote: String },
    /// The reference does not match the grammar, but its lower-cased form would (`ErrNameContainsUppercase`).
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    /// The reference does not match the grammar (`ErrReferenceInvalidFormat`).
    #[error("invalid reference format")]
    InvalidFormat,
    /// The path has more than 255 bytes (`ErrNameTooLong`; the domain does not count, §7 item 4).
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// go-digest `ErrDigestInvalidFormat`: e.g. upper-case hex for `sha256`, or an upper-case algorithm.
    #[error("invalid checksum digest format")]
    DigestInvalidFormat,
    /// go-digest `ErrDigestInvalidLength`: a known algorithm with the wrong number of hex characters.
    #[error("invalid checksum digest length")]
    DigestInvalidLength,
    /// go-digest `ErrDigestUnsupported`: a well-formed digest whose algorithm is not sha256/sha384/sha512.
    #[error("unsupported digest algorithm")]
    DigestUnsupported,
}

/// Parses an image as the kubelet does (`reference.ParseNormalizedNamed`, R20–R23).
///
/// Never panics, and runs in time linear in the input, whatever the input.
pub fn parse_normalized_named(image: &str) -> Result<ImageRef, ReferenceError> {
    if is_hex_identifier(image) {
        return Err(ReferenceError::HexIdentifier { name: image.to_owned() });
    }
    let (domain, remainder) = split_docker_domain(image);
    // The lower-case check covers the remainder up to its first `:`, whatever that `:` is (Go `IndexRune`).
    let remote = remainder.split(':').next().unwrap_or_default();
    if lowercase_changes(remote) {
        return Err(ReferenceError::RemoteNameNotLowercase { remote: remote.to_owned() });
    }
    parse(&format!("{domain}/{remainder}"))
}

/// `splitDockerDomain` (R21): picks the domain, rewrites `index.docker.io`, adds `library/` on Docker Hub.
fn split_docker_domain(name: &str) -> (&str, String) {
    let Some((maybe_domain, maybe_remote)) = name.split_once('/') else {
        // No `/` at all: always a Docker Hub official image, even `localhost:5000` (N18) or `example.com` (N19).
        return (DEFAULT_DOMAIN, format!("{OFFICIAL_REPO_PREFIX}{name}"));
    };
    let (domain, remote) = if maybe_domain == LOCALHOST {
        (maybe_domain, maybe_remote)
    } else if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, maybe_remote)
    } else if maybe_domain.contains(['.', ':']) || lowercase_changes(maybe_domain) {
        // A dot or colon looks like a host or port; upper case can only be a domain (`Foo/bar`, N14).
        (maybe_domain, maybe_remote)
    } else {
        (DEFAULT_DOMAIN, name)
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        return (domain, format!("{OFFICIAL_REPO_PREFIX}{remote}"));
    }
    (domain, remote.to_owned())
}

/// `reference.Parse`, restricted to what `ParseNormalizedNamed` can pass it (always `domain/...`).
fn parse(s: &str) -> Result<ImageRef, ReferenceError> {
    let Some(parts) = match_reference(s) else {
        let lowered_matches = go_ascii_lowercase(s).is_some_and(|l| match_reference(&l).is_some());
        return Err(if lowered_matches {
            ReferenceError::NameContainsUppercase
        } else {
            ReferenceError::InvalidFormat
        });
    };
    let (domain, path) = split_name(parts.name);
    if path.len() > REPOSITORY_PATH_MAX_LEN {
        return Err(ReferenceError::NameTooLong);
    }
    if let Some(digest) = parts.digest {
        validate_digest(digest)?;
    }
    Ok(ImageRef {
        domain: domain.to_owned(),
        path: path.to_owned(),
        tag: parts.tag.map(str::to_owned),
        digest: parts.digest.map(str::to_owned),
    })
}

/// The three capture groups of `ReferenceRegexp`.
struct ReferenceParts<'a> {
    name: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Matches `ReferenceRegexp` (`^(name)(?::(tag))?(?:@(digest))?$`) and returns its captures.
fn match_reference(s: &str) -> Option<ReferenceParts<'_>> {
    // No `@` can occur in a name or tag, so the first one starts the digest.
    let (name_and_tag, digest) = match s.split_once('@') {
        Some((left, digest)) => (left, Some(digest)),
        None => (s, None),
    };
    if digest.is_some_and(|d| !is_reference_digest(d)) {
        return None;
    }
    // A name holds `:` only in its domain, which a `/` follows; so a `:` after the last `/` starts the tag.
    let (name, tag) = match name_and_tag.rfind(':') {
        Some(i) if !name_and_tag[i..].contains('/') => (&name_and_tag[..i], Some(&name_and_tag[i + 1..])),
        _ => (name_and_tag, None),
    };
    if tag.is_some_and(|t| !is_tag(t)) || !is_name(name) {
        return None;
    }
    Some(ReferenceParts { name, tag, digest })
}

/// Matches `namePat`: `[domain-and-port "/"] remote-name`.
fn is_name(name: &str) -> bool {
    is_remote_name(name)
        || name.split_once('/').is_some_and(|(first, rest)| is_domain_and_port(first) && is_remote_name(rest))
}

/// `anchoredNameRegexp`'s captures for a name that matched [`is_name`]: the optional domain group is
/// greedy, so the first segment is the domain whenever it can be, else the domain is empty.
fn split_name(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest)) if is_domain_and_port(first) && is_remote_name(rest) => (first, rest),
        _ => ("", name),
    }
}

/// `domainAndPort`: a domain name or a bracketed IPv6 address, then an optional `:digits` port.
fn is_domain_and_port(s: &str) -> bool {
    let (host_ok, port) = if let Some(bracketed) = s.strip_prefix('[') {
        // The address class excludes `]`, so the first `]` closes it. Zones (`%eth0`) and embedded IPv4
        // (`::192.0.2.33`) fall outside the class, as upstream intends.
        let Some((address, after)) = bracketed.split_once(']') else {
            return false;
        };
        let address_ok = !address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        (address_ok, after)
    } else {
        // A domain name has no `:`, so the first one starts the port.
        match s.find(':') {
            Some(i) => (is_domain_name(&s[..i]), &s[i..]),
            None => (is_domain_name(s), ""),
        }
    };
    host_ok
        && (port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())))
}

/// `domainName`: dot-separated components of letters (either case), digits and inner `-`.
fn is_domain_name(s: &str) -> bool {
    s.split('.').all(|component| {
        let bytes = component.as_bytes();
        bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// `remoteName`: one or more path components separated by single `/` (so no `//` and no trailing `/`).
fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// `pathComponent`: lower-case alphanumeric runs joined by exactly one separator each: `.`, `_`, `__`, or
/// any number of `-` (`dock..er`, `dock_.er`, `-x` and `x-` are all invalid).
fn is_path_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    if !bytes.first().is_some_and(is_lower_alnum) || !bytes.last().is_some_and(is_lower_alnum) {
        return false;
    }
    // Starts and ends with an alphanumeric, so every non-alphanumeric run sits between two of them.
    bytes
        .split(is_lower_alnum)
        .filter(|run| !run.is_empty())
        .all(|run| matches!(run, b"." | b"_" | b"__") || run.iter().all(|&b| b == b'-'))
}

fn is_lower_alnum(b: &u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[\w][\w.-]{0,127}` (Go's `\w` is ASCII only).
fn is_tag(t: &str) -> bool {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = t.as_bytes();
    bytes.len() <= TAG_MAX_LEN
        && bytes.first().is_some_and(|&b| is_word(b))
        && bytes.iter().all(|&b| is_word(b) || b == b'.' || b == b'-')
}

/// The reference grammar's digest (`digestPat`), which is looser than what go-digest then accepts.
fn is_reference_digest(d: &str) -> bool {
    let Some((algorithm, hex)) = d.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|component| {
        let bytes = component.as_bytes();
        bytes.first().is_some_and(u8::is_ascii_alphabetic) && bytes.iter().all(u8::is_ascii_alphanumeric)
    });
    algorithm_ok && hex.len() >= DIGEST_HEX_MIN_LEN && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// go-digest v1.0.0 `Digest.Validate`, which `Parse` runs on every digest the grammar accepted.
///
/// The kubelet binary links `crypto/sha256` and `crypto/sha512`, so sha256, sha384 and sha512 are the
/// "available" algorithms; they need exactly 2×size lower-case hex characters.
fn validate_digest(d: &str) -> Result<(), ReferenceError> {
    let Some((algorithm, encoded)) = d.split_once(':').filter(|(a, e)| !a.is_empty() && !e.is_empty()) else {
        return Err(ReferenceError::DigestInvalidFormat);
    };
    let hex_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            // Unknown algorithm: `DigestRegexpAnchored` decides between "invalid" and "unsupported".
            let algorithm_ok = algorithm.split(['.', '+', '_', '-']).all(|component| {
                !component.is_empty() && component.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
            let encoded_ok = encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'=' || b == b'_' || b == b'-');
            return Err(if algorithm_ok && encoded_ok {
                ReferenceError::DigestUnsupported
            } else {
                ReferenceError::DigestInvalidFormat
            });
        }
    };
    if encoded.len() != hex_len {
        return Err(ReferenceError::DigestInvalidLength);
    }
    if !encoded.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(ReferenceError::DigestInvalidFormat);
    }
    Ok(())
}

/// `anchoredIdentifierRegexp`: exactly 64 lower-case hex characters.
fn is_hex_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Go's `strings.ToLower(s) != s`: whether any character has a lower-case mapping other than itself.
///
/// Rust's full mapping and Go's simple mapping differ only in *what* a character lowers to, not in
/// *whether* it changes (up to Unicode version differences, which only matter for non-ASCII input, and
/// that is rejected by the ASCII-only grammar either way).
fn lowercase_changes(s: &str) -> bool {
    s.chars().any(|c| {
        let mut lowered = c.to_lowercase();
        !(lowered.next() == Some(c) && lowered.next().is_none())
    })
}

/// Go's `strings.ToLower(s)` for the only purpose `Parse` uses it: matching the ASCII-only grammar.
///
/// Returns `None` when the lowered string would keep a non-ASCII character (then it cannot match). Under
/// Go's `unicode.ToLower` exactly two non-ASCII characters lower to ASCII: U+0130 `İ` → `i` and U+212A
/// (Kelvin sign) → `k`; Rust's `to_lowercase` maps `İ` to two characters, so they are spelled out here.
fn go_ascii_lowercase(s: &str) -> Option<String> {
    s.chars()
        .map(|c| match c {
            '\u{0130}' => Some('i'),
            '\u{212A}' => Some('k'),
            c if c.is_ascii() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256_EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const SHA256_BUSYBOX: &str = "sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
    const HEX64: &str = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
    const HUB: &str = "docker.io";

    /// One valid image and the `ImageRef` Go computes for it.
    struct Valid {
        id: &'static str,
        image: String,
        domain: &'static str,
        path: String,
        tag: Option<String>,
        digest: Option<String>,
    }

    fn ok(id: &'static str, image: impl Into<String>, domain: &'static str, path: impl Into<String>) -> Valid {
        Valid { id, image: image.into(), domain, path: path.into(), tag: None, digest: None }
    }

    impl Valid {
        fn tag(mut self, tag: impl Into<String>) -> Self {
            self.tag = Some(tag.into());
            self
        }

        fn digest(mut self, digest: impl Into<String>) -> Self {
            self.digest = Some(digest.into());
            self
        }
    }

    fn check_valid(cases: &[Valid]) {
        for case in cases {
            let got = parse_normalized_named(&case.image)
                .unwrap_or_else(|e| panic!("{}: {:?} should be valid, got {e}", case.id, case.image));
            let want = ImageRef {
                domain: case.domain.to_owned(),
                path: case.path.clone(),
                tag: case.tag.clone(),
                digest: case.digest.clone(),
            };
            assert_eq!(got, want, "{}: {:?}", case.id, case.image);
            let want_name =
                if case.domain.is_empty() { case.path.clone() } else { format!("{}/{}", case.domain, case.path) };
            assert_eq!(got.name(), want_name, "{}: name()", case.id);
            assert_eq!(got.is_docker_hub(), case.domain == HUB, "{}: is_docker_hub()", case.id);
        }
    }

    fn check_invalid(cases: &[(&str, String, ReferenceError)]) {
        for (id, image, want) in cases {
            assert_eq!(parse_normalized_named(image).as_ref(), Err(want), "{id}: {image:?}");
        }
    }

    fn remote_upper(remote: &str) -> ReferenceError {
        ReferenceError::RemoteNameNotLowercase { remote: remote.to_owned() }
    }

    use ReferenceError::{
        DigestInvalidFormat, DigestInvalidLength, DigestUnsupported, InvalidFormat, NameContainsUppercase, NameTooLong,
    };

    #[test]
    #[rustfmt::skip]
    fn spec_section_3_valid_vectors() {
        check_valid(&[
            // N1: the kubelet then defaults the tag to `latest`; the lookup string is unaffected.
            ok("N1", "root", HUB, "library/root"),
            ok("N2", "root:tag", HUB, "library/root").tag("tag"),
            ok("N3", format!("root@{SHA256_EMPTY}"), HUB, "library/root").digest(SHA256_EMPTY),
            ok("N4", "user/repo:tag", HUB, "user/repo").tag("tag"),
            ok("N5", format!("url:5000/repo@{SHA256_EMPTY}"), "url:5000", "repo").digest(SHA256_EMPTY),
            ok("N6", "docker.io/foo", HUB, "library/foo"),
            ok("N7", "index.docker.io/library/ubuntu-12.04-base", HUB, "library/ubuntu-12.04-base"),
            ok("N8", "docker.io/library/foo/bar", HUB, "library/foo/bar"),
            ok("N9", "test_com/foo", HUB, "test_com/foo"),
            ok("N10", "test-com:8080/foo", "test-com:8080", "foo"),
            ok("N11", "xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
            ok("N12", "127.0.0.1:8000/privatebase", "127.0.0.1:8000", "privatebase"),
            ok("N13", "[fc00::1]:5000/docker", "[fc00::1]:5000", "docker"),
            ok("N14", "Foo/bar", "Foo", "bar"),
            ok("N15", format!("busybox:latest@{SHA256_BUSYBOX}"), HUB, "library/busybox")
                .tag("latest")
                .digest(SHA256_BUSYBOX),
            ok("N16", "registry-1.docker.io/nginx", "registry-1.docker.io", "nginx"),
            ok("N17", "localhost/app", "localhost", "app"),
            ok("N18", "localhost:5000", HUB, "library/localhost").tag("5000"),
            ok("N19", "example.com", HUB, "library/example.com"),
            ok("N20", "DOCKER.IO/nginx", "DOCKER.IO", "nginx"),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn spec_section_3_invalid_vectors_n21() {
        check_invalid(&[
            ("N21", "docker/Docker".into(), remote_upper("docker/Docker")),
            ("N21", "docker.io/docker/Docker".into(), remote_upper("docker/Docker")),
            ("N21", "-docker".into(), InvalidFormat),
            ("N21", "docker///docker".into(), InvalidFormat),
            ("N21", "https://github.com/docker/docker".into(), InvalidFormat),
            ("N21", "[fc00::1]:5000".into(), InvalidFormat),
            ("N21", "fc00::1:5000/debian".into(), InvalidFormat),
            ("N21", HEX64.into(), ReferenceError::HexIdentifier { name: HEX64.into() }),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn section_7_path_length_limit_excludes_domain_includes_library() {
        let b254 = "b".repeat(254);
        let a247 = "a".repeat(247);
        check_valid(&[
            // §7 item 4: 271 characters in all, but the path is exactly 255.
            ok("§7.4", format!("reg.example.com/a{b254}"), "reg.example.com", format!("a{b254}")),
            // `library/` (8) + 247 = 255.
            ok("§7.4", a247.clone(), HUB, format!("library/{a247}")),
            // The tag does not count either.
            ok("§7.4", format!("{a247}:v1"), HUB, format!("library/{a247}")).tag("v1"),
        ]);
        check_invalid(&[
            ("§7.4", format!("reg.example.com/ab{b254}"), NameTooLong),
            ("§7.4", "a".repeat(248), NameTooLong),
            ("§7.4", format!("x/{}", "a".repeat(254)), NameTooLong),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn section_7_images_and_keys_facts() {
        check_valid(&[
            ok("§7 images", "reg.example.com:5000", HUB, "library/reg.example.com").tag("5000"),
            ok("§7 images", "aB/c", "aB", "c"),
            ok("§7 images", "A/b", "A", "b"),
        ]);
    }

    /// The valid and invalid lists of upstream `normalize_test.go` (S8), beyond the N vectors.
    #[test]
    #[rustfmt::skip]
    fn upstream_normalize_test_vectors() {
        let song = "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev";
        check_valid(&[
            ok("S8", "docker/docker", HUB, "docker/docker"),
            ok("S8", "library/debian", HUB, "library/debian"),
            ok("S8", "debian", HUB, "library/debian"),
            ok("S8", "docker.io/docker/docker", HUB, "docker/docker"),
            ok("S8", "docker.io/debian", HUB, "library/debian"),
            ok("S8", "index.docker.io/docker/docker", HUB, "docker/docker"),
            ok("S8", "index.docker.io/debian", HUB, "library/debian"),
            ok("S8", "127.0.0.1:5000/docker/docker", "127.0.0.1:5000", "docker/docker"),
            ok("S8", "192.168.0.1", HUB, "library/192.168.0.1"),
            ok("S8", "192.168.0.1:80", HUB, "library/192.168.0.1").tag("80"),
            ok("S8", "192.168.0.1:8/debian", "192.168.0.1:8", "debian"),
            ok("S8", "[fc00::1]:5000/docker/docker", "[fc00::1]:5000", "docker/docker"),
            ok("S8", "[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000", "library/debian"),
            ok("S8", format!("docker.io/{HEX64}"), HUB, format!("library/{HEX64}")),
            ok("S8", "Docker/docker", "Docker", "docker"),
            ok("S8", "DOCKER/docker", "DOCKER", "docker"),
            ok("S8", song, HUB, format!("library/{song}")),
            ok("S8", "docker-rules/docker", HUB, "docker-rules/docker"),
            ok("S8", "docker---rules/docker", HUB, "docker---rules/docker"),
            ok("S8", "d/docker", HUB, "d/docker"),
            ok("S8", "jess/t", HUB, "jess/t"),
            ok("S8", "dock__er/docker", HUB, "dock__er/docker"),
            ok("S8", "test.com/foo", "test.com", "foo"),
            ok("S8", "xn--n3h.com/foo", "xn--n3h.com", "foo"),
            ok("S8", "example.com:8000/private/moonbase", "example.com:8000", "private/moonbase"),
            ok("S8", "FOO/bar", "FOO", "bar"),
        ]);
        let long_namespace = "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255"
            .repeat(4)
            .replace("255this", "255_this");
        check_invalid(&[
            ("S8", "-docker/docker".into(), InvalidFormat),
            ("S8", "-docker.io/docker/docker".into(), InvalidFormat),
            ("S8", "docker.io/docker///docker".into(), InvalidFormat),
            ("S8", "[fc00::1]".into(), InvalidFormat),
            ("S8", "[fe80::1%eth0]:5000/debian".into(), InvalidFormat),
            ("S8", "[2001:db8:3:4::192.0.2.33]:5000/debian".into(), InvalidFormat),
            ("S8", "docker-/docker".into(), InvalidFormat),
            ("S8", "-docker-/docker".into(), InvalidFormat),
            ("S8", "____/____".into(), InvalidFormat),
            ("S8", "_docker/_docker".into(), InvalidFormat),
            ("S8", "dock..er/docker".into(), InvalidFormat),
            ("S8", "dock_.er/docker".into(), InvalidFormat),
            ("S8", "dock-.er/docker".into(), InvalidFormat),
            ("S8", "docker/".into(), InvalidFormat),
            ("S8", format!("{long_namespace}/docker"), NameTooLong),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn tags() {
        let max_tag = &"V_1.2-x".repeat(19)[..TAG_MAX_LEN];
        check_valid(&[
            // Tags, unlike paths, may be upper case; the lookup string never includes them (R20).
            ok("tag", "nginx:Latest", HUB, "library/nginx").tag("Latest"),
            ok("tag", "nginx:_x", HUB, "library/nginx").tag("_x"),
            ok("tag", format!("nginx:{max_tag}"), HUB, "library/nginx").tag(max_tag),
            ok("tag", "localhost:5000/app:1.0", "localhost:5000", "app").tag("1.0"),
            ok("tag", "[fc00::1]:5000/app:v", "[fc00::1]:5000", "app").tag("v"),
        ]);
        check_invalid(&[
            ("tag", format!("nginx:{max_tag}x"), InvalidFormat),
            ("tag", "nginx:".into(), InvalidFormat),
            ("tag", "nginx:-x".into(), InvalidFormat),
            ("tag", "nginx:.x".into(), InvalidFormat),
            ("tag", "nginx:a:b".into(), InvalidFormat),
            ("tag", "a.com/b:c/d".into(), InvalidFormat),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn digests() {
        let sha384 = format!("sha384:{}", "ab".repeat(48));
        let sha512 = format!("sha512:{}", "0f".repeat(64));
        check_valid(&[
            ok("digest", format!("nginx@{sha384}"), HUB, "library/nginx").digest(&sha384),
            ok("digest", format!("reg.example.com/a/b:v2@{sha512}"), "reg.example.com", "a/b")
                .tag("v2")
                .digest(&sha512),
        ]);
        let hex64 = &SHA256_EMPTY["sha256:".len()..];
        let hex32 = &hex64[..32];
        check_invalid(&[
            // Fails the reference grammar itself (under 32 hex characters, no algorithm, bad separator).
            ("digest", "nginx@sha256:abc".into(), InvalidFormat),
            ("digest", format!("nginx@{hex64}"), InvalidFormat),
            ("digest", format!("nginx@sha256:{hex64}g"), InvalidFormat),
            ("digest", format!("nginx@sha--256:{hex64}"), InvalidFormat),
            ("digest", format!("nginx@1sha:{hex64}"), InvalidFormat),
            ("digest", format!("nginx@{SHA256_EMPTY}@{SHA256_EMPTY}"), InvalidFormat),
            ("digest", format!("nginx@sha256:{hex64}:{hex64}"), InvalidFormat),
            // Passes the grammar, then go-digest `Validate` rejects it.
            ("digest", format!("nginx@sha256:{}", &hex64[..63]), DigestInvalidLength),
            ("digest", format!("nginx@sha256:{hex64}00"), DigestInvalidLength),
            ("digest", format!("nginx@sha512:{hex64}"), DigestInvalidLength),
            ("digest", format!("nginx@sha256:{}", hex64.to_ascii_uppercase()), DigestInvalidFormat),
            ("digest", format!("nginx:v1@SHA256:{hex64}"), DigestInvalidFormat),
            ("digest", format!("nginx:v1@Md5:{hex32}"), DigestInvalidFormat),
            ("digest", format!("nginx@md5:{hex32}"), DigestUnsupported),
            ("digest", format!("nginx@sha256+b64u.x:{hex64}"), DigestUnsupported),
            // Without a tag the first `:` is the digest's, so the remote checked for case is
            // `library/nginx@SHA256`, and that check comes first.
            ("digest", format!("nginx@SHA256:{hex64}"), remote_upper("library/nginx@SHA256")),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn domain_detection_r21() {
        check_valid(&[
            ok("R21", "LOCALHOST/app", "LOCALHOST", "app"),
            ok("R21", "localhost:5000/app", "localhost:5000", "app"),
            ok("R21", "registry:5000/foo/bar", "registry:5000", "foo/bar"),
            ok("R21", "index.docker.io/nginx", HUB, "library/nginx"),
            ok("R21", "docker.io/library/nginx", HUB, "library/nginx"),
            ok("R21", "reg.example.com/nginx", "reg.example.com", "nginx"),
            ok("R21", "foo/bar/baz", HUB, "foo/bar/baz"),
            // Go corner: `splitDockerDomain` takes `a_b.c` for a domain (it has a dot), the domain
            // grammar rejects it, and `Parse` reads the whole name as a path: `Name()` is `a_b.c/app`.
            ok("R21", "a_b.c/app", "", "a_b.c/app"),
        ]);
        check_invalid(&[
            // An empty port fails the domain grammar, and `:` is not a path character.
            ("R21", "reg.example.com:/x".into(), InvalidFormat),
            ("R21", "localhost:/x".into(), InvalidFormat),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn uppercase_errors_pick_the_go_message() {
        check_invalid(&[
            ("upper", "Foo/Bar".into(), remote_upper("Bar")),
            ("upper", "NGINX".into(), remote_upper("library/NGINX")),
            ("upper", "NGINX:Latest".into(), remote_upper("library/NGINX")),
            ("upper", "reg.example.com/Team/app:v1".into(), remote_upper("Team/app")),
            // The domain may be upper case, but not with characters the domain grammar refuses; the
            // lower-cased string matches as a path, so `Parse` reports the upper case.
            ("upper", "Foo_x/bar".into(), NameContainsUppercase),
            // Go's `unicode.ToLower` maps U+0130 and U+212A to ASCII `i` and `k`.
            ("upper", "a.com/b:\u{0130}".into(), NameContainsUppercase),
            ("upper", "a.com/b:\u{212A}".into(), NameContainsUppercase),
            ("upper", "a.com/b:\u{00C9}".into(), InvalidFormat),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn hostile_inputs_are_errors_not_panics() {
        check_invalid(&[
            // An empty image reaches `Parse` as `docker.io/library/`, hence not `ErrNameEmpty`.
            ("hostile", String::new(), InvalidFormat),
            ("hostile", "/".into(), InvalidFormat),
            ("hostile", ":".into(), InvalidFormat),
            ("hostile", "@".into(), InvalidFormat),
            ("hostile", "nginx\n".into(), InvalidFormat),
            ("hostile", "ngi\0nx".into(), InvalidFormat),
            ("hostile", " nginx".into(), InvalidFormat),
            ("hostile", "nginx\u{7f}".into(), InvalidFormat),
            ("hostile", "ñginx".into(), InvalidFormat),
            ("hostile", "reg.example.com/💥".into(), InvalidFormat),
            ("hostile", "réG.example.com/app".into(), InvalidFormat),
            ("hostile", "[/x".into(), InvalidFormat),
            ("hostile", "[]:5000/x".into(), InvalidFormat),
            ("hostile", "[::1]x/y".into(), InvalidFormat),
            ("hostile", "a.com:5000x/y".into(), InvalidFormat),
            ("hostile", "a-.com/y".into(), InvalidFormat),
            ("hostile", "a.com./y".into(), InvalidFormat),
            ("hostile", "a".repeat(10_000), NameTooLong),
            ("hostile", "/".repeat(10_000), InvalidFormat),
            ("hostile", ":".repeat(10_000), InvalidFormat),
            ("hostile", "a-".repeat(5_000), InvalidFormat),
            ("hostile", format!("a.com/{}", "a/".repeat(5_000)), InvalidFormat),
            ("hostile", format!("{}/x", "a.".repeat(5_000)), InvalidFormat),
            ("hostile", format!("x@sha256:{}", "a".repeat(10_000)), DigestInvalidLength),
        ]);
        // Quadratic behaviour would show as a hang here; every check is a single pass.
        let big = format!("{}{}", "a-".repeat(500_000), "@".repeat(500_000));
        assert_eq!(parse_normalized_named(&big), Err(InvalidFormat));
    }

    #[test]
    fn error_messages_mirror_go() {
        let message = |image: &str| parse_normalized_named(image).unwrap_err().to_string();
        assert_eq!(message("-x"), "invalid reference format");
        assert_eq!(
            message("docker/Docker"),
            "invalid reference format: repository name (docker/Docker) must be lowercase"
        );
        assert_eq!(
            message(HEX64),
            format!("invalid repository name ({HEX64}), cannot specify 64-byte hexadecimal strings")
        );
        assert_eq!(message(&"a".repeat(248)), "repository name must not be more than 255 characters");
        assert_eq!(message("Foo_x/bar"), "repository name must be lowercase");
        assert_eq!(message(&format!("x@md5:{}", "0".repeat(32))), "unsupported digest algorithm");
        assert_eq!(message(&format!("x@sha256:{}", "0".repeat(32))), "invalid checksum digest length");
        assert_eq!(message(&format!("x@sha256:{}", "A".repeat(64))), "invalid checksum digest format");
    }

    #[test]
    fn display_is_the_fully_qualified_reference() {
        let image = format!("busybox:latest@{SHA256_BUSYBOX}");
        let parsed = parse_normalized_named(&image).expect("valid");
        assert_eq!(parsed.to_string(), format!("docker.io/library/{image}"));
        let odd = parse_normalized_named("a_b.c/app").expect("valid");
        assert_eq!(odd.to_string(), "a_b.c/app");
    }

    /// Guards the claim in [`go_ascii_lowercase`]: no other character lowers to ASCII.
    #[test]
    fn only_two_non_ascii_characters_lower_to_ascii() {
        let lowering_to_ascii: Vec<char> = (0x80..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|c| c.to_lowercase().next().is_some_and(|l| l.is_ascii()))
            .collect();
        assert_eq!(lowering_to_ascii, ['\u{0130}', '\u{212A}']);
    }
}
