//! The container image, built as `make image` builds it (image/rootfs.sh, then image/oci-layout.py) from this
//! build's binary, then handled only by real image tools: pushed with `skopeo` to Debian's `docker-registry`,
//! inspected there (user, entrypoint, labels, size), pulled back, unpacked, and the binary run from the unpacked
//! root filesystem (`chroot` as the image's user), which shows the image holds everything it needs.

mod common;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use common::binary::BIN;
use common::process::run;
use common::registry::{Auth, Registry};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// image/rootfs.sh and image/oci-layout.py, with a fixed time and revision; returns the layout folder.
fn build_layout(work: &Path, name: &str) -> PathBuf {
    let rootfs = work.join(format!("{name}-rootfs"));
    run(Command::new("bash").arg(format!("{ROOT}/image/rootfs.sh")).arg(BIN).arg(&rootfs));
    let layout = work.join(format!("{name}-oci"));
    run(Command::new("python3")
        .arg(format!("{ROOT}/image/oci-layout.py"))
        .arg("--rootfs")
        .arg(&rootfs)
        .arg("--out")
        .arg(&layout)
        .args(["--tag", VERSION, "--revision", "0123456789abcdef", "--created", "1700000000"]));
    layout
}

#[test]
fn the_image_is_reproducible_pushes_inspects_and_runs_from_its_own_root_filesystem() {
    let work = tempfile::tempdir().unwrap();
    let first = build_layout(work.path(), "a");
    let second = build_layout(work.path(), "b");
    let index = |layout: &Path| std::fs::read_to_string(layout.join("index.json")).unwrap();
    assert_eq!(index(&first), index(&second), "the same binary and arguments give the same image digest");

    // Debian's docker-registry on a free loopback port, plain HTTP, no authentication.
    let registry = Registry::start(work.path(), "registry", None, Auth::None);
    let reference = format!("docker://{}/pullsecret-injector:{VERSION}", registry.host());
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{VERSION}", first.display()))
        .arg(&reference));

    let config: Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--config"])
        .arg(&reference)))
    .unwrap();
    let image = &config["config"];
    assert_eq!(image["User"], "65532:65532", "runs as the non-root user the Deployment requires");
    assert_eq!(image["Entrypoint"], serde_json::json!(["/pullsecret-injector"]));
    assert_eq!(image["Cmd"], serde_json::json!(["serve"]));
    let labels = &image["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], VERSION);
    assert_eq!(labels["org.opencontainers.image.revision"], "0123456789abcdef");
    assert_eq!(labels["org.opencontainers.image.title"], "pullsecret-injector");
    let raw: Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(&reference)))
    .unwrap();
    let size: u64 = raw["layers"].as_array().unwrap().iter().map(|l| l["size"].as_u64().unwrap()).sum();
    eprintln!("image: one layer of {:.1} MiB compressed (debug binary)", size as f64 / 1_048_576.0);
    assert_eq!(raw["layers"].as_array().unwrap().len(), 1);

    // Pulled back, as a node would, and unpacked.
    let pulled = work.path().join("pulled");
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(&reference)
        .arg(format!("oci:{}:{VERSION}", pulled.display())));
    let layer_digest = raw["layers"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let rootfs = work.path().join("unpacked");
    std::fs::create_dir(&rootfs).unwrap();
    run(Command::new("tar").arg("-xzf").arg(pulled.join("blobs/sha256").join(&layer_digest)).arg("-C").arg(&rootfs));
    let listing = run(Command::new("tar").arg("-tzvf").arg(pulled.join("blobs/sha256").join(&layer_digest)));
    assert!(!listing.contains("bin/sh"), "no shell in the image:\n{listing}");
    assert!(listing.lines().all(|l| l.contains(" 0/0 ")), "every file owned by 0:0:\n{listing}");

    // Run from the unpacked root filesystem alone: chroot as the image's user.
    let in_image = |args: &[&str]| {
        run(Command::new("chroot").arg("--userspec=65532:65532").arg(&rootfs).arg("/pullsecret-injector").args(args))
    };
    let version = in_image(&["--version"]);
    assert!(version.starts_with(&format!("pullsecret-injector {VERSION} (commit ")), "{version}");
    assert!(in_image(&["--help"]).contains("serve"));
    // The CA certificates the image carries are readable by its user (registries' TLS for `verify`).
    let mut certs = String::new();
    std::fs::File::open(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap().read_to_string(&mut certs).unwrap();
    assert!(certs.contains("BEGIN CERTIFICATE"));
}
