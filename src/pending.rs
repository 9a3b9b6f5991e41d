//! Deferred counting: the changes deferred-mode writes record instead of touching campaign rows, their fold into the rows, and reads of stored plus pending.
//!
//! A deferred write appends one row per statement and campaign to
//! `campaign_counters.pending_changes`: an insert that waits for no other writer, where updating
//! the campaign row would hold its lock until commit and make the writers of one campaign take
//! turns. A fold deletes a campaign's pending rows and adds their sum to its row in one
//! transaction, and a writer's pending rows commit with its recipient changes, so in every
//! snapshot each change is either pending or in the row: stored plus pending equals a recount.
//!
//! Every statement on user tables or on pending changes names one campaign id (a distributed
//! cluster routes it to one shard), except the read of which ids have pending changes.

use crate::attachment::{attached_root, attachment_of, chosen_attachment, Attachment, Lookup};
use crate::context::{
    as_extension_owner, as_role, pinned, qualified_name, require_owner, require_privilege, required,
};
use crate::counters::{CampaignKey, Counters, COUNTER_COLUMNS};
use crate::error::{or_raise, Error, Result};
use crate::mode::Mode;
use crate::snapshot::{select_text_in_active_snapshot, LatestSnapshot};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient};
use pgrx::{pg_sys, PgOid, PgSqlErrorCode};

/// The kept plans of deferred counting, per attachment.
pub struct PendingPlans {
    /// Appends one statement's change for one campaign (most statements touch one): plain
    /// parameters, no arrays to build or unnest.
    record_one: OwnedPreparedStatement,
    /// Appends one statement's changes, a row per campaign, from arrays.
    record: OwnedPreparedStatement,
    /// The campaign ids of the attachment that have pending changes.
    pending_ids: OwnedPreparedStatement,
    /// Locks one campaign row; no row: the campaign has none, and its changes stay pending.
    lock_campaign: OwnedPreparedStatement,
    /// Deletes one campaign's pending changes and returns how many rows and their sums.
    take: OwnedPreparedStatement,
}

