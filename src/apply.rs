//! Applying status events: apply_recipient_status, apply_whatsapp_webhook, parked events and failure details, all through one set-based merge.

use crate::attachment::{chosen_attachment, Attachment, Lookup};
use crate::batch::{plan, EventOutcome, Incoming, LockedRow};
use crate::context::{as_extension_owner, as_role, pinned, required};
use crate::costs::record_pricing;
use crate::error::{or_raise, Error, Result};
use crate::pending::{attachments_to_maintain, note_maintenance};
use crate::status::{Event, EventKind, PgTimestamp, RowState, Status, Timestamps};
use crate::webhook::{parse_webhook, FailureDetail, StatusItem, Verdict, MAX_MESSAGE_ID_BYTES};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{pg_sys, PgSqlErrorCode};
use std::collections::{BTreeMap, BTreeSet};

/// How many parked events one step of a sweep or of the trigger takes: memory stays bounded
/// however many events wait.
const PARKED_BATCH: i64 = 5_000;

fn timestamp(value: Option<TimestampWithTimeZone>) -> Option<PgTimestamp> {
    value.map(|t| t.into_inner())
}

pub fn timestamp_datum(values: Vec<Option<PgTimestamp>>) -> Result<DatumWithOid<'static>> {
    let values = values
        .into_iter()
        .map(|value| value.map(TimestampWithTimeZone::try_from).transpose())
        .collect::<std::result::Result<Vec<Option<TimestampWithTimeZone>>, _>>()
        .map_err(|_| {
            Error::new(
                PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
                "a status timestamp is out of range",
            )
        })?;
    Ok(values.into())
}

/// Where a locked row is: its partition and tuple id, so the write goes straight there.
type Address = (pg_sys::Oid, String);

/// Applies `events` in the order given to the recipients of `attachment`: one statement reads
/// and locks the free rows (in message-id order; rows another transaction holds are skipped, so
/// this never waits for the application's writes and cannot deadlock with them), the batch plan
/// merges, and one UPDATE writes the rows that change. Events of held rows are carried over in
/// parked_events. Returns each event's outcome.
///
/// With `absorb_parked`, parked events of the ids found are merged in first: an event parked
/// while its id's transaction was uncommitted (which the trigger cannot see) is applied with the
/// next event for that id.
pub fn apply_events(
    attachment: &Attachment,
    events: &[Incoming],
    absorb_parked: bool,
) -> Result<Vec<EventOutcome>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<&str> = events
        .iter()
        .map(|incoming| incoming.message_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();

    Spi::connect_mut(|client| {
        let plans = attachment.apply_plans(client)?;
        let mut rows: Vec<LockedRow<Address>> = Vec::new();
        for row in client.update(&plans.lock_rows, None, &[ids.clone().into()])? {
            let (Some(message_id), Some(relation), Some(tuple)) = (
                row.get::<String>(1)?,
                row.get::<pg_sys::Oid>(7)?,
                row.get::<String>(8)?,
            ) else {
                continue;
            };
            let status = row
                .get::<&str>(2)?
                .and_then(|text| Status::parse(text.as_bytes()))
                .unwrap_or(Status::Pending);
            let times = Timestamps {
                sent_at: timestamp(row.get(3)?),
                delivered_at: timestamp(row.get(4)?),
                read_at: timestamp(row.get(5)?),
                failed_at: timestamp(row.get(6)?),
            };
            rows.push(LockedRow {
                message_id,
                address: (relation, tuple),
                state: RowState { status, times },
            });
        }

        let absorbed = if absorb_parked && !rows.is_empty() && any_parked(attachment.recipients)? {
            let mut found: Vec<String> = rows.iter().map(|row| row.message_id.clone()).collect();
            found.dedup();
            take_parked(attachment, found)?
        } else {
            Vec::new()
        };
        // Ids with no locked row: unknown (parked) or held by another transaction (carried).
        let locked: BTreeSet<&str> = rows.iter().map(|row| row.message_id.as_str()).collect();
        let unlocked: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| !locked.contains(id))
            .collect();
        let mut busy_ids: Vec<String> = Vec::new();
        if !unlocked.is_empty() {
            for row in client.select(&plans.find_ids, None, &[unlocked.into()])? {
                busy_ids.extend(row.get::<String>(1)?);
            }
        }
        let busy: BTreeSet<&str> = busy_ids.iter().map(String::as_str).collect();
        let plan = plan(&rows, &absorbed, events, &busy);

        // Parked events are written before the rows: the row write takes campaign row locks (in
        // the trigger), and parked-event keys must come before them in every path, as they do
        // where apply absorbs parked events and where the trigger takes them.
        if !plan.to_park.is_empty() {
            park(attachment, &plan.to_park)?;
        }
        if !plan.writes.is_empty() {
            let writes = &plan.writes;
            let times = |pick: fn(&Timestamps) -> Option<PgTimestamp>| {
                timestamp_datum(writes.iter().map(|(_, row)| pick(&row.times)).collect())
            };
            let args = vec![
                writes
                    .iter()
                    .map(|((relation, _), _)| *relation)
                    .collect::<Vec<_>>()
                    .into(),
                writes
                    .iter()
                    .map(|((_, tuple), _)| tuple.as_str())
                    .collect::<Vec<_>>()
                    .into(),
                writes
                    .iter()
                    .map(|(_, row)| row.status.as_str())
                    .collect::<Vec<_>>()
                    .into(),
                times(|t| t.sent_at)?,
                times(|t| t.delivered_at)?,
                times(|t| t.read_at)?,
                times(|t| t.failed_at)?,
            ];
            client.update(&plans.write_rows, None, &args)?;
        }
        Ok(plan.outcomes)
    })
}

