//! pullsecret-injector: a Kubernetes mutating admission webhook that adds to each Pod the `imagePullSecrets` whose
//! registry keys the kubelet will actually match for its images.
//!
//! The folders follow the layers (docs/architecture.md draws the data flow), each using only those above it:
//! - [`kubelet`]: the kubelet's Go behaviour, ported (image references, Go URL and glob corners, the keyring,
//!   pull-Secret payloads); knows no Kubernetes object.
//! - [`core`]: pure: the Pod view, the `ClusterPullSecret` resource, a namespace's credentials and their index, the
//!   decision, the admission protocol.
//! - [`sources`]: where credentials come from (manifests, a directory, the cluster's watches) and the live cache.
//! - [`distribute`]: the `ClusterPullSecret` controller (copies of a source Secret in the selected namespaces).
//! - [`verify`]: do the credentials work (one-off and periodic).
//! - [`serve`]: the webhook server (config, HTTP, TLS, connection guards, certificates).
//! - [`commands`]: the command line and the offline commands.
//!
//! Three modules cut across: [`safe_text`] (every text that came from outside passes through it before it is shown),
//! [`metrics`] and [`interner`] (values many namespaces hold alike, kept once).

pub mod commands;
pub mod core;
pub mod distribute;
pub mod interner;
pub mod kubelet;
pub mod metrics;
pub mod safe_text;
pub mod serve;
pub mod sources;
pub mod verify;
