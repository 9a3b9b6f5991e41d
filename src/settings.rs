//! The `campaign_counters.*` settings (GUCs): which databases the background worker serves, and its intervals.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;
use std::time::Duration;

pub static DATABASES: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
pub static FOLD_INTERVAL_MS: GucSetting<i32> = GucSetting::<i32>::new(200);
pub static SWEEP_INTERVAL_S: GucSetting<i32> = GucSetting::<i32>::new(60);
pub static PARKED_RETENTION_S: GucSetting<i32> = GucSetting::<i32>::new(7 * 24 * 3600);

/// Defines the settings; called by `_PG_init` in every process that loads the library, so that
/// the intervals can be shown (and are checked) with or without the worker. The databases setting
/// exists only when the library is preloaded: PostgreSQL refuses (FATAL) to define a
/// server-start setting later, and only a preloaded library has a worker to give it to.
pub fn register() {
    // SAFETY: a flag the postmaster sets while it loads shared_preload_libraries; read only.
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        define_databases();
    }

    GucRegistry::define_int_guc(
        c"campaign_counters.fold_interval",
        c"How often the background worker folds deferred attachments' pending changes.",
        c"campaign_counters.fold_counters() runs this long after the previous fold ended.",
        &FOLD_INTERVAL_MS,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"campaign_counters.sweep_interval",
        c"How often the background worker sweeps and purges parked events.",
        c"campaign_counters.purge_parked_events(parked_retention) runs this long after the previous sweep ended.",
        &SWEEP_INTERVAL_S,
        1,
        24 * 3600,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"campaign_counters.parked_retention",
        c"How long the background worker keeps parked events no recipient has claimed.",
        c"Meta retries a webhook for up to 7 days; older parked events are purged.",
        &PARKED_RETENTION_S,
        60,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    // SAFETY: a NUL-terminated constant; called once per process, after the prefix's settings are
    // defined, so a misspelt campaign_counters.* setting is reported instead of silently kept.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"campaign_counters".as_ptr()) };
}

fn define_databases() {
    GucRegistry::define_string_guc(
        c"campaign_counters.databases",
        c"Databases the campaign_counters background worker serves (comma-separated).",
        c"One worker per database, started when campaign_counters is in shared_preload_libraries. \
          Empty: no worker. A database that does not exist is logged once and waited for.",
        &DATABASES,
        GucContext::Postmaster,
        GucFlags::empty(),
    );
}

/// The databases setting as written (the launcher parses it with `database_list::parse`).
pub fn databases() -> String {
    DATABASES
        .get()
        .map(|value| value.to_string_lossy().into_owned())
        .unwrap_or_default()
}

// The ranges above keep every value positive, so the casts cannot wrap.
pub fn fold_interval() -> Duration {
    Duration::from_millis(FOLD_INTERVAL_MS.get() as u64)
}

pub fn sweep_interval() -> Duration {
    Duration::from_secs(SWEEP_INTERVAL_S.get() as u64)
}

pub fn parked_retention_seconds() -> i32 {
    PARKED_RETENTION_S.get()
}
