//! Campaign rows that appear (inserted, or an id changed to theirs): their counters start from a count of the recipients that already carry the id.
//!
//! This is what keeps a change for a campaign without a row from being lost: the trigger cannot
//! add it to a row that does not exist, so the row counts it when it is created. An advisory lock
//! per campaign id orders the two (see `Attachment::write_deltas`), and the count is read in a
//! snapshot taken after that lock, so no writer's change falls between them. Deferred writers
//! take no such lock: their pending changes for the id, which the count replaces, are deleted in
//! the count's snapshot, so each of their changes is either counted or still pending.

use crate::attachment::{chosen_attachment, counter_terms, Attachment, KeyKind, Lookup};
use crate::context::as_role;
use crate::counters::{recount, CampaignKey};
use crate::error::{self, or_raise, Error};
use crate::snapshot::{text_group, LatestSnapshot};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{pg_sys, PgOid, PgSqlErrorCode};
use std::num::NonZeroUsize;

/// The id of the campaign row the trigger fired for.
fn new_id(trigger: &PgTrigger<'_>, attachment: &Attachment) -> error::Result<Option<CampaignKey>> {
    let Some(row) = trigger.new() else {
        return Ok(None);
    };
    let attnum = NonZeroUsize::new(id_attnum(trigger)?).ok_or_else(missing_id)?;
    key_at(&row, attnum, attachment.id_kind)
}

/// The campaign id in attribute `attnum` of `row`, a column of kind `kind`.
fn key_at<A: WhoAllocated>(
    row: &PgHeapTuple<'_, A>,
    attnum: NonZeroUsize,
    kind: KeyKind,
) -> error::Result<Option<CampaignKey>> {
    Ok(match kind {
        KeyKind::Int4 => row
            .get_by_index::<i32>(attnum)?
            .map(|v| CampaignKey::Int(v.into())),
        KeyKind::Int8 => row.get_by_index::<i64>(attnum)?.map(CampaignKey::Int),
        KeyKind::Uuid => row
            .get_by_index::<pgrx::Uuid>(attnum)?
            .map(|v| CampaignKey::Uuid(*v.as_bytes())),
        KeyKind::Text => row
            .get_by_index::<String>(attnum)?
            .map(|v| CampaignKey::Text(v.into_bytes().into())),
    })
}

/// The id of a whole campaigns row, found by name (the row comes from a trigger's WHEN clause,
/// which knows no attachment); None when the row has no `id`.
fn id_of_row(row: &PgHeapTuple<'_, AllocatedByRust>) -> error::Result<Option<CampaignKey>> {
    let Some((attnum, attribute)) = row.get_attribute_by_name("id") else {
        return Ok(None);
    };
    // SAFETY: getBaseType only reads the type cache; an unknown oid is returned unchanged.
    let base_type = unsafe { pg_sys::getBaseType(attribute.atttypid) };
    let kind = KeyKind::of_base_type(base_type).ok_or_else(|| {
        Error::new(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            "campaign ids of this type are not supported",
        )
    })?;
    key_at(row, attnum, kind)
}

/// The WHEN clause of the `campaign_counters_campaign_id` trigger on each campaigns table:
/// whether an UPDATE changed the row's id. It takes whole rows, so the trigger depends on no
/// column (`ALTER COLUMN id TYPE` stays possible), and reads one attribute of each: every counter
/// write passes this test, and comparing `to_jsonb()` of both rows, as the clause did before,
/// cost about a fifth of a single-row status update (instructions counted with callgrind).
#[pg_extern(sql = false)]
fn campaign_id_changed(
    old_row: pgrx::composite_type!("record"),
    new_row: pgrx::composite_type!("record"),
) -> bool {
    match (id_of_row(&old_row), id_of_row(&new_row)) {
        (Ok(old), Ok(new)) => old != new,
        // An id this cannot read counts as changed: the trigger then recounts the row at commit.
        _ => true,
    }
}

fn missing_id() -> Error {
    Error::new(
        PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
        "campaigns table has no column \"id\"",
    )
}

fn id_attnum(trigger: &PgTrigger<'_>) -> error::Result<usize> {
    let relation = trigger.relation()?.oid();
    Ok(crate::attachment::column(relation, "id")?
        .ok_or_else(missing_id)?
        .attnum as usize)
}

/// Sets the counters of campaign rows `keys` from a count of their recipients.
pub fn count_new_campaigns(
    attachment: &Attachment,
    mut keys: Vec<CampaignKey>,
) -> error::Result<()> {
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Ok(());
    }
    let count = format!(
        "SELECT campaign_id::text, status::text, count(*) FROM {} WHERE campaign_id = ANY($1::{}[]) GROUP BY 1, 2",
        attachment.recipients_name,
        attachment.key_family.sql_type()
    );
    let set_counters = format!(
        "UPDATE {} SET {} WHERE id = $1 AND ({})",
        attachment.campaigns_name,
        counter_terms("{c} = {p}", ", "),
        counter_terms("{c} IS DISTINCT FROM {p}", " OR ")
    );
    Spi::connect_mut(|client| {
        for key in &keys {
            attachment.lock_campaign_id(client, key, true)?;
        }
        // The count replaces the changes still pending for these ids: both in one snapshot, so a
        // deferred writer that commits meanwhile is in both or in neither.
        let snapshot = LatestSnapshot::take();
        let rows = as_role(attachment.recipients_owner, || {
            snapshot.rows(&count, &[attachment.key_family.array_datum(&keys)])
        })?;
        attachment.forget_pending_in(&snapshot, keys.iter())?;
        drop(snapshot);
        let groups = rows
            .iter()
            .filter_map(|row| text_group(attachment.key_family, row));
        let actual = recount(groups);
        let mut types = vec![PgOid::from(attachment.key_family.type_oid())];
        types.extend([PgOid::from(pg_sys::INT8OID); 5]);
        as_role(attachment.campaigns_owner, || -> error::Result<()> {
            let plan = client.prepare_mut(set_counters.as_str(), &types)?;
            for key in &keys {
                let mut args: Vec<DatumWithOid> = vec![attachment.key_family.datum(key)];
                args.extend(
                    actual
                        .get(key)
                        .0
                        .iter()
                        .map(|value| DatumWithOid::from(*value)),
                );
                client.update(&plan, None, &args)?;
            }
            Ok(())
        })
    })
}

fn count_fired(trigger: &PgTrigger<'_>) -> error::Result<()> {
    let campaigns = trigger.relation()?.oid();
    let attachment = chosen_attachment(Some(campaigns), Lookup::Campaigns)?;
    let keys = new_id(trigger, &attachment)?;
    count_new_campaigns(&attachment, keys.into_iter().collect())
}

/// Deferred row trigger on the campaigns table: after INSERT, and after an UPDATE that changed the id.
#[pg_trigger(sql = false)]
fn count_new_campaigns_trigger<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    or_raise(count_fired(trigger));
    Ok(None)
}
