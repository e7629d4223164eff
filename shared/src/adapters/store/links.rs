use async_trait::async_trait;

use super::{TableStore, body_of, revision_of, same_revision, with_body};
use crate::adapters::table::{
    Cond, Index, Item, Key, Query, SkCond, Table, TableError, TxOp, Value, attr,
};
use crate::domain::{AccountId, BoardRef, HubSpotObjectType, HubSpotRef, Link, PortalId};
use crate::ports::{ClaimError, Cursor, LinkStore, Page, StoreError, StoreResult};

const ACCOUNT: &str = "account";
const HUBSPOT: &str = "hubspot";

fn link_key(account: &AccountId, portal: PortalId, object: HubSpotRef) -> Key {
    let (kind, id) = (object.object_type.as_str(), object.id);
    Key::new(format!("ACCT#{account}#LINK#{portal}#{kind}#{id}"), "LINK")
}

/// Per portal too: after a switch of portals, the archived links of the old
/// one must not block linking the same board object in the new one.
fn board_key(account: &AccountId, portal: PortalId, object: BoardRef) -> Key {
    let (kind, id) = (object.kind.as_str(), object.id);
    Key::new(
        format!("ACCT#{account}#BOARD#{portal}#{kind}#{id}"),
        "BOARD",
    )
}

fn claim_key(portal: PortalId, deal: u64) -> Key {
    Key::new(format!("PORTAL#{portal}#DEAL#{deal}"), "CLAIM")
}

fn hubspot_gsi(portal: PortalId, object: HubSpotRef) -> String {
    format!(
        "PORTAL#{portal}#{}#{}",
        object.object_type.as_str(),
        object.id
    )
}

fn account_gsi(account: &AccountId, portal: PortalId) -> String {
    format!("ACCT#{account}#LINKS#{portal}")
}

fn link_item(link: &Link, revision: u64) -> StoreResult<Item> {
    let item = Item::new(link_key(&link.account_id, link.portal_id, link.hubspot))
        .with_s(attr::GSI1_PK, hubspot_gsi(link.portal_id, link.hubspot))
        .with_s(attr::GSI1_SK, format!("ACCT#{}", link.account_id))
        .with_s(attr::GSI2_PK, account_gsi(&link.account_id, link.portal_id))
        .with_s(
            attr::GSI2_SK,
            format!("{}#{}", link.hubspot.object_type.as_str(), link.hubspot.id),
        )
        .with_n(attr::REVISION, revision as i64);
    with_body(item, link)
}

/// The board side of a link: unique per board object, read consistently.
fn board_pointer(link: &Link) -> Item {
    Item::new(board_key(&link.account_id, link.portal_id, link.board)).with_s(
        HUBSPOT,
        format!("{}#{}", link.hubspot.object_type.as_str(), link.hubspot.id),
    )
}

fn decode(item: &Item) -> StoreResult<Link> {
    let mut link: Link = body_of(item)?;
    link.revision = revision_of(item);
    Ok(link)
}

fn parse_pointer(item: &Item) -> StoreResult<HubSpotRef> {
    let raw = item.s(HUBSPOT).unwrap_or_default();
    let (kind, id) = raw.split_once('#').unwrap_or_default();
    let object_type = match kind {
        "deal" => HubSpotObjectType::Deal,
        "company" => HubSpotObjectType::Company,
        "contact" => HubSpotObjectType::Contact,
        _ => {
            return Err(StoreError::Unavailable(anyhow::anyhow!(
                "malformed board pointer {raw:?}"
            )));
        }
    };
    let id = id
        .parse()
        .map_err(|_| StoreError::Unavailable(anyhow::anyhow!("malformed board pointer {raw:?}")))?;
    Ok(HubSpotRef { object_type, id })
}

