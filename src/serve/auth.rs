//! Who is asking: bearer tokens, roles, and the audit log, behind the [`Users`] trait that the
//! store implements.
//!
//! A request carries `Authorization: Bearer TOKEN`. A token in the URL query (`token=`,
//! `access_token=`) is refused with 400: URLs end up in logs and browser histories.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::AppState;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Every aggregate layer and map; households only as counts in cells.
    Leader,
    /// As leader, plus planning.
    Planner,
    /// Only the households of own grids, as points with their details.
    GridWorker,
}

impl Role {
    /// The role's name as on the command line and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Planner => "planner",
            Role::GridWorker => "grid_worker",
        }
    }

    /// True for roles that see aggregates only (leaders and planners).
    pub fn sees_aggregates(self) -> bool {
        matches!(self, Role::Leader | Role::Planner)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "leader" => Ok(Role::Leader),
            "planner" => Ok(Role::Planner),
            "grid_worker" | "grid-worker" => Ok(Role::GridWorker),
            _ => Err(format!("unknown role {s:?} (leader, planner or grid_worker)")),
        }
    }
}

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// The store's id of the user.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Ids of the grids given to a grid worker (empty for other roles).
    pub grids: Vec<String>,
}

/// Users, tokens and the audit log (implemented by the store).
pub trait Users: Send + Sync + 'static {
    /// The user holding `token`, if any.
    fn authenticate(&self, token: &str) -> anyhow::Result<Option<User>>;
    /// Appends one household-level access to the audit log.
    fn audit(&self, user: &User, action: &str, target: &str) -> anyhow::Result<()>;
}

/// Users kept in memory, with their tokens hashed (SHA-256), and an in-memory audit log.
/// For embedding the server in tests and tools without a store.
#[derive(Default)]
pub struct MemoryUsers {
    users: Mutex<(HashMap<[u8; 32], User>, Vec<(i64, String, String)>)>,
}

impl MemoryUsers {
    /// An empty set of users.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a user with the given token.
    pub fn add(&self, token: &str, name: &str, role: Role, grids: &[&str]) -> User {
        let mut g = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let id = g.0.len() as i64 + 1;
        let u = User { id, name: name.into(), role, grids: grids.iter().map(|s| s.to_string()).collect() };
        g.0.insert(token_hash(token), u.clone());
        u
    }

    /// The audit log so far: (user id, action, target).
    pub fn audit_log(&self) -> Vec<(i64, String, String)> {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).1.clone()
    }
}

impl Users for MemoryUsers {
    fn authenticate(&self, token: &str) -> anyhow::Result<Option<User>> {
        Ok(self.users.lock().unwrap_or_else(|e| e.into_inner()).0.get(&token_hash(token)).cloned())
    }

    fn audit(&self, user: &User, action: &str, target: &str) -> anyhow::Result<()> {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).1.push((user.id, action.into(), target.into()));
        Ok(())
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
    fn roles_parse() {
        assert_eq!("leader".parse::<Role>(), Ok(Role::Leader));
        assert_eq!("grid_worker".parse::<Role>(), Ok(Role::GridWorker));
        assert!("admin".parse::<Role>().is_err());
    }

    #[test]
    fn token_in_query_is_detected() {
        assert!(query_has_token("a=1&token=x"));
        assert!(query_has_token("access_token=x"));
        assert!(!query_has_token("tokens=1&limit=2"));
    }

    #[test]
    fn memory_users_hash_tokens() {
        let m = MemoryUsers::new();
        m.add("secret", "A", Role::Leader, &[]);
        assert_eq!(m.authenticate("secret").unwrap().unwrap().name, "A");
        assert!(m.authenticate("other").unwrap().is_none());
        assert!(!m.users.lock().unwrap().0.keys().any(|k| k == "secret".as_bytes()));
    }
}
