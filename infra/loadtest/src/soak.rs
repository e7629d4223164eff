//! `soak`: a script of mixed changes on both sides under faults — HubSpot
//! answering 429/500/503/timeouts, board 503, webhooks and board events
//! duplicated and reordered, the worker aborted mid-batch every 500 messages —
//! then the faults stop and the stack drains. The expected final state is
//! computed from the script alone and compared with both sides.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use board_hubspot::domain::draft::DraftState;
use board_hubspot::domain::history::Status;
use board_hubspot::domain::{BoardObjectKind, BoardRef, LinkState};
use board_hubspot::ports::WorkQueue;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::harness::{ACCOUNT, Harness, Setup, round};
use crate::scenarios::Figures;

#[derive(Debug, Clone)]
pub struct Options {
    /// Scripted changes.
    pub events: usize,
    /// board's per-account limit during the run (board's real one is about 3/s).
    pub board_per_second: usize,
    pub seed: u64,
    /// The worker is aborted mid-batch once per this many messages.
    pub abort_every: usize,
    /// HubSpot's share of faulty answers, board's, and the share of
    /// duplicated and of reordered deliveries.
    pub hubspot_faults: f64,
    pub board_faults: f64,
    pub duplicates: f64,
    pub reorders: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            events: 10_000,
            board_per_second: 30,
            seed: 7,
            abort_every: 500,
            hubspot_faults: 0.2,
            board_faults: 0.1,
            duplicates: 0.3,
            reorders: 0.3,
        }
    }
}

/// One scripted change.
#[derive(Debug, Clone)]
enum Change {
    /// A linked deal renamed in HubSpot (pairs owned by HubSpot).
    DealRenamed { pair: usize, name: String },
    /// A linked project renamed in board (pairs owned by board).
    ProjectRenamed { pair: usize, name: String },
    /// A linked project's order status in board (1 or 4).
    ProjectStatus { pair: usize, status: u8 },
    /// An invoice sent from a linked project (one note each).
    DocumentSent { pair: usize },
    /// A linked project deleted in board.
    ProjectDeleted { pair: usize },
    /// A new qualifying deal in HubSpot (a draft each).
    DealCreated { fresh: usize, name: String },
    /// A new deal renamed.
    FreshRenamed { fresh: usize, name: String },
    /// A new deal moved to an unmapped stage (its draft withdrawn).
    FreshExcluded { fresh: usize },
    /// A new deal deleted in HubSpot (its draft withdrawn).
    FreshDeleted { fresh: usize },
}

/// What the script leaves behind, computed from the script alone.
#[derive(Debug, Default)]
struct Expected {
    /// HubSpot-owned pairs: the project's final name.
    project_names: BTreeMap<usize, String>,
    /// board-owned pairs: the deal's final name and stage.
    deal_names: BTreeMap<usize, String>,
    deal_stages: BTreeMap<usize, &'static str>,
    deleted_pairs: BTreeSet<usize>,
    documents: usize,
    /// New deals: (final name, open?).
    fresh: BTreeMap<usize, (String, bool)>,
}

fn stage_of(status: u8) -> &'static str {
    match status {
        4 => "closedwon",
        _ => "contractsent",
    }
}

