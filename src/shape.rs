//! Attached table pairs as the code sees them: column positions, the campaign id type and kept plans, cached per relation and dropped when the tables change.

use crate::counters::{CampaignKey, Counters, COUNTER_COLUMNS};
use crate::session::{owner_of, qualified_name, quote_ident, raise};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{pg_sys, PgOid, PgSqlErrorCode};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// How campaign ids are stored, which decides how a datum becomes a [`CampaignKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Int4,
    Int8,
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

    pub fn type_oid(self) -> pg_sys::Oid {
        match self {
            KeyKind::Int4 => pg_sys::INT4OID,
            KeyKind::Int8 => pg_sys::INT8OID,
            KeyKind::Uuid => pg_sys::UUIDOID,
            KeyKind::Text => pg_sys::TEXTOID,
        }
    }

    /// Reads a non-null datum of this kind.
    ///
    /// # Safety
    /// `datum` must be a valid, non-null value of a column of this kind.
    pub unsafe fn key(self, datum: pg_sys::Datum) -> CampaignKey {
        match self {
            KeyKind::Int4 => CampaignKey::Int(datum.value() as i32 as i64),
            KeyKind::Int8 => CampaignKey::Int(datum.value() as i64),
            KeyKind::Uuid => {
                let bytes = std::slice::from_raw_parts(datum.cast_mut_ptr::<u8>(), 16);
                CampaignKey::Uuid(bytes.try_into().expect("a uuid has 16 bytes"))
            }
            KeyKind::Text => CampaignKey::Text(text_bytes(datum).into()),
        }
    }

    /// Reads column `ordinal` of an SPI result row holding ids of this kind.
    pub fn read(
        self,
        row: &pgrx::spi::SpiHeapTupleData<'_>,
        ordinal: usize,
    ) -> Option<CampaignKey> {
        match self {
            KeyKind::Int4 => row
                .get::<i32>(ordinal)
                .ok()?
                .map(|value| CampaignKey::Int(value as i64)),
            KeyKind::Int8 => row.get::<i64>(ordinal).ok()?.map(CampaignKey::Int),
            KeyKind::Uuid => row
                .get::<pgrx::Uuid>(ordinal)
                .ok()?
                .map(|value| CampaignKey::Uuid(*value.as_bytes())),
            KeyKind::Text => row
                .get::<String>(ordinal)
                .ok()?
                .map(|value| CampaignKey::Text(value.into_bytes().into_boxed_slice())),
        }
    }

    pub fn datum(self, key: &CampaignKey) -> DatumWithOid<'static> {
        match (self, key) {
            (KeyKind::Int4, CampaignKey::Int(value)) => (*value as i32).into(),
            (KeyKind::Int8, CampaignKey::Int(value)) => (*value).into(),
            (KeyKind::Uuid, CampaignKey::Uuid(bytes)) => pgrx::Uuid::from_bytes(*bytes).into(),
            (KeyKind::Text, CampaignKey::Text(bytes)) => {
                String::from_utf8_lossy(bytes).into_owned().into()
            }
            _ => unreachable!("campaign keys of one table share its id type"),
        }
    }
}

/// The bytes of a non-null text or varchar datum, detoasted as needed.
///
/// # Safety
/// `datum` must be a valid, non-null varlena.
pub unsafe fn text_bytes<'a>(datum: pg_sys::Datum) -> &'a [u8] {
    let value = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
    pgrx::varlena::varlena_to_byte_slice(value)
}

/// A column of a table: its position, declared type and base type (domains resolved).
pub struct Column {
    pub attnum: i16,
    pub base_type: pg_sys::Oid,
    pub type_name: String,
}

pub fn column(relation: pg_sys::Oid, name: &str) -> Option<Column> {
    let row = Spi::get_three_with_args::<i16, pg_sys::Oid, String>(
        "SELECT attnum, atttypid, pg_catalog.format_type(atttypid, atttypmod)
           FROM pg_catalog.pg_attribute
          WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped",
        &[relation.into(), name.into()],
    )
    .ok()?;
    match row {
        (Some(attnum), Some(type_oid), Some(type_name)) => Some(Column {
            attnum,
            base_type: unsafe { pg_sys::getBaseType(type_oid) },
            type_name,
        }),
        _ => None,
    }
}

/// An attached pair: the recipients table (the root, if partitioned) and its campaigns table.
pub struct Attachment {
    pub recipients: pg_sys::Oid,
    pub campaigns: pg_sys::Oid,
    pub recipients_name: String,
    pub campaigns_name: String,
    pub key_kind: KeyKind,
    /// Owners of the two tables: the trigger writes counters as the campaigns' owner and applies
    /// parked events as the recipients' owner, so no one's code runs with more rights than theirs.
    pub campaigns_owner: pg_sys::Oid,
    pub recipients_owner: pg_sys::Oid,
    /// `format_type` of the campaigns' id column, for casting ids given as text.
    pub id_type_name: String,
    /// `UPDATE campaigns SET counter = counter + $n ... WHERE id = $1`, kept for the session.
    add_to_counters: OwnedPreparedStatement,
    apply_plans: std::cell::OnceCell<ApplyPlans>,
}

