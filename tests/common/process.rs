//! Child processes that never outlive their test: each is killed and reaped when its guard is dropped (also when a
//! test fails half-way), and every wait on one is bounded.

use std::io::{Read as _, Write as _};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A child process killed (unless it has exited) and reaped when dropped.
pub struct Reaped(pub Child);

impl Reaped {
    pub fn spawn(command: &mut Command) -> Self {
        Self(command.spawn().unwrap_or_else(|e| panic!("start {command:?}: {e}")))
    }

    /// Waits at most `wait` for the process to exit; `None` when it is still running then.
    pub fn wait_within(&mut self, wait: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `command` with `stdin` (or none), capturing stdout and stderr, for at most `wait`: a process still running
/// then is killed and the test fails.
pub fn output_within(command: &mut Command, stdin: Option<&[u8]>, wait: Duration) -> Output {
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = Reaped::spawn(command.stdout(Stdio::piped()).stderr(Stdio::piped()));
    // Written and read on threads of their own: a child that writes a lot before it reads its input (or the other
    // way round) cannot deadlock with the test.
    let writer = child.0.stdin.take().map(|mut pipe| {
        let input = stdin.unwrap_or_default().to_vec();
        thread::spawn(move || {
            let _ = pipe.write_all(&input);
        })
    });
    let read_all = |mut pipe: Box<dyn std::io::Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read_all(Box::new(child.0.stdout.take().expect("piped stdout")));
    let stderr = read_all(Box::new(child.0.stderr.take().expect("piped stderr")));
    let Some(status) = child.wait_within(wait) else {
        panic!("{command:?} did not exit within {wait:?}");
    };
    if let Some(writer) = writer {
        writer.join().expect("the stdin writer");
    }
    Output {
        status,
        stdout: stdout.join().expect("the stdout reader"),
        stderr: stderr.join().expect("the stderr reader"),
    }
}

/// Runs a command that must succeed; returns its stdout.
pub fn run(command: &mut Command) -> String {
    let out = command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(out.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs a command with `input` on stdin; it must succeed. Returns (stdout, stderr).
pub fn run_with_input(command: &mut Command, input: &str) -> (String, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    child.stdin.take().unwrap().write_all(input.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}
