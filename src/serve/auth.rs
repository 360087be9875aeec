//! Who is asking: bearer tokens, roles, and the audit log, behind the [`Users`] trait that the
//! store implements.
//!
//! A request carries `Authorization: Bearer TOKEN`. A token in the URL query (a key `token` or
//! `access_token` in any case, also percent-encoded or with `+`) is refused with 400: URLs end
//! up in logs and browser histories.
//!
//! Authentications are remembered (`AuthCache`) so that a tile does not cost a database
//! look-up, but never past a change of the users: at most every
//! [`GENERATION_CHECK`] the cache reads the store's users' generation (one small read shared by
//! all requests) and forgets everything when it moved, so a token revoked by `gridcover user
//! revoke` (another process) is refused within a second without a restart. A token's expiry is
//! checked on every request against its stored expiry time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::AppState;
use crate::store::{Store, StoreError};

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

/// Users, tokens and the audit log (implemented by the store). A failure is the store's
/// ([`StoreError`]), answered through the one mapping of [`super::error`].
pub trait Users: Send + Sync + 'static {
    /// The user holding `token`, if any (and the token neither revoked nor expired).
    ///
    /// # Errors
    /// The store cannot be read.
    fn authenticate(&self, token: &str) -> Result<Option<User>, StoreError>;
    /// A number that changes whenever any user or token changes ([`Store::users_generation`]).
    ///
    /// # Errors
    /// The store cannot be read.
    fn generation(&self) -> Result<u64, StoreError>;
    /// Appends one household-level access to the audit log.
    ///
    /// # Errors
    /// The entry cannot be written (nothing may then be answered).
    fn audit(&self, user: &User, action: &str, target: &str) -> Result<(), StoreError>;
}

impl Users for Store {
    fn authenticate(&self, token: &str) -> Result<Option<User>, StoreError> {
        Store::authenticate(self, token)
    }

    fn generation(&self) -> Result<u64, StoreError> {
        Store::users_generation(self)
    }

    fn audit(&self, user: &User, action: &str, target: &str) -> Result<(), StoreError> {
        Store::audit(self, user.id, action, target)
    }
}

/// SHA-256 of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// How often, at most, the cache reads the users' generation.
pub const GENERATION_CHECK: Duration = Duration::from_millis(250);

/// Entries kept at most; beyond it the cache starts afresh.
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    /// When the look-up that made it began.
    at: Instant,
    /// The users' generation read before that look-up.
    generation: u64,
    user: User,
}

/// Remembers authenticated tokens (by hash), so that a tile request does not cost a database
/// look-up: an entry is used while it is younger than its time to live, was made under the
/// users' generation last read (read at most every [`GENERATION_CHECK`]), and its token has
/// not expired (checked at every use).
pub(crate) struct AuthCache {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    ttl: Duration,
    started: Instant,
    /// Milliseconds after `started` of the last generation read, plus one (0: never).
    checked_at: AtomicU64,
    /// The users' generation last read.
    generation: AtomicU64,
}

impl AuthCache {
    /// A cache whose entries live at most `ttl` (a change of users ends them sooner).
    pub(crate) fn new(ttl: Duration) -> Self {
        AuthCache {
            entries: Mutex::new(HashMap::new()),
            ttl,
            started: Instant::now(),
            checked_at: AtomicU64::new(0),
            generation: AtomicU64::new(0),
        }
    }