impl Attachment {
    /// The `ORDER BY` clause that locks campaign rows in the order of [`CampaignKey`]: text ids
    /// sort with `COLLATE "C"`, the bytewise order of the keys.
    pub fn id_order(&self, column: &str) -> String {
        if self.key_kind == KeyKind::Text {
            format!("{column} COLLATE \"C\"")
        } else {
            column.to_string()
        }
    }

    /// Adds each campaign's change to its counters: one kept-plan UPDATE per campaign, in key
    /// order, so concurrent writers lock campaign rows in one order and never deadlock on them.
    pub fn write_deltas<'a>(&self, changes: impl Iterator<Item = (&'a CampaignKey, &'a Counters)>) {
        Spi::connect_mut(|client| {
            for (campaign, change) in changes {
                let mut args = Vec::with_capacity(6);
                args.push(self.key_kind.datum(campaign));
                args.extend(change.0.iter().map(|value| DatumWithOid::from(*value)));
                client
                    .update(&self.add_to_counters, None, &args)
                    .expect("counter update");
            }
        });
    }
}

/// Column positions of one relation that fires the trigger (the attached table itself, or a
/// partition written to directly), with the attachment it belongs to.
pub struct TriggerTarget {
    pub attachment: Rc<Attachment>,
    pub campaign_id: i32,
    pub status: i32,
    pub whatsapp_message_id: i32,
}

thread_local! {
    static TARGETS: RefCell<HashMap<pg_sys::Oid, Rc<TriggerTarget>>> = RefCell::new(HashMap::new());
    /// Entries invalidated while a plan of theirs may be running; freed at the next lookup.
    static RETIRED: RefCell<Vec<Rc<TriggerTarget>>> = const { RefCell::new(Vec::new()) };
}

/// Relcache invalidation: forget every entry that involves `relid` (or all, for InvalidOid).
unsafe extern "C-unwind" fn forget_relation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    TARGETS.with_borrow_mut(|targets| {
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
        RETIRED.with_borrow_mut(|retired| {
            retired.extend(stale.iter().filter_map(|relation| targets.remove(relation)))
        });
    });
}

pub fn register_invalidation() {
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(forget_relation), pg_sys::Datum::from(0)) };
}

/// The attached root table `relation` belongs to, if any.
pub fn attached_root(relation: pg_sys::Oid) -> Option<(pg_sys::Oid, pg_sys::Oid)> {
    let (recipients, campaigns) = Spi::get_two_with_args::<pg_sys::Oid, pg_sys::Oid>(
        "SELECT recipients::oid, campaigns::oid FROM campaign_counters.attachments
          WHERE recipients = coalesce(pg_partition_root($1::regclass), $1::regclass)",
        &[relation.into()],
    )
    .ok()?;
    Some((recipients?, campaigns?))
}

/// The cached shape of `relation`, loading it on first use. Errors when it is not attached.
pub fn trigger_target(relation: pg_sys::Oid) -> Rc<TriggerTarget> {
    // Freed outside the borrow: freeing a plan must not meet the invalidation callback mid-borrow.
    drop(RETIRED.with_borrow_mut(std::mem::take));
    if let Some(found) = TARGETS.with_borrow(|targets| targets.get(&relation).cloned()) {
        return found;
    }
    let Some((recipients, campaigns)) = attached_root(relation) else {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("table {} is not attached to campaign_counters", qualified_name(relation)),
            None,
            Some("Run campaign_counters.attach() for it, or campaign_counters.detach() to drop its triggers."),
        );
    };
    let attachment = if relation == recipients {
        Rc::new(load_attachment(recipients, campaigns))
    } else {
        trigger_target(recipients).attachment.clone()
    };
    let position = |name: &str| match column(relation, name) {
        Some(column) => column.attnum as i32,
        None => raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
            format!(
                "column \"{name}\" of relation {} does not exist",
                qualified_name(relation)
            ),
            None,
            None,
        ),
    };
    let target = Rc::new(TriggerTarget {
        campaign_id: position("campaign_id"),
        status: position("status"),
        whatsapp_message_id: position("whatsapp_message_id"),
        attachment,
    });
    TARGETS.with_borrow_mut(|targets| targets.insert(relation, target.clone()));
    target
}

/// The attachment whose recipients table is `recipients` (a root table).
pub fn attachment_of(recipients: pg_sys::Oid) -> Rc<Attachment> {
    trigger_target(recipients).attachment.clone()
}

