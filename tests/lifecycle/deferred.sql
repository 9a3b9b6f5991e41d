-- Switches the bigint pair of fill.sql to the deferred mode and writes to it, so that it has
-- pending changes (for the dump/restore test, and after an upgrade to a version with modes).
SET client_min_messages = warning;
SELECT campaign_counters.set_mode('"Other Shop"."Recipients"', 'deferred');
UPDATE "Other Shop"."Recipients" SET status = 'failed' WHERE campaign_id = 2;
INSERT INTO "Other Shop"."Recipients" (campaign_id, status) SELECT 1 + i % 3, 'sent' FROM generate_series(1, 30) i;
DELETE FROM "Other Shop"."Recipients" WHERE campaign_id = 5;
