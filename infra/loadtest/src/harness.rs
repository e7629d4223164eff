//! The stack under load: started in-process on the embedded store and queues
//! with the sandboxes' real limits, driven only through the sandboxes and the
//! public routes (links may be seeded into the store, as the issue allows).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use board_hubspot::adapters::clock::SystemClock;
use board_hubspot::adapters::queue::memory::MemoryQueue;
use board_hubspot::adapters::store::TableStore;
use board_hubspot::adapters::table::memory::MemoryTable;
use board_hubspot::app::Services;
use board_hubspot::app::services::{MAX_RECEIVES, WORK_VISIBILITY};
use board_hubspot::config::Settings;
use board_hubspot::domain::{AccountId, PortalId};
use serde_json::{Value, json};
use tests::stack::Run;

pub const ACCOUNT: &str = "acct-a";

/// How the stack is started for a scenario.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// board's events queue batching window (the template's is 1 s).
    pub board_window: Duration,
    /// Visibility timeout of both queues (the template's is 360 s).
    pub visibility: Duration,
    /// Off: the scenario drives the worker itself.
    pub run_worker: bool,
    /// board's limit per account, as the service is told (`BOARD_RATE_PER_SECOND`).
    pub board_per_second: u32,
    /// Pollers per queue (the template's `MaximumConcurrency` is 5).
    pub pollers: usize,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            board_window: Duration::from_secs(1),
            visibility: WORK_VISIBILITY,
            run_worker: true,
            board_per_second: 3,
            pollers: 1,
        }
    }
}

pub struct Harness {
    pub run: Run,
    pub work: MemoryQueue,
    pub board: MemoryQueue,
    /// board's bulk lane (imports and mass updates).
    pub bulk: MemoryQueue,
    /// SQS calls the webhook function's sends would make.
    pub webhook_sends: Arc<std::sync::atomic::AtomicUsize>,
}

impl Harness {
    pub async fn start(setup: Setup) -> anyhow::Result<Self> {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr: SocketAddr = probe.local_addr()?;
        drop(probe);
        let public = format!("http://{addr}");
        let rate = setup.board_per_second.to_string();
        let settings = Settings::from_lookup(
            move |n| match n {
                "PUBLIC_BASE_URL" => Some(public.clone()),
                "BOARD_RATE_PER_SECOND" => Some(rate.clone()),
                _ => None,
            },
            true,
        )?;
        let work = MemoryQueue::new(setup.visibility, MAX_RECEIVES);
        let board = MemoryQueue::new(setup.visibility, MAX_RECEIVES);
        let bulk = MemoryQueue::new(setup.visibility, MAX_RECEIVES);
        // Metered: what the scenario's work would cost on AWS (`cost.rs`).
        let mut services = Services::with_store(
            settings,
            TableStore::new(crate::cost::CountingTable {
                inner: MemoryTable::new(),
            }),
            Arc::new(crate::cost::MeteredQueue {
                inner: Arc::new(work.clone()),
            }),
            Arc::new(SystemClock),
        );
        services.board_queue = Arc::new(crate::cost::MeteredQueue {
            inner: Arc::new(board.clone()),
        });
        services.board_bulk_queue = Arc::new(crate::cost::MeteredQueue {
            inner: Arc::new(bulk.clone()),
        });
        let mut functions = local_stack::Functions::shared(&services);
        let webhook_sends = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        functions.webhook.queue = Arc::new(crate::counting::CountingQueue {
            inner: services.queue.clone(),
            send_calls: webhook_sends.clone(),
        });
        let stack = local_stack::start_functions(
            services,
            functions,
            Some(work.clone()),
            addr,
            local_stack::Options {
                run_worker: setup.run_worker,
                board_events_window: setup.board_window,
                pollers: setup.pollers,
                // As Lambda's event source: an idle poller's receive is one
                // request per 20 s, not per 500 ms (the cost figures count them).
                poll_wait: Duration::from_secs(20),
            },
        )
        .await?;
        let run = Run::on(stack).await;
        Ok(Self {
            run,
            work,
            board,
            bulk,
            webhook_sends,
        })
    }

    pub fn services(&self) -> &Services {
        &self.run.stack.services
    }

    pub fn account(&self) -> AccountId {
        ACCOUNT.parse().expect("valid account")
    }

