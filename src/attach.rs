//! Attach and detach: validating a recipients/campaigns pair, installing its triggers, recording it (with its partitions) in the extension's tables.

use crate::attachment::{attached_root, attachment_of};
use crate::context::{
    as_extension_owner, notice, pinned, qualified_name, require_owner, required, table_or_default,
};
use crate::error::{or_raise, Error, Result};
use crate::mode::Mode;
use crate::pending::fold;
use crate::recalc::{repair, Acting};
use crate::validation::{require_known_statuses, validate};
use pgrx::prelude::*;
use pgrx::{pg_sys, PgSqlErrorCode};

/// The triggers on the recipients table and each of its partitions, with the clause that says
/// when each fires.
pub const RECIPIENT_TRIGGERS: [(&str, &str); 4] = [
    ("campaign_counters_insert", "AFTER INSERT ON {table} REFERENCING NEW TABLE AS campaign_counters_new FOR EACH STATEMENT"),
    (
        "campaign_counters_update",
        "AFTER UPDATE ON {table} REFERENCING OLD TABLE AS campaign_counters_old NEW TABLE AS campaign_counters_new FOR EACH STATEMENT",
    ),
    ("campaign_counters_delete", "AFTER DELETE ON {table} REFERENCING OLD TABLE AS campaign_counters_old FOR EACH STATEMENT"),
    ("campaign_counters_truncate", "AFTER TRUNCATE ON {table} FOR EACH STATEMENT"),
];

/// The triggers on the campaigns table: a row that appears (inserted, or its id changed) counts
/// its recipients. Deferred to the end of the transaction, so they count after every change the
/// transaction made (the recipients an ON UPDATE CASCADE moves are written after the row's own
/// triggers would run). The id is compared through whole-row values (`campaign_id_changed`), so
/// the triggers depend on no column and `ALTER COLUMN id TYPE` stays possible.
const CAMPAIGN_TRIGGERS: [(&str, &str); 2] = [
    (
        "campaign_counters_new_campaign",
        "AFTER INSERT ON {table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW",
    ),
    (
        "campaign_counters_campaign_id",
        "AFTER UPDATE ON {table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW \
         WHEN (campaign_counters.campaign_id_changed(OLD, NEW))",
    ),
];

fn create_triggers(table: pg_sys::Oid, triggers: &[(&str, &str)], function: &str) -> Result<()> {
    let table_name = qualified_name(table)?;
    for (name, when) in triggers {
        // Constraint triggers have no CREATE OR REPLACE.
        let create = if when.contains("DEFERRABLE") {
            let exists = Spi::get_one_with_args::<bool>(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = $2)",
                &[table.into(), (*name).into()],
            )?;
            if exists == Some(true) {
                Spi::run(&format!("DROP TRIGGER {name} ON {table_name}"))?;
            }
            "CREATE CONSTRAINT TRIGGER"
        } else {
            "CREATE OR REPLACE TRIGGER"
        };
        Spi::run(&format!(
            "{create} {name} {} EXECUTE FUNCTION campaign_counters.{function}()",
            when.replace("{table}", &table_name)
        ))?;
    }
    Ok(())
}

fn remove_triggers(table: pg_sys::Oid, triggers: &[(&str, &str)]) -> Result<()> {
    let table_name = qualified_name(table)?;
    for (name, _) in triggers {
        Spi::run(&format!("DROP TRIGGER IF EXISTS {name} ON {table_name}"))?;
    }
    Ok(())
}

/// Gives one recipients table (the root or a partition) the counter triggers.
pub fn install_recipient_triggers(table: pg_sys::Oid) -> Result<()> {
    create_triggers(table, &RECIPIENT_TRIGGERS, "count_recipients")
}

pub fn drop_recipient_triggers(table: pg_sys::Oid) -> Result<()> {
    remove_triggers(table, &RECIPIENT_TRIGGERS)
}

/// Every partition below `recipients` (not the table itself), each with whether it is a leaf.
pub fn partitions(recipients: pg_sys::Oid) -> Result<Vec<(pg_sys::Oid, bool)>> {
    Spi::connect(|client| {
        let mut found = Vec::new();
        for row in client.select(
            "SELECT relid::oid, isleaf FROM pg_partition_tree($1::regclass) WHERE relid <> $1::regclass",
            None,
            &[recipients.into()],
        )? {
            if let (Some(relation), Some(leaf)) = (row.get::<pg_sys::Oid>(1)?, row.get::<bool>(2)?) {
                found.push((relation, leaf));
            }
        }
        Ok(found)
    })
}

