//! Display-safe text: the one place where text that came from outside (Secret keys, Secret and Pod names, image
//! references, registry answers, error messages) is made fit to show to a person, a terminal, a log pipeline or a
//! metrics scraper.
//!
//! Two things happen here, and every human-readable output goes through them (`explain`, `verify` text and JSON,
//! `mutate`'s stderr, the warnings of an AdmissionReview, the text and JSON logs of `serve`, the labels of
//! `/metrics`):
//!
//! - **Redaction** ([`redact_userinfo`] for a registry key, [`redact_urls`] for free text). A registry key can hold
//!   `user:password@` (the kubelet discards it, spec R16), written in any spelling: any scheme in any case
//!   (`HTTPS://`, `Http://`, `oci://`), no scheme (`user:pass@host`), a leading `//`, userinfo before the scheme
//!   (`user:pass@HTTPS://host`), a password holding `/` or `@`, or the `@` percent-encoded (`%40`, `%2540`) or
//!   written as a full-width `＠`. Everything from the start of the authority up to the *last* `@`-like token of
//!   the key is replaced by `<redacted>`: a registry key has no other use for an `@` (image lookup names never
//!   contain one), so this never hides a host the kubelet could match, and it cannot be fooled by where a parser
//!   would end the authority.
//! - **Escaping** ([`escape`]): control characters (C0, DEL, C1: newline, carriage return, ESC, NUL, ...), the
//!   Unicode format characters that reorder or hide text (bidi embeddings, overrides, isolates and marks, zero-width
//!   characters, the BOM, tag characters, ...), and the line and paragraph separators become `\n`, `\u{1b}`,
//!   `\u{202e}`: a value can neither start a new log line, move the cursor, recolour a terminal, nor make text
//!   read differently from what it is.
//!
//! [`key`] and [`text`] combine both, [`bounded`] cuts, and [`label`] makes a metrics label value.

use std::borrow::Cow;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// What replaces a redacted part.
pub const REDACTED: &str = "<redacted>";

/// Registry keys are shown with at most this many characters (a key can be 100 KB long).
pub const MAX_KEY_CHARS: usize = 256;

/// Whether `c` must not reach a human-readable output as is: it would start a line, drive a terminal, or make the
/// text read differently (bidi controls, invisible characters).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Soft hyphen, Arabic number signs and letter mark, Syriac and other prepended format characters.
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{115F}'..='\u{1160}'
                | '\u{180E}'
                // Zero-width space, joiners, LRM, RLM.
                | '\u{200B}'..='\u{200F}'
                // Line and paragraph separators, bidi embeddings and overrides (LRE, RLE, PDF, LRO, RLO).
                | '\u{2028}'..='\u{202E}'
                // Word joiner, invisible operators, bidi isolates (LRI, RLI, FSI, PDI), deprecated format characters.
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                // Tag characters (invisible text).
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// Whether `text` holds no character [`is_unsafe_char`] refuses.
pub fn is_safe(text: &str) -> bool {
    !text.chars().any(is_unsafe_char)
}

