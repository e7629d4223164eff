//! The DynamoDB engine: one table, `pk`/`sk`, GSIs `gsi1` and `gsi2`, TTL on `ttl`.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, PutRequest, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem, WriteRequest,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{
    Change, Cond, Index, Item, Key, Query, QueryPage, SkCond, Table, TableError, TxOp, Value, attr,
    check_batch_size, check_transaction_size,
};

#[derive(Debug, Clone)]
pub struct DynamoTable {
    client: Client,
    table: String,
}

impl DynamoTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.table
    }

    /// Creates the table with the layout `template.yaml` declares (local runs and
    /// tests; production tables come from the template). Existing tables are kept.
    pub async fn create_if_missing(&self) -> anyhow::Result<()> {
        let string_attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type set")
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("name and type set")
        };
        let gsi = |index: &str, pk: &str, sk: &str| {
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .key_schema(key(pk, KeyType::Hash))
                .key_schema(key(sk, KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("index complete")
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attr(attr::PK))
            .attribute_definitions(string_attr(attr::SK))
            .attribute_definitions(string_attr(attr::GSI1_PK))
            .attribute_definitions(string_attr(attr::GSI1_SK))
            .attribute_definitions(string_attr(attr::GSI2_PK))
            .attribute_definitions(string_attr(attr::GSI2_SK))
            .key_schema(key(attr::PK, KeyType::Hash))
            .key_schema(key(attr::SK, KeyType::Range))
            .global_secondary_indexes(gsi("gsi1", attr::GSI1_PK, attr::GSI1_SK))
            .global_secondary_indexes(gsi("gsi2", attr::GSI2_PK, attr::GSI2_SK))
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => return Ok(()),
            Err(e) => {
                return Err(anyhow!(
                    "create table {}: {}",
                    self.table,
                    DisplayErrorContext(e)
                ));
            }
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attr::TTL)
                    .enabled(true)
                    .build()
                    .expect("ttl spec complete"),
            )
            .send()
            .await
            .map_err(|e| anyhow!("enable TTL on {}: {}", self.table, DisplayErrorContext(e)))?;
        Ok(())
    }

    /// The TTL attribute DynamoDB is told to use (for checks and the runbook).
    pub async fn ttl_attribute(&self) -> anyhow::Result<Option<String>> {
        let out = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| anyhow!("describe TTL: {}", DisplayErrorContext(e)))?;
        Ok(out
            .time_to_live_description()
            .and_then(|d| d.attribute_name().map(str::to_owned)))
    }
}

type AttrMap = HashMap<String, AttributeValue>;

fn to_av(value: &Value) -> AttributeValue {
    match value {
        Value::S(s) => AttributeValue::S(s.clone()),
        Value::N(n) => AttributeValue::N(n.to_string()),
        Value::Bool(b) => AttributeValue::Bool(*b),
    }
}

fn from_av(value: &AttributeValue) -> Result<Value, TableError> {
    match value {
        AttributeValue::S(s) => Ok(Value::S(s.clone())),
        AttributeValue::N(n) => n
            .parse()
            .map(Value::N)
            .map_err(|_| TableError::Backend(anyhow!("non-integer number {n:?} in item"))),
        AttributeValue::Bool(b) => Ok(Value::Bool(*b)),
        other => Err(TableError::Backend(anyhow!(
            "unsupported attribute type {other:?}"
        ))),
    }
}

