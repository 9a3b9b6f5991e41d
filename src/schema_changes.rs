//! Following DDL on attached tables: re-validate the pair, give new partitions their triggers and counts, take both from detached ones, and recount after a type change or a rewrite.

use crate::attach::{
    drop_recipient_triggers, install_recipient_triggers, partitions, record_partition,
};
use crate::attachment::{attachment_of, forget_all, Attachment};
use crate::context::{as_extension_owner, as_role, pinned, select_one};
use crate::counters::{CampaignDeltas, CampaignKey};
use crate::error::{or_raise, Error, Result};
use crate::recalc::{repair, Acting};
use crate::snapshot::{select_text_in_latest_snapshot, text_group};
use crate::validation::{require_known_statuses, validate};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::collections::{BTreeMap, HashSet};

/// What a pair's counters depend on besides its rows: the types of the counted columns and the
/// storage of every table holding counted rows. A change to either (ALTER COLUMN TYPE, a rewrite
/// with USING) may have changed values without firing any trigger.
#[derive(Debug, PartialEq, Eq)]
struct Signature {
    types: String,
    /// relation -> relfilenode, for the campaigns table and every leaf of the recipients tree.
    files: BTreeMap<u32, u32>,
}

impl Signature {
    fn encode(&self) -> String {
        let files: Vec<String> = self
            .files
            .iter()
            .map(|(rel, node)| format!("{rel}={node}"))
            .collect();
        format!("{}|{}", self.types, files.join(","))
    }

    fn decode(text: &str) -> Option<Signature> {
        let (types, files) = text.split_once('|')?;
        let files = files
            .split(',')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (rel, node) = pair.split_once('=')?;
                Some((rel.parse().ok()?, node.parse().ok()?))
            })
            .collect::<Option<BTreeMap<u32, u32>>>()?;
        Some(Signature {
            types: types.to_string(),
            files,
        })
    }

    /// Whether anything counted changed between `self` (before) and `now`, ignoring relations
    /// that joined or left the tree (their rows are counted in or out on their own).
    fn changed_for_kept_relations(&self, now: &Signature) -> bool {
        self.types != now.types
            || self
                .files
                .iter()
                .any(|(relation, node)| now.files.get(relation).is_some_and(|now| now != node))
    }
}

fn current_signature(recipients: pg_sys::Oid, campaigns: pg_sys::Oid) -> Result<Signature> {
    let types = select_one::<String>(
        "SELECT string_agg(a.attrelid::regclass::oid || '.' || a.attname || ':' || a.atttypid::int8, ',' ORDER BY a.attrelid, a.attname)
           FROM pg_catalog.pg_attribute a
          WHERE ((a.attrelid = $1 AND a.attname IN ('campaign_id', 'status'))
              OR (a.attrelid = $2 AND a.attname IN ('id', 'messages_pending', 'messages_sent', 'messages_delivered', 'messages_read', 'messages_failed')))
            AND a.attnum > 0 AND NOT a.attisdropped",
        &[recipients.into(), campaigns.into()],
    )?
    .unwrap_or_default();
    let files = Spi::connect(|client| {
        let mut files = BTreeMap::new();
        for row in client.select(
            "SELECT c.oid::int8, pg_catalog.pg_relation_filenode(c.oid)::int8
               FROM pg_catalog.pg_class c
              WHERE c.oid = $2 OR (c.oid = $1 AND c.relkind = 'r')
                 OR c.oid IN (SELECT relid FROM pg_partition_tree($1::regclass) WHERE isleaf)",
            None,
            &[recipients.into(), campaigns.into()],
        )? {
            if let (Some(relation), Some(node)) = (row.get::<i64>(1)?, row.get::<i64>(2)?) {
                files.insert(relation as u32, node as u32);
            }
        }
        Ok::<_, Error>(files)
    })?;
    Ok(Signature { types, files })
}

/// Stores the pair's current signature (at attach, and after following a change).
pub fn record_signature(recipients: pg_sys::Oid, campaigns: pg_sys::Oid) -> Result<()> {
    let signature = current_signature(recipients, campaigns)?.encode();
    as_extension_owner(|| {
        Spi::run_with_args(
            "UPDATE campaign_counters.attachments SET signature = $2 WHERE recipients = $1::regclass",
            &[recipients.into(), signature.into()],
        )?;
        Ok(())
    })
}

/// Adds the rows of one leaf table (a partition that joined) to the counters. The
/// DDL holds a lock on the leaf that keeps writers out, and the count is read in a snapshot taken
/// now: in REPEATABLE READ the transaction's snapshot may predate writers the DDL waited for.
fn count_leaf(attachment: &Attachment, leaf: pg_sys::Oid) -> Result<()> {
    let query = format!(
        "SELECT campaign_id::text, status::text, count(*) FROM ONLY {} GROUP BY 1, 2",
        crate::context::qualified_name(leaf)?
    );
    let rows = as_role(attachment.recipients_owner, || {
        Spi::connect(|_| select_text_in_latest_snapshot(&query, &[]))
    })?;
    let mut deltas = CampaignDeltas::<CampaignKey>::default();
    for (key, status, number) in rows
        .iter()
        .filter_map(|row| text_group(attachment.key_family, row))
    {
        deltas.count_row(key, status, number);
    }
    as_role(attachment.campaigns_owner, || {
        attachment.write_deltas(deltas.nonzero())
    })
}

