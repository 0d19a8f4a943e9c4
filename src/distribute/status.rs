//! The pure status of a `ClusterPullSecret`: its conditions and the Events a pass reports, from what the pass
//! found and did ([`PassReport`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::core::cluster_pull_secret::{ClusterPullSecretStatus, SourceSecretRef};

/// Condition types on `ClusterPullSecret.status`.
pub const READY: &str = "Ready";
pub const SOURCE_READY: &str = "SourceReady";
pub const CONFLICT: &str = "Conflict";

/// Conflicting namespaces named in a condition or Event message.
pub const MAX_NAMED_NAMESPACES: usize = 5;

/// What a pass found and did, for the status and Events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Why `namespaceSelector` could not be parsed.
    pub invalid_selector: Option<String>,
    /// `None`: the source is usable; otherwise (reason, message).
    pub source_problem: Option<(&'static str, String)>,
    pub selected: u32,
    /// Selected namespaces holding a current copy after the pass.
    pub synced: u32,
    /// Namespaces (sorted) where a Secret of the target name is not ours.
    pub conflicts: Vec<String>,
    /// One short line per failed write: namespace, verb, HTTP status; no message body.
    pub failures: Vec<String>,
    pub created: u32,
    pub updated: u32,
    pub deleted: u32,
    /// Namespaces (sorted) whose copy had been changed by someone else and was restored.
    pub restored: Vec<String>,
}

/// A condition as this controller sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionSpec {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

/// The three conditions for an outcome.
pub fn conditions_for(outcome: &PassReport, target_name: &str, source: &SourceSecretRef) -> [ConditionSpec; 3] {
    let source_ready = match &outcome.source_problem {
        None => ConditionSpec {
            type_: SOURCE_READY,
            status: true,
            reason: "SourceValid",
            message: format!("Secret {}/{} is a valid pull Secret", source.namespace, source.name),
        },
        Some((reason, message)) => {
            ConditionSpec { type_: SOURCE_READY, status: false, reason, message: message.clone() }
        }
    };
    let conflict = if outcome.conflicts.is_empty() {
        ConditionSpec {
            type_: CONFLICT,
            status: false,
            reason: "NoConflict",
            message: "no unmanaged Secret is in the way".into(),
        }
    } else {
        ConditionSpec {
            type_: CONFLICT,
            status: true,
            reason: "SecretNotManaged",
            message: conflict_message(target_name, &outcome.conflicts),
        }
    };
    let (status, reason, message) = if let Some(why) = &outcome.invalid_selector {
        (false, "InvalidSelector", format!("namespaceSelector is invalid: {why}; copies are left as they are"))
    } else if outcome.source_problem.is_some() {
        (false, "SourceNotReady", format!("{}; existing copies are kept", source_ready.message))
    } else if !outcome.failures.is_empty() {
        let shown = outcome.failures.iter().take(MAX_NAMED_NAMESPACES).cloned().collect::<Vec<_>>().join("; ");
        (false, "SyncFailed", format!("{} write(s) failed, retrying: {shown}", outcome.failures.len()))
    } else if !outcome.conflicts.is_empty() {
        (false, "Conflict", conflict.message.clone())
    } else {
        (true, "Synced", format!("{} of {} selected namespaces hold a current copy", outcome.synced, outcome.selected))
    };
    [ConditionSpec { type_: READY, status, reason, message }, source_ready, conflict]
}

fn conflict_message(target_name: &str, namespaces: &[String]) -> String {
    let shown = namespaces.iter().take(MAX_NAMED_NAMESPACES).cloned().collect::<Vec<_>>().join(", ");
    let more = namespaces.len().saturating_sub(MAX_NAMED_NAMESPACES);
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    format!(
        "a Secret named {target_name:?} that this ClusterPullSecret does not manage exists in {} namespace(s): \
         {shown}{more}; it is left untouched",
        namespaces.len()
    )
}

