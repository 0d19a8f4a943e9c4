//! Table tests of the rules issue 12 adds to the decision: image volumes, ServiceAccount-bound Secrets, the
//! KubeSphere annotation and when a Pod hears about an image without credential. Each case decides a whole Pod,
//! applies the patch as the API server does and checks the final list, the warnings and the denial.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::core::credentials::{CandidateSecret, Origin};
use crate::kubelet::docker_config::SecretKind;

fn secret(name: &str, keys: &[&str]) -> CandidateSecret {
    CandidateSecret {
        name: name.into(),
        kind: SecretKind::DockerConfigJson,
        keys: Ok(keys.iter().map(|k| k.to_string()).collect()),
        origin: Origin::Namespace,
        service_account: None,
        over_limit: None,
        expires_at: None,
    }
}

fn namespace(secrets: Vec<CandidateSecret>) -> NamespaceCredentials {
    let mut secrets: Vec<Arc<CandidateSecret>> = secrets.into_iter().map(Arc::new).collect();
    secrets.sort_by(|a, b| a.name.cmp(&b.name));
    NamespaceCredentials::new(Default::default(), secrets)
}

/// A Pod with one container per image (`c0`, `c1`, ...).
fn pod(images: &[&str]) -> Value {
    let containers: Vec<Value> =
        images.iter().enumerate().map(|(i, image)| json!({"name": format!("c{i}"), "image": image})).collect();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
}

/// Decides, and returns the Pod's final list (its own entries, then what the patch appends) with the decision.
fn run(pod: &Value, ns: &NamespaceCredentials, policy: &Policy) -> (Vec<String>, Decision) {
    let view = PodView::from_value(pod).unwrap();
    let decision = decide(&view, ns, policy);
    let own = view.pull_secrets.iter().flatten().map(|n| n.clone().unwrap_or_default());
    (own.chain(decision.add.iter().cloned()).collect(), decision)
}

fn deny(patterns: &[&str], audit_only: bool) -> Policy {
    Policy { deny_unmatched: patterns.iter().map(|p| p.parse().unwrap()).collect(), audit_only, ..Policy::default() }
}

// --- Item 1: image volumes ------------------------------------------------------------------------------------