fn cannot_follow(error: Error) -> Error {
    error.hint(
        "campaign_counters cannot follow this change: run campaign_counters.detach() first, \
         make the change, then campaign_counters.attach() again.",
    )
}

/// Brings one attachment up to date with DDL that touched it.
fn follow_attachment(
    recipients: pg_sys::Oid,
    campaigns: pg_sys::Oid,
    stored: Option<String>,
) -> Result<()> {
    validate(recipients, campaigns).map_err(cannot_follow)?;
    forget_all();
    let attachment = attachment_of(recipients)?;
    let recorded: HashSet<pg_sys::Oid> = Spi::connect(|client| {
        let mut found = HashSet::new();
        for row in client.select(
            "SELECT partition::oid FROM campaign_counters.partitions WHERE recipients = $1::regclass",
            None,
            &[recipients.into()],
        )? {
            found.extend(row.get::<pg_sys::Oid>(1)?);
        }
        Ok::<_, Error>(found)
    })?;
    let tree = partitions(recipients)?;
    let in_tree: HashSet<pg_sys::Oid> = tree.iter().map(|(relation, _)| *relation).collect();
    // A detached partition's rows are taken out by a recount of what is left, not by subtracting
    // them: after the first phase of DETACH ... CONCURRENTLY, recounts (a recalc, a new campaign
    // row) already leave the partition out, and a subtraction would take its rows out twice.
    let mut detached = false;
    for gone in recorded.difference(&in_tree) {
        let exists = Spi::get_one_with_args::<bool>(
            "SELECT relkind = 'r' FROM pg_catalog.pg_class WHERE oid = $1",
            &[(*gone).into()],
        )?;
        if exists.is_some() {
            drop_recipient_triggers(*gone)?;
            detached = true;
        }
        as_extension_owner(|| {
            Spi::run_with_args(
                "DELETE FROM campaign_counters.partitions WHERE partition = $1::regclass",
                &[(*gone).into()],
            )?;
            Ok(())
        })?;
    }
    for (joined, leaf) in tree
        .iter()
        .filter(|(relation, _)| !recorded.contains(relation))
    {
        let attached_itself = Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT FROM campaign_counters.attachments WHERE recipients = $1::regclass)",
            &[(*joined).into()],
        )?;
        if attached_itself == Some(true) {
            return Err(cannot_follow(Error::new(
                pgrx::PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!(
                    "{} is attached to campaign_counters itself and cannot become a partition of {}",
                    crate::context::qualified_name(*joined)?,
                    crate::context::qualified_name(recipients)?
                ),
            )));
        }
        install_recipient_triggers(*joined)?;
        record_partition(recipients, *joined)?;
        if *leaf {
            require_known_statuses(*joined).map_err(cannot_follow)?;
            count_leaf(&attachment, *joined)?;
        }
    }
    let now = current_signature(recipients, campaigns)?;
    let before = stored.as_deref().and_then(Signature::decode);
    if detached || before.is_none_or(|before| before.changed_for_kept_relations(&now)) {
        require_known_statuses(recipients).map_err(cannot_follow)?;
        repair(&attachment, None, Acting::AsOwners)?;
    }
    record_signature(recipients, campaigns)
}

/// Called by the DDL event trigger with the relations its commands touched.
fn follow(relations: Vec<pg_sys::Oid>) -> Result<()> {
    let attachments: Vec<(pg_sys::Oid, pg_sys::Oid, Option<String>)> = Spi::connect(|client| {
        let mut found = Vec::new();
        for row in client.select(
            "SELECT a.recipients::oid, a.campaigns::oid, a.signature
               FROM campaign_counters.attachments a
              WHERE a.campaigns::oid = ANY($1) OR a.recipients::oid = ANY($1)
                 OR EXISTS (SELECT FROM pg_partition_tree(a.recipients) t WHERE t.relid::oid = ANY($1))
                 OR EXISTS (SELECT FROM campaign_counters.partitions p
                             WHERE p.recipients = a.recipients AND p.partition::oid = ANY($1))
                 OR EXISTS (SELECT FROM pg_catalog.pg_inherits i
                             WHERE i.inhparent = a.recipients AND i.inhrelid = ANY($1))",
            None,
            &[relations.into()],
        )? {
            if let (Some(recipients), Some(campaigns)) = (row.get::<pg_sys::Oid>(1)?, row.get::<pg_sys::Oid>(2)?) {
                found.push((recipients, campaigns, row.get::<String>(3)?));
            }
        }
        Ok::<_, Error>(found)
    })?;
    for (recipients, campaigns, signature) in attachments {
        follow_attachment(recipients, campaigns, signature)?;
    }
    Ok(())
}

#[pg_extern(sql = false)]
fn follow_ddl(relations: Option<Vec<Option<pg_sys::Oid>>>) {
    let relations: Vec<pg_sys::Oid> = relations
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect();
    or_raise(pinned(|| follow(relations)))
}