fn counter_sums() -> String {
    COUNTER_COLUMNS
        .iter()
        .map(|name| format!("coalesce(sum({name}), 0)::int8"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Attachment {
    fn pending_plans(&self, client: &SpiClient<'_>) -> Result<&PendingPlans> {
        if let Some(plans) = self.pending_plans.get() {
            return Ok(plans);
        }
        let prepare = |query: &str, types: &[PgOid]| -> Result<OwnedPreparedStatement> {
            Ok(client.prepare_mut(query, types).map(|plan| plan.keep())?)
        };
        let oid = PgOid::from(pg_sys::OIDOID);
        let text = PgOid::from(pg_sys::TEXTOID);
        let counts = PgOid::from(pg_sys::INT8ARRAYOID);
        let count = PgOid::from(pg_sys::INT8OID);
        let plans = PendingPlans {
            record_one: prepare(
                &format!(
                    "INSERT INTO campaign_counters.pending_changes (campaigns, campaign_id, {})
                     VALUES ($1::pg_catalog.regclass, $2, $3, $4, $5, $6, $7)",
                    COUNTER_COLUMNS.join(", ")
                ),
                &[oid, text, count, count, count, count, count],
            )?,
            record: prepare(
                &format!(
                    "INSERT INTO campaign_counters.pending_changes (campaigns, campaign_id, {})
                     SELECT $1::pg_catalog.regclass, u.* FROM unnest($2::text[], $3, $4, $5, $6, $7) AS u",
                    COUNTER_COLUMNS.join(", ")
                ),
                &[
                    oid,
                    PgOid::from(pg_sys::TEXTARRAYOID),
                    counts,
                    counts,
                    counts,
                    counts,
                    counts,
                ],
            )?,
            pending_ids: prepare(
                "SELECT DISTINCT campaign_id FROM campaign_counters.pending_changes
                  WHERE campaigns = $1::pg_catalog.regclass",
                &[oid],
            )?,
            lock_campaign: prepare(
                &format!(
                    "SELECT FROM {} WHERE id = $1 FOR NO KEY UPDATE",
                    self.campaigns_name
                ),
                &[PgOid::from(self.key_family.type_oid())],
            )?,
            take: prepare(
                &format!(
                    "WITH taken AS (DELETE FROM campaign_counters.pending_changes
                                     WHERE campaigns = $1::pg_catalog.regclass AND campaign_id = $2
                                 RETURNING *)
                     SELECT count(*), {} FROM taken",
                    counter_sums()
                ),
                &[oid, text],
            )?,
        };
        Ok(self.pending_plans.get_or_init(|| plans))
    }

    /// Records one statement's changes as pending, in one INSERT, as the extension owner.
    pub fn record_pending<'a>(
        &self,
        changes: impl Iterator<Item = (&'a CampaignKey, &'a Counters)>,
    ) -> Result<()> {
        let changes: Vec<(&CampaignKey, &Counters)> = changes.collect();
        let mut args: Vec<DatumWithOid> = vec![self.campaigns.into()];
        let one = match changes.as_slice() {
            [] => return Ok(()),
            [(campaign, change)] => {
                args.push(campaign.to_string().into());
                args.extend(change.0.iter().map(|value| DatumWithOid::from(*value)));
                true
            }
            several => {
                let ids: Vec<String> = several.iter().map(|(id, _)| id.to_string()).collect();
                args.push(ids.into());
                for i in 0..COUNTER_COLUMNS.len() {
                    let column: Vec<i64> = several.iter().map(|(_, change)| change.0[i]).collect();
                    args.push(column.into());
                }
                false
            }
        };
        as_role(self.extension_owner, || {
            Spi::connect_mut(|client| {
                let plans = self.pending_plans(client)?;
                let plan = if one {
                    &plans.record_one
                } else {
                    &plans.record
                };
                client.update(plan, None, &args)?;
                Ok(())
            })
        })
    }

    /// The SQL that deletes the pending changes of the campaign ids in `$2` (text[]) for this
    /// attachment's campaigns table in `$1` (oid): for a recount that replaces them.
    fn forget_pending_query() -> &'static str {
        "DELETE FROM campaign_counters.pending_changes
          WHERE campaigns = $1::pg_catalog.regclass AND campaign_id = ANY($2::text[])"
    }

    /// Deletes the pending changes of `ids` in `snapshot`, the snapshot of the recount that
    /// replaces them: a deferred writer that commits meanwhile is in both or in neither. Nothing
    /// to do on a schema without modes.
    pub fn forget_pending_in<'k>(
        &self,
        snapshot: &LatestSnapshot,
        ids: impl Iterator<Item = &'k CampaignKey>,
    ) -> Result<()> {
        if !self.schema_has_modes {
            return Ok(());
        }
        let ids: Vec<String> = ids.map(CampaignKey::to_string).collect();
        if ids.is_empty() {
            return Ok(());
        }
        as_role(self.extension_owner, || {
            snapshot.rows(
                Self::forget_pending_query(),
                &[self.campaigns.into(), ids.into()],
            )
        })?;
        Ok(())
    }
}

