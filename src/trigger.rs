//! The recipients trigger: turns each statement's transition tables into per-campaign counter changes, old rows and new rows each counted on their own.

use crate::apply;
use crate::attachment::{forget_all, trigger_target, Column, KeyKind, TriggerTarget};
use crate::context::{as_role, qualified_name};
use crate::counters::CampaignDeltas;
use crate::error::{self, or_raise, Error};
use crate::mode::Mode;
use crate::recalc::{repair, Acting};
use crate::status::Status;
use pgrx::prelude::*;
use pgrx::{pg_sys, PgSqlErrorCode};
use std::cell::RefCell;
use std::rc::Rc;

/// Reads the rows of a transition table through a tuple slot, without copying them.
struct TransitionRows {
    store: *mut pg_sys::Tuplestorestate,
    slot: *mut pg_sys::TupleTableSlot,
    /// Attributes deformed into the slot for each row: values past it are never read.
    columns_read: i32,
}

impl TransitionRows {
    /// # Safety
    /// `store` must be null or a transition tuplestore of the firing trigger whose rows have
    /// the row type `descriptor`, and stay valid while the result lives.
    unsafe fn open(
        store: *mut pg_sys::Tuplestorestate,
        descriptor: pg_sys::TupleDesc,
        columns_read: i32,
    ) -> Option<Self> {
        if store.is_null() {
            return None;
        }
        // SAFETY: per the caller, a valid tuplestore and descriptor; read pointer 0 always exists.
        unsafe {
            pg_sys::tuplestore_select_read_pointer(store, 0);
            pg_sys::tuplestore_rescan(store);
            let slot = pg_sys::MakeSingleTupleTableSlot(descriptor, &pg_sys::TTSOpsMinimalTuple);
            Some(TransitionRows {
                store,
                slot,
                columns_read: columns_read.min((*descriptor).natts),
            })
        }
    }

    /// Moves to the next row; false at the end.
    fn advance(&mut self) -> bool {
        // SAFETY: `store` and `slot` are valid for the life of self (see `open`); the slot is
        // made for the store's row type.
        unsafe {
            if !pg_sys::tuplestore_gettupleslot(self.store, true, false, self.slot) {
                return false;
            }
            pg_sys::slot_getsomeattrs(self.slot, self.columns_read);
        }
        true
    }

    /// The current row's value of `column`, None for NULL or for a column that was not read.
    fn value(&self, column: &Column) -> Option<pg_sys::Datum> {
        let attnum = column.attnum as i32;
        if attnum < 1 || attnum > self.columns_read {
            return None;
        }
        let index = (attnum - 1) as usize;
        // SAFETY: after `advance`, the slot holds at least `columns_read` deformed attributes,
        // and the index is below that.
        unsafe {
            if *(*self.slot).tts_isnull.add(index) {
                None
            } else {
                Some(*(*self.slot).tts_values.add(index))
            }
        }
    }

    /// The current row's text value of `column`, detoasted; borrowed until the next row.
    fn text(&self, column: &Column) -> Option<&[u8]> {
        // SAFETY: the column was validated as text or varchar for this relation (the target
        // `describes` the slot's descriptor), so a non-null value is a varlena.
        self.value(column)
            .map(|datum| unsafe { crate::attachment::detoasted_bytes(datum) })
    }
}

impl Drop for TransitionRows {
    fn drop(&mut self) {
        // SAFETY: the slot was made by MakeSingleTupleTableSlot in `open` and is dropped once.
        unsafe { pg_sys::ExecDropSingleTupleTableSlot(self.slot) };
    }
}

