//! Status rules: recipient statuses and their rank, status events, the timestamps each event implies, and how events merge into a recipient row.
//!
//! The merge is a join in a semilattice (status: highest rank; each timestamp: earliest),
//! so applying any multiset of events in any order, any number of times, gives one row.

use std::cmp::Ordering;
use std::fmt;

/// A point in time as PostgreSQL stores `timestamptz`: microseconds since 2000-01-01 00:00 UTC.
pub type PgTimestamp = i64;

/// A recipient's status as stored in `campaign_recipients.status`, declared in rank order:
/// a status only ever moves to a later variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Pending,
    Sent,
    Failed,
    Delivered,
    Read,
}

impl Status {
    /// Every storable status, in rank order.
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Sent,
        Status::Failed,
        Status::Delivered,
        Status::Read,
    ];

    /// The accepted column values, as listed in error messages.
    pub const ACCEPTED: &'static str = "pending, sent, delivered, read, failed";

    pub fn parse(text: &[u8]) -> Option<Status> {
        match text {
            b"pending" => Some(Status::Pending),
            b"sent" => Some(Status::Sent),
            b"failed" => Some(Status::Failed),
            b"delivered" => Some(Status::Delivered),
            b"read" => Some(Status::Read),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sent => "sent",
            Status::Failed => "failed",
            Status::Delivered => "delivered",
            Status::Read => "read",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status event as Meta reports it. `Played` (first play of a voice message) ranks as `Read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    Sent,
    Failed,
    Delivered,
    Read,
    Played,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::Sent,
        EventKind::Failed,
        EventKind::Delivered,
        EventKind::Read,
        EventKind::Played,
    ];

    /// The accepted event names, as listed in error messages.
    pub const ACCEPTED: &'static str = "sent, delivered, read, played, failed";

    pub fn parse(text: &str) -> Option<EventKind> {
        match text {
            "sent" => Some(EventKind::Sent),
            "failed" => Some(EventKind::Failed),
            "delivered" => Some(EventKind::Delivered),
            "read" => Some(EventKind::Read),
            "played" => Some(EventKind::Played),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Sent => "sent",
            EventKind::Failed => "failed",
            EventKind::Delivered => "delivered",
            EventKind::Read => "read",
            EventKind::Played => "played",
        }
    }

    /// The status a recipient reaches with this event.
    pub fn status(self) -> Status {
        match self {
            EventKind::Sent => Status::Sent,
            EventKind::Failed => Status::Failed,
            EventKind::Delivered => Status::Delivered,
            EventKind::Read | EventKind::Played => Status::Read,
        }
    }

    /// Which timestamps this event proves: a read message was also delivered and sent.
    fn implies(self) -> Implied {
        match self {
            EventKind::Sent => Implied {
                sent: true,
                delivered: false,
                read: false,
                failed: false,
            },
            EventKind::Delivered => Implied {
                sent: true,
                delivered: true,
                read: false,
                failed: false,
            },
            EventKind::Read | EventKind::Played => Implied {
                sent: true,
                delivered: true,
                read: true,
                failed: false,
            },
            EventKind::Failed => Implied {
                sent: false,
                delivered: false,
                read: false,
                failed: true,
            },
        }
    }
}

struct Implied {
    sent: bool,
    delivered: bool,
    read: bool,
    failed: bool,
}

/// One status event for one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub occurred_at: PgTimestamp,
}

/// The timestamp columns of a recipient row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timestamps {
    pub sent_at: Option<PgTimestamp>,
    pub delivered_at: Option<PgTimestamp>,
    pub read_at: Option<PgTimestamp>,
    pub failed_at: Option<PgTimestamp>,
}

/// The part of a recipient row that status events change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowState {
    pub status: Status,
    pub times: Timestamps,
}

/// What applying one event did to a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The status moved up, or a timestamp was filled or made earlier.
    Applied,
    /// Same status as the row's, nothing new.
    Duplicate,
    /// Behind the row's status, nothing new.
    Stale,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::Stale => "stale",
        }
    }
}

fn earliest(current: Option<PgTimestamp>, candidate: PgTimestamp) -> Option<PgTimestamp> {
    Some(current.map_or(candidate, |t| t.min(candidate)))
}

impl RowState {
    pub fn new(status: Status) -> RowState {
        RowState {
            status,
            times: Timestamps::default(),
        }
    }

    /// The row after `event`: the higher-ranked status, and every implied timestamp at its earliest.
    pub fn with_event(&self, event: &Event) -> RowState {
        let implied = event.kind.implies();
        let mut times = self.times;
        if implied.sent {
            times.sent_at = earliest(times.sent_at, event.occurred_at);
        }
        if implied.delivered {
            times.delivered_at = earliest(times.delivered_at, event.occurred_at);
        }
        if implied.read {
            times.read_at = earliest(times.read_at, event.occurred_at);
        }
        if implied.failed {
            times.failed_at = earliest(times.failed_at, event.occurred_at);
        }
        RowState {
            status: self.status.max(event.kind.status()),
            times,
        }
    }

    /// The row that has seen everything both rows have: for several rows sharing one message id.
    pub fn join(&self, other: &RowState) -> RowState {
        let earliest_of = |a: Option<PgTimestamp>, b: Option<PgTimestamp>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        RowState {
            status: self.status.max(other.status),
            times: Timestamps {
                sent_at: earliest_of(self.times.sent_at, other.times.sent_at),
                delivered_at: earliest_of(self.times.delivered_at, other.times.delivered_at),
                read_at: earliest_of(self.times.read_at, other.times.read_at),
                failed_at: earliest_of(self.times.failed_at, other.times.failed_at),
            },
        }
    }

    /// Applies `event` and says what it did.
    pub fn apply(&self, event: &Event) -> (RowState, Outcome) {
        let next = self.with_event(event);
        let outcome = if next != *self {
            Outcome::Applied
        } else {
            match event.kind.status().cmp(&self.status) {
                Ordering::Equal => Outcome::Duplicate,
                // A higher-ranked event always changes the row, so only lower ones reach here.
                Ordering::Less | Ordering::Greater => Outcome::Stale,
            }
        };
        (next, outcome)
    }

    /// Applies events in the order given, returning the final row and each event's outcome.
    pub fn apply_all<'a>(
        &self,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> (RowState, Vec<Outcome>) {
        let mut row = *self;
        let outcomes = events
            .into_iter()
            .map(|event| {
                let (next, outcome) = row.apply(event);
                row = next;
                outcome
            })
            .collect();
        (row, outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(kind: EventKind, occurred_at: PgTimestamp) -> Event {
        Event { kind, occurred_at }
    }

    #[test]
    fn rank_order_puts_failed_between_sent_and_delivered() {
        assert!(Status::Pending < Status::Sent);
        assert!(Status::Sent < Status::Failed);
        assert!(Status::Failed < Status::Delivered);
        assert!(Status::Delivered < Status::Read);
        assert_eq!(EventKind::Played.status(), Status::Read);
    }

    #[test]
    fn parse_round_trips_and_rejects_unknown_text() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str().as_bytes()), Some(status));
        }
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Status::parse(b"played"), None);
        assert_eq!(Status::parse(b"Sent"), None);
        assert_eq!(EventKind::parse("pending"), None);
        assert_eq!(EventKind::parse("deleted"), None);
    }

    #[test]
    fn read_first_fills_sent_delivered_and_read() {
        let row = RowState::new(Status::Pending).with_event(&event(EventKind::Read, 300));
        assert_eq!(row.status, Status::Read);
        assert_eq!(row.times.sent_at, Some(300));
        assert_eq!(row.times.delivered_at, Some(300));
        assert_eq!(row.times.read_at, Some(300));
        assert_eq!(row.times.failed_at, None);
    }

    #[test]
    fn later_delivered_with_earlier_time_moves_times_back_but_not_status() {
        let read = RowState::new(Status::Pending).with_event(&event(EventKind::Read, 300));
        let (row, outcome) = read.apply(&event(EventKind::Delivered, 200));
        assert_eq!(outcome, Outcome::Applied);
        assert_eq!(row.status, Status::Read);
        assert_eq!(row.times.sent_at, Some(200));
        assert_eq!(row.times.delivered_at, Some(200));
        assert_eq!(row.times.read_at, Some(300));
    }

    #[test]
    fn failed_is_recorded_but_outranked_by_delivery() {
        let delivered = RowState::new(Status::Sent).with_event(&event(EventKind::Delivered, 100));
        let (row, outcome) = delivered.apply(&event(EventKind::Failed, 150));
        assert_eq!(outcome, Outcome::Applied);
        assert_eq!(row.status, Status::Delivered);
        assert_eq!(row.times.failed_at, Some(150));

        let failed = RowState::new(Status::Sent).with_event(&event(EventKind::Failed, 150));
        assert_eq!(failed.status, Status::Failed);
        assert_eq!(
            failed.with_event(&event(EventKind::Delivered, 160)).status,
            Status::Delivered
        );
    }

    #[test]
    fn outcomes_distinguish_duplicate_from_stale() {
        let row = RowState::new(Status::Pending).with_event(&event(EventKind::Delivered, 100));
        assert_eq!(
            row.apply(&event(EventKind::Delivered, 100)).1,
            Outcome::Duplicate
        );
        assert_eq!(
            row.apply(&event(EventKind::Delivered, 120)).1,
            Outcome::Duplicate
        );
        assert_eq!(row.apply(&event(EventKind::Sent, 120)).1, Outcome::Stale);
        assert_eq!(row.apply(&event(EventKind::Sent, 50)).1, Outcome::Applied);
        assert_eq!(row.apply(&event(EventKind::Read, 130)).1, Outcome::Applied);
        let read = row.with_event(&event(EventKind::Read, 130));
        assert_eq!(
            read.apply(&event(EventKind::Played, 140)).1,
            Outcome::Duplicate
        );
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        (prop::sample::select(EventKind::ALL.to_vec()), 0i64..1_000)
            .prop_map(|(kind, occurred_at)| Event { kind, occurred_at })
    }

    fn arb_start() -> impl Strategy<Value = RowState> {
        prop::sample::select(Status::ALL.to_vec()).prop_map(RowState::new)
    }

    proptest! {
        #[test]
        fn joining_rows_equals_applying_all_their_events_to_one(
            events in prop::collection::vec(arb_event(), 0..12),
            split in 0usize..12,
        ) {
            let split = split.min(events.len());
            let start = RowState::new(Status::Pending);
            let (left, _) = start.apply_all(&events[..split]);
            let (right, _) = start.apply_all(&events[split..]);
            let (whole, _) = start.apply_all(&events);
            prop_assert_eq!(left.join(&right), whole);
        }
    }

    proptest! {
        #[test]
        fn any_order_and_any_repetition_gives_the_same_row(
            start in arb_start(),
            events in prop::collection::vec(arb_event(), 0..12),
            repeats in prop::collection::vec(0usize..3, 12),
            seed in any::<u64>(),
        ) {
            let (expected, _) = start.apply_all(&events);

            let mut shuffled: Vec<Event> = events
                .iter()
                .zip(repeats.iter())
                .flat_map(|(event, extra)| std::iter::repeat_n(*event, 1 + extra))
                .collect();
            let mut state = seed;
            for i in (1..shuffled.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (state >> 33) as usize % (i + 1));
            }
            let (actual, _) = start.apply_all(&shuffled);
            prop_assert_eq!(actual, expected);
        }

        #[test]
        fn status_never_moves_down_and_times_never_move_later(
            start in arb_start(),
            events in prop::collection::vec(arb_event(), 1..12),
        ) {
            let mut row = start;
            for event in &events {
                let (next, outcome) = row.apply(event);
                prop_assert!(next.status >= row.status);
                for (before, after) in [
                    (row.times.sent_at, next.times.sent_at),
                    (row.times.delivered_at, next.times.delivered_at),
                    (row.times.read_at, next.times.read_at),
                    (row.times.failed_at, next.times.failed_at),
                ] {
                    if let Some(before) = before {
                        prop_assert!(after.is_some_and(|after| after <= before));
                    }
                }
                prop_assert_eq!(outcome == Outcome::Applied, next != row);
                row = next;
            }
        }
    }
}