fn load_attachment(recipients: pg_sys::Oid, campaigns: pg_sys::Oid) -> Attachment {
    let id = column(campaigns, "id").unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
            format!(
                "column \"id\" of relation {} does not exist",
                qualified_name(campaigns)
            ),
            None,
            None,
        )
    });
    let key_kind = KeyKind::of_base_type(id.base_type).unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "column \"id\" of {} has type {}",
                qualified_name(campaigns),
                id.type_name
            ),
            None,
            Some("Campaign ids may be uuid, bigint, integer or text."),
        )
    });
    let campaigns_name = qualified_name(campaigns);
    let increments: Vec<String> = COUNTER_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let column = quote_ident(name);
            format!("{column} = {column} + ${}", i + 2)
        })
        .collect();
    let query = format!(
        "UPDATE {campaigns_name} SET {} WHERE id = $1",
        increments.join(", ")
    );
    let mut argument_types = vec![PgOid::from(key_kind.type_oid())];
    argument_types.extend([PgOid::from(pg_sys::INT8OID); 5]);
    let add_to_counters = Spi::connect(|client| {
        client
            .prepare_mut(query.as_str(), &argument_types)
            .map(|plan| plan.keep())
    })
    .expect("preparing the counter update");
    Attachment {
        recipients,
        campaigns,
        recipients_name: qualified_name(recipients),
        campaigns_name,
        campaigns_owner: owner_of(campaigns),
        recipients_owner: owner_of(recipients),
        key_kind,
        id_type_name: id.type_name,
        add_to_counters,
        apply_plans: std::cell::OnceCell::new(),
    }
}

/// Which table of a pair a function was given.
#[derive(Clone, Copy)]
pub enum Lookup {
    Recipients,
    Campaigns,
}

/// The attachment a function works on: the one `table` belongs to, or with `table` NULL the
/// only attachment there is.
pub fn chosen_attachment(table: Option<pg_sys::Oid>, lookup: Lookup) -> Rc<Attachment> {
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
        client
            .select(query.as_str(), None, &[argument])
            .map(|rows| {
                rows.filter_map(|row| row.get::<pg_sys::Oid>(1).ok().flatten())
                    .collect()
            })
    })
    .expect("reading campaign_counters.attachments");
    match (found.as_slice(), table) {
        ([recipients], _) => attachment_of(*recipients),
        ([], Some(table)) => raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!(
                "table {} is not attached to campaign_counters",
                qualified_name(table)
            ),
            None,
            Some("Attach it with campaign_counters.attach(recipients, campaigns)."),
        ),
        ([], None) => raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            "no table is attached to campaign_counters",
            None,
            Some("Attach one with campaign_counters.attach(recipients, campaigns)."),
        ),
        (several, _) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "{} table pairs are attached to campaign_counters; say which one",
                several.len()
            ),
            None,
            Some(match lookup {
                Lookup::Recipients => {
                    "Pass the recipients table, for example recipients => 'campaign_recipients'."
                }
                Lookup::Campaigns => {
                    "Pass the campaigns table, for example campaigns => 'marketing_campaigns'."
                }
            }),
        ),
    }
}

/// The kept plans of the status-event path.
pub struct ApplyPlans {
    /// Reads and locks recipients by message id, in message-id order.
    pub lock_rows: OwnedPreparedStatement,
    /// Writes merged rows from arrays, one statement for a whole batch.
    pub write_rows: OwnedPreparedStatement,
}

impl Attachment {
    pub fn apply_plans(&self, client: &pgrx::spi::SpiClient<'_>) -> &ApplyPlans {
        self.apply_plans.get_or_init(|| {
            let recipients = &self.recipients_name;
            let lock_rows = format!(
                "SELECT whatsapp_message_id::text, status::text, sent_at::timestamptz, delivered_at::timestamptz,
                        read_at::timestamptz, failed_at::timestamptz, tableoid, ctid::text
                   FROM {recipients}
                  WHERE whatsapp_message_id = ANY($1)
                  ORDER BY whatsapp_message_id COLLATE \"C\"
                    FOR NO KEY UPDATE"
            );
            // By tuple id (a TID scan per row) rather than by message id (an index probe per
            // row): the rows are locked, so they stay where lock_rows found them.
            let write_rows = format!(
                "UPDATE {recipients} AS r
                    SET status = u.status, sent_at = u.sent_at, delivered_at = u.delivered_at,
                        read_at = u.read_at, failed_at = u.failed_at
                   FROM unnest($1::oid[], $2::text[]::tid[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                               $6::timestamptz[], $7::timestamptz[])
                        AS u(relation, tuple, status, sent_at, delivered_at, read_at, failed_at)
                  WHERE r.tableoid = u.relation AND r.ctid = u.tuple"
            );
            let text_array = PgOid::from(pg_sys::TEXTARRAYOID);
            let oid_array = PgOid::from(pg_sys::OIDARRAYOID);
            let timestamp_array = PgOid::from(pg_sys::TIMESTAMPTZARRAYOID);
            let prepare = |query: &str, types: &[PgOid]| {
                client.prepare_mut(query, types).map(|plan| plan.keep()).expect("preparing a status plan")
            };
            ApplyPlans {
                lock_rows: prepare(&lock_rows, &[text_array]),
                write_rows: prepare(
                    &write_rows,
                    &[oid_array, text_array, text_array, timestamp_array, timestamp_array, timestamp_array, timestamp_array],
                ),
            }
        })
    }
}
