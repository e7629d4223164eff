//! How a message that cannot be applied now ends: retried later (with a growing delay), or poison.

use std::time::Duration;

/// How soon a message whose conditional write lost is tried again.
pub const CONFLICT_RETRY: Duration = Duration::from_secs(1);

/// Delay before the n-th retry: exponential from 10 s, capped at 15 minutes, with jitter.
pub fn retry_delay(receive_count: u32) -> Duration {
    let base = 10u64.saturating_mul(1 << receive_count.min(7)).min(900);
    let jitter = rand::random::<u64>() % (base / 4 + 1);
    Duration::from_secs(base - jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_stay_bounded() {
        for count in 0..20 {
            let d = retry_delay(count).as_secs();
            assert!((7..=900).contains(&d), "{count}: {d}");
        }
        assert!(retry_delay(1).as_secs() <= 20);
        assert!(retry_delay(10).as_secs() >= 675);
    }
}
