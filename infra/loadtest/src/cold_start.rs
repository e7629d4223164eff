//! `cold-start`: each function's release binary started as Lambda starts it —
//! its environment as the template sets it, the Lambda runtime API served by a
//! small stand-in on loopback, DynamoDB, SQS, Secrets Manager and KMS by moto —
//! and timed: from the process's start to its first request for an invocation
//! (`init_ms`: configuration, secrets, the KMS unwrap, the SDK clients), the
//! first invocation's duration, and the process's peak RSS (`VmHWM`).
//!
//! Needs `cargo build --release` of the five functions first (the binaries are
//! looked up in the target directory, `CARGO_TARGET_DIR` or `target/`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine as _;
use board_hubspot::adapters::queue::sqs::SqsQueue;
use board_hubspot::app::services::MAX_RECEIVES;
use serde_json::{Value, json};

use crate::harness::round;
use crate::scenarios::Figures;

/// The functions, each with the invocation it is given first: an HTTP API
/// request for the four behind API Gateway (answered without any outside call
/// beyond our store: a refusal is an answer), an empty SQS batch for the worker.
const FUNCTIONS: [(&str, &str); 5] = [
    ("config-api", "/v1/hubspot/connection"),
    ("oauth-callback", "/oauth/callback"),
    ("webhook", "/hubspot/webhooks"),
    ("crm-card", "/hubspot/card"),
    ("sync-worker", ""),
];

/// What the runtime API stand-in saw of one process.
#[derive(Default)]
struct Seen {
    /// When the process first asked for an invocation.
    first_next: Option<Instant>,
    /// When it answered the first invocation (response or error).
    answered: Option<Instant>,
    outcome: Option<String>,
    event: Value,
}

type Shared = Arc<Mutex<Seen>>;

async fn next(State(seen): State<Shared>) -> impl IntoResponse {
    let event = {
        let mut seen = seen.lock().expect("seen");
        if seen.first_next.is_some() {
            None
        } else {
            seen.first_next = Some(Instant::now());
            Some(seen.event.clone())
        }
    };
    let Some(event) = event else {
        // The second request for an invocation: the process is measured; it
        // waits here until it is stopped, as a Lambda between invocations.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    };
    let deadline = crate::harness::now_ms() + 30_000;
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", "cold-start-1".to_owned()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:cold-start".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
        ),
    ] {
        headers.insert(name, value.parse().expect("header"));
    }
    (StatusCode::OK, headers, axum::Json(event)).into_response()
}

async fn answered(
    State(seen): State<Shared>,
    Path((_, outcome)): Path<(String, String)>,
    body: String,
) -> StatusCode {
    let mut seen = seen.lock().expect("seen");
    seen.answered.get_or_insert_with(Instant::now);
    seen.outcome.get_or_insert_with(|| {
        format!("{outcome}: {}", body.chars().take(300).collect::<String>())
    });
    StatusCode::ACCEPTED
}

async fn init_error(State(seen): State<Shared>, body: String) -> StatusCode {
    let mut seen = seen.lock().expect("seen");
    seen.answered.get_or_insert_with(Instant::now);
    seen.outcome = Some(format!("init error: {body}"));
    StatusCode::ACCEPTED
}

/// An HTTP API (payload 2.0) request for `path`, as API Gateway sends it.
fn http_event(path: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "cold-start.example", "user-agent": "cold-start"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "cold",
            "domainName": "cold-start.example",
            "domainPrefix": "cold-start",
            "http": {"method": if path == "/hubspot/webhooks" { "POST" } else { "GET" },
                     "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "cold-start"},
            "requestId": "cold-start-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "07/Dec/2026:00:00:00 +0000",
            "timeEpoch": 0
        },
        "body": if path == "/hubspot/webhooks" { Some("[]") } else { None },
        "isBase64Encoded": false
    })
}

