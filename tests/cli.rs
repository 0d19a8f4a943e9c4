//! The offline commands through the real binary: `mutate` over every real AdmissionReview fixture, Secrets made by
//! the real `kubectl create secret docker-registry`, `explain`, exit codes, and the generated CRD.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::{Value, json};

use common::binary::{self, Run};
use common::review;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/admission")
}

fn run(args: &[&str], stdin: Option<&str>) -> Run {
    binary::run(args, stdin.map(str::as_bytes))
}

fn stdout(o: &Run) -> String {
    o.stdout.clone()
}

fn stderr(o: &Run) -> String {
    o.stderr.clone()
}

/// A Secret manifest as `kubectl create secret docker-registry --dry-run=client -o yaml` writes it.
fn kubectl_secret(dir: &Path, namespace: &str, name: &str, server: &str) {
    let out = Command::new("kubectl")
        .args(["create", "secret", "docker-registry", name, "-n", namespace])
        .arg(format!("--docker-server={server}"))
        .args(["--docker-username=ci-user", "--docker-password=s3cr3t-Pa55word", "--dry-run=client", "-o", "yaml"])
        .output()
        .expect("kubectl is installed (make test-deps)");
    assert!(out.status.success(), "kubectl: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(dir.join(format!("{namespace}-{name}.yaml")), out.stdout).unwrap();
}

/// The secrets directory every fixture test uses: credentials for each fixture's registries, plus decoys.
fn secrets_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    kubectl_secret(d, "colin-coder", "hub", "https://index.docker.io/v1/");
    kubectl_secret(d, "colin-coder", "quay", "quay.io");
    kubectl_secret(d, "default", "hub-library", "docker.io/library");
    kubectl_secret(d, "default", "hub-wrong", "docker.io/nginx");
    kubectl_secret(d, "keymaker", "ecr", "791719295754.dkr.ecr.us-east-2.amazonaws.com");
    kubectl_secret(d, "keymaker", "gcr", "https://gcr.io");
    kubectl_secret(d, "keymaker", "gcr-other-project", "gcr.io/other-project");
    kubectl_secret(d, "keymaker", "ecr-other-region", "791719295754.dkr.ecr.us-west-2.amazonaws.com");
    kubectl_secret(d, "other-tenant", "gcr", "gcr.io");
    dir
}

/// Runs `mutate -o review` and applies the returned patch to the review's object, as the API server does.
fn mutate_review(review: &Value, secrets: &Path, extra: &[&str]) -> (Value, Value) {
    let mut args = vec!["mutate", "--secrets", secrets.to_str().unwrap(), "-o", "review"];
    args.extend_from_slice(extra);
    let out = run(&args, Some(&review.to_string()));
    let response: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("mutate -o review prints JSON ({e}): {}", stderr(&out)));
    // Exit 1 exactly when the policy denies the Pod (issue 11, class 6).
    let denied = response["response"]["allowed"] == false;
    assert_eq!(out.code, i32::from(denied), "mutate: {}", stderr(&out));
    let pod = review::patched_pod(review, &response);
    (response, pod)
}

