-- A partitioned recipients table: counted through the parent, and through a partition written directly.
\getenv abs_srcdir PG_ABS_SRCDIR
\set helper :abs_srcdir '/helpers/begin.sql'
\i :helper
CREATE TABLE part_campaigns (id bigint PRIMARY KEY, messages_sent int NOT NULL DEFAULT 0, messages_delivered int NOT NULL DEFAULT 0,
                             messages_read int NOT NULL DEFAULT 0, messages_failed int NOT NULL DEFAULT 0, messages_pending int NOT NULL DEFAULT 0);
CREATE TABLE part_recipients (campaign_id bigint NOT NULL, status text NOT NULL DEFAULT 'pending', whatsapp_message_id text,
                              sent_at timestamptz, delivered_at timestamptz, read_at timestamptz, failed_at timestamptz)
    PARTITION BY LIST (campaign_id);
CREATE TABLE part_recipients_1 PARTITION OF part_recipients FOR VALUES IN (1);
CREATE TABLE part_recipients_2 PARTITION OF part_recipients FOR VALUES IN (2);
INSERT INTO part_campaigns (id) VALUES (1), (2);
INSERT INTO part_recipients (campaign_id, status) VALUES (1, 'sent'), (2, 'read');
SELECT campaign_counters.attach('part_recipients', 'part_campaigns');
SELECT tgrelid::regclass, count(*) FROM pg_trigger WHERE tgname LIKE 'campaign_counters%' AND tgrelid::regclass::text LIKE 'part%' GROUP BY 1 ORDER BY 1;
INSERT INTO part_recipients (campaign_id, status, whatsapp_message_id) SELECT 1 + i % 2, 'pending', 'wamid.p' || i FROM generate_series(1, 10) i;
-- A row moving between partitions (a campaign change) moves its count.
UPDATE part_recipients SET campaign_id = 2 WHERE whatsapp_message_id = 'wamid.p1';
-- Writes straight to a partition are counted too.
INSERT INTO part_recipients_1 (campaign_id, status) VALUES (1, 'failed');
UPDATE part_recipients_2 SET status = 'delivered' WHERE status = 'pending';
DELETE FROM part_recipients_1 WHERE status = 'sent';
SELECT campaign_counters.apply_recipient_status('wamid.p2', 'read', '2026-03-04 10:00+00', 'part_recipients');
SELECT * FROM part_campaigns ORDER BY id;
SELECT * FROM campaign_counters.verify_campaign_counters(campaigns => 'part_campaigns');
-- A partition created after attach gets its triggers at once: a direct write to it counts
-- (checked before the TRUNCATE below, whose recount would hide a missing trigger).
CREATE TABLE part_recipients_3 PARTITION OF part_recipients FOR VALUES IN (3);
INSERT INTO part_campaigns (id) VALUES (3);
INSERT INTO part_recipients_3 (campaign_id, status) VALUES (3, 'read');
SELECT id, messages_sent, messages_read FROM part_campaigns WHERE id = 3;
TRUNCATE part_recipients_2;
SELECT * FROM part_campaigns ORDER BY id;
SELECT * FROM campaign_counters.verify_campaign_counters(campaigns => 'part_campaigns');
SELECT expect_error($$SELECT campaign_counters.attach('part_recipients_1', 'part_campaigns')$$);
SELECT campaign_counters.detach('part_recipients');
SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'campaign_counters%' AND tgrelid::regclass::text LIKE 'part%';
DROP TABLE part_recipients, part_campaigns;

\set helper :abs_srcdir '/helpers/end.sql'
\i :helper
