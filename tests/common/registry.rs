//! Debian's `docker-registry` (the Distribution project's registry 2.x) on a free loopback port, with a temporary
//! storage folder, plain HTTP or TLS, and no authentication, htpasswd (bcrypt) or token authentication; killed when
//! dropped (and, through a parent-death signal, when the test process dies). `make test` installs it
//! (tests/install-deps.sh).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::free_port;
use super::process::Reaped;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// The user of [`HTPASSWD`].
pub const USER: &str = "alice";
/// The password [`HTPASSWD`] accepts.
pub const PASSWORD: &str = "pull-secret-test-Pa55";
/// `alice:bcrypt(PASSWORD)` at cost 5 (cheap on purpose). Distribution accepts only bcrypt; made once with
/// `perl -e 'print crypt("pull-secret-test-Pa55", "$2b$05$" . SALT22)'` (libxcrypt), which is what
/// `htpasswd -nbB -C 5 alice pull-secret-test-Pa55` prints too. tests/registry.rs's `ok` cases prove it is right.
pub const HTPASSWD: &str = "alice:$2b$05$aCKo1hOoz8qOC6qVWATQPuhdAvJCzcL6L2/OQ7iBEj9oZajiLimRG\n";

/// How long a registry may take to answer its first `GET /v2/`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether the registry is installed.
pub fn installed() -> bool {
    Path::new(REGISTRY_BIN).is_file()
}

/// The `auth` string of a docker config entry (base64 of `user:password`).
pub fn basic(user: &str, password: &str) -> String {
    STANDARD.encode(format!("{user}:{password}"))
}

/// The serving certificate and key of a registry with TLS (PEM files).
#[derive(Clone, Copy)]
pub struct Tls<'a> {
    pub cert_file: &'a Path,
    pub key_file: &'a Path,
}

pub enum Auth<'a> {
    /// Anyone may push and pull.
    None,
    /// [`HTPASSWD`]: [`USER`] with [`PASSWORD`].
    Htpasswd,
    /// Distribution's token authentication: `realm` issues JWTs for `service` from `issuer`, signed by a certificate
    /// of `root_bundle`.
    Token { realm: &'a str, service: &'a str, issuer: &'a str, root_bundle: &'a Path },
}

/// A running `docker-registry`.
pub struct Registry {
    child: Reaped,
    pub port: u16,
    /// stdout and stderr of the registry.
    log: PathBuf,
}

impl Registry {
    /// Starts a registry in `dir/NAME` and waits until `GET /v2/` answers (401 with authentication on).
    pub fn start(dir: &Path, name: &str, tls: Option<Tls<'_>>, auth: Auth<'_>) -> Self {
        let root = dir.join(name);
        std::fs::create_dir_all(root.join("storage")).unwrap();
        let port = free_port();
        let tls_section = tls.map_or_else(String::new, |tls| {
            format!("  tls:\n    certificate: {}\n    key: {}\n", tls.cert_file.display(), tls.key_file.display())
        });
        let auth_section = match auth {
            Auth::None => String::new(),
            Auth::Htpasswd => {
                let htpasswd = root.join("htpasswd");
                std::fs::write(&htpasswd, HTPASSWD).unwrap();
                format!("auth:\n  htpasswd:\n    realm: test-registry\n    path: {}\n", htpasswd.display())
            }
            Auth::Token { realm, service, issuer, root_bundle } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    \
                 rootcertbundle: {}\n",
                root_bundle.display()
            ),
        };
        let config = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n\
             \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n{tls_section}\
             {auth_section}",
            storage = root.join("storage").display(),
        );
        let config_file = root.join("config.yml");
        std::fs::write(&config_file, config).unwrap();
        let log = root.join("registry.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Reaped::spawn(
            Command::new("setpriv")
                .args(["--pdeathsig", "KILL", "--", REGISTRY_BIN, "serve"])
                .arg(&config_file)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file),
        );
        let mut registry = Registry { child, port, log };
        registry.wait_until_ready(tls.is_some());
        registry
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Polls `GET /v2/` until any HTTP answer, bounded by [`START_TIMEOUT`]. On a thread of its own, with a runtime
    /// of its own, so that async tests can start a registry too.
    fn wait_until_ready(&mut self, tls: bool) {
        let url = format!("{}://{}/v2/", if tls { "https" } else { "http" }, self.host());
        let answers = || {
            let url = url.clone();
            thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                // Readiness only: the certificate is what the tests themselves check.
                let client = reqwest::Client::builder()
                    .danger_accept_invalid_certs(true)
                    .no_proxy()
                    .timeout(Duration::from_millis(500))
                    .build()
                    .unwrap();
                runtime.block_on(async { client.get(&url).send().await }).is_ok()
            })
            .join()
            .expect("the readiness probe")
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !answers() {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                panic!("docker-registry exited ({status}) before answering:\n{}", self.logs());
            }
            assert!(Instant::now() < deadline, "docker-registry did not answer {url} in time:\n{}", self.logs());
            // The poll interval while the process starts, not a guess at how long starting takes.
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// What the registry printed, for failure messages.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