/// Records `partition` as counted for `recipients`, so detaching or dropping it later is noticed.
pub fn record_partition(recipients: pg_sys::Oid, partition: pg_sys::Oid) -> Result<()> {
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO campaign_counters.partitions (partition, recipients) VALUES ($1::regclass, $2::regclass)
             ON CONFLICT (partition) DO UPDATE SET recipients = excluded.recipients",
            &[partition.into(), recipients.into()],
        )?;
        Ok(())
    })
}

/// Whether this database's extension schema is 0.3.0 or later. Until `ALTER EXTENSION ... UPDATE`
/// runs, a newer library serves an older schema: attach then works as that release did.
pub fn schema_follows_ddl() -> Result<bool> {
    Ok(Spi::get_one::<bool>(
        "SELECT pg_catalog.to_regclass('campaign_counters.partitions') IS NOT NULL",
    )?
    .unwrap_or(false))
}

fn install_triggers(recipients: pg_sys::Oid, campaigns: pg_sys::Oid) -> Result<()> {
    install_recipient_triggers(recipients)?;
    let current = schema_follows_ddl()?;
    for (partition, _) in partitions(recipients)? {
        install_recipient_triggers(partition)?;
        if current {
            record_partition(recipients, partition)?;
        }
    }
    if current {
        create_triggers(campaigns, &CAMPAIGN_TRIGGERS, "count_new_campaigns")?;
        crate::schema_changes::record_signature(recipients, campaigns)?;
    }
    Ok(())
}

fn drop_triggers(recipients: pg_sys::Oid, campaigns: Option<pg_sys::Oid>) -> Result<()> {
    drop_recipient_triggers(recipients)?;
    for (partition, _) in partitions(recipients)? {
        drop_recipient_triggers(partition)?;
    }
    if let Some(campaigns) = campaigns {
        remove_triggers(campaigns, &CAMPAIGN_TRIGGERS)?;
    }
    Ok(())
}

/// Concurrent attach/detach calls take turns, and each then reads the attachments the previous
/// one committed: a second attach of the same pair is the usual NOTICE, not a key violation.
pub(crate) fn serialize_attachment_changes() -> Result<()> {
    as_extension_owner(|| {
        Spi::run("LOCK TABLE campaign_counters.attachments IN SHARE ROW EXCLUSIVE MODE")?;
        Ok(())
    })
}

fn attach_pair(
    recipients: Option<pg_sys::Oid>,
    campaigns: Option<pg_sys::Oid>,
    mode: Option<&str>,
) -> Result<()> {
    let recipients = table_or_default(recipients, "campaign_recipients")?;
    let campaigns = table_or_default(campaigns, "marketing_campaigns")?;
    let mode = counting_mode(mode)?;
    pinned(|| {
        validate(recipients, campaigns)?;
        require_owner(recipients, "attach it")?;
        require_owner(campaigns, "attach it")?;
        serialize_attachment_changes()?;
        match attached_root(recipients)? {
            Some((root, _)) if root != recipients => {
                return Err(Error::new(
                    PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    format!(
                        "{} is a partition of attached table {}",
                        qualified_name(recipients)?,
                        qualified_name(root)?
                    ),
                )
                .hint("Partitions are counted through their attached parent."))
            }
            Some((_, attached_campaigns)) if attached_campaigns == campaigns => {
                let attached_mode = attachment_of(recipients)?.mode;
                notice(if attached_mode == mode {
                    format!(
                        "{} is already attached to {}; nothing to do",
                        qualified_name(recipients)?,
                        qualified_name(campaigns)?
                    )
                } else {
                    format!(
                        "{} is already attached to {} in the {attached_mode} mode; nothing done (campaign_counters.set_mode() switches modes)",
                        qualified_name(recipients)?,
                        qualified_name(campaigns)?
                    )
                });
                return Ok(());
            }
            Some((_, other)) => {
                return Err(Error::new(
                    PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    format!(
                        "{} is already attached to {}",
                        qualified_name(recipients)?,
                        qualified_name(other)?
                    ),
                )
                .hint("Detach it first."))
            }
            None => {}
        }
        let campaigns_taken = Spi::get_one_with_args::<pg_sys::Oid>(
            "SELECT recipients::oid FROM campaign_counters.attachments WHERE campaigns = $1::regclass",
            &[campaigns.into()],
        )
        .unwrap_or(None);
        if let Some(other) = campaigns_taken {
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!(
                    "{} already counts the recipients of {}",
                    qualified_name(campaigns)?,
                    qualified_name(other)?
                ),
            )
            .detail("One campaigns table takes its counters from one recipients table."));
        }
        require_known_statuses(recipients)?;
        as_extension_owner(|| {
            Spi::run_with_args(
                "INSERT INTO campaign_counters.attachments (recipients, campaigns) VALUES ($1::regclass, $2::regclass)",
                &[recipients.into(), campaigns.into()],
            )?;
            if mode != Mode::Immediate {
                Spi::run_with_args(
                    "UPDATE campaign_counters.attachments SET mode = $2 WHERE recipients = $1::regclass",
                    &[recipients.into(), mode.name().into()],
                )?;
            }
            Ok(())
        })?;
        install_triggers(recipients, campaigns)?;
        repair(&*attachment_of(recipients)?, None, Acting::AsCaller)?;
        Ok(())
    })
}