/// (case, volumes, container images, candidates, policy patterns, expected final list, expected denial fragment)
type VolumeCase<'a> =
    (&'a str, Value, &'a [&'a str], Vec<CandidateSecret>, &'a [&'a str], &'a [&'a str], Option<&'a str>);

#[test]
fn image_volumes_are_images() {
    let cases: Vec<VolumeCase> = vec![
        (
            "a volume's image gets its Secret",
            json!([{"name": "models", "image": {"reference": "models.example.com/llm:v1"}}]),
            &["nginx"],
            vec![secret("models", &["models.example.com"]), secret("other", &["other.example.com"])],
            &[],
            &["models"],
            None,
        ),
        (
            "volumes are pulled first, so their Secrets come first",
            json!([{"name": "v", "image": {"reference": "b.example.com/v"}}]),
            &["a.example.com/app"],
            vec![secret("a", &["a.example.com"]), secret("b", &["b.example.com"])],
            &[],
            &["b", "a"],
            None,
        ),
        (
            "the kubelet's matching applies as for containers (port must match)",
            json!([{"name": "v", "image": {"reference": "reg.example.com/v"}}]),
            &[],
            vec![secret("p", &["reg.example.com:443"])],
            &[],
            &[],
            None,
        ),
        (
            "the Docker Hub fallback applies to a volume too",
            json!([{"name": "v", "image": {"reference": "myorg/artifact:1"}}]),
            &[],
            vec![secret("hub", &["https://index.docker.io/v1/"])],
            &[],
            &["hub"],
            None,
        ),
        (
            "--deny-unmatched covers volumes and names them",
            json!([{"name": "models", "image": {"reference": "registry.corp.example.com/m:1"}}]),
            &["nginx"],
            vec![],
            &["*.corp.example.com"],
            &[],
            Some("volume \"models\" image registry.corp.example.com/m:1"),
        ),
        (
            "--deny-unmatched is satisfied by the volume's Secret",
            json!([{"name": "models", "image": {"reference": "registry.corp.example.com/m:1"}}]),
            &[],
            vec![secret("corp", &["*.corp.example.com"])],
            &["*.corp.example.com"],
            &["corp"],
            None,
        ),
        (
            "malformed volumes are skipped, the rest is decided",
            json!([5, "x", {"name": "bad", "image": {"reference": 7}}, {"name": "ok", "image": {"reference": "b.example.com/v"}}, {"image": null}]),
            &["a.example.com/app"],
            vec![secret("a", &["a.example.com"]), secret("b", &["b.example.com"])],
            &[],
            &["b", "a"],
            None,
        ),
        (
            "a volume without reference is no image (the API server rejects it later)",
            json!([{"name": "empty", "image": {}}]),
            &[],
            vec![secret("a", &["a.example.com"])],
            &["*"],
            &[],
            None,
        ),
    ];
    for (case, volumes, images, secrets, patterns, expected, denied) in cases {
        let mut pod = pod(images);
        pod["spec"]["volumes"] = volumes;
        let (names, decision) = run(&pod, &namespace(secrets), &deny(patterns, false));
        assert_eq!(names, expected, "{case}");
        match (denied, &decision.denied) {
            (None, None) => {}
            (Some(fragment), Some(message)) => assert!(message.contains(fragment), "{case}: {message}"),
            (want, got) => panic!("{case}: denial {got:?}, wanted {want:?}"),
        }
    }
}

#[test]
fn warnings_name_the_volume() {
    let mut pod = pod(&[]);
    pod["spec"]["volumes"] = json!([
        {"name": "bad", "image": {"reference": "Docker/Docker"}},
        {"name": "audited", "image": {"reference": "registry.corp.example.com/m"}}
    ]);
    let (_, d) = run(&pod, &namespace(vec![]), &deny(&["*.corp.example.com"], true));
    assert!(
        d.warnings.iter().any(|w| w.starts_with("volume \"bad\": image Docker/Docker is invalid")),
        "{:?}",
        d.warnings
    );
    assert!(
        d.warnings.iter().any(|w| w == "policy (audit): no pull credential for volume \"audited\" image registry.corp.example.com/m"),
        "{:?}",
        d.warnings
    );
    assert_eq!(d.images[0].kind, ContainerKind::Volume);
    assert_eq!(d.images[0].container, "bad");
}

// --- Item 4: Secrets bound to a ServiceAccount ----------------------------------------------------------------

fn bound(name: &str, account: &str, keys: &[&str]) -> CandidateSecret {
    CandidateSecret { service_account: Some(account.into()), ..secret(name, keys) }
}

fn undecodable(name: &str) -> CandidateSecret {
    CandidateSecret { keys: Err("auths[\"r.io\"].auth is not valid base64".into()), ..secret(name, &[]) }
}

fn over_limit(name: &str) -> CandidateSecret {
    CandidateSecret { over_limit: Some(crate::core::credentials::Limit::SecretBytes), ..secret(name, &[]) }
}

/// A Pod running as `account` (`None`: no serviceAccountName), listing `listed`, with one container per image.
fn pod_as(account: Option<&str>, listed: Option<&[&str]>, images: &[&str]) -> Value {
    let mut pod = pod(images);
    if let Some(account) = account {
        pod["spec"]["serviceAccountName"] = json!(account);
    }
    if let Some(listed) = listed {
        pod["spec"]["imagePullSecrets"] = listed.iter().map(|n| json!({"name": n})).collect();
    }
    pod
}

/// (case, Pod, candidates, expected final list, a warning fragment expected (or `None`: no warning at all))
type AccountCase<'a> = (&'a str, Value, Vec<CandidateSecret>, &'a [&'a str], Option<&'a str>);

#[test]
fn secrets_bound_to_a_service_account_go_only_to_its_pods() {
    let builder = || bound("builder-dockercfg", "builder", &["image-registry.svc:5000"]);
    let cases: Vec<AccountCase> = vec![
        (
            "bound to builder, the Pod runs as default: left out, and said",
            pod_as(None, None, &["image-registry.svc:5000/team/app"]),
            vec![builder()],
            &[],
            Some(
                "container \"c0\": no credential for image image-registry.svc:5000/team/app: Secret \"builder-dockercfg\" \
                 matches but is bound to ServiceAccount \"builder\" (kubernetes.io/service-account.name), not \
                 \"default\"; pulled anonymously",
            ),
        ),
        (
            "the builder's Pod gets it",
            pod_as(Some("builder"), None, &["image-registry.svc:5000/team/app"]),
            vec![builder()],
            &["builder-dockercfg"],
            None,
        ),
        (
            "the deprecated serviceAccount field counts",
            {
                let mut pod = pod(&["image-registry.svc:5000/team/app"]);
                pod["spec"]["serviceAccount"] = json!("builder");
                pod
            },
            vec![builder()],
            &["builder-dockercfg"],
            None,
        ),
        (
            "listed explicitly by another account's Pod: the user's choice stays",
            pod_as(Some("deployer"), Some(&["builder-dockercfg"]), &["image-registry.svc:5000/team/app"]),
            vec![builder()],
            &["builder-dockercfg"],
            None,
        ),
        (
            "bound to default, the Pod names no account",
            pod_as(None, None, &["image-registry.svc:5000/team/app"]),
            vec![bound("default-dockercfg", "default", &["image-registry.svc:5000"])],
            &["default-dockercfg"],
            None,
        ),
        (
            "an unbound Secret for the same registry is injected, the bound one is not",
            pod_as(None, None, &["image-registry.svc:5000/team/app"]),
            vec![builder(), secret("shared", &["image-registry.svc:5000"])],
            &["shared"],
            None,
        ),
        (
            "left out of the Pod's keyring: it does not turn the Docker Hub fallback off (R32)",
            pod_as(None, None, &["myorg/app"]),
            vec![bound("org", "builder", &["docker.io/myorg"]), secret("hub", &["https://index.docker.io/v1/"])],
            &["hub"],
            None,
        ),
        (
            "the account name is compared exactly",
            pod_as(Some("Builder"), None, &["image-registry.svc:5000/team/app"]),
            vec![builder()],
            &[],
            Some("ServiceAccount \"builder\" (kubernetes.io/service-account.name), not \"Builder\""),
        ),
        (
            "a hostile account name stays one safe line",
            pod_as(Some("de\u{202e}fault\n"), None, &["image-registry.svc:5000/team/app"]),
            vec![bound("builder-dockercfg", "bu\u{1b}[2Jilder", &["image-registry.svc:5000"])],
            &[],
            Some("bound to ServiceAccount \"bu\\\\u{1b}[2Jilder\""),
        ),
    ];
    for (case, pod, secrets, expected, warning) in cases {
        let (names, d) = run(&pod, &namespace(secrets), &Policy::default());
        assert_eq!(names, expected, "{case}");
        match warning {
            None => assert!(d.warnings.is_empty(), "{case}: {:?}", d.warnings),
            Some(fragment) => assert!(d.warnings.iter().any(|w| w.contains(fragment)), "{case}: {:?}", d.warnings),
        }
        for w in &d.warnings {
            assert!(crate::safe_text::is_safe(w), "{case}: {w:?}");
        }
    }
}

#[test]
fn a_bound_secret_of_another_account_does_not_satisfy_the_policy() {
    let ns = namespace(vec![bound("corp-builder", "builder", &["*.corp.example.com"])]);
    let policy = deny(&["*.corp.example.com"], false);
    let (_, d) = run(&pod_as(None, None, &["registry.corp.example.com/app"]), &ns, &policy);
    assert!(d.denied.is_some());
    let (names, d) = run(&pod_as(Some("builder"), None, &["registry.corp.example.com/app"]), &ns, &policy);
    assert_eq!((names, d.denied), (vec!["corp-builder".to_string()], None));
}

#[test]
fn explain_names_what_the_service_account_leaves_out() {
    let ns = namespace(vec![
        bound("a-builder", "builder", &["r.example.com"]),
        bound("b-default", "default", &["r.example.com"]),
        secret("c-plain", &["r.example.com"]),
    ]);
    let view = |account: Option<&str>, listed: Option<&[&str]>| {
        PodView::from_value(&pod_as(account, listed, &["r.example.com/x"])).unwrap()
    };
    assert_eq!(excluded_by_service_account(&view(None, None), &ns), [("a-builder", "builder")]);
    assert_eq!(excluded_by_service_account(&view(Some("builder"), None), &ns), [("b-default", "default")]);
    assert!(excluded_by_service_account(&view(None, Some(&["a-builder"])), &ns).is_empty(), "listed: not left out");
    let mut opted = pod_as(None, None, &["r.example.com/x"]);
    opted["metadata"]["labels"] = json!({pod::INJECT_LABEL: pod::INJECT_DISABLED});
    assert!(excluded_by_service_account(&PodView::from_value(&opted).unwrap(), &ns).is_empty(), "nothing injected");
}

// --- Item 6: kubesphere.io/imagepullsecrets ---------------------------------------------------------------------

fn with_annotation(mut pod: Value, annotation: &str) -> Value {
    pod["metadata"]["annotations"] = json!({pod::KUBESPHERE_ANNOTATION: annotation});
    pod
}

/// (case, annotation, Pod's own list, images, expected final list, warning fragments expected)
type KubeSphereCase<'a> = (&'a str, &'a str, Option<&'a [&'a str]>, &'a [&'a str], &'a [&'a str], &'a [&'a str]);

#[test]
fn kubesphere_annotation_adds_the_chosen_secrets_in_its_order() {
    let ns = || {
        namespace(vec![
            secret("harbor", &["harbor.example.com"]),
            secret("quay", &["quay.io"]),
            secret("org", &["docker.io/myorg"]),
            secret("hub", &["https://index.docker.io/v1/"]),
            bound("builder-pull", "builder", &["builder.example.com"]),
            undecodable("broken"),
            over_limit("huge"),
        ])
    };
    let cases: &[KubeSphereCase] = &[
        ("nothing chosen", "{}", None, &["harbor.example.com/a"], &["harbor"], &[]),
        (
            "chosen even when no image would use it, in the annotation's order, before the matched ones",
            r#"{"web":"quay","sidecar":"hub"}"#,
            None,
            &["harbor.example.com/a"],
            &["quay", "hub", "harbor"],
            &[],
        ),
        (
            "already listed, or named twice: once",
            r#"{"a":"harbor","b":"quay","c":"quay"}"#,
            Some(&["harbor"]),
            &["harbor.example.com/a"],
            &["harbor", "quay"],
            &[],
        ),
        (
            "a chosen Secret takes part in the lookups: its direct match turns the Docker Hub fallback off (R32)",
            r#"{"app":"org"}"#,
            None,
            &["myorg/app"],
            &["org"],
            &[],
        ),
        (
            "the user's choice wins over a ServiceAccount binding",
            r#"{"app":"builder-pull"}"#,
            None,
            &[],
            &["builder-pull"],
            &[],
        ),
        (
            "missing, undecodable, over a bound, or not a name: warned, not added",
            r#"{"a":"missing","b":"broken","c":"huge","d":5,"e":"","f":"quay"}"#,
            None,
            &[],
            &["quay"],
            &[
                "Secret \"missing\" named by kubesphere.io/imagepullsecrets for container \"a\" not added: no pull Secret of that name in this namespace",
                "Secret \"broken\" named by kubesphere.io/imagepullsecrets for container \"b\" not added: the kubelet cannot decode it",
                "Secret \"huge\" named by kubesphere.io/imagepullsecrets for container \"c\" not added: it is over an index bound (--max-secret-bytes)",
                "annotation kubesphere.io/imagepullsecrets: the value for container \"d\" is not a Secret name; ignored",
            ],
        ),
        (
            "another namespace's Secret cannot be named",
            r#"{"a":"platform/harbor","b":"../harbor","c":"harbor.platform"}"#,
            None,
            &[],
            &[],
            &["Secret \"platform/harbor\"", "Secret \"../harbor\"", "Secret \"harbor.platform\""],
        ),
        (
            "malformed JSON is a warning; the Pod is decided as without it",
            r#"{"a":"quay""#,
            None,
            &["harbor.example.com/a"],
            &["harbor"],
            &["annotation kubesphere.io/imagepullsecrets ignored: invalid JSON at line 1 column 11"],
        ),
        (
            "an array is malformed too",
            r#"["quay"]"#,
            None,
            &[],
            &[],
            &["annotation kubesphere.io/imagepullsecrets ignored: not a JSON object"],
        ),
    ];
    for (case, annotation, listed, images, expected, warnings) in cases {
        let pod = with_annotation(pod_as(None, *listed, images), annotation);
        let (names, d) = run(&pod, &ns(), &Policy::default());
        assert_eq!(names, *expected, "{case}");
        for fragment in *warnings {
            assert!(d.warnings.iter().any(|w| w.contains(fragment)), "{case}: {fragment}: {:?}", d.warnings);
        }
        assert_eq!(d.warnings.len(), warnings.len(), "{case}: {:?}", d.warnings);
        // Reinvocation sees the patched Pod: nothing more to add.
        let mut patched = pod.clone();
        patched["spec"]["imagePullSecrets"] = names.iter().map(|n| json!({"name": n})).collect();
        let again = decide(&PodView::from_value(&patched).unwrap(), &ns(), &Policy::default());
        assert!(again.add.is_empty(), "{case}: {:?}", again.add);
    }
}

#[test]
fn kubesphere_annotation_is_ignored_for_an_opted_out_pod() {
    let ns = namespace(vec![secret("quay", &["quay.io"])]);
    let mut pod = with_annotation(pod(&[]), r#"{"a":"quay","b":"missing"}"#);
    pod["metadata"]["labels"] = json!({pod::INJECT_LABEL: pod::INJECT_DISABLED});
    let (names, d) = run(&pod, &ns, &Policy::default());
    assert!(names.is_empty() && d.warnings.is_empty(), "{names:?} {:?}", d.warnings);
}

/// A hostile annotation: 20,000 entries (about what the API server's 256 KiB allows), names with control and bidi
/// characters, a planted credential-looking value: bounded warnings, safe lines, decided quickly.
#[test]
fn a_hostile_kubesphere_annotation_costs_little_and_says_little() {
    const CANARY: &str = "Canary-5b2f";
    let mut entries: Vec<String> = (0..20_000).map(|i| format!("\"c{i}\":\"missing-{i}\"")).collect();
    entries.push(format!("\"x\\u001b[2J\":\"quay\\u202e\\n{CANARY}\""));
    entries.push("\"y\":\"quay\"".into());
    let annotation = format!("{{{}}}", entries.join(","));
    let ns = namespace(vec![secret("quay", &["quay.io"])]);
    let pod = with_annotation(pod(&["quay.io/a"]), &annotation);
    let started = std::time::Instant::now();
    let (names, d) = run(&pod, &ns, &Policy::default());
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(names, ["quay"]);
    assert_eq!(d.warnings.len(), MAX_WARNINGS + 1);
    for w in &d.warnings {
        assert!(crate::safe_text::is_safe(w) && w.chars().count() <= MAX_WARNING_CHARS, "{w:?}");
    }
}

// --- Item 3: an image without credential is a warning only where someone can act --------------------------------

/// (case, keys in the namespace, image, `--warn-unmatched` patterns, expected warning after "no credential for
/// image IMAGE: " (or `None`: no warning))
type UnmatchedCase<'a> = (&'a str, &'a [&'a str], &'a str, &'a [&'a str], Option<&'a str>);

#[test]
fn an_image_without_credential_is_warned_about_only_when_someone_can_act() {
    let cases: &[UnmatchedCase] = &[
        (
            "a public image, no key names its registry",
            &["harbor.example.com"],
            "quay.io/prometheus/node-exporter:v1",
            &[],
            None,
        ),
        ("no key at all", &[], "registry.k8s.io/pause:3.10", &[], None),
        (
            "port: the key has one, the image none",
            &["registry.example.com:443"],
            "registry.example.com/app",
            &[],
            Some(
                "key \"registry.example.com:443\" of Secret \"s0\" names its registry, but the key has port 443, the image no port",
            ),
        ),
        (
            "port: the image has one, the key none",
            &["registry.example.com"],
            "registry.example.com:5000/app",
            &[],
            Some("the key has no port, the image port 5000"),
        ),
        (
            "path prefix",
            &["example.com/team"],
            "example.com/other/app",
            &[],
            Some(
                "key \"example.com/team\" of Secret \"s0\" names its registry, but the key covers only paths starting with /team",
            ),
        ),
        (
            "wildcard width: one label too many",
            &["*.example.com"],
            "a.b.example.com/app",
            &[],
            Some("the key matches hosts of exactly 3 labels, the image's has 4 (a * is one label)"),
        ),
        (
            "wildcard width: the bare domain",
            &["*.corp.example.com"],
            "corp.example.com/app",
            &[],
            Some("the key matches hosts of exactly 4 labels, the image's has 3"),
        ),
        (
            "a wildcard port",
            &["*.example.com:5000"],
            "a.example.com/app",
            &[],
            Some("the key has port 5000, the image no port"),
        ),
        ("a wildcard that names no domain", &["registry.*"], "registry.example.com/app", &[], None),
        ("a wildcard of another domain", &["*.corp.example.com"], "a.b.shop.example.com/app", &[], None),
        (
            "a wildcard inside the host, one label too many",
            &["reg.*.example.com"],
            "x.reg.y.example.com/app",
            &[],
            Some("the key matches hosts of exactly 4 labels, the image's has 5"),
        ),
        (
            "the image is a shorter domain of the wildcard's",
            &["*.a.example.com"],
            "example.com/app",
            &[],
            Some("the key matches hosts of exactly 4 labels, the image's has 2"),
        ),
        ("another host of the same domain", &["other.example.com"], "registry.example.com/app", &[], None),
        (
            "case differs: explain shows it, no warning",
            &["Registry.example.com"],
            "registry.example.com/app",
            &[],
            None,
        ),
        ("an official Docker Hub image is public", &["docker.io/myorg"], "nginx", &[], None),
        (
            "another Docker Hub organisation",
            &["docker.io/myorg"],
            "docker.io/other/app",
            &[],
            Some("the key covers only paths starting with /myorg"),
        ),
        (
            "a matching key elsewhere wins",
            &["registry.example.com:443", "registry.example.com"],
            "registry.example.com/app",
            &[],
            None,
        ),
        (
            "--warn-unmatched",
            &[],
            "quay.io/org/private:1",
            &["quay.io", "ghcr.io"],
            Some("no pull Secret in this namespace matches it (--warn-unmatched quay.io)"),
        ),
        ("--warn-unmatched elsewhere", &[], "quay.io/org/private:1", &["ghcr.io"], None),
        (
            "--warn-unmatched covers Docker Hub too",
            &[],
            "nginx",
            &["https://index.docker.io/v1/"],
            Some("(--warn-unmatched https://index.docker.io/v1/)"),
        ),
    ];
    for (case, keys, image, warn, expected) in cases {
        let secrets: Vec<CandidateSecret> =
            keys.iter().enumerate().map(|(i, k)| secret(&format!("s{i}"), &[k])).collect();
        let policy = Policy { warn_unmatched: warn.iter().map(|p| p.parse().unwrap()).collect(), ..Policy::default() };
        let (_, d) = run(&pod(&[image]), &namespace(secrets), &policy);
        match expected {
            None => assert!(d.warnings.is_empty(), "{case}: {:?}", d.warnings),
            Some(fragment) => {
                assert_eq!(d.warnings.len(), 1, "{case}: {:?}", d.warnings);
                let w = &d.warnings[0];
                assert!(w.starts_with(&format!("container \"c0\": no credential for image {image}: ")), "{case}: {w}");
                assert!(w.contains(fragment) && w.ends_with("; pulled anonymously"), "{case}: {w}");
            }
        }
    }
}

#[test]
fn a_listed_key_counts_and_the_audit_warning_is_not_repeated() {
    let ns = namespace(vec![secret("mine", &["registry.example.com:443"])]);
    let (_, d) = run(&pod_as(None, Some(&["mine"]), &["registry.example.com/app"]), &ns, &Policy::default());
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(d.warnings[0].contains("of Secret \"mine\" names its registry"), "{:?}", d.warnings);

    let ns = namespace(vec![secret("s", &["registry.corp.example.com:443"])]);
    let (_, d) = run(&pod(&["registry.corp.example.com/app"]), &ns, &deny(&["*.corp.example.com"], true));
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(d.warnings[0].starts_with("policy (audit): "), "{:?}", d.warnings);
}

/// Keys are tenants' text: whatever the spelling of a `user:password@` in a key that names the image's registry, a
/// warning never carries the password, nor a control or bidi character of the key or the Secret's name.
#[test]
fn near_miss_warnings_never_carry_userinfo_or_controls() {
    const CANARY: &str = "Canary-31ad";
    let spellings = [
        format!("https://user:{CANARY}@registry.example.com:443"),
        format!("user:{CANARY}@registry.example.com:443"),
        format!("http://user:{CANARY}@registry.example.com/team"),
        format!("registry.example.com/team/{CANARY}\u{1b}[2J\u{202e}"),
        format!("*.example.com/{CANARY}@x"),
        format!("HTTPS://user:{CANARY}@registry.example.com:443"),
    ];
    for key in &spellings {
        let ns = namespace(vec![secret("sec\u{202e}ret\n", &[key])]);
        for image in ["registry.example.com/app", "a.b.example.com/app"] {
            let (_, d) = run(&pod(&[image]), &ns, &Policy::default());
            for w in &d.warnings {
                assert!(!w.contains(&format!(":{CANARY}")), "{key:?}: {w}");
                assert!(crate::safe_text::is_safe(w), "{key:?}: {w:?}");
            }
        }
    }
}

/// `explain` gives the reasons `decide` warns with, from the same rule.
#[test]
fn explain_gets_the_warnings_reason() {
    let ns = namespace(vec![
        secret("port", &["registry.example.com:443"]),
        bound("builder-pull", "builder", &["builder.example.com"]),
        secret("ok", &["ok.example.com"]),
    ]);
    let cases = [
        (
            "registry.example.com/app",
            Some("key \"registry.example.com:443\" of Secret \"port\" names its registry, but"),
        ),
        ("builder.example.com/app", Some("Secret \"builder-pull\" matches but is bound to ServiceAccount \"builder\"")),
        ("ok.example.com/app", None),
        ("quay.io/public/app", None),
    ];
    for (image, expected) in cases {
        let pod = PodView::from_value(&pod_as(None, None, &[image])).unwrap();
        let target = reference::parse_normalized_named(image).unwrap().name();
        let reason = unmatched_reason(&pod, &ns, &Policy::default(), &target);
        let warning = decide(&pod, &ns, &Policy::default()).warnings.into_iter().next();
        match expected {
            None => assert_eq!((reason, warning), (None, None), "{image}"),
            Some(fragment) => {
                let reason = reason.unwrap();
                assert!(reason.starts_with(fragment), "{image}: {reason}");
                assert!(warning.unwrap().contains(&reason), "{image}: the warning says the same");
            }
        }
    }
}

// --- Item 2: the nodes' credential providers (--credential-provider-config) ------------------------------------

const PROVIDERS: &str = r#"
apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: ecr-credential-provider
    matchImages: ["*.dkr.ecr.*.amazonaws.com"]
    defaultCacheDuration: 12h
    apiVersion: credentialprovider.kubelet.k8s.io/v1
  - name: corp-provider
    matchImages: ["*.corp.example.com", "registry.example.com:5000/team"]
    defaultCacheDuration: 0s
    apiVersion: credentialprovider.kubelet.k8s.io/v1
"#;

fn with_providers(mut policy: Policy) -> Policy {
    policy.node_providers = crate::kubelet::credential_provider::NodeProviders::parse(PROVIDERS).unwrap();
    policy
}

/// (case, image, candidates, deny patterns, final list, Secrets tried, providers tried, warned, denied)
type NodeCase<'a> =
    (&'a str, &'a str, Vec<CandidateSecret>, &'a [&'a str], &'a [&'a str], &'a [&'a str], &'a [&'a str], bool, bool);

#[test]
fn an_image_a_node_provider_covers_has_a_credential() {
    let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app";
    let cases: Vec<NodeCase> = vec![
        (
            "covered, no Secret: nothing to add, no denial",
            ecr,
            vec![],
            &["*.dkr.ecr.*.amazonaws.com"],
            &[],
            &[],
            &["ecr-credential-provider"],
            false,
            false,
        ),
        (
            "covered and a Secret matches: the Secret is injected, tried first",
            ecr,
            vec![secret("ecr", &["*.dkr.ecr.us-east-1.amazonaws.com"])],
            &[],
            &["ecr"],
            &["ecr"],
            &["ecr-credential-provider"],
            false,
            false,
        ),
        (
            "covered: a near-miss key is no reason to warn",
            "registry.corp.example.com/app",
            vec![secret("port", &["registry.corp.example.com:443"])],
            &[],
            &[],
            &[],
            &["corp-provider"],
            false,
            false,
        ),
        (
            "matchImages matched like a key: path prefix",
            "registry.example.com:5000/team2/app",
            vec![],
            &["registry.example.com:5000"],
            &[],
            &[],
            &["corp-provider"],
            false,
            false,
        ),
        (
            "not covered (ports verbatim): denied as before",
            "registry.example.com/team/app",
            vec![],
            &["registry.example.com"],
            &[],
            &[],
            &[],
            false,
            true,
        ),
        (
            "not covered (a glob is one label): near miss warned as before",
            "a.b.corp.example.com/app",
            vec![secret("port", &["a.b.corp.example.com:443"])],
            &[],
            &[],
            &[],
            &[],
            true,
            false,
        ),
    ];
    for (case, image, candidates, patterns, final_list, secrets, providers, warned, denied) in cases {
        let ns = namespace(candidates);
        let policy = with_providers(deny(patterns, false));
        let (names, d) = run(&pod(&[image]), &ns, &policy);
        assert_eq!(names, final_list, "{case}");
        assert_eq!(d.images[0].credentials, secrets, "{case}");
        assert_eq!(d.images[0].node_providers, providers, "{case}");
        assert_eq!(!d.warnings.is_empty(), warned, "{case}: {:?}", d.warnings);
        assert_eq!(d.denied.is_some(), denied, "{case}: {:?}", d.denied);
        let view = PodView::from_value(&pod(&[image])).unwrap();
        let target = reference::parse_normalized_named(image).unwrap().name();
        assert_eq!(unmatched_reason(&view, &ns, &policy, &target).is_some(), warned, "{case}: explain agrees");
        // Without the file, the same Pod is judged as before: a covered image is unmatched.
        let (_, without) = run(&pod(&[image]), &ns, &deny(patterns, false));
        assert!(without.images[0].node_providers.is_empty(), "{case}");
    }
}

#[test]
fn a_node_provider_covers_images_of_an_opted_out_namespace_too() {
    let mut ns = namespace(vec![]);
    Arc::make_mut(&mut ns.labels).insert(pod::INJECT_LABEL.into(), pod::INJECT_DISABLED.into());
    let policy = with_providers(deny(&["*.corp.example.com"], false));
    let (_, d) = run(&pod(&["r.corp.example.com/app"]), &ns, &policy);
    assert_eq!((d.denied, d.warnings.len()), (None, 0));
    assert_eq!(d.images[0].node_providers, ["corp-provider"]);
}

// --- Item 5: expiry ----------------------------------------------------------------------------------------------

/// 2026-12-04T16:00:00Z: the fixed "now" of these tests.
const NOW: UnixTime = 1_796_400_000;
const HOUR: UnixTime = 3600;

fn expiring(name: &str, keys: &[&str], at: UnixTime) -> CandidateSecret {
    CandidateSecret { expires_at: Some(at), ..secret(name, keys) }
}

fn at_now(window_hours: u64) -> Policy {
    Policy {
        clock: crate::core::expiry::Clock::fixed(NOW),
        expiry_warning: std::time::Duration::from_secs(window_hours * 3600),
        ..Policy::default()
    }
}

/// (case, images, listed, candidates, window in hours, final list, warning fragments (empty: no warning))
type ExpiryCase<'a> = (&'a str, &'a [&'a str], &'a [&'a str], Vec<CandidateSecret>, u64, &'a [&'a str], &'a [&'a str]);

