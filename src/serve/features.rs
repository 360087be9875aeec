//! The feature collections of the API and what each user sees of them (pure over a
//! [`World`]).
//!
//! | id | features | `id` |
//! |---|---|---|
//! | `admin-province` … `admin-village` | admin units with their coverage figures (the columns of [`COVERAGE_COLUMNS`]) | the unit's code |
//! | `stations` | active stations | the station's id |
//! | `households` | grid workers: own grids' households as points with details; leaders and planners: counts in H3 cells of household groups ([`crate::privacy::Groups`]) | household id / cell's H3 index |
//! | `grids` | service grids with their workload | the grid's id |
//! | `gaps` | gap areas: villages with uncovered households, joined where they touch ([`crate::privacy::gap_areas()`](crate::privacy::gap_areas::gap_areas)) | the gap's rank |
//!
//! Admin units and grids carry, besides, the effective-coverage figures of today
//! ([`super::effective::LAYER_FIGURES`]: contacts and needs from the store) when the server has
//! a store; without one those properties are absent.
//!
//! Every figure goes through the viewer's [`View`] (the disclosure policy,
//! [`crate::privacy`]; for the effective figures the viewer's [`ServiceView`]): a withheld
//! figure is `null`, and `withheld: true` says that some figure of the record is.
//!
//! The `code` filter keeps records whose admin code starts with the given prefix (a unit's
//! own code; a station's or grid's unit; a household's finest unit; a cell's or gap's
//! unit). Filters only choose among the same records: they never change a figure.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::auth::{Role, RoleExt, User};
use super::effective::ServiceView;
use super::error::ApiError;
use super::geom::{multipolygon_json, point_json, Bbox};
use super::world::{ShownCell, ShownCells, View};
use super::World;
use crate::model::{Level, UnitIdx, NONE, NO_UNIT};
use crate::output::{coverage_fields, COVERAGE_COLUMNS};
use crate::store::{NamesAndAddresses, Store};

/// Where the names and addresses of a grid worker's households come from (personal data, shown
/// only on the household's own grid worker's pages): the store, when the server has one — its
/// data set then holds none ([`super::edits::state_with_store`]), and each page reads those of
/// its own rows, in one query — or else the data set's columns (a folder served without a
/// store).
#[derive(Clone, Copy)]
pub enum NameSource<'a> {
    /// The data set's `name` and `address` columns.
    Columns,
    /// The store's households.
    Store(&'a Store),
}

impl NameSource<'_> {
    /// The names and addresses of households `rows` (indexes in the world's data set): a
    /// page's, at most [`super::Limits::max_page`].
    ///
    /// # Errors
    /// A store error.
    pub fn names(self, w: &World, rows: &[u32]) -> Result<Names, ApiError> {
        match self {
            NameSource::Columns => Ok(Names(None)),
            NameSource::Store(store) => {
                let ids: Vec<&str> = rows.iter().map(|&h| &w.ds().households.id[h as usize]).collect();
                Ok(Names(Some(store.names_and_addresses(&ids)?)))
            }
        }
    }
}

impl super::AppState {
    /// Where this server's households' names and addresses come from: its store, if it has one.
    pub fn name_source(&self) -> NameSource<'_> {
        match &self.inner.edits {
            Some(e) => NameSource::Store(&e.store),
            None => NameSource::Columns,
        }
    }
}

/// The names and addresses of the households of one answer ([`NameSource::names`]).
pub struct Names(Option<NamesAndAddresses>);

impl Names {
    /// None read: for the collections without households' details (the data set's columns,
    /// if any, answer).
    pub const NONE: Names = Names(None);

    /// Household `h`'s name and address.
    pub fn get<'a>(&'a self, w: &'a World, h: u32) -> (Option<&'a str>, Option<&'a str>) {
        let hh = &w.ds().households;
        match &self.0 {
            None => (hh.name.get(h as usize), hh.address.get(h as usize)),
            Some(read) => read.get(&hh.id[h as usize]).map_or((None, None), |(n, a)| (n.as_deref(), a.as_deref())),
        }
    }
}

