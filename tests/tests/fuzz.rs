//! Property-based fuzzing (proptest, stable Rust, bounded case counts) of what
//! outsiders hand us: HubSpot's webhook bodies, board's change events, board's
//! JWTs and the config API's JSON bodies. For any input: no panic, no 5xx, and
//! refused input changes nothing.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use board_hubspot::app::Services;
use board_hubspot::app::jobs::QueueMessage;
use board_hubspot::config::Settings;
use board_hubspot::domain::hubspot_event::WebhookEvent;
use hmac::{Hmac, Mac};
use jsonwebtoken::{EncodingKey, Header, encode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use tests::stack::{Run, jwt};

const PUBLIC_BASE: &str = "https://hooks.example.jp";
const SECRET: &[u8] = b"sandbox-client-secret";

/// Keys HubSpot's and board's payloads use, so generated objects reach past
/// the first "missing field" check into the parsers' deeper branches.
const KEYS: &[&str] = &[
    "eventId",
    "subscriptionId",
    "portalId",
    "appId",
    "occurredAt",
    "subscriptionType",
    "attemptNumber",
    "objectId",
    "objectTypeId",
    "changeSource",
    "propertyName",
    "propertyValue",
    "changeFlag",
    "fromObjectId",
    "toObjectId",
    "fromObjectTypeId",
    "toObjectTypeId",
    "associationType",
    "associationTypeId",
    "associationCategory",
    "associationRemoved",
    "isPrimaryAssociation",
    "primaryObjectId",
    "mergedObjectIds",
    "sourceId",
    "event_id",
    "account_id",
    "object_type",
    "action",
    "occurred_at",
    "version",
    "object",
    "job",
    "id",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(0),
            Just(-1),
            Just(1),
            Just(1_000_001)
        ]
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("object.creation"),
            Just("object.propertyChange"),
            Just("object.associationChange"),
            Just("object.deletion"),
            Just("object.merge"),
            Just("object.restore"),
            Just("deal.propertyChange"),
            Just("company.creation"),
            Just("contact.deletion"),
            Just("0-1"),
            Just("0-2"),
            Just("0-3"),
            Just("DEAL_TO_COMPANY"),
            Just("2026-12-07T12:00:00+09:00"),
            Just("project"),
            Just("customer"),
            Just("updated"),
            Just("deleted"),
            Just("9000001"),
            Just("-5"),
            Just("1e400"),
        ]
        .prop_map(Value::from),
    ]
}

/// JSON values biased toward the shapes our parsers read: objects whose keys
/// are the payloads' own, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 40, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(KEYS), inner, 0..10).prop_map(|m| {
                Value::Object(
                    m.into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<String, Value>>(),
                )
            }),
        ]
    })
}

