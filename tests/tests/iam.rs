//! Least privilege, checked: each function runs on its own AWS clients (DynamoDB,
//! SQS, Secrets Manager, KMS on moto) whose every call is recorded as the IAM
//! action and resource it needs, while a scenario drives all five through their
//! public routes. The permissions `template.yaml` grants each function must be
//! exactly what it was seen to use (plus what its SQS event sources need).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_kms::types::DataKeySpec;
use base64::Engine as _;
use board_hubspot::adapters::clock::SystemClock;
use board_hubspot::adapters::queue::sqs::SqsQueue;
use board_hubspot::adapters::secrets::{KMS_CONTEXT, SECRET_NAMES, SIGNING_NAMES, SecretSource};
use board_hubspot::adapters::store::TableStore;
use board_hubspot::adapters::table::dynamodb::DynamoTable;
use board_hubspot::app::Services;
use board_hubspot::app::services::{MAX_RECEIVES, WORK_VISIBILITY};
use board_hubspot::config::Settings;
use board_hubspot::ports::WorkQueue;
use serde_json::{Value, json};
use serde_yaml::Value as Yaml;
use tests::stack::Run;

/// (IAM action, the template's logical id of the resource).
type Grant = (String, String);

/// Records every AWS call a function's clients make as the grants it needs.
#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<BTreeSet<Grant>>>,
    /// Physical names (table, queue URLs, secret, key) → logical ids.
    names: Arc<BTreeMap<String, String>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl Recorder {
    fn logical(&self, physical: &str) -> String {
        self.names
            .get(physical)
            .cloned()
            .unwrap_or_else(|| format!("unknown:{physical}"))
    }

    fn grants(&self) -> BTreeSet<Grant> {
        self.calls.lock().unwrap().clone()
    }

    /// What one request needs, from its `X-Amz-Target` and JSON body.
    fn needs(&self, target: &str, body: &Value) -> Vec<Grant> {
        let (service, operation) = target.split_once('.').unwrap_or((target, ""));
        let text = |key: &str| body[key].as_str().unwrap_or_default().to_owned();
        match service {
            s if s.starts_with("DynamoDB") => {
                let table = |name: &str, index: Option<&str>| match index {
                    Some(_) => format!("{}/index", self.logical(name)),
                    None => self.logical(name),
                };
                match operation {
                    "TransactWriteItems" => body["TransactItems"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|item| item.as_object().into_iter().flatten())
                        .map(|(kind, detail)| {
                            let action = match kind.as_str() {
                                "Put" => "PutItem",
                                "Update" => "UpdateItem",
                                "Delete" => "DeleteItem",
                                _ => "ConditionCheckItem",
                            };
                            (
                                format!("dynamodb:{action}"),
                                table(detail["TableName"].as_str().unwrap_or_default(), None),
                            )
                        })
                        .collect(),
                    "BatchWriteItem" | "BatchGetItem" => body["RequestItems"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(name, _)| (format!("dynamodb:{operation}"), table(name, None)))
                        .collect(),
                    _ => vec![(
                        format!("dynamodb:{operation}"),
                        table(&text("TableName"), body["IndexName"].as_str()),
                    )],
                }
            }
            // The batch calls need the single call's permission.
            "AmazonSQS" => vec![(
                format!("sqs:{}", operation.trim_end_matches("Batch")),
                self.logical(&text("QueueUrl")),
            )],
            "secretsmanager" => vec![(
                format!("secretsmanager:{operation}"),
                self.logical(&text("SecretId")),
            )],
            "TrentService" => vec![(format!("kms:{operation}"), self.logical(&text("KeyId")))],
            other => vec![(format!("unknown:{other}.{operation}"), String::new())],
        }
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "iam-audit"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let request = context.request();
        let target = request
            .headers()
            .get("x-amz-target")
            .unwrap_or_default()
            .to_owned();
        let body: Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let needs = self.needs(&target, &body);
        self.calls.lock().unwrap().extend(needs);
        Ok(())
    }
}

/// The resources the template declares, made on moto.
struct Resources {
    table: String,
    work: SqsQueue,
    board: SqsQueue,
    /// board's bulk lane.
    bulk: SqsQueue,
    secret: String,
    /// The webhook function's own secret (the HubSpot client secret only).
    signing_secret: String,
    key: String,
}

