-- campaign_counters 0.2.0 -> 0.3.0
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
                          WHEN (pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.->) ''id'' IS DISTINCT FROM pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.->) ''id'')
                          EXECUTE FUNCTION campaign_counters.count_new_campaigns()', campaigns);
    END LOOP;
END
$$;

COMMENT ON FUNCTION campaign_counters.verify_campaign_counters(text, regclass) IS
    'Reports every counter whose stored value differs from a recount with the trigger''s rules (one row each; stored NULL for a NULL counter), and each campaign id whose recipients have no campaign row (counter ''(no campaign row)'', actual = its recipients). Reads both in one snapshot; writes and locks nothing.';
COMMENT ON FUNCTION campaign_counters.purge_parked_events(interval) IS
    'Deletes parked events older than the given age (Meta stops retrying after 7 days) and returns how many. Runs as the extension owner: EXECUTE on it is the right to purge.';

-- Dropping a counted partition recounts its attached root.
CREATE OR REPLACE FUNCTION campaign_counters.forget_dropped_tables() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dropped oid[] := ARRAY(SELECT objid FROM pg_event_trigger_dropped_objects()
                            WHERE classid = 'pg_catalog.pg_class'::regclass AND objsubid = 0);
    orphan regclass;
    trigger_name text;
    trigger_table regclass;
    shrunk regclass;
BEGIN
    FOR orphan IN
        DELETE FROM campaign_counters.attachments
         WHERE recipients::oid = ANY (dropped) OR campaigns::oid = ANY (dropped)
        RETURNING recipients
    LOOP
        DELETE FROM campaign_counters.partitions WHERE recipients = orphan;
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
END
$$;
COMMENT ON FUNCTION campaign_counters.forget_dropped_tables() IS
    'Event trigger: forgets attachments, parked events and failure details of dropped tables, drops the counter triggers of a recipients table whose campaigns table was dropped, and recounts a pair that lost a partition.';

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
