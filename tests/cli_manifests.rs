//! `mutate` and `explain` over the manifests people apply (issue 13): workloads made by the real `kubectl create ...
//! --dry-run=client`, multi-document streams, a `List`, a CronJob; `-o patch` applied to the input gives `-o yaml`;
//! the exit-status table; a closed stdout; the environment rule; `certs`' checks; `make help` and the demo; and the
//! attacks (hostile YAML, wrong types everywhere, planted Secrets), each through the real binary.
//!
//! Self-contained on purpose (no `tests/common`): every process runs with a cleared environment, so a developer's
//! `PULLSECRET_INJECTOR_*` variables cannot change what is tested.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use serde_yaml_ng::Value as YamlValue;

const BIN: &str = env!("CARGO_BIN_EXE_pullsecret-injector");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The password of every Secret the tests create: it must never appear in any output.
const PASSWORD: &str = "s3cr3t-Pa55word-7Qx";

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary with `args`, `stdin` and only the environment variables `env`.
fn run_env(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_string();
    // The child may stop reading early (an error): a failed write is then expected.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Run {
        code: output.status.code().unwrap_or_else(|| panic!("{args:?} was killed by a signal")),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn run(args: &[&str], stdin: &str) -> Run {
    run_env(args, stdin, &[])
}

/// `kubectl ARGS` (client side only): its standard output.
fn kubectl(args: &[&str]) -> String {
    let out = Command::new("kubectl").args(args).output().expect("kubectl is installed (bash tests/install-deps.sh)");
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A pull Secret as `kubectl create secret docker-registry` writes it, in `dir`.
fn pull_secret(dir: &Path, namespace: &str, name: &str, server: &str) {
    let yaml = kubectl(&[
        "create",
        "secret",
        "docker-registry",
        name,
        "-n",
        namespace,
        &format!("--docker-server={server}"),
        "--docker-username=ci-user",
        &format!("--docker-password={PASSWORD}"),
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    std::fs::write(dir.join(format!("{namespace}-{name}.yaml")), yaml).unwrap();
}

/// Credentials of namespace `shop`: Docker Hub, a Harbor, and a ClusterPullSecret for a corporate registry whose
/// copy is not among the inputs; namespace `other` has none.
fn secrets() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    pull_secret(dir.path(), "shop", "hub", "https://index.docker.io/v1/");
    pull_secret(dir.path(), "shop", "harbor", "harbor.example.com");
    pull_secret(dir.path(), "platform", "corp-source", "registry.corp.example.com");
    std::fs::write(
        dir.path().join("zz-platform.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {tier: internal}}\n---\n\
         apiVersion: pullsecret-injector.io/v1alpha1\nkind: ClusterPullSecret\nmetadata: {name: corp}\n\
         spec: {secretRef: {namespace: platform, name: corp-source}, namespaceSelector: {matchLabels: {tier: internal}}}\n",
    )
    .unwrap();
    dir
}

fn path(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

/// The output of `mutate` without the `imagePullSecrets:` block it added: must be the input, byte for byte.
fn without_added_block(text: &str) -> String {
    let mut out = Vec::new();
    let mut skipping: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(at) = skipping {
            // The list's items (`- name: x` at the key's indentation, or deeper) belong to the block.
            if indent > at || (indent == at && line.trim_start().starts_with("- ")) {
                continue;
            }
            skipping = None;
        }
        if line.trim_start() == "imagePullSecrets:" {
            skipping = Some(indent);
            continue;
        }
        out.push(line);
    }
    out.iter().map(|l| format!("{l}\n")).collect()
}

fn yaml_docs(text: &str) -> Vec<YamlValue> {
    serde_yaml_ng::Deserializer::from_str(text).map(|d| serde::Deserialize::deserialize(d).unwrap()).collect()
}

/// The names listed at a JSON pointer's `imagePullSecrets`.
fn names_at(value: &Value, spec: &str) -> Vec<String> {
    value
        .pointer(&format!("{spec}/imagePullSecrets"))
        .and_then(Value::as_array)
        .map(|list| list.iter().map(|e| e["name"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn kubectl_deployment() -> String {
    kubectl(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--image=harbor.example.com/shop/api:2",
        "--image=quay.io/prometheus/node-exporter:v1.8.2",
        "--dry-run=client",
        "-o",
        "yaml",
    ])
}

fn kubectl_cronjob() -> String {
    kubectl(&[
        "create",
        "cronjob",
        "nightly",
        "--image=harbor.example.com/batch/report:3",
        "--schedule=0 1 * * *",
        "--dry-run=client",
        "-o",
        "yaml",
    ])
}

/// Every kind that carries a Pod, as the tools write it: (name, manifest, JSON pointer of the Pod spec, names the
/// webhook adds in namespace `shop`).
fn workloads() -> Vec<(&'static str, String, &'static str, Vec<&'static str>)> {
    let deployment = kubectl_deployment();
    let job = kubectl(&[
        "create",
        "job",
        "once",
        "--image=harbor.example.com/batch/once:1",
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    let statefulset =
        deployment.replace("kind: Deployment", "kind: StatefulSet").replace("  strategy: {}\n", "  serviceName: web\n");
    let daemonset = deployment
        .replace("kind: Deployment", "kind: DaemonSet")
        .replace("  replicas: 1\n", "")
        .replace("  strategy: {}\n", "");
    let replicaset = deployment.replace("kind: Deployment", "kind: ReplicaSet").replace("  strategy: {}\n", "");
    let rc = "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: legacy\nspec:\n  replicas: 1\n  selector:\n    app: legacy\n  template:\n    metadata:\n      labels:\n        app: legacy\n    spec:\n      containers:\n      - image: harbor.example.com/shop/legacy:1\n        name: legacy\n".to_string();
    let pod_template = "apiVersion: v1\nkind: PodTemplate\nmetadata:\n  name: tmpl\ntemplate:\n  metadata:\n    labels:\n      app: tmpl\n  spec:\n    containers:\n    - image: busybox:1.36\n      name: c\n".to_string();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: single\n  namespace: shop\nspec:\n  containers:\n  - image: harbor.example.com/shop/web:1\n    name: web\n  - image: registry.corp.example.com/base/sidecar:2\n    name: sidecar\n".to_string();
    let listed =
        deployment.replace("      containers:\n", "      imagePullSecrets:\n      - name: mine\n      containers:\n");
    vec![
        ("Deployment (kubectl)", deployment, "/spec/template/spec", vec!["hub", "harbor"]),
        ("Job (kubectl)", job, "/spec/template/spec", vec!["harbor"]),
        ("CronJob (kubectl)", kubectl_cronjob(), "/spec/jobTemplate/spec/template/spec", vec!["harbor"]),
        ("StatefulSet", statefulset, "/spec/template/spec", vec!["hub", "harbor"]),
        ("DaemonSet", daemonset, "/spec/template/spec", vec!["hub", "harbor"]),
        ("ReplicaSet", replicaset, "/spec/template/spec", vec!["hub", "harbor"]),
        ("ReplicationController", rc, "/spec/template/spec", vec!["harbor"]),
        ("PodTemplate", pod_template, "/template/spec", vec!["hub"]),
        // The ClusterPullSecret's credential is offered before its copy exists (docs/contract.md §3.2).
        ("Pod", pod, "/spec", vec!["harbor", "corp"]),
        ("Deployment listing a Secret", listed, "/spec/template/spec", vec!["mine", "hub", "harbor"]),
    ]
}

/// Golden: for every kind, `mutate` prints the input byte for byte plus the `imagePullSecrets` block (key order,
/// values and kubectl's layout kept), at the Pod spec; `-o patch` applied to the input gives the same object.
#[test]
fn every_kind_with_a_pod_gets_its_secrets_in_place() {
    let secrets = secrets();
    for (name, manifest, spec, expected) in workloads() {
        let out = run(&["mutate", "--secrets", path(&secrets), "-n", "shop"], &manifest);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        if name == "Deployment listing a Secret" {
            // Appended after what the Pod lists, which stays as it is.
            let want = manifest
                .replace("      - name: mine\n", "      - name: mine\n      - name: hub\n      - name: harbor\n");
            assert_eq!(out.stdout, want, "{name}");
        } else {
            assert_eq!(without_added_block(&out.stdout), manifest, "{name}: only the block is added:\n{}", out.stdout);
        }
        let patched: Value = serde_yaml_ng::from_str(&out.stdout).unwrap();
        assert_eq!(names_at(&patched, spec), expected, "{name}");

        let patch = run(&["mutate", "--secrets", path(&secrets), "-n", "shop", "-o", "patch"], &manifest);
        assert_eq!(patch.code, 0, "{name}: {}", patch.stderr);
        let operations: json_patch::Patch = serde_json::from_str(&patch.stdout).unwrap();
        let first = serde_json::to_value(&operations).unwrap()[0]["path"].as_str().unwrap().to_string();
        assert!(first.starts_with(&format!("{spec}/imagePullSecrets")), "{name}: {first}");
        let mut input: Value = serde_yaml_ng::from_str(&manifest).unwrap();
        json_patch::patch(&mut input, &operations).unwrap();
        assert_eq!(input, patched, "{name}: -o patch applied to the input is -o yaml");
    }
}

/// JSON in (kubectl's `-o json`), JSON out with the input's key order; the object's own namespace wins over `-n`.
#[test]
fn json_keeps_its_key_order_and_the_objects_namespace_wins() {
    let secrets = secrets();
    let manifest = kubectl(&[
        "create",
        "deployment",
        "web",
        "--image=harbor.example.com/shop/api:2",
        "--dry-run=client",
        "-o",
        "json",
    ]);
    let out = run(&["mutate", "--secrets", path(&secrets), "-n", "shop", "-o", "json"], &manifest);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // kubectl writes `kind` before `apiVersion`; so does the output.
    assert!(out.stdout.find("\"kind\"").unwrap() < out.stdout.find("\"apiVersion\"").unwrap(), "{}", out.stdout);
    let mut doc = yaml_docs(&out.stdout).remove(0);
    let spec = doc["spec"]["template"]["spec"].as_mapping_mut().unwrap();
    assert_eq!(spec.remove("imagePullSecrets"), Some(serde_yaml_ng::from_str("[{name: harbor}]").unwrap()));
    let input = yaml_docs(&manifest).remove(0);
    assert_eq!(
        serde_yaml_ng::to_string(&doc).unwrap(),
        serde_yaml_ng::to_string(&input).unwrap(),
        "same keys, same order"
    );

    // Its namespace says `other`, which has no credential: `-n shop` does not apply to it.
    let elsewhere = kubectl(&[
        "create",
        "deployment",
        "web",
        "-n",
        "other",
        "--image=harbor.example.com/shop/api:2",
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    let out = run(&["mutate", "--secrets", path(&secrets), "-n", "shop"], &elsewhere);
    assert_eq!((out.code, out.stdout.as_str()), (0, elsewhere.as_str()), "{}", out.stderr);
}

/// A stream as `helm template` or `kustomize build` writes it: comments, a leading `---`, objects without a Pod.
/// Each document is decided on its own and written back in order; the others pass through unchanged with a note;
/// a Secret in the stream is passed through only with `--pass-secrets`, and never shown on stderr.
#[test]
fn a_multi_document_stream_comes_out_whole() {
    let secrets = secrets();
    let service =
        kubectl(&["create", "service", "clusterip", "web", "--tcp=80:8080", "--dry-run=client", "-o", "yaml"]);
    let config =
        kubectl(&["create", "configmap", "settings", "--from-literal=mode=fast", "--dry-run=client", "-o", "yaml"]);
    let secret = kubectl(&[
        "create",
        "secret",
        "generic",
        "app-token",
        "--from-literal=token=planted-token-Q9z",
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    let docs = [kubectl_deployment(), service.clone(), kubectl_cronjob(), config.clone(), secret.clone()];
    let stream = format!(
        "---\n# Source: web/templates/deployment.yaml\n{}---\n# Source: web/templates/service.yaml\n{}",
        docs[0],
        docs[1..].join("---\n")
    );
    // Without --pass-secrets, a stream holding a Secret is not printed: its data would reach the output.
    let refused = run(&["mutate", "--secrets", path(&secrets), "-n", "shop"], &stream);
    assert_eq!((refused.code, refused.stdout.as_str()), (2, ""), "{}", refused.stderr);
    assert!(
        refused.stderr.contains(
            "document 5: Secret \"app-token\": a Secret: -o yaml and -o json would print its data; give --pass-secrets"
        ),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("planted-token") && !refused.stderr.contains("cGxhbnRlZC10b2tlbi"));
    let out = run(&["mutate", "--secrets", path(&secrets), "-n", "shop", "--pass-secrets"], &stream);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let written: Vec<&str> = out.stdout.split("---\n").collect();
    assert_eq!(written.len(), 5, "{}", out.stdout);
    assert_eq!(without_added_block(written[0]), docs[0], "comments are not kept; the rest is");
    assert_eq!(written[1], service);
    assert_eq!(without_added_block(written[2]), docs[2]);
    assert_eq!(written[3], config);
    assert_eq!(written[4], secret, "a Secret in the stream is the stream's: passed through unchanged");
    let notes: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("note: ")).collect();
    assert_eq!(
        notes,
        [
            "note: stdin: document 2: Service \"web\": carries no Pod; passed through unchanged",
            "note: stdin: document 4: ConfigMap \"settings\": carries no Pod; passed through unchanged",
            "note: stdin: document 5: Secret \"app-token\": carries no Pod; passed through unchanged",
        ]
    );
    assert!(!out.stderr.contains("planted-token") && !out.stderr.contains("cGxhbnRlZC10b2tlbi"), "{}", out.stderr);
    let cronjob: Value = serde_yaml_ng::from_str(written[2]).unwrap();
    assert_eq!(names_at(&cronjob, "/spec/jobTemplate/spec/template/spec"), ["harbor"]);

    // As JSON, the stream is one v1 List of the five, in order.
    let out = run(&["mutate", "--secrets", path(&secrets), "-n", "shop", "-o", "json", "--pass-secrets"], &stream);
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((list["kind"].as_str(), list["items"].as_array().map(Vec::len)), (Some("List"), Some(5)));
    assert_eq!(names_at(&list["items"][0], "/spec/template/spec"), ["hub", "harbor"]);
    // A patch applies to one document: several are exit 2, with what to do instead.
    let out = run(&["mutate", "--secrets", path(&secrets), "-o", "patch"], &stream);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("use -o yaml or -o json"), "{}", out.stderr);
}

/// A `kind: List` (what `kubectl get -o yaml` prints): its items are decided one by one, and its patch has paths
/// under `/items/N`, which applied to the List give `-o yaml`.
#[test]
fn a_list_is_patched_item_by_item() {
    let secrets = secrets();
    let items: Vec<YamlValue> = [
        kubectl_deployment(),
        kubectl_cronjob(),
        kubectl(&["create", "service", "clusterip", "web", "--tcp=80", "--dry-run=client", "-o", "yaml"]),
    ]
    .iter()
    .map(|d| serde_yaml_ng::from_str(d).unwrap())
    .collect();
    let list = serde_yaml_ng::to_string(
        &serde_yaml_ng::from_str::<YamlValue>("{apiVersion: v1, kind: List, metadata: {resourceVersion: ''}}")
            .map(|mut l| {
                l.as_mapping_mut().unwrap().insert("items".into(), YamlValue::Sequence(items));
                l
            })
            .unwrap(),
    )
    .unwrap();
    let out = run(&["mutate", "--secrets", path(&secrets), "-n", "shop"], &list);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The same objects (this List was written by serde_yaml, whose quoting differs from kubectl's, which mutate keeps).
    let unchanged: YamlValue = serde_yaml_ng::from_str(&without_added_block(&out.stdout)).unwrap();
    assert_eq!(unchanged, serde_yaml_ng::from_str::<YamlValue>(&list).unwrap());
    assert!(out.stderr.contains("note: stdin: item 3: Service \"web\": carries no Pod"), "{}", out.stderr);
    let patched: Value = serde_yaml_ng::from_str(&out.stdout).unwrap();

    let patch = run(&["mutate", "--secrets", path(&secrets), "-n", "shop", "-o", "patch"], &list);
    let operations: Value = serde_json::from_str(&patch.stdout).unwrap();
    let paths: Vec<&str> = operations.as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "/items/0/spec/template/spec/imagePullSecrets",
            "/items/1/spec/jobTemplate/spec/template/spec/imagePullSecrets"
        ]
    );
    let mut input: Value = serde_yaml_ng::from_str(&list).unwrap();
    let operations: json_patch::Patch = serde_json::from_value(operations).unwrap();
    json_patch::patch(&mut input, &operations).unwrap();
    assert_eq!(input, patched);
}

/// The exit statuses CI relies on (docs/command-line.md): 0 nothing denied, 1 a denial or (with
/// `--fail-on-warning`) a warning, 2 unusable input. Each row: arguments after `mutate --secrets DIR -n shop`, the
/// input, the status, a fragment of stderr (empty: nothing in particular).
#[test]
fn exit_statuses() {
    let secrets = secrets();
    let deployment = kubectl_deployment();
    let invalid_image = deployment.replace("image: nginx:1.27", "image: Docker/Docker");
    let unmatched =
        deployment.replace("image: quay.io/prometheus/node-exporter:v1.8.2", "image: registry.corp.example.com/x/y:1");
    let rows: Vec<(Vec<&str>, String, i32, &str)> = vec![
        (vec![], deployment.clone(), 0, ""),
        (vec!["--fail-on-warning"], deployment.clone(), 0, ""),
        (vec![], invalid_image.clone(), 0, "InvalidImageName"),
        (vec!["--fail-on-warning"], invalid_image.clone(), 1, "error: 1 warning and --fail-on-warning"),
        (
            vec!["--deny-unmatched", "quay.io"],
            deployment.clone(),
            1,
            "error: denied by pullsecret-injector: Deployment \"web\": no pull credential",
        ),
        (vec!["--deny-unmatched", "quay.io", "--policy-audit"], deployment.clone(), 0, "policy (audit)"),
        (vec!["--deny-unmatched", "*.corp.example.com"], unmatched.clone(), 0, ""),
        (vec![], String::new(), 2, "error: stdin: no Kubernetes object"),
        (vec![], "kind: [\n".into(), 2, "error: stdin: document 1: invalid YAML"),
        (
            vec![],
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec: {}\n".into(),
            2,
            "no Pod template at spec.template",
        ),
        (vec!["-o", "review"], format!("{deployment}---\n{deployment}"), 2, "-o review answers for one"),
        (vec![], "apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\nrequest: {}\n".into(), 2, "no uid"),
        (vec!["-o", "nope"], deployment.clone(), 2, "invalid value 'nope'"),
        (vec!["-f", "/nonexistent/app.yaml"], String::new(), 2, "/nonexistent/app.yaml: cannot read"),
    ];
    // Not UTF-8: unusable, said in one line.
    let mut child = Command::new(BIN)
        .args(["mutate", "--secrets", path(&secrets)])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"kind: Pod\nmetadata: {name: \xff\xfe}\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "error: stdin: cannot read: stream did not contain valid UTF-8\n");
    for (extra, input, code, fragment) in &rows {
        let mut args = vec!["mutate", "--secrets", path(&secrets), "-n", "shop"];
        args.extend(extra);
        let out = run(&args, input);
        assert_eq!(out.code, *code, "{extra:?}: {}", out.stderr);
        assert!(out.stderr.contains(fragment), "{extra:?}: {fragment}: {}", out.stderr);
        if *code == 1 && fragment.contains("denied") {
            assert!(out.stdout.is_empty(), "a denied stream is not printed: {}", out.stdout);
        }
        if fragment.contains("--fail-on-warning") {
            assert!(!out.stdout.is_empty(), "the output is printed before the status says no");
        }
    }
}

/// A reader that goes away (`mutate ... | head -1`) ends the command quietly: no `error: Broken pipe`, and the
/// status is still the one the work decides.
#[test]
fn a_closed_stdout_ends_quietly() {
    let secrets = secrets();
    let deployment = kubectl_deployment();
    // 2,000 Deployments: far more than a pipe buffer holds.
    let stream = vec![deployment.as_str(); 2000].join("---\n");
    let mut child = Command::new(BIN)
        .args(["mutate", "--secrets", path(&secrets), "-n", "shop"])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(stream.as_bytes()));
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert_eq!(first, "apiVersion: apps/v1\n");
    // The reader is dropped here, as `head -1` exits.
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!((status.code(), stderr.as_str()), (Some(0), ""));

    // With stdout closed before anything is written, every command that prints: its own status, no error line.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: quay.io/x/y}]}\n";
    let cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (vec!["mutate", "--secrets", path(&secrets), "-n", "shop"], pod, 0),
        (vec!["mutate", "--secrets", path(&secrets), "-o", "json"], pod, 0),
        (vec!["mutate", "--secrets", path(&secrets), "--deny-unmatched", "quay.io", "-o", "review"], pod, 1),
        (vec!["explain", "nginx", "--secrets", path(&secrets), "-n", "shop"], "", 0),
        (vec!["explain", "-f", "-", "--secrets", path(&secrets)], pod, 0),
        (vec!["crd"], "", 0),
        (vec!["verify", "--secrets", "/dev/null"], "", 0),
        (vec!["mutate", "--help"], "", 0),
    ];
    for (args, input, code) in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut child = Command::new(BIN)
            .args(&args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe") && !stderr.contains("panicked"), "{args:?}: {stderr}");
        if code == 1 {
            assert!(stderr.contains("error: denied by pullsecret-injector"), "{args:?}: {stderr}");
        }
    }
}

/// Issue 13 item 5: each subcommand reads only its own variables. `PULLSECRET_INJECTOR_OUTPUT=patch` (meant for
/// nothing now) changes neither `mutate` nor `verify`; the scoped variable changes only its command.
#[test]
fn each_command_reads_only_its_own_environment() {
    let secrets = secrets();
    let deployment = kubectl_deployment();
    let args = ["mutate", "--secrets", path(&secrets), "-n", "shop"];
    let plain = run(&args, &deployment);
    let unscoped = run_env(&args, &deployment, &[("PULLSECRET_INJECTOR_OUTPUT", "patch")]);
    assert_eq!(unscoped.stdout, plain.stdout);
    let scoped = run_env(&args, &deployment, &[("PULLSECRET_INJECTOR_MUTATE_OUTPUT", "patch")]);
    assert!(scoped.stdout.starts_with('['), "{}", scoped.stdout);
    let verify_env = [("PULLSECRET_INJECTOR_MUTATE_OUTPUT", "patch"), ("PULLSECRET_INJECTOR_OUTPUT", "patch")];
    let verify = run_env(&["verify", "--secrets", "/dev/null"], "", &verify_env);
    assert_eq!(verify.code, 0, "verify is not broken by mutate's variable: {}", verify.stderr);
    let verify = run_env(&["verify", "--secrets", "/dev/null"], "", &[("PULLSECRET_INJECTOR_VERIFY_OUTPUT", "json")]);
    assert_eq!((verify.code, verify.stdout.trim()), (0, "[]"), "{}", verify.stderr);
    // The Secrets path and the policy too: mutate's are mutate's.
    let env = [
        ("PULLSECRET_INJECTOR_MUTATE_SECRETS", path(&secrets)),
        ("PULLSECRET_INJECTOR_MUTATE_DENY_UNMATCHED", "quay.io"),
    ];
    let denied = run_env(&["mutate", "-n", "shop"], &deployment, &env);
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    let serve_policy = run_env(&args, &deployment, &[("PULLSECRET_INJECTOR_DENY_UNMATCHED", "quay.io")]);
    assert_eq!(serve_policy.code, 0, "serve's variable is serve's: {}", serve_policy.stderr);
    // --help says which variable each flag reads.
    let help = run(&["mutate", "--help"], "").stdout;
    assert!(help.contains("PULLSECRET_INJECTOR_MUTATE_FAIL_ON_WARNING"), "{help}");
    assert!(!help.contains("[env: PULLSECRET_INJECTOR_OUTPUT"), "{help}");
}

/// `certs` refuses what no client would accept, naming the flag, in one line.
#[test]
fn certs_checks_names_and_validity() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("certs");
    let dir = dir.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--dns", "webhook_svc.ns.svc"], "--dns \"webhook_svc.ns.svc\": has '_'"),
        (&["--dns", "Webhook.ns.svc"], "upper-case"),
        (&["--dns", "10.0.0.1"], "give it with --ip"),
        (&["--dns", "a..b"], "empty label"),
        (&["--dns", "a.example", "--days", "1000000"], "--days 1000000: at most 3650"),
        (&["--dns", "a.example", "--days", "0"], "--days 0"),
        (&["--days", "30"], "at least one --dns NAME or --ip ADDR"),
    ];
    for (args, fragment) in cases {
        let mut all = vec!["certs", "--out", dir];
        all.extend_from_slice(args);
        let run = run(&all, "");
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: ") && run.stderr.contains(fragment), "{args:?}: {}", run.stderr);
        assert!(!Path::new(dir).exists(), "{args:?}: nothing is written");
    }
    let ok = run(
        &[
            "certs",
            "--out",
            dir,
            "--dns",
            "pullsecret-injector.pullsecret-injector.svc",
            "--dns",
            "*.ns.svc",
            "--days",
            "3650",
        ],
        "",
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(Path::new(dir).join("tls.crt").exists());
}

/// Issue 13 item 6: `explain` names a ClusterPullSecret's copies, says when a listed name does not exist, and ends
/// with the one-line answer.
#[test]
fn explain_names_copies_missing_listed_secrets_and_answers_in_one_line() {
    let secrets = secrets();
    // A copy the controller wrote (its controller ownerReference), exported with `kubectl get secret -o yaml`.
    let copy = kubectl(&[
        "create",
        "secret",
        "docker-registry",
        "mirror",
        "-n",
        "shop",
        "--docker-server=mirror.example.com",
        "--docker-username=u",
        &format!("--docker-password={PASSWORD}"),
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    let copy = copy.replace(
        "metadata:\n",
        "metadata:\n  ownerReferences:\n  - {apiVersion: pullsecret-injector.io/v1alpha1, kind: ClusterPullSecret, name: mirror-cps, uid: 0d9c, controller: true}\n",
    );
    std::fs::write(secrets.path().join("shop-mirror.yaml"), copy).unwrap();
    std::fs::write(
        secrets.path().join("shop-opaque.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: notes, namespace: shop}\ntype: Opaque\ndata: {a: YQ==}\n",
    )
    .unwrap();

    let out = run(
        &["explain", "mirror.example.com/app:1", "--secrets", path(&secrets), "-n", "shop", "--listed", "ghost,notes"],
        "",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = out.stdout;
    assert!(
        text.contains("MATCH     mirror.example.com")
            && text.contains("from mirror (copy of ClusterPullSecret mirror-cps)"),
        "{text}"
    );
    assert!(text.contains("from corp (copy of ClusterPullSecret corp, not in the inputs yet)"), "{text}");
    assert!(text.lines().any(|l| l.contains("ghost") && l.contains("listed but not found")), "{text}");
    assert!(text.lines().any(|l| l.contains("notes") && l.contains("of type Opaque")), "{text}");
    assert_eq!(text.lines().last(), Some("Answer: mirror.example.com/app:1 will get: mirror."), "{text}");

    let out =
        run(&["explain", "quay.io/prometheus/node-exporter:v1.8.2", "--secrets", path(&secrets), "-n", "shop"], "");
    assert_eq!(
        out.stdout.lines().last(),
        Some(
            "Answer: quay.io/prometheus/node-exporter:v1.8.2 will get no Secret; it has no credential because no key in namespace shop matches quay.io/prometheus/node-exporter (pulled anonymously)."
        )
    );

    // A workload: every image, then the answer for its Pods.
    let out = run(&["explain", "-f", "-", "--secrets", path(&secrets), "-n", "shop"], &kubectl_deployment());
    assert_eq!(out.code, 0, "{}", out.stderr);
    for header in ["== container \"nginx\": nginx:1.27", "== container \"api\": harbor.example.com/shop/api:2"] {
        assert!(out.stdout.contains(header), "{}", out.stdout);
    }
    assert_eq!(
        out.stdout.lines().last(),
        Some(
            "Answer: Deployment \"web\" will get: hub, harbor; container \"node-exporter\" has no credential because no key in namespace shop matches quay.io/prometheus/node-exporter (pulled anonymously)."
        ),
        "{}",
        out.stdout
    );
    // A Secret bound to another ServiceAccount, and a key that names the registry with another port: the answer
    // gives the webhook's reason.
    let bound = kubectl(&[
        "create",
        "secret",
        "docker-registry",
        "builder-pull",
        "-n",
        "shop",
        "--docker-server=builder.example.com",
        "--docker-username=u",
        &format!("--docker-password={PASSWORD}"),
        "--dry-run=client",
        "-o",
        "yaml",
    ])
    .replace("metadata:\n", "metadata:\n  annotations:\n    kubernetes.io/service-account.name: builder\n");
    std::fs::write(secrets.path().join("shop-builder.yaml"), bound).unwrap();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: build, namespace: shop}\nspec:\n  containers:\n  - {name: tools, image: builder.example.com/tools:1}\n  - {name: cache, image: harbor.example.com:8443/cache:1}\n";
    let out = run(&["explain", "-f", "-", "--secrets", path(&secrets)], pod);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("  excluded  builder-pull: bound to ServiceAccount builder"), "{}", out.stdout);
    let answer = out.stdout.lines().last().unwrap();
    assert!(answer.starts_with("Answer: Pod \"build\" will get no Secret; container \"tools\" has no credential because Secret \"builder-pull\""), "{answer}");
    assert!(answer.contains("container \"cache\" has no credential because key \"harbor.example.com\" of Secret \"harbor\" names its registry"), "{answer}");

    // -f takes one object with a Pod; --listed is for an image.
    let two = format!("{0}---\n{0}", kubectl_deployment());
    let out = run(&["explain", "-f", "-", "--secrets", path(&secrets)], &two);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("explain -f takes one Pod or one object with a Pod template; this input has 2"),
        "{}",
        out.stderr
    );
    let out = run(&["explain", "-f", "-", "--listed", "x", "--secrets", path(&secrets)], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
}

/// The attacker writes the manifest (a chart from elsewhere, a tenant's PR): wrong types in every field, one at a
/// time, never crash `mutate` or `explain` (status 0 or 2, one clear line), and no planted value comes back in a
/// message.
#[test]
fn wrong_types_in_every_field_are_clear_errors() {
    let secrets = secrets();
    let base: Value = serde_yaml_ng::from_str(
        &kubectl_deployment()
            .replace("      containers:\n", "      imagePullSecrets:\n      - name: mine\n      containers:\n"),
    )
    .unwrap();
    fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => map
                .iter()
                .for_each(|(k, v)| pointers(v, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out)),
            Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| pointers(v, format!("{at}/{i}"), out)),
            _ => {}
        }
        out.push(at);
    }
    let mut all = Vec::new();
    pointers(&base, String::new(), &mut all);
    all.retain(|p| !p.is_empty());
    assert!(all.len() > 25, "{all:?}");
    let planted = [
        json!("hunter2-planted"),
        json!(7),
        json!([["hunter2-planted"]]),
        json!({"hunter2-planted": true}),
        Value::Null,
    ];
    let mut runs = 0;
    for pointer in &all {
        for wrong in &planted {
            let mut doc = base.clone();
            *doc.pointer_mut(pointer).unwrap() = wrong.clone();
            let input = serde_json::to_string(&doc).unwrap();
            for args in [
                vec!["mutate", "--secrets", path(&secrets), "-n", "shop", "-o", "patch"],
                vec!["explain", "-f", "-", "--secrets", path(&secrets)],
            ] {
                let out = run(&args, &input);
                runs += 1;
                assert!(matches!(out.code, 0 | 2), "{pointer} = {wrong}: {args:?}: {}", out.stderr);
                // Messages name an object by its kind and name (display-safe); no other value is ever quoted.
                if !matches!(pointer.as_str(), "/kind" | "/metadata/name") {
                    assert!(!out.stderr.contains("hunter2"), "{pointer} = {wrong}: {}", out.stderr);
                }
                assert!(!out.stderr.contains("panicked"), "{pointer} = {wrong}: {}", out.stderr);
                if out.code == 2 {
                    assert_eq!(out.stderr.lines().count(), 1, "{pointer} = {wrong}: {}", out.stderr);
                }
                if args[0] == "mutate" && out.code == 0 {
                    assert!(out.stdout.starts_with('['), "{pointer} = {wrong}: {}", out.stdout);
                }
            }
        }
    }
    assert!(runs > 250, "{runs}");
}

/// Hostile streams through the binary: alias bombs, deep nesting, a huge stream. Refused (or done) quickly, with
/// one line.
#[test]
fn hostile_streams_are_bounded() {
    let secrets = secrets();
    let mut laughs = String::from("apiVersion: v1\nkind: ConfigMap\nl0: &l0 [lol]\n");
    for i in 1..12 {
        laughs.push_str(&format!("l{i}: &l{i} [{}]\n", vec![format!("*l{}", i - 1); 10].join(", ")));
    }
    let quadratic = format!(
        "apiVersion: v1\nkind: ConfigMap\nbase: &b [{}]\nrepeat: [{}]\n",
        vec!["x"; 30_000].join(","),
        vec!["*b"; 30_000].join(",")
    );
    let deep = format!("apiVersion: v1\nkind: Pod\nspec: {{containers: {}{}}}\n", "[".repeat(5_000), "]".repeat(5_000));
    for (name, input) in [("billion laughs", laughs), ("quadratic aliases", quadratic), ("deep nesting", deep)] {
        let started = Instant::now();
        let out = run(&["mutate", "--secrets", path(&secrets)], &input);
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{name}: {}", out.stderr);
        assert!(started.elapsed() < Duration::from_secs(20), "{name}: {:?}", started.elapsed());
    }
    // 5,000 Deployments (about 3 MB): decided and written back whole.
    let deployment = kubectl_deployment();
    let stream = vec![deployment.as_str(); 5000].join("---\n");
    let started = Instant::now();
    let out = run(&["mutate", "--secrets", path(&secrets), "-n", "shop"], &stream);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.matches("kind: Deployment").count(), 5000);
    assert_eq!(out.stdout.matches("- name: harbor").count(), 5000);
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
}

/// No credential from `--secrets` ever reaches an output, whatever the command and output.
#[test]
fn credentials_never_reach_any_output() {
    use base64::Engine as _;
    let secrets = secrets();
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("ci-user:{PASSWORD}"));
    let deployment = kubectl_deployment();
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u",
        "kind": {"group": "", "version": "v1", "kind": "Pod"}, "namespace": "shop", "operation": "CREATE",
        "object": {"kind": "Pod", "apiVersion": "v1", "spec": {"containers": [{"name": "c", "image": "harbor.example.com/a"}]}}}})
    .to_string();
    let mut runs = Vec::new();
    for output in ["yaml", "json", "patch", "review"] {
        runs.push(run(&["mutate", "--secrets", path(&secrets), "-n", "shop", "-o", output], &deployment));
        runs.push(run(&["mutate", "--secrets", path(&secrets), "-o", output], &review));
    }
    runs.push(run(&["explain", "-f", "-", "--secrets", path(&secrets), "-n", "shop"], &deployment));
    runs.push(run(
        &["explain", "harbor.example.com/x", "--secrets", path(&secrets), "-n", "shop", "--listed", "hub"],
        "",
    ));
    for out in &runs {
        assert!(matches!(out.code, 0 | 1), "{}", out.stderr);
        for text in [&out.stdout, &out.stderr] {
            assert!(!text.contains(PASSWORD) && !text.contains(&encoded), "{text}");
        }
    }
}

