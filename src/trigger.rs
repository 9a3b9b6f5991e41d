//! Trigger plumbing: the statement-level trigger that turns a write's transition tables into per-campaign counter changes.

use crate::counters::{CampaignDeltas, CampaignKey};
use crate::session::{as_role, qualified_name, raise};
use crate::shape::{text_bytes, trigger_target, KeyKind, TriggerTarget};
use crate::status::Status;
use crate::{apply, recalc};
use pgrx::prelude::*;
use pgrx::{pg_sys, PgSqlErrorCode};
use std::cell::RefCell;

/// Reads the rows of a transition table through a tuple slot, without copying them.
struct TransitionRows {
    store: *mut pg_sys::Tuplestorestate,
    slot: *mut pg_sys::TupleTableSlot,
    columns_needed: i32,
}

impl TransitionRows {
    /// # Safety
    /// `store` must be a transition tuplestore of the trigger whose relation has `descriptor`.
    unsafe fn open(
        store: *mut pg_sys::Tuplestorestate,
        descriptor: pg_sys::TupleDesc,
        columns_needed: i32,
    ) -> Option<Self> {
        if store.is_null() {
            return None;
        }
        pg_sys::tuplestore_select_read_pointer(store, 0);
        pg_sys::tuplestore_rescan(store);
        let slot = pg_sys::MakeSingleTupleTableSlot(descriptor, &pg_sys::TTSOpsMinimalTuple);
        Some(TransitionRows {
            store,
            slot,
            columns_needed,
        })
    }

    fn advance(&mut self) -> bool {
        unsafe {
            if !pg_sys::tuplestore_gettupleslot(self.store, true, false, self.slot) {
                return false;
            }
            pg_sys::slot_getsomeattrs(self.slot, self.columns_needed);
        }
        true
    }

    fn value(&self, attnum: i32) -> Option<pg_sys::Datum> {
        let index = (attnum - 1) as usize;
        unsafe {
            if *(*self.slot).tts_isnull.add(index) {
                None
            } else {
                Some(*(*self.slot).tts_values.add(index))
            }
        }
    }
}

impl Drop for TransitionRows {
    fn drop(&mut self) {
        unsafe { pg_sys::ExecDropSingleTupleTableSlot(self.slot) };
    }
}

/// Which way a row counts: leaving its campaign (old rows) or joining it (new rows).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Old,
    New,
}

impl TriggerTarget {
    fn campaign(&self, rows: &TransitionRows) -> Option<CampaignKey> {
        let kind: KeyKind = self.attachment.key_kind;
        rows.value(self.campaign_id)
            .map(|datum| unsafe { kind.key(datum) })
    }

    fn count(
        &self,
        rows: &TransitionRows,
        side: Side,
        deltas: &mut CampaignDeltas,
        relation: pg_sys::Oid,
    ) {
        let Some(campaign) = self.campaign(rows) else {
            return;
        };
        let status_bytes = rows
            .value(self.status)
            .map(|datum| unsafe { text_bytes(datum) });
        match (status_bytes.and_then(Status::parse), side) {
            (Some(status), Side::Old) => deltas.count_row(campaign, status, -1),
            (Some(status), Side::New) => deltas.count_row(campaign, status, 1),
            // A row stored before the table was attached may hold anything; it counted for nothing.
            (None, Side::Old) => {}
            (None, Side::New) => {
                let shown = status_bytes
                    .map(|bytes| format!("\"{}\"", String::from_utf8_lossy(bytes)))
                    .unwrap_or_else(|| "NULL".to_string());
                raise(
                    PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
                    format!(
                        "invalid recipient status {shown} in table {}",
                        qualified_name(relation)
                    ),
                    Some(format!("Accepted statuses: {}.", Status::ACCEPTED)),
                    Some("campaign_counters counts recipients by status; fix the value and retry."),
                )
            }
        }
    }

    fn message_id(&self, rows: &TransitionRows) -> Option<&[u8]> {
        rows.value(self.whatsapp_message_id)
            .map(|datum| unsafe { text_bytes(datum) })
    }
}

/// Message ids that rows got in this statement, collected only while parked events exist.
struct NewMessageIds {
    recipients: pg_sys::Oid,
    any_parked: Option<bool>,
    ids: Vec<String>,
}

