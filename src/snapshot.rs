//! Reads in the newest committed state rather than the transaction's snapshot: what a REPEATABLE READ transaction cannot see, but must know about to stay exact.

use crate::attachment::KeyFamily;
use crate::counters::CampaignKey;
use crate::error::{Error, Result};
use crate::status::Status;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{pg_sys, PgSqlErrorCode};
use std::ffi::{CStr, CString};

/// One (campaign, status, recipients) group of a count query read as text
/// (`campaign_id::text, status::text, count(*)`); rows whose status counts nowhere are skipped.
pub fn text_group(family: KeyFamily, row: &[Option<String>]) -> Option<(CampaignKey, Status, i64)> {
    let key = family.parse(row.first()?.as_deref()?)?;
    let status = Status::parse(row.get(1)?.as_deref()?.as_bytes())?;
    let number = row.get(2)?.as_deref()?.parse().ok()?;
    Some((key, status, number))
}

/// A snapshot of the newest committed state, registered so that several statements (run as
/// different roles, say) read exactly the same state. Unregistered when dropped.
pub struct LatestSnapshot(pg_sys::Snapshot);

impl LatestSnapshot {
    pub fn take() -> LatestSnapshot {
        // SAFETY: GetLatestSnapshot returns a static snapshot that RegisterSnapshot copies and
        // registers with the current resource owner; `Drop` unregisters it once.
        LatestSnapshot(unsafe { pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot()) })
    }

    /// Runs `query` (a SELECT, or a data-modifying statement with or without RETURNING) in this
    /// snapshot, seeing the transaction's own changes, and returns its rows with every column as
    /// text (NULL as None). Must run inside an SPI connection.
    pub fn rows(
        &self,
        query: &str,
        arguments: &[DatumWithOid<'_>],
    ) -> Result<Vec<Vec<Option<String>>>> {
        text_rows(query, arguments, self.0, false)
    }
}

/// Runs the read-only `query` in the caller's snapshot (the active one: a STABLE function's
/// query sees what the statement calling it sees), whether or not the transaction has written,
/// and returns its rows as text. pgrx runs queries read-only only while the transaction has no
/// id; with one, each would take a snapshot of its own in READ COMMITTED.
pub fn select_text_in_active_snapshot(
    query: &str,
    arguments: &[DatumWithOid<'_>],
) -> Result<Vec<Vec<Option<String>>>> {
    // SAFETY: a function called from SQL runs with an active snapshot.
    text_rows(
        query,
        arguments,
        unsafe { pg_sys::GetActiveSnapshot() },
        true,
    )
}

/// Runs `query` in `snapshot` (read_only: as is; otherwise a copy with the current command id,
/// seeing the transaction's own changes, as RI triggers do) and returns its rows as text.
fn text_rows(
    query: &str,
    arguments: &[DatumWithOid<'_>],
    snapshot: pg_sys::Snapshot,
    read_only: bool,
) -> Result<Vec<Vec<Option<String>>>> {
    {
        let query = CString::new(query).map_err(|_| {
            Error::new(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                "query text holds a NUL byte",
            )
        })?;
        let mut types: Vec<pg_sys::Oid> = arguments.iter().map(DatumWithOid::oid).collect();
        let mut values: Vec<pg_sys::Datum> = arguments
            .iter()
            .map(|argument| {
                argument
                    .datum()
                    .map_or(pg_sys::Datum::from(0), |d| d.sans_lifetime())
            })
            .collect();
        let nulls: Vec<std::ffi::c_char> = arguments
            .iter()
            .map(|argument| if argument.datum().is_some() { b' ' } else { b'n' } as std::ffi::c_char)
            .collect();
        let mut rows = Vec::new();
        // SAFETY: the query text and the argument arrays outlive the calls; the snapshot stays
        // valid for the call (registered, or the active one). The plan is freed
        // before returning (an ERROR in between aborts the transaction, which frees it), and
        // SPI_tuptable is read only up to SPI_processed rows, before any other SPI call.
        unsafe {
            // Parallel query allowed, as for SPI's one-shot plans: a recount of millions of
            // recipients runs as fast as the same GROUP BY typed by hand.
            let plan = pg_sys::SPI_prepare_cursor(
                query.as_ptr(),
                arguments.len() as i32,
                types.as_mut_ptr(),
                pg_sys::CURSOR_OPT_PARALLEL_OK as i32,
            );
            if plan.is_null() {
                return Err(spi_failure(pg_sys::SPI_result));
            }
            let status = pg_sys::SPI_execute_snapshot(
                plan,
                values.as_mut_ptr(),
                nulls.as_ptr(),
                snapshot,
                std::ptr::null_mut(),
                read_only,
                true,
                0,
            );
            pg_sys::SPI_freeplan(plan);
            if status < 0 {
                return Err(spi_failure(status));
            }
            if !pg_sys::SPI_tuptable.is_null() {
                let table = &*pg_sys::SPI_tuptable;
                let columns = (*table.tupdesc).natts;
                for index in 0..pg_sys::SPI_processed as usize {
                    let tuple = *table.vals.add(index);
                    let mut row = Vec::with_capacity(columns as usize);
                    for column in 1..=columns {
                        let text = pg_sys::SPI_getvalue(tuple, table.tupdesc, column);
                        row.push(if text.is_null() {
                            None
                        } else {
                            Some(CStr::from_ptr(text).to_string_lossy().into_owned())
                        });
                    }
                    rows.push(row);
                }
            }
        }
        Ok(rows)
    }
}

impl Drop for LatestSnapshot {
    fn drop(&mut self) {
        // SAFETY: registered in `take` with the same resource owner, unregistered once.
        unsafe { pg_sys::UnregisterSnapshot(self.0) };
    }
}

fn spi_failure(status: i32) -> Error {
    Error::new(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("SPI failed with status {status}"),
    )
}

/// Runs `query` under a snapshot taken now and returns its rows as text. Must run inside an SPI
/// connection.
pub fn select_text_in_latest_snapshot(
    query: &str,
    arguments: &[DatumWithOid<'_>],
) -> Result<Vec<Vec<Option<String>>>> {
    LatestSnapshot::take().rows(query, arguments)
}

/// Whether `query` (one argument) returns a row in a snapshot taken now.
pub fn exists_in_latest_snapshot(query: &str, argument: DatumWithOid<'_>) -> Result<bool> {
    Spi::connect(|_| Ok(!select_text_in_latest_snapshot(query, &[argument])?.is_empty()))
}
