//! What an attached pair must look like: the columns, their types and the statuses, checked at attach, after every DDL on the tables and whenever cached facts are loaded.

use crate::attachment::{column, Column, KeyFamily, KeyKind, TimeColumn};
use crate::context::{qualified_name, select_one, select_two};
use crate::counters::COUNTER_COLUMNS;
use crate::error::{Error, Result};
use crate::status::Status;
use pgrx::{pg_sys, PgSqlErrorCode};

/// What validation learns about a pair, for the cached attachment.
pub struct Facts {
    pub key_family: KeyFamily,
    pub id_kind: KeyKind,
    /// `format_type` of the campaigns' id column, for casting ids given as text.
    pub id_type_name: String,
    pub time_columns: [TimeColumn; 4],
}

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

/// Refuses a campaigns table that is partitioned (its triggers would fire on each partition, and
/// partitions attached later would bring counters nobody counted) and a recipients table with
/// inheritance children (their rows are in every recount but fire no counter trigger).
fn require_plain_shape(recipients: pg_sys::Oid, campaigns: pg_sys::Oid) -> Result<()> {
    let (campaigns_partitioned, recipients_inherited) = select_two::<bool, bool>(
        "SELECT (SELECT relkind = 'p' FROM pg_catalog.pg_class WHERE oid = $2),
                EXISTS (SELECT FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhparent
                         WHERE i.inhparent = $1 AND c.relkind = 'r')",
        &[recipients.into(), campaigns.into()],
    )?
    .unwrap_or_default();
    if campaigns_partitioned == Some(true) {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            format!("{} is a partitioned table", qualified_name(campaigns)?),
        )
        .detail("The campaigns table must be an ordinary table; the recipients table may be partitioned."));
    }
    if recipients_inherited == Some(true) {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            format!("{} has inheritance children", qualified_name(recipients)?),
        )
        .detail("Rows of inheritance children fire no counter trigger; use declarative partitioning instead."));
    }
    Ok(())
}

fn require_table(relation: pg_sys::Oid) -> Result<()> {
    let kind = select_one::<i8>(
        "SELECT relkind::\"char\" FROM pg_class WHERE oid = $1",
        &[relation.into()],
    )
    .unwrap_or(None);
    if !matches!(kind.map(|k| k as u8), Some(b'r') | Some(b'p')) {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            format!("{} is not a table", qualified_name(relation)?),
        )
        .detail("campaign_counters attaches to ordinary and partitioned tables only."));
    }
    Ok(())
}

fn require_column(relation: pg_sys::Oid, name: &str, accepts: Accepts) -> Result<Column> {
    let Some(found) = column(relation, name)? else {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
            format!(
                "table {} has no column \"{name}\", which campaign_counters requires",
                qualified_name(relation)?
            ),
        )
        .detail(format!(
            "\"{name}\" must be of type {}.",
            accepts.describe()
        )));
    };
    if !accepts.allows(found.base_type) {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "column \"{name}\" of table {} has type {}, which campaign_counters does not accept",
                qualified_name(relation)?,
                found.type_name
            ),
        )
        .detail(format!("Accepted types: {}.", accepts.describe())));
    }
    Ok(found)
}

/// Checks everything the counters depend on. Called before anything is changed.
pub fn validate(recipients: pg_sys::Oid, campaigns: pg_sys::Oid) -> Result<Facts> {
    require_table(recipients)?;
    require_table(campaigns)?;
    require_plain_shape(recipients, campaigns)?;
    let campaign_id = require_column(recipients, "campaign_id", Accepts::CampaignId)?;
    require_column(recipients, "status", Accepts::Text)?;
    require_column(recipients, "whatsapp_message_id", Accepts::Text)?;
    let mut time_columns = [TimeColumn::WithZone; 4];
    for (slot, name) in
        time_columns
            .iter_mut()
            .zip(["sent_at", "delivered_at", "read_at", "failed_at"])
    {
        let found = require_column(recipients, name, Accepts::Timestamp)?;
        if found.base_type == pg_sys::TIMESTAMPOID {
            *slot = TimeColumn::Utc;
        }
    }
    let id = require_column(campaigns, "id", Accepts::CampaignId)?;
    let family = |column: &Column| KeyKind::of_base_type(column.base_type).map(KeyKind::family);
    let id_kind = KeyKind::of_base_type(id.base_type);
    let Some((key_family, id_kind)) = family(&id)
        .filter(|found| family(&campaign_id) == Some(*found))
        .zip(id_kind)
    else {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "column \"id\" of table {} has type {} but \"campaign_id\" of table {} has type {}",
                qualified_name(campaigns)?,
                id.type_name,
                qualified_name(recipients)?,
                campaign_id.type_name
            ),
        )
        .detail(
            "Campaign ids must have comparable types on both tables: integer or bigint, uuid, or text or varchar.",
        ));
    };
    for name in COUNTER_COLUMNS {
        require_column(campaigns, name, Accepts::Counter)?;
    }
    Ok(Facts {
        key_family,
        id_kind,
        id_type_name: id.type_name,
        time_columns,
    })
}

/// Refuses a table whose rows hold statuses that count nowhere.
pub fn require_known_statuses(recipients: pg_sys::Oid) -> Result<()> {
    let query = format!(
        "SELECT count(*), min(coalesce(status::text, 'NULL')) FROM {}
          WHERE status IS NULL OR status::text NOT IN ('pending', 'sent', 'delivered', 'read', 'failed')",
        qualified_name(recipients)?
    );
    let (count, example) = select_two::<i64, String>(&query, &[])?.unwrap_or_default();
    if let (Some(count @ 1..), Some(example)) = (count, example) {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
            format!(
                "{count} recipients of {} have a status outside the accepted ones, for example \"{example}\"",
                qualified_name(recipients)?
            ),
        )
        .detail(format!("Accepted statuses: {}.", Status::ACCEPTED))
        .hint("Fix those rows, then try again."));
    }
    Ok(())
}
