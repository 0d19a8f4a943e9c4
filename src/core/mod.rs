//! The pure core: what the decision reads of a Pod, the `ClusterPullSecret` resource and which namespaces it
//! selects, the credentials a namespace offers (and the index that keeps them), the decision itself with its patch
//! and warnings, the AdmissionReview protocol around it, and where workloads carry their Pod. No I/O: every source
//! and every command feeds this same core.

pub mod admission;
pub mod cluster_pull_secret;
pub mod credentials;
pub mod decision;
pub mod expiry;
pub mod pod;
pub mod workload;
