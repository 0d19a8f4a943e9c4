//! The built binary, `pullsecret-injector`: one-off runs with their exit code and output ([`run`]), and `serve` on
//! ephemeral loopback ports ([`Served`]), ready once it logs its `serving` line (the addresses are read from it)
//! and killed when dropped.
//!
//! Every process runs with a cleared environment (plus `NO_PROXY=*` and what the test gives), so neither a
//! developer's `PULLSECRET_INJECTOR_*` variables nor a proxy change what is tested. `serve` also carries a
//! parent-death signal (`setpriv --pdeathsig KILL`): a test process that is killed outright leaves no server behind.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::bounded;
use super::process::{Reaped, output_within};

pub const BIN: &str = env!("CARGO_BIN_EXE_pullsecret-injector");

/// Bound of one run of the binary, and of `serve`'s start: a hang fails the test instead of the whole run.
pub const RUN_WAIT: Duration = Duration::from_secs(60);

/// The outcome of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary with `args` and `stdin` (none: no input), bounded by [`RUN_WAIT`].
pub fn run<S: AsRef<OsStr>>(args: &[S], stdin: Option<&[u8]>) -> Run {
    run_env(args, stdin, &[])
}

/// [`run`] with these environment variables besides `NO_PROXY=*`.
pub fn run_env<S: AsRef<OsStr>>(args: &[S], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(BIN);
    command.args(args).env_clear().env("NO_PROXY", "*").envs(env.iter().copied());
    let output = output_within(&mut command, stdin, RUN_WAIT);
    Run {
        code: output.status.code().unwrap_or_else(|| panic!("{command:?} was killed by a signal")),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A CA, a serving certificate for `localhost` and 127.0.0.1 and its key in `out`, from the binary's own `certs`
/// subcommand.
pub fn certs(out: &Path) {
    let mut args = vec![OsString::from("certs")];
    args.extend(["--dns", "localhost", "--ip", "127.0.0.1", "--out"].map(OsString::from));
    args.push(out.into());
    let run = run(&args, None);
    assert_eq!(run.code, 0, "certs: {}", run.stderr);
}

/// [`certs`] in `dir/certs`; returns that folder.
pub fn dev_certs(dir: &Path) -> PathBuf {
    let out = dir.join("certs");
    certs(&out);
    out
}

/// How [`Served`] starts the process, besides its arguments.
#[derive(Default)]
pub struct Options<'a> {
    /// Environment variables (the rest of the environment is cleared): `KUBECONFIG` for cluster mode.
    pub env: &'a [(&'a str, &'a OsStr)],
    /// At most this many file descriptors (soft and hard limit).
    pub open_files: Option<u32>,
}

/// `pullsecret-injector serve` on `127.0.0.1:0` (webhook and admin port), with the certificate in `certs`; killed
/// and reaped when dropped. Its stderr is kept, line by line.
pub struct Served {
    child: Reaped,
    pub webhook: SocketAddr,
    pub admin: SocketAddr,
    /// The folder of `ca.crt`, `tls.crt` and `tls.key` it was started with.
    pub certs: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<thread::JoinHandle<()>>,
}

/// The `listen` and `admin` addresses of the `serving` line, in either log format.
fn serving_addresses(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    if let Ok(Value::Object(event)) = serde_json::from_str::<Value>(line) {
        if event.get("message").and_then(Value::as_str) != Some("serving") {
            return None;
        }
        let field = |name: &str| event.get(name)?.as_str()?.parse().ok();
        return Some((field("listen")?, field("admin")?));
    }
    if !line.contains(" serving ") {
        return None;
    }
    let field = |name: &str| line.split_whitespace().find_map(|w| w.strip_prefix(name))?.parse().ok();
    Some((field("listen=")?, field("admin=")?))
}

impl Served {
    /// `serve` with `args` after the listen addresses and the certificate.
    pub fn start<S: AsRef<OsStr>>(certs: &Path, args: &[S]) -> Self {
        Self::start_with(certs, args, Options::default())
    }

    pub fn start_with<S: AsRef<OsStr>>(certs: &Path, args: &[S], options: Options<'_>) -> Self {
        let mut command = Command::new("setpriv");
        command.args(["--pdeathsig", "KILL", "--"]);
        if let Some(limit) = options.open_files {
            // The shell lowers the limit and replaces itself with the binary (same pid).
            command.args(["sh", "-c", &format!("ulimit -n {limit} && exec \"$0\" \"$@\"")]);
        }
        command
            .arg(BIN)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(certs.join("tls.crt"))
            .arg("--tls-key")
            .arg(certs.join("tls.key"))
            .args(args)
            .env_clear()
            .env("NO_PROXY", "*")
            .envs(options.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = Reaped::spawn(&mut command);
        let log = Arc::new(Mutex::new(Vec::new()));
        let (serving_tx, serving) = mpsc::channel();
        let stderr = child.0.stderr.take().expect("piped stderr");
        let lines = log.clone();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addresses) = serving_addresses(&line) {
                    let _ = serving_tx.send(addresses);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let (webhook, admin) = serving.recv_timeout(RUN_WAIT).unwrap_or_else(|why| {
            panic!("serve did not log `serving` ({why}); its log:\n{}", log.lock().unwrap().join("\n"))
        });
        Self { child, webhook, admin, certs: certs.to_path_buf(), log, reader: Some(reader) }
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// The log so far, one line each.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The whole log, once the process has exited (its stderr read to the end).
    pub fn whole_log(&mut self) -> String {
        assert!(self.try_wait().is_some(), "serve is still running");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the log reader");
        }
        self.log() + "\n"
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM {}", self.pid());
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.0.try_wait().expect("try_wait")
    }

    /// The exit status, once the process exits within `wait` (else the test fails).
    pub fn exited_within(&mut self, wait: Duration) -> ExitStatus {
        let status = self.child.wait_within(wait);
        status.unwrap_or_else(|| panic!("serve did not exit within {wait:?}; its log:\n{}", self.log()))
    }

    /// The exit status, once the process exits.
    pub async fn exited(&mut self) -> ExitStatus {
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A client for both ports, trusting only the CA in `certs`, one connection per request.
    pub fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(self.certs.join("ca.crt")).expect("the CA of the serving certificate");
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM certificate"))
            .pool_max_idle_per_host(0)
            .no_proxy()
            .timeout(super::WAIT)
            .build()
            .expect("a client")
    }

    /// POST `/mutate` on the webhook port: status and body.
    pub async fn mutate(&self, body: &[u8]) -> (u16, Vec<u8>) {
        let response = self
            .client()
            .post(format!("https://{}/mutate", self.webhook))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("an answer from /mutate");
        (response.status().as_u16(), response.bytes().await.expect("the body").to_vec())
    }

    /// GET on the admin port: status and body.
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let response = self.client().get(format!("http://{}{path}", self.admin)).send().await.expect("an admin answer");
        (response.status().as_u16(), response.text().await.expect("the body"))
    }

    /// GET on the admin port without an async runtime: status and body; status 0 when nothing answers.
    pub fn admin_get_blocking(&self, path: &str) -> (u16, String) {
        http_get(self.admin, path).unwrap_or((0, String::new()))
    }

    /// Waits until `/readyz` answers 200.
    pub async fn until_ready(&self) {
        bounded("/readyz 200", async {
            while self.admin_get("/readyz").await.0 != 200 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    /// [`Served::until_ready`] without an async runtime, for at most `wait`; fails at once if the process exits.
    pub fn until_ready_blocking(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while self.admin_get_blocking("/readyz").0 != 200 {
            if let Some(status) = self.try_wait() {
                panic!("serve exited ({status}); its log:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "serve not ready after {wait:?}; its log:\n{}", self.log());
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls `/metrics` until `done` holds for it; returns that exposition.
    pub async fn until_metrics(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        bounded(what, async {
            loop {
                let (_, text) = self.admin_get("/metrics").await;
                if done(&text) {
                    return text;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }

    /// Polls `/metrics` until `series` is at least `at_least`.
    pub async fn until_metric(&self, series: &str, at_least: f64) {
        self.until_metrics(series, |text| super::metric(text, series).is_some_and(|v| v >= at_least)).await;
    }
}

/// One HTTP/1.1 GET over plain TCP (`Connection: close`), bounded by read and write timeouts of 5 s.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP status line: {head:?}")))?;
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding") && value.trim().eq_ignore_ascii_case("chunked")
        })
    });
    Ok((status, if chunked { dechunk(body) } else { body.to_string() }))
}

/// The payload of a chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        let (Some(chunk), Some(after)) = (rest.get(..size), rest.get(size..)) else { break };
        if size == 0 {
            break;
        }
        out.push_str(chunk);
        body = after.trim_start_matches("\r\n");
    }
    out
}
