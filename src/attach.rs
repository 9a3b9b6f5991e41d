//! Attach and detach: validating a recipients/campaigns pair, installing its triggers and recording it in campaign_counters.attachments.

use crate::counters::COUNTER_COLUMNS;
use crate::recalc::{recount, Mode};
use crate::session::{
    as_extension_owner, notice, pinned, qualified_name, raise, require_owner, table_or_default,
};
use crate::shape::{attached_root, attachment_of, column, KeyKind};
use crate::status::Status;
use pgrx::prelude::*;
use pgrx::{pg_sys, PgSqlErrorCode};

/// The triggers attach installs, each with the clause that says when it fires.
const TRIGGERS: [(&str, &str); 4] = [
    ("campaign_counters_insert", "AFTER INSERT ON {table} REFERENCING NEW TABLE AS campaign_counters_new"),
    (
        "campaign_counters_update",
        "AFTER UPDATE ON {table} REFERENCING OLD TABLE AS campaign_counters_old NEW TABLE AS campaign_counters_new",
    ),
    ("campaign_counters_delete", "AFTER DELETE ON {table} REFERENCING OLD TABLE AS campaign_counters_old"),
    ("campaign_counters_truncate", "AFTER TRUNCATE ON {table}"),
];

#[derive(Clone, Copy)]
enum Accepts {
    CampaignId,
    Text,
    Timestamp,
    Counter,
}

impl Accepts {
    fn allows(self, base_type: pg_sys::Oid) -> bool {
        match self {
            Accepts::CampaignId => KeyKind::of_base_type(base_type).is_some(),
            Accepts::Text => matches!(base_type, pg_sys::TEXTOID | pg_sys::VARCHAROID),
            Accepts::Timestamp => {
                matches!(base_type, pg_sys::TIMESTAMPOID | pg_sys::TIMESTAMPTZOID)
            }
            Accepts::Counter => matches!(base_type, pg_sys::INT4OID | pg_sys::INT8OID),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Accepts::CampaignId => "uuid, bigint, integer or text",
            Accepts::Text => "text or character varying",
            Accepts::Timestamp => "timestamp or timestamp with time zone",
            Accepts::Counter => "integer or bigint",
        }
    }
}

fn require_table(relation: pg_sys::Oid) {
    let kind = Spi::get_one_with_args::<i8>(
        "SELECT relkind::\"char\" FROM pg_class WHERE oid = $1",
        &[relation.into()],
    )
    .ok()
    .flatten();
    if !matches!(kind.map(|k| k as u8), Some(b'r') | Some(b'p')) {
        raise(
            PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            format!("{} is not a table", qualified_name(relation)),
            Some("campaign_counters attaches to ordinary and partitioned tables only.".into()),
            None,
        );
    }
}

fn require_column(relation: pg_sys::Oid, name: &str, accepts: Accepts) -> pg_sys::Oid {
    let Some(found) = column(relation, name) else {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
            format!(
                "table {} has no column \"{name}\", which campaign_counters requires",
                qualified_name(relation)
            ),
            Some(format!(
                "\"{name}\" must be of type {}.",
                accepts.describe()
            )),
            None,
        );
    };
    if !accepts.allows(found.base_type) {
        raise(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "column \"{name}\" of table {} has type {}, which campaign_counters does not accept",
                qualified_name(relation),
                found.type_name
            ),
            Some(format!("Accepted types: {}.", accepts.describe())),
            None,
        );
    }
    found.base_type
}

/// Checks everything attach needs before anything is changed.
fn validate(recipients: pg_sys::Oid, campaigns: pg_sys::Oid) {
    require_table(recipients);
    require_table(campaigns);
    let campaign_id = require_column(recipients, "campaign_id", Accepts::CampaignId);
    require_column(recipients, "status", Accepts::Text);
    require_column(recipients, "whatsapp_message_id", Accepts::Text);
    for name in ["sent_at", "delivered_at", "read_at", "failed_at"] {
        require_column(recipients, name, Accepts::Timestamp);
    }
    let id = require_column(campaigns, "id", Accepts::CampaignId);
    if KeyKind::of_base_type(id) != KeyKind::of_base_type(campaign_id) {
        let id_column = column(campaigns, "id").expect("checked above");
        let campaign_id_column = column(recipients, "campaign_id").expect("checked above");
        raise(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "column \"id\" of table {} has type {} but \"campaign_id\" of table {} has type {}",
                qualified_name(campaigns),
                id_column.type_name,
                qualified_name(recipients),
                campaign_id_column.type_name
            ),
            Some("Campaign ids must have the same type on both tables.".into()),
            None,
        );
    }
    for name in COUNTER_COLUMNS {
        require_column(campaigns, name, Accepts::Counter);
    }
}

/// Refuses to attach a table whose rows hold statuses that count nowhere.
fn require_known_statuses(recipients: pg_sys::Oid) {
    let query = format!(
        "SELECT count(*), min(coalesce(status::text, 'NULL')) FROM {}
          WHERE status IS NULL OR status::text NOT IN ('pending', 'sent', 'delivered', 'read', 'failed')",
        qualified_name(recipients)
    );
    let (count, example) = Spi::get_two::<i64, String>(&query).expect("checking statuses");
    if let (Some(count @ 1..), Some(example)) = (count, example) {
        raise(
            PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
            format!(
                "{count} recipients of {} have a status outside the accepted ones, for example \"{example}\"",
                qualified_name(recipients)
            ),
            Some(format!("Accepted statuses: {}.", Status::ACCEPTED)),
            Some("Fix those rows, then attach again."),
        );
    }
}

