//! Applying status events: apply_recipient_status, apply_whatsapp_webhook, parked events and failure details, all through one set-based merge.

use crate::session::{as_extension_owner, as_role, pinned, raise, require_update, required};
use crate::shape::{chosen_attachment, Attachment, Lookup};
use crate::status::{Event, EventKind, Outcome, PgTimestamp, RowState, Status, Timestamps};
use crate::webhook::{parse_webhook, FailureDetail, StatusItem, Verdict, MAX_MESSAGE_ID_BYTES};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{pg_sys, PgSqlErrorCode};
use std::collections::BTreeMap;

/// One event for one message id.
pub struct Incoming {
    pub message_id: String,
    pub event: Event,
}

/// What happened to one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Row(Outcome),
    /// No recipient has the id yet; the event waits in campaign_counters.parked_events.
    Parked,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Row(outcome) => outcome.as_str(),
            Applied::Parked => "parked",
        }
    }
}

fn timestamp(value: Option<TimestampWithTimeZone>) -> Option<PgTimestamp> {
    value.map(|t| t.into_inner())
}

fn timestamp_datum(values: Vec<Option<PgTimestamp>>) -> DatumWithOid<'static> {
    let values: Vec<Option<TimestampWithTimeZone>> = values
        .into_iter()
        .map(|value| {
            value.map(|micros| TimestampWithTimeZone::try_from(micros).expect("a stored timestamp"))
        })
        .collect();
    values.into()
}

/// Applies `events` in the order given to the recipients of `attachment`: one statement reads
/// and locks the rows (in message-id order, so concurrent batches never deadlock on them), the
/// merge happens here, and one UPDATE writes the rows that change. Returns each event's outcome.
///
/// With `absorb_parked`, parked events of the ids found are merged in first: an event parked
/// while its id's transaction was uncommitted (which the trigger cannot see) is applied with the
/// next event for that id.
pub fn apply_events(
    attachment: &Attachment,
    events: &[Incoming],
    absorb_parked: bool,
) -> Vec<Applied> {
    if events.is_empty() {
        return Vec::new();
    }
    let mut ids: Vec<&str> = events
        .iter()
        .map(|incoming| incoming.message_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();

    Spi::connect_mut(|client| {
        let plans = attachment.apply_plans(client);
        let mut rows: BTreeMap<String, RowState> = BTreeMap::new();
        // Where each locked row is (partition, tuple id): the write goes straight there.
        let mut addresses: BTreeMap<String, Vec<(pg_sys::Oid, String)>> = BTreeMap::new();
        for row in client
            .update(&plans.lock_rows, None, &[ids.into()])
            .expect("locking recipients")
        {
            let Some(id) = row.get::<String>(1).expect("id") else {
                continue;
            };
            let status = row
                .get::<&str>(2)
                .expect("status")
                .and_then(|text| Status::parse(text.as_bytes()))
                .unwrap_or(Status::Pending);
            let times = Timestamps {
                sent_at: timestamp(row.get(3).expect("sent_at")),
                delivered_at: timestamp(row.get(4).expect("delivered_at")),
                read_at: timestamp(row.get(5).expect("read_at")),
                failed_at: timestamp(row.get(6).expect("failed_at")),
            };
            let state = RowState { status, times };
            let address = (
                row.get::<pg_sys::Oid>(7).expect("tableoid"),
                row.get::<String>(8).expect("ctid"),
            );
            if let (Some(relation), Some(tuple)) = address {
                addresses
                    .entry(id.clone())
                    .or_default()
                    .push((relation, tuple));
            }
            rows.entry(id)
                .and_modify(|seen| *seen = seen.join(&state))
                .or_insert(state);
        }

        let before = rows.clone();
        if absorb_parked && !rows.is_empty() && any_parked(attachment.recipients) {
            for incoming in take_parked(attachment, rows.keys().cloned().collect()) {
                if let Some(row) = rows.get_mut(&incoming.message_id) {
                    *row = row.with_event(&incoming.event);
                }
            }
        }
        let outcomes: Vec<Applied> = events
            .iter()
            .map(|incoming| match rows.get_mut(&incoming.message_id) {
                Some(row) => {
                    let (next, outcome) = row.apply(&incoming.event);
                    *row = next;
                    Applied::Row(outcome)
                }
                None => Applied::Parked,
            })
            .collect();

        // Parked events are written before the rows: the row write takes campaign row locks (in
        // the trigger), and parked-event keys must come before them in every path, as they do
        // where apply absorbs parked events and where the trigger takes them.
        let parked: Vec<&Incoming> = events
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| **outcome == Applied::Parked)
            .map(|(incoming, _)| incoming)
            .collect();
        if !parked.is_empty() {
            park(attachment, &parked);
        }
        // Rows sharing a message id all get the merge of their states.
        let changed: Vec<(&(pg_sys::Oid, String), &RowState)> = rows
            .iter()
            .filter(|(id, row)| before.get(*id) != Some(row))
            .flat_map(|(id, row)| addresses[id].iter().map(move |address| (address, row)))
            .collect();
        if !changed.is_empty() {
            let args = vec![
                changed
                    .iter()
                    .map(|((relation, _), _)| *relation)
                    .collect::<Vec<_>>()
                    .into(),
                changed
                    .iter()
                    .map(|((_, tuple), _)| tuple.as_str())
                    .collect::<Vec<_>>()
                    .into(),
                changed
                    .iter()
                    .map(|(_, row)| row.status.as_str())
                    .collect::<Vec<_>>()
                    .into(),
                timestamp_datum(changed.iter().map(|(_, row)| row.times.sent_at).collect()),
                timestamp_datum(
                    changed
                        .iter()
                        .map(|(_, row)| row.times.delivered_at)
                        .collect(),
                ),
                timestamp_datum(changed.iter().map(|(_, row)| row.times.read_at).collect()),
                timestamp_datum(changed.iter().map(|(_, row)| row.times.failed_at).collect()),
            ];
            client
                .update(&plans.write_rows, None, &args)
                .expect("writing recipients");
        }

        outcomes
    })
}

