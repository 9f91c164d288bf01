//! Retrying storage calls. Only temporary failures (`transient`, `throttled`) are retried, a few
//! times with exponential backoff; adapters never retry themselves.

use std::time::Duration;

use crate::error::{ErrorKind, StorageError};

/// Tries after the first one. Small: a sync is itself re-runnable and skips what it already did.
pub const MAX_RETRIES: u32 = 3;
/// First backoff; doubled after each try.
pub const BASE_DELAY: Duration = Duration::from_millis(200);
/// Cap on a server-suggested wait (`throttled(retry-after)`), seconds.
pub const MAX_RETRY_AFTER_SECS: u32 = 30;

/// Backoff state of one call. Use as
/// `loop { match call().await { Err(e) if backoff.retry(&e).await => continue, r => break r } }`.
#[derive(Debug)]
pub struct Backoff {
    attempt: u32,
    delay: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { attempt: 0, delay: BASE_DELAY }
    }
}

impl Backoff {
    /// Waits and returns `true` when `e` is worth another try; `false` when it is permanent or the
    /// retries are spent.
    pub async fn retry(&mut self, e: &StorageError) -> bool {
        if !e.is_retryable() || self.attempt >= MAX_RETRIES {
            return false;
        }
        self.attempt += 1;
        let wait = match e.kind {
            ErrorKind::Throttled(Some(s)) => Duration::from_secs(s.min(MAX_RETRY_AFTER_SECS).into()),
            _ => self.delay,
        };
        tracing::debug!(op = e.op, attempt = self.attempt, "retrying after {wait:?}: {e}");
        tokio::time::sleep(wait).await;
        self.delay *= 2;
        true
    }
}

/// Evaluates the async expression `$call` until it succeeds or fails permanently.
#[macro_export]
macro_rules! with_retry {
    ($call:expr) => {{
        let mut backoff = $crate::sync::retry::Backoff::default();
        loop {
            match $call.await {
                Err(e) if backoff.retry(&e).await => continue,
                r => break r,
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_only_temporary_errors_and_gives_up() {
        let mut calls = 0;
        let r: Result<(), StorageError> = with_retry!(async {
            calls += 1;
            Err(StorageError::new(ErrorKind::Transient, "get", "reset"))
        });
        assert_eq!(r.unwrap_err().kind, ErrorKind::Transient);
        assert_eq!(calls, 1 + MAX_RETRIES);

        let mut calls = 0;
        let r: Result<(), StorageError> = with_retry!(async {
            calls += 1;
            Err(StorageError::new(ErrorKind::NotFound, "get", "gone"))
        });
        assert_eq!(r.unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(calls, 1);
    }
}
