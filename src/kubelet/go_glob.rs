//! Go's `path/filepath.Match` (Unix flavour), byte for byte.
//!
//! The kubelet matches each host label of a registry key against the image's label with
//! `filepath.Match(keyLabel, imageLabel)` (spec R26d, R27), so the webhook needs Go's exact semantics:
//! `*` runs of non-`/` bytes, `?` one non-`/` character, `[...]`/`[^...]` classes of characters or
//! ranges, `\` escapes, and `ErrBadPattern` for malformed patterns. This follows Go 1.16+ (unchanged
//! through 1.25), which reports a malformed pattern even when an earlier part already failed to match.
//!
//! Like Go, the matcher works on bytes and decodes UTF-8 only where Go does (`?` and classes), so a
//! class or `?` consumes a whole character while literals compare byte by byte.

/// Go's `filepath.ErrBadPattern`: the pattern is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern")]
pub struct BadPattern;

const SEPARATOR: u8 = b'/';

/// `filepath.Match(pattern, name)`: whether `name` matches all of `pattern`.
pub fn matches(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    match_bytes(pattern.as_bytes(), name.as_bytes())
}

fn match_bytes(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, BadPattern> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing `*` matches the rest of the name unless it has a separator.
            return Ok(!name.contains(&SEPARATOR));
        }
        // Look for a match at the current position. If this is the last chunk, the name must be
        // exhausted, otherwise the star below may still find a match further on.
        let first = match_chunk(chunk, name);
        if let Ok(Some(t)) = first
            && (t.is_empty() || !pattern.is_empty())
        {
            name = t;
            continue;
        }
        first?;
        if star {
            // Let the star swallow i+1 bytes, never a separator.
            let mut i = 0;
            while i < name.len() && name[i] != SEPARATOR {
                if let Some(t) = match_chunk(chunk, &name[i + 1..])? {
                    // The last chunk must exhaust the name.
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
                i += 1;
            }
        }
        // Before answering "no match", make sure the rest of the pattern is well formed (Go 1.16+).
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off the next chunk: leading stars, then a run of single-character operators up to the
/// next `*` outside a class. Returns (had a star, chunk, rest).
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let [b'*', rest @ ..] = pattern {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            // A trailing lone `\` is reported as a bad pattern by match_chunk.
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Matches `chunk` (no `*` outside classes) against the start of `s`. `Ok(Some(rest))` on a
/// match. After a mismatch it keeps scanning the chunk so that a malformed class or escape later
/// in the chunk is still reported, as Go does.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<Option<&'a [u8]>, BadPattern> {
    let mut failed = false;
    while let Some(&op) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match op {
            b'[' => {
                let mut r = 0u32;
                if !failed {
                    let (c, n) = decode_rune(s);
                    r = c;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    // get_esc guarantees a non-empty remainder.
                    if chunk[0] == b'-' {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == SEPARATOR {
                        failed = true;
                    }
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if op == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(BadPattern);
                    }
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

/// A possibly escaped character of a class, and the rest of the chunk (which must not be empty:
/// at least the closing `]` has to follow).
fn get_esc(mut chunk: &[u8]) -> Result<(u32, &[u8]), BadPattern> {
    match chunk.first() {
        None | Some(b'-' | b']') => return Err(BadPattern),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(BadPattern);
            }
        }
        Some(_) => {}
    }
    let (r, n) = decode_rune(chunk);
    if r == REPLACEMENT && n == 1 {
        return Err(BadPattern);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

const REPLACEMENT: u32 = 0xFFFD;

/// Go's `utf8.DecodeRuneInString` for a non-empty slice: (rune, width), or (U+FFFD, 1) when the
/// bytes are not valid UTF-8.
fn decode_rune(b: &[u8]) -> (u32, usize) {
    let width = match b[0] {
        0x00..=0x7F => return (u32::from(b[0]), 1),
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (REPLACEMENT, 1),
    };
    match b.get(..width).map(std::str::from_utf8) {
        Some(Ok(s)) => s.chars().next().map_or((REPLACEMENT, 1), |c| (u32::from(c), width)),
        _ => (REPLACEMENT, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's `matchTests` from `src/path/filepath/match_test.go` (Go 1.16+), in order.
    /// `None` means `ErrBadPattern`.
    #[rustfmt::skip]
    const GO_MATCH_TESTS: &[(&str, &str, Option<bool>)] = &[
        ("abc", "abc", Some(true)),
        ("*", "abc", Some(true)),
        ("*c", "abc", Some(true)),
        ("a*", "a", Some(true)),
        ("a*", "abc", Some(true)),
        ("a*", "ab/c", Some(false)),
        ("a*/b", "abc/b", Some(true)),
        ("a*/b", "a/c/b", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
        ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
        ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
        ("ab[c]", "abc", Some(true)),
        ("ab[b-d]", "abc", Some(true)),
        ("ab[e-g]", "abc", Some(false)),
        ("ab[^c]", "abc", Some(false)),
        ("ab[^b-d]", "abc", Some(false)),
        ("ab[^e-g]", "abc", Some(true)),
        ("a\\*b", "a*b", Some(true)),
        ("a\\*b", "ab", Some(false)),
        ("a?b", "a☺b", Some(true)),
        ("a[^a]b", "a☺b", Some(true)),
        ("a???b", "a☺b", Some(false)),
        ("a[^a][^a][^a]b", "a☺b", Some(false)),
        ("[a-ζ]*", "α", Some(true)),
        ("*[a-ζ]", "A", Some(false)),
        ("a?b", "a/b", Some(false)),
        ("a*b", "a/b", Some(false)),
        ("[\\]a]", "]", Some(true)),
        ("[\\-]", "-", Some(true)),
        ("[x\\-]", "x", Some(true)),
        ("[x\\-]", "-", Some(true)),
        ("[x\\-]", "z", Some(false)),
        ("[\\-x]", "x", Some(true)),
        ("[\\-x]", "-", Some(true)),
        ("[\\-x]", "a", Some(false)),
        ("[]a]", "]", None),
        ("[-]", "-", None),
        ("[x-]", "x", None),
        ("[x-]", "-", None),
        ("[x-]", "z", None),
        ("[-x]", "x", None),
        ("[-x]", "-", None),
        ("[-x]", "a", None),
        ("\\", "a", None),
        ("[a-b-c]", "a", None),
        ("[", "a", None),
        ("[^", "a", None),
        ("[^bc", "a", None),
        ("a[", "a", None),
        ("a[", "ab", None),
        ("a[", "x", None),
        ("a/b[", "x", None),
        ("*x", "xxx", Some(true)),
    ];

    #[test]
    fn go_match_tests() {
        for &(pattern, name, want) in GO_MATCH_TESTS {
            let got = matches(pattern, name).ok();
            assert_eq!(got, want, "Match({pattern:?}, {name:?})");
        }
    }

    /// Label-level cases the keyring relies on (spec R27, §7).
    #[test]
    fn registry_label_cases() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, Option<bool>)] = &[
            ("*", "prefix", Some(true)),
            ("*", "", Some(true)),
            ("", "", Some(true)),
            ("", "a", Some(false)),
            ("*-good", "prefix-good", Some(true)),
            ("k*", "quay", Some(false)),
            ("*kubernetes", "kubernetes", Some(true)),
            ("c*", "io", Some(false)),
            ("Registry", "registry", Some(false)), // case-sensitive (M52)
            ("*", "[fc00::1]", Some(true)),        // §7.1: key `*` matches bracketed IPv6
            ("[fc00::1]", "[fc00::1]", Some(false)), // M78: brackets read as a class
            ("[fc00::1]", "f", Some(true)),
            ("[a-", "a", None),
            ("x*[", "y", None), // the rest of the pattern is validated before "no match"
            ("x*[", "x", None),
            ("*[", "", None),
        ];
        for &(pattern, name, want) in cases {
            assert_eq!(matches(pattern, name).ok(), want, "Match({pattern:?}, {name:?})");
        }
    }

    #[test]
    fn decode_rune_matches_go() {
        assert_eq!(decode_rune(b"a"), (0x61, 1));
        assert_eq!(decode_rune("☺x".as_bytes()), (0x263A, 3));
        assert_eq!(decode_rune(&[0xFF, b'a']), (REPLACEMENT, 1));
        assert_eq!(decode_rune(&[0xE2, 0x98]), (REPLACEMENT, 1));
    }
}
