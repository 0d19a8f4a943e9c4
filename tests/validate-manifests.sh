#!/usr/bin/env bash
# Validates the deployment manifests under manifests/ without a cluster:
#
# 1. Renders base/ and both overlays with `kubectl kustomize`, from a temporary copy of manifests/ so nothing
#    is ever written into the repository. The self-signed overlay needs certs/{ca.crt,tls.crt,tls.key} (from
#    `make certs`); when they are absent, throwaway ones are made with openssl in the temporary tree. Its
#    CA_BUNDLE_PLACEHOLDER is replaced with the same sed `make deploy` runs.
# 2. Validates every object against the Kubernetes JSON schemas of $K8S_VERSION (default 1.32.0) with
#    kubernetes-validate --strict (unknown fields are errors). cert-manager.io objects have no schema there and
#    are skipped (counted in the summary); any other object without a schema is an error, so a typo in an
#    apiVersion or kind cannot pass silently.
# 3. Checks what the schemas cannot: least privilege of the RBAC granted to the webhook's ServiceAccount
#    (against an explicit allowlist), the wiring between objects (webhook -> Service -> container ports ->
#    listen flags, TLS Secret -> volume, selectors -> Pod labels, cert-manager chain), the webhook's documented
#    safety settings, that the self-signed certificate chains to the injected caBundle and names the Service,
#    and that the CRD's schema accepts a valid ClusterPullSecret and rejects an invalid one.
#
# Exits non-zero with a message on the first failing stage; on success prints one summary line.
# Needs: kubectl (with kustomize), python3 with PyYAML and jsonschema (both installed with kubernetes-validate),
# openssl, base64.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
k8s_version=${K8S_VERSION:-1.32.0}

die() {
  echo "validate-manifests: FAIL: $*" >&2
  exit 1
}

for tool in kubectl python3 openssl base64 sed; do
  command -v "$tool" >/dev/null || die "'$tool' is not on PATH"
done

# kubernetes-validate: installed only when absent. pip may put the console script somewhere not on PATH (a
# user install, a pyenv shim not yet rehashed), so fall back to running the module.
if command -v kubernetes-validate >/dev/null; then
  kv=(kubernetes-validate)
else
  echo "validate-manifests: kubernetes-validate not found, installing it with pip" >&2
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet kubernetes-validate >&2 ||
    die "could not install kubernetes-validate (pip install kubernetes-validate)"
  if command -v kubernetes-validate >/dev/null; then
    kv=(kubernetes-validate)
  else
    kv=(python3 -m kubernetes_validate)
  fi
fi
python3 -c 'import yaml, jsonschema' 2>/dev/null ||
  die "python3 cannot import yaml and jsonschema (pip install pyyaml jsonschema)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- 1. render ------------------------------------------------------------------------------------------------
# The copy keeps the layout the overlays rely on: manifests/ and certs/ side by side (../../../certs).
tree=$work/tree
mkdir -p "$tree/certs" "$work/out"
cp -R "$repo/manifests" "$tree/manifests"

service_dns=pullsecret-injector.pullsecret-injector.svc
# Use the repository's certs/ only when they are made for the in-cluster Service name (`make certs`); the
# localhost-only certificates of `make run` would fail the SAN check below for a reason that is not a manifest bug.
if [[ -f $repo/certs/ca.crt && -f $repo/certs/tls.crt && -f $repo/certs/tls.key ]] \
  && openssl x509 -in "$repo/certs/tls.crt" -noout -ext subjectAltName 2>/dev/null | grep -q 'pullsecret-injector.pullsecret-injector.svc'; then
  cp "$repo/certs/ca.crt" "$repo/certs/tls.crt" "$repo/certs/tls.key" "$tree/certs/"
  certs_origin="certs/ from make certs"
