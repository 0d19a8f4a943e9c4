//! Properties of the parsers, the decoder, the matcher and the decision over generated (often hostile) input:
//! nothing panics, normalization is a fixed point, and the patch never drops or duplicates an entry.

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use proptest::prelude::*;
use pullsecret_injector::commands::explain::{self, ExplainArgs, Subject};
use pullsecret_injector::commands::live::Credentials;
use pullsecret_injector::commands::mutate;
use pullsecret_injector::core::admission;
use pullsecret_injector::core::credentials::CredentialIndex;
use pullsecret_injector::core::decision::Policy;
use pullsecret_injector::kubelet::docker_config::{self, SecretKind};
use pullsecret_injector::kubelet::keyring::{self, Keyring};
use pullsecret_injector::kubelet::reference;
use pullsecret_injector::sources::manifests::Manifests;
use pullsecret_injector::verify;
use serde_json::{Value, json};

use common::unsafe_char;

/// Image-like strings: mostly plausible references, with the characters that matter to the grammar.
fn image() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._:/@\\-\\[\\]]{0,40}",
        "((localhost|[a-z]{1,8}(\\.[a-z]{1,5}){0,2}|\\[fc00::1\\])(:[0-9]{1,5})?/)?[a-z0-9]{1,8}(/[a-z0-9._-]{1,8}){0,2}(:[a-zA-Z0-9._-]{1,10})?",
        any::<String>(),
    ]
}