/// Keeps events for ids no recipient has yet. Sorted and deduplicated first, so two batches that
/// park the same ids insert (and wait for each other's uncommitted inserts) in one order.
fn park(attachment: &Attachment, events: &[&Incoming]) {
    let mut events = events.to_vec();
    events.sort_by(|a, b| {
        (
            a.message_id.as_str(),
            a.event.kind.as_str(),
            a.event.occurred_at,
        )
            .cmp(&(
                b.message_id.as_str(),
                b.event.kind.as_str(),
                b.event.occurred_at,
            ))
    });
    events.dedup_by(|a, b| a.message_id == b.message_id && a.event == b.event);
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
        ),
    ];
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO campaign_counters.parked_events (recipients, whatsapp_message_id, status, occurred_at)
             SELECT $1::regclass, id, status, occurred_at
               FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS event(id, status, occurred_at)
             ON CONFLICT DO NOTHING",
            &args,
        )
        .expect("parking events")
    });
}

/// Whether any event waits for a recipient of `recipients`: the trigger asks this before it
/// collects the message ids a statement assigned.
pub fn any_parked(recipients: pg_sys::Oid) -> bool {
    as_extension_owner(|| {
        Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT FROM campaign_counters.parked_events WHERE recipients = $1::regclass)",
        &[recipients.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
    })
}

