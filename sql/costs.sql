-- What each campaign cost: the pricing Meta's status webhooks carry, recorded once per message
-- (the first status that carries it), and campaign_costs() counting a campaign's messages per
-- pricing. Dashboards multiply by their rate card.

CREATE TABLE campaign_counters.message_pricing (
    recipients          regclass    NOT NULL,
    whatsapp_message_id text        NOT NULL,
    pricing_model       text,
    category            text,
    pricing_type        text,
    billable            boolean,
    priced_at           timestamptz NOT NULL,
    PRIMARY KEY (recipients, whatsapp_message_id)
);
COMMENT ON TABLE campaign_counters.message_pricing IS
    'Meta''s pricing (pricing_model, category, type, billable) per message id, from the first status that carried it.';
COMMENT ON COLUMN campaign_counters.message_pricing.priced_at IS
    'Time of the status the pricing came from.';
SELECT pg_catalog.pg_extension_config_dump('campaign_counters.message_pricing', '');
REVOKE ALL ON campaign_counters.message_pricing FROM PUBLIC;

CREATE FUNCTION campaign_counters.campaign_costs(campaign_id text, campaigns regclass DEFAULT NULL)
    RETURNS TABLE (pricing_model text, category text, pricing_type text, billable boolean, messages bigint)
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'campaign_costs_wrapper';
COMMENT ON FUNCTION campaign_counters.campaign_costs(text, regclass) IS
    'A campaign''s messages (or, with campaign_id NULL, every campaign''s) per pricing Meta reported: pricing_model, category, pricing_type, billable, and how many messages; most first. Multiply by your rate card. campaigns NULL means the only attachment. Needs SELECT on both tables.';