    /// The users' generation, read again from `users` when the last read is older than
    /// [`GENERATION_CHECK`] (by one request; the others meanwhile use the last value). When it
    /// moved, every entry is forgotten.
    fn generation(&self, users: &dyn Users) -> Result<u64, ApiError> {
        let now = self.started.elapsed().as_millis() as u64 + 1;
        let last = self.checked_at.load(Ordering::Acquire);
        let due = last == 0 || now.saturating_sub(last) >= GENERATION_CHECK.as_millis() as u64;
        if due && self.checked_at.compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            match users.generation() {
                Ok(g) => {
                    if self.generation.swap(g, Ordering::AcqRel) != g {
                        self.clear();
                    }
                }
                Err(e) => {
                    // The next request tries again.
                    self.checked_at.store(0, Ordering::Release);
                    return Err(e.into());
                }
            }
        }
        Ok(self.generation.load(Ordering::Acquire))
    }

    pub(crate) fn get(&self, users: &dyn Users, token: &str) -> Result<Option<User>, ApiError> {
        let generation = self.generation(users)?;
        let h = token_hash(token);
        {
            let g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = g.get(&h) {
                if e.generation == generation && e.at.elapsed() < self.ttl {
                    if e.user.is_expired(SystemTime::now()) {
                        return Ok(None);
                    }
                    return Ok(Some(e.user.clone()));
                }
            }
        }
        let at = Instant::now();
        let u = users.authenticate(token)?;
        let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if g.len() >= MAX_ENTRIES {
            g.clear();
        }
        match &u {
            Some(u) => {
                g.insert(h, Entry { at, generation, user: u.clone() });
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

/// True when the query string has a key `token` or `access_token` (any case, surrounding
/// spaces ignored), once decoded as a form: `%74oken` and `access+token`-like spellings are
/// the keys they decode to.
fn query_has_token(q: &str) -> bool {
    form_urlencoded::parse(q.as_bytes()).any(|(k, _)| {
        let k = k.trim();
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
        self.inner.users.audit(user, action, target).map_err(ApiError::from)
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
        // Encoded keys are the keys they decode to.
        for q in ["%74oken=x", "%54OKEN=x", "a=1&access%5Ftoken=x", "%61ccess_token", "+token+=x", "tok%65n"] {
            assert!(query_has_token(q), "{q}");
        }
        for q in ["", "a=token", "t=1&oken=2", "access+token=x", "%zz=1", "to%ken=x"] {
            assert!(!query_has_token(q), "{q}");
        }
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
        assert_eq!((last.user_id, last.action.as_str(), last.target.as_str()), (Some(u.id), "households.item", "H1"));
        let cache = AuthCache::new(Duration::from_secs(30));
        assert_eq!(cache.get(users, &token).unwrap(), Some(u));
        assert_eq!(cache.get(users, "nope").unwrap(), None);
    }

    /// The real store, counting the calls the cache makes to it.
    struct Counting {
        store: Store,
        auths: AtomicU64,
        generations: AtomicU64,
    }

    impl Users for Counting {
        fn authenticate(&self, token: &str) -> Result<Option<User>, StoreError> {
            self.auths.fetch_add(1, Ordering::Relaxed);
            self.store.authenticate(token)
        }
        fn generation(&self) -> Result<u64, StoreError> {
            self.generations.fetch_add(1, Ordering::Relaxed);
            self.store.users_generation()
        }
        fn audit(&self, user: &User, action: &str, target: &str) -> Result<(), StoreError> {
            self.store.audit(user.id, action, target)
        }
    }

    /// A store that cannot be read.
    struct Broken;

    impl Users for Broken {
        fn authenticate(&self, _: &str) -> Result<Option<User>, StoreError> {
            Err(StoreError::Db { context: "reading tokens".into(), source: rusqlite::Error::InvalidQuery })
        }
        fn generation(&self) -> Result<u64, StoreError> {
            Err(StoreError::Db {
                context: "reading the users' generation".into(),
                source: rusqlite::Error::InvalidQuery,
            })
        }
        fn audit(&self, _: &User, _: &str, _: &str) -> Result<(), StoreError> {
            Err(StoreError::Invalid("never called here".into()))
        }
    }

    #[test]
    fn a_store_that_cannot_be_read_is_a_500_and_is_asked_again() {
        let cache = AuthCache::new(Duration::from_secs(30));
        for _ in 0..2 {
            let e = cache.get(&Broken, "t").unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (500, "ServerError"));
            assert!(e.description.contains("reading the users' generation"), "{}", e.description);
        }
    }

    fn counting() -> (tempfile::TempDir, Counting) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, Counting { store, auths: AtomicU64::new(0), generations: AtomicU64::new(0) })
    }

    #[test]
    fn the_cache_spares_the_store_and_forgets_a_revoked_token_within_a_second() {
        let (_d, users) = counting();
        let token = users.store.add_user("A", Role::Leader, &[]).unwrap();
        let other = users.store.add_user("B", Role::Planner, &[]).unwrap();
        let cache = AuthCache::new(Duration::from_secs(30));
        let t = Instant::now();
        for _ in 0..2000 {
            assert_eq!(cache.get(&users, &token).unwrap().unwrap().name, "A");
        }
        let elapsed = t.elapsed();
        // One look-up of the token; the generation at most once per GENERATION_CHECK.
        let checks = 1 + elapsed.as_millis() as u64 / GENERATION_CHECK.as_millis() as u64;
        assert_eq!(users.auths.load(Ordering::Relaxed), 1);
        assert!(users.generations.load(Ordering::Relaxed) <= checks + 1, "{elapsed:?}");
        cache.get(&users, &other).unwrap().unwrap();
        // Revoked in the store (as `gridcover user revoke` does from another process): refused
        // within a second, while the other user stays in.
        users.store.revoke_user("A").unwrap();
        let revoked = Instant::now();
        while cache.get(&users, &token).unwrap().is_some() {
            assert!(
                revoked.elapsed() < Duration::from_secs(1),
                "still accepted {:?} after the revoke",
                revoked.elapsed()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(revoked.elapsed() <= GENERATION_CHECK + Duration::from_millis(200), "{:?}", revoked.elapsed());
        assert_eq!(cache.get(&users, &other).unwrap().unwrap().name, "B");
    }

    #[test]
    fn an_expired_token_is_refused_at_once_from_the_cache() {
        let (_d, users) = counting();
        let token = users.store.add_user_expiring("A", Role::Leader, &[], Some(Duration::from_millis(1500))).unwrap();
        let cache = AuthCache::new(Duration::from_secs(30));
        let u = cache.get(&users, &token).unwrap().unwrap();
        let expires = std::time::UNIX_EPOCH + Duration::from_millis(u.expires_unix_ms.unwrap() as u64);
        while cache.get(&users, &token).unwrap().is_some() {
            assert!(SystemTime::now() < expires + Duration::from_millis(50), "accepted after its expiry");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(SystemTime::now() >= expires, "refused before its expiry");
        // The refusal came from the cached entry's expiry: the store was asked once only.
        assert_eq!(users.auths.load(Ordering::Relaxed), 1);
    }
}