    pub async fn portal(&self) -> anyhow::Result<PortalId> {
        Ok(self
            .services()
            .connections
            .get_connection(&self.account())
            .await?
            .ok_or_else(|| anyhow::anyhow!("not connected"))?
            .portal_id)
    }

    /// A control endpoint of a sandbox (`hubspot` or `board`), unthrottled.
    pub async fn control(
        &self,
        sandbox: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/_sandbox/{sandbox}{path}", self.run.base);
        let request = match body {
            Some(body) => self.run.http.post(url).json(&body),
            None => self.run.http.get(url),
        };
        let response = request.send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "{sandbox}{path}: {}",
            response.status()
        );
        Ok(response.json().await.unwrap_or(Value::Null))
    }

    pub async fn clear_logs(&self) -> anyhow::Result<()> {
        for sandbox in ["hubspot", "board"] {
            self.run
                .http
                .delete(format!(
                    "{}/_sandbox/{sandbox}/_control/requests",
                    self.run.base
                ))
                .send()
                .await?;
        }
        Ok(())
    }

    /// Our own requests to HubSpot (the app's token) since the log was cleared.
    pub async fn hubspot_calls(&self) -> anyhow::Result<Vec<Value>> {
        let log = self.control("hubspot", "/_control/requests", None).await?;
        Ok(log["requests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r["token"] == "app")
            .collect())
    }

    /// Our own requests to board (the integration's token) since the log was cleared.
    pub async fn board_calls(&self) -> anyhow::Result<Vec<Value>> {
        let log = self.control("board", "/_control/requests", None).await?;
        Ok(log["requests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r["caller"] == "service")
            .collect())
    }

    /// HubSpot's API as a person, retried as a person would through faults and 429s.
    pub async fn hubspot(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        self.hubspot_in(sandbox_hubspot::PORTAL_ID, method, path, body)
            .await
    }

    /// HubSpot's API as a person of `portal` (its user token).
    pub async fn hubspot_in(
        &self,
        portal: u64,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        as_person(&self.run.http, &self.run.base, portal, method, path, body).await
    }

    /// Creates deals (100 per call) as a person would; their ids in order.
    pub async fn create_deals(&self, inputs: Vec<Value>) -> anyhow::Result<Vec<u64>> {
        self.create_deals_in(sandbox_hubspot::PORTAL_ID, inputs)
            .await
    }

    /// Creates deals in `portal`.
    pub async fn create_deals_in(
        &self,
        portal: u64,
        inputs: Vec<Value>,
    ) -> anyhow::Result<Vec<u64>> {
        let mut ids = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(100) {
            let created = self
                .hubspot_in(
                    portal,
                    reqwest::Method::POST,
                    "/crm/objects/2026-03/deals/batch/create",
                    Some(json!({"inputs": chunk})),
                )
                .await?;
            // Batch create answers in any order: match by the marker in the name.
            let mut results: Vec<(String, u64)> = created["results"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    (
                        r["properties"]["dealname"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        r["id"]
                            .as_str()
                            .and_then(|i| i.parse().ok())
                            .unwrap_or_default(),
                    )
                })
                .collect();
            for input in chunk {
                let name = input["properties"]["dealname"].as_str().unwrap_or_default();
                let at = results
                    .iter()
                    .position(|(n, _)| n == name)
                    .ok_or_else(|| anyhow::anyhow!("deal {name} not created"))?;
                ids.push(results.swap_remove(at).1);
            }
        }
        Ok(ids)
    }

    /// N deals in HubSpot and N projects in board, linked as registration
    /// leaves them (names equal, stage unmapped so no drafts): (deal, project) pairs.
    pub async fn linked_pairs(&self, n: usize, prefix: &str) -> anyhow::Result<Vec<(u64, u64)>> {
        let portal = self.portal().await?;
        self.linked_pairs_of(&self.account(), portal, n, prefix)
            .await
    }

    /// `linked_pairs` for `account`, connected to `portal`.
    pub async fn linked_pairs_of(
        &self,
        account: &AccountId,
        portal: PortalId,
        n: usize,
        prefix: &str,
    ) -> anyhow::Result<Vec<(u64, u64)>> {
        let deals = self
            .create_deals_in(
                portal.get(),
                (0..n)
                    .map(|i| {
                        json!({"properties": {"dealname": format!("{prefix}{i}"), "pipeline": "default",
                                               "dealstage": "appointmentscheduled"}})
                    })
                    .collect(),
            )
            .await?;
        let mut projects = Vec::with_capacity(n);
        for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
            let created = self
                .control(
                    "board",
                    "/_control/bulk",
                    Some(json!({"account_id": account.as_str(), "events": false,
                        "clients": [{"name": format!("{prefix}顧客"), "name_disp": format!("{prefix}顧客")}],
                        "projects": chunk.iter().map(|i| json!({"name": format!("{prefix}{i}"), "client_ref": 0,
                            "user_id": 1, "order_status": 1, "invoice_timing_kbn": 1, "invoice_date": "2026-12-31"}))
                            .collect::<Vec<_>>()})),
                )
                .await?;
            projects.extend(
                created["projects"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(Value::as_u64),
            );
        }
        anyhow::ensure!(
            projects.len() == n,
            "board created {} projects",
            projects.len()
        );
        for (i, (deal, project)) in deals.iter().zip(&projects).enumerate() {
            let link = tests::registered_deal_link(
                account,
                portal,
                *deal,
                *project,
                &format!("{prefix}{i}"),
            );
            self.services()
                .links
                .claim_deal(&link)
                .await
                .map_err(|e| anyhow::anyhow!("seed link: {e:?}"))?;
        }
        Ok(deals.into_iter().zip(projects).collect())
    }

    /// board's per-account limit (set-up lifts it so seeding is not paced;
    /// measurements run at board's real 3 requests/s).
    pub async fn board_limit(&self, per_second: usize) -> anyhow::Result<()> {
        self.control(
            "board",
            "/_control/settings",
            Some(json!({"per_second": per_second})),
        )
        .await?;
        Ok(())
    }

    /// Set-up at speed: linked pairs seeded with board's limit lifted, the
    /// events of their creation drained, then board's real limit back.
    pub async fn seeded_pairs(&self, n: usize, prefix: &str) -> anyhow::Result<Vec<(u64, u64)>> {
        self.board_limit(1_000).await?;
        let pairs = self.linked_pairs(n, prefix).await?;
        self.settle().await?;
        self.board_limit(3).await?;
        Ok(pairs)
    }

    /// Waits until HubSpot has delivered every webhook and both queues are empty.
    pub async fn settle(&self) -> anyhow::Result<()> {
        for _ in 0..2 {
            self.drain(Duration::from_secs(180)).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.drain(Duration::from_secs(180)).await
    }

    /// Messages in the three queues (visible or in flight).
    pub fn depth(&self) -> usize {
        self.work.depth() + self.board.depth() + self.bulk.depth()
    }

    /// Messages in the three queues' DLQs.
    pub fn dead_depth(&self) -> usize {
        self.work.dead_depth() + self.board.dead_depth() + self.bulk.dead_depth()
    }

    /// Waits until the queues are empty (nothing visible or in flight).
    pub async fn drain(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.depth() > 0 {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "queues not drained: {} work, {} board, {} bulk",
                self.work.depth(),
                self.board.depth(),
                self.bulk.depth()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    pub async fn stop(self) {
        self.run.stack.shutdown().await;
    }
}

/// HubSpot's API as a person of `portal` (its user token), retried through
/// 429s and 5xx as a person would; the answer's JSON.
pub async fn as_person(
    http: &reqwest::Client,
    base: &str,
    portal: u64,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    for attempt in 0..50 {
        let mut request = http
            .request(method.clone(), format!("{base}/_sandbox/hubspot{path}"))
            .bearer_auth(format!("pat-sandbox-user-{portal}"));
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await.unwrap_or(Value::Null));
        }
        if status.as_u16() == 429 || status.is_server_error() {
            tokio::time::sleep(Duration::from_millis(100 * (attempt + 1).min(10))).await;
            continue;
        }
        anyhow::bail!(
            "HubSpot {path}: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }
    anyhow::bail!("HubSpot {path}: kept failing")
}

/// The process's peak resident set (the stack runs in it), in MB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| (kb / 1024.0 * 10.0).round() / 10.0)
        .unwrap_or(0.0)
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The value at `q` (0–1) of sorted samples.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn round(value: f64, digits: i32) -> f64 {
    let factor = 10f64.powi(digits);
    (value * factor).round() / factor
}
