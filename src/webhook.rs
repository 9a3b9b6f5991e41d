//! Webhook parsing: Meta's WhatsApp status webhook body, validated into one verdict per status item.
//!
//! A body that is not a WhatsApp webhook is an error for the whole body; a bad status item is
//! only that item's verdict, so one bad item never blocks the rest of a batch (Meta retries the
//! whole POST for days when an endpoint fails).

use crate::pricing::{pricing_of, Pricing};
use crate::status::{Event, EventKind, PgTimestamp};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Seconds from the unix epoch to PostgreSQL's epoch, 2000-01-01 00:00 UTC.
const POSTGRES_EPOCH_UNIX_SECONDS: i64 = 946_684_800;

/// 9999-12-31 23:59:59 UTC in unix seconds: later times are out of range for the columns.
const LAST_SECOND_OF_9999: i64 = 253_402_300_799;

/// Longest message id accepted. Meta's ids are about 60 bytes; a longer one is not a WhatsApp id,
/// and one past PostgreSQL's index entry limit would fail the whole batch when parked.
pub const MAX_MESSAGE_ID_BYTES: usize = 256;

/// Most status items one body may carry. Meta batches far fewer; the limit bounds the memory a
/// body can take however small its items are.
pub const MAX_STATUS_ITEMS: usize = 100_000;

/// The body was not a WhatsApp Business Account webhook, or was past a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    pub message: String,
    /// True when the body is well-formed but carries more than [`MAX_STATUS_ITEMS`].
    pub too_large: bool,
}

fn payload_error(message: String) -> PayloadError {
    PayloadError {
        message,
        too_large: false,
    }
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// One entry of a failed status' `errors[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureDetail {
    pub code: Option<i32>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub details: Option<String>,
}

/// What a status item turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A status this extension tracks; `failures` holds `errors[]` of a failed status,
    /// `pricing` what Meta says the message costs, when the status says it.
    Event {
        event: Event,
        failures: Vec<FailureDetail>,
        pricing: Option<Pricing>,
    },
    /// A status it does not track (`deleted`, `warning`, or anything new).
    Ignored,
    /// Missing or malformed id, status or timestamp.
    Invalid { reason: String },
}

/// One item of a `value.statuses[]` array, in body order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusItem {
    pub whatsapp_message_id: Option<String>,
    pub status: Option<String>,
    pub verdict: Verdict,
}

/// An object whose member values are kept as unparsed slices of the body.
type RawObject<'a> = BTreeMap<String, &'a RawValue>;

