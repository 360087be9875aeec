//! The durable store (I/O): `gridcover.sqlite` in the data folder.
//!
//! SQLite through rusqlite (bundled SQLite), created and migrated on first use by any command
//! that needs it (see [`Store::open`]). It holds what changes while the system runs — users,
//! their tokens' hashes, expiries and revocations (`users.rs`), the households (with a free-form JSON `status`, the grid workers'
//! contacts — visits of four kinds — and their needs with each change of status, `service.rs`),
//! the stations as planners edit them, the grids — and an append-only trail of every
//! change ([`history`](Store::history)) and of every household-level access
//! ([`audit`](Store::audit)). The reference geography (divisions, boundaries, the standard) stays
//! in the folder's files.
//!
//! # History
//! Every change made through the server or by an import of the folder's stations, households
//! and grids is a row of `history` (who, when, action, the record's version, before and after
//! as JSON). Contacts and needs imported from files (`contacts.csv`, `needs.csv`, a station's
//! ledger) are the exception since version 6: one row of `record_imports` per imported file
//! (who, when, file, SHA-256, counts, the ids added, its place in the trail) is the import's
//! entry, each imported record names it (`import_id`), and a household's history shows its
//! imported contacts and needs made from the records and their import ([`Store::history`];
//! `ledger.rs`).
//!
//! # Durability
//! The database runs in WAL mode with `synchronous = FULL`: every commit fsyncs the WAL before
//! [`Store`]'s write methods return, so a change that was acknowledged survives a crash of the
//! process *and* of the machine (with `NORMAL` in WAL mode, a power cut could drop the last
//! commits; a process crash could not). `foreign_keys` is on. Every write is one transaction:
//! either all of it is there after a crash, or none of it. The one exception to WAL is a first
//! import into a store that holds none: it runs with a rollback journal, which writes the store
//! once instead of through the WAL and a checkpoint (half the writes, and no WAL as big as the
//! store beside it), and is just as atomic (see `import.rs`).
//!
//! # Migrations
//! [`MIGRATIONS`] is an ordered list of SQL scripts; table `schema_migrations` records the ones
//! applied, each in its own transaction with its version row. Opening a store written by a newer
//! gridcover (a version above the last known) is refused rather than guessed at. Version 3 added
//! token expiry and revocation; version 4 the service records (a visit's `kind`, every visit
//! before it a home visit; `needs` and `need_changes`); version 5 the system user `import` and
//! `record_imports`, for service records imported from files ([`Store::import_contacts`]);
//! version 6 the compact history of imported records (`import_id` on `visits`, `needs` and
//! `need_changes`; the ids and place in the trail of each import): an older store keeps its
//! history rows, including those of the records it imported before; version 7 a partial index
//! of the households whose status was edited (made at the first open by this version: a scan of
//! the households, once).
//!
//! # Append-only tables
//! `history`, `audit`, `visits` and `need_changes` have triggers that abort any `UPDATE` or
//! `DELETE`: nothing recorded is overwritten, not even by a bug in this module. A need is never
//! deleted either, and its row changes only its status and version (each change is a row of
//! `need_changes`).
//!
//! # Concurrency
//! [`Store`] is cheap to clone and `Send + Sync`: one writer connection, handed to writers in
//! the order they ask (SQLite allows one writer at a time anyway) and a small pool of reader connections, which WAL lets
//! read while a write is in progress. Edits of one record are checked by version
//! (optimistic concurrency): a caller that sends the version it saw (an HTTP `If-Match`) gets
//! [`StoreError::Conflict`] when the record moved on meanwhile; the version check and the
//! update happen in the same transaction, so no update is lost.
//!
//! SQLite runs without its memory statistics (set once for the process before its first
//! connection, `sqlite_process_settings`): nothing here reads them, and keeping them takes a
//! global mutex on every allocation SQLite makes.

mod assignment_cache;
mod cache_file;
mod contact_cache;
mod household_cache;
mod import;
mod ledger;
mod patch;
mod records;
mod records_cache;
mod service;
#[cfg(test)]
mod source_key;
mod users;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use assignment_cache::{AssignmentCache, KeptLevels};
pub use import::{FolderHistory, ImportReport};
pub use ledger::{RecordSource, RecordsImported};
pub use patch::merge_patch;
pub use records::{
    parse_date, Actor, HistoryEntry, HouseholdRecord, NamesAndAddresses, NewStation, NewVisit, StationPatch,
    StationRecord, Visit, MAX_NOTE_CHARS, MAX_STATUS_BYTES, MAX_STATUS_DEPTH,
};
pub use records_cache::{folder_records, HashedFiles};
pub use service::{Need, NeedChange, NeedPatch, NewNeed, VisitNeed, MAX_VISIT_NEEDS};
pub use users::{UserInfo, MAX_EXPIRY};

