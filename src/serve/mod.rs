//! The map server (I/O): OGC API - Features, vector tiles, the coverage report and the web
//! viewer, over one analysed data folder, with bearer tokens and roles.
//!
//! [`router`] builds the whole HTTP API on an [`AppState`] (tests drive it without a socket);
//! [`run`] serves it until SIGTERM or Ctrl-C; `gridcover serve` ([`crate::cli::serve`]) loads a
//! data folder from its store first. The served [`World`] owns the live engine: edits change it in place.
//!
//! Endpoints (every one but `/healthz`, `/api/openapi` and the static files needs
//! `Authorization: Bearer TOKEN`):
//! - `GET /healthz`: `ok` (touches nothing shared: no lock, no store; so it answers at once
//!   whatever else runs).
//! - `GET /api/openapi` ([`openapi`]): the OpenAPI 3.0 definition of all of them.
//! - OGC API - Features Part 1 Core under `/api` ([`ogc`]): landing page, `/api/conformance`,
//!   `/api/collections`, `/api/collections/{id}`, `/api/collections/{id}/items`,
//!   `/api/collections/{id}/items/{featureId}`.
//! - `GET /api/report?level=county&code=PREFIX&limit=N&f=json|xlsx`: units worst first
//!   (leaders, planners); `f=xlsx`: every unit of the level as an Excel sheet.
//! - `GET /api/report/effective` ([`effective`]): effective coverage as of a day.
//! - `GET /api/me`: the caller's name, role and grids.
//! - `POST /api/plan` and `POST /api/scenario` ([`plan`]): the siting planner and what-if
//!   questions (planners).
//! - Edits ([`edits`], with a store): households' status and visits (their grid worker),
//!   stations added, moved and closed (planners), histories.
//! - `GET /api/me/to-visit` ([`worker`], with a store): a grid worker's own households in the
//!   order to visit them.
//! - Vector tiles ([`tiles`]): `/tiles/{layer}/{z}/{x}/{y}.mvt` and TileJSON `/tiles/{layer}.json`.
//! - Static: the viewer `web/` at `/`, MapLibre at `/vendor/maplibre-gl/`, glyphs at
//!   `/fonts/{fontstack}/{range}.pbf`.
//!
//! Who sees what ([`auth::Role`]): leaders and planners see every aggregate layer, and
//! households only as counts in groups of at least `k` on hexagonal cells; grid workers see the
//! households of their own grids as points with their details, and everything else as leaders
//! do. Every figure of every response goes through the viewer's [`View`] of the disclosure
//! policy ([`crate::privacy`]); plans and what-ifs run on the k-anonymous demand
//! ([`Planner`]), never on the households. Every household-level response is written to the
//! audit log first.
//!
//! What the first leader's or planner's requests would make from the whole data set (the
//! aggregate view, household cells, today's effective figures) is made before the server
//! answers ([`AppState::with_edits`]; [`World::prebuild`]), and made again in the background
//! after a station edit.
//!
//! Tiles and items pages that are the same for everyone who may see them are kept in memory
//! ([`cache`], bounded by entries and bytes) and forgotten at every edit (station edits, and
//! visits and needs, whose effective figures the admin layers and grids carry) and when the
//! day (UTC) turns; grid workers' households are never cached.
//!
//! # Bounded work
//! Every read of the world runs on a blocking thread (`blocking`), never on the async workers.
//! Plans and what-ifs go through `budget::expensive`: at most [`Limits::expensive_per_user`]
//! at once per user and [`Limits::expensive_total`] in all (429 with `Retry-After` beyond), each
//! under a time budget ([`Limits::plan_time`], [`Limits::scenario_time`]) that stops the work
//! (503), with their inputs checked against [`Limits::bounds`] (400/413 naming the bound).
//! Locks: plans and what-ifs hold none of the world's: a plan works on a snapshot of the
//! planner's engine, a what-if on its own copy of it ([`Planner`]). A station edit holds the
//! world's write lock only for the in-place update of the live engine (milliseconds at national
//! scale); the views and cells it forgets are dropped off the lock, and their background rebuild
//! gives up the cells it is making as soon as an edit waits for the world.

