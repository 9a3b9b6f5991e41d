//! Recalc and verify: count every campaign's recipients with the trigger's rules, then repair (recalc) or report (verify) what differs.

use crate::attachment::{chosen_attachment, counter_terms, Attachment, Lookup};
use crate::context::{as_role, pinned, quote_ident, require_owner, warning};
use crate::counters::{recount, CampaignKey, COUNTER_COLUMNS};
use crate::drift::{compare, with_pending, Drift};
use crate::error::{or_raise, Error, Result};
use crate::snapshot::{text_group, LatestSnapshot};
use crate::status::Status;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{pg_sys, PgOid, PgSqlErrorCode};

/// Who reads and writes: the caller (recalc, attach), or each table's owner (the trigger and the
/// DDL follower, which act for whoever wrote).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Acting {
    AsCaller,
    AsOwners,
}

fn counters_list() -> String {
    COUNTER_COLUMNS
        .iter()
        .map(|name| format!("{}::int8", quote_ident(name)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn campaign_filter(attachment: &Attachment, campaign_id: Option<&str>, column: &str) -> String {
    match campaign_id {
        Some(_) => format!("WHERE {column} = CAST($1 AS {})", attachment.id_type_name),
        None => String::new(),
    }
}

fn count_query(attachment: &Attachment, campaign_id: Option<&str>) -> String {
    format!(
        "SELECT {}, status::text, count(*) FROM {} {} GROUP BY 1, 2",
        attachment.key_expression("campaign_id"),
        attachment.recipients_name,
        campaign_filter(attachment, campaign_id, "campaign_id"),
    )
}

/// Adds one (campaign, status, count) group of a count query's row, or counts a status that
/// counts nowhere.
fn add_group(
    attachment: &Attachment,
    row: &pgrx::spi::SpiHeapTupleData<'_>,
    first: usize,
    groups: &mut Vec<(CampaignKey, Status, i64)>,
    uncounted: &mut i64,
) -> Result<()> {
    let Some(id) = attachment.key_family.read(row, first)? else {
        return Ok(());
    };
    let number = row.get::<i64>(first + 2)?.unwrap_or(0);
    match row
        .get::<&str>(first + 1)?
        .and_then(|status| Status::parse(status.as_bytes()))
    {
        Some(status) => groups.push((id, status, number)),
        None => *uncounted += number,
    }
    Ok(())
}

/// The recipients of a count row (as text) whose status counts nowhere; 0 for rows of a
/// countable status or without a campaign id.
fn counted_nowhere(attachment: &Attachment, row: &[Option<String>]) -> i64 {
    let has_id = row
        .first()
        .and_then(|id| id.as_deref())
        .and_then(|id| attachment.key_family.parse(id))
        .is_some();
    let counts = row
        .get(1)
        .and_then(|status| status.as_deref())
        .and_then(|status| Status::parse(status.as_bytes()))
        .is_some();
    match (has_id, counts) {
        (true, false) => row
            .get(2)
            .and_then(|number| number.as_deref()?.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

fn warn_uncounted(attachment: &Attachment, uncounted: i64) {
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
}

fn read_counters(row: &pgrx::spi::SpiHeapTupleData<'_>, first: usize) -> Result<[Option<i64>; 5]> {
    let mut values = [None; 5];
    for (i, value) in values.iter_mut().enumerate() {
        *value = row.get::<i64>(first + i)?;
    }
    Ok(values)
}

fn as_owner<R>(acting: Acting, owner: pg_sys::Oid, body: impl FnOnce() -> R) -> R {
    match acting {
        Acting::AsCaller => body(),
        Acting::AsOwners => as_role(owner, body),
    }
}

/// Recounts one campaign (`campaign_id` as text) or all of them and writes the counters that
/// differ. Returns how many campaigns changed.
///
/// The campaign rows are locked first, in id order, the order the trigger locks them in: a
/// writer that already changed a counter makes recalc wait for its commit and is then counted;
/// a writer that has not yet reached its counter write adds its change after recalc's value.
pub fn repair(attachment: &Attachment, campaign_id: Option<&str>, acting: Acting) -> Result<i64> {
    let arguments: Vec<DatumWithOid> = campaign_id.map(DatumWithOid::from).into_iter().collect();
    Spi::connect_mut(|client| {
        // `update` rather than `select`: the lock reads the newest row versions.
        let stored_query = format!(
            "SELECT {}, {} FROM {} {} ORDER BY {} FOR NO KEY UPDATE",
            attachment.key_expression("id"),
            counters_list(),
            attachment.campaigns_name,
            campaign_filter(attachment, campaign_id, "id"),
            attachment.id_order("id"),
        );
        let stored = as_owner(acting, attachment.campaigns_owner, || -> Result<_> {
            let mut stored = Vec::new();
            for row in client.update(stored_query.as_str(), None, &arguments)? {
                if let Some(id) = attachment.key_family.read(&row, 1)? {
                    stored.push((id, read_counters(&row, 2)?));
                }
            }
            Ok(stored)
        })?;
        if let (Some(id), true) = (campaign_id, stored.is_empty()) {
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
                format!(
                    "campaign {id} does not exist in {}",
                    attachment.campaigns_name
                ),
            ));
        }
        // One snapshot, taken after the locks, for the count and for the pending changes it
        // replaces: a deferred writer that commits meanwhile is in both or in neither.
        let snapshot = LatestSnapshot::take();
        let count = count_query(attachment, campaign_id);
        let rows = as_owner(acting, attachment.recipients_owner, || {
            snapshot.rows(&count, &arguments)
        })?;
        attachment.forget_pending_in(&snapshot, stored.iter().map(|(id, _)| id))?;
        drop(snapshot);
        let (mut groups, mut uncounted) = (Vec::new(), 0);
        for row in &rows {
            match text_group(attachment.key_family, row) {
                Some(group) => groups.push(group),
                None => uncounted += counted_nowhere(attachment, row),
            }
        }
        warn_uncounted(attachment, uncounted);
        let comparison = compare(&stored, &recount(groups));
        if !comparison.repairs.is_empty() {
            as_owner(acting, attachment.campaigns_owner, || {
                write_repairs(client, attachment, &comparison.repairs)
            })?;
        }
        Ok(comparison.repairs.len() as i64)
    })
}

fn write_repairs(
    client: &mut SpiClient<'_>,
    attachment: &Attachment,
    repairs: &[(CampaignKey, crate::counters::Counters)],
) -> Result<()> {
    let query = format!(
        "UPDATE {} SET {} WHERE id = $1",
        attachment.campaigns_name,
        counter_terms("{c} = {p}", ", ")
    );
    let mut types = vec![PgOid::from(attachment.key_family.type_oid())];
    types.extend([PgOid::from(pg_sys::INT8OID); 5]);
    let plan = client.prepare_mut(query.as_str(), &types)?;
    for (campaign, counters) in repairs {
        let mut args = vec![attachment.key_family.datum(campaign)];
        args.extend(counters.0.iter().map(|value| DatumWithOid::from(*value)));
        client.update(&plan, None, &args)?;
    }
    Ok(())
}

/// Reports every counter that differs from a recount, and every campaign id whose recipients
/// have no campaign row. Stored counters (plus pending changes) and the recount are read by one
/// query, so in one snapshot: writers and folds that run meanwhile never show as drift.
pub fn report(
    attachment: &Attachment,
    campaign_id: Option<&str>,
) -> Result<Vec<Drift<CampaignKey>>> {
    let arguments: Vec<DatumWithOid> = campaign_id.map(DatumWithOid::from).into_iter().collect();
    let pending = if attachment.schema_has_modes {
        let filter = match campaign_id {
            Some(_) => format!(
                "AND campaign_id = CAST(CAST($1 AS {}) AS text)",
                attachment.id_type_name
            ),
            None => String::new(),
        };
        format!(
            "UNION ALL
             SELECT 'pending', {}, NULL, NULL, {} FROM campaign_counters.pending_changes
              WHERE campaigns = {}::pg_catalog.oid::pg_catalog.regclass {filter} GROUP BY campaign_id",
            attachment.key_expression("campaign_id"),
            COUNTER_COLUMNS
                .iter()
                .map(|name| format!("sum({name})::int8"))
                .collect::<Vec<_>>()
                .join(", "),
            attachment.campaigns.to_u32(),
        )
    } else {
        String::new()
    };
    let query = format!(
        "SELECT 'stored', {}, NULL::text, NULL::int8, {} FROM {} {}
         UNION ALL
         SELECT 'recount', {}, status::text, count(*), NULL, NULL, NULL, NULL, NULL FROM {} {} GROUP BY 2, 3
         {pending}",
        attachment.key_expression("id"),
        counters_list(),
        attachment.campaigns_name,
        campaign_filter(attachment, campaign_id, "id"),
        attachment.key_expression("campaign_id"),
        attachment.recipients_name,
        campaign_filter(attachment, campaign_id, "campaign_id"),
    );
    let (stored, pending, groups, uncounted) = Spi::connect(|client| -> Result<_> {
        let (mut stored, mut pending, mut groups, mut uncounted) =
            (Vec::new(), Vec::new(), Vec::new(), 0);
        for row in client.select(query.as_str(), None, &arguments)? {
            let part = row.get::<&str>(1)?.unwrap_or_default();
            if part == "recount" {
                add_group(attachment, &row, 2, &mut groups, &mut uncounted)?;
            } else if let Some(id) = attachment.key_family.read(&row, 2)? {
                let counters = read_counters(&row, 5)?;
                match part {
                    "stored" => stored.push((id, counters)),
                    _ => pending.push((id, counters.map(|value| value.unwrap_or(0)))),
                }
            }
        }
        Ok((stored, pending, groups, uncounted))
    })?;
    warn_uncounted(attachment, uncounted);
    if let (Some(id), true, true) = (campaign_id, stored.is_empty(), groups.is_empty()) {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
            format!(
                "campaign {id} does not exist in {}",
                attachment.campaigns_name
            ),
        ));
    }
    Ok(compare(&with_pending(stored, &pending), &recount(groups)).drifts)
}

#[pg_extern(sql = false)]
fn recalc_campaign_counters(campaign_id: Option<&str>, campaigns: Option<pg_sys::Oid>) -> i64 {
    or_raise(pinned(|| {
        let attachment = chosen_attachment(campaigns, Lookup::Campaigns)?;
        require_owner(attachment.campaigns, "recalculate its counters")?;
        repair(&attachment, campaign_id, Acting::AsCaller)
    }))
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
        name!(stored, Option<i64>),
        name!(actual, i64),
    ),
> {
    let drifts = or_raise(pinned(|| {
        let attachment = chosen_attachment(campaigns, Lookup::Campaigns)?;
        report(&attachment, campaign_id)
    }));
    TableIterator::new(drifts.into_iter().map(|drift| {
        (
            drift.campaign.to_string(),
            drift.counter.to_string(),
            drift.stored,
            drift.actual,
        )
    }))
}