/// The counting mode named `name`; 22023 for any other name.
pub fn counting_mode(name: Option<&str>) -> Result<Mode> {
    let name = required(name, "mode")?;
    Mode::parse(name).ok_or_else(|| {
        Error::new(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid counting mode \"{name}\""),
        )
        .detail(format!("Accepted modes: {}.", Mode::ACCEPTED))
    })
}

#[pg_extern(sql = false)]
fn attach_in_mode(
    recipients: Option<pg_sys::Oid>,
    campaigns: Option<pg_sys::Oid>,
    mode: Option<&str>,
) {
    or_raise(attach_pair(recipients, campaigns, mode))
}

/// attach(recipients, campaigns) of the schemas before 0.3.0, which this library also serves
/// until `ALTER EXTENSION ... UPDATE`.
#[pg_extern(sql = false)]
fn attach(recipients: Option<pg_sys::Oid>, campaigns: Option<pg_sys::Oid>) {
    or_raise(attach_pair(
        recipients,
        campaigns,
        Some(Mode::Immediate.name()),
    ))
}

fn detach_pair(recipients: Option<pg_sys::Oid>) -> Result<()> {
    let recipients = table_or_default(recipients, "campaign_recipients")?;
    pinned(|| {
        serialize_attachment_changes()?;
        let campaigns = match attached_root(recipients)? {
            Some((root, campaigns)) if root == recipients => campaigns,
            _ => return Err(Error::not_attached(&qualified_name(recipients)?)),
        };
        require_owner(recipients, "detach it")?;
        drop_triggers(recipients, Some(campaigns))?;
        // Dropping the triggers waited for the writers in progress: every change they recorded
        // is pending now, and goes into the counters before the pair is forgotten.
        let attachment = attachment_of(recipients)?;
        fold(&attachment)?;
        let current = schema_follows_ddl()?;
        let pricing = crate::costs::schema_keeps_pricing()?.then_some("message_pricing");
        as_extension_owner(|| {
            if attachment.schema_has_modes {
                Spi::run_with_args(
                    "DELETE FROM campaign_counters.pending_changes WHERE campaigns = $1::regclass",
                    &[campaigns.into()],
                )?;
                Spi::run_with_args(
                    "DELETE FROM campaign_counters.maintenance WHERE recipients = $1::regclass",
                    &[recipients.into()],
                )?;
            }
            for table in ["attachments", "parked_events", "recipient_failures"]
                .into_iter()
                .chain(current.then_some("partitions"))
                .chain(pricing)
            {
                Spi::run_with_args(
                    &format!(
                        "DELETE FROM campaign_counters.{table} WHERE recipients = $1::regclass"
                    ),
                    &[recipients.into()],
                )?;
            }
            Ok(())
        })
    })
}

#[pg_extern(sql = false)]
fn detach(recipients: Option<pg_sys::Oid>) {
    or_raise(detach_pair(recipients))
}
