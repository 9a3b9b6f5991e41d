-- Security: a pinned search_path, least privilege for application roles, ownership checks.
\getenv abs_srcdir PG_ABS_SRCDIR
\set helper :abs_srcdir '/helpers/begin.sql'
\i :helper
-- Fixture: the recipients the files before it in the schedule leave, by campaign and status (beta's
-- delivered ones have message ids wamid.b1..wamid.b95), attached.
INSERT INTO marketing_campaigns (id, name, total_target_customers) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'alpha', 42), ('00000000-0000-0000-0000-00000000000b', 'beta', 0),
    ('00000000-0000-0000-0000-00000000000d', 'delta', 0), ('00000000-0000-0000-0000-00000000000e', 'epsilon', 0);
INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id)
SELECT ('00000000-0000-0000-0000-00000000000' || c)::uuid, '+' || c || '-' || status || '-' || i, status,
       CASE WHEN c = 'b' AND status = 'delivered' THEN 'wamid.b' || i END
  FROM (VALUES ('a', 'pending', 3), ('a', 'delivered', 3), ('a', 'read', 7),
                ('b', 'pending', 2), ('b', 'failed', 1), ('b', 'delivered', 95), ('b', 'read', 1),
                ('d', 'sent', 1), ('d', 'failed', 2), ('d', 'read', 4), ('e', 'failed', 2), ('e', 'read', 4)) AS fixture(c, status, n), generate_series(1, n) AS i;
DO $$ BEGIN PERFORM campaign_counters.attach(); END $$;

-- Objects a user creates elsewhere cannot hijack the extension: an = operator that says every
-- uuid equals every other, a lower() and a table named like ours, first on the search_path.
CREATE SCHEMA hijack;
CREATE FUNCTION hijack.always_equal(uuid, uuid) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR hijack.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = hijack.always_equal);
CREATE FUNCTION hijack.always_equal(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR hijack.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hijack.always_equal);
CREATE FUNCTION hijack.lower(text) RETURNS text LANGUAGE sql AS 'SELECT ''hijacked''';
CREATE TABLE hijack.attachments (recipients regclass, campaigns regclass);
-- pg_catalog is named after hijack: otherwise PostgreSQL searches it first and nothing is hijacked.
SET search_path = hijack, pg_catalog, public;
SELECT * FROM counters;
-- The application's own statement names pg_catalog's operator; the trigger it fires must too.
UPDATE campaign_recipients SET status = 'read' WHERE whatsapp_message_id OPERATOR(pg_catalog.=) 'wamid.b7';
SELECT campaign_counters.apply_recipient_status('wamid.b8', 'read', '2026-03-03 10:00+00');
SELECT campaign_counters.recalc_campaign_counters('00000000-0000-0000-0000-00000000000b');
SELECT * FROM counters;
SELECT * FROM campaign_counters.verify_campaign_counters();
RESET search_path;
DROP SCHEMA hijack CASCADE;

-- An application role that may write recipients but not the counters.
CREATE ROLE cc_app LOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON campaign_recipients TO cc_app;
GRANT SELECT ON marketing_campaigns TO cc_app;
SET ROLE cc_app;
UPDATE campaign_recipients SET status = 'failed' WHERE whatsapp_message_id = 'wamid.b9';
SELECT campaign_counters.apply_recipient_status('wamid.b10', 'read', '2026-03-03 10:00+00');
SELECT campaign_counters.apply_recipient_status('wamid.not-yet', 'read', '2026-03-03 10:00+00');
INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id)
VALUES ('00000000-0000-0000-0000-00000000000b', '+6', 'sent', 'wamid.app1');
SELECT * FROM campaign_counters.apply_whatsapp_webhook('{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {"statuses": [{"id": "wamid.app1", "status": "failed", "timestamp": "1772532000", "errors": [{"code": 131050, "title": "User opted out of marketing messages"}]}]}}]}]}');
INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id)
VALUES ('00000000-0000-0000-0000-00000000000b', '+7', 'sent', 'wamid.not-yet');
SELECT * FROM campaign_counters.failure_reasons('00000000-0000-0000-0000-00000000000b');
-- It still cannot write the counters, the extension's tables, or run recalc/attach/purge.
SELECT expect_error($$UPDATE marketing_campaigns SET messages_sent = 0$$);
SELECT expect_error($$DELETE FROM campaign_counters.parked_events$$);
SELECT expect_error($$INSERT INTO campaign_counters.attachments VALUES ('pg_class', 'pg_class')$$);
SELECT expect_error($$SELECT campaign_counters.recalc_campaign_counters()$$);
SELECT expect_error($$SELECT campaign_counters.attach()$$);
SELECT expect_error($$SELECT campaign_counters.detach()$$);
SELECT expect_error($$SELECT campaign_counters.purge_parked_events()$$);
SELECT * FROM campaign_counters.verify_campaign_counters();
RESET ROLE;
SELECT * FROM counters;
SELECT count(*) AS parked FROM campaign_counters.parked_events WHERE whatsapp_message_id = 'wamid.not-yet';

-- A role without rights on the recipients cannot apply statuses to them.
CREATE ROLE cc_reader LOGIN;
SET ROLE cc_reader;
SELECT expect_error($$SELECT campaign_counters.apply_recipient_status('wamid.b12', 'read')$$);
RESET ROLE;
DROP ROLE cc_reader;
REVOKE ALL ON campaign_recipients, marketing_campaigns FROM cc_app;
DROP ROLE cc_app;

\set helper :abs_srcdir '/helpers/end.sql'
\i :helper
