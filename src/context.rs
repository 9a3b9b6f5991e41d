//! Calling context of the SQL entry points: table-name defaults, the pinned search_path, acting as the extension owner, and error reporting.

use crate::error::{Error, Result};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{pg_sys, PgSqlErrorCode};
use std::ffi::CStr;

/// The search_path every query of the extension runs under, so objects users create in other
/// schemas (operators, functions, tables named like ours) cannot be picked up instead of the
/// built-in ones.
const PINNED_SEARCH_PATH: &CStr = c"pg_catalog, pg_temp";

/// The value of a required argument; NULL is ERROR 22004 naming the argument.
pub fn required<T>(value: Option<T>, argument: &str) -> Result<T> {
    value.ok_or_else(|| {
        Error::new(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{argument} must not be NULL"),
        )
    })
}

pub fn notice(message: impl Into<String>) {
    pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
        message.into(),
        "campaign_counters",
    )
    .report(PgLogLevel::NOTICE);
}

pub fn warning(message: impl Into<String>, detail: Option<String>) {
    let mut report = pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_WARNING,
        message.into(),
        "campaign_counters",
    );
    if let Some(detail) = detail {
        report = report.set_detail(detail);
    }
    report.report(PgLogLevel::WARNING);
}

/// Resolves an optional table argument: the given relation, or `conventional_name` looked up on
/// the caller's search_path (which must still be in effect, so call this before [`pinned`]).
pub fn table_or_default(
    given: Option<pg_sys::Oid>,
    conventional_name: &str,
) -> Result<pg_sys::Oid> {
    if let Some(oid) = given {
        return Ok(oid);
    }
    let found = select_one::<pg_sys::Oid>(
        "SELECT pg_catalog.to_regclass($1)::pg_catalog.oid",
        &[conventional_name.into()],
    )
    .unwrap_or(None);
    found.ok_or_else(|| {
        Error::new(
            PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            format!("relation \"{conventional_name}\" does not exist"),
        )
        .detail(format!(
            "A NULL table argument means the table \"{conventional_name}\" on the current search_path."
        ))
        .hint("Pass the table explicitly, for example 'myschema.my_table'.")
    })
}

/// Runs `body` with search_path pinned to `pg_catalog, pg_temp`, restoring the caller's value on
/// return; on error the transaction (or subtransaction) abort restores it.
pub fn pinned<R>(body: impl FnOnce() -> R) -> R {
    const NAME: &CStr = c"search_path";
    // SAFETY: both strings are NUL-terminated constants; the GUC nest level opened here is
    // closed below, or by the (sub)transaction abort that an ERROR in `body` causes.
    let nest_level = unsafe {
        let level = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            NAME.as_ptr(),
            PINNED_SEARCH_PATH.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        level
    };
    let result = body();
    // SAFETY: closes the nest level opened above.
    unsafe { pg_sys::AtEOXact_GUC(true, nest_level) };
    result
}

/// The first column of the first row of the read-only `query`, None without rows. Unlike
/// `Spi::get_one`, it gives the transaction no id: reads stay read-only and cheap to commit.
pub fn select_one<T: FromDatum + IntoDatum>(
    query: &str,
    arguments: &[DatumWithOid<'_>],
) -> Result<Option<T>> {
    Ok(Spi::connect(|client| {
        let rows = client.select(query, Some(1), arguments)?;
        if rows.is_empty() {
            return Ok(None);
        }
        rows.first().get_one::<T>()
    })?)
}

/// The first two columns of the first row of the read-only `query` (as [`select_one`]).
pub fn select_two<A: FromDatum + IntoDatum, B: FromDatum + IntoDatum>(
    query: &str,
    arguments: &[DatumWithOid<'_>],
) -> Result<Option<(Option<A>, Option<B>)>> {
    Ok(Spi::connect(|client| {
        let rows = client.select(query, Some(1), arguments)?;
        if rows.is_empty() {
            return Ok(None);
        }
        rows.first().get_two::<A, B>().map(Some)
    })?)
}

/// The role that owns the extension: writes to the extension's own tables run as this role, so
/// an application role needs no rights on them.
pub fn extension_owner() -> Result<pg_sys::Oid> {
    select_one::<pg_sys::Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'campaign_counters'",
        &[],
    )?
    .ok_or_else(|| {
        Error::new(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            "extension \"campaign_counters\" is not installed in this database",
        )
    })
}

/// One value about `relation` from the catalogs; a relation that is gone is ERROR 42P01.
fn about_relation<T: FromDatum + IntoDatum>(query: &str, relation: pg_sys::Oid) -> Result<T> {
    select_one::<T>(query, &[relation.into()])
        .unwrap_or(None)
        .ok_or_else(|| {
            Error::new(
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                format!("relation with OID {} does not exist", relation.to_u32()),
            )
        })
}

/// The role that owns `relation`.
pub fn owner_of(relation: pg_sys::Oid) -> Result<pg_sys::Oid> {
    about_relation(
        "SELECT relowner FROM pg_catalog.pg_class WHERE oid = $1",
        relation,
    )
}

/// Runs `body` as `role` in a security-restricted operation (as PostgreSQL does for index
/// functions and materialized views), then switches back. An error inside `body` aborts the
/// (sub)transaction, which restores the caller's user id itself.
pub fn as_role<R>(role: pg_sys::Oid, body: impl FnOnce() -> R) -> R {
    let (mut caller, mut context) = (pg_sys::Oid::INVALID, 0);
    // SAFETY: reads and sets the backend's current user; restored below, or by the
    // (sub)transaction abort that an ERROR in `body` causes.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut caller, &mut context);
        pg_sys::SetUserIdAndSecContext(
            role,
            context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
    }
    let result = body();
    // SAFETY: restores the values read above.
    unsafe { pg_sys::SetUserIdAndSecContext(caller, context) };
    result
}

/// Runs `body` as the extension owner: for the extension's own tables only.
pub fn as_extension_owner<R>(body: impl FnOnce() -> Result<R>) -> Result<R> {
    as_role(extension_owner()?, body)
}

/// `schema.table`, each part quoted only where needed: for messages and for dynamic SQL.
pub fn qualified_name(relation: pg_sys::Oid) -> Result<String> {
    about_relation(
        "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.oid = $1",
        relation,
    )
}

pub fn quote_ident(identifier: &str) -> String {
    pgrx::spi::quote_identifier(identifier)
}

/// Requires that the current user owns (or is a member of the owner of) `relation`.
pub fn require_owner(relation: pg_sys::Oid, action: &str) -> Result<()> {
    let owns: bool = about_relation(
        "SELECT pg_catalog.pg_has_role(c.relowner, 'USAGE') FROM pg_catalog.pg_class c WHERE c.oid = $1",
        relation,
    )?;
    if !owns {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "must be owner of table {} to {action}",
                qualified_name(relation)?
            ),
        ));
    }
    Ok(())
}

/// Requires that the current user holds `privilege` (SELECT, UPDATE, ...) on `relation`.
pub fn require_privilege(relation: pg_sys::Oid, privilege: &'static str) -> Result<()> {
    let query =
        format!("SELECT pg_catalog.has_table_privilege($1::pg_catalog.regclass, '{privilege}')");
    let granted: bool = about_relation(&query, relation)?;
    if !granted {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied for table {}", qualified_name(relation)?),
        ));
    }
    Ok(())
}
