//! Differential fuzzing against the kubelet's own code. The fuzzer's bytes drive the case generator of
//! tests/kubelet_oracle.rs; each case goes to one long-lived kubelet-oracle (its path in
//! `PULLSECRET_INJECTOR_KUBELET_ORACLE`: `$(bash tests/cluster/build.sh)/bin/kubelet-oracle`), and a disagreement with
//! the Rust core is a crash whose message holds the case as a JSON line.
#![no_main]

#[path = "../../tests/oracle/mod.rs"]
mod oracle;

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

/// Choices from the fuzzer's bytes (zeros once they run out).
struct Bytes<'a>(Unstructured<'a>);

impl oracle::Source for Bytes<'_> {
    fn below(&mut self, n: usize) -> usize {
        self.0.choose_index(n).unwrap_or(0)
    }

    fn text(&mut self) -> String {
        self.0.arbitrary::<&str>().unwrap_or_default().to_owned()
    }
}

fn kubelet() -> &'static Mutex<oracle::Oracle> {
    static ORACLE: OnceLock<Mutex<oracle::Oracle>> = OnceLock::new();
    ORACLE.get_or_init(|| {
        let path = std::env::var_os("PULLSECRET_INJECTOR_KUBELET_ORACLE")
            .expect("PULLSECRET_INJECTOR_KUBELET_ORACLE: the kubelet-oracle binary ($(bash tests/cluster/build.sh)/bin/kubelet-oracle)");
        Mutex::new(oracle::Oracle::spawn(path.as_ref()))
    })
}

fuzz_target!(|data: &[u8]| {
    let case = oracle::generate(&mut Bytes(Unstructured::new(data)));
    let line = case.to_json();
    let answer = kubelet().lock().expect("oracle lock").ask(&line);
    let theirs = oracle::theirs(&answer).unwrap_or_else(|e| panic!("{e}\ncase:    {line}"));
    if let Err(why) = oracle::compare(&oracle::ours(&case), &theirs) {
        panic!("the Rust core disagrees with the kubelet\ncase:    {line}\nkubelet: {answer}\nwhy:     {why}");
    }
});
