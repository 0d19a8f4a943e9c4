//! Differential test: the Rust core against the kubelet's own Go code.
//!
//! `tests/cluster/kubelet-oracle` is built from the Kubernetes release pinned in `tests/cluster/go.mod` (by
//! `tests/cluster/build.sh`, cached). Each case (a Pod's pull Secrets and images, or a credential provider's
//! `matchImages`) goes to it as one JSON line; its answer must equal what the Rust core computes with the functions
//! the decision uses (see `oracle/mod.rs`). A disagreement fails with the case as a JSON line: save the report to a
//! file and replay its cases with `PULLSECRET_INJECTOR_ORACLE_REPLAY=<file> cargo test --test kubelet_oracle
//! generated`, or feed a line to the oracle directly (`echo '<line>' | <cache>/bin/kubelet-oracle`).
//!
//! Generated cases: `PULLSECRET_INJECTOR_ORACLE_SEED` (default fixed) and `PULLSECRET_INJECTOR_ORACLE_CASES`
//! (default 20000) choose another set.

#[path = "common/kube_binaries.rs"]
mod kube_binaries;
mod oracle;

use std::time::Instant;

use oracle::{Answer, Case, Oracle, Rng, Secret};

/// The disagreements of a set of cases, each as a report that starts with the case's JSON line.
#[derive(Default)]
struct Outcome {
    /// Disagreements: the test fails.
    failures: Vec<String>,
    coverage: Coverage,
}

/// What the cases reached, by the Rust core's answers (which agree with the kubelet's, or the test fails).
#[derive(Default, Debug)]
struct Coverage {
    images: usize,
    invalid: usize,
    with_credentials: usize,
    with_several: usize,
    keyring_errors: usize,
    match_hits: usize,
}

impl Coverage {
    fn count(&mut self, answer: &Answer<oracle::OurCredential>) {
        match answer {
            Answer::Match(hit) => self.match_hits += usize::from(*hit),
            Answer::Lookup { keyring_error, images } => {
                self.keyring_errors += usize::from(keyring_error.is_some());
                for image in images {
                    let credentials = image.credentials.as_ref().map_or(0, Vec::len);
                    self.images += 1;
                    self.invalid += usize::from(image.lookup.is_err());
                    self.with_credentials += usize::from(credentials > 0);
                    self.with_several += usize::from(credentials > 1);
                }
            }
        }
    }
}

/// Makes `count` cases with `next` and sends them to the oracle on one thread while this one computes the Rust
/// core's answers and compares (the debug build's Rust work is what takes time).
fn run(oracle: &mut Oracle, count: usize, mut next: impl FnMut(usize) -> Case + Send) -> Outcome {
    let (sent, received) = std::sync::mpsc::channel();
    let line = move |i| {
        let case = next(i);
        let line = case.to_json();
        sent.send(case).expect("the reader is there");
        line
    };
    let mut outcome = Outcome::default();
    oracle.ask_each(count, line, |_, answer| {
        let case = received.recv().expect("the case was sent before its line");
        let ours = oracle::ours(&case);
        outcome.coverage.count(&ours);
        let theirs = oracle::theirs(answer);
        if let Err(why) = theirs.as_ref().map_err(Clone::clone).and_then(|theirs| oracle::compare(&ours, theirs)) {
            outcome.failures.push(format!("case:    {}\nkubelet: {answer}\nwhy:     {why}", case.to_json()));
        }
    });
    outcome
}

fn assert_agree(outcome: &Outcome, cases: usize) {
    assert!(
        outcome.failures.is_empty(),
        "{} of {cases} cases disagree with the kubelet (the first 20 below). Replay: save this report to a file, \
         then PULLSECRET_INJECTOR_ORACLE_REPLAY=<file> cargo test --test kubelet_oracle generated\n\n{}",
        outcome.failures.len(),
        outcome.failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n\n")
    );
}

fn spawn() -> Oracle {
    Oracle::spawn(&kube_binaries::kube_binary("kubelet-oracle"))
}

fn lookup(secrets: Vec<Secret>, images: &[&str], raw: bool) -> Case {
    Case::Lookup { secrets, images: images.iter().map(|s| (*s).to_owned()).collect(), raw }
}