fn script(options: &Options, pairs: usize) -> (Vec<Change>, Expected) {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let hubspot_owned = pairs / 2;
    let mut changes = Vec::with_capacity(options.events);
    let mut expected = Expected::default();
    let mut fresh_open: Vec<usize> = Vec::new();
    let mut fresh_count = 0;
    let mut alive: Vec<usize> = (hubspot_owned..pairs).collect();
    for n in 0..options.events {
        let roll: f64 = rng.random();
        let change = if roll < 0.30 {
            let pair = rng.random_range(0..hubspot_owned);
            let name = format!("H{pair}-{n}");
            expected.project_names.insert(pair, name.clone());
            Change::DealRenamed { pair, name }
        } else if roll < 0.55 && !alive.is_empty() {
            let pair = alive[rng.random_range(0..alive.len())];
            let name = format!("B{pair}-{n}");
            expected.deal_names.insert(pair, name.clone());
            Change::ProjectRenamed { pair, name }
        } else if roll < 0.65 && !alive.is_empty() {
            let pair = alive[rng.random_range(0..alive.len())];
            let status = if rng.random_bool(0.5) { 4 } else { 1 };
            expected.deal_stages.insert(pair, stage_of(status));
            Change::ProjectStatus { pair, status }
        } else if roll < 0.70 && !alive.is_empty() {
            let pair = alive[rng.random_range(0..alive.len())];
            expected.documents += 1;
            Change::DocumentSent { pair }
        } else if roll < 0.72 && alive.len() > 2 {
            let pair = alive.swap_remove(rng.random_range(0..alive.len()));
            expected.deleted_pairs.insert(pair);
            expected.deal_names.remove(&pair);
            expected.deal_stages.remove(&pair);
            Change::ProjectDeleted { pair }
        } else if roll < 0.87 || fresh_open.is_empty() {
            let fresh = fresh_count;
            fresh_count += 1;
            let name = format!("F{fresh}-{n}");
            expected.fresh.insert(fresh, (name.clone(), true));
            fresh_open.push(fresh);
            Change::DealCreated { fresh, name }
        } else if roll < 0.94 {
            let fresh = fresh_open[rng.random_range(0..fresh_open.len())];
            let name = format!("F{fresh}-{n}");
            expected.fresh.get_mut(&fresh).expect("created").0 = name.clone();
            Change::FreshRenamed { fresh, name }
        } else {
            let fresh = fresh_open.swap_remove(rng.random_range(0..fresh_open.len()));
            expected.fresh.get_mut(&fresh).expect("created").1 = false;
            if roll < 0.98 {
                Change::FreshExcluded { fresh }
            } else {
                Change::FreshDeleted { fresh }
            }
        };
        changes.push(change);
    }
    (changes, expected)
}

/// board's change events on their way to its two lanes (SPEC §10: a
/// person's changes on the ordinary lane, an import's on the bulk lane): some
/// duplicated, some held back and sent after later ones, on either lane, so
/// an older change may arrive through the other lane after a newer one.
fn unreliable_sink(
    h: &Harness,
    rng: Arc<Mutex<StdRng>>,
    duplicates: f64,
    reorders: f64,
) -> Arc<Mutex<Vec<String>>> {
    let held: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let lanes = [
        h.services().board_queue.clone(),
        h.services().board_bulk_queue.clone(),
    ];
    let sink = |lane: usize| {
        let (rng, held, lanes) = (rng.clone(), held.clone(), lanes.clone());
        Arc::new(move |bodies: Vec<String>| {
            let mut out: [Vec<String>; 2] = [Vec::new(), Vec::new()];
            {
                let mut rng = rng.lock().expect("rng");
                let mut held = held.lock().expect("held");
                for body in bodies {
                    if rng.random_bool(duplicates) {
                        out[lane].push(body.clone());
                    }
                    if rng.random_bool(reorders) {
                        held.push(body);
                    } else {
                        out[lane].push(body);
                    }
                }
                // Held events go out after later ones, shuffled, each on either lane.
                if held.len() >= 5 || rng.random_bool(0.2) {
                    held.shuffle(&mut *rng);
                    for body in held.drain(..) {
                        out[usize::from(rng.random_bool(0.5))].push(body);
                    }
                }
            }
            for (queue, bodies) in lanes.iter().zip(out) {
                if bodies.is_empty() {
                    continue;
                }
                let queue = queue.clone();
                tokio::spawn(async move {
                    if let Err(error) = queue.send_batch(&bodies).await {
                        tracing::error!(%error, "soak: board events not queued");
                    }
                });
            }
        }) as Arc<dyn Fn(Vec<String>) + Send + Sync>
    };
    let board = &h.run.stack.sandboxes.board;
    board.set_event_sink(sink(0));
    board.set_bulk_event_sink(sink(1));
    held
}

struct Worker {
    received: usize,
    aborts: usize,
    next_abort: usize,
    every: usize,
}

impl Worker {
    /// One batch from each queue as its event source hands it over: board's
    /// ordinary lane 10, its bulk lane 100, the work queue 10.
    async fn lanes(&mut self, h: &Harness) -> anyhow::Result<usize> {
        let board = self.step(h, &h.board, 10).await?;
        let bulk = self.step(h, &h.bulk, 100).await?;
        let work = self.step(h, &h.work, 10).await?;
        Ok(board + bulk + work)
    }

