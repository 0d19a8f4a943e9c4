//! Key normalization and matching: never panic; explain agrees with lookup. Input: key, a NUL, then an image.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pullsecret_injector::kubelet::keyring::{Keyring, lint_key};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (key, target) = s.split_once('\0').unwrap_or((s, "docker.io/library/nginx"));
    let mut ring = Keyring::new();
    ring.add(key, ());
    let found = !ring.lookup_str(target).is_empty();
    assert_eq!(found, ring.explain(target, |_| true).iter().any(|v| v.matched));
    let _ = lint_key(key);
});