#[test]
fn an_expired_credential_is_never_injected_and_one_expiring_soon_is_warned_about() {
    const EXPIRED_WARNING: &str = "Secret \"old\" not injected: its credential expired at 2026-12-04T15:00:00Z";
    let cases: Vec<ExpiryCase> = vec![
        (
            "expired: not injected, warned",
            &["r.io/app"],
            &[],
            vec![expiring("old", &["r.io"], NOW - HOUR)],
            24,
            &[],
            &[EXPIRED_WARNING],
        ),
        (
            "expiring exactly now counts as expired",
            &["r.io/app"],
            &[],
            vec![expiring("old", &["r.io"], NOW)],
            24,
            &[],
            &["\"old\" not injected: its credential expired at 2026-12-04T16:00:00Z"],
        ),
        (
            "expired, another matches: the other is injected, the expired one named",
            &["r.io/app"],
            &[],
            vec![expiring("old", &["r.io"], NOW - HOUR), secret("new", &["r.io"])],
            24,
            &["new"],
            &[EXPIRED_WARNING],
        ),
        (
            "expired but matching no image: nothing to say",
            &["q.io/app"],
            &[],
            vec![expiring("old", &["r.io"], NOW - HOUR)],
            24,
            &[],
            &[],
        ),
        (
            "expires within the window: injected with a warning",
            &["r.io/app"],
            &[],
            vec![expiring("soon", &["r.io"], NOW + HOUR)],
            24,
            &["soon"],
            &[
                "Secret \"soon\" injected, but its credential expires at 2026-12-04T17:00:00Z (within --expiry-warning 1day)",
            ],
        ),
        (
            "expires after the window: no warning",
            &["r.io/app"],
            &[],
            vec![expiring("later", &["r.io"], NOW + 48 * HOUR)],
            24,
            &["later"],
            &[],
        ),
        (
            "window 0s: no warning before expiry",
            &["r.io/app"],
            &[],
            vec![expiring("soon", &["r.io"], NOW + HOUR)],
            0,
            &["soon"],
            &[],
        ),
        (
            "an expired Secret the Pod lists stays (the Pod's list is its own), with a warning",
            &["r.io/app"],
            &["old"],
            vec![expiring("old", &["r.io"], NOW - HOUR)],
            24,
            &["old"],
            &["imagePullSecret \"old\" expired at 2026-12-04T15:00:00Z: pulls with it will fail"],
        ),
        (
            "an expired direct match no longer suppresses the Docker Hub fallback (R32)",
            &["myorg/app"],
            &[],
            vec![expiring("org", &["docker.io/myorg"], NOW - HOUR), secret("hub", &["https://index.docker.io/v1/"])],
            24,
            &["hub"],
            &["Secret \"org\" not injected"],
        ),
        (
            "an expired fallback key is named only when the fallback would apply",
            &["nginx"],
            &[],
            vec![expiring("hub", &["https://index.docker.io/v1/"], NOW - HOUR)],
            24,
            &[],
            &["Secret \"hub\" not injected"],
        ),
        (
            "an expired fallback key behind a direct match: nothing to say",
            &["nginx"],
            &[],
            vec![expiring("hub", &["https://index.docker.io/v1/"], NOW - HOUR), secret("lib", &["docker.io/library"])],
            24,
            &["lib"],
            &[],
        ),
    ];
    for (case, images, listed, candidates, window, final_list, fragments) in cases {
        let ns = namespace(candidates);
        let mut pod = pod(images);
        if !listed.is_empty() {
            pod["spec"]["imagePullSecrets"] = listed.iter().map(|n| json!({"name": n})).collect();
        }
        let (names, d) = run(&pod, &ns, &at_now(window));
        assert_eq!(names, final_list, "{case}");
        assert_eq!(d.warnings.len(), fragments.len(), "{case}: {:?}", d.warnings);
        for (warning, fragment) in d.warnings.iter().zip(fragments) {
            assert!(warning.contains(fragment), "{case}: {warning}");
        }
    }
}

