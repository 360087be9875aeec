//! Vector tiles (Mapbox Vector Tile 2.1, extent 4096, 64-unit buffer) and their TileJSON.
//!
//! `GET /tiles/{layer}/{z}/{x}/{y}.mvt` (XYZ scheme, y from the north) and
//! `GET /tiles/{layer}.json` (TileJSON 3.0). One tileset per layer, each holding one MVT layer
//! of the same name:
//!
//! | layer | features | zooms |
//! |---|---|---|
//! | `admin-province`, `admin-city`, `admin-county` | unit polygons with coverage figures | 0–16 |
//! | `admin-township` | 〃 | 6–16 |
//! | `admin-village` | 〃 | 8–16 |
//! | `stations` | points; province–county stations from zoom 0, township from 5, village from 8 | 0–16 |
//! | `grids` | grid polygons with workload | 9–16 |
//! | `gaps` | gap areas (villages with uncovered households, joined) | 0–16 |
//! | `households` | leaders/planners: H3 cells of household groups with counts (resolution by zoom, [`resolution_for_zoom`]); grid workers: own households as points | 0–16 |
//!
//! Every figure goes through the viewer's [`View`] (the disclosure policy,
//! [`crate::privacy`]): a withheld figure is left out of the feature's tags and `withheld` is
//! true. Household cells at every zoom are sums of the same groups of at least `k`, drawn as
//! their H3 hexagon.
//!
//! A tile looks only at the records whose box meets it: the admin units of its level, the
//! grids and the household cells of its resolution come from the world's prebuilt indexes
//! ([`World`]'s, [`super::boxes::BoxIndex`]); stations and gap areas are tested one by one.
//!
//! Polygons are simplified in tile space (Douglas–Peucker, half a screen pixel at 512-pixel
//! tiles) and clipped to the tile plus its buffer, so that every zoom stays light. A zoom
//! below a layer's minimum gets an empty tile; beyond [`MAX_ZOOM`] or outside the pyramid, a
//! 400. Tiles are cached in memory (by layer and tile), except grid workers' household tiles,
//! which are made per user and audited. A tile that fails to encode ([`TileError`]) is a 500,
//! logged with its request id, never an empty tile.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use mvt::{GeomEncoder, GeomType, Tile};
use serde_json::{json, Value};

use super::auth::{Auth, RoleExt, User};
use super::effective::{layer_view, ServiceView, LAYER_FIGURES};
use super::error::ApiError;
use super::features::own_households;
use super::geom::{tile_polygon, Bbox, TileId};
use super::world::View;
use super::{blocking, AppState, World};
use crate::model::{Level, NONE};

/// Deepest zoom served.
pub const MAX_ZOOM: u8 = 16;
/// Tile extent (units across a tile).
pub const EXTENT: u32 = 4096;
/// Buffer around a tile, in tile units.
pub const BUFFER: u32 = 64;
/// Simplification tolerance, tile units (half a pixel of a 512-pixel tile).
pub const SIMPLIFY: f64 = 4.0;
/// Media type of a vector tile.
pub const MVT: &str = "application/vnd.mapbox-vector-tile";

/// A tileset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Admin units of a level.
    Admin(Level),
    /// Stations.
    Stations,
    /// Grids.
    Grids,
    /// Gap areas.
    Gaps,
    /// Households (cells or own points, by role).
    Households,
}

impl Layer {
    /// Every layer.
    pub const ALL: [Layer; 9] = [
        Layer::Admin(Level::Province),
        Layer::Admin(Level::City),
        Layer::Admin(Level::County),
        Layer::Admin(Level::Township),
        Layer::Admin(Level::Village),
        Layer::Stations,
        Layer::Grids,
        Layer::Gaps,
        Layer::Households,
    ];

    /// Its name (in URLs and as the MVT layer's name).
    pub fn name(&self) -> String {
        match self {
            Layer::Admin(l) => format!("admin-{l}"),
            Layer::Stations => "stations".into(),
            Layer::Grids => "grids".into(),
            Layer::Gaps => "gaps".into(),
            Layer::Households => "households".into(),
        }
    }

