//! YAML as Kubernetes reads it back. `kubectl`, Helm and the API server read YAML with YAML 1.1 rules
//! (sigs.k8s.io/yaml): a plain `on`, `no` or `y` is a boolean and a plain `0644` an octal number, where YAML 1.2
//! writers see strings. This writer keeps every value what it was for those readers: a string that a YAML 1.1 or
//! 1.2 reader would take for anything else is quoted; everything else is written as kubectl writes it (block style,
//! two spaces, list items at their key's indentation, `{}` and `[]` for empty collections), so a kubectl-made
//! manifest comes back byte for byte.

use std::fmt::Write as _;

use serde_yaml_ng::Value as YamlValue;

/// One document, ending with a newline.
pub fn to_string(value: &YamlValue) -> Result<String, String> {
    let mut out = String::new();
    match value {
        YamlValue::Mapping(map) if !map.is_empty() => mapping(map, 0, false, &mut out)?,
        YamlValue::Sequence(items) if !items.is_empty() => sequence(items, 0, false, &mut out)?,
        other => {
            out.push_str(&inline(other)?);
            out.push('\n');
        }
    }
    Ok(out)
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A block mapping at `indent`; with `continued`, its first key goes on the current line (after `- `).
fn mapping(map: &serde_yaml_ng::Mapping, indent: usize, continued: bool, out: &mut String) -> Result<(), String> {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !continued {
            pad(out, indent);
        }
        out.push_str(&key_text(key)?);
        out.push(':');
        value_after_key(value, indent, out)?;
    }
    Ok(())
}

/// A value after `key:`.
fn value_after_key(value: &YamlValue, indent: usize, out: &mut String) -> Result<(), String> {
    match value {
        YamlValue::Mapping(map) if !map.is_empty() => {
            out.push('\n');
            mapping(map, indent + 2, false, out)
        }
        // kubectl's style: a list's items at the indentation of its key.
        YamlValue::Sequence(items) if !items.is_empty() => {
            out.push('\n');
            sequence(items, indent, false, out)
        }
        YamlValue::String(s) if is_block_text(s) => {
            block_text(s, indent + 2, out);
            Ok(())
        }
        scalar => {
            out.push(' ');
            out.push_str(&inline(scalar)?);
            out.push('\n');
            Ok(())
        }
    }
}

/// A block sequence whose `- ` are at `indent`; with `continued`, its first item goes on the current line (after
/// the `- ` of the list that holds it, as in `- - a`).
fn sequence(items: &[YamlValue], indent: usize, continued: bool, out: &mut String) -> Result<(), String> {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !continued {
            pad(out, indent);
        }
        out.push('-');
        match item {
            YamlValue::Mapping(map) if !map.is_empty() => {
                out.push(' ');
                mapping(map, indent + 2, true, out)?;
            }
            YamlValue::Sequence(inner) if !inner.is_empty() => {
                out.push(' ');
                sequence(inner, indent + 2, true, out)?;
            }
            YamlValue::String(s) if is_block_text(s) => block_text(s, indent + 2, out),
            scalar => {
                out.push(' ');
                out.push_str(&inline(scalar)?);
                out.push('\n');
            }
        }
    }
    Ok(())
}

/// A scalar, or an empty collection, on one line.
fn inline(value: &YamlValue) -> Result<String, String> {
    Ok(match value {
        YamlValue::Null => "null".into(),
        YamlValue::Bool(b) => b.to_string(),
        YamlValue::Number(n) => n.to_string(),
        YamlValue::String(s) => scalar_text(s),
        YamlValue::Mapping(map) if map.is_empty() => "{}".into(),
        YamlValue::Sequence(items) if items.is_empty() => "[]".into(),
        // A tag from the input (`!!binary`, `!Ref`) is kept on a scalar; a tagged collection is refused.
        YamlValue::Tagged(tagged) => match &tagged.value {
            YamlValue::Mapping(m) if !m.is_empty() => return Err("a tagged mapping cannot be written".into()),
            YamlValue::Sequence(l) if !l.is_empty() => return Err("a tagged list cannot be written".into()),
            YamlValue::String(s) if s.contains('\n') => format!("{} {}", tagged.tag, double_quoted(s)),
            inner => format!("{} {}", tagged.tag, inline(inner)?),
        },
        YamlValue::Mapping(_) | YamlValue::Sequence(_) => return Err("a collection cannot be written inline".into()),
    })
}

