-- campaign_counters 0.2.0 -> 0.3.0: the counters follow DDL, key changes and campaign rows that appear; campaign_funnel(); the deferred counting mode; campaign_costs().
\echo Use "ALTER EXTENSION campaign_counters UPDATE TO '0.3.0'" to load this file. \quit

-- Attachments remember what their counters depend on, and which partitions are counted.
ALTER TABLE campaign_counters.attachments ADD COLUMN signature text;
COMMENT ON COLUMN campaign_counters.attachments.signature IS
    'Types of the counted columns and storage of the counted tables when last checked: a DDL that changes them recounts the pair.';

CREATE TABLE campaign_counters.partitions (
    partition  regclass PRIMARY KEY,
    recipients regclass NOT NULL
);
COMMENT ON TABLE campaign_counters.partitions IS
    'Partitions of attached recipients tables whose rows are counted: detaching or dropping one takes its rows out of the counters.';
SELECT pg_catalog.pg_extension_config_dump('campaign_counters.partitions', '');
REVOKE ALL ON campaign_counters.partitions FROM PUBLIC;
GRANT SELECT ON campaign_counters.partitions TO PUBLIC;
INSERT INTO campaign_counters.partitions (partition, recipients)
SELECT t.relid, a.recipients
  FROM campaign_counters.attachments a, pg_partition_tree(a.recipients) t
 WHERE t.relid <> a.recipients::oid;

CREATE FUNCTION campaign_counters.count_new_campaigns() RETURNS trigger
    LANGUAGE c SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'count_new_campaigns_trigger_wrapper';
COMMENT ON FUNCTION campaign_counters.count_new_campaigns() IS
    'Deferred trigger installed by attach() on the campaigns table: at commit, a campaign row that appeared (inserted, or its id changed) gets the counts of the recipients that carry its id.';

CREATE FUNCTION campaign_counters.campaign_id_changed(old_row record, new_row record) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'campaign_id_changed_wrapper';
COMMENT ON FUNCTION campaign_counters.campaign_id_changed(record, record) IS
    'The WHEN clause of the campaign_counters_campaign_id trigger that attach() installs on the campaigns table: whether an UPDATE changed the row''s id (whole rows in, so the trigger depends on no column).';

CREATE FUNCTION campaign_counters.follow_ddl(relations oid[])
    RETURNS void LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'follow_ddl_wrapper';
COMMENT ON FUNCTION campaign_counters.follow_ddl(oid[]) IS
    'Called by the event trigger after DDL: re-validates the attached pairs the relations belong to, gives new partitions their triggers and counts, takes detached ones out, and recounts after a type change or rewrite.';
REVOKE EXECUTE ON FUNCTION campaign_counters.follow_ddl(oid[]) FROM PUBLIC;

-- Campaign rows that appear count the recipients that already carry their id.
DO $$
DECLARE
    campaigns regclass;