/// H3 resolution of the households' cells in the OGC API (edges of about 460 m).
pub const OGC_CELL_RESOLUTION: u8 = 8;

/// A collection of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collection {
    /// Admin units of one level.
    Admin(Level),
    /// Stations.
    Stations,
    /// Households (by role).
    Households,
    /// Service grids.
    Grids,
    /// Gap areas.
    Gaps,
}

impl Collection {
    /// Every collection, in the order listed.
    pub const ALL: [Collection; 9] = [
        Collection::Admin(Level::Province),
        Collection::Admin(Level::City),
        Collection::Admin(Level::County),
        Collection::Admin(Level::Township),
        Collection::Admin(Level::Village),
        Collection::Stations,
        Collection::Households,
        Collection::Grids,
        Collection::Gaps,
    ];

    /// The collection with this id.
    pub fn parse(id: &str) -> Option<Collection> {
        Collection::ALL.into_iter().find(|c| c.id() == id)
    }

    /// Its id in URLs.
    pub fn id(&self) -> String {
        match self {
            Collection::Admin(l) => format!("admin-{l}"),
            Collection::Stations => "stations".into(),
            Collection::Households => "households".into(),
            Collection::Grids => "grids".into(),
            Collection::Gaps => "gaps".into(),
        }
    }

    /// Title (Chinese, then English).
    pub fn title(&self) -> String {
        match self {
            Collection::Admin(l) => format!("{}级行政区覆盖 Coverage by {l}", l.zh()),
            Collection::Stations => "服务站 Stations".into(),
            Collection::Households => "退役军人户 Veteran households".into(),
            Collection::Grids => "网格 Service grids".into(),
            Collection::Gaps => "覆盖空白区 Gap areas".into(),
        }
    }

    /// Description.
    pub fn description(&self, role: Role) -> String {
        match self {
            Collection::Admin(l) => format!("Admin units of level {l} with their boundaries and coverage figures; id = the unit's statistical code. Filter `code` = code prefix."),
            Collection::Stations => "Active service stations of the five levels; id = the station's id.".into(),
            Collection::Households if role.sees_aggregates() => format!(
                "Households as counts in H3 cells of resolution {OGC_CELL_RESOLUTION}: groups of at least the policy's number of households (smaller cells merged into the coarser cell they share); id = the cell's H3 index.",
            ),
            Collection::Households => "The households of your own grids, with their details; id = the household's id.".into(),
            Collection::Grids => "Service grids (网格) with their worker and workload; id = the grid's id.".into(),
            Collection::Gaps => "Gap areas: villages and communities with households out of reach of every station (each with at least the policy's number), joined where they touch, ranked by uncovered veterans; id = the rank.".into(),
        }
    }
}

/// Filters of an items request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Keep features whose extent meets this box.
    pub bbox: Option<Bbox>,
    /// Keep features whose admin code starts with this.
    pub code: Option<String>,
}

impl Filter {
    /// Checks a `code` parameter: 1 to 12 digits.
    pub fn parse_code(s: &str) -> Result<String, String> {
        if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("code must be 1 to 12 digits (a prefix of an admin code), got {s:?}"));
        }
        Ok(s.to_string())
    }
}

/// The records of a collection a user sees under a filter.
pub enum Selection {
    /// Indexes of units, stations, households, grids or gaps.
    Rows(Vec<u32>),
    /// Indexes into the shown household cells.
    Cells(Arc<ShownCells>, Vec<u32>),
}

impl Selection {
    /// Number of records.
    pub fn len(&self) -> usize {
        match self {
            Selection::Rows(v) | Selection::Cells(_, v) => v.len(),
        }
    }

    /// True when none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn unit_code(w: &World, u: UnitIdx) -> Option<&str> {
    (u != NO_UNIT).then(|| w.ds().divisions.get(u).code.as_str())
}

