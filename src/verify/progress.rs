//! What `verify` shows while it runs: on a terminal, one progress line on stderr (entries done of total, and the
//! pending entry that has been running longest), rewritten in place; with `-o jsonl`, each result as one JSON line
//! the moment its check completes, so that a pipe sees results as they come. Piped stderr gets no progress line:
//! a log would fill with `\r`-joined fragments.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::safe_text;
use crate::verify::CheckResult;

/// How often the progress line is redrawn while nothing completes (the slowest entry's time goes on).
pub const TICK: Duration = Duration::from_millis(250);

/// The progress line is cut to this many characters: a line wider than the terminal wraps, and `\r` then rewrites
/// only its last row.
const MAX_LINE_CHARS: usize = 100;

/// Told of each result as it completes, and of the progress.
pub trait Observer {
    fn done(&mut self, result: &CheckResult);
    /// `done` of `total` entries complete; the pending entry that started first and how long it has been running.
    fn progress(&mut self, done: usize, total: usize, slowest: Option<(String, Duration)>);
    /// Every check has completed: whatever was drawn is cleared.
    fn finished(&mut self);
}

/// Observes nothing (the periodic checks of `serve`).
pub struct Silent;

impl Observer for Silent {
    fn done(&mut self, _: &CheckResult) {}
    fn progress(&mut self, _: usize, _: usize, _: Option<(String, Duration)>) {}
    fn finished(&mut self) {}
}

/// The checks running now: entry index → (start, `namespace/secret registry`, display-safe).
#[derive(Default)]
pub struct Pending(Mutex<BTreeMap<usize, (Instant, String)>>);

impl Pending {
    /// Marks entry `index` running until the returned guard is dropped.
    pub fn start(&self, index: usize, label: String) -> Running<'_> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(index, (Instant::now(), label));
        Running { pending: self, index }
    }

    /// The entry running longest, and for how long.
    pub fn slowest(&self) -> Option<(String, Duration)> {
        let pending = self.0.lock().unwrap_or_else(|e| e.into_inner());
        pending.values().min_by_key(|(start, _)| *start).map(|(start, label)| (label.clone(), start.elapsed()))
    }
}

/// One running check (see [`Pending::start`]).
pub struct Running<'a> {
    pending: &'a Pending,
    index: usize,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.pending.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.index);
    }
}

/// The progress line: `verify: 3/10 done; slowest pending: team-a/hub registry.example.com (4s)`, display-safe,
/// at most [`MAX_LINE_CHARS`] characters.
pub fn line(done: usize, total: usize, slowest: Option<&(String, Duration)>) -> String {
    let mut text = format!("verify: {done}/{total} done");
    if let Some((label, running)) = slowest {
        text.push_str(&format!("; slowest pending: {label} ({}s)", running.as_secs()));
    }
    safe_text::line(&text, MAX_LINE_CHARS)
}

/// What the `verify` command observes: the progress line on `progress` (stderr, when it is a terminal) and, for
/// `-o jsonl`, each result on `results` (stdout), flushed line by line.
pub struct Reporter<'a> {
    /// Where the progress line goes; `None` when stderr is not a terminal.
    pub progress: Option<&'a mut dyn Write>,
    /// Where each result goes as one JSON line; `None` unless `-o jsonl`.
    pub results: Option<&'a mut dyn Write>,
    /// A write to `results` failed (not a closed pipe: that is quiet): the command reports it at the end.
    pub error: Option<std::io::Error>,
    drawn: bool,
}

impl<'a> Reporter<'a> {
    pub fn new(progress: Option<&'a mut dyn Write>, results: Option<&'a mut dyn Write>) -> Self {
        Self { progress, results, error: None, drawn: false }
    }

    /// Erases the progress line (before a result goes to the same terminal, and at the end).
    fn clear(&mut self) {
        if let (Some(progress), true) = (self.progress.as_mut(), self.drawn) {
            // Carriage return, then erase to the end of the line: the cursor is back where the line began.
            let _ = write!(progress, "\r\x1b[K").and_then(|()| progress.flush());
            self.drawn = false;
        }
    }
}

impl Observer for Reporter<'_> {
    fn done(&mut self, result: &CheckResult) {
        if self.results.is_none() {
            return;
        }
        // stdout and stderr may be the same terminal: the result line must not land on the progress line.
        self.clear();
        let Some(results) = self.results.as_mut() else { return };
        let written = serde_json::to_writer(&mut *results, result)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(results))
            .and_then(|()| results.flush());
        if let Err(error) = written {
            self.error.get_or_insert(error);
        }
    }

    fn progress(&mut self, done: usize, total: usize, slowest: Option<(String, Duration)>) {
        let Some(progress) = self.progress.as_mut() else { return };
        let text = line(done, total, slowest.as_ref());
        let _ = write!(progress, "\r{text}\x1b[K").and_then(|()| progress.flush());
        self.drawn = true;
    }

    fn finished(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Status;

    fn result(secret: &str) -> CheckResult {
        CheckResult {
            namespace: "team-a".into(),
            secret: secret.into(),
            registry: "registry.example.com".into(),
            status: Status::Ok,
            detail: "ok".into(),
            expires_at: None,
        }
    }

    #[test]
    fn the_progress_line_is_one_bounded_display_safe_line() {
        assert_eq!(line(0, 3, None), "verify: 0/3 done");
        let slowest = ("team-a/hub registry.example.com".to_string(), Duration::from_millis(4_200));
        assert_eq!(
            line(2, 3, Some(&slowest)),
            "verify: 2/3 done; slowest pending: team-a/hub registry.example.com (4s)"
        );
        let long = ("x".repeat(500), Duration::ZERO);
        assert!(line(1, 2, Some(&long)).chars().count() <= MAX_LINE_CHARS);
        let hostile = ("a\rb\u{1b}[2J".to_string(), Duration::ZERO);
        assert!(!line(1, 2, Some(&hostile)).chars().any(char::is_control));
    }

    #[test]
    fn a_terminal_gets_the_line_rewritten_in_place_and_cleared_at_the_end() {
        let (mut err, mut out) = (Vec::new(), Vec::new());
        {
            let mut reporter = Reporter::new(Some(&mut err), Some(&mut out));
            reporter.progress(0, 2, Some(("team-a/a r".into(), Duration::from_secs(1))));
            reporter.done(&result("a"));
            reporter.progress(1, 2, None);
            reporter.finished();
        }
        let err = String::from_utf8(err).unwrap();
        assert_eq!(
            err,
            "\rverify: 0/2 done; slowest pending: team-a/a r (1s)\x1b[K\r\x1b[K\rverify: 1/2 done\x1b[K\r\x1b[K"
        );
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["secret"], "a");
        assert!(out.ends_with(b"}\n"));
    }

    #[test]
    fn without_a_terminal_nothing_but_the_results() {
        let mut out = Vec::new();
        let mut reporter = Reporter::new(None, Some(&mut out));
        reporter.progress(0, 1, None);
        reporter.done(&result("a"));
        reporter.finished();
        drop(reporter);
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
        assert!(!out.contains(&b'\r'));
    }

    #[test]
    fn the_slowest_pending_entry_is_the_one_started_first() {
        let pending = Pending::default();
        let first = pending.start(3, "first".into());
        let _second = pending.start(1, "second".into());
        assert_eq!(pending.slowest().unwrap().0, "first");
        drop(first);
        assert_eq!(pending.slowest().unwrap().0, "second");
    }
}
