//! The entry gates of an unlinked deal (SPEC §5), checked in order: mapping,
//! filter rules, exclusion, claimed by another account. Each gate says whether
//! it passed and the value that decided it.

use serde::Serialize;

use super::config::{AccountConfig, FilterField};
use super::filter_rules::{FilterDecision, evaluate};
use super::{AccountId, OrderStatus, PipelineId, StageId};

pub const EXCLUDED_VALUE: &str = "true";

/// What the gates need to know about a deal.
#[derive(Debug, Clone, Default)]
pub struct DealFacts {
    pub pipeline: Option<PipelineId>,
    pub stage: Option<StageId>,
    pub team: Option<String>,
    pub owner: Option<String>,
    pub filter_key: Option<String>,
    pub exclusion: Option<String>,
    /// Another board account that linked this deal in the portal.
    pub claimed_by: Option<AccountId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    StatusMapping,
    FilterRules,
    Exclusion,
    ClaimedElsewhere,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GateResult {
    pub gate: Gate,
    pub passed: bool,
    /// The value that decided it, in plain words.
    pub detail: String,
    /// The same in English (the card's `locale=en`).
    pub detail_en: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GateReport {
    pub gates: Vec<GateResult>,
    /// The mapped status when the mapping gate passed.
    pub order_status: Option<OrderStatus>,
    pub filter: FilterDecision,
}

impl GateReport {
    pub fn passed(&self) -> bool {
        self.gates.iter().all(|g| g.passed)
    }

    /// The first failing gate's explanation (what the card and the draft list show).
    pub fn first_failure(&self) -> Option<&GateResult> {
        self.gates.iter().find(|g| !g.passed)
    }
}

/// Evaluates every gate (the diagnosis shows all of them); a deal enters only if all pass.
/// `stage_label` names a stage for the explanation (its label when known).
pub fn evaluate_gates(
    config: &AccountConfig,
    facts: &DealFacts,
    stage_label: impl Fn(&StageId) -> String,
) -> GateReport {
    let mut gates = Vec::with_capacity(4);
    let order_status = match (&facts.pipeline, &facts.stage) {
        (Some(pipeline), Some(stage)) => {
            let status = config.status_of(pipeline, stage);
            gates.push(GateResult {
                gate: Gate::StatusMapping,
                passed: status.is_some(),
                detail: match status {
                    Some(s) => format!(
                        "ステージ「{}」は受注ステータス「{}」にマッピングされています",
                        stage_label(stage),
                        s.label_ja()
                    ),
                    None if !config.status_mapping.contains_key(pipeline) => {
                        format!(
                            "パイプライン「{pipeline}」は受注ステータスにマッピングされていません"
                        )
                    }
                    None => format!(
                        "ステージ「{}」は受注ステータスにマッピングされていません",
                        stage_label(stage)
                    ),
                },
                detail_en: match status {
                    Some(s) => format!(
                        "Stage “{}” maps to the order status “{}”",
                        stage_label(stage),
                        s.label_en()
                    ),
                    None if !config.status_mapping.contains_key(pipeline) => {
                        format!("Pipeline “{pipeline}” is not mapped to order statuses")
                    }
                    None => format!(
                        "Stage “{}” is not mapped to an order status",
                        stage_label(stage)
                    ),
                },
            });
            status
        }
        _ => {
            gates.push(GateResult {
                gate: Gate::StatusMapping,
                passed: false,
                detail: "取引にパイプラインまたはステージがありません".into(),
                detail_en: "The deal has no pipeline or stage".into(),
            });
            None
        }
    };
    let filter = evaluate(&config.filter_rules, |field| match field {
        FilterField::Team => facts.team.clone(),
        FilterField::Owner => facts.owner.clone(),
        FilterField::FilterKey => facts.filter_key.clone(),
    });
    gates.push(GateResult {
        gate: Gate::FilterRules,
        passed: filter.passes(),
        detail_en: match &filter {
            FilterDecision::NoRules => "No filter rules (every deal qualifies)".into(),
            FilterDecision::Matched { rule } => format!("Matches filter rule {}", rule + 1),
            FilterDecision::NoneMatched { failures } => {
                let first = &failures[0];
                format!(
                    "Matches no filter rule (rule {}: {} = {})",
                    first.rule + 1,
                    first.field.property(),
                    first.value.as_deref().unwrap_or("(no value)")
                )
            }
        },
        detail: match &filter {
            FilterDecision::NoRules => "フィルタールールはありません(すべての取引が対象)".into(),
            FilterDecision::Matched { rule } => {
                format!("フィルタールール{}に一致しました", rule + 1)
            }
            FilterDecision::NoneMatched { failures } => {
                let first = &failures[0];
                format!(
                    "どのフィルタールールにも一致しません(ルール{}: {} = {})",
                    first.rule + 1,
                    first.field.property(),
                    first.value.as_deref().unwrap_or("(値なし)")
                )
            }
        },
    });
    let excluded = facts.exclusion.as_deref() == Some(EXCLUDED_VALUE);
    gates.push(GateResult {
        gate: Gate::Exclusion,
        passed: !excluded,
        detail: if excluded {
            "「board連携から除外」が「はい」に設定されています".into()
        } else {
            "「board連携から除外」は設定されていません".into()
        },
        detail_en: if excluded {
            "“Exclude from board integration” is set to Yes".into()
        } else {
            "“Exclude from board integration” is not set".into()
        },
    });
    gates.push(GateResult {
        gate: Gate::ClaimedElsewhere,
        passed: facts.claimed_by.is_none(),
        detail: match &facts.claimed_by {
            Some(other) => format!("他のboardアカウント({other})と連携済み"),
            None => "他のboardアカウントと連携していません".into(),
        },
        detail_en: match &facts.claimed_by {
            Some(other) => format!("Linked in another board account ({other})"),
            None => "Not linked in another board account".into(),
        },
    });
    GateReport {
        gates,
        order_status,
        filter,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::config::{Condition, FilterRule};

    fn mapped() -> AccountConfig {
        let mut config = AccountConfig::default();
        config.status_mapping.insert(
            PipelineId::new("default").unwrap(),
            BTreeMap::from([(
                StageId::new("closedwon").unwrap(),
                OrderStatus::OrderConfirmed,
            )]),
        );
        config
    }

    fn facts(stage: &str) -> DealFacts {
        DealFacts {
            pipeline: Some(PipelineId::new("default").unwrap()),
            stage: Some(StageId::new(stage).unwrap()),
            ..DealFacts::default()
        }
    }

    #[test]
    fn given_a_mapped_stage_and_no_rules_the_deal_enters_with_its_status() {
        let report = evaluate_gates(&mapped(), &facts("closedwon"), |s| s.to_string());
        assert!(report.passed());
        assert_eq!(report.order_status, Some(OrderStatus::OrderConfirmed));
    }

    #[test]
    fn given_an_unmapped_stage_the_first_gate_explains_it_by_label() {
        let report = evaluate_gates(&mapped(), &facts("qualifiedtobuy"), |_| "初回商談".into());
        assert!(!report.passed());
        let failure = report.first_failure().unwrap();
        assert_eq!(failure.gate, Gate::StatusMapping);
        assert_eq!(
            failure.detail,
            "ステージ「初回商談」は受注ステータスにマッピングされていません"
        );
    }

    #[test]
    fn given_exclusion_or_a_claim_the_deal_stays_out() {
        let mut excluded = facts("closedwon");
        excluded.exclusion = Some("true".into());
        assert_eq!(
            evaluate_gates(&mapped(), &excluded, |s| s.to_string())
                .first_failure()
                .unwrap()
                .gate,
            Gate::Exclusion
        );
        let mut not_excluded = facts("closedwon");
        not_excluded.exclusion = Some("false".into());
        assert!(evaluate_gates(&mapped(), &not_excluded, |s| s.to_string()).passed());
        let mut claimed = facts("closedwon");
        claimed.claimed_by = Some(AccountId::new("acct-b").unwrap());
        let report = evaluate_gates(&mapped(), &claimed, |s| s.to_string());
        assert_eq!(
            report.first_failure().unwrap().detail,
            "他のboardアカウント(acct-b)と連携済み"
        );
    }

    #[test]
    fn given_rules_a_deal_without_the_value_fails_the_filter() {
        let mut config = mapped();
        config.filter_rules = vec![FilterRule {
            conditions: vec![Condition {
                field: FilterField::Team,
                values: vec!["8000001".into()],
            }],
        }];
        let report = evaluate_gates(&config, &facts("closedwon"), |s| s.to_string());
        assert_eq!(report.first_failure().unwrap().gate, Gate::FilterRules);
        let mut in_team = facts("closedwon");
        in_team.team = Some("8000001".into());
        assert!(evaluate_gates(&config, &in_team, |s| s.to_string()).passed());
    }
}
