//! Who is asking: bearer tokens, roles, and the audit log, behind the [`Users`] trait that the
//! store implements.
//!
//! A request carries `Authorization: Bearer TOKEN`. A token in the URL query (`token=`,
//! `access_token=`) is refused with 400: URLs end up in logs and browser histories.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::AppState;
use crate::store::Store;

pub use crate::store::{Role, User};

/// What a role sees of households.
pub trait RoleExt {
    /// True for roles that see households only as aggregates (leaders and planners).
    fn sees_aggregates(self) -> bool;
}

impl RoleExt for Role {
    fn sees_aggregates(self) -> bool {
        matches!(self, Role::Leader | Role::Planner)
    }
}

/// Users, tokens and the audit log (implemented by the store).
pub trait Users: Send + Sync + 'static {
    /// The user holding `token`, if any.
    fn authenticate(&self, token: &str) -> anyhow::Result<Option<User>>;
    /// Appends one household-level access to the audit log.
    fn audit(&self, user: &User, action: &str, target: &str) -> anyhow::Result<()>;
}

impl Users for Store {
    fn authenticate(&self, token: &str) -> anyhow::Result<Option<User>> {
        Ok(Store::authenticate(self, token)?)
    }

    fn audit(&self, user: &User, action: &str, target: &str) -> anyhow::Result<()> {
        Ok(Store::audit(self, user.id, action, target)?)
    }
}

/// SHA-256 of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Remembers authenticated tokens (by hash) for a short while, so that a tile request does not
/// cost a database look-up.
pub(crate) struct AuthCache {
    entries: Mutex<HashMap<[u8; 32], (Instant, User)>>,
    ttl: Duration,
}

impl AuthCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        AuthCache { entries: Mutex::new(HashMap::new()), ttl }
    }

    pub(crate) fn get(&self, users: &dyn Users, token: &str) -> Result<Option<User>, ApiError> {
        let h = token_hash(token);
        {
            let g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((t, u)) = g.get(&h) {
                if t.elapsed() < self.ttl {
                    return Ok(Some(u.clone()));
                }
            }
        }
        let u = users.authenticate(token).map_err(|e| ApiError::internal(format!("authentication failed: {e:#}")))?;
        let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if g.len() > 10_000 {
            g.clear();
        }
        match &u {
            Some(u) => {
                g.insert(h, (Instant::now(), u.clone()));
            }
            None => {
                g.remove(&h);
            }
        }
        Ok(u)
    }

    pub(crate) fn clear(&self) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// The authenticated user of a request (extractor): 401 without a valid bearer token.
pub struct Auth(pub User);

fn query_has_token(q: &str) -> bool {
    q.split('&').any(|kv| {
        let k = kv.split('=').next().unwrap_or("");
        k.eq_ignore_ascii_case("token") || k.eq_ignore_ascii_case("access_token")
    })
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(query_has_token) {
            return Err(ApiError::bad_request(
                "a token is never accepted in the URL query; send it as the header `Authorization: Bearer TOKEN`",
            ));
        }
        let Some(h) = parts.headers.get(AUTHORIZATION) else {
            return Err(ApiError::unauthorized("missing `Authorization: Bearer TOKEN` header"));
        };
        let h = h.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not ASCII"))?;
        let token = match h.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
            _ => return Err(ApiError::unauthorized("the Authorization header must be `Bearer TOKEN`")),
        };
        if token.is_empty() || token.len() > 512 {
            return Err(ApiError::unauthorized("empty or overlong bearer token"));
        }
        match state.inner.auth_cache.get(state.inner.users.as_ref(), token)? {
            Some(u) => Ok(Auth(u)),
            None => Err(ApiError::unauthorized("unknown or revoked token")),
        }
    }
}

impl AppState {
    /// Appends to the audit log; a failure to log refuses the response (no unlogged access).
    pub(crate) fn audit(&self, user: &User, action: &str, target: &str) -> Result<(), ApiError> {
        self.inner
            .users
            .audit(user, action, target)
            .map_err(|e| ApiError::internal(format!("cannot write the audit log: {e:#}")))
    }
}

/// Shared handle to the users.
pub type SharedUsers = Arc<dyn Users>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_roles() {
        assert!(Role::Leader.sees_aggregates());
        assert!(Role::Planner.sees_aggregates());
        assert!(!Role::GridWorker.sees_aggregates());
    }

    #[test]
    fn token_in_query_is_detected() {
        assert!(query_has_token("a=1&token=x"));
        assert!(query_has_token("access_token=x"));
        assert!(!query_has_token("tokens=1&limit=2"));
    }

    #[test]
    fn the_store_authenticates_and_audits_through_the_trait() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let token = store.add_user("A", Role::Leader, &[]).unwrap();
        let users: &dyn Users = &store;
        let u = users.authenticate(&token).unwrap().unwrap();
        assert_eq!(u.name, "A");
        assert!(users.authenticate("other").unwrap().is_none());
        users.audit(&u, "households.item", "H1").unwrap();
        // After the store's own entry for adding the user.
        let log = store.audit_log().unwrap();
        let last = log.last().unwrap();
        assert_eq!((last.1, last.2.as_str(), last.3.as_str()), (Some(u.id), "households.item", "H1"));
        // The cache answers without the store for a while, and forgets unknown tokens.
        let cache = AuthCache::new(Duration::from_secs(30));
        assert_eq!(cache.get(users, &token).unwrap(), Some(u));
        assert_eq!(cache.get(users, "nope").unwrap(), None);
    }
}