/// Keeps events for ids no recipient has yet, in the plan's sorted order, so two batches that
/// park the same ids insert (and wait for each other's uncommitted inserts) in one order.
fn park(attachment: &Attachment, events: &[&Incoming]) -> Result<()> {
    let args = vec![
        attachment.recipients.into(),
        events
            .iter()
            .map(|incoming| incoming.message_id.as_str())
            .collect::<Vec<_>>()
            .into(),
        events
            .iter()
            .map(|incoming| incoming.event.kind.as_str())
            .collect::<Vec<_>>()
            .into(),
        timestamp_datum(
            events
                .iter()
                .map(|incoming| Some(incoming.event.occurred_at))
                .collect(),
        )?,
    ];
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO campaign_counters.parked_events (recipients, whatsapp_message_id, status, occurred_at)
             SELECT $1::regclass, id, status, occurred_at
               FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS event(id, status, occurred_at)
             ON CONFLICT DO NOTHING",
            &args,
        )?;
        Ok(())
    })
}

/// Whether any event waits for a recipient of `recipients`: the trigger asks this before it
/// looks for parked events of the rows a statement wrote.
pub fn any_parked(recipients: pg_sys::Oid) -> Result<bool> {
    as_extension_owner(|| {
        Ok(Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT FROM campaign_counters.parked_events WHERE recipients = $1::regclass)",
            &[recipients.into()],
        )?
        .unwrap_or(false))
    })
}

/// Reads parked events from a `DELETE ... RETURNING whatsapp_message_id, status, occurred_at`.
fn parked_rows(rows: pgrx::spi::SpiTupleTable<'_>) -> Result<Vec<Incoming>> {
    let mut taken = Vec::new();
    for row in rows {
        let (Some(message_id), Some(kind), Some(occurred_at)) = (
            row.get::<String>(1)?,
            row.get::<&str>(2)?,
            row.get::<TimestampWithTimeZone>(3)?,
        ) else {
            continue;
        };
        if let Some(kind) = EventKind::parse(kind) {
            taken.push(Incoming {
                message_id,
                event: Event {
                    kind,
                    occurred_at: occurred_at.into_inner(),
                },
            });
        }
    }
    Ok(taken)
}

/// Removes and returns the parked events of `message_ids` (the extension's table, read as its owner).
fn take_parked(attachment: &Attachment, message_ids: Vec<String>) -> Result<Vec<Incoming>> {
    as_extension_owner(|| {
        Spi::connect_mut(|client| {
            let rows = client.update(
                "DELETE FROM campaign_counters.parked_events
                  WHERE recipients = $1::regclass AND whatsapp_message_id = ANY($2)
                 RETURNING whatsapp_message_id, status, occurred_at",
                None,
                &[attachment.recipients.into(), message_ids.into()],
            )?;
            parked_rows(rows)
        })
    })
}

/// Applies `waiting` parked events (taken from the table) as the recipients' owner.
fn apply_taken(attachment: &Attachment, waiting: &[Incoming]) -> Result<()> {
    // Events come back in no particular order; the merge does not depend on it.
    as_role(attachment.recipients_owner, || {
        apply_events(attachment, waiting, false)
    })?;
    Ok(())
}

