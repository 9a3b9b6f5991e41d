-- Helpers for scripts/bench, in a schema of their own. Loaded once into the benchmark database,
-- after the application's tables (tests/fixtures/reference_schema.sql), the two peers (bench/peers/) and
-- CREATE EXTENSION campaign_counters.
CREATE SCHEMA bench;

-- Status of synthetic recipient n: 10% pending, 20% sent, 30% delivered, 30% read, 10% failed,
-- spread pseudo-randomly but the same on every run.
CREATE FUNCTION bench.status_of(n bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN h < 10 THEN 'pending' WHEN h < 30 THEN 'sent' WHEN h < 60 THEN 'delivered'
                WHEN h < 90 THEN 'read' ELSE 'failed' END
    FROM (SELECT (hashint8(n) & 2147483647) % 100 AS h) s
$$;

-- WhatsApp message id of synthetic recipient n (the pgbench scripts compute the same expression).
CREATE FUNCTION bench.message_id(n bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 'wamid.HBgL' || md5(n::text) $$;

-- Creates n_campaigns campaigns named '<prefix> 00001'... and n_recipients recipients spread over
-- them in contiguous blocks (a campaign's recipients are inserted together, as a bulk send does),
-- with statuses and event timestamps as above. Counters are left at zero; see bench.recount.
CREATE FUNCTION bench.load(recipients regclass, campaigns regclass, prefix text,
                           n_recipients bigint, n_campaigns int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    per bigint := (n_recipients + n_campaigns - 1) / n_campaigns;
BEGIN
    EXECUTE format($q$
        INSERT INTO %s (name, status, total_target_customers)
        SELECT %L || ' ' || lpad(i::text, 5, '0'), 'running',
               least(%s, greatest(0, %s - (i - 1) * %s))
        FROM generate_series(1, %s) i$q$,
        campaigns, prefix, per, n_recipients, per, n_campaigns);
    EXECUTE format($q$
        INSERT INTO %s (campaign_id, phone_number, status, whatsapp_message_id,
                        sent_at, delivered_at, read_at, failed_at)
        SELECT c.ids[(n - 1) / %s + 1], '+1650' || lpad(n::text, 8, '0'), s, bench.message_id(n),
               CASE WHEN s IN ('sent', 'delivered', 'read') THEN t END,
               CASE WHEN s IN ('delivered', 'read') THEN t + interval '5 seconds' END,
               CASE WHEN s = 'read' THEN t + interval '60 seconds' END,
               CASE WHEN s = 'failed' THEN t + interval '5 seconds' END
        FROM (SELECT array_agg(id ORDER BY name) AS ids FROM %s WHERE name LIKE %L) c,
             LATERAL (SELECT n, bench.status_of(n) AS s,
                             timestamptz '2025-06-01 00:00:00+00' + n * interval '10 ms' AS t
                      FROM generate_series(1, %s) n) r$q$,
        recipients, per, campaigns, prefix || ' %', n_recipients);
END $$;

-- The counter rules of issue 2 as one query over recipients: its counts per campaign.
CREATE FUNCTION bench.counts_by_campaign(recipients regclass) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format($q$
            SELECT campaign_id,
                   count(*) FILTER (WHERE status = 'pending')                       AS pending,
                   count(*) FILTER (WHERE status IN ('sent', 'delivered', 'read')) AS sent,
                   count(*) FILTER (WHERE status IN ('delivered', 'read'))         AS delivered,
                   count(*) FILTER (WHERE status = 'read')                         AS read,
                   count(*) FILTER (WHERE status = 'failed')                       AS failed
            FROM %s GROUP BY campaign_id$q$, recipients)
$$;

-- Sets every counter of campaigns to an exact recount of recipients (counter rules of issue 2).
CREATE FUNCTION bench.recount(recipients regclass, campaigns regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($q$
        UPDATE %1$s c SET
            messages_pending   = coalesce(d.pending, 0),
            messages_sent      = coalesce(d.sent, 0),
            messages_delivered = coalesce(d.delivered, 0),
            messages_read      = coalesce(d.read, 0),
            messages_failed    = coalesce(d.failed, 0)
        FROM %1$s c0 LEFT JOIN (%2$s) d ON d.campaign_id = c0.id
        WHERE c.id = c0.id$q$, campaigns, bench.counts_by_campaign(recipients));
END $$;

-- How many campaigns have a counter that differs from a recount (0 = exact). Used for the
-- variants that are not the extension (floor and the peers); the extension is checked with its
-- own verify_campaign_counters().
CREATE FUNCTION bench.drift(recipients regclass, campaigns regclass) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    result bigint;
BEGIN
    EXECUTE format($q$
        SELECT count(*) FROM %1$s c LEFT JOIN (%2$s) d ON d.campaign_id = c.id
        WHERE (c.messages_pending, c.messages_sent, c.messages_delivered, c.messages_read, c.messages_failed)
              IS DISTINCT FROM
              (coalesce(d.pending, 0), coalesce(d.sent, 0), coalesce(d.delivered, 0),
               coalesce(d.read, 0), coalesce(d.failed, 0))$q$, campaigns,
        bench.counts_by_campaign(recipients))
    INTO result;
    RETURN result;
END $$;

-- Puts the application tables (those on the search_path) back to the saved copy: identical data
-- for every variant. The recipients' indexes are dropped and built again after the reload, which
-- is three times faster than inserting a million rows through them. Call only with no counter
-- trigger installed (bench.use_variant('none')).
CREATE FUNCTION bench.reset() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- The saved rows are valid: skip the per-row foreign key checks of the reload.
    PERFORM set_config('session_replication_role', 'replica', true);
    TRUNCATE campaign_recipients, marketing_campaigns;
    DROP INDEX campaign_recipients_campaign_id_idx;
    ALTER TABLE campaign_recipients DROP CONSTRAINT campaign_recipients_whatsapp_message_id_key,
                                    DROP CONSTRAINT campaign_recipients_pkey;
    INSERT INTO marketing_campaigns SELECT * FROM bench.campaigns_seed;
    INSERT INTO campaign_recipients SELECT * FROM bench.recipients_seed;
    ALTER TABLE campaign_recipients ADD CONSTRAINT campaign_recipients_pkey PRIMARY KEY (id),
        ADD CONSTRAINT campaign_recipients_whatsapp_message_id_key UNIQUE (whatsapp_message_id);
    CREATE INDEX campaign_recipients_campaign_id_idx ON campaign_recipients (campaign_id);
END $$;

-- Installs the counter maintenance of one variant on campaign_recipients / marketing_campaigns,
-- removing whatever the previous variant installed.
CREATE FUNCTION bench.use_variant(variant text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DROP TRIGGER IF EXISTS baseline_row_counters ON campaign_recipients;
    DROP TRIGGER IF EXISTS baseline_stmt_ins ON campaign_recipients;
    DROP TRIGGER IF EXISTS baseline_stmt_upd ON campaign_recipients;
    DROP TRIGGER IF EXISTS baseline_stmt_del ON campaign_recipients;
    IF EXISTS (SELECT FROM campaign_counters.attachments
               WHERE recipients = 'campaign_recipients'::regclass) THEN
        PERFORM campaign_counters.detach();
    END IF;
    CASE variant
        WHEN 'none', 'floor', 'floor_idx' THEN NULL;
        WHEN 'row' THEN PERFORM baseline_row_attach();
        WHEN 'statement' THEN PERFORM baseline_stmt_attach();
        WHEN 'campaign_counters' THEN PERFORM campaign_counters.attach();
        WHEN 'deferred' THEN PERFORM campaign_counters.attach(mode => 'deferred');
        ELSE RAISE EXCEPTION 'unknown variant %', variant;
    END CASE;
END $$;

-- The seed's repair script (campaign-status-analysis.md): for each campaign one count query,
-- then one UPDATE of that campaign, all in one transaction. Run server-side here, so without
-- the ORM's round trips: the most favourable form of that loop. Its counting rules are the
-- seed's (messages_sent counts status = 'sent' only), which is the drift recalc then repairs.
CREATE FUNCTION bench.seed_loop(recipients regclass, campaigns regclass) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c record;
    s record;
    n bigint := 0;
BEGIN
    FOR c IN EXECUTE format('SELECT id FROM %s', campaigns) LOOP
        EXECUTE format($q$
            SELECT count(id) FILTER (WHERE status = 'sent')      AS sent,
                   count(id) FILTER (WHERE status = 'delivered') AS delivered,
                   count(id) FILTER (WHERE status = 'read')      AS read,
                   count(id) FILTER (WHERE status = 'failed')    AS failed,
                   count(id) FILTER (WHERE status = 'pending')   AS pending
            FROM %s WHERE campaign_id = $1$q$, recipients) INTO s USING c.id;
        EXECUTE format($q$
            UPDATE %s SET messages_sent = $2, messages_delivered = $3, messages_read = $4,
                          messages_failed = $5, messages_pending = $6
            WHERE id = $1$q$, campaigns)
            USING c.id, s.sent, s.delivered, s.read, s.failed, s.pending;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