/// File name of the store in a data folder.
pub const STORE_FILE: &str = "gridcover.sqlite";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data folder or the database file cannot be created or opened.
    #[error("cannot open the store {}: {message}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why (read-only folder, not a database, …).
        message: String,
    },
    /// The database was written by a newer gridcover.
    #[error("the store {} has schema version {found}, newer than this gridcover knows ({known}); use a newer gridcover", path.display())]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// SQLite refused an operation (disk full, read-only file, I/O error, …); nothing of the
    /// operation was written.
    #[error("store: {context}: {source}")]
    Db {
        /// What was being done.
        context: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// No record with this id.
    #[error("{what} {id} not found")]
    NotFound {
        /// The kind of record (`household`, `station`).
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A record with this id exists already.
    #[error("{what} {id} exists already")]
    Exists {
        /// The kind of record.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The version the caller saw is no longer the record's version.
    #[error("{what} {id} has version {current}, not {expected}: it was changed meanwhile; read it again")]
    Conflict {
        /// The kind of record.
        what: &'static str,
        /// Its id.
        id: String,
        /// The version the caller sent.
        expected: i64,
        /// The record's version now.
        current: i64,
    },
    /// `user revoke`: no user of this name holds an active token.
    #[error("user {name:?} has no active token to revoke ({})", if *known { "every token of that name is revoked or expired already" } else { "no user has that name; see `gridcover user list`" })]
    NoActiveToken {
        /// The name asked for.
        name: String,
        /// True when users of that name exist (all revoked or expired).
        known: bool,
    },
    /// The request is not valid (a bad date, a status that is not an object, …).
    #[error("{0}")]
    Invalid(String),
    /// Reading the data folder for an import failed; the store is unchanged.
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
}

impl StoreError {
    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let context = context.into();
        move |source| StoreError::Db { context, source }
    }

    /// True when SQLite reported the disk (or its `max_page_count`) full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Db { source: rusqlite::Error::SqliteFailure(e, _), .. }
            if e.code == rusqlite::ErrorCode::DiskFull)
    }
}

/// Text field `i` of a row, read in place (no `String`): `None` for NULL, an error for
/// anything but text (as reading it into a `String` would give).
pub(crate) fn text_in_place<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    let v = r.get_ref(i)?;
    v.as_str_or_null().map_err(|_| rusqlite::Error::InvalidColumnType(i, String::new(), v.data_type()))
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees every aggregate layer and map (households only as counts in cells).
    Leader,
    /// As leader, plus planning and editing stations.
    Planner,
    /// Sees and edits only the households of the grids given to them.
    GridWorker,
}

impl Role {
    /// The name used on the command line, in the store and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Planner => "planner",
            Role::GridWorker => "grid_worker",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "leader" => Ok(Role::Leader),
            "planner" => Ok(Role::Planner),
            "grid_worker" | "grid-worker" => Ok(Role::GridWorker),
            _ => Err(format!("unknown role {s:?} (expected leader, planner or grid_worker)")),
        }
    }
}

/// A user, as [`Store::authenticate`] finds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Row id in the store.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The grids given to a grid worker (empty for other roles).
    pub grids: Vec<String>,
    /// When the token expires, in milliseconds since the Unix epoch (none: never). A holder of
    /// a cached `User` checks it on every use ([`User::is_expired`]).
    #[serde(skip)]
    pub expires_unix_ms: Option<i64>,
}

impl User {
    /// True when this user may see and edit the households of grid `grid_id`.
    pub fn has_grid(&self, grid_id: &str) -> bool {
        self.role == Role::GridWorker && self.grids.iter().any(|g| g == grid_id)
    }