/// Applies and removes the parked events of the rows a statement wrote (the trigger's new
/// transition table), in batches of [`PARKED_BATCH`].
pub fn absorb_parked_for_new_rows(
    attachment: &Attachment,
    trigger_data: *mut pg_sys::TriggerData,
) -> Result<()> {
    let take = format!(
        "DELETE FROM campaign_counters.parked_events p
          WHERE p.ctid = ANY (ARRAY(
                SELECT waiting.ctid FROM campaign_counters.parked_events waiting
                 WHERE waiting.recipients = $1::regclass
                   AND waiting.whatsapp_message_id IN (SELECT whatsapp_message_id::text FROM campaign_counters_new)
                 LIMIT {PARKED_BATCH}))
         RETURNING whatsapp_message_id, status, occurred_at"
    );
    loop {
        let waiting = as_extension_owner(|| {
            Spi::connect_mut(|client| {
                // SAFETY: registers the firing trigger's transition tables with the SPI
                // connection just opened, so the query can read campaign_counters_new; SPI only
                // reads the trigger data, which is valid for the whole trigger call.
                unsafe { pg_sys::SPI_register_trigger_data(trigger_data) };
                let rows = client.update(take.as_str(), None, &[attachment.recipients.into()])?;
                parked_rows(rows)
            })
        })?;
        if waiting.is_empty() {
            return Ok(());
        }
        apply_taken(attachment, &waiting)?;
        if (waiting.len() as i64) < PARKED_BATCH {
            return Ok(());
        }
    }
}

/// The sweep for parked events the trigger could not see: an event parked while the transaction
/// that gives a recipient its id is still uncommitted stays parked until this runs. Works through
/// the parked ids in batches, in id order.
#[pg_extern(sql = false)]
fn apply_parked_events(recipients: Option<pg_sys::Oid>) -> i64 {
    or_raise(pinned(|| {
        let mut applied = 0;
        for attachment in attachments_to_maintain(recipients, Lookup::Recipients)? {
            applied += sweep(&attachment)?;
        }
        Ok(applied)
    }))
}

/// Applies the parked events of `attachment` whose id a recipient has now, and notes the time
/// for health(); returns how many.
fn sweep(attachment: &Attachment) -> Result<i64> {
    let applied = sweep_batches(attachment)?;
    note_maintenance(attachment, "last_sweep_at")?;
    Ok(applied)
}

/// Applies the parked events of `attachment` whose id a recipient has now, in batches in id
/// order; returns how many.
fn sweep_batches(attachment: &Attachment) -> Result<i64> {
    let mut after = String::new();
    let mut applied = 0i64;
    loop {
        let parked: Vec<String> = as_extension_owner(|| {
            Spi::connect(|client| {
                let mut ids = Vec::new();
                for row in client.select(
                        "SELECT DISTINCT whatsapp_message_id COLLATE \"C\" FROM campaign_counters.parked_events
                          WHERE recipients = $1::regclass AND whatsapp_message_id COLLATE \"C\" > $2
                          ORDER BY 1 LIMIT $3",
                        None,
                        &[attachment.recipients.into(), after.as_str().into(), PARKED_BATCH.into()],
                    )? {
                        ids.extend(row.get::<String>(1)?);
                    }
                Ok(ids)
            })
        })?;
        let Some(last) = parked.last().cloned() else {
            return Ok(applied);
        };
        let full_batch = parked.len() as i64 == PARKED_BATCH;
        let arrived: Vec<String> = Spi::connect(|client| {
            let mut ids = Vec::new();
            let plans = attachment.apply_plans(client)?;
            for row in client.select(&plans.find_ids, None, &[parked.into()])? {
                ids.extend(row.get::<String>(1)?);
            }
            Ok::<_, Error>(ids)
        })?;
        if !arrived.is_empty() {
            let waiting = take_parked(attachment, arrived)?;
            applied += waiting.len() as i64;
            apply_taken(attachment, &waiting)?;
        }
        if !full_batch {
            return Ok(applied);
        }
        after = last;
    }
}