/// The resources the template creates, on moto: table, three queues with
/// their DLQs, the token key, and the two secrets (the functions' and the
/// webhook's signing-only one). Returns the functions' shared environment.
async fn provision() -> anyhow::Result<(BTreeMap<String, String>, String)> {
    let sdk = tests::aws_config().await;
    let table = tests::dynamo_table().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let visibility = Duration::from_secs(360);
    let mut queues = Vec::new();
    for name in ["work", "board", "bulk"] {
        queues.push(
            SqsQueue::create(sqs.clone(), &tests::unique(name), visibility, MAX_RECEIVES).await?,
        );
    }
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key = kms.create_key().send().await?;
    let key = key
        .key_metadata()
        .and_then(|m| m.arn())
        .ok_or_else(|| anyhow::anyhow!("no key arn"))?
        .to_owned();
    let (context_key, context_value) = board_hubspot::adapters::secrets::KMS_CONTEXT;
    let data_key = kms
        .generate_data_key()
        .key_id(&key)
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .encryption_context(context_key, context_value)
        .send()
        .await?;
    let wrapped = base64::engine::general_purpose::STANDARD.encode(
        data_key
            .ciphertext_blob()
            .ok_or_else(|| anyhow::anyhow!("no data key"))?
            .as_ref(),
    );
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let secret = |value: Value| {
        let secrets = secrets.clone();
        async move {
            let created = secrets
                .create_secret()
                .name(tests::unique("cold-start"))
                .secret_string(value.to_string())
                .send()
                .await?;
            anyhow::Ok(created.arn().unwrap_or_default().to_owned())
        }
    };
    let functions_secret = secret(json!({
        "HUBSPOT_CLIENT_SECRET": "cold-start-client-secret",
        "TOKEN_DATA_KEY": wrapped,
        "BOARD_JWT_SECRET": "cold-start-board-jwt-secret-of-32-bytes!",
        "BOARD_CREDENTIALS": "{}",
    }))
    .await?;
    let signing_secret =
        secret(json!({"HUBSPOT_CLIENT_SECRET": "cold-start-client-secret"})).await?;
    let endpoint = tests::moto_endpoint();
    let mut env: BTreeMap<String, String> = [
        // What Lambda sets.
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/cold-start"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "cold-start"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
        // The template's Globals (template.yaml), with local stand-ins.
        ("STORE", "dynamodb"),
        ("PUBLIC_BASE_URL", "https://cold-start.example"),
        ("HUBSPOT_CLIENT_ID", "cold-start-client"),
        ("HUBSPOT_APP_ID", "777"),
        ("HUBSPOT_API_BASE", "http://127.0.0.1:9"),
        ("BOARD_API_BASE", "http://127.0.0.1:9"),
        ("BOARD_SETTINGS_URL", "https://board.example/settings"),
        ("BOARD_APP_URL", "https://board.example"),
        ("BOARD_JWT_ALGORITHM", "HS256"),
        ("METRICS_NAMESPACE", "board-hubspot-cold-start"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    env.insert("AWS_ENDPOINT_URL".into(), endpoint);
    env.insert("TABLE_NAME".into(), table.name().to_owned());
    env.insert("TOKEN_KMS_KEY_ID".into(), key);
    env.insert("SECRETS_ARN".into(), functions_secret);
    for (queue, url, dlq) in [
        (&queues[0], "WORK_QUEUE_URL", "DEAD_LETTER_QUEUE_URL"),
        (&queues[1], "BOARD_EVENTS_QUEUE_URL", "BOARD_EVENTS_DLQ_URL"),
        (
            &queues[2],
            "BOARD_BULK_EVENTS_QUEUE_URL",
            "BOARD_BULK_EVENTS_DLQ_URL",
        ),
    ] {
        env.insert(url.into(), queue.url().to_owned());
        env.insert(dlq.into(), queue.dead_letter_url().to_owned());
    }
    Ok((env, signing_secret))
}

/// The release binary of `function`.
fn binary(function: &str) -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("release").join(function)
}

/// Peak resident set of `pid` (`VmHWM`), in MB.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Starts `function` once, cold, and measures it.
async fn measure(
    function: &str,
    path: &str,
    env: &BTreeMap<String, String>,
    signing_secret: &str,
) -> anyhow::Result<(f64, f64, f64, String)> {
    let bin = binary(function);
    anyhow::ensure!(
        bin.exists(),
        "{} not found: run `cargo build --release` first",
        bin.display()
    );
    let seen: Shared = Arc::new(Mutex::new(Seen {
        event: if path.is_empty() {
            json!({"Records": []})
        } else {
            http_event(path)
        },
        ..Seen::default()
    }));
    let runtime = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/{outcome}",
            post(answered),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(seen.clone());
    let api = tests::serve(runtime).await;
    let mut command = tokio::process::Command::new(&bin);
    command
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_RUNTIME_API", api.trim_start_matches("http://"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if function == "webhook" {
        // The template's webhook function: its own signing-only secret.
        command
            .env("SECRETS_SCOPE", "signing")
            .env("SECRETS_ARN", signing_secret)
            .env_remove("TOKEN_KMS_KEY_ID");
    }
    let started = Instant::now();
    let mut child = command.spawn()?;
    let pid = child.id().unwrap_or_default();
    let deadline = started + Duration::from_secs(60);
    let (first_next, done) = loop {
        {
            let seen = seen.lock().expect("seen");
            if let (Some(next), Some(done)) = (seen.first_next, seen.answered) {
                break (next, done);
            }
            if seen.first_next.is_none()
                && let Some(outcome) = &seen.outcome
            {
                anyhow::bail!("{function}: {outcome}");
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                use tokio::io::AsyncReadExt as _;
                let _ = pipe.read_to_string(&mut stderr).await;
            }
            anyhow::bail!("{function} exited ({status}) before answering: {stderr}");
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{function}: no answer within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    // Let the process settle back to waiting for the next invocation.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rss = peak_rss_mb(pid).unwrap_or(0.0);
    let _ = child.kill().await;
    let outcome = seen
        .lock()
        .expect("seen")
        .outcome
        .clone()
        .unwrap_or_default();
    Ok((
        (first_next - started).as_secs_f64() * 1000.0,
        (done - first_next).as_secs_f64() * 1000.0,
        rss,
        outcome,
    ))
}

/// Each function started `runs` times; the median of each figure.
pub async fn run(runs: usize) -> anyhow::Result<Figures> {
    let (env, signing_secret) = provision().await?;
    let mut f = Figures::new();
    f.insert("runs_per_function".into(), json!(runs));
    for (function, path) in FUNCTIONS {
        let mut init = Vec::new();
        let mut first = Vec::new();
        let mut rss = Vec::new();
        let mut outcome = String::new();
        for _ in 0..runs.max(1) {
            let (i, d, r, o) = measure(function, path, &env, &signing_secret).await?;
            init.push(i);
            first.push(d);
            rss.push(r);
            outcome = o;
        }
        let median = |values: &mut Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        let key = function.replace('-', "_");
        f.insert(format!("{key}_init_ms"), json!(round(median(&mut init), 1)));
        f.insert(
            format!("{key}_first_invocation_ms"),
            json!(round(median(&mut first), 1)),
        );
        f.insert(format!("{key}_rss_mb"), json!(round(median(&mut rss), 1)));
        println!(
            "cold-start {function}: init {:.1} ms, first invocation {:.1} ms, peak RSS {:.1} MB ({})",
            init[init.len() / 2],
            first[first.len() / 2],
            rss[rss.len() / 2],
            outcome.chars().take(80).collect::<String>()
        );
    }
    Ok(f)
}