BEGIN
    FOR campaigns IN SELECT a.campaigns FROM campaign_counters.attachments a LOOP
        EXECUTE format('CREATE CONSTRAINT TRIGGER campaign_counters_new_campaign AFTER INSERT ON %s
                          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
                          EXECUTE FUNCTION campaign_counters.count_new_campaigns()', campaigns);
        EXECUTE format('CREATE CONSTRAINT TRIGGER campaign_counters_campaign_id AFTER UPDATE ON %s
                          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
                          WHEN (campaign_counters.campaign_id_changed(OLD, NEW))
                          EXECUTE FUNCTION campaign_counters.count_new_campaigns()', campaigns);
    END LOOP;
END
$$;

COMMENT ON FUNCTION campaign_counters.verify_campaign_counters(text, regclass) IS
    'Reports every counter whose stored value differs from a recount with the trigger''s rules (one row each; stored NULL for a NULL counter), and each campaign id whose recipients have no campaign row (counter ''(no campaign row)'', actual = its recipients). Reads both in one snapshot; writes and locks nothing.';
COMMENT ON FUNCTION campaign_counters.purge_parked_events(interval) IS
    'Applies the parked events whose id a recipient has now (every attachment), then deletes parked events older than the given age (Meta stops retrying after 7 days) and returns how many it deleted. Runs as the extension owner: EXECUTE on it is the right to purge.';

-- What each campaign cost: the pricing Meta's status webhooks carry, recorded once per message
-- (the first status that carries it), and campaign_costs() counting a campaign's messages per
-- pricing. Dashboards multiply by their rate card. Created before forget_dropped_tables() is
-- replaced below: the new one deletes from it, and the DROPs further on fire it.

CREATE TABLE campaign_counters.message_pricing (
    recipients          regclass    NOT NULL,
    whatsapp_message_id text        NOT NULL,
    pricing_model       text,
    category            text,
    pricing_type        text,
    billable            boolean,
    priced_at           timestamptz NOT NULL,
    PRIMARY KEY (recipients, whatsapp_message_id)
);
COMMENT ON TABLE campaign_counters.message_pricing IS
    'Meta''s pricing (pricing_model, category, type, billable) per message id, from the first status that carried it.';
COMMENT ON COLUMN campaign_counters.message_pricing.priced_at IS
    'Time of the status the pricing came from.';
SELECT pg_catalog.pg_extension_config_dump('campaign_counters.message_pricing', '');
REVOKE ALL ON campaign_counters.message_pricing FROM PUBLIC;

CREATE FUNCTION campaign_counters.campaign_costs(campaign_id text, campaigns regclass DEFAULT NULL)
    RETURNS TABLE (pricing_model text, category text, pricing_type text, billable boolean, messages bigint)
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'campaign_costs_wrapper';
COMMENT ON FUNCTION campaign_counters.campaign_costs(text, regclass) IS
    'A campaign''s messages (or, with campaign_id NULL, every campaign''s) per pricing Meta reported: pricing_model, category, pricing_type, billable, and how many messages; most first. Multiply by your rate card. campaigns NULL means the only attachment. Needs SELECT on both tables.';
COMMENT ON FUNCTION campaign_counters.detach(regclass) IS
    'Removes the counter triggers of an attached recipients table and forgets it (with its parked events, failure details and pricing). NULL means campaign_recipients on the search_path.';

-- Dropping a counted partition recounts its attached root.
CREATE OR REPLACE FUNCTION campaign_counters.forget_dropped_tables() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dropped oid[] := ARRAY(SELECT objid FROM pg_event_trigger_dropped_objects()
                            WHERE classid = 'pg_catalog.pg_class'::regclass AND objsubid = 0);
    orphan regclass;
    orphan_campaigns regclass;
    trigger_name text;
    trigger_table regclass;
    shrunk regclass;
BEGIN
    FOR orphan, orphan_campaigns IN
        DELETE FROM campaign_counters.attachments
         WHERE recipients::oid = ANY (dropped) OR campaigns::oid = ANY (dropped)
        RETURNING recipients, campaigns
    LOOP
        DELETE FROM campaign_counters.partitions WHERE recipients = orphan;
        DELETE FROM campaign_counters.maintenance WHERE recipients = orphan;
        IF orphan_campaigns::oid <> ALL (dropped) THEN
            EXECUTE format('DROP TRIGGER IF EXISTS campaign_counters_new_campaign ON %s', orphan_campaigns);
            EXECUTE format('DROP TRIGGER IF EXISTS campaign_counters_campaign_id ON %s', orphan_campaigns);
            -- The recipients are gone; what their writes left pending still belongs in the counters.
            PERFORM campaign_counters.fold_orphaned_changes(orphan_campaigns);
        ELSE
            DELETE FROM campaign_counters.pending_changes WHERE campaigns = orphan_campaigns;
        END IF;
        CONTINUE WHEN orphan::oid = ANY (dropped);
        FOR trigger_name, trigger_table IN
            SELECT t.tgname, t.tgrelid::regclass FROM pg_trigger t
             WHERE t.tgfoid = 'campaign_counters.count_recipients()'::regprocedure
               AND t.tgrelid IN (SELECT orphan::oid UNION SELECT relid FROM pg_partition_tree(orphan))
        LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', trigger_name, trigger_table);
        END LOOP;
    END LOOP;
    FOR shrunk IN
        WITH gone AS (
            DELETE FROM campaign_counters.partitions WHERE partition::oid = ANY (dropped) RETURNING recipients)
        SELECT DISTINCT a.campaigns FROM gone JOIN campaign_counters.attachments a USING (recipients)
    LOOP
        PERFORM campaign_counters.recalc_campaign_counters(campaigns => shrunk);
    END LOOP;
    DELETE FROM campaign_counters.parked_events WHERE recipients::oid = ANY (dropped);
    DELETE FROM campaign_counters.recipient_failures WHERE recipients::oid = ANY (dropped);
    DELETE FROM campaign_counters.message_pricing WHERE recipients::oid = ANY (dropped);
END
$$;
COMMENT ON FUNCTION campaign_counters.forget_dropped_tables() IS
    'Event trigger: forgets attachments, parked events, failure details, pricing and pending changes of dropped tables (pending changes of a dropped recipients table are folded into its surviving campaigns table first), drops the counter triggers left on the surviving table of a pair, and recounts a pair that lost a partition.';

CREATE FUNCTION campaign_counters.follow_schema_changes() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    touched oid[] := ARRAY(SELECT objid FROM pg_event_trigger_ddl_commands()
                            WHERE classid = 'pg_catalog.pg_class'::regclass);
BEGIN
    IF touched <> '{}' AND EXISTS (SELECT FROM campaign_counters.attachments) THEN
        PERFORM campaign_counters.follow_ddl(touched);
    END IF;
END
$$;
COMMENT ON FUNCTION campaign_counters.follow_schema_changes() IS
    'Event trigger: after ALTER TABLE or CREATE TABLE, brings the attached pairs the changed tables belong to up to date (see follow_ddl).';

CREATE EVENT TRIGGER campaign_counters_follow_schema_changes ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE')
    EXECUTE FUNCTION campaign_counters.follow_schema_changes();


-- campaign_funnel(): what a campaign dashboard shows, one row per campaign. Rates come from the
-- counters the trigger keeps exact, with pending changes added (current_counters()); the percentiles of sent->delivered and delivered->read come
-- from one pass over the campaign's recipients (one pass over all recipients for all campaigns).

-- The row type, so that the function can take campaign_id and return it (PL/pgSQL allows no
-- parameter and result column of the same name).
CREATE TYPE campaign_counters.campaign_funnel_row AS (
    campaign_id              text,
    recipients               bigint,
    messages_pending         bigint,
    messages_sent            bigint,
    messages_delivered       bigint,
    messages_read            bigint,
    messages_failed          bigint,
    delivery_rate            numeric,
    read_rate                numeric,
    failure_rate             numeric,
    sent_to_delivered_median interval,
    sent_to_delivered_p90    interval,
    delivered_to_read_median interval,
    delivered_to_read_p90    interval,
    first_sent_at            timestamptz,
    last_event_at            timestamptz
);
COMMENT ON TYPE campaign_counters.campaign_funnel_row IS 'A row of campaign_counters.campaign_funnel().';

CREATE FUNCTION campaign_counters.campaign_funnel(campaign_id text DEFAULT NULL, campaigns regclass DEFAULT NULL)
    RETURNS SETOF campaign_counters.campaign_funnel_row
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    chosen_campaigns regclass;
    chosen_recipients regclass;
    pairs bigint;
    id_type text;
    filter text := '';
BEGIN
    SELECT count(*), min(a.campaigns::oid)::regclass, min(a.recipients::oid)::regclass
      INTO pairs, chosen_campaigns, chosen_recipients
      FROM campaign_counters.attachments a
     WHERE $2 IS NULL OR a.campaigns = $2;
    IF pairs = 0 AND $2 IS NOT NULL THEN
        RAISE EXCEPTION 'table % is not attached to campaign_counters', $2
            USING ERRCODE = '42704', HINT = 'Attach it with campaign_counters.attach(recipients, campaigns).';
    ELSIF pairs = 0 THEN
        RAISE EXCEPTION 'no table is attached to campaign_counters'
            USING ERRCODE = '42704', HINT = 'Attach one with campaign_counters.attach(recipients, campaigns).';
    ELSIF pairs > 1 THEN
        RAISE EXCEPTION '% table pairs are attached to campaign_counters; say which one', pairs
            USING ERRCODE = '22023', HINT = 'Pass the campaigns table, for example campaigns => ''marketing_campaigns''.';
    END IF;

    IF $1 IS NOT NULL THEN
        -- The id as the campaigns table types it, so both sides use their indexes.
        SELECT format_type(a.atttypid, a.atttypmod) INTO id_type
          FROM pg_attribute a WHERE a.attrelid = chosen_campaigns AND a.attname = 'id' AND NOT a.attisdropped;
        filter := format(' WHERE %%1$s = $1::%s', id_type);
        EXECUTE format('SELECT count(*) FROM %s c' || format(filter, 'c.id'), chosen_campaigns) INTO pairs USING $1;
        IF pairs = 0 THEN
            RAISE EXCEPTION 'campaign % does not exist in %', $1, chosen_campaigns USING ERRCODE = 'P0002';
        END IF;
    END IF;

    RETURN QUERY EXECUTE format($query$
        SELECT c.id::text,
               (c.messages_pending + c.messages_sent + c.messages_failed)::bigint,
               c.messages_pending::bigint, c.messages_sent::bigint, c.messages_delivered::bigint,
               c.messages_read::bigint, c.messages_failed::bigint,
               round(c.messages_delivered::numeric / nullif(c.messages_sent + c.messages_failed, 0), 4),
               round(c.messages_read::numeric / nullif(c.messages_delivered, 0), 4),
               round(c.messages_failed::numeric / nullif(c.messages_sent + c.messages_failed, 0), 4),
               t.to_delivered[1], t.to_delivered[2], t.to_read[1], t.to_read[2],
               t.first_sent_at, t.last_event_at
          FROM (SELECT s.id, n.messages_pending, n.messages_sent, n.messages_delivered,
                       n.messages_read, n.messages_failed
                  FROM %1$s s
                  JOIN campaign_counters.current_counters($1, %1$L::regclass) n ON n.campaign_id = s.id::text) c
          LEFT JOIN (SELECT r.campaign_id,
                            percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY r.delivered_at - r.sent_at) AS to_delivered,
                            percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY r.read_at - r.delivered_at) AS to_read,
                            min(r.sent_at)::timestamptz AS first_sent_at,
                            greatest(max(r.sent_at), max(r.delivered_at), max(r.read_at), max(r.failed_at))::timestamptz AS last_event_at
                       FROM %2$s r%3$s
                      GROUP BY r.campaign_id) t ON t.campaign_id = c.id%4$s
         ORDER BY c.id
        $query$, chosen_campaigns, chosen_recipients, format(filter, 'r.campaign_id'), format(filter, 'c.id'))
    USING $1;