else
  # Throwaway CA and serving certificate, valid one day, shaped like `pullsecret-injector certs` output.
  (
    cd "$tree/certs"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
      -subj /CN=throwaway-validate-manifests-ca -keyout ca.key -out ca.crt \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=$service_dns" -keyout tls.key -out tls.csr
    printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' \
      "$service_dns" >tls.ext
    openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAserial ca.srl -CAcreateserial -days 1 \
      -extfile tls.ext -out tls.crt
  ) >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; die "openssl could not make throwaway certificates"; }
  certs_origin="throwaway certificates (no certs/ in the repository)"
fi

render() { # name dir [kustomize flags...]
  local name=$1 dir=$2
  shift 2
  kubectl kustomize "$@" "$tree/manifests/$dir" >"$work/out/$name.yaml" 2>"$work/out/$name.err" ||
    { cat "$work/out/$name.err" >&2; die "kubectl kustomize manifests/$dir failed"; }
}
render base base
render cert-manager overlays/cert-manager
render self-signed.raw overlays/self-signed --load-restrictor LoadRestrictionsNone
# Exactly the substitution `make deploy` performs (overlays/self-signed/kustomization.yaml).
sed "s|CA_BUNDLE_PLACEHOLDER|$(base64 <"$tree/certs/ca.crt" | tr -d '\n')|" \
  "$work/out/self-signed.raw.yaml" >"$work/out/self-signed.yaml"
rm "$work/out/self-signed.raw.yaml" "$work/out/self-signed.raw.err"
renders=(base self-signed cert-manager)

# --- 2. split: objects with a Kubernetes schema vs. cert-manager objects -------------------------------------------
python3 - "$work/out" "${renders[@]}" <<'PY' || die "could not split the rendered manifests"
import sys, yaml
out, names = sys.argv[1], sys.argv[2:]
for name in names:
    with open(f"{out}/{name}.yaml") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    core = [d for d in docs if not d["apiVersion"].startswith("cert-manager.io/")]
    with open(f"{out}/{name}.core.yaml", "w") as f:
        yaml.safe_dump_all(core, f, sort_keys=False)
    with open(f"{out}/{name}.count", "w") as f:
        f.write(f"{len(core)} {len(docs) - len(core)}\n")
PY

validated=0
skipped=0
for name in "${renders[@]}"; do
  read -r n_core n_skipped <"$work/out/$name.count"
  set +e
  "${kv[@]}" -k "$k8s_version" --strict --quiet "$work/out/$name.core.yaml" >"$work/out/$name.kv" 2>&1
  rc=$?
  set -e
  # --quiet prints only problems; a WARN is an object without a schema (a mistyped apiVersion or kind).
  if [[ $rc -ne 0 ]] || grep -qE '^(ERROR|WARN|FATAL)' "$work/out/$name.kv"; then
    sed "s|$work/out/||g" "$work/out/$name.kv" | awk '!seen[$0]++' >&2
    grep -q '^FATAL' "$work/out/$name.kv" &&
      echo "hint: pip install -U kubernetes-validate (this one lacks Kubernetes $k8s_version schemas)" >&2
    die "$name: schema validation against Kubernetes $k8s_version failed"
  fi
  validated=$((validated + n_core))
  skipped=$((skipped + n_skipped))
done

# --- 3. RBAC, wiring, certificates, CRD ---------------------------------------------------------------------------
python3 - "$work/out" "$tree/certs" "${renders[@]}" <<'PY' || die "semantic checks failed (see above)"
import base64, os, subprocess, sys, tempfile
import jsonschema, yaml

out, certs, names = sys.argv[1], sys.argv[2], sys.argv[3:]
errors = []

# What the ServiceAccount may do, and nothing more (README.md, RBAC table). Keys: (scope, apiGroup, resource)
# with scope "cluster" (ClusterRole via ClusterRoleBinding) or "namespace" (Role in the webhook's namespace).
WEBHOOK_READ = {("", "secrets"), ("", "namespaces"), ("pullsecret-injector.io", "clusterpullsecrets")}
READ = {"get", "list", "watch"}
ALLOWED = {
    ("cluster", "", "secrets"): READ | {"create", "patch", "delete"},
    ("cluster", "", "namespaces"): READ,
    ("cluster", "pullsecret-injector.io", "clusterpullsecrets"): READ,
    ("cluster", "pullsecret-injector.io", "clusterpullsecrets/status"): {"patch"},
    ("cluster", "events.k8s.io", "events"): {"create", "patch"},
}
MIRROR_EXPR = ("!has(object.metadata.annotations) || "
               "!('kubernetes.io/config.mirror' in object.metadata.annotations)")