pub mod auth;
pub mod boxes;
pub mod budget;
pub mod cache;
pub mod edits;
pub mod effective;
pub mod error;
pub mod features;
pub mod geom;
pub mod ogc;
pub mod openapi;
pub mod plan;
pub mod tiles;
pub mod worker;
pub mod world;

pub use auth::{Role, RoleExt, User, Users};
pub use error::ApiError;
pub use world::{Planner, View, World};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;
use tower_http::timeout::TimeoutLayer;

/// Quiet time after a station edit before the world's views and cells are made again in the
/// background (a station edit forgets them: see [`World::prebuild`]).
pub const REBUILD_AFTER: Duration = Duration::from_secs(1);

/// Limits applied to every request.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, bytes.
    pub body_bytes: usize,
    /// Items per page when `limit` is not given.
    pub default_page: usize,
    /// Most items per page; a larger `limit` is capped to it.
    pub max_page: usize,
    /// Deepest tile zoom served.
    pub max_zoom: u8,
    /// Time a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Bytes of tiles kept in the cache.
    pub tile_cache_bytes: usize,
    /// Tiles kept in the cache at most.
    pub tile_cache_entries: usize,
    /// Bytes of items pages kept in the cache.
    pub page_cache_bytes: usize,
    /// Items pages kept in the cache at most.
    pub page_cache_entries: usize,
    /// Bounds on the inputs of plans and what-ifs (radius, K, capacity, pairs, H3 resolution,
    /// list lengths, stations to add and remove): the server's one place to tighten them.
    pub bounds: crate::plan::Bounds,
    /// Time budget of a plan: the work stops when it runs out, answered 503.
    pub plan_time: Duration,
    /// Time budget of a what-if (shorter: it holds the world's write lock).
    pub scenario_time: Duration,
    /// Plans and what-ifs one user may run at once (429 beyond).
    pub expensive_per_user: usize,
    /// Plans and what-ifs everyone together may run at once (429 beyond).
    pub expensive_total: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 1 << 20,
            default_page: 100,
            max_page: 1000,
            max_zoom: tiles::MAX_ZOOM,
            request_timeout: Duration::from_secs(30),
            tile_cache_bytes: 512 << 20,
            tile_cache_entries: 200_000,
            page_cache_bytes: 256 << 20,
            page_cache_entries: 20_000,
            bounds: crate::plan::Bounds::default(),
            plan_time: Duration::from_secs(20),
            scenario_time: Duration::from_secs(2),
            expensive_per_user: 2,
            expensive_total: 4,
        }
    }
}

/// Shared state of the server (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) world: RwLock<World>,
    pub(crate) planner: Planner,
    pub(crate) users: Arc<dyn Users>,
    pub(crate) auth_cache: auth::AuthCache,
    pub(crate) tiles: tiles::TileCache,
    pub(crate) pages: ogc::PageCache,
    pub(crate) limits: Limits,
    pub(crate) limiter: budget::Limiter,
    pub(crate) web_dir: Option<PathBuf>,
    pub(crate) edits: Option<edits::Edits>,
    pub(crate) service: effective::ServiceCache,
    /// The day (UTC) the cached tiles and pages are of: their effective figures are today's.
    pub(crate) day: std::sync::atomic::AtomicI32,
    /// Time the start's prebuild took: the world's views and cells and today's figures.
    prebuilt_in: std::sync::OnceLock<Duration>,
    /// The start's steps and their times ([`AppState::start_steps`]).
    start_steps: std::sync::Mutex<Vec<(&'static str, Duration)>>,
    /// Station edits that asked the world's views and cells to be made again
    /// ([`AppState::prebuild_later`]).
    rebuild_wanted: std::sync::atomic::AtomicU64,
    /// Held by the one thread making them again.
    rebuilding: std::sync::Mutex<()>,
    /// Station edits waiting for the world's write lock: the background rebuild gives up the
    /// piece it is making for them ([`AppState::prebuild_later`]).
    writers_waiting: std::sync::atomic::AtomicUsize,
}

