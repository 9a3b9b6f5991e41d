//! What each campaign cost: the pricing of each message, recorded once from the first status that carries it, and campaign_costs.

use crate::apply::timestamp_datum;
use crate::attachment::{chosen_attachment, Attachment, Lookup};
use crate::context::{as_extension_owner, pinned, require_privilege, select_one};
use crate::error::{or_raise, Error, Result};
use crate::pricing::{first_per_message, Pricing};
use crate::status::PgTimestamp;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{pg_sys, PgSqlErrorCode};

/// Whether the extension's schema has the pricing table: until `ALTER EXTENSION campaign_counters
/// UPDATE` brings an older schema to 0.3.0, this library runs against one without it, and
/// pricing is not recorded.
pub fn schema_keeps_pricing() -> Result<bool> {
    Ok(select_one::<bool>(
        "SELECT pg_catalog.to_regclass('campaign_counters.message_pricing') IS NOT NULL",
        &[],
    )?
    .unwrap_or(false))
}

/// Stores the pricing of the message ids in `priced` (status order) that have none yet: the
/// first status carrying pricing wins, in this batch and across batches, so retries and
/// duplicates never count a message twice. Ids no recipient has yet are priced too; the
/// pricing counts for a campaign once a recipient of it has the id (campaign_costs joins then).
pub fn record_pricing<'a>(
    attachment: &Attachment,
    priced: impl IntoIterator<Item = (&'a str, &'a Pricing, PgTimestamp)>,
) -> Result<()> {
    let first = first_per_message(priced);
    if first.is_empty() || !schema_keeps_pricing()? {
        return Ok(());
    }
    let text = |pick: fn(&Pricing) -> &Option<String>| -> DatumWithOid<'static> {
        first
            .values()
            .map(|(pricing, _)| pick(pricing).clone())
            .collect::<Vec<_>>()
            .into()
    };
    let args = vec![
        attachment.recipients.into(),
        first.keys().copied().collect::<Vec<_>>().into(),
        text(|pricing| &pricing.pricing_model),
        text(|pricing| &pricing.category),
        text(|pricing| &pricing.pricing_type),
        first
            .values()
            .map(|(pricing, _)| pricing.billable)
            .collect::<Vec<_>>()
            .into(),
        timestamp_datum(first.values().map(|(_, at)| Some(*at)).collect())?,
    ];
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO campaign_counters.message_pricing
                    (recipients, whatsapp_message_id, pricing_model, category, pricing_type, billable, priced_at)
             SELECT $1::regclass, p.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::timestamptz[]) AS p
             ON CONFLICT (recipients, whatsapp_message_id) DO NOTHING",
            &args,
        )?;
        Ok(())
    })
}

/// A pricing value, NULL when the status did not say it.
type Text = Option<String>;

type CostRow = (Text, Text, Text, Option<bool>, i64);

fn costs(campaign_id: Option<&str>, campaigns: Option<pg_sys::Oid>) -> Result<Vec<CostRow>> {
    pinned(|| {
        let attachment = chosen_attachment(campaigns, Lookup::Campaigns)?;
        require_privilege(attachment.campaigns, "SELECT")?;
        require_privilege(attachment.recipients, "SELECT")?;
        if let Some(id) = campaign_id {
            let exists = Spi::get_one_with_args::<bool>(
                &format!(
                    "SELECT EXISTS (SELECT FROM {} WHERE id = CAST($1 AS {}))",
                    attachment.campaigns_name, attachment.id_type_name
                ),
                &[id.into()],
            )?
            .unwrap_or(false);
            if !exists {
                return Err(Error::new(
                    PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
                    format!(
                        "campaign {id} does not exist in {}",
                        attachment.campaigns_name
                    ),
                ));
            }
        }
        // The caller may read both tables (checked above); the join runs as the extension
        // owner, who alone reads the pricing table. Like the counters, the result is a sum
        // over all of a campaign's recipients. A message id several recipients share is one
        // message.
        let query = format!(
            "SELECT p.pricing_model, p.category, p.pricing_type, p.billable, count(*)
               FROM campaign_counters.message_pricing p
              WHERE p.recipients = $1::regclass
                AND p.whatsapp_message_id IN (SELECT r.whatsapp_message_id::text FROM {} r
                                               WHERE r.whatsapp_message_id IS NOT NULL {})
              GROUP BY 1, 2, 3, 4
              ORDER BY 5 DESC, 1, 2, 3, 4",
            attachment.recipients_name,
            campaign_id.map_or(String::new(), |_| format!(
                "AND r.campaign_id = CAST($2 AS {})",
                attachment.id_type_name
            ))
        );
        let mut args: Vec<DatumWithOid> = vec![attachment.recipients.into()];
        args.extend(campaign_id.map(DatumWithOid::from));
        as_extension_owner(|| {
            Spi::connect(|client| {
                let mut rows = Vec::new();
                for row in client.select(query.as_str(), None, &args)? {
                    rows.push((
                        row.get::<String>(1)?,
                        row.get::<String>(2)?,
                        row.get::<String>(3)?,
                        row.get::<bool>(4)?,
                        row.get::<i64>(5)?.unwrap_or(0),
                    ));
                }
                Ok(rows)
            })
        })
    })
}

#[pg_extern(sql = false)]
fn campaign_costs(
    campaign_id: Option<&str>,
    campaigns: Option<pg_sys::Oid>,
) -> TableIterator<
    'static,
    (
        name!(pricing_model, Text),
        name!(category, Text),
        name!(pricing_type, Text),
        name!(billable, Option<bool>),
        name!(messages, i64),
    ),
> {
    TableIterator::new(or_raise(costs(campaign_id, campaigns)))
}
