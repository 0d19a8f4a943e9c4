//! The image reference parser: never panics; a parsed name is a fixed point of normalization.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pullsecret_injector::kubelet::reference::parse_normalized_named;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(r) = parse_normalized_named(s) {
        let name = r.name();
        let again = parse_normalized_named(&name).expect("a normalized name parses");
        assert_eq!(again.name(), name);
    }
});