/// Key-like strings: schemes, hosts, globs, ports, paths, and Go URL corner characters.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "(https?://)?(\\*|[a-z*]{1,6})(\\.(\\*|[a-z]{1,6})){0,3}(:[0-9*]{0,5})?(/v[12])?(/[a-z%?#]{0,6}){0,2}/?",
        "[a-zA-Z0-9.:/*?#%@\\[\\]_-]{0,30}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn reference_parsing_is_total_and_normalization_is_a_fixed_point(s in image()) {
        if let Ok(r) = reference::parse_normalized_named(&s) {
            let name = r.name();
            // The lookup name is itself a valid reference that normalizes to itself.
            let again = reference::parse_normalized_named(&name).expect("a normalized name parses");
            prop_assert_eq!(again.name(), name);
            prop_assert!(again.tag.is_none() && again.digest.is_none());
        }
    }

    #[test]
    fn key_normalization_and_matching_never_panic(k in key(), s in image()) {
        let normalized = keyring::normalize_key(&k);
        let mut ring = Keyring::new();
        prop_assert_eq!(ring.add(&k, 1u8), normalized.is_some());
        let target = reference::parse_normalized_named(&s).map(|r| r.name()).unwrap_or(s);
        let found = ring.lookup_str(&target);
        // explain and lookup agree on whether the key is used.
        let explained = ring.explain(&target, |_| true);
        prop_assert_eq!(!found.is_empty(), explained.iter().any(|v| v.matched));
        let _ = keyring::lint_key(&k);
    }

    #[test]
    fn docker_config_decoding_never_panics_and_keys_agree(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        for kind in [SecretKind::DockerConfigJson, SecretKind::DockerCfg] {
            let full = docker_config::decode(kind, &bytes);
            let keys = docker_config::decode_keys(kind, &bytes);
            match (full, keys) {
                (Ok(entries), Ok(keys)) => {
                    let from_entries: Vec<String> = entries.into_iter().map(|e| e.key).collect();
                    prop_assert_eq!(from_entries, keys);
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "decode and decode_keys disagree: {:?} vs {:?}", a.is_ok(), b.is_ok()),
            }
        }
    }

    #[test]
    fn structured_docker_configs_decode_with_their_keys(
        entries in prop::collection::btree_map("[a-z0-9.:*/-]{1,20}", ("[a-z]{0,8}", "[ -~]{0,12}"), 0..6)
    ) {
        let auths: serde_json::Map<String, Value> = entries.iter().map(|(k, (u, p))| {
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            (k.clone(), json!({"auth": auth}))
        }).collect();
        let payload = serde_json::to_vec(&json!({"auths": auths})).unwrap();
        let decoded = docker_config::decode(SecretKind::DockerConfigJson, &payload).unwrap();
        let expected: BTreeMap<String, (String, String)> = entries.clone();
        let got: BTreeMap<String, (String, String)> =
            decoded.into_iter().map(|e| (e.key, (e.username, e.password))).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn the_patch_never_drops_or_duplicates_an_entry(
        images in prop::collection::vec(image(), 0..6),
        listed in prop::collection::vec(prop::option::of("[a-e]"), 0..5),
        present in any::<bool>(),
        keys in prop::collection::vec(key(), 0..6),
    ) {
        // Candidates a..e in namespace ns, each with one of the generated keys.
        let mut manifests = Manifests::default();
        let mut yaml = String::new();
        for (i, k) in keys.iter().enumerate() {
            let name = ["a", "b", "c", "d", "e", "f"][i];
            let payload = serde_json::to_string(&json!({"auths": {k: {"auth": "dTpw"}}})).unwrap();
            yaml.push_str(&format!(
                "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: ns}}\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: {}\n",
                serde_json::to_string(&payload).unwrap()
            ));
        }
        manifests.add_documents(std::path::Path::new("gen.yaml"), &yaml, "ns").unwrap();
        let index: CredentialIndex = manifests.index();

        let containers: Vec<Value> = images.iter().enumerate().map(|(i, im)| json!({"name": format!("c{i}"), "image": im})).collect();
        let mut pod = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": containers}});
        if present || !listed.is_empty() {
            pod["spec"]["imagePullSecrets"] = listed.iter().map(|n| match n { Some(n) => json!({"name": n}), None => json!({}) }).collect();
        }
        let before: Vec<Value> = pod["spec"]["imagePullSecrets"].as_array().cloned().unwrap_or_default();
        let body = admission::review_for_pod(&pod, "ns");
        let reviewed = admission::review(&body, &index, &Policy::default());
        prop_assert_eq!(reviewed.http_status, 200);
        let response: Value = serde_json::from_slice(&reviewed.body).unwrap();
        let mut patched = pod.clone();
        if let Some(p) = response["response"]["patch"].as_str() {
            let patch: json_patch::Patch = serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(p).unwrap()).unwrap();
            json_patch::patch(&mut patched, &patch).unwrap();
        }
        let after: Vec<Value> = patched["spec"]["imagePullSecrets"].as_array().cloned().unwrap_or_default();
        // The original entries are a prefix, untouched; added names are new, distinct and non-empty.
        prop_assert_eq!(&after[..before.len()], &before[..]);
        let added: Vec<&str> = after[before.len()..].iter().map(|e| e["name"].as_str().unwrap()).collect();
        for (i, name) in added.iter().enumerate() {
            prop_assert!(!name.is_empty());
            prop_assert!(!added[..i].contains(name));
            prop_assert!(!before.iter().any(|e| e["name"] == *name));
        }
        // Reinvocation adds nothing.
        let body = admission::review_for_pod(&patched, "ns");
        let again: Value = serde_json::from_slice(&admission::review(&body, &index, &Policy::default()).body).unwrap();
        prop_assert!(again["response"].get("patch").is_none());
    }

    #[test]
    fn arbitrary_review_bodies_get_an_answer(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let reviewed = admission::review(&body, &CredentialIndex::new(), &Policy::default());
        prop_assert!(reviewed.http_status == 200 || reviewed.http_status == 400);
    }
}

// --- Issue 11: display-safe output ------------------------------------------------------------------------------

/// The planted password: its alphabet (a fixed prefix) appears nowhere else in the generated keys.
fn planted() -> impl Strategy<Value = String> {
    "[a-z0-9]{6,16}".prop_map(|s| format!("QZQ{s}"))
}

/// Userinfo spellings: (text before the userinfo, separator written after the password).
fn spelling() -> impl Strategy<Value = (String, String)> {
    let scheme = prop_oneof![
        Just(String::new()),
        Just("//".to_owned()),
        "[hH][tT][tT][pP][sS]?://",
        "(oci|docker|ftp|x-y\\.z)://",
        Just("https://https://".to_owned()),
        Just(" https://".to_owned()),
        Just("https:%2F%2F".to_owned()),
    ];
    let at = prop_oneof![Just("@"), Just("%40"), Just("%2540"), Just("%252540"), Just("\u{ff20}"), Just("\u{fe6b}")];
    (scheme, at).prop_map(|(s, a)| (s, a.to_owned()))
}

