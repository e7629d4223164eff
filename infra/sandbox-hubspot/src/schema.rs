//! Properties, pipelines and stages, owners and teams.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::HubSpotSandbox;
use crate::errors::{ApiError, ApiResult};
use crate::gate::authorize;
use crate::model::{ObjectType, PropertyDef, PropertyOption, iso_ms, now_ms};

pub async fn list_properties(
    State(sandbox): State<HubSpotSandbox>,
    Path(raw_type): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let kind = ObjectType::parse(&raw_type)?;
    let caller = authorize(&sandbox, &headers, &[kind.schema_read_scope()])?;
    let model = sandbox.inner.state.lock().expect("state");
    let results: Vec<&PropertyDef> = model
        .properties
        .get(&(caller.portal, kind))
        .map(|m| m.values().collect())
        .unwrap_or_default();
    Ok(Json(json!({"results": results})))
}

pub async fn get_property(
    State(sandbox): State<HubSpotSandbox>,
    Path((raw_type, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let kind = ObjectType::parse(&raw_type)?;
    let caller = authorize(&sandbox, &headers, &[kind.schema_read_scope()])?;
    let model = sandbox.inner.state.lock().expect("state");
    let def = model.property(caller.portal, kind, &name).ok_or_else(|| {
        ApiError::not_found(format!(
            "Unable to find property {name} for object type {}",
            kind.plural()
        ))
    })?;
    Ok(Json(serde_json::to_value(def).expect("serializes")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewProperty {
    name: String,
    label: String,
    #[serde(rename = "type")]
    kind: String,
    field_type: String,
    group_name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    options: Vec<NewOption>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOption {
    label: String,
    value: String,
    #[serde(default)]
    display_order: Option<i64>,
    #[serde(default)]
    hidden: bool,
}

const TYPES: [&str; 7] = [
    "bool",
    "enumeration",
    "date",
    "datetime",
    "string",
    "number",
    "phone_number",
];
const FIELD_TYPES: [&str; 11] = [
    "booleancheckbox",
    "checkbox",
    "date",
    "file",
    "number",
    "phonenumber",
    "radio",
    "select",
    "text",
    "textarea",
    "calculation_equation",
];

pub async fn create_property(
    State(sandbox): State<HubSpotSandbox>,
    Path(raw_type): Path<String>,
    headers: HeaderMap,
    Json(body): Json<NewProperty>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let kind = ObjectType::parse(&raw_type)?;
    let caller = authorize(&sandbox, &headers, &[kind.schema_write_scope()])?;
    let valid_name = !body.name.is_empty()
        && body
            .name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase())
        && body
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_name {
        return Err(ApiError::validation(format!(
            "Property name {:?} is invalid: use lowercase letters, digits and underscores, starting with a letter.",
            body.name
        )));
    }
    if !TYPES.contains(&body.kind.as_str()) || !FIELD_TYPES.contains(&body.field_type.as_str()) {
        return Err(ApiError::validation(format!(
            "Invalid type/fieldType combination: {}/{}",
            body.kind, body.field_type
        )));
    }
    if matches!(body.kind.as_str(), "enumeration" | "bool")
        && body.field_type != "booleancheckbox"
        && body.options.is_empty()
        && body.kind == "enumeration"
    {
        return Err(ApiError::validation("Enumeration properties need options."));
    }
    let mut model = sandbox.inner.state.lock().expect("state");
    let defs = model.properties.entry((caller.portal, kind)).or_default();
    if defs.contains_key(&body.name) {
        return Err(ApiError::conflict(format!(
            "A property named '{}' already exists.",
            body.name
        ))
        .with_context(json!({"name": [body.name]})));
    }
    let now = iso_ms(now_ms());
    let def = PropertyDef {
        name: body.name.clone(),
        label: body.label,
        kind: body.kind,
        field_type: body.field_type,
        group_name: body.group_name,
        description: body.description,
        options: body
            .options
            .into_iter()
            .enumerate()
            .map(|(i, o)| PropertyOption {
                label: o.label,
                value: o.value,
                display_order: o.display_order.unwrap_or(i as i64),
                hidden: o.hidden,
            })
            .collect(),
        hubspot_defined: false,
        read_only: false,
        max_characters: None,
        created_at: now.clone(),
        updated_at: now,
        archived: false,
    };
    defs.insert(def.name.clone(), def.clone());
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(def).expect("serializes")),
    ))
}

fn deals_only(raw_type: &str) -> ApiResult<()> {
    match ObjectType::parse(raw_type)? {
        ObjectType::Deals => Ok(()),
        other => Err(ApiError::not_found(format!(
            "This sandbox has pipelines for deals only, not {}",
            other.plural()
        ))),
    }
}

pub async fn list_pipelines(
    State(sandbox): State<HubSpotSandbox>,
    Path(raw_type): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    deals_only(&raw_type)?;
    let caller = authorize(&sandbox, &headers, &["crm.objects.deals.read"])?;
    let model = sandbox.inner.state.lock().expect("state");
    let results: Vec<Value> = model
        .pipelines
        .get(&caller.portal)
        .into_iter()
        .flatten()
        .filter(|p| !p.archived)
        .map(pipeline_json)
        .collect();
    Ok(Json(json!({"results": results})))
}

/// A pipeline with the fields HubSpot's reference marks as always present, on
/// its stages too (`createdAt`, `updatedAt`, `archived`, `writePermissions`,
/// `metadata`): <https://developers.hubspot.com/docs/api-reference/latest/crm/pipelines/get-pipelines>.
fn pipeline_json(pipeline: &crate::model::Pipeline) -> Value {
    let mut value = serde_json::to_value(pipeline).expect("serializes");
    value["createdAt"] = json!("2020-01-01T00:00:00Z");
    value["updatedAt"] = json!("2020-01-01T00:00:00Z");
    for stage in value["stages"].as_array_mut().into_iter().flatten() {
        stage["createdAt"] = json!("2020-01-01T00:00:00Z");
        stage["updatedAt"] = json!("2020-01-01T00:00:00Z");
        stage["writePermissions"] = json!("CRM_PERMISSIONS_ENFORCEMENT");
        if stage.get("archived").is_none() {
            stage["archived"] = json!(false);
        }
        if stage.get("metadata").is_none() {
            stage["metadata"] = json!({});
        }
    }
    value
}

pub async fn get_pipeline(
    State(sandbox): State<HubSpotSandbox>,
    Path((raw_type, pipeline_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    deals_only(&raw_type)?;
    let caller = authorize(&sandbox, &headers, &["crm.objects.deals.read"])?;
    let model = sandbox.inner.state.lock().expect("state");
    model
        .pipelines
        .get(&caller.portal)
        .and_then(|ps| ps.iter().find(|p| p.id == pipeline_id && !p.archived))
        .map(|p| Json(pipeline_json(p)))
        .ok_or_else(|| ApiError::not_found(format!("Pipeline {pipeline_id} not found")))
}

#[derive(Deserialize)]
pub struct OwnerQuery {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    after: Option<usize>,
}

pub async fn list_owners(
    State(sandbox): State<HubSpotSandbox>,
    Query(query): Query<OwnerQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = authorize(&sandbox, &headers, &["crm.objects.owners.read"])?;
    let model = sandbox.inner.state.lock().expect("state");
    let owners: Vec<Value> = model
        .owners
        .get(&caller.portal)
        .into_iter()
        .flatten()
        .filter(|o| {
            query
                .email
                .as_ref()
                .is_none_or(|e| o.email.eq_ignore_ascii_case(e))
        })
        .map(|o| {
            let mut v = serde_json::to_value(o).expect("serializes");
            v["createdAt"] = json!("2020-01-01T00:00:00Z");
            v["updatedAt"] = json!("2020-01-01T00:00:00Z");
            v["type"] = json!("PERSON");
            v
        })
        .collect();
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let after = query.after.unwrap_or(0);
    let page: Vec<Value> = owners.iter().skip(after).take(limit).cloned().collect();
    let mut body = json!({"results": page});
    if after + limit < owners.len() {
        body["paging"] = json!({"next": {"after": (after + limit).to_string()}});
    }
    Ok(Json(body))
}

pub async fn list_teams(
    State(sandbox): State<HubSpotSandbox>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = authorize(&sandbox, &headers, &["settings.users.teams.read"])?;
    let model = sandbox.inner.state.lock().expect("state");
    let teams = model.teams.get(&caller.portal).cloned().unwrap_or_default();
    Ok(Json(json!({"results": teams})))
}

/// `GET /account-info/2026-03/details`: the portal's time zone and currency.
/// `utcOffset` as the docs show it (`-05:00`):
/// https://developers.hubspot.com/docs/api-reference/latest/account/account-information/get-account-details
fn offset_text(ms: i64) -> String {
    let minutes = ms.abs() / 60_000;
    let sign = if ms < 0 { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

pub async fn account_details(
    State(sandbox): State<HubSpotSandbox>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = authorize(&sandbox, &headers, &["oauth"])?;
    let model = sandbox.inner.state.lock().expect("state");
    let portal = model
        .portals
        .get(&caller.portal)
        .ok_or_else(|| ApiError::not_found("portal not found"))?;
    Ok(Json(json!({
        "portalId": portal.id,
        "accountType": "STANDARD",
        "timeZone": portal.time_zone,
        "companyCurrency": "JPY",
        "additionalCurrencies": [],
        "utcOffset": offset_text(portal.utc_offset_ms),
        "utcOffsetMilliseconds": portal.utc_offset_ms,
        "uiDomain": "app.hubspot.com",
        "dataHostingLocation": "na1",
    })))
}
