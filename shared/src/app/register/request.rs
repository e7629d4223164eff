//! A registration request and its errors: which fields board needs, per invoicing timing.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::app::hubspot_to_board::SyncFailure;
use crate::ports::{BoardError, HubSpotError, StoreError};

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// An existing board customer; null: create one from the deal's company (or contact).
    pub client_id: Option<u64>,
    /// The project's contact (a board customer contact); null: the first one linked.
    #[serde(default)]
    pub contact_id: Option<u64>,
    pub user_id: u64,
    pub invoice_timing_kbn: u8,
    #[serde(default)]
    pub invoice_date: Option<String>,
    #[serde(default)]
    pub contract_start_date: Option<String>,
    #[serde(default)]
    pub contract_end_date: Option<String>,
    #[serde(default)]
    pub invoice_dates: Option<Vec<String>>,
    /// Which of the deal's companies the customer is created from.
    #[serde(
        default,
        deserialize_with = "crate::domain::link::string_u64::optional"
    )]
    pub company_id: Option<u64>,
    /// Which of the deal's contacts become 顧客担当者 (default: all).
    #[serde(default)]
    pub contact_ids: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("HubSpot is not connected")]
    NotConnected,
    #[error("no open draft {0}")]
    NotFound(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("the deal does not qualify any more: {0}")]
    NotQualifying(String),
    #[error("{0}")]
    Conflict(String),
    /// board refused the input; its message and field errors.
    #[error("board: {message}")]
    Board {
        message: String,
        fields: Vec<(String, Vec<String>)>,
    },
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(super) fn invalid(field: &str, message: impl Into<String>) -> RegisterError {
    RegisterError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl From<BoardError> for RegisterError {
    fn from(e: BoardError) -> Self {
        match e {
            BoardError::Rejected { message, fields } => Self::Board { message, fields },
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<HubSpotError> for RegisterError {
    fn from(e: HubSpotError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<SyncFailure> for RegisterError {
    fn from(e: SyncFailure) -> Self {
        match e {
            SyncFailure::Store(s) => Self::Store(s),
            SyncFailure::Conflict => Self::Store(StoreError::Conflict),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

pub(super) fn is_date(s: &str) -> bool {
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).is_ok()
}

/// board's per-timing requirements, checked before anything is created.
pub(super) fn invoicing(body: &Registration) -> Result<Map<String, Value>, RegisterError> {
    let mut fields = Map::new();
    fields.insert("invoice_timing_kbn".into(), json!(body.invoice_timing_kbn));
    let date = |name: &str, value: &Option<String>| -> Result<String, RegisterError> {
        value
            .clone()
            .filter(|d| is_date(d))
            .ok_or_else(|| invalid(name, "YYYY-MM-DD を指定してください"))
    };
    match body.invoice_timing_kbn {
        1 => {
            fields.insert(
                "invoice_date".into(),
                json!(date("invoice_date", &body.invoice_date)?),
            );
        }
        2 => {
            fields.insert(
                "contract_start_date".into(),
                json!(date("contract_start_date", &body.contract_start_date)?),
            );
            fields.insert(
                "contract_end_date".into(),
                json!(date("contract_end_date", &body.contract_end_date)?),
            );
        }
        3 => {
            let dates = body.invoice_dates.clone().unwrap_or_default();
            if dates.is_empty() || !dates.iter().all(|d| is_date(d)) {
                return Err(invalid(
                    "invoice_dates",
                    "1つ以上の日付(YYYY-MM-DD)を指定してください",
                ));
            }
            fields.insert("invoice_dates".into(), json!(dates));
        }
        _ => {
            return Err(invalid(
                "invoice_timing_kbn",
                "1(一括)・2(定期)・3(分割)のいずれかです",
            ));
        }
    }
    Ok(fields)
}