impl Resources {
    async fn create() -> Self {
        let sdk = tests::aws_config().await;
        let table = tests::dynamo_table().await.name().to_owned();
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let work = SqsQueue::create(
            sqs.clone(),
            &tests::unique("work"),
            WORK_VISIBILITY,
            MAX_RECEIVES,
        )
        .await
        .unwrap();
        let board = SqsQueue::create(
            sqs.clone(),
            &tests::unique("board"),
            WORK_VISIBILITY,
            MAX_RECEIVES,
        )
        .await
        .unwrap();
        let bulk = SqsQueue::create(sqs, &tests::unique("bulk"), WORK_VISIBILITY, MAX_RECEIVES)
            .await
            .unwrap();
        let kms = aws_sdk_kms::Client::new(&sdk);
        let key = kms.create_key().send().await.unwrap();
        let key = key.key_metadata().unwrap().arn().unwrap().to_owned();
        let data_key = kms
            .generate_data_key()
            .key_id(&key)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context(KMS_CONTEXT.0, KMS_CONTEXT.1)
            .send()
            .await
            .unwrap();
        let wrapped = base64::engine::general_purpose::STANDARD
            .encode(data_key.ciphertext_blob().unwrap().as_ref());
        let secret = aws_sdk_secretsmanager::Client::new(&sdk)
            .create_secret()
            .name(tests::unique("secrets"))
            .secret_string(
                json!({"HUBSPOT_CLIENT_SECRET": "sandbox-client-secret", "TOKEN_DATA_KEY": wrapped})
                    .to_string(),
            )
            .send()
            .await
            .unwrap()
            .arn()
            .unwrap()
            .to_owned();
        let signing_secret = aws_sdk_secretsmanager::Client::new(&sdk)
            .create_secret()
            .name(tests::unique("signing"))
            .secret_string(json!({"HUBSPOT_CLIENT_SECRET": "sandbox-client-secret"}).to_string())
            .send()
            .await
            .unwrap()
            .arn()
            .unwrap()
            .to_owned();
        Self {
            table,
            work,
            board,
            bulk,
            secret,
            signing_secret,
            key,
        }
    }

    fn names(&self) -> BTreeMap<String, String> {
        let mut names = BTreeMap::from([
            (self.table.clone(), "Table".to_owned()),
            (self.work.url().to_owned(), "WorkQueue".to_owned()),
            (self.board.url().to_owned(), "BoardEventsQueue".to_owned()),
            (
                self.bulk.url().to_owned(),
                "BoardBulkEventsQueue".to_owned(),
            ),
            (self.secret.clone(), "Secrets".to_owned()),
            (self.signing_secret.clone(), "SigningSecret".to_owned()),
            (self.key.clone(), "TokenKey".to_owned()),
        ]);
        names.insert(
            self.work.dead_letter_url().to_owned(),
            "WorkDeadLetterQueue".to_owned(),
        );
        names.insert(
            self.board.dead_letter_url().to_owned(),
            "BoardEventsDeadLetterQueue".to_owned(),
        );
        names.insert(
            self.bulk.dead_letter_url().to_owned(),
            "BoardBulkEventsDeadLetterQueue".to_owned(),
        );
        names
    }

    /// One function's cold start: its secrets read through its own recorded
    /// clients, then its services.
    async fn function(&self, name: &str, settings: &Settings, recorder: &Recorder) -> Services {
        let sdk = tests::aws_config().await;
        // The public webhook function reads only its own signing secret.
        let signing = name == "webhook";
        let secrets = SecretSource {
            secrets: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(&sdk)
                    .interceptor(recorder.clone())
                    .build(),
            ),
            kms: aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(&sdk)
                    .interceptor(recorder.clone())
                    .build(),
            ),
            secret_id: if signing {
                self.signing_secret.clone()
            } else {
                self.secret.clone()
            },
            kms_key_id: if signing {
                String::new()
            } else {
                self.key.clone()
            },
            names: if signing {
                &SIGNING_NAMES
            } else {
                &SECRET_NAMES
            },
        };
        let values = secrets.fetch().await.expect("the function's secrets");
        assert_eq!(values.contains_key("TOKEN_KEY"), !signing, "{name}");
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .interceptor(recorder.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .interceptor(recorder.clone())
                .build(),
        );
        let mut services = Services::with_store(
            settings.clone(),
            TableStore::new(DynamoTable::new(dynamodb, self.table.clone())),
            Arc::new(SqsQueue::new(
                sqs.clone(),
                self.work.url(),
                self.work.dead_letter_url(),
            )),
            Arc::new(SystemClock),
        );
        services.board_queue = Arc::new(SqsQueue::new(
            sqs.clone(),
            self.board.url(),
            self.board.dead_letter_url(),
        ));
        services.board_bulk_queue = Arc::new(SqsQueue::new(
            sqs,
            self.bulk.url(),
            self.bulk.dead_letter_url(),
        ));
        services
    }
}

