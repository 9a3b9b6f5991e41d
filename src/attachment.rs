//! Attached table pairs as the code sees them: validated column facts and kept plans, cached per relation and dropped whenever PostgreSQL invalidates one of the tables.

use crate::context::{extension_owner, owner_of, qualified_name, quote_ident};
use crate::counters::{CampaignKey, Counters, COUNTER_COLUMNS};
use crate::error::{Error, Result};
use crate::mode::Mode;
use crate::pending::PendingPlans;
use crate::snapshot::exists_in_latest_snapshot;
use crate::validation::{validate, Facts};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient};
use pgrx::{pg_sys, PgOid, PgSqlErrorCode};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// How a campaign id column stores its values, which decides how a datum becomes a [`CampaignKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Int4,
    Int8,
    Uuid,
    Text,
}

/// Id types whose values compare with each other: the two tables of a pair may differ within a
/// family (integer and bigint while an int-to-bigint migration runs, text and varchar).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFamily {
    Int,
    Uuid,
    Text,
}

impl KeyKind {
    /// The kind for a column's base type, or None when campaign ids of that type are not supported.
    pub fn of_base_type(base_type: pg_sys::Oid) -> Option<KeyKind> {
        match base_type {
            pg_sys::INT4OID => Some(KeyKind::Int4),
            pg_sys::INT8OID => Some(KeyKind::Int8),
            pg_sys::UUIDOID => Some(KeyKind::Uuid),
            pg_sys::TEXTOID | pg_sys::VARCHAROID => Some(KeyKind::Text),
            _ => None,
        }
    }

    pub fn family(self) -> KeyFamily {
        match self {
            KeyKind::Int4 | KeyKind::Int8 => KeyFamily::Int,
            KeyKind::Uuid => KeyFamily::Uuid,
            KeyKind::Text => KeyFamily::Text,
        }
    }

    /// Reads a non-null datum of this kind.
    ///
    /// # Safety
    /// `datum` must be a valid, non-null value of a column whose base type has this kind.
    pub unsafe fn key(self, datum: pg_sys::Datum) -> CampaignKey {
        match self {
            KeyKind::Int4 => CampaignKey::Int(datum.value() as i32 as i64),
            KeyKind::Int8 => CampaignKey::Int(datum.value() as i64),
            KeyKind::Uuid => {
                // SAFETY: a uuid datum points at its 16 bytes (pg_uuid_t), per the caller.
                let bytes = unsafe { &*datum.cast_mut_ptr::<[u8; 16]>() };
                CampaignKey::Uuid(*bytes)
            }
            // SAFETY: text and varchar datums are varlenas, per the caller.
            KeyKind::Text => CampaignKey::Text(unsafe { detoasted_bytes(datum) }.into()),
        }
    }
}

