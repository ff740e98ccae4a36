//! Waiting for a condition instead of sleeping: poll until it holds, and fail after a
//! generous limit that only bounds a broken test (a passing test never reaches it,
//! however slow the machine).

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

/// How long a condition may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(20);

/// How often a condition is looked at.
const POLL: Duration = Duration::from_millis(20);

/// Poll `probe` until it gives a value. `Err` says what is still missing; after
/// `limit` the test fails with the last such message.
pub async fn until<T>(limit: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    until_async(limit, || std::future::ready(probe())).await
}

/// [`until`] for a probe that has to wait itself (an HTTP request).
pub async fn until_async<T, F, Fut>(limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(missing) => assert!(
                Instant::now() < deadline,
                "still not so after {limit:?}: {missing}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}
