//! CRM objects on the `2026-03` paths: create, read, update, archive, list,
//! batch read/create/update/upsert/archive, search and merge. Values are strings
//! as HubSpot returns them; `hs_object_id`, `createdate` and
//! `hs_lastmodifieddate` are maintained; archived objects are 404.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::HubSpotSandbox;
use crate::associations::{self, AssociationInput};
use crate::errors::{ApiError, ApiResult};
use crate::gate::{Caller, authorize};
use crate::model::{ObjectType, Record, State as Model, iso_ms, now_ms, parse_datetime_ms};
use crate::webhooks::{Event, emit};

pub const MAX_BATCH: usize = 100;
/// HubSpot's limit for a single-line text value.
pub const MAX_TEXT: usize = 65_536;

fn parse_id(raw: &str, kind: ObjectType) -> ApiResult<u64> {
    raw.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::not_found(format!(
            "Object not found. objectId are usually numeric. ({} {raw})",
            kind.upper()
        ))
    })
}

fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

fn invalid(name: &str, error: &str, message: String) -> Value {
    json!({"isValid": false, "message": message, "error": error, "name": name})
}

/// Checks property values against the portal's definitions and normalises them
/// to the strings HubSpot stores. `None` clears a property.
pub(crate) fn validate(
    model: &Model,
    portal: u64,
    kind: ObjectType,
    properties: &Map<String, Value>,
    current: Option<&Record>,
) -> Result<BTreeMap<String, Option<String>>, Vec<Value>> {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, raw) in properties {
        let Some(def) = model.property(portal, kind, name) else {
            problems.push(invalid(
                name,
                "PROPERTY_DOESNT_EXIST",
                format!("Property \"{name}\" does not exist"),
            ));
            continue;
        };
        if def.read_only {
            problems.push(invalid(
                name,
                "READ_ONLY_VALUE",
                format!("{name} is a read only property; its value cannot be set."),
            ));
            continue;
        }
        let Some(text) = value_text(raw).filter(|t| !t.is_empty()) else {
            out.insert(name.clone(), None);
            continue;
        };
        let normalised = match def.kind.as_str() {
            "number" => match text.trim().parse::<f64>() {
                Ok(_) => Some(text.trim().to_owned()),
                Err(_) => {
                    problems.push(invalid(
                        name,
                        "INVALID_DECIMAL",
                        format!("{text} was not a valid number."),
                    ));
                    None
                }
            },
            "datetime" | "date" => match parse_datetime_ms(&text) {
                Some(ms) if def.kind == "date" => Some(iso_ms(ms)[..10].to_owned()),
                Some(ms) => Some(iso_ms(ms)),
                None => {
                    problems.push(invalid(
                        name,
                        "INVALID_DATE",
                        format!("{text} was not a valid date or datetime."),
                    ));
                    None
                }
            },
            "enumeration" | "bool" if name != "dealstage" && name != "pipeline" => {
                let allowed: Vec<&str> = if def.kind == "bool" && def.options.is_empty() {
                    vec!["true", "false"]
                } else {
                    def.options.iter().map(|o| o.value.as_str()).collect()
                };
                let values: Vec<&str> = if def.field_type == "checkbox" {
                    text.split(';').collect()
                } else {
                    vec![text.as_str()]
                };
                match values.iter().find(|v| !allowed.contains(v)) {
                    Some(bad) => {
                        problems.push(invalid(
                            name,
                            "INVALID_OPTION",
                            format!("{bad} was not one of the allowed options: {allowed:?}"),
                        ));
                        None
                    }
                    None => Some(text.clone()),
                }
            }
            _ => {
                if let Some(max) = def.max_characters
                    && text.chars().count() > max
                {
                    problems.push(invalid(
                        name,
                        "INVALID_LENGTH",
                        format!(
                            "Property {name} value is too long: {} characters, this portal's validation rule allows at most {max}.",
                            text.chars().count()
                        ),
                    ));
                    None
                } else if text.chars().count() > MAX_TEXT {
                    problems.push(invalid(
                        name,
                        "INVALID_LENGTH",
                        format!(
                            "Property {name} value is too long: {} characters, at most {MAX_TEXT}.",
                            text.chars().count()
                        ),
                    ));
                    None
                } else {
                    Some(text.clone())
                }
            }
        };
        if let Some(v) = normalised {
            out.insert(name.clone(), Some(v));
        }
    }
    if kind == ObjectType::Deals {
        check_stage(model, portal, &mut out, current, &mut problems);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// A deal's stage must belong to its pipeline (the default one when unset).
fn check_stage(
    model: &Model,
    portal: u64,
    out: &mut BTreeMap<String, Option<String>>,
    current: Option<&Record>,
    problems: &mut Vec<Value>,
) {
    let pipelines = model.pipelines.get(&portal).cloned().unwrap_or_default();
    let pipeline_id = out
        .get("pipeline")
        .cloned()
        .flatten()
        .or_else(|| current.and_then(|r| r.properties.get("pipeline").cloned()))
        .unwrap_or_else(|| "default".to_owned());
    let Some(pipeline) = pipelines.iter().find(|p| p.id == pipeline_id) else {
        problems.push(invalid(
            "pipeline",
            "INVALID_OPTION",
            format!("{pipeline_id} was not one of the allowed options"),
        ));
        return;
    };
    if out.contains_key("dealstage") || out.contains_key("pipeline") {
        out.insert("pipeline".into(), Some(pipeline.id.clone()));
        let stage = out
            .get("dealstage")
            .cloned()
            .flatten()
            .or_else(|| current.and_then(|r| r.properties.get("dealstage").cloned()));
        match stage {
            Some(stage) if pipeline.stage(&stage).is_some() => {}
            Some(stage) => problems.push(invalid(
                "dealstage",
                "INVALID_OPTION",
                format!(
                    "{stage} was not one of the allowed options for pipeline {}",
                    pipeline.id
                ),
            )),
            None => {
                out.insert(
                    "dealstage".into(),
                    pipeline.stages.first().map(|s| s.id.clone()),
                );
            }
        }
    }
}

fn validation_error(problems: Vec<Value>, input: Option<usize>) -> ApiError {
    let names: Vec<String> = problems
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let prefix = input.map(|i| format!("inputs[{i}]: ")).unwrap_or_default();
    let mut error = ApiError::validation(format!(
        "{prefix}Property values were not valid: {}",
        Value::Array(problems.clone())
    ));
    error.errors = problems
        .iter()
        .map(|p| json!({"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}}))
        .collect();
    error.context = Some(json!({"propertyName": names, "input": input}));
    error
}

/// Renders a record as HubSpot does: the requested properties (null when unset)
/// or the object type's defaults.
pub(crate) fn render(record: &Record, kind: ObjectType, requested: Option<&[String]>) -> Value {
    let mut properties = Map::new();
    match requested {
        Some(names) => {
            for name in names {
                properties.insert(
                    name.clone(),
                    record
                        .properties
                        .get(name)
                        .map_or(Value::Null, |v| json!(v)),
                );
            }
        }
        None => {
            for name in kind.default_properties() {
                if let Some(v) = record.properties.get(*name) {
                    properties.insert((*name).to_owned(), json!(v));
                }
            }
        }
    }
    json!({
        "id": record.id.to_string(),
        "properties": properties,
        "createdAt": iso_ms(record.created_ms),
        "updatedAt": iso_ms(record.updated_ms),
        "archived": record.archived,
    })
}

fn requested(raw: Option<&String>) -> Option<Vec<String>> {
    raw.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

fn stamp(
    properties: &mut BTreeMap<String, String>,
    kind: ObjectType,
    id: u64,
    created: i64,
    now: i64,
) {
    properties.insert("hs_object_id".into(), id.to_string());
    properties.insert("createdate".into(), iso_ms(created));
    // Contacts' last-modified property is `lastmodifieddate` (their default
    // properties in HubSpot's CRM search reference,
    // https://developers.hubspot.com/docs/api-reference/2026-03/crm/search-the-crm);
    // deals and companies use `hs_lastmodifieddate`.
    if kind == ObjectType::Contacts {
        properties.insert("lastmodifieddate".into(), iso_ms(now));
    } else {
        properties.insert("hs_lastmodifieddate".into(), iso_ms(now));
    }
}

/// Closing a deal sets `closedate` to now unless the change sets it (SPEC §12).
fn close_date_rule(
    model: &Model,
    portal: u64,
    changes: &mut BTreeMap<String, Option<String>>,
    current: Option<&Record>,
) {
    let Some(Some(stage)) = changes.get("dealstage").cloned() else {
        return;
    };
    let was = current.and_then(|r| r.properties.get("dealstage").cloned());
    if was.as_deref() == Some(stage.as_str()) || changes.contains_key("closedate") {
        return;
    }
    let pipeline = changes
        .get("pipeline")
        .cloned()
        .flatten()
        .unwrap_or_else(|| "default".into());
    let closed = model
        .pipelines
        .get(&portal)
        .and_then(|ps| ps.iter().find(|p| p.id == pipeline))
        .and_then(|p| p.stage(&stage))
        .is_some_and(|s| s.metadata.get("isClosed").is_some_and(|v| v == "true"));
    if closed {
        changes.insert("closedate".into(), Some(iso_ms(now_ms())));
    }
}

/// Creates a record from validated values; returns it and its webhook events.
fn insert(
    model: &mut Model,
    caller: &Caller,
    kind: ObjectType,
    mut changes: BTreeMap<String, Option<String>>,
) -> (Record, Vec<Event>) {
    let id = model.next_id();
    let now = now_ms();
    if kind == ObjectType::Deals {
        close_date_rule(model, caller.portal, &mut changes, None);
    }
    let mut properties: BTreeMap<String, String> = changes
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    stamp(&mut properties, kind, id, now, now);
    let record = Record {
        id,
        properties,
        created_ms: now,
        updated_ms: now,
        archived: false,
        archived_ms: None,
    };
    model
        .objects_mut(caller.portal, kind)
        .insert(id, record.clone());
    (record, vec![Event::new(caller, kind, id, "creation")])
}

/// Applies validated changes; returns the record and one event per changed property.
fn apply(
    model: &mut Model,
    caller: &Caller,
    kind: ObjectType,
    id: u64,
    mut changes: BTreeMap<String, Option<String>>,
) -> (Record, Vec<Event>) {
    let current = model
        .live(caller.portal, kind, id)
        .cloned()
        .expect("checked by the caller");
    if kind == ObjectType::Deals {
        close_date_rule(model, caller.portal, &mut changes, Some(&current));
    }
    let now = now_ms();
    let mut record = current.clone();
    let mut events = Vec::new();
    for (name, value) in changes {
        let before = record.properties.get(&name).cloned();
        if before == value {
            continue;
        }
        match &value {
            Some(v) => record.properties.insert(name.clone(), v.clone()),
            None => record.properties.remove(&name),
        };
        let mut event = Event::new(caller, kind, id, "propertyChange");
        event.property_name = Some(name);
        event.property_value = Some(value.unwrap_or_default());
        events.push(event);
    }
    if !events.is_empty() {
        record.updated_ms = now;
        stamp(&mut record.properties, kind, id, record.created_ms, now);
        model
            .objects_mut(caller.portal, kind)
            .insert(id, record.clone());
    }
    (record, events)
}

fn object_type(raw: &str) -> ApiResult<ObjectType> {
    ObjectType::parse(raw)
}

#[derive(Deserialize)]
pub struct CreateBody {
    #[serde(default)]
    properties: Map<String, Value>,
    #[serde(default)]
    associations: Vec<AssociationInput>,
}

pub async fn create(
    State(sandbox): State<HubSpotSandbox>,
    Path(raw_type): Path<String>,
    headers: HeaderMap,
    Json(body): Json<CreateBody>,
) -> ApiResult<Response> {
    let kind = object_type(&raw_type)?;
    let caller = authorize(&sandbox, &headers, &[kind.write_scope()])?;
    let (record, events) = {
        let mut model = sandbox.inner.state.lock().expect("state");
        let changes = validate(&model, caller.portal, kind, &body.properties, None)
            .map_err(|p| validation_error(p, None))?;
        associations::check_inputs(&model, caller.portal, kind, &body.associations)?;
        let (record, mut events) = insert(&mut model, &caller, kind, changes);
        events.extend(associations::add_inputs(
            &mut model,
            &caller,
            kind,
            record.id,
            &body.associations,
        ));
        (record, events)
    };
    emit(&sandbox, caller.portal, events);
    Ok((StatusCode::CREATED, Json(render(&record, kind, None))).into_response())
}

pub async fn read(
    State(sandbox): State<HubSpotSandbox>,
    Path((raw_type, raw_id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let kind = object_type(&raw_type)?;
    let caller = authorize(&sandbox, &headers, &[kind.read_scope()])?;
    let id = parse_id(&raw_id, kind)?;
    let model = sandbox.inner.state.lock().expect("state");
    let include_archived = params.get("archived").is_some_and(|a| a == "true");
    let record = model
        .objects
        .get(&(caller.portal, kind))
        .and_then(|m| m.get(&id))
        .filter(|r| include_archived || !r.archived)
        .ok_or_else(|| ApiError::not_found(format!("resource not found: {} {id}", kind.upper())))?;
    let mut body = render(record, kind, requested(params.get("properties")).as_deref());
    if let Some(to_types) = requested(params.get("associations")) {
        let mut associations = Map::new();
        for to in to_types {
            let to_kind = ObjectType::parse(&to)?;
            let results = associations::edges_json(&model, caller.portal, kind, id, to_kind);
            if !results.is_empty() {
                associations.insert(to_kind.plural().to_owned(), json!({"results": results}));
            }
        }
        body["associations"] = Value::Object(associations);
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
pub struct UpdateBody {
    #[serde(default)]
    properties: Map<String, Value>,
}

pub async fn update(
    State(sandbox): State<HubSpotSandbox>,
    Path((raw_type, raw_id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<UpdateBody>,
) -> ApiResult<Json<Value>> {
    let kind = object_type(&raw_type)?;
    let caller = authorize(&sandbox, &headers, &[kind.write_scope()])?;
    let id = parse_id(&raw_id, kind)?;
    let (record, events) = {
        let mut model = sandbox.inner.state.lock().expect("state");
        let current = model
            .live(caller.portal, kind, id)
            .cloned()
            .ok_or_else(|| {
                ApiError::not_found(format!("resource not found: {} {id}", kind.upper()))
            })?;
        let changes = validate(
            &model,
            caller.portal,
            kind,
            &body.properties,
            Some(&current),
        )
        .map_err(|p| validation_error(p, None))?;
        apply(&mut model, &caller, kind, id, changes)
    };
    emit(&sandbox, caller.portal, events);
    Ok(Json(render(&record, kind, None)))
}

fn archive_one(model: &mut Model, caller: &Caller, kind: ObjectType, id: u64) -> Vec<Event> {
    let now = now_ms();
    let Some(record) = model
        .objects_mut(caller.portal, kind)
        .get_mut(&id)
        .filter(|r| !r.archived)
    else {
        return Vec::new();
    };
    record.archived = true;
    record.archived_ms = Some(now);
    vec![Event::new(caller, kind, id, "deletion")]
}

pub async fn archive(
    State(sandbox): State<HubSpotSandbox>,
    Path((raw_type, raw_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let kind = object_type(&raw_type)?;
    let caller = authorize(&sandbox, &headers, &[kind.write_scope()])?;
    let id = parse_id(&raw_id, kind)?;
    let events = archive_one(
        &mut sandbox.inner.state.lock().expect("state"),
        &caller,
        kind,
        id,
    );
    emit(&sandbox, caller.portal, events);
    // HubSpot answers 204 whether or not the object existed.
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(
    State(sandbox): State<HubSpotSandbox>,
    Path(raw_type): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let kind = object_type(&raw_type)?;
    let caller = authorize(&sandbox, &headers, &[kind.read_scope()])?;
    let limit: usize = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let after: u64 = params
        .get("after")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let archived = params.get("archived").is_some_and(|a| a == "true");
    let props = requested(params.get("properties"));
    let model = sandbox.inner.state.lock().expect("state");
    let records: Vec<&Record> = model
        .objects
        .get(&(caller.portal, kind))
        .map(|m| {
            m.range(after + 1..)
                .map(|(_, r)| r)
                .filter(|r| r.archived == archived)
                .take(limit + 1)
                .collect()
        })
        .unwrap_or_default();
    let more = records.len() > limit;
    let page: Vec<Value> = records
        .iter()
        .take(limit)
        .map(|r| render(r, kind, props.as_deref()))
        .collect();
    let mut body = json!({"results": page});
    if more {
        let last = records[limit - 1].id;
        body["paging"] =
            json!({"next": {"after": last.to_string(), "link": format!("?after={last}")}});
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
pub struct BatchBody {
    #[serde(default)]
    inputs: Vec<Value>,
    #[serde(default)]
    properties: Vec<String>,
}

fn input_id(input: &Value, kind: ObjectType) -> ApiResult<u64> {
    let raw = input.get("id").and_then(value_text).unwrap_or_default();
    parse_id(&raw, kind)
}

pub async fn batch(
    State(sandbox): State<HubSpotSandbox>,
    Path((raw_type, action)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<BatchBody>,
) -> ApiResult<Response> {
    let kind = object_type(&raw_type)?;
    let scope = if action == "read" {
        kind.read_scope()
    } else {
        kind.write_scope()
    };
    let caller = authorize(&sandbox, &headers, &[scope])?;
    if body.inputs.len() > MAX_BATCH {
        return Err(ApiError::validation(format!(
            "Too many inputs: {} were sent, at most {MAX_BATCH} are allowed",
            body.inputs.len()
        )));
    }
    let started = iso_ms(now_ms());
    let complete = |results: Vec<Value>, started: &str| json!({"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": iso_ms(now_ms())});
    match action.as_str() {
        "read" => {
            let model = sandbox.inner.state.lock().expect("state");
            let props = (!body.properties.is_empty()).then_some(body.properties.as_slice());
            let mut results = Vec::new();
            let mut missing = Vec::new();
            for input in &body.inputs {
                let raw = input.get("id").and_then(value_text).unwrap_or_default();
                match raw
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| model.live(caller.portal, kind, id))
                {
                    Some(record) => results.push(render(record, kind, props)),
                    None => missing.push(raw),
                }
            }
            if missing.is_empty() {
                return Ok(Json(complete(results, &started)).into_response());
            }
            let mut body = complete(results, &started);
            body["numErrors"] = json!(1);
            body["errors"] = json!([{
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": format!("Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.", kind.upper()),
                "context": {"ids": missing},
                "errors": [],
                "links": {},
            }]);
            Ok((StatusCode::MULTI_STATUS, Json(body)).into_response())
        }
        "create" => {
            let (records, events) = {
                let mut model = sandbox.inner.state.lock().expect("state");
                let mut planned = Vec::new();
                for (i, input) in body.inputs.iter().enumerate() {
                    let props = input
                        .get("properties")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    let changes = validate(&model, caller.portal, kind, &props, None)
                        .map_err(|p| validation_error(p, Some(i)))?;
                    let assoc: Vec<AssociationInput> = input
                        .get("associations")
                        .map(|a| serde_json::from_value(a.clone()))
                        .transpose()
                        .map_err(|e| {
                            ApiError::validation(format!("inputs[{i}].associations: {e}"))
                        })?
                        .unwrap_or_default();
                    associations::check_inputs(&model, caller.portal, kind, &assoc)?;
                    planned.push((changes, assoc));
                }
                let mut records = Vec::new();
                let mut events = Vec::new();
                for (changes, assoc) in planned {
                    let (record, evs) = insert(&mut model, &caller, kind, changes);
                    events.extend(evs);
                    events.extend(associations::add_inputs(
                        &mut model, &caller, kind, record.id, &assoc,
                    ));
                    records.push(record);
                }
                (records, events)
            };
            emit(&sandbox, caller.portal, events);
            let results = records.iter().map(|r| render(r, kind, None)).collect();
            Ok((StatusCode::CREATED, Json(complete(results, &started))).into_response())
        }
        "update" => {
            // Batch update answers 207 with `errors[]` and `numErrors` when some
            // inputs fail (changelog "Simplifying batch update response codes
            // for CRM v3 APIs",
            // https://developers.hubspot.com/changelog/simplifying-batch-update-response-codes-for-crm-v3-apis). Which failures go that way is not documented:
            // here inputs naming objects that do not exist fail alone (a guess),
            // while invalid values refuse the whole batch with 400.
            let mut not_found: Vec<String> = Vec::new();
            // A person deleting some of these objects just before the write
            // arrives (after the caller read them): a race the faults can stage.
            let deleted_meanwhile = std::mem::take(
                &mut sandbox
                    .inner
                    .faults
                    .lock()
                    .expect("faults")
                    .delete_before_write,
            );
            let (records, events) = {
                let mut model = sandbox.inner.state.lock().expect("state");
                for id in deleted_meanwhile {
                    if let Some(r) = model.objects_mut(caller.portal, kind).get_mut(&id) {
                        r.archived = true;
                        r.archived_ms = Some(now_ms());
                    }
                }
                let mut planned = Vec::new();
                let mut seen = std::collections::HashSet::new();
                for (i, input) in body.inputs.iter().enumerate() {
                    let id = input_id(input, kind)?;
                    if !seen.insert(id) {
                        return Err(ApiError::validation(format!(
                            "Duplicate IDs found in batch input: [{id}]. IDs must be unique"
                        )));
                    }
                    let Some(current) = model.live(caller.portal, kind, id).cloned() else {
                        not_found.push(id.to_string());
                        continue;
                    };
                    let props = input
                        .get("properties")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    let changes = validate(&model, caller.portal, kind, &props, Some(&current))
                        .map_err(|p| {
                            let mut e = validation_error(p, Some(i));
                            e.context.as_mut().expect("set")["ids"] = json!([id.to_string()]);
                            e
                        })?;
                    planned.push((id, changes));
                }
                let mut records = Vec::new();
                let mut events = Vec::new();
                for (id, changes) in planned {
                    let (record, evs) = apply(&mut model, &caller, kind, id, changes);
                    events.extend(evs);
                    records.push(record);
                }
                (records, events)
            };
            emit(&sandbox, caller.portal, events);
            let results = records.iter().map(|r| render(r, kind, None)).collect();
            if not_found.is_empty() {
                return Ok(Json(complete(results, &started)).into_response());
            }
            let mut body = complete(results, &started);
            body["numErrors"] = json!(not_found.len());
            body["errors"] = Value::Array(
                not_found
                    .iter()
                    .map(|id| {
                        json!({
                            "status": "error",
                            "category": "OBJECT_NOT_FOUND",
                            "message": format!("Object not found. objectId are usually numeric. ({id})"),
                            "context": {"ids": [id]},
                            "errors": [],
                            "links": {},
                        })
                    })
                    .collect(),
            );
            Ok((StatusCode::MULTI_STATUS, Json(body)).into_response())
        }
        "upsert" => {
            let (results, events) = {
                let mut model = sandbox.inner.state.lock().expect("state");
                let mut planned = Vec::new();
                for (i, input) in body.inputs.iter().enumerate() {
                    let id_property = input
                        .get("idProperty")
                        .and_then(Value::as_str)
                        .unwrap_or("hs_object_id")
                        .to_owned();
                    let key = input.get("id").and_then(value_text).unwrap_or_default();
                    let existing = model
                        .objects
                        .get(&(caller.portal, kind))
                        .and_then(|m| {
                            m.values().find(|r| {
                                !r.archived
                                    && r.properties.get(&id_property).is_some_and(|v| *v == key)
                            })
                        })
                        .cloned();
                    let mut props = input
                        .get("properties")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    if existing.is_none() && id_property != "hs_object_id" {
                        props.insert(id_property.clone(), json!(key));
                    }
                    let changes = validate(&model, caller.portal, kind, &props, existing.as_ref())
                        .map_err(|p| validation_error(p, Some(i)))?;
                    planned.push((existing.map(|r| r.id), changes));
                }
                let mut results = Vec::new();
                let mut events = Vec::new();
                for (existing, changes) in planned {
                    let (record, evs, new) = match existing {
                        Some(id) => {
                            let (r, e) = apply(&mut model, &caller, kind, id, changes);
                            (r, e, false)
                        }
                        None => {
                            let (r, e) = insert(&mut model, &caller, kind, changes);
                            (r, e, true)
                        }
                    };
                    events.extend(evs);
                    let mut rendered = render(&record, kind, None);
                    rendered["new"] = json!(new);
                    results.push(rendered);
                }
                (results, events)
            };
            emit(&sandbox, caller.portal, events);
            Ok(Json(complete(results, &started)).into_response())
        }
        "archive" => {
            let events = {
                let mut model = sandbox.inner.state.lock().expect("state");
                let ids: Vec<u64> = body
                    .inputs
                    .iter()
                    .map(|i| input_id(i, kind))
                    .collect::<ApiResult<_>>()?;
                ids.into_iter()
                    .flat_map(|id| archive_one(&mut model, &caller, kind, id))
                    .collect::<Vec<_>>()
            };
            emit(&sandbox, caller.portal, events);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        other => Err(ApiError::not_found(format!("No batch action {other}"))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchBody {
    #[serde(default)]
    filter_groups: Vec<FilterGroup>,
    #[serde(default)]
    sorts: Vec<Value>,
    #[serde(default)]
    properties: Vec<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    after: Option<Value>,
    #[serde(default)]
    query: Option<String>,
}

#[derive(Deserialize)]
pub struct FilterGroup {
    #[serde(default)]
    filters: Vec<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    property_name: String,
    operator: String,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    high_value: Option<Value>,
    #[serde(default)]
    values: Vec<Value>,
}

fn comparable(value: &str) -> Option<f64> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .or_else(|| parse_datetime_ms(value).map(|ms| ms as f64))
}

fn compare(actual: &str, expected: &str) -> std::cmp::Ordering {
    match (comparable(actual), comparable(expected)) {
        (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
        _ => actual.to_lowercase().cmp(&expected.to_lowercase()),
    }
}

fn matches(record: &Record, filter: &Filter) -> ApiResult<bool> {
    use std::cmp::Ordering::*;
    let actual = record
        .properties
        .get(&filter.property_name)
        .map(String::as_str);
    let value = filter
        .value
        .as_ref()
        .and_then(value_text)
        .unwrap_or_default();
    let values: Vec<String> = filter.values.iter().filter_map(value_text).collect();
    Ok(match filter.operator.as_str() {
        "HAS_PROPERTY" => actual.is_some(),
        "NOT_HAS_PROPERTY" => actual.is_none(),
        "EQ" => actual.is_some_and(|a| compare(a, &value) == Equal),
        "NEQ" => actual.is_none_or(|a| compare(a, &value) != Equal),
        "LT" => actual.is_some_and(|a| compare(a, &value) == Less),
        "LTE" => actual.is_some_and(|a| compare(a, &value) != Greater),
        "GT" => actual.is_some_and(|a| compare(a, &value) == Greater),
        "GTE" => actual.is_some_and(|a| compare(a, &value) != Less),
        "BETWEEN" => {
            let high = filter
                .high_value
                .as_ref()
                .and_then(value_text)
                .unwrap_or_default();
            actual.is_some_and(|a| compare(a, &value) != Less && compare(a, &high) != Greater)
        }
        "IN" => actual.is_some_and(|a| values.iter().any(|v| compare(a, v) == Equal)),
        "NOT_IN" => actual.is_none_or(|a| values.iter().all(|v| compare(a, v) != Equal)),
        "CONTAINS_TOKEN" => {
            let token = value.trim_matches('*').to_lowercase();
            actual.is_some_and(|a| a.to_lowercase().contains(&token))
        }
        "NOT_CONTAINS_TOKEN" => {
            let token = value.trim_matches('*').to_lowercase();
            actual.is_none_or(|a| !a.to_lowercase().contains(&token))
        }
        other => {
            return Err(ApiError::validation(format!(
                "Unsupported filter operator {other}"
            )));
        }
    })
}

/// CRM search sees a change only once it is indexed, some seconds later, and
/// not in the order the changes were made (the delay's size and order are not
/// documented: a guess, listed in the README). Each change here becomes visible
/// after its own delay of up to `search_lag` (derived from the object and the
/// time of its change); until then the object is missing from search results.
fn indexed(record: &Record, lag_ms: i64, now: i64) -> bool {
    if lag_ms <= 0 {
        return true;
    }
    let digest = Sha256::digest(format!("{}:{}", record.id, record.updated_ms).as_bytes());
    let spread = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    // Between half the lag and all of it: never at once, never in order.
    let half = lag_ms as u64 / 2;
    let delay = (half + spread % (lag_ms as u64 - half + 1)) as i64;
    now >= record.updated_ms + delay
}

pub async fn search(
    State(sandbox): State<HubSpotSandbox>,
    Path(raw_type): Path<String>,
    headers: HeaderMap,
    Json(body): Json<SearchBody>,
) -> ApiResult<Json<Value>> {
    let kind = object_type(&raw_type)?;
    let caller = authorize(&sandbox, &headers, &[kind.read_scope()])?;
    if body.filter_groups.len() > 5
        || body
            .filter_groups
            .iter()
            .map(|g| g.filters.len())
            .sum::<usize>()
            > 18
    {
        return Err(ApiError::validation(
            "Search allows at most 5 filter groups and 18 filters.",
        ));
    }
    let limit = body.limit.unwrap_or(10).clamp(1, 200);
    let after: usize = body
        .after
        .as_ref()
        .and_then(value_text)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let lag_ms = sandbox
        .inner
        .config
        .lock()
        .expect("config")
        .search_lag
        .as_millis() as i64;
    let now = now_ms();
    let held = sandbox
        .inner
        .faults
        .lock()
        .expect("faults")
        .search_unindexed
        .clone();
    let model = sandbox.inner.state.lock().expect("state");
    let mut found: Vec<&Record> = Vec::new();
    for record in model
        .objects
        .get(&(caller.portal, kind))
        .map(|m| m.values())
        .into_iter()
        .flatten()
    {
        if record.archived || !indexed(record, lag_ms, now) || held.contains(&record.id) {
            continue;
        }
        let mut matched = body.filter_groups.is_empty();
        for group in &body.filter_groups {
            let mut all = true;
            for filter in &group.filters {
                all &= matches(record, filter)?;
            }
            matched |= all;
        }
        if let Some(q) = body.query.as_deref().filter(|q| !q.is_empty()) {
            matched &= record
                .properties
                .values()
                .any(|v| v.to_lowercase().contains(&q.to_lowercase()));
        }
        if matched {
            found.push(record);
        }
    }
    if let Some(sort) = body.sorts.first() {
        let (name, descending) = match sort {
            Value::String(s) => (s.trim_start_matches('-').to_owned(), s.starts_with('-')),
            other => (
                other
                    .get("propertyName")
                    .and_then(Value::as_str)
                    .unwrap_or("hs_object_id")
                    .to_owned(),
                other.get("direction").and_then(Value::as_str) == Some("DESCENDING"),
            ),
        };
        found.sort_by(|a, b| {
            let order = compare(
                a.properties.get(&name).map(String::as_str).unwrap_or(""),
                b.properties.get(&name).map(String::as_str).unwrap_or(""),
            );
            if descending { order.reverse() } else { order }
        });
    }
    let total = found.len();
    let props = (!body.properties.is_empty()).then_some(body.properties.as_slice());
    let page: Vec<Value> = found
        .iter()
        .skip(after)
        .take(limit)
        .map(|r| render(r, kind, props))
        .collect();
    let mut response = json!({"total": total, "results": page});
    // HubSpot's search pages at most 10,000 results deep.
    if after + limit < total && after + limit < 10_000 {
        response["paging"] = json!({"next": {"after": (after + limit).to_string()}});
    }
    Ok(Json(response))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeBody {
    primary_object_id: Value,
    object_id_to_merge: Value,
}

pub async fn merge(
    State(sandbox): State<HubSpotSandbox>,
    Path(raw_type): Path<String>,
    headers: HeaderMap,
    Json(body): Json<MergeBody>,
) -> ApiResult<Json<Value>> {
    let kind = object_type(&raw_type)?;
    let caller = authorize(&sandbox, &headers, &[kind.write_scope()])?;
    let primary = parse_id(
        &value_text(&body.primary_object_id).unwrap_or_default(),
        kind,
    )?;
    let merged = parse_id(
        &value_text(&body.object_id_to_merge).unwrap_or_default(),
        kind,
    )?;
    if primary == merged {
        return Err(ApiError::validation(
            "An object cannot be merged into itself.",
        ));
    }
    let (record, events) = {
        let mut model = sandbox.inner.state.lock().expect("state");
        let (Some(p), Some(m)) = (
            model.live(caller.portal, kind, primary).cloned(),
            model.live(caller.portal, kind, merged).cloned(),
        ) else {
            return Err(ApiError::not_found(
                "Object not found. objectId are usually numeric.",
            ));
        };
        let mut record = p.clone();
        let mut moved = 0;
        for (k, v) in &m.properties {
            if !record.properties.contains_key(k) {
                record.properties.insert(k.clone(), v.clone());
                moved += 1;
            }
        }
        let now = now_ms();
        record.updated_ms = now;
        stamp(
            &mut record.properties,
            kind,
            primary,
            record.created_ms,
            now,
        );
        let objects = model.objects_mut(caller.portal, kind);
        objects.insert(primary, record.clone());
        if let Some(gone) = objects.get_mut(&merged) {
            gone.archived = true;
            gone.archived_ms = Some(now);
        }
        associations::move_edges(&mut model, caller.portal, kind, merged, primary);
        let mut event = Event::new(&caller, kind, primary, "merge");
        event.extra = json!({
            "primaryObjectId": primary,
            "mergedObjectIds": [merged],
            "newObjectId": primary,
            "numberOfPropertiesMoved": moved,
        });
        (record, vec![event])
    };
    emit(&sandbox, caller.portal, events);
    Ok(Json(render(&record, kind, None)))
}

/// Restores an archived object, as a person does in HubSpot's recycle bin.
pub(crate) fn restore(
    sandbox: &HubSpotSandbox,
    caller: &Caller,
    kind: ObjectType,
    id: u64,
) -> bool {
    let events = {
        let mut model = sandbox.inner.state.lock().expect("state");
        match model.objects_mut(caller.portal, kind).get_mut(&id) {
            Some(r) if r.archived => {
                r.archived = false;
                r.archived_ms = None;
                r.updated_ms = now_ms();
                vec![Event::new(caller, kind, id, "restore")]
            }
            _ => return false,
        }
    };
    emit(sandbox, caller.portal, events);
    true
}