/// The status for an outcome. A condition keeps its `lastTransitionTime` while its status does not change, so a
/// pass that changes nothing produces a status equal to the previous one (and no write).
pub fn status_for(
    previous: Option<&ClusterPullSecretStatus>,
    generation: Option<i64>,
    specs: &[ConditionSpec],
    outcome: &PassReport,
    now: Timestamp,
) -> ClusterPullSecretStatus {
    let now = Time(Timestamp::from_second(now.as_second()).unwrap_or(now));
    let conditions = specs
        .iter()
        .map(|spec| {
            let status = if spec.status { "True" } else { "False" };
            let old = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == spec.type_));
            let last_transition_time =
                old.filter(|c| c.status == status).map(|c| c.last_transition_time.clone()).unwrap_or(now.clone());
            Condition {
                type_: spec.type_.to_string(),
                status: status.to_string(),
                reason: spec.reason.to_string(),
                message: spec.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect();
    let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    ClusterPullSecretStatus {
        selected_namespaces: count(outcome.selected),
        synced_copies: count(outcome.synced),
        conditions,
    }
}

/// An Event to publish about the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// Events for a pass: a Warning when a problem appears or changes (not on every resync, so a standing problem is
/// not repeated every five minutes), a Normal one when copies were written or removed.
pub fn events_for(
    previous: Option<&ClusterPullSecretStatus>,
    specs: &[ConditionSpec],
    outcome: &PassReport,
) -> Vec<EventSpec> {
    let mut events = Vec::new();
    for spec in specs {
        let problem = match spec.type_ {
            SOURCE_READY => !spec.status,
            CONFLICT => spec.status,
            // The other Ready reasons repeat SourceReady or Conflict.
            _ => !spec.status && matches!(spec.reason, "InvalidSelector" | "SyncFailed"),
        };
        let unchanged = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == spec.type_)).is_some_and(|c| {
            c.status == if spec.status { "True" } else { "False" }
                && c.reason == spec.reason
                && c.message == spec.message
        });
        if problem && !unchanged {
            let reason = if spec.type_ == CONFLICT { "Conflict" } else { spec.reason };
            events.push(EventSpec { warning: true, reason: reason.to_string(), note: spec.message.clone() });
        }
    }
    if !outcome.restored.is_empty() {
        let shown = outcome.restored.iter().take(MAX_NAMED_NAMESPACES).cloned().collect::<Vec<_>>().join(", ");
        let more = outcome.restored.len().saturating_sub(MAX_NAMED_NAMESPACES);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        events.push(EventSpec {
            warning: true,
            reason: "CopyModified".into(),
            note: format!(
                "the copy in {} namespace(s) had been changed since it was written and was restored: {shown}{more}",
                outcome.restored.len()
            ),
        });
    }
    if outcome.created + outcome.updated + outcome.deleted > 0 {
        events.push(EventSpec {
            warning: false,
            reason: "Synced".into(),
            note: format!(
                "copies created: {}, updated: {}, deleted: {}",
                outcome.created, outcome.updated, outcome.deleted
            ),
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn outcome() -> PassReport {
        PassReport { selected: 3, synced: 3, ..Default::default() }
    }

    fn source_ref() -> SourceSecretRef {
        SourceSecretRef { namespace: "platform".into(), name: "corp".into() }
    }

    #[test]
    fn ready_reason_names_the_first_problem() {
        let reason = |o: &PassReport| conditions_for(o, "corp", &source_ref())[0].reason;
        assert_eq!(reason(&outcome()), "Synced");
        let conflicted = PassReport { conflicts: vec!["a".into()], ..outcome() };
        assert_eq!(reason(&conflicted), "Conflict");
        let failed = PassReport { failures: vec!["create a/corp: 403 Forbidden".into()], ..conflicted.clone() };
        assert_eq!(reason(&failed), "SyncFailed");
        let missing = PassReport { source_problem: Some(("SourceNotFound", "gone".into())), ..failed.clone() };
        assert_eq!(reason(&missing), "SourceNotReady");
        assert_eq!(conditions_for(&missing, "corp", &source_ref())[1].reason, "SourceNotFound");
        let invalid = PassReport { invalid_selector: Some("bad operator".into()), ..missing };
        assert_eq!(reason(&invalid), "InvalidSelector");
    }

    #[test]
    fn conflict_message_names_at_most_five_namespaces() {
        let many = PassReport { conflicts: (1..=7).map(|i| format!("ns{i}")).collect(), ..outcome() };
        let [_, _, c] = conditions_for(&many, "corp", &source_ref());
        assert_eq!((c.type_, c.status, c.reason), (CONFLICT, true, "SecretNotManaged"));
        assert!(c.message.contains("in 7 namespace(s): ns1, ns2, ns3, ns4, ns5 and 2 more"), "{}", c.message);
        assert!(!c.message.contains("ns6"));
    }

    #[test]
    fn transition_time_is_kept_while_the_status_holds() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let t1 = Timestamp::from_second(1_700_000_600).unwrap();
        let specs = conditions_for(&outcome(), "corp", &source_ref());
        let first = status_for(None, Some(1), &specs, &outcome(), t0);
        assert!(
            first.conditions.iter().all(|c| c.last_transition_time == Time(t0) && c.observed_generation == Some(1))
        );
        assert_eq!(status_for(Some(&first), Some(1), &specs, &outcome(), t1), first, "nothing changed: same status");

        let fewer = PassReport { selected: 4, ..outcome() };
        let specs2 = conditions_for(&fewer, "corp", &source_ref());
        let second = status_for(Some(&first), Some(2), &specs2, &fewer, t1);
        let ready = &second.conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.last_transition_time.clone()),
            ("True", Time(t0)),
            "message changed only"
        );
        assert_eq!(ready.observed_generation, Some(2));

        let missing = PassReport { source_problem: Some(("SourceNotFound", "gone".into())), ..outcome() };
        let third = status_for(Some(&second), Some(2), &conditions_for(&missing, "corp", &source_ref()), &missing, t1);
        assert_eq!(third.conditions[1].status, "False");
        assert_eq!(third.conditions[1].last_transition_time, Time(t1), "status flipped: new transition time");
        assert_eq!(third.conditions[2].last_transition_time, Time(t0), "Conflict stayed False");

        let subsecond = Timestamp::from_second(1_700_000_000).unwrap() + Duration::from_millis(750);
        assert_eq!(
            status_for(None, None, &specs, &outcome(), subsecond).conditions[0].last_transition_time,
            Time(t0),
            "the API server keeps seconds: so do we, or every pass would differ"
        );
    }

    #[test]
    fn a_restored_copy_is_a_warning_naming_its_namespaces() {
        let restored = PassReport { restored: (1..=6).map(|i| format!("t{i}")).collect(), ..outcome() };
        let events = events_for(None, &conditions_for(&restored, "corp", &source_ref()), &restored);
        assert_eq!(
            events,
            vec![EventSpec {
                warning: true,
                reason: "CopyModified".into(),
                note: "the copy in 6 namespace(s) had been changed since it was written and was restored: t1, t2, \
                       t3, t4, t5 and 1 more"
                    .into(),
            }]
        );
    }

    #[test]
    fn warnings_on_a_new_problem_only_and_a_note_when_copies_change() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let missing = PassReport {
            source_problem: Some(("SourceNotFound", "source Secret platform/corp does not exist".into())),
            ..outcome()
        };
        let specs = conditions_for(&missing, "corp", &source_ref());
        let events = events_for(None, &specs, &missing);
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].warning, events[0].reason.as_str()), (true, "SourceNotFound"));
        let status = status_for(None, None, &specs, &missing, t0);
        assert!(events_for(Some(&status), &specs, &missing).is_empty(), "a standing problem is not repeated");

        let conflicted = PassReport { conflicts: vec!["a".into()], created: 1, ..outcome() };
        let specs = conditions_for(&conflicted, "corp", &source_ref());
        let events = events_for(Some(&status), &specs, &conflicted);
        let reasons: Vec<_> = events.iter().map(|e| (e.warning, e.reason.as_str())).collect();
        assert_eq!(reasons, vec![(true, "Conflict"), (false, "Synced")]);
        assert!(events[0].note.contains("in 1 namespace(s): a"));
        assert!(events_for(None, &conditions_for(&outcome(), "corp", &source_ref()), &outcome()).is_empty());
    }
}