END
$$;
COMMENT ON FUNCTION campaign_counters.campaign_funnel(text, regclass) IS
    'One row per campaign (or the one whose id is given as text): recipients, the five counters, delivery rate (delivered of sent plus failed), read rate (read of delivered), failure rate (failed of sent plus failed), median and 90th percentile of sent-to-delivered and delivered-to-read times, first sent_at and last event time. campaigns NULL means the only attachment. Needs SELECT on both tables.';
GRANT EXECUTE ON FUNCTION campaign_counters.campaign_funnel(text, regclass) TO PUBLIC;

-- Status events never wait for a recipient row another transaction holds: outcome carried.
COMMENT ON FUNCTION campaign_counters.apply_recipient_status(text, text, timestamptz, regclass) IS
    'Applies one status event (sent, delivered, read, played, failed) idempotently and in any order: status only moves up, each timestamp keeps its earliest time. Never waits for a recipient row another transaction holds. Returns applied, duplicate, stale, parked (no recipient has the id yet) or carried (the row was busy; the event is stored and applied by the next event for the id or apply_parked_events()).';
COMMENT ON FUNCTION campaign_counters.apply_whatsapp_webhook(jsonb, regclass) IS
    'Applies every status of a raw Meta WhatsApp webhook body in one set-based pass, never waiting for a recipient row another transaction holds; one row per status item with its outcome (applied, duplicate, stale, parked, carried, ignored, invalid). Stores errors[] of failed statuses and the first pricing of each message.';

