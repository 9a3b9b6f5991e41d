//! Recalc and verify: count every campaign's recipients in one pass with the trigger's rules, then repair or report what differs.

use crate::counters::{recount as recount_groups, CampaignKey, Counters, COUNTER_COLUMNS};
use crate::session::{pinned, quote_ident, raise, require_owner, warning};
use crate::shape::{chosen_attachment, Attachment, Lookup};
use crate::status::Status;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{pg_sys, PgOid, PgSqlErrorCode};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Lock the campaign rows, then write the counters that differ.
    Repair,
    /// Write nothing and lock nothing; report what differs.
    Report,
}

/// One counter whose stored value differs from the recount.
pub struct Drift {
    pub campaign: CampaignKey,
    pub counter: &'static str,
    pub stored: i64,
    pub actual: i64,
}

/// Recounts one campaign (`campaign_id` as text) or all of them. Returns the campaigns whose
/// counters differed and every differing counter.
///
/// The campaign rows are locked first, in id order, the order the trigger locks them in: a
/// writer that already changed a counter makes recalc wait for its commit and is then counted;
/// a writer that has not yet reached its counter write adds its change after recalc's value.
pub fn recount(
    attachment: &Attachment,
    campaign_id: Option<&str>,
    mode: Mode,
) -> (i64, Vec<Drift>) {
    let counters_list = COUNTER_COLUMNS
        .iter()
        .map(|name| format!("{}::int8", quote_ident(name)))
        .collect::<Vec<_>>()
        .join(", ");
    let campaign_filter = |column: &str| match campaign_id {
        Some(_) => format!("WHERE {column} = CAST($1 AS {})", attachment.id_type_name),
        None => String::new(),
    };
    let arguments: Vec<DatumWithOid> = campaign_id.map(DatumWithOid::from).into_iter().collect();
    let lock = if mode == Mode::Repair {
        "FOR NO KEY UPDATE"
    } else {
        ""
    };
    let kind = attachment.key_kind;

    Spi::connect_mut(|client| {
        // `update` rather than `select`: each query then takes a fresh snapshot, so the count
        // sees every writer that committed while recalc waited for its campaign row locks.
        let stored_query = format!(
            "SELECT id, {counters_list} FROM {} {} ORDER BY {} {lock}",
            attachment.campaigns_name,
            campaign_filter("id"),
            attachment.id_order("id"),
        );
        let mut stored: Vec<(CampaignKey, Counters)> = Vec::new();
        for row in client
            .update(stored_query.as_str(), None, &arguments)
            .expect("reading campaigns")
        {
            let Some(id) = kind.read(&row, 1) else {
                continue;
            };
            let mut values = [0i64; 5];
            for (i, value) in values.iter_mut().enumerate() {
                *value = row.get::<i64>(i + 2).expect("counter column").unwrap_or(0);
            }
            stored.push((id, Counters(values)));
        }
        if let (Some(id), true) = (campaign_id, stored.is_empty()) {
            raise(
                PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
                format!(
                    "campaign {id} does not exist in {}",
                    attachment.campaigns_name
                ),
                None,
                None,
            );
        }

        let count_query = format!(
            "SELECT campaign_id, status::text, count(*) FROM {} {} GROUP BY 1, 2",
            attachment.recipients_name,
            campaign_filter("campaign_id"),
        );
        let mut uncounted = 0i64;
        let mut groups = Vec::new();
        for row in client
            .update(count_query.as_str(), None, &arguments)
            .expect("counting recipients")
        {
            let Some(id) = kind.read(&row, 1) else {
                continue;
            };
            let number = row.get::<i64>(3).expect("count column").unwrap_or(0);
            match row
                .get::<&str>(2)
                .expect("status column")
                .and_then(|s| Status::parse(s.as_bytes()))
            {
                Some(status) => groups.push((id, status, number)),
                None => uncounted += number,
            }
        }
        if uncounted > 0 {
            warning(
                format!(
                    "{uncounted} recipients of {} have a status that counts nowhere",
                    attachment.recipients_name
                ),
                Some(format!(
                    "Accepted statuses: {}. Fix those rows; they are left out of every counter.",
                    Status::ACCEPTED
                )),
            );
        }
        let actual = recount_groups(groups);

        let mut changed = 0i64;
        let mut drifts = Vec::new();
        let mut set_counters = None;
        for (campaign, stored_counters) in stored {
            let actual_counters = actual.get(&campaign);
            if actual_counters == stored_counters {
                continue;
            }
            changed += 1;
            match mode {
                Mode::Report => {
                    for (i, counter) in COUNTER_COLUMNS.iter().enumerate() {
                        if stored_counters.0[i] != actual_counters.0[i] {
                            drifts.push(Drift {
                                campaign: campaign.clone(),
                                counter,
                                stored: stored_counters.0[i],
                                actual: actual_counters.0[i],
                            });
                        }
                    }
                }
                Mode::Repair => {
                    let plan = set_counters.get_or_insert_with(|| {
                        let assignments = COUNTER_COLUMNS
                            .iter()
                            .enumerate()
                            .map(|(i, name)| format!("{} = ${}", quote_ident(name), i + 2))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let query = format!(
                            "UPDATE {} SET {assignments} WHERE id = $1",
                            attachment.campaigns_name
                        );
                        let mut types = vec![PgOid::from(kind.type_oid())];
                        types.extend([PgOid::from(pg_sys::INT8OID); 5]);
                        client
                            .prepare_mut(query.as_str(), &types)
                            .expect("preparing the counter repair")
                    });
                    let mut args = vec![kind.datum(&campaign)];
                    args.extend(
                        actual_counters
                            .0
                            .iter()
                            .map(|value| DatumWithOid::from(*value)),
                    );
                    client
                        .update(&*plan, None, &args)
                        .expect("repairing counters");
                }
            }
        }
        (changed, drifts)
    })
}

#[pg_extern(sql = false)]
fn recalc_campaign_counters(campaign_id: Option<&str>, campaigns: Option<pg_sys::Oid>) -> i64 {
    pinned(|| {
        let attachment = chosen_attachment(campaigns, Lookup::Campaigns);
        require_owner(attachment.campaigns, "recalculate its counters");
        recount(&attachment, campaign_id, Mode::Repair).0
    })
}

#[pg_extern(sql = false)]
fn verify_campaign_counters(
    campaign_id: Option<&str>,
    campaigns: Option<pg_sys::Oid>,
) -> TableIterator<
    'static,
    (
        name!(campaign_id, String),
        name!(counter, String),
        name!(stored, i64),
        name!(actual, i64),
    ),
> {
    let drifts = pinned(|| {
        let attachment = chosen_attachment(campaigns, Lookup::Campaigns);
        recount(&attachment, campaign_id, Mode::Report).1
    });
    TableIterator::new(drifts.into_iter().map(|drift| {
        (
            drift.campaign.to_string(),
            drift.counter.to_string(),
            drift.stored,
            drift.actual,
        )
    }))
}
