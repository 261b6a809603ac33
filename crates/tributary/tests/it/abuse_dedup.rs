//! Issue 7, item 5 on the running binary: a tenant that may post to a shared source cannot suppress,
//! replace or detect the events of a source it cannot read (ADR 0005: dedup is per source), while
//! duplicates within one source are still one event.

use crate::control::{call, config};
use serde_json::json;
use std::time::Duration;
use tributary_core::EventId;
use tributary_testkit::{ADMIN_KEY, Receiver, TestNode, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_a_tenant_cannot_suppress_replace_or_detect_private_events() {
    let rx = Receiver::start(None, true).await.unwrap();
    let node = TestNode::start(crate::BIN, &config(&rx.url()));
    let (s, _) = call(
        &node,
        "POST",
        "/v1/tenants",
        ADMIN_KEY,
        Some(json!({"name": "mallory"})),
    )
    .await;
    assert_eq!(s, 201);
    let (_, key) = call(&node, "POST", "/v1/tenants/mallory/keys", ADMIN_KEY, None).await;
    let mallory = key["key"].as_str().unwrap().to_owned();

    // Detect: content already in the private source is news to the shared one.
    let secret = json!({"kind": "payroll.paid", "data": {"who": "alice", "amount": 9000}});
    let (s, private) = call(
        &node,
        "POST",
        "/v1/sources/private/events",
        ADMIN_KEY,
        Some(secret.clone()),
    )
    .await;
    assert_eq!((s, &private["accepted"]), (202, &json!(1)));
    let (s, probe) = call(
        &node,
        "POST",
        "/v1/sources/shared/events",
        &mallory,
        Some(secret.clone()),
    )
    .await;
    assert_eq!(s, 202, "{probe}");
    assert_eq!(
        (&probe["accepted"], &probe["duplicates"]),
        (&json!(1), &json!(0)),
        "{probe}"
    );

    // Suppress and replace: mallory posts her own content under the id the next private event will have.
    let future = json!({"kind": "payroll.paid", "data": {"who": "bob", "amount": 7000}});
    let predicted = EventId::of_json_event("payroll.paid", None, &future["data"]).to_hex();
    let forged = json!({"kind": "payroll.paid", "id": predicted, "data": {"who": "mallory", "amount": 1}});
    let (s, _) = call(&node, "POST", "/v1/sources/shared/events", &mallory, Some(forged)).await;
    assert_eq!(s, 202);
    let (s, real) = call(&node, "POST", "/v1/sources/private/events", ADMIN_KEY, Some(future)).await;
    assert_eq!(
        (s, &real["accepted"], &real["ids"][0]),
        (202, &json!(1), &json!(predicted)),
        "{real}"
    );
    // The private event is stored with its own content and delivered.
    let (s, got) = call(
        &node,
        "GET",
        &format!("/v1/events/{predicted}?source=private"),
        ADMIN_KEY,
        None,
    )
    .await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(got["data"]["who"], "bob", "{got}");
    let bob_delivered = |r: &[tributary_testkit::Received]| {
        r.iter()
            .any(|m| m.body.as_ref().is_some_and(|b| b.to_string().contains("\"bob\"")))
    };
    assert!(
        rx.wait_for(Duration::from_secs(20), bob_delivered).await,
        "the private event reached its subscriber"
    );
    // mallory reads only her own copy; the private one does not exist for her.
    let (s, hers) = call(&node, "GET", &format!("/v1/events/{predicted}"), &mallory, None).await;
    assert_eq!((s, hers["data"]["who"].as_str()), (200, Some("mallory")), "{hers}");
    let (s, _) = call(
        &node,
        "GET",
        &format!("/v1/events/{predicted}?source=private"),
        &mallory,
        None,
    )
    .await;
    assert_eq!(s, 404);

    // Within one source, the same content is still one event, observed again.
    let (s, again) = call(&node, "POST", "/v1/sources/private/events", ADMIN_KEY, Some(secret)).await;
    assert_eq!(
        (s, &again["accepted"], &again["duplicates"]),
        (202, &json!(0), &json!(1)),
        "{again}"
    );
    let id = private["ids"][0].as_str().unwrap();
    let (_, ev) = call(
        &node,
        "GET",
        &format!("/v1/events/{id}?source=private"),
        ADMIN_KEY,
        None,
    )
    .await;
    assert_eq!(ev["observations"][0]["count"], 2, "{ev}");
    assert!(wait_until(Duration::from_secs(20), || async { rx.received().len() >= 4 }).await);
}
