-- apply_recipient_status(): idempotent, order-independent, timestamps from the event.
\getenv abs_srcdir PG_ABS_SRCDIR
\set helper :abs_srcdir '/helpers/begin.sql'
\i :helper
DO $$ BEGIN PERFORM campaign_counters.attach(); END $$;
SET timezone = 'UTC';
INSERT INTO marketing_campaigns (id, name) VALUES ('00000000-0000-0000-0000-00000000000d', 'delta');
INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id, sent_at)
SELECT '00000000-0000-0000-0000-00000000000d', '+5' || i, 'sent', 'wamid.d' || i, '2026-03-01 09:00' FROM generate_series(1, 4) i;

CREATE VIEW delta_rows AS
SELECT whatsapp_message_id AS id, status, sent_at, delivered_at, read_at, failed_at
  FROM campaign_recipients WHERE campaign_id = '00000000-0000-0000-0000-00000000000d' ORDER BY 1;

-- read before delivered: read fills delivered_at (and keeps the earlier sent_at).
SELECT campaign_counters.apply_recipient_status('wamid.d1', 'read', '2026-03-01 09:10');
SELECT campaign_counters.apply_recipient_status('wamid.d1', 'delivered', '2026-03-01 09:05');
SELECT campaign_counters.apply_recipient_status('wamid.d1', 'delivered', '2026-03-01 09:05');
SELECT campaign_counters.apply_recipient_status('wamid.d1', 'delivered', '2026-03-01 09:07');
SELECT campaign_counters.apply_recipient_status('wamid.d1', 'read', '2026-03-01 09:30');
SELECT campaign_counters.apply_recipient_status('wamid.d1', 'sent', '2026-03-01 08:59');
-- played counts as read; failed after delivered keeps delivered but records failed_at.
SELECT campaign_counters.apply_recipient_status('wamid.d2', 'played', '2026-03-01 09:20');
SELECT campaign_counters.apply_recipient_status('wamid.d3', 'delivered', '2026-03-01 09:02');
SELECT campaign_counters.apply_recipient_status('wamid.d3', 'failed', '2026-03-01 09:03');
SELECT campaign_counters.apply_recipient_status('wamid.d3', 'failed', '2026-03-01 09:03');
SELECT campaign_counters.apply_recipient_status('wamid.d4', 'failed', '2026-03-01 09:01');
SELECT * FROM delta_rows;
SELECT * FROM counters WHERE name = 'delta';

-- A status that changes nothing writes nothing: the row keeps its version.
CREATE TEMP TABLE version_before AS SELECT xmin::text AS version FROM campaign_recipients WHERE whatsapp_message_id = 'wamid.d1';
SELECT campaign_counters.apply_recipient_status('wamid.d1', 'delivered', '2026-03-01 09:06');
SELECT (SELECT version FROM version_before) = xmin::text AS untouched FROM campaign_recipients WHERE whatsapp_message_id = 'wamid.d1';

-- Early statuses are parked, then applied when a recipient gets the id.
SELECT campaign_counters.apply_recipient_status('wamid.early', 'delivered', '2026-03-01 09:40');
SELECT campaign_counters.apply_recipient_status('wamid.early', 'read', '2026-03-01 09:45');
SELECT campaign_counters.apply_recipient_status('wamid.early', 'read', '2026-03-01 09:45');
SELECT whatsapp_message_id, status, occurred_at FROM campaign_counters.parked_events ORDER BY occurred_at;
INSERT INTO campaign_recipients (campaign_id, phone_number, status) VALUES ('00000000-0000-0000-0000-00000000000d', '+55', 'pending');
UPDATE campaign_recipients SET whatsapp_message_id = 'wamid.early', status = 'sent', sent_at = '2026-03-01 09:39'
 WHERE phone_number = '+55';
SELECT * FROM delta_rows WHERE id = 'wamid.early';
SELECT count(*) AS still_parked FROM campaign_counters.parked_events;
-- Parked events also apply on INSERT of a row that already has the id.
SELECT campaign_counters.apply_recipient_status('wamid.late', 'failed', '2026-03-01 10:00');
INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id)
VALUES ('00000000-0000-0000-0000-00000000000d', '+56', 'sent', 'wamid.late');
SELECT * FROM delta_rows WHERE id = 'wamid.late';
SELECT * FROM counters WHERE name = 'delta';

