//! Reading Kubernetes manifests from files and directories: YAML (multi-document) or JSON, `kind: List` included.
//!
//! Used by `mutate`, `explain`, `verify` and the local credential source of `serve`. Like `kubectl apply -f DIR`,
//! a directory is read one level deep, in name order, and hidden entries (such as the `..data` links of a mounted
//! Secret volume) are skipped.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use serde::Deserialize;
use serde_json::Value;

use crate::core::cluster_pull_secret::ClusterPullSecret;
use crate::core::credentials::{CredentialIndex, IndexLimits};
use crate::kubelet::docker_config::SecretKind;

/// Why manifests could not be read. The message names the file (and document) and the problem, on one line.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {what}")]
    Parse { path: PathBuf, what: String },
    #[error("{path}: document {index}: {kind} {name:?} is malformed: {what}")]
    Object { path: PathBuf, index: usize, kind: String, name: String, what: String },
}

/// The objects the credential inputs may hold; other kinds are ignored.
#[derive(Debug, Default, Clone)]
pub struct Manifests {
    pub secrets: Vec<Secret>,
    pub namespaces: Vec<Namespace>,
    pub cluster_pull_secrets: Vec<ClusterPullSecret>,
}

impl Manifests {
    /// Reads every path (file or directory). Objects without a namespace are placed in `default_namespace`,
    /// as `kubectl apply` places them in the context's namespace.
    pub fn load(paths: &[PathBuf], default_namespace: &str) -> Result<Self, InputError> {
        let mut out = Manifests::default();
        for path in paths {
            for file in manifest_files(path)? {
                let text =
                    std::fs::read_to_string(&file).map_err(|source| InputError::Read { path: file.clone(), source })?;
                out.add_documents(&file, &text, default_namespace)?;
            }
        }
        Ok(out)
    }

    /// Adds the objects of one file's text.
    pub fn add_documents(&mut self, path: &Path, text: &str, default_namespace: &str) -> Result<(), InputError> {
        for (index, doc) in parse_documents(path, text)?.into_iter().enumerate() {
            for item in flatten_lists(doc) {
                self.add_object(path, index + 1, item, default_namespace)?;
            }
        }
        Ok(())
    }

    fn add_object(
        &mut self,
        path: &Path,
        index: usize,
        object: Value,
        default_namespace: &str,
    ) -> Result<(), InputError> {
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        let malformed = |e: serde_json::Error| InputError::Object {
            path: path.to_path_buf(),
            index,
            kind: kind.clone(),
            name: name.clone(),
            what: shape_error(&e),
        };
        match (api_version, kind.as_str()) {
            ("v1", "Secret") => {
                let mut secret: Secret = serde_json::from_value(object).map_err(malformed)?;
                secret.metadata.namespace.get_or_insert_with(|| default_namespace.to_string());
                self.secrets.push(secret);
            }
            ("v1", "Namespace") => self.namespaces.push(serde_json::from_value(object).map_err(malformed)?),
            ("pullsecret-injector.io/v1alpha1", "ClusterPullSecret") => {
                self.cluster_pull_secrets.push(serde_json::from_value(object).map_err(malformed)?)
            }
            _ => {}
        }
        Ok(())
    }

    /// A credential index over these objects, exactly as `serve` would build it from the cluster (default bounds).
    pub fn index(&self) -> CredentialIndex {
        self.index_with(IndexLimits::default())
    }

    /// [`Manifests::index`] with these bounds.
    pub fn index_with(&self, limits: IndexLimits) -> CredentialIndex {
        let mut index = CredentialIndex::with_limits(limits);
        index.replace_namespaces(&self.namespaces);
        index.replace_cluster_pull_secrets(&self.cluster_pull_secrets);
        for kind in [SecretKind::DockerConfigJson, SecretKind::DockerCfg] {
            index.replace_secrets(kind, &self.secrets);
        }
        // Secrets of other types take their names (a distributed credential is not offered under such a name).
        index.replace_other_secrets(&self.secrets);
        index
    }
}

/// serde's message for a wrongly shaped object, without the offending value: serde quotes it (`invalid type: string
/// "…"`), and in a Secret that value can be a credential.
fn shape_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let Some(rest) = text.strip_prefix("invalid type: ").or_else(|| text.strip_prefix("invalid value: ")) else {
        return if text.contains("base64") || text.starts_with("Invalid") {
            "a data value is not valid base64".into()
        } else {
            text
        };
    };
    let found = rest.split([' ', ',']).next().unwrap_or("value");
    match text.rsplit_once(", expected ") {
        Some((_, expected)) => format!("invalid {found}, expected {expected}"),
        None => format!("invalid {found}"),
    }
}

