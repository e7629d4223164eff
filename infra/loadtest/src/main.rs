//! `cargo run --profile loadtest -p loadtest -- --scenario <name> [--n N] [...]`
//! Prints a human summary, then the scenario's figures as one JSON object on
//! the last line.

use std::time::Duration;

use loadtest::scenarios::{self, Figures};

const USAGE: &str = "usage: loadtest --scenario <bulk-hubspot|bulk-board|board-ceiling|webhook|latency|soak|tenants|cold-start|backfill> \
[--n N] [--window-ms MS] [--board-per-second N] [--seed S] [--accounts N] [--portals M] [--noisy K] [--window-s S]
  bulk-hubspot   N deals created at once in HubSpot (default 1000)
  bulk-board     N linked projects changed at once in board (default 500)
  board-ceiling  60 linked deals changed 5 times each in HubSpot
  webhook        200 signed deliveries of 100 events
  latency        N single changes each way (default 50); --window-ms: board events batching window (default 1000)
  soak           N mixed events with faults (default 10000); --board-per-second (default 30)
  tenants        --accounts N (default 50) on --portals M (default N/2), --noisy K of them (default 1)
                 with a backlog of --n changes each way (default 20000), measured for --window-s (default 120)
  cold-start     each function's release binary started --n times (default 3) as Lambda starts it
                 (run `cargo build --release` first)";

struct Args {
    scenario: String,
    n: Option<usize>,
    window_ms: u64,
    board_per_second: usize,
    seed: u64,
    accounts: usize,
    portals: Option<usize>,
    noisy: usize,
    window_s: Option<u64>,
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        scenario: String::new(),
        n: None,
        window_ms: 1000,
        board_per_second: 30,
        seed: 7,
        accounts: 50,
        portals: None,
        noisy: 1,
        window_s: None,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--scenario" => parsed.scenario = value()?,
            "--n" => parsed.n = Some(value()?.parse().map_err(|_| "--n: a number")?),
            "--window-ms" => {
                parsed.window_ms = value()?.parse().map_err(|_| "--window-ms: a number")?
            }
            "--board-per-second" => {
                parsed.board_per_second = value()?
                    .parse()
                    .map_err(|_| "--board-per-second: a number")?
            }
            "--seed" => parsed.seed = value()?.parse().map_err(|_| "--seed: a number")?,
            "--accounts" => {
                parsed.accounts = value()?.parse().map_err(|_| "--accounts: a number")?
            }
            "--portals" => {
                parsed.portals = Some(value()?.parse().map_err(|_| "--portals: a number")?)
            }
            "--noisy" => parsed.noisy = value()?.parse().map_err(|_| "--noisy: a number")?,
            "--window-s" => {
                parsed.window_s = Some(value()?.parse().map_err(|_| "--window-s: a number")?)
            }
            "--url" => {
                return Err(
                    "--url: every scenario needs the in-process store (links are seeded into it); \
                            run without --url"
                        .into(),
                );
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if parsed.scenario.is_empty() {
        return Err("--scenario is required".into());
    }
    Ok(parsed)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("{message}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let started = std::time::Instant::now();
    let figures: Figures = match args.scenario.as_str() {
        "bulk-hubspot" => scenarios::bulk_hubspot(args.n.unwrap_or(1000)).await?,
        "bulk-board" => scenarios::bulk_board(args.n.unwrap_or(500)).await?,
        "board-ceiling" => scenarios::board_ceiling(args.n.unwrap_or(60), 5).await?,
        "webhook" => scenarios::webhook(args.n.unwrap_or(200), 100).await?,
        "latency" => {
            scenarios::latency(args.n.unwrap_or(50), Duration::from_millis(args.window_ms)).await?
        }
        "soak" => {
            let options = loadtest::soak::Options {
                events: args.n.unwrap_or(10_000),
                board_per_second: args.board_per_second,
                seed: args.seed,
                ..loadtest::soak::Options::default()
            };
            loadtest::soak::run(options).await?
        }
        "tenants" => {
            let mut options = loadtest::tenants::Options::for_accounts(args.accounts);
            if let Some(portals) = args.portals {
                options.portals = portals.clamp(1, options.accounts);
            }
            options.noisy = args.noisy;
            if let Some(n) = args.n {
                options.backlog = n;
            }
            if let Some(s) = args.window_s {
                options.window = Duration::from_secs(s);
            }
            options.seed = args.seed;
            loadtest::tenants::run(options).await?
        }
        "cold-start" => loadtest::cold_start::run(args.n.unwrap_or(3)).await?,
        "backfill" => {
            let mut options = loadtest::backfill::Options::scaled(args.n.unwrap_or(20_000));
            options.seed = args.seed;
            loadtest::backfill::run(options).await?
        }
        other => {
            eprintln!("unknown scenario {other}\n{USAGE}");
            std::process::exit(2);
        }
    };
    // Cold start measures other processes: this one's RSS and cost are not its figures.
    let figures = if args.scenario == "cold-start" {
        figures
    } else {
        scenarios::finish(figures)
    };
    println!(
        "scenario {} finished in {:.1} s",
        args.scenario,
        started.elapsed().as_secs_f64()
    );
    for (name, value) in &figures {
        println!("  {name:<34} {value}");
    }
    let mut line = serde_json::Map::new();
    line.insert("scenario".into(), args.scenario.clone().into());
    line.extend(figures);
    println!("{}", serde_json::Value::Object(line));
    Ok(())
}
