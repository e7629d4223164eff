//! Short-lived copies of lists that rarely change and that many changes of one
//! batch need: board's users of an account and HubSpot's owners of a portal.
//! A person-in-charge change on 500 projects then costs one read of each, not
//! 500 (board allows about 3 requests per second). A minute's staleness is
//! accepted: a new user or owner is matched at most a minute late.
//!
//! Likewise the names of companies and contacts that drafts show: many deals
//! of one burst share a company. A webhook naming a company or contact drops
//! its copy at once; registration always reads them afresh.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a copy is used.
pub const TTL: Duration = Duration::from_secs(60);

pub struct Cached<V> {
    entries: Mutex<HashMap<String, (Instant, Arc<V>)>>,
    ttl: Duration,
}

impl<V> Default for Cached<V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl: TTL,
        }
    }
}

impl<V> Cached<V> {
    /// The copy of `key` younger than the TTL, else what `load` returns (kept
    /// when it succeeds; failures are never cached).
    pub async fn get_or_load<E, F>(&self, key: &str, load: impl FnOnce() -> F) -> Result<Arc<V>, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if let Some((at, value)) = self.entries.lock().expect("cache").get(key)
            && at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        let value = Arc::new(load().await?);
        self.entries
            .lock()
            .expect("cache")
            .insert(key.to_owned(), (Instant::now(), value.clone()));
        Ok(value)
    }

    /// The copy of `key` younger than the TTL.
    pub fn fresh(&self, key: &str) -> Option<Arc<V>> {
        self.entries
            .lock()
            .expect("cache")
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    pub fn put(&self, key: &str, value: V) {
        let mut entries = self.entries.lock().expect("cache");
        // Expired copies go when new ones come, so the map stays the size of a minute's work.
        if entries.len() >= 10_000 {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        entries.insert(key.to_owned(), (Instant::now(), Arc::new(value)));
    }

    pub fn forget(&self, key: &str) {
        self.entries.lock().expect("cache").remove(key);
    }
}

/// The copies a host keeps (one per Lambda instance, one per local stack).
#[derive(Default)]
pub struct Directory {
    pub board_users: Cached<Vec<crate::ports::BoardUser>>,
    pub hubspot_owners: Cached<Vec<crate::ports::HsOwner>>,
    /// Companies and contacts as drafts show them, by `crm_key`.
    pub crm_names: Cached<crate::ports::CrmObject>,
    /// Last-sync times written to a connection within the minute, by
    /// `account#direction`: a burst of changes writes the connection once.
    pub sync_noted: Cached<()>,
    /// HubSpot's deal pipelines of a portal, for stage labels in explanations.
    pub pipelines: Cached<Vec<crate::ports::HsPipeline>>,
}

/// The key of a company or contact in `Directory::crm_names`.
pub fn crm_key(
    portal: crate::domain::PortalId,
    kind: crate::domain::HubSpotObjectType,
    id: u64,
) -> String {
    format!("{portal}#{}#{id}", kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_copy_serves_until_it_expires_and_failures_are_not_kept() {
        let cache: Cached<u32> = Cached::default();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let load =
            || async { Ok::<_, ()>(calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1) };
        assert_eq!(*cache.get_or_load("a", load).await.unwrap(), 1);
        assert_eq!(*cache.get_or_load("a", load).await.unwrap(), 1, "cached");
        assert_eq!(*cache.get_or_load("b", load).await.unwrap(), 2, "per key");
        let failed: Result<Arc<u32>, &str> = cache.get_or_load("c", || async { Err("down") }).await;
        assert!(failed.is_err());
        assert_eq!(
            *cache.get_or_load("c", load).await.unwrap(),
            3,
            "not cached"
        );
        let short: Cached<u32> = Cached {
            entries: Mutex::new(HashMap::new()),
            ttl: Duration::ZERO,
        };
        assert_eq!(*short.get_or_load("a", load).await.unwrap(), 4);
        assert_eq!(*short.get_or_load("a", load).await.unwrap(), 5, "expired");
        short.put("p", 9);
        assert!(short.fresh("p").is_none(), "expired at once");
        cache.put("p", 9);
        assert_eq!(cache.fresh("p").as_deref(), Some(&9));
        cache.forget("p");
        assert!(cache.fresh("p").is_none(), "forgotten");
    }
}
