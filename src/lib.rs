//! campaign_counters: PostgreSQL keeps WhatsApp campaign counters exact.
pub mod counters;
pub mod status;
pub mod webhook;

::pgrx::pg_module_magic!(name, version);
