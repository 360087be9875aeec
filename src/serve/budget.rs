//! Admission and time budgets of the expensive endpoints (`POST /api/plan`, `POST /api/scenario`).
//!
//! `expensive` is the one function those handlers call: it admits the request if the user
//! runs fewer than [`Limits::expensive_per_user`] and everyone fewer than
//! [`Limits::expensive_total`] such requests (else 429 with `Retry-After`), then runs the work on
//! a blocking thread (never on the async workers) with a [`Budget`] of the given time. The
//! work checks the budget in its long loops and stops once it runs out; it is then answered 503
//! (the work's own `OutOfTime` error, through the one mapping of [`super::error`]). If the
//! client goes away, or the router's request timeout fires first, the budget's cancel flag is
//! set so that the work stops soon after; the admission slot is held until the work has really
//! stopped.
//!
//! [`Limits::expensive_per_user`]: super::Limits::expensive_per_user
//! [`Limits::expensive_total`]: super::Limits::expensive_total

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::{AppState, User};
use crate::plan::Budget;

/// Seconds a refused client is told to wait (`Retry-After`).
pub const RETRY_AFTER_S: u64 = 5;

/// Counts of the expensive requests running, in all and per user.
#[derive(Default)]
pub(crate) struct Limiter {
    running: Mutex<(usize, HashMap<i64, usize>)>,
}

impl Limiter {
    /// Takes a slot for `user` if under both limits.
    fn admit(&self, user: i64, per_user: usize, total: usize) -> bool {
        let mut g = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mine = g.1.get(&user).copied().unwrap_or(0);
        if g.0 >= total || mine >= per_user {
            return false;
        }
        g.0 += 1;
        *g.1.entry(user).or_default() += 1;
        true
    }

    fn release(&self, user: i64) {
        let mut g = self.running.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = g.0.saturating_sub(1);
        if let Some(n) = g.1.get_mut(&user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                g.1.remove(&user);
            }
        }
    }

    /// Expensive requests running now.
    pub(crate) fn running(&self) -> usize {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).0
    }
}

/// A taken slot, given back on drop (by the blocking work, when it ends).
struct Permit {
    state: AppState,
    user: i64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.state.inner.limiter.release(self.user);
    }
}

/// Sets the cancel flag when dropped (the handler's future ends: answered, timed out or gone).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// 429 Too Many Requests with `Retry-After`.
fn too_many(what: &str, per_user: usize, total: usize) -> Response {
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        format!(
            "{what} request: too many plans and what-ifs running (at most {per_user} at once per user and \
             {total} in all); try again in {RETRY_AFTER_S} s"
        ),
    )
    .into_response();
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
    r
}

/// Runs `work` as an expensive request of `user` (see the module docs): admitted or 429, off
/// the async threads, with a budget of `time`.
///
/// # Errors
/// 429 (as a response, with `Retry-After`) when over the limits; else what `work` returns.
pub(crate) async fn expensive<T: Send + 'static>(
    s: &AppState,
    user: &User,
    what: &str,
    time: Duration,
    work: impl FnOnce(&Budget) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, Response> {
    let l = s.limits();
    let (per_user, total) = (l.expensive_per_user, l.expensive_total);
    if !s.inner.limiter.admit(user.id, per_user, total) {
        return Err(too_many(what, per_user, total));
    }
    let permit = Permit { state: s.clone(), user: user.id };
    let flag = Arc::new(AtomicBool::new(false));
    let _cancel = CancelOnDrop(flag.clone());
    let budget = Budget::of(time).with_cancel(flag);
    let r = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work(&budget)
    })
    .await
    .map_err(|e| ApiError::from(e).into_response())?;
    r.map_err(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_per_user_and_in_all() {
        let l = Limiter::default();
        assert!(l.admit(1, 2, 3));
        assert!(l.admit(1, 2, 3));
        assert!(!l.admit(1, 2, 3), "a third for user 1");
        assert!(l.admit(2, 2, 3));
        assert!(!l.admit(3, 2, 3), "four in all");
        assert_eq!(l.running(), 3);
        l.release(1);
        assert!(l.admit(3, 2, 3));
        l.release(1);
        l.release(2);
        l.release(3);
        assert_eq!(l.running(), 0);
        // A release too many never underflows.
        l.release(9);
        assert_eq!(l.running(), 0);
        assert!(!l.admit(1, 0, 3) && !l.admit(1, 3, 0));
    }
}
