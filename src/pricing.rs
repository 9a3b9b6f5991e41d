//! Pricing of a status item: what Meta says it charges for the message (`pricing`), read leniently, and the first one per message in a batch.

use crate::status::PgTimestamp;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Longest pricing value kept. Meta's are single words (`PMP`, `marketing`,
/// `free_customer_service`); a longer string is not one of them and is not grouped by.
pub const MAX_PRICING_VALUE_BYTES: usize = 64;

/// A message's `pricing`: `pricing_model` (`CBP` before July 2025, `PMP` since), `category`
/// (marketing, utility, authentication, service, ...), `type` (PMP: regular,
/// free_customer_service, free_entry_point) and `billable`. A field that is missing or not of
/// its JSON type is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pricing {
    pub pricing_model: Option<String>,
    pub category: Option<String>,
    pub pricing_type: Option<String>,
    pub billable: Option<bool>,
}

/// The pricing a status item carries: its `pricing` object or, as Meta's group webhook
/// documentation nests it, `conversation.pricing`. `None` when neither is an object with at
/// least one usable field: such a status says nothing about what the message cost.
pub fn pricing_of(item: &Map<String, Value>) -> Option<Pricing> {
    let nested = item
        .get("conversation")
        .and_then(Value::as_object)
        .and_then(|conversation| conversation.get("pricing"));
    let pricing = match item.get("pricing") {
        Some(Value::Object(pricing)) => pricing,
        _ => nested.and_then(Value::as_object)?,
    };
    let text = |field: &str| {
        pricing
            .get(field)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty() && text.len() <= MAX_PRICING_VALUE_BYTES)
            .map(str::to_owned)
    };
    let found = Pricing {
        pricing_model: text("pricing_model"),
        category: text("category"),
        pricing_type: text("type"),
        billable: pricing.get("billable").and_then(Value::as_bool),
    };
    (found != Pricing::default()).then_some(found)
}

/// The first pricing of each message id among `priced` (in body order), with the time of the
/// status that carried it; ordered by id, the order the rows are inserted in, so that two
/// batches pricing the same ids wait for each other in one order.
pub fn first_per_message<'a>(
    priced: impl IntoIterator<Item = (&'a str, &'a Pricing, PgTimestamp)>,
) -> BTreeMap<&'a str, (&'a Pricing, PgTimestamp)> {
    let mut first = BTreeMap::new();
    for (id, pricing, at) in priced {
        first.entry(id).or_insert((pricing, at));
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn of(item: Value) -> Option<Pricing> {
        pricing_of(item.as_object().unwrap())
    }

    fn priced(model: &str, category: &str, pricing_type: Option<&str>, billable: bool) -> Pricing {
        Pricing {
            pricing_model: Some(model.to_owned()),
            category: Some(category.to_owned()),
            pricing_type: pricing_type.map(str::to_owned),
            billable: Some(billable),
        }
    }

    #[test]
    fn cbp_and_pmp_pricing_are_read_as_sent() {
        assert_eq!(
            of(
                json!({"pricing": {"billable": true, "pricing_model": "CBP", "category": "service"}})
            ),
            Some(priced("CBP", "service", None, true))
        );
        assert_eq!(
            of(
                json!({"pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"}})
            ),
            Some(priced("PMP", "marketing", Some("regular"), true))
        );
        assert_eq!(
            of(
                json!({"pricing": {"billable": false, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}})
            ),
            Some(priced(
                "PMP",
                "service",
                Some("free_customer_service"),
                false
            ))
        );
    }

    #[test]
    fn pricing_nested_in_conversation_is_read_and_the_outer_one_wins() {
        let nested = json!({"conversation": {"id": "c", "pricing": {"billable": "IS_BILLABLE", "pricing_model": "PRICING_MODEL", "category": "CONVERSATION_CATEGORY"}}});
        assert_eq!(
            of(nested),
            Some(Pricing {
                pricing_model: Some("PRICING_MODEL".to_owned()),
                category: Some("CONVERSATION_CATEGORY".to_owned()),
                pricing_type: None,
                billable: None,
            })
        );
        let both = json!({"pricing": {"pricing_model": "PMP", "category": "utility", "billable": true},
                          "conversation": {"pricing": {"pricing_model": "CBP", "category": "service"}}});
        assert_eq!(of(both), Some(priced("PMP", "utility", None, true)));
    }

    #[test]
    fn odd_pricing_is_ignored_field_by_field() {
        for item in [
            json!({}),
            json!({"conversation": {"id": "c", "origin": {"type": "marketing"}}}),
            json!({"pricing": null}),
            json!({"pricing": "PMP"}),
            json!({"pricing": ["PMP", "marketing"]}),
            json!({"pricing": {}}),
            json!({"pricing": {"pricing_model": 7, "category": {"name": "marketing"}, "type": [], "billable": "true"}}),
            json!({"pricing": {"pricing_model": "", "category": "x".repeat(MAX_PRICING_VALUE_BYTES + 1)}}),
            json!({"conversation": "c", "pricing": 1}),
        ] {
            assert_eq!(of(item.clone()), None, "{item}");
        }
        assert_eq!(
            of(json!({"pricing": {"pricing_model": "PMP", "category": 7, "billable": "yes"}})),
            Some(Pricing {
                pricing_model: Some("PMP".to_owned()),
                ..Pricing::default()
            })
        );
        assert_eq!(
            of(json!({"pricing": {"billable": false}})),
            Some(Pricing {
                billable: Some(false),
                ..Pricing::default()
            })
        );
    }

    proptest! {
        /// In any order and with any repeats, each message id gets one pricing, the one of its
        /// first status in body order: a retried or duplicated status never counts twice.
        #[test]
        fn each_message_keeps_the_pricing_of_its_first_status(
            statuses in prop::collection::vec((0..4usize, 0..3usize, 0..100i64), 0..30),
        ) {
            let ids = ["m0", "m1", "m2", "m3"];
            let kinds = [
                priced("CBP", "service", None, true),
                priced("PMP", "marketing", Some("regular"), true),
                priced("PMP", "service", Some("free_customer_service"), false),
            ];
            let first = first_per_message(
                statuses.iter().map(|&(id, kind, at)| (ids[id], &kinds[kind], at)),
            );
            let distinct: std::collections::BTreeSet<&str> =
                statuses.iter().map(|&(id, _, _)| ids[id]).collect();
            prop_assert_eq!(first.keys().copied().collect::<std::collections::BTreeSet<_>>(), distinct);
            for (id, (pricing, at)) in &first {
                let &(_, kind, first_in_body) =
                    statuses.iter().find(|&&(i, _, _)| ids[i] == *id).unwrap();
                prop_assert_eq!(*pricing, &kinds[kind]);
                prop_assert_eq!(*at, first_in_body);
            }
        }
    }
}
