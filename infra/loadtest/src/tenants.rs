//! `tenants`: many accounts on many portals at once. One or more *noisy*
//! accounts carry a large backlog both ways (deal changes in HubSpot, project
//! changes from a board import) while every *quiet* account makes one change
//! each way every few seconds; some portals are shared by two accounts, the
//! first noisy account's among them. The worker runs as Lambda would (several
//! pollers per queue) and a window of the backlog is measured, not its drain:
//! the quiet accounts' change latency each way, each noisy account's calls
//! against its ceiling (board: 80 % of its limit; HubSpot: 88 per 10 s of its
//! portal), the 429s both sides answered, and the worker's time spent waiting
//! for a budget's turn.

use std::sync::Arc;
use std::time::{Duration, Instant};

use board_hubspot::domain::{AccountId, PortalId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::harness::{Harness, Setup, as_person, percentile, round};
use crate::scenarios::Figures;

#[derive(Debug, Clone)]
pub struct Options {
    pub accounts: usize,
    /// Portals the accounts are spread over (account `i` on portal `i % portals`).
    pub portals: usize,
    /// The first `noisy` accounts carry the backlog.
    pub noisy: usize,
    /// Changes each noisy account's backlog holds in each direction.
    pub backlog: usize,
    /// Linked deals a noisy account's backlog changes (half in HubSpot, half in board).
    pub noisy_pairs: usize,
    /// How long the backlog is measured.
    pub window: Duration,
    /// Each quiet account changes one thing each way this often.
    pub quiet_every: Duration,
    /// Pollers per queue (the template's `MaximumConcurrency`).
    pub pollers: usize,
    pub seed: u64,
}

impl Options {
    /// The defaults for `accounts` tenants: two accounts per portal, one
    /// noisy, a 20,000-change backlog each way, a 2-minute window; quiet
    /// accounts change every 3 s, or less often when there are so many that
    /// the 2-core machine would measure itself (about 25 changes a second each
    /// way in all).
    pub fn for_accounts(accounts: usize) -> Self {
        let accounts = accounts.max(2);
        Self {
            accounts,
            portals: accounts.div_ceil(2),
            noisy: 1,
            backlog: 20_000,
            noisy_pairs: 2_000,
            window: Duration::from_secs(120),
            quiet_every: Duration::from_millis((accounts as u64 * 40).max(3_000)),
            pollers: 5,
            seed: 7,
        }
    }
}

struct Tenant {
    account: AccountId,
    portal: PortalId,
    /// The quiet account's one linked (deal, project); the noisy one's many.
    pairs: Vec<(u64, u64)>,
}

/// One quiet change's latency, or how long it had waited when the run ended.
#[derive(Default)]
struct Samples {
    /// (account index, milliseconds)
    to_board: Vec<(usize, f64)>,
    to_hubspot: Vec<(usize, f64)>,
    unfinished: usize,
}

pub async fn run(options: Options) -> anyhow::Result<Figures> {
    anyhow::ensure!(
        options.noisy < options.accounts,
        "at least one quiet account"
    );
    let h = Harness::start(Setup {
        pollers: options.pollers,
        ..Setup::default()
    })
    .await?;
    let set_up = Instant::now();
    let tenants = connect(&h, &options).await?;
    h.board_limit(1_000).await?;
    let mut seeded = Vec::with_capacity(tenants.len());
    for (i, tenant) in tenants.into_iter().enumerate() {
        let n = if i < options.noisy {
            options.noisy_pairs
        } else {
            1
        };
        let pairs = h
            .linked_pairs_of(&tenant.account, tenant.portal, n, &format!("T{i}-"))
            .await?;
        seeded.push(Tenant { pairs, ..tenant });
    }
    h.settle().await?;
    h.board_limit(3).await?;
    h.clear_logs().await?;
    let set_up_s = set_up.elapsed().as_secs_f64();
    println!(
        "tenants: {} accounts on {} portals connected and seeded in {set_up_s:.0} s",
        options.accounts, options.portals
    );

    let tenants = Arc::new(seeded);
    crate::cost::reset();
    board_hubspot::app::budget::BUDGET_WAIT_NANOS.store(0, std::sync::atomic::Ordering::Relaxed);
    let cpu_before = cpu_seconds();
    let started_ms = crate::harness::now_ms();
    let started = Instant::now();
    let deadline = started + options.window;

    let mut producers = JoinSet::new();
    for i in 0..options.noisy {
        producers.spawn(noisy_hubspot(
            h.run.http.clone(),
            h.run.base.clone(),
            tenants.clone(),
            i,
            options.backlog,
        ));
        let (http, base, tenants) = (h.run.http.clone(), h.run.base.clone(), tenants.clone());
        producers.spawn(noisy_board(http, base, tenants, i, options.backlog));
    }
    let samples = Arc::new(std::sync::Mutex::new(Samples::default()));
    let mut quiet = JoinSet::new();
    let mut rng = StdRng::seed_from_u64(options.seed);
    for i in options.noisy..options.accounts {
        let phase =
            Duration::from_millis(rng.random_range(0..options.quiet_every.as_millis() as u64));
        quiet.spawn(quiet_account(
            h.run.http.clone(),
            h.run.base.clone(),
            h.run.stack.sandboxes.clone(),
            tenants.clone(),
            i,
            phase,
            options.quiet_every,
            deadline,
            samples.clone(),
        ));
    }
    while let Some(done) = quiet.join_next().await {
        done??;
    }
    let window_s = started.elapsed().as_secs_f64();
    let cpu_cores = (cpu_seconds() - cpu_before) / window_s;
    let ended_ms = crate::harness::now_ms();
    producers.abort_all();
    while let Some(done) = producers.join_next().await {
        if let Ok(result) = done {
            result?;
        }
    }
    let busy_ns = sync_worker::BUSY_NANOS.load(std::sync::atomic::Ordering::Relaxed);
    let waited_ns =
        board_hubspot::app::budget::BUDGET_WAIT_NANOS.load(std::sync::atomic::Ordering::Relaxed);
    let in_window = |r: &Value| {
        r["at_ms"]
            .as_i64()
            .is_some_and(|at| at >= started_ms && at <= ended_ms)
    };
    let board_calls: Vec<Value> = h
        .board_calls()
        .await?
        .into_iter()
        .filter(in_window)
        .collect();
    let hubspot_calls: Vec<Value> = h
        .hubspot_calls()
        .await?
        .into_iter()
        .filter(in_window)
        .collect();

    let mut f = Figures::new();
    f.insert("accounts".into(), json!(options.accounts));
    f.insert("portals".into(), json!(options.portals));
    f.insert("noisy_accounts".into(), json!(options.noisy));
    f.insert("pollers_per_queue".into(), json!(options.pollers));
    f.insert("set_up_s".into(), json!(round(set_up_s, 1)));
    f.insert("window_s".into(), json!(round(window_s, 1)));
    f.insert(
        "quiet_every_ms".into(),
        json!(options.quiet_every.as_millis()),
    );
    let mut records = 0;
    {
        let samples = samples.lock().expect("samples");
        records += samples.to_board.len() + samples.to_hubspot.len();
        // Quiet accounts on a noisy account's portal, also on their own.
        let noisy_portals: Vec<PortalId> = tenants
            .iter()
            .take(options.noisy)
            .map(|t| t.portal)
            .collect();
        let beside_noisy = |i: &usize| noisy_portals.contains(&tenants[*i].portal);
        for (direction, values) in [
            ("hubspot_to_board", &samples.to_board),
            ("board_to_hubspot", &samples.to_hubspot),
        ] {
            for (group, keep) in [
                ("quiet", &(|_: &usize| true) as &dyn Fn(&usize) -> bool),
                ("quiet_beside_noisy", &beside_noisy),
            ] {
                let mut kept: Vec<f64> = values
                    .iter()
                    .filter(|(i, _)| keep(i))
                    .map(|(_, ms)| *ms)
                    .collect();
                kept.sort_by(f64::total_cmp);
                f.insert(format!("{group}_{direction}_samples"), json!(kept.len()));
                for (name, q) in [("p50", 0.5), ("p95", 0.95), ("max", 1.0)] {
                    f.insert(
                        format!("{group}_{direction}_{name}_ms"),
                        json!(round(percentile(&kept, q), 1)),
                    );
                }
            }
        }
        f.insert("quiet_unfinished".into(), json!(samples.unfinished));
    }
    let board_ceiling = 0.8 * f64::from(Setup::default().board_per_second) * window_s;
    let hubspot_ceiling = 8.8 * window_s;
    for (i, tenant) in tenants.iter().take(options.noisy).enumerate() {
        let board_used = board_calls
            .iter()
            .filter(|r| r["account"] == tenant.account.as_str())
            .count();
        let written = board_calls
            .iter()
            .filter(|r| {
                r["account"] == tenant.account.as_str()
                    && r["method"] == "PATCH"
                    && r["status"] == 200
            })
            .count();
        let portal_calls: Vec<&Value> = hubspot_calls
            .iter()
            .filter(|r| r["portal"] == tenant.portal.get())
            .collect();
        let updated: u64 = portal_calls
            .iter()
            .filter(|r| {
                r["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/batch/update"))
                    && r["status"].as_u64().is_some_and(|s| s < 300)
            })
            .filter_map(|r| r["inputs"].as_u64())
            .sum();
        records += written + updated as usize;
        let key = if options.noisy == 1 {
            "noisy".to_owned()
        } else {
            format!("noisy{i}")
        };
        f.insert(format!("{key}_board_calls"), json!(board_used));
        // Where the account's board budget sat idle: its calls' start, and
        // the gaps over 2 s between them (a read and its update come together;
        // deals about 0.8 s apart on a full budget).
        let mut at: Vec<i64> = board_calls
            .iter()
            .filter(|r| r["account"] == tenant.account.as_str())
            .filter_map(|r| r["at_ms"].as_i64())
            .collect();
        at.sort_unstable();
        let gaps: Vec<i64> = at
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|gap| *gap > 2_000)
            .collect();
        f.insert(
            format!("{key}_board_first_call_s"),
            json!(round(
                at.first()
                    .map_or(window_s, |first| (first - started_ms) as f64 / 1000.0),
                1
            )),
        );
        f.insert(format!("{key}_board_gaps_over_2s"), json!(gaps.len()));
        f.insert(
            format!("{key}_board_gaps_over_2s_s"),
            json!(round(gaps.iter().sum::<i64>() as f64 / 1000.0, 1)),
        );
        f.insert(
            format!("{key}_board_calls_per_ceiling"),
            json!(round(board_used as f64 / board_ceiling, 3)),
        );
        f.insert(
            format!("{key}_portal_hubspot_calls"),
            json!(portal_calls.len()),
        );
        f.insert(
            format!("{key}_portal_hubspot_calls_per_ceiling"),
            json!(round(portal_calls.len() as f64 / hubspot_ceiling, 3)),
        );
        f.insert(format!("{key}_board_writes"), json!(written));
        f.insert(format!("{key}_hubspot_updates"), json!(updated));
    }
    let status = |r: &&Value| r["status"] == 429;
    f.insert(
        "hubspot_rate_limit_429s".into(),
        json!(hubspot_calls.iter().filter(status).count()),
    );
    f.insert(
        "board_rate_limit_429s".into(),
        json!(board_calls.iter().filter(status).count()),
    );
    f.insert(
        "worker_wait_share".into(),
        json!(round(waited_ns as f64 / (busy_ns.max(1)) as f64, 3)),
    );
    f.insert("backlog_left".into(), json!(h.depth()));
    let mut by_path: std::collections::BTreeMap<String, usize> = Default::default();
    for call in &hubspot_calls {
        let path = call["path"].as_str().unwrap_or_default();
        // Ids out of the path: /crm/objects/2026-03/deals/123 counts as …/deals/{id},
        // a journal offset as {offset}.
        let shape: Vec<&str> = path
            .split('/')
            .map(|part| {
                if part.chars().all(|c| c.is_ascii_digit()) && part.len() > 4 {
                    "{id}"
                } else if part.len() >= 32 && part.contains('-') {
                    "{offset}"
                } else {
                    part
                }
            })
            .collect();
        *by_path
            .entry(format!(
                "{} {}",
                call["method"].as_str().unwrap_or_default(),
                shape.join("/")
            ))
            .or_default() += 1;
    }
    f.insert("hubspot_calls_by_path".into(), json!(by_path));
    f.insert("records".into(), json!(records));
    // Everything runs in this process: the stack, both emulators, the load.
    f.insert("cpu_cores_used".into(), json!(round(cpu_cores, 2)));
    h.stop().await;
    Ok(f)
}