/// Folds the pending changes of `attachment` into its campaign rows: per campaign in key order
/// (the order every writer locks campaign rows in), lock the row, delete its pending rows and add
/// their sum. Returns how many pending rows were folded.
///
/// Concurrent folds take turns on each campaign row, and each deletes only rows no other fold
/// deleted first. The changes of a campaign id without a row are dropped (counted in the
/// result): it keeps no counters, and a row created later starts from a recount of its
/// recipients (see `new_campaigns`).
pub fn fold(attachment: &Attachment) -> Result<i64> {
    if !attachment.schema_has_modes {
        return Ok(0);
    }
    let table = || DatumWithOid::from(attachment.campaigns);
    Spi::connect_mut(|client| {
        let plans = attachment.pending_plans(client)?;
        let ids = as_role(attachment.extension_owner, || -> Result<Vec<String>> {
            let mut ids = Vec::new();
            for row in client.select(&plans.pending_ids, None, &[table()])? {
                ids.extend(row.get::<String>(1)?);
            }
            Ok(ids)
        })?;
        let mut keys: Vec<CampaignKey> = ids
            .iter()
            .filter_map(|id| attachment.key_family.parse(id))
            .collect();
        keys.sort();
        let mut folded = 0;
        for key in keys {
            let lock_row = |client: &mut SpiClient<'_>| -> Result<bool> {
                let rows = as_role(attachment.campaigns_owner, || {
                    client.update(
                        &plans.lock_campaign,
                        None,
                        &[attachment.key_family.datum(&key)],
                    )
                })?;
                Ok(!rows.is_empty())
            };
            if !lock_row(client)? {
                // No row: a deleted campaign's last changes, or a row still being created. The
                // lock its creator holds while it counts orders the two; a row that exists now
                // is folded into, and otherwise the changes go: a row created later starts from
                // a recount of its recipients, which has them.
                attachment.lock_campaign_id(client, &key, true)?;
                if attachment.campaign_row_exists_now(&key)? {
                    if !lock_row(client)? {
                        // In REPEATABLE READ: a row created after the snapshot.
                        return Err(attachment.created_unseen(&key));
                    }
                } else {
                    let dropped = as_role(attachment.extension_owner, || {
                        client.update(
                            Attachment::forget_pending_query(),
                            None,
                            &[table(), vec![key.to_string()].into()],
                        )
                    })?;
                    folded += dropped.len() as i64;
                    continue;
                }
            }
            let taken = as_role(attachment.extension_owner, || -> Result<_> {
                let rows = client.update(&plans.take, None, &[table(), key.to_string().into()])?;
                let row = rows.first();
                let mut sums = [0i64; 5];
                for (i, sum) in sums.iter_mut().enumerate() {
                    *sum = row.get::<i64>(i + 2)?.unwrap_or(0);
                }
                Ok((row.get::<i64>(1)?.unwrap_or(0), Counters(sums)))
            })?;
            let (rows, change) = taken;
            if !change.is_zero() {
                let mut args = vec![attachment.key_family.datum(&key)];
                args.extend(change.0.iter().map(|value| DatumWithOid::from(*value)));
                as_role(attachment.campaigns_owner, || {
                    client.update(&attachment.add_to_counters, None, &args)
                })?;
            }
            folded += rows;
        }
        if folded > 0 {
            note_maintenance(attachment, "last_fold_at")?;
        }
        Ok(folded)
    })
}

/// Records that a fold or sweep of `attachment` ran now (`column` of campaign_counters.maintenance).
pub fn note_maintenance(attachment: &Attachment, column: &str) -> Result<()> {
    if !attachment.schema_has_modes {
        return Ok(());
    }
    as_role(attachment.extension_owner, || {
        Spi::run_with_args(
            &format!(
                "INSERT INTO campaign_counters.maintenance AS m (recipients, {column}) VALUES ($1::pg_catalog.regclass, pg_catalog.now())
                 ON CONFLICT (recipients) DO UPDATE SET {column} = excluded.{column}"
            ),
            &[attachment.recipients.into()],
        )?;
        Ok(())
    })
}

/// The attachments a maintenance call works on: the one `table` (looked up as `lookup`) belongs
/// to, or with `table` NULL each one whose `privilege_on` table the caller may UPDATE.
pub fn attachments_to_maintain(
    table: Option<pg_sys::Oid>,
    lookup: Lookup,
) -> Result<Vec<std::rc::Rc<Attachment>>> {
    if table.is_some() {
        let attachment = chosen_attachment(table, lookup)?;
        let table = match lookup {
            Lookup::Recipients => attachment.recipients,
            Lookup::Campaigns => attachment.campaigns,
        };
        require_privilege(table, "UPDATE")?;
        return Ok(vec![attachment]);
    }
    let column = match lookup {
        Lookup::Recipients => "recipients",
        Lookup::Campaigns => "campaigns",
    };
    let roots: Vec<pg_sys::Oid> = Spi::connect(|client| {
        let mut roots = Vec::new();
        let query = format!(
            "SELECT recipients::oid FROM campaign_counters.attachments
              WHERE pg_catalog.has_table_privilege({column}, 'UPDATE') ORDER BY campaigns::oid"
        );
        for row in client.select(&query, None, &[])? {
            roots.extend(row.get::<pg_sys::Oid>(1)?);
        }
        Ok::<_, pgrx::spi::Error>(roots)
    })?;
    roots.into_iter().map(attachment_of).collect()
}

