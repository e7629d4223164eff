//! Associations: default and labelled, per object and in batches, with
//! HubSpot's type ids (deal→company 341, primary 5; deal→contact 3;
//! contact→company 279, primary 1; note→deal 214; and their inverses).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::HubSpotSandbox;
use crate::crm::MAX_BATCH;
use crate::errors::{ApiError, ApiResult};
use crate::gate::{Caller, authorize};
use crate::model::{Edge, ObjectType, State as Model, iso_ms, now_ms};
use crate::webhooks::{AssociationEnd, Event, emit};

use ObjectType::{Companies, Contacts, Deals, Notes};

/// (type id, from, to, inverse id, primary?)
const TYPES: &[(u32, ObjectType, ObjectType, u32, bool)] = &[
    (341, Deals, Companies, 342, false),
    (342, Companies, Deals, 341, false),
    (5, Deals, Companies, 6, true),
    (6, Companies, Deals, 5, true),
    (3, Deals, Contacts, 4, false),
    (4, Contacts, Deals, 3, false),
    (279, Contacts, Companies, 280, false),
    (280, Companies, Contacts, 279, false),
    (1, Contacts, Companies, 2, true),
    (2, Companies, Contacts, 1, true),
    (214, Notes, Deals, 213, false),
    (213, Deals, Notes, 214, false),
    (190, Notes, Companies, 189, false),
    (189, Companies, Notes, 190, false),
    (202, Notes, Contacts, 201, false),
    (201, Contacts, Notes, 202, false),
];

fn type_info(id: u32) -> Option<(ObjectType, ObjectType, u32, bool)> {
    TYPES
        .iter()
        .find(|t| t.0 == id)
        .map(|t| (t.1, t.2, t.3, t.4))
}

/// The unlabelled (default) type between two object types.
fn default_type(from: ObjectType, to: ObjectType) -> Option<u32> {
    TYPES
        .iter()
        .find(|t| t.1 == from && t.2 == to && !t.4)
        .map(|t| t.0)
}

