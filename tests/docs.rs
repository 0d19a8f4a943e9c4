//! The documentation names tests as evidence (`file::test` for `tests/file.rs`, `src/module.rs::test` for unit
//! tests): every one named must exist, so a renamed or deleted test cannot leave a claim without its proof.

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
