//! The account's pacing lease: one invocation at a time paces an account's
//! deals through its board budget, handing the lease on with the rest.

use std::time::Duration;

use tracing::debug;

use crate::app::Services;

/// How long the pacing lease holds the account unless taken again: long
/// enough to outlast the queue between a holder and the job it hands on, short
/// enough that a holder gone (its Lambda ended) frees the account soon.
const LEASE_TTL: Duration = Duration::from_secs(10);

/// How often the holder takes the lease again (a conditional write each time).
const LEASE_RENEW: Duration = Duration::from_secs(2);

/// A batch finding the account paced elsewhere comes back after this, plus as
/// many again as its spread (`LEASE_SPREAD`), so the waiting batches do not
/// all come back at once.
pub(super) const LEASE_STEP: Duration = Duration::from_secs(1);

/// Steps a waiting batch may be spread over.
pub(super) const LEASE_SPREAD: u64 = 7;

tokio::task_local! {
    /// The pacing lease a handed-on job carries (`Job::HubspotEvents::lease`).
    static INHERITED: Option<String>;
}

/// Runs `work` (a job's events) holding the lease the job carries, if any.
pub async fn inheriting<F: std::future::Future>(lease: Option<String>, work: F) -> F::Output {
    INHERITED.scope(lease, work).await
}

/// The account's pacing lease (`LeaseStore`, `LEASE#pacing#<account>`), as
/// one invocation holds it: taken again every couple of seconds while the
/// batch goes on, handed on with the rest of the deals when the invocation's
/// slice is spent, released when the batch ends.
pub(super) struct Lease {
    pub holder: String,
    /// Handed on with the job: held (and so released) whatever the batch's size.
    pub inherited: bool,
    pub taken: Option<std::time::Instant>,
    pub handed_on: bool,
}

impl Lease {
    pub fn new() -> Self {
        let inherited = INHERITED.try_with(Clone::clone).ok().flatten();
        Self {
            inherited: inherited.is_some(),
            holder: inherited.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            taken: None,
            handed_on: false,
        }
    }

    /// Holds (or takes again) the lease; `Err(wait)` when another invocation holds it.
    pub async fn keep(
        &mut self,
        services: &Services,
        account: &crate::domain::AccountId,
    ) -> Result<(), Duration> {
        if self.taken.is_some_and(|at| at.elapsed() < LEASE_RENEW) {
            return Ok(());
        }
        match services
            .leases
            .try_acquire(
                &format!("pacing#{account}"),
                &self.holder,
                services.clock.now(),
                LEASE_TTL,
            )
            .await
        {
            Ok(false) => Err(LEASE_STEP),
            // Granted, or the store is unavailable (then as before: paced here).
            _ => {
                self.taken = Some(std::time::Instant::now());
                Ok(())
            }
        }
    }

    /// The lease for the job that takes over the rest of the deals, under a
    /// new holder: this invocation (or a redelivery of its message) can then
    /// no longer take it as its own beside that job. `None` when another
    /// batch took it in between (the rest then waits its turn).
    pub async fn hand_over(
        &mut self,
        services: &Services,
        account: &crate::domain::AccountId,
    ) -> Option<String> {
        self.taken?;
        self.release(services, account).await;
        let next = uuid::Uuid::new_v4().to_string();
        match services
            .leases
            .try_acquire(
                &format!("pacing#{account}"),
                &next,
                services.clock.now(),
                LEASE_TTL,
            )
            .await
        {
            Ok(true) => Some(next),
            _ => None,
        }
    }

    /// Frees the account for the next batch at once.
    pub async fn release(&mut self, services: &Services, account: &crate::domain::AccountId) {
        if self.taken.take().is_some()
            && let Err(error) = services
                .leases
                .release(&format!("pacing#{account}"), &self.holder)
                .await
        {
            debug!(%error, "pacing lease not released; it lapses");
        }
    }
}