impl NewMessageIds {
    fn offer(&mut self, id: Option<&[u8]>, before: Option<&[u8]>) {
        let Some(id) = id else { return };
        if before == Some(id) {
            return;
        }
        let recipients = self.recipients;
        if *self
            .any_parked
            .get_or_insert_with(|| apply::any_parked(recipients))
        {
            self.ids.push(String::from_utf8_lossy(id).into_owned());
        }
    }
}

thread_local! {
    /// Counter changes of statements nested in a trigger (the UPDATE that applies parked events),
    /// handed to the outer trigger so that one statement writes, and locks, its campaigns once and
    /// in id order.
    static DEFERRED: RefCell<Vec<(pg_sys::Oid, CampaignDeltas)>> = const { RefCell::new(Vec::new()) };
}

/// While alive, triggers on `recipients` add their changes here instead of writing them. Dropped
/// on error too, so an aborted statement leaves nothing behind for the next one.
struct Deferral;

impl Deferral {
    fn begin(recipients: pg_sys::Oid) -> Deferral {
        DEFERRED.with_borrow_mut(|stack| stack.push((recipients, CampaignDeltas::default())));
        Deferral
    }

    fn finish(self) -> CampaignDeltas {
        let deferred = DEFERRED
            .with_borrow_mut(Vec::pop)
            .map(|(_, deltas)| deltas)
            .unwrap_or_default();
        std::mem::forget(self);
        deferred
    }

    /// Gives `deltas` to an enclosing trigger on the same table, if there is one.
    fn hand_over(recipients: pg_sys::Oid, deltas: CampaignDeltas) -> Option<CampaignDeltas> {
        DEFERRED.with_borrow_mut(|stack| match stack.last_mut() {
            Some((outer, sink)) if *outer == recipients => {
                sink.merge(deltas);
                None
            }
            _ => Some(deltas),
        })
    }
}

impl Drop for Deferral {
    fn drop(&mut self) {
        DEFERRED.with_borrow_mut(Vec::pop);
    }
}

#[pg_trigger(sql = false)]
fn count_recipients<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    let data = trigger.trigger_data();
    let relation = unsafe { (*data.tg_relation).rd_id };
    let target = trigger_target(relation);
    let operation = data.tg_event & pg_sys::TRIGGER_EVENT_OPMASK;
    let attachment = &target.attachment;
    if operation == pg_sys::TRIGGER_EVENT_TRUNCATE {
        as_role(attachment.campaigns_owner, || {
            recalc::recount(attachment, None, recalc::Mode::Repair)
        });
        return Ok(None);
    }

    let descriptor = unsafe { (*data.tg_relation).rd_att };
    let columns_needed = target
        .campaign_id
        .max(target.status)
        .max(target.whatsapp_message_id);
    let mut old_rows =
        unsafe { TransitionRows::open(data.tg_oldtable, descriptor, columns_needed) };
    let mut new_rows =
        unsafe { TransitionRows::open(data.tg_newtable, descriptor, columns_needed) };
    let mut deltas = CampaignDeltas::default();
    let mut new_ids = NewMessageIds {
        recipients: attachment.recipients,
        any_parked: None,
        ids: Vec::new(),
    };

    match (&mut old_rows, &mut new_rows) {
        // An UPDATE stores each row's old and new version at the same position.
        (Some(old), Some(new)) => {
            while old.advance() {
                new.advance();
                target.count(old, Side::Old, &mut deltas, relation);
                target.count(new, Side::New, &mut deltas, relation);
                new_ids.offer(target.message_id(new), target.message_id(old));
            }
        }
        (None, Some(new)) => {
            while new.advance() {
                target.count(new, Side::New, &mut deltas, relation);
                new_ids.offer(target.message_id(new), None);
            }
        }
        (Some(old), None) => {
            while old.advance() {
                target.count(old, Side::Old, &mut deltas, relation);
            }
        }
        (None, None) => {}
    }
    drop((old_rows, new_rows));

    if !new_ids.ids.is_empty() {
        let deferral = Deferral::begin(attachment.recipients);
        apply::apply_parked(attachment, new_ids.ids);
        deltas.merge(deferral.finish());
    }
    if let Some(deltas) = Deferral::hand_over(attachment.recipients, deltas) {
        // The writer needs no rights on the campaigns table: its owner writes the counters.
        as_role(attachment.campaigns_owner, || {
            attachment.write_deltas(deltas.nonzero())
        });
    }
    Ok(None)
}