/// `text` with each unsafe character written as an escape (`\n`, `\r`, `\t`, `\u{1b}`, `\u{202e}`). Borrowed when
/// there is nothing to escape. Escaping an escaped text changes nothing.
pub fn escape(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find(is_unsafe_char) else { return Cow::Borrowed(text) };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if is_unsafe_char(c) {
            // `escape_default` writes `\t`, `\r`, `\n` or `\u{..}` for every character escaped here.
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The position and length of the last `@`-like token of `text`: `@`, the full-width `＠` and small `﹫`, or a
/// percent-encoded `@` (`%40`, `%2540`, `%252540`, ...).
fn last_at(text: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut found = None;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        let len = match c {
            '@' => 1,
            '\u{FF20}' | '\u{FE6B}' => c.len_utf8(),
            '%' => {
                let mut j = i + 1;
                while bytes.get(j..j + 2) == Some(b"25") {
                    j += 2;
                }
                if bytes.get(j..j + 2) == Some(b"40") { j + 2 - i } else { 0 }
            }
            _ => 0,
        };
        if len > 0 {
            found = Some((i, len));
            if c == '%' {
                // `%25...40` is ASCII: skip the rest of it.
                chars.nth(len - 2);
            }
        }
    }
    found
}

/// `scheme:` as RFC 3986 writes one (`[A-Za-z][A-Za-z0-9+.-]*:`), in any case.
fn is_scheme_colon(text: &str) -> bool {
    let Some(scheme) = text.strip_suffix(':') else { return false };
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// A registry key (or anything shaped like a URL) with its userinfo replaced by `<redacted>`, whatever its
/// spelling (see the module documentation): everything from the start of the authority (after a leading
/// `scheme://` or `//`, kept only when it holds no `@`) up to the last `@`-like token. Borrowed when the key holds
/// no `@`-like token.
pub fn redact_userinfo(key: &str) -> Cow<'_, str> {
    let Some((at, len)) = last_at(key) else { return Cow::Borrowed(key) };
    let keep = match key.find("//") {
        Some(slashes) if slashes < at && (slashes == 0 || is_scheme_colon(&key[..slashes])) => slashes + 2,
        _ => 0,
    };
    if at == keep && len == 1 {
        // Nothing before the `@`: nothing to hide (and `<redacted>@` stays as it is).
        return Cow::Borrowed(key);
    }
    Cow::Owned(format!("{}{REDACTED}@{}", &key[..keep], &key[at + len..]))
}

/// Characters that end a URL-like token in free text.
fn ends_token(c: char) -> bool {
    c.is_whitespace() || is_unsafe_char(c) || matches!(c, '"' | '\'' | '`' | '<' | '>' | '(' | ')' | '[' | ']' | ',')
}

/// Free text with the userinfo of every URL in it redacted: each token (text between whitespace, quotes,
/// brackets and commas) that holds `://` or starts with `//` is passed through [`redact_userinfo`]. Other `@`s are
/// kept (`nginx@sha256:...`, `alice@example.com`): in free text only a URL says where its userinfo is. Keys are
/// redacted with [`redact_userinfo`] where they are known to be keys; this is the second line for text that only
/// quotes them.
pub fn redact_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("//") || last_at(text).is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut token_start = 0;
    let mut push_token = |out: &mut String, token: &str| {
        if token.contains("://") || token.starts_with("//") {
            let redacted = redact_userinfo(token);
            changed |= matches!(redacted, Cow::Owned(_));
            out.push_str(&redacted);
        } else {
            out.push_str(token);
        }
    };
    for (i, c) in text.char_indices() {
        if ends_token(c) {
            push_token(&mut out, &text[token_start..i]);
            out.push(c);
            token_start = i + c.len_utf8();
        }
    }
    push_token(&mut out, &text[token_start..]);
    if changed { Cow::Owned(out) } else { Cow::Borrowed(text) }
}

/// At most `max` characters of `text`, the cut marked with `…` (which counts).
pub fn bounded(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
            out.push('…');
            Cow::Owned(out)
        }
    }
}

/// A registry key as every output shows it: userinfo redacted, escaped, at most [`MAX_KEY_CHARS`] characters (a
/// longer key is cut and suffixed with a short hash of the shown form, so two long keys stay distinct).
pub fn key(key: &str) -> String {
    label(&redact_userinfo(key), MAX_KEY_CHARS)
}

/// Free text as every human-readable output shows it: escaped, then URL userinfo redacted (escaping first, so that
/// a control character inside a URL cannot split it into tokens that escape redaction). Not bounded; idempotent.
pub fn text(text: &str) -> Cow<'_, str> {
    match escape(text) {
        Cow::Borrowed(escaped) => redact_urls(escaped),
        Cow::Owned(escaped) => Cow::Owned(redact_urls(&escaped).into_owned()),
    }
}

/// One line of at most `max` characters: [`text`], then [`bounded`].
pub fn line(value: &str, max: usize) -> String {
    bounded(&text(value), max).into_owned()
}

/// A metrics label value: escaped, and when longer than `max` characters cut and suffixed with 8 hex digits of the
/// SHA-256 of the whole escaped value, so that two long values still make two series. The caller redacts keys
/// first ([`key`] does).
pub fn label(value: &str, max: usize) -> String {
    let escaped = escape(value);
    if escaped.chars().count() <= max {
        return escaped.into_owned();
    }
    let digest = Sha256::digest(escaped.as_bytes());
    let suffix: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let mut out: String = escaped.chars().take(max.saturating_sub(suffix.len() + 1)).collect();
    out.push('…');
    out.push_str(&suffix);
    out
}

// --- Logs ---------------------------------------------------------------------------------------------------