/// Accounts `t0000…` in board and portals in HubSpot, each account connected
/// to its portal through the whole OAuth flow, stages mapped.
async fn connect(h: &Harness, options: &Options) -> anyhow::Result<Vec<Tenant>> {
    let names: Vec<String> = (0..options.accounts).map(|i| format!("t{i:04}")).collect();
    h.control("board", "/_control/accounts", Some(json!({"ids": names})))
        .await?;
    let mut portals = vec![sandbox_hubspot::PORTAL_ID];
    if options.portals > 1 {
        let added = h
            .control(
                "hubspot",
                "/_control/portals",
                Some(json!({"count": options.portals - 1})),
            )
            .await?;
        portals.extend(
            added["portals"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64),
        );
    }
    anyhow::ensure!(portals.len() == options.portals, "portals not added");
    let mut tenants = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let portal = portals[i % portals.len()];
        h.run.connect_to(name, portal, None).await;
        tenants.push(Tenant {
            account: name.parse()?,
            portal: PortalId::new(portal)?,
            pairs: Vec::new(),
        });
    }
    Ok(tenants)
}

/// `updates` for `account` made in board, not through board's API (so not on
/// the account's API limit), each with its change event: as an import makes
/// them (`route` `bulk`: the events go to board's bulk lane) or a person in
/// board's screens (`edits`: the ordinary lane).
async fn board_changes(
    http: &reqwest::Client,
    base: &str,
    route: &str,
    account: &str,
    updates: &[Value],
) -> anyhow::Result<()> {
    let response = http
        .post(format!("{base}/_sandbox/board/_control/{route}"))
        .json(&json!({"account_id": account, "updates": updates}))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "board bulk for {account}: {}",
        response.status()
    );
    Ok(())
}

