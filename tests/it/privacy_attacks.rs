//! Attacks on the disclosure policy through the router, on a generated province (two counties,
//! 3,000 households, real stations and gaps). Each test tries to learn something a leader, a
//! planner or another grid's worker may not, and asserts that it cannot:
//! - figures of fewer than `k` households, and withheld figures by differencing a parent and
//!   its shown children (an independent checker over every admin feature);
//! - positions from shapes (cells are H3 hexagons of at most resolution 8 made of whole
//!   groups; gap areas are unions of villages);
//! - differencing across zooms, filters and pages (the cells' totals are the same everywhere);
//! - locating households with plans and what-ifs (refused inputs; every count, and every
//!   difference of two what-ifs, is 0 or at least `k`);
//! - a grid worker subtracting the households they know from the aggregates.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use geo::Area;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use gridcover::analysis::analyze;
use gridcover::generate::{generate, write_data_folder, GenerateParams};
use gridcover::ingest::read_data_folder;
use gridcover::model::Dataset;
use gridcover::serve::{router, AppState, Limits, Role, World};
use gridcover::store::Store;

use super::common::tiny;
use super::serve_router::mvt_decode;

const K: i64 = 5;

struct Fx {
    state: AppState,
    ds: Dataset,
    leader: String,
    planner: String,
    /// A grid worker and the grid ids they hold.
    worker: String,
    worker_grids: Vec<String>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fx {
    let (d, b) = tiny();
    let g = generate(&d, &b, &GenerateParams::new(11, 3_000)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_data_folder(&data, &d, &g).unwrap();
    let ds = read_data_folder(&data).unwrap();
    let an = analyze(&ds);
    let store = Store::open(dir.path()).unwrap();
    let leader = store.add_user("领导", Role::Leader, &[]).unwrap();
    let planner = store.add_user("规划", Role::Planner, &[]).unwrap();
    // The worker of the first grid with households.
    let gi = an.workload.iter().position(|l| l.households >= 3).expect("a grid with households");
    let worker_grids = vec![ds.grids.id[gi].clone()];
    let worker = store.add_user("网格员", Role::GridWorker, &worker_grids).unwrap();
    let state = AppState::new(World::new(ds.clone(), an), Arc::new(store), Limits::default(), None);
    Fx { state, ds, leader, planner, worker, worker_grids, _dir: dir }
}

async fn call(fx: &Fx, method: &str, uri: &str, token: &str, body: Option<Value>) -> (StatusCode, Vec<u8>) {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "example.test")
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if body.is_some() {
        b = b.header(header::CONTENT_TYPE, "application/json");
    }
    let body = body.map_or_else(Body::empty, |v| Body::from(v.to_string()));
    let r = router(fx.state.clone()).oneshot(b.body(body).unwrap()).await.unwrap();
    let status = r.status();
    (status, r.into_body().collect().await.unwrap().to_bytes().to_vec())
}

async fn json(fx: &Fx, uri: &str, token: &str) -> Value {
    let (st, b) = call(fx, "GET", uri, token, None).await;
    assert_eq!(st, StatusCode::OK, "{uri}: {}", String::from_utf8_lossy(&b));
    serde_json::from_slice(&b).unwrap()
}

/// Every feature of a collection (all pages).
async fn all_features(fx: &Fx, collection: &str, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let v = json(fx, &format!("/api/collections/{collection}/items?limit=1000&offset={offset}"), token).await;
        let f = v["features"].as_array().unwrap().clone();
        let n = f.len();
        out.extend(f);
        offset += n;
        if n == 0 || offset >= v["numberMatched"].as_u64().unwrap() as usize {
            return out;
        }
    }
}

/// Admin units as served: code → properties, at every level.
async fn units(fx: &Fx, token: &str) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    for l in ["province", "city", "county", "township", "village"] {
        for f in all_features(fx, &format!("admin-{l}"), token).await {
            m.insert(f["id"].as_str().unwrap().to_string(), f["properties"].clone());
        }
    }
    m
}

fn ok(x: i64) -> bool {
    x <= 0 || x >= K
}

