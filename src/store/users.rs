//! Users and their tokens: creation (with an optional expiry), authentication, listing and
//! revocation, and the users' generation counter.
//!
//! A user row holds one token (only its SHA-256). A token is valid while it is neither revoked
//! (`revoked_at`) nor expired (`expires_at`, UTC); [`Store::authenticate`] checks both in SQL.
//! Rows are never deleted: visits and history written by a revoked user keep pointing at their
//! row, with their name. Every change of `users` or `user_grids` bumps `users_generation` (by
//! trigger, so also changes made by another process or by hand): a server that remembers
//! authentications polls that counter ([`Store::users_generation`]) and forgets them when it
//! moved.

use std::time::Duration;

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{hex, sha256, Result, Role, Store, StoreError, User};

/// Longest expiry a token may be given: ten years.
pub const MAX_EXPIRY: Duration = Duration::from_secs(3650 * 24 * 3600);

/// A user as `gridcover user list` shows them (never the token nor its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// Row id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Grids of a grid worker.
    pub grids: Vec<String>,
    /// When the user was added (UTC, RFC 3339).
    pub created_at: String,
    /// When the token expires (UTC, RFC 3339); none: never.
    pub expires_at: Option<String>,
    /// When the token was revoked (UTC, RFC 3339); none: not revoked.
    pub revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`, at the time of the listing.
    pub state: &'static str,
}

/// Unix milliseconds of an SQL time column `col`.
fn unix_ms(col: &str) -> String {
    format!("CAST(round((julianday({col}) - 2440587.5) * 86400000.0) AS INTEGER)")
}

/// SQL condition: the token of the row is valid now.
const VALID_NOW: &str = "revoked_at IS NULL AND (expires_at IS NULL OR julianday(expires_at) > julianday('now'))";

impl Store {
    /// Creates a user whose token never expires; see [`Store::add_user_expiring`].
    ///
    /// # Errors
    /// As [`Store::add_user_expiring`].
    pub fn add_user(&self, name: &str, role: Role, grids: &[String]) -> Result<String> {
        self.add_user_expiring(name, role, grids, None)
    }

    /// Creates a user and returns their new token (shown once: only its SHA-256 is stored).
    ///
    /// The token is 32 bytes from the operating system's random source, as 64 hex digits.
    /// `grids` are the grids a grid worker may see; they must be empty for other roles, and a
    /// grid worker needs at least one. When the store has imported grids, each id must be
    /// among them. `expires_in`, when given, is how long from now the token stays valid (more
    /// than zero, at most [`MAX_EXPIRY`]).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an empty name, grids given to a leader or planner, none to a
    /// grid worker, an unknown grid, or an expiry of zero or beyond [`MAX_EXPIRY`];
    /// [`StoreError::Db`] on a database error.
    pub fn add_user_expiring(
        &self,
        name: &str,
        role: Role,
        grids: &[String],
        expires_in: Option<Duration>,
    ) -> Result<String> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("a user needs a non-empty name".into()));
        }
        if name.chars().any(char::is_control) {
            return Err(StoreError::Invalid("a user's name may not contain control characters".into()));
        }
        match role {
            Role::GridWorker if grids.is_empty() => {
                return Err(StoreError::Invalid("a grid worker needs at least one grid (--grid ID)".into()))
            }
            Role::Leader | Role::Planner if !grids.is_empty() => {
                return Err(StoreError::Invalid(format!("grids are for grid workers only, not for a {role}")))
            }
            _ => {}
        }
        if let Some(d) = expires_in {
            if d.is_zero() || d > MAX_EXPIRY {
                return Err(StoreError::Invalid(format!(
                    "a token's expiry must be more than zero and at most {} days, not {:.0} s",
                    MAX_EXPIRY.as_secs() / 86400,
                    d.as_secs_f64()
                )));
            }
        }
        let token = random_token()?;
        let hash = sha256(token.as_bytes());
        // SQLite's time modifier: "+SECONDS.MILLIS seconds".
        let expiry = expires_in.map(|d| format!("+{}.{:03} seconds", d.as_secs(), d.subsec_millis()));
        self.write(|conn| {
            let tx = conn.transaction().map_err(StoreError::db("starting a transaction"))?;
            let known_grids: i64 = tx
                .query_row("SELECT count(*) FROM grids WHERE present = 1", [], |r| r.get(0))
                .map_err(StoreError::db("counting grids"))?;
            if known_grids > 0 {
                for g in grids {
                    let found: Option<i64> = tx
                        .query_row("SELECT 1 FROM grids WHERE id = ?1 AND present = 1", [g], |r| r.get(0))
                        .optional()
                        .map_err(StoreError::db("looking up a grid"))?;
                    if found.is_none() {
                        return Err(StoreError::Invalid(format!("unknown grid {g:?} (not among the imported grids)")));
                    }
                }
            }
            tx.execute(
                "INSERT INTO users (name, role, token_sha256, expires_at)
                 VALUES (?1, ?2, ?3, CASE WHEN ?4 IS NULL THEN NULL ELSE strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?4) END)",
                params![name, role.as_str(), &hash[..], expiry],
            )
            .map_err(StoreError::db("adding a user"))?;
            let id = tx.last_insert_rowid();
            for g in grids {
                tx.execute("INSERT OR IGNORE INTO user_grids (user_id, grid_id) VALUES (?1, ?2)", params![id, g])
                    .map_err(StoreError::db("giving a grid"))?;
            }
            tx.execute(
                "INSERT INTO audit (user_id, action, target) VALUES (?1, 'user.add', ?2)",
                params![id, format!("user {id} {name} ({role})")],
            )
            .map_err(StoreError::db("auditing"))?;
            tx.commit().map_err(StoreError::db("committing the new user"))?;
            Ok(())
        })?;
        Ok(token)
    }

    /// The user holding `token`, if the token is known, not revoked and not expired.
    ///
    /// # Errors
    /// [`StoreError::Db`] on a database error.
    pub fn authenticate(&self, token: &str) -> Result<Option<User>> {
        let token = token.trim();
        if token.is_empty() || token.len() > 512 {
            return Ok(None);
        }
        let hash = sha256(token.as_bytes());
        self.read(|c| {
            let sql = format!(
                "SELECT id, name, role, {} FROM users WHERE token_sha256 = ?1 AND system = 0 AND {VALID_NOW}",
                unix_ms("expires_at")
            );
            let row: Option<(i64, String, String, Option<i64>)> = c
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_row([&hash[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional()
                })
                .map_err(StoreError::db("looking up a token"))?;
            let Some((id, name, role, expires_unix_ms)) = row else { return Ok(None) };
            let role = role.parse().map_err(StoreError::Invalid)?;
            let grids = c
                .prepare_cached("SELECT grid_id FROM user_grids WHERE user_id = ?1 ORDER BY grid_id")
                .and_then(|mut s| s.query_map([id], |r| r.get(0))?.collect::<Result<Vec<String>, _>>())
                .map_err(StoreError::db("reading a user's grids"))?;
            Ok(Some(User { id, name, role, grids, expires_unix_ms }))
        })
    }

    /// Every user, in the order they were added (revoked and expired ones too).
    ///
    /// # Errors
    /// [`StoreError::Db`] on a database error.
    pub fn users(&self) -> Result<Vec<UserInfo>> {
        self.read(|c| {
            let sql = format!(
                "SELECT id, name, role, created_at, expires_at, revoked_at,
                        CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN {VALID_NOW} THEN 'active' ELSE 'expired' END
                 FROM users WHERE system = 0 ORDER BY id"
            );
            // The role is parsed after the query (its error is ours, not SQLite's).
            let mut rows: Vec<(UserInfo, String)> = c
                .prepare(&sql)
                .and_then(|mut s| {
                    s.query_map([], |r| {
                        let state: String = r.get(6)?;
                        let info = UserInfo {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            role: Role::Leader,
                            grids: Vec::new(),
                            created_at: r.get(3)?,
                            expires_at: r.get(4)?,
                            revoked_at: r.get(5)?,
                            state: match state.as_str() {
                                "revoked" => "revoked",
                                "active" => "active",
                                _ => "expired",
                            },
                        };
                        Ok((info, r.get(2)?))
                    })?
                    .collect()
                })
                .map_err(StoreError::db("listing users"))?;
            let mut grids_of = c
                .prepare("SELECT grid_id FROM user_grids WHERE user_id = ?1 ORDER BY grid_id")
                .map_err(StoreError::db("reading users' grids"))?;
            for (u, role) in &mut rows {
                u.role = role.parse().map_err(StoreError::Invalid)?;
                u.grids = grids_of
                    .query_map([u.id], |r| r.get(0))
                    .and_then(|m| m.collect::<Result<Vec<String>, _>>())
                    .map_err(StoreError::db("reading a user's grids"))?;
            }
            Ok(rows.into_iter().map(|(u, _)| u).collect())
        })
    }

    /// Revokes every active token of the user(s) named `name` (trimmed; exact match), in one
    /// transaction with an audit entry `user.revoke` for each; returns them as they are now.
    /// A server refuses the tokens within a second ([`Store::users_generation`]).
    ///
    /// # Errors
    /// [`StoreError::NoActiveToken`] when no user of that name has an active token (none
    /// with that name, or all revoked or expired); [`StoreError::Db`].
    pub fn revoke_user(&self, name: &str) -> Result<Vec<UserInfo>> {
        let name = name.trim();
        let ids = self.write(|conn| {
            let tx = conn.transaction().map_err(StoreError::db("starting a transaction"))?;
            let known: i64 = tx
                .query_row("SELECT count(*) FROM users WHERE name = ?1 AND system = 0", [name], |r| r.get(0))
                .map_err(StoreError::db("looking up a user"))?;
            let revoked: Vec<(i64, String)> = tx
                .prepare(&format!(
                    "UPDATE users SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                     WHERE name = ?1 AND system = 0 AND {VALID_NOW} RETURNING id, role"
                ))
                .and_then(|mut s| s.query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(StoreError::db("revoking tokens"))?;
            if revoked.is_empty() {
                return Err(StoreError::NoActiveToken { name: name.to_string(), known: known > 0 });
            }
            for (id, role) in &revoked {
                tx.execute(
                    "INSERT INTO audit (user_id, action, target) VALUES (?1, 'user.revoke', ?2)",
                    params![id, format!("user {id} {name} ({role})")],
                )
                .map_err(StoreError::db("auditing"))?;
            }
            tx.commit().map_err(StoreError::db("committing the revocation"))?;
            Ok(revoked.into_iter().map(|(id, _)| id).collect::<Vec<i64>>())
        })?;
        Ok(self.users()?.into_iter().filter(|u| ids.contains(&u.id)).collect())
    }

    /// The users' generation: a number that changes whenever any user, token or grid
    /// assignment changes (also by another process). One small read.
    ///
    /// # Errors
    /// [`StoreError::Db`] on a database error.
    pub fn users_generation(&self) -> Result<u64> {
        self.read(|c| {
            c.prepare_cached("SELECT n FROM users_generation")
                .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
                .map(|n| n as u64)
                .map_err(StoreError::db("reading the users' generation"))
        })
    }
}

/// A new token: 32 bytes of the operating system's randomness, as hex.
fn random_token() -> Result<String> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf)
        .map_err(|e| StoreError::Invalid(format!("the operating system gave no randomness for a new token: {e}")))?;
    Ok(hex(&buf))
}
