-- campaign_funnel(): one row per campaign, rates from the counters, percentiles from the recipients.
-- Its own tables (bigint ids), attached next to the application's tables.
\getenv abs_srcdir PG_ABS_SRCDIR
\set helper :abs_srcdir '/helpers/begin.sql'
\i :helper
-- A second attachment (the application's tables), so that functions must be told which one.
DO $$ BEGIN PERFORM campaign_counters.attach(); END $$;
SET timezone = 'UTC';
CREATE SCHEMA funnel;
CREATE TABLE funnel.campaigns (
    id                 bigint PRIMARY KEY,
    name               text NOT NULL,
    messages_pending   integer NOT NULL DEFAULT 0,
    messages_sent      integer NOT NULL DEFAULT 0,
    messages_delivered integer NOT NULL DEFAULT 0,
    messages_read      integer NOT NULL DEFAULT 0,
    messages_failed    integer NOT NULL DEFAULT 0
);
CREATE TABLE funnel.recipients (
    id                  serial PRIMARY KEY,
    campaign_id         bigint NOT NULL REFERENCES funnel.campaigns,
    status              text NOT NULL DEFAULT 'pending',
    whatsapp_message_id text UNIQUE,
    sent_at             timestamptz,
    delivered_at        timestamptz,
    read_at             timestamptz,
    failed_at           timestamptz
);
SELECT campaign_counters.attach('funnel.recipients', 'funnel.campaigns');

-- Campaign 10, worked by hand (times after 10:00 on 2026-11-27):
--   pending 1; sent 1 (sent 0 s); delivered 2 (sent 0 s, delivered 10 s / sent 0 s, delivered 50 s);
--   read 2 (sent 0 s, delivered 20 s, read 60 s / sent 5 s, delivered 35 s, read 305 s);
--   failed 1 (sent 2 s, failed 4 s).
-- Counters: pending 1, sent 5 (sent + delivered + read), delivered 4, read 2, failed 1; 7 recipients.
-- Rates: delivery 4 / (5 + 1) = 0.6667, read 2 / 4 = 0.5000, failure 1 / (5 + 1) = 0.1667.
-- sent->delivered: 10, 20, 30, 50 s; median (20 + 30) / 2 = 25 s; p90 at 0.9 * 3 = 2.7: 30 + 0.7 * 20 = 44 s.
-- delivered->read: 40, 270 s; median 155 s = 00:02:35; p90 at 0.9: 40 + 0.9 * 230 = 247 s = 00:04:07.
-- First sent 10:00:00; last event the second read, 10:05:05.
INSERT INTO funnel.campaigns (id, name) VALUES (10, 'hand-worked'), (20, 'not started'), (30, 'one read');
INSERT INTO funnel.recipients (campaign_id, status, whatsapp_message_id, sent_at, delivered_at, read_at, failed_at)
SELECT 10, status, 'wamid.F' || n,
       '2026-11-27 10:00+00'::timestamptz + s * interval '1 s',
       '2026-11-27 10:00+00'::timestamptz + d * interval '1 s',
       '2026-11-27 10:00+00'::timestamptz + r * interval '1 s',
       '2026-11-27 10:00+00'::timestamptz + f * interval '1 s'
  FROM (VALUES (1, 'pending',   NULL, NULL, NULL, NULL),
               (2, 'sent',      0,    NULL, NULL, NULL),
               (3, 'delivered', 0,    10,   NULL, NULL),
               (4, 'delivered', 0,    50,   NULL, NULL),
               (5, 'read',      0,    20,   60,   NULL),
               (6, 'read',      5,    35,   305,  NULL),
               (7, 'failed',    2,    NULL, NULL, 4)) AS t(n, status, s, d, r, f);
-- Campaign 30: one message, sent, delivered and read by status events.
INSERT INTO funnel.recipients (campaign_id, status, whatsapp_message_id) VALUES (30, 'pending', 'wamid.F30');
SELECT campaign_counters.apply_recipient_status('wamid.F30', 'sent', '2026-11-27 11:00+00', recipients => 'funnel.recipients');
SELECT campaign_counters.apply_recipient_status('wamid.F30', 'read', '2026-11-27 11:03+00', recipients => 'funnel.recipients');
SELECT campaign_counters.apply_recipient_status('wamid.F30', 'delivered', '2026-11-27 11:01+00', recipients => 'funnel.recipients');

\x on
SELECT * FROM campaign_counters.campaign_funnel('10', 'funnel.campaigns');
\x off
-- Every campaign, in id order; a campaign without recipients has no rates and no times.
SELECT campaign_id, recipients, messages_sent AS sent, messages_delivered AS delivered, messages_read AS read,
       delivery_rate, read_rate, failure_rate, sent_to_delivered_median AS s_d_p50, delivered_to_read_p90 AS d_r_p90,
       first_sent_at, last_event_at
  FROM campaign_counters.campaign_funnel(campaigns => 'funnel.campaigns');
-- Named arguments, and the result agrees with the counters and a recount.
SELECT f.recipients = (SELECT count(*) FROM funnel.recipients r WHERE r.campaign_id = 10) AS recipients_match,
       (f.messages_pending, f.messages_sent, f.messages_delivered, f.messages_read, f.messages_failed)
         = (c.messages_pending, c.messages_sent, c.messages_delivered, c.messages_read, c.messages_failed) AS counters_match
  FROM campaign_counters.campaign_funnel(campaign_id => '10', campaigns => 'funnel.campaigns') f
  JOIN funnel.campaigns c ON c.id = 10;
SELECT count(*) FROM campaign_counters.verify_campaign_counters(campaigns => 'funnel.campaigns');

-- Errors, with their SQLSTATEs.
CREATE FUNCTION funnel.error_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '^[0-9]+ table pairs', 'N table pairs');
END
$$;
SELECT funnel.error_of($$SELECT * FROM campaign_counters.campaign_funnel('99', 'funnel.campaigns')$$);
SELECT funnel.error_of($$SELECT * FROM campaign_counters.campaign_funnel('ten', 'funnel.campaigns')$$);
SELECT funnel.error_of($$SELECT * FROM campaign_counters.campaign_funnel(campaigns => 'funnel.recipients')$$);
SELECT funnel.error_of($$SELECT * FROM campaign_counters.campaign_funnel()$$);
-- With one attachment, campaigns may be left out; with none, 42704.
BEGIN;
SELECT count(*) > 0 AS detached FROM (
    SELECT campaign_counters.detach(recipients) FROM campaign_counters.attachments
     WHERE campaigns <> 'funnel.campaigns'::regclass) d;