/// The Secret names the kubelet answers for each image (`None`: no lookup).
fn kubelet_names(oracle: &mut Oracle, case: &Case) -> Vec<Option<Vec<String>>> {
    let Case::Lookup { secrets, .. } = case else { unreachable!() };
    match oracle::theirs(&oracle.ask(&case.to_json())).expect("an answer") {
        Answer::Lookup { images, .. } => images
            .into_iter()
            .map(|i| i.credentials.map(|c| c.iter().map(|c| secrets[c.secret].name.clone()).collect()))
            .collect(),
        Answer::Match(_) => unreachable!(),
    }
}

const SHA256_EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SHA256_BUSYBOX: &str = "sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";

/// Spec §3 N1–N21: the images (expected values are the unit tests' in src/kubelet/reference.rs; here the kubelet decides).
fn n_vectors() -> Vec<String> {
    let mut images: Vec<String> = [
        "root",
        "root:tag",
        "user/repo:tag",
        "docker.io/foo",
        "index.docker.io/library/ubuntu-12.04-base",
        "docker.io/library/foo/bar",
        "test_com/foo",
        "test-com:8080/foo",
        "xn--n3h.com:18080/foo",
        "127.0.0.1:8000/privatebase",
        "[fc00::1]:5000/docker",
        "Foo/bar",
        "registry-1.docker.io/nginx",
        "localhost/app",
        "localhost:5000",
        "example.com",
        "DOCKER.IO/nginx",
        // N21: invalid
        "docker/Docker",
        "docker.io/docker/Docker",
        "-docker",
        "docker///docker",
        "https://github.com/docker/docker",
        "[fc00::1]:5000",
        "fc00::1:5000/debian",
        "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
    ]
    .map(str::to_owned)
    .into();
    images.push(format!("root@{SHA256_EMPTY}"));
    images.push(format!("url:5000/repo@{SHA256_EMPTY}"));
    images.push(format!("busybox:latest@{SHA256_BUSYBOX}"));
    images
}

