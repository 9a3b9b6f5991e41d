//! Counter deltas: the counter vector a status contributes to its campaign, and per-campaign sums of them.
//!
//! This is the one definition of the counter rules; the trigger, recalc and verify all count
//! through [`Counters::of`].

use crate::status::Status;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{AddAssign, Mul, SubAssign};

/// The five counter columns of the campaigns table, in the order of [`Counters`]' fields.
pub const COUNTER_COLUMNS: [&str; 5] = [
    "messages_pending",
    "messages_sent",
    "messages_delivered",
    "messages_read",
    "messages_failed",
];

/// Values of the five counters (or a change to them), in [`COUNTER_COLUMNS`] order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters(pub [i64; 5]);

impl Counters {
    /// What one recipient with `status` adds to its campaign:
    /// pending counts as pending; sent, delivered and read as sent; delivered and read as
    /// delivered; read as read; failed as failed.
    pub fn of(status: Status) -> Counters {
        match status {
            Status::Pending => Counters([1, 0, 0, 0, 0]),
            Status::Sent => Counters([0, 1, 0, 0, 0]),
            Status::Delivered => Counters([0, 1, 1, 0, 0]),
            Status::Read => Counters([0, 1, 1, 1, 0]),
            Status::Failed => Counters([0, 0, 0, 0, 1]),
        }
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 5]
    }
}

impl AddAssign for Counters {
    fn add_assign(&mut self, other: Counters) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }
}

impl SubAssign for Counters {
    fn sub_assign(&mut self, other: Counters) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine -= theirs;
        }
    }
}

impl Mul<i64> for Counters {
    type Output = Counters;
    fn mul(self, factor: i64) -> Counters {
        Counters(self.0.map(|value| value * factor))
    }
}

/// A campaign id of any of the accepted column types. Within one table all keys share a
/// variant, and their order is the order campaign rows are locked in: numeric for integers,
/// bytewise for uuids (as PostgreSQL's uuid ordering) and for text (as the "C" collation).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CampaignKey {
    Int(i64),
    Uuid([u8; 16]),
    Text(Box<[u8]>),
}

impl fmt::Display for CampaignKey {
    /// Formats the id as PostgreSQL's output function for the column type does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CampaignKey::Int(value) => write!(f, "{value}"),
            CampaignKey::Uuid(bytes) => {
                for (i, byte) in bytes.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            CampaignKey::Text(bytes) => f.write_str(&String::from_utf8_lossy(bytes)),
        }
    }
}

/// Per-campaign sums of counter changes, iterated in lock order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignDeltas<K: Ord = CampaignKey> {
    by_campaign: BTreeMap<K, Counters>,
}

impl<K: Ord> Default for CampaignDeltas<K> {
    fn default() -> Self {
        CampaignDeltas {
            by_campaign: BTreeMap::new(),
        }
    }
}

impl<K: Ord> CampaignDeltas<K> {
    pub fn add(&mut self, campaign: K, change: Counters) {
        *self.by_campaign.entry(campaign).or_default() += change;
    }

    /// A row that appears in (a new row) or leaves (an old row) a campaign.
    pub fn count_row(&mut self, campaign: K, status: Status, sign: i64) {
        self.add(campaign, Counters::of(status) * sign);
    }

    pub fn merge(&mut self, other: CampaignDeltas<K>) {
        for (campaign, change) in other.by_campaign {
            self.add(campaign, change);
        }
    }

    /// The campaigns whose counters change, in ascending key order (the lock order).
    pub fn nonzero(&self) -> impl Iterator<Item = (&K, &Counters)> {
        self.by_campaign
            .iter()
            .filter(|(_, change)| !change.is_zero())
    }

    pub fn is_empty(&self) -> bool {
        self.nonzero().next().is_none()
    }

    pub fn get(&self, campaign: &K) -> Counters {
        self.by_campaign.get(campaign).copied().unwrap_or_default()
    }
}

