//! The settings endpoints (SPEC §4): stage → status mapping per pipeline (`pipelines`), filter
//! rules and their options (`filters`), the account label, owner mapping and options (`account`).
//! Every change bumps the account's config version (history entries name the version they used).

pub mod account;
pub mod common;
pub mod filters;
pub mod pipelines;
pub mod preview;

pub use account::{
    Options, OwnerMapping, OwnerMappingRow, account_label, options, owner_mapping,
    set_account_label, set_options, set_owner_mapping,
};
pub use common::{MAX_CONDITIONS, MAX_RULES, MAX_VALUES, SettingsError};
pub use filters::{
    FilterKeyInfo, FilterOptions, OwnerOption, RulesBody, filter_options, filter_rules,
    set_filter_rules,
};
pub use pipelines::{PipelineView, PipelinesView, StageView, pipelines, set_status_mapping};
