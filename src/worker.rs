//! The background worker: a launcher that keeps one worker running per database of `campaign_counters.databases`, and the worker's loop (fold, sweep) over SPI.
//!
//! The launcher is the one static worker (registered in `_PG_init`, so only with
//! shared_preload_libraries). It connects to no database, which lets it read the shared catalog
//! `pg_database`: a listed database that does not exist is logged once and looked for again
//! every few seconds, instead of a worker that fails to connect (FATAL) at every restart. For each
//! database that exists it starts a dynamic worker, and starts it again when it stops.

use crate::database_list;
use crate::error::{or_raise, Error};
use crate::schedule::{Job, RestartBackoff, Schedule, RESTART_DELAY};
use crate::settings;
use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, DynamicBackgroundWorker,
    SignalWakeFlags,
};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::ffi::CStr;
use std::time::{Duration, Instant};

const LIBRARY: &str = "campaign_counters";
/// `pg_stat_activity.backend_type` of the workers that serve a database (health() looks for it).
pub const WORKER_TYPE: &str = "campaign_counters worker";
const LAUNCHER_TYPE: &str = "campaign_counters launcher";

/// Registers the launcher when the library is being preloaded (the only time a static worker can
/// be registered). A databases setting that does not parse stops the server from starting, as
/// any invalid server setting does.
pub fn register_launcher() {
    // SAFETY: a flag the postmaster sets while it loads shared_preload_libraries; read only.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    let databases = match database_list::parse(&settings::databases()) {
        Ok(databases) => databases,
        Err(problem) => Error::new(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid value for parameter \"campaign_counters.databases\": {problem}"),
        )
        .hint("A comma-separated list of database names, or empty for no worker.")
        .raise(),
    };
    if databases.is_empty() {
        return;
    }
    BackgroundWorkerBuilder::new(LAUNCHER_TYPE)
        .set_type(LAUNCHER_TYPE)
        .set_library(LIBRARY)
        .set_function("campaign_counters_launcher_main")
        .enable_spi_access()
        .set_restart_time(Some(RESTART_DELAY))
        .load();
}

/// One database the launcher serves: its worker while one runs, and when to start the next.
struct Served {
    database: String,
    worker: Option<(DynamicBackgroundWorker, Instant)>,
    next_start: Instant,
    backoff: RestartBackoff,
    reported_missing: bool,
}

impl Served {
    /// Starts a worker if none runs and its time has come; returns how long until it should look again.
    fn tend(&mut self, now: Instant) -> Duration {
        if let Some((worker, started)) = &self.worker {
            match worker.pid() {
                Ok(_) | Err(BackgroundWorkerStatus::NotYetStarted) => return RESTART_DELAY,
                // Stopped (an ERROR, pg_terminate_backend, a crash), or the postmaster is gone
                // (then the launcher's own wait sees it and exits).
                Err(_) => {
                    self.next_start = now + self.backoff.stopped(now - *started);
                    self.worker = None;
                }
            }
        }
        if now < self.next_start {
            return self.next_start - now;
        }
        self.next_start = now + RESTART_DELAY;
        if !database_exists(&self.database) {
            if !self.reported_missing {
                log!(
                    "campaign_counters: database \"{}\" of campaign_counters.databases does not exist (or does not allow connections); it is served once it does",
                    self.database
                );
                self.reported_missing = true;
            }
            return RESTART_DELAY;
        }
        self.reported_missing = false;
        match start_worker(&self.database) {
            Ok(worker) => self.worker = Some((worker, now)),
            // All max_worker_processes slots are taken: try again later.
            Err(_) => warning!(
                "campaign_counters: could not start a worker for database \"{}\" (max_worker_processes reached?)",
                self.database
            ),
        }
        RESTART_DELAY
    }
}

/// Whether `database` exists and accepts connections (a worker could connect to it).
fn database_exists(database: &str) -> bool {
    BackgroundWorker::transaction(|| {
        // A heap scan, as the autovacuum launcher does: an index scan would need pg_class, which
        // a process without a database cannot read while the shared relcache init file is missing
        // (right after initdb, or after a crash).
        // SAFETY: in a transaction; the scan and the relation are closed before it ends, and
        // each tuple is read (as pg_database's fixed-size struct) before the next is fetched.
        unsafe {
            let relation =
                pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as _);
            let scan = pg_sys::table_beginscan_catalog(relation, 0, std::ptr::null_mut());
            let mut found = false;
            loop {
                let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
                if tuple.is_null() {
                    break;
                }
                let row = &*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_database>(tuple);
                if CStr::from_ptr(row.datname.data.as_ptr()).to_bytes() == database.as_bytes() {
                    found = row.datallowconn;
                    break;
                }
            }
            pg_sys::heap_endscan(scan);
            pg_sys::table_close(relation, pg_sys::AccessShareLock as _);
            found
        }
    })
}

fn start_worker(database: &str) -> Result<DynamicBackgroundWorker, ()> {
    BackgroundWorkerBuilder::new(&format!("{WORKER_TYPE} {database}"))
        .set_type(WORKER_TYPE)
        .set_library(LIBRARY)
        .set_function("campaign_counters_worker_main")
        .enable_spi_access()
        // The launcher restarts it (with its backoff), so the postmaster does not.
        .set_restart_time(None)
        .set_extra(database)
        // SAFETY: this process's pid, set once at its start; read only. The postmaster then
        // signals the launcher when the worker starts and stops, which sets its latch.
        .set_notify_pid(unsafe { pg_sys::MyProcPid })
        .load_dynamic()
        .map_err(|_| ())
}

