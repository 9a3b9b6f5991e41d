-- The deferred counting mode: writes record pending changes instead of touching the campaign
-- rows; current_counters(), verify and the funnel read stored plus pending; fold_counters() moves
-- them into the rows. After every kind of write, stored plus pending equals a recount.
\getenv abs_srcdir PG_ABS_SRCDIR
\set helper :abs_srcdir '/helpers/begin.sql'
\i :helper
SET timezone = 'UTC';
INSERT INTO marketing_campaigns (id, name) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'alpha'),
    ('00000000-0000-0000-0000-00000000000b', 'beta');
INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id)
SELECT '00000000-0000-0000-0000-00000000000a', '+1555000' || i, (ARRAY['pending', 'sent', 'read'])[1 + i % 3], 'wamid.a' || i
  FROM generate_series(1, 9) i;
SELECT campaign_counters.attach(mode => 'deferred');
SELECT recipients, campaigns, mode FROM campaign_counters.attachments;
-- attach counts what is there into the rows: nothing pending yet.
SELECT * FROM counters;

-- Per campaign: its pending rows, and whether current_counters() and the stored counters equal
-- a recount (in this statement's snapshot).
CREATE VIEW recount AS
SELECT c.id::text AS campaign_id,
       count(r.id) FILTER (WHERE r.status = 'pending') AS messages_pending,
       count(r.id) FILTER (WHERE r.status IN ('sent', 'delivered', 'read')) AS messages_sent,
       count(r.id) FILTER (WHERE r.status IN ('delivered', 'read')) AS messages_delivered,
       count(r.id) FILTER (WHERE r.status = 'read') AS messages_read,
       count(r.id) FILTER (WHERE r.status = 'failed') AS messages_failed
  FROM marketing_campaigns c LEFT JOIN campaign_recipients r ON r.campaign_id = c.id
 GROUP BY c.id;
CREATE VIEW exactness AS
SELECT c.name,
       (SELECT count(*) FROM campaign_counters.pending_changes p WHERE p.campaign_id = c.id::text) AS pending_rows,
       (SELECT row(u.*)::text FROM campaign_counters.current_counters(c.id::text) u)
         = (SELECT row(r.*)::text FROM recount r WHERE r.campaign_id = c.id::text) AS current_exact,
       row(c.id::text, c.messages_pending, c.messages_sent, c.messages_delivered, c.messages_read, c.messages_failed)::text
         = (SELECT row(r.*)::text FROM recount r WHERE r.campaign_id = c.id::text) AS stored_exact
  FROM marketing_campaigns c ORDER BY c.name;

-- INSERT: one pending row per statement and campaign; the campaign rows do not move.
INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id)
SELECT '00000000-0000-0000-0000-00000000000b', '+2' || i, 'sent', 'wamid.b' || i FROM generate_series(1, 20) i;
INSERT INTO campaign_recipients (campaign_id, phone_number, status) VALUES
    ('00000000-0000-0000-0000-00000000000a', '+31', 'failed'),
    ('00000000-0000-0000-0000-00000000000b', '+32', 'pending');
SELECT * FROM counters;
SELECT * FROM exactness;
SELECT * FROM campaign_counters.current_counters() ORDER BY campaign_id;
-- UPDATE of the status.
UPDATE campaign_recipients SET status = 'delivered' WHERE whatsapp_message_id LIKE 'wamid.b1_';
SELECT * FROM exactness;
-- UPDATE of campaign_id: out of one campaign, into the other.
UPDATE campaign_recipients SET campaign_id = '00000000-0000-0000-0000-00000000000a'
 WHERE whatsapp_message_id IN ('wamid.b1', 'wamid.b2', 'wamid.b3');
SELECT * FROM exactness;
-- DELETE.
DELETE FROM campaign_recipients WHERE whatsapp_message_id IN ('wamid.a1', 'wamid.b20');
SELECT * FROM exactness;
-- MERGE: an update, a delete and an insert in one statement.
MERGE INTO campaign_recipients r
USING (VALUES ('wamid.a2', 'read'), ('wamid.a3', NULL), ('wamid.m1', 'failed')) AS s(id, status)
   ON r.whatsapp_message_id = s.id
 WHEN MATCHED AND s.status IS NULL THEN DELETE
 WHEN MATCHED THEN UPDATE SET status = s.status
 WHEN NOT MATCHED THEN INSERT (campaign_id, phone_number, status, whatsapp_message_id)
      VALUES ('00000000-0000-0000-0000-00000000000b', '+41', s.status, s.id);
