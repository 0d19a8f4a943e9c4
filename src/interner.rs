//! Sharing of immutable values that many namespaces hold alike: a cluster's namespaces mostly hold the same few
//! registry keys and the same pull Secrets (copies made by ClusterPullSecrets and other copiers), and every
//! namespace's snapshot would otherwise keep its own copy of each (BENCHMARKS.md, scale).
//!
//! An [`Interner`] holds weak references only: a value lives as long as something else holds it, and entries whose
//! value is gone are swept once the table has doubled since the last sweep (amortized O(1) per lookup; the table
//! never holds more than twice the live values). Sharing changes no result: a value is shared only with an equal one.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Arc, Weak};

/// A table of shared values, each found by a key. Wrap it in a lock to share it between threads.
pub struct Interner<K, V: ?Sized> {
    entries: HashMap<K, Weak<V>>,
    /// The table is swept when it reaches this size.
    sweep_at: usize,
    /// Keys the values of [`Interner::share`] by their content: random per process, so that no input can be made
    /// to collide with another tenant's value on purpose (a collision only costs the sharing, never a result).
    content: RandomState,
}

/// Tables smaller than this are never swept.
const MIN_SWEEP_AT: usize = 1024;

impl<K: Hash + Eq, V: ?Sized> Default for Interner<K, V> {
    fn default() -> Self {
        Self { entries: HashMap::new(), sweep_at: MIN_SWEEP_AT, content: RandomState::new() }
    }
}

impl<K: Hash + Eq, V: ?Sized> Interner<K, V> {
    /// The value of `key`, made by `make` when no live value has that key (the key must determine the value).
    pub fn get_or_make(&mut self, key: K, make: impl FnOnce(&K) -> V) -> Arc<V>
    where
        V: Sized,
    {
        if let Some(value) = self.entries.get(&key).and_then(Weak::upgrade) {
            return value;
        }
        let value = Arc::new(make(&key));
        self.insert(key, &value);
        value
    }

    /// The number of entries, live or not yet swept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn insert(&mut self, key: K, value: &Arc<V>) {
        if self.entries.len() >= self.sweep_at {
            self.entries.retain(|_, value| value.strong_count() > 0);
            self.sweep_at = (2 * self.entries.len()).max(MIN_SWEEP_AT);
        }
        self.entries.insert(key, Arc::downgrade(value));
    }
}

/// What the table holds for a value's content.
enum Found<V: ?Sized> {
    /// An equal live value.
    Equal(Arc<V>),
    /// Another live value with the same hash: this one is not shared (a collision costs the sharing, nothing else).
    Other,
    /// Nothing live: a new value goes under this key.
    Vacant(u64),
}

impl<V: ?Sized + Hash + Eq> Interner<u64, V> {
    fn find(&self, value: &V) -> Found<V> {
        let key = self.content.hash_one(value);
        match self.entries.get(&key).and_then(Weak::upgrade) {
            Some(shared) if *shared == *value => Found::Equal(shared),
            Some(_) => Found::Other,
            None => Found::Vacant(key),
        }
    }

    fn keep(&mut self, found: Found<V>, value: impl FnOnce() -> Arc<V>) -> Arc<V> {
        match found {
            Found::Equal(shared) => shared,
            Found::Other => value(),
            Found::Vacant(key) => {
                let value = value();
                self.insert(key, &value);
                value
            }
        }
    }
}

impl<V: Hash + Eq> Interner<u64, V> {
    /// `value`, shared with an equal live value when there is one (found by a hash of its content).
    pub fn share(&mut self, value: V) -> Arc<V> {
        let found = self.find(&value);
        self.keep(found, || Arc::new(value))
    }
}

impl Interner<u64, str> {
    /// [`Interner::share`] for a string.
    pub fn share_str(&mut self, value: &str) -> Arc<str> {
        let found = self.find(value);
        self.keep(found, || Arc::from(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_allocation_while_one_lives() {
        let mut interner = Interner::<u64, String>::default();
        let a = interner.share("quay.io".to_string());
        let b = interner.share("quay.io".to_string());
        assert!(Arc::ptr_eq(&a, &b));
        let c = interner.share("ghcr.io".to_string());
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(*c, "ghcr.io");
        drop((a, b));
        let d = interner.share("quay.io".to_string());
        assert_eq!(Arc::strong_count(&d), 1, "a new value once the old one is gone");
    }

    #[test]
    fn equal_strings_share_one_allocation() {
        let mut interner = Interner::<u64, str>::default();
        let a = interner.share_str("regcred");
        assert!(Arc::ptr_eq(&a, &interner.share_str("regcred")));
        assert_eq!(&*interner.share_str("other"), "other");
        assert!(!Arc::ptr_eq(&a, &interner.share_str("other")));
    }

    #[test]
    fn a_key_makes_its_value_once_while_it_lives() {
        let mut interner = Interner::<String, usize>::default();
        let mut made = 0;
        let a = interner.get_or_make("docker.io".into(), |k| {
            made += 1;
            k.len()
        });
        let b = interner.get_or_make("docker.io".into(), |_| unreachable!("made once"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!((*a, made), (9, 1));
    }

    #[test]
    fn dead_entries_are_swept_as_the_table_grows() {
        let mut interner = Interner::<String, usize>::default();
        let kept: Vec<Arc<usize>> = (0..10).map(|i| interner.get_or_make(format!("kept-{i}"), |_| i)).collect();
        for i in 0..100_000 {
            interner.get_or_make(format!("gone-{i}"), |_| i);
        }
        // Swept at each doubling: never more than twice the live values or the minimum, plus one.
        assert!(interner.len() <= 2 * MIN_SWEEP_AT, "{}", interner.len());
        for (i, value) in kept.iter().enumerate() {
            assert!(Arc::ptr_eq(value, &interner.get_or_make(format!("kept-{i}"), |_| unreachable!())));
        }
    }
}
