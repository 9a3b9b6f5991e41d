-- The functions users call, implemented in Rust. Each pins its search_path in its body (after
-- resolving NULL table arguments on the caller's search_path) or, for the trigger, in its
-- definition.

CREATE FUNCTION campaign_counters.count_recipients() RETURNS trigger
    LANGUAGE c SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'count_recipients_wrapper';
COMMENT ON FUNCTION campaign_counters.count_recipients() IS
    'Statement trigger installed by attach(): adds each write''s net counter change per campaign, in campaign id order, as the owner of the campaigns table.';

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

CREATE FUNCTION campaign_counters.attach(recipients regclass DEFAULT NULL, campaigns regclass DEFAULT NULL,
                                         mode text DEFAULT 'immediate')
    RETURNS void LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'attach_in_mode_wrapper';
COMMENT ON FUNCTION campaign_counters.attach(regclass, regclass, text) IS
    'Validates a recipients/campaigns table pair, installs the counter triggers, records the pair with its counting mode (immediate or deferred) and recounts once. NULL means campaign_recipients / marketing_campaigns on the search_path. Needs ownership of both tables.';

CREATE FUNCTION campaign_counters.detach(recipients regclass DEFAULT NULL)
    RETURNS void LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'detach_wrapper';
COMMENT ON FUNCTION campaign_counters.detach(regclass) IS
    'Removes the counter triggers of an attached recipients table and forgets it (with its parked events, failure details and pricing). NULL means campaign_recipients on the search_path.';

CREATE FUNCTION campaign_counters.recalc_campaign_counters(campaign_id text DEFAULT NULL, campaigns regclass DEFAULT NULL)
    RETURNS bigint LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'recalc_campaign_counters_wrapper';
COMMENT ON FUNCTION campaign_counters.recalc_campaign_counters(text, regclass) IS
    'Recounts one campaign (id as text) or all in one pass with the trigger''s rules, locking campaign rows in id order, writes only counters that differ and returns how many campaigns changed. campaigns NULL means the only attachment.';

CREATE FUNCTION campaign_counters.verify_campaign_counters(campaign_id text DEFAULT NULL, campaigns regclass DEFAULT NULL)
    RETURNS TABLE (campaign_id text, counter text, stored bigint, actual bigint)
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'verify_campaign_counters_wrapper';
COMMENT ON FUNCTION campaign_counters.verify_campaign_counters(text, regclass) IS
    'Reports every counter whose stored value differs from a recount with the trigger''s rules (one row each; stored NULL for a NULL counter), and each campaign id whose recipients have no campaign row (counter ''(no campaign row)'', actual = its recipients). Reads both in one snapshot; writes and locks nothing.';

CREATE FUNCTION campaign_counters.apply_recipient_status(
        whatsapp_message_id text, status text, occurred_at timestamptz DEFAULT now(), recipients regclass DEFAULT NULL)
    RETURNS text LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'apply_recipient_status_wrapper';
COMMENT ON FUNCTION campaign_counters.apply_recipient_status(text, text, timestamptz, regclass) IS
    'Applies one status event (sent, delivered, read, played, failed) idempotently and in any order: status only moves up, each timestamp keeps its earliest time. Never waits for a recipient row another transaction holds. Returns applied, duplicate, stale, parked (no recipient has the id yet) or carried (the row was busy; the event is stored and applied by the next event for the id or apply_parked_events()).';

CREATE FUNCTION campaign_counters.apply_whatsapp_webhook(payload jsonb, recipients regclass DEFAULT NULL)
    RETURNS TABLE (whatsapp_message_id text, status text, outcome text)
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'apply_whatsapp_webhook_wrapper';
COMMENT ON FUNCTION campaign_counters.apply_whatsapp_webhook(jsonb, regclass) IS
    'Applies every status of a raw Meta WhatsApp webhook body in one set-based pass, never waiting for a recipient row another transaction holds; one row per status item with its outcome (applied, duplicate, stale, parked, carried, ignored, invalid). Stores errors[] of failed statuses and the first pricing of each message.';

CREATE FUNCTION campaign_counters.apply_parked_events(recipients regclass DEFAULT NULL)
    RETURNS bigint LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'apply_parked_events_wrapper';
COMMENT ON FUNCTION campaign_counters.apply_parked_events(regclass) IS
    'Applies and removes parked events whose message id a recipient has now, and returns how many. The trigger does this when an id arrives; this sweep catches events parked while the id''s transaction was still uncommitted. NULL means every attachment whose recipients table the caller may UPDATE. The background worker runs it every sweep_interval; without it, schedule it every few minutes.';

CREATE FUNCTION campaign_counters.purge_parked_events(older_than interval DEFAULT '7 days')
    RETURNS bigint LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'purge_parked_events_wrapper';
COMMENT ON FUNCTION campaign_counters.purge_parked_events(interval) IS
    'Applies the parked events whose id a recipient has now (every attachment), then deletes parked events older than the given age (Meta stops retrying after 7 days) and returns how many it deleted. Runs as the extension owner: EXECUTE on it is the right to purge.';
REVOKE EXECUTE ON FUNCTION campaign_counters.purge_parked_events(interval) FROM PUBLIC;

CREATE FUNCTION campaign_counters.failure_reasons(campaign_id text, campaigns regclass DEFAULT NULL)
    RETURNS TABLE (code integer, title text, recipients bigint)
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'failure_reasons_wrapper';
COMMENT ON FUNCTION campaign_counters.failure_reasons(text, regclass) IS
    'Why a campaign''s messages failed: failed recipients per Meta error code and title, most frequent first; failures without details count as "no details".';