/// The noisy account's HubSpot side: its first half of deals renamed again
/// and again (100 per call, as an import or a workflow would), `backlog` changes.
async fn noisy_hubspot(
    http: reqwest::Client,
    base: String,
    tenants: Arc<Vec<Tenant>>,
    i: usize,
    backlog: usize,
) -> anyhow::Result<()> {
    let tenant = &tenants[i];
    let half = &tenant.pairs[..tenant.pairs.len() / 2];
    let mut sent = 0;
    let mut round = 0;
    while sent < backlog {
        for chunk in half.chunks(100) {
            let inputs: Vec<Value> = chunk
                .iter()
                .map(|(deal, _)| {
                    json!({"id": deal.to_string(), "properties": {"dealname": format!("N{deal}-h{round}")}})
                })
                .collect();
            as_person(
                &http,
                &base,
                tenant.portal.get(),
                reqwest::Method::POST,
                "/crm/objects/2026-03/deals/batch/update",
                Some(json!({"inputs": inputs})),
            )
            .await?;
            sent += chunk.len();
            if sent >= backlog {
                break;
            }
        }
        round += 1;
    }
    Ok(())
}

/// The noisy account's board side: its second half of projects renamed by
/// an import, `backlog` change events at once.
async fn noisy_board(
    http: reqwest::Client,
    base: String,
    tenants: Arc<Vec<Tenant>>,
    i: usize,
    backlog: usize,
) -> anyhow::Result<()> {
    let tenant = &tenants[i];
    let half = &tenant.pairs[tenant.pairs.len() / 2..];
    let updates: Vec<Value> = (0..backlog)
        .map(|n| {
            let (_, project) = half[n % half.len()];
            json!({"resource": "projects", "id": project,
                   "fields": {"name": format!("N{project}-b{}", n / half.len())}})
        })
        .collect();
    for chunk in updates.chunks(500) {
        board_changes(&http, &base, "bulk", tenant.account.as_str(), chunk).await?;
    }
    Ok(())
}