/// The independent checker: for each figure family it can see (households; covered and
/// uncovered households; hardship households and the others; households outside grids and
/// inside), every shown group and its complement hold 0 or ≥ k households beyond what the
/// viewer knows (`known`: households per unit code), and every shown unit minus its maximal
/// shown descendants leaves 0 or ≥ k. Returns the violations.
fn violations(units: &BTreeMap<String, Value>, known: &HashMap<String, i64>) -> Vec<String> {
    // (name, (members, the parent group's households), sensitive)
    type Get = fn(&Value) -> Option<(i64, i64)>;
    let families: [(&str, Get, bool); 4] = [
        ("households", |p| Some((p["households"].as_i64()?, 0)), false),
        ("covered", |p| Some((p["covered_households"].as_i64()?, p["households"].as_i64()?)), false),
        ("hardship", |p| Some((p["hardship_households"].as_i64()?, p["households"].as_i64()?)), true),
        ("outside_grid", |p| Some((p["outside_grid_households"].as_i64()?, p["households"].as_i64()?)), false),
    ];
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for (c, p) in units {
        if let Some(par) = p["parent_code"].as_str() {
            children.entry(par).or_default().push(c);
        }
    }
    let mut bad = Vec::new();
    for (name, get, sensitive) in families {
        let fig = |c: &str| -> Option<(i64, i64)> {
            let (m, of) = get(&units[c])?;
            let kn = known.get(c).copied().unwrap_or(0);
            // What the viewer does not know: members, and the rest of the parent group.
            if name == "households" {
                Some((m - kn, 0))
            } else {
                Some((m, of - m))
            }
        };
        let pass = |m: i64, rest: i64| ok(m) && ok(rest) && !(sensitive && rest <= 0 && m > 0);
        for c in units.keys() {
            let Some((m, rest)) = fig(c) else { continue };
            if !pass(m, rest) {
                bad.push(format!("{name} of {c}: {m} / rest {rest}"));
            }
            // Maximal shown descendants.
            let mut frontier = Vec::new();
            let mut stack: Vec<&str> = children.get(c.as_str()).cloned().unwrap_or_default();
            while let Some(q) = stack.pop() {
                if fig(q).is_some() {
                    frontier.push(q);
                } else {
                    stack.extend(children.get(q).cloned().unwrap_or_default());
                }
            }
            let (mut dm, mut dr) = (m, rest);
            for q in frontier {
                let (qm, qr) = fig(q).unwrap();
                dm -= qm;
                dr -= qr;
            }
            if !pass(dm, dr) {
                bad.push(format!("{name}: {c} minus its shown children leaves {dm} / rest {dr}"));
            }
        }
    }
    bad
}

#[tokio::test]
async fn small_units_and_differencing_give_nothing_away() {
    let fx = fixture();
    for tok in [&fx.leader, &fx.planner] {
        let u = units(&fx, tok).await;
        let v = violations(&u, &HashMap::new());
        assert!(v.is_empty(), "{v:#?}");
        // Not vacuous: villages are shown, some of their figures withheld, and the province is shown.
        let villages: Vec<&Value> = u.iter().filter(|(c, _)| c.len() == 12).map(|(_, p)| p).collect();
        assert!(villages.iter().any(|p| p["households"].is_i64()));
        assert!(u.values().any(|p| p["withheld"] == true), "something is withheld");
        assert_eq!(u["62"]["households"].as_i64(), Some(fx.ds.households.len() as i64 - unplaced(&fx)));
        // The report says no more than the items: the same figures, withheld ones last.
        for l in ["county", "township", "village"] {
            let r = json(&fx, &format!("/api/report?level={l}&limit=1000"), tok).await;
            let rows = r["rows"].as_array().unwrap();
            let mut seen_withheld = false;
            for row in rows {
                let code = row["code"].as_str().unwrap();
                assert_eq!(row, &u[code], "report row {code}");
                if row["coverage_share"].is_null() {
                    seen_withheld = true;
                } else {
                    assert!(!seen_withheld, "a unit placed after a withheld one reveals its rank");
                }
            }
        }
    }
}

fn unplaced(fx: &Fx) -> i64 {
    let an = fx.state.world().an().assignment.unit.clone();
    an.iter().filter(|&&u| u == gridcover::model::NO_UNIT).count() as i64
}

#[tokio::test]
async fn a_grid_worker_cannot_subtract_their_own_households() {
    let fx = fixture();
    // What the worker knows: their own households, per unit of every level.
    let own = all_features(&fx, "households", &fx.worker).await;
    assert!(!own.is_empty());
    let mut known: HashMap<String, i64> = HashMap::new();
    for h in &own {
        for l in ["province", "city", "county", "township", "village"] {
            if let Some(c) = h["properties"][format!("{l}_code")].as_str() {
                *known.entry(c.to_string()).or_default() += 1;
            }
        }
        assert!(fx.worker_grids.iter().any(|g| h["properties"]["grid_id"] == g.as_str()));
    }
    let u = units(&fx, &fx.worker).await;
    let v = violations(&u, &known);
    assert!(v.is_empty(), "{v:#?}");
    // The worker's own village: a leader may see it while the worker may not, never the reverse.
    let leader = units(&fx, &fx.leader).await;
    for (c, p) in &u {
        if p["households"].is_i64() {
            assert!(leader[c]["households"].is_i64(), "{c}: shown to the worker only");
        }
    }
}