/// A webhook event: every known key present with a mostly valid value, then
/// some keys dropped or replaced by arbitrary values.
fn webhook_event() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(&[
            "object.creation",
            "object.propertyChange",
            "object.associationChange",
            "object.deletion",
            "object.merge",
            "object.restore",
            "deal.propertyChange",
            "deal.creation",
            "company.deletion",
            "contact.associationChange",
        ][..]),
        prop::sample::select(&["0-1", "0-2", "0-3", "0-5", "2-123"][..]),
        any::<u32>(),
        prop::collection::btree_map(prop::sample::select(KEYS), json_value(), 0..4),
        prop::collection::vec(prop::sample::select(KEYS), 0..3),
    )
        .prop_map(|(kind, type_id, id, replace, drop)| {
            let mut event = json!({
                "eventId": id, "subscriptionId": 1, "portalId": 1_000_001, "appId": 1,
                "occurredAt": 1_796_600_000_000_i64, "subscriptionType": kind, "attemptNumber": 0,
                "objectId": id, "objectTypeId": type_id, "changeSource": "CRM_UI",
                "propertyName": "dealname", "propertyValue": "x",
                "fromObjectId": id, "toObjectId": 5, "fromObjectTypeId": "0-3", "toObjectTypeId": type_id,
                "associationType": "DEAL_TO_COMPANY", "associationTypeId": 5, "associationRemoved": false,
            });
            let object = event.as_object_mut().unwrap();
            for (k, v) in replace {
                object.insert(k.to_owned(), v);
            }
            for k in drop {
                object.remove(k);
            }
            event
        })
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn the_webhook_event_parser_never_panics() {
    runner(3000)
        .run(&prop_oneof![json_value(), webhook_event()], |value| {
            let _ = WebhookEvent::parse(&value);
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_queue_message_parser_never_panics_and_takes_only_whole_board_events() {
    let board_event = (
        prop::collection::btree_map(prop::sample::select(KEYS), json_value(), 0..6),
        prop::collection::vec(prop::sample::select(KEYS), 0..3),
    )
        .prop_map(|(replace, drop)| {
            let mut event = json!({
                "event_id": "e-1", "account_id": "acct-a", "object_type": "project", "action": "updated",
                "occurred_at": "2026-12-07T12:00:00+09:00", "version": 3, "object": {"id": 101},
            });
            let object = event.as_object_mut().unwrap();
            for (k, v) in replace {
                object.insert(k.to_owned(), v);
            }
            for k in drop {
                object.remove(k);
            }
            event.to_string()
        });
    let raw = prop_oneof![
        ".{0,64}",
        json_value().prop_map(|v| v.to_string()),
        board_event
    ];
    runner(3000)
        .run(&raw, |body| {
            if let Ok(QueueMessage::BoardEvent(event)) = QueueMessage::parse(&body) {
                // Taken: every field the worker relies on is there and sane.
                let parsed: Value = serde_json::from_str(&body).unwrap();
                prop_assert!(parsed["event_id"].is_string(), "{body}");
                prop_assert!(parsed["object"].is_object(), "{body}");
                prop_assert!(
                    time::OffsetDateTime::parse(
                        parsed["occurred_at"].as_str().unwrap_or_default(),
                        &time::format_description::well_known::Rfc3339
                    ) == Ok(event.occurred_at),
                    "{body}"
                );
                prop_assert!(event.object.is_object(), "{body}");
                prop_assert!(event.target.id > 0, "{body}");
            }
            Ok(())
        })
        .unwrap();
}

fn in_memory() -> (
    Services,
    board_hubspot::adapters::queue::memory::MemoryQueue,
) {
    let settings = Settings::from_lookup(
        |name| (name == "PUBLIC_BASE_URL").then(|| PUBLIC_BASE.to_owned()),
        true,
    )
    .unwrap();
    let (services, queue) = Services::in_memory(settings);
    (services, queue)
}

fn sign_v3(body: &[u8], timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(format!("POST{PUBLIC_BASE}/hubspot/webhooks").as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn webhook_request(body: Vec<u8>, headers: &[(&str, String)]) -> lambda_http::Request {
    let mut request = lambda_http::http::Request::builder()
        .method("POST")
        .uri("/hubspot/webhooks");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.body(lambda_http::Body::from(body)).unwrap()
}

#[test]
fn signed_webhook_deliveries_of_any_shape_never_answer_5xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (services, queue) = in_memory();
    let services = Arc::new(services);
    let body = prop_oneof![
        prop::collection::vec(prop_oneof![webhook_event(), json_value()], 0..8)
            .prop_map(|events| serde_json::to_vec(&events).unwrap()),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        prop::collection::vec(any::<u8>(), 0..256),
    ];
    runner(400)
        .run(&body, |body| {
            let timestamp = ((time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
                as i64)
                .to_string();
            let signature = sign_v3(&body, &timestamp);
            let events = serde_json::from_slice::<Vec<Value>>(&body)
                .ok()
                .map(|e| e.len());
            let before = queue.depth();
            let response = rt
                .block_on(webhook::handle(
                    &services,
                    webhook_request(
                        body,
                        &[
                            ("x-hubspot-signature-v3", signature),
                            ("x-hubspot-request-timestamp", timestamp),
                        ],
                    ),
                ))
                .unwrap();
            let status = response.status().as_u16();
            prop_assert!(status < 500, "{status}");
            match events {
                // A delivery none of whose events can be read is refused whole.
                Some(count) if status == 400 => {
                    prop_assert!(count > 0);
                    prop_assert_eq!(queue.depth(), before);
                }
                Some(count) => {
                    prop_assert_eq!(status, 200);
                    let received: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
                    let counted: u64 = ["accepted", "unknown", "malformed", "stale"]
                        .iter()
                        .map(|k| received[k].as_u64().unwrap())
                        .sum();
                    prop_assert_eq!(counted, count as u64, "{}", received);
                    if received["accepted"] == 0 {
                        prop_assert_eq!(queue.depth(), before, "nothing taken, nothing queued");
                    }
                }
                None => {
                    prop_assert_eq!(status, 400);
                    prop_assert_eq!(queue.depth(), before);
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn webhook_deliveries_without_a_valid_signature_are_401_and_queue_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (services, queue) = in_memory();
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let headers = (
        prop::option::of(".{0,60}"),
        prop::option::of(prop_oneof![
            any::<i64>().prop_map(|t| t.to_string()),
            Just(i64::MIN.to_string()),
            Just(now.to_string()),
            ".{0,20}"
        ]),
        prop::option::of(".{0,60}"),
        prop::option::of(prop_oneof![
            Just("v1".to_owned()),
            Just("v2".to_owned()),
            ".{0,4}"
        ]),
    );
    let events = prop::collection::vec(webhook_event(), 1..4)
        .prop_map(|events| serde_json::to_vec(&events).unwrap());
    runner(300)
        .run(
            &(events, headers),
            |(body, (v3, timestamp, v1, version))| {
                let mut list = Vec::new();
                for (name, value) in [
                    ("x-hubspot-signature-v3", v3),
                    ("x-hubspot-request-timestamp", timestamp),
                    ("x-hubspot-signature", v1),
                    ("x-hubspot-signature-version", version),
                ] {
                    if let Some(value) = value
                        && lambda_http::http::HeaderValue::from_str(&value).is_ok()
                    {
                        list.push((name, value));
                    }
                }
                let response = rt
                    .block_on(webhook::handle(&services, webhook_request(body, &list)))
                    .unwrap();
                prop_assert_eq!(response.status().as_u16(), 401);
                prop_assert_eq!(queue.depth(), 0);
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn the_jwt_verifier_refuses_anything_not_signed_by_board_and_never_panics() {
    let settings = Settings::from_lookup(|_| None, true).unwrap();
    let verifier = config_api::auth::Verifier::from_settings(&settings).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    // Arbitrary text, arbitrary three-part tokens, and board-shaped claims
    // signed with another key or with `alg: none`.
    let forged = prop_oneof![
        ".{0,80}".prop_map(|s| format!("Bearer {s}")),
        (json_value(), json_value(), ".{0,20}").prop_map(move |(h, c, s)| format!(
            "Bearer {}.{}.{s}",
            b64(&h),
            b64(&c)
        )),
        json_value().prop_map(move |c| {
            let header = json!({"alg": "none", "typ": "JWT"});
            format!("Bearer {}.{}.", b64(&header), b64(&c))
        }),
        json_value().prop_map(|c| {
            let token = encode(
                &Header::default(),
                &c,
                &EncodingKey::from_secret(b"not-board"),
            );
            format!("Bearer {}", token.unwrap_or_default())
        }),
    ];
    runner(2000)
        .run(&forged, |header| {
            prop_assert!(verifier.verify(Some(&header)).is_err(), "{header}");
            Ok(())
        })
        .unwrap();

    // Signed with board's key, claims varied: accepted only when every claim holds.
    let claims = (
        prop::option::of(prop_oneof![Just("board".to_owned()), ".{0,8}"]),
        prop::option::of(prop_oneof![Just("board-hubspot".to_owned()), ".{0,8}"]),
        prop::option::of(-7200i64..7200),
        prop::option::of(-7200i64..7200),
        prop::option::of(prop_oneof![Just("acct-a".to_owned()), ".{0,70}"]),
        prop::option::of(prop_oneof![
            Just("admin".to_owned()),
            Just("staff".to_owned()),
            Just("custom".to_owned()),
            ".{0,8}"
        ]),
    );
    runner(2000)
        .run(&claims, |(iss, aud, exp, nbf, account, role)| {
            let mut c = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    c.insert(k.to_owned(), v);
                }
            };
            put("iss", iss.clone().map(Value::from));
            put("aud", aud.clone().map(Value::from));
            put("exp", exp.map(|e| Value::from(now + e)));
            put("nbf", nbf.map(|n| Value::from(now + n)));
            put("account_id", account.clone().map(Value::from));
            put("role", role.clone().map(Value::from));
            put("user_id", Some(Value::from(1)));
            let token = encode(
                &Header::default(),
                &Value::Object(c),
                &EncodingKey::from_secret(b"dev-only-secret"),
            )
            .unwrap();
            if let Ok(caller) = verifier.verify(Some(&format!("Bearer {token}"))) {
                prop_assert_eq!(iss.as_deref(), Some("board"));
                prop_assert_eq!(aud.as_deref(), Some("board-hubspot"));
                // The verifier allows 30 s of clock skew.
                prop_assert!(exp.is_some_and(|e| e > -30), "{exp:?}");
                prop_assert!(nbf.is_none_or(|n| n <= 30), "{nbf:?}");
                prop_assert_eq!(Some(caller.account_id.as_str()), account.as_deref());
                prop_assert!(
                    matches!(role.as_deref(), Some("admin" | "staff")),
                    "{role:?}"
                );
            }
            Ok(())
        })
        .unwrap();
}

/// The config API's bodies over HTTP (the local stack, real emulators): any
/// JSON, or bytes that are not JSON, to every operation that reads a body,
/// as an administrator of a connected account. Never 5xx; when refused, the
/// account's configuration is untouched.
#[test]
fn config_api_bodies_of_any_shape_never_answer_5xx_and_refusals_change_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let run = rt.block_on(async {
        let run = Run::start().await;
        run.http
            .post(format!("{}/_sandbox/hubspot/_control/settings", run.base))
            .json(&json!({"limit_per_ten_seconds": 100_000}))
            .send()
            .await
            .unwrap();
        run.connect("acct-a", Some("8000001")).await;
        run
    });
    let token = jwt("acct-a", "admin", 1);
    let routes: &[(&str, &str)] = &[
        ("PUT", "/v1/hubspot/pipelines/default/status-mapping"),
        ("PUT", "/v1/hubspot/filter-rules"),
        ("PUT", "/v1/hubspot/account-label"),
        ("PUT", "/v1/hubspot/owner-mapping"),
        ("PUT", "/v1/hubspot/options"),
        ("POST", "/v1/hubspot/connection/confirm"),
        ("POST", "/v1/hubspot/drafts/9000001/register"),
        ("PUT", "/v1/hubspot/links/project/101"),
    ];
    let config = |run: &Run| {
        rt.block_on(async {
            let mut state = Vec::new();
            for path in [
                "/v1/hubspot/connection",
                "/v1/hubspot/filter-rules",
                "/v1/hubspot/account-label",
                "/v1/hubspot/options",
            ] {
                let (status, mut body) = run.api_as(reqwest::Method::GET, path, &token, None).await;
                assert_eq!(status, 200, "{path} {body}");
                if let Some(o) = body.as_object_mut() {
                    o.remove("last_webhook_at");
                    o.remove("last_sync_at");
                    o.remove("hubspot_paused");
                }
                state.push(body);
            }
            state
        })
    };
    let settings_keys = &[
        "stages",
        "rules",
        "conditions",
        "field",
        "values",
        "label",
        "overrides",
        "reset",
        "amount_basis",
        "two_way_customer_names",
        "confirmation",
        "client_id",
        "user_id",
        "invoice_timing_kbn",
        "invoice_date",
        "sync_enabled",
        "contact_ids",
        "company_id",
        "contractsent",
        "team",
        "owner",
        "filter_key",
        "8000001",
    ];
    let body_value = leaf().prop_recursive(3, 30, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(settings_keys), inner, 0..5).prop_map(
                |m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            ),
        ]
    });
    let body = prop_oneof![
        body_value.prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
    ];
    for (method, path) in routes {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        runner(40)
            .run(&body, |bytes| {
                let before = config(&run);
                let (status, answer) = rt.block_on(async {
                    let response = run
                        .http
                        .request(method.clone(), format!("{}{path}", run.base))
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(bytes.clone())
                        .send()
                        .await
                        .unwrap();
                    let status = response.status().as_u16();
                    (status, response.text().await.unwrap_or_default())
                });
                prop_assert!(status < 500, "{method} {path}: {status} {answer}");
                if !(200..300).contains(&status) {
                    prop_assert_eq!(
                        &before,
                        &config(&run),
                        "{} {} refused yet changed state",
                        method,
                        path
                    );
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    }
    rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        run.stack.shutdown().await;
    });
}