impl KeyFamily {
    /// The SQL type every id of the family is cast to in the extension's queries and parameters.
    pub fn sql_type(self) -> &'static str {
        match self {
            KeyFamily::Int => "pg_catalog.int8",
            KeyFamily::Uuid => "pg_catalog.uuid",
            KeyFamily::Text => "pg_catalog.text",
        }
    }

    pub fn type_oid(self) -> pg_sys::Oid {
        match self {
            KeyFamily::Int => pg_sys::INT8OID,
            KeyFamily::Uuid => pg_sys::UUIDOID,
            KeyFamily::Text => pg_sys::TEXTOID,
        }
    }

    /// Parses an id as PostgreSQL prints it (the text form of `sql_type`).
    pub fn parse(self, text: &str) -> Option<CampaignKey> {
        match self {
            KeyFamily::Int => text.parse().ok().map(CampaignKey::Int),
            KeyFamily::Uuid => {
                let hex: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
                let mut bytes = [0u8; 16];
                if hex.len() != 32 {
                    return None;
                }
                for (byte, pair) in bytes.iter_mut().zip(hex.chunks(2)) {
                    *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
                }
                Some(CampaignKey::Uuid(bytes))
            }
            KeyFamily::Text => Some(CampaignKey::Text(text.as_bytes().into())),
        }
    }

    /// Reads column `ordinal` of an SPI result row holding ids cast to [`KeyFamily::sql_type`].
    pub fn read(
        self,
        row: &pgrx::spi::SpiHeapTupleData<'_>,
        ordinal: usize,
    ) -> Result<Option<CampaignKey>> {
        Ok(match self {
            KeyFamily::Int => row.get::<i64>(ordinal)?.map(CampaignKey::Int),
            KeyFamily::Uuid => row
                .get::<pgrx::Uuid>(ordinal)?
                .map(|value| CampaignKey::Uuid(*value.as_bytes())),
            KeyFamily::Text => row
                .get::<String>(ordinal)?
                .map(|value| CampaignKey::Text(value.into_bytes().into_boxed_slice())),
        })
    }

    pub fn datum(self, key: &CampaignKey) -> DatumWithOid<'static> {
        match key {
            CampaignKey::Int(value) => (*value).into(),
            CampaignKey::Uuid(bytes) => pgrx::Uuid::from_bytes(*bytes).into(),
            CampaignKey::Text(bytes) => String::from_utf8_lossy(bytes).into_owned().into(),
        }
    }

    /// An array of keys as one parameter of type `sql_type[]`.
    pub fn array_datum(self, keys: &[CampaignKey]) -> DatumWithOid<'static> {
        match self {
            KeyFamily::Int => keys
                .iter()
                .filter_map(|key| match key {
                    CampaignKey::Int(value) => Some(*value),
                    _ => None,
                })
                .collect::<Vec<i64>>()
                .into(),
            KeyFamily::Uuid => keys
                .iter()
                .filter_map(|key| match key {
                    CampaignKey::Uuid(bytes) => Some(pgrx::Uuid::from_bytes(*bytes)),
                    _ => None,
                })
                .collect::<Vec<pgrx::Uuid>>()
                .into(),
            KeyFamily::Text => keys
                .iter()
                .map(|key| key.to_string())
                .collect::<Vec<String>>()
                .into(),
        }
    }
}

/// The bytes of a non-null text or varchar datum, detoasted into the current memory context.
///
/// # Safety
/// `datum` must be a valid, non-null varlena; the slice lives as long as the current memory
/// context, so callers copy it or use it before the context is reset.
pub unsafe fn detoasted_bytes<'a>(datum: pg_sys::Datum) -> &'a [u8] {
    // SAFETY: per the caller, a varlena; detoasting returns a valid (possibly new) varlena.
    unsafe {
        let value = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
        pgrx::varlena::varlena_to_byte_slice(value)
    }
}

/// A column of a table: its position, declared type and base type (domains resolved).
#[derive(Clone, Debug)]
pub struct Column {
    pub attnum: i16,
    pub type_oid: pg_sys::Oid,
    pub base_type: pg_sys::Oid,
    pub type_name: String,
}

pub fn column(relation: pg_sys::Oid, name: &str) -> Result<Option<Column>> {
    let found = Spi::connect(|client| {
        let rows = client.select(
            "SELECT attnum, atttypid, pg_catalog.format_type(atttypid, atttypmod)
               FROM pg_catalog.pg_attribute
              WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped",
            None,
            &[relation.into(), name.into()],
        )?;
        let mut found = None;
        for row in rows {
            if let (Some(attnum), Some(type_oid), Some(type_name)) = (
                row.get::<i16>(1)?,
                row.get::<pg_sys::Oid>(2)?,
                row.get::<String>(3)?,
            ) {
                found = Some((attnum, type_oid, type_name));
            }
        }
        Ok::<_, pgrx::spi::Error>(found)
    })?;
    Ok(found.map(|(attnum, type_oid, type_name)| Column {
        attnum,
        type_oid,
        // SAFETY: getBaseType only reads the type cache; an unknown oid is returned unchanged.
        base_type: unsafe { pg_sys::getBaseType(type_oid) },
        type_name,
    }))
}

/// How a recipients timestamp column stores time: `timestamp without time zone` holds UTC, so
/// the result never depends on the session's TimeZone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeColumn {
    WithZone,
    Utc,
}

impl TimeColumn {
    /// The column read as timestamptz.
    pub fn read(self, column: &str) -> String {
        match self {
            TimeColumn::WithZone => column.to_string(),
            TimeColumn::Utc => format!("pg_catalog.timezone('UTC', {column})"),
        }
    }
}

