//! A document sent in board (見積書, 請求書, …) as a note on the linked deal: written once per
//! event, found again by its marker when HubSpot's search has indexed it (intent recorded first).

use serde_json::Value;
use tracing::{info, warn};

use crate::app::Services;
use crate::app::budgeted_hubspot::BudgetedHubSpot;
use crate::app::history::{Attempt, record};
use crate::domain::connection::ConnectionState;
use crate::domain::{AccountId, BoardObjectKind, BoardRef, Code, HubSpotObjectType, LinkState};
use crate::ports::HubSpotError;

use super::outcome::*;
use crate::app::failure::SyncFailure;

/// A note's intent while its create is under way (`pending:<ms since the epoch>`;
/// a bare `pending` was written before the time was kept).
pub(super) const PENDING: &str = "pending";

/// A note's intent after HubSpot refused the create (nothing was created).
pub(super) const NOT_CREATED: &str = "not_created";

/// How long CRM search may take to show a new note (HubSpot indexes
/// asynchronously, in seconds): an unfound note whose create may have
/// happened less than this ago is looked for again later.
pub(super) const NOTE_INDEX_WAIT_MS: i64 = 30_000;

pub(super) fn pending_since(intent: &str) -> Option<i64> {
    intent.strip_prefix("pending:")?.parse().ok()
}

/// The marker that makes a note findable after a crash between HubSpot's create and our write.
pub fn note_marker(event_id: &str) -> String {
    format!("[board-doc:{event_id}]")
}

pub(super) fn yen(value: Option<&str>) -> Option<String> {
    let v = value?.parse::<f64>().ok()?;
    let whole = v.trunc() as i64;
    let digits = whole.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    Some(format!("{}¥{grouped}", if whole < 0 { "-" } else { "" }))
}

/// The note's body, in Japanese (SPEC §6), ending with the marker.
pub fn note_body(object: &Value, event_id: &str) -> String {
    let kind = object["document_type"].as_str().unwrap_or_default();
    let kind = crate::app::jobs::DOCUMENT_TYPES
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(kind, |(_, ja)| ja);
    let resend = if object["resend"].as_bool() == Some(true) {
        "(再送)"
    } else {
        ""
    };
    let method = match object["method"].as_str() {
        Some("post") => "郵送",
        _ => "メール",
    };
    let mut lines = vec![
        format!("boardから{kind}を送付しました{resend}"),
        format!(
            "書類番号: {}",
            object["document_number"].as_str().unwrap_or_default()
        ),
        format!(
            "発行日: {}",
            object["issue_date"].as_str().unwrap_or_default()
        ),
    ];
    if let Some(v) = yen(object["total"].as_str()) {
        lines.push(format!("金額(税抜): {v}"));
    }
    if let Some(v) = yen(object["total_with_tax"].as_str()) {
        lines.push(format!("金額(税込): {v}"));
    }
    lines.push(format!("送付方法: {method}"));
    lines.push(note_marker(event_id));
    lines
        .iter()
        .map(|l| format!("<p>{}</p>", html_escape(l)))
        .collect()
}

