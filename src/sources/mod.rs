//! Where credentials come from: manifests on disk (`manifests`), a directory reloaded on change (`directory`,
//! local mode), the cluster's watches (`cluster`), and the live cache `serve` answers from (`live`).

pub mod cluster;
pub mod directory;
pub mod live;
pub mod manifests;