/// Parses a webhook body (JSON text) into its status items.
///
/// Only the envelope (`entry[].changes[].value.statuses[]`) is parsed as structure; everything
/// else is skipped without recursion, and each status item is parsed on its own. So nesting
/// anywhere never rejects the body: an item nested too deep is only that item's verdict.
pub fn parse_webhook(body: &[u8]) -> Result<Vec<StatusItem>, PayloadError> {
    let text = std::str::from_utf8(body)
        .map_err(|error| payload_error(format!("webhook body is not valid UTF-8: {error}")))?;
    let root: &RawValue = serde_json::from_str(text)
        .map_err(|error| payload_error(format!("webhook body is not valid JSON: {error}")))?;
    let body = match raw_kind(root) {
        "an object" => parse_object(root)?,
        kind => {
            return Err(payload_error(format!(
                "webhook body must be a JSON object, not {kind}"
            )))
        }
    };
    match body.get("object").map(|raw| raw_string(raw)) {
        Some(Some(object)) if object == "whatsapp_business_account" => {}
        _ => {
            return Err(payload_error(format!(
                "webhook body must have \"object\": \"whatsapp_business_account\", found {}",
                describe(body.get("object").copied())
            )))
        }
    }
    let mut items = Vec::new();
    for (entry_index, entry) in array_field(&body, "entry", "webhook body")?
        .iter()
        .enumerate()
    {
        let place = format!("entry[{entry_index}]");
        let entry = object(entry, &place)?;
        for (change_index, change) in array_field(&entry, "changes", &place)?.iter().enumerate() {
            let place = format!("{place}.changes[{change_index}]");
            let change = object(change, &place)?;
            match change
                .get("field")
                .map(|raw| (raw_kind(raw), raw_string(raw)))
            {
                Some((_, Some(field))) if field == "messages" => {}
                Some(("a string", _)) => continue,
                _ => {
                    return Err(payload_error(format!(
                        "{place}.field must be a string, found {}",
                        describe(change.get("field").copied())
                    )))
                }
            }
            let value_place = format!("{place}.value");
            let value = match change.get("value") {
                Some(raw) => object(raw, &value_place)?,
                None => {
                    return Err(payload_error(format!(
                        "{value_place} must be an object, found null"
                    )))
                }
            };
            match value.get("statuses") {
                None => {}
                Some(statuses) if raw_kind(statuses) == "an array" => {
                    let statuses: Vec<&RawValue> = parse_array(statuses)?;
                    if items.len() + statuses.len() > MAX_STATUS_ITEMS {
                        return Err(PayloadError {
                            message: format!(
                                "webhook body carries more than {MAX_STATUS_ITEMS} status items"
                            ),
                            too_large: true,
                        });
                    }
                    items.extend(statuses.into_iter().map(raw_status_item));
                }
                Some(other) => {
                    return Err(payload_error(format!(
                        "{value_place}.statuses must be an array, found {}",
                        raw_kind(other)
                    )))
                }
            }
        }
    }
    Ok(items)
}

fn parse_object(raw: &RawValue) -> Result<RawObject<'_>, PayloadError> {
    serde_json::from_str(raw.get())
        .map_err(|error| payload_error(format!("webhook body is not valid JSON: {error}")))
}

fn parse_array(raw: &RawValue) -> Result<Vec<&RawValue>, PayloadError> {
    serde_json::from_str(raw.get())
        .map_err(|error| payload_error(format!("webhook body is not valid JSON: {error}")))
}

/// The JSON kind of a raw value, from its first byte (the body was already validated as JSON).
fn raw_kind(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

fn raw_string(raw: &RawValue) -> Option<String> {
    (raw_kind(raw) == "a string")
        .then(|| serde_json::from_str::<String>(raw.get()).ok())
        .flatten()
}

fn raw_status_item(raw: &RawValue) -> StatusItem {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(item) => status_item(&item),
        Err(error) => StatusItem {
            whatsapp_message_id: None,
            status: None,
            verdict: invalid(
                if error.to_string().starts_with("recursion limit exceeded") {
                    "status item nests deeper than 128 levels".to_owned()
                } else {
                    format!("status item is not valid JSON: {error}")
                },
            ),
        },
    }
}

fn status_item(item: &Value) -> StatusItem {
    let Some(item) = item.as_object() else {
        return StatusItem {
            whatsapp_message_id: None,
            status: None,
            verdict: invalid(format!(
                "status item must be an object, found {}",
                json_kind(item)
            )),
        };
    };
    let whatsapp_message_id = item.get("id").and_then(Value::as_str).map(str::to_owned);
    let status = item
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let verdict = match (&whatsapp_message_id, &status) {
        (None, _) => invalid(format!(
            "id must be a string, found {}",
            describe_value(item.get("id"))
        )),
        (Some(id), _) if id.is_empty() => invalid("id is empty".to_owned()),
        (Some(id), _) if id.len() > MAX_MESSAGE_ID_BYTES => {
            invalid(format!("id is longer than {MAX_MESSAGE_ID_BYTES} bytes"))
        }
        (_, None) => invalid(format!(
            "status must be a string, found {}",
            describe_value(item.get("status"))
        )),
        (Some(_), Some(status)) => match EventKind::parse(status) {
            None => Verdict::Ignored,
            Some(kind) => match parse_timestamp(item.get("timestamp")) {
                Err(reason) => invalid(reason),
                Ok(occurred_at) => Verdict::Event {
                    event: Event { kind, occurred_at },
                    failures: if kind == EventKind::Failed {
                        failure_details(item.get("errors"))
                    } else {
                        Vec::new()
                    },
                    pricing: pricing_of(item),
                },
            },
        },
    };
    StatusItem {
        whatsapp_message_id,
        status,
        verdict,
    }
}