#[async_trait]
impl<T: Table> LinkStore for TableStore<T> {
    async fn claim_deal(&self, link: &Link) -> Result<(), ClaimError> {
        let claim = Item::new(claim_key(link.portal_id, link.hubspot.id))
            .with_s(ACCOUNT, link.account_id.as_str());
        let unclaimed = Cond::Or(vec![
            Cond::NotExists,
            Cond::Eq(
                ACCOUNT.into(),
                Value::S(link.account_id.as_str().to_owned()),
            ),
        ]);
        let ops = vec![
            TxOp::Put(claim, unclaimed),
            TxOp::Put(link_item(link, 1)?, Cond::NotExists),
            TxOp::Put(board_pointer(link), Cond::NotExists),
        ];
        match self.table.transact(ops).await {
            Ok(()) => Ok(()),
            Err(TableError::TransactionCanceled(reasons)) => {
                if reasons.first().is_some_and(Option::is_some)
                    && let Some(holder) = self
                        .deal_claimed_by(link.portal_id, link.hubspot.id)
                        .await?
                    && holder != link.account_id
                {
                    return Err(ClaimError::ClaimedBy(holder));
                }
                Err(ClaimError::AlreadyLinked)
            }
            Err(e) => Err(ClaimError::Store(e.into())),
        }
    }

    async fn reserve_deal(
        &self,
        account: &AccountId,
        portal: PortalId,
        deal: u64,
    ) -> Result<(), ClaimError> {
        for _ in 0..3 {
            let claim = Item::new(claim_key(portal, deal)).with_s(ACCOUNT, account.as_str());
            let unclaimed = Cond::Or(vec![
                Cond::NotExists,
                Cond::Eq(ACCOUNT.into(), Value::S(account.as_str().to_owned())),
            ]);
            match self.table.put(claim, unclaimed).await {
                Ok(()) => return Ok(()),
                Err(TableError::ConditionFailed) => {
                    match self.deal_claimed_by(portal, deal).await? {
                        Some(holder) if &holder != account => {
                            return Err(ClaimError::ClaimedBy(holder));
                        }
                        // Released between our write and our read: claim again.
                        _ => continue,
                    }
                }
                Err(e) => return Err(ClaimError::Store(e.into())),
            }
        }
        Err(ClaimError::Store(StoreError::Conflict))
    }