fn names(pod: &Value) -> Vec<String> {
    review::pull_secret_names(pod)
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

#[test]
fn mutate_over_every_real_fixture() {
    let secrets = secrets_dir();
    // (fixture, expected imagePullSecrets after the patch)
    let cases: &[(&str, &[&str])] = &[
        // jmalloc/echo-server is a Docker Hub image: the `docker login` key matches through the index.docker.io
        // fallback; the quay.io Secret does not match.
        ("kube-rs_kube_gke-echo-pod.json", &["hub"]),
        // nginx:1.14.2 → docker.io/library/nginx: `docker.io/library` matches by path prefix; `docker.io/nginx`
        // does not (the kubelet matches against the normalized name, with `library/`).
        ("cloud-custodian_cloud-custodian_nginx-kubectl-apply.json", &["hub-library"]),
        ("normalzzz_webhook-learning_dryrun-minimal.json", &["hub-library"]),
        // Init containers from ECR and a container from GCR; the other region, the other project and the other
        // tenant's Secret are not candidates. No metadata.namespace in the object: request.namespace decides.
        ("salesforce_generic-sidecar-injector_replicaset-initcontainers.json", &["ecr", "gcr"]),
    ];
    for (file, expected) in cases {
        let review = fixture(file);
        let (response, pod) = mutate_review(&review, secrets.path(), &[]);
        assert_eq!(response["apiVersion"], "admission.k8s.io/v1", "{file}");
        assert_eq!(response["kind"], "AdmissionReview", "{file}");
        assert_eq!(response["response"]["uid"], review["request"]["uid"], "{file}: same uid");
        assert_eq!(response["response"]["allowed"], true, "{file}");
        assert_eq!(names(&pod), *expected, "{file}");
        // Everything else of the Pod is untouched.
        let mut without = pod.clone();
        without["spec"].as_object_mut().unwrap().remove("imagePullSecrets");
        assert_eq!(without, review["request"]["object"], "{file}: only imagePullSecrets changes");
    }
}

#[test]
fn mutate_appends_to_an_existing_list_without_touching_it() {
    let secrets = secrets_dir();
    let mut review = fixture("salesforce_generic-sidecar-injector_replicaset-initcontainers.json");
    review["request"]["object"]["spec"]["imagePullSecrets"] = json!([{"name": "gcr"}, {"name": "not-there"}]);
    let (_, pod) = mutate_review(&review, secrets.path(), &[]);
    assert_eq!(names(&pod), ["gcr", "not-there", "ecr"]);
    // Applying the decision again (reinvocation) adds nothing.
    let mut again = review.clone();
    again["request"]["object"] = pod.clone();
    let (response, pod2) = mutate_review(&again, secrets.path(), &[]);
    assert!(response["response"].get("patch").is_none());
    assert_eq!(pod2, pod);
}

#[test]
fn mutate_takes_a_pod_manifest_and_prints_the_patched_pod() {
    let secrets = secrets_dir();
    let pod_yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: keymaker\nspec:\n  containers:\n  - name: app\n    image: gcr.io/proj/app:1\n  - name: pub\n    image: registry.k8s.io/pause:3.9\n";
    let out = run(&["mutate", "--secrets", secrets.path().to_str().unwrap()], Some(pod_yaml));
    assert_eq!(out.code, 0, "{}", stderr(&out));
    let pod: Value = serde_yaml_ng::from_str(&stdout(&out)).unwrap();
    assert_eq!(names(&pod), ["gcr"]);
    assert!(!stderr(&out).contains("container \"pub\""), "a public image is no warning: {}", stderr(&out));

    let out = run(&["mutate", "--secrets", secrets.path().to_str().unwrap(), "-o", "patch"], Some(pod_yaml));
    let patch: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(patch, json!([{"op": "add", "path": "/spec/imagePullSecrets", "value": [{"name": "gcr"}]}]));
}

#[test]
fn mutate_applies_the_deny_policy() {
    let secrets = secrets_dir();
    let review = fixture("salesforce_generic-sidecar-injector_replicaset-initcontainers.json");
    let (response, _) = mutate_review(&review, secrets.path(), &["--deny-unmatched", "*.dkr.ecr.*.amazonaws.com"]);
    assert_eq!(response["response"]["allowed"], true, "ECR images have a credential: allowed");

    let empty = tempfile::tempdir().unwrap();
    let (response, _) = mutate_review(&review, empty.path(), &["--deny-unmatched", "*.dkr.ecr.*.amazonaws.com"]);
    assert_eq!(response["response"]["allowed"], false);
    let message = response["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("init container \"ca-populator-original\""), "{message}");
    assert_eq!(response["response"]["status"]["code"], 403);
}

