//! Records the git commit the binary is built from, for `--version` (`0.1.0 (commit 1a2b3c4d5e6f)`). Outside a git
//! checkout (a source archive, the Dockerfile's build stage) the commit is `unknown`; `PULLSECRET_INJECTOR_COMMIT`
//! set at build time wins.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PULLSECRET_INJECTOR_COMMIT");
    // A new commit or checkout moves HEAD or the branch it names.
    for path in [".git/HEAD", ".git/logs/HEAD"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("PULLSECRET_INJECTOR_COMMIT").ok().filter(|c| !c.is_empty()).unwrap_or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into())
    });
    println!("cargo:rustc-env=PULLSECRET_INJECTOR_COMMIT={commit}");
}