    /// The layer of this name.
    pub fn parse(s: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.name() == s)
    }

    /// Lowest zoom with features.
    pub fn min_zoom(&self) -> u8 {
        match self {
            Layer::Admin(Level::Township) => 6,
            Layer::Admin(Level::Village) => 8,
            Layer::Grids => 9,
            _ => 0,
        }
    }

    fn fields(&self, aggregate: bool) -> Value {
        let mut v = self.own_fields(aggregate);
        if let (Layer::Admin(_) | Layer::Grids, Some(m)) = (self, v.as_object_mut()) {
            for k in LAYER_FIGURES {
                m.insert(k.into(), json!("Number"));
            }
        }
        v
    }

    fn own_fields(&self, aggregate: bool) -> Value {
        match self {
            Layer::Admin(_) => json!({
                "code": "String", "name": "String", "parent_code": "String", "households": "Number",
                "veterans": "Number", "covered_veterans": "Number", "uncovered_veterans": "Number",
                "coverage_share": "Number", "hardship_coverage_share": "Number", "stations": "Number",
                "own_stations": "Number", "nearest_median_m": "Number", "townships_without_station": "Number",
                "villages_without_station": "Number", "rules_ok": "Boolean", "withheld": "Boolean"
            }),
            Layer::Stations => json!({
                "id": "String", "name": "String", "level": "String", "code": "String",
                "demonstration": "Boolean", "mobile": "Boolean", "radius_m": "Number"
            }),
            Layer::Grids => json!({
                "id": "String", "worker": "String", "code": "String", "households": "Number",
                "veterans": "Number", "over_cap": "Boolean", "withheld": "Boolean"
            }),
            Layer::Gaps => json!({ "rank": "Number", "households": "Number", "veterans": "Number" }),
            Layer::Households if aggregate => json!({
                "households": "Number", "veterans": "Number", "covered_households": "Number",
                "covered_veterans": "Number", "uncovered_veterans": "Number", "resolution": "Number", "withheld": "Boolean"
            }),
            Layer::Households => json!({
                "id": "String", "grid_id": "String", "veterans": "Number", "difficulty": "Boolean",
                "martyr_family": "Boolean", "covered": "Boolean"
            }),
        }
    }

    /// True when the tiles differ per user (grid workers' households): never cached.
    pub fn per_user(&self, user: &User) -> bool {
        *self == Layer::Households && !user.role.sees_aggregates()
    }
}

/// A vector tile that could not be encoded. Not expected with the served data (every
/// geometry is clipped to the tile and its buffer, the layer is the tile's own): a bug,
/// answered 500 and never as an empty tile.
#[derive(Debug, thiserror::Error)]
#[error("the {} tile {}/{}/{} could not be encoded: {source}", .layer.name(), .tile.z, .tile.x, .tile.y)]
pub struct TileError {
    /// The tileset.
    pub layer: Layer,
    /// The tile.
    pub tile: TileId,
    /// The encoder's error.
    #[source]
    pub source: mvt::Error,
}

/// Encoded tiles by viewer (`None` for leaders and planners, a grid worker's grids), layer and
/// tile.
pub type TileCache = super::cache::ByteCache<(Option<Vec<String>>, Layer, TileId)>;

/// H3 resolution of the household cells drawn at a tile zoom (cells of roughly 10 to 30
/// screen pixels), never finer than the policy's (`finest`).
pub fn resolution_for_zoom(z: u8, finest: u8) -> u8 {
    let r = match z {
        0..=3 => 2,
        4 => 3,
        5..=6 => 4,
        7 => 5,
        8..=9 => 6,
        10 => 7,
        11..=12 => 8,
        _ => 9,
    };
    r.min(finest)
}

/// The tile routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/tiles/{file}", get(tilejson)).route("/tiles/{layer}/{z}/{x}/{file}", get(tile))
}

