//! Clipping polygons to vector tiles: the server's Sutherland–Hodgman clip of a ring to the
//! tile's square (`serve::geom::clip_ring`, hand-written) against geo's general polygon
//! intersection (`BooleanOps::intersection`, the crate a user would otherwise pick), on the
//! same rings in tile space.
//!
//! The rings are the real Gansu county boundaries (`data/gansu/boundaries.geojson`, GCJ-02 as
//! read), each cut into every zoom-9 tile its bounding box touches, with the server's buffer.
//! The clipped areas are checked equal first (within 1e-6 of a tile's area); the run prints
//! the ratio of the two, timed side by side.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use geo::{Area, BooleanOps, BoundingRect, Coord, LineString, Polygon, Rect};

use gridcover::crs::Crs;
use gridcover::ingest::{read_boundaries, read_divisions};
use gridcover::model::Level;
use gridcover::serve::geom::{clip_ring, mercator, TileId};

const ZOOM: u8 = 9;
const EXTENT: f64 = 4096.0;
const BUFFER: f64 = 64.0;

/// Every county exterior ring in the tile space of every zoom-9 tile its box touches (closing
/// point dropped).
fn rings() -> Vec<Vec<(f64, f64)>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/gansu");
    let (mut rejects, mut notes) = (Vec::new(), Vec::new());
    let d = read_divisions(&src.join("divisions.csv"), &mut rejects).expect("bundled divisions");
    let b = read_boundaries(&src.join("boundaries.geojson"), &Crs::Gcj02, &d, &mut rejects, &mut notes)
        .expect("bundled boundaries");
    let n = f64::from(1u32 << ZOOM);
    let mut out = Vec::new();
    for a in b.at_level(&d, Level::County) {
        for p in &a.geometry {
            let Some(r) = p.bounding_rect() else { continue };
            let (x0, y1) = mercator(r.min().x, r.min().y);
            let (x1, y0) = mercator(r.max().x, r.max().y);
            for ty in (y0 * n) as u32..=(y1 * n) as u32 {
                for tx in (x0 * n) as u32..=(x1 * n) as u32 {
                    let tile = TileId::new(ZOOM, tx, ty).expect("tile in range");
                    let mut ring: Vec<(f64, f64)> =
                        p.exterior().0.iter().map(|c| tile.to_tile(EXTENT as u32, c.x, c.y)).collect();
                    ring.pop();
                    out.push(ring);
                }
            }
        }
    }
    out
}

fn by_hand(ring: &[(f64, f64)]) -> f64 {
    let c = clip_ring(ring, -BUFFER, EXTENT + BUFFER);
    let closed: LineString<f64> = c.iter().chain(c.first()).map(|&(x, y)| Coord { x, y }).collect();
    Polygon::new(closed, vec![]).unsigned_area()
}

fn by_geo(ring: &[(f64, f64)], square: &Polygon<f64>) -> f64 {
    let closed: LineString<f64> = ring.iter().chain(ring.first()).map(|&(x, y)| Coord { x, y }).collect();
    Polygon::new(closed, vec![]).intersection(square).unsigned_area()
}

fn benches(c: &mut Criterion) {
    let rings = rings();
    let square =
        Rect::new(Coord { x: -BUFFER, y: -BUFFER }, Coord { x: EXTENT + BUFFER, y: EXTENT + BUFFER }).to_polygon();
    let vertices: usize = rings.iter().map(Vec::len).sum();
    eprintln!("{} county rings × zoom-{ZOOM} tiles, {vertices} vertices", rings.len());
    for r in &rings {
        let (a, b) = (by_hand(r), by_geo(r, &square));
        assert!((a - b).abs() <= 1e-6 * EXTENT * EXTENT, "clipped areas differ: {a} by hand, {b} by geo");
    }
    let time = |f: &dyn Fn() -> f64| {
        let t = Instant::now();
        black_box(f());
        t.elapsed().as_secs_f64()
    };
    let hand = time(&|| rings.iter().map(|r| by_hand(r)).sum());
    let geo = time(&|| rings.iter().map(|r| by_geo(r, &square)).sum());
    eprintln!(
        "clip to the tile: by hand {:.1} ms, geo BooleanOps {:.1} ms: geo / hand = {:.1}",
        hand * 1e3,
        geo * 1e3,
        geo / hand
    );

    let mut g = c.benchmark_group("tile_clip");
    g.bench_function("sutherland_hodgman", |b| b.iter(|| rings.iter().map(|r| by_hand(r)).sum::<f64>()));
    g.bench_function("geo_boolean_ops", |b| b.iter(|| rings.iter().map(|r| by_geo(r, &square)).sum::<f64>()));
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5))
}

criterion_group! { name = b; config = config(); targets = benches }
criterion_main!(b);
