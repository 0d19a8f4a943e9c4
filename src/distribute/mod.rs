//! The `ClusterPullSecret` controller (the "distributor"): keeps a copy of each resource's source Secret in every
//! namespace its selector picks, follows the source's rotation, and removes the copies it manages from namespaces
//! that are no longer selected.
//!
//! What it guarantees (docs/contract.md, `ClusterPullSecret`):
//! - A copy exists only in a selected namespace: one whose labels match `namespaceSelector`, that is not opted out
//!   (`pullsecret-injector.io/inject: disabled`, the same rule as admission) and that is not terminating.
//! - A Secret it does not manage is never written or deleted. "Managed" means a controller `ownerReference` to
//!   this `ClusterPullSecret`'s `uid` (what the garbage collector deletes with it), not labels a tenant can put on
//!   any Secret: the labels `app.kubernetes.io/managed-by: pullsecret-injector` and
//!   `pullsecret-injector.io/cluster-pull-secret: <name>` only mark what the copy cache keeps. Anything else of the target
//!   name is a conflict, reported by a condition and a Warning Event on the resource (in the `default` namespace,
//!   never in the tenant's).
//! - A copy edited by someone else (a tenant with `patch secrets` in its namespace, issue 11 class 14) is restored:
//!   each copy's payload is hashed on arrival (then dropped) and compared with the
//!   `source-hash` the controller wrote; a difference is drift, restored by the same uid-guarded apply as an
//!   update, counted in `pullsecret_injector_copies_restored_total` and reported by a Warning Event. Copies are created with `POST` (atomic "only if absent";
//!   a server-side apply would take over a Secret created between our look and our write) and updated with a
//!   forced server-side apply that names the copy's `uid` (the API server refuses it if the copy was replaced by
//!   another object since we looked); deletes carry a `uid` precondition for the same reason.
//! - A missing source keeps existing copies (a transient deletion must not break running pulls); an undecodable
//!   source is not propagated (the kubelet would fail every pull of a Pod that lists it, R4). Both are reported.
//!   Copies in namespaces that are no longer selected are removed whatever the source's state: access ends with
//!   selection.
//! - Deleting the resource deletes its copies through garbage collection: each copy has an `ownerReference` to its
//!   (cluster-scoped) `ClusterPullSecret`, with `blockOwnerDeletion: false`. That needs no finalizer, works when
//!   the controller is down, and needs no permission on `clusterpullsecrets/finalizers`.
//!
//! It opens no watch of its own: the credential cache's watches (`sources::cluster`) feed it (`controller::feeds`), so a
//! replica watches each collection once. It keeps no Namespaces either: a pass selects from the credential index's
//! (`CredentialIndex::namespaces_selected_by`), which holds every Namespace's labels once per replica for admission
//! too, and a Namespace event reaches the controller only after the index holds it. Nothing it keeps holds a
//! credential: copies are reduced to their metadata and the hash of their payload before they reach it (`plan::observe_copy`),
//! other Secrets to their metadata, and the source is read with a `GET` on each pass and dropped. Secret data never reaches a log line, an Event or a condition.
//!
//! Every replica runs the controller, without leader election: for the same inputs every replica wants the same
//! objects, and every write is idempotent (a forced server-side apply with one field manager; a create that finds
//! the same copy already made by another replica counts as done; deletes tolerate "not found"), and a status is
//! written only when it changes. So replicas converge instead of fighting; the worst case is an Event reported
//! once per replica.
//!
//! Triggers: the resource itself; any change of a Namespace, and a change of a copy that needs action (deleted, or
//! its payload no longer what the controller wrote, `plan::copy_needs_a_pass`) reconciles every `ClusterPullSecret`
//! (a Namespace's new labels can deselect it, which no mapping from the new labels can tell; resources are few,
//! each pass reads only local caches plus one `GET`); a change of a pull Secret that is the source of a resource
//! reconciles that resource; and a resync every `controller::RESYNC`. No debounce: kube-runtime's trailing-edge debounce
//! keeps postponing a pass while events keep coming, which a tenant's flood would turn into starvation (issue 11,
//! class 13); a resource has at most one pass running and one pending, so a flood costs at most back-to-back
//! passes, and a rotation waits at most for the pass in progress.
//!
//! The files: [`plan`] (pure: what a copy looks like, which copies a pass wants, and the actions from what exists to
//! what is wanted), [`status`] (pure: the resource's conditions and Events from what a pass did) and [`controller`]
//! (the runtime: feeds from the shared watches, the reconcile pass that executes a plan, and the writes).

pub mod controller;
pub mod plan;
pub mod status;