/// An attached pair: the recipients table (the root, if partitioned) and its campaigns table.
pub struct Attachment {
    pub recipients: pg_sys::Oid,
    pub campaigns: pg_sys::Oid,
    pub recipients_name: String,
    pub campaigns_name: String,
    pub key_family: KeyFamily,
    /// How the campaigns' id column stores ids (the recipients' column may differ within the family).
    pub id_kind: KeyKind,
    /// Owners of the two tables: the trigger writes counters as the campaigns' owner and applies
    /// parked events as the recipients' owner, so no one's code runs with more rights than theirs.
    pub campaigns_owner: pg_sys::Oid,
    pub recipients_owner: pg_sys::Oid,
    /// `format_type` of the campaigns' id column, for casting ids given as text.
    pub id_type_name: String,
    /// sent_at, delivered_at, read_at, failed_at.
    pub time_columns: [TimeColumn; 4],
    /// How writes reach the counters (`campaign_counters.attachments.mode`).
    pub mode: Mode,
    /// Whether this database's extension schema has counting modes (0.3.0 or later: pending
    /// changes, maintenance times): until `ALTER EXTENSION ... UPDATE`, a newer library serves an
    /// older schema without them.
    pub schema_has_modes: bool,
    /// The role that owns the extension's tables: pending changes are written as this role.
    pub extension_owner: pg_sys::Oid,
    /// `UPDATE campaigns SET counter = coalesce(counter, 0) + $n ... WHERE id = $1`, kept for the session.
    pub(crate) add_to_counters: OwnedPreparedStatement,
    apply_plans: std::cell::OnceCell<ApplyPlans>,
    pub(crate) pending_plans: std::cell::OnceCell<PendingPlans>,
}

/// Names the advisory lock that orders writers of a campaign id that has no row against the
/// creation of that row: (campaigns table, hash of the id's text).
const CAMPAIGN_ROW_LOCK: &str = "pg_catalog.hashtext($2)";

impl Attachment {
    /// The `ORDER BY` clause that locks campaign rows in the order of [`CampaignKey`]: text ids
    /// sort with `COLLATE "C"`, the bytewise order of the keys.
    pub fn id_order(&self, column: &str) -> String {
        if self.key_family == KeyFamily::Text {
            format!("{column} COLLATE \"C\"")
        } else {
            column.to_string()
        }
    }

    /// `column` cast to the key family's type, for queries whose ids Rust reads.
    pub fn key_expression(&self, column: &str) -> String {
        format!("{column}::{}", self.key_family.sql_type())
    }

    fn lock_arguments(&self, campaign: &CampaignKey) -> [DatumWithOid<'static>; 2] {
        [
            (self.campaigns.to_u32() as i32).into(),
            campaign.to_string().into(),
        ]
    }

    /// Takes the lock that a writer of `campaign`'s recipients holds while the campaign has no
    /// row (shared) or that the creator of its row holds while it counts them (exclusive).
    pub fn lock_campaign_id(
        &self,
        client: &mut SpiClient<'_>,
        campaign: &CampaignKey,
        exclusive: bool,
    ) -> Result<()> {
        let function = if exclusive {
            "pg_advisory_xact_lock"
        } else {
            "pg_advisory_xact_lock_shared"
        };
        client.update(
            format!("SELECT pg_catalog.{function}($1, {CAMPAIGN_ROW_LOCK})").as_str(),
            None,
            &self.lock_arguments(campaign),
        )?;
        Ok(())
    }

