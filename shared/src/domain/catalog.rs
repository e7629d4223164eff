//! The error catalog (SPEC §9 and the OAuth flow codes of §3.4): one table, the
//! only place a code meets its messages and what to do next.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What the caller does next when an attempt ends with this code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Transient: retried automatically with backoff; after the budget, an error entry.
    Retry,
    /// Nothing was changed on purpose; recorded as a skip.
    Skip,
    /// The link is disabled and the first failure recorded; later changes are silent.
    DisableLink,
    /// Counts toward (or reports) suspension of the connection.
    Suspend,
    /// Recorded as an error; a person acts, then retries from the history.
    Fail,
}

macro_rules! catalog {
    ($( $variant:ident => $code:literal, $class:ident,
        ja: $ja:literal, en: $en:literal,
        guidance_ja: $gja:literal, guidance_en: $gen:literal; )*) => {
        /// A stable code, as stored in history entries and returned by the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code { $($variant),* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            pub fn entry(self) -> &'static CatalogEntry {
                match self {
                    $(Code::$variant => &CatalogEntry {
                        code: $code,
                        class: Class::$class,
                        message_ja: $ja,
                        message_en: $en,
                        guidance_ja: $gja,
                        guidance_en: $gen,
                    },)*
                }
            }
        }
    };
}

/// One row of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    pub code: &'static str,
    pub class: Class,
    pub message_ja: &'static str,
    pub message_en: &'static str,
    pub guidance_ja: &'static str,
    pub guidance_en: &'static str,
}