#[pg_extern(sql = false)]
fn fold_counters(campaigns: Option<pg_sys::Oid>) -> i64 {
    or_raise(pinned(|| {
        let mut folded = 0;
        for attachment in attachments_to_maintain(campaigns, Lookup::Campaigns)? {
            folded += fold(&attachment)?;
        }
        Ok(folded)
    }))
}

/// Each campaign's stored counters plus its pending changes, read by one query in the caller's
/// snapshot (also after the transaction wrote) and with the caller's rights (pending changes are
/// readable to readers of the table).
fn current(
    attachment: &Attachment,
    campaign_id: Option<&str>,
) -> Result<Vec<(String, [Option<i64>; 5])>> {
    let id_type = &attachment.id_type_name;
    let (stored_filter, pending_filter) = match campaign_id {
        Some(_) => (
            format!("WHERE c.id = CAST($1 AS {id_type})"),
            format!("AND campaign_id = CAST(CAST($1 AS {id_type}) AS text)"),
        ),
        None => (String::new(), String::new()),
    };
    let totals = COUNTER_COLUMNS
        .iter()
        .map(|name| format!("c.{name}::int8 + coalesce(p.{name}, 0)"))
        .collect::<Vec<_>>()
        .join(", ");
    let sums = COUNTER_COLUMNS
        .iter()
        .map(|name| format!("sum({name})::int8 AS {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    let query = format!(
        "SELECT c.id::text, {totals}
           FROM {campaigns} c
           LEFT JOIN (SELECT campaign_id, {sums} FROM campaign_counters.pending_changes
                       WHERE campaigns = {oid}::pg_catalog.oid::pg_catalog.regclass {pending_filter}
                       GROUP BY campaign_id) p ON p.campaign_id = c.id::text
          {stored_filter}
          ORDER BY {order}",
        campaigns = attachment.campaigns_name,
        oid = attachment.campaigns.to_u32(),
        order = attachment.id_order("c.id"),
    );
    let arguments: Vec<DatumWithOid> = campaign_id.map(DatumWithOid::from).into_iter().collect();
    let rows: Vec<(String, [Option<i64>; 5])> =
        Spi::connect(|_| select_text_in_active_snapshot(&query, &arguments))?
            .into_iter()
            .map(|row| {
                let mut counters = [None; 5];
                for (value, text) in counters.iter_mut().zip(row.iter().skip(1)) {
                    *value = text.as_deref().and_then(|text| text.parse().ok());
                }
                (row.first().cloned().flatten().unwrap_or_default(), counters)
            })
            .collect();
    if let (Some(id), true) = (campaign_id, rows.is_empty()) {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
            format!(
                "campaign {id} does not exist in {}",
                attachment.campaigns_name
            ),
        ));
    }
    Ok(rows)
}

// pgrx reads the result columns from the literal tuple, so it cannot be a type alias.
#[allow(clippy::type_complexity)]
#[pg_extern(sql = false)]
fn current_counters(
    campaign_id: Option<&str>,
    campaigns: Option<pg_sys::Oid>,
) -> TableIterator<
    'static,
    (
        name!(campaign_id, String),
        name!(messages_pending, Option<i64>),
        name!(messages_sent, Option<i64>),
        name!(messages_delivered, Option<i64>),
        name!(messages_read, Option<i64>),
        name!(messages_failed, Option<i64>),
    ),
> {
    let rows = or_raise(pinned(|| {
        let attachment = chosen_attachment(campaigns, Lookup::Campaigns)?;
        if !attachment.schema_has_modes {
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "the campaign_counters schema of this database predates counting modes",
            )
            .hint("Run ALTER EXTENSION campaign_counters UPDATE."));
        }
        current(&attachment, campaign_id)
    }));
    TableIterator::new(
        rows.into_iter()
            .map(|(id, [pending, sent, delivered, read, failed])| {
                (id, pending, sent, delivered, read, failed)
            }),
    )
}

