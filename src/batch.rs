//! The status-event batch plan: the locked rows and the events in; each event's outcome, the events to park and the rows to write out.
//!
//! Pure: the database side reads and locks the rows, then carries out the plan.

use crate::status::{Event, Outcome, RowState};
use std::collections::{BTreeMap, BTreeSet};

/// One event for one message id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub message_id: String,
    pub event: Event,
}

/// A recipient row as the locking read found it; `address` says where to write it back.
#[derive(Clone, Debug)]
pub struct LockedRow<A> {
    pub message_id: String,
    pub address: A,
    pub state: RowState,
}

/// What became of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    /// It changed its row: the status moved up, or a timestamp was filled or made earlier.
    Applied,
    /// Its row already had its status and times.
    Duplicate,
    /// Its row had moved past it; nothing to change.
    Stale,
    /// No recipient has the id yet; the event waits in campaign_counters.parked_events.
    Parked,
    /// Its recipient row was locked by another transaction: rather than wait (and risk a
    /// deadlock with the application's own writes), the event is stored with the parked events
    /// and applied by the next call that finds the row free, or by apply_parked_events().
    Carried,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Applied => "applied",
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::Stale => "stale",
            EventOutcome::Parked => "parked",
            EventOutcome::Carried => "carried",
        }
    }
}

impl From<Outcome> for EventOutcome {
    fn from(outcome: Outcome) -> EventOutcome {
        match outcome {
            Outcome::Applied => EventOutcome::Applied,
            Outcome::Duplicate => EventOutcome::Duplicate,
            Outcome::Stale => EventOutcome::Stale,
        }
    }
}

/// What to do with a batch.
#[derive(Debug)]
pub struct Plan<'a, A> {
    /// One per event, in the order of the events.
    pub outcomes: Vec<EventOutcome>,
    /// Events for ids no row has or whose rows are busy, sorted and without repeats: concurrent
    /// batches that park the same ids insert them in one order.
    pub to_park: Vec<&'a Incoming>,
    /// Rows whose stored state differs from their id's merged state, with that state.
    pub writes: Vec<(&'a A, RowState)>,
}

