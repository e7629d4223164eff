//! Test harness shared by the suites: a moto server for the DynamoDB/SQS
//! adapters, fresh tables and queues per test, and the stores built on them.

use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_dynamodb::config::{Credentials, Region};
use board_hubspot::adapters::queue::sqs::SqsQueue;
use board_hubspot::adapters::store::TableStore;
use board_hubspot::adapters::table::dynamodb::DynamoTable;

static MOTO: OnceLock<String> = OnceLock::new();

/// The moto endpoint: `MOTO_ENDPOINT` if the test command started one, else a
/// server this process starts (and that exits with it). Panics if neither
/// works: the DynamoDB/SQS suites must fail, never skip, without moto.
pub fn moto_endpoint() -> String {
    MOTO.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("MOTO_ENDPOINT") {
            return endpoint;
        }
        spawn_moto().unwrap_or_else(|e| {
            panic!("moto server unavailable ({e}); run scripts/dev-tools.sh or set MOTO_ENDPOINT")
        })
    })
    .clone()
}

fn spawn_moto() -> anyhow::Result<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let binary = std::env::var("MOTO_SERVER")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join(".venv/bin/moto_server"));
    anyhow::ensure!(binary.exists(), "{} not found", binary.display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // The shell kills moto when our stdin pipe closes, i.e. when this test process ends.
    let script = format!(
        "\"{}\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & pid=$!; read _; kill $pid",
        binary.display()
    );
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .spawn()?;
    std::mem::forget(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(format!("http://127.0.0.1:{port}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!("moto did not listen on port {port} within 15 s")
}

/// SDK configuration pointing at moto (dummy credentials, fixed region).
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A fresh DynamoDB table on moto, laid out as in production.
pub async fn dynamo_table() -> DynamoTable {
    let config = aws_config().await;
    let table = DynamoTable::new(aws_sdk_dynamodb::Client::new(&config), unique("t"));
    table
        .create_if_missing()
        .await
        .expect("create table on moto");
    table
}

pub async fn dynamo_store() -> TableStore<DynamoTable> {
    TableStore::new(dynamo_table().await)
}

/// A fresh SQS queue and DLQ on moto.
pub async fn sqs_queue(visibility: Duration, max_receives: u32) -> SqsQueue {
    let config = aws_config().await;
    SqsQueue::create(
        aws_sdk_sqs::Client::new(&config),
        &unique("q"),
        visibility,
        max_receives,
    )
    .await
    .expect("create queues on moto")
}

/// Serves a router on a free local port; returns its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    format!("http://{addr}")
}
pub mod browser;
pub mod stack;

/// Evaluates `$fetch` every 50 ms until `$done` holds of it (5 s at most) and
/// gives the last value, there or not: the caller's assertions say what was
/// expected. The stack works asynchronously (webhooks, queues), so tests wait.
#[macro_export]
macro_rules! eventually {
    ($fetch:expr, |$value:ident| $done:expr) => {{
        let mut $value = $fetch;
        for _ in 0..100 {
            if $done {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            $value = $fetch;
        }
        $value
    }};
}

/// A deal ↔ project link as registration leaves it: name equal on both sides,
/// the deal in the default pipeline's unmapped first stage, no close date.
pub fn registered_deal_link(
    account: &board_hubspot::domain::AccountId,
    portal: board_hubspot::domain::PortalId,
    deal: u64,
    project: u64,
    name: &str,
) -> board_hubspot::domain::Link {
    use board_hubspot::domain::Link;
    use board_hubspot::domain::link::Baseline;
    Link {
        baseline: [
            ("name", Some(name.to_owned())),
            ("stage", Some("default:appointmentscheduled".to_owned())),
            ("close_date", None),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Baseline::both(v)))
        .collect(),
        ..Link::deal(account.clone(), portal, deal, project)
    }
}

/// HubSpot's v3 signature of a request (method, URI, body, timestamp) with the
/// emulator app's client secret: what HubSpot sends our card and webhook routes.
pub fn hubspot_signature(method: &str, uri: &str, body: &str, timestamp: i64) -> String {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"sandbox-client-secret").unwrap();
    mac.update(format!("{method}{uri}{body}{timestamp}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