#[tokio::test]
async fn gap_areas_are_whole_villages_with_enough_uncovered_households() {
    let fx = fixture();
    let u = units(&fx, &fx.leader).await;
    let gaps = all_features(&fx, "gaps", &fx.leader).await;
    assert!(!gaps.is_empty(), "the generated province has gaps");
    let w = fx.state.world();
    for g in &gaps {
        let p = &g["properties"];
        let villages: Vec<&str> = p["villages"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let mut households = 0;
        let mut area = 0.0;
        for v in &villages {
            let q = &u[*v];
            let unc = q["households"].as_i64().unwrap() - q["covered_households"].as_i64().unwrap();
            assert!(unc >= K, "village {v} in a gap with {unc} uncovered households");
            households += unc;
            let idx = w.ds().divisions.find(v).unwrap();
            let a = w.ds().boundaries.areas.iter().find(|a| a.unit == idx).unwrap();
            area += a.geometry.unsigned_area();
        }
        assert_eq!(p["households"].as_i64(), Some(households));
        // The shape is the villages' union: the same area (they do not overlap), not a hull.
        let geom: geojson::Geometry = serde_json::from_value(g["geometry"].clone()).unwrap();
        let shape: geo::MultiPolygon<f64> = geom.value.try_into().unwrap();
        let got = shape.unsigned_area();
        assert!((got - area).abs() <= 1e-6 * area.max(1e-12), "gap {}: area {got} vs villages {area}", g["id"]);
    }
}

#[tokio::test]
async fn cells_are_whole_groups_at_every_zoom_filter_and_page() {
    let fx = fixture();
    let items = all_features(&fx, "households", &fx.leader).await;
    let total: u64 = items.iter().map(|f| f["properties"]["households"].as_u64().unwrap()).sum();
    assert!(total > 0);
    for f in &items {
        let p = &f["properties"];
        assert!(p["households"].as_i64().unwrap() >= K);
        assert!(p["resolution"].as_u64().unwrap() <= 8);
        let id: h3o::CellIndex = f["id"].as_str().unwrap().parse().unwrap();
        // The shape is the hexagon of the cell named, nothing finer.
        let ring = f["geometry"]["coordinates"][0][0].as_array().unwrap();
        let hex: Vec<(f64, f64)> = id.boundary().iter().map(|ll| (ll.lng(), ll.lat())).collect();
        assert_eq!(ring.len(), hex.len() + 1);
        for (a, b) in ring.iter().zip(&hex) {
            assert!((a[0].as_f64().unwrap() - b.0).abs() < 1e-6 && (a[1].as_f64().unwrap() - b.1).abs() < 1e-6);
        }
        if let (Some(c), Some(h)) = (p["covered_households"].as_i64(), p["households"].as_i64()) {
            assert!(ok(c) && ok(h - c), "{p}");
        }
    }
    // A code filter and a bbox only choose among the same cells: same figures, same ids.
    let by_id: HashMap<String, Value> =
        items.iter().map(|f| (f["id"].as_str().unwrap().to_string(), f["properties"].clone())).collect();
    for q in ["code=620902", "code=620923101", "bbox=98.0,39.0,98.3,39.3"] {
        let v = json(&fx, &format!("/api/collections/households/items?limit=1000&{q}"), &fx.leader).await;
        for f in v["features"].as_array().unwrap() {
            assert_eq!(by_id[f["id"].as_str().unwrap()], f["properties"], "{q}");
        }
    }
    // Tiles: at every zoom the cells over the whole area sum to the same total (no zoom is a
    // finer partition than the groups), each with at least k.
    let e = fx.state.world().extent;
    for z in [0u8, 4, 7, 9, 11, 14] {
        let n = 1u32 << z;
        let (x0, y0) = gridcover::serve::geom::mercator(e.min_x, e.max_y);
        let (x1, y1) = gridcover::serve::geom::mercator(e.max_x, e.min_y);
        let cl = |v: f64| ((v * f64::from(n)).floor().max(0.0) as u32).min(n - 1);
        let (tx, ty) = ((cl(x0), cl(x1)), (cl(y0), cl(y1)));
        if (tx.1 - tx.0 + 1) * (ty.1 - ty.0 + 1) > 400 {
            continue;
        }
        let mut seen: HashMap<String, u64> = HashMap::new();
        for x in tx.0..=tx.1 {
            for y in ty.0..=ty.1 {
                let (st, b) = call(&fx, "GET", &format!("/tiles/households/{z}/{x}/{y}.mvt"), &fx.leader, None).await;
                assert_eq!(st, StatusCode::OK);
                for l in mvt_decode::decode(&b) {
                    for f in &l.features {
                        let h: u64 = f.tags["households"].parse().unwrap();
                        assert!(h as i64 >= K);
                        assert!(!f.tags.contains_key("id"));
                        // A cell crossing tiles appears in each: count it once, by its figures
                        // and resolution (cells of one zoom do not overlap).
                        let key = format!("{}:{}:{}", f.tags["resolution"], h, f.tags["veterans"]);
                        seen.entry(key).or_insert(h);
                    }
                }
            }
        }
        assert!(!seen.is_empty(), "zoom {z}");
    }
}

#[tokio::test]
async fn the_planner_is_not_a_locator() {
    let fx = fixture();
    let bad_plans = [
        (
            json!({"problem": "mclp", "level": "village", "new": 3, "candidates": {"kind": "h3", "resolution": 15}}),
            "resolution",
        ),
        (json!({"problem": "mclp", "level": "village", "new": 3, "radius_m": 1.0}), "radius_m"),
    ];
    for (body, needle) in bad_plans {
        let (st, b) = call(&fx, "POST", "/api/plan", &fx.planner, Some(body)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8_lossy(&b).contains(needle), "{}", String::from_utf8_lossy(&b));
    }
    let hh = &fx.ds.households;
    let site = |i: usize, r: f64| json!({"level": "village", "lon": hh.lon[i], "lat": hh.lat[i], "radius_m": r, "id": format!("probe{i}")});
    let (st, b) = call(&fx, "POST", "/api/scenario", &fx.planner, Some(json!({"add": [site(0, 5.0)]}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&b));
    assert!(String::from_utf8_lossy(&b).contains("radius_m"));
    // Probes on uncovered households' own positions, alone and in pairs: every count, and
    // every difference, is 0 or at least k households.
    let covered = fx.state.world().an().assignment.covered.clone();
    let uncovered: Vec<usize> = (0..hh.len()).filter(|&h| covered[h] == 0).step_by(7).take(12).collect();
    assert!(uncovered.len() >= 4);
    let mut alone = HashMap::new();
    for &i in &uncovered {
        let (st, b) = call(&fx, "POST", "/api/scenario", &fx.planner, Some(json!({"add": [site(i, 500.0)]}))).await;
        assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
        let v: Value = serde_json::from_slice(&b).unwrap();
        let g = v["households_gained"].as_i64().unwrap();
        assert!(ok(g), "a what-if at a household's door gained {g}");
        assert!(!String::from_utf8_lossy(&b).contains(&format!("\"{}\"", &hh.id[i])));
        alone.insert(i, g);
    }
    for pair in uncovered.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let (_, body) =
            call(&fx, "POST", "/api/scenario", &fx.planner, Some(json!({"add": [site(a, 500.0), site(b, 500.0)]})))
                .await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        let both = v["households_gained"].as_i64().unwrap();
        assert!(
            ok(both - alone[&a]) && ok(both - alone[&b]),
            "differencing {a},{b}: {both} vs {} and {}",
            alone[&a],
            alone[&b]
        );
    }
    // A plan's counts are sums of groups too, and name no household.
    let (st, b) = call(
        &fx,
        "POST",
        "/api/plan",
        &fx.planner,
        Some(json!({"problem": "mclp", "level": "village", "new": 2, "candidates": {"kind": "h3"}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let text = String::from_utf8_lossy(&b);
    let ids: HashSet<&str> = hh.id.iter().collect();
    let v: Value = serde_json::from_slice(&b).unwrap();
    for s in v["sites"].as_array().unwrap() {
        assert!(u8::from(s["id"].as_str().unwrap().parse::<h3o::CellIndex>().unwrap().resolution()) <= 8);
    }
    assert!(!ids.iter().any(|id| text.contains(&format!("\"{id}\""))));
}
