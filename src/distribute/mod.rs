//! Distribution: the controller that keeps a copy of each `ClusterPullSecret`'s source Secret in every namespace it
//! selects (the resource itself, and which namespaces it selects, are in `core::cluster_pull_secret`).

pub mod controller;