/// Stores Meta's error details of failed statuses, one row per message id and error code with
/// the earliest failure time (a batch may carry the same failure twice).
fn record_failures(
    attachment: &Attachment,
    failures: &[(&str, &FailureDetail, PgTimestamp)],
) -> Result<()> {
    let mut unique: BTreeMap<(&str, i32), (&FailureDetail, PgTimestamp)> = BTreeMap::new();
    for (id, detail, at) in failures {
        let Some(code) = detail.code else { continue };
        unique
            .entry((id, code))
            .and_modify(|(_, earliest)| *earliest = (*earliest).min(*at))
            .or_insert((detail, *at));
    }
    if unique.is_empty() {
        return Ok(());
    }
    let text = |pick: fn(&FailureDetail) -> Option<&str>| -> DatumWithOid<'static> {
        unique
            .values()
            .map(|(detail, _)| pick(detail).map(str::to_owned))
            .collect::<Vec<_>>()
            .into()
    };
    let args = vec![
        attachment.recipients.into(),
        unique.keys().map(|(id, _)| *id).collect::<Vec<_>>().into(),
        unique
            .keys()
            .map(|(_, code)| *code)
            .collect::<Vec<i32>>()
            .into(),
        text(|detail| detail.title.as_deref()),
        text(|detail| detail.message.as_deref()),
        text(|detail| detail.details.as_deref()),
        timestamp_datum(unique.values().map(|(_, at)| Some(*at)).collect())?,
    ];
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO campaign_counters.recipient_failures
                    (recipients, whatsapp_message_id, code, title, message, details, failed_at)
             SELECT $1::regclass, f.* FROM unnest($2::text[], $3::int4[], $4::text[], $5::text[], $6::text[], $7::timestamptz[]) AS f
             ON CONFLICT (recipients, whatsapp_message_id, code)
             DO UPDATE SET failed_at = least(recipient_failures.failed_at, excluded.failed_at)",
            &args,
        )?;
        Ok(())
    })
}

fn apply_one_status(
    whatsapp_message_id: Option<&str>,
    status: Option<&str>,
    occurred_at: Option<TimestampWithTimeZone>,
    recipients: Option<pg_sys::Oid>,
) -> Result<&'static str> {
    let message_id = required(whatsapp_message_id, "whatsapp_message_id")?;
    let status = required(status, "status")?;
    if message_id.is_empty() || message_id.len() > MAX_MESSAGE_ID_BYTES {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "whatsapp_message_id must have 1 to {MAX_MESSAGE_ID_BYTES} bytes, not {}",
                message_id.len()
            ),
        ));
    }
    let Some(kind) = EventKind::parse(status) else {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown status event \"{status}\""),
        )
        .detail(format!("Accepted status events: {}.", EventKind::ACCEPTED)));
    };
    let occurred_at = match occurred_at {
        Some(at) if !at.is_finite() => {
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
                "occurred_at must be a finite timestamp",
            ))
        }
        Some(at) => at.into_inner(),
        // SAFETY: reads the start time of the current transaction.
        None => unsafe { pg_sys::GetCurrentTransactionStartTimestamp() },
    };
    pinned(|| {
        let attachment = chosen_attachment(recipients, Lookup::Recipients)?;
        let incoming = [Incoming {
            message_id: message_id.to_string(),
            event: Event { kind, occurred_at },
        }];
        let outcomes = apply_events(&attachment, &incoming, true)?;
        Ok(outcomes
            .first()
            .map_or("invalid", |outcome| outcome.as_str()))
    })
}

#[pg_extern(sql = false)]
fn apply_recipient_status(
    whatsapp_message_id: Option<&str>,
    status: Option<&str>,
    occurred_at: Option<TimestampWithTimeZone>,
    recipients: Option<pg_sys::Oid>,
) -> &'static str {
    or_raise(apply_one_status(
        whatsapp_message_id,
        status,
        occurred_at,
        recipients,
    ))
}

/// Largest webhook body accepted, as jsonb and as its text. Meta's bodies are a few kilobytes
/// (at most about a megabyte for a full batch); a larger one is refused with 54000 before it is
/// parsed, so parsing never needs more memory than a bounded multiple of this.
pub const MAX_WEBHOOK_BYTES: usize = 16 * 1024 * 1024;

fn too_large(bytes: usize) -> Error {
    Error::new(
        PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        format!(
            "webhook body is {bytes} bytes; campaign_counters accepts at most {MAX_WEBHOOK_BYTES}"
        ),
    )
    .hint("Meta's bodies are far smaller: split the batch.")
}

