//! The live credential cache of `serve`: a [`CredentialIndex`] behind a read-mostly lock, fed by one source
//! (the cluster's watches, or the secrets directory), and the readiness it reports.
//!
//! Admission holds the read lock only to clone one namespace's `Arc` snapshot, so a relist never stalls it for
//! longer than that swap.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::credentials::{CredentialIndex, CredentialSource, NamespaceCredentials};
use crate::metrics::{KindLabels, Metrics};

/// What `/readyz` waits for: every source's first sync and a loaded certificate; and what it refuses after SIGTERM.
#[derive(Debug, Default)]
pub struct Readiness {
    pending: Mutex<BTreeSet<&'static str>>,
    shutting_down: AtomicBool,
}

impl Readiness {
    /// Readiness that waits for each of `parts` to be marked done.
    pub fn waiting_for(parts: &[&'static str]) -> Self {
        Self { pending: Mutex::new(parts.iter().copied().collect()), shutting_down: AtomicBool::new(false) }
    }

    pub fn mark_done(&self, part: &'static str) {
        self.pending.lock().expect("readiness lock").remove(part);
    }

    pub fn start_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// `Ok` when ready, else what is still missing (for the `/readyz` body).
    pub fn check(&self) -> Result<(), String> {
        if self.is_shutting_down() {
            return Err("shutting down".into());
        }
        let pending = self.pending.lock().expect("readiness lock");
        if pending.is_empty() {
            Ok(())
        } else {
            Err(format!("waiting for: {}", pending.iter().copied().collect::<Vec<_>>().join(", ")))
        }
    }
}

/// The index admission reads, with the metrics its size is reported to.
pub struct LiveCredentials {
    index: RwLock<CredentialIndex>,
    metrics: Arc<Metrics>,
}

impl LiveCredentials {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { index: RwLock::new(CredentialIndex::new()), metrics }
    }

    /// Applies a change under the write lock, then reports the cache size.
    pub fn update<R>(&self, change: impl FnOnce(&mut CredentialIndex) -> R) -> R {
        let mut index = self.index.write().expect("credential index lock");
        let result = change(&mut index);
        self.report(&index);
        result
    }

    /// Replaces the whole index (the secrets directory reloads this way).
    pub fn replace(&self, new: CredentialIndex) {
        self.update(|index| *index = new);
    }

    /// Runs `read` over the index (for the controller and tests).
    pub fn read<R>(&self, read: impl FnOnce(&CredentialIndex) -> R) -> R {
        read(&self.index.read().expect("credential index lock"))
    }

    fn report(&self, index: &CredentialIndex) {
        let gauge = |kind: &'static str, n: usize| {
            self.metrics.cache_objects.get_or_create(&KindLabels { kind }).set(n as i64);
        };
        gauge("secrets", index.secret_count());
        gauge("namespaces", index.namespace_count());
        gauge("clusterpullsecrets", index.distribution_count());
    }
}

impl CredentialSource for LiveCredentials {
    fn namespace(&self, namespace: &str) -> Arc<NamespaceCredentials> {
        self.index.read().expect("credential index lock").view(namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_part_is_done_and_not_after_shutdown() {
        let r = Readiness::waiting_for(&["secrets", "certificate"]);
        assert_eq!(r.check(), Err("waiting for: certificate, secrets".into()));
        r.mark_done("secrets");
        assert!(r.check().is_err());
        r.mark_done("certificate");
        assert_eq!(r.check(), Ok(()));
        r.start_shutdown();
        assert_eq!(r.check(), Err("shutting down".into()));
    }
}