-- attach() takes a counting mode.
DROP FUNCTION campaign_counters.attach(regclass, regclass);
CREATE FUNCTION campaign_counters.attach(recipients regclass DEFAULT NULL, campaigns regclass DEFAULT NULL,
                                         mode text DEFAULT 'immediate')
    RETURNS void LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'attach_in_mode_wrapper';
COMMENT ON FUNCTION campaign_counters.attach(regclass, regclass, text) IS
    'Validates a recipients/campaigns table pair, installs the counter triggers, records the pair with its counting mode (immediate or deferred) and recounts once. NULL means campaign_recipients / marketing_campaigns on the search_path. Needs ownership of both tables.';
COMMENT ON FUNCTION campaign_counters.apply_parked_events(regclass) IS
    'Applies and removes parked events whose message id a recipient has now, and returns how many. The trigger does this when an id arrives; this sweep catches events parked while the id''s transaction was still uncommitted. NULL means every attachment whose recipients table the caller may UPDATE. The background worker runs it every sweep_interval; without it, schedule it every few minutes.';

-- Counting modes. In the immediate mode (the default) each write adds its change to the campaign
-- row in its own transaction. In the deferred mode each write records its change, per statement
-- and campaign, in pending_changes and never touches (or locks) the campaign row; fold_counters()
-- moves pending changes into the campaign rows, and current_counters() reads stored plus pending.