/// The field formatter of `serve`'s text log format: every field value, the message included, goes through
/// [`text`], so that a Pod name with a newline cannot forge a log line and no value can drive the terminal. Output
/// is otherwise that of tracing-subscriber's default: `message` alone, then `name=value`, separated by spaces.
pub fn log_fields() -> impl for<'writer> tracing_subscriber::fmt::FormatFields<'writer> + Send + Sync + 'static {
    use tracing_subscriber::field::MakeExt as _;
    tracing_subscriber::fmt::format::debug_fn(format_log_field).delimited(" ")
}

fn format_log_field(
    writer: &mut tracing_subscriber::fmt::format::Writer<'_>,
    field: &tracing::field::Field,
    value: &dyn std::fmt::Debug,
) -> std::fmt::Result {
    let name = field.name();
    // `log` records bridged by tracing-log carry their metadata as fields the formatter already shows.
    if name.starts_with("log.") {
        return Ok(());
    }
    let value = format!("{value:?}");
    let value = text(&value);
    match name {
        "message" => writer.write_str(&value),
        name => write!(writer, "{}={value}", name.strip_prefix("r#").unwrap_or(name)),
    }
}

/// An `io::Write` for `serve`'s JSON log lines: the JSON formatter already escapes control characters, so this
/// writes each unsafe character that JSON allows raw (bidi controls, line separators, invisible characters) as a
/// `\uXXXX` escape (the line still decodes to the same strings) and redacts URL userinfo ([`redact_urls`]). The
/// formatter writes one whole line per call.
pub struct SafeJsonLines<W>(pub W);

