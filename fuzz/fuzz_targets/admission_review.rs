//! A whole admission review: any body gets an answer (200 or 400), never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pullsecret_injector::core::admission::review;
use pullsecret_injector::core::credentials::CredentialIndex;
use pullsecret_injector::core::decision::Policy;

fuzz_target!(|data: &[u8]| {
    let reviewed = review(data, &CredentialIndex::new(), &Policy::default());
    assert!(reviewed.http_status == 200 || reviewed.http_status == 400);
});