/// True when the record passes the `code` filter; its code is looked up only if there is one.
fn code_ok<'a>(code: impl FnOnce() -> Option<&'a str>, f: &Filter) -> bool {
    match &f.code {
        None => true,
        Some(p) => code().is_some_and(|c| c.starts_with(p.as_str())),
    }
}

fn pt_ok(x: f64, y: f64, f: &Filter) -> bool {
    f.bbox.is_none_or(|b| b.contains(x, y))
}

fn box_ok(b: &Bbox, f: &Filter) -> bool {
    f.bbox.is_none_or(|q| q.intersects(b))
}

/// The households a grid worker may see: those of own grids, in household order.
pub fn own_households(w: &World, user: &User) -> Vec<u32> {
    let mut v: Vec<u32> =
        w.grid_indexes(&user.grids).into_iter().flat_map(|g| w.grid_households[g as usize].iter().copied()).collect();
    v.sort_unstable();
    v
}

/// What `user` (whose view is `view`) sees of collection `c` under `f`.
pub fn select(w: &World, view: &View, user: &User, c: Collection, f: &Filter) -> Selection {
    let ds = w.ds();
    match c {
        Collection::Admin(level) => {
            let code = |u: &u32| code_ok(|| Some(ds.divisions.get(*u).code.as_str()), f);
            Selection::Rows(match &f.bbox {
                // The units whose boundary's box meets it, from the level's index.
                Some(b) => w.area_index[level.index()].query(b).into_iter().filter(code).collect(),
                None => ds.divisions.at_level(level).filter(code).collect(),
            })
        }
        Collection::Stations => Selection::Rows(
            (0..ds.stations.len() as u32)
                .filter(|&s| ds.stations.active[s as usize])
                .filter(|&s| code_ok(|| unit_code(w, ds.stations.unit[s as usize]), f))
                .filter(|&s| pt_ok(ds.stations.lon[s as usize], ds.stations.lat[s as usize], f))
                .collect(),
        ),
        Collection::Grids => {
            let code = |g: &u32| code_ok(|| ds.grids.unit[*g as usize].and_then(|u| unit_code(w, u)), f);
            Selection::Rows(match &f.bbox {
                Some(b) => w.grid_index.query(b).into_iter().filter(code).collect(),
                None => (0..ds.grids.len() as u32).filter(code).collect(),
            })
        }
        Collection::Gaps => {
            let gaps = view.gaps(w);
            Selection::Rows(
                (0..gaps.len() as u32)
                    .filter(|&g| code_ok(|| gap_unit(w, view, g).and_then(|u| unit_code(w, u)), f))
                    .filter(|&g| box_ok(&view.gap_bbox(w)[g as usize], f))
                    .collect(),
            )
        }
        Collection::Households if user.role.sees_aggregates() => {
            let cells = w.cells(OGC_CELL_RESOLUTION);
            let code = |i: &u32| code_ok(|| unit_code(w, cells[*i as usize].unit), f);
            let idx = match &f.bbox {
                Some(b) => cells.meeting(b).into_iter().filter(code).collect(),
                None => (0..cells.len() as u32).filter(code).collect(),
            };
            Selection::Cells(cells, idx)
        }
        Collection::Households => Selection::Rows(
            own_households(w, user)
                .into_iter()
                .filter(|&h| code_ok(|| unit_code(w, w.an().assignment.unit[h as usize]), f))
                .filter(|&h| pt_ok(ds.households.lon[h as usize], ds.households.lat[h as usize], f))
                .collect(),
        ),
    }
}

fn gap_unit(w: &World, view: &View, g: u32) -> Option<UnitIdx> {
    view.gaps(w)[g as usize].codes.iter().rev().copied().find(|&u| u != NO_UNIT)
}

