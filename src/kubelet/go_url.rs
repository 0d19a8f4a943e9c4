//! The part of Go's `net/url.Parse` (Go 1.26, the toolchain of kubelet 1.36, checked against the
//! kubelet's own code: tests/kubelet_oracle.rs) and `net.SplitHostPort` that decides how the kubelet
//! reads registry keys and image names.
//!
//! The kubelet normalizes every docker config key with `url.Parse` (spec R13-R16) and re-parses
//! keys and image names with `url.Parse("https://" + s)` when matching (R24-R25). Its odd corners
//! are observable, so they are reproduced here rather than "fixed":
//! - `#` ends the URL before anything else is looked at, and `?` ends the path (R17);
//! - userinfo (`user@`) is validated and then dropped;
//! - the host may hold any of ``!$&'()*+,;=:[]<>"`` besides letters, digits and `-._~`, and may
//!   percent-escape only bytes >= 0x80 (and `%25`);
//! - only digits may follow the host's last `:` (`validOptionalPort`), with no range check, and
//!   an empty port is fine;
//! - brackets follow the Go 1.26 rules: a host may hold a `[` only as its first byte, and the text
//!   from there to the last `]` must be an IPv6 address (with an optional zone). Go 1.25.2-1.25.x
//!   silently dropped text before the `[` (`x[fc00::1]:5000` read as `[fc00::1]:5000`, spec §7.2);
//!   Go 1.26 rejects such a host, so kubelet 1.36 drops the key;
//! - only one colon outside brackets: Go 1.26's `urlstrictcolons` (on by default for http and
//!   https URLs, which is every URL the kubelet parses here) takes the port from the first `:`, so
//!   `a:1:2` is an invalid port where Go 1.25 accepted it (spec §7.3);
//! - the path is percent-decoded (`u.Path`).
//!
//! Only `Host` and `Path` are kept; scheme, userinfo, query and fragment are validated as Go does
//! and then discarded.

use std::borrow::Cow;

/// Why Go's `url.Parse` or `net.SplitHostPort` rejects a string. The variants never carry the
/// offending text (it could be part of a password written into a key), except a single invalid
/// host character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("invalid control character in URL")]
    ControlCharacter,
    #[error("missing protocol scheme")]
    MissingScheme,
    #[error("first path segment in URL cannot contain colon")]
    ColonInFirstSegment,
    #[error("invalid userinfo")]
    InvalidUserinfo,
    #[error("missing ']' in host")]
    MissingCloseBracket,
    #[error("invalid port after host: only digits may follow the last ':'")]
    InvalidPort,
    #[error("invalid IP-literal: only an IPv6 address may be enclosed in brackets")]
    InvalidIpLiteral,
    #[error("invalid character {0:?} in host name")]
    InvalidHostChar(char),
    #[error("invalid URL escape in the {0}")]
    InvalidEscape(UrlPart),
    /// Go accepts this, but the decoded host or path is not UTF-8 and cannot be held in a Rust
    /// `String`. Such a key can never match an image name (those are ASCII), so treating it as
    /// unparsable changes no lookup result.
    #[error("the percent-decoded {0} is not valid UTF-8")]
    NotUtf8(UrlPart),
    #[error("missing port in address")]
    MissingPort,
    #[error("too many colons in address")]
    TooManyColons,
    #[error("missing ']' in address")]
    AddrMissingCloseBracket,
    #[error("unexpected '[' in address")]
    UnexpectedOpenBracket,
    #[error("unexpected ']' in address")]
    UnexpectedCloseBracket,
}

/// The URL component an escape error was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlPart {
    Host,
    Zone,
    Path,
    Userinfo,
    Fragment,
}

impl std::fmt::Display for UrlPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Host => "host",
            Self::Zone => "IPv6 zone",
            Self::Path => "path",
            Self::Userinfo => "userinfo",
            Self::Fragment => "fragment",
        })
    }
}

/// The fields of Go's `url.URL` that the kubelet reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GoUrl {
    /// `u.Host`: `host` or `host:port`, percent-decoded, brackets kept (`[fc00::1]:5000`).
    pub host: String,
    /// `u.Path`: percent-decoded, without query and fragment.
    pub path: String,
}

/// Go's `url.Parse(raw)` restricted to `Host` and `Path`.
pub fn parse(raw: &str) -> Result<GoUrl, UrlError> {
    // `#frag` is cut off first, so a `?` after it is part of the fragment.
    let (main, fragment) = raw.split_once('#').unwrap_or((raw, ""));
    let url = parse_without_fragment(main)?;
    if !fragment.is_empty() {
        // Only the escapes are checked (`setFragment`); the value is not needed.
        unescape(fragment.as_bytes(), Mode::Fragment)?;
    }
    Ok(url)
}