/// The table and, if it is partitioned, all its partitions: each gets the triggers, so writes
/// made directly to a partition are counted too.
fn trigger_tables(recipients: pg_sys::Oid) -> Vec<pg_sys::Oid> {
    Spi::connect(|client| {
        client
            .select(
                "SELECT $1::regclass::oid UNION SELECT relid::oid FROM pg_partition_tree($1::regclass)",
                None,
                &[recipients.into()],
            )
            .map(|rows| rows.filter_map(|row| row.get::<pg_sys::Oid>(1).ok().flatten()).collect())
    })
    .expect("listing partitions")
}

fn install_triggers(recipients: pg_sys::Oid) {
    for table in trigger_tables(recipients) {
        let table_name = qualified_name(table);
        for (name, when) in TRIGGERS {
            Spi::run(&format!(
                "CREATE OR REPLACE TRIGGER {name} {} FOR EACH STATEMENT EXECUTE FUNCTION campaign_counters.count_recipients()",
                when.replace("{table}", &table_name)
            ))
            .expect("creating trigger");
        }
    }
}

fn drop_triggers(recipients: pg_sys::Oid) {
    for table in trigger_tables(recipients) {
        let table_name = qualified_name(table);
        for (name, _) in TRIGGERS {
            Spi::run(&format!("DROP TRIGGER IF EXISTS {name} ON {table_name}"))
                .expect("dropping trigger");
        }
    }
}

/// Concurrent attach/detach calls take turns, and each then reads the attachments the previous
/// one committed: a second attach of the same pair is the usual NOTICE, not a key violation.
fn serialize_attachment_changes() {
    as_extension_owner(|| {
        Spi::run("LOCK TABLE campaign_counters.attachments IN SHARE ROW EXCLUSIVE MODE")
            .expect("locking campaign_counters.attachments")
    });
}

#[pg_extern(sql = false)]
fn attach(recipients: Option<pg_sys::Oid>, campaigns: Option<pg_sys::Oid>) {
    let recipients = table_or_default(recipients, "campaign_recipients");
    let campaigns = table_or_default(campaigns, "marketing_campaigns");
    pinned(|| {
        validate(recipients, campaigns);
        require_owner(recipients, "attach it");
        require_owner(campaigns, "attach it");
        serialize_attachment_changes();
        match attached_root(recipients) {
            Some((root, _)) if root != recipients => raise(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!(
                    "{} is a partition of attached table {}",
                    qualified_name(recipients),
                    qualified_name(root)
                ),
                None,
                Some("Partitions are counted through their attached parent."),
            ),
            Some((_, attached_campaigns)) if attached_campaigns == campaigns => {
                // Partitions created since the first attach get their triggers now.
                install_triggers(recipients);
                notice(format!(
                    "{} is already attached to {}; nothing to do",
                    qualified_name(recipients),
                    qualified_name(campaigns)
                ));
                return;
            }
            Some((_, other)) => raise(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!(
                    "{} is already attached to {}",
                    qualified_name(recipients),
                    qualified_name(other)
                ),
                None,
                Some("Detach it first."),
            ),
            None => {}
        }
        let campaigns_taken = Spi::get_one_with_args::<pg_sys::Oid>(
            "SELECT recipients::oid FROM campaign_counters.attachments WHERE campaigns = $1::regclass",
            &[campaigns.into()],
        )
        .ok()
        .flatten();
        if let Some(other) = campaigns_taken {
            raise(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!(
                    "{} already counts the recipients of {}",
                    qualified_name(campaigns),
                    qualified_name(other)
                ),
                Some("One campaigns table takes its counters from one recipients table.".into()),
                None,
            );
        }
        require_known_statuses(recipients);
        install_triggers(recipients);
        as_extension_owner(|| {
            Spi::run_with_args(
                "INSERT INTO campaign_counters.attachments (recipients, campaigns) VALUES ($1::regclass, $2::regclass)",
                &[recipients.into(), campaigns.into()],
            )
            .expect("recording the attachment")
        });
        recount(&attachment_of(recipients), None, Mode::Repair);
    })
}

#[pg_extern(sql = false)]
fn detach(recipients: Option<pg_sys::Oid>) {
    let recipients = table_or_default(recipients, "campaign_recipients");
    pinned(|| {
        serialize_attachment_changes();
        match attached_root(recipients) {
            Some((root, _)) if root == recipients => {}
            _ => raise(
                PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                format!(
                    "table {} is not attached to campaign_counters",
                    qualified_name(recipients)
                ),
                None,
                None,
            ),
        }
        require_owner(recipients, "detach it");
        drop_triggers(recipients);
        as_extension_owner(|| {
            for table in ["attachments", "parked_events", "recipient_failures"] {
                Spi::run_with_args(
                    &format!(
                        "DELETE FROM campaign_counters.{table} WHERE recipients = $1::regclass"
                    ),
                    &[recipients.into()],
                )
                .expect("forgetting the attachment");
            }
        });
    })
}
