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
