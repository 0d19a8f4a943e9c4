//! Properties of the parsers, the decoder, the matcher and the decision over generated (often hostile) input:
//! nothing panics, normalization is a fixed point, and the patch never drops or duplicates an entry.

use std::collections::BTreeMap;

use base64::Engine as _;
use proptest::prelude::*;
use pullsecret_injector::admission;
use pullsecret_injector::credentials::CredentialIndex;
use pullsecret_injector::decision::Policy;
use pullsecret_injector::dockerconfig::{self, SecretKind};
use pullsecret_injector::inputs::Manifests;
use pullsecret_injector::keyring::{self, Keyring};
use pullsecret_injector::reference;
use serde_json::{Value, json};

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
        let found = ring.lookup(&target);
        // explain and lookup agree on whether the key is used.
        let explained = ring.explain(&target);
        prop_assert_eq!(!found.is_empty(), explained.iter().any(|v| v.matched));
        let _ = keyring::lint_key(&k);
    }

    #[test]
    fn docker_config_decoding_never_panics_and_keys_agree(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        for kind in [SecretKind::DockerConfigJson, SecretKind::DockerCfg] {
            let full = dockerconfig::decode(kind, &bytes);
            let keys = dockerconfig::decode_keys(kind, &bytes);
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
        let decoded = dockerconfig::decode(SecretKind::DockerConfigJson, &payload).unwrap();
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