    /// Adds each campaign's change to its counters: one kept-plan UPDATE per campaign, in key
    /// order, so concurrent writers lock campaign rows in one order and never deadlock on them.
    ///
    /// A campaign with no row keeps no counters: the change is not lost, because a row created
    /// later starts from a count of its recipients (see `new_campaigns`). The shared lock taken
    /// here makes that creator wait for this transaction, and the second try catches a row
    /// created meanwhile.
    pub fn write_deltas<'a>(
        &self,
        changes: impl Iterator<Item = (&'a CampaignKey, &'a Counters)>,
    ) -> Result<()> {
        Spi::connect_mut(|client| {
            for (campaign, change) in changes {
                let mut args = Vec::with_capacity(6);
                args.push(self.key_family.datum(campaign));
                args.extend(change.0.iter().map(|value| DatumWithOid::from(*value)));
                if !client
                    .update(&self.add_to_counters, None, &args)?
                    .is_empty()
                {
                    continue;
                }
                self.lock_campaign_id(client, campaign, false)?;
                if !client
                    .update(&self.add_to_counters, None, &args)?
                    .is_empty()
                {
                    continue;
                }
                self.refuse_if_created_unseen(campaign)?;
            }
            Ok(())
        })
    }

    /// In REPEATABLE READ and SERIALIZABLE, a campaign row committed after the transaction's
    /// snapshot is invisible to its UPDATE and its creator counted without this transaction's
    /// change: that is a serialization failure, not a change to drop.
    fn refuse_if_created_unseen(&self, campaign: &CampaignKey) -> Result<()> {
        // SAFETY: reads a backend-local variable.
        if unsafe { pg_sys::XactIsoLevel } < pg_sys::XACT_REPEATABLE_READ as i32 {
            return Ok(());
        }
        let query = format!(
            "SELECT FROM {} WHERE id = $1::{}",
            self.campaigns_name,
            self.key_family.sql_type()
        );
        if exists_in_latest_snapshot(&query, self.key_family.datum(campaign))? {
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
                format!(
                    "could not serialize access: campaign {campaign} of {} was created by a concurrent transaction",
                    self.campaigns_name
                ),
            )
            .hint("Retry the transaction."));
        }
        Ok(())
    }
}

/// Column positions and types of one relation that fires the trigger (the attached table itself,
/// or a partition written to directly), with the attachment it belongs to.
pub struct TriggerTarget {
    pub attachment: Rc<Attachment>,
    pub campaign_id_column: Column,
    pub campaign_id_kind: KeyKind,
    pub status_column: Column,
    pub message_id_column: Column,
}

impl TriggerTarget {
    /// Whether `descriptor` (the relation's current row type) still has the columns this entry
    /// was validated for: no value is ever decoded as a type that was not checked.
    ///
    /// # Safety
    /// `descriptor` must be a valid tuple descriptor.
    pub unsafe fn describes(&self, descriptor: pg_sys::TupleDesc) -> bool {
        // SAFETY: per the caller, a valid descriptor that outlives this call; not released here.
        let descriptor = unsafe { pgrx::PgTupleDesc::from_pg_unchecked(descriptor) };
        let matches = |column: &Column| {
            usize::try_from(column.attnum - 1)
                .ok()
                .and_then(|index| descriptor.get(index))
                .is_some_and(|attribute| {
                    !attribute.attisdropped && attribute.atttypid == column.type_oid
                })
        };
        matches(&self.campaign_id_column) && matches(&self.status_column)
    }
}

thread_local! {
    static TARGETS: RefCell<HashMap<pg_sys::Oid, Rc<TriggerTarget>>> = RefCell::new(HashMap::new());
    /// Entries invalidated while a plan of theirs may be running; freed at the next lookup.
    static RETIRED: RefCell<Vec<Rc<TriggerTarget>>> = const { RefCell::new(Vec::new()) };
    /// Set when an invalidation arrived while the cache was borrowed: everything is forgotten at
    /// the next lookup instead.
    static FORGET_ALL: Cell<bool> = const { Cell::new(false) };
}

/// Relcache invalidation: forget every entry that involves `relid` (or all, for InvalidOid).
/// Called by PostgreSQL, so it must not panic: a busy cache defers the work to the next lookup.
unsafe extern "C-unwind" fn forget_relation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let forgotten = TARGETS.with(|targets| {
        let Ok(mut targets) = targets.try_borrow_mut() else {
            return false;
        };
        let stale: Vec<pg_sys::Oid> = targets
            .iter()
            .filter(|(relation, target)| {
                relid == pg_sys::InvalidOid
                    || **relation == relid
                    || target.attachment.recipients == relid
                    || target.attachment.campaigns == relid
            })
            .map(|(relation, _)| *relation)
            .collect();
        RETIRED.with(|retired| match retired.try_borrow_mut() {
            Ok(mut retired) => {
                retired.extend(stale.iter().filter_map(|relation| targets.remove(relation)));
                true
            }
            Err(_) => false,
        })
    });
    if !forgotten {
        FORGET_ALL.with(|flag| flag.set(true));
    }
}