/// Re-reads postgresql.conf after a SIGHUP (PostgreSQL's signal handler only flags it).
fn reload_configuration_if_asked() -> bool {
    if !BackgroundWorker::sighup_received() {
        return false;
    }
    // SAFETY: outside a transaction, in the process's main loop, as PostgreSQL's own processes do.
    unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
    true
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn campaign_counters_launcher_main(_argument: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    // No database: shared catalogs only, which is all it reads.
    BackgroundWorker::connect_worker_to_spi(None, None);
    // Checked when the library was preloaded (PGC_POSTMASTER: it has not changed since).
    let Ok(databases) = database_list::parse(&settings::databases()) else {
        return;
    };
    log!(
        "campaign_counters launcher started for databases: {}",
        databases.join(", ")
    );
    let now = Instant::now();
    let mut served: Vec<Served> = databases
        .into_iter()
        .map(|database| Served {
            database,
            worker: None,
            next_start: now,
            backoff: RestartBackoff::default(),
            reported_missing: false,
        })
        .collect();
    loop {
        let now = Instant::now();
        let wait = served
            .iter_mut()
            .map(|served| served.tend(now))
            .min()
            .unwrap_or(RESTART_DELAY);
        if !BackgroundWorker::wait_latch(Some(wait)) {
            break;
        }
        reload_configuration_if_asked();
    }
    // Stopping the launcher (shutdown, or pg_terminate_backend) stops its workers too.
    for (worker, _) in served.into_iter().filter_map(|served| served.worker) {
        worker.terminate();
    }
}

/// The SQL a job runs, and the function it needs (an extension older than 0.3.0 lacks fold_counters).
fn sql_of(job: Job) -> (&'static str, &'static str) {
    match job {
        Job::Fold => (
            "campaign_counters.fold_counters(regclass)",
            "SELECT campaign_counters.fold_counters()",
        ),
        // purge_parked_events applies, for every attachment, the parked events a recipient has
        // claimed before it deletes the old ones: the sweep and the purge in one call.
        Job::Sweep => (
            "campaign_counters.purge_parked_events(interval)",
            "SELECT campaign_counters.purge_parked_events(make_interval(secs => $1))",
        ),
    }
}

/// Whether the extension is installed in this database with `function`. Looked up in every
/// transaction (nothing is cached across them, so DROP and CREATE EXTENSION in between are
/// fine), and locked: a DROP EXTENSION waits for this transaction instead of dropping the
/// functions and tables the job is using.
fn extension_has(function: &str) -> Result<bool, Error> {
    let find = || {
        // SAFETY: a NUL-terminated constant, in a transaction.
        unsafe { pg_sys::get_extension_oid(c"campaign_counters".as_ptr(), true) }
    };
    let extension = find();
    if extension == pg_sys::InvalidOid {
        return Ok(false);
    }
    // SAFETY: in a transaction, which releases the lock at its end. The lock conflicts only with
    // DROP EXTENSION's (AccessExclusive on the same object).
    unsafe {
        pg_sys::LockDatabaseObject(
            pg_sys::ExtensionRelationId,
            extension,
            0,
            pg_sys::AccessShareLock as pg_sys::LOCKMODE,
        )
    };
    // The lock may have waited for a DROP EXTENSION that then committed.
    if find() != extension {
        return Ok(false);
    }
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT pg_catalog.to_regprocedure($1) IS NOT NULL",
        &[function.into()],
    )?
    .unwrap_or(false))
}

fn run(job: Job) {
    let retention = settings::parked_retention_seconds();
    BackgroundWorker::transaction(move || {
        or_raise((|| {
            let (function, sql) = sql_of(job);
            if !extension_has(function)? {
                return Ok(());
            }
            match job {
                Job::Fold => Spi::run(sql)?,
                Job::Sweep => Spi::run_with_args(sql, &[f64::from(retention).into()])?,
            }
            Ok::<_, Error>(())
        })())
    });
}

/// An ERROR in a job is not caught: it is logged (by PostgreSQL, with its context) and ends the
/// worker with exit code 1, and the launcher starts a new one after a delay that grows while
/// starts keep failing. A caught ERROR would need the transaction, memory and resource cleanup
/// that PostgreSQL's own main loops do by hand; a new process starts clean, and the delay keeps a
/// persistent failure to a few log lines an hour.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn campaign_counters_worker_main(_argument: pg_sys::Datum) {
    // SIGTERM only flags the shutdown: the worker stops between jobs, never inside one.
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = BackgroundWorker::get_extra().to_string();
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    // Each job in READ COMMITTED whatever the server's default: folds and sweeps lock rows and
    // must see the latest committed changes, not fail with serialization errors.
    // SAFETY: NUL-terminated constants; a valid value of a known setting.
    unsafe {
        pg_sys::SetConfigOption(
            c"default_transaction_isolation".as_ptr(),
            c"read committed".as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_OVERRIDE,
        )
    };
    log!(
        "campaign_counters worker started for database \"{database}\": fold every {} ms, sweep every {} s, parked events kept {} s",
        settings::fold_interval().as_millis(),
        settings::sweep_interval().as_secs(),
        settings::parked_retention_seconds()
    );
    let mut schedule = Schedule::new(settings::fold_interval(), settings::sweep_interval());
    loop {
        for job in schedule.due(Instant::now()) {
            run(job);
            schedule.ran(job, Instant::now());
        }
        if !BackgroundWorker::wait_latch(Some(schedule.wait(Instant::now()))) {
            break;
        }
        if reload_configuration_if_asked() {
            schedule.set_intervals(settings::fold_interval(), settings::sweep_interval());
        }
    }
}
