//! Stage ↔ 受注ステータス (SPEC §4, §6): by stage id, never by label.

use std::collections::BTreeMap;

use super::{OrderStatus, PipelineId, StageId};

/// HubSpot's default pipeline's suggestion (offered, never saved by itself).
pub fn suggested_default() -> Vec<(&'static str, OrderStatus)> {
    vec![
        ("contractsent", OrderStatus::EstimatingHigh),
        ("closedwon", OrderStatus::OrderConfirmed),
        ("closedlost", OrderStatus::Lost),
    ]
}

/// The stage board → HubSpot sync uses for a status: the deal's current stage if
/// it already maps to it, else the first stage (display order) mapped to it.
pub fn stage_for_status<'a>(
    stages_in_order: &'a [StageId],
    mapping: &BTreeMap<StageId, OrderStatus>,
    current: Option<&'a StageId>,
    status: OrderStatus,
) -> Option<&'a StageId> {
    if let Some(current) = current
        && mapping.get(current) == Some(&status)
    {
        return Some(current);
    }
    stages_in_order
        .iter()
        .find(|s| mapping.get(*s) == Some(&status))
}

/// What a mapping refers to that no longer exists in HubSpot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MappingProblem))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    PipelineMissing {
        pipeline_id: PipelineId,
    },
    StageMissing {
        pipeline_id: PipelineId,
        stage_id: StageId,
    },
    StageUnmapped {
        pipeline_id: PipelineId,
        stage_id: StageId,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(id: &str) -> StageId {
        StageId::new(id).unwrap()
    }

    #[test]
    fn the_current_stage_wins_when_it_already_maps_to_the_status() {
        let order = vec![s("a"), s("b"), s("c")];
        let mapping = BTreeMap::from([
            (s("b"), OrderStatus::OrderConfirmed),
            (s("c"), OrderStatus::OrderConfirmed),
        ]);
        assert_eq!(
            stage_for_status(
                &order,
                &mapping,
                Some(&order[2]),
                OrderStatus::OrderConfirmed
            ),
            Some(&order[2])
        );
        assert_eq!(
            stage_for_status(
                &order,
                &mapping,
                Some(&order[0]),
                OrderStatus::OrderConfirmed
            ),
            Some(&order[1])
        );
        assert_eq!(
            stage_for_status(&order, &mapping, None, OrderStatus::Lost),
            None
        );
    }
}