/// Removes and returns the parked events of `message_ids` (the extension's table, read as its owner).
fn take_parked(attachment: &Attachment, message_ids: Vec<String>) -> Vec<Incoming> {
    let mut taken = Vec::new();
    as_extension_owner(|| {
        Spi::connect_mut(|client| {
            let rows = client
                .update(
                    "DELETE FROM campaign_counters.parked_events
                      WHERE recipients = $1::regclass AND whatsapp_message_id = ANY($2)
                     RETURNING whatsapp_message_id, status, occurred_at",
                    None,
                    &[attachment.recipients.into(), message_ids.into()],
                )
                .expect("taking parked events");
            for row in rows {
                let (Ok(Some(message_id)), Ok(Some(kind)), Ok(Some(occurred_at))) = (
                    row.get::<String>(1),
                    row.get::<&str>(2),
                    row.get::<TimestampWithTimeZone>(3),
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
        })
    });
    taken
}

/// Applies and removes the parked events of message ids that recipients just got, as the
/// recipients' owner. Returns how many.
pub fn apply_parked(attachment: &Attachment, message_ids: Vec<String>) -> usize {
    let waiting = take_parked(attachment, message_ids);
    // Events come back in no particular order; the merge does not depend on it.
    as_role(attachment.recipients_owner, || {
        apply_events(attachment, &waiting, false)
    });
    waiting.len()
}

/// The sweep for parked events the trigger could not see: an event parked while the transaction
/// that gives a recipient its id is still uncommitted stays parked until this runs.
#[pg_extern(sql = false)]
fn apply_parked_events(recipients: Option<pg_sys::Oid>) -> i64 {
    pinned(|| {
        let attachment = chosen_attachment(recipients, Lookup::Recipients);
        require_update(attachment.recipients);
        let parked: Vec<String> = as_extension_owner(|| {
            Spi::connect(|client| {
                client
                    .select(
                        "SELECT DISTINCT whatsapp_message_id FROM campaign_counters.parked_events
                          WHERE recipients = $1::regclass",
                        None,
                        &[attachment.recipients.into()],
                    )
                    .map(|rows| {
                        rows.filter_map(|row| row.get::<String>(1).ok().flatten())
                            .collect()
                    })
            })
            .expect("reading parked events")
        });
        if parked.is_empty() {
            return 0;
        }
        let arrived: Vec<String> = Spi::connect(|client| {
            client
                .select(
                    &format!(
                        "SELECT DISTINCT whatsapp_message_id::text FROM {} WHERE whatsapp_message_id = ANY($1)",
                        attachment.recipients_name
                    ),
                    None,
                    &[parked.into()],
                )
                .map(|rows| rows.filter_map(|row| row.get::<String>(1).ok().flatten()).collect())
        })
        .expect("finding recipients of parked events");
        if arrived.is_empty() {
            return 0;
        }
        apply_parked(&attachment, arrived) as i64
    })
}

/// Stores Meta's error details of failed statuses, one row per message id and error code with
/// the earliest failure time (a batch may carry the same failure twice).
fn record_failures(attachment: &Attachment, failures: &[(&str, &FailureDetail, PgTimestamp)]) {
    let mut unique: BTreeMap<(&str, i32), (&FailureDetail, PgTimestamp)> = BTreeMap::new();
    for (id, detail, at) in failures {
        let Some(code) = detail.code else { continue };
        unique
            .entry((id, code))
            .and_modify(|(_, earliest)| *earliest = (*earliest).min(*at))
            .or_insert((detail, *at));
    }
    if unique.is_empty() {
        return;
    }
    let args = vec![
        attachment.recipients.into(),
        unique.keys().map(|(id, _)| *id).collect::<Vec<_>>().into(),
        unique
            .keys()
            .map(|(_, code)| *code)
            .collect::<Vec<i32>>()
            .into(),
        unique
            .values()
            .map(|(detail, _)| detail.title.as_deref())
            .collect::<Vec<_>>()
            .into(),
        unique
            .values()
            .map(|(detail, _)| detail.message.as_deref())
            .collect::<Vec<_>>()
            .into(),
        unique
            .values()
            .map(|(detail, _)| detail.details.as_deref())
            .collect::<Vec<_>>()
            .into(),
        timestamp_datum(unique.values().map(|(_, at)| Some(*at)).collect()),
    ];
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO campaign_counters.recipient_failures
                    (recipients, whatsapp_message_id, code, title, message, details, failed_at)
             SELECT $1::regclass, f.* FROM unnest($2::text[], $3::int4[], $4::text[], $5::text[], $6::text[], $7::timestamptz[]) AS f
             ON CONFLICT (recipients, whatsapp_message_id, code)
             DO UPDATE SET failed_at = least(recipient_failures.failed_at, excluded.failed_at)",
            &args,
        )
        .expect("recording failures")
    });
}

#[pg_extern(sql = false)]
fn apply_recipient_status(
    whatsapp_message_id: Option<&str>,
    status: Option<&str>,
    occurred_at: Option<TimestampWithTimeZone>,
    recipients: Option<pg_sys::Oid>,
) -> &'static str {
    let message_id = required(whatsapp_message_id, "whatsapp_message_id");
    let status = required(status, "status");
    if message_id.is_empty() || message_id.len() > MAX_MESSAGE_ID_BYTES {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "whatsapp_message_id must have 1 to {MAX_MESSAGE_ID_BYTES} bytes, not {}",
                message_id.len()
            ),
            None,
            None,
        );
    }
    let Some(kind) = EventKind::parse(status) else {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown status event \"{status}\""),
            Some(format!("Accepted status events: {}.", EventKind::ACCEPTED)),
            None,
        );
    };
    let occurred_at = match occurred_at {
        Some(at) if !at.is_finite() => raise(
            PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
            "occurred_at must be a finite timestamp",
            None,
            None,
        ),
        Some(at) => at.into_inner(),
        None => unsafe { pg_sys::GetCurrentTransactionStartTimestamp() },
    };
    pinned(|| {
        let attachment = chosen_attachment(recipients, Lookup::Recipients);
        let incoming = [Incoming {
            message_id: message_id.to_string(),
            event: Event { kind, occurred_at },
        }];
        apply_events(&attachment, &incoming, true)[0].as_str()
    })
}