const FUNCTIONS: [(&str, &str); 5] = [
    ("config-api", "ConfigApiFunction"),
    ("oauth-callback", "OAuthCallbackFunction"),
    ("webhook", "WebhookFunction"),
    ("crm-card", "CrmCardFunction"),
    ("sync-worker", "SyncWorkerFunction"),
];

/// A resource expression of the template → the logical id the recorder uses.
fn resource(value: &Yaml) -> String {
    match value {
        Yaml::Tagged(tagged) => {
            let text = tagged.value.as_str().unwrap_or_default();
            match tagged.tag.to_string().as_str() {
                "!GetAtt" => text.trim_end_matches(".Arn").to_owned(),
                "!Ref" => text.to_owned(),
                "!Sub" => text
                    .strip_prefix("${")
                    .and_then(|rest| rest.split_once(".Arn}"))
                    .map(|(id, tail)| format!("{id}{}", tail.trim_end_matches("/*")))
                    .unwrap_or_else(|| format!("unparsed:{text}")),
                tag => format!("unparsed:{tag} {text}"),
            }
        }
        other => format!("unparsed:{other:?}"),
    }
}

fn list(value: &Yaml) -> Vec<&Yaml> {
    match value {
        Yaml::Sequence(items) => items.iter().collect(),
        single => vec![single],
    }
}

/// What the template grants `function` (logical id) through its own role:
/// every Allow statement's actions × resources, apart from the two every
/// function needs from the platform (its log group, X-Ray), which are checked
/// here. SAM policy templates and managed policies are refused: they grant
/// more than the code uses (SAM's SQS events even add queue access on `*`).
fn granted(template: &Yaml, function: &str) -> BTreeSet<Grant> {
    let resources = &template["Resources"];
    let properties = &resources[function]["Properties"];
    assert!(
        properties["Policies"].is_null(),
        "{function}: permissions only through its role"
    );
    let role_name = format!("{function}Role");
    assert_eq!(resource(&properties["Role"]), role_name);
    let role = &resources[role_name.as_str()]["Properties"];
    assert!(
        role["ManagedPolicyArns"].is_null(),
        "{function}: no managed policies"
    );
    let mut grants = BTreeSet::new();
    for policy in list(&role["Policies"]) {
        for statement in list(&policy["PolicyDocument"]["Statement"]) {
            assert_eq!(statement["Effect"].as_str(), Some("Allow"));
            let actions: Vec<&str> = list(&statement["Action"])
                .into_iter()
                .map(|a| a.as_str().expect("an action name"))
                .collect();
            let targets: Vec<String> = list(&statement["Resource"])
                .into_iter()
                .map(|r| match r {
                    Yaml::String(literal) => literal.clone(),
                    expression => resource(expression),
                })
                .collect();
            match statement["Sid"].as_str() {
                Some("Logs") => {
                    assert_eq!(actions, ["logs:CreateLogStream", "logs:PutLogEvents"]);
                    assert_eq!(targets, [format!("{function}Logs")]);
                    assert_eq!(
                        resource(&properties["LoggingConfig"]["LogGroup"]),
                        format!("{function}Logs")
                    );
                    continue;
                }
                Some("Tracing") => {
                    assert_eq!(
                        actions,
                        ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
                    );
                    continue;
                }
                _ => {}
            }
            for action in actions {
                assert!(!action.contains('*'), "{function}: wildcard {action}");
                for target in &targets {
                    assert_ne!(target, "*", "{function}: {action} on every resource");
                    grants.insert((action.to_owned(), target.clone()));
                }
            }
        }
    }
    grants
}

/// Every route of every function, and the worker's paths: both directions,
/// a registration, the card, a dead letter on each queue, a disconnect.
/// A project renamed by an import in board: its event goes to the bulk lane.
async fn bulk_change(run: &Run, project: u64, name: &str) {
    let rename = json!([{"resource": "projects", "id": project, "fields": {"name": name}}]);
    run.board_changes("bulk", "acct-a", rename).await;
}

