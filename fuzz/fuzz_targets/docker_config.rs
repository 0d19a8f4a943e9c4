//! The docker config decoder: never panics, and the key-only decoder agrees with the full one.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pullsecret_injector::kubelet::docker_config::{SecretKind, decode, decode_keys};

fuzz_target!(|data: &[u8]| {
    for kind in [SecretKind::DockerConfigJson, SecretKind::DockerCfg] {
        match (decode(kind, data), decode_keys(kind, data)) {
            (Ok(entries), Ok(keys)) => assert_eq!(entries.into_iter().map(|e| e.key).collect::<Vec<_>>(), keys),
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!("decode and decode_keys disagree"),
        }
    }
});