ALTER TABLE campaign_counters.attachments ADD COLUMN mode text NOT NULL DEFAULT 'immediate'
    CONSTRAINT attachments_mode_check CHECK (mode IN ('immediate', 'deferred'));
COMMENT ON COLUMN campaign_counters.attachments.mode IS
    'immediate: each write adds to its campaign rows at once; deferred: each write records its change in pending_changes, folded into the campaign rows by fold_counters().';

CREATE TABLE campaign_counters.pending_changes (
    campaigns          regclass    NOT NULL,
    campaign_id        text        NOT NULL,
    messages_pending   bigint      NOT NULL,
    messages_sent      bigint      NOT NULL,
    messages_delivered bigint      NOT NULL,
    messages_read      bigint      NOT NULL,
    messages_failed    bigint      NOT NULL,
    recorded_at        timestamptz NOT NULL DEFAULT pg_catalog.statement_timestamp()
) WITH (
    -- Rows live for one fold interval: vacuum by row count, not by a fraction of a table that is
    -- nearly empty, so its size stays bounded under sustained load.
    autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0
);
CREATE INDEX pending_changes_campaign_idx ON campaign_counters.pending_changes (campaigns, campaign_id);
COMMENT ON TABLE campaign_counters.pending_changes IS
    'Counter changes of deferred-mode writes (one row per statement and campaign, campaign_id as text) not yet folded into the campaign rows. Stored plus pending is exact in every snapshot.';
SELECT pg_catalog.pg_extension_config_dump('campaign_counters.pending_changes', '');
-- Anyone may read the pending changes of the campaigns tables they may read (current_counters(),
-- verify and the funnel read them as the caller); only the extension writes them.
ALTER TABLE campaign_counters.pending_changes ENABLE ROW LEVEL SECURITY;
CREATE POLICY readers_of_the_campaigns ON campaign_counters.pending_changes FOR SELECT
    USING (pg_catalog.has_table_privilege(campaigns, 'SELECT'));
REVOKE ALL ON campaign_counters.pending_changes FROM PUBLIC;
GRANT SELECT ON campaign_counters.pending_changes TO PUBLIC;

CREATE TABLE campaign_counters.maintenance (
    recipients    regclass PRIMARY KEY,
    last_fold_at  timestamptz,
    last_sweep_at timestamptz
);
COMMENT ON TABLE campaign_counters.maintenance IS
    'When each attachment last had pending changes folded (fold_counters() that moved something) and its parked events swept (apply_parked_events()); read by health().';
