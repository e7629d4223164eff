//! The scenarios: each sets the stack up, drives it, and returns its figures.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::harness::{ACCOUNT, Harness, Setup, now_ms, peak_rss_mb, percentile, round};

pub type Figures = Map<String, Value>;

/// HubSpot's limit per app and portal, and the background share of it (SPEC §11).
const HUBSPOT_PER_10S: f64 = 110.0;
const BOARD_PER_S: f64 = 3.0;
const BACKGROUND_SHARE: f64 = 0.8;
const BATCH: f64 = 100.0;

fn count_429(calls: &[Value]) -> usize {
    calls.iter().filter(|r| r["status"] == 429).count()
}

/// `bulk-hubspot`: N qualifying, unlinked deals created in HubSpot at once
/// (each with a company): until every one is an open draft.
pub async fn bulk_hubspot(n: usize) -> anyhow::Result<Figures> {
    let h = Harness::start(Setup::default()).await?;
    h.run.connect(ACCOUNT, None).await;
    let companies: Vec<u64> = {
        let inputs: Vec<Value> = (0..n.div_ceil(10))
            .map(|i| json!({"properties": {"name": format!("株式会社負荷{i}")}}))
            .collect();
        let mut ids = Vec::new();
        for chunk in inputs.chunks(100) {
            let created = h
                .hubspot(
                    reqwest::Method::POST,
                    "/crm/objects/2026-03/companies/batch/create",
                    Some(json!({"inputs": chunk})),
                )
                .await?;
            ids.extend(
                created["results"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|r| r["id"].as_str().and_then(|i| i.parse::<u64>().ok())),
            );
        }
        ids
    };
    h.settle().await?;
    h.clear_logs().await?;
    crate::cost::reset();
    let started = Instant::now();
    let inputs: Vec<Value> = (0..n)
        .map(|i| {
            json!({"properties": {"dealname": format!("一括商談{i}"), "pipeline": "default",
                                   "dealstage": "contractsent", "amount": "100000"},
                   "associations": [{"to": {"id": companies[i % companies.len()].to_string()},
                                     "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]})
        })
        .collect();
    h.create_deals(inputs).await?;
    let account = h.account();
    let deadline = started + Duration::from_secs(240);
    let drafts = loop {
        let mut count = 0;
        let mut cursor = None;
        loop {
            let page = h
                .services()
                .drafts
                .drafts(
                    &account,
                    board_hubspot::domain::draft::DraftState::Open,
                    200,
                    cursor.as_ref(),
                )
                .await?;
            count += page.items.len();
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        if count >= n || Instant::now() > deadline {
            break count;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let calls = h.hubspot_calls().await?;
    let mut f = Figures::new();
    f.insert("records".into(), json!(drafts));
    f.insert("seconds".into(), json!(round(seconds, 2)));
    f.insert("hubspot_calls".into(), json!(calls.len()));
    f.insert(
        "hubspot_calls_per_record".into(),
        json!(round(calls.len() as f64 / drafts.max(1) as f64, 4)),
    );
    f.insert("rate_limit_429s".into(), json!(count_429(&calls)));
    f.insert("calls_by_path".into(), json!(by_path(&calls)));
    h.stop().await;
    Ok(f)
}

/// Calls grouped by method and path (ids folded), to see where they go.
fn by_path(calls: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for call in calls {
        let path: String = call["path"]
            .as_str()
            .unwrap_or_default()
            .split('/')
            .map(|s| {
                if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() {
                    "{id}"
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        *out.entry(format!(
            "{} {path}",
            call["method"].as_str().unwrap_or_default()
        ))
        .or_default() += 1;
    }
    out
}

/// `bulk-board`: N linked projects renamed in board at once: until every deal
/// write is acknowledged.
pub async fn bulk_board(n: usize) -> anyhow::Result<Figures> {
    let h = Harness::start(Setup::default()).await?;
    h.run.connect(ACCOUNT, None).await;
    let pairs = h.seeded_pairs(n, "一括案件").await?;
    h.clear_logs().await?;
    crate::cost::reset();
    let started_ms = now_ms();
    let updates: Vec<Value> = pairs
        .iter()
        .enumerate()
        .map(|(i, (_, project))| {
            json!({"resource": "projects", "id": project, "fields": {"name": format!("一括案件{i}(改)")}})
        })
        .collect();
    h.control(
        "board",
        "/_control/bulk",
        Some(json!({"account_id": ACCOUNT, "updates": updates})),
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(240);
    let (written, last_ack) = loop {
        let calls = h.hubspot_calls().await?;
        let acked: Vec<&Value> = calls
            .iter()
            .filter(|r| {
                r["status"] == 200
                    && r["path"]
                        .as_str()
                        .unwrap_or_default()
                        .ends_with("/deals/batch/update")
            })
            .collect();
        let written: u64 = acked
            .iter()
            .map(|r| r["inputs"].as_u64().unwrap_or(0))
            .sum();
        let last = acked.iter().filter_map(|r| r["at_ms"].as_i64()).max();
        if written as usize >= n || Instant::now() > deadline {
            break (written, last.unwrap_or(started_ms));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    h.drain(Duration::from_secs(60)).await?;
    let seconds = ((last_ack - started_ms) as f64 / 1000.0).max(0.001);
    let calls = h.hubspot_calls().await?;
    let ceiling = BACKGROUND_SHARE * HUBSPOT_PER_10S / 10.0 * BATCH;
    let mut f = Figures::new();
    f.insert("records".into(), json!(written));
    f.insert("seconds".into(), json!(round(seconds, 3)));
    f.insert("hubspot_calls".into(), json!(calls.len()));
    f.insert(
        "hubspot_calls_per_record".into(),
        json!(round(calls.len() as f64 / written.max(1) as f64, 4)),
    );
    f.insert(
        "throughput_vs_ceiling".into(),
        json!(round(written as f64 / seconds / ceiling, 3)),
    );
    f.insert("ceiling_records_per_s".into(), json!(round(ceiling, 1)));
    f.insert("rate_limit_429s".into(), json!(count_429(&calls)));
    f.insert("calls_by_path".into(), json!(by_path(&calls)));
    h.stop().await;
    Ok(f)
}

/// `board-ceiling`: 60 linked deals each changed 5 times in HubSpot within a
/// few seconds: how many board writes, at what pace.
pub async fn board_ceiling(objects: usize, changes: usize) -> anyhow::Result<Figures> {
    let h = Harness::start(Setup::default()).await?;
    h.run.connect(ACCOUNT, None).await;
    let pairs = h.seeded_pairs(objects, "上限案件").await?;
    h.clear_logs().await?;
    crate::cost::reset();
    let started_ms = now_ms();
    for round_no in 0..changes {
        let inputs: Vec<Value> = pairs
            .iter()
            .enumerate()
            .map(|(i, (deal, _))| {
                json!({"id": deal.to_string(), "properties": {"dealname": format!("上限案件{i}-{round_no}")}})
            })
            .collect();
        for chunk in inputs.chunks(100) {
            h.hubspot(
                reqwest::Method::POST,
                "/crm/objects/2026-03/deals/batch/update",
                Some(json!({"inputs": chunk})),
            )
            .await?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let last = changes - 1;
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut pending: Vec<(usize, u64)> = pairs
        .iter()
        .enumerate()
        .map(|(i, (_, p))| (i, *p))
        .collect();
    while !pending.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for (i, project) in pending {
            let seen = h.run.inspect_project(project).await;
            if seen["name"] != format!("上限案件{i}-{last}") {
                still.push((i, project));
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let done_ms = now_ms();
    h.drain(Duration::from_secs(60)).await?;
    let calls = h.board_calls().await?;
    let writes: Vec<&Value> = calls
        .iter()
        .filter(|r| r["method"] != "GET" && r["status"] == 200)
        .collect();
    let first = calls
        .iter()
        .filter_map(|r| r["at_ms"].as_i64())
        .min()
        .unwrap_or(started_ms);
    let last_call = calls
        .iter()
        .filter_map(|r| r["at_ms"].as_i64())
        .max()
        .unwrap_or(done_ms);
    let busy_seconds = ((last_call - first) as f64 / 1000.0).max(1.0);
    let admitted = calls.iter().filter(|r| r["status"] != 429).count();
    let mut f = Figures::new();
    f.insert("changed_objects".into(), json!(objects));
    f.insert("changes_per_object".into(), json!(changes));
    f.insert("not_converged".into(), json!(pending.len()));
    f.insert("board_writes".into(), json!(writes.len()));
    f.insert(
        "board_writes_per_changed_object".into(),
        json!(round(writes.len() as f64 / objects as f64, 3)),
    );
    f.insert("board_calls".into(), json!(calls.len()));
    f.insert(
        "seconds".into(),
        json!(round((done_ms - started_ms) as f64 / 1000.0, 2)),
    );
    f.insert(
        "throughput_vs_ceiling".into(),
        json!(round(
            admitted as f64 / busy_seconds / (BACKGROUND_SHARE * BOARD_PER_S),
            3
        )),
    );
    f.insert("rate_limit_429s".into(), json!(count_429(&calls)));
    f.insert("calls_by_path".into(), json!(by_path(&calls)));
    h.stop().await;
    Ok(f)
}

fn sign_v3(secret: &[u8], method: &str, uri: &str, body: &str, ts: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key");
    mac.update(format!("{method}{uri}{body}{ts}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `webhook`: `requests` signed deliveries of `events` events each, 4 in
/// flight: how fast they are acknowledged, and how many queue calls per event.
pub async fn webhook(requests: usize, events: usize) -> anyhow::Result<Figures> {
    let h = Harness::start(Setup::default()).await?;
    h.run.connect(ACCOUNT, None).await;
    let portal = h.portal().await?;
    let deals = h
        .create_deals(
            (0..100)
                .map(|i| json!({"properties": {"dealname": format!("通知{i}"), "pipeline": "default", "dealstage": "appointmentscheduled"}}))
                .collect(),
        )
        .await?;
    h.drain(Duration::from_secs(60)).await?;
    let sends_before = h.webhook_sends.load(std::sync::atomic::Ordering::Relaxed);
    let uri = format!("{}/hubspot/webhooks", h.run.base);
    let mut bodies = Vec::with_capacity(requests);
    for r in 0..requests {
        let batch: Vec<Value> = (0..events)
            .map(|e| {
                let deal = deals[(r * events + e) % deals.len()];
                json!({"eventId": r * events + e, "subscriptionId": 1, "portalId": portal.get(), "appId": 777,
                       "occurredAt": now_ms(), "subscriptionType": "object.propertyChange",
                       "objectTypeId": "0-3", "objectId": deal, "propertyName": "amount",
                       "propertyValue": format!("{}", 1000 + e), "changeSource": "CRM_UI", "attemptNumber": 0})
            })
            .collect();
        bodies.push(serde_json::to_string(&batch)?);
    }
    let secret = b"sandbox-client-secret";
    let mut latencies = Vec::with_capacity(requests);
    let mut failures = 0;
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0;
    let in_flight = 4;
    while next < bodies.len() || !tasks.is_empty() {
        while next < bodies.len() && tasks.len() < in_flight {
            let body = bodies[next].clone();
            next += 1;
            let http = h.run.http.clone();
            let uri = uri.clone();
            tasks.spawn(async move {
                let ts = now_ms();
                let signature = sign_v3(secret, "POST", &uri, &body, ts);
                let sent = Instant::now();
                let response = http
                    .post(&uri)
                    .header("content-type", "application/json")
                    .header("X-HubSpot-Signature-v3", signature)
                    .header("X-HubSpot-Request-Timestamp", ts.to_string())
                    .body(body)
                    .send()
                    .await;
                let ms = sent.elapsed().as_secs_f64() * 1000.0;
                (response.map(|r| r.status().as_u16()).unwrap_or(0), ms)
            });
        }
        if let Some(done) = tasks.join_next().await {
            let (status, ms) = done?;
            if status == 200 || status == 204 {
                latencies.push(ms);
            } else {
                failures += 1;
            }
        }
    }
    let sends = h.webhook_sends.load(std::sync::atomic::Ordering::Relaxed) - sends_before;
    latencies.sort_by(f64::total_cmp);
    let mut f = Figures::new();
    f.insert("requests".into(), json!(requests));
    f.insert("events".into(), json!(requests * events));
    f.insert("failed_requests".into(), json!(failures));
    f.insert(
        "ack_p50_ms".into(),
        json!(round(percentile(&latencies, 0.5), 2)),
    );
    f.insert(
        "ack_p99_ms".into(),
        json!(round(percentile(&latencies, 0.99), 2)),
    );
    f.insert(
        "queue_calls_per_event".into(),
        json!(round(sends as f64 / (requests * events) as f64, 4)),
    );
    h.stop().await;
    Ok(f)
}

/// The pause after each latency sample: longer than board's budget window
/// (1.25 s), so each change meets an idle budget. Back to back, a HubSpot →
/// board change (a read and an update) would wait for the previous one's calls
/// — that is throughput, which `board-ceiling` measures.
const LATENCY_GAP: Duration = Duration::from_millis(1300);

/// `latency`: single changes, one at a time, each way: from the change to
/// the other side having it.
pub async fn latency(samples: usize, board_window: Duration) -> anyhow::Result<Figures> {
    let h = Harness::start(Setup {
        board_window,
        ..Setup::default()
    })
    .await?;
    h.run.connect(ACCOUNT, None).await;
    let pairs = h.seeded_pairs(samples, "遅延案件").await?;
    let mut to_board = Vec::new();
    for (i, (deal, project)) in pairs.iter().enumerate() {
        let name = format!("遅延案件{i}(HubSpot)");
        let started = Instant::now();
        h.hubspot(
            reqwest::Method::PATCH,
            &format!("/crm/objects/2026-03/deals/{deal}"),
            Some(json!({"properties": {"dealname": name}})),
        )
        .await?;
        let deadline = started + Duration::from_secs(20);
        while h.run.inspect_project(*project).await["name"] != name.as_str() {
            anyhow::ensure!(Instant::now() < deadline, "deal {deal} never reached board");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        to_board.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(LATENCY_GAP).await;
    }
    h.drain(Duration::from_secs(60)).await?;
    let mut to_hubspot = Vec::new();
    for (i, (deal, project)) in pairs.iter().enumerate() {
        let name = format!("遅延案件{i}(board)");
        let started = Instant::now();
        let (status, body) = h
            .run
            .board(
                reqwest::Method::PATCH,
                &format!("/projects/{project}"),
                ACCOUNT,
                Some(json!({"name": name})),
            )
            .await;
        anyhow::ensure!(status == 200, "board: {status} {body}");
        let deadline = started + Duration::from_secs(20);
        loop {
            let seen = h
                .control("hubspot", &format!("/_control/inspect/deals/{deal}"), None)
                .await?;
            if seen["properties"]["dealname"] == name.as_str() {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "project {project} never reached deal {deal}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        to_hubspot.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(LATENCY_GAP).await;
    }
    to_board.sort_by(f64::total_cmp);
    to_hubspot.sort_by(f64::total_cmp);
    let mut f = Figures::new();
    f.insert("samples".into(), json!(samples));
    f.insert("gap_ms".into(), json!(LATENCY_GAP.as_millis()));
    f.insert(
        "board_events_window_ms".into(),
        json!(board_window.as_millis()),
    );
    f.insert(
        "hubspot_to_board_p50_ms".into(),
        json!(round(percentile(&to_board, 0.5), 1)),
    );
    f.insert(
        "hubspot_to_board_p95_ms".into(),
        json!(round(percentile(&to_board, 0.95), 1)),
    );
    f.insert(
        "board_to_hubspot_p50_ms".into(),
        json!(round(percentile(&to_hubspot, 0.5), 1)),
    );
    f.insert(
        "board_to_hubspot_p95_ms".into(),
        json!(round(percentile(&to_hubspot, 0.95), 1)),
    );
    h.stop().await;
    Ok(f)
}

pub fn finish(mut figures: Figures) -> Figures {
    figures.insert("peak_rss_mb".into(), json!(peak_rss_mb()));
    let records = crate::cost::records_of(&figures);
    if let Value::Object(cost) = crate::cost::figures(records) {
        figures.extend(cost);
    }
    figures
}
