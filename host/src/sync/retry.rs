//! Retrying storage calls. Only temporary failures (`transient`, `throttled`) are retried, with
//! capped exponential backoff and jitter, at most [`MAX_TRIES`] tries or [`MAX_ELAPSED`] per call;
//! `denied`, `not-found` and the other kinds are tried once. Adapters never retry themselves.
//!
//! The shape is AWS's "exponential backoff and jitter" (equal jitter: half the delay fixed, half
//! random, so concurrent callers spread out yet never retry at once), as the AWS SDKs and rclone do.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::error::{ErrorKind, StorageError};

/// Tries of one call at most, the first one included.
pub const MAX_TRIES: u32 = 10;
/// Time one call may take with its retries; no retry starts whose wait would end after it.
pub const MAX_ELAPSED: Duration = Duration::from_secs(180);
/// Backoff before the second try; doubled after each try up to [`MAX_DELAY`].
pub const BASE_DELAY: Duration = Duration::from_millis(200);
/// Largest backoff between two tries (before jitter).
pub const MAX_DELAY: Duration = Duration::from_secs(20);

/// Backoff state of one call. Use as
/// `loop { match call().await { Err(e) if backoff.retry(&e).await => continue, r => break r } }`.
#[derive(Debug)]
pub struct Backoff {
    tries: u32,
    delay: Duration,
    started: Instant,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { tries: 1, delay: BASE_DELAY, started: Instant::now() }
    }
}

impl Backoff {
    /// The wait before the next try after `e`, or `None` when `e` is permanent or the call's
    /// tries or time are spent. A server's `Retry-After` (`throttled(seconds)`) is honoured as
    /// given when it is longer than the backoff, never shortened.
    pub fn next_wait(&mut self, e: &StorageError) -> Option<Duration> {
        if !e.is_retryable() || self.tries >= MAX_TRIES {
            return None;
        }
        let backoff = self.delay / 2 + rand::rng().random_range(Duration::ZERO..=self.delay / 2);
        let wait = match e.kind {
            ErrorKind::Throttled(Some(s)) => backoff.max(Duration::from_secs(s.into())),
            _ => backoff,
        };
        if self.started.elapsed() + wait > MAX_ELAPSED {
            return None;
        }
        self.tries += 1;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        Some(wait)
    }

    /// Waits and returns `true` when `e` is worth another try; `false` when it is permanent or the
    /// call's tries or time are spent.
    pub async fn retry(&mut self, e: &StorageError) -> bool {
        let Some(wait) = self.next_wait(e) else { return false };
        tracing::debug!(op = e.op, try_ = self.tries, "retrying after {wait:?}: {e}");
        tokio::time::sleep(wait).await;
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

    fn err(kind: ErrorKind) -> StorageError {
        StorageError::new(kind, "get", "reset")
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_temporary_errors_and_gives_up() {
        let mut calls = 0;
        let r: Result<(), StorageError> = with_retry!(async {
            calls += 1;
            Err(err(ErrorKind::Transient))
        });
        assert_eq!(r.unwrap_err().kind, ErrorKind::Transient);
        assert_eq!(calls, MAX_TRIES);

        for permanent in [ErrorKind::NotFound, ErrorKind::Denied] {
            let mut calls = 0;
            let r: Result<(), StorageError> = with_retry!(async {
                calls += 1;
                Err(err(permanent.clone()))
            });
            assert_eq!(r.unwrap_err().kind, permanent);
            assert_eq!(calls, 1, "{permanent:?} is tried once");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::default();
        let waits: Vec<Duration> = std::iter::from_fn(|| b.next_wait(&err(ErrorKind::Transient))).collect();
        assert_eq!(waits.len() as u32, MAX_TRIES - 1);
        let mut delay = BASE_DELAY;
        for w in &waits {
            assert!(*w >= delay / 2 && *w <= delay, "{w:?} outside [{:?}, {delay:?}]", delay / 2);
            delay = (delay * 2).min(MAX_DELAY);
        }
        assert!(waits.iter().sum::<Duration>() <= MAX_ELAPSED);
    }

    #[test]
    fn retry_after_is_honoured_and_bounded_by_the_call_budget() {
        let mut b = Backoff::default();
        assert_eq!(b.next_wait(&err(ErrorKind::Throttled(Some(7)))), Some(Duration::from_secs(7)));
        // A wait that would end past MAX_ELAPSED is not started.
        let mut b = Backoff::default();
        assert_eq!(b.next_wait(&err(ErrorKind::Throttled(Some(181)))), None);
        let mut b = Backoff::default();
        let w = b.next_wait(&err(ErrorKind::Throttled(None))).unwrap();
        assert!(w >= BASE_DELAY / 2 && w <= BASE_DELAY);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_gives_up_after_its_time_budget() {
        // Each try answers "throttled, retry after 59 s": three waits fit in 180 s, a fourth does not.
        let started = tokio::time::Instant::now();
        let mut calls = 0;
        let mut b = Backoff { started: Instant::now(), ..Backoff::default() };
        loop {
            calls += 1;
            let e = err(ErrorKind::Throttled(Some(59)));
            // Paused tokio time does not move std's Instant: age the budget by hand.
            match b.next_wait(&e) {
                Some(w) => {
                    tokio::time::sleep(w).await;
                    b.started -= w;
                }
                None => break,
            }
        }
        assert_eq!(calls, 4, "waits of 59 s from 0, 59 and 118 s; a fourth would end at 236 s");
        assert_eq!(started.elapsed(), Duration::from_secs(177));
    }
}