fn switch_mode(recipients: Option<pg_sys::Oid>, mode: Option<&str>) -> Result<()> {
    let recipients = required(recipients, "recipients")?;
    let mode = crate::attach::counting_mode(mode)?;
    pinned(|| {
        crate::attach::serialize_attachment_changes()?;
        match attached_root(recipients)? {
            Some((root, _)) if root == recipients => {}
            _ => return Err(Error::not_attached(&qualified_name(recipients)?)),
        }
        require_owner(recipients, "change its counting mode")?;
        // Writers in progress finish first, and new ones wait for this commit. A REPEATABLE READ
        // writer whose snapshot predates the commit still reads the old mode and may record a
        // pending change after the fold below: the next fold (any mode) moves it, and it counts
        // in current_counters() and verify meanwhile.
        Spi::run(&format!(
            "LOCK TABLE {} IN SHARE MODE",
            qualified_name(recipients)?
        ))?;
        as_extension_owner(|| {
            Spi::run_with_args(
                "UPDATE campaign_counters.attachments SET mode = $2 WHERE recipients = $1::pg_catalog.regclass",
                &[recipients.into(), mode.name().into()],
            )?;
            Ok(())
        })?;
        // SAFETY: queues a relcache invalidation of an existing relation; every backend (this one
        // at its next command) then forgets the cached attachment and reads the new mode.
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(recipients) };
        crate::attachment::forget_all();
        if mode == Mode::Immediate {
            fold(&*attachment_of(recipients)?)?;
        }
        Ok(())
    })
}

#[pg_extern(sql = false)]
fn set_mode(recipients: Option<pg_sys::Oid>, mode: Option<&str>) {
    or_raise(switch_mode(recipients, mode))
}

/// Folds every pending change for `campaigns` after its recipients table was dropped (called by
/// the sql_drop event trigger, which cannot fold through the attachment any more), so that
/// dropping the recipients keeps the counters as the immediate mode would. The counters are
/// written as the campaigns table's owner, never as the event trigger's definer.
fn fold_orphaned(campaigns: pg_sys::Oid) -> Result<()> {
    let sums = COUNTER_COLUMNS
        .iter()
        .map(|name| format!("sum({name})::int8"))
        .collect::<Vec<_>>()
        .join(", ");
    let taken = as_extension_owner(|| {
        Spi::connect_mut(|client| {
            let mut taken: Vec<(String, [i64; 5])> = Vec::new();
            let rows = client.update(
                &format!(
                    "WITH taken AS (DELETE FROM campaign_counters.pending_changes
                                     WHERE campaigns = $1::pg_catalog.regclass RETURNING *)
                     SELECT campaign_id, {sums} FROM taken GROUP BY campaign_id ORDER BY campaign_id"
                ),
                None,
                &[campaigns.into()],
            )?;
            for row in rows {
                let mut change = [0i64; 5];
                for (i, value) in change.iter_mut().enumerate() {
                    *value = row.get::<i64>(i + 2)?.unwrap_or(0);
                }
                taken.push((row.get::<String>(1)?.unwrap_or_default(), change));
            }
            Ok(taken)
        })
    })?;
    if taken.is_empty() {
        return Ok(());
    }
    let mut args: Vec<DatumWithOid> = vec![taken
        .iter()
        .map(|(id, _)| id.clone())
        .collect::<Vec<_>>()
        .into()];
    for i in 0..5 {
        args.push(
            taken
                .iter()
                .map(|(_, change)| change[i])
                .collect::<Vec<_>>()
                .into(),
        );
    }
    let terms = COUNTER_COLUMNS
        .iter()
        .map(|name| format!("{name} = coalesce(c.{name}, 0) + u.{name}"))
        .collect::<Vec<_>>()
        .join(", ");
    let update = format!(
        "UPDATE {} c SET {terms}
           FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[])
                AS u(campaign_id, {})
          WHERE c.id::text = u.campaign_id",
        qualified_name(campaigns)?,
        COUNTER_COLUMNS.join(", ")
    );
    as_role(crate::context::owner_of(campaigns)?, || {
        Spi::run_with_args(&update, &args)?;
        Ok(())
    })
}

#[pg_extern(sql = false)]
fn fold_orphaned_changes(campaigns: Option<pg_sys::Oid>) {
    or_raise(pinned(|| fold_orphaned(required(campaigns, "campaigns")?)))
}
