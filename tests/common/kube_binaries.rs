//! The real Kubernetes programs (etcd, kube-apiserver, kube-controller-manager, kubelet-oracle) that
//! `tests/cluster/build.sh` builds from the pinned `k8s.io/kubernetes` module and caches outside the work tree.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The folder holding `bin/<program>`: built on first use (minutes, once per machine), then reused in seconds.
/// `PULLSECRET_INJECTOR_KUBE_BIN` names a prepared folder instead. A failed build fails the test with build.sh's
/// own words: `make test` must not pass silently without the real programs.
pub fn kube_binaries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("PULLSECRET_INJECTOR_KUBE_BIN") {
            return PathBuf::from(dir);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/build.sh");
        let out = Command::new("bash").arg(&script).output().expect("run tests/cluster/build.sh");
        assert!(
            out.status.success(),
            "tests/cluster/build.sh failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).expect("build.sh prints a path").trim())
    })
}

/// The path of one of the built programs.
pub fn kube_binary(name: &str) -> PathBuf {
    kube_binaries().join("bin").join(name)
}