-- An event parked while the recipient's id was being stored by a transaction not yet committed
-- (the trigger could not see it) is applied by the sweep.
INSERT INTO campaign_counters.parked_events (recipients, whatsapp_message_id, status, occurred_at)
VALUES ('campaign_recipients', 'wamid.d3', 'read', '2026-03-01 09:50');
SELECT campaign_counters.apply_parked_events();
SELECT campaign_counters.apply_parked_events();
SELECT * FROM delta_rows WHERE id = 'wamid.d3';

-- Old parked events are purged.
SELECT campaign_counters.apply_recipient_status('wamid.never', 'sent', '2026-03-01 10:00');
UPDATE campaign_counters.parked_events SET parked_at = now() - interval '8 days';
SELECT campaign_counters.purge_parked_events();
SELECT campaign_counters.purge_parked_events('0 seconds');

-- Errors: unknown status 22023, NULL id or status 22004, infinite time 22008.
SELECT expect_error($$SELECT campaign_counters.apply_recipient_status('wamid.d1', 'seen')$$);
SELECT expect_error($$SELECT campaign_counters.apply_recipient_status(NULL, 'read')$$);
SELECT expect_error($$SELECT campaign_counters.apply_recipient_status('wamid.d1', NULL)$$);
SELECT expect_error($$SELECT campaign_counters.apply_recipient_status('wamid.d1', 'read', 'infinity')$$);
-- NULL occurred_at means the transaction's time.
INSERT INTO campaign_recipients (campaign_id, phone_number, whatsapp_message_id) VALUES ('00000000-0000-0000-0000-00000000000d', '+57', 'wamid.now');
BEGIN;
SELECT campaign_counters.apply_recipient_status('wamid.now', 'sent', NULL);
SELECT status, sent_at = now() AS stamped_now FROM campaign_recipients WHERE whatsapp_message_id = 'wamid.now';
COMMIT;

-- Every permutation of a multiset of events (with repeats) ends in the same row and counters.
CREATE TEMP TABLE events (n int, status text, at timestamptz);
INSERT INTO events VALUES (1, 'read', '2026-03-02 10:03'), (2, 'sent', '2026-03-02 10:00'),
    (3, 'delivered', '2026-03-02 10:01'), (4, 'failed', '2026-03-02 10:02'), (5, 'delivered', '2026-03-02 10:01');
CREATE TEMP TABLE finals (perm text, status text, sent_at timestamptz, delivered_at timestamptz,
                          read_at timestamptz, failed_at timestamptz, sent int, delivered int, read int, failed int);
DO $$
DECLARE
    perm int[];
BEGIN
    FOR perm IN
        WITH RECURSIVE p(seq) AS (
            SELECT ARRAY[n] FROM events
            UNION ALL
            SELECT seq || e.n FROM p JOIN events e ON e.n <> ALL (seq)
        ) SELECT seq FROM p WHERE cardinality(seq) = 5
    LOOP
        UPDATE campaign_recipients SET status = 'pending', sent_at = NULL, delivered_at = NULL, read_at = NULL, failed_at = NULL
         WHERE whatsapp_message_id = 'wamid.d2';
        PERFORM campaign_counters.apply_recipient_status('wamid.d2', e.status, e.at)
           FROM unnest(perm) WITH ORDINALITY AS o(n, k) JOIN events e USING (n) ORDER BY k;
        INSERT INTO finals
        SELECT perm::text, r.status, r.sent_at, r.delivered_at, r.read_at, r.failed_at,
               c.messages_sent, c.messages_delivered, c.messages_read, c.messages_failed
          FROM campaign_recipients r JOIN marketing_campaigns c ON c.id = r.campaign_id
         WHERE r.whatsapp_message_id = 'wamid.d2';
    END LOOP;
END
$$;
SELECT count(*) AS permutations, count(DISTINCT (status, sent_at, delivered_at, read_at, failed_at, sent, delivered, read, failed)) AS distinct_results
  FROM finals;
SELECT DISTINCT status, sent_at, delivered_at, read_at, failed_at FROM finals;
SELECT * FROM campaign_counters.verify_campaign_counters();
DROP VIEW delta_rows;

\set helper :abs_srcdir '/helpers/end.sql'
\i :helper