def one(objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    if len(found) != 1:
        raise LookupError(f"expected exactly one {kind}{' ' + name if name else ''}, found {len(found)}")
    return found[0]


def check_rbac(r, objs, dep):
    ns = dep["metadata"]["namespace"]
    sa = dep["spec"]["template"]["spec"].get("serviceAccountName", "default")
    roles = {}
    for o in objs:
        if o["kind"] in ("ClusterRole", "Role"):
            # A ClusterRole's metadata.namespace (which kustomize may set) means nothing; key it without one.
            key = (o["kind"], o["metadata"].get("namespace") if o["kind"] == "Role" else None, o["metadata"]["name"])
            roles[key] = o.get("rules") or []
            if o.get("aggregationRule"):
                errors.append(f"{r}: {o['kind']} {key[2]} aggregates other roles: cannot audit it")
            for rule in roles[key]:
                for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                    if "*" in (rule.get(field) or []):
                        errors.append(f"{r}: {o['kind']} {key[2]} grants '*' in {field}: {rule}")
                if rule.get("nonResourceURLs"):
                    errors.append(f"{r}: {o['kind']} {key[2]} grants nonResourceURLs: {rule}")

    webhook = roles.get(("ClusterRole", None, "pullsecret-injector-webhook"))
    if webhook is None:
        errors.append(f"{r}: ClusterRole pullsecret-injector-webhook is missing")
    else:
        covered = set()
        for rule in webhook:
            extra_verbs = set(rule.get("verbs", [])) - READ
            if extra_verbs:
                errors.append(f"{r}: webhook ClusterRole grants {sorted(extra_verbs)} (only get/list/watch allowed)")
            for g in rule.get("apiGroups", []):
                for res in rule.get("resources", []):
                    if (g, res) not in WEBHOOK_READ:
                        errors.append(f"{r}: webhook ClusterRole grants {g or 'core'}/{res} (only secrets, "
                                      "namespaces, clusterpullsecrets allowed)")
                    covered |= {(g, res, v) for v in rule.get("verbs", [])}
        missing = {(g, res, v) for g, res in WEBHOOK_READ for v in READ} - covered
        if missing:
            errors.append(f"{r}: webhook ClusterRole lacks {sorted(missing)}")

    # Effective permissions of the ServiceAccount, through every binding that names it.
    granted = {}
    for b in objs:
        if b["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        # The ServiceAccount itself, or a group it belongs to.
        groups = {"system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"}
        if not any((s.get("kind") == "ServiceAccount" and s.get("name") == sa
                    and s.get("namespace", b["metadata"].get("namespace")) == ns)
                   or (s.get("kind") == "Group" and s.get("name") in groups)
                   for s in b.get("subjects") or []):
            continue
        ref = b["roleRef"]
        role_ns = b["metadata"].get("namespace") if ref["kind"] == "Role" else None
        rules = roles.get((ref["kind"], role_ns, ref["name"]))
        if rules is None:
            errors.append(f"{r}: {b['kind']} {b['metadata']['name']} binds {ref['kind']} {ref['name']}, which is "
                          "not defined in these manifests (a built-in role?): cannot audit it")
            continue
        if b["kind"] == "ClusterRoleBinding":
            scope = "cluster"
        elif b["metadata"].get("namespace") == ns:
            scope = "namespace"
        else:
            scope = f"namespace {b['metadata'].get('namespace')}"
        for rule in rules:
            for g in rule.get("apiGroups", []):
                for res in rule.get("resources", []):
                    granted.setdefault((scope, g, res), set()).update(rule.get("verbs", []))
    for key, verbs in sorted(granted.items()):
        scope, g, res = key
        if res.startswith("pods"):
            errors.append(f"{r}: ServiceAccount {ns}/{sa} is granted {sorted(verbs)} on {res} ({scope}): "
                          "the webhook needs no access to Pods (pods/exec least of all)")
            continue
        extra = verbs - ALLOWED.get(key, set())
        if extra:
            errors.append(f"{r}: ServiceAccount {ns}/{sa} is granted {sorted(extra)} on {g or 'core'}/{res} "
                          f"({scope}) beyond the allowlist")
    for key, verbs in ALLOWED.items():
        lacking = verbs - granted.get(key, set())
        if lacking:
            errors.append(f"{r}: ServiceAccount {ns}/{sa} lacks {sorted(lacking)} on "
                          f"{key[1] or 'core'}/{key[2]} ({key[0]}), which the controller needs")


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def check_wiring(r, objs, dep):
    ns = dep["metadata"]["namespace"]
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    def selects(selector, what):
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            errors.append(f"{r}: {what} selector {selector} does not select the Deployment's Pods {labels}")

    selects(dep["spec"]["selector"].get("matchLabels"), "Deployment")
    selects(one(objs, "PodDisruptionBudget")["spec"]["selector"].get("matchLabels"), "PodDisruptionBudget")

    if port_of(env.get("PULLSECRET_INJECTOR_LISTEN", ":0")) != ports.get("https"):
        errors.append(f"{r}: PULLSECRET_INJECTOR_LISTEN does not match containerPort https")
    if port_of(env.get("PULLSECRET_INJECTOR_ADMIN_LISTEN", ":0")) != ports.get("admin"):
        errors.append(f"{r}: PULLSECRET_INJECTOR_ADMIN_LISTEN does not match containerPort admin")
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") not in ("admin", ports.get("admin")):
            errors.append(f"{r}: {probe} must be GET {path} on the admin port, is {get}")

    webhook_cfg = one(objs, "MutatingWebhookConfiguration", "pullsecret-injector")
    (hook,) = webhook_cfg["webhooks"]
    svc_ref = hook["clientConfig"]["service"]
    svc = one(objs, "Service", svc_ref["name"])
    if svc_ref.get("namespace") != ns or svc["metadata"]["namespace"] != ns:
        errors.append(f"{r}: webhook service namespace {svc_ref.get('namespace')} is not the Deployment's {ns}")
    selects(svc["spec"].get("selector"), "Service")
    by_port = {p["port"]: p for p in svc["spec"]["ports"]}
    svc_port = by_port.get(svc_ref.get("port", 443))
    if svc_port is None:
        errors.append(f"{r}: Service has no port {svc_ref.get('port', 443)} for the webhook")
    elif svc_port["targetPort"] not in ("https", ports.get("https")):
        errors.append(f"{r}: Service port {svc_port['port']} does not target the container's https port")
    if (by_port.get(8080) or {}).get("name") != "admin":
        errors.append(f"{r}: Service needs port 8080 named admin for metrics")
    if svc_ref.get("path") != "/mutate":
        errors.append(f"{r}: webhook path is {svc_ref.get('path')}, the server serves /mutate")

    # The documented safety settings of the webhook (webhook.yaml explains each).
    expect = {"admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Ignore",
              "timeoutSeconds": 5, "reinvocationPolicy": "IfNeeded"}
    for field, value in expect.items():
        if hook.get(field) != value:
            errors.append(f"{r}: webhook {field} is {hook.get(field)!r}, expected {value!r}")
    if [(ru["operations"], ru["resources"]) for ru in hook["rules"]] != [(["CREATE"], ["pods"])]:
        errors.append(f"{r}: webhook must match Pod CREATE only, has {hook['rules']}")
    if "objectSelector" in hook:
        errors.append(f"{r}: webhook has an objectSelector: Pods labelled to opt out would escape --deny-unmatched")
    exprs = hook.get("namespaceSelector", {}).get("matchExpressions", [])
    excluded = {v for e in exprs if e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "NotIn"
                for v in e["values"]}
    if not {"kube-system", ns} <= excluded:
        errors.append(f"{r}: webhook namespaceSelector must exclude kube-system and {ns}, excludes {sorted(excluded)}")
    if not any(e["key"] == "pullsecret-injector.io/inject" and e["operator"] == "NotIn" and e["values"] == ["disabled"]
               for e in exprs):
        errors.append(f"{r}: webhook namespaceSelector lacks the opt-out pullsecret-injector.io/inject NotIn [disabled]")
    if MIRROR_EXPR not in [c["expression"] for c in hook.get("matchConditions", [])]:
        errors.append(f"{r}: webhook lacks the matchCondition that skips mirror Pods")

    # TLS: the mounted Secret, and the flags pointing into the mount.
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "tls"]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "tls"]
    for flag, file in (("PULLSECRET_INJECTOR_TLS_CERT", "tls.crt"), ("PULLSECRET_INJECTOR_TLS_KEY", "tls.key")):
        if env.get(flag) != f"{mount['mountPath']}/{file}":
            errors.append(f"{r}: {flag} is {env.get(flag)}, the Secret mounts {mount['mountPath']}/{file}")
    return hook, svc, volume["secret"]["secretName"]