SELECT * FROM exactness;
-- COPY.
COPY campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id) FROM stdin;
00000000-0000-0000-0000-00000000000b	+51	sent	wamid.c1
00000000-0000-0000-0000-00000000000a	+52	pending	wamid.c2
\.
SELECT * FROM exactness;
-- A webhook: its statuses go through the trigger like any UPDATE.
SELECT * FROM campaign_counters.apply_whatsapp_webhook(webhook(
    '[{"id": "wamid.c1", "status": "read", "timestamp": "1772532000"},
      {"id": "wamid.c2", "status": "delivered", "timestamp": "1772532000"},
      {"id": "wamid.b4", "status": "failed", "timestamp": "1772532000", "errors": [{"code": 131049, "title": "ecosystem"}]}]'));
SELECT * FROM exactness;
-- A rolled-back write leaves nothing pending.
BEGIN;
UPDATE campaign_recipients SET status = 'read' WHERE campaign_id = '00000000-0000-0000-0000-00000000000b';
ROLLBACK;
SELECT * FROM exactness;
-- verify compares stored plus pending with the recount: no drift.
SELECT * FROM campaign_counters.verify_campaign_counters();
-- The funnel shows stored plus pending.
SELECT campaign_id, recipients, messages_pending, messages_sent, messages_delivered, messages_read, messages_failed
  FROM campaign_counters.campaign_funnel() ORDER BY campaign_id;
-- health(): the mode and what is pending; nothing folded yet.
SELECT recipients, campaigns, mode, pending_changes, oldest_pending_age >= '0 s' AS has_oldest,
       parked_events, oldest_parked_age, last_fold_at, last_sweep_at, worker_serves
  FROM campaign_counters.health();

-- fold_counters() moves every pending row into the rows: the stored counters are exact.
SELECT campaign_counters.fold_counters();
SELECT * FROM exactness;
SELECT * FROM counters;
SELECT pending_changes, oldest_pending_age, last_fold_at IS NOT NULL AS folded FROM campaign_counters.health();
-- Nothing left: a second fold moves nothing.
SELECT campaign_counters.fold_counters('marketing_campaigns');

-- TRUNCATE recounts: the counters go to zero and the pending changes it replaces are gone.
INSERT INTO campaign_recipients (campaign_id, phone_number, status) VALUES ('00000000-0000-0000-0000-00000000000a', '+61', 'read');
TRUNCATE campaign_recipients;
SELECT * FROM exactness;
SELECT * FROM counters;
-- The changes of a campaign id without a row (no foreign key here) are dropped by a fold (it
-- keeps no counters); the row, when it is inserted, starts from a count of its recipients.
ALTER TABLE campaign_recipients DROP CONSTRAINT campaign_recipients_campaign_id_fkey;
INSERT INTO campaign_recipients (campaign_id, phone_number, status) VALUES
    ('00000000-0000-0000-0000-00000000000c', '+71', 'sent'), ('00000000-0000-0000-0000-00000000000c', '+72', 'read');
SELECT campaign_counters.fold_counters();
SELECT campaign_id, count(*) FROM campaign_counters.pending_changes GROUP BY 1;
INSERT INTO marketing_campaigns (id, name) VALUES ('00000000-0000-0000-0000-00000000000c', 'gamma');
SELECT * FROM exactness;
SELECT * FROM counters;

-- set_mode: back to immediate folds what is pending, in the same transaction.
INSERT INTO campaign_recipients (campaign_id, phone_number, status) VALUES ('00000000-0000-0000-0000-00000000000a', '+81', 'failed');
BEGIN;
SELECT campaign_counters.set_mode('campaign_recipients', 'immediate');
SELECT mode FROM campaign_counters.attachments;
SELECT * FROM exactness;
COMMIT;
-- Immediate writes move the rows and record nothing.
UPDATE campaign_recipients SET status = 'read' WHERE phone_number = '+81';
SELECT * FROM exactness;
-- And deferred again.
SELECT campaign_counters.set_mode('campaign_recipients', 'deferred');
UPDATE campaign_recipients SET status = 'delivered' WHERE phone_number = '+81';
SELECT * FROM exactness;
-- A mode it does not know, NULL, and a table that is not attached.
SELECT expect_error($$SELECT campaign_counters.set_mode('campaign_recipients', 'lazy')$$);
SELECT campaign_counters.set_mode('campaign_recipients', 'Deferred');
SELECT expect_error($$SELECT campaign_counters.set_mode('campaign_recipients', NULL)$$);
SELECT expect_error($$SELECT campaign_counters.attach(mode => 'lazy')$$);
CREATE TABLE not_attached (id int);
SELECT expect_error($$SELECT campaign_counters.set_mode('not_attached', 'deferred')$$);
DROP TABLE not_attached;
-- The same pair again, in another mode: a notice, and the mode stays.
SELECT campaign_counters.attach(mode => 'immediate');
SELECT mode FROM campaign_counters.attachments;
-- current_counters() of a campaign that does not exist.
SELECT expect_error($$SELECT * FROM campaign_counters.current_counters('00000000-0000-0000-0000-0000000000ff')$$);

-- Row-level security: pending changes are readable to whoever may read the campaigns table.
CREATE ROLE cc_outsider;
CREATE ROLE cc_dashboard;
GRANT SELECT ON marketing_campaigns TO cc_dashboard;
SET ROLE cc_outsider;
SELECT count(*) AS visible_pending FROM campaign_counters.pending_changes;
SELECT expect_error($$SELECT * FROM campaign_counters.current_counters()$$);
SELECT expect_error($$DELETE FROM campaign_counters.pending_changes$$);
SET ROLE cc_dashboard;
SELECT count(*) AS visible_pending FROM campaign_counters.pending_changes;
SELECT * FROM campaign_counters.current_counters() ORDER BY campaign_id;
SELECT expect_error($$SELECT campaign_counters.fold_counters('marketing_campaigns')$$);
RESET ROLE;
DROP ROLE cc_outsider;
REVOKE ALL ON marketing_campaigns FROM cc_dashboard;
DROP ROLE cc_dashboard;

-- detach folds what is pending before it forgets the pair.
SELECT campaign_counters.detach();
SELECT count(*) AS pending_rows FROM campaign_counters.pending_changes;
-- Campaigns whose stored counters differ from a recount: none.
SELECT id::text, messages_pending, messages_sent, messages_delivered, messages_read, messages_failed
  FROM marketing_campaigns
EXCEPT
SELECT * FROM recount;

-- DROP TABLE of a deferred pair's recipients folds its pending changes into the campaigns table.
CREATE TABLE dropped_recipients (LIKE campaign_recipients INCLUDING ALL);
INSERT INTO dropped_recipients SELECT * FROM campaign_recipients;
SELECT campaign_counters.attach('dropped_recipients', 'marketing_campaigns', 'deferred');
UPDATE dropped_recipients SET status = 'failed' WHERE status = 'read';
INSERT INTO dropped_recipients (campaign_id, phone_number) VALUES ('00000000-0000-0000-0000-00000000000b', '+91');
SELECT count(*) AS pending_rows FROM campaign_counters.pending_changes;
CREATE TABLE counters_before_drop AS SELECT * FROM campaign_counters.current_counters();
DROP TABLE dropped_recipients;
SELECT count(*) AS pending_rows FROM campaign_counters.pending_changes;
SELECT count(*) AS attachments FROM campaign_counters.attachments;
-- What current_counters() showed before the DROP is now stored: no campaign differs.
SELECT * FROM counters_before_drop
EXCEPT
SELECT id::text, messages_pending, messages_sent, messages_delivered, messages_read, messages_failed
  FROM marketing_campaigns;
SELECT * FROM counters;
DROP TABLE counters_before_drop;

DROP VIEW exactness, recount;
\set helper :abs_srcdir '/helpers/end.sql'
\i :helper