fn key_map(key: &Key) -> AttrMap {
    HashMap::from([
        (attr::PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (attr::SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn item_map(item: &Item) -> AttrMap {
    let mut map = key_map(&item.key);
    map.extend(item.attrs.iter().map(|(k, v)| (k.clone(), to_av(v))));
    map
}

fn item_from(map: &AttrMap) -> Result<Item, TableError> {
    let text = |name: &str| {
        map.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| TableError::Backend(anyhow!("item without {name}")))
    };
    let mut item = Item::new(Key::new(text(attr::PK)?, text(attr::SK)?));
    for (name, value) in map {
        if name != attr::PK && name != attr::SK {
            item.attrs.insert(name.clone(), from_av(value)?);
        }
    }
    Ok(item)
}

/// Builds expressions with unique placeholders across a condition and an update.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: AttrMap,
}

impl Expr {
    fn name(&mut self, name: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, n)| n.as_str() == name) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), name.to_owned());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn condition(&mut self, cond: &Cond) -> Option<String> {
        Some(match cond {
            Cond::Always => return None,
            Cond::NotExists => format!("attribute_not_exists({})", self.name(attr::PK)),
            Cond::Exists => format!("attribute_exists({})", self.name(attr::PK)),
            Cond::AttrNotExists(n) => format!("attribute_not_exists({})", self.name(n)),
            Cond::Eq(n, v) => format!("{} = {}", self.name(n), self.value(to_av(v))),
            Cond::Lt(n, v) => format!(
                "{} < {}",
                self.name(n),
                self.value(AttributeValue::N(v.to_string()))
            ),
            Cond::Le(n, v) => format!(
                "{} <= {}",
                self.name(n),
                self.value(AttributeValue::N(v.to_string()))
            ),
            Cond::Gt(n, v) => format!(
                "{} > {}",
                self.name(n),
                self.value(AttributeValue::N(v.to_string()))
            ),
            Cond::And(all) => self.join(
                all,
                " AND ",
                "attribute_exists(pk) OR attribute_not_exists(pk)",
            ),
            Cond::Or(any) => self.join(
                any,
                " OR ",
                "attribute_exists(pk) AND attribute_not_exists(pk)",
            ),
        })
    }

    /// An empty AND is true and an empty OR is false, as in the memory engine.
    fn join(&mut self, parts: &[Cond], op: &str, empty: &str) -> String {
        let rendered: Vec<String> = parts
            .iter()
            .map(|c| {
                self.condition(c)
                    .unwrap_or_else(|| "attribute_exists(pk) OR attribute_not_exists(pk)".into())
            })
            .map(|c| format!("({c})"))
            .collect();
        if rendered.is_empty() {
            format!("({empty})")
        } else {
            rendered.join(op)
        }
    }

    fn update(&mut self, changes: &[Change]) -> String {
        let (mut set, mut add, mut remove) = (Vec::new(), Vec::new(), Vec::new());
        for change in changes {
            match change {
                Change::Set(n, v) => {
                    set.push(format!("{} = {}", self.name(n), self.value(to_av(v))))
                }
                Change::Add(n, d) => add.push(format!(
                    "{} {}",
                    self.name(n),
                    self.value(AttributeValue::N(d.to_string()))
                )),
                Change::Remove(n) => remove.push(self.name(n)),
            }
        }
        let mut clauses = Vec::new();
        if !set.is_empty() {
            clauses.push(format!("SET {}", set.join(", ")));
        }
        if !add.is_empty() {
            clauses.push(format!("ADD {}", add.join(", ")));
        }
        if !remove.is_empty() {
            clauses.push(format!("REMOVE {}", remove.join(", ")));
        }
        clauses.join(" ")
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<AttrMap> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn backend<E>(what: &str, err: aws_sdk_dynamodb::error::SdkError<E>) -> TableError
where
    E: std::error::Error + Send + Sync + 'static,
{
    TableError::Backend(anyhow!("{what}: {}", DisplayErrorContext(err)))
}

fn is_condition_failure<E: ProvideErrorMetadata>(
    err: &aws_sdk_dynamodb::error::SdkError<E>,
) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

fn encode_cursor(key: &AttrMap) -> Result<String, TableError> {
    let plain: HashMap<&str, &str> = key
        .iter()
        .map(|(k, v)| v.as_s().map(|s| (k.as_str(), s.as_str())))
        .collect::<Result<_, _>>()
        .map_err(|_| {
            TableError::Backend(anyhow!("non-string key attribute in LastEvaluatedKey"))
        })?;
    Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&plain).context("cursor json")?))
}