/// One quiet account: every `every`, its deal renamed in HubSpot (timed until
/// board's project has the name), then its project renamed in board (timed
/// until HubSpot's deal has it), until `deadline`.
#[allow(clippy::too_many_arguments)]
async fn quiet_account(
    http: reqwest::Client,
    base: String,
    sandboxes: local_stack::Sandboxes,
    tenants: Arc<Vec<Tenant>>,
    i: usize,
    phase: Duration,
    every: Duration,
    deadline: Instant,
    samples: Arc<std::sync::Mutex<Samples>>,
) -> anyhow::Result<()> {
    let tenant = &tenants[i];
    let account = tenant.account.as_str();
    let (deal, project) = tenant.pairs[0];
    tokio::time::sleep(phase).await;
    let mut n = 0;
    while Instant::now() + Duration::from_millis(500) < deadline {
        let cycle = Instant::now();
        let name = format!("Q{i}-h{n}");
        as_person(
            &http,
            &base,
            tenant.portal.get(),
            reqwest::Method::PATCH,
            &format!("/crm/objects/2026-03/deals/{deal}"),
            Some(json!({"properties": {"dealname": name}})),
        )
        .await?;
        let seen = watch(deadline, || {
            sandboxes.board.field(account, "projects", project, "name") == Some(json!(name))
        })
        .await;
        record(&samples, i, seen, |s| &mut s.to_board);

        // A person renaming the project in board's screens (not board's
        // API: a person's edits do not spend the account's API limit).
        let name = format!("Q{i}-b{n}");
        let rename = json!({"resource": "projects", "id": project, "fields": {"name": name}});
        board_changes(&http, &base, "edits", account, &[rename]).await?;
        let seen = watch(deadline, || {
            sandboxes
                .hubspot
                .property(tenant.portal.get(), "deals", deal, "dealname")
                .as_deref()
                == Some(name.as_str())
        })
        .await;
        record(&samples, i, seen, |s| &mut s.to_hubspot);
        n += 1;
        tokio::time::sleep(every.saturating_sub(cycle.elapsed())).await;
    }
    Ok(())
}

/// Milliseconds until `arrived` holds, checked every 10 ms in process; `Err`
/// with the time waited when the window (and 30 s of grace) ends first.
async fn watch(deadline: Instant, arrived: impl Fn() -> bool) -> Result<f64, f64> {
    let started = Instant::now();
    let give_up = deadline + Duration::from_secs(30);
    loop {
        if arrived() {
            return Ok(started.elapsed().as_secs_f64() * 1000.0);
        }
        if Instant::now() > give_up {
            return Err(started.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn record(
    samples: &std::sync::Mutex<Samples>,
    account: usize,
    seen: Result<f64, f64>,
    series: impl Fn(&mut Samples) -> &mut Vec<(usize, f64)>,
) {
    let mut samples = samples.lock().expect("samples");
    let ms = match seen {
        Ok(ms) => ms,
        Err(ms) => {
            samples.unfinished += 1;
            ms
        }
    };
    series(&mut samples).push((account, ms));
}

/// This process's CPU time so far (user and system), in seconds.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // After the command name's closing parenthesis: fields 14 and 15 are utime, stime.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks: f64 =
                fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}
