-- The extension and the application's tables, as in ../shared/reference/schema.sql.
CREATE EXTENSION campaign_counters;
\dx campaign_counters

CREATE TABLE marketing_campaigns (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                   text        NOT NULL,
    status                 text        NOT NULL DEFAULT 'draft',
    total_target_customers integer     NOT NULL DEFAULT 0,
    messages_sent          integer     NOT NULL DEFAULT 0,
    messages_delivered     integer     NOT NULL DEFAULT 0,
    messages_read          integer     NOT NULL DEFAULT 0,
    messages_failed        integer     NOT NULL DEFAULT 0,
    messages_pending       integer     NOT NULL DEFAULT 0,
    created_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE campaign_recipients (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    campaign_id         uuid NOT NULL REFERENCES marketing_campaigns (id) ON DELETE CASCADE,
    phone_number        text NOT NULL,
    status              text NOT NULL DEFAULT 'pending',
    whatsapp_message_id text UNIQUE,
    sent_at             timestamptz,
    delivered_at        timestamptz,
    read_at             timestamptz,
    failed_at           timestamptz
);
CREATE INDEX campaign_recipients_campaign_id_idx ON campaign_recipients (campaign_id);

-- Shows an error's SQLSTATE and message, and proves the failed statement left nothing behind
-- (the exception block rolls its subtransaction back).
CREATE FUNCTION expect_error(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- A webhook body carrying the given statuses[], as Meta posts it.
CREATE FUNCTION webhook(statuses jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(
        jsonb_build_object('id', '1', 'changes', jsonb_build_array(jsonb_build_object(
            'field', 'messages', 'value', jsonb_build_object('statuses', statuses))))))
$$;

-- Counters of every campaign, by name.
CREATE VIEW counters AS
SELECT name, messages_pending AS pending, messages_sent AS sent, messages_delivered AS delivered,
       messages_read AS read, messages_failed AS failed, total_target_customers AS target
  FROM marketing_campaigns ORDER BY name;