/// A jsonb argument read as its text, which serde parses where pgrx's `JsonB` would panic (for
/// example on nesting deeper than serde_json's limit). The text is PostgreSQL's (palloc'd in the
/// function's memory context, freed with it); Rust parses it in place without copying it.
pub struct JsonbText(Result<&'static [u8]>);

impl FromDatum for JsonbText {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: a non-null jsonb argument; toast_raw_datum_size reads only its header.
        let stored = unsafe { pg_sys::toast_raw_datum_size(datum) };
        if stored > MAX_WEBHOOK_BYTES {
            return Some(JsonbText(Err(too_large(stored))));
        }
        // SAFETY: jsonb_out takes a valid jsonb datum and returns a palloc'd C string in the
        // current memory context, which lives until the function call ends; the slice is only
        // used within that call.
        let text = unsafe {
            let cstring = pg_sys::OidFunctionCall1Coll(
                pg_sys::Oid::from(pg_sys::F_JSONB_OUT),
                pg_sys::InvalidOid,
                datum,
            );
            std::ffi::CStr::from_ptr(cstring.cast_mut_ptr::<std::ffi::c_char>()).to_bytes()
        };
        Some(JsonbText(if text.len() > MAX_WEBHOOK_BYTES {
            Err(too_large(text.len()))
        } else {
            Ok(text)
        }))
    }
}

// SAFETY: unboxes through `FromDatum` above, which handles any datum of the declared type jsonb.
unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for JsonbText {
    unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
        // SAFETY: the argument is declared jsonb in the SQL definition.
        unsafe { arg.unbox_arg_using_from_datum() }.unwrap_or(JsonbText(Err(Error::new(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "payload must not be NULL",
        ))))
    }
}