/// Hostile text: control characters, bidi controls, invisible characters, separators, plain characters.
fn hostile_text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        "[a-z0-9./:@%-]",
        Just("\n".to_owned()),
        Just("\r".to_owned()),
        Just("\u{1b}[31m".to_owned()),
        Just("\0".to_owned()),
        Just("\u{7f}".to_owned()),
        Just("\u{85}".to_owned()),
        Just("\u{202e}".to_owned()),
        Just("\u{2066}".to_owned()),
        Just("\u{200b}".to_owned()),
        Just("\u{2028}".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("\u{e0041}".to_owned()),
        Just("\t".to_owned()),
    ];
    prop::collection::vec(c, 0..12).prop_map(|parts| parts.concat())
}

/// Every line of a human-readable output is free of unsafe characters.
fn assert_displayable(what: &str, text: &str) -> Result<(), TestCaseError> {
    for line in text.split('\n') {
        prop_assert!(!line.chars().any(unsafe_char), "{}: {:?}", what, line);
    }
    Ok(())
}

proptest! {
    // Each case builds an HTTPS client (system roots) and reads files: fewer cases than the pure properties.
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// No planted password survives any output path, and no control character reaches a human-readable one: a key
    /// with the password as userinfo in a generated spelling, in a decodable and in an undecodable Secret, through
    /// `explain`, `mutate` (stderr and the review's warnings), the AdmissionReview warnings of `serve`, `verify`'s
    /// rows (text and JSON) and lint notes, and the keys as metrics and logs show them.
    #[test]
    fn no_planted_secret_survives_any_output(
        secret in planted(),
        (scheme, at) in spelling(),
        user in "[a-z]{0,6}",
        host in "[a-z]{1,8}\\.registry\\.invalid",
        before in hostile_text(),
        after in hostile_text(),
        name in hostile_text(),
    ) {
        let key = format!("{before}{scheme}{user}:{secret}{at}{host}/{after}");
        let name = format!("s{name}");
        let good = json!({"auths": {&key: {"username": "u", "password": "p"}}}).to_string();
        let broken = json!({"auths": {&key: {"auth": "not base64!"}}}).to_string();
        let manifest = |name: &str, payload: &str| json!({"apiVersion": "v1", "kind": "Secret",
            "type": "kubernetes.io/dockerconfigjson", "metadata": {"name": name, "namespace": "ns"},
            "stringData": {".dockerconfigjson": payload}});
        let manifests = json!([manifest(&name, &good), manifest("broken", &broken)]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets.json");
        std::fs::write(&file, manifests.to_string()).unwrap();
        let mut outputs: Vec<(&str, String)> = Vec::new();

        // The key as every output shows a key (explain, verify, metrics labels, logs).
        outputs.push(("safe_text::key", pullsecret_injector::safe_text::key(&key)));

        // explain, with the broken Secret listed.
        let image = format!("{host}/app");
        let mut out = Vec::new();
        let listed = ["broken".to_owned()];
        let args = ExplainArgs {
            subject: Subject::Image(&image),
            credentials: Credentials::Files(std::slice::from_ref(&file)),
            namespace: "ns",
            listed: &listed,
            policy: &Default::default(),
        };
        explain::explain(&args, &mut out).unwrap();
        outputs.push(("explain", String::from_utf8(out).unwrap()));

        // mutate (stderr) and its review; the same review answered as serve answers it.
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "c", "image": format!("other.{host}/x")}],
                     "imagePullSecrets": [{"name": "broken"}, {"name": &name}]}});
        let pod_file = dir.path().join("pod.json");
        std::fs::write(&pod_file, pod.to_string()).unwrap();
        for output in [mutate::MutateOutput::Patch, mutate::MutateOutput::Review] {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let args = mutate::MutateArgs {
                credentials: Credentials::Files(std::slice::from_ref(&file)),
                file: &pod_file,
                output: Some(output),
                namespace: "ns",
                policy: &Policy::default(),
                fail_on_warning: false,
                pass_secrets: false,
            };
            mutate::mutate(&args, &mut out, &mut err).unwrap();
            outputs.push(("mutate stdout", String::from_utf8(out).unwrap()));
            outputs.push(("mutate stderr", String::from_utf8(err).unwrap()));
        }
        let index = Manifests::load(std::slice::from_ref(&file), "ns").unwrap().index();
        let answer = admission::review(&admission::review_for_pod(&pod, "ns"), &index, &Policy::default());
        let answer: Value = serde_json::from_slice(&answer.body).unwrap();
        let warnings: Vec<String> = answer["response"]["warnings"].as_array().into_iter().flatten()
            .map(|w| w.as_str().unwrap().to_owned()).collect();
        prop_assert!(!warnings.is_empty());
        outputs.push(("AdmissionReview warnings", warnings.join("\n")));

        // verify: lint notes, and the row of the undecodable Secret (no connection is made for it).
        let secrets = Manifests::load(std::slice::from_ref(&file), "ns").unwrap().secrets;
        let broken_only: Vec<_> = secrets.iter().filter(|s| s.metadata.name.as_deref() == Some("broken")).cloned().collect();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let rows = runtime.block_on(verify::verify(&broken_only, &verify::VerifyOptions::default())).unwrap();
        let lint = verify::lint(&secrets);
        for output in [verify::VerifyOutput::Text, verify::VerifyOutput::Json] {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            verify::render(&rows, &lint, output, &mut out, &mut err).unwrap();
            outputs.push(("verify stdout", String::from_utf8(out).unwrap()));
            outputs.push(("verify stderr", String::from_utf8(err).unwrap()));
        }

        for (what, text) in &outputs {
            prop_assert!(!text.contains(&secret), "{} shows the password of {:?}:\n{}", what, key, text);
            assert_displayable(what, text)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The display-safe functions are total, and their results safe, bounded and stable.
    #[test]
    fn display_safe_text_is_total_safe_and_idempotent(text in prop_oneof![any::<String>(), hostile_text()], max in 1usize..300) {
        use pullsecret_injector::safe_text;
        for shown in [safe_text::text(&text).into_owned(), safe_text::key(&text), safe_text::escape(&text).into_owned(),
                      safe_text::line(&text, max), safe_text::label(&text, max.max(16))] {
            prop_assert!(!shown.chars().any(unsafe_char), "{:?} -> {:?}", text, shown);
        }
        prop_assert!(safe_text::line(&text, max).chars().count() <= max);
        prop_assert!(safe_text::key(&text).chars().count() <= safe_text::MAX_KEY_CHARS);
        let once = safe_text::text(&text).into_owned();
        prop_assert_eq!(safe_text::text(&once).into_owned(), once);
        let key = safe_text::key(&text);
        prop_assert_eq!(safe_text::key(&key), key);
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// `verify`'s input handling: any key (hostile sizes included) gives one clean row, never a panic. The hosts are
    /// address literals that the default policy refuses before connecting, so nothing leaves the machine.
    #[test]
    fn verify_handles_any_key_without_panicking(
        scheme in prop_oneof![Just(""), Just("http://"), Just("https://"), Just("HTTPS://"), Just("//")],
        userinfo in prop::option::of("[a-z]{1,4}:QZQ[a-z0-9]{4,8}@"),
        host in prop_oneof![Just("127.0.0.1"), Just("[::1]"), Just("0.0.0.0"), Just("169.254.169.254"), Just("[::ffff:127.0.0.1]")],
        port in prop::option::of(prop_oneof!["[0-9]{1,6}".boxed(), (60_000usize..70_000).prop_map(|n| "5".repeat(n)).boxed()]),
        path in prop_oneof![
            hostile_text().boxed(),
            "/[a-z%?#@]{0,20}".boxed(),
            (65_000usize..66_000).prop_map(|n| format!("/{}", "a".repeat(n))).boxed(),
        ],
    ) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let key = format!("{scheme}{}{host}{port}{}", userinfo.clone().unwrap_or_default(),
            if path.starts_with('/') { path.clone() } else { format!("/{path}") });
        let payload = json!({"auths": {&key: {"username": "u", "password": "QZQpassword"}}}).to_string();
        let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({"apiVersion": "v1",
            "kind": "Secret", "type": "kubernetes.io/dockerconfigjson", "metadata": {"name": "s", "namespace": "ns"},
            "stringData": {".dockerconfigjson": payload}})).unwrap();
        let options = verify::VerifyOptions { timeout: std::time::Duration::from_secs(2), ..Default::default() };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let rows = runtime.block_on(verify::verify(std::slice::from_ref(&secret), &options)).unwrap();
        prop_assert_eq!(rows.len(), 1);
        prop_assert!(rows[0].status != verify::Status::Ok, "{:?}", rows[0]);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        verify::render(&rows, &verify::lint(std::slice::from_ref(&secret)), verify::VerifyOutput::Text, &mut out, &mut err).unwrap();
        let text = String::from_utf8(out).unwrap();
        prop_assert!(!text.contains("QZQ"), "{}", text);
        assert_displayable("verify", &text)?;
    }
}
