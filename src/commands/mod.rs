//! The command line: the arguments of every subcommand (`args`, with the environment rule), and the commands that
//! run in the calling process and print a result: `mutate`, `explain` and `certs`. `serve` and `verify` live with
//! their areas.
//!
//! Exit statuses (docs/command-line.md): 0 nothing denied, 1 a problem found (a denial; with `--fail-on-warning` a
//! warning), 2 unusable input or flags. A reader that closes standard output early (`| head -1`) ends nothing
//! noisily: see [`PipeOut`].

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use crate::core::credentials::{CredentialIndex, CredentialSource, NamespaceCredentials};
use crate::sources::manifests::InputError;

pub mod args;
pub mod certs;
pub mod explain;
pub mod live;
pub mod mutate;
pub mod objects;
pub mod yaml;

impl CredentialSource for CredentialIndex {
    fn namespace(&self, namespace: &str) -> Arc<NamespaceCredentials> {
        self.view(namespace)
    }
}

/// A command-line failure: exit status 2 (unusable input), or 1 (the command ran and found a problem).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    /// The command ran and found a problem (exit 1), e.g. `verify`: a credential that does not work.
    #[error("{0}")]
    Problem(String),
    /// `--deny-unmatched` refuses one or more Pods (exit 1, for every `-o`): the reasons the API server would show,
    /// one per Pod.
    #[error("denied by pullsecret-injector: {}", .0.join("; "))]
    Denied(Vec<String>),
    /// `--fail-on-warning` and this many warnings (exit 1); the warnings themselves are already on stderr.
    #[error("{0} warning{s} and --fail-on-warning", s = if *.0 == 1 { "" } else { "s" })]
    Warnings(usize),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Problem(_) | Self::Denied(_) | Self::Warnings(_) => 1,
            Self::Usage(_) | Self::Input(_) | Self::Io(_) => 2,
        }
    }

    /// The lines to print after `error: `, one per denied Pod (each is one display-safe line once escaped).
    pub fn messages(&self) -> Vec<String> {
        match self {
            Self::Denied(reasons) => reasons.iter().map(|r| format!("denied by pullsecret-injector: {r}")).collect(),
            other => vec![other.to_string()],
        }
    }
}

/// A writer for standard output and error that a closed pipe does not fail: once the reader is gone (`mutate ... |
/// head -1`, SIGPIPE ignored as Rust programs do, so the write fails with `EPIPE`), the rest is dropped quietly
/// and the command still ends with the status its work decides. Any other write error is returned as it is.
pub struct PipeOut<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> PipeOut<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, closed: false }
    }

    /// Whether the reader has gone away.
    pub fn closed(&self) -> bool {
        self.closed
    }

    fn quiet<T>(&mut self, result: io::Result<T>, ok: T) -> io::Result<T> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(ok)
            }
            other => other,
        }
    }
}

impl<W: Write> Write for PipeOut<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let result = self.inner.write(buf);
        self.quiet(result, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.inner.flush();
        self.quiet(result, ())
    }
}

/// Reads a whole input: a file, or stdin for `-`. Returns the name to show in messages and the text.
pub fn read_input(file: &Path) -> Result<(String, String), CliError> {
    if file == Path::new("-") {
        let mut text = String::new();
        io::stdin().read_to_string(&mut text).map_err(|e| CliError::Usage(format!("stdin: cannot read: {e}")))?;
        return Ok(("stdin".into(), text));
    }
    let text =
        std::fs::read_to_string(file).map_err(|e| CliError::Usage(format!("{}: cannot read: {e}", file.display())))?;
    Ok((file.display().to_string(), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader went away after `accept` bytes.
    struct Closing {
        accept: usize,
        written: Vec<u8>,
        error: io::ErrorKind,
    }

    impl Write for Closing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.written.len() >= self.accept {
                return Err(io::Error::from(self.error));
            }
            let n = buf.len().min(self.accept - self.written.len());
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_ends_output_quietly_and_other_errors_stay_errors() {
        let mut out = PipeOut::new(Closing { accept: 5, written: Vec::new(), error: io::ErrorKind::BrokenPipe });
        writeln!(out, "first line").unwrap();
        writeln!(out, "second line").unwrap();
        out.flush().unwrap();
        assert!(out.closed());
        assert_eq!(out.inner.written, b"first");

        let mut out = PipeOut::new(Closing { accept: 0, written: Vec::new(), error: io::ErrorKind::StorageFull });
        assert_eq!(writeln!(out, "x").unwrap_err().kind(), io::ErrorKind::StorageFull);
        assert!(!out.closed());
    }

    #[test]
    fn exit_statuses_and_messages() {
        let cases: &[(CliError, u8, &[&str])] = &[
            (CliError::Usage("f: bad".into()), 2, &["f: bad"]),
            (
                CliError::Denied(vec!["a".into(), "b".into()]),
                1,
                &["denied by pullsecret-injector: a", "denied by pullsecret-injector: b"],
            ),
            (CliError::Problem("p".into()), 1, &["p"]),
            (CliError::Warnings(1), 1, &["1 warning and --fail-on-warning"]),
            (CliError::Warnings(3), 1, &["3 warnings and --fail-on-warning"]),
            (CliError::Io(io::Error::other("disk")), 2, &["disk"]),
        ];
        for (error, code, messages) in cases {
            assert_eq!(error.exit_code(), *code, "{error:?}");
            assert_eq!(error.messages(), *messages, "{error:?}");
        }
    }
}