impl TriggerTarget {
    /// Counts every row of `rows` into `deltas` with `sign` (-1 for old rows, +1 for new rows).
    fn count(
        &self,
        rows: &mut TransitionRows,
        sign: i64,
        deltas: &mut CampaignDeltas,
        relation: pg_sys::Oid,
    ) -> error::Result<()> {
        let kind: KeyKind = self.campaign_id_kind;
        while rows.advance() {
            let Some(datum) = rows.value(&self.campaign_id_column) else {
                continue;
            };
            // SAFETY: the column's base type was validated as this kind for the slot's descriptor.
            let campaign = unsafe { kind.key(datum) };
            let status_bytes = rows.text(&self.status_column);
            match (status_bytes.and_then(Status::parse), sign > 0) {
                (Some(status), _) => deltas.count_row(campaign, status, sign),
                // A row stored before the table was attached may hold anything; it counted for nothing.
                (None, false) => {}
                (None, true) => {
                    let shown = status_bytes
                        .map(|bytes| format!("\"{}\"", String::from_utf8_lossy(bytes)))
                        .unwrap_or_else(|| "NULL".to_string());
                    return Err(Error::new(
                        PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
                        format!(
                            "invalid recipient status {shown} in table {}",
                            qualified_name(relation)?
                        ),
                    )
                    .detail(format!("Accepted statuses: {}.", Status::ACCEPTED))
                    .hint(
                        "campaign_counters counts recipients by status; fix the value and retry.",
                    ));
                }
            }
        }
        Ok(())
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

/// The cached target of the firing relation, reloaded once if its row type changed since.
fn current_target(
    relation: pg_sys::Oid,
    descriptor: pg_sys::TupleDesc,
) -> error::Result<Rc<TriggerTarget>> {
    let target = trigger_target(relation)?;
    // SAFETY: the firing relation's descriptor is valid for the whole trigger call.
    if unsafe { target.describes(descriptor) } {
        return Ok(target);
    }
    forget_all();
    let target = trigger_target(relation)?;
    // SAFETY: as above.
    if unsafe { target.describes(descriptor) } {
        return Ok(target);
    }
    Err(Error::new(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!(
            "the columns of {} changed in a way campaign_counters cannot follow",
            qualified_name(relation)?
        ),
    )
    .hint("Detach the table with campaign_counters.detach() and attach it again."))
}

/// Whether the statement's new rows may carry message ids they did not have: an INSERT, or an
/// UPDATE that sets whatsapp_message_id (the only writes parked events can be waiting for). A
/// status update, the hot path, skips the parked-event lookup.
fn gives_message_ids(data: &pg_sys::TriggerData, target: &TriggerTarget) -> bool {
    if data.tg_newtable.is_null() {
        return false;
    }
    if data.tg_event & pg_sys::TRIGGER_EVENT_OPMASK != pg_sys::TRIGGER_EVENT_UPDATE {
        return true;
    }
    let member =
        target.message_id_column.attnum as i32 - pg_sys::FirstLowInvalidHeapAttributeNumber;
    // SAFETY: tg_updatedcols is null or the UPDATE's target-column bitmapset, valid for the call.
    data.tg_updatedcols.is_null() || unsafe { pg_sys::bms_is_member(member, data.tg_updatedcols) }
}

fn count_statement(trigger: &PgTrigger<'_>) -> error::Result<()> {
    let data = trigger.trigger_data();
    // SAFETY: PostgreSQL passes a valid relation for the whole trigger call.
    let (relation, descriptor) = unsafe { ((*data.tg_relation).rd_id, (*data.tg_relation).rd_att) };
    let target = current_target(relation, descriptor)?;
    let attachment = &target.attachment;
    if data.tg_event & pg_sys::TRIGGER_EVENT_OPMASK == pg_sys::TRIGGER_EVENT_TRUNCATE {
        repair(attachment, None, Acting::AsOwners)?;
        return Ok(());
    }

    let columns_read = target
        .campaign_id_column
        .attnum
        .max(target.status_column.attnum) as i32;
    let mut deltas = CampaignDeltas::default();
    // Old rows and new rows are counted each on their own: the two tables of one statement need
    // not pair up (a row moved to a partition whose BEFORE trigger drops it, MERGE, CTEs).
    for (store, sign) in [(data.tg_oldtable, -1), (data.tg_newtable, 1)] {
        // SAFETY: the transition tables of this trigger call hold rows of the firing relation.
        if let Some(mut rows) = unsafe { TransitionRows::open(store, descriptor, columns_read) } {
            target.count(&mut rows, sign, &mut deltas, relation)?;
        }
    }

    if gives_message_ids(data, &target) && apply::any_parked(attachment.recipients)? {
        let deferral = Deferral::begin(attachment.recipients);
        let trigger_data = std::ptr::from_ref(data).cast_mut();
        apply::absorb_parked_for_new_rows(attachment, trigger_data)?;
        deltas.merge(deferral.finish());
    }
    if let Some(deltas) = Deferral::hand_over(attachment.recipients, deltas) {
        match attachment.mode {
            // The writer needs no rights on the campaigns table: its owner writes the counters.
            Mode::Immediate => as_role(attachment.campaigns_owner, || {
                attachment.write_deltas(deltas.nonzero())
            })?,
            Mode::Deferred => attachment.record_pending(deltas.nonzero())?,
        }
    }
    Ok(())
}

#[pg_trigger(sql = false)]
fn count_recipients<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    or_raise(count_statement(trigger));
    Ok(None)
}