fn key_text(key: &YamlValue) -> Result<String, String> {
    match key {
        YamlValue::String(s) => Ok(scalar_text(s)),
        YamlValue::Null | YamlValue::Bool(_) | YamlValue::Number(_) => inline(key),
        _ => Err("a mapping key that is a collection or tagged cannot be written".into()),
    }
}

/// A string on one line: plain when every YAML reader takes it for this very string, else double-quoted.
pub fn scalar_text(s: &str) -> String {
    if plain_is_safe(s) { s.to_string() } else { double_quoted(s) }
}

/// Multi-line text that a literal block (`|`) carries exactly: printable, no carriage return or other line break
/// than `\n`, no trailing spaces on the last line, no leading space (that would need an indentation indicator).
fn is_block_text(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\n'])
        && s.chars().all(|c| c == '\n' || !needs_escape(c))
        && !s.trim_end_matches('\n').ends_with([' ', '\t'])
        && !s.contains(" \n")
        && !s.contains("\t\n")
}

fn block_text(s: &str, indent: usize, out: &mut String) {
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    out.push_str(match trailing {
        0 => " |-",
        1 => " |",
        _ => " |+",
    });
    out.push('\n');
    for line in s[..body.len() + trailing.saturating_sub(1)].split('\n') {
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
}

fn needs_escape(c: char) -> bool {
    // U+FFFE and U+FFFF are not printable for YAML readers: written raw, the output would not read back.
    c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{85}' | '\u{fffe}' | '\u{ffff}')
}

fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `s` written plain is read back as this string by YAML 1.1 (Kubernetes) and YAML 1.2 readers alike.
fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if s != s.trim() || s.chars().any(|c| needs_escape(c) || c == '\t') {
        return false;
    }
    // Indicators that start something else than a plain scalar; `-`, `?` and `:` only before a space.
    let second = s[first.len_utf8()..].chars().next();
    let indicator = match first {
        '-' | '?' | ':' => second.is_none_or(|c| c == ' '),
        ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`' => true,
        _ => false,
    };
    // `---` and `...` at the start of a line are document markers.
    let marker =
        ["---", "..."].iter().any(|m| s.strip_prefix(m).is_some_and(|rest| rest.is_empty() || rest.starts_with(' ')));
    if indicator || marker || s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    !resolves_to_non_string(s)
}

/// The plain scalars some YAML reader takes for a boolean, null, number, timestamp or merge key.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
        "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~", "<<", "=",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['-', '+']);
    if matches!(unsigned, ".inf" | ".nan") {
        return true;
    }
    let Some(first) = unsigned.chars().next() else { return true };
    if !(first.is_ascii_digit() || first == '.') {
        return false;
    }
    let digits = unsigned.replace('_', "");
    // Numbers in any base or notation, sexagesimal (`1:20`, YAML 1.1) and timestamps (`2001-12-14`).
    digits.parse::<f64>().is_ok()
        || (digits.starts_with('0') && digits.len() > 1 && digits[1..].chars().all(|c| c.is_ascii_alphanumeric()))
        || (unsigned.contains(':') && unsigned.chars().all(|c| c.is_ascii_digit() || matches!(c, ':' | '.' | '_')))
        || is_timestamp(unsigned)
}

/// `2001-12-14`, `2001-12-14t21:59:43.10-05:00` and the other YAML timestamps: four digits, `-`, then digits.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[5].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What YAML 1.1 (Kubernetes) or YAML 1.2 readers would take for something else is quoted; the rest is plain.
    #[test]
    fn strings_stay_strings_for_every_yaml_reader() {
        let quoted = [
            "on",
            "On",
            "off",
            "yes",
            "no",
            "y",
            "N",
            "true",
            "False",
            "null",
            "~",
            "",
            "0644",
            "0755",
            "1_000",
            "12",
            "-1",
            "+1",
            "1.5",
            ".5",
            "1e3",
            "0x1F",
            "0o17",
            "0b11",
            ".inf",
            "-.INF",
            ".nan",
            "1:20",
            "2001-12-14",
            "2001-12-14t21:59:43.10-05:00",
            "<<",
            "=",
            " lead",
            "trail ",
            "a: b",
            "a #b",
            "key:",
            "- x",
            "-",
            "? x",
            "[x]",
            "{x}",
            "#x",
            "&a",
            "*a",
            "!t",
            "|x",
            ">x",
            "'x",
            "\"x",
            "%x",
            "@x",
            "`x",
            "tab\there",
            "bell\u{7}",
            "bom\u{feff}",
            "line\u{2028}sep",
            "esc\u{1b}[31m",
            "---",
            "...",
            "--- x",
            "... x",
            "nonchar\u{fffe}",
            "\u{ffff}",
        ];
        let yaml11 = |text: &str| {
            crate::sources::manifests::parse_ordered_documents(std::path::Path::new("t.yaml"), text)
                .unwrap_or_else(|e| panic!("{text:?}: {e}"))
                .remove(0)
        };
        for s in quoted {
            let text = scalar_text(s);
            assert!(text.starts_with('"') && text.ends_with('"'), "{s:?} -> {text}");
            // Read back as the same string, as a value and as a key at the start of a line, by a YAML 1.2 reader
            // and as Kubernetes reads it (YAML 1.1).
            let back: YamlValue = serde_yaml_ng::from_str(&format!("k: {text}\n")).unwrap();
            assert_eq!(back["k"], YamlValue::String(s.into()), "{s:?} -> {text}");
            assert_eq!(yaml11(&format!("k: {text}\n"))["k"], YamlValue::String(s.into()), "{s:?} -> {text}");
            // (A `<<` key, quoted or not, is a merge key to serde_yaml's merge step.)
            if s != "<<" {
                let key = yaml11(&format!("{text}: v\n"));
                assert_eq!(key.as_mapping().unwrap().keys().next(), Some(&YamlValue::String(s.into())), "{s:?}");
            }
        }
        let plain = [
            "nginx:1.27",
            "harbor.example.com/shop/api:2",
            "0 1 * * *",
            "--port=80",
            "-c",
            "/etc/config",
            "app",
            "a,b",
            "a:b",
            "a#b",
            "web-7d9c6b8f5-",
            "10.10.10.10:443/tools/migrate:2.1",
            "v1.8.2",
            "sha256:9b2a",
            "ünï",
            "1.2.3",
            "Always",
            "_1",
        ];
        for s in plain {
            assert_eq!(scalar_text(s), s, "{s:?}");
            // Plain, and still the same string as Kubernetes reads it (YAML 1.1: `_1` is no number in Go).
            assert_eq!(yaml11(&format!("k: {s}\n"))["k"], YamlValue::String(s.into()), "{s:?}");
        }
    }

    /// A kubectl-made manifest comes back byte for byte, and every value survives a round trip.
    #[test]
    fn kubectl_style_round_trips() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  labels:\n    app: web\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web\n  strategy: {}\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - args:\n        - --port=80\n        - - nested\n          - list\n        env:\n        - name: A\n          value: \"on\"\n        image: nginx:1.27\n        name: nginx\n        resources: {}\n      volumes:\n      - configMap:\n          defaultMode: 420\n          items: []\n        name: s\nstatus: {}\n";
        let value: YamlValue = serde_yaml_ng::from_str(text).unwrap();
        assert_eq!(to_string(&value).unwrap(), text);
        let script = YamlValue::String("#!/bin/sh\nset -e\n\necho \"ok\"\n".into());
        let mut map = serde_yaml_ng::Mapping::new();
        for (k, v) in [
            ("script", script),
            ("no-newline", "a\nb".into()),
            ("two-newlines", "a\n\n".into()),
            ("spaces", " a\nb".into()),
            ("cr", "a\r\nb".into()),
            ("trailing", "a \nb".into()),
            ("tagged", serde_yaml_ng::from_str::<YamlValue>("!x 3").unwrap()),
            ("float", 1.5.into()),
            ("null", YamlValue::Null),
        ] {
            map.insert(k.into(), v);
        }
        let list = YamlValue::Sequence(vec![YamlValue::Mapping(map.clone()), "a\nb\n".into(), YamlValue::Null]);
        for value in [YamlValue::Mapping(map), list] {
            let written = to_string(&value).unwrap();
            let back: YamlValue = serde_yaml_ng::from_str(&written).unwrap_or_else(|e| panic!("{e}:\n{written}"));
            assert_eq!(back, value, "{written}");
        }
        assert!(to_string(&serde_yaml_ng::from_str("? [a]\n: b\n").unwrap()).is_err());
    }
}
