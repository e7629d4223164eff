use async_trait::async_trait;

use super::{TableStore, body_of, revision_of, same_revision, with_body};
use crate::adapters::table::{Index, Item, Key, Query, Table, attr};
use crate::domain::connection::Connection;
use crate::domain::{AccountId, PortalId};
use crate::ports::{ConnectionStore, Cursor, Page, StoreResult};

fn key(account: &AccountId) -> Key {
    Key::new(format!("ACCT#{account}"), "CONNECTION")
}

fn portal_pk(portal: PortalId) -> String {
    format!("PORTAL#{portal}")
}

fn decode(item: &Item) -> StoreResult<Connection> {
    let mut connection: Connection = body_of(item)?;
    connection.revision = revision_of(item);
    Ok(connection)
}

#[async_trait]
impl<T: Table> ConnectionStore for TableStore<T> {
    async fn get_connection(&self, account: &AccountId) -> StoreResult<Option<Connection>> {
        self.table
            .get(&key(account))
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    async fn save_connection(&self, connection: &Connection) -> StoreResult<u64> {
        let next = connection.revision + 1;
        let item = Item::new(key(&connection.account_id))
            .with_s(attr::GSI1_PK, portal_pk(connection.portal_id))
            .with_s(attr::GSI1_SK, format!("CONN#{}", connection.account_id))
            .with_s(attr::GSI2_PK, "CONNECTIONS")
            .with_s(attr::GSI2_SK, connection.account_id.as_str())
            .with_n(attr::REVISION, next as i64);
        let item = with_body(item, connection)?;
        self.table
            .put(item, same_revision(connection.revision))
            .await?;
        Ok(next)
    }

    async fn connections_of_portal(&self, portal: PortalId) -> StoreResult<Vec<Connection>> {
        let mut found = Vec::new();
        let mut query = Query::new(Index::Gsi1, portal_pk(portal));
        query.sk = Some(crate::adapters::table::SkCond::Prefix("CONN#".into()));
        loop {
            let page = self.table.query(query.clone()).await?;
            for item in &page.items {
                found.push(decode(item)?);
            }
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => return Ok(found),
            }
        }
    }

    async fn all_connections(
        &self,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> StoreResult<Page<Connection>> {
        let mut query = Query::new(Index::Gsi2, "CONNECTIONS");
        query.limit = limit.clamp(1, 1000);
        query.cursor = cursor.map(|c| c.0.clone());
        let page = self.table.query(query).await?;
        Ok(Page {
            items: page.items.iter().map(decode).collect::<StoreResult<_>>()?,
            next: page.next.map(Cursor),
        })
    }
}