/// Plans a batch: `absorbed` (parked events taken for ids that have rows now) are merged first,
/// then `events` in order, each getting its outcome. Rows sharing a message id all end with the
/// merge of every row and every event of that id. `busy` holds ids whose rows exist but were
/// locked elsewhere: their events are carried over.
pub fn plan<'a, A>(
    rows: &'a [LockedRow<A>],
    absorbed: &[Incoming],
    events: &'a [Incoming],
    busy: &BTreeSet<&str>,
) -> Plan<'a, A> {
    let mut merged: BTreeMap<&str, RowState> = BTreeMap::new();
    for row in rows {
        merged
            .entry(row.message_id.as_str())
            .and_modify(|seen| *seen = seen.join(&row.state))
            .or_insert(row.state);
    }
    for incoming in absorbed {
        if let Some(state) = merged.get_mut(incoming.message_id.as_str()) {
            *state = state.with_event(&incoming.event);
        }
    }
    let outcomes = events
        .iter()
        .map(
            |incoming| match merged.get_mut(incoming.message_id.as_str()) {
                Some(state) => {
                    let (next, outcome) = state.apply(&incoming.event);
                    *state = next;
                    outcome.into()
                }
                None if busy.contains(incoming.message_id.as_str()) => EventOutcome::Carried,
                None => EventOutcome::Parked,
            },
        )
        .collect::<Vec<_>>();
    let mut to_park: Vec<&Incoming> = events
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| matches!(outcome, EventOutcome::Parked | EventOutcome::Carried))
        .map(|(incoming, _)| incoming)
        .collect();
    let park_order = |incoming: &&Incoming| {
        (
            incoming.message_id.clone(),
            incoming.event.kind.as_str(),
            incoming.event.occurred_at,
        )
    };
    to_park.sort_by_key(park_order);
    to_park.dedup();
    let writes = rows
        .iter()
        .filter_map(|row| {
            let target = merged[row.message_id.as_str()];
            (target != row.state).then_some((&row.address, target))
        })
        .collect();
    Plan {
        outcomes,
        to_park,
        writes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{EventKind, Status, Timestamps};
    use proptest::prelude::*;

    fn arb_event() -> impl Strategy<Value = Event> {
        (prop::sample::select(EventKind::ALL.to_vec()), 0i64..50).prop_map(|(kind, at)| Event {
            kind,
            occurred_at: at,
        })
    }

    fn arb_incoming() -> impl Strategy<Value = Incoming> {
        (0u8..6, arb_event()).prop_map(|(id, event)| Incoming {
            message_id: format!("m{id}"),
            event,
        })
    }

    fn arb_row() -> impl Strategy<Value = LockedRow<usize>> {
        (
            0u8..4,
            prop::sample::select(Status::ALL.to_vec()),
            prop::option::of(0i64..50),
        )
            .prop_map(|(id, status, sent_at)| LockedRow {
                message_id: format!("m{id}"),
                address: 0,
                state: RowState {
                    status,
                    times: Timestamps {
                        sent_at,
                        ..Timestamps::default()
                    },
                },
            })
    }

    fn numbered(rows: Vec<LockedRow<usize>>) -> Vec<LockedRow<usize>> {
        rows.into_iter()
            .enumerate()
            .map(|(address, row)| LockedRow { address, ..row })
            .collect()
    }

    proptest! {
        #[test]
        fn every_event_gets_one_outcome_and_parked_or_carried_ids_are_those_without_a_free_row(
            rows in prop::collection::vec(arb_row(), 0..6),
            events in prop::collection::vec(arb_incoming(), 0..20),
        ) {
            let rows = numbered(rows);
            // m4 and m5 have rows, but another transaction holds them.
            let busy: BTreeSet<&str> = ["m4", "m5"].into();
            let plan = plan(&rows, &[], &events, &busy);
            prop_assert_eq!(plan.outcomes.len(), events.len());
            let known: BTreeSet<&str> = rows.iter().map(|row| row.message_id.as_str()).collect();
            for (incoming, outcome) in events.iter().zip(&plan.outcomes) {
                let id = incoming.message_id.as_str();
                prop_assert_eq!(*outcome == EventOutcome::Carried, !known.contains(id) && busy.contains(id));
                prop_assert_eq!(*outcome == EventOutcome::Parked, !known.contains(id) && !busy.contains(id));
            }
            let parked_ids: BTreeSet<&str> = plan.to_park.iter().map(|i| i.message_id.as_str()).collect();
            let unknown_ids: BTreeSet<&str> = events.iter().map(|i| i.message_id.as_str())
                .filter(|id| !known.contains(id)).collect();
            prop_assert_eq!(parked_ids, unknown_ids);
            prop_assert!(plan.to_park.windows(2).all(|pair| pair[0] != pair[1]));
        }

        #[test]
        fn only_rows_that_change_are_written_and_rows_sharing_an_id_all_end_merged(
            rows in prop::collection::vec(arb_row(), 0..6),
            absorbed in prop::collection::vec(arb_incoming(), 0..4),
            events in prop::collection::vec(arb_incoming(), 0..12),
        ) {
            let rows = numbered(rows);
            let plan = plan(&rows, &absorbed, &events, &BTreeSet::new());
            let mut final_state: Vec<RowState> = rows.iter().map(|row| row.state).collect();
            for (address, state) in &plan.writes {
                prop_assert_ne!(rows[**address].state, *state);
                final_state[**address] = *state;
            }
            for (i, row) in rows.iter().enumerate() {
                // The merge of every row and every event of the id, in any order.
                let mut expected = rows.iter().filter(|other| other.message_id == row.message_id)
                    .fold(row.state, |state, other| state.join(&other.state));
                for incoming in absorbed.iter().chain(&events).filter(|e| e.message_id == row.message_id) {
                    expected = expected.with_event(&incoming.event);
                }
                prop_assert_eq!(final_state[i], expected);
            }
        }

        #[test]
        fn the_plan_does_not_depend_on_the_order_of_events(
            rows in prop::collection::vec(arb_row(), 0..6),
            events in prop::collection::vec(arb_incoming(), 0..12),
        ) {
            let rows = numbered(rows);
            let mut reversed = events.clone();
            reversed.reverse();
            let forward = plan(&rows, &[], &events, &BTreeSet::new());
            let backward = plan(&rows, &[], &reversed, &BTreeSet::new());
            prop_assert_eq!(&forward.writes, &backward.writes);
            prop_assert_eq!(&forward.to_park, &backward.to_park);
        }
    }
}
