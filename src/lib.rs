//! campaign_counters: PostgreSQL keeps WhatsApp campaign counters exact.
//!
//! Pure rules (`status`, `counters`, `webhook`) carry no pgrx and are tested with plain
//! `cargo test`; the other modules are the database side.
pub mod counters;
pub mod status;
pub mod webhook;

mod apply;
mod attach;
mod recalc;
mod session;
mod shape;
mod trigger;

::pgrx::pg_module_magic!(name, version);

pgrx::extension_sql_file!("../sql/tables.sql", name = "tables", bootstrap);
pgrx::extension_sql_file!(
    "../sql/functions.sql",
    name = "functions",
    requires = ["tables"]
);
pgrx::extension_sql_file!(
    "../sql/funnel.sql",
    name = "funnel",
    requires = ["functions"]
);
pgrx::extension_sql_file!(
    "../sql/dropped_tables.sql",
    name = "dropped_tables",
    finalize
);

#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    shape::register_invalidation();
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