    /// One batch from `queue`, as the event source hands it over; every
    /// `every` messages the batch is cut off mid-way (a crashed invocation:
    /// nothing deleted, SQS redelivers after the visibility timeout).
    async fn step(
        &mut self,
        h: &Harness,
        queue: &dyn WorkQueue,
        size: usize,
    ) -> anyhow::Result<usize> {
        let batching = sync_worker::Batching {
            size,
            window: Duration::ZERO,
        };
        let messages = sync_worker::gather(queue, batching, Duration::from_millis(20)).await?;
        if messages.is_empty() {
            return Ok(0);
        }
        self.received += messages.len();
        if self.received >= self.next_abort {
            self.next_abort += self.every;
            self.aborts += 1;
            let cut = Duration::from_millis(rand::random_range(0..30));
            let _ = tokio::time::timeout(
                cut,
                board_hubspot::app::worker::process_batch(h.services(), queue, &messages),
            )
            .await;
            return Ok(messages.len());
        }
        let outcome =
            board_hubspot::app::worker::process_batch(h.services(), queue, &messages).await;
        for message in messages
            .iter()
            .filter(|m| outcome.done.contains(&m.message_id))
        {
            queue.delete(&message.receipt).await?;
        }
        Ok(messages.len())
    }
}

async fn apply(
    h: &Harness,
    pairs: &[(u64, u64)],
    fresh_ids: &mut BTreeMap<usize, u64>,
    batch: &[Change],
) -> anyhow::Result<()> {
    // Creates first: later changes of the batch may be about the new deals.
    let creates: Vec<(usize, String)> = batch
        .iter()
        .filter_map(|c| match c {
            Change::DealCreated { fresh, name } => Some((*fresh, name.clone())),
            _ => None,
        })
        .collect();
    if !creates.is_empty() {
        let ids = h
            .create_deals(
                creates
                    .iter()
                    .map(|(_, name)| json!({"properties": {"dealname": name, "pipeline": "default", "dealstage": "contractsent"}}))
                    .collect(),
            )
            .await?;
        for ((fresh, _), id) in creates.iter().zip(ids) {
            fresh_ids.insert(*fresh, id);
        }
    }
    let mut deal_updates = Vec::new();
    let mut archives = Vec::new();
    let mut board_updates = Vec::new();
    let mut documents = Vec::new();
    let mut deletes = Vec::new();
    for change in batch {
        match change {
            Change::DealRenamed { pair, name } => {
                deal_updates.push(json!({"id": pairs[*pair].0.to_string(), "properties": {"dealname": name}}))
            }
            Change::ProjectRenamed { pair, name } => board_updates.push(
                json!({"resource": "projects", "id": pairs[*pair].1, "fields": {"name": name}}),
            ),
            Change::ProjectStatus { pair, status } => {
                let mut fields = json!({"order_status": status});
                if *status == 4 {
                    fields["order_date"] = json!("2026-12-01");
                }
                board_updates.push(json!({"resource": "projects", "id": pairs[*pair].1, "fields": fields}))
            }
            Change::DocumentSent { pair } => documents.push(pairs[*pair].1),
            Change::ProjectDeleted { pair } => deletes.push(pairs[*pair].1),
            Change::DealCreated { .. } => {}
            Change::FreshRenamed { fresh, name } => deal_updates.push(
                json!({"id": fresh_ids[fresh].to_string(), "properties": {"dealname": name}}),
            ),
            Change::FreshExcluded { fresh } => deal_updates.push(
                json!({"id": fresh_ids[fresh].to_string(), "properties": {"dealstage": "appointmentscheduled"}}),
            ),
            Change::FreshDeleted { fresh } => archives.push(json!({"id": fresh_ids[fresh].to_string()})),
        }
    }
    // Each object appears at most once per call (HubSpot refuses duplicates in
    // a batch): keep the order by splitting on repeats.
    for group in split_repeats(&deal_updates, |v| {
        v["id"].as_str().unwrap_or_default().to_owned()
    }) {
        h.hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals/batch/update",
            Some(json!({"inputs": group})),
        )
        .await?;
    }
    if !archives.is_empty() {
        h.hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals/batch/archive",
            Some(json!({"inputs": archives})),
        )
        .await?;
    }
    // In order, by runs of ten: one run as an import (the bulk lane), the
    // next as people's edits (the ordinary lane).
    for (run, updates) in board_updates.chunks(10).enumerate() {
        let route = if run % 2 == 0 {
            "/_control/bulk"
        } else {
            "/_control/edits"
        };
        h.control(
            "board",
            route,
            Some(json!({"account_id": ACCOUNT, "updates": updates})),
        )
        .await?;
    }
    for project in documents {
        let sent = h
            .run
            .http
            .post(format!(
                "{}/_sandbox/board/_actions/send-document",
                h.run.base
            ))
            .json(
                &json!({"account_id": ACCOUNT, "project_id": project, "document_type": "invoice",
                          "method": "email", "total": "100000", "tax": "10000"}),
            )
            .send()
            .await?;
        anyhow::ensure!(
            sent.status().is_success(),
            "send-document: {}",
            sent.status()
        );
    }
    for project in deletes {
        let (status, body) = h
            .run
            .board(
                reqwest::Method::DELETE,
                &format!("/projects/{project}"),
                ACCOUNT,
                None,
            )
            .await;
        anyhow::ensure!(
            status < 300 || status == 503,
            "delete project: {status} {body}"
        );
        if status == 503 {
            // board's injected outage: try until it answers.
            loop {
                let (status, _) = h
                    .run
                    .board(
                        reqwest::Method::DELETE,
                        &format!("/projects/{project}"),
                        ACCOUNT,
                        None,
                    )
                    .await;
                if status != 503 {
                    break;
                }
            }
        }
    }
    Ok(())
}