    async fn release_deal(
        &self,
        account: &AccountId,
        portal: PortalId,
        deal: u64,
    ) -> StoreResult<()> {
        let ours = Cond::Eq(ACCOUNT.into(), Value::S(account.as_str().to_owned()));
        match self.table.delete(&claim_key(portal, deal), ours).await {
            Ok(_) | Err(TableError::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn unlink_deal(&self, link: &Link) -> StoreResult<()> {
        let mine = Value::S(link.account_id.as_str().to_owned());
        let ops = vec![
            TxOp::Delete(
                link_key(&link.account_id, link.portal_id, link.hubspot),
                same_revision(link.revision),
            ),
            TxOp::Delete(
                board_key(&link.account_id, link.portal_id, link.board),
                Cond::Exists,
            ),
            TxOp::Delete(
                claim_key(link.portal_id, link.hubspot.id),
                Cond::Or(vec![Cond::NotExists, Cond::Eq(ACCOUNT.into(), mine)]),
            ),
        ];
        match self.table.transact(ops).await {
            Ok(()) => Ok(()),
            Err(TableError::TransactionCanceled(_)) => Err(StoreError::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    async fn deal_claimed_by(&self, portal: PortalId, deal: u64) -> StoreResult<Option<AccountId>> {
        let Some(item) = self.table.get(&claim_key(portal, deal)).await? else {
            return Ok(None);
        };
        let account = item.s(ACCOUNT).unwrap_or_default();
        AccountId::new(account)
            .map(Some)
            .map_err(|e| StoreError::Unavailable(anyhow::anyhow!("claim with bad account: {e}")))
    }

    async fn create_link(&self, link: &Link) -> StoreResult<()> {
        let ops = vec![
            TxOp::Put(link_item(link, 1)?, Cond::NotExists),
            TxOp::Put(board_pointer(link), Cond::NotExists),
        ];
        Ok(self.table.transact(ops).await?)
    }

    async fn delete_link(&self, link: &Link) -> StoreResult<()> {
        let ops = vec![
            TxOp::Delete(
                link_key(&link.account_id, link.portal_id, link.hubspot),
                same_revision(link.revision),
            ),
            TxOp::Delete(
                board_key(&link.account_id, link.portal_id, link.board),
                Cond::Exists,
            ),
        ];
        match self.table.transact(ops).await {
            Ok(()) => Ok(()),
            Err(TableError::TransactionCanceled(_)) => Err(StoreError::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    async fn update_link(&self, link: &Link) -> StoreResult<u64> {
        let next = link.revision + 1;
        let revision_kept = Cond::And(vec![Cond::Exists, same_revision(link.revision)]);
        self.table
            .put(link_item(link, next)?, revision_kept)
            .await?;
        Ok(next)
    }

    async fn link_by_hubspot(
        &self,
        account: &AccountId,
        portal: PortalId,
        object: HubSpotRef,
    ) -> StoreResult<Option<Link>> {
        self.table
            .get(&link_key(account, portal, object))
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    async fn link_by_board(
        &self,
        account: &AccountId,
        portal: PortalId,
        object: BoardRef,
    ) -> StoreResult<Option<Link>> {
        let Some(pointer) = self.table.get(&board_key(account, portal, object)).await? else {
            return Ok(None);
        };
        let hubspot = parse_pointer(&pointer)?;
        self.link_by_hubspot(account, portal, hubspot).await
    }

    async fn links_of_hubspot_object(
        &self,
        portal: PortalId,
        object: HubSpotRef,
    ) -> StoreResult<Vec<Link>> {
        let mut query = Query::new(Index::Gsi1, hubspot_gsi(portal, object));
        query.sk = Some(SkCond::Prefix("ACCT#".into()));
        let mut links = Vec::new();
        loop {
            let page = self.table.query(query.clone()).await?;
            for item in &page.items {
                links.push(decode(item)?);
            }
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => return Ok(links),
            }
        }
    }

    async fn move_link(&self, link: &Link, survivor: u64) -> Result<(), ClaimError> {
        let mut moved = link.clone();
        moved.hubspot.id = survivor;
        let mut archived = link.clone();
        archived.state = crate::domain::LinkState::Archived;
        let pointer_to_old = Cond::Eq(
            HUBSPOT.into(),
            Value::S(format!(
                "{}#{}",
                link.hubspot.object_type.as_str(),
                link.hubspot.id
            )),
        );
        let mine = Value::S(link.account_id.as_str().to_owned());
        let is_deal = link.hubspot.object_type == HubSpotObjectType::Deal;
        let mut ops = Vec::with_capacity(5);
        if is_deal {
            let claim = Item::new(claim_key(link.portal_id, survivor))
                .with_s(ACCOUNT, link.account_id.as_str());
            ops.push(TxOp::Put(
                claim,
                Cond::Or(vec![
                    Cond::NotExists,
                    Cond::Eq(ACCOUNT.into(), mine.clone()),
                ]),
            ));
        }
        ops.extend([
            TxOp::Put(link_item(&moved, 1)?, Cond::NotExists),
            TxOp::Put(board_pointer(&moved), pointer_to_old),
            TxOp::Put(
                link_item(&archived, link.revision + 1)?,
                same_revision(link.revision),
            ),
        ]);
        if is_deal {
            ops.push(TxOp::Delete(
                claim_key(link.portal_id, link.hubspot.id),
                Cond::Eq(ACCOUNT.into(), mine),
            ));
        }
        match self.table.transact(ops).await {
            Ok(()) => Ok(()),
            Err(TableError::TransactionCanceled(reasons)) => {
                if is_deal
                    && reasons.first().is_some_and(Option::is_some)
                    && let Some(holder) = self.deal_claimed_by(link.portal_id, survivor).await?
                {
                    return Err(ClaimError::ClaimedBy(holder));
                }
                Err(ClaimError::AlreadyLinked)
            }
            Err(e) => Err(ClaimError::Store(e.into())),
        }
    }

    async fn links_of_account(
        &self,
        account: &AccountId,
        portal: PortalId,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> StoreResult<Page<Link>> {
        let mut query = Query::new(Index::Gsi2, account_gsi(account, portal));
        query.limit = limit.clamp(1, 1000);
        query.cursor = cursor.map(|c| c.0.clone());
        let page = self.table.query(query).await?;
        let items = page
            .items
            .iter()
            .map(decode)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page {
            items,
            next: page.next.map(Cursor),
        })
    }
}
