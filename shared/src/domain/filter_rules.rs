//! Deal filter rules (SPEC §4): a rule is a set of conditions "field ∈ values",
//! all of which must hold; a deal passes if any rule matches; no rules: every
//! deal passes; a deal without a value for a field fails a condition on it.

use super::config::{FilterField, FilterRule};

/// How the rules decided, with the value that decided it (for the diagnosis).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum FilterDecision {
    NoRules,
    Matched { rule: usize },
    NoneMatched { failures: Vec<RuleFailure> },
}

impl FilterDecision {
    pub fn passes(&self) -> bool {
        !matches!(self, Self::NoneMatched { .. })
    }
}

/// Why one rule did not match: its first failing condition and the deal's value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleFailure {
    pub rule: usize,
    pub field: FilterField,
    pub value: Option<String>,
}

pub fn evaluate(
    rules: &[FilterRule],
    value_of: impl Fn(FilterField) -> Option<String>,
) -> FilterDecision {
    if rules.is_empty() {
        return FilterDecision::NoRules;
    }
    let mut failures = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        let failing = rule.conditions.iter().find(|c| {
            let value = value_of(c.field);
            !value
                .as_ref()
                .is_some_and(|v| !v.is_empty() && c.values.iter().any(|allowed| allowed == v))
        });
        match failing {
            None => return FilterDecision::Matched { rule: index },
            Some(c) => failures.push(RuleFailure {
                rule: index,
                field: c.field,
                value: value_of(c.field),
            }),
        }
    }
    FilterDecision::NoneMatched { failures }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::config::Condition;

    fn rule(conditions: &[(FilterField, &[&str])]) -> FilterRule {
        FilterRule {
            conditions: conditions
                .iter()
                .map(|(f, v)| Condition {
                    field: *f,
                    values: v.iter().map(|s| s.to_string()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn given_no_rules_every_deal_passes() {
        assert_eq!(evaluate(&[], |_| None), FilterDecision::NoRules);
    }

    #[test]
    fn given_rules_a_deal_passes_when_all_conditions_of_one_rule_hold() {
        let rules = vec![
            rule(&[
                (FilterField::Team, &["8000001"]),
                (FilterField::Owner, &["6000001", "6000002"]),
            ]),
            rule(&[(FilterField::FilterKey, &["A事業部用boardアカウント"])]),
        ];
        let deal = |team: Option<&str>, owner: Option<&str>, key: Option<&str>| {
            let (team, owner, key) = (
                team.map(str::to_owned),
                owner.map(str::to_owned),
                key.map(str::to_owned),
            );
            move |f: FilterField| match f {
                FilterField::Team => team.clone(),
                FilterField::Owner => owner.clone(),
                FilterField::FilterKey => key.clone(),
            }
        };
        assert_eq!(
            evaluate(&rules, deal(Some("8000001"), Some("6000002"), None)),
            FilterDecision::Matched { rule: 0 }
        );
        assert_eq!(
            evaluate(&rules, deal(None, None, Some("A事業部用boardアカウント"))),
            FilterDecision::Matched { rule: 1 }
        );
        let decision = evaluate(
            &rules,
            deal(Some("8000001"), None, Some("B事業部用boardアカウント")),
        );
        assert!(!decision.passes());
        match decision {
            FilterDecision::NoneMatched { failures } => {
                assert_eq!(
                    failures[0],
                    RuleFailure {
                        rule: 0,
                        field: FilterField::Owner,
                        value: None
                    },
                    "no value fails"
                );
                assert_eq!(
                    failures[1].value.as_deref(),
                    Some("B事業部用boardアカウント")
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