/// Parses `{z}/{x}/{y}.mvt` (or `.pbf`) against the served zoom range.
pub fn parse_tile(z: &str, x: &str, file: &str, max_zoom: u8) -> Result<TileId, ApiError> {
    let y = file
        .strip_suffix(".mvt")
        .or_else(|| file.strip_suffix(".pbf"))
        .ok_or_else(|| ApiError::bad_request(format!("tile {file:?}: the name must be {{y}}.mvt")))?;
    let num = |s: &str, what: &str| -> Result<u32, ApiError> {
        if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::bad_request(format!("tile {what} {s:?} is not a non-negative integer")));
        }
        s.parse::<u32>().map_err(|_| ApiError::bad_request(format!("tile {what} {s:?} is too large")))
    };
    let zz = num(z, "zoom")?;
    if zz > u32::from(max_zoom) {
        return Err(ApiError::bad_request(format!(
            "zoom {zz} is out of range: tiles are served for zooms 0 to {max_zoom}"
        )));
    }
    TileId::new(zz as u8, num(x, "column")?, num(y, "row")?).map_err(ApiError::bad_request)
}

fn no_query(q: Result<Query<Vec<(String, String)>>, QueryRejection>) -> Result<(), ApiError> {
    let Query(v) = q.map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
    if let Some((k, _)) = v.first() {
        return Err(ApiError::bad_request(format!("unknown parameter {k:?}: tiles take no parameters")));
    }
    Ok(())
}

fn parse_layer(s: &str) -> Result<Layer, ApiError> {
    Layer::parse(s).ok_or_else(|| {
        let names: Vec<String> = Layer::ALL.iter().map(|l| l.name()).collect();
        ApiError::not_found(format!("no tile layer {s:?} (layers: {})", names.join(", ")))
    })
}

async fn tile(
    State(s): State<AppState>,
    Auth(u): Auth,
    Path((layer, z, x, file)): Path<(String, String, String, String)>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    no_query(q)?;
    let layer = parse_layer(&layer)?;
    let t = parse_tile(&z, &x, &file, s.limits().max_zoom)?;
    let body = if layer.per_user(&u) {
        blocking(move || {
            let w = s.world();
            let (bytes, ids) = render_own_households(&w, &u, t)?;
            if !ids.is_empty() {
                s.audit(&u, "households.tile", &format!("{}/{}/{}: {}", t.z, t.x, t.y, ids.join(",")))?;
            }
            Ok(Bytes::from(bytes))
        })
        .await?
    } else {
        let key = ((!u.role.sees_aggregates()).then(|| u.grids.clone()), layer, t);
        s.roll_day();
        if let Some(b) = s.inner.tiles.get(&key) {
            b
        } else {
            let generation = s.inner.tiles.generation();
            blocking(move || {
                // The effective figures of today, for the layers that carry them (before the
                // world's lock: they take it themselves).
                let svc = match layer {
                    Layer::Admin(_) | Layer::Grids => layer_view(&s, &u)?,
                    _ => None,
                };
                let w = s.world();
                let b = Bytes::from(render(&w, &w.view(&u), svc.as_ref(), layer, t)?);
                s.inner.tiles.put(key, b.clone(), generation);
                Ok(b)
            })
            .await?
        }
    };
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(MVT));
    Ok(r)
}