/// Go's `net.SplitHostPort`. The result borrows from `hostport`; brackets around an IPv6 host
/// are removed (`[fc00::1]:5000` gives `fc00::1` and `5000`).
pub fn split_host_port(hostport: &str) -> Result<(&str, &str), UrlError> {
    let bytes = hostport.as_bytes();
    // The port starts after the last colon.
    let last_colon = hostport.rfind(':').ok_or(UrlError::MissingPort)?;
    let (host, no_open_before, no_close_before) = if bytes[0] == b'[' {
        // Expect the first ']' just before the last ':'.
        let end = hostport.find(']').ok_or(UrlError::AddrMissingCloseBracket)?;
        if end + 1 == hostport.len() {
            return Err(UrlError::MissingPort);
        }
        if end + 1 != last_colon {
            return Err(if bytes[end + 1] == b':' { UrlError::TooManyColons } else { UrlError::MissingPort });
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..last_colon];
        if host.contains(':') {
            return Err(UrlError::TooManyColons);
        }
        (host, 0, 0)
    };
    if bytes[no_open_before..].contains(&b'[') {
        return Err(UrlError::UnexpectedOpenBracket);
    }
    if bytes[no_close_before..].contains(&b']') {
        return Err(UrlError::UnexpectedCloseBracket);
    }
    Ok((host, &hostport[last_colon + 1..]))
}

/// Go's unexported `parse(rawURL, viaRequest=false)`.
fn parse_without_fragment(raw: &str) -> Result<GoUrl, UrlError> {
    if raw.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err(UrlError::ControlCharacter);
    }
    if raw == "*" {
        return Ok(GoUrl { host: String::new(), path: "*".to_owned() });
    }
    let (scheme, rest) = split_scheme(raw)?;
    // Whether `?` is the last byte (ForceQuery) or not, everything from the first `?` is query.
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);

    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            // `scheme:opaque`: no host, no path.
            return Ok(GoUrl::default());
        }
        // A relative path whose first segment has a colon would look like a scheme.
        let first_segment = rest.split_once('/').map_or(rest, |(first, _)| first);
        if first_segment.contains(':') {
            return Err(UrlError::ColonInFirstSegment);
        }
    }

    let mut host = String::new();
    let mut path = rest;
    if (!scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority = &rest[2..];
        let (authority, after) = match authority.find('/') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        };
        host = parse_authority(authority)?;
        path = after;
    }
    let path = into_string(unescape(path.as_bytes(), Mode::Path)?, UrlPart::Path)?;
    Ok(GoUrl { host, path })
}

/// Go's `getScheme`: `[a-zA-Z][a-zA-Z0-9+.-]*:` or no scheme at all.
fn split_scheme(raw: &str) -> Result<(&str, &str), UrlError> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err(UrlError::MissingScheme),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Go's `parseAuthority`: validates the userinfo (which is then dropped) and returns the host.
fn parse_authority(authority: &str) -> Result<String, UrlError> {
    let Some(at) = authority.rfind('@') else {
        return parse_host(authority);
    };
    let host = parse_host(&authority[at + 1..])?;
    let userinfo = &authority[..at];
    if !valid_userinfo(userinfo) {
        return Err(UrlError::InvalidUserinfo);
    }
    // Splitting at ':' before unescaping cannot change the outcome (':' is not a hex digit).
    unescape(userinfo.as_bytes(), Mode::UserPassword)?;
    Ok(host)
}

/// Go's `validUserinfo` (RFC 3986 userinfo characters, plus `@` for compatibility).
fn valid_userinfo(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c))
}

