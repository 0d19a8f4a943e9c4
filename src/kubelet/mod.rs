//! The kubelet's own behaviour, ported from its Go source: how it parses an image reference, Go's `net/url` and
//! `filepath.Match` corners its keyring inherits, the keyring's matching, and how it decodes a pull Secret's payload.
//! Nothing here knows a Kubernetes object: the rules are checked against the kubelet's code itself
//! (`tests/kubelet_oracle.rs`) and against docs/kubelet-matching.md.

pub mod credential_provider;
pub mod docker_config;
pub mod go_glob;
pub mod go_url;
pub mod keyring;
pub mod reference;