/// Spec §5 D1–D31 (and the §7 JSON and base64 facts of the unit tests in src/kubelet/docker_config.rs): (id, Secret).
fn d_vectors() -> Vec<(String, Secret)> {
    let mut out: Vec<(String, Secret)> = Vec::new();
    #[rustfmt::skip]
    let documents: &[(&str, bool, &str)] = &[
        ("D1", true, r#"{"auths":{"test.registry.io":{"auth":"dXNlcjpwYXNzd29yZA=="}}}"#),
        ("D2", false, r#"{"test.registry.io":{"auth":"dXNlcjpwYXNzd29yZA=="}}"#),
        ("D3", true, r#"{"auths":{"test.registry.io":{"username":"user","password":"password"}}}"#),
        ("D21", true, r#"{"r.io":{"auth":"Zm9vOmJhcg=="}}"#),
        ("D22", false, r#"{"auths":{"r.io":{"auth":"Zm9vOmJhcg=="}}}"#),
        ("D23", true, r#"{"auths":[]}"#),
        ("D24", true, "{}"),
        ("D24", true, r#"{"auths":null}"#),
        ("D25", true, r#"{"Auths":{"r.io":{"Auth":"Zm9vOmJhcg=="}}}"#),
        ("D26", true, r#"{"auths":{"r.io":null}}"#),
        ("D27", true, r#"{"auths":{"r.io":{"username":123}}}"#),
        ("D28", true, r#"{"auths":{"r.io":{"auth":"Zm9vOmJhcg=="}},"credsStore":"desktop","credHelpers":{"r.io":"x"}}"#),
        ("D29", true, r#"{"auths":{"r.io:abc":{"auth":"Zm9vOmJhcg=="},"ok.io":{"auth":"Zm9vOmJhcg=="}}}"#),
        ("D30", true, "[]"),
        ("D30", true, r#""x""#),
        ("D30", true, "auths: {}"),
        ("D30", false, "[]"),
        // §7 JSON facts
        ("§7", true, r#"{"auths":{"a.io":{"username":"1"},"b.io":{},"a.io":{"username":"2"}}}"#),
        ("§7", true, r#"{"auths":{"a.io":{}},"Auths":{"b.io":{}}}"#),
        ("§7", true, r#"{"AUTHS":{"a.io":{}}}"#),
        ("§7", true, r#"{"auth\u017f":{"a.io":{"u\u017fername":"foo"}}}"#),
        ("§7", true, r#"{"auths":{"a.io":{}},"auths":null,"auths":{"b.io":{}}}"#),
        ("§7", true, "null"),
        ("§7", true, " \n\t"),
        ("§7", true, "\u{FEFF}{}"),
        ("§7", true, "{} x"),
        ("§7", true, "{} \r\n\t "),
        ("§7", true, r#"{"credsStore":5,"auths":{"r.io":{"identitytoken":5,"x":[1,{"y":null}],"auth":"Zm9vOmJhcg=="}}}"#),
        ("§7", false, r#"{"a\ud800.io":{"username":"\udc00"}}"#),
        ("§7", false, r#"{"r.io":{"username":"\ud800\ud800\udc00"}}"#),
        ("§7", false, r#"{"auths":[]}"#),
        ("§7", true, r#"{"auths":{},"HttpHeaders":[]}"#),
        ("§7", true, r#"{"httpheaders":5}"#),
        ("§7", true, r#"{"HttpHeaders":{"X-A":"b","X-C":null},"auths":{"r.io":{}}}"#),
        ("§7", true, r#"{"HttpHeaders":5,"auths":{"r.io":{"auth":"pants"}}}"#),
        ("§7", true, r#"{"auths":{"r.io":{"auth":"pants","email":1}}}"#),
    ];
    for (id, config_json, payload) in documents {
        let secret = if *config_json { Secret::config_json("s", payload) } else { Secret::dockercfg("s", payload) };
        out.push(((*id).to_owned(), secret));
    }
    let entries: &[(&str, &str)] = &[
        ("D4", r#"{"username":"foo","password":"bar","email":"foo@example.com"}"#),
        ("D5", r#"{"auth":"Zm9vOmJhcg==","email":"foo@example.com"}"#),
        ("D6", r#"{"username":"foo","password":"bar","auth":"cGluZzpwb25n"}"#),
        ("D7", r#"{"auth":"pants"}"#),
        ("D8", r#"{"email": false}"#),
        ("D18", r#"{"auth":"","username":"foo","password":"bar"}"#),
        ("D19", r#"{"identitytoken":"tok"}"#),
        ("D20", r#"{"auth":"Zm9vOmJhcg==","identitytoken":"t","registrytoken":"r","serveraddress":"s.io"}"#),
        ("D26", "null"),
        ("D27", r#"{"username":123}"#),
        ("§7", "{}"),
    ];
    let auths: &[(&str, &str)] = &[
        ("D9", "cGFudHM="),
        ("D10", "Zm9vOmJhcg"),
        ("D11", "Zm9vOm\nJhcg==\n"),
        ("D12", "Zm9vOmJhcg== "),
        ("D13", "Zm9vOmJhcg="),
        ("D14", "foo:bar"),
        ("D15", "dXNlcjpwYTpzcw=="),
        ("D16", "Og=="),
        ("D17", "dXNlcjo="),
        ("§7", "OgB"),
        ("§7", "YR=="),
        ("§7", "\r\nZm9v\r\nOmJh\ncg=\n=\r\n"),
        ("§7", "\n\n"),
        ("§7", "Zm9vOm Jhcg=="),
        ("§7", "Zm9vOmJhcg\t"),
        ("§7", "-_86"),
        ("§7", "+/86"),
        ("§7", "/zo="),
    ];
    let with_auth: Vec<(&str, String)> = auths
        .iter()
        .map(|(id, auth)| (*id, format!(r#"{{"username":"x","password":"y","auth":{}}}"#, serde_json::json!(auth))))
        .collect();
    for (id, entry) in entries.iter().map(|(id, e)| (*id, (*e).to_owned())).chain(with_auth) {
        out.push((id.to_owned(), Secret::config_json("s", &format!(r#"{{"auths":{{"r.io":{entry}}}}}"#))));
        out.push((id.to_owned(), Secret::dockercfg("s", &format!(r#"{{"r.io":{entry}}}"#))));
    }
    // D31 and R1/R2: the type and its own data key go together; other types are ignored.
    let json = r#"{"auths":{"r.io":{"auth":"Zm9vOmJhcg=="}}}"#;
    out.push(("D31".into(), Secret::new("s", "kubernetes.io/dockercfg", ".dockerconfigjson", json)));
    out.push(("D31".into(), Secret::new("s", "kubernetes.io/dockerconfigjson", ".dockercfg", json)));
    out.push(("C12".into(), Secret::new("s", "Opaque", ".dockerconfigjson", json)));
    out.push(("R1".into(), Secret::new("s", "kubernetes.io/dockerconfigjson", ".dockerconfigjson", "")));
    out
}

/// A §4.7 vector: id, the Pod's Secrets, the image, the spec's try order by Secret name (`None`: MakeDockerKeyring
/// fails).
type SelectionVector<'a> = (&'a str, Vec<Secret>, &'a str, Option<&'a [&'a str]>);

/// Every spec vector the unit tests use, against the kubelet: N (image parsing, with a keyring that matches Docker
/// Hub and localhost), M (each key alone, raw lookup string; the kubelet must also give the spec's verdict), C (the
/// Pod-Secret part of each multi-Secret vector, with the spec's order), D (each payload).
#[test]
fn spec_vectors_agree_with_the_kubelet() {
    let mut oracle = spawn();
    let mut cases = Vec::new();

    let hub = Secret::with_keys("hub", &["https://index.docker.io/v1/", "localhost", "*:5000", "docker.io/library"]);
    let images = n_vectors();
    cases.push(Case::Lookup { secrets: vec![hub], images, raw: false });

    const MATCH_VECTORS: &[(&str, &str, &str, bool)] = include!("data/spec_match_vectors.rs");
    let mut wrong = Vec::new();
    for &(id, target, key, want) in MATCH_VECTORS {
        let case = lookup(vec![Secret::with_keys("s", &[key])], &[target], true);
        if kubelet_names(&mut oracle, &case)[0].as_ref().is_some_and(|names| names.is_empty() == want) {
            wrong.push(format!("{id}: key {key:?} vs {target:?}: the kubelet says {}", !want));
        }
        cases.push(case);
        // The same key as a credential provider's `matchImages` pattern: no normalization, no Docker Hub fallback.
        cases.push(Case::Match { patterns: vec![key.to_owned()], target: target.to_owned() });
    }
    assert!(wrong.is_empty(), "the kubelet contradicts the spec:\n{}", wrong.join("\n"));

    // §4.7 C1–C7, C11, C12, C14 (the Pod-Secret part).
    let bad = Secret::config_json("S1", r#"{"auths":{"other.io":{"auth":"pants"}}}"#);
    let opaque = Secret::new("S1", "Opaque", ".dockerconfigjson", r#"{"auths":{"reg.example.com":{}}}"#);
    #[rustfmt::skip]
    let c_vectors: Vec<SelectionVector> = vec![
        ("C1", vec![Secret::with_keys("S1", &["docker.io/myorg"]), Secret::with_keys("S2", &["https://index.docker.io/v1/"])], "myorg/app", Some(&["S1"])),
        ("C2", vec![Secret::with_keys("S1", &["docker.io/myorg"]), Secret::with_keys("S2", &["https://index.docker.io/v1/"])], "nginx", Some(&["S2"])),
        ("C3", vec![Secret::with_keys("S1", &["example.com"]), Secret::with_keys("S2", &["example.com/team"])], "example.com/team/app", Some(&["S2", "S1"])),
        ("C4", vec![Secret::with_keys("S1", &["*.example.com"]), Secret::with_keys("S2", &["reg.example.com"])], "reg.example.com/app", Some(&["S2", "S1"])),
        ("C5", vec![Secret::with_keys("S1", &["a.example.com"]), Secret::with_keys("S2", &["*.example.com/team"])], "a.example.com/team/x", Some(&["S1", "S2"])),
        ("C6", vec![Secret::with_keys("S1", &["reg.example.com"]), Secret::with_keys("S2", &["https://reg.example.com/v2/"])], "reg.example.com/app", Some(&["S1", "S2"])),
        ("C7", vec![Secret::with_keys("S2", &["https://reg.example.com/v2/"]), Secret::with_keys("S1", &["reg.example.com"])], "reg.example.com/app", Some(&["S2", "S1"])),
        ("C11", vec![Secret::with_keys("S1", &["reg.example.com"]), Secret::with_keys("S1", &["reg.example.com"])], "reg.example.com/app", Some(&["S1", "S1"])),
        ("C12", vec![opaque], "reg.example.com/app", Some(&[])),
        ("C14", vec![bad, Secret::with_keys("S2", &["reg.example.com"])], "reg.example.com/app", None),
    ];
    for (id, secrets, image, want) in c_vectors {
        let case = lookup(secrets, &[image], false);
        let got = kubelet_names(&mut oracle, &case).remove(0);
        let want = want.map(|names| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>());
        assert_eq!(got, want, "{id}: the kubelet contradicts the spec");
        cases.push(case);
    }

    let targets = ["r.io/x", "test.registry.io/x", "ok.io/x", "a.io/x", "b.io/x", "a\u{FFFD}.io/x"];
    for (_, secret) in d_vectors() {
        cases.push(lookup(vec![secret], &targets, true));
    }
    let outcome = run(&mut oracle, cases.len(), |i| cases[i].clone());
    assert_agree(&outcome, cases.len());
}

/// Where kubelets differ by the Go they are built with (spec §7.2-7.3): kubelet 1.35 (Go 1.25) kept these keys, and
/// the first matched `[fc00::1]:5000/app`; kubelet 1.36 (Go 1.26) drops them, and so does the Rust core.
#[test]
fn keys_go_1_26_rejects_are_dropped_as_kubelet_1_36_drops_them() {
    let mut oracle = spawn();
    for (key, image, raw) in [
        // Text before `[`.
        ("x[fc00::1]:5000", "[fc00::1]:5000/app", false),
        ("https://a.b[fc00::1]:5000/v2/", "[fc00::1]:5000/app", false),
        // A second colon outside brackets (`urlstrictcolons`); only a raw lookup string can tell.
        ("reg.example.com:5000:5000", "reg.example.com:5000:5000/app", true),
    ] {
        let case = lookup(vec![Secret::with_keys("s", &[key])], &[image], raw);
        let theirs = oracle::theirs(&oracle.ask(&case.to_json())).expect("an answer");
        let Answer::Lookup { images, .. } = &theirs else { unreachable!() };
        assert_eq!(images[0].credentials, Some(vec![]), "{key}: kubelet 1.36 drops it");
        let ours = oracle::ours(&case);
        assert!(oracle::compare(&ours, &theirs).is_ok(), "{key}: the Rust core drops it too: {ours:?}");
    }
}

/// Tens of thousands of generated cases (see `oracle::generate`), or the cases of a replay file.
#[test]
fn generated_cases_agree_with_the_kubelet() {
    let mut oracle = spawn();
    let started = Instant::now();
    let replay = std::env::var_os("PULLSECRET_INJECTOR_ORACLE_REPLAY");
    let (count, outcome) = match &replay {
        Some(file) => {
            let cases: Vec<Case> = std::fs::read_to_string(file)
                .expect("read the replay file")
                .lines()
                // The case lines of a failure report as they are printed (`case:    {...}`), or bare.
                .map(|l| l.trim_start().strip_prefix("case:").unwrap_or(l).trim())
                .filter(|l| l.starts_with('{'))
                .map(|l| Case::from_json(l).unwrap_or_else(|e| panic!("replay line {l}: {e}")))
                .collect();
            (cases.len(), run(&mut oracle, cases.len(), |i| cases[i].clone()))
        }
        None => {
            let seed = env_number("PULLSECRET_INJECTOR_ORACLE_SEED", 0x6b75_6265_6c65_7421);
            let count = env_number("PULLSECRET_INJECTOR_ORACLE_CASES", 20_000) as usize;
            eprintln!("kubelet oracle: {count} generated cases, seed {seed}");
            let mut rng = Rng(seed);
            (count, run(&mut oracle, count, move |_| oracle::generate(&mut rng)))
        }
    };
    eprintln!("kubelet oracle: {count} cases compared in {:.2?}", started.elapsed());
    assert_agree(&outcome, count);
    let c = &outcome.coverage;
    eprintln!(
        "kubelet oracle: {} images ({} invalid, {} with credentials, {} with several), {} keyrings the kubelet \
         cannot build, {} matchImages hits",
        c.images, c.invalid, c.with_credentials, c.with_several, c.keyring_errors, c.match_hits
    );
    // A generator that drifted into producing only invalid images, or only undecodable Secrets, would agree with
    // the kubelet and test nothing.
    if replay.is_none() && count >= 1000 {
        let percent = |n: usize, of: usize| n * 100 / of.max(1);
        assert!(percent(c.invalid, c.images) >= 5, "too few invalid images: {c:?}");
        assert!(percent(c.with_credentials, c.images) >= 12, "too few images with credentials: {c:?}");
        assert!(percent(c.with_several, c.images) >= 1, "too few images with several credentials: {c:?}");
        assert!((2..=15).contains(&percent(c.keyring_errors, count)), "keyring errors: {c:?}");
        assert!(c.match_hits > 0, "no matchImages hit: {c:?}");
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text.parse().unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}
