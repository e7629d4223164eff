use async_trait::async_trait;

use super::{TableStore, body_of, revision_of, same_revision, with_body};
use crate::adapters::table::{Item, Key, Table, attr};
use crate::domain::AccountId;
use crate::domain::config::AccountConfig;
use crate::ports::{ConfigStore, StoreResult};

fn key(account: &AccountId) -> Key {
    Key::new(format!("ACCT#{account}"), "CONFIG")
}

#[async_trait]
impl<T: Table> ConfigStore for TableStore<T> {
    async fn config(&self, account: &AccountId) -> StoreResult<AccountConfig> {
        match self.table.get(&key(account)).await? {
            Some(item) => {
                let mut config: AccountConfig = body_of(&item)?;
                config.version = revision_of(&item);
                Ok(config)
            }
            None => Ok(AccountConfig::default()),
        }
    }

    async fn save_config(&self, account: &AccountId, config: &AccountConfig) -> StoreResult<u64> {
        let next = config.version + 1;
        let item = with_body(
            Item::new(key(account)).with_n(attr::REVISION, next as i64),
            config,
        )?;
        self.table.put(item, same_revision(config.version)).await?;
        Ok(next)
    }
}
