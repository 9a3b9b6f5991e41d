-- attach(): defaults on the search_path, validation with SQLSTATEs, idempotence, detach.
\getenv abs_srcdir PG_ABS_SRCDIR
\set helper :abs_srcdir '/helpers/begin.sql'
\i :helper
INSERT INTO marketing_campaigns (id, name, total_target_customers) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'alpha', 42),
    ('00000000-0000-0000-0000-00000000000b', 'beta', 0);
-- Rows that exist before attach are counted by attach's recount.
INSERT INTO campaign_recipients (campaign_id, phone_number, status)
SELECT '00000000-0000-0000-0000-00000000000a', '+1555000' || i, (ARRAY['pending', 'sent', 'read'])[1 + i % 3]
  FROM generate_series(1, 9) i;
SELECT * FROM counters;

SELECT campaign_counters.attach();
SELECT * FROM counters;
SELECT recipients, campaigns FROM campaign_counters.attachments;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'campaign_recipients'::regclass AND NOT tgisinternal ORDER BY 1;

-- The same pair again: a NOTICE and nothing else.
SELECT campaign_counters.attach('campaign_recipients', 'marketing_campaigns');
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'campaign_recipients'::regclass AND NOT tgisinternal;

-- Validation: every table is checked before anything changes.
CREATE VIEW recipients_view AS SELECT * FROM campaign_recipients;
SELECT expect_error($$SELECT campaign_counters.attach('recipients_view', 'marketing_campaigns')$$);
CREATE TABLE no_status (campaign_id uuid, whatsapp_message_id text, sent_at timestamptz,
                        delivered_at timestamptz, read_at timestamptz, failed_at timestamptz);
SELECT expect_error($$SELECT campaign_counters.attach('no_status', 'marketing_campaigns')$$);
CREATE TABLE int_status (campaign_id uuid, status integer, whatsapp_message_id text, sent_at timestamptz,
                         delivered_at timestamptz, read_at timestamptz, failed_at timestamptz);
SELECT expect_error($$SELECT campaign_counters.attach('int_status', 'marketing_campaigns')$$);
CREATE TABLE date_sent (campaign_id uuid, status text, whatsapp_message_id text, sent_at date,
                        delivered_at timestamptz, read_at timestamptz, failed_at timestamptz);
SELECT expect_error($$SELECT campaign_counters.attach('date_sent', 'marketing_campaigns')$$);
CREATE TABLE text_counters (id uuid PRIMARY KEY, messages_sent text, messages_delivered int, messages_read int,
                            messages_failed int, messages_pending int);
SELECT expect_error($$SELECT campaign_counters.attach('campaign_recipients', 'text_counters')$$);
CREATE TABLE bigint_campaigns (id bigint PRIMARY KEY, messages_sent int, messages_delivered int,
                               messages_read int, messages_failed int, messages_pending int);
CREATE TABLE other_recipients (LIKE campaign_recipients);
SELECT expect_error($$SELECT campaign_counters.attach('other_recipients', 'bigint_campaigns')$$);
SELECT expect_error($$SELECT campaign_counters.attach('missing_table')$$);
-- A campaigns table counts one recipients table.
SELECT expect_error($$SELECT campaign_counters.attach('other_recipients', 'marketing_campaigns')$$);
SELECT count(*) AS attachments FROM campaign_counters.attachments;

-- Rows with statuses that count nowhere are refused at attach.
CREATE TABLE legacy_campaigns (id bigint PRIMARY KEY, messages_sent int DEFAULT 0, messages_delivered int DEFAULT 0,
                               messages_read int DEFAULT 0, messages_failed int DEFAULT 0, messages_pending int DEFAULT 0);
CREATE TABLE legacy_recipients (campaign_id bigint, status varchar(20), whatsapp_message_id varchar(100),
                                sent_at timestamp, delivered_at timestamp, read_at timestamp, failed_at timestamp);