/// Go 1.26's `parseHost` for http and https URLs (strict colons).
fn parse_host(host: &str) -> Result<String, UrlError> {
    if let Some(open) = host.rfind('[') {
        if open > 0 {
            return Err(UrlError::InvalidIpLiteral);
        }
        // An IP-literal (RFC 3986, RFC 6874): "[fe80::1]", "[fe80::1%25en0]", "[fe80::1]:80".
        let close = host.rfind(']').ok_or(UrlError::MissingCloseBracket)?;
        let colon_port = &host[close + 1..];
        if !valid_optional_port(colon_port) {
            return Err(UrlError::InvalidPort);
        }
        // A `]` before the last `[` leaves that `[` in `colon_port`, rejected just above.
        let hostname = &host[open + 1..close];
        let unescaped: Cow<'_, [u8]> = match hostname.find("%25") {
            // `%25` introduces the zone, which may escape more than the address may.
            Some(zone) => {
                let mut bytes = unescape(&hostname.as_bytes()[..zone], Mode::Host)?.into_owned();
                bytes.extend_from_slice(&unescape(&hostname.as_bytes()[zone..], Mode::Zone)?);
                Cow::Owned(bytes)
            }
            None => unescape(hostname.as_bytes(), Mode::Host)?,
        };
        // Only an IPv6 address (IPv4-mapped included, plain IPv4 not) may be bracketed.
        if !is_ipv6_literal(&unescaped) {
            return Err(UrlError::InvalidIpLiteral);
        }
        let mut out = String::with_capacity(unescaped.len() + colon_port.len() + 2);
        out.push('[');
        out.push_str(&into_string(unescaped, UrlPart::Host)?);
        out.push(']');
        out.push_str(colon_port);
        return Ok(out);
    }
    // `urlstrictcolons`: the port starts at the first colon, so a second one makes it invalid.
    if let Some(i) = host.find(':')
        && !valid_optional_port(&host[i..])
    {
        return Err(UrlError::InvalidPort);
    }
    into_string(unescape(host.as_bytes(), Mode::Host)?, UrlPart::Host)
}

/// Go's `validOptionalPort`: empty, or `:` followed by digits only (no range check, may be empty).
fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => port.is_empty(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
}

impl Mode {
    fn part(self) -> UrlPart {
        match self {
            Self::Path => UrlPart::Path,
            Self::Host => UrlPart::Host,
            Self::Zone => UrlPart::Zone,
            Self::UserPassword => UrlPart::Userinfo,
            Self::Fragment => UrlPart::Fragment,
        }
    }
}

/// Go's `shouldEscape(c, encodeHost)` (identical for `encodeZone`): whether an ASCII byte is not
/// allowed raw in a host.
fn not_allowed_in_host(c: u8) -> bool {
    !(c.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"".contains(&c))
}

/// Go's `unescape` for the modes `url.Parse` uses (`+` is never special there).
fn unescape(s: &[u8], mode: Mode) -> Result<Cow<'_, [u8]>, UrlError> {
    let host_like = matches!(mode, Mode::Host | Mode::Zone);
    let mut escapes = 0;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'%' {
            escapes += 1;
            if i + 2 >= s.len() || !s[i + 1].is_ascii_hexdigit() || !s[i + 2].is_ascii_hexdigit() {
                return Err(UrlError::InvalidEscape(mode.part()));
            }
            let is_pct25 = &s[i..i + 3] == b"%25";
            // RFC 3986: a host may %-encode only non-ASCII bytes; RFC 6874 adds %25.
            if mode == Mode::Host && unhex(s[i + 1]) < 8 && !is_pct25 {
                return Err(UrlError::InvalidEscape(mode.part()));
            }
            // A zone may escape only what it could hold raw (or a space).
            if mode == Mode::Zone {
                let v = unhex(s[i + 1]) << 4 | unhex(s[i + 2]);
                if !is_pct25 && v != b' ' && not_allowed_in_host(v) {
                    return Err(UrlError::InvalidEscape(mode.part()));
                }
            }
            i += 3;
        } else {
            if host_like && c < 0x80 && not_allowed_in_host(c) {
                return Err(UrlError::InvalidHostChar(char::from(c)));
            }
            i += 1;
        }
    }
    if escapes == 0 {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(s.len() - 2 * escapes);
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            out.push(unhex(s[i + 1]) << 4 | unhex(s[i + 2]));
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(Cow::Owned(out))
}

fn unhex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

fn into_string(bytes: Cow<'_, [u8]>, part: UrlPart) -> Result<String, UrlError> {
    match bytes {
        Cow::Borrowed(b) => std::str::from_utf8(b).map(str::to_owned).map_err(|_| UrlError::NotUtf8(part)),
        Cow::Owned(v) => String::from_utf8(v).map_err(|_| UrlError::NotUtf8(part)),
    }
}

/// `netip.ParseAddr(s)` succeeds and is not a plain IPv4 address: the check Go 1.25.2+ applies to
/// the inside of `[...]`. Go dispatches on the first `.`, `:` or `%`; a `.` means IPv4 (rejected
/// either way), `%` means a zone without an address.
fn is_ipv6_literal(s: &[u8]) -> bool {
    match s.iter().find(|&&c| matches!(c, b'.' | b':' | b'%')) {
        Some(b':') => parse_ipv6(s),
        _ => false,
    }
}

