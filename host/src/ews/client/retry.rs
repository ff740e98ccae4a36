//! Retries of EWS calls: which failures are tried again, how long to wait, and
//! which operations may be repeated at all when the server may already have acted.
//!
//! The decision ([`after_failure`]) is a pure function of the policy, the operation,
//! the error and the tries so far; [`EwsClient::retrying`] only sleeps and calls.

use std::time::Duration;

use super::{ClientError, EwsClient};
use crate::backoff::Backoff;
use crate::ews::response::EwsAction;

/// How transient failures are retried: exponential back-off with jitter, or the
/// server's own `BackOffMilliseconds` when it gives one.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    pub base: Duration,
    /// The longest wait; a server asking for longer is not waited for here (the caller
    /// reschedules the mailbox).
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry `attempt` (0-based): the host's [`Backoff`] rule.
    fn delay(&self, attempt: u32) -> Duration {
        Backoff {
            base: self.base,
            max: self.max,
        }
        .wait(attempt)
    }
}

/// Whether an operation may be repeated after an error that left it unclear whether
/// the server acted (a lost or cut reply): reads may, creating an item may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Repeat {
    Always,
    OnlyIfNotProcessed,
    /// A subscription call: repeatable, and sent with the group's server affinity.
    Affine,
}

/// The failed tries of one operation so far.
#[derive(Debug, Default)]
struct Tries {
    /// Retries made (0 after the first failure).
    retries: u32,
    /// Whether a 401 was already met (and retried once).
    unauthorized_seen: bool,
}

/// What to do after a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Wait this long, then try again.
    Retry(Duration),
    /// Return the error to the caller.
    GiveUp,
}

/// The decision after `error`: retry transient failures (a 401 once: Exchange
/// sometimes answers 401 when it wants the client to slow down) while the policy
/// has tries left and the operation may be repeated; wait the server's back-off when
/// it gives one (give up when that is longer than the policy's max), else the
/// policy's back-off.
fn after_failure(
    policy: &RetryPolicy,
    repeat: Repeat,
    error: &ClientError,
    tries: &mut Tries,
) -> Next {
    let transient = match error {
        ClientError::Unauthorized { .. } => !std::mem::replace(&mut tries.unauthorized_seen, true),
        other => other.action() == EwsAction::RetryLater,
    };
    let allowed = repeat != Repeat::OnlyIfNotProcessed || error.not_processed();
    if !transient || !allowed || tries.retries + 1 >= policy.attempts {
        return Next::GiveUp;
    }
    let wait = match error.back_off() {
        Some(asked) if asked > policy.max => return Next::GiveUp,
        Some(asked) => asked,
        None => policy.delay(tries.retries),
    };
    tries.retries += 1;
    Next::Retry(wait)
}

impl EwsClient {
    /// Run `operation`, retrying failures as [`after_failure`] decides.
    pub(super) async fn retrying<T, F, Fut>(
        &self,
        repeat: Repeat,
        mut operation: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let policy = self.config.retry;
        let mut tries = Tries::default();
        loop {
            let error = match operation().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            match after_failure(&policy, repeat, &error, &mut tries) {
                Next::Retry(wait) => tokio::time::sleep(wait).await,
                Next::GiveUp => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::response::EwsError;

    const URL: &str = "https://mail1.flexi.se/EWS/Exchange.asmx";

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }

    fn unavailable() -> ClientError {
        ClientError::Unavailable {
            url: URL.into(),
            status: 503,
        }
    }

    fn unreachable() -> ClientError {
        ClientError::Unreachable {
            url: URL.into(),
            reason: "connection reset by peer".into(),
        }
    }

    fn ews(code: &str, back_off: Option<Duration>) -> ClientError {
        ClientError::Ews {
            url: URL.into(),
            error: EwsError::Response {
                code: code.into(),
                text: "text".into(),
                back_off,
            },
        }
    }

    /// The decisions for the same error failing again and again.
    fn decisions(policy: RetryPolicy, repeat: Repeat, error: &ClientError) -> Vec<Next> {
        let mut tries = Tries::default();
        let mut all = Vec::new();
        loop {
            let next = after_failure(&policy, repeat, error, &mut tries);
            all.push(next);
            if next == Next::GiveUp || all.len() > 10 {
                return all;
            }
        }
    }

    #[test]
    fn transient_failures_are_retried_until_the_tries_run_out_with_growing_waits() {
        let all = decisions(policy(), Repeat::Always, &unavailable());
        assert_eq!(all.len(), 4, "three retries, then the error: {all:?}");
        assert_eq!(all.last(), Some(&Next::GiveUp));
        for (retry, next) in all.iter().take(3).enumerate() {
            let full = Duration::from_millis(100) * (1 << retry);
            let Next::Retry(wait) = *next else {
                panic!("retry {retry}: {next:?}");
            };
            assert!(
                wait >= full / 2 && wait <= full,
                "retry {retry}: {wait:?} is the jittered back-off of {full:?}"
            );
        }
        assert_eq!(
            decisions(RetryPolicy::none(), Repeat::Always, &unavailable()),
            [Next::GiveUp],
            "no retries"
        );
    }

    #[test]
    fn failures_that_need_someone_to_act_are_not_retried() {
        for error in [
            ClientError::Http {
                url: URL.into(),
                status: 404,
            },
            ClientError::Tls {
                url: URL.into(),
                reason: "UnknownIssuer".into(),
            },
            ews("ErrorImpersonateUserDenied", None),
            ews("ErrorItemNotFound", None),
            ClientError::StreamDropped { url: URL.into() },
        ] {
            assert_eq!(
                decisions(policy(), Repeat::Always, &error),
                [Next::GiveUp],
                "{error:?}"
            );
        }
    }

    #[test]
    fn a_401_is_retried_once() {
        let unauthorized = ClientError::Unauthorized {
            url: URL.into(),
            user: "svc".into(),
        };
        let all = decisions(policy(), Repeat::Always, &unauthorized);
        assert!(
            matches!(all.as_slice(), [Next::Retry(_), Next::GiveUp]),
            "{all:?}"
        );
    }

    #[test]
    fn a_create_is_repeated_only_when_the_server_certainly_did_not_act() {
        // A cut connection may have come after the server saved the item.
        assert_eq!(
            decisions(policy(), Repeat::OnlyIfNotProcessed, &unreachable()),
            [Next::GiveUp]
        );
        assert_eq!(
            decisions(policy(), Repeat::Always, &unreachable()).len(),
            4,
            "a read is repeated after the same failure"
        );
        for refused_before_acting in [unavailable(), ews("ErrorServerBusy", None)] {
            assert_eq!(
                decisions(policy(), Repeat::OnlyIfNotProcessed, &refused_before_acting).len(),
                4,
                "{refused_before_acting:?}"
            );
        }
    }

    #[test]
    fn the_servers_back_off_is_honoured_unless_longer_than_the_policy_allows() {
        let asked = Duration::from_millis(2500);
        let all = decisions(
            policy(),
            Repeat::Affine,
            &ews("ErrorServerBusy", Some(asked)),
        );
        assert_eq!(
            all,
            [
                Next::Retry(asked),
                Next::Retry(asked),
                Next::Retry(asked),
                Next::GiveUp
            ]
        );
        let too_long = ews("ErrorServerBusy", Some(Duration::from_secs(11)));
        assert_eq!(
            decisions(policy(), Repeat::Always, &too_long),
            [Next::GiveUp],
            "left to the caller, who reschedules the mailbox"
        );
    }
}