/// Issue 11, class 6: a denial is exit status 1 with the reason on stderr, for every `-o` and for a Pod or an
/// AdmissionReview, so that the documented CI use (`mutate ... --deny-unmatched`) fails on a denial. Audit mode
/// and allowed Pods exit 0.
#[test]
fn mutate_exits_1_with_the_reason_when_the_policy_denies() {
    let empty = tempfile::tempdir().unwrap();
    let secrets = empty.path().to_str().unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"containers": [{"name": "app", "image": "registry.corp.example.com/team/app:1"}]}});
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": "shop",
        "operation": "CREATE", "userInfo": {"username": "ci"}, "object": pod}});
    let deny = ["--deny-unmatched", "*.corp.example.com"];
    let mut runs = 0;
    for (input, outputs) in
        [(&pod, &["yaml", "json", "patch", "review"][..]), (&review, &["review", "patch", "yaml"][..])]
    {
        for output in outputs {
            let mut args = vec!["mutate", "--secrets", secrets, "-o", output];
            args.extend(deny);
            let out = run(&args, Some(&input.to_string()));
            let err = stderr(&out);
            assert_eq!(out.code, 1, "-o {output}: {err}");
            let reason: Vec<&str> = err.lines().filter(|l| l.contains("denied by pullsecret-injector")).collect();
            assert_eq!(reason.len(), 1, "-o {output}: one line with the reason: {err}");
            assert!(
                reason[0].contains("container \"app\"") && reason[0].contains("registry.corp.example.com"),
                "{err}"
            );
            if *output == "review" {
                let response: Value = serde_json::from_str(&stdout(&out)).unwrap();
                assert_eq!(response["response"]["allowed"], false, "the review is still printed");
            } else {
                assert!(stdout(&out).is_empty(), "-o {output}: no patched Pod for a denied one: {}", stdout(&out));
            }
            runs += 1;
        }
        // Audit mode reports and exits 0; without the policy, exit 0.
        let mut args = vec!["mutate", "--secrets", secrets, "-o", "patch", "--policy-audit"];
        args.extend(deny);
        let out = run(&args, Some(&input.to_string()));
        assert_eq!(out.code, 0, "{}", stderr(&out));
        assert!(stderr(&out).contains("policy (audit)"), "{}", stderr(&out));
        let out = run(&["mutate", "--secrets", secrets], Some(&input.to_string()));
        assert_eq!(out.code, 0, "{}", stderr(&out));
    }
    assert_eq!(runs, 7);
}

#[test]
fn secrets_never_reach_any_output() {
    let secrets = secrets_dir();
    let review = fixture("kube-rs_kube_gke-echo-pod.json");
    let out =
        run(&["mutate", "--secrets", secrets.path().to_str().unwrap(), "-o", "review"], Some(&review.to_string()));
    let explain = run(&["explain", "nginx", "--secrets", secrets.path().to_str().unwrap(), "-n", "colin-coder"], None);
    let auth = base64::engine::general_purpose::STANDARD.encode("ci-user:s3cr3t-Pa55word");
    for o in [&out, &explain] {
        for text in [stdout(o), stderr(o)] {
            assert!(!text.contains("s3cr3t-Pa55word") && !text.contains(&auth), "{text}");
        }
    }
}

#[test]
fn unusable_input_exits_2_with_one_line_naming_the_file() {
    let secrets = secrets_dir();
    let s = secrets.path().to_str().unwrap();
    let malformed = fixtures().join("rtisma_admission-controller-webhook-demo_malformed-no-uid.json");
    let bad_yaml = secrets.path().join("zz-bad.yaml");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["mutate".into(), "--secrets".into(), s.into(), "-f".into(), malformed.display().to_string()], "no uid"),
        (
            vec![
                "mutate".into(),
                "--secrets".into(),
                "/nonexistent/dir".into(),
                "-f".into(),
                malformed.display().to_string(),
            ],
            "/nonexistent/dir",
        ),
        (
            vec!["mutate".into(), "--secrets".into(), s.into(), "-f".into(), "/nonexistent/pod.yaml".into()],
            "/nonexistent/pod.yaml",
        ),
        (vec!["explain".into(), "nginx".into(), "--secrets".into(), "/nonexistent".into()], "/nonexistent"),
    ];
    for (args, needle) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args, None);
        assert_eq!(out.code, 2, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // A broken manifest in the secrets directory is named with its document.
    std::fs::write(&bad_yaml, "apiVersion: v1\nkind: Secret\nmetadata: [\n").unwrap();
    let out = run(&["mutate", "--secrets", s], Some("kind: Pod\nspec: {containers: []}\n"));
    assert_eq!(out.code, 2);
    assert!(stderr(&out).contains("zz-bad.yaml: document 1: invalid YAML"), "{}", stderr(&out));
    // An object that carries no Pod passes through unchanged, with a note (issue 13); a document that is no
    // object is unusable.
    let out = run(&["mutate", "--secrets", "/dev/null"], Some("kind: ConfigMap\n"));
    assert_eq!(out.code, 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "kind: ConfigMap\n");
    assert!(stderr(&out).contains("note: stdin: ConfigMap: carries no Pod"), "{}", stderr(&out));
    let out = run(&["mutate", "--secrets", "/dev/null"], Some("- a\n- list\n"));
    assert_eq!(out.code, 2);
    assert!(stderr(&out).contains("document 1 is not a Kubernetes object"), "{}", stderr(&out));
}