/// Go's `netip.parseIPv6`: hex groups of 1-4 digits, at most one `::`, an optional trailing
/// dotted IPv4 in the last 32 bits, an optional non-empty `%zone`.
fn parse_ipv6(input: &[u8]) -> bool {
    let mut s = input;
    if let Some(p) = s.iter().position(|&c| c == b'%') {
        if p + 1 == s.len() {
            return false; // an explicit zone must not be empty
        }
        s = &s[..p];
    }
    let mut ellipsis: Option<usize> = None;
    if s.starts_with(b"::") {
        ellipsis = Some(0);
        s = &s[2..];
        if s.is_empty() {
            return true; // "::"
        }
    }
    let mut filled = 0; // bytes of the 16-byte address parsed so far
    while filled < 16 {
        let digits = s.iter().take_while(|c| c.is_ascii_hexdigit()).count();
        if digits > 4 {
            return false;
        }
        if digits == 0 {
            return false;
        }
        if s.get(digits) == Some(&b'.') {
            // Trailing IPv4: it must fill exactly the last four bytes (or follow a `::`).
            if (ellipsis.is_none() && filled != 12) || filled + 4 > 16 {
                return false;
            }
            if !valid_ipv4_fields(s) {
                return false;
            }
            s = &[];
            filled += 4;
            break;
        }
        filled += 2;
        s = &s[digits..];
        if s.is_empty() {
            break;
        }
        if s[0] != b':' || s.len() == 1 {
            return false;
        }
        s = &s[1..];
        if s[0] == b':' {
            if ellipsis.is_some() {
                return false; // multiple "::"
            }
            ellipsis = Some(filled);
            s = &s[1..];
            if s.is_empty() {
                break;
            }
        }
    }
    if !s.is_empty() {
        return false; // trailing garbage
    }
    match ellipsis {
        // Too short without "::", or a "::" that stands for no zero group.
        None => filled == 16,
        Some(_) => filled < 16,
    }
}

