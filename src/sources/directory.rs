//! `--secrets-dir`: credentials from a directory of manifests (local mode, no cluster), reloaded on change.
//!
//! The directory is polled: a cheap fingerprint (names, sizes, modification times, following symlinks so that the
//! `..data` swap of a mounted ConfigMap or Secret volume is seen) decides whether to re-read it. A directory that
//! no longer parses keeps the previous credentials, logs the file and problem, and counts a failed reload.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::metrics::{Metrics, ResultLabels};
use crate::sources::live::LiveCredentials;
use crate::sources::manifests::{self, IndexInputs, InputError};

/// Namespace given to manifests in the directory that do not name one.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Reads the directory into `live`. Returns the fingerprint it read.
pub fn load(dir: &Path, live: &LiveCredentials) -> Result<u64, InputError> {
    let fingerprint = fingerprint(dir)?;
    // Each object is reduced as it is read: credentials are dropped file by file, and only what the index keeps is
    // held until the whole directory has been read.
    let inputs = IndexInputs::load(&[dir.to_path_buf()], DEFAULT_NAMESPACE, live.options().limits)?;
    live.replace(inputs.index());
    Ok(fingerprint)
}

/// Re-reads the directory whenever its fingerprint changes, every `interval`, until `shutdown` resolves.
pub async fn watch(
    dir: PathBuf,
    live: Arc<LiveCredentials>,
    metrics: Arc<Metrics>,
    mut last: u64,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        let dir2 = dir.clone();
        let current = match tokio::task::spawn_blocking(move || fingerprint(&dir2)).await {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                warn!(error = %e, "secrets directory unreadable; keeping the previous credentials");
                continue;
            }
            Err(_) => continue,
        };
        if current == last {
            continue;
        }
        let (dir2, live2) = (dir.clone(), live.clone());
        match tokio::task::spawn_blocking(move || load(&dir2, &live2)).await {
            Ok(Ok(f)) => {
                last = f;
                metrics.source_reloads.get_or_create(&ResultLabels { result: "success" }).inc();
                let secrets = live.read(|i| i.secret_count());
                info!(dir = %dir.display(), secrets, "secrets directory reloaded");
            }
            Ok(Err(e)) => {
                // Remember the broken state so the error is logged once per change, not every tick.
                last = current;
                metrics.source_reloads.get_or_create(&ResultLabels { result: "error" }).inc();
                warn!(error = %e, "secrets directory reload failed; keeping the previous credentials");
            }
            Err(_) => {}
        }
    }
}

/// A hash of what the directory holds, without reading file contents.
pub fn fingerprint(dir: &Path) -> Result<u64, InputError> {
    let mut hasher = DefaultHasher::new();
    for file in manifests::manifest_files(dir)? {
        let meta = std::fs::metadata(&file).map_err(|source| InputError::Read { path: file.clone(), source })?;
        file.hash(&mut hasher);
        meta.len().hash(&mut hasher);
        meta.modified().ok().hash(&mut hasher);
        // A symlink swap can keep size and mtime: include the resolved target.
        std::fs::canonicalize(&file).ok().hash(&mut hasher);
    }
    Ok(hasher.finish())
}