    /// True when the token has expired at `now`.
    pub fn is_expired(&self, now: std::time::SystemTime) -> bool {
        let Some(exp) = self.expires_unix_ms else { return false };
        let now_ms = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        now_ms >= exp
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// When (UTC, RFC 3339).
    pub at: String,
    /// Who.
    pub user_id: Option<i64>,
    /// What, e.g. `household.read`.
    pub action: String,
    /// On what, e.g. a household id.
    pub target: String,
}

/// The condition of a household whose status a grid worker has edited: the partial index
/// `households_edited` (migration 7) and [`Store::edited_households`]'s query, which must hold
/// the index's terms for SQLite to use it, are both written from this one text.
macro_rules! edited_households {
    () => {
        "present = 1 AND (version > 1 OR status != '{}')"
    };
}
pub(crate) use edited_households;

/// The schema, one script per version (version = position + 1). Never edit a script once
/// released: append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: users, audit.
    "CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL CHECK (length(name) > 0),
        role TEXT NOT NULL CHECK (role IN ('leader', 'planner', 'grid_worker')),
        token_sha256 BLOB NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE TABLE user_grids (
        user_id INTEGER NOT NULL REFERENCES users(id),
        grid_id TEXT NOT NULL,
        PRIMARY KEY (user_id, grid_id)
    ) WITHOUT ROWID;
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        user_id INTEGER REFERENCES users(id),
        action TEXT NOT NULL,
        target TEXT NOT NULL
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;",
    // 2: records, visits, history, imports.
    "CREATE TABLE imports (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        files_sha256 TEXT NOT NULL,
        summary TEXT NOT NULL
    );
    CREATE TABLE import_rejects (
        file TEXT NOT NULL, row INTEGER NOT NULL, record_id TEXT NOT NULL, reason TEXT NOT NULL
    );
    CREATE TABLE grids (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        worker TEXT NOT NULL,
        code TEXT,
        geometry TEXT NOT NULL,
        import_sha256 BLOB NOT NULL,
        present INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE stations (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE CHECK (length(id) > 0),
        name TEXT NOT NULL,
        level TEXT NOT NULL CHECK (level IN ('province', 'city', 'county', 'township', 'village')),
        code TEXT NOT NULL,
        lon REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
        lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
        demonstration INTEGER NOT NULL,
        mobile INTEGER NOT NULL,
        radius_m REAL CHECK (radius_m IS NULL OR radius_m > 0),
        active INTEGER NOT NULL DEFAULT 1,
        version INTEGER NOT NULL DEFAULT 1,
        import_sha256 BLOB
    );
    CREATE TABLE households (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE CHECK (length(id) > 0),
        lon REAL NOT NULL,
        lat REAL NOT NULL,
        veterans INTEGER NOT NULL CHECK (veterans > 0),
        code TEXT,
        difficulty INTEGER NOT NULL,
        martyr_family INTEGER NOT NULL,
        name TEXT,
        address TEXT,
        status TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(status) AND json_type(status) = 'object'),
        version INTEGER NOT NULL DEFAULT 1,
        present INTEGER NOT NULL DEFAULT 1,
        import_sha256 BLOB NOT NULL
    );
    CREATE TABLE visits (
        id INTEGER PRIMARY KEY,
        household_id TEXT NOT NULL REFERENCES households(id),
        date TEXT NOT NULL,
        note TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id),
        at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX visits_household ON visits(household_id, id);
    CREATE TABLE history (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        user_id INTEGER REFERENCES users(id),
        actor TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('household', 'station', 'grid')),
        record_id TEXT NOT NULL,
        action TEXT NOT NULL,
        version INTEGER,
        before TEXT,
        after TEXT
    );
    CREATE INDEX history_record ON history(kind, record_id, id);
    CREATE TRIGGER history_no_update BEFORE UPDATE ON history BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
    CREATE TRIGGER history_no_delete BEFORE DELETE ON history BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
    CREATE TRIGGER visits_no_update BEFORE UPDATE ON visits BEGIN SELECT RAISE(ABORT, 'visits are append-only'); END;
    CREATE TRIGGER visits_no_delete BEFORE DELETE ON visits BEGIN SELECT RAISE(ABORT, 'visits are append-only'); END;",
    // 3: token expiry and revocation; a generation counter of the users, bumped by every change
    // of `users` or `user_grids` (by this program or any other), that a server polls to forget
    // the authentications it remembers.
    "ALTER TABLE users ADD COLUMN expires_at TEXT CHECK (expires_at IS NULL OR julianday(expires_at) IS NOT NULL);
    ALTER TABLE users ADD COLUMN revoked_at TEXT;
    CREATE TABLE users_generation (
        only INTEGER PRIMARY KEY CHECK (only = 1),
        n INTEGER NOT NULL
    );
    INSERT INTO users_generation (only, n) VALUES (1, 1);
    CREATE TRIGGER users_gen_insert AFTER INSERT ON users BEGIN UPDATE users_generation SET n = n + 1; END;
    CREATE TRIGGER users_gen_update AFTER UPDATE ON users BEGIN UPDATE users_generation SET n = n + 1; END;
    CREATE TRIGGER users_gen_delete AFTER DELETE ON users BEGIN UPDATE users_generation SET n = n + 1; END;
    CREATE TRIGGER user_grids_gen_insert AFTER INSERT ON user_grids BEGIN UPDATE users_generation SET n = n + 1; END;
    CREATE TRIGGER user_grids_gen_update AFTER UPDATE ON user_grids BEGIN UPDATE users_generation SET n = n + 1; END;
    CREATE TRIGGER user_grids_gen_delete AFTER DELETE ON user_grids BEGIN UPDATE users_generation SET n = n + 1; END;
    CREATE TRIGGER users_no_unrevoke BEFORE UPDATE OF revoked_at ON users WHEN OLD.revoked_at IS NOT NULL
        BEGIN SELECT RAISE(ABORT, 'a revoked token stays revoked'); END;",
    // 4: service records: how a household was contacted (every visit recorded before is a home
    // visit), its needs (诉求) and each need's status changes (append-only; the first is its
    // raising).
    "ALTER TABLE visits ADD COLUMN kind TEXT NOT NULL DEFAULT 'home'
        CHECK (kind IN ('home', 'phone', 'station', 'other'));
    CREATE TABLE needs (
        id INTEGER PRIMARY KEY,
        household_id TEXT NOT NULL REFERENCES households(id),
        category TEXT NOT NULL
            CHECK (category IN ('employment', 'medical', 'housing', 'pension', 'legal', 'hardship', 'other')),
        note TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'resolved')),
        opened TEXT NOT NULL CHECK (length(opened) = 10 AND date(opened) = opened),
        visit_id INTEGER REFERENCES visits(id),
        user_id INTEGER NOT NULL REFERENCES users(id),
        version INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX needs_household ON needs(household_id, id);
    CREATE INDEX needs_visit ON needs(visit_id) WHERE visit_id IS NOT NULL;
    CREATE TABLE need_changes (
        id INTEGER PRIMARY KEY,
        need_id INTEGER NOT NULL REFERENCES needs(id),
        date TEXT NOT NULL CHECK (length(date) = 10 AND date(date) = date),
        status TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'resolved')),
        note TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id),
        at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX need_changes_need ON need_changes(need_id, id);
    CREATE TRIGGER need_changes_no_update BEFORE UPDATE ON need_changes
        BEGIN SELECT RAISE(ABORT, 'need changes are append-only'); END;
    CREATE TRIGGER need_changes_no_delete BEFORE DELETE ON need_changes
        BEGIN SELECT RAISE(ABORT, 'need changes are append-only'); END;
    CREATE TRIGGER needs_no_delete BEFORE DELETE ON needs
        BEGIN SELECT RAISE(ABORT, 'needs are never deleted; resolve them'); END;
    CREATE TRIGGER needs_fixed BEFORE UPDATE OF id, household_id, category, note, opened, visit_id, user_id, created_at
        ON needs BEGIN SELECT RAISE(ABORT, 'a need changes only its status, through need_changes'); END;",
    // 5: service records imported from files (a station's ledger, a data folder's contacts.csv
    // and needs.csv): the system user `import` they are recorded by (it holds no token: its
    // hash is of random bytes nobody has, revoked from the start, so it never authenticates;
    // `user list` leaves system users out), and every such import (who, when, which file, its
    // SHA-256, what it added), append-only.
    "ALTER TABLE users ADD COLUMN system INTEGER NOT NULL DEFAULT 0;
    INSERT INTO users (name, role, token_sha256, revoked_at, system)
        VALUES ('import', 'leader', randomblob(32), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 1);
    CREATE TABLE record_imports (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        user_id INTEGER NOT NULL REFERENCES users(id),
        what TEXT NOT NULL CHECK (what IN ('contacts', 'needs')),
        file TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        added INTEGER NOT NULL,
        same INTEGER NOT NULL,
        rejected INTEGER NOT NULL
    );
    CREATE TRIGGER record_imports_no_update BEFORE UPDATE ON record_imports
        BEGIN SELECT RAISE(ABORT, 'record imports are append-only'); END;
    CREATE TRIGGER record_imports_no_delete BEFORE DELETE ON record_imports
        BEGIN SELECT RAISE(ABORT, 'record imports are append-only'); END;",
    // 6: a compact history of imported service records. A contact or need imported from a file
    // no longer gets a history row of its own: it names its import (`import_id`, a row of
    // `record_imports`, which is the import's one entry in the trail: who, when, file, SHA-256,
    // counts), and the household's history shows it made from the record and its import. The
    // import row also keeps the ids it added (`first_id` to `last_id` of `visits` or `needs`) and
    // where it stands in the trail (`history_seq`: the last `history` row before it). Records
    // imported before this version keep their history rows and have no `import_id`.
    "ALTER TABLE record_imports ADD COLUMN history_seq INTEGER;
    ALTER TABLE record_imports ADD COLUMN first_id INTEGER;
    ALTER TABLE record_imports ADD COLUMN last_id INTEGER;
    ALTER TABLE visits ADD COLUMN import_id INTEGER REFERENCES record_imports(id);
    ALTER TABLE needs ADD COLUMN import_id INTEGER REFERENCES record_imports(id);
    ALTER TABLE need_changes ADD COLUMN import_id INTEGER REFERENCES record_imports(id);
    DROP TRIGGER needs_fixed;
    CREATE TRIGGER needs_fixed
        BEFORE UPDATE OF id, household_id, category, note, opened, visit_id, user_id, created_at, import_id
        ON needs BEGIN SELECT RAISE(ABORT, 'a need changes only its status, through need_changes'); END;",
    // 7: the households whose status a grid worker has edited, indexed (partial index: only
    // those rows are in it), so that a server's start reads them without a scan of every
    // household (a national store's 45 million rows, 22 GB: about 8 s). The index's condition is
    // the one `Store::edited_households` asks, word for word: SQLite uses a partial index only
    // for a query whose WHERE holds its condition's terms.
    concat!("CREATE INDEX households_edited ON households(seq) WHERE ", edited_households!(), ";"),
];

