-- campaign_costs(): the pricing of each message, recorded once from the first status carrying it.
-- Its own tables (bigint ids), attached next to the application's tables.
\getenv abs_srcdir PG_ABS_SRCDIR
\set helper :abs_srcdir '/helpers/begin.sql'
\i :helper
-- A second attachment (the application's tables), so that functions must be told which one.
DO $$ BEGIN PERFORM campaign_counters.attach(); END $$;
SET timezone = 'UTC';
CREATE SCHEMA costs;
CREATE TABLE costs.campaigns (
    id                 bigint PRIMARY KEY,
    name               text NOT NULL,
    messages_pending   integer NOT NULL DEFAULT 0,
    messages_sent      integer NOT NULL DEFAULT 0,
    messages_delivered integer NOT NULL DEFAULT 0,
    messages_read      integer NOT NULL DEFAULT 0,
    messages_failed    integer NOT NULL DEFAULT 0
);
CREATE TABLE costs.recipients (
    id                  serial PRIMARY KEY,
    campaign_id         bigint NOT NULL REFERENCES costs.campaigns,
    status              text NOT NULL DEFAULT 'pending',
    whatsapp_message_id text UNIQUE,
    sent_at             timestamptz,
    delivered_at        timestamptz,
    read_at             timestamptz,
    failed_at           timestamptz
);
SELECT campaign_counters.attach('costs.recipients', 'costs.campaigns');
INSERT INTO costs.campaigns (id, name) VALUES (1, 'spring sale'), (2, 'order updates'), (3, 'fixtures'), (4, 'not started');
INSERT INTO costs.recipients (campaign_id, status, whatsapp_message_id)
SELECT 1, 'sent', 'wamid.C' || n FROM generate_series(1, 6) n
UNION ALL SELECT 2, 'sent', 'wamid.U' || n FROM generate_series(1, 3) n;

-- A status item with the given pricing (NULL: none).
CREATE FUNCTION costs.status(id text, status text, at integer, pricing jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object('id', id, 'status', status, 'timestamp', (1750030000 + at)::text,
                                                'recipient_id', '16505551234', 'pricing', pricing))
$$;
CREATE FUNCTION costs.apply(statuses jsonb) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT whatsapp_message_id || ' ' || status || ': ' || outcome
      FROM campaign_counters.apply_whatsapp_webhook(webhook(statuses), 'costs.recipients')
$$;
-- What the pricing table holds for a message id.
CREATE VIEW costs.priced AS
SELECT whatsapp_message_id, pricing_model, category, pricing_type, billable, priced_at
  FROM campaign_counters.message_pricing WHERE recipients = 'costs.recipients'::regclass;
\set cbp_service '{"billable": true, "pricing_model": "CBP", "category": "service"}'
\set pmp_marketing '{"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"}'
\set pmp_utility '{"billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility"}'
\set pmp_free '{"billable": false, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}'

-- CBP sent pricing with sent, delivered and read: the message counts once.
SELECT costs.apply(jsonb_build_array(costs.status('wamid.C1', 'sent', 1, :'cbp_service'),
                                     costs.status('wamid.C1', 'delivered', 2, :'cbp_service')));
SELECT costs.apply(jsonb_build_array(costs.status('wamid.C1', 'read', 3, :'cbp_service')));
-- PMP marketing, and Meta retrying the same body: still once.
SELECT costs.apply(jsonb_build_array(costs.status('wamid.C2', 'sent', 1, :'pmp_marketing')));
SELECT costs.apply(jsonb_build_array(costs.status('wamid.C2', 'sent', 1, :'pmp_marketing')));
-- Out of order: the delivered status (pricing utility) arrives before the sent one (pricing
-- marketing); the first status that carries pricing wins, whatever its own time.
SELECT costs.apply(jsonb_build_array(costs.status('wamid.C3', 'read', 30, NULL)));
SELECT costs.apply(jsonb_build_array(costs.status('wamid.C3', 'delivered', 20, :'pmp_utility')));
SELECT costs.apply(jsonb_build_array(costs.status('wamid.C3', 'sent', 10, :'pmp_marketing')));
-- Free service message (PMP, not billable); a message whose statuses carry no pricing.
SELECT costs.apply(jsonb_build_array(costs.status('wamid.C4', 'delivered', 4, :'pmp_free'),
                                     costs.status('wamid.C5', 'delivered', 5, NULL)));
SELECT * FROM costs.priced ORDER BY 1;
SELECT * FROM campaign_counters.campaign_costs('1', 'costs.campaigns');

-- One body mixing shapes: pricing nested in conversation (Meta's group docs), a string, an
-- empty object, fields of the wrong JSON type (kept field by field), pricing on an ignored
-- status and on an invalid one (neither recorded). Every item gets its usual outcome.
SELECT costs.apply(jsonb_build_array(
    jsonb_build_object('id', 'wamid.U1', 'status', 'sent', 'timestamp', '1750030100',
                       'conversation', jsonb_build_object('id', 'c1', 'origin', jsonb_build_object('type', 'utility'),
                                                          'pricing', jsonb_build_object('billable', true, 'pricing_model', 'CBP', 'category', 'utility'))),
    costs.status('wamid.U2', 'sent', 100, '"PMP"'),
    costs.status('wamid.U2', 'delivered', 101, '{}'),
    costs.status('wamid.U3', 'sent', 100, '{"billable": "yes", "pricing_model": "PMP", "category": 7, "type": ["regular"]}'),
    costs.status('wamid.C6', 'deleted', 100, :'pmp_marketing'),
    jsonb_build_object('id', 'wamid.C6', 'status', 'sent', 'pricing', :'pmp_marketing'::jsonb),
    costs.status('wamid.U2', 'read', 102, NULL)));
SELECT * FROM costs.priced WHERE whatsapp_message_id IN ('wamid.U1', 'wamid.U2', 'wamid.U3', 'wamid.C6') ORDER BY 1;
SELECT * FROM campaign_counters.campaign_costs('2', 'costs.campaigns');
-- A campaign without priced messages has no rows; NULL gives every campaign's messages.
SELECT * FROM campaign_counters.campaign_costs('4', 'costs.campaigns');
SELECT * FROM campaign_counters.campaign_costs(NULL, 'costs.campaigns');

-- Pricing for an id no recipient has yet (the event is parked) counts once a recipient of the
-- campaign gets the id.
SELECT costs.apply(jsonb_build_array(costs.status('wamid.LATE', 'sent', 7, :'pmp_marketing')));
SELECT sum(messages) FROM campaign_counters.campaign_costs('1', 'costs.campaigns');
INSERT INTO costs.recipients (campaign_id, whatsapp_message_id) VALUES (1, 'wamid.LATE');
SELECT status FROM costs.recipients WHERE whatsapp_message_id = 'wamid.LATE';
SELECT * FROM campaign_counters.campaign_costs('1', 'costs.campaigns') WHERE category = 'marketing';

-- Real bodies (tests/fixtures/realworld): PMP general_purpose_ai, CBP authentication, a failed
-- status with pricing (CBP referral_conversion, not billable), a deleted status with pricing
-- (ignored), conversation without pricing, and Meta's group docs with pricing nested in
-- conversation and placeholder timestamps (invalid: nothing recorded).
\set realworld :abs_srcdir '/../fixtures/realworld'
\set gupshup `cat :realworld/gupshup_docs_delivered_general_purpose_ai.json`
\set netflie `cat :realworld/netflie_status_delivered_authentication.json`
\set courier_failed `cat :realworld/courier_wac_error_status.json`
\set courier_deleted `cat :realworld/courier_wac_ignore_status_deleted.json`
\set wajs `cat :realworld/wajs_v25_delivered.json`
\set groups `cat :realworld/placeholder/metadocs_groups_aggregated_delivered_placeholders.json`
CREATE TEMP TABLE bodies AS
SELECT n, body FROM unnest(ARRAY[:'courier_deleted', :'gupshup', :'netflie', :'courier_failed', :'wajs', :'groups']::jsonb[])
       WITH ORDINALITY AS b(body, n);
INSERT INTO costs.recipients (campaign_id, whatsapp_message_id)
SELECT DISTINCT 3, jsonb_path_query(body, '$.entry[*].changes[*].value.statuses[*].id') #>> '{}' FROM bodies;
SELECT b.n, w.whatsapp_message_id, w.status, w.outcome
  FROM bodies b, campaign_counters.apply_whatsapp_webhook(b.body, 'costs.recipients') w ORDER BY b.n, 2;
SELECT * FROM campaign_counters.campaign_costs('3', 'costs.campaigns');

-- Errors, with their SQLSTATEs.
SELECT expect_error($$SELECT * FROM campaign_counters.campaign_costs('99', 'costs.campaigns')$$);
SELECT expect_error($$SELECT * FROM campaign_counters.campaign_costs('ten', 'costs.campaigns')$$);
SELECT expect_error($$SELECT * FROM campaign_counters.campaign_costs('1', 'costs.recipients')$$);
SELECT regexp_replace(expect_error($$SELECT * FROM campaign_counters.campaign_costs('1')$$), '^22023: [0-9]+', '22023: N');

-- Reading needs SELECT on both tables; the pricing table itself is the extension's.
CREATE ROLE costs_reader;
GRANT USAGE ON SCHEMA costs TO costs_reader;
GRANT SELECT ON costs.campaigns TO costs_reader;
SET ROLE costs_reader;
SELECT expect_error($$SELECT * FROM campaign_counters.campaign_costs('1', 'costs.campaigns')$$);
SELECT expect_error($$SELECT * FROM campaign_counters.message_pricing$$);
RESET ROLE;
GRANT SELECT ON costs.recipients TO costs_reader;
SET ROLE costs_reader;
SELECT sum(messages) FROM campaign_counters.campaign_costs('1', 'costs.campaigns');
RESET ROLE;
\df campaign_counters.campaign_costs
SELECT obj_description('campaign_counters.campaign_costs(text, regclass)'::regprocedure, 'pg_proc') IS NOT NULL AS function_commented,
       obj_description('campaign_counters.message_pricing'::regclass, 'pg_class') IS NOT NULL AS table_commented;

-- Detach forgets the table's pricing; so does dropping an attached table.
BEGIN;
SELECT campaign_counters.detach('costs.recipients');
SELECT count(*) FROM campaign_counters.message_pricing;
ROLLBACK;
SELECT count(*) > 0 AS priced FROM campaign_counters.message_pricing;
DROP TABLE costs.recipients CASCADE;
SELECT count(*) FROM campaign_counters.message_pricing;
DROP SCHEMA costs CASCADE;

DROP OWNED BY costs_reader;
DROP ROLE costs_reader;

\set helper :abs_srcdir '/helpers/end.sql'
\i :helper
