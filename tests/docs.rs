//! The documentation names tests as evidence (`file::test` for `tests/file.rs`, `src/module.rs::test` for unit
//! tests): every one named must exist, so a renamed or deleted test cannot leave a claim without its proof.
//!
//! The code, tests and docs cite the kubelet specification (docs/kubelet-matching.md) by rule and vector number:
//! every one cited must be defined there. And nothing may depend on files outside the repository.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The documents whose tables cite tests.
const DOCS: [&str; 2] = ["docs/threat-model.md", "docs/security.md"];

/// Every `` `a::b` `` or `` `src/x.rs::b` `` in the text, as (file, function).
fn cited(text: &str) -> Vec<(String, String)> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|code| {
            let (file, test) = code.rsplit_once("::")?;
            let plain =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            // `file::test` itself is how the docs explain the format.
            if !plain(test) || test == "test" {
                return None;
            }
            if let Some(src) = file.strip_prefix("src/") {
                return src.ends_with(".rs").then(|| (file.to_string(), test.to_string()));
            }
            plain(file).then(|| (format!("tests/{file}.rs"), test.to_string()))
        })
        .collect()
}

#[test]
fn every_test_the_docs_cite_exists() {
    let mut missing = Vec::new();
    let mut count = 0;
    for doc in DOCS {
        let text = std::fs::read_to_string(Path::new(ROOT).join(doc)).unwrap_or_else(|e| panic!("{doc}: {e}"));
        for (file, test) in cited(&text) {
            count += 1;
            let source = std::fs::read_to_string(Path::new(ROOT).join(&file)).unwrap_or_default();
            let defined = [format!("fn {test}("), format!("fn {test}<")].iter().any(|f| source.contains(f.as_str()));
            if !defined {
                missing.push(format!("{doc}: `{file}::{test}`"));
            }
        }
    }
    assert!(count >= 20, "the docs cite {count} tests: is the citation format still `file::test`?");
    assert!(missing.is_empty(), "tests cited as evidence that do not exist:\n{}", missing.join("\n"));
}

/// The kubelet specification: the code, the tests and the docs cite its rules (`R<n>`) and matching vectors (`M<n>`).
const SPEC: &str = "docs/kubelet-matching.md";
/// How many rules and vectors the spec has had: identifiers are never reused or removed (a withdrawn rule keeps its
/// entry and says so), so these only grow.
const SPEC_HAS_AT_LEAST: [(char, u32); 2] = [('R', 43), ('M', 120)];
/// Where those citations are looked for (recursively), and what is skipped there: third-party captures.
const CITING: [&str; 3] = ["src", "tests", "docs"];
const NOT_CITING: [&str; 1] = ["tests/data/admission"];

/// The text files under `dir` (a file or a directory, relative to the root), skipping build output, Git's own
/// files, fuzzing state and the paths in `skip`. Files that are not UTF-8 are not text: skipped.
fn text_files(dir: &str, skip: &[&str]) -> Vec<(String, String)> {
    fn walk(root: &Path, relative: String, skip: &[&str], out: &mut Vec<(String, String)>) {
        if skip.contains(&relative.as_str()) {
            return;
        }
        let path = root.join(&relative);
        if path.is_dir() {
            let mut entries: Vec<String> = std::fs::read_dir(&path)
                .unwrap_or_else(|e| panic!("{relative}: {e}"))
                .map(|entry| entry.expect("a directory entry").file_name().to_string_lossy().into_owned())
                .filter(|name| !matches!(name.as_str(), "target" | ".git" | "corpus" | "artifacts"))
                .collect();
            entries.sort();
            for name in entries {
                let child = if relative.is_empty() { name } else { format!("{relative}/{name}") };
                walk(root, child, skip, out);
            }
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            out.push((relative, text));
        }
    }
    let mut out = Vec::new();
    walk(Path::new(ROOT), dir.to_string(), skip, &mut out);
    out
}

