//! HubSpot's pipelines with their stages' mapped 受注ステータス, problems and a suggested mapping;
//! setting or clearing a pipeline's mappings.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::app::Services;
use crate::domain::config::AccountConfig;
use crate::domain::status_mapping::{Problem, suggested_default};
use crate::domain::{AccountId, OrderStatus, PipelineId, StageId};
use crate::ports::HsPipeline;

use super::common::*;

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageView {
    pub id: StageId,
    pub label: String,
    pub display_order: i64,
    pub order_status: Option<OrderStatus>,
    pub order_status_label: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineView {
    pub id: PipelineId,
    pub label: String,
    pub stages: Vec<StageView>,
    /// For each status, the stage board → HubSpot sync moves a deal to when it is
    /// not in a stage of that status already.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub stage_for_status: BTreeMap<u8, StageId>,
    /// Offered for HubSpot's default pipeline, never saved by itself.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, u8>>))]
    pub suggested_mapping: Option<BTreeMap<StageId, OrderStatus>>,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelinesView {
    pub items: Vec<PipelineView>,
    /// Mappings of pipelines HubSpot no longer has.
    pub problems: Vec<Problem>,
    pub config_version: u64,
}

pub async fn pipelines(
    services: &Services,
    account: &AccountId,
) -> Result<PipelinesView, SettingsError> {
    let token = token(services, account).await?;
    let live = services.crm.pipelines(&token).await?;
    let config = services.configs.config(account).await?;
    Ok(pipelines_view(&live, &config))
}

pub(super) fn pipelines_view(live: &[HsPipeline], config: &AccountConfig) -> PipelinesView {
    let empty = BTreeMap::new();
    let items = live
        .iter()
        .map(|p| {
            let mapping = config.status_mapping.get(&p.id).unwrap_or(&empty);
            let mut problems: Vec<Problem> = mapping
                .keys()
                .filter(|stage| !p.stages.iter().any(|s| s.id == **stage))
                .map(|stage| Problem::StageMissing {
                    pipeline_id: p.id.clone(),
                    stage_id: stage.clone(),
                })
                .collect();
            let mut stage_for_status = BTreeMap::new();
            let stages = p
                .stages
                .iter()
                .map(|s| {
                    let status = mapping.get(&s.id).copied();
                    match status {
                        Some(status) => {
                            stage_for_status
                                .entry(status.code())
                                .or_insert_with(|| s.id.clone());
                        }
                        None => problems.push(Problem::StageUnmapped {
                            pipeline_id: p.id.clone(),
                            stage_id: s.id.clone(),
                        }),
                    }
                    StageView {
                        id: s.id.clone(),
                        label: s.label.clone(),
                        display_order: s.display_order,
                        order_status: status,
                        order_status_label: status.map(OrderStatus::label_ja),
                    }
                })
                .collect();
            let suggested_mapping = (p.id.as_str() == "default").then(|| {
                suggested_default()
                    .into_iter()
                    .filter(|(stage, _)| p.stages.iter().any(|s| s.id.as_str() == *stage))
                    .map(|(stage, status)| (StageId::new(stage).expect("valid id"), status))
                    .collect()
            });
            PipelineView {
                id: p.id.clone(),
                label: p.label.clone(),
                stages,
                stage_for_status,
                suggested_mapping,
                problems,
            }
        })
        .collect();
    let problems = config
        .status_mapping
        .keys()
        .filter(|id| !live.iter().any(|p| p.id == **id))
        .map(|id| Problem::PipelineMissing {
            pipeline_id: id.clone(),
        })
        .collect();
    PipelinesView {
        items,
        problems,
        config_version: config.version,
    }
}

/// `PUT …/pipelines/{id}/status-mapping {"stages": {"<stage>": 4 | null}}`:
/// listed stages are set (a code) or cleared (null); others keep their mapping.
pub async fn set_status_mapping(
    services: &Services,
    account: &AccountId,
    pipeline: &str,
    body: &Value,
) -> Result<u64, SettingsError> {
    let change = mapping_change(services, account, pipeline, body).await?;
    update(services, account, change).await
}

/// A mapping change checked against HubSpot's live pipeline (the stage ids,
/// board's codes), as a change to apply to a configuration: saved by
/// `set_status_mapping`, tried on a copy by the preview.
pub(super) async fn mapping_change(
    services: &Services,
    account: &AccountId,
    pipeline: &str,
    body: &Value,
) -> Result<impl Fn(&mut crate::domain::config::AccountConfig) + use<>, SettingsError> {
    let stages = body
        .get("stages")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            invalid(
                "stages",
                "an object of stage id → status code or null is required",
            )
        })?;
    let token = token(services, account).await?;
    let live = services.crm.pipelines(&token).await?;
    let pipeline = live
        .iter()
        .find(|p| p.id.as_str() == pipeline)
        .ok_or_else(|| SettingsError::NotFound(format!("pipeline {pipeline}")))?;
    let mut changes: Vec<(StageId, Option<OrderStatus>)> = Vec::new();
    for (stage, code) in stages {
        if !pipeline.stages.iter().any(|s| s.id.as_str() == stage) {
            return Err(invalid(
                format!("stages.{stage}"),
                format!("no stage {stage} in pipeline {}", pipeline.id),
            ));
        }
        let status = match code {
            Value::Null => None,
            Value::Number(n) => Some(
                n.as_i64()
                    .and_then(|c| OrderStatus::from_code(c).ok())
                    .ok_or_else(|| {
                        invalid(
                            format!("stages.{stage}"),
                            format!("{n} is not one of board's codes 1, 2, 3, 8, 4, 5, 9"),
                        )
                    })?,
            ),
            other => {
                return Err(invalid(
                    format!("stages.{stage}"),
                    format!("{other} is not a status code or null"),
                ));
            }
        };
        changes.push((
            StageId::new(stage.as_str())
                .map_err(|e| invalid(format!("stages.{stage}"), e.to_string()))?,
            status,
        ));
    }
    let pipeline_id = pipeline.id.clone();
    Ok(move |config: &mut crate::domain::config::AccountConfig| {
        let mapping = config
            .status_mapping
            .entry(pipeline_id.clone())
            .or_default();
        for (stage, status) in &changes {
            match status {
                Some(s) => mapping.insert(stage.clone(), *s),
                None => mapping.remove(stage),
            };
        }
        if mapping.is_empty() {
            config.status_mapping.remove(&pipeline_id);
        }
    })
}