// SAFETY: the SQL type named is jsonb, which is what `FromDatum` above reads.
unsafe impl pgrx::pgrx_sql_entity_graph::metadata::SqlTranslatable for JsonbText {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(JsonbText);
    const TYPE_ORIGIN: pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin =
        pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin::External;
    const ARGUMENT_SQL: std::result::Result<
        pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef,
        pgrx::pgrx_sql_entity_graph::metadata::ArgumentError,
    > = Ok(pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: std::result::Result<
        pgrx::pgrx_sql_entity_graph::metadata::ReturnsRef,
        pgrx::pgrx_sql_entity_graph::metadata::ReturnsError,
    > = Ok(pgrx::pgrx_sql_entity_graph::metadata::ReturnsRef::One(
        pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef::literal("jsonb"),
    ));
}

type WebhookRow = (Option<String>, Option<String>, String);

fn apply_webhook(
    payload: Option<JsonbText>,
    recipients: Option<pg_sys::Oid>,
) -> Result<Vec<WebhookRow>> {
    let JsonbText(body) = required(payload, "payload")?;
    let items: Vec<StatusItem> = parse_webhook(body?).map_err(|error| {
        if error.too_large {
            return Error::new(PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED, error.message)
                .hint("Meta's bodies are far smaller: split the batch.");
        }
        Error::new(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("not a WhatsApp status webhook: {error}"),
        )
        .detail("Expected Meta's POST body: {\"object\": \"whatsapp_business_account\", \"entry\": [{\"changes\": [{\"field\": \"messages\", \"value\": {\"statuses\": [...]}}]}]}.")
    })?;
    pinned(|| {
        let attachment = chosen_attachment(recipients, Lookup::Recipients)?;
        let mut incoming = Vec::new();
        let mut failures = Vec::new();
        let mut priced = Vec::new();
        for item in &items {
            if let (
                Verdict::Event {
                    event,
                    failures: details,
                    pricing,
                },
                Some(id),
            ) = (&item.verdict, &item.whatsapp_message_id)
            {
                priced.extend(
                    pricing
                        .iter()
                        .map(|pricing| (id.as_str(), pricing, event.occurred_at)),
                );
                incoming.push(Incoming {
                    message_id: id.clone(),
                    event: *event,
                });
                failures.extend(
                    details
                        .iter()
                        .map(|detail| (id.as_str(), detail, event.occurred_at)),
                );
            }
        }
        let mut applied = apply_events(&attachment, &incoming, true)?.into_iter();
        record_failures(&attachment, &failures)?;
        record_pricing(&attachment, priced)?;
        Ok(items
            .iter()
            .map(|item| {
                let outcome = match &item.verdict {
                    Verdict::Event { .. } => applied.next().map_or("invalid", EventOutcome::as_str),
                    Verdict::Ignored => "ignored",
                    Verdict::Invalid { .. } => "invalid",
                };
                (
                    item.whatsapp_message_id.clone(),
                    item.status.clone(),
                    outcome.to_string(),
                )
            })
            .collect())
    })
}

#[pg_extern(sql = false)]
fn apply_whatsapp_webhook(
    payload: Option<JsonbText>,
    recipients: Option<pg_sys::Oid>,
) -> TableIterator<
    'static,
    (
        name!(whatsapp_message_id, Option<String>),
        name!(status, Option<String>),
        name!(outcome, String),
    ),
> {
    TableIterator::new(or_raise(apply_webhook(payload, recipients)))
}

/// Runs as the extension owner: EXECUTE (revoked from PUBLIC) is the right to purge, so a
/// maintenance role needs nothing else. Sweeps every attachment first, so an event whose id a
/// recipient has (carried over, or parked in the race with its id's transaction) is applied,
/// not deleted; what is purged is what no recipient has claimed.
#[pg_extern(sql = false)]
fn purge_parked_events(older_than: Option<pgrx::datum::Interval>) -> i64 {
    or_raise((|| {
        let older_than = required(older_than, "older_than")?;
        pinned(|| {
            let attached: Vec<pg_sys::Oid> = Spi::connect(|client| {
                let mut found = Vec::new();
                for row in client.select(
                    "SELECT recipients::oid FROM campaign_counters.attachments",
                    None,
                    &[],
                )? {
                    found.extend(row.get::<pg_sys::Oid>(1)?);
                }
                Ok::<_, Error>(found)
            })?;
            for recipients in attached {
                let attachment = crate::attachment::attachment_of(recipients)?;
                as_role(attachment.recipients_owner, || sweep(&attachment))?;
            }
            as_extension_owner(|| {
                Spi::connect_mut(|client| {
                    Ok(client
                        .update(
                            "DELETE FROM campaign_counters.parked_events WHERE parked_at < now() - $1",
                            None,
                            &[older_than.into()],
                        )?
                        .len() as i64)
                })
            })
        })
    })())
}

type FailureReason = (Option<i32>, Option<String>, i64);

fn reasons(
    campaign_id: Option<&str>,
    campaigns: Option<pg_sys::Oid>,
) -> Result<Vec<FailureReason>> {
    let campaign_id = required(campaign_id, "campaign_id")?;
    pinned(|| {
        let attachment = chosen_attachment(campaigns, Lookup::Campaigns)?;
        // The caller reads their own recipients; the failure details are read as the extension
        // owner, joined only to the rows the caller could read.
        let query = format!(
            "SELECT whatsapp_message_id::text FROM {} WHERE campaign_id = CAST($1 AS {}) AND status = 'failed'",
            attachment.recipients_name, attachment.id_type_name
        );
        let failed: Vec<String> = Spi::connect(|client| {
            let mut ids = Vec::new();
            for row in client.select(query.as_str(), None, &[campaign_id.into()])? {
                ids.push(row.get::<String>(1)?.unwrap_or_default());
            }
            Ok::<_, Error>(ids)
        })?;
        as_extension_owner(|| {
            Spi::connect(|client| {
                let mut reasons = Vec::new();
                for row in client.select(
                    "WITH failed(id) AS (SELECT unnest($2::text[])),
                          reasons AS (
                            SELECT f.code, f.title, failed.id
                              FROM failed LEFT JOIN campaign_counters.recipient_failures f
                                ON f.recipients = $1::regclass AND f.whatsapp_message_id = failed.id)
                     SELECT code, coalesce(title, CASE WHEN code IS NULL THEN 'no details' END),
                            count(DISTINCT id)
                       FROM reasons GROUP BY 1, 2 ORDER BY 3 DESC, 1",
                    None,
                    &[attachment.recipients.into(), failed.into()],
                )? {
                    reasons.push((
                        row.get::<i32>(1)?,
                        row.get::<String>(2)?,
                        row.get::<i64>(3)?.unwrap_or(0),
                    ));
                }
                Ok(reasons)
            })
        })
    })
}

#[pg_extern(sql = false)]
fn failure_reasons(
    campaign_id: Option<&str>,
    campaigns: Option<pg_sys::Oid>,
) -> TableIterator<
    'static,
    (
        name!(code, Option<i32>),
        name!(title, Option<String>),
        name!(recipients, i64),
    ),
> {
    TableIterator::new(or_raise(reasons(campaign_id, campaigns)))
}