/// Schema changes (ALTER SCHEMA ... RENAME) send no relcache invalidation, but the cached names
/// are schema-qualified: forget everything. Must not panic either; only sets a flag.
unsafe extern "C-unwind" fn forget_schemas(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    FORGET_ALL.with(|flag| flag.set(true));
}

pub fn register_invalidation() {
    // SAFETY: registers callbacks with 'static functions; called once, from _PG_init.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(forget_relation), pg_sys::Datum::from(0));
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::NAMESPACEOID as i32,
            Some(forget_schemas),
            pg_sys::Datum::from(0),
        );
    }
}

/// Drops every cached entry (after DDL that changed what an attachment is).
pub fn forget_all() {
    FORGET_ALL.with(|flag| flag.set(true));
}

/// The attached root table `relation` belongs to, if any.
pub fn attached_root(relation: pg_sys::Oid) -> Result<Option<(pg_sys::Oid, pg_sys::Oid)>> {
    let found = Spi::get_two_with_args::<pg_sys::Oid, pg_sys::Oid>(
        "SELECT recipients::oid, campaigns::oid FROM campaign_counters.attachments
          WHERE recipients = coalesce(pg_partition_root($1::regclass), $1::regclass)",
        &[relation.into()],
    );
    match found {
        Ok((Some(recipients), Some(campaigns))) => Ok(Some((recipients, campaigns))),
        Ok(_) | Err(pgrx::spi::Error::InvalidPosition) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The cached facts of `relation` (the attached table or one of its partitions), loading and
/// validating them on first use. Errors when it is not attached or no longer valid.
pub fn trigger_target(relation: pg_sys::Oid) -> Result<Rc<TriggerTarget>> {
    // Freed outside the borrow: freeing a plan must not meet the invalidation callback mid-borrow.
    if FORGET_ALL.with(|flag| flag.replace(false)) {
        let all = TARGETS.with_borrow_mut(std::mem::take);
        drop(all);
    }
    drop(RETIRED.with_borrow_mut(std::mem::take));
    if let Some(found) = TARGETS.with_borrow(|targets| targets.get(&relation).cloned()) {
        return Ok(found);
    }
    let Some((recipients, campaigns)) = attached_root(relation)? else {
        return Err(Error::not_attached(&qualified_name(relation)?).hint(
            "The counter triggers of this table outlived its attachment: attach it again with campaign_counters.attach(), \
             or drop the triggers campaign_counters_insert, _update, _delete and _truncate.",
        ));
    };
    let attachment = if relation == recipients {
        Rc::new(load_attachment(recipients, campaigns)?)
    } else {
        trigger_target(recipients)?.attachment.clone()
    };
    let required = |name: &str| -> Result<Column> {
        column(relation, name)?.ok_or_else(|| {
            Error::new(
                PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
                format!(
                    "column \"{name}\" of relation {} does not exist",
                    qualified_name(relation).unwrap_or_default()
                ),
            )
        })
    };
    let campaign_id_column = required("campaign_id")?;
    let campaign_id_kind = KeyKind::of_base_type(campaign_id_column.base_type)
        .filter(|kind| kind.family() == attachment.key_family)
        .ok_or_else(|| {
            Error::new(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                format!(
                    "column \"campaign_id\" of {} has type {}, which does not match the campaign ids",
                    qualified_name(relation).unwrap_or_default(),
                    campaign_id_column.type_name
                ),
            )
        })?;
    let target = Rc::new(TriggerTarget {
        campaign_id_column,
        campaign_id_kind,
        status_column: required("status")?,
        message_id_column: required("whatsapp_message_id")?,
        attachment,
    });
    TARGETS.with_borrow_mut(|targets| targets.insert(relation, target.clone()));
    Ok(target)
}

/// The attachment whose recipients table is `recipients` (a root table).
pub fn attachment_of(recipients: pg_sys::Oid) -> Result<Rc<Attachment>> {
    Ok(trigger_target(recipients)?.attachment.clone())
}

fn load_attachment(recipients: pg_sys::Oid, campaigns: pg_sys::Oid) -> Result<Attachment> {
    // Validated again on every load: the tables may have changed in ways the DDL event trigger
    // did not see (event triggers do not fire under session_replication_role = replica).
    let Facts {
        key_family,
        id_kind,
        id_type_name,
        time_columns,
    } = validate(recipients, campaigns)?;
    let campaigns_name = qualified_name(campaigns)?;
    let query = format!(
        "UPDATE {campaigns_name} SET {} WHERE id = $1",
        counter_terms("{c} = coalesce({c}, 0) + {p}", ", ")
    );
    let mut argument_types = vec![PgOid::from(key_family.type_oid())];
    argument_types.extend([PgOid::from(pg_sys::INT8OID); 5]);
    let add_to_counters = Spi::connect(|client| {
        client
            .prepare_mut(query.as_str(), &argument_types)
            .map(|plan| plan.keep())
    })?;
    // Through the whole row, so that a schema without the column (before 0.3.0) reads as
    // immediate; always one row, also when a concurrent detach just removed the attachment (the
    // caller then fails as it did before modes existed, or finds the triggers gone).
    let (mode, schema_has_modes) = Spi::get_two_with_args::<String, bool>(
        "SELECT coalesce(pg_catalog.to_jsonb(a) OPERATOR(pg_catalog.->>) 'mode', 'immediate'),
                pg_catalog.to_regclass('campaign_counters.pending_changes') IS NOT NULL
           FROM (SELECT) AS one
           LEFT JOIN campaign_counters.attachments a ON a.recipients = $1::regclass",
        &[recipients.into()],
    )?;
    let mode = mode
        .as_deref()
        .and_then(Mode::parse)
        .unwrap_or(Mode::Immediate);
    Ok(Attachment {
        recipients,
        campaigns,
        recipients_name: qualified_name(recipients)?,
        campaigns_name,
        campaigns_owner: owner_of(campaigns)?,
        recipients_owner: owner_of(recipients)?,
        key_family,
        id_kind,
        id_type_name,
        time_columns,
        mode,
        schema_has_modes: schema_has_modes.unwrap_or(false),
        extension_owner: extension_owner()?,
        add_to_counters,
        apply_plans: std::cell::OnceCell::new(),
        pending_plans: std::cell::OnceCell::new(),
    })
}

/// One SQL term per counter column, joined by `separator`: `{c}` in `template` is the quoted
/// column, `{p}` its parameter ($2 to $6, after the campaign id in $1).
pub fn counter_terms(template: &str, separator: &str) -> String {
    COUNTER_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            template
                .replace("{c}", &quote_ident(name))
                .replace("{p}", &format!("${}", i + 2))
        })
        .collect::<Vec<_>>()
        .join(separator)
}