def openssl(*args, stdin=None):
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True)


def check_self_signed(r, objs, hook, svc, secret_name):
    secret = one(objs, "Secret", secret_name)
    if secret.get("type") != "kubernetes.io/tls":
        errors.append(f"{r}: Secret {secret_name} has type {secret.get('type')}, expected kubernetes.io/tls")
    bundle = hook["clientConfig"].get("caBundle", "")
    if "CA_BUNDLE_PLACEHOLDER" in bundle or not bundle:
        errors.append(f"{r}: caBundle was not substituted")
        return
    dns = f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc"
    with tempfile.TemporaryDirectory() as d:
        paths = {}
        for name, b64 in (("ca.crt", bundle), ("tls.crt", secret["data"]["tls.crt"]), ("tls.key", secret["data"]["tls.key"])):
            paths[name] = os.path.join(d, name)
            with open(paths[name], "wb") as f:
                # kustomize folds long data into a block scalar; the API server's decoder skips the newlines.
                f.write(base64.b64decode("".join(b64.split()), validate=True))
        res = openssl("verify", "-CAfile", paths["ca.crt"], "-purpose", "sslserver", "-verify_hostname", dns, paths["tls.crt"])
        if res.returncode != 0:
            errors.append(f"{r}: serving certificate does not verify against caBundle for {dns}: "
                          f"{(res.stdout + res.stderr).strip().splitlines()[-1]}")
        cert_pub = openssl("x509", "-noout", "-pubkey", "-in", paths["tls.crt"]).stdout
        key_pub = openssl("pkey", "-pubout", "-in", paths["tls.key"]).stdout
        if not cert_pub or cert_pub != key_pub:
            errors.append(f"{r}: tls.key does not belong to tls.crt")