/// Go's `netip.parseIPv4Fields`: four decimal fields 0-255, no leading zeros, no empty fields.
fn valid_ipv4_fields(s: &[u8]) -> bool {
    let mut fields = 0;
    let mut val = 0u32;
    let mut digits = 0;
    for (i, &c) in s.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                if digits == 1 && val == 0 {
                    return false; // leading zero
                }
                val = val * 10 + u32::from(c - b'0');
                digits += 1;
                if val > 255 {
                    return false;
                }
            }
            b'.' => {
                if i == 0 || i == s.len() - 1 || s[i - 1] == b'.' || fields == 3 {
                    return false;
                }
                fields += 1;
                val = 0;
                digits = 0;
            }
            _ => return false,
        }
    }
    fields == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_path(raw: &str) -> Option<(String, String)> {
        parse(raw).ok().map(|u| (u.host, u.path))
    }

    /// (input, Some((Host, Path)) or None for an error), Go 1.26 `url.Parse` semantics.
    #[rustfmt::skip]
    const PARSE_CASES: &[(&str, Option<(&str, &str)>)] = &[
        ("https://registry.example.com", Some(("registry.example.com", ""))),
        ("https://registry.example.com/", Some(("registry.example.com", "/"))),
        ("https://registry.example.com/v2/team", Some(("registry.example.com", "/v2/team"))),
        ("http://h:5000/x", Some(("h:5000", "/x"))),
        // `?` starts the query and `#` the fragment (R17, §7).
        ("https://reg?.example.com", Some(("reg", ""))),
        ("https://?.x.com", Some(("", ""))),
        ("https://10.0.0.5?:5000", Some(("10.0.0.5", ""))),
        ("https://reg.example.com#frag?x", Some(("reg.example.com", ""))),
        ("https://reg.example.com/a?b#c", Some(("reg.example.com", "/a"))),
        ("https://reg.example.com?", Some(("reg.example.com", ""))),
        // A bad escape in the fragment is still an error; a control byte there is not.
        ("https://reg.example.com#%zz", None),
        ("https://reg.example.com#\n", Some(("reg.example.com", ""))),
        ("https://reg.example.com\n", None),
        // Upper-case or foreign schemes get `https://` prepended by the kubelet (R17).
        ("https://HTTPS://registry.example.com", Some(("HTTPS:", "//registry.example.com"))),
        ("https://oci://registry.example.com", Some(("oci:", "//registry.example.com"))),
        ("https://https://reg.example.com", Some(("https:", "//reg.example.com"))),
        // Userinfo is validated, then dropped (R16).
        ("https://user@registry.example.com", Some(("registry.example.com", ""))),
        ("https://u:p@ss@registry.example.com", Some(("registry.example.com", ""))),
        ("https://us er@registry.example.com", None),
        ("https://u%zz@registry.example.com", None),
        // Ports: digits only, no range check, may be empty (R14, §7).
        ("https://reg.example.com:", Some(("reg.example.com:", ""))),
        ("https://reg.example.com:99999", Some(("reg.example.com:99999", ""))),
        ("https://reg.example.com:05000", Some(("reg.example.com:05000", ""))),
        ("https://host:abc", None),
        ("https://host:*", None),
        // Go 1.26 `urlstrictcolons`: the port starts at the first colon (§7.3).
        ("https://reg.example.com:5000:5000", None),
        ("https://fc00::1", None),
        ("https://fc00::1:5000", None),
        ("https://fc00::1]:5000", None),
        // Host characters and escapes.
        ("https://a b.com", None),
        ("https://a\\b.com", None),
        ("https://a{b}.com", None),
        ("https://a|b.com", None),
        ("https://a^b.com", None),
        ("https://a`b.com", None),
        ("https://a!$&'()*+,;=<>\"~_-.com", Some(("a!$&'()*+,;=<>\"~_-.com", ""))),
        ("https://*.example.com", Some(("*.example.com", ""))),
        ("https://%41.com", None),
        ("https://%25.com", Some(("%.com", ""))),
        ("https://%C3%A9.com", Some(("é.com", ""))),
        ("https://é.com", Some(("é.com", ""))),
        ("https://%ff.com", None), // Go keeps it; not representable as UTF-8 (see UrlError::NotUtf8)
        ("https://%zz.com", None),
        ("https://%4.com", None),
        // Brackets, Go 1.26 (§7.2): only at the start of the host, only around an IPv6 address.
        ("https://[fc00::1]:5000", Some(("[fc00::1]:5000", ""))),
        ("https://[fc00::1]", Some(("[fc00::1]", ""))),
        ("https://[::1]/x", Some(("[::1]", "/x"))),
        ("https://[::]", Some(("[::]", ""))),
        ("https://[::ffff:1.2.3.4]", Some(("[::ffff:1.2.3.4]", ""))),
        ("https://[fe80::1%25en0]:80", Some(("[fe80::1%en0]:80", ""))),
        ("https://[fe80::1%25]", None),
        ("https://[fe80::1%25%41]", Some(("[fe80::1%A]", ""))),
        ("https://[fe80::1%25%2F]", None),
        ("https://x[fc00::1]:5000", None),
        ("https://a.b[fc00::1]:5000/app", None),
        ("https://[*]:5000", None),
        ("https://[fc00::*]:5000", None),
        ("https://[a.b]:5000", None),
        ("https://[1.2.3.4]", None),
        ("https://re[g].x.com", None),
        ("https://[fc00::1", None),
        ("https://[fc00::1]x", None),
        ("https://[fc00::1]:", Some(("[fc00::1]:", ""))),
        ("https://]x[", None),
        // Path decoding (R15, §7).
        ("https://x.com/team%2Fapp", Some(("x.com", "/team/app"))),
        ("https://x.com/v%31/", Some(("x.com", "/v1/"))),
        ("https://example.com/te%61m", Some(("example.com", "/team"))),
        ("https://x.com/a%zz", None),
        ("https://x.com/a%2", None),
        ("https://x.com/%ff", None), // Go keeps it; see UrlError::NotUtf8
        ("https://x.com/a+b", Some(("x.com", "/a+b"))),
        // Authority edge cases.
        ("https://", Some(("", ""))),
        ("https:///x", Some(("", "/x"))),
        ("https:opaque/x", Some(("", ""))),
        ("//host/p", Some(("host", "/p"))),
        ("///p", Some(("", "///p"))),
        ("*", Some(("", "*"))),
        ("a:b/c", Some(("", ""))),
        ("1a:b", None),
        (":x", None),
    ];

    #[test]
    fn parse_cases() {
        for &(raw, want) in PARSE_CASES {
            let want = want.map(|(h, p)| (h.to_owned(), p.to_owned()));
            assert_eq!(host_path(raw), want, "parse({raw:?})");
        }
    }

    #[test]
    fn parse_error_kinds() {
        assert_eq!(parse("https://host:abc"), Err(UrlError::InvalidPort));
        assert_eq!(parse("https://a b"), Err(UrlError::InvalidHostChar(' ')));
        assert_eq!(parse("https://[*]"), Err(UrlError::InvalidIpLiteral));
        assert_eq!(parse("https://[x"), Err(UrlError::MissingCloseBracket));
        assert_eq!(parse("https://x/%zz"), Err(UrlError::InvalidEscape(UrlPart::Path)));
        assert_eq!(parse("https://x/%ff"), Err(UrlError::NotUtf8(UrlPart::Path)));
        assert_eq!(parse("https://a b@x"), Err(UrlError::InvalidUserinfo));
        assert_eq!(parse(":x"), Err(UrlError::MissingScheme));
        assert_eq!(parse("a/b:c"), Ok(GoUrl { host: String::new(), path: "a/b:c".into() }));
        assert_eq!(parse("ab:c"), Ok(GoUrl::default()));
        assert_eq!(parse("./a:b"), Ok(GoUrl { host: String::new(), path: "./a:b".into() }));
        assert_eq!(parse("%:b"), Err(UrlError::ColonInFirstSegment));
        // Error texts never repeat the input (it may hold a password).
        let msg = parse("https://user:s3cr%zz@host").unwrap_err().to_string();
        assert!(!msg.contains("s3cr"), "{msg}");
    }

    /// Go's `net.SplitHostPort`.
    #[test]
    fn split_host_port_cases() {
        type Split<'a> = Result<(&'a str, &'a str), UrlError>;
        #[rustfmt::skip]
        let cases: &[(&str, Split<'_>)] = &[
            ("h:5000", Ok(("h", "5000"))),
            ("h:", Ok(("h", ""))),
            (":80", Ok(("", "80"))),
            ("[fc00::1]:5000", Ok(("fc00::1", "5000"))),
            ("[fe80::1%en0]:80", Ok(("fe80::1%en0", "80"))),
            ("[fc00::1]:", Ok(("fc00::1", ""))),
            ("h", Err(UrlError::MissingPort)),
            ("", Err(UrlError::MissingPort)),
            ("[fc00::1]", Err(UrlError::MissingPort)),
            ("[fc00::1]x:1", Err(UrlError::MissingPort)),
            ("[fc00::1]:1:2", Err(UrlError::TooManyColons)),
            ("[fc00::1:5000", Err(UrlError::AddrMissingCloseBracket)),
            ("fc00::1", Err(UrlError::TooManyColons)),
            ("a:1:2", Err(UrlError::TooManyColons)),
            ("a[b:1", Err(UrlError::UnexpectedOpenBracket)),
            ("a]b:1", Err(UrlError::UnexpectedCloseBracket)),
            ("[a[b]:1", Err(UrlError::UnexpectedOpenBracket)),
            ("HTTPS:", Ok(("HTTPS", ""))),
        ];
        for &(input, want) in cases {
            assert_eq!(split_host_port(input), want, "SplitHostPort({input:?})");
        }
    }

    /// `netip.ParseAddr` + `!Is4()` on bracket contents.
    #[test]
    fn ipv6_literals() {
        let valid = [
            "::",
            "::1",
            "fc00::1",
            "1:2:3:4:5:6:7:8",
            "1::",
            "1::8",
            "::ffff:1.2.3.4",
            "1:2:3:4:5:6:1.2.3.4",
            "fe80::1%en0",
            "ABCD::ef",
            "0:0:0:0:0:0:0:0",
            "::1.2.3.4",
        ];
        let invalid = [
            "",
            "1.2.3.4",
            "*",
            "fc00::*",
            "a.b",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "12345::",
            "1:2:3:4:5:6:7::8",
            "1:2:3:4:5:6:7:8::",
            "fe80::1%",
            "%en0",
            ":1",
            "1:",
            "1:2:3:4:5:1.2.3.4",
            "::01.2.3.4",
            "::1.2.3",
            "::1.2.3.4.5",
            "::256.1.1.1",
            "1:2:3:4:5:6:7:1.2.3.4",
            "g::1",
            "::1 ",
        ];
        for s in valid {
            assert!(is_ipv6_literal(s.as_bytes()), "{s:?} should be a valid IPv6 literal");
        }
        for s in invalid {
            assert!(!is_ipv6_literal(s.as_bytes()), "{s:?} should be rejected");
        }
    }
}