impl AppState {
    /// State over an analysed world, its users, limits and the viewer folder (none: no static
    /// files).
    pub fn new(world: World, users: Arc<dyn Users>, limits: Limits, web_dir: Option<PathBuf>) -> Self {
        Self::with_edits(world, users, limits, web_dir, None)
    }

    /// As [`AppState::new`], with the store and live engine behind the edit endpoints
    /// ([`edits`]; without them those answer 501).
    pub fn with_edits(
        world: World,
        users: Arc<dyn Users>,
        limits: Limits,
        web_dir: Option<PathBuf>,
        edits: Option<edits::Edits>,
    ) -> Self {
        Self::with_records(world, users, limits, web_dir, edits, None)
    }

    /// As [`AppState::with_edits`], with the service records already read from the edits'
    /// store (`read`: the result of [`effective::read`] and its time), when the caller could
    /// read them earlier, beside its own work ([`edits::state_with_store`]). Without them,
    /// they are read here.
    pub(crate) fn with_records(
        world: World,
        users: Arc<dyn Users>,
        limits: Limits,
        web_dir: Option<PathBuf>,
        edits: Option<edits::Edits>,
        read: Option<effective::RecordsRead>,
    ) -> Self {
        let tiles = tiles::TileCache::new(limits.tile_cache_bytes, limits.tile_cache_entries);
        // The service records are read once, here (unless the caller read them), and then kept
        // up to date by the writes (a failure is retried on the first request that needs
        // them). Reading them is mostly SQLite's work on one thread: it runs beside the
        // planner's engine and the world's views and cells, which need neither the records nor
        // the store.
        let t = std::time::Instant::now();
        let read_before = read.is_some();
        let (planner, planner_in, views_in, records) = std::thread::scope(|s| {
            let records = edits.as_ref().filter(|_| read.is_none()).map(|e| {
                let (store, ids) = (&e.store, &world.ds().households.id);
                s.spawn(move || effective::timed_read(store, ids))
            });
            // The planner's engine and the views are made side by side too: each has parts on
            // one core (the planner's demand, the views' gap areas).
            let planner = s.spawn(|| {
                let t = std::time::Instant::now();
                (Planner::new(&world), t.elapsed())
            });
            let t = std::time::Instant::now();
            world.prebuild();
            let views_in = t.elapsed();
            let (planner, planner_in) = planner.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            let records = records.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).or(read);
            (planner, planner_in, views_in, records)
        });
        let beside_in = t.elapsed();
        let state = AppState {
            inner: Arc::new(Inner {
                world: RwLock::new(world),
                planner,
                users,
                auth_cache: auth::AuthCache::new(Duration::from_secs(30)),
                tiles,
                pages: ogc::PageCache::new(limits.page_cache_bytes, limits.page_cache_entries),
                limits,
                limiter: budget::Limiter::default(),
                web_dir,
                edits,
                service: effective::ServiceCache::default(),
                day: std::sync::atomic::AtomicI32::new(crate::model::service::today()),
                prebuilt_in: std::sync::OnceLock::new(),
                start_steps: std::sync::Mutex::new(Vec::new()),
                rebuild_wanted: std::sync::atomic::AtomicU64::new(0),
                rebuilding: std::sync::Mutex::new(()),
                writers_waiting: std::sync::atomic::AtomicUsize::new(0),
            }),
        };
        let mut records_in = Duration::ZERO;
        if let Some((read, took)) = records {
            records_in = took;
            match read {
                Ok(r) => {
                    effective::install(&state, r);
                }
                Err(e) => eprintln!("gridcover: the service records could not be read at start: {}", e.description),
            }
        }
        let t = std::time::Instant::now();
        state.prebuild_figures();
        let figures_in = t.elapsed();
        let _ = state.inner.prebuilt_in.set(views_in + figures_in);
        let planner_step = ("the planner's engine", planner_in);
        let views_step = ("the views and household cells", views_in);
        let figures_step = ("today's effective figures", figures_in);
        if read_before {
            state.add_start_steps(&[
                ("the service records (read beside the two above)", records_in),
                planner_step,
                views_step,
                ("the two above, side by side", beside_in),
                figures_step,
            ]);
        } else {
            state.add_start_steps(&[
                planner_step,
                views_step,
                ("the service records (beside the two above)", records_in),
                ("the three above, side by side", beside_in),
                figures_step,
            ]);
        }
        state
    }

    /// The steps of the start after the data set was read, in order, with their times (the
    /// live engine and the world, when [`edits::state_with_store`] made them, then the
    /// planner's engine and the world's views and cells, the service records read beside them
    /// (by [`edits::state_with_store`]: read beside the live engine and the world, and named
    /// after them),
    /// the three side by side, and today's effective figures).
    pub fn start_steps(&self) -> Vec<(&'static str, Duration)> {
        self.inner.start_steps.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Appends steps to [`AppState::start_steps`].
    pub(crate) fn add_start_steps(&self, steps: &[(&'static str, Duration)]) {
        self.inner.start_steps.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(steps);
    }

    /// Time the start's prebuild took: the world's views and cells ([`World::prebuild`]) and
    /// today's effective figures, made before the server answers.
    pub fn prebuilt_in(&self) -> Duration {
        self.inner.prebuilt_in.get().copied().unwrap_or_default()
    }

    /// After a station edit (which forgot the world's views and cells): makes them again on
    /// a background thread once no edit has come for [`REBUILD_AFTER`] (edits in a row do not
    /// wait for it), one piece (the aggregate view with its gap areas, then each resolution's
    /// cells) per read lock of the world. An edit that comes meanwhile waits for at most the
    /// aggregate view, not the cells: their making is given up as soon as an edit waits for
    /// the world ([`World::cells_unless`]; the finest resolution's take seconds at national
    /// scale). One thread at a time; an edit during its work makes it wait and go round again.
    /// A request that comes first makes what it needs itself, exactly as the thread would.
    pub(crate) fn prebuild_later(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.inner.rebuild_wanted.fetch_add(1, SeqCst);
        let s = self.clone();
        std::thread::spawn(move || loop {
            let Ok(guard) = s.inner.rebuilding.try_lock() else { return };
            let wanted = || s.inner.rebuild_wanted.load(SeqCst);
            let mut seen = wanted();
            loop {
                std::thread::sleep(REBUILD_AFTER);
                if wanted() == seen {
                    break;
                }
                seen = wanted();
            }
            let resolutions = {
                let w = s.world();
                w.aggregate_view().gaps(&w);
                w.cell_resolutions()
            };
            let edit_waits = || s.inner.writers_waiting.load(SeqCst) > 0;
            for r in resolutions {
                if wanted() != seen || edit_waits() {
                    break;
                }
                s.world().cells_unless(r, edit_waits);
            }
            drop(guard);
            if wanted() == seen {
                return;
            }
        });
    }

    /// Makes, before the server answers, today's effective figures with their aggregate
    /// decisions ([`effective::prebuild`]; with a store only), so that the first admin or grid
    /// tile or page does not make them. The world's views and cells ([`World::prebuild`]) are
    /// made before the state, beside the reading of the service records.
    fn prebuild_figures(&self) {
        if self.inner.edits.is_some() {
            if let Err(e) = effective::prebuild(self) {
                eprintln!("gridcover: today's effective figures could not be made at start: {}", e.description);
            }
        }
    }

    /// Read access to the world.
    pub fn world(&self) -> RwLockReadGuard<'_, World> {
        self.inner.world.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Write access to the world (station edits only: plans and what-ifs run on the
    /// planner's engine and never take it). Blocking: call it on a blocking thread.
    pub(crate) fn world_write(&self) -> RwLockWriteGuard<'_, World> {
        use std::sync::atomic::Ordering::SeqCst;
        self.inner.writers_waiting.fetch_add(1, SeqCst);
        let w = self.inner.world.write().unwrap_or_else(|e| e.into_inner());
        self.inner.writers_waiting.fetch_sub(1, SeqCst);
        w
    }

    /// The planner's engine (plans and what-ifs; station edits are applied to it too).
    pub fn planner(&self) -> &Planner {
        &self.inner.planner
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Bytes of tiles held in the cache.
    pub fn tile_cache_bytes(&self) -> usize {
        self.inner.tiles.bytes()
    }

    /// Entries in the cache of items pages.
    pub fn page_cache_len(&self) -> usize {
        self.inner.pages.len()
    }

    /// Tiles held in the cache.
    pub fn tile_cache_len(&self) -> usize {
        self.inner.tiles.len()
    }

    /// Plans and what-ifs running now (their work, which may outlive a request that timed out).
    pub fn expensive_running(&self) -> usize {
        self.inner.limiter.running()
    }

    /// A visit or a need was written (and the records in memory updated): forgets cached
    /// tiles and pages, whose effective figures it may change.
    pub(crate) fn service_written(&self) {
        self.inner.tiles.clear();
        self.inner.pages.clear();
    }

    /// Forgets cached tiles and pages made on an earlier day (UTC): their effective figures are
    /// of that day. Cheap: one atomic read when the day has not changed.
    pub(crate) fn roll_day(&self) {
        let today = crate::model::service::today();
        if self.inner.day.swap(today, std::sync::atomic::Ordering::SeqCst) != today {
            self.inner.tiles.clear();
            self.inner.pages.clear();
        }
    }

    /// Forgets cached tiles, pages and authentications (after a change of data or users).
    pub fn invalidate(&self) {
        self.inner.tiles.clear();
        self.inner.pages.clear();
        self.inner.auth_cache.clear();
    }
}

/// The whole HTTP API and the viewer's static files.
pub fn router(state: AppState) -> Router {
    let limits = state.inner.limits.clone();
    let mut r = Router::new()
        .route("/healthz", get(healthz))
        .merge(ogc::routes())
        .merge(tiles::routes())
        .merge(edits::routes())
        .merge(plan::routes())
        .merge(worker::routes());
    if let Some(web) = &state.inner.web_dir {
        r = r
            .nest_service("/vendor/maplibre-gl", ServeDir::new(web.join("node_modules/maplibre-gl/dist")))
            .nest_service("/fonts", ServeDir::new(web.join("fonts")))
            .fallback_service(ServeDir::new(web).append_index_html_on_directories(true));
    } else {
        r = r.fallback(|| async { ApiError::not_found("no such endpoint") });
    }
    r.with_state(state)
        .layer(RequestBodyLimitLayer::new(limits.body_bytes))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, limits.request_timeout))
        // Outermost: every response gets an `x-request-id`; a 500 is logged and made generic.
        .layer(axum::middleware::from_fn(error::request_id))
}

/// `GET /healthz`: touches no lock, store or cache, so it answers whatever else runs.
async fn healthz() -> &'static str {
    "ok"
}

/// The viewer folder: `web/` in the working directory, else beside the crate's sources.
pub fn default_web_dir() -> Option<PathBuf> {
    [PathBuf::from("web"), Path::new(env!("CARGO_MANIFEST_DIR")).join("web")].into_iter().find(|p| p.is_dir())
}

/// Serves `state` on `addr` until SIGTERM or Ctrl-C, then finishes the requests in flight.
/// Prints `listening on http://ADDR` on stdout once the socket is bound.
///
/// # Errors
/// The runtime cannot start, the address cannot be bound, or serving fails.
pub fn run(state: AppState, addr: SocketAddr) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        println!("listening on http://{local}");
        axum::serve(listener, router(state)).with_graceful_shutdown(shutdown_signal()).await?;
        eprintln!("gridcover: stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    // A handler that cannot be installed must not read as a Ctrl-C: the server keeps serving
    // (and stops on SIGTERM) instead of shutting down at once.
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Runs blocking work (a read of the world, a tile) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?
}