/// Meta sends `timestamp` as unix seconds in a string of digits.
fn parse_timestamp(value: Option<&Value>) -> Result<PgTimestamp, String> {
    let text = match value {
        Some(Value::String(text)) => text,
        other => {
            return Err(format!(
                "timestamp must be a string of unix seconds, found {}",
                describe_value(other)
            ))
        }
    };
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "timestamp must be unix seconds (digits only), found \"{}\"",
            truncated(text)
        ));
    }
    let seconds: i64 = text
        .parse()
        .map_err(|_| format!("timestamp \"{text}\" is out of range"))?;
    if seconds > LAST_SECOND_OF_9999 {
        return Err(format!(
            "timestamp \"{text}\" is out of range (after year 9999)"
        ));
    }
    Ok((seconds - POSTGRES_EPOCH_UNIX_SECONDS) * 1_000_000)
}

fn failure_details(errors: Option<&Value>) -> Vec<FailureDetail> {
    let Some(Value::Array(errors)) = errors else {
        return Vec::new();
    };
    errors
        .iter()
        .filter_map(Value::as_object)
        .map(|error| FailureDetail {
            code: error
                .get("code")
                .and_then(Value::as_i64)
                .and_then(|code| i32::try_from(code).ok()),
            title: error
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_owned),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned),
            details: error
                .get("error_data")
                .and_then(|data| data.get("details"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
        .filter(|detail| detail.code.is_some() || detail.title.is_some())
        .collect()
}

fn invalid(reason: String) -> Verdict {
    Verdict::Invalid { reason }
}

fn object<'a>(raw: &'a RawValue, place: &str) -> Result<RawObject<'a>, PayloadError> {
    match raw_kind(raw) {
        "an object" => parse_object(raw),
        kind => Err(payload_error(format!(
            "{place} must be an object, found {kind}"
        ))),
    }
}

