//! The report: `-o text` (a table, a summary line, the lint notes) and `-o json` (exactly the contract's array).

use super::*;

/// Writes the results: `text` is a table (namespace/secret, registry, status, detail), a summary line and the
/// lint notes; `json` is exactly the array of [`CheckResult`] on `out`, with lint notes on `err`.
pub fn render(
    results: &[CheckResult],
    lint: &[String],
    output: VerifyOutput,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<()> {
    match output {
        VerifyOutput::Json | VerifyOutput::Jsonl => {
            // `jsonl` printed each result as it completed (progress::Reporter).
            if output == VerifyOutput::Json {
                serde_json::to_writer_pretty(&mut *out, results).map_err(std::io::Error::other)?;
                writeln!(out)?;
            }
            for note in lint {
                writeln!(err, "note: {note}")?;
            }
        }
        VerifyOutput::Text => {
            render_table(results, out)?;
            if !lint.is_empty() {
                writeln!(out)?;
                writeln!(out, "Notes:")?;
                for note in lint {
                    writeln!(out, "  {note}")?;
                }
            }
        }
    }
    Ok(())
}

/// Exit 0 when every entry is ok or skipped (docs/contract.md), else 1.
pub fn all_ok(results: &[CheckResult]) -> bool {
    results.iter().all(|r| matches!(r.status, Status::Ok | Status::Skipped))
}

pub(super) fn render_table(results: &[CheckResult], out: &mut dyn Write) -> std::io::Result<()> {
    if results.is_empty() {
        return writeln!(
            out,
            "No registry credentials to check (no kubernetes.io/dockerconfigjson or dockercfg Secrets)."
        );
    }
    let header = ["NAMESPACE/SECRET", "REGISTRY", "STATUS", "DETAIL"];
    // Results are display-safe already; escaping again is a no-op that keeps the table safe for any caller.
    let rows: Vec<[String; 4]> = results
        .iter()
        .map(|r| {
            let registry = if r.registry.is_empty() { "-".to_owned() } else { safe_text::key(&r.registry) };
            let secret = safe_text::text(&format!("{}/{}", r.namespace, r.secret)).into_owned();
            let mut detail = safe_text::text(&r.detail).into_owned();
            if let Some(at) = &r.expires_at {
                detail.push_str(&format!(" (credential expiry: {at})"));
            }
            [secret, registry, r.status.to_string(), detail]
        })
        .collect();
    let width = |column: usize| {
        rows.iter().map(|row| row[column].chars().count()).chain([header[column].len()]).max().unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2)];
    // Padded by hand: `{:width$}` panics on widths over 65,535, and a cell is as wide as its data.
    let mut line = |cells: [&str; 4]| {
        let mut text = String::new();
        for (cell, width) in cells.iter().zip(widths) {
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.chars().count()) + 2));
        }
        text.push_str(cells[3]);
        writeln!(out, "{}", text.trim_end())
    };
    line(header)?;
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3]])?;
    }
    let mut counts: Vec<(Status, usize)> = Vec::new();
    for r in results {
        match counts.iter_mut().find(|(status, _)| *status == r.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.status, 1)),
        }
    }
    let summary: Vec<String> = counts.iter().map(|(status, n)| format!("{n} {status}")).collect();
    writeln!(out)?;
    writeln!(out, "{} checked: {}", plural(results.len(), "entry", "entries"), summary.join(", "))
}

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