/// Reader connections kept open at most.
const MAX_IDLE_READERS: usize = 16;

/// A ticket lock: waiters are served in the order they arrived.
#[derive(Default)]
struct Ticket {
    state: Mutex<(u64, u64)>,
    turn: std::sync::Condvar,
}

struct TicketGuard<'a>(&'a Ticket);

impl Ticket {
    fn wait(&self) -> TicketGuard<'_> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mine = st.0;
        st.0 += 1;
        while st.1 != mine {
            st = self.turn.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        TicketGuard(self)
    }
}

impl Drop for TicketGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        st.1 += 1;
        self.0.turn.notify_all();
    }
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    /// Hands the writer out first come, first served (a plain mutex lets some writers wait for
    /// seconds under load while others go round again).
    queue: Ticket,
    readers: Mutex<Vec<Connection>>,
}

/// An open store. Clones share the same connections.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.inner.path).finish()
    }
}

/// How long a connection waits for another's lock before giving up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// SQLite's process-wide settings, made once, before the process's first connection (every
/// connection of gridcover is opened through [`Store::open_file`] and the readers of a store
/// it opened; PROJ, which reads its database with the same SQLite, is started after it too,
/// [`crate::crs::ToWgs84::new`]): no memory statistics. SQLite counts every allocation it makes under a global
/// mutex for `sqlite3_memory_used` and the soft heap limit, neither of which gridcover uses;
/// the bundled build keeps the count by default (`SQLITE_DEFAULT_MEMSTATUS=1`), a lock and
/// unlock per allocation, which a national import makes hundreds of millions of.
///
/// `sqlite3_config` takes effect only before SQLite initializes itself (at a process's first
/// connection); called later it returns `SQLITE_MISUSE` and changes nothing, which is harmless.
pub(crate) fn sqlite_process_settings() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `SQLITE_CONFIG_MEMSTATUS` takes one `int`, passed as such through the C
        // variadic call. SQLite requires that no other thread uses it during the call: this
        // runs before the first connection gridcover opens (see above), and the `Once` makes
        // every other caller wait for it.
        let _ =
            unsafe { rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::os::raw::c_int) };
    });
}

