//! HubSpot's ports behind the portal's shared budget (SPEC §11), as `BudgetedBoard` is board's:
//! every background call takes its turn first (`budget::hubspot`; a wait longer than a pacing
//! step comes back as `RateLimited`, which the queue settles as `Retry { after }`), its answer is
//! told to the budget (`budget::metered`: HubSpot's headers and 429s hold every instance), and what
//! it says of the token counts toward suspension (`tokens::note_auth`). Use cases that sync in the
//! background call HubSpot through it and nowhere else.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::app::Services;
use crate::app::budget;
use crate::domain::connection::Connection;
use crate::domain::{HubSpotObjectType, HubSpotRef};
use crate::ports::{Associated, CrmObject, HubSpotError, Metered, ModifiedPage};

/// One connection's HubSpot, with its bearer token, inside the portal's budget.
pub struct BudgetedHubSpot<'a> {
    services: &'a Services,
    connection: &'a Connection,
    token: &'a str,
    /// Turns taken ahead by `reserve`, spent before new ones are taken.
    prepaid: AtomicU32,
}

/// A budget wait handed back: the message is deferred by `wait` (`SyncFailure::Deferred`).
fn refused(wait: Duration) -> HubSpotError {
    HubSpotError::OverBudget {
        retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
    }
}

/// Calls a list of `ids` takes (HubSpot's batch endpoints take 100 inputs).
fn calls(ids: usize) -> u32 {
    u32::try_from(ids.div_ceil(crate::ports::HUBSPOT_BATCH_LIMIT).max(1)).unwrap_or(u32::MAX)
}

impl<'a> BudgetedHubSpot<'a> {
    pub fn new(services: &'a Services, connection: &'a Connection, token: &'a str) -> Self {
        Self {
            services,
            connection,
            token,
            prepaid: AtomicU32::new(0),
        }
    }

    pub fn services(&self) -> &'a Services {
        self.services
    }

    /// The connection whose token and portal the calls use.
    pub fn connection(&self) -> &Connection {
        self.connection
    }

    /// Takes `calls` turns at once, for work that must not stop half-way for
    /// want of budget (reads whose results only make sense together).
    pub async fn reserve(&self, calls: u32) -> Result<(), HubSpotError> {
        budget::hubspot(
            self.services,
            self.connection.portal_id,
            &self.connection.account_id,
            calls,
        )
        .await
        .map_err(refused)?;
        self.prepaid.fetch_add(calls, Ordering::SeqCst);
        Ok(())
    }

    async fn turn(&self, calls: u32) -> Result<(), HubSpotError> {
        // A hold (HubSpot's own word on its window) stops prepaid calls too.
        if let Some(wait) = budget::held_for(self.services, self.connection.portal_id).await {
            return Err(refused(wait));
        }
        let mut left = calls;
        while left > 0 {
            let prepaid = self.prepaid.load(Ordering::SeqCst);
            if prepaid == 0 {
                break;
            }
            let spent = prepaid.min(left);
            if self
                .prepaid
                .compare_exchange(prepaid, prepaid - spent, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                left -= spent;
            }
        }
        if left == 0 {
            return Ok(());
        }
        budget::hubspot(
            self.services,
            self.connection.portal_id,
            &self.connection.account_id,
            left,
        )
        .await
        .map_err(refused)
    }

    async fn settle<T>(&self, result: Result<Metered<T>, HubSpotError>) -> Result<T, HubSpotError> {
        crate::app::tokens::note_auth(self.services, self.connection, &result).await;
        budget::metered(self.services, self.connection.portal_id, result).await
    }

    /// Found objects and the ids HubSpot does not have.
    pub async fn batch_read(
        &self,
        object_type: HubSpotObjectType,
        ids: &[u64],
        properties: &[&str],
    ) -> Result<(Vec<CrmObject>, Vec<u64>), HubSpotError> {
        self.turn(calls(ids.len())).await?;
        let read = self
            .services
            .batch
            .batch_read(self.token, object_type, ids, properties)
            .await;
        self.settle(read).await
    }

    /// One page (100) of every object of a type, and the next page's `after`.
    pub async fn list_page(
        &self,
        object_type: HubSpotObjectType,
        properties: &[&str],
        after: Option<&str>,
    ) -> Result<(Vec<CrmObject>, Option<String>), HubSpotError> {
        self.turn(1).await?;
        let read = self
            .services
            .batch
            .list_page(self.token, object_type, properties, after)
            .await;
        self.settle(read).await
    }

    /// For each `from` id, its associated objects of `to`.
    pub async fn batch_associations(
        &self,
        from: HubSpotObjectType,
        to: HubSpotObjectType,
        ids: &[u64],
    ) -> Result<BTreeMap<u64, Vec<Associated>>, HubSpotError> {
        self.turn(calls(ids.len())).await?;
        let read = self
            .services
            .batch
            .batch_associations(self.token, from, to, ids)
            .await;
        self.settle(read).await
    }

    /// The inputs that failed alone (a 207); `Err` when the batch was refused.
    pub async fn batch_update(
        &self,
        object_type: HubSpotObjectType,
        updates: &[(u64, BTreeMap<String, String>)],
    ) -> Result<Vec<(u64, HubSpotError)>, HubSpotError> {
        self.turn(calls(updates.len())).await?;
        let written = self
            .services
            .write
            .batch_update(self.token, object_type, updates)
            .await;
        self.settle(written).await
    }

    /// A page of objects modified since `since_ms` (CRM search).
    pub async fn modified_since(
        &self,
        object_type: HubSpotObjectType,
        since_ms: i64,
        page: Option<&str>,
    ) -> Result<ModifiedPage, HubSpotError> {
        self.turn(1).await?;
        let found = self
            .services
            .search
            .modified_since(self.token, object_type, since_ms, page)
            .await;
        self.settle(found).await
    }

    /// A note associated with `associations`; its id.
    pub async fn create_note(
        &self,
        body: &str,
        timestamp_ms: i64,
        associations: &[HubSpotRef],
    ) -> Result<u64, HubSpotError> {
        self.turn(1).await?;
        let created = self
            .services
            .write
            .create_note(self.token, body, timestamp_ms, associations)
            .await;
        crate::app::tokens::note_auth(self.services, self.connection, &created).await;
        created
    }

    /// A note whose body holds `marker`, if search has one.
    pub async fn find_note(&self, marker: &str) -> Result<Option<u64>, HubSpotError> {
        self.turn(1).await?;
        let found = self.services.write.find_note(self.token, marker).await;
        crate::app::tokens::note_auth(self.services, self.connection, &found).await;
        found
    }
}