catalog! {
    HubspotApiError => "hubspot_api_error", Fail,
        ja: "APIからエラーが返ってきました。エラー内容を確認してください。",
        en: "HubSpot's API returned an error. Check the error details.",
        guidance_ja: "HubSpot APIの入力チェック(例:文字数オーバー等)に引っかかり登録できないケースです。HubSpotから返ってきたエラーメッセージも合わせて表示されますので、その内容を確認して対応してください。",
        guidance_en: "HubSpot's input validation rejected the data (for example, a value that is too long). HubSpot's own message is shown with the entry: correct the data, then retry.";
    HubspotAuthInvalid => "hubspot_auth_invalid", Suspend,
        ja: "HubSpot APIの認証が無効です。再認証してください。",
        en: "HubSpot API authentication is invalid. Reconnect HubSpot.",
        guidance_ja: "接続の許可が無効になっている状態です。上メニューの「設定→外部サービス連携」画面で一度連携を解除し、再度連携の設定をしてください。",
        guidance_en: "The connection's authorisation is no longer valid. In board, open Settings → External integrations, disconnect HubSpot and connect it again.";
    HubspotScopeInsufficient => "hubspot_scope_insufficient", Fail,
        ja: "HubSpot APIの認可が不足しています。再認証してください。",
        en: "The HubSpot connection lacks a required permission. Reconnect HubSpot.",
        guidance_ja: "接続の許可は行われているものの権限が足りない状態です。上メニューの「設定→外部サービス連携」画面で一度連携を解除し、再度連携の設定をしてください。",
        guidance_en: "The connection is authorised but lacks a permission. In board, open Settings → External integrations, disconnect HubSpot and connect it again with a HubSpot super admin.";
    HubspotUnavailable => "hubspot_unavailable", Retry,
        ja: "HubSpot APIが一時的に利用できない状況です。",
        en: "HubSpot's API is temporarily unavailable.",
        guidance_ja: "HubSpot側のメンテナンスや障害等でAPIを利用できませんでした。自動再試行後も失敗しました。連携履歴から再実行してください。",
        guidance_en: "HubSpot's API could not be used (maintenance or an outage), and automatic retries also failed. Retry the entry from the sync history.";
    IntegrationSuspended => "integration_suspended", Suspend,
        ja: "HubSpot連携が一時停止されています。",
        en: "The HubSpot integration is suspended.",
        guidance_ja: "一定回数以上APIの認証に失敗すると、連携が無効になります。上メニューの「設定→外部サービス連携」画面で一度連携を解除し、再度接続してください。",
        guidance_en: "Authentication with HubSpot failed repeatedly, so the integration was suspended. In board, open Settings → External integrations, disconnect HubSpot and connect it again; changes made meanwhile are caught up.";
    InternalError => "internal_error", Fail,
        ja: "エラーが発生しました",
        en: "An error occurred.",
        guidance_ja: "このエラーメッセージのみ表示されていて、それ以外のエラー内容が表示されていない場合は、サポート窓口へお問い合わせください。この際、連携履歴に表示されている「履歴ID」をお知らせください。",
        guidance_en: "If no other detail is shown, contact support and quote the history ID shown in the sync history.";
    DealNotFound => "deal_not_found", DisableLink,
        ja: "対応する取引がHubSpotに存在しないため同期は無効になりました",
        en: "Sync was disabled because the linked deal no longer exists in HubSpot.",
        guidance_ja: "取引と案件を連携した後に、HubSpot側で取引が削除された場合に発生します。",
        guidance_en: "The deal was deleted in HubSpot after it was linked to the project.";
    DealExcluded => "deal_excluded", DisableLink,
        ja: "HubSpot側で「board連携対象外」に設定されたため同期は無効になりました",
        en: "Sync was disabled because the deal was excluded from the board integration in HubSpot.",
        guidance_ja: "取引と案件を連携した後に、HubSpot側で「board連携対象外」を「はい」に設定した場合に発生します。再度有効にする場合は「いいえ」に変更してください。",
        guidance_en: "Someone set “Exclude from board integration” to Yes on the deal after it was linked. Set it back to No to enable sync again.";
    CompanyNotFound => "company_not_found", DisableLink,
        ja: "対応する会社がHubSpotに存在しないため同期は無効になりました",
        en: "Sync was disabled because the linked company no longer exists in HubSpot.",
        guidance_ja: "会社と顧客を連携した後に、HubSpot側で会社を削除した場合に発生します。",
        guidance_en: "The company was deleted in HubSpot after it was linked to the customer.";
    ContactNotFound => "contact_not_found", DisableLink,
        ja: "対応するコンタクトがHubSpotに存在しないため同期は無効になりました",
        en: "Sync was disabled because the linked contact no longer exists in HubSpot.",
        guidance_ja: "コンタクトと顧客・顧客担当者を連携した後に、HubSpot側でコンタクトを削除した場合に発生します。",
        guidance_en: "The contact was deleted in HubSpot after it was linked to the customer or customer contact.";
    BoardApiError => "board_api_error", Fail,
        ja: "boardのAPIからエラーが返ってきました。エラー内容を確認してください。",
        en: "board's API returned an error. Check the error details.",
        guidance_ja: "boardの入力チェックに引っかかり登録・更新できないケースです。boardから返ってきたエラーメッセージも合わせて表示されますので、その内容を確認して対応してください。",
        guidance_en: "board's validation rejected the data. board's own message is shown with the entry: correct the data, then retry.";
    BoardAuthInvalid => "board_auth_invalid", Fail,
        ja: "boardのAPIの認証が無効です。API設定を確認してください。",
        en: "board API authentication is invalid. Check the API settings.",
        guidance_ja: "boardのAPIキーまたはトークンが無効です。boardのAPI設定を確認し、連携履歴から再実行してください。",
        guidance_en: "board refused the integration's API key or token. Check board's API settings, then retry the entry from the sync history.";
    BoardUnavailable => "board_unavailable", Retry,
        ja: "boardのAPIが一時的に利用できない状況です。",
        en: "board's API is temporarily unavailable.",
        guidance_ja: "boardのメンテナンスや障害等でAPIを利用できませんでした。自動再試行後も失敗しました。連携履歴から再実行してください。",
        guidance_en: "board's API could not be used (maintenance or an outage), and automatic retries also failed. Retry the entry from the sync history.";
    ProjectNotFound => "project_not_found", DisableLink,
        ja: "対応する案件がboardに存在しないため同期は無効になりました",
        en: "Sync was disabled because the linked project no longer exists in board.",
        guidance_ja: "取引と案件を連携した後に、board側で案件が削除された場合に発生します。取引を再度boardに連携する場合は、取引を下書き案件に戻してください。",
        guidance_en: "The project was deleted in board after it was linked. To bring the deal back into board, re-draft it.";
    CustomerNotFound => "customer_not_found", DisableLink,
        ja: "対応する顧客がboardに存在しないため同期は無効になりました",
        en: "Sync was disabled because the linked customer no longer exists in board.",
        guidance_ja: "顧客と会社（またはコンタクト）を連携した後に、board側で顧客が削除された場合に発生します。",
        guidance_en: "The customer was deleted in board after it was linked to the company (or contact).";
    CustomerContactNotFound => "customer_contact_not_found", DisableLink,
        ja: "対応する顧客担当者がboardに存在しないため同期は無効になりました",
        en: "Sync was disabled because the linked customer contact no longer exists in board.",
        guidance_ja: "顧客担当者とコンタクトを連携した後に、board側で顧客担当者が削除された場合に発生します。",
        guidance_en: "The customer contact was deleted in board after it was linked to the contact.";
    ProjectLocked => "project_locked", Skip,
        ja: "案件がロックされているため更新をスキップしました",
        en: "The update was skipped because the project is locked.",
        guidance_ja: "boardで案件がロックされています。ロックを解除した後、連携履歴から再実行すると反映されます。",
        guidance_en: "The project is locked in board. Unlock it, then retry the entry from the sync history to apply the change.";
    AssociationChanged => "association_changed", Skip,
        ja: "取引の会社が変更されましたが、案件の顧客は変更していません",
        en: "The deal's company changed, but the project's customer was left unchanged.",
        guidance_ja: "発行済みの帳票があり得るため、案件の顧客は自動では変更しません。必要であればboardで案件の顧客を変更してください。",
        guidance_en: "Documents may already have been issued, so the project's customer is never moved automatically. Change it in board if needed.";
    ConflictOverwritten => "conflict_overwritten", Skip,
        ja: "boardとHubSpotの両方で変更されたため、後の変更を優先しました",
        en: "The field changed in both board and HubSpot; the later change was kept.",
        guidance_ja: "同じ項目がboardとHubSpotの両方で変更されました。後の変更を両方に反映しています。内容を確認してください。",
        guidance_en: "The same field changed on both sides; the later change was applied to both. Check the value.";
    OauthStateInvalid => "oauth_state_invalid", Fail,
        ja: "連携リクエストが無効か、有効期限が切れています。",
        en: "The connection request is invalid or has expired.",
        guidance_ja: "もう一度「HubSpotと連携」ボタンから操作をやり直してください。",
        guidance_en: "Start again with the “Connect HubSpot” button.";
    OauthDenied => "oauth_denied", Fail,
        ja: "HubSpotでアプリの接続が許可されませんでした。",
        en: "The app connection was not approved in HubSpot.",
        guidance_ja: "HubSpotの画面で「アプリを接続」を選択してください。",
        guidance_en: "Choose “Connect app” on HubSpot's consent screen.";
    OauthExchangeFailed => "oauth_exchange_failed", Fail,
        ja: "HubSpotから認証情報を取得できませんでした。",
        en: "Could not obtain credentials from HubSpot.",
        guidance_ja: "時間をおいて、もう一度「HubSpotと連携」ボタンから操作をやり直してください。",
        guidance_en: "Wait a moment, then start again with the “Connect HubSpot” button.";
    OauthScopeMissing => "oauth_scope_missing", Fail,
        ja: "HubSpotで必要な権限が許可されませんでした。",
        en: "HubSpot did not grant every permission the integration needs.",
        guidance_ja: "HubSpotのStarterプラン以上が必要です。HubSpotのスーパー管理者のユーザーで、もう一度接続してください。",
        guidance_en: "HubSpot Starter or higher is required. Connect again as a HubSpot super admin.";
    PortalConflict => "portal_conflict", Fail,
        ja: "このboardアカウントは別のHubSpotアカウントと連携済みです。",
        en: "This board account is already connected to another HubSpot account.",
        guidance_ja: "現在の連携を解除してから接続するか、以前のHubSpotアカウントの連携データをアーカイブして接続を切り替えてください。",
        guidance_en: "Disconnect the current connection first, or confirm switching portals, which archives the previous portal's links and drafts.";
    ConfirmationInvalid => "confirmation_invalid", Fail,
        ja: "連携の確認が無効か、有効期限が切れています。",
        en: "The connection confirmation is invalid or has expired.",
        guidance_ja: "連携を開始したユーザーで、もう一度「HubSpotと連携」ボタンから操作をやり直してください。",
        guidance_en: "As the user who started, start again with the “Connect HubSpot” button.";
}