#[test]
fn an_expired_credential_does_not_satisfy_the_policy_and_is_not_chosen() {
    let ns = namespace(vec![expiring("old", &["r.corp.example.com"], NOW - 1)]);
    let policy = Policy { deny_unmatched: vec!["*.corp.example.com".parse().unwrap()], ..at_now(24) };
    let (names, d) = run(&pod(&["r.corp.example.com/app"]), &ns, &policy);
    assert!(names.is_empty() && d.denied.is_some(), "{d:?}");
    // The KubeSphere annotation cannot bring it back.
    let chosen = with_annotation(pod(&["r.corp.example.com/app"]), r#"{"c0":"old"}"#);
    let (names, d) = run(&chosen, &ns, &at_now(24));
    assert!(names.is_empty(), "{names:?}");
    assert!(d.warnings.iter().any(|w| w.contains("not added: it expired at")), "{:?}", d.warnings);
    // explain gives the same reason.
    let view = PodView::from_value(&pod(&["r.corp.example.com/app"])).unwrap();
    let reason = unmatched_reason(&view, &ns, &at_now(24), "r.corp.example.com/app").unwrap();
    assert!(reason.starts_with("Secret \"old\" not injected: its credential expired at"), "{reason}");
    // One second earlier, the same Secret was injected.
    let (names, _) = run(
        &pod(&["r.corp.example.com/app"]),
        &ns,
        &Policy { clock: crate::core::expiry::Clock::fixed(NOW - 2), ..at_now(24) },
    );
    assert_eq!(names, ["old"]);
}

/// From a Secret as the API server holds it to the warning: the expiry is read while indexing (its JWT's `exp`),
/// only the time is kept, and no output carries the token or any part of it.
#[test]
fn expiry_comes_from_the_secret_and_no_output_carries_its_token() {
    use base64::Engine as _;
    let b64 = |t: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t);
    let token = format!(
        "{}.{}.{}",
        b64(r#"{"alg":"none"}"#),
        b64(&format!(r#"{{"exp":{},"canary":"Canary-7e1f"}}"#, NOW - HOUR)),
        b64("signature-Canary-7e1f")
    );
    let payload = format!(r#"{{"auths":{{"r.io":{{"username":"u","password":"{token}"}}}}}}"#);
    let k8s = k8s_openapi::api::core::v1::Secret {
        metadata: kube::api::ObjectMeta {
            namespace: Some("ns".into()),
            name: Some("jwt".into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some([(".dockerconfigjson".to_string(), k8s_openapi::ByteString(payload.into_bytes()))].into()),
        ..Default::default()
    };
    let reduced = crate::core::credentials::Reduced::of(&k8s, &Default::default()).unwrap();
    let crate::core::credentials::Reduced::Candidate { candidate, .. } = reduced else { panic!("{reduced:?}") };
    assert_eq!(candidate.expires_at, Some(NOW - HOUR));
    let debug = format!("{candidate:?}");
    let ns = namespace(vec![candidate]);
    let (names, d) = run(&pod(&["r.io/app"]), &ns, &at_now(24));
    assert!(names.is_empty());
    let (_, listed) = run(
        &json!({"kind": "Pod", "spec": {"containers": [{"name": "c", "image": "r.io/app"}],
        "imagePullSecrets": [{"name": "jwt"}]}}),
        &ns,
        &at_now(24),
    );
    let outputs = [d.warnings.join("\n"), listed.warnings.join("\n"), debug, format!("{d:?}")];
    for text in outputs {
        assert!(!text.contains("Canary") && !text.contains(&token), "{text}");
        for part in token.split('.') {
            assert!(!text.contains(part), "a part of the token: {text}");
        }
    }
    assert!(
        d.warnings[0].contains("\"jwt\" not injected: its credential expired at 2026-12-04T15:00:00Z"),
        "{:?}",
        d.warnings
    );
}