fn array_field<'a>(
    parent: &RawObject<'a>,
    field: &str,
    place: &str,
) -> Result<Vec<&'a RawValue>, PayloadError> {
    match parent.get(field) {
        Some(raw) if raw_kind(raw) == "an array" => parse_array(raw),
        other => Err(payload_error(format!(
            "{place} must have an array \"{field}\", found {}",
            describe(other.copied())
        ))),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn describe(value: Option<&RawValue>) -> String {
    match value {
        None => "nothing".to_owned(),
        Some(raw) => match raw_string(raw) {
            Some(text) => format!("\"{}\"", truncated(&text)),
            None => raw_kind(raw).to_owned(),
        },
    }
}

fn describe_value(value: Option<&Value>) -> String {
    match value {
        None => "nothing".to_owned(),
        Some(Value::String(text)) => format!("\"{}\"", truncated(text)),
        Some(other) => json_kind(other).to_owned(),
    }
}

/// Keeps error messages short when a body carries huge strings.
fn truncated(text: &str) -> String {
    const LIMIT: usize = 64;
    match text.char_indices().nth(LIMIT) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}...", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/whatsapp/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn unix_to_pg(seconds: i64) -> PgTimestamp {
        (seconds - POSTGRES_EPOCH_UNIX_SECONDS) * 1_000_000
    }

    #[test]
    fn sent_with_pricing_is_one_sent_event() {
        let items = parse_webhook(&fixture("sent_with_pricing.json")).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].whatsapp_message_id.as_deref(),
            Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=")
        );
        assert_eq!(
            items[0].verdict,
            Verdict::Event {
                event: Event {
                    kind: EventKind::Sent,
                    occurred_at: unix_to_pg(1750030073)
                },
                failures: vec![],
                pricing: Some(Pricing {
                    pricing_model: Some("PMP".to_owned()),
                    category: Some("marketing".to_owned()),
                    pricing_type: Some("regular".to_owned()),
                    billable: Some(true),
                }),
            }
        );
    }

    #[test]
    fn failed_status_keeps_its_error_details() {
        let items = parse_webhook(&fixture("failed_131049.json")).unwrap();
        let Verdict::Event {
            event,
            failures,
            pricing: None,
        } = &items[0].verdict
        else {
            panic!("{items:?}")
        };
        assert_eq!(event.kind, EventKind::Failed);
        assert_eq!(event.occurred_at, unix_to_pg(1751142888));
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].code, Some(131049));
        assert_eq!(
            failures[0].title.as_deref(),
            Some("This message was not delivered to maintain healthy ecosystem engagement.")
        );
        assert!(failures[0]
            .details
            .as_deref()
            .unwrap()
            .starts_with("In order to maintain"));
    }

    #[test]
    fn mixed_batch_keeps_order_ignores_calls_and_untracked_statuses() {
        let items = parse_webhook(&fixture("mixed_batch.json")).unwrap();
        let summary: Vec<(&str, &str, &str)> = items
            .iter()
            .map(|item| {
                let verdict = match item.verdict {
                    Verdict::Event { .. } => "event",
                    Verdict::Ignored => "ignored",
                    Verdict::Invalid { .. } => "invalid",
                };
                (
                    item.whatsapp_message_id.as_deref().unwrap(),
                    item.status.as_deref().unwrap(),
                    verdict,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("wamid.A1", "read", "event"),
                ("wamid.A1", "delivered", "event"),
                ("wamid.A2", "delivered", "event"),
                ("wamid.A2", "delivered", "event"),
                ("wamid.A3", "played", "event"),
                ("wamid.A4", "warning", "ignored"),
                ("wamid.UNKNOWN", "sent", "event"),
            ]
        );
    }

    #[test]
    fn read_fixture_is_a_read_event() {
        let items = parse_webhook(&fixture("read.json")).unwrap();
        assert!(matches!(
            items[0].verdict,
            Verdict::Event {
                event: Event {
                    kind: EventKind::Read,
                    ..
                },
                ..
            }
        ));
    }

    fn body_with_statuses(statuses: &str) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"statuses":{statuses}}}}}]}}]}}"#
        )
    }

    fn only_verdict(statuses: &str) -> Verdict {
        let items = parse_webhook(body_with_statuses(statuses).as_bytes()).unwrap();
        assert_eq!(items.len(), 1);
        items.into_iter().next().unwrap().verdict
    }

    #[test]
    fn bad_items_are_invalid_not_errors() {
        for statuses in [
            r#"[{"status":"sent","timestamp":"1"}]"#,
            r#"[{"id":"","status":"sent","timestamp":"1"}]"#,
            r#"[{"id":42,"status":"sent","timestamp":"1"}]"#,
            r#"[{"id":"w","timestamp":"1"}]"#,
            r#"[{"id":"w","status":7,"timestamp":"1"}]"#,
            r#"[{"id":"w","status":"sent"}]"#,
            r#"[{"id":"w","status":"sent","timestamp":1750030073}]"#,
            r#"[{"id":"w","status":"sent","timestamp":"-5"}]"#,
            r#"[{"id":"w","status":"sent","timestamp":"17e8"}]"#,
            r#"[{"id":"w","status":"sent","timestamp":" 1"}]"#,
            r#"[{"id":"w","status":"sent","timestamp":"99999999999999999999"}]"#,
            r#"[{"id":"w","status":"sent","timestamp":"999999999999"}]"#,
            r#"["not an object"]"#,
        ] {
            assert!(
                matches!(only_verdict(statuses), Verdict::Invalid { .. }),
                "{statuses} should be invalid"
            );
        }
    }

    #[test]
    fn untracked_statuses_are_ignored() {
        for status in ["deleted", "warning", "RINGING", "Delivered", "pending"] {
            let statuses = format!(r#"[{{"id":"w","status":"{status}","timestamp":"1"}}]"#);
            assert_eq!(only_verdict(&statuses), Verdict::Ignored, "{status}");
        }
    }

    #[test]
    fn epoch_and_far_future_timestamps_convert_exactly() {
        let verdict = only_verdict(r#"[{"id":"w","status":"sent","timestamp":"0"}]"#);
        let Verdict::Event { event, .. } = verdict else {
            panic!()
        };
        assert_eq!(event.occurred_at, -POSTGRES_EPOCH_UNIX_SECONDS * 1_000_000);
        let verdict = only_verdict(r#"[{"id":"w","status":"sent","timestamp":"253402300799"}]"#);
        assert!(
            matches!(verdict, Verdict::Event { .. }),
            "9999-12-31 is accepted"
        );
    }

    #[test]
    fn bodies_that_are_not_webhooks_are_errors() {
        for body in [
            "[]",
            "\"text\"",
            "42",
            "not json",
            r#"{"entry":[]}"#,
            r#"{"object":"page","entry":[]}"#,
            r#"{"object":"whatsapp_business_account"}"#,
            r#"{"object":"whatsapp_business_account","entry":{}}"#,
            r#"{"object":"whatsapp_business_account","entry":[7]}"#,
            r#"{"object":"whatsapp_business_account","entry":[{"changes":"x"}]}"#,
            r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{}}]}]}"#,
            r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":[]}]}]}"#,
            r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":{}}}]}]}"#,
        ] {
            assert!(
                parse_webhook(body.as_bytes()).is_err(),
                "{body} should be rejected"
            );
        }
        let error = parse_webhook(br#"{"object":"page","entry":[]}"#).unwrap_err();
        assert!(
            error.message.contains("whatsapp_business_account"),
            "{error}"
        );
    }

    #[test]
    fn messages_without_statuses_and_other_fields_yield_nothing() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"changes":[
            {"field":"messages","value":{"messages":[{"id":"in.1"}]}},
            {"field":"calls","value":{"statuses":[{"id":"c","status":"sent","timestamp":"1"}]}}]}]}"#;
        assert_eq!(parse_webhook(body.as_bytes()).unwrap(), vec![]);
    }

    #[test]
    fn deep_nesting_and_huge_strings_do_not_panic() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_webhook(deep.as_bytes()).is_err());
        let huge = "x".repeat(1 << 20);
        let verdict = only_verdict(&format!(
            r#"[{{"id":"w","status":"sent","timestamp":"{huge}"}}]"#
        ));
        let Verdict::Invalid { reason } = verdict else {
            panic!()
        };
        assert!(
            reason.len() < 200,
            "reason is truncated: {} bytes",
            reason.len()
        );
        let long_id = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{{"field":"messages","value":{{"statuses":[{{"id":"{}","status":"read","timestamp":"1750030200"}}]}}}}]}}]}}"#,
            "w".repeat(MAX_MESSAGE_ID_BYTES + 1)
        );
        let items = parse_webhook(long_id.as_bytes()).unwrap();
        assert!(
            matches!(&items[0].verdict, Verdict::Invalid { reason } if reason.contains("longer than"))
        );
    }

    #[test]
    fn nesting_decides_only_the_item_it_is_in() {
        let deep = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{{"field":"messages","value":{{
                "contacts":{deep},
                "statuses":[{{"id":"a","status":"sent","timestamp":"1750030100","extra":{deep}}},
                            {{"id":"b","status":"read","timestamp":"1750030100"}}]}}}}]}}]}}"#
        );
        let items = parse_webhook(body.as_bytes()).unwrap();
        assert_eq!(items.len(), 2);
        assert!(
            matches!(&items[0].verdict, Verdict::Invalid { reason } if reason.contains("deeper")),
            "{:?}",
            items[0]
        );
        assert!(matches!(items[1].verdict, Verdict::Event { .. }));
    }

    #[test]
    fn more_items_than_the_limit_is_a_limit_error() {
        let statuses = vec!["{}"; MAX_STATUS_ITEMS + 1].join(",");
        let error =
            parse_webhook(body_with_statuses(&format!("[{statuses}]")).as_bytes()).unwrap_err();
        assert!(error.too_large, "{error}");
    }

    /// Every real-world body (tests/fixtures/realworld, as other projects and Meta's docs wrote
    /// them) gives the status items its sources read from it, in order, with their times, error
    /// codes and pricing; untracked statuses are ignored and a missing timestamp is invalid.
    #[test]
    fn real_world_bodies_parse_as_their_sources_read_them() {
        let dir = format!("{}/tests/fixtures/realworld", env!("CARGO_MANIFEST_DIR"));
        let expected: Vec<Value> =
            serde_json::from_slice(&std::fs::read(format!("{dir}/expected.json")).unwrap())
                .unwrap();
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".json") && name != "expected.json")
            .collect();
        files.sort();
        assert!(files.len() >= 45, "{} fixture files", files.len());
        for file in &files {
            let items = parse_webhook(&std::fs::read(format!("{dir}/{file}")).unwrap())
                .unwrap_or_else(|error| panic!("{file}: {error}"));
            let wanted: Vec<&Value> = expected
                .iter()
                .filter(|e| e["file"] == file.as_str())
                .collect();
            assert_eq!(items.len(), wanted.len(), "{file}: {items:?}");
            for (item, want) in items.iter().zip(wanted) {
                assert_eq!(
                    item.whatsapp_message_id.as_deref(),
                    want["id"].as_str(),
                    "{file}"
                );
                assert_eq!(item.status.as_deref(), want["status"].as_str(), "{file}");
                let tracked = EventKind::parse(want["status"].as_str().unwrap()).is_some();
                match (&item.verdict, tracked, want["timestamp_unix"].as_i64()) {
                    (
                        Verdict::Event {
                            event,
                            failures,
                            pricing,
                        },
                        true,
                        Some(unix),
                    ) => {
                        assert_eq!(event.occurred_at, unix_to_pg(unix), "{file}");
                        let text = |field: &str| want[field].as_str().map(str::to_owned);
                        let want_pricing = Pricing {
                            pricing_model: text("pricing_model"),
                            category: text("pricing_category"),
                            pricing_type: text("pricing_type"),
                            billable: want["billable"].as_bool(),
                        };
                        assert_eq!(pricing.clone().unwrap_or_default(), want_pricing, "{file}");
                        let codes: Vec<i64> = failures
                            .iter()
                            .filter_map(|f| f.code.map(i64::from))
                            .collect();
                        let want_codes: Vec<i64> = if event.kind == EventKind::Failed {
                            want["error_codes"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .filter_map(Value::as_i64)
                                .collect()
                        } else {
                            Vec::new()
                        };
                        assert_eq!(codes, want_codes, "{file}");
                    }
                    (Verdict::Invalid { .. }, true, None) | (Verdict::Ignored, false, _) => {}
                    other => panic!("{file}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn ten_thousand_statuses_parse() {
        let statuses: Vec<String> = (0..10_000)
            .map(|i| {
                format!(r#"{{"id":"wamid.{i}","status":"delivered","timestamp":"1750030100"}}"#)
            })
            .collect();
        let items =
            parse_webhook(body_with_statuses(&format!("[{}]", statuses.join(","))).as_bytes())
                .unwrap();
        assert_eq!(items.len(), 10_000);
        assert_eq!(
            items[9_999].whatsapp_message_id.as_deref(),
            Some("wamid.9999")
        );
    }
}
