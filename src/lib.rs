//! pullsecret-injector: a Kubernetes mutating admission webhook that adds to each Pod the `imagePullSecrets` whose
//! registry keys the kubelet will actually match for its images.
//!
//! The modules follow the data: an image reference ([`reference`]) and a registry key ([`keyring`], with Go's URL
//! parsing in [`gourl`] and `filepath.Match` in [`glob`]) meet in the kubelet's keyring; Secrets are decoded by
//! [`dockerconfig`] into [`credentials`]; [`decision`] decides for a [`pod`]; [`admission`] speaks the API server's
//! protocol; [`offline`] and [`cli`] expose the same decision on the command line.

pub mod admission;
pub mod cache;
pub mod certs;
pub mod checks;
pub mod cli;
pub mod cluster;
pub mod connections;
pub mod controller;
pub mod crd;
pub mod credentials;
pub mod decision;
pub mod dockerconfig;
pub mod glob;
pub mod gourl;
pub mod inputs;
pub mod keyring;
pub mod local;
pub mod metrics;
pub mod offline;
pub mod pod;
pub mod reference;
pub mod safe_text;
pub mod serve;
pub mod server;
pub mod tls;
pub mod verify;