#[test]
fn explain_shows_the_lookup_name_each_key_and_the_final_order() {
    let secrets = secrets_dir();
    let out = run(&["explain", "nginx:1.27", "--secrets", secrets.path().to_str().unwrap()], None);
    assert_eq!(out.code, 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Lookup:     docker.io/library/nginx"), "{text}");
    assert!(text.contains("MATCH     docker.io/library"), "{text}");
    assert!(
        text.lines().any(|l| l.contains("no match") && l.contains("docker.io/nginx") && l.contains("path")),
        "{text}"
    );
    assert!(text.contains("  1. hub-library"), "{text}");

    let out = run(&["explain", "Docker/Docker", "--secrets", secrets.path().to_str().unwrap()], None);
    assert!(stdout(&out).contains("InvalidImageName"), "{}", stdout(&out));
}

/// Issue 12 item 2: the nodes' kubelet credential providers cover what their `matchImages` match.
#[test]
fn a_credential_provider_config_covers_what_the_nodes_providers_match() {
    let secrets = secrets_dir();
    let s = secrets.path().to_str().unwrap();
    let node = tempfile::tempdir().unwrap();
    let config = node.path().join("providers.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n\
         - name: ecr-credential-provider\n  matchImages: [\"*.dkr.ecr.*.amazonaws.com\"]\n\
         \x20 defaultCacheDuration: 12h\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n",
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let ecr = "791719295754.dkr.ecr.us-east-2.amazonaws.com/app:1";
    let other = "791719295754.dkr.ecr.eu-west-1.amazonaws.com/app:1";

    // explain: the kubelet's whole order, the Pod's Secrets first, then the node's providers.
    let out = run(&["explain", ecr, "--secrets", s, "-n", "keymaker", "--credential-provider-config", c], None);
    assert_eq!(out.code, 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("  1. ecr\n  2. node credential provider ecr-credential-provider\n"), "{text}");
    assert!(text.contains("will get: ecr"), "{text}");
    let out = run(&["explain", other, "--secrets", s, "-n", "keymaker", "--credential-provider-config", c], None);
    let text = stdout(&out);
    assert!(text.contains("  1. node credential provider ecr-credential-provider\n"), "{text}");
    assert!(
        text.contains(
            "will get no Secret; it gets its credential from the node (credential provider ecr-credential-provider)"
        ),
        "{text}"
    );

    // mutate: a covered image satisfies --deny-unmatched; the Pod's Secret is still injected where it matches.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "keymaker"},
        "spec": {"containers": [{"name": "a", "image": ecr}, {"name": "b", "image": other}]}});
    let deny = ["--deny-unmatched", "*.dkr.ecr.*.amazonaws.com", "--fail-on-warning"];
    let mut args = vec!["mutate", "--secrets", s, "-o", "json"];
    args.extend(deny);
    let out = run(&args, Some(&pod.to_string()));
    assert_eq!(out.code, 1, "without the file, b is denied: {}", stderr(&out));
    args.extend(["--credential-provider-config", c]);
    let out = run(&args, Some(&pod.to_string()));
    assert_eq!(out.code, 0, "{}", stderr(&out));
    let patched: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(names(&patched), ["ecr"]);
    assert!(stderr(&out).is_empty(), "no warning: {}", stderr(&out));

    // A file the kubelet would refuse stops the command, naming the file.
    std::fs::write(&config, "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: []\n")
        .unwrap();
    for mut args in [vec!["explain", ecr], vec!["mutate"]] {
        args.extend(["--secrets", s, "--credential-provider-config", c]);
        let out = run(&args, Some(""));
        let err = stderr(&out);
        assert_eq!(out.code, 2, "{args:?}: {err}");
        assert!(err.contains("providers.yaml") && err.contains("at least 1"), "{args:?}: {err}");
    }
}