fn configure(conn: &Connection, path: &Path) -> Result<()> {
    let open_err = |e: rusqlite::Error| StoreError::Open { path: path.to_path_buf(), message: e.to_string() };
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open {
            path: path.to_path_buf(),
            message: format!("SQLite could not switch to WAL mode (journal_mode is {mode})"),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL").map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", true).map_err(open_err)?;
    Ok(())
}

impl Store {
    /// Opens the store of a data folder, creating the folder's `gridcover.sqlite` and applying
    /// pending migrations as needed.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the folder does not exist or the file cannot be created or
    /// opened (e.g. a read-only folder) or is not a database; [`StoreError::TooNew`] for a
    /// database of a newer gridcover; [`StoreError::Db`] when a migration fails (it is rolled
    /// back).
    pub fn open(data_dir: &Path) -> Result<Store> {
        Self::open_file(&data_dir.join(STORE_FILE))
    }

    /// Opens (creating and migrating) the store at `path` itself.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_file(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(StoreError::Open {
                    path: path.to_path_buf(),
                    message: format!("the folder {} does not exist", dir.display()),
                });
            }
        }
        sqlite_process_settings();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            message: if path.exists() {
                e.to_string()
            } else {
                format!("{e} (is the folder read-only? the store needs to create files in it)")
            },
        })?;
        configure(&conn, path).map_err(|e| match e {
            StoreError::Open { path, message } if message.contains("readonly") || message.contains("read-only") => {
                StoreError::Open { path, message: format!("{message} (the file or its folder is read-only)") }
            }
            e => e,
        })?;
        migrate(&mut conn, path)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(conn),
                queue: Ticket::default(),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` with the writer connection (one writer at a time).
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let _turn = self.inner.queue.wait();
        let mut conn = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }

    /// Runs `f` with a reader connection from the pool (opened on demand).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let c = Connection::open_with_flags(&self.inner.path, flags)
                    .map_err(|e| StoreError::Open { path: self.inner.path.clone(), message: e.to_string() })?;
                c.busy_timeout(BUSY_TIMEOUT).map_err(StoreError::db("configuring a reader"))?;
                c
            }
        };
        let r = f(&conn);
        let mut pool = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        r
    }

    /// The schema version of the store.
    ///
    /// # Errors
    /// [`StoreError::Db`] on a database error.
    pub fn schema_version(&self) -> Result<i64> {
        self.read(|c| {
            c.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))
                .map_err(StoreError::db("reading the schema version"))
        })
    }

    /// Appends an entry to the audit log (who accessed or did what); durable when it returns.
    ///
    /// # Errors
    /// [`StoreError::Db`] on a database error.
    pub fn audit(&self, user_id: i64, action: &str, target: &str) -> Result<()> {
        self.write(|c| {
            c.prepare_cached("INSERT INTO audit (user_id, action, target) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![user_id, action, target]))
                .map_err(StoreError::db("appending to the audit log"))?;
            Ok(())
        })
    }

    /// The audit log, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Db`] on a database error.
    pub fn audit_log(&self) -> Result<Vec<AuditEntry>> {
        self.read(|c| {
            c.prepare("SELECT at, user_id, action, target FROM audit ORDER BY id")
                .and_then(|mut s| {
                    s.query_map([], |r| {
                        Ok(AuditEntry { at: r.get(0)?, user_id: r.get(1)?, action: r.get(2)?, target: r.get(3)? })
                    })?
                    .collect::<Result<Vec<_>, _>>()
                })
                .map_err(StoreError::db("reading the audit log"))
        })
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )",
    )
    .map_err(|e| StoreError::Open { path: path.to_path_buf(), message: e.to_string() })?;
    let current: i64 = conn
        .query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))
        .map_err(StoreError::db("reading the schema version"))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::TooNew { path: path.to_path_buf(), found: current, known });
    }
    for (k, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = k as i64 + 1;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::db(format!("starting migration {version}")))?;
        tx.execute_batch(sql).map_err(StoreError::db(format!("applying migration {version}")))?;
        tx.execute("INSERT INTO schema_migrations (version) VALUES (?1)", [version])
            .map_err(StoreError::db(format!("recording migration {version}")))?;
        tx.commit().map_err(StoreError::db(format!("committing migration {version}")))?;
    }
    Ok(())
}

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = Sha256::digest(bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(&d);
    out
}

/// SHA-256 of the file at `path`, read a block at a time (a national `contacts.csv` is several
/// GB: it is not held in memory to be hashed).
pub(crate) fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut d = Sha256::new();
    crate::ingest::cache::hash_file(path, &mut d)?;
    Ok(d.finalize().into())
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests;