pub(super) fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `document.sent`: one note on the deal, its primary company and the project's
/// contact, created once even across redeliveries and crashes (SPEC §11).
pub async fn document_sent(
    services: &Services,
    account: &AccountId,
    event_id: &str,
    object: &Value,
    last_attempt: bool,
) -> Result<Applied, SyncFailure> {
    let Some(project_id) = object["project_id"].as_u64() else {
        return Ok(Applied::Nothing);
    };
    let Some(connection) = live_connection(services, account).await? else {
        return Ok(Applied::Nothing);
    };
    let board = BoardRef {
        kind: BoardObjectKind::Project,
        id: project_id,
    };
    let Some(link) = services
        .links
        .link_by_board(account, connection.portal_id, board)
        .await?
    else {
        return Ok(Applied::Nothing);
    };
    // A document sent before its project was deleted still belongs on the deal
    // (the deletion may even be handled first: events arrive in any order).
    if !matches!(link.state, LinkState::Enabled | LinkState::Deleted) {
        return Ok(Applied::Nothing);
    }
    let config = services.configs.config(account).await?;
    let name = Some(format!(
        "{} {}",
        object["document_number"].as_str().unwrap_or_default(),
        object["document_type"].as_str().unwrap_or_default()
    ));
    if matches!(connection.state, ConnectionState::Suspended) {
        record(
            services,
            Attempt {
                code: Some(Code::IntegrationSuspended),
                ..attempt(&link, name, config.version)
            },
        )
        .await;
        return Ok(Applied::Recorded(Code::IntegrationSuspended));
    }
    let intent = format!("note#{event_id}");
    let keep_until = services.clock.now() + crate::app::jobs::EVENT_MEMORY;
    let marker = note_marker(event_id);
    let token = match crate::app::tokens::access_token(services, account).await {
        Ok(t) => t,
        Err(e) => {
            return failure(
                services,
                link,
                name,
                WriteError::Token(e),
                last_attempt,
                config.version,
            )
            .await;
        }
    };
    let token = secrecy::ExposeSecret::expose_secret(&token).to_owned();
    let hubspot = BudgetedHubSpot::new(services, &connection, &token);
    let now_ms = services.now_ms();
    match services
        .board_events
        .intent(account, &intent, services.clock.now())
        .await?
        .as_deref()
    {
        Some(pending) if pending.starts_with(PENDING) => {
            // A previous attempt may have created it before failing: adopt it.
            match hubspot.find_note(&marker).await {
                Ok(Some(id)) => {
                    services
                        .board_events
                        .set_intent(account, &intent, &id.to_string(), keep_until)
                        .await?;
                    info!(note = id, "note adopted after an interrupted attempt");
                    return Ok(Applied::Nothing);
                }
                // CRM search sees a new note only once it is indexed: a note the
                // last attempt may have created moments ago cannot be ruled out
                // yet, so look again later rather than create a second one.
                Ok(None)
                    if !last_attempt
                        && pending_since(pending)
                            .is_some_and(|at| now_ms - at < NOTE_INDEX_WAIT_MS) =>
                {
                    return Err(SyncFailure::Retry {
                        code: crate::domain::Code::HubspotUnavailable,
                        detail: "an earlier attempt's note may not be searchable yet".into(),
                        after: Some(std::time::Duration::from_millis(NOTE_INDEX_WAIT_MS as u64)),
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    return failure(
                        services,
                        link,
                        name,
                        WriteError::HubSpot(e),
                        last_attempt,
                        config.version,
                    )
                    .await;
                }
            }
        }
        Some(NOT_CREATED) | None => {}
        Some(_) => return Ok(Applied::Nothing),
    }
    // Associations: the deal, its primary company, the project's contact when linked.
    let mut associations = vec![link.hubspot];
    if let Some(company) = link
        .baseline
        .get(crate::domain::mapping::COMPANY)
        .and_then(|b| b.hubspot.as_deref())
        .and_then(|c| c.parse().ok())
    {
        associations.push(crate::domain::HubSpotRef {
            object_type: HubSpotObjectType::Company,
            id: company,
        });
    }
    let project = services
        .board
        .get(account, crate::ports::BoardResource::Projects, project_id)
        .await;
    match project {
        Ok(project) => {
            if let Some(contact) = project.fields.get("contact_id").and_then(Value::as_u64)
                && let Some(contact_link) = services
                    .links
                    .link_by_board(
                        account,
                        connection.portal_id,
                        BoardRef {
                            kind: BoardObjectKind::CustomerContact,
                            id: contact,
                        },
                    )
                    .await?
                && contact_link.state == LinkState::Enabled
            {
                associations.push(contact_link.hubspot);
            }
        }
        Err(crate::ports::BoardError::NotFound) => {}
        // Waiting for the account's budget is no failure: the note waits too, with its contact.
        Err(e @ crate::ports::BoardError::OverBudget { .. }) => return Err(SyncFailure::from(e)),
        Err(e) if !last_attempt => return Err(SyncFailure::from(e)),
        Err(e) => warn!(error = %e, "project not read; the note goes without its contact"),
    }
    services
        .board_events
        .set_intent(account, &intent, &format!("{PENDING}:{now_ms}"), keep_until)
        .await?;
    let timestamp = services.clock.now().unix_timestamp() * 1000;
    let body = note_body(object, event_id);
    match hubspot.create_note(&body, timestamp, &associations).await {
        Ok(id) => {
            services
                .board_events
                .set_intent(account, &intent, &id.to_string(), keep_until)
                .await?;
            record(
                services,
                Attempt {
                    action: Some("note_created"),
                    detail: Some(format!("note {id}")),
                    ..attempt(&link, name, config.version)
                },
            )
            .await;
            Ok(Applied::NoteCreated(id))
        }
        // The deal is gone: the note cannot be attached; the link is disabled once.
        Err(e) => {
            if !matches!(e, HubSpotError::Unavailable(_)) {
                // HubSpot answered and refused: nothing was created, so the
                // next attempt need not wait for the search index.
                services
                    .board_events
                    .set_intent(account, &intent, NOT_CREATED, keep_until)
                    .await?;
            }
            failure(
                services,
                link,
                name,
                WriteError::HubSpot(e),
                last_attempt,
                config.version,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_say_what_was_sent_in_japanese_with_the_marker() {
        let object = serde_json::json!({"project_id": 1, "document_type": "invoice", "document_number": "INV-000001",
            "issue_date": "2026-11-30", "total": "100000", "tax": "10000", "total_with_tax": "110000",
            "method": "post", "resend": true});
        let body = note_body(&object, "ev-9");
        assert_eq!(
            body,
            "<p>boardから請求書を送付しました(再送)</p><p>書類番号: INV-000001</p><p>発行日: 2026-11-30</p>\
             <p>金額(税抜): ¥100,000</p><p>金額(税込): ¥110,000</p><p>送付方法: 郵送</p><p>[board-doc:ev-9]</p>"
        );
    }
}