/// A rule or vector identifier at `text[start..]`: its number and where it ends. The letter must start a word, and
/// the digits must end one, optionally after one lower-case letter (`R26c` cites item (c) of `R26`).
fn identifier(text: &[u8], start: usize, letter: u8) -> Option<(u32, usize)> {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    if text.get(start) != Some(&letter) || (start > 0 && word(text[start - 1])) {
        return None;
    }
    let digits = text[start + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut end = start + 1 + digits;
    if text.get(end).is_some_and(u8::is_ascii_lowercase) {
        end += 1;
    }
    if digits == 0 || digits > 4 || text.get(end).copied().is_some_and(word) {
        return None;
    }
    let number = std::str::from_utf8(&text[start + 1..start + 1 + digits]).ok()?.parse().ok()?;
    Some((number, end))
}

/// Every `R<n>` and `M<n>` in `text`, with ranges (`R13-R17`, `R13–R16`, `M1-M120`) expanded to each member.
fn cited_ids(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut out = BTreeSet::new();
    for start in 0..bytes.len() {
        for letter in [b'R', b'M'] {
            let Some((first, end)) = identifier(bytes, start, letter) else { continue };
            let mut last = first;
            // A range: `-` or `–` between two identifiers of the same letter, spaces around it allowed.
            let rest = text[end..].trim_start();
            if let Some(after) = rest.strip_prefix('-').or_else(|| rest.strip_prefix('–')) {
                let at = text.len() - after.trim_start().len();
                if let Some((n, _)) = identifier(bytes, at, letter).filter(|(n, _)| *n > first && *n - first <= 200) {
                    last = n;
                }
            }
            out.extend((first..=last).map(|n| format!("{}{n}", letter as char)));
        }
    }
    out
}

/// The identifiers the spec defines, with how often: a rule is defined by a bullet that starts with it in bold
/// (`- **R1**`), a vector by a table row whose first cell is it (`| M1 |`).
fn defined_ids(spec: &str) -> BTreeMap<String, usize> {
    let mut defined = BTreeMap::new();
    for line in spec.lines().map(str::trim_start) {
        let first = if let Some(rest) = line.strip_prefix("- **") {
            rest.split("**").next()
        } else if let Some(rest) = line.strip_prefix('|') {
            rest.split('|').next().map(str::trim)
        } else {
            None
        };
        let Some(id) = first else { continue };
        let is_id = |letter: char| {
            id.strip_prefix(letter).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        if is_id('R') || is_id('M') {
            *defined.entry(id.to_string()).or_default() += 1;
        }
    }
    defined
}

#[test]
fn every_rule_and_vector_cited_is_defined_in_the_kubelet_spec() {
    let spec = std::fs::read_to_string(Path::new(ROOT).join(SPEC)).unwrap_or_else(|e| panic!("{SPEC}: {e}"));
    let defined = defined_ids(&spec);

    // Defined once each, numbered without gaps, none removed.
    let twice: Vec<&String> = defined.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect();
    assert!(twice.is_empty(), "{SPEC} defines these more than once: {twice:?}");
    for (letter, at_least) in SPEC_HAS_AT_LEAST {
        let numbers: BTreeSet<u32> = defined.keys().filter_map(|id| id.strip_prefix(letter)?.parse().ok()).collect();
        let last = numbers.last().copied().unwrap_or(0);
        let missing: Vec<String> =
            (1..=last).filter(|n| !numbers.contains(n)).map(|n| format!("{letter}{n}")).collect();
        assert!(last >= at_least, "{SPEC} defines {letter}1 to {letter}{last}, fewer than the {at_least} it had");
        assert!(missing.is_empty(), "{SPEC}: {letter}1 to {letter}{last} has gaps: {missing:?}");
    }

    let mut cited = BTreeSet::new();
    let mut undefined = Vec::new();
    for dir in CITING {
        for (file, text) in text_files(dir, &NOT_CITING) {
            for id in cited_ids(&text) {
                if !defined.contains_key(&id) {
                    undefined.push(format!("{file}: {id}"));
                }
                cited.insert(id);
            }
        }
    }
    // M1-M120 alone are over a hundred: fewer means the scan (or the citation format) broke.
    assert!(cited.len() >= 100, "only {} rule and vector identifiers cited: is the format still `R<n>`?", cited.len());
    assert!(undefined.is_empty(), "cited but not defined in {SPEC}:\n{}", undefined.join("\n"));
}

#[test]
fn nothing_refers_to_files_outside_the_repository() {
    // Spelled in pieces so that this file does not name what it looks for.
    const SHARED: &str = "shared";
    let outside = [
        format!("../{SHARED}"),
        format!("{SHARED}/spec/"),
        format!("{SHARED}/fixtures/"),
        // The contract is docs/contract.md now; the old file name alone is a stale citation.
        format!("CONTRACT{}", ".md"),
    ];
    let outside = &outside;
    let files = text_files("", &[]);
    assert!(files.len() > 50, "only {} text files found in the repository", files.len());
    let found: Vec<String> = files
        .iter()
        .flat_map(|(file, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, line)| outside.iter().any(|o| line.contains(o.as_str())))
                .map(move |(i, line)| format!("{file}:{}: {}", i + 1, line.trim()))
        })
        .collect();
    assert!(found.is_empty(), "references to files outside the repository (use docs/ instead):\n{}", found.join("\n"));
}
