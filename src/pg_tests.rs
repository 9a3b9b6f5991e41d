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
        Spi::get_one::<i64>("SELECT count(*) FROM campaign_counters.verify_campaign_counters()")
            .unwrap()
            .unwrap()
    }

    /// Without shared_preload_libraries (as here) the worker's intervals exist and show with their
    /// units; the databases setting, a server-start one, exists only when the library is preloaded.
    #[pg_test]
    fn worker_settings_show_with_units() {
        let show = |name: &str| {
            Spi::get_one::<String>(&format!(
                "SELECT current_setting('campaign_counters.{name}', true)"
            ))
            .unwrap()
        };
        assert_eq!(show("fold_interval").as_deref(), Some("200ms"));
        assert_eq!(show("sweep_interval").as_deref(), Some("1min"));
        assert_eq!(show("parked_retention").as_deref(), Some("7d"));
        assert_eq!(show("databases"), None);
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
        Spi::run(
            "UPDATE campaign_recipients SET status = 'read' WHERE status IN ('sent', 'delivered')",
        )
        .unwrap();
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
            Spi::run("INSERT INTO campaign_recipients (campaign_id, status) VALUES (7, 'queued')")
                .map(|_| None)
        })
        .catch_others(|error| match error {
            pg_sys::panic::CaughtError::PostgresError(report) => Ok(Some((
                report.sql_error_code(),
                report.message().to_string(),
            ))),
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
        let fixed =
            Spi::get_one::<i64>("SELECT campaign_counters.recalc_campaign_counters()").unwrap();
        assert_eq!(fixed, Some(1));
        assert_eq!(
            counters("00000000-0000-0000-0000-000000000001"),
            (0, 5, 5, 5, 3)
        );
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
        assert_eq!(
            Spi::get_one::<String>(
                "SELECT campaign_counters.apply_recipient_status('wamid.B', 'read')"
            )
            .unwrap()
            .unwrap(),
            "parked"
        );
        Spi::run("INSERT INTO campaign_recipients (campaign_id, whatsapp_message_id) VALUES ('spring', 'wamid.B')").unwrap();
        assert_eq!(counters("spring"), (0, 2, 2, 2, 0));
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM campaign_counters.parked_events").unwrap(),
            Some(0)
        );
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
        let sent =
            Spi::get_one::<i32>("SELECT messages_sent FROM moved.renamed_campaigns WHERE id = 1")
                .unwrap();
        assert_eq!(sent, Some(2));
        let drift = Spi::get_one::<i64>(
            "SELECT count(*) FROM campaign_counters.verify_campaign_counters(campaigns => 'moved.renamed_campaigns')",
        )
        .unwrap();
        assert_eq!(drift, Some(0));
    }

    /// Property, in the database: for random multisets of events, every order and every
    /// duplication (through single applies and through one webhook batch) gives the same row and
    /// counters, and they are the pure model's.
    #[pg_test]
    fn any_order_and_repetition_of_events_gives_one_row_in_the_database() {
        use crate::counters::Counters;
        use crate::status::{Event, EventKind, RowState, Status};
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};

        setup_tables("bigint");
        Spi::run(
            "INSERT INTO marketing_campaigns (id) VALUES (1);
             INSERT INTO campaign_recipients (campaign_id, whatsapp_message_id) VALUES (1, 'wamid.P');",
        )
        .unwrap();
        // Whole seconds, so the webhook (unix seconds) carries the same times.
        let base_seconds = 1_750_000_000i64;
        let to_pg = |seconds: i64| (seconds - 946_684_800) * 1_000_000;

        let apply_singly = |events: &[Event]| {
            for event in events {
                Spi::get_one_with_args::<String>(
                    "SELECT campaign_counters.apply_recipient_status('wamid.P', $1, $2)",
                    &[
                        event.kind.as_str().into(),
                        TimestampWithTimeZone::try_from(event.occurred_at)
                            .unwrap()
                            .into(),
                    ],
                )
                .unwrap();
            }
        };
        let apply_as_webhook = |events: &[Event]| {
            let statuses: Vec<String> = events
                .iter()
                .map(|event| {
                    format!(
                        r#"{{"id":"wamid.P","status":"{}","timestamp":"{}"}}"#,
                        event.kind.as_str(),
                        event.occurred_at / 1_000_000 + 946_684_800
                    )
                })
                .collect();
            let body = format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{{"field":"messages","value":{{"statuses":[{}]}}}}]}}]}}"#,
                statuses.join(",")
            );
            Spi::run_with_args(
                "SELECT count(*) FROM campaign_counters.apply_whatsapp_webhook($1::jsonb)",
                &[body.into()],
            )
            .unwrap();
        };
        let reset = || {
            Spi::run(
                "UPDATE campaign_recipients SET status = 'pending', sent_at = NULL, delivered_at = NULL,
                        read_at = NULL, failed_at = NULL",
            )
            .unwrap()
        };
        let observe = || {
            Spi::connect(|client| {
                let row = client
                    .select(
                        "SELECT r.status, r.sent_at, r.delivered_at, r.read_at, r.failed_at,
                                c.messages_pending::int8, c.messages_sent::int8, c.messages_delivered::int8,
                                c.messages_read::int8, c.messages_failed::int8
                           FROM campaign_recipients r JOIN marketing_campaigns c ON c.id = r.campaign_id",
                        None,
                        &[],
                    )?
                    .first();
                let time = |i| row.get::<TimestampWithTimeZone>(i).map(|t| t.map(|t| t.into_inner()));
                Ok::<_, pgrx::spi::Error>((
                    row.get::<String>(1)?.unwrap(),
                    [time(2)?, time(3)?, time(4)?, time(5)?],
                    [6, 7, 8, 9, 10].map(|i| row.get::<i64>(i).unwrap().unwrap()),
                ))
            })
            .unwrap()
        };

        let strategy = (
            prop::collection::vec(
                (prop::sample::select(EventKind::ALL.to_vec()), 0i64..600),
                1..7,
            ),
            Just((0..14).collect::<Vec<usize>>()).prop_shuffle(),
        );
        let mut runner = TestRunner::new(Config {
            cases: 40,
            ..Config::default()
        });
        runner
            .run(&strategy, |(raw, order)| {
                let events: Vec<Event> = raw
                    .iter()
                    .map(|(kind, offset)| Event {
                        kind: *kind,
                        occurred_at: to_pg(base_seconds + offset),
                    })
                    .collect();
                // Another order of the same events, each given twice.
                let doubled: Vec<Event> = events.iter().chain(events.iter()).copied().collect();
                let shuffled: Vec<Event> = order
                    .iter()
                    .filter(|i| **i < doubled.len())
                    .map(|i| doubled[*i])
                    .collect();

                let (expected, _) = RowState::new(Status::Pending).apply_all(&events);
                let expected_counters = Counters::of(expected.status).0;
                let expected_times = [
                    expected.times.sent_at,
                    expected.times.delivered_at,
                    expected.times.read_at,
                    expected.times.failed_at,
                ];

                for apply in [&apply_singly as &dyn Fn(&[Event]), &apply_as_webhook] {
                    for sequence in [&events, &shuffled] {
                        reset();
                        apply(sequence);
                        let (status, times, counters) = observe();
                        prop_assert_eq!(status.as_str(), expected.status.as_str());
                        prop_assert_eq!(times, expected_times);
                        prop_assert_eq!(counters, expected_counters);
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}