/// A jsonb argument handed over as its text: serde reads it with clean errors where pgrx's
/// `JsonB` would panic (for example on nesting deeper than serde_json's limit).
pub struct JsonbText(String);

impl FromDatum for JsonbText {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        let text =
            pgrx::direct_function_call::<&core::ffi::CStr>(pg_sys::jsonb_out, &[Some(datum)])
                .expect("jsonb_out returns text");
        Some(JsonbText(text.to_string_lossy().into_owned()))
    }
}

unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for JsonbText {
    unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
        unsafe { arg.unbox_arg_using_from_datum() }.expect("payload is not null")
    }
}

unsafe impl pgrx::pgrx_sql_entity_graph::metadata::SqlTranslatable for JsonbText {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(JsonbText);
    const TYPE_ORIGIN: pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin =
        pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin::External;
    const ARGUMENT_SQL: Result<
        pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef,
        pgrx::pgrx_sql_entity_graph::metadata::ArgumentError,
    > = Ok(pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: Result<
        pgrx::pgrx_sql_entity_graph::metadata::ReturnsRef,
        pgrx::pgrx_sql_entity_graph::metadata::ReturnsError,
    > = Ok(pgrx::pgrx_sql_entity_graph::metadata::ReturnsRef::One(
        pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef::literal("jsonb"),
    ));
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
    let JsonbText(body) = required(payload, "payload");
    let items: Vec<StatusItem> = parse_webhook(&body).unwrap_or_else(|error| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("not a WhatsApp status webhook: {error}"),
            Some("Expected Meta's POST body: {\"object\": \"whatsapp_business_account\", \"entry\": [{\"changes\": [{\"field\": \"messages\", \"value\": {\"statuses\": [...]}}]}]}.".into()),
            None,
        )
    });
    let results = pinned(|| {
        let attachment = chosen_attachment(recipients, Lookup::Recipients);
        let mut incoming = Vec::new();
        let mut failures = Vec::new();
        for item in &items {
            if let (
                Verdict::Event {
                    event,
                    failures: details,
                },
                Some(id),
            ) = (&item.verdict, &item.whatsapp_message_id)
            {
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
        let mut applied = apply_events(&attachment, &incoming, true).into_iter();
        record_failures(&attachment, &failures);
        items
            .iter()
            .map(|item| {
                let outcome = match &item.verdict {
                    Verdict::Event { .. } => {
                        applied.next().expect("one outcome per event").as_str()
                    }
                    Verdict::Ignored => "ignored",
                    Verdict::Invalid { .. } => "invalid",
                };
                (
                    item.whatsapp_message_id.clone(),
                    item.status.clone(),
                    outcome.to_string(),
                )
            })
            .collect::<Vec<_>>()
    });
    TableIterator::new(results)
}

#[pg_extern(sql = false)]
fn purge_parked_events(older_than: Option<pgrx::datum::Interval>) -> i64 {
    let older_than = required(older_than, "older_than");
    pinned(|| {
        Spi::connect_mut(|client| {
            client
                .update(
                    "DELETE FROM campaign_counters.parked_events WHERE parked_at < now() - $1",
                    None,
                    &[older_than.into()],
                )
                .map(|deleted| deleted.len() as i64)
        })
        .expect("purging parked events")
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
    let campaign_id = required(campaign_id, "campaign_id");
    let rows = pinned(|| {
        let attachment = chosen_attachment(campaigns, Lookup::Campaigns);
        // The caller reads their own recipients; the failure details are read as the extension
        // owner, joined only to the rows the caller could read.
        let failed: Vec<String> = Spi::connect(|client| {
            client
                .select(
                    &format!(
                        "SELECT whatsapp_message_id::text FROM {} WHERE campaign_id = CAST($1 AS {}) AND status = 'failed'",
                        attachment.recipients_name, attachment.id_type_name
                    ),
                    None,
                    &[campaign_id.into()],
                )
                .map(|rows| rows.map(|row| row.get::<String>(1).ok().flatten().unwrap_or_default()).collect())
        })
        .expect("reading failed recipients");
        as_extension_owner(|| {
            Spi::connect(|client| {
                client
                    .select(
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
                    )
                    .map(|rows| {
                        rows.map(|row| {
                            (
                                row.get::<i32>(1).ok().flatten(),
                                row.get::<String>(2).ok().flatten(),
                                row.get::<i64>(3).ok().flatten().unwrap_or(0),
                            )
                        })
                        .collect::<Vec<_>>()
                    })
            })
            .expect("reading failure reasons")
        })
    });
    TableIterator::new(rows)
}
