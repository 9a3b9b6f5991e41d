-- recalc and verify: the trigger's rules, one pass, only differing rows written.
\getenv abs_srcdir PG_ABS_SRCDIR
\set helper :abs_srcdir '/helpers/begin.sql'
\i :helper
-- Fixture: the recipients write_paths.sql leaves, by campaign and status, attached.
INSERT INTO marketing_campaigns (id, name, total_target_customers) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'alpha', 42), ('00000000-0000-0000-0000-00000000000b', 'beta', 0);
INSERT INTO campaign_recipients (campaign_id, phone_number, status)
SELECT ('00000000-0000-0000-0000-00000000000' || c)::uuid, '+' || c || '-' || status || '-' || i, status
  FROM (VALUES ('a', 'pending', 3), ('a', 'sent', 3), ('a', 'delivered', 3), ('a', 'read', 4),
                ('b', 'pending', 2), ('b', 'failed', 1), ('b', 'delivered', 95), ('b', 'read', 1)) AS fixture(c, status, n), generate_series(1, n) AS i;
DO $$ BEGIN PERFORM campaign_counters.attach(); END $$;
SELECT campaign_counters.recalc_campaign_counters();

-- Drift made behind the trigger's back (triggers disabled), as the seed's application did.
ALTER TABLE campaign_recipients DISABLE TRIGGER USER;
UPDATE campaign_recipients SET status = 'read' WHERE campaign_id = '00000000-0000-0000-0000-00000000000a' AND status = 'sent';
ALTER TABLE campaign_recipients ENABLE TRIGGER USER;
UPDATE marketing_campaigns SET messages_failed = messages_failed + 7 WHERE name = 'beta';

-- One row per wrong counter; read messages count as delivered too (the seed's repair script did not).
SELECT * FROM campaign_counters.verify_campaign_counters() ORDER BY campaign_id, counter;
SELECT * FROM campaign_counters.verify_campaign_counters('00000000-0000-0000-0000-00000000000b');

-- Repair one campaign, then all; the return value counts campaigns changed.
SELECT campaign_counters.recalc_campaign_counters('00000000-0000-0000-0000-00000000000b');
SELECT campaign_counters.recalc_campaign_counters('00000000-0000-0000-0000-00000000000b');
SELECT campaign_counters.recalc_campaign_counters(campaigns => 'marketing_campaigns');
SELECT * FROM counters;
SELECT * FROM campaign_counters.verify_campaign_counters();

-- Invariants hold for every campaign.
SELECT name, pending + sent + failed = (SELECT count(*) FROM campaign_recipients r WHERE r.campaign_id = c.id) AS complete,
       sent >= delivered AND delivered >= read AS ordered
  FROM counters JOIN marketing_campaigns c USING (name);

-- Errors.
SELECT expect_error($$SELECT campaign_counters.recalc_campaign_counters('00000000-0000-0000-0000-0000000000ff')$$);
SELECT expect_error($$SELECT campaign_counters.recalc_campaign_counters('not-a-uuid')$$);
SELECT expect_error($$SELECT campaign_counters.verify_campaign_counters(campaigns => 'counters')$$);

\set helper :abs_srcdir '/helpers/end.sql'
\i :helper