fn split_repeats(items: &[Value], key: impl Fn(&Value) -> String) -> Vec<Vec<Value>> {
    let mut groups: Vec<Vec<Value>> = Vec::new();
    let mut seen = BTreeSet::new();
    for item in items {
        let k = key(item);
        if groups.is_empty() || seen.contains(&k) || groups.last().is_some_and(|g| g.len() == 100) {
            groups.push(Vec::new());
            seen.clear();
        }
        seen.insert(k);
        groups.last_mut().expect("a group").push(item.clone());
    }
    groups
}

pub async fn run(options: Options) -> anyhow::Result<Figures> {
    let started = Instant::now();
    let h = Harness::start(Setup {
        board_window: Duration::ZERO,
        visibility: Duration::from_secs(10),
        run_worker: false,
        board_per_second: options.board_per_second as u32,
        pollers: 1,
    })
    .await?;
    h.control(
        "board",
        "/_control/settings",
        Some(json!({"per_second": options.board_per_second, "daily_quota": 10_000_000})),
    )
    .await?;
    let pairs_n = (options.events / 50).clamp(20, 200);
    // The stack's own worker is off: drive it during set-up, then with aborts.
    let mut worker = Worker {
        received: 0,
        aborts: 0,
        next_abort: options.abort_every,
        every: options.abort_every,
    };
    {
        let connect = h.run.connect(ACCOUNT, None);
        tokio::pin!(connect);
        loop {
            tokio::select! {
                _ = &mut connect => break,
                polled = worker.step(&h, &h.work, 10) => { polled?; }
            }
        }
    }
    let pairs = h.linked_pairs(pairs_n, "耐久").await?;
    while worker.lanes(&h).await? > 0 {}
    let (changes, expected) = script(&options, pairs_n);
    worker.received = 0;
    worker.next_abort = options.abort_every;

    // Faults on.
    let hubspot_faults = json!({
        "error_rates": [[429, options.hubspot_faults / 4.0], [500, options.hubspot_faults / 4.0], [503, options.hubspot_faults / 4.0]],
        "timeout_rate": options.hubspot_faults / 4.0, "timeout_ms": 300,
        "webhooks": {"duplicate_rate": options.duplicates, "shuffle": options.reorders > 0.0}});
    h.control("hubspot", "/_control/faults", Some(hubspot_faults))
        .await?;
    h.control(
        "board",
        "/_control/settings",
        Some(json!({"fault_rate": options.board_faults})),
    )
    .await?;
    let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(options.seed ^ 0x5eed)));
    let held = unreliable_sink(&h, rng, options.duplicates, options.reorders);

    let mut fresh_ids = BTreeMap::new();
    {
        let drive = async {
            for batch in changes.chunks(100) {
                apply(&h, &pairs, &mut fresh_ids, batch).await?;
            }
            anyhow::Ok(())
        };
        tokio::pin!(drive);
        loop {
            tokio::select! {
                done = &mut drive => { done?; break; }
                polled = worker.lanes(&h) => { polled?; }
            }
        }
    }
    // Faults off; what was held back goes out; the stack drains.
    h.control("hubspot", "/_control/faults", Some(json!({})))
        .await?;
    h.control(
        "board",
        "/_control/settings",
        Some(json!({"fault_rate": 0.0})),
    )
    .await?;
    let rest: Vec<String> = std::mem::take(&mut *held.lock().expect("held"));
    h.services().board_queue.send_batch(&rest).await?;
    let drain_deadline = Instant::now() + Duration::from_secs(600);
    let mut quiet_since = Instant::now();
    worker.next_abort = usize::MAX;
    loop {
        let n = worker.lanes(&h).await?;
        if n > 0 || h.depth() > 0 {
            quiet_since = Instant::now();
        }
        // Quiet for 3 s: retries (visibility delays) and webhooks have landed.
        if quiet_since.elapsed() > Duration::from_secs(3) {
            break;
        }
        anyhow::ensure!(Instant::now() < drain_deadline, "the stack did not drain");
        if n == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let verdict = check(&h, &pairs, &fresh_ids, &expected).await?;
    let mut f = Figures::new();
    f.insert("events".into(), json!(options.events));
    f.insert("linked_pairs".into(), json!(pairs_n));
    f.insert("worker_aborts".into(), json!(worker.aborts));
    f.insert("board_per_second".into(), json!(options.board_per_second));
    f.insert("lost".into(), json!(verdict.lost));
    f.insert("duplicate_effects".into(), json!(verdict.duplicates));
    f.insert(
        "final_state_mismatches".into(),
        json!(verdict.mismatches.len()),
    );
    f.insert("errors_in_history".into(), json!(verdict.errors));
    f.insert("unexplained_errors".into(), json!(verdict.unexplained));
    f.insert("error_codes".into(), json!(verdict.error_codes));
    f.insert("dead_letters".into(), json!(h.dead_depth()));
    f.insert(
        "seconds".into(),
        json!(round(started.elapsed().as_secs_f64(), 1)),
    );
    if !verdict.mismatches.is_empty() {
        f.insert(
            "mismatch_examples".into(),
            json!(verdict.mismatches.iter().take(10).collect::<Vec<_>>()),
        );
    }
    h.stop().await;
    Ok(f)
}