fn decode_cursor(cursor: &str, index: Index) -> Result<AttrMap, TableError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| TableError::BadCursor)?;
    let plain: HashMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|_| TableError::BadCursor)?;
    let (ipk, isk) = index.key_attrs();
    let allowed = [attr::PK, attr::SK, ipk, isk];
    if plain.keys().any(|k| !allowed.contains(&k.as_str())) || !plain.contains_key(attr::PK) {
        return Err(TableError::BadCursor);
    }
    Ok(plain
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect())
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", e))?;
        out.item().map(item_from).transpose()
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<(), TableError> {
        let mut expr = Expr::default();
        let condition = expr.condition(&cond);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_map(&item)))
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                if is_condition_failure(&e) {
                    TableError::ConditionFailed
                } else {
                    backend("PutItem", e)
                }
            })
    }

    async fn delete(&self, key: &Key, cond: Cond) -> Result<Option<Item>, TableError> {
        let mut expr = Expr::default();
        let condition = expr.condition(&cond);
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| {
                if is_condition_failure(&e) {
                    TableError::ConditionFailed
                } else {
                    backend("DeleteItem", e)
                }
            })?;
        out.attributes().map(item_from).transpose()
    }

    async fn update(
        &self,
        key: &Key,
        changes: Vec<Change>,
        cond: Cond,
    ) -> Result<Item, TableError> {
        let mut expr = Expr::default();
        let condition = expr.condition(&cond);
        let update = expr.update(&changes);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .update_expression(update)
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| {
                if is_condition_failure(&e) {
                    TableError::ConditionFailed
                } else {
                    backend("UpdateItem", e)
                }
            })?;
        let attrs = out
            .attributes()
            .ok_or_else(|| TableError::Backend(anyhow!("UpdateItem returned no attributes")))?;
        item_from(attrs)
    }

    async fn query(&self, query: Query) -> Result<QueryPage, TableError> {
        let (pk_name, sk_name) = query.index.key_attrs();
        let mut expr = Expr::default();
        let mut key_condition = format!(
            "{} = {}",
            expr.name(pk_name),
            expr.value(AttributeValue::S(query.pk.clone()))
        );
        match &query.sk {
            None => {}
            Some(SkCond::Prefix(prefix)) => key_condition.push_str(&format!(
                " AND begins_with({}, {})",
                expr.name(sk_name),
                expr.value(AttributeValue::S(prefix.clone()))
            )),
            Some(SkCond::Below(bound)) => key_condition.push_str(&format!(
                " AND {} < {}",
                expr.name(sk_name),
                expr.value(AttributeValue::S(bound.clone()))
            )),
        }
        let start = query
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, query.index))
            .transpose()?;
        let index_name = match query.index {
            Index::Primary => None,
            Index::Gsi1 => Some("gsi1".to_owned()),
            Index::Gsi2 => Some("gsi2".to_owned()),
        };
        let limit = i32::try_from(query.limit.clamp(1, 1000)).expect("clamped");
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index_name)
            .key_condition_expression(key_condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .scan_index_forward(!query.descending)
            .limit(limit)
            .set_exclusive_start_key(start)
            .consistent_read(query.index == Index::Primary)
            .send()
            .await
            .map_err(|e| backend("Query", e))?;
        let items = out
            .items()
            .iter()
            .map(item_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next = out.last_evaluated_key().map(encode_cursor).transpose()?;
        Ok(QueryPage { items, next })
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
        check_transaction_size(ops.len())?;
        let mut items = Vec::with_capacity(ops.len());
        for op in &ops {
            let mut expr = Expr::default();
            let built = match op {
                TxOp::Put(item, cond) => {
                    let condition = expr.condition(cond);
                    TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .table_name(&self.table)
                                .set_item(Some(item_map(item)))
                                .set_condition_expression(condition)
                                .set_expression_attribute_names(expr.names())
                                .set_expression_attribute_values(expr.values())
                                .return_values_on_condition_check_failure(
                                    ReturnValuesOnConditionCheckFailure::AllOld,
                                )
                                .build()
                                .context("transaction put")?,
                        )
                        .build()
                }
                TxOp::Delete(key, cond) => {
                    let condition = expr.condition(cond);
                    TransactWriteItem::builder()
                        .delete(
                            Delete::builder()
                                .table_name(&self.table)
                                .set_key(Some(key_map(key)))
                                .set_condition_expression(condition)
                                .set_expression_attribute_names(expr.names())
                                .set_expression_attribute_values(expr.values())
                                .build()
                                .context("transaction delete")?,
                        )
                        .build()
                }
                TxOp::Check(key, cond) => {
                    let condition = expr.condition(cond).unwrap_or_else(|| {
                        "attribute_exists(pk) OR attribute_not_exists(pk)".into()
                    });
                    TransactWriteItem::builder()
                        .condition_check(
                            ConditionCheck::builder()
                                .table_name(&self.table)
                                .set_key(Some(key_map(key)))
                                .condition_expression(condition)
                                .set_expression_attribute_names(expr.names())
                                .set_expression_attribute_values(expr.values())
                                .build()
                                .context("transaction check")?,
                        )
                        .build()
                }
            };
            items.push(built);
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                if let Some(service) = e.as_service_error()
                    && service.is_transaction_canceled_exception()
                {
                    let reasons = match service {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t) => t
                            .cancellation_reasons()
                            .iter()
                            .map(|r| r.code().filter(|c| *c != "None").map(str::to_owned))
                            .collect(),
                        _ => Vec::new(),
                    };
                    return Err(TableError::TransactionCanceled(reasons));
                }
                Err(backend("TransactWriteItems", e))
            }
        }
    }

    async fn batch_put(&self, items: Vec<Item>) -> Result<(), TableError> {
        check_batch_size(items.len())?;
        if items.is_empty() {
            return Ok(());
        }
        let mut pending: Vec<WriteRequest> = items
            .iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item_map(item)))
                    .build()
                    .context("put request")?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<anyhow::Result<_>>()?;
        // Unprocessed items come back under throttling; retry them a few times with backoff.
        for attempt in 0..5u32 {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(|e| backend("BatchWriteItem", e))?;
            pending = out
                .unprocessed_items()
                .and_then(|m| m.get(&self.table))
                .cloned()
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        Err(TableError::Backend(anyhow!(
            "BatchWriteItem left {} items unprocessed",
            pending.len()
        )))
    }
}

impl From<serde_json::Error> for TableError {
    fn from(e: serde_json::Error) -> Self {
        TableError::Backend(e.into())
    }
}