/// Issue 12 item 5 through the binary: an expired credential (its JWT password's `exp`) is not injected, one
/// expiring within --expiry-warning is, with a warning; explain says why; no output carries the token (verify's
/// outputs are checked in `verify`'s own tests, without a network).
#[test]
fn expired_credentials_are_not_injected_and_never_printed() {
    let b64 = |t: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t);
    let token = format!("{}.{}.{}", b64("{}"), b64(r#"{"exp":1577836800,"c":"Canary-51"}"#), b64("sig-Canary"));
    let secret = |name: &str, registry: &str, annotation: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": name, "namespace": "shop",
                "annotations": {"pullsecret-injector.io/expires-at": annotation}},
            "stringData": {".dockerconfigjson":
                json!({"auths": {registry: {"username": "robot", "password": &token}}}).to_string()}})
    };
    let dir = tempfile::tempdir().unwrap();
    // "old": its token expired in 2020 (the annotation says later: the earliest wins). "soon": the annotation.
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [
        secret("old", "r.example.com", "2999-01-01T00:00:00Z"),
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
         "metadata": {"name": "soon", "namespace": "shop",
            "annotations": {"pullsecret-injector.io/expires-at": "2099-01-01T00:00:00Z"}},
         "stringData": {".dockerconfigjson": r#"{"auths":{"q.example.com":{"auth":"cm9ib3Q6cGFzcw=="}}}"#}}]});
    std::fs::write(dir.path().join("secrets.json"), list.to_string()).unwrap();
    let s = dir.path().to_str().unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
        "spec": {"containers": [{"name": "a", "image": "r.example.com/app"}, {"name": "b", "image": "q.example.com/app"}]}});
    let out = run(&["mutate", "--secrets", s, "-o", "json", "--expiry-warning", "100000d"], Some(&pod.to_string()));
    assert_eq!(out.code, 0, "{}", stderr(&out));
    let patched: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(names(&patched), ["soon"]);
    let err = stderr(&out);
    assert!(err.contains("Secret \"old\" not injected: its credential expired at 2020-01-01T00:00:00Z"), "{err}");
    assert!(err.contains("Secret \"soon\" injected, but its credential expires at 2099-01-01T00:00:00Z"), "{err}");
    let explain = run(&["explain", "r.example.com/app", "--secrets", s, "-n", "shop"], None);
    assert!(stdout(&explain).contains("expired   Secret \"old\": its credential expired at 2020-01-01T00:00:00Z"));
    assert!(stdout(&explain).contains("because Secret \"old\" not injected"), "{}", stdout(&explain));
    // explain marks what serve would warn about, with the same window (default 24h: 2099 is not within it).
    let soon = |window: &str| {
        let out =
            run(&["explain", "q.example.com/app", "--secrets", s, "-n", "shop", "--expiry-warning", window], None);
        assert_eq!(out.code, 0, "{}", stderr(&out));
        stdout(&out)
    };
    let marked = "expires   Secret \"soon\": its credential expires at 2099-01-01T00:00:00Z; within --expiry-warning";
    assert!(soon("100000d").contains(marked), "{}", soon("100000d"));
    assert!(
        !soon("24h").contains(marked) && soon("24h").contains("expires at 2099-01-01T00:00:00Z\n"),
        "{}",
        soon("24h")
    );
    for o in [&out, &explain] {
        for text in [stdout(o), stderr(o)] {
            assert!(!text.contains("Canary"), "{text}");
            for part in token.split('.') {
                assert!(!text.contains(part), "{text}");
            }
        }
    }
}

#[test]
fn help_documents_every_flag_with_its_environment_variable() {
    for sub in ["mutate", "explain", "serve", "verify", "certs"] {
        let out = run(&[sub, "--help"], None);
        assert_eq!(out.code, 0);
        let text = stdout(&out);
        // Option lines only (`      --flag` or `  -f, --flag`), not descriptions that wrap onto a `--`.
        let option = |l: &str| {
            let trimmed = l.trim_start();
            let indent = l.len() - trimmed.len();
            indent <= 6 && (trimmed.starts_with("--") || (trimmed.starts_with('-') && trimmed.contains(", --")))
        };
        for line in text.lines().filter(|l| option(l) && !l.contains("--help") && !l.contains("--version")) {
            let long = line.trim_start().split_once("--").map_or("", |(_, rest)| rest);
            let flag = long.split([' ', '<', '=']).next().unwrap();
            // serve's variables are unscoped, every other command's carry its name (issue 13 item 5).
            let scope = if sub == "serve" { String::new() } else { format!("{}_", sub.to_uppercase()) };
            let env = format!("PULLSECRET_INJECTOR_{scope}{}", flag.to_uppercase().replace('-', "_"));
            assert!(text.contains(&env), "{sub} --{flag}: no {env} in help:\n{text}");
        }
    }
}

#[test]
fn the_committed_crd_is_the_generated_one() {
    let out = run(&["crd"], None);
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/base/crd.yaml")).unwrap();
    let body: String = committed.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    assert_eq!(body, stdout(&out), "run `make manifests` after changing src/core/cluster_pull_secret.rs");
}