REVOKE ALL ON campaign_counters.maintenance FROM PUBLIC;

CREATE FUNCTION campaign_counters.set_mode(recipients regclass, mode text)
    RETURNS void LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'set_mode_wrapper';
COMMENT ON FUNCTION campaign_counters.set_mode(regclass, text) IS
    'Switches an attached pair to the immediate or the deferred counting mode. Waits for the writers in progress and holds new ones until commit (SHARE lock on the recipients table); going back to immediate folds what is pending in the same transaction. Needs ownership of the recipients table.';

CREATE FUNCTION campaign_counters.fold_counters(campaigns regclass DEFAULT NULL)
    RETURNS bigint LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'fold_counters_wrapper';
COMMENT ON FUNCTION campaign_counters.fold_counters(regclass) IS
    'Moves pending changes into the campaign rows: per campaign in id order, locks the row, deletes its pending changes and adds them in one UPDATE, all in the caller''s transaction. Returns how many pending rows it folded. campaigns NULL means every attachment whose campaigns table the caller may UPDATE. Changes for a campaign id without a row (a deleted campaign) are dropped: it keeps no counters, and a row created later starts from a recount. Call it in READ COMMITTED.';

CREATE FUNCTION campaign_counters.fold_orphaned_changes(campaigns regclass)
    RETURNS void LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'fold_orphaned_changes_wrapper';
COMMENT ON FUNCTION campaign_counters.fold_orphaned_changes(regclass) IS
    'Called by the event trigger when an attached recipients table is dropped: folds the pending changes of its campaigns table, as that table''s owner, and forgets them.';
REVOKE EXECUTE ON FUNCTION campaign_counters.fold_orphaned_changes(regclass) FROM PUBLIC;

CREATE FUNCTION campaign_counters.current_counters(campaign_id text DEFAULT NULL, campaigns regclass DEFAULT NULL)
    RETURNS TABLE (campaign_id text, messages_pending bigint, messages_sent bigint, messages_delivered bigint,
                   messages_read bigint, messages_failed bigint)
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'current_counters_wrapper';
COMMENT ON FUNCTION campaign_counters.current_counters(text, regclass) IS
    'Each campaign''s counters (or the one whose id is given as text) as stored plus its pending changes: equal to a recount in the caller''s snapshot, in either mode. campaigns NULL means the only attachment. Needs SELECT on the campaigns table.';

CREATE FUNCTION campaign_counters.health()
    RETURNS TABLE (recipients regclass, campaigns regclass, mode text,
                   pending_changes bigint, oldest_pending_age interval,
                   parked_events bigint, oldest_parked_age interval,
                   last_fold_at timestamptz, last_sweep_at timestamptz, worker_serves boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.recipients, a.campaigns, a.mode,
           coalesce(p.rows, 0), now() - p.oldest,
           coalesce(e.events, 0), now() - e.oldest,
           m.last_fold_at, m.last_sweep_at,
           EXISTS (SELECT FROM pg_stat_activity s
                    WHERE s.backend_type = 'campaign_counters worker' AND s.datname = current_database())
      FROM campaign_counters.attachments a
      LEFT JOIN (SELECT c.campaigns, count(*) AS rows, min(c.recorded_at) AS oldest
                   FROM campaign_counters.pending_changes c GROUP BY c.campaigns) p USING (campaigns)
      LEFT JOIN (SELECT v.recipients, count(*) AS events, min(v.parked_at) AS oldest
                   FROM campaign_counters.parked_events v GROUP BY v.recipients) e USING (recipients)
      LEFT JOIN campaign_counters.maintenance m USING (recipients)
     ORDER BY a.recipients::text
$$;
COMMENT ON FUNCTION campaign_counters.health() IS
    'One row per attachment: its counting mode, pending changes and the age of the oldest, parked events and the age of the oldest, when pending changes were last folded and parked events last swept, and whether a campaign_counters background worker serves this database.';