async fn tilejson(
    State(s): State<AppState>,
    Auth(u): Auth,
    Path(file): Path<String>,
    h: HeaderMap,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    no_query(q)?;
    let name = file
        .strip_suffix(".json")
        .ok_or_else(|| ApiError::not_found(format!("no {file:?}: TileJSON is at /tiles/{{layer}}.json")))?;
    let layer = parse_layer(name)?;
    let base = format!("{}/tiles", super::ogc::base_url(&h));
    let v = blocking(move || {
        let w = s.world();
        Ok(tilejson_value(&w, layer, &base, s.limits().max_zoom, u.role.sees_aggregates()))
    })
    .await?;
    let mut r = v.to_string().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

/// The TileJSON of a layer whose tiles are under `base` (`{base}/{layer}/{z}/{x}/{y}.mvt`).
pub fn tilejson_value(w: &World, layer: Layer, base: &str, max_zoom: u8, aggregate: bool) -> Value {
    let e = w.extent;
    let name = layer.name();
    let bounds = if e.is_empty() { vec![-180.0, -85.0, 180.0, 85.0] } else { e.to_array().to_vec() };
    let center = [(bounds[0] + bounds[2]) / 2.0, (bounds[1] + bounds[3]) / 2.0, 5.0];
    json!({
        "tilejson": "3.0.0",
        "name": name,
        "scheme": "xyz",
        "tiles": [format!("{base}/{name}/{{z}}/{{x}}/{{y}}.mvt")],
        "minzoom": 0,
        "maxzoom": max_zoom,
        "bounds": bounds,
        "center": center,
        "vector_layers": [{ "id": name, "fields": layer.fields(aggregate), "minzoom": layer.min_zoom(), "maxzoom": max_zoom }],
    })
}

/// The polygons' geometry; `None` when no ring is left.
fn encode_polygons(rings_of: &[Vec<Vec<(i32, i32)>>]) -> Result<Option<mvt::GeomData>, mvt::Error> {
    let mut enc = GeomEncoder::<f64>::new(GeomType::Polygon);
    let mut last: Option<(i32, i32)> = None;
    let mut any = false;
    for poly in rings_of {
        for ring in poly {
            let mut r = ring.clone();
            // The encoder merges a ring's first point into the previous ring's last when
            // equal; start the ring elsewhere so each ring keeps its MoveTo.
            if last == Some(r[0]) {
                r.rotate_left(1);
            }
            for &(x, y) in &r {
                enc.add_point(f64::from(x), f64::from(y))?;
            }
            enc.complete_geom()?;
            last = r.last().copied();
            any = true;
        }
    }
    if !any {
        return Ok(None);
    }
    enc.encode().map(Some)
}

fn multipolygon_rings(t: &TileId, m: &geo::MultiPolygon<f64>) -> Vec<Vec<Vec<(i32, i32)>>> {
    m.0.iter().map(|p| tile_polygon(t, EXTENT, BUFFER, SIMPLIFY, p)).filter(|r| !r.is_empty()).collect()
}

enum Tag {
    S(String),
    F(f64),
    I(i64),
    B(bool),
}

/// An effective figure as a tag: counts as integers, shares and days as numbers.
fn figure_tag((k, x): (&'static str, f64)) -> (&'static str, Tag) {
    if k.ends_with("_households") || k == "open_needs" {
        (k, Tag::I(x as i64))
    } else {
        (k, Tag::F(x))
    }
}

fn add_feature(layer: mvt::Layer, geom: mvt::GeomData, id: Option<u64>, tags: Vec<(&str, Tag)>) -> mvt::Layer {
    let mut f = layer.into_feature(geom);
    if let Some(id) = id {
        f.set_id(id);
    }
    for (k, v) in tags {
        match v {
            Tag::S(s) => f.add_tag_string(k, &s),
            Tag::F(x) if x.is_finite() => f.add_tag_double(k, x),
            Tag::F(_) => {}
            Tag::I(i) => f.add_tag_sint(k, i),
            Tag::B(b) => f.add_tag_bool(k, b),
        }
    }
    f.into_layer()
}

/// The tile's bytes: none when the layer has no feature.
fn finish(tile: Tile, layer: mvt::Layer) -> Result<Vec<u8>, mvt::Error> {
    let mut tile = tile;
    if layer.num_features() == 0 {
        return Ok(Vec::new());
    }
    tile.add_layer(layer)?;
    tile.to_bytes()
}

fn share(x: i64, of: i64) -> f64 {
    if of == 0 {
        f64::NAN
    } else {
        x as f64 / of as f64
    }
}

/// The tile of an aggregate layer as `view` may see it (the same for every user of that
/// view). Empty (no bytes) when nothing lies in it.
///
/// # Errors
/// The tile fails to encode.
pub fn render(
    w: &World,
    view: &View,
    svc: Option<&ServiceView>,
    layer: Layer,
    t: TileId,
) -> Result<Vec<u8>, TileError> {
    render_layer(w, view, svc, layer, t).map_err(|source| TileError { layer, tile: t, source })
}

fn render_layer(
    w: &World,
    view: &View,
    svc: Option<&ServiceView>,
    layer: Layer,
    t: TileId,
) -> Result<Vec<u8>, mvt::Error> {
    let tile = Tile::new(EXTENT);
    let lay = tile.create_layer(&layer.name());
    if t.z < layer.min_zoom() {
        return Ok(Vec::new());
    }
    let bb = t.bbox_buffered(EXTENT, BUFFER);
    let lay = match layer {
        Layer::Admin(level) => admin_features(w, view, svc, level, t, &bb, lay)?,
        Layer::Stations => station_features(w, t, &bb, lay)?,
        Layer::Grids => grid_features(w, view, svc, t, &bb, lay)?,
        Layer::Gaps => gap_features(w, view, t, &bb, lay)?,
        Layer::Households => cell_features(w, t, &bb, lay)?,
    };
    finish(tile, lay)
}

/// The admin units of `level` in the tile, with the coverage figures `view` may see.
fn admin_features(
    w: &World,
    view: &View,
    svc: Option<&ServiceView>,
    level: Level,
    t: TileId,
    bb: &Bbox,
    mut lay: mvt::Layer,
) -> Result<mvt::Layer, mvt::Error> {
    let ds = w.ds();
    // The level's units whose boundary's box meets the tile, from the prebuilt index.
    for u in w.area_index[level.index()].query(bb) {
        let a = w.area_of_unit[u as usize];
        let rings = multipolygon_rings(&t, &ds.boundaries.areas[a as usize].geometry);
        let Some(g) = encode_polygons(&rings)? else { continue };
        let d = ds.divisions.get(u);
        let c = &w.an().coverage.units[u as usize];
        let tags = vec![
            ("code", Tag::S(d.code.clone())),
            ("name", Tag::S(d.name.clone())),
            ("parent_code", Tag::S(d.parent.map(|p| ds.divisions.get(p).code.clone()).unwrap_or_default())),
            ("households", Tag::I(c.households)),
            ("veterans", Tag::I(c.veterans)),
            ("covered_veterans", Tag::I(c.covered_veterans)),
            ("uncovered_veterans", Tag::I(c.veterans - c.covered_veterans)),
            ("coverage_share", Tag::F(c.coverage_share())),
            ("hardship_coverage_share", Tag::F(share(c.hardship_covered_veterans, c.hardship_veterans))),
            ("stations", Tag::I(c.stations.iter().sum())),
            ("own_stations", Tag::I(c.own_stations)),
            ("nearest_median_m", Tag::F(f64::from(c.nearest_median_m).round())),
            ("townships_without_station", Tag::I(c.townships_without_station)),
            ("villages_without_station", Tag::I(c.villages_without_station)),
            ("rules_ok", Tag::B(c.rules_ok())),
        ];
        let mut tags: Vec<(&str, Tag)> = tags.into_iter().filter(|(k, _)| view.disclosure.unit_column(k, u)).collect();
        let (figures, service_withheld) = svc.map(|v| v.unit_figures(u)).unwrap_or_default();
        tags.extend(figures.into_iter().map(figure_tag));
        tags.push(("withheld", Tag::B(view.disclosure.unit_withholds(u) || service_withheld)));
        lay = add_feature(lay, g, d.code.parse().ok(), tags);
    }

    Ok(lay)
}

/// The active stations in the tile, the deeper levels from deeper zooms.
fn station_features(w: &World, t: TileId, bb: &Bbox, mut lay: mvt::Layer) -> Result<mvt::Layer, mvt::Error> {
    let ds = w.ds();
    let st = &ds.stations;
    let deepest = match t.z {
        0..=4 => Level::County,
        5..=7 => Level::Township,
        _ => Level::Village,
    };
    for s in 0..st.len() {
        if !st.active[s] || st.level[s] > deepest || !bb.contains(st.lon[s], st.lat[s]) {
            continue;
        }
        let (x, y) = t.to_tile(EXTENT, st.lon[s], st.lat[s]);
        let g = point_geom(x, y)?;
        let tags = vec![
            ("id", Tag::S(st.id[s].clone())),
            ("name", Tag::S(st.name[s].clone())),
            ("level", Tag::S(st.level[s].as_str().into())),
            (
                "code",
                Tag::S(if st.unit[s] == crate::model::NO_UNIT {
                    String::new()
                } else {
                    ds.divisions.get(st.unit[s]).code.clone()
                }),
            ),
            ("demonstration", Tag::B(st.demonstration[s])),
            ("mobile", Tag::B(st.mobile[s])),
            ("radius_m", Tag::F(st.radius_of(s as u32, &ds.standard))),
        ];
        lay = add_feature(lay, g, Some(s as u64 + 1), tags);
    }

    Ok(lay)
}

/// The grids in the tile, with their workload where `view` may see it.
fn grid_features(
    w: &World,
    view: &View,
    svc: Option<&ServiceView>,
    t: TileId,
    bb: &Bbox,
    mut lay: mvt::Layer,
) -> Result<mvt::Layer, mvt::Error> {
    let ds = w.ds();
    for g in w.grid_index.query(bb) {
        let g = g as usize;
        let Some(geom) = encode_polygons(&multipolygon_rings(&t, &ds.grids.geometry[g]))? else { continue };
        let mut tags = vec![
            ("id", Tag::S(ds.grids.id[g].clone())),
            ("worker", Tag::S(ds.grids.worker[g].clone())),
            ("code", Tag::S(ds.grids.unit[g].map(|u| ds.divisions.get(u).code.clone()).unwrap_or_default())),
        ];
        let shown = view.disclosure.grid(g as u32);
        if let Some(l) = w.an().workload.get(g).filter(|_| shown) {
            tags.push(("households", Tag::I(l.households as i64)));
            tags.push(("veterans", Tag::I(l.veterans as i64)));
            tags.push(("over_cap", Tag::B(l.over_cap)));
        }
        let (figures, service_withheld) = svc.map(|v| v.grid_figures(g as u32)).unwrap_or_default();
        tags.extend(figures.into_iter().map(figure_tag));
        tags.push(("withheld", Tag::B(!shown || service_withheld)));
        lay = add_feature(lay, geom, Some(g as u64 + 1), tags);
    }

    Ok(lay)
}

/// The gap areas `view` sees, in the tile.
fn gap_features(w: &World, view: &View, t: TileId, bb: &Bbox, mut lay: mvt::Layer) -> Result<mvt::Layer, mvt::Error> {
    for (i, gap) in view.gaps(w).iter().enumerate() {
        if !view.gap_bbox(w)[i].intersects(bb) {
            continue;
        }
        let Some(geom) = encode_polygons(&multipolygon_rings(&t, &gap.shape))? else { continue };
        let tags = vec![
            ("rank", Tag::I(i64::from(gap.rank))),
            ("households", Tag::I(gap.households as i64)),
            ("veterans", Tag::I(gap.veterans as i64)),
        ];
        lay = add_feature(lay, geom, Some(u64::from(gap.rank)), tags);
    }

    Ok(lay)
}

/// The household cells of the zoom's resolution in the tile, with the figures `view` may see.
fn cell_features(w: &World, t: TileId, bb: &Bbox, mut lay: mvt::Layer) -> Result<mvt::Layer, mvt::Error> {
    let ds = w.ds();
    let cells = w.cells(resolution_for_zoom(t.z, ds.privacy.cell_resolution));
    for i in cells.meeting(bb) {
        let c = &cells[i as usize];
        let shape = geo::MultiPolygon(vec![crate::privacy::cell_polygon(c.key)]);
        let Some(geom) = encode_polygons(&multipolygon_rings(&t, &shape))? else { continue };
        let f = c.figures();
        let mut tags = vec![
            ("households", Tag::I(f.households as i64)),
            ("veterans", Tag::I(f.veterans as i64)),
            ("resolution", Tag::I(i64::from(u8::from(c.key.resolution())))),
            ("withheld", Tag::B(f.covered_households.is_none())),
        ];
        if let (Some(ch), Some(cv)) = (f.covered_households, f.covered_veterans) {
            tags.push(("covered_households", Tag::I(ch as i64)));
            tags.push(("covered_veterans", Tag::I(cv as i64)));
            tags.push(("uncovered_veterans", Tag::I(f.veterans.saturating_sub(cv) as i64)));
        }
        lay = add_feature(lay, geom, None, tags);
    }

    Ok(lay)
}

fn point_geom(x: f64, y: f64) -> Result<mvt::GeomData, mvt::Error> {
    GeomEncoder::new(GeomType::Point).point(x.round(), y.round())?.encode()
}

/// A grid worker's household tile: own households in it, as points with details; and the
/// ids it shows (for the audit log).
///
/// # Errors
/// The tile fails to encode.
pub fn render_own_households(w: &World, user: &User, t: TileId) -> Result<(Vec<u8>, Vec<String>), TileError> {
    own_households_tile(w, user, t).map_err(|source| TileError { layer: Layer::Households, tile: t, source })
}

fn own_households_tile(w: &World, user: &User, t: TileId) -> Result<(Vec<u8>, Vec<String>), mvt::Error> {
    let tile = Tile::new(EXTENT);
    let mut lay = tile.create_layer(&Layer::Households.name());
    let bb = t.bbox_buffered(EXTENT, BUFFER);
    let hh = &w.ds().households;
    let a = &w.an().assignment;
    let mut ids = Vec::new();
    for h in own_households(w, user) {
        let i = h as usize;
        if !bb.contains(hh.lon[i], hh.lat[i]) {
            continue;
        }
        let (x, y) = t.to_tile(EXTENT, hh.lon[i], hh.lat[i]);
        let g = point_geom(x, y)?;
        let gid = if a.grid[i] == NONE { String::new() } else { w.ds().grids.id[a.grid[i] as usize].clone() };
        let tags = vec![
            ("id", Tag::S(hh.id[i].to_string())),
            ("grid_id", Tag::S(gid)),
            ("veterans", Tag::I(i64::from(hh.veterans[i]))),
            ("difficulty", Tag::B(hh.difficulty[i])),
            ("martyr_family", Tag::B(hh.martyr_family[i])),
            ("covered", Tag::B(a.covered[i] != 0)),
        ];
        lay = add_feature(lay, g, Some(u64::from(h) + 1), tags);
        ids.push(hh.id[i].to_string());
    }
    Ok((finish(tile, lay)?, ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_parse_and_refuse() {
        assert_eq!(parse_tile("3", "6", "2.mvt", 16).unwrap(), TileId { z: 3, x: 6, y: 2 });
        assert_eq!(parse_tile("3", "6", "2.pbf", 16).unwrap(), TileId { z: 3, x: 6, y: 2 });
        assert!(parse_tile("17", "0", "0.mvt", 16).unwrap_err().description.contains("out of range"));
        assert!(parse_tile("3", "8", "0.mvt", 16).is_err());
        assert!(parse_tile("3", "-1", "0.mvt", 16).is_err());
        assert!(parse_tile("3", "1", "0.png", 16).is_err());
        assert!(parse_tile("99999999999", "1", "0.mvt", 16).is_err());
    }

    #[test]
    fn an_encoding_error_is_an_error_not_an_empty_tile() {
        // A layer made for another extent: the tile refuses it.
        let other = Tile::new(512);
        let lay = add_feature(other.create_layer("stations"), point_geom(1.0, 2.0).unwrap(), Some(1), vec![]);
        assert!(matches!(finish(Tile::new(EXTENT), lay), Err(mvt::Error::WrongExtent())));
        // A coordinate that is not a number.
        assert!(point_geom(f64::NAN, 0.0).is_err());
        assert!(matches!(encode_polygons(&[vec![vec![(0, 0), (10, 0), (10, 10)]]]), Ok(Some(_))));
        assert!(matches!(encode_polygons(&[]), Ok(None)));
        // An empty layer is an empty tile, not an error.
        let t = Tile::new(EXTENT);
        let empty = t.create_layer("stations");
        assert_eq!(finish(t, empty).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn layer_names_round_trip() {
        for l in Layer::ALL {
            assert_eq!(Layer::parse(&l.name()), Some(l));
        }
        assert_eq!(Layer::parse("admin"), None);
    }
}