/// The files a path names: itself, or a directory's visible `.yaml`, `.yml` and `.json` files in name order.
pub fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, InputError> {
    let meta = std::fs::metadata(path).map_err(|source| InputError::Read { path: path.to_path_buf(), source })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| InputError::Read { path: path.to_path_buf(), source })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| InputError::Read { path: path.to_path_buf(), source })?;
        let file = entry.path();
        let visible = !entry.file_name().to_string_lossy().starts_with('.');
        let manifest = matches!(file.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"));
        if visible && manifest && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// Splits a file's text into documents: JSON (one value) or YAML (any number of `---` separated documents; empty
/// documents skipped). JSON is read by the JSON parser so its errors point at the right place.
pub fn parse_documents(path: &Path, text: &str) -> Result<Vec<Value>, InputError> {
    let parse_error = |what: String| InputError::Parse { path: path.to_path_buf(), what };
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let value: Value = serde_json::from_str(trimmed).map_err(|e| parse_error(format!("invalid JSON: {e}")))?;
        return Ok(match value {
            Value::Array(items) => items,
            other => vec![other],
        });
    }
    let mut docs = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value =
            Value::deserialize(doc).map_err(|e| parse_error(format!("document {}: invalid YAML: {e}", i + 1)))?;
        if value.is_null() {
            continue;
        }
        if !value.is_object() {
            return Err(parse_error(format!("document {} is not a Kubernetes object", i + 1)));
        }
        docs.push(value);
    }
    Ok(docs)
}

/// Expands `kind: List` (and `*List` kinds such as `SecretList`) into their items.
fn flatten_lists(doc: Value) -> Vec<Value> {
    let is_list = doc.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"));
    match doc {
        Value::Object(mut map) if is_list => match map.remove("items") {
            Some(Value::Array(items)) => items.into_iter().flat_map(flatten_lists).collect(),
            _ => Vec::new(),
        },
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_multi_document_yaml_lists_and_ignores_other_kinds() {
        let text = r#"
apiVersion: v1
kind: Secret
metadata: {name: a}
type: kubernetes.io/dockerconfigjson
data: {.dockerconfigjson: e30=}
---
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: team, labels: {x: y}}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: ignored}
- apiVersion: v1
  kind: SecretList
  items:
  - apiVersion: v1
    kind: Secret
    metadata: {name: b, namespace: team}
"#;
        let mut m = Manifests::default();
        m.add_documents(Path::new("x.yaml"), text, "default").unwrap();
        let names: Vec<_> = m
            .secrets
            .iter()
            .map(|s| (s.metadata.namespace.clone().unwrap(), s.metadata.name.clone().unwrap()))
            .collect();
        assert_eq!(names, [("default".into(), "a".into()), ("team".into(), "b".into())]);
        assert_eq!(m.namespaces.len(), 1);
    }

    #[test]
    fn json_array_and_object() {
        let mut m = Manifests::default();
        m.add_documents(
            Path::new("x.json"),
            r#"[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a","namespace":"n"}}]"#,
            "default",
        )
        .unwrap();
        assert_eq!(m.secrets.len(), 1);
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let mut m = Manifests::default();
        let err = m.add_documents(Path::new("bad.yaml"), "a: [", "default").unwrap_err().to_string();
        assert!(err.starts_with("bad.yaml: document 1: invalid YAML"), "{err}");
        let err = m
            .add_documents(
                Path::new("s.yaml"),
                "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: not-base64!}\n",
                "default",
            )
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.yaml: document 1: Secret \"s\" is malformed"), "{err}");
        let err = m.add_documents(Path::new("j.json"), "{\"kind\": ", "default").unwrap_err().to_string();
        assert!(err.starts_with("j.json: invalid JSON"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn directories_skip_hidden_and_non_manifest_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), "").unwrap();
        std::fs::write(dir.path().join("a.json"), "{}").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        std::fs::create_dir(dir.path().join("..data")).unwrap();
        std::fs::write(dir.path().join(".hidden.yaml"), "").unwrap();
        let files = manifest_files(dir.path()).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, ["a.json", "b.yaml"]);
    }
}