/// Counts a set of (campaign, status) groups from scratch: the recount that recalc and verify
/// compare stored counters with.
pub fn recount<K: Ord>(groups: impl IntoIterator<Item = (K, Status, i64)>) -> CampaignDeltas<K> {
    let mut totals = CampaignDeltas::default();
    for (campaign, status, recipients) in groups {
        totals.add(campaign, Counters::of(status) * recipients);
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn counter_rules_match_the_documented_table() {
        let column = |name: &str| COUNTER_COLUMNS.iter().position(|c| *c == name).unwrap();
        let counted_in = |status: Status| -> Vec<&str> {
            COUNTER_COLUMNS
                .iter()
                .filter(|name| Counters::of(status).0[column(name)] == 1)
                .copied()
                .collect()
        };
        assert_eq!(counted_in(Status::Pending), ["messages_pending"]);
        assert_eq!(counted_in(Status::Sent), ["messages_sent"]);
        assert_eq!(
            counted_in(Status::Delivered),
            ["messages_sent", "messages_delivered"]
        );
        assert_eq!(
            counted_in(Status::Read),
            ["messages_sent", "messages_delivered", "messages_read"]
        );
        assert_eq!(counted_in(Status::Failed), ["messages_failed"]);
    }

    #[test]
    fn zero_net_changes_are_skipped_and_order_is_by_key() {
        let mut deltas = CampaignDeltas::default();
        deltas.count_row(CampaignKey::Int(7), Status::Sent, 1);
        deltas.count_row(CampaignKey::Int(7), Status::Sent, -1);
        deltas.count_row(CampaignKey::Int(9), Status::Read, 1);
        deltas.count_row(CampaignKey::Int(3), Status::Pending, -1);
        let keys: Vec<_> = deltas.nonzero().map(|(key, _)| key.clone()).collect();
        assert_eq!(keys, [CampaignKey::Int(3), CampaignKey::Int(9)]);
        assert_eq!(deltas.get(&CampaignKey::Int(7)), Counters::default());
    }

    #[test]
    fn keys_print_like_postgres() {
        let uuid = CampaignKey::Uuid([
            0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4, 0xa7, 0x16, 0x44, 0x66, 0x55, 0x44,
            0x00, 0x00,
        ]);
        assert_eq!(uuid.to_string(), "550e8400-e29b-41d4-a716-446655440000");
        assert_eq!(CampaignKey::Int(-42).to_string(), "-42");
        assert_eq!(
            CampaignKey::Text(b"spring sale".to_vec().into()).to_string(),
            "spring sale"
        );
    }

    /// One write to the recipients table, as a statement would make it.
    #[derive(Clone, Debug)]
    enum Write {
        Insert {
            recipient: u8,
            campaign: u8,
            status: Status,
        },
        SetStatus {
            recipient: u8,
            status: Status,
        },
        Move {
            recipient: u8,
            campaign: u8,
        },
        Delete {
            recipient: u8,
        },
    }

    fn arb_status() -> impl Strategy<Value = Status> {
        prop::sample::select(Status::ALL.to_vec())
    }

    fn arb_write() -> impl Strategy<Value = Write> {
        prop_oneof![
            (any::<u8>(), 0u8..6, arb_status()).prop_map(|(recipient, campaign, status)| {
                Write::Insert {
                    recipient,
                    campaign,
                    status,
                }
            }),
            (any::<u8>(), arb_status())
                .prop_map(|(recipient, status)| Write::SetStatus { recipient, status }),
            (any::<u8>(), 0u8..6).prop_map(|(recipient, campaign)| Write::Move {
                recipient,
                campaign
            }),
            any::<u8>().prop_map(|recipient| Write::Delete { recipient }),
        ]
    }

    proptest! {
        /// Statements of random writes, each turned into old/new rows as transition tables hold
        /// them and applied as deltas, keep counters equal to a recount from scratch.
        #[test]
        fn incremental_deltas_equal_a_recount(
            statements in prop::collection::vec(prop::collection::vec(arb_write(), 1..20), 1..30),
        ) {
            let mut rows: HashMap<u8, (u8, Status)> = HashMap::new();
            let mut stored: HashMap<u8, Counters> = HashMap::new();
            for statement in statements {
                let mut deltas = CampaignDeltas::default();
                for write in statement {
                    let (old, new) = match write {
                        Write::Insert { recipient, campaign, status } => {
                            if rows.contains_key(&recipient) { continue; }
                            (None, Some((recipient, (campaign, status))))
                        }
                        Write::SetStatus { recipient, status } => match rows.get(&recipient) {
                            Some(&(campaign, old)) => (Some((campaign, old)), Some((recipient, (campaign, status)))),
                            None => continue,
                        },
                        Write::Move { recipient, campaign } => match rows.get(&recipient) {
                            Some(&(old_campaign, status)) => (Some((old_campaign, status)), Some((recipient, (campaign, status)))),
                            None => continue,
                        },
                        Write::Delete { recipient } => match rows.remove(&recipient) {
                            Some(old) => (Some(old), None),
                            None => continue,
                        },
                    };
                    if let Some((campaign, status)) = old {
                        deltas.count_row(campaign, status, -1);
                    }
                    if let Some((recipient, (campaign, status))) = new {
                        deltas.count_row(campaign, status, 1);
                        rows.insert(recipient, (campaign, status));
                    }
                }
                for (campaign, change) in deltas.nonzero() {
                    *stored.entry(*campaign).or_default() += *change;
                }
            }
            let expected = recount(rows.values().map(|&(campaign, status)| (campaign, status, 1)));
            for campaign in 0u8..6 {
                let counters = stored.get(&campaign).copied().unwrap_or_default();
                prop_assert_eq!(counters, expected.get(&campaign));
                let [pending, sent, delivered, read, failed] = counters.0;
                let recipients = rows.values().filter(|(c, _)| *c == campaign).count() as i64;
                prop_assert_eq!(pending + sent + failed, recipients);
                prop_assert!(sent >= delivered && delivered >= read && read >= 0);
            }
        }
    }
}