async fn drive(run: &Run, resources: &Resources) {
    run.connect("acct-a", None).await;
    for path in [
        "/v1/hubspot/connection",
        "/v1/hubspot/pipelines",
        "/v1/hubspot/filter-options",
        "/v1/hubspot/history",
        "/openapi.json",
    ] {
        let (status, body) = run.api(reqwest::Method::GET, path, "acct-a", None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let company = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "株式会社監査"}})),
        )
        .await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "監査案件", "dealstage": "contractsent"},
                        "associations": [{"to": {"id": company["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]})),
        )
        .await;
    let deal = deal["id"].as_str().unwrap().to_owned();
    run.wait_for_draft("acct-a", &deal, "open").await;
    let project = run.register_draft("acct-a", &deal).await;

    // HubSpot → board, and board → HubSpot.
    run.update_deal(&deal, json!({"dealname": "監査案件(改)"}))
        .await;
    for _ in 0..100 {
        if run.inspect_project(project).await["name"] == "監査案件(改)" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = run
        .board(
            reqwest::Method::PATCH,
            &format!("/projects/{project}"),
            "acct-a",
            Some(json!({"name": "監査案件(board)"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    run.send_invoice("acct-a", project).await;
    for _ in 0..100 {
        let deal = run
            .hubspot(
                reqwest::Method::GET,
                &format!("/crm/objects/2026-03/deals/{deal}?properties=dealname"),
                None,
            )
            .await;
        if deal["properties"]["dealname"] == "監査案件(board)" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The card and its resync, signed as HubSpot signs them.
    for (method, path) in [
        (reqwest::Method::GET, "/hubspot/card?"),
        (
            reqwest::Method::POST,
            "/hubspot/card/resync?boardAccountId=acct-a&",
        ),
    ] {
        let url = format!(
            "{}{path}portalId=1000001&objectId={deal}&objectType=DEAL&userId=1&userEmail=sato%40sandbox.example.jp",
            run.base
        );
        let ts = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let response = run
            .http
            .request(method.clone(), &url)
            .header(
                "X-HubSpot-Signature-v3",
                tests::hubspot_signature(method.as_str(), &url, "", ts),
            )
            .header("X-HubSpot-Request-Timestamp", ts.to_string())
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }

    // A link's settings and a catch-up on request.
    let (status, body) = run
        .api(
            reqwest::Method::POST,
            &format!("/v1/hubspot/links/project/{project}/resync"),
            "acct-a",
            None,
        )
        .await;
    assert!(status < 300, "{body}");
    let (status, body) = run
        .api(
            reqwest::Method::POST,
            "/v1/hubspot/resync-all",
            "acct-a",
            None,
        )
        .await;
    assert!(status < 300, "{body}");

    // Settings an admin changes.
    for (path, body) in [
        (
            format!("/v1/hubspot/links/project/{project}"),
            json!({"sync_enabled": false}),
        ),
        (
            format!("/v1/hubspot/links/project/{project}"),
            json!({"sync_enabled": true}),
        ),
        (
            "/v1/hubspot/account-label".to_owned(),
            json!({"label": "監査"}),
        ),
        (
            "/v1/hubspot/filter-rules".to_owned(),
            json!({"rules": [{"conditions": [{"field": "team", "values": ["8000001"]}]}]}),
        ),
    ] {
        let (status, body) = run
            .api(reqwest::Method::PUT, &path, "acct-a", Some(body))
            .await;
        assert_eq!(status, 200, "{path}: {body}");
    }

    // The schedules' jobs, sent as EventBridge would.
    resources
        .work
        .send_batch(&[
            "{\"job\":\"catch_up_all\"}".to_owned(),
            "{\"job\":\"poll_lifecycle\"}".to_owned(),
        ])
        .await
        .unwrap();
    run.settle().await;

    // HubSpot failing: work in both queues goes back for a later retry.
    let faults = |body: Value| {
        run.http
            .post(format!("{}/_sandbox/hubspot/_control/faults", run.base))
            .json(&body)
            .send()
    };
    assert!(
        faults(
            json!({"error_rates": [[500, 1.0]], "path_prefix": "/crm/objects/2026-03/deals/batch"})
        )
        .await
        .unwrap()
        .status()
        .is_success()
    );
    run.update_deal(&deal, json!({"amount": "990000"})).await;
    // An import's change on board's bulk lane, then a person's newer one on
    // the ordinary lane (the other way round, the older would be ignored,
    // not retried): each goes back to its own lane.
    bulk_change(run, project, "監査案件(一括・障害中)").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = run
        .board(
            reqwest::Method::PATCH,
            &format!("/projects/{project}"),
            "acct-a",
            Some(json!({"name": "監査案件(障害中)"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Longer than the in-place retries of one call: the messages go back to their queues.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(faults(json!({})).await.unwrap().status().is_success());

    // A spent budget: HubSpot's headers said its window is nearly used, the
    // portal's background work is held, and board's change waits its turn —
    // put back on board's queue as a fresh message.
    let services = &run.stack.services;
    let account: board_hubspot::domain::AccountId = "acct-a".parse().unwrap();
    let portal = services
        .connections
        .get_connection(&account)
        .await
        .unwrap()
        .unwrap()
        .portal_id;
    let held: Result<(), _> = board_hubspot::app::budget::metered(
        services,
        portal,
        Ok(board_hubspot::ports::Metered {
            value: (),
            rate: Some(board_hubspot::ports::RateWindow {
                max: 110,
                remaining: 0,
                // Long enough that the event, batched for a second, meets
                // the hold (a quarter of the interval: 10 s).
                interval_ms: 40_000,
            }),
        }),
    )
    .await;
    assert!(held.is_ok());
    // Each instance reads holds from the store at most once a second.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    bulk_change(run, project, "監査案件(一括・順番待ち)").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = run
        .board(
            reqwest::Method::PATCH,
            &format!("/projects/{project}"),
            "acct-a",
            Some(json!({"name": "監査案件(順番待ち)"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Poison on each queue: the worker moves it to that queue's DLQ.
    resources
        .work
        .send_batch(&["not a message".to_owned()])
        .await
        .unwrap();
    resources
        .board
        .send_batch(&["{\"not\": \"an event\"}".to_owned()])
        .await
        .unwrap();
    resources
        .bulk
        .send_batch(&["{\"not\": \"an event either\"}".to_owned()])
        .await
        .unwrap();
    for _ in 0..100 {
        let work = resources.work.receive_dead_letters(10).await.unwrap();
        let board = resources.board.receive_dead_letters(10).await.unwrap();
        let bulk = resources.bulk.receive_dead_letters(10).await.unwrap();
        if !work.is_empty() && !board.is_empty() && !bulk.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    run.settle().await;

    let (status, body) = run
        .api(
            reqwest::Method::DELETE,
            "/v1/hubspot/connection",
            "acct-a",
            None,
        )
        .await;
    assert!(status < 300, "{body}");
    run.settle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_is_granted_exactly_the_aws_calls_it_makes() {
    // `RUST_LOG=debug cargo test --test iam` shows the stack's logs.
    if std::env::var_os("RUST_LOG").is_some() {
        board_hubspot::telemetry::init();
    }
    let resources = Resources::create().await;
    let names = Arc::new(resources.names());
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let public = format!("http://{addr}");
    let settings = Settings::from_lookup(
        move |n| (n == "PUBLIC_BASE_URL").then(|| public.clone()),
        true,
    )
    .unwrap();
    let outside = Recorder {
        names: names.clone(),
        ..Recorder::default()
    };
    let recorders: BTreeMap<&str, Recorder> = FUNCTIONS
        .iter()
        .map(|(name, _)| {
            (
                *name,
                Recorder {
                    names: names.clone(),
                    ..Recorder::default()
                },
            )
        })
        .collect();
    let mut built = BTreeMap::new();
    for (name, recorder) in &recorders {
        built.insert(*name, resources.function(name, &settings, recorder).await);
    }
    let functions = local_stack::Functions {
        config_api: built["config-api"].clone(),
        oauth_callback: built["oauth-callback"].clone(),
        webhook: built["webhook"].clone(),
        crm_card: built["crm-card"].clone(),
        sync_worker: built["sync-worker"].clone(),
    };
    // board's producer and the schedules are not ours: their own clients.
    let outside_services = resources.function("outside", &settings, &outside).await;
    let stack = local_stack::start_functions(
        outside_services,
        functions,
        None,
        addr,
        local_stack::Options::from_env(),
    )
    .await
    .unwrap();
    let run = Run::on(stack).await;
    drive(&run, &resources).await;

    let template: Yaml = serde_yaml::from_str(include_str!("../../template.yaml")).unwrap();
    // Lambda's SQS event source polls and deletes with the worker's role.
    let event_source: BTreeSet<Grant> = ["WorkQueue", "BoardEventsQueue", "BoardBulkEventsQueue"]
        .into_iter()
        .flat_map(|queue| {
            [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            ]
            .map(|action| (action.to_owned(), queue.to_owned()))
        })
        .collect();
    let mut report = String::new();
    for (name, logical) in FUNCTIONS {
        let mut used = recorders[name].grants();
        if name == "sync-worker" {
            used.extend(event_source.iter().cloned());
        }
        let granted = granted(&template, logical);
        let missing: Vec<_> = used.difference(&granted).collect();
        let unused: Vec<_> = granted.difference(&used).collect();
        if !missing.is_empty() || !unused.is_empty() {
            report.push_str(&format!(
                "{logical}:\n  used but not granted: {missing:?}\n  granted but not used: {unused:?}\n"
            ));
        }
    }
    assert!(report.is_empty(), "IAM does not match the code:\n{report}");
}
