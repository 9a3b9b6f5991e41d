//! Reads in the newest committed state rather than the transaction's snapshot: what a REPEATABLE READ transaction cannot see, but must know about to stay exact.

use crate::attachment::KeyFamily;
use crate::counters::CampaignKey;
use crate::error::Result;
use crate::status::Status;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::{CStr, CString};

/// One (campaign, status, recipients) group of a count query read as text
/// (`campaign_id::text, status::text, count(*)`); rows whose status counts nowhere are skipped.
pub fn text_group(family: KeyFamily, row: &[Option<String>]) -> Option<(CampaignKey, Status, i64)> {
    let key = family.parse(row.first()?.as_deref()?)?;
    let status = Status::parse(row.get(1)?.as_deref()?.as_bytes())?;
    let number = row.get(2)?.as_deref()?.parse().ok()?;
    Some((key, status, number))
}

/// Runs a read-only `query` under a snapshot taken now, and returns its rows with every column as
/// text (NULL as None). Must run inside an SPI connection.
pub fn select_text_in_latest_snapshot(
    query: &str,
    arguments: &[DatumWithOid<'_>],
) -> Result<Vec<Vec<Option<String>>>> {
    let query = CString::new(query).map_err(|_| {
        crate::error::Error::new(
            pgrx::PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
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
    // SAFETY: the snapshot pushed here is popped before returning (an ERROR in between aborts
    // the transaction, which resets the active snapshot stack); read_only = true makes SPI run
    // the query in exactly that active snapshot. The argument arrays outlive the call, and
    // SPI_tuptable is read only up to SPI_processed rows, before any other SPI call.
    unsafe {
        pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot());
        let status = pg_sys::SPI_execute_with_args(
            query.as_ptr(),
            arguments.len() as i32,
            types.as_mut_ptr(),
            values.as_mut_ptr(),
            nulls.as_ptr(),
            true,
            0,
        );
        pg_sys::PopActiveSnapshot();
        if status == pg_sys::SPI_OK_SELECT as i32 && !pg_sys::SPI_tuptable.is_null() {
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

/// Whether `query` (one argument) returns a row in a snapshot taken now.
pub fn exists_in_latest_snapshot(query: &str, argument: DatumWithOid<'_>) -> Result<bool> {
    Spi::connect(|_| Ok(!select_text_in_latest_snapshot(query, &[argument])?.is_empty()))
}
