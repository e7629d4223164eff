use async_trait::async_trait;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{TableStore, epoch_ms, ttl_seconds};
use crate::adapters::table::{Cond, Item, Key, Table, TableError, attr};
use crate::ports::{OneTimeKind, OneTimeTokenStore, StoreResult};

/// Only a digest of the token is stored: a leaked table dump cannot replay it.
fn key(kind: OneTimeKind, token: &str) -> Key {
    let kind = match kind {
        OneTimeKind::OAuthState => "STATE",
        OneTimeKind::Confirmation => "CONFIRM",
    };
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Key::new(format!("OTT#{kind}#{hex}"), "OTT")
}

const PAYLOAD: &str = "payload";

#[async_trait]
impl<T: Table> OneTimeTokenStore for TableStore<T> {
    async fn put_token(
        &self,
        kind: OneTimeKind,
        token: &str,
        payload: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<()> {
        let item = Item::new(key(kind, token))
            .with_s(PAYLOAD, payload)
            .with_n(attr::EXPIRES_AT, epoch_ms(expires_at))
            .with_n(attr::TTL, ttl_seconds(expires_at));
        Ok(self.table.put(item, Cond::NotExists).await?)
    }

    async fn take_token(
        &self,
        kind: OneTimeKind,
        token: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<String>> {
        let unexpired = Cond::And(vec![
            Cond::Exists,
            Cond::Gt(attr::EXPIRES_AT.into(), epoch_ms(now)),
        ]);
        match self.table.delete(&key(kind, token), unexpired).await {
            Ok(Some(item)) => Ok(item.s(PAYLOAD).map(str::to_owned)),
            Ok(None) | Err(TableError::ConditionFailed) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn peek_token(
        &self,
        kind: OneTimeKind,
        token: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<String>> {
        let item = self.table.get(&key(kind, token)).await?;
        Ok(item
            .filter(|i| i.n(attr::EXPIRES_AT).is_some_and(|e| e > epoch_ms(now)))
            .and_then(|i| i.s(PAYLOAD).map(str::to_owned)))
    }
}