fn feature(id: Value, geometry: Option<String>, props: Map<String, Value>) -> String {
    let mut s = String::with_capacity(256);
    s.push_str(r#"{"type":"Feature","id":"#);
    s.push_str(&id.to_string());
    s.push_str(r#","geometry":"#);
    s.push_str(geometry.as_deref().unwrap_or("null"));
    s.push_str(r#","properties":"#);
    s.push_str(&Value::Object(props).to_string());
    s.push('}');
    s
}

fn f64_or_null(x: f64) -> Value {
    serde_json::Number::from_f64(x).map(Value::Number).unwrap_or(Value::Null)
}

/// The coverage properties of a unit as `view` may see them, typed (numbers as numbers,
/// empty and withheld as null; `withheld` true when some figure is), and its effective
/// figures of today as `svc` decides them (left out without `svc`: a server without a store).
pub fn admin_properties(w: &World, view: &View, svc: Option<&ServiceView>, u: UnitIdx) -> Map<String, Value> {
    let fields = coverage_fields(w.ds(), w.an(), u);
    let mut m = Map::new();
    for (k, v) in COVERAGE_COLUMNS.iter().zip(fields) {
        let shown = if view.disclosure.unit_column(k, u) { v.to_json() } else { Value::Null };
        m.insert(k.to_string(), shown);
    }
    let a = w.area_of_unit[u as usize];
    m.insert("derived_boundary".into(), Value::Bool(a != NONE && w.ds().boundaries.areas[a as usize].derived));
    let service_withheld = svc.is_some_and(|v| v.unit_properties(u, &mut m));
    m.insert("withheld".into(), Value::Bool(view.disclosure.unit_withholds(u) || service_withheld));
    m
}

/// Station properties.
pub fn station_properties(w: &World, s: u32) -> Map<String, Value> {
    let st = &w.ds().stations;
    let i = s as usize;
    let mut m = Map::new();
    m.insert("id".into(), json!(st.id[i]));
    m.insert("name".into(), json!(st.name[i]));
    m.insert("level".into(), json!(st.level[i].as_str()));
    m.insert("code".into(), json!(unit_code(w, st.unit[i])));
    m.insert("demonstration".into(), json!(st.demonstration[i]));
    m.insert("mobile".into(), json!(st.mobile[i]));
    m.insert("radius_m".into(), f64_or_null(st.radius_of(s, &w.ds().standard)));
    m
}

/// Grid properties as `view` may see them (household figures null when withheld), with the
/// effective figures of today as `svc` decides them (left out without `svc`).
pub fn grid_properties(w: &World, view: &View, svc: Option<&ServiceView>, g: u32) -> Map<String, Value> {
    let gr = &w.ds().grids;
    let i = g as usize;
    let mut m = Map::new();
    m.insert("id".into(), json!(gr.id[i]));
    m.insert("worker".into(), json!(gr.worker[i]));
    m.insert("code".into(), json!(gr.unit[i].and_then(|u| unit_code(w, u))));
    let shown = view.disclosure.grid(g);
    if let Some(l) = w.an().workload.get(i) {
        let or_null = |v: Value| if shown { v } else { Value::Null };
        m.insert("households".into(), or_null(json!(l.households)));
        m.insert("veterans".into(), or_null(json!(l.veterans)));
        m.insert("over_cap".into(), or_null(json!(l.over_cap)));
        m.insert("worker_grids".into(), json!(l.worker_grids));
    }
    let service_withheld = svc.is_some_and(|v| v.grid_properties(g, &mut m));
    m.insert("withheld".into(), Value::Bool(!shown || service_withheld));
    m
}

/// Gap properties.
pub fn gap_properties(w: &World, view: &View, g: u32) -> Map<String, Value> {
    let gap = &view.gaps(w)[g as usize];
    let mut m = Map::new();
    m.insert("rank".into(), json!(gap.rank));
    m.insert("households".into(), json!(gap.households));
    m.insert("veterans".into(), json!(gap.veterans));
    m.insert("centroid_lon".into(), f64_or_null(gap.centre.0));
    m.insert("centroid_lat".into(), f64_or_null(gap.centre.1));
    for l in Level::ALL {
        m.insert(format!("{l}_code"), json!(unit_code(w, gap.codes[l.index()])));
    }
    let villages: Vec<&str> = gap.units.iter().map(|&u| w.ds().divisions.get(u).code.as_str()).collect();
    m.insert("villages".into(), json!(villages));
    match gap.nearest_station {
        Some((s, d)) => {
            m.insert("nearest_station".into(), json!(w.ds().stations.id[s as usize]));
            m.insert("nearest_station_m".into(), f64_or_null(d.round()));
        }
        None => {
            m.insert("nearest_station".into(), Value::Null);
            m.insert("nearest_station_m".into(), Value::Null);
        }
    }
    m
}

/// Household properties (personal data: for the household's own grid worker only), with its
/// name and address from `names`.
pub fn household_properties(w: &World, names: &Names, h: u32) -> Map<String, Value> {
    let hh = &w.ds().households;
    let a = &w.an().assignment;
    let i = h as usize;
    let mut m = Map::new();
    m.insert("id".into(), json!(hh.id[i]));
    let g = a.grid[i];
    m.insert("grid_id".into(), if g == NONE { Value::Null } else { json!(w.ds().grids.id[g as usize]) });
    let chain = if a.unit[i] == NO_UNIT { [NO_UNIT; 5] } else { w.ds().divisions.chain(a.unit[i]) };
    for l in Level::ALL {
        m.insert(format!("{l}_code"), json!(unit_code(w, chain[l.index()])));
    }
    m.insert("veterans".into(), json!(hh.veterans[i]));
    m.insert("difficulty".into(), json!(hh.difficulty[i]));
    m.insert("martyr_family".into(), json!(hh.martyr_family[i]));
    let (name, address) = names.get(w, h);
    m.insert("name".into(), json!(name));
    m.insert("address".into(), json!(address));
    let (status, version) = w.statuses.get(&h).map_or((json!({}), 1), |(s, v)| (s.clone(), *v));
    m.insert("status".into(), status);
    m.insert("version".into(), json!(version));
    m.insert("covered".into(), json!(a.covered[i] != 0));
    let (mut best, mut best_m) = (NONE, f32::NAN);
    for l in 0..5 {
        let d = a.nearest_m[l][i];
        if d.is_finite() && (best_m.is_nan() || d < best_m) {
            best = a.nearest[l][i];
            best_m = d;
        }
    }
    m.insert(
        "nearest_station".into(),
        if best == NONE { Value::Null } else { json!(w.ds().stations.id[best as usize]) },
    );
    m.insert("nearest_station_m".into(), f64_or_null(f64::from(best_m).round()));
    m
}

/// The properties of a shown household cell.
pub fn cell_properties(c: &ShownCell) -> Map<String, Value> {
    let f = c.figures();
    let mut m = Map::new();
    m.insert("households".into(), json!(f.households));
    m.insert("veterans".into(), json!(f.veterans));
    m.insert("covered_households".into(), json!(f.covered_households));
    m.insert("covered_veterans".into(), json!(f.covered_veterans));
    m.insert("resolution".into(), json!(u8::from(c.key.resolution())));
    m.insert("withheld".into(), Value::Bool(f.covered_households.is_none()));
    m
}

/// The GeoJSON Feature text of record `i` of a selection, as `view` may see it.
/// `svc`: the effective figures of today (admin units and grids; None leaves them out);
/// `names`: the households' names and addresses (a grid worker's households; else
/// [`Names::NONE`]).
pub fn feature_json(
    w: &World,
    view: &View,
    svc: Option<&ServiceView>,
    names: &Names,
    c: Collection,
    sel: &Selection,
    i: u32,
) -> String {
    match (c, sel) {
        (_, Selection::Cells(cells, _)) => {
            let cell = &cells[i as usize];
            let shape = geo::MultiPolygon(vec![crate::privacy::cell_polygon(cell.key)]);
            feature(json!(cell.key.to_string()), Some(multipolygon_json(&shape)), cell_properties(cell))
        }
        (Collection::Admin(_), _) => {
            let a = w.area_of_unit[i as usize];
            let geom = (a != NONE).then(|| multipolygon_json(&w.ds().boundaries.areas[a as usize].geometry));
            feature(json!(w.ds().divisions.get(i).code), geom, admin_properties(w, view, svc, i))
        }
        (Collection::Stations, _) => {
            let st = &w.ds().stations;
            let g = point_json(st.lon[i as usize], st.lat[i as usize]);
            feature(json!(st.id[i as usize]), Some(g), station_properties(w, i))
        }
        (Collection::Grids, _) => feature(
            json!(w.ds().grids.id[i as usize]),
            Some(multipolygon_json(&w.ds().grids.geometry[i as usize])),
            grid_properties(w, view, svc, i),
        ),
        (Collection::Gaps, _) => {
            let gap = &view.gaps(w)[i as usize];
            feature(json!(gap.rank), Some(multipolygon_json(&gap.shape)), gap_properties(w, view, i))
        }
        (Collection::Households, _) => {
            let hh = &w.ds().households;
            feature(
                json!(hh.id[i as usize]),
                Some(point_json(hh.lon[i as usize], hh.lat[i as usize])),
                household_properties(w, names, i),
            )
        }
    }
}

/// One feature by its id, as `user` (whose view is `view`) may see it; a household's name and
/// address from `names`.
pub fn find(
    w: &World,
    view: &View,
    svc: Option<&ServiceView>,
    names: NameSource<'_>,
    user: &User,
    c: Collection,
    fid: &str,
) -> Result<String, ApiError> {
    let nf = || ApiError::not_found(format!("no feature {fid:?} in collection {}", c.id()));
    let ds = w.ds();
    let one = |i: u32| Selection::Rows(vec![i]);
    match c {
        Collection::Admin(level) => {
            let u = ds.divisions.find(fid).filter(|&u| ds.divisions.get(u).level == level).ok_or_else(nf)?;
            Ok(feature_json(w, view, svc, &Names::NONE, c, &one(u), u))
        }
        Collection::Stations => {
            let s = *w.station_index(fid).as_ref().ok_or_else(nf)?;
            if !ds.stations.active[s as usize] {
                return Err(nf());
            }
            Ok(feature_json(w, view, svc, &Names::NONE, c, &one(s), s))
        }
        Collection::Grids => {
            let g = *w.grid_by_id.get(fid).ok_or_else(nf)?;
            Ok(feature_json(w, view, svc, &Names::NONE, c, &one(g), g))
        }
        Collection::Gaps => {
            let rank: u32 = fid.parse().map_err(|_| nf())?;
            let g = view.gaps(w).iter().position(|g| g.rank == rank).ok_or_else(nf)? as u32;
            Ok(feature_json(w, view, svc, &Names::NONE, c, &one(g), g))
        }
        Collection::Households if user.role.sees_aggregates() => {
            let cells = w.cells(OGC_CELL_RESOLUTION);
            match cells.find(fid) {
                Some(i) => Ok(feature_json(
                    w,
                    view,
                    svc,
                    &Names::NONE,
                    c,
                    &Selection::Cells(cells.clone(), vec![i as u32]),
                    i as u32,
                )),
                None if fid.parse::<h3o::CellIndex>().is_ok() => Err(nf()),
                None => Err(ApiError::forbidden(
                    "leaders and planners see households only as counts in cells, never one household",
                )),
            }
        }
        Collection::Households => {
            // Only the worker's own households are searched: another grid's household is
            // answered exactly as one that does not exist.
            let h =
                own_households(w, user).into_iter().find(|&h| ds.households.id[h as usize] == *fid).ok_or_else(nf)?;
            Ok(feature_json(w, view, svc, &names.names(w, &[h])?, c, &one(h), h))
        }
    }
}
