//! In-database tests of the Rust side, run by `cargo pgrx test`.
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn setup_tables(id_type: &str) {
        Spi::run(&format!(
            "CREATE TABLE marketing_campaigns (
                id {id_type} PRIMARY KEY, name text,
                messages_sent integer NOT NULL DEFAULT 0, messages_delivered integer NOT NULL DEFAULT 0,
                messages_read integer NOT NULL DEFAULT 0, messages_failed integer NOT NULL DEFAULT 0,
                messages_pending integer NOT NULL DEFAULT 0);
             CREATE TABLE campaign_recipients (
                id bigserial PRIMARY KEY,
                campaign_id {id_type} REFERENCES marketing_campaigns (id) ON DELETE CASCADE,
                status text NOT NULL DEFAULT 'pending', whatsapp_message_id text UNIQUE,
                sent_at timestamptz, delivered_at timestamptz, read_at timestamptz, failed_at timestamptz);
             SELECT campaign_counters.attach();"
        ))
        .unwrap();
    }

    fn counters(id: &str) -> (i32, i32, i32, i32, i32) {
        Spi::connect(|client| {
            let row = client
                .select(
                    "SELECT messages_pending, messages_sent, messages_delivered, messages_read, messages_failed
                       FROM marketing_campaigns WHERE id::text = $1",
                    None,
                    &[id.into()],
                )?
                .first();
            Ok::<_, pgrx::spi::Error>((
                row.get::<i32>(1)?.unwrap(),
                row.get::<i32>(2)?.unwrap(),
                row.get::<i32>(3)?.unwrap(),
                row.get::<i32>(4)?.unwrap(),
                row.get::<i32>(5)?.unwrap(),
            ))
        })
        .unwrap()
    }

    fn drift() -> i64 {
        Spi::get_one::<i64>("SELECT count(*) FROM campaign_counters.verify_campaign_counters()").unwrap().unwrap()
    }

    #[pg_test]
    fn bulk_insert_update_move_delete_keep_counters_exact() {
        setup_tables("bigint");
        Spi::run(
            "INSERT INTO marketing_campaigns (id) VALUES (1), (2);
             INSERT INTO campaign_recipients (campaign_id, status)
                  SELECT 1 + i % 2, (ARRAY['pending','sent','delivered','read','failed'])[1 + i % 5]
                    FROM generate_series(0, 99) i;",
        )
        .unwrap();
        assert_eq!(counters("1"), (10, 30, 20, 10, 10));
        Spi::run("UPDATE campaign_recipients SET status = 'read' WHERE status IN ('sent', 'delivered')").unwrap();
        assert_eq!(counters("1"), (10, 30, 30, 30, 10));
        Spi::run("UPDATE campaign_recipients SET campaign_id = 2 WHERE id IN (SELECT min(id) FROM campaign_recipients WHERE campaign_id = 1)").unwrap();
        assert_eq!(drift(), 0);
        Spi::run("DELETE FROM campaign_recipients WHERE campaign_id = 2").unwrap();
        assert_eq!(counters("2"), (0, 0, 0, 0, 0));
        Spi::run("TRUNCATE campaign_recipients").unwrap();
        assert_eq!(counters("1"), (0, 0, 0, 0, 0));
        assert_eq!(drift(), 0);
    }

    #[pg_test]
    fn unknown_status_is_a_check_violation() {
        setup_tables("integer");
        Spi::run("INSERT INTO marketing_campaigns (id) VALUES (7)").unwrap();
        let raised = PgTryBuilder::new(|| {
            Spi::run("INSERT INTO campaign_recipients (campaign_id, status) VALUES (7, 'queued')").map(|_| None)
        })
        .catch_others(|error| match error {
            pg_sys::panic::CaughtError::PostgresError(report) => Ok(Some((report.sql_error_code(), report.message().to_string()))),
            _ => Ok(None),
        })
        .execute()
        .unwrap();
        let (code, message) = raised.expect("an error");
        assert_eq!(code, PgSqlErrorCode::ERRCODE_CHECK_VIOLATION);
        assert!(message.contains("\"queued\""), "{message}");
    }

    #[pg_test]
    fn recalc_repairs_drift_and_verify_reports_it() {
        setup_tables("uuid");
        Spi::run(
            "INSERT INTO marketing_campaigns (id) VALUES ('00000000-0000-0000-0000-000000000001');
             INSERT INTO campaign_recipients (campaign_id, status)
                  SELECT '00000000-0000-0000-0000-000000000001', 'read' FROM generate_series(1, 5);
             ALTER TABLE campaign_recipients DISABLE TRIGGER USER;
             INSERT INTO campaign_recipients (campaign_id, status)
                  SELECT '00000000-0000-0000-0000-000000000001', 'failed' FROM generate_series(1, 3);
             ALTER TABLE campaign_recipients ENABLE TRIGGER USER;",
        )
        .unwrap();
        assert_eq!(drift(), 1);
        let fixed = Spi::get_one::<i64>("SELECT campaign_counters.recalc_campaign_counters()").unwrap();
        assert_eq!(fixed, Some(1));
        assert_eq!(counters("00000000-0000-0000-0000-000000000001"), (0, 5, 5, 5, 3));
        assert_eq!(drift(), 0);
    }

    #[pg_test]
    fn status_events_commute_in_the_database() {
        setup_tables("text");
        Spi::run(
            "INSERT INTO marketing_campaigns (id) VALUES ('spring');
             INSERT INTO campaign_recipients (campaign_id, status, whatsapp_message_id) VALUES ('spring', 'sent', 'wamid.A');",
        )
        .unwrap();
        let apply = |status: &str, at: &str| {
            Spi::get_one_with_args::<String>(
                "SELECT campaign_counters.apply_recipient_status('wamid.A', $1, $2::timestamptz)",
                &[status.into(), at.into()],
            )
            .unwrap()
            .unwrap()
        };
        assert_eq!(apply("read", "2026-01-01 10:05+00"), "applied");
        assert_eq!(apply("delivered", "2026-01-01 10:01+00"), "applied");
        assert_eq!(apply("delivered", "2026-01-01 10:01+00"), "stale");
        assert_eq!(apply("sent", "2026-01-01 10:02+00"), "stale");
        assert_eq!(counters("spring"), (0, 1, 1, 1, 0));
        let delivered_at = Spi::get_one::<String>(
            "SELECT delivered_at AT TIME ZONE 'UTC' || '' FROM campaign_recipients WHERE whatsapp_message_id = 'wamid.A'",
        )
        .unwrap()
        .unwrap();
        assert_eq!(delivered_at, "2026-01-01 10:01:00");
        assert_eq!(apply("read", "2026-01-01 11:00+00"), "duplicate");
        assert_eq!(Spi::get_one::<String>("SELECT campaign_counters.apply_recipient_status('wamid.B', 'read')").unwrap().unwrap(), "parked");
        Spi::run("INSERT INTO campaign_recipients (campaign_id, whatsapp_message_id) VALUES ('spring', 'wamid.B')").unwrap();
        assert_eq!(counters("spring"), (0, 2, 2, 2, 0));
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM campaign_counters.parked_events").unwrap(), Some(0));
        assert_eq!(drift(), 0);
    }

    #[pg_test]
    fn kept_plans_follow_renamed_tables() {
        setup_tables("bigint");
        Spi::run(
            "INSERT INTO marketing_campaigns (id) VALUES (1);
             INSERT INTO campaign_recipients (campaign_id, status) VALUES (1, 'sent');
             ALTER TABLE marketing_campaigns RENAME TO renamed_campaigns;
             CREATE SCHEMA moved;
             ALTER TABLE renamed_campaigns SET SCHEMA moved;
             INSERT INTO campaign_recipients (campaign_id, status) VALUES (1, 'read');",
        )
        .unwrap();
        let sent = Spi::get_one::<i32>("SELECT messages_sent FROM moved.renamed_campaigns WHERE id = 1").unwrap();
        assert_eq!(sent, Some(2));
        let drift = Spi::get_one::<i64>(
            "SELECT count(*) FROM campaign_counters.verify_campaign_counters(campaigns => 'moved.renamed_campaigns')",
        )
        .unwrap();
        assert_eq!(drift, Some(0));
    }
}
