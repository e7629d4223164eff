use async_trait::async_trait;
use time::OffsetDateTime;

use super::{TableStore, body_of, epoch_ms, revision_of, same_revision, ttl_seconds, with_body};
use crate::adapters::table::{Cond, Index, Item, Key, Query, Table, attr};
use crate::domain::draft::{Draft, DraftState};
use crate::domain::{AccountId, PortalId};
use crate::ports::{Cursor, Decision, DecisionLog, DraftStore, Page, StoreResult};

fn key(account: &AccountId, portal: PortalId, deal: u64) -> Key {
    Key::new(format!("ACCT#{account}#DRAFT#{portal}#{deal}"), "DRAFT")
}

fn state_pk(account: &AccountId, state: DraftState) -> String {
    format!("ACCT#{account}#DRAFTS#{}", state.as_str())
}

fn decode(item: &Item) -> StoreResult<Draft> {
    let mut draft: Draft = body_of(item)?;
    draft.revision = revision_of(item);
    Ok(draft)
}

#[async_trait]
impl<T: Table> DraftStore for TableStore<T> {
    async fn draft(
        &self,
        account: &AccountId,
        portal: PortalId,
        deal: u64,
    ) -> StoreResult<Option<Draft>> {
        self.table
            .get(&key(account, portal, deal))
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    async fn save_draft(&self, draft: &Draft) -> StoreResult<u64> {
        let next = draft.revision + 1;
        let item = Item::new(key(&draft.account_id, draft.portal_id, draft.deal_id.get()))
            .with_s(attr::GSI2_PK, state_pk(&draft.account_id, draft.state))
            .with_s(
                attr::GSI2_SK,
                format!(
                    "{:020}#{}#{}",
                    epoch_ms(draft.updated_at),
                    draft.portal_id,
                    draft.deal_id
                ),
            )
            .with_n(attr::REVISION, next as i64);
        self.table
            .put(with_body(item, draft)?, same_revision(draft.revision))
            .await?;
        Ok(next)
    }

    async fn drafts(
        &self,
        account: &AccountId,
        state: DraftState,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> StoreResult<Page<Draft>> {
        let mut query = Query::new(Index::Gsi2, state_pk(account, state));
        query.descending = true;
        query.limit = limit.clamp(1, 200);
        query.cursor = cursor.map(|c| c.0.clone());
        let page = self.table.query(query).await?;
        Ok(Page {
            items: page.items.iter().map(decode).collect::<StoreResult<_>>()?,
            next: page.next.map(Cursor),
        })
    }
}

#[async_trait]
impl<T: Table> DecisionLog for TableStore<T> {
    async fn record_decision(
        &self,
        account: &AccountId,
        portal: PortalId,
        deal: u64,
        decision: &Decision,
        expires_at: OffsetDateTime,
    ) -> StoreResult<()> {
        let sk = format!(
            "{:020}#{}",
            epoch_ms(decision.at),
            uuid::Uuid::new_v4().simple()
        );
        let item = Item::new(Key::new(format!("ACCT#{account}#DEC#{portal}#{deal}"), sk))
            .with_n(attr::TTL, ttl_seconds(expires_at));
        Ok(self
            .table
            .put(with_body(item, decision)?, Cond::NotExists)
            .await?)
    }

    async fn decisions(
        &self,
        account: &AccountId,
        portal: PortalId,
        deal: u64,
        limit: usize,
    ) -> StoreResult<Vec<Decision>> {
        let mut query = Query::new(
            Index::Primary,
            format!("ACCT#{account}#DEC#{portal}#{deal}"),
        );
        query.descending = true;
        query.limit = limit.clamp(1, 200);
        let page = self.table.query(query).await?;
        page.items.iter().map(body_of).collect()
    }
}
