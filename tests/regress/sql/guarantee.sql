-- Every statement PostgreSQL accepts on an attached pair leaves the counters exact, or is refused
-- and changes nothing. Self-contained: its own tables, dropped at the end.
CREATE EXTENSION IF NOT EXISTS campaign_counters;
CREATE FUNCTION pg_temp.expect_error(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
CREATE FUNCTION pg_temp.drift(campaigns regclass) RETURNS bigint LANGUAGE sql AS
    'SELECT count(*) FROM campaign_counters.verify_campaign_counters(campaigns => campaigns)';
CREATE TABLE g_campaigns (id integer PRIMARY KEY, messages_pending int NOT NULL DEFAULT 0,
    messages_sent int NOT NULL DEFAULT 0, messages_delivered int NOT NULL DEFAULT 0,
    messages_read int NOT NULL DEFAULT 0, messages_failed int NOT NULL DEFAULT 0);
CREATE TABLE g_recipients (id serial PRIMARY KEY,
    campaign_id integer REFERENCES g_campaigns ON UPDATE CASCADE ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'pending', whatsapp_message_id text,
    sent_at timestamptz, delivered_at timestamptz, read_at timestamptz, failed_at timestamptz);
INSERT INTO g_campaigns (id) VALUES (1), (2);
INSERT INTO g_recipients (campaign_id, status, whatsapp_message_id)
     SELECT 1, 'sent', 'g.' || i FROM generate_series(1, 10) i;
SELECT campaign_counters.attach('g_recipients', 'g_campaigns');

-- 1. A campaign id changed with ON UPDATE CASCADE: the recipients move, the counters with them.
UPDATE g_campaigns SET id = 99 WHERE id = 1;
SELECT id, messages_sent FROM g_campaigns ORDER BY id;
SELECT pg_temp.drift('g_campaigns');

-- 2. campaign_id int -> bigint on the recipients side (the two sides differ for a while), then
--    on the campaigns side: the counters stay exact, recalc has nothing to do, writes count.
ALTER TABLE g_recipients ALTER COLUMN campaign_id TYPE bigint;
SELECT pg_temp.drift('g_campaigns');
SELECT campaign_counters.recalc_campaign_counters(campaigns => 'g_campaigns');
INSERT INTO g_recipients (campaign_id, status) VALUES (99, 'read');
ALTER TABLE g_campaigns ALTER COLUMN id TYPE bigint;
UPDATE g_recipients SET status = 'delivered' WHERE whatsapp_message_id = 'g.1';
SELECT id, messages_sent, messages_delivered, messages_read FROM g_campaigns ORDER BY id;
SELECT pg_temp.drift('g_campaigns');
-- A rewrite that changes counted values without changing the type is recounted.
ALTER TABLE g_recipients ALTER COLUMN status TYPE text USING (CASE WHEN status = 'sent' THEN 'failed' ELSE status END);
SELECT id, messages_sent, messages_failed FROM g_campaigns ORDER BY id;
SELECT pg_temp.drift('g_campaigns');

-- 7. Changes the extension cannot follow are refused, naming the column, and change nothing.
CREATE TYPE g_status AS ENUM ('pending', 'sent', 'delivered', 'read', 'failed');
SELECT pg_temp.expect_error($$ALTER TABLE g_recipients ALTER COLUMN status DROP DEFAULT, ALTER COLUMN status TYPE g_status USING status::g_status$$);
SELECT pg_temp.expect_error($$ALTER TABLE g_recipients RENAME COLUMN status TO state$$);
SELECT pg_temp.expect_error($$ALTER TABLE g_campaigns DROP COLUMN messages_read$$);
SELECT pg_temp.expect_error($$ALTER TABLE g_recipients ALTER COLUMN status TYPE text USING 'queued'$$);
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'g_recipients'::regclass AND attname = 'status';
-- Renames and new columns are followed.
ALTER TABLE g_recipients ADD COLUMN note text;
ALTER TABLE g_recipients ALTER COLUMN status TYPE varchar(20);
ALTER TABLE g_campaigns RENAME TO g_campaigns_renamed;
ALTER TABLE g_campaigns_renamed RENAME TO g_campaigns;
INSERT INTO g_recipients (campaign_id, status) VALUES (99, 'failed');
SELECT pg_temp.drift('g_campaigns');

-- 5. A campaign with no row: its recipients' changes are kept, verify reports the missing row,
--    and the row counts its recipients when it is created.
ALTER TABLE g_recipients DROP CONSTRAINT g_recipients_campaign_id_fkey;
INSERT INTO g_recipients (campaign_id, status) VALUES (7, 'sent'), (7, 'read'), (7, 'pending');
SELECT * FROM campaign_counters.verify_campaign_counters(campaigns => 'g_campaigns');
INSERT INTO g_campaigns (id, messages_sent) VALUES (7, 1000);
SELECT * FROM g_campaigns WHERE id = 7;
SELECT pg_temp.drift('g_campaigns');
-- Deleted and created again: the new row starts from the recipients that carry its id.
DELETE FROM g_campaigns WHERE id = 7;
UPDATE g_recipients SET status = 'delivered' WHERE campaign_id = 7 AND status = 'sent';
INSERT INTO g_campaigns (id) VALUES (7);
SELECT * FROM g_campaigns WHERE id = 7;
-- An id changed without a cascade: the new id starts from its own recipients (none).
UPDATE g_campaigns SET id = 8 WHERE id = 7;
SELECT * FROM campaign_counters.verify_campaign_counters(campaigns => 'g_campaigns');
UPDATE g_campaigns SET id = 7 WHERE id = 8;
SELECT pg_temp.drift('g_campaigns');

-- 9. NULL counters: the trigger counts from 0, verify reports NULL as drift, recalc repairs it.
ALTER TABLE g_campaigns ALTER COLUMN messages_failed DROP NOT NULL, ALTER COLUMN messages_failed DROP DEFAULT;
INSERT INTO g_campaigns (id) VALUES (50);
UPDATE g_campaigns SET messages_failed = NULL WHERE id = 50;
SELECT * FROM campaign_counters.verify_campaign_counters(campaigns => 'g_campaigns');
INSERT INTO g_recipients (campaign_id, status) VALUES (50, 'failed');
SELECT messages_pending, messages_failed FROM g_campaigns WHERE id = 50;
UPDATE g_campaigns SET messages_failed = NULL WHERE id = 50;
SELECT campaign_counters.recalc_campaign_counters(campaigns => 'g_campaigns');
SELECT messages_pending, messages_failed FROM g_campaigns WHERE id = 50;

-- A NULL status reaches the trigger (no NOT NULL here): refused, as any status that counts nowhere.
ALTER TABLE g_recipients ALTER COLUMN status DROP NOT NULL;
SELECT pg_temp.expect_error($$UPDATE g_recipients SET status = NULL WHERE whatsapp_message_id = 'g.4'$$);

-- MERGE with all three actions, and a writable CTE that deletes and inserts in one statement.
MERGE INTO g_recipients r
USING (VALUES ('g.1', 'read'), ('g.2', NULL), ('g.new', 'sent')) AS s(message_id, status)
   ON r.whatsapp_message_id = s.message_id
 WHEN MATCHED AND s.status IS NULL THEN DELETE
 WHEN MATCHED THEN UPDATE SET status = s.status
 WHEN NOT MATCHED THEN INSERT (campaign_id, status, whatsapp_message_id) VALUES (99, s.status, s.message_id);
WITH gone AS (DELETE FROM g_recipients WHERE whatsapp_message_id = 'g.3' RETURNING campaign_id)
INSERT INTO g_recipients (campaign_id, status) SELECT 7, 'read' FROM gone;
SELECT pg_temp.drift('g_campaigns');

-- 3. A row moved to a partition whose BEFORE INSERT trigger drops it: the old and new transition
--    tables differ in length. No crash, and the counters follow what was really stored.
CREATE TABLE gp_campaigns (LIKE g_campaigns INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE gp_campaigns ADD PRIMARY KEY (id);
CREATE TABLE gp_recipients (campaign_id bigint NOT NULL, status text NOT NULL DEFAULT 'pending', whatsapp_message_id text,
    sent_at timestamp, delivered_at timestamp, read_at timestamp, failed_at timestamp) PARTITION BY LIST (campaign_id);
CREATE TABLE gp_recipients_1 PARTITION OF gp_recipients FOR VALUES IN (1);
CREATE TABLE gp_recipients_2 PARTITION OF gp_recipients FOR VALUES IN (2);
CREATE FUNCTION pg_temp.swallow() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
CREATE TRIGGER swallow BEFORE INSERT ON gp_recipients_2 FOR EACH ROW EXECUTE FUNCTION pg_temp.swallow();
INSERT INTO gp_campaigns (id) VALUES (1), (2), (3);
INSERT INTO gp_recipients (campaign_id, status, whatsapp_message_id) SELECT 1, 'sent', 'gp.' || i FROM generate_series(1, 4) i;
SELECT campaign_counters.attach('gp_recipients', 'gp_campaigns');
UPDATE gp_recipients SET campaign_id = 2 WHERE whatsapp_message_id IN ('gp.1', 'gp.2');
SELECT id, messages_sent FROM gp_campaigns ORDER BY id;
SELECT pg_temp.drift('gp_campaigns');

-- 6. Partitions created later get the triggers at once; a partition attached with rows is
--    counted; a detached one is taken out and loses the triggers; a dropped one is recounted.
CREATE TABLE gp_recipients_3 PARTITION OF gp_recipients FOR VALUES IN (3);
INSERT INTO gp_recipients_3 (campaign_id, status) VALUES (3, 'read');
SELECT id, messages_sent, messages_read FROM gp_campaigns WHERE id = 3;
CREATE TABLE gp_recipients_4 (LIKE gp_recipients);
INSERT INTO gp_campaigns (id) VALUES (4);
INSERT INTO gp_recipients_4 (campaign_id, status) VALUES (4, 'delivered'), (4, 'failed');
ALTER TABLE gp_recipients ATTACH PARTITION gp_recipients_4 FOR VALUES IN (4);
SELECT id, messages_sent, messages_delivered, messages_failed FROM gp_campaigns WHERE id = 4;
ALTER TABLE gp_recipients DETACH PARTITION gp_recipients_1;
SELECT id, messages_sent FROM gp_campaigns WHERE id = 1;
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'gp_recipients_1'::regclass AND tgname LIKE 'campaign_counters%';
INSERT INTO gp_recipients_1 (campaign_id, status) VALUES (1, 'sent');
DROP TABLE gp_recipients_3;
SELECT id, messages_read FROM gp_campaigns WHERE id = 3;
SELECT pg_temp.drift('gp_campaigns');

-- 8. timestamp without time zone holds UTC: sessions in different zones merge the same instants.
INSERT INTO gp_recipients (campaign_id, whatsapp_message_id) VALUES (4, 'gp.tz');
SET TimeZone = 'Asia/Tokyo';
SELECT campaign_counters.apply_recipient_status('gp.tz', 'delivered', '2026-05-01 10:00+00', 'gp_recipients');
SET TimeZone = 'America/New_York';
SELECT campaign_counters.apply_recipient_status('gp.tz', 'sent', '2026-05-01 09:00+00', 'gp_recipients');
SELECT campaign_counters.apply_recipient_status('gp.tz', 'delivered', '2026-05-01 10:00+00', 'gp_recipients');
RESET TimeZone;
SELECT status, sent_at, delivered_at FROM gp_recipients WHERE whatsapp_message_id = 'gp.tz';
-- DETACH PARTITION CONCURRENTLY (two transactions) takes its rows out too.
ALTER TABLE gp_recipients DETACH PARTITION gp_recipients_4 CONCURRENTLY;
SELECT id, messages_pending, messages_sent, messages_failed FROM gp_campaigns WHERE id = 4;
SELECT pg_temp.drift('gp_campaigns');

-- 10. Rows that share a message id all get the merge, the lagging one too.
INSERT INTO g_recipients (campaign_id, status, whatsapp_message_id) VALUES (99, 'delivered', 'g.twin'), (99, 'sent', 'g.twin');
SELECT campaign_counters.apply_recipient_status('g.twin', 'sent', '2026-05-01 09:00+00', 'g_recipients');
SELECT status, count(*) FROM g_recipients WHERE whatsapp_message_id = 'g.twin' GROUP BY 1;
SELECT pg_temp.drift('g_campaigns');

-- 11. One item nested deeper than the parser's limit is only that item's verdict.
INSERT INTO g_recipients (campaign_id, whatsapp_message_id) VALUES (99, 'g.deep1'), (99, 'g.deep2');
SELECT whatsapp_message_id, status, outcome FROM campaign_counters.apply_whatsapp_webhook(
    ('{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":['
     || '{"id":"g.deep1","status":"sent","timestamp":"1750030100","x":' || repeat('[', 200) || repeat(']', 200) || '},'
     || '{"id":"g.deep2","status":"read","timestamp":"1750030100"}]}}]}]}')::jsonb, 'g_recipients');

-- 12. A body past the documented limit is a clear 54000, not an abort.
SELECT pg_temp.expect_error($$SELECT * FROM campaign_counters.apply_whatsapp_webhook(
    jsonb_build_object('object', 'whatsapp_business_account', 'pad', repeat('x', 17 * 1024 * 1024)), 'g_recipients')$$);

-- 13. purge runs as the extension owner: EXECUTE is all a maintenance role needs; TRUNCATE
--     recounts when the two tables have different owners.
CREATE ROLE g_maintenance;
CREATE ROLE g_other_owner;
GRANT EXECUTE ON FUNCTION campaign_counters.purge_parked_events(interval) TO g_maintenance;
SELECT campaign_counters.apply_recipient_status('g.never', 'read', '2026-01-01', 'g_recipients');
UPDATE campaign_counters.parked_events SET parked_at = now() - interval '8 days' WHERE whatsapp_message_id = 'g.never';
-- An old parked event whose id a recipient has (stranded by the race with its id's transaction,
-- or carried over) is applied by the purge, not deleted.
INSERT INTO campaign_counters.parked_events (recipients, whatsapp_message_id, status, occurred_at, parked_at)
     VALUES ('g_recipients', 'g.5', 'read', '2026-01-01 10:00+00', now() - interval '8 days');
SET ROLE g_maintenance;
SELECT campaign_counters.purge_parked_events();
RESET ROLE;
SELECT status, read_at IS NOT NULL AS has_read_at FROM g_recipients WHERE whatsapp_message_id = 'g.5';
SELECT count(*) AS still_parked FROM campaign_counters.parked_events;
ALTER TABLE g_campaigns OWNER TO g_other_owner;
TRUNCATE g_recipients;
SELECT sum(messages_pending + messages_sent + messages_failed) AS counted FROM g_campaigns;
ALTER TABLE g_campaigns OWNER TO CURRENT_USER;

-- Ways around the triggers: replication role replica (migration and replication tools) skips
-- them; recalc_campaign_counters() afterwards repairs what they missed.
INSERT INTO g_recipients (campaign_id, status) VALUES (99, 'sent');
SET session_replication_role = replica;
INSERT INTO g_recipients (campaign_id, status) VALUES (99, 'read'), (99, 'read');
RESET session_replication_role;
SELECT pg_temp.drift('g_campaigns') > 0 AS drift_after_replica;
SELECT campaign_counters.recalc_campaign_counters(campaigns => 'g_campaigns');
SELECT pg_temp.drift('g_campaigns');

-- A pair whose recipients table has inheritance children, an attached table attached as a
-- partition of another, and a partitioned campaigns table are refused.
SELECT pg_temp.expect_error($$CREATE TABLE g_child () INHERITS (g_recipients)$$);
CREATE TABLE g_loose (LIKE g_recipients);
SELECT pg_temp.expect_error($$ALTER TABLE g_loose INHERIT g_recipients$$);
DROP TABLE g_loose;
CREATE TABLE gr_campaigns (LIKE gp_campaigns INCLUDING DEFAULTS);
ALTER TABLE gr_campaigns ADD PRIMARY KEY (id);
CREATE TABLE gr_recipients (LIKE gp_recipients);
SELECT campaign_counters.attach('gr_recipients', 'gr_campaigns');
SELECT pg_temp.expect_error($$ALTER TABLE gp_recipients ATTACH PARTITION gr_recipients FOR VALUES IN (7)$$);
SELECT campaign_counters.detach('gr_recipients');
DROP TABLE gr_recipients, gr_campaigns;
CREATE TABLE gq_campaigns (LIKE g_campaigns) PARTITION BY LIST (id);
CREATE TABLE gq_recipients (LIKE g_recipients);
SELECT pg_temp.expect_error($$SELECT campaign_counters.attach('gq_recipients', 'gq_campaigns')$$);
DROP TABLE gq_campaigns, gq_recipients;

-- A schema renamed while this session has the pair cached: writes go on counting.
CREATE SCHEMA g_app;
CREATE TABLE g_app.campaigns (LIKE g_campaigns INCLUDING DEFAULTS);
ALTER TABLE g_app.campaigns ADD PRIMARY KEY (id);
CREATE TABLE g_app.recipients (campaign_id bigint, status text NOT NULL DEFAULT 'pending', whatsapp_message_id text,
    sent_at timestamptz, delivered_at timestamptz, read_at timestamptz, failed_at timestamptz);
INSERT INTO g_app.campaigns (id) VALUES (1);
SELECT campaign_counters.attach('g_app.recipients', 'g_app.campaigns');
INSERT INTO g_app.recipients (campaign_id, status) VALUES (1, 'sent');
ALTER SCHEMA g_app RENAME TO g_app2;
INSERT INTO g_app2.recipients (campaign_id, status) VALUES (1, 'read');
SELECT messages_sent, messages_read FROM g_app2.campaigns;
-- Dropping the recipients table forgets the pair; the campaigns table takes inserts again.
DROP TABLE g_app2.recipients;
INSERT INTO g_app2.campaigns (id) VALUES (2);
SELECT count(*) AS campaign_triggers_left FROM pg_trigger WHERE tgrelid = 'g_app2.campaigns'::regclass AND tgname LIKE 'campaign_counters%';
DROP SCHEMA g_app2 CASCADE;

DROP TABLE g_recipients, g_campaigns, gp_recipients, gp_recipients_1, gp_recipients_4, gp_campaigns;
DROP TYPE g_status;
REVOKE EXECUTE ON FUNCTION campaign_counters.purge_parked_events(interval) FROM g_maintenance;
DROP ROLE g_maintenance, g_other_owner;
DROP EXTENSION campaign_counters;