impl Code {
    pub fn as_str(self) -> &'static str {
        self.entry().code
    }

    pub fn class(self) -> Class {
        self.entry().class
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown catalog code {0:?}")]
pub struct UnknownCode(pub String);

impl FromStr for Code {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCode(s.to_owned()))
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

openapi_schema!(
    Code,
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(Code::ALL.iter().map(|c| c.as_str())))
        .description(Some("An error catalog code (SPEC's catalog)."))
        .build()
        .into()
);

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The whole table, for the API and documentation.
pub struct Catalog;

impl Catalog {
    pub fn entries() -> impl Iterator<Item = &'static CatalogEntry> {
        Code::ALL.iter().map(|c| c.entry())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert_eq!(code.as_str().parse::<Code>(), Ok(*code));
        }
        assert_eq!(seen.len(), 16 + 3 + 6, "errors, skips and OAuth flow codes");
    }

    #[test]
    fn messages_are_the_products_exact_wording() {
        // From board's help page (the seed) and SPEC §9, character for character.
        let expected = [
            (
                "customer_not_found",
                "対応する顧客がboardに存在しないため同期は無効になりました",
            ),
            (
                "customer_contact_not_found",
                "対応する顧客担当者がboardに存在しないため同期は無効になりました",
            ),
            (
                "hubspot_api_error",
                "APIからエラーが返ってきました。エラー内容を確認してください。",
            ),
            (
                "hubspot_auth_invalid",
                "HubSpot APIの認証が無効です。再認証してください。",
            ),
            (
                "hubspot_scope_insufficient",
                "HubSpot APIの認可が不足しています。再認証してください。",
            ),
            (
                "hubspot_unavailable",
                "HubSpot APIが一時的に利用できない状況です。",
            ),
            (
                "integration_suspended",
                "HubSpot連携が一時停止されています。",
            ),
            ("internal_error", "エラーが発生しました"),
            (
                "deal_not_found",
                "対応する取引がHubSpotに存在しないため同期は無効になりました",
            ),
            (
                "deal_excluded",
                "HubSpot側で「board連携対象外」に設定されたため同期は無効になりました",
            ),
            (
                "company_not_found",
                "対応する会社がHubSpotに存在しないため同期は無効になりました",
            ),
            (
                "contact_not_found",
                "対応するコンタクトがHubSpotに存在しないため同期は無効になりました",
            ),
            (
                "board_api_error",
                "boardのAPIからエラーが返ってきました。エラー内容を確認してください。",
            ),
            (
                "board_auth_invalid",
                "boardのAPIの認証が無効です。API設定を確認してください。",
            ),
            (
                "board_unavailable",
                "boardのAPIが一時的に利用できない状況です。",
            ),
            (
                "project_not_found",
                "対応する案件がboardに存在しないため同期は無効になりました",
            ),
            (
                "project_locked",
                "案件がロックされているため更新をスキップしました",
            ),
            (
                "association_changed",
                "取引の会社が変更されましたが、案件の顧客は変更していません",
            ),
            (
                "conflict_overwritten",
                "boardとHubSpotの両方で変更されたため、後の変更を優先しました",
            ),
        ];
        for (code, message) in expected {
            let entry = code.parse::<Code>().unwrap().entry();
            assert_eq!(entry.message_ja, message, "{code}");
        }
    }

    #[test]
    fn automatic_retries_change_the_unavailable_guidance() {
        let guidance = Code::HubspotUnavailable.entry().guidance_ja;
        assert!(guidance.contains("自動再試行後も失敗しました。連携履歴から再実行してください"));
        assert!(!guidance.contains("自動的には再送されません"));
    }

    #[test]
    fn skips_and_link_disabling_codes_are_classified() {
        assert_eq!(Code::ProjectLocked.class(), Class::Skip);
        assert_eq!(Code::ConflictOverwritten.class(), Class::Skip);
        assert_eq!(Code::DealNotFound.class(), Class::DisableLink);
        assert_eq!(Code::HubspotUnavailable.class(), Class::Retry);
        assert_eq!(Code::HubspotAuthInvalid.class(), Class::Suspend);
        for entry in Catalog::entries() {
            assert!(
                !entry.guidance_ja.is_empty() && !entry.guidance_en.is_empty(),
                "{}",
                entry.code
            );
        }
    }
}