/// Live cluster mode against an API server that accepts connections and never answers: `--request-timeout` ends
/// each command with one error line and exit 2 instead of a hang.
#[test]
fn live_mode_gives_up_on_a_silent_api_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts every connection and holds it, silent, until the test ends.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             contexts:\n- name: x\n  context: {{cluster: c, user: u, namespace: shop}}\ncurrent-context: x\n\
             users:\n- name: u\n  user: {{token: planted-token-5e6f}}\n"
        ),
    )
    .unwrap();
    let kc = kubeconfig.to_str().unwrap();
    for args in [
        &["explain", "nginx", "--kubeconfig", kc, "--request-timeout", "1s"][..],
        &["explain", "pod/web", "--kubeconfig", kc, "--request-timeout", "1s"],
        &["verify", "--kubeconfig", kc, "--request-timeout", "1s"],
    ] {
        let out = run(args, None);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("error: ") && out.stderr.contains("cannot reach the API server"), "{out:?}");
        assert!(!out.stderr.contains("planted-token"), "{args:?}: {out:?}");
    }
}

/// A kubeconfig that does not parse: the YAML parser's message quotes the lines around the error, which here hold
/// the user's token, password and client key; the error names the line and column, never those lines.
#[test]
fn a_malformed_kubeconfig_is_reported_without_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    for broken in ["password: [unclosed", "username: {a: 1}", "password: 123456\n    username: [x"] {
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"https://127.0.0.1:1\"}}\n\
                 users:\n- name: u\n  user:\n    token: planted-token-7a8b\n    client-key-data: cGxhbnRlZC1rZXk=\n    \
                 {broken}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
            ),
        )
        .unwrap();
        let kc = kubeconfig.to_str().unwrap();
        for args in [&["explain", "nginx", "--kubeconfig", kc][..], &["verify", "--kubeconfig", kc]] {
            let out = run(args, None);
            assert_eq!(out.code, 2, "{args:?}: {out:?}");
            assert!(out.stderr.contains("not a valid kubeconfig") && out.stderr.contains("line "), "{out:?}");
            for planted in ["planted-token", "cGxhbnRlZC1rZXk", "123456", "unclosed"] {
                assert!(!out.stderr.contains(planted), "{broken}: {args:?}: {out:?}");
            }
        }
    }
}

/// Live cluster mode (no `--secrets`) without a usable cluster: no kubeconfig, a context that does not exist, an API
/// server nobody answers for. Each is one `error:` line and exit 2, for every command that reads the cluster.
#[test]
fn live_mode_without_a_cluster_is_one_error_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let port = common::free_port();
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n\
             contexts:\n- name: x\n  context: {{cluster: c, user: u, namespace: shop}}\ncurrent-context: x\n\
             users:\n- name: u\n  user: {{token: planted-token-0c1d}}\n"
        ),
    )
    .unwrap();
    let kc = kubeconfig.to_str().unwrap();
    let pod = dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: nginx}]}\n",
    )
    .unwrap();
    let pod = pod.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["explain", "pod/web"], "error: no kubeconfig ($KUBECONFIG or ~/.kube/config): "),
        (
            &["mutate", "-f", pod, "--kubeconfig", "/nonexistent/kubeconfig"],
            "error: --kubeconfig /nonexistent/kubeconfig: ",
        ),
        (&["verify", "--kubeconfig", kc, "--context", "nope"], "error: kubeconfig: "),
        (
            &["explain", "nginx", "--kubeconfig", kc],
            "error: list Secrets, Namespaces and ClusterPullSecrets: cannot reach the API server at https://127.0.0.1:",
        ),
        (
            &["explain", "pod/web", "--kubeconfig", kc],
            "error: get pod/web in namespace shop: cannot reach the API server at ",
        ),
        (
            &["mutate", "-f", pod, "--kubeconfig", kc],
            "error: list Secrets, Namespaces and ClusterPullSecrets: cannot reach ",
        ),
        (
            &["verify", "-A", "--kubeconfig", kc],
            "error: list Secrets of type kubernetes.io/dockerconfigjson: cannot reach ",
        ),
    ];
    for (args, start) in cases {
        // No HOME and no KUBECONFIG: only what the arguments name.
        let out = run(args, None);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with(start), "{args:?}: {out:?}");
        assert!(!out.stderr.contains("planted-token") && !out.stderr.contains("panicked"), "{args:?}: {out:?}");
    }
}
