//! campaign_counters: PostgreSQL keeps WhatsApp campaign counters exact.
//!
//! Pure rules (`status`, `counters`, `batch`, `drift`, `mode`, `webhook`, `pricing`) carry no pgrx and are tested
//! with plain `cargo test`; the other modules are the database side, thin around them.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod batch;
pub mod counters;
pub mod drift;
pub mod mode;
pub mod pricing;
pub mod status;
pub mod webhook;

mod apply;
mod attach;
mod attachment;
mod context;
mod costs;
mod error;
mod new_campaigns;
mod pending;
mod recalc;
mod schema_changes;
mod snapshot;
mod trigger;
mod validation;

::pgrx::pg_module_magic!(name, version);

pgrx::extension_sql_file!("../sql/tables.sql", name = "tables", bootstrap);
pgrx::extension_sql_file!(
    "../sql/functions.sql",
    name = "functions",
    requires = ["tables"]
);
pgrx::extension_sql_file!(
    "../sql/deferred.sql",
    name = "deferred",
    requires = ["functions"]
);
pgrx::extension_sql_file!(
    "../sql/funnel.sql",
    name = "funnel",
    requires = ["deferred"]
);
pgrx::extension_sql_file!("../sql/costs.sql", name = "costs", requires = ["tables"]);
pgrx::extension_sql_file!(
    "../sql/event_triggers.sql",
    name = "event_triggers",
    finalize
);

#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    attachment::register_invalidation();
}

// In-database tests run under `cargo pgrx test`, which enables `pg_test`; plain `cargo test`
// runs the pure modules' tests only.
#[cfg(feature = "pg_test")]
mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
