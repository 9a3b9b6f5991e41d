-- The extension's own tables. Applications never write them directly: attach/detach and the
-- status functions do, as the extension owner. pg_dump keeps their rows.

CREATE TABLE campaign_counters.attachments (
    recipients  regclass    PRIMARY KEY,
    campaigns   regclass    NOT NULL UNIQUE,
    attached_at timestamptz NOT NULL DEFAULT now(),
    signature   text
);
COMMENT ON TABLE campaign_counters.attachments IS
    'Recipients tables whose writes keep the counters of their campaigns table; one row per attach().';
COMMENT ON COLUMN campaign_counters.attachments.signature IS
    'Types of the counted columns and storage of the counted tables when last checked: a DDL that changes them recounts the pair.';
SELECT pg_catalog.pg_extension_config_dump('campaign_counters.attachments', '');

CREATE TABLE campaign_counters.parked_events (
    recipients          regclass    NOT NULL,
    whatsapp_message_id text        NOT NULL,
    status              text        NOT NULL,
    occurred_at         timestamptz NOT NULL,
    parked_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recipients, whatsapp_message_id, status, occurred_at)
);
CREATE INDEX parked_events_parked_at_idx ON campaign_counters.parked_events (parked_at);
COMMENT ON TABLE campaign_counters.parked_events IS
    'Status events for message ids no recipient has yet; applied and removed when a recipient gets the id.';
SELECT pg_catalog.pg_extension_config_dump('campaign_counters.parked_events', '');

CREATE TABLE campaign_counters.recipient_failures (
    recipients          regclass    NOT NULL,
    whatsapp_message_id text        NOT NULL,
    code                integer     NOT NULL,
    title               text,
    message             text,
    details             text,
    failed_at           timestamptz NOT NULL,
    PRIMARY KEY (recipients, whatsapp_message_id, code)
);
COMMENT ON TABLE campaign_counters.recipient_failures IS
    'Meta''s errors[] of failed statuses (code, title, message, error_data.details), per message id.';
SELECT pg_catalog.pg_extension_config_dump('campaign_counters.recipient_failures', '');

CREATE TABLE campaign_counters.partitions (
    partition  regclass PRIMARY KEY,
    recipients regclass NOT NULL
);
COMMENT ON TABLE campaign_counters.partitions IS
    'Partitions of attached recipients tables whose rows are counted: detaching or dropping one takes its rows out of the counters.';
SELECT pg_catalog.pg_extension_config_dump('campaign_counters.partitions', '');

REVOKE ALL ON campaign_counters.attachments, campaign_counters.partitions, campaign_counters.parked_events,
              campaign_counters.recipient_failures FROM PUBLIC;
GRANT SELECT ON campaign_counters.attachments, campaign_counters.partitions TO PUBLIC;
-- Application roles call the functions; each checks the rights its work needs.
GRANT USAGE ON SCHEMA campaign_counters TO PUBLIC;