#[derive(Debug, Default)]
struct Verdict {
    error_codes: BTreeMap<String, usize>,
    lost: usize,
    duplicates: usize,
    mismatches: Vec<String>,
    errors: usize,
    unexplained: usize,
}

async fn read_deals(h: &Harness, ids: &[u64]) -> anyhow::Result<BTreeMap<u64, Value>> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(100) {
        let body = h
            .hubspot(
                reqwest::Method::POST,
                "/crm/objects/2026-03/deals/batch/read",
                Some(json!({"properties": ["dealname", "dealstage"],
                            "inputs": chunk.iter().map(|id| json!({"id": id.to_string()})).collect::<Vec<_>>()})),
            )
            .await?;
        for result in body["results"].as_array().cloned().unwrap_or_default() {
            if let Some(id) = result["id"].as_str().and_then(|i| i.parse().ok()) {
                out.insert(id, result["properties"].clone());
            }
        }
    }
    Ok(out)
}

async fn check(
    h: &Harness,
    pairs: &[(u64, u64)],
    fresh_ids: &BTreeMap<usize, u64>,
    expected: &Expected,
) -> anyhow::Result<Verdict> {
    let mut verdict = Verdict::default();
    // HubSpot-owned pairs: board has the last HubSpot name.
    for (pair, name) in &expected.project_names {
        let project = h.run.inspect_project(pairs[*pair].1).await;
        if project["name"] != name.as_str() {
            verdict.mismatches.push(format!(
                "project of pair {pair}: {} ≠ {name}",
                project["name"]
            ));
        }
    }
    // board-owned pairs: HubSpot has the last board name and status.
    let deal_ids: Vec<u64> = pairs.iter().map(|(d, _)| *d).collect();
    let deals = read_deals(h, &deal_ids).await?;
    for (pair, name) in &expected.deal_names {
        let seen = &deals[&pairs[*pair].0]["dealname"];
        if seen != name.as_str() {
            verdict
                .mismatches
                .push(format!("deal of pair {pair}: {seen} ≠ {name}"));
        }
    }
    for (pair, stage) in &expected.deal_stages {
        let seen = &deals[&pairs[*pair].0]["dealstage"];
        if seen != *stage {
            verdict
                .mismatches
                .push(format!("stage of pair {pair}: {seen} ≠ {stage}"));
        }
    }
    let account = h.account();
    let portal = h.portal().await?;
    for pair in &expected.deleted_pairs {
        let link = h
            .services()
            .links
            .link_by_board(
                &account,
                portal,
                BoardRef {
                    kind: BoardObjectKind::Project,
                    id: pairs[*pair].1,
                },
            )
            .await?;
        if link.as_ref().is_some_and(|l| l.state != LinkState::Deleted) {
            verdict
                .mismatches
                .push(format!("pair {pair}: link not marked deleted"));
        }
    }
    // New deals: one draft each, open unless excluded or deleted, with the last name.
    for (fresh, (name, open)) in &expected.fresh {
        let Some(id) = fresh_ids.get(fresh) else {
            verdict.lost += 1;
            continue;
        };
        let draft = h.services().drafts.draft(&account, portal, *id).await?;
        match draft {
            // Excluded or deleted before the worker saw it qualify: never a draft.
            None if !open => {}
            None => {
                verdict.lost += 1;
                let why = h
                    .services()
                    .decisions
                    .decisions(&account, portal, *id, 3)
                    .await?
                    .into_iter()
                    .map(|d| format!("{}: {}", d.outcome, d.reason))
                    .collect::<Vec<_>>();
                verdict
                    .mismatches
                    .push(format!("deal {id}: no draft (decisions: {why:?})"));
            }
            Some(draft) => {
                let want = if *open {
                    DraftState::Open
                } else {
                    DraftState::Withdrawn
                };
                if draft.state != want {
                    verdict
                        .mismatches
                        .push(format!("draft {id}: {:?} ≠ {want:?}", draft.state));
                }
                if *open && draft.content.name != *name {
                    verdict
                        .mismatches
                        .push(format!("draft {id}: name {} ≠ {name}", draft.content.name));
                }
            }
        }
    }
    // One note per sent document, never two.
    let mut markers: BTreeMap<String, usize> = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => {
                format!("/crm/objects/2026-03/notes?limit=100&properties=hs_note_body&after={a}")
            }
            None => "/crm/objects/2026-03/notes?limit=100&properties=hs_note_body".to_owned(),
        };
        let page = h.hubspot(reqwest::Method::GET, &path, None).await?;
        for note in page["results"].as_array().cloned().unwrap_or_default() {
            let body = note["properties"]["hs_note_body"]
                .as_str()
                .unwrap_or_default();
            if let Some(start) = body.find("[board-doc:") {
                let marker = body[start..]
                    .split(']')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                *markers.entry(marker).or_default() += 1;
            }
        }
        match page["paging"]["next"]["after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    verdict.duplicates += markers
        .values()
        .filter(|n| **n > 1)
        .map(|n| n - 1)
        .sum::<usize>();
    if markers.len() < expected.documents {
        verdict.lost += expected.documents - markers.len();
        verdict.mismatches.push(format!(
            "notes: {} of {} documents",
            markers.len(),
            expected.documents
        ));
    }
    // History: errors, and any without a catalog code.
    let mut cursor = None;
    loop {
        let page = h
            .services()
            .history
            .entries(&account, 200, cursor.as_ref())
            .await?;
        for entry in &page.items {
            if entry.status == Status::Error {
                verdict.errors += 1;
                *verdict
                    .error_codes
                    .entry(format!(
                        "{:?} {}",
                        entry.code,
                        entry.detail.clone().unwrap_or_default()
                    ))
                    .or_default() += 1;
                if entry.code.is_none() {
                    verdict.unexplained += 1;
                }
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    verdict.lost += h.dead_depth();
    Ok(verdict)
}
