//! Stored counters against a recount: the counters that differ (NULL included) and the campaigns whose recipients have no campaign row.
//!
//! Pure: recalc writes the repairs, verify reports the drifts.

use crate::counters::{CampaignDeltas, Counters, COUNTER_COLUMNS};

/// The label verify reports for recipients whose campaign has no row.
pub const MISSING_ROW: &str = "(no campaign row)";

/// One counter whose stored value differs from the recount, or (`counter` = [`MISSING_ROW`],
/// `stored` NULL, `actual` = the number of recipients) a campaign id with recipients but no row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift<K> {
    pub campaign: K,
    pub counter: &'static str,
    pub stored: Option<i64>,
    pub actual: i64,
}

/// The result of comparing stored counters with a recount.
#[derive(Debug, PartialEq, Eq)]
pub struct Comparison<K> {
    /// Campaign rows whose counters differ, with the values they should hold, in key order.
    pub repairs: Vec<(K, Counters)>,
    pub drifts: Vec<Drift<K>>,
}

/// Compares `stored` (each campaign row's five counters, NULL as None) with `actual`.
pub fn compare<K: Ord + Clone>(
    stored: &[(K, [Option<i64>; 5])],
    actual: &CampaignDeltas<K>,
) -> Comparison<K> {
    let mut repairs = Vec::new();
    let mut drifts = Vec::new();
    let mut with_row = std::collections::BTreeSet::new();
    for (campaign, values) in stored {
        with_row.insert(campaign);
        let should = actual.get(campaign);
        let differing: Vec<usize> = (0..5).filter(|&i| values[i] != Some(should.0[i])).collect();
        if differing.is_empty() {
            continue;
        }
        repairs.push((campaign.clone(), should));
        drifts.extend(differing.into_iter().map(|i| Drift {
            campaign: campaign.clone(),
            counter: COUNTER_COLUMNS[i],
            stored: values[i],
            actual: should.0[i],
        }));
    }
    for (campaign, counted) in actual.nonzero() {
        if !with_row.contains(campaign) {
            let [pending, sent, _, _, failed] = counted.0;
            drifts.push(Drift {
                campaign: campaign.clone(),
                counter: MISSING_ROW,
                stored: None,
                actual: pending + sent + failed,
            });
        }
    }
    repairs.sort_by(|a, b| a.0.cmp(&b.0));
    drifts.sort_by(|a, b| a.campaign.cmp(&b.campaign));
    Comparison { repairs, drifts }
}

/// Stored counters with each campaign's pending changes added: what the counters will hold once
/// folded. A NULL counter stays NULL (it is drift either way); pending changes of campaigns with
/// no row are left out (such a row starts from a recount when it appears).
pub fn with_pending<K: Ord>(
    stored: Vec<(K, [Option<i64>; 5])>,
    pending: &[(K, [i64; 5])],
) -> Vec<(K, [Option<i64>; 5])> {
    let mut by_campaign: std::collections::BTreeMap<&K, [i64; 5]> = Default::default();
    for (campaign, change) in pending {
        let sum = by_campaign.entry(campaign).or_default();
        for (total, delta) in sum.iter_mut().zip(change) {
            *total += delta;
        }
    }
    stored
        .into_iter()
        .map(|(campaign, mut counters)| {
            if let Some(change) = by_campaign.get(&campaign) {
                for (counter, delta) in counters.iter_mut().zip(change) {
                    *counter = counter.map(|value| value + delta);
                }
            }
            (campaign, counters)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::recount;
    use crate::status::Status;
    use proptest::prelude::*;

    #[test]
    fn null_counters_are_drift_and_missing_rows_are_reported() {
        let actual = recount([(1u8, Status::Read, 2), (2, Status::Sent, 1)]);
        let stored = [(1u8, [Some(0), None, Some(2), Some(2), Some(0)])];
        let comparison = compare(&stored, &actual);
        assert_eq!(comparison.repairs, [(1, Counters([0, 2, 2, 2, 0]))]);
        assert_eq!(
            comparison.drifts,
            [
                Drift {
                    campaign: 1,
                    counter: "messages_sent",
                    stored: None,
                    actual: 2
                },
                Drift {
                    campaign: 2,
                    counter: MISSING_ROW,
                    stored: None,
                    actual: 1
                },
            ]
        );
    }

    proptest! {
        /// Applying the repairs leaves nothing to report but missing rows, and only rows that
        /// differ are repaired.
        #[test]
        fn repairs_make_stored_equal_actual(
            groups in prop::collection::vec((0u8..5, prop::sample::select(Status::ALL.to_vec()), 1i64..4), 0..15),
            stored in prop::collection::btree_map(0u8..5, prop::array::uniform5(prop::option::of(0i64..4)), 0..5),
        ) {
            let actual = recount(groups);
            let stored: Vec<(u8, [Option<i64>; 5])> = stored.into_iter().collect();
            let comparison = compare(&stored, &actual);
            let mut repaired = stored.clone();
            for (campaign, values) in &comparison.repairs {
                let row = repaired.iter_mut().find(|(c, _)| c == campaign).unwrap();
                prop_assert_ne!(row.1, values.0.map(Some));
                row.1 = values.0.map(Some);
            }
            let again = compare(&repaired, &actual);
            prop_assert!(again.repairs.is_empty());
            prop_assert!(again.drifts.iter().all(|drift| drift.counter == MISSING_ROW));
        }
    }

    #[test]
    fn pending_changes_add_to_their_campaign_only_and_null_stays_null() {
        let stored = vec![
            (1, [Some(5), Some(0), Some(0), Some(0), Some(0)]),
            (2, [None, Some(3), Some(0), Some(0), Some(0)]),
            (3, [Some(1), Some(1), Some(1), Some(1), Some(1)]),
        ];
        let pending = [
            (1, [-1, 1, 0, 0, 0]),
            (2, [1, 1, 0, 0, 0]),
            (1, [-1, 0, 1, 0, 0]),
            (4, [9, 9, 9, 9, 9]),
        ];
        assert_eq!(
            with_pending(stored, &pending),
            vec![
                (1, [Some(3), Some(1), Some(1), Some(0), Some(0)]),
                (2, [None, Some(4), Some(0), Some(0), Some(0)]),
                (3, [Some(1), Some(1), Some(1), Some(1), Some(1)]),
            ]
        );
    }
}
