//! Distribution: the `ClusterPullSecret` resource (`resource`) and the controller that keeps a copy of its source
//! Secret in every selected namespace (`controller`).

pub mod controller;
pub mod resource;