def check_cert_manager(r, objs, webhook_cfg, svc, secret_name):
    ns = svc["metadata"]["namespace"]
    issuers = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Issuer"}
    certs_ = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Certificate"}
    serving = [c for c in certs_.values() if c["spec"]["secretName"] == secret_name]
    if len(serving) != 1:
        errors.append(f"{r}: expected one Certificate writing Secret {secret_name}, found {len(serving)}")
        return
    (serving,) = serving
    dns = f"{svc['metadata']['name']}.{ns}.svc"
    if dns not in serving["spec"].get("dnsNames", []):
        errors.append(f"{r}: Certificate {serving['metadata']['name']} lacks dnsName {dns}")
    want = f"{ns}/{serving['metadata']['name']}"
    got = webhook_cfg["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from")
    if got != want:
        errors.append(f"{r}: cert-manager.io/inject-ca-from is {got!r}, expected {want!r}")
    # Walk the chain: serving <- CA Issuer <- CA Certificate (isCA) <- selfSigned Issuer.
    ca_issuer = issuers.get(serving["spec"]["issuerRef"]["name"])
    ca_secret = (ca_issuer or {}).get("spec", {}).get("ca", {}).get("secretName")
    ca_cert = [c for c in certs_.values() if c["spec"]["secretName"] == ca_secret and c["spec"].get("isCA")]
    root = issuers.get(ca_cert[0]["spec"]["issuerRef"]["name"]) if ca_cert else None
    if not (ca_issuer and ca_cert and root and "selfSigned" in root["spec"]):
        errors.append(f"{r}: cert-manager chain selfSigned Issuer -> CA Certificate -> CA Issuer -> serving "
                      "Certificate is broken")
    for o in list(issuers.values()) + list(certs_.values()):
        if o["metadata"].get("namespace") != ns:
            errors.append(f"{r}: {o['kind']} {o['metadata']['name']} is not in namespace {ns}")


