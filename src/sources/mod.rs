//! Where credentials come from: manifests on disk (`manifests`), a directory reloaded on change (`directory`,
//! local mode), the cluster's watches (`cluster`), the live cache `serve` answers from (`live`), and
//! credentials read once, from files or one list of the cluster (`snapshot`, for the command line).

pub mod cluster;
pub mod directory;
pub mod live;
pub mod manifests;
pub mod snapshot;