impl<W: std::io::Write> std::io::Write for SafeJsonLines<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        let (body, end) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*line, ""),
        };
        let redacted = redact_urls(body);
        let mut out = String::with_capacity(redacted.len() + end.len() + 16);
        for c in redacted.chars() {
            if is_unsafe_char(c) {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            } else {
                out.push(c);
            }
        }
        out.push_str(end);
        self.0.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_redacted_in_every_spelling() {
        let table: &[(&str, &str)] = &[
            ("https://user:pass@host", "https://<redacted>@host"),
            ("http://user:pass@host/v2/", "http://<redacted>@host/v2/"),
            ("HTTPS://user:pass@host", "HTTPS://<redacted>@host"),
            ("Http://user:pass@host:5000", "Http://<redacted>@host:5000"),
            ("oci://user:pass@host", "oci://<redacted>@host"),
            ("//user:pass@host", "//<redacted>@host"),
            ("user:pass@host", "<redacted>@host"),
            ("user@host", "<redacted>@host"),
            ("user:pass@HTTPS://host", "<redacted>@HTTPS://host"),
            ("u:p@HTTPS://u2:p2@host", "<redacted>@host"),
            ("https://https://user:pass@host", "https://<redacted>@host"),
            // A password holding `/`, `//` or `@`: the authority a parser would see ends too early.
            ("https://user:pa/ss@host/x", "https://<redacted>@host/x"),
            ("user:p//ss@host", "<redacted>@host"),
            ("https://user:p@ss@host", "https://<redacted>@host"),
            // Percent-encoded and look-alike at signs, encoded separators.
            ("https://user:pass%40host", "https://<redacted>@host"),
            ("https://user:pass%2540host", "https://<redacted>@host"),
            ("https%3A%2F%2Fuser%3Apass%40host", "<redacted>@host"),
            ("https:%2F%2Fuser:pass@host", "<redacted>@host"),
            ("https://user:pass\u{FF20}host", "https://<redacted>@host"),
            ("https://user:pass\u{FE6B}host", "https://<redacted>@host"),
            // Whitespace and junk before the scheme: nothing is kept.
            (" https://user:pass@host", "<redacted>@host"),
            ("https://us er:pa ss@host", "https://<redacted>@host"),
            // No userinfo.
            ("https://host/v2/", "https://host/v2/"),
            ("registry.example.com:5000/team", "registry.example.com:5000/team"),
            ("%zz", "%zz"),
            ("", ""),
        ];
        for (key, want) in table {
            assert_eq!(redact_userinfo(key), *want, "{key:?}");
            // Idempotent.
            assert_eq!(redact_userinfo(want), *want, "{want:?}");
        }
    }

    #[test]
    fn urls_in_free_text_are_redacted_and_other_ats_kept() {
        let table: &[(&str, &str)] = &[
            ("GET https://u:p@h/v2/ failed", "GET https://<redacted>@h/v2/ failed"),
            ("key \"HTTPS://u:p@h\": note", "key \"HTTPS://<redacted>@h\": note"),
            ("`oci://u:p%40h` and //x:y@z", "`oci://<redacted>@h` and //<redacted>@z"),
            ("image nginx@sha256:abc, mail alice@example.com", "image nginx@sha256:abc, mail alice@example.com"),
            ("a // b @ c", "a // b @ c"),
            ("see http://host/x@y", "see http://<redacted>@y"),
            ("u:p@HTTPS://h is odd", "<redacted>@HTTPS://h is odd"),
        ];
        // Found by the fuzz target: a control character inside a URL is escaped, not a token boundary.
        assert_eq!(text("///0\u{c}@"), "//<redacted>@");
        assert_eq!(text("https://us\ner:pa\tss@h"), "https://<redacted>@h");
        assert_eq!(text(&text("//0\u{c}@")), text("//0\u{c}@"));
        assert_eq!(text("\0@://///\""), "<redacted>@://///\"");
        assert_eq!(text(&text("\0@://///\"")), text("\0@://///\""));
        assert_eq!(redact_userinfo("@host"), "@host");
        for (text, want) in table {
            assert_eq!(redact_urls(text), *want, "{text:?}");
        }
    }

    #[test]
    fn unsafe_characters_are_escaped() {
        let table: &[(&str, &str)] = &[
            ("a\nb", "a\\nb"),
            ("a\r\nb\tc", "a\\r\\nb\\tc"),
            ("\u{1b}[31mred", "\\u{1b}[31mred"),
            ("nul\0", "nul\\u{0}"),
            ("del\u{7f} c1\u{85}", "del\\u{7f} c1\\u{85}"),
            ("abc\u{202e}fed", "abc\\u{202e}fed"),
            ("\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}"),
            ("zero\u{200b}width\u{feff}", "zero\\u{200b}width\\u{feff}"),
            ("line\u{2028}sep", "line\\u{2028}sep"),
            ("tag\u{e0041}", "tag\\u{e0041}"),
            ("ünïcödé ok … 日本", "ünïcödé ok … 日本"),
            ("back\\slash", "back\\slash"),
        ];
        for (raw, want) in table {
            let got = escape(raw);
            assert_eq!(got, *want, "{raw:?}");
            assert!(is_safe(&got));
            assert_eq!(escape(&got), got, "idempotent");
        }
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn keys_are_redacted_escaped_and_bounded() {
        assert_eq!(key("HTTPS://u:p@h\n\u{1b}"), "HTTPS://<redacted>@h\\n\\u{1b}");
        let long = format!("https://u:secret@{}", "a".repeat(100_000));
        let shown = key(&long);
        assert_eq!(shown.chars().count(), MAX_KEY_CHARS);
        assert!(shown.contains('…') && !shown.contains("secret"), "{shown}");
        assert_ne!(shown, key(&format!("{long}b")), "long keys stay distinct");
        assert_eq!(key(&shown), shown, "idempotent");
    }

    #[test]
    fn labels_are_escaped_bounded_and_distinct() {
        assert_eq!(label("ns\n\u{1b}", 63), "ns\\n\\u{1b}");
        let a = label(&"a".repeat(100_000), 128);
        let b = label(&format!("{}b", "a".repeat(99_999)), 128);
        assert_eq!(a.chars().count(), 128);
        assert_ne!(a, b);
        assert!(is_safe(&a));
    }

    #[test]
    fn bounded_counts_characters() {
        assert_eq!(bounded("abc", 3), "abc");
        assert_eq!(bounded("abcd", 3), "ab…");
        assert_eq!(bounded("ééé", 3), "ééé");
        assert_eq!(line("a\nb", 3), "a\\…");
    }

    #[test]
    fn json_log_lines_stay_json_and_safe() {
        use std::io::Write as _;
        let value = "pod\u{202e}\u{2028}x\n\u{1b} https://u:Secret@h \u{e0041}";
        let line = format!("{}\n", serde_json::json!({ "pod": value }));
        let mut out = SafeJsonLines(Vec::new());
        out.write_all(line.as_bytes()).unwrap();
        let written = String::from_utf8(out.0).unwrap();
        assert!(written.ends_with('\n') && written.matches('\n').count() == 1, "{written:?}");
        assert!(is_safe(written.trim_end_matches('\n')), "{written:?}");
        assert!(!written.contains("Secret"), "{written}");
        let parsed: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(parsed["pod"], "pod\u{202e}\u{2028}x\n\u{1b} https://<redacted>@h \u{e0041}");
    }
}
