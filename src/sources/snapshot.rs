//! Credentials read once: from files (`--secrets`), or from the cluster with one list per collection (`mutate`,
//! `explain` and `verify` without `--secrets`).
//!
//! The cluster is read as the webhook's watches read it, with the same requests and the same permissions (list
//! only): pull Secrets one type at a time (`type=` field selector), Namespaces, ClusterPullSecrets (none when the
//! CRD is not installed), and, for each distribution's `targetName`, the metadata of the Secrets of other types
//! holding that name. Each list goes into the index through the watches' own feeds (`sources::cluster::Feed`), so
//! the one-shot index is built by the code `serve` uses, rule for rule.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::ListParams;
use kube::{Api, Client};

use crate::core::cluster_pull_secret::ClusterPullSecret;
use crate::core::credentials::{CredentialIndex, IndexLimits};
use crate::kubelet::docker_config::SecretKind;
use crate::sources::cluster::{
    ClusterPullSecretFeed, Feed, NamespaceFeed, OtherSecretFeed, SecretFeed, other_secrets_selector,
    pull_secret_selector,
};
use crate::sources::manifests::Manifests;

/// What was read, and the credential index over it.
pub struct Snapshot {
    /// The objects read: for the cluster, the pull Secrets (every namespace), Namespaces and ClusterPullSecrets.
    /// `explain` reads ownership and types from these; `verify` checks these Secrets.
    pub manifests: Manifests,
    pub index: CredentialIndex,
    /// (namespace, name) of Secrets of other types known by their metadata only (live mode: a name a Pod lists
    /// that is no pull Secret; its type and data are not read).
    pub other_secrets: BTreeSet<(String, String)>,
}

impl Snapshot {
    /// Over manifests read from files (`Manifests::index`, as the local mode of `serve` builds it).
    pub fn of_manifests(manifests: Manifests) -> Self {
        let index = manifests.index();
        Self { manifests, index, other_secrets: BTreeSet::new() }
    }

    /// One list of everything the webhook watches, into an index built as the watches build theirs.
    pub async fn list(client: &Client, limits: IndexLimits) -> Result<Self, kube::Error> {
        let mut index = CredentialIndex::with_limits(limits);
        // As `cluster::watch`: Secrets of other types are known per distributed name, not all of them.
        index.learn_other_secrets_by_name();
        let mut manifests = Manifests::default();
        for kind in SecretKind::ALL {
            let secrets = list_pull_secrets(client, kind, None).await?;
            let mut feed = SecretFeed::new(kind, limits);
            secrets.iter().for_each(|secret| feed.stage(secret));
            feed.replace(&mut index);
            manifests.secrets.extend(secrets);
        }

        let namespaces = list_all(&Api::<Namespace>::all(client.clone()), ListParams::default()).await?;
        let mut feed = NamespaceFeed::default();
        namespaces.iter().cloned().for_each(|namespace| feed.buffer(namespace));
        feed.replace(&mut index);
        manifests.namespaces = namespaces;

        match list_all(&Api::<ClusterPullSecret>::all(client.clone()), ListParams::default()).await {
            Ok(list) => {
                let mut feed = ClusterPullSecretFeed::default();
                list.iter().cloned().for_each(|cps| feed.buffer(cps));
                feed.replace(&mut index);
                manifests.cluster_pull_secrets = list;
            }
            // The CRD is not installed: no distribution, as `serve` then runs.
            Err(kube::Error::Api(status)) if status.code == 404 => index.no_distributions(),
            Err(error) => return Err(error),
        }

        for name in index.target_names() {
            let params = ListParams::default().fields(&other_secrets_selector(&name));
            let holders = Api::<Secret>::all(client.clone()).list_metadata(&params).await?;
            let mut feed = OtherSecretFeed::new(name);
            holders.items.into_iter().for_each(|secret| feed.buffer(secret));
            feed.replace(&mut index);
        }
        Ok(Self { manifests, index, other_secrets: BTreeSet::new() })
    }
}

/// The pull Secrets of one type, in one namespace or all of them (the `type=` field selector of the watches: no
/// other Secret is read).
pub async fn list_pull_secrets(
    client: &Client,
    kind: SecretKind,
    namespace: Option<&str>,
) -> Result<Vec<Secret>, kube::Error> {
    let api: Api<Secret> = match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    list_all(&api, ListParams::default().fields(&pull_secret_selector(kind))).await
}

/// Objects per page of a list: the watches' paged lists' size (kube-rs' default), so that neither the API server nor
/// this process holds a whole cluster's Secrets as one response.
const PAGE: u32 = 500;

/// Every object `params` selects, page by page.
async fn list_all<K>(api: &Api<K>, params: ListParams) -> Result<Vec<K>, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut params = params.limit(PAGE);
    let mut items = Vec::new();
    loop {
        let page = api.list(&params).await?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(items),
        }
    }
}