/// Issue 13 item 7: `make` (its help) lists every target the Makefile declares.
#[test]
fn make_help_lists_every_target() {
    let makefile = std::fs::read_to_string(Path::new(ROOT).join("Makefile")).unwrap();
    let phony: Vec<&str> =
        makefile.lines().find_map(|l| l.strip_prefix(".PHONY:")).expect("a .PHONY line").split_whitespace().collect();
    let defined: Vec<&str> = makefile
        .lines()
        .filter_map(|l| l.split_once(':').map(|(t, _)| t))
        .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        .collect();
    assert!(defined.contains(&"e2e") && defined.len() >= 20, "{defined:?}");
    let help = Command::new("make").args(["-s", "help"]).current_dir(ROOT).env_remove("MAKEFLAGS").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for target in defined.iter().chain(&phony) {
        assert!(phony.contains(target), "{target} is a target but not .PHONY");
        assert!(help.lines().any(|l| l.split_whitespace().nth(1) == Some(target)), "make help omits {target}:\n{help}");
    }
}

/// Two free loopback ports (bound then released: the demo binds them right after).
fn free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (a.local_addr().unwrap().port(), b.local_addr().unwrap().port())
}

fn demo(keep: bool) -> std::process::Child {
    use std::os::unix::process::CommandExt as _;
    let (port, admin) = free_ports();
    let mut command = Command::new(Path::new(ROOT).join("examples/demo.sh"));
    command
        .arg(BIN)
        .args(keep.then_some("--keep-running"))
        .env("DEMO_PORT", port.to_string())
        .env("DEMO_ADMIN_PORT", admin.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group, as a terminal's foreground job: Ctrl-C signals the whole group.
        .process_group(0);
    command.spawn().expect("run examples/demo.sh (needs curl and jq)")
}

/// Issue 13 item 7: `make demo` ends with status 0, and so does `make run` stopped with Ctrl-C (SIGINT to the
/// whole foreground process group, the server included).
#[test]
fn the_demo_exits_0_after_a_clean_stop() {
    let mut once = demo(false);
    let mut text = String::new();
    once.stdout.take().unwrap().read_to_string(&mut text).unwrap();
    assert_eq!(once.wait().unwrap().code(), Some(0), "{text}");
    assert!(text.contains("imagePullSecrets of the Pod after the patch"), "{text}");

    let mut running = demo(true);
    let mut lines = BufReader::new(running.stdout.take().unwrap()).lines();
    // Readiness: the line the demo prints once the round-trip is done and it keeps serving.
    let ready = lines.by_ref().map(Result::unwrap).any(|l| l.starts_with("The webhook keeps running"));
    assert!(ready, "the demo did not reach its serving state");
    let group = format!("-{}", running.id());
    let kill = Command::new("kill").args(["-INT", "--", &group]).status().unwrap();
    assert!(kill.success());
    assert_eq!(running.wait().unwrap().code(), Some(0), "Ctrl-C is a clean stop");
}

/// The post-renderer plugin of examples/helm-postrenderer, installed in a real Helm 4 (tests/cluster/helm.sh): a
/// chart's Deployment and its pre-install hook Job get their Secrets, its Secret and the annotation Helm adds pass
/// through, and a denial fails the render.
#[test]
fn helm_runs_mutate_as_its_post_renderer() {
    let helm = Command::new("bash").arg(Path::new(ROOT).join("tests/cluster/helm.sh")).output().unwrap();
    assert!(helm.status.success(), "tests/cluster/helm.sh: {}", String::from_utf8_lossy(&helm.stderr));
    let helm = String::from_utf8(helm.stdout).unwrap().trim().to_string();
    let secrets = secrets();
    let home = tempfile::tempdir().unwrap();
    let chart = home.path().join("chart");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(chart.join("Chart.yaml"), "apiVersion: v2\nname: web\nversion: 0.1.0\n").unwrap();
    std::fs::write(chart.join("templates/deployment.yaml"), kubectl_deployment()).unwrap();
    let token = kubectl(&[
        "create",
        "secret",
        "generic",
        "token",
        "--from-literal=t=planted-token-Q9z",
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    std::fs::write(chart.join("templates/secret.yaml"), token).unwrap();
    let hook = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n    helm.sh/hook: pre-install\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: migrate\n        image: harbor.example.com/shop/migrate:1\n";
    std::fs::write(chart.join("templates/hook.yaml"), hook).unwrap();
    let helm_run = |args: &[&str]| {
        let out = Command::new(&helm)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", home.path())
            .env("HELM_CONFIG_HOME", home.path().join("config"))
            .env("HELM_CACHE_HOME", home.path().join("cache"))
            .env("HELM_DATA_HOME", home.path().join("data"))
            .env("PULLSECRET_INJECTOR_BIN", BIN)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let plugin = Path::new(ROOT).join("examples/helm-postrenderer");
    let (code, _, err) = helm_run(&["plugin", "install", plugin.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let secrets_arg = format!("--post-renderer-args=--secrets={}", path(&secrets));
    let mut args = vec![
        "template",
        "web",
        chart.to_str().unwrap(),
        "--namespace",
        "shop",
        "--post-renderer",
        "pullsecret-injector",
    ];
    args.extend([secrets_arg.as_str(), "--post-renderer-args=--namespace=shop"]);
    let (code, out, err) = helm_run(&args);
    assert_eq!(code, Some(0), "{err}");
    let docs: Vec<Value> =
        yaml_docs(&out).into_iter().filter(|d| !d.is_null()).map(|d| serde_json::to_value(d).unwrap()).collect();
    let find = |kind: &str| docs.iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("no {kind} in:\n{out}"));
    assert_eq!(names_at(find("Deployment"), "/spec/template/spec"), ["hub", "harbor"]);
    assert_eq!(names_at(find("Job"), "/spec/template/spec"), ["harbor"], "the hook is post-rendered too");
    assert_eq!(find("Secret")["data"]["t"], "cGxhbnRlZC10b2tlbi1ROXo=", "the chart's Secret passes through");
    // A denial fails the render: Helm prints nothing to install.
    args.push("--post-renderer-args=--deny-unmatched=quay.io");
    let (code, out, err) = helm_run(&args);
    assert_ne!(code, Some(0), "{out}");
    assert!(!out.contains("kind: Deployment"), "{out}");
    // Helm 4.3 does not show a post-renderer plugin's stderr (docs/command-line.md says how to see the reason).
    assert!(err.contains("post-renderer plugin \"pullsecret-injector\""), "{err}");
    assert!(!err.contains("planted-token") && !err.contains("cGxhbnRlZC10b2tlbi"), "{err}");
}

/// docs/command-line.md shows real output: each block that starts with `$ pullsecret-injector ...` and elides
/// nothing (no `...` line) is what the binary prints, run from the repository's root.
#[test]
fn the_documented_runs_print_what_the_docs_show() {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/command-line.md")).unwrap();
    let mut checked = 0;
    for block in doc.split("```text\n").skip(1) {
        let block = &block[..block.find("```").unwrap()];
        let Some((command, shown)) = block.split_once('\n') else { continue };
        let Some(args) = command.strip_prefix("$ pullsecret-injector ") else { continue };
        if shown.lines().any(|l| l == "...") {
            continue;
        }
        let args: Vec<&str> = args.split_whitespace().collect();
        let out = Command::new(BIN).args(&args).current_dir(ROOT).env_clear().output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), shown, "{command}");
        checked += 1;
    }
    assert!(checked >= 2, "{checked} blocks checked");
}