#[derive(Debug, Clone, Deserialize)]
pub struct AssociationTarget {
    pub id: Value,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociationType {
    #[serde(default)]
    pub association_category: Option<String>,
    pub association_type_id: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AssociationInput {
    pub to: AssociationTarget,
    #[serde(default)]
    pub types: Vec<AssociationType>,
}

fn id_of(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Validates create-time associations: known type ids from this object type,
/// to objects that exist.
pub fn check_inputs(
    model: &Model,
    portal: u64,
    from: ObjectType,
    inputs: &[AssociationInput],
) -> ApiResult<()> {
    for input in inputs {
        let to_id = id_of(&input.to.id)
            .ok_or_else(|| ApiError::validation("association target id is not a number"))?;
        for t in &input.types {
            if t.association_category
                .as_deref()
                .is_some_and(|c| c != "HUBSPOT_DEFINED" && c != "USER_DEFINED")
            {
                return Err(ApiError::validation(format!(
                    "Unknown association category {:?}",
                    t.association_category
                )));
            }
            let Some((f, to, _, _)) =
                type_info(t.association_type_id).filter(|(f, _, _, _)| *f == from)
            else {
                return Err(ApiError::validation(format!(
                    "{} is not a valid association type id from {}",
                    t.association_type_id,
                    from.plural()
                )));
            };
            let _ = f;
            if model.live(portal, to, to_id).is_none() {
                return Err(ApiError::validation(format!(
                    "One or more associated objects do not exist: {} {to_id}",
                    to.upper()
                )));
            }
        }
    }
    Ok(())
}

fn edges(model: &mut Model, portal: u64) -> &mut std::collections::HashSet<Edge> {
    model.edges.entry(portal).or_default()
}

/// Adds an edge and its inverse (and the default type under a primary label).
/// Returns the association-change events when the pair was not associated yet.
fn add(
    model: &mut Model,
    caller: &Caller,
    from: ObjectType,
    from_id: u64,
    to_id: u64,
    type_id: u32,
) -> Vec<Event> {
    let Some((_, to, inverse, primary)) = type_info(type_id) else {
        return Vec::new();
    };
    let was_associated = associated(model, caller.portal, from, from_id, to, to_id);
    if primary {
        // One primary per object: the label moves.
        let set = edges(model, caller.portal);
        set.retain(|e| !(e.from_type == from && e.from_id == from_id && e.type_id == type_id));
        set.retain(|e| !(e.to_type == from && e.to_id == from_id && e.type_id == inverse));
    }
    let mut pairs = vec![(type_id, inverse)];
    if primary && let Some(d) = default_type(from, to) {
        pairs.push((d, default_type(to, from).unwrap_or(d)));
    }
    let set = edges(model, caller.portal);
    for (forward, backward) in pairs {
        set.insert(Edge {
            from_type: from,
            from_id,
            to_type: to,
            to_id,
            type_id: forward,
        });
        set.insert(Edge {
            from_type: to,
            from_id: to_id,
            to_type: from,
            to_id: from_id,
            type_id: backward,
        });
    }
    if was_associated {
        Vec::new()
    } else {
        change_events(
            caller,
            from,
            from_id,
            to,
            to_id,
            (type_id, inverse),
            false,
            primary,
        )
    }
}

fn associated(
    model: &Model,
    portal: u64,
    from: ObjectType,
    from_id: u64,
    to: ObjectType,
    to_id: u64,
) -> bool {
    model.edges.get(&portal).is_some_and(|s| {
        s.iter().any(|e| {
            e.from_type == from && e.from_id == from_id && e.to_type == to && e.to_id == to_id
        })
    })
}

/// One event for each end of the association: HubSpot fires one per side
/// <https://developers.hubspot.com/changelog/public-beta-generic-webhook-subscriptions>.
#[allow(clippy::too_many_arguments)]
fn change_events(
    caller: &Caller,
    from: ObjectType,
    from_id: u64,
    to: ObjectType,
    to_id: u64,
    (forward, backward): (u32, u32),
    removed: bool,
    primary: bool,
) -> Vec<Event> {
    if from == Notes || to == Notes {
        return Vec::new();
    }
    let mut events = Vec::new();
    for (a, a_id, b, b_id, type_id) in [
        (from, from_id, to, to_id, forward),
        (to, to_id, from, from_id, backward),
    ] {
        let mut event = Event::new(caller, a, a_id, "associationChange");
        event.association = Some(AssociationEnd {
            to_type: b,
            to_id: b_id,
            type_id,
            removed,
            primary,
        });
        events.push(event);
    }
    events
}

pub fn add_inputs(
    model: &mut Model,
    caller: &Caller,
    from: ObjectType,
    from_id: u64,
    inputs: &[AssociationInput],
) -> Vec<Event> {
    let mut events = Vec::new();
    for input in inputs {
        let Some(to_id) = id_of(&input.to.id) else {
            continue;
        };
        for t in &input.types {
            events.extend(add(
                model,
                caller,
                from,
                from_id,
                to_id,
                t.association_type_id,
            ));
        }
    }
    events
}

fn remove_all(
    model: &mut Model,
    caller: &Caller,
    from: ObjectType,
    from_id: u64,
    to: ObjectType,
    to_id: u64,
) -> Vec<Event> {
    if !associated(model, caller.portal, from, from_id, to, to_id) {
        return Vec::new();
    }
    edges(model, caller.portal).retain(|e| {
        !((e.from_type == from && e.from_id == from_id && e.to_type == to && e.to_id == to_id)
            || (e.from_type == to && e.from_id == to_id && e.to_type == from && e.to_id == from_id))
    });
    let types = (
        default_type(from, to).unwrap_or_default(),
        default_type(to, from).unwrap_or_default(),
    );
    change_events(caller, from, from_id, to, to_id, types, true, false)
}

/// Merge: every edge of `from_id` now belongs to `into_id`.
pub fn move_edges(model: &mut Model, portal: u64, kind: ObjectType, from_id: u64, into_id: u64) {
    let set = edges(model, portal);
    let moved: Vec<Edge> = set
        .iter()
        .filter(|e| {
            (e.from_type == kind && e.from_id == from_id)
                || (e.to_type == kind && e.to_id == from_id)
        })
        .cloned()
        .collect();
    for mut edge in moved {
        set.remove(&edge);
        if edge.from_type == kind && edge.from_id == from_id {
            edge.from_id = into_id;
        }
        if edge.to_type == kind && edge.to_id == from_id {
            edge.to_id = into_id;
        }
        if !(edge.from_type == edge.to_type && edge.from_id == edge.to_id) {
            set.insert(edge);
        }
    }
}

fn grouped(
    model: &Model,
    portal: u64,
    from: ObjectType,
    from_id: u64,
    to: ObjectType,
) -> BTreeMap<u64, Vec<u32>> {
    let mut by_target: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for e in model.edges.get(&portal).into_iter().flatten() {
        if e.from_type == from
            && e.from_id == from_id
            && e.to_type == to
            && model.live(portal, to, e.to_id).is_some()
        {
            by_target.entry(e.to_id).or_default().push(e.type_id);
        }
    }
    by_target
}

fn type_json(type_id: u32) -> Value {
    let primary = type_info(type_id).is_some_and(|t| t.3);
    json!({"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": if primary { json!("Primary") } else { Value::Null }})
}

/// Associations as an object read embeds them (v3 shape).
pub fn edges_json(
    model: &Model,
    portal: u64,
    from: ObjectType,
    from_id: u64,
    to: ObjectType,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (to_id, types) in grouped(model, portal, from, from_id, to) {
        for type_id in types {
            let primary = type_info(type_id).is_some_and(|t| t.3);
            let name = format!("{}_to_{}", from.singular(), to.singular());
            out.push(json!({"id": to_id.to_string(), "type": if primary { format!("{name}_primary") } else { format!("{name}_unlabeled") }}));
        }
    }
    out
}

fn v4_results(
    model: &Model,
    portal: u64,
    from: ObjectType,
    from_id: u64,
    to: ObjectType,
) -> Vec<Value> {
    grouped(model, portal, from, from_id, to)
        .into_iter()
        .map(|(to_id, types)| json!({"toObjectId": to_id, "associationTypes": types.into_iter().map(type_json).collect::<Vec<_>>()}))
        .collect()
}

fn scopes(from: ObjectType, to: ObjectType, write: bool) -> [&'static str; 2] {
    if write {
        [from.write_scope(), to.write_scope()]
    } else {
        [from.read_scope(), to.read_scope()]
    }
}

pub async fn list_for_object(
    State(sandbox): State<HubSpotSandbox>,
    Path((raw_type, raw_id, raw_to)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let (from, to) = (ObjectType::parse(&raw_type)?, ObjectType::parse(&raw_to)?);
    let caller = authorize(&sandbox, &headers, &scopes(from, to, false))?;
    let id: u64 = raw_id
        .parse()
        .map_err(|_| ApiError::not_found("Object not found"))?;
    let model = sandbox.inner.state.lock().expect("state");
    if model.live(caller.portal, from, id).is_none() {
        return Err(ApiError::not_found(format!(
            "resource not found: {} {id}",
            from.upper()
        )));
    }
    Ok(Json(
        json!({"results": v4_results(&model, caller.portal, from, id, to)}),
    ))
}

pub async fn put_default(
    State(sandbox): State<HubSpotSandbox>,
    Path((raw_type, raw_id, raw_to, raw_to_id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let (from, to) = (ObjectType::parse(&raw_type)?, ObjectType::parse(&raw_to)?);
    let caller = authorize(&sandbox, &headers, &scopes(from, to, true))?;
    let (from_id, to_id): (u64, u64) = (
        raw_id
            .parse()
            .map_err(|_| ApiError::not_found("Object not found"))?,
        raw_to_id
            .parse()
            .map_err(|_| ApiError::not_found("Object not found"))?,
    );
    let events = {
        let mut model = sandbox.inner.state.lock().expect("state");
        if model.live(caller.portal, from, from_id).is_none()
            || model.live(caller.portal, to, to_id).is_none()
        {
            return Err(ApiError::not_found("One or both objects do not exist"));
        }
        let type_id = default_type(from, to)
            .ok_or_else(|| ApiError::validation("No default association between these types"))?;
        add(&mut model, &caller, from, from_id, to_id, type_id)
    };
    emit(&sandbox, caller.portal, events);
    Ok(Json(
        json!({"status": "COMPLETE", "results": [{"from": {"id": from_id.to_string()}, "to": {"id": to_id.to_string()}}]}),
    ))
}

#[derive(Deserialize)]
pub struct BatchBody {
    #[serde(default)]
    inputs: Vec<Value>,
}

pub async fn batch(
    State(sandbox): State<HubSpotSandbox>,
    Path((raw_from, raw_to, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<BatchBody>,
) -> ApiResult<Response> {
    let (from, to) = (ObjectType::parse(&raw_from)?, ObjectType::parse(&raw_to)?);
    let caller = authorize(&sandbox, &headers, &scopes(from, to, action != "read"))?;
    if body.inputs.len() > MAX_BATCH * 10 {
        return Err(ApiError::validation("Too many inputs"));
    }
    let started = iso_ms(now_ms());
    match action.as_str() {
        "read" => {
            let page_size = sandbox
                .inner
                .config
                .lock()
                .expect("config")
                .association_page_size
                .max(1);
            let model = sandbox.inner.state.lock().expect("state");
            let mut results = Vec::new();
            let mut missing = Vec::new();
            for input in &body.inputs {
                let id = input.get("id").and_then(id_of);
                match id.filter(|id| model.live(caller.portal, from, *id).is_some()) {
                    Some(id) => {
                        let to_list = v4_results(&model, caller.portal, from, id, to);
                        if to_list.is_empty() {
                            missing.push(id.to_string());
                        } else {
                            // Each result pages on its own: `paging.next.after`,
                            // given back beside the id (batch read reference,
                            // https://developers.hubspot.com/docs/api-reference/latest/crm/associations/associate-records/batch/get-associations).
                            let start: usize = input
                                .get("after")
                                .and_then(Value::as_str)
                                .and_then(|a| a.parse().ok())
                                .unwrap_or(0);
                            let end = (start + page_size).min(to_list.len());
                            let mut result = json!({"from": {"id": id.to_string()},
                                                    "to": to_list.get(start..end).unwrap_or_default()});
                            if end < to_list.len() {
                                result["paging"] = json!({"next": {"after": end.to_string(),
                                    "link": format!("?after={end}")}});
                            }
                            results.push(result);
                        }
                    }
                    None => {
                        missing.push(input.get("id").map(|v| v.to_string()).unwrap_or_default())
                    }
                }
            }
            let mut response = json!({"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": iso_ms(now_ms())});
            if missing.is_empty() {
                return Ok(Json(response).into_response());
            }
            // As HubSpot: objects without associations of that type come back as errors.
            response["numErrors"] = json!(missing.len());
            response["errors"] = missing
                .iter()
                .map(|id| json!({"status": "error", "category": "OBJECT_NOT_FOUND", "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                                  "message": format!("No {} is associated with {} {id}.", to.upper(), from.upper()), "context": {"fromObjectId": [id]},
                                  "errors": [], "links": {}}))
                .collect();
            Ok((StatusCode::MULTI_STATUS, Json(response)).into_response())
        }
        "create" => {
            let events = {
                let mut model = sandbox.inner.state.lock().expect("state");
                let mut planned = Vec::new();
                for (i, input) in body.inputs.iter().enumerate() {
                    let from_id = input.pointer("/from/id").and_then(id_of);
                    let to_id = input.pointer("/to/id").and_then(id_of);
                    let (Some(from_id), Some(to_id)) = (from_id, to_id) else {
                        return Err(ApiError::validation(format!(
                            "inputs[{i}]: from.id and to.id are required"
                        )));
                    };
                    if model.live(caller.portal, from, from_id).is_none()
                        || model.live(caller.portal, to, to_id).is_none()
                    {
                        return Err(ApiError::validation(format!(
                            "inputs[{i}]: one or both objects do not exist"
                        )));
                    }
                    let types: Vec<AssociationType> = input
                        .get("types")
                        .map(|t| serde_json::from_value(t.clone()))
                        .transpose()
                        .map_err(|e| ApiError::validation(format!("inputs[{i}].types: {e}")))?
                        .unwrap_or_default();
                    for t in &types {
                        if type_info(t.association_type_id)
                            .is_none_or(|(f, tt, _, _)| f != from || tt != to)
                        {
                            return Err(ApiError::validation(format!(
                                "inputs[{i}]: invalid association type {}",
                                t.association_type_id
                            )));
                        }
                    }
                    planned.push((from_id, to_id, types));
                }
                let mut events = Vec::new();
                for (from_id, to_id, types) in planned {
                    for t in types {
                        events.extend(add(
                            &mut model,
                            &caller,
                            from,
                            from_id,
                            to_id,
                            t.association_type_id,
                        ));
                    }
                }
                events
            };
            emit(&sandbox, caller.portal, events);
            Ok((StatusCode::CREATED, Json(json!({"status": "COMPLETE", "results": [], "startedAt": started, "completedAt": iso_ms(now_ms())}))).into_response())
        }
        "archive" => {
            let events = {
                let mut model = sandbox.inner.state.lock().expect("state");
                let mut events = Vec::new();
                for input in &body.inputs {
                    let Some(from_id) = input.pointer("/from/id").and_then(id_of) else {
                        continue;
                    };
                    for target in input
                        .get("to")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(to_id) = target.get("id").and_then(id_of) {
                            events
                                .extend(remove_all(&mut model, &caller, from, from_id, to, to_id));
                        }
                    }
                }
                events
            };
            emit(&sandbox, caller.portal, events);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        other => Err(ApiError::not_found(format!("No batch action {other}"))),
    }
}

pub async fn batch_default(
    State(sandbox): State<HubSpotSandbox>,
    Path((raw_from, raw_to)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<BatchBody>,
) -> ApiResult<Response> {
    let (from, to) = (ObjectType::parse(&raw_from)?, ObjectType::parse(&raw_to)?);
    let caller = authorize(&sandbox, &headers, &scopes(from, to, true))?;
    let type_id = default_type(from, to)
        .ok_or_else(|| ApiError::validation("No default association between these types"))?;
    let events = {
        let mut model = sandbox.inner.state.lock().expect("state");
        let mut pairs = Vec::new();
        for (i, input) in body.inputs.iter().enumerate() {
            let (Some(from_id), Some(to_id)) = (
                input.pointer("/from/id").and_then(id_of),
                input.pointer("/to/id").and_then(id_of),
            ) else {
                return Err(ApiError::validation(format!(
                    "inputs[{i}]: from.id and to.id are required"
                )));
            };
            if model.live(caller.portal, from, from_id).is_none()
                || model.live(caller.portal, to, to_id).is_none()
            {
                return Err(ApiError::validation(format!(
                    "inputs[{i}]: one or both objects do not exist"
                )));
            }
            pairs.push((from_id, to_id));
        }
        pairs
            .into_iter()
            .flat_map(|(f, t)| add(&mut model, &caller, from, f, t, type_id))
            .collect::<Vec<_>>()
    };
    emit(&sandbox, caller.portal, events);
    Ok(Json(json!({"status": "COMPLETE", "results": [], "startedAt": iso_ms(now_ms()), "completedAt": iso_ms(now_ms())})).into_response())
}