def check_crd(r, objs):
    crd = one(objs, "CustomResourceDefinition", "clusterpullsecrets.pullsecret-injector.io")
    spec = crd["spec"]
    names = spec["names"]
    if (spec["group"], names["kind"], names["plural"], spec["scope"]) != (
            "pullsecret-injector.io", "ClusterPullSecret", "clusterpullsecrets", "Cluster") or \
            "cps" not in names.get("shortNames", []):
        errors.append(f"{r}: CRD names/scope differ from CONTRACT.md")
    versions = {v["name"]: v for v in spec["versions"]}
    v1 = versions.get("v1alpha1")
    if not v1 or not (v1["served"] and v1["storage"]) or "status" not in v1.get("subresources", {}):
        errors.append(f"{r}: CRD needs v1alpha1 served, storage, with the status subresource")
        return
    # The structural schema is plain JSON Schema plus x-kubernetes-* keywords, which jsonschema ignores.
    schema = v1["schema"]["openAPIV3Schema"]
    good = {"apiVersion": "pullsecret-injector.io/v1alpha1", "kind": "ClusterPullSecret",
            "metadata": {"name": "corp-registry"},
            "spec": {"secretRef": {"namespace": "platform-creds", "name": "corp-registry"},
                     "namespaceSelector": {"matchLabels": {"tenant-tier": "internal"}},
                     "targetName": "corp-registry"},
            "status": {"selectedNamespaces": 3, "syncedCopies": 3, "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z",
                 "reason": "Synced", "message": "3 of 3 copies up to date"}]}}
    try:
        jsonschema.validate(good, schema)
    except jsonschema.ValidationError as e:
        errors.append(f"{r}: CRD schema rejects a valid ClusterPullSecret: {e.message}")
    bad = {**good, "spec": {"namespaceSelector": {}}}
    try:
        jsonschema.validate(bad, schema)
        errors.append(f"{r}: CRD schema accepts a ClusterPullSecret without spec.secretRef")
    except jsonschema.ValidationError:
        pass


for r in names:
    with open(f"{out}/{r}.yaml") as f:
        objs = [d for d in yaml.safe_load_all(f) if d]
    try:
        dep = one(objs, "Deployment", "pullsecret-injector")
        check_rbac(r, objs, dep)
        hook, svc, secret_name = check_wiring(r, objs, dep)
        check_crd(r, objs)
        if r == "self-signed":
            check_self_signed(r, objs, hook, svc, secret_name)
        if r == "cert-manager":
            check_cert_manager(r, objs, one(objs, "MutatingWebhookConfiguration"), svc, secret_name)
    except (LookupError, KeyError, ValueError) as e:
        errors.append(f"{r}: malformed or missing object: {type(e).__name__}: {e}")

for e in errors:
    print(f"validate-manifests: {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY

echo "manifests: ${#renders[@]} renders, $validated objects validated against Kubernetes $k8s_version (--strict), RBAC ok; skipped $skipped cert-manager.io objects (no schema; checked structurally); self-signed overlay rendered with $certs_origin"