SELECT campaign_id, recipients, delivery_rate FROM campaign_counters.campaign_funnel();
SELECT campaign_id, read_rate FROM campaign_counters.campaign_funnel('30');
SELECT campaign_counters.detach('funnel.recipients');
SELECT funnel.error_of($$SELECT * FROM campaign_counters.campaign_funnel()$$);
ROLLBACK;

-- Reading needs SELECT on both tables; the function itself is for everyone.
CREATE ROLE funnel_reader;
GRANT USAGE ON SCHEMA funnel TO funnel_reader;
SET ROLE funnel_reader;
SELECT funnel.error_of($$SELECT * FROM campaign_counters.campaign_funnel('10', 'funnel.campaigns')$$);
RESET ROLE;
GRANT SELECT ON funnel.campaigns, funnel.recipients TO funnel_reader;
SET ROLE funnel_reader;
SELECT campaign_id, recipients, read_rate FROM campaign_counters.campaign_funnel('10', 'funnel.campaigns');
RESET ROLE;
\df campaign_counters.campaign_funnel
SELECT obj_description('campaign_counters.campaign_funnel(text, regclass)'::regprocedure, 'pg_proc') IS NOT NULL AS commented,
       (SELECT proconfig FROM pg_proc WHERE oid = 'campaign_counters.campaign_funnel(text, regclass)'::regprocedure) AS config;

DROP SCHEMA funnel CASCADE;
DROP OWNED BY funnel_reader;
DROP ROLE funnel_reader;

\set helper :abs_srcdir '/helpers/end.sql'
\i :helper