INSERT INTO legacy_campaigns (id) VALUES (1);
INSERT INTO legacy_recipients (campaign_id, status) VALUES (1, 'queued'), (1, 'sent');
SELECT expect_error($$SELECT campaign_counters.attach('legacy_recipients', 'legacy_campaigns')$$);
UPDATE legacy_recipients SET status = 'pending' WHERE status = 'queued';
-- varchar statuses, timestamp without time zone and bigint ids are accepted.
SELECT campaign_counters.attach('legacy_recipients', 'legacy_campaigns');
SELECT messages_pending, messages_sent FROM legacy_campaigns;

-- Schema-qualified, quoted and mixed-case names.
CREATE SCHEMA "Sales Dept";
CREATE TABLE "Sales Dept"."Campaigns ""Q1""" (id text PRIMARY KEY, messages_sent int DEFAULT 0, messages_delivered int DEFAULT 0,
                                           messages_read int DEFAULT 0, messages_failed int DEFAULT 0, messages_pending bigint DEFAULT 0);
CREATE TABLE "Sales Dept"."Recipients ""Q1""" (campaign_id text, status text, whatsapp_message_id text,
                                            sent_at timestamptz, delivered_at timestamptz, read_at timestamptz, failed_at timestamptz);
SELECT campaign_counters.attach('"Sales Dept"."Recipients ""Q1"""', '"Sales Dept"."Campaigns ""Q1"""');
INSERT INTO "Sales Dept"."Campaigns ""Q1""" (id) VALUES ('spring-sale'), ('Spring-Sale');
INSERT INTO "Sales Dept"."Recipients ""Q1""" (campaign_id, status) VALUES ('spring-sale', 'read'), ('Spring-Sale', 'failed'), ('spring-sale', 'pending');
SELECT * FROM "Sales Dept"."Campaigns ""Q1""" ORDER BY id COLLATE "C";
SELECT * FROM campaign_counters.verify_campaign_counters(campaigns => '"Sales Dept"."Campaigns ""Q1"""');

-- Several attachments: functions must be told which one.
SELECT expect_error($$SELECT campaign_counters.recalc_campaign_counters()$$);

-- detach: triggers and record go; detaching again is an error.
SELECT campaign_counters.detach('"Sales Dept"."Recipients ""Q1"""');
SELECT count(*) FROM pg_trigger WHERE tgrelid = '"Sales Dept"."Recipients ""Q1"""'::regclass AND NOT tgisinternal;
SELECT expect_error($$SELECT campaign_counters.detach('"Sales Dept"."Recipients ""Q1"""')$$);
SELECT campaign_counters.detach('legacy_recipients');
DROP SCHEMA "Sales Dept" CASCADE;
DROP TABLE legacy_recipients, legacy_campaigns, no_status, int_status, date_sent, text_counters,
           bigint_campaigns, other_recipients CASCADE;
DROP VIEW recipients_view;
SELECT recipients, campaigns FROM campaign_counters.attachments;

-- Dropping an attached table forgets it; dropping the campaigns table first also drops the
-- triggers left on the recipients table, so its writes keep working.
CREATE TABLE drop_campaigns (id int PRIMARY KEY, messages_sent int DEFAULT 0, messages_delivered int DEFAULT 0,
                             messages_read int DEFAULT 0, messages_failed int DEFAULT 0, messages_pending int DEFAULT 0);
CREATE TABLE drop_recipients (campaign_id int, status text, whatsapp_message_id text,
                              sent_at timestamptz, delivered_at timestamptz, read_at timestamptz, failed_at timestamptz);
SELECT campaign_counters.attach('drop_recipients', 'drop_campaigns');
SELECT campaign_counters.apply_recipient_status('wamid.gone', 'read', now(), 'drop_recipients');
DROP TABLE drop_campaigns;
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'drop_recipients'::regclass AND NOT tgisinternal;
INSERT INTO drop_recipients VALUES (1, 'whatever');
DROP TABLE drop_recipients;
SELECT recipients, campaigns FROM campaign_counters.attachments;
SELECT count(*) AS parked_left FROM campaign_counters.parked_events WHERE whatsapp_message_id = 'wamid.gone';

\set helper :abs_srcdir '/helpers/end.sql'
\i :helper