/// Which table of a pair a function was given.
#[derive(Clone, Copy)]
pub enum Lookup {
    Recipients,
    Campaigns,
}

/// The attachment a function works on: the one `table` belongs to, or with `table` NULL the
/// only attachment there is.
pub fn chosen_attachment(table: Option<pg_sys::Oid>, lookup: Lookup) -> Result<Rc<Attachment>> {
    let condition = match lookup {
        Lookup::Recipients => {
            "recipients = coalesce(pg_partition_root($1::regclass), $1::regclass)"
        }
        Lookup::Campaigns => "campaigns = $1::regclass",
    };
    let query = format!(
        "SELECT recipients::oid FROM campaign_counters.attachments WHERE $1 IS NULL OR {condition}"
    );
    let argument = match table {
        Some(oid) => DatumWithOid::from(oid),
        None => DatumWithOid::null_oid(pg_sys::OIDOID),
    };
    let found: Vec<pg_sys::Oid> = Spi::connect(|client| {
        let mut found = Vec::new();
        for row in client.select(query.as_str(), None, &[argument])? {
            found.extend(row.get::<pg_sys::Oid>(1)?);
        }
        Ok::<_, pgrx::spi::Error>(found)
    })?;
    match (found.as_slice(), table) {
        ([recipients], _) => attachment_of(*recipients),
        ([], Some(table)) => Err(Error::not_attached(&qualified_name(table)?)
            .hint("Attach it with campaign_counters.attach(recipients, campaigns).")),
        ([], None) => Err(Error::new(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            "no table is attached to campaign_counters",
        )
        .hint("Attach one with campaign_counters.attach(recipients, campaigns).")),
        (several, _) => Err(Error::new(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "{} table pairs are attached to campaign_counters; say which one",
                several.len()
            ),
        )
        .hint(match lookup {
            Lookup::Recipients => {
                "Pass the recipients table, for example recipients => 'campaign_recipients'."
            }
            Lookup::Campaigns => {
                "Pass the campaigns table, for example campaigns => 'marketing_campaigns'."
            }
        })),
    }
}

/// The kept plans of the status-event path.
pub struct ApplyPlans {
    /// Reads and locks recipients by message id, in message-id order, skipping rows another
    /// transaction holds: a status event never waits for the application's writes.
    pub lock_rows: OwnedPreparedStatement,
    /// Which of the given message ids some recipient has (committed), without locking: tells a
    /// busy row from an unknown id.
    pub find_ids: OwnedPreparedStatement,
    /// Writes merged rows from arrays, one statement for a whole batch.
    pub write_rows: OwnedPreparedStatement,
}

impl Attachment {
    pub fn apply_plans(&self, client: &SpiClient<'_>) -> Result<&ApplyPlans> {
        if let Some(plans) = self.apply_plans.get() {
            return Ok(plans);
        }
        let recipients = &self.recipients_name;
        let [sent, delivered, read, failed] = self.time_columns;
        let lock_rows = format!(
            "SELECT whatsapp_message_id::text, status::text, {}, {}, {}, {}, tableoid, ctid::text
               FROM {recipients}
              WHERE whatsapp_message_id = ANY($1)
              ORDER BY whatsapp_message_id COLLATE \"C\"
                FOR NO KEY UPDATE SKIP LOCKED",
            sent.read("sent_at"),
            delivered.read("delivered_at"),
            read.read("read_at"),
            failed.read("failed_at"),
        );
        let write = |time: TimeColumn, value: &str| match time {
            TimeColumn::WithZone => value.to_string(),
            TimeColumn::Utc => format!("pg_catalog.timezone('UTC', {value})"),
        };
        // By tuple id (a TID scan per row) rather than by message id (an index probe per
        // row): the rows are locked, so they stay where lock_rows found them.
        let write_rows = format!(
            "UPDATE {recipients} AS r
                SET status = u.status, sent_at = {}, delivered_at = {},
                    read_at = {}, failed_at = {}
               FROM unnest($1::oid[], $2::text[]::tid[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                           $6::timestamptz[], $7::timestamptz[])
                    AS u(relation, tuple, status, sent_at, delivered_at, read_at, failed_at)
              WHERE r.tableoid = u.relation AND r.ctid = u.tuple",
            write(sent, "u.sent_at"),
            write(delivered, "u.delivered_at"),
            write(read, "u.read_at"),
            write(failed, "u.failed_at"),
        );
        let find_ids = format!(
            "SELECT DISTINCT whatsapp_message_id::text FROM {recipients} WHERE whatsapp_message_id = ANY($1)"
        );
        let text_array = PgOid::from(pg_sys::TEXTARRAYOID);
        let oid_array = PgOid::from(pg_sys::OIDARRAYOID);
        let timestamp_array = PgOid::from(pg_sys::TIMESTAMPTZARRAYOID);
        let prepare = |query: &str, types: &[PgOid]| -> Result<OwnedPreparedStatement> {
            Ok(client.prepare_mut(query, types).map(|plan| plan.keep())?)
        };
        let plans = ApplyPlans {
            lock_rows: prepare(&lock_rows, &[text_array])?,
            find_ids: prepare(&find_ids, &[text_array])?,
            write_rows: prepare(
                &write_rows,
                &[
                    oid_array,
                    text_array,
                    text_array,
                    timestamp_array,
                    timestamp_array,
                    timestamp_array,
                    timestamp_array,
                ],
            )?,
        };
        Ok(self.apply_plans.get_or_init(|| plans))
    }
}
