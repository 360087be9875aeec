//! Polygons from GeoJSON: conversion to WGS84 and validity checks.

use geo::algorithm::validation::{
    CoordIndex, GeometryIndex, InvalidMultiPolygon, InvalidPolygon, RingRole, Validation,
};
use geo::coordinate_position::{coord_pos_relative_to_ring, CoordPos};
use geo::dimensions::Dimensions;
use geo::{BoundingRect, Coord, Intersects, Line, LineString, MultiPolygon, Polygon, Relate, RemoveRepeatedPoints};
use geojson::{GeometryValue, Position};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};

use crate::crs::ToWgs84;

/// Rings of at most this many positions are checked by geo's own [`Validation`]; longer ones by
/// [`check_multipolygon`]'s indexed equivalent (geo's self-intersection test compares every pair
/// of segments, which takes minutes on a province outline of 40 000 vertices).
pub(crate) const GEO_VALIDATION_MAX_RING: usize = 512;

/// Converts a GeoJSON Polygon or MultiPolygon to WGS84 polygons.
///
/// # Errors
/// A reason when the geometry is of another type, a ring has fewer than 4 positions or is not
/// closed, a position has fewer than 2 numbers, or a coordinate is not finite or out of range
/// after conversion.
pub(crate) fn to_multipolygon(value: &GeometryValue, t: &ToWgs84) -> Result<MultiPolygon<f64>, String> {
    let polys: Vec<&Vec<Vec<Position>>> = match value {
        GeometryValue::Polygon { coordinates } => vec![coordinates],
        GeometryValue::MultiPolygon { coordinates } => coordinates.iter().collect(),
        other => return Err(format!("geometry is a {}, expected a Polygon or MultiPolygon", other.type_name())),
    };
    let multi = polys.len() > 1 || matches!(value, GeometryValue::MultiPolygon { .. });
    rings_to_multipolygon(&polys, multi, t, |p: &Position| p.as_slice())
}

/// The shared part of [`to_multipolygon`] and the fast reader's conversion: polygons as lists of
/// rings of positions (each a slice of numbers), with the same checks and messages.
pub(crate) fn rings_to_multipolygon<P>(
    polys: &[&Vec<Vec<P>>],
    multi: bool,
    t: &ToWgs84,
    numbers: impl Fn(&P) -> &[f64],
) -> Result<MultiPolygon<f64>, String> {
    if polys.is_empty() {
        return Err("MultiPolygon has no polygons".into());
    }
    let mut out = Vec::with_capacity(polys.len());
    for (pi, rings) in polys.iter().enumerate() {
        let where_poly = if multi { format!("polygon {pi}: ") } else { String::new() };
        if rings.is_empty() {
            return Err(format!("{where_poly}polygon has no rings"));
        }
        let mut converted = Vec::with_capacity(rings.len());
        for (ri, ring) in rings.iter().enumerate() {
            let role = || if ri == 0 { "exterior ring".to_string() } else { format!("interior ring {}", ri - 1) };
            if ring.len() < 4 {
                return Err(format!(
                    "{where_poly}{} has {} positions; a closed ring needs at least 4",
                    role(),
                    ring.len()
                ));
            }
            if numbers(&ring[0]) != numbers(&ring[ring.len() - 1]) {
                return Err(format!("{where_poly}{} is not closed (first and last positions differ)", role()));
            }
            let mut coords = Vec::with_capacity(ring.len());
            for (k, p) in ring.iter().enumerate() {
                let s = numbers(p);
                if s.len() < 2 {
                    return Err(format!("{where_poly}{}: position {k} has {} numbers, expected 2", role(), s.len()));
                }
                let (x, y) = (s[0], s[1]);
                let (lon, lat) =
                    t.convert(x, y).map_err(|e| format!("{where_poly}{}: position {k} ({x}, {y}): {e}", role()))?;
                if !crate::model::rules::is_lon_lat(lon, lat) {
                    return Err(format!(
                        "{where_poly}{}: position {k} ({lon}, {lat}) is out of range (longitude -180..180, latitude -90..90)",
                        role()
                    ));
                }
                coords.push(Coord { x: lon, y: lat });
            }
            converted.push(LineString(coords));
        }
        let exterior = converted.remove(0);
        out.push(Polygon::new(exterior, converted));
    }
    Ok(MultiPolygon(out))
}

/// The valid WGS84 multipolygon of a feature, or why it cannot be had: no geometry, a geometry
/// of another type or with bad coordinates, or one that breaks geo's validity rules.
pub(crate) fn feature_multipolygon(feature: &geojson::Feature, t: &ToWgs84) -> Result<MultiPolygon<f64>, String> {
    let geometry = feature.geometry.as_ref().ok_or("feature has no geometry")?;
    let mp = to_multipolygon(&geometry.value, t)?;
    check_multipolygon_fast(&mp).map_err(|e| format!("invalid geometry: {e}"))?;
    Ok(mp)
}

/// Checks a multipolygon is valid by the rules of geo's [`Validation`], returning geo's own
/// error (whose `Display` is the reason).
///
/// Small geometries go through geo's [`Validation`] itself; for rings longer than
/// [`GEO_VALIDATION_MAX_RING`] the same checks run with an R-tree over the ring's segments, so
/// that a province outline is checked in milliseconds rather than minutes. Both give the same
/// first error (the unit tests compare them).
pub(crate) fn check_multipolygon(mp: &MultiPolygon<f64>) -> Result<(), InvalidMultiPolygon> {
    let longest = mp.0.iter().flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors())).map(|r| r.0.len()).max();
    if longest.unwrap_or(0) <= GEO_VALIDATION_MAX_RING {
        return mp.check_validation();
    }
    check_multipolygon_indexed(mp)
}

/// [`check_multipolygon`] with a fast path: a multipolygon that [`surely_valid`] accepts is
/// valid; anything else gets the full check, so the verdict and the error are the same.
pub(crate) fn check_multipolygon_fast(mp: &MultiPolygon<f64>) -> Result<(), InvalidMultiPolygon> {
    if surely_valid(mp) {
        return Ok(());
    }
    check_multipolygon(mp)
}

/// True only when the multipolygon is valid by geo's [`Validation`] rules, decided quickly for
/// the plain case: finite coordinates, rings of at least 4 distinct consecutive positions, no
/// two segments meeting anywhere (except consecutive ones of a ring at their shared vertex, as
/// geo allows), each hole inside its exterior, no hole inside another, no component's exterior
/// inside another component's area. Rings that touch at all (legal at a point, say) are left
/// to the full check: false means "not decided here", not "invalid".
pub(crate) fn surely_valid(mp: &MultiPolygon<f64>) -> bool {
    struct Seg {
        xmin: f64,
        xmax: f64,
        ymin: f64,
        ymax: f64,
        ring: u32,
        line: Line<f64>,
    }
    let mut segs = Vec::new();
    let mut ring_id = 0u32;
    for p in mp {
        for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
            let c = &ring.0;
            if c.is_empty() || c.iter().any(|q| !(q.x.is_finite() && q.y.is_finite())) {
                return false;
            }
            let distinct = 1 + c.windows(2).filter(|w| w[0] != w[1]).count();
            if distinct < 4 {
                return false;
            }
            for w in c.windows(2) {
                let (a, b) = (w[0], w[1]);
                segs.push(Seg {
                    xmin: a.x.min(b.x),
                    xmax: a.x.max(b.x),
                    ymin: a.y.min(b.y),
                    ymax: a.y.max(b.y),
                    ring: ring_id,
                    line: Line::new(a, b),
                });
            }
            ring_id += 1;
        }
    }
    segs.sort_unstable_by(|a, b| a.xmin.total_cmp(&b.xmin));
    for i in 0..segs.len() {
        let a = &segs[i];
        for b in &segs[i + 1..] {
            if b.xmin > a.xmax {
                break;
            }
            if b.ymin > a.ymax || b.ymax < a.ymin {
                continue;
            }
            let (la, lb) = (a.line, b.line);
            if a.ring == b.ring {
                // geo's own rule for a ring crossing itself.
                if la.start != lb.end && la.end != lb.start && la.intersects(&lb) {
                    return false;
                }
            } else if la.intersects(&lb) {
                return false;
            }
        }
    }
    // No boundaries meet, so containment is decided by one vertex of each ring.
    for p in mp {
        for (k, h) in p.interiors().iter().enumerate() {
            if coord_pos_relative_to_ring(h.0[0], p.exterior()) != CoordPos::Inside {
                return false;
            }
            for h2 in &p.interiors()[k + 1..] {
                if coord_pos_relative_to_ring(h.0[0], h2) != CoordPos::Outside
                    || coord_pos_relative_to_ring(h2.0[0], h) != CoordPos::Outside
                {
                    return false;
                }
            }
        }
    }
    let inside_area = |c: Coord<f64>, p: &Polygon<f64>| {
        coord_pos_relative_to_ring(c, p.exterior()) == CoordPos::Inside
            && p.interiors().iter().all(|h| coord_pos_relative_to_ring(c, h) == CoordPos::Outside)
    };
    let rects: Vec<_> = mp.0.iter().map(|p| p.bounding_rect()).collect();
    for (i, a) in mp.0.iter().enumerate() {
        for (j, b) in mp.0.iter().enumerate().skip(i + 1) {
            match (rects[i], rects[j]) {
                (Some(ra), Some(rb)) if ra.intersects(&rb) => {}
                _ => continue,
            }
            if inside_area(a.exterior().0[0], b) || inside_area(b.exterior().0[0], a) {
                return false;
            }
        }
    }
    true
}

/// The indexed equivalent of geo's `MultiPolygon` validation (first error only).
pub(crate) fn check_multipolygon_indexed(mp: &MultiPolygon<f64>) -> Result<(), InvalidMultiPolygon> {
    let rects: Vec<_> = mp.0.iter().map(|p| p.bounding_rect()).collect();
    for (i, polygon) in mp.0.iter().enumerate() {
        check_polygon_indexed(polygon).map_err(|e| InvalidMultiPolygon::InvalidPolygon(GeometryIndex(i), e))?;
        for (j, pol2) in mp.0.iter().enumerate().skip(i + 1) {
            // Polygons whose boxes do not meet can neither overlap nor touch.
            match (rects[i], rects[j]) {
                (Some(a), Some(b)) if a.intersects(&b) => {}
                _ => continue,
            }
            let im = polygon.relate(pol2);
            if im.get(CoordPos::Inside, CoordPos::Inside) == Dimensions::TwoDimensional {
                return Err(InvalidMultiPolygon::ElementsOverlaps(GeometryIndex(i), GeometryIndex(j)));
            }
            if im.get(CoordPos::OnBoundary, CoordPos::OnBoundary) == Dimensions::OneDimensional {
                return Err(InvalidMultiPolygon::ElementsTouchOnALine(GeometryIndex(i), GeometryIndex(j)));
            }
        }
    }
    Ok(())
}

fn check_polygon_indexed(p: &Polygon<f64>) -> Result<(), InvalidPolygon> {
    if p.exterior().0.is_empty() && p.interiors().is_empty() {
        return Ok(());
    }
    for (ring_idx, ring) in std::iter::once(p.exterior()).chain(p.interiors()).enumerate() {
        if ring.0.is_empty() {
            continue;
        }
        let role = if ring_idx == 0 { RingRole::Exterior } else { RingRole::Interior(ring_idx - 1) };
        if ring.remove_repeated_points().0.len() < 4 {
            return Err(InvalidPolygon::TooFewPointsInRing(role));
        }
        if ring_self_intersects(ring) {
            return Err(InvalidPolygon::SelfIntersection(role));
        }
        if let Some(k) = ring.0.iter().position(|c| !(c.x.is_finite() && c.y.is_finite())) {
            return Err(InvalidPolygon::NonFiniteCoord(role, CoordIndex(k)));
        }
    }
    let exterior = Polygon::new(p.exterior().clone(), vec![]);
    let holes: Vec<Polygon<f64>> =
        p.interiors().iter().filter(|r| !r.0.is_empty()).map(|r| Polygon::new(r.clone(), vec![])).collect();
    let hole_idx: Vec<usize> =
        p.interiors().iter().enumerate().filter(|(_, r)| !r.0.is_empty()).map(|(k, _)| k).collect();
    for (a, hole) in holes.iter().enumerate() {
        let role = RingRole::Interior(hole_idx[a]);
        let im = exterior.relate(hole);
        if !im.is_contains() {
            return Err(InvalidPolygon::InteriorRingNotContainedInExteriorRing(role));
        }
        if im.get(CoordPos::OnBoundary, CoordPos::OnBoundary) == Dimensions::OneDimensional {
            return Err(InvalidPolygon::IntersectingRingsOnALine(RingRole::Exterior, role));
        }
        for (b, other) in holes.iter().enumerate().skip(a + 1) {
            let role2 = RingRole::Interior(hole_idx[b]);
            let im = hole.relate(other);
            if im.get(CoordPos::Inside, CoordPos::Inside) == Dimensions::TwoDimensional {
                return Err(InvalidPolygon::IntersectingRingsOnAnArea(role, role2));
            }
            if im.get(CoordPos::OnBoundary, CoordPos::OnBoundary) == Dimensions::OneDimensional {
                return Err(InvalidPolygon::IntersectingRingsOnALine(role, role2));
            }
        }
    }
    Ok(())
}

/// geo's ring self-intersection test (two segments that intersect, other than at the point
/// where one ends and the other starts), with an R-tree instead of comparing all pairs.
fn ring_self_intersects(ring: &LineString<f64>) -> bool {
    let lines: Vec<Line<f64>> = ring.lines().collect();
    let boxes: Vec<GeomWithData<Rectangle<[f64; 2]>, usize>> = lines
        .iter()
        .enumerate()
        .map(|(k, l)| GeomWithData::new(Rectangle::from_corners([l.start.x, l.start.y], [l.end.x, l.end.y]), k))
        .collect();
    let tree = RTree::bulk_load(boxes);
    lines.iter().enumerate().any(|(i, a)| {
        let env = AABB::from_corners([a.start.x, a.start.y], [a.end.x, a.end.y]);
        tree.locate_in_envelope_intersecting(&env).any(|g| {
            let j = g.data;
            let b = &lines[j];
            j > i && a.start != b.end && a.end != b.start && a.intersects(b)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crs::Crs;
    use geo::wkt;

    fn both(mp: &MultiPolygon<f64>) -> (Result<(), InvalidMultiPolygon>, Result<(), InvalidMultiPolygon>) {
        (mp.check_validation(), check_multipolygon_indexed(mp))
    }

    #[test]
    fn indexed_validation_agrees_with_geo() {
        let cases = [
            wkt!(MULTIPOLYGON(((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.)))),
            // bow tie
            wkt!(MULTIPOLYGON(((0. 0., 4. 4., 4. 0., 0. 4., 0. 0.)))),
            // hole outside the shell
            wkt!(MULTIPOLYGON(((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.), (5. 5., 6. 5., 6. 6., 5. 5.)))),
            // valid hole
            wkt!(MULTIPOLYGON(((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.), (1. 1., 2. 1., 2. 2., 1. 1.)))),
            // two overlapping polygons
            wkt!(MULTIPOLYGON(((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.)), ((2. 2., 6. 2., 6. 6., 2. 6., 2. 2.)))),
            // two polygons sharing an edge
            wkt!(MULTIPOLYGON(((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.)), ((4. 0., 8. 0., 8. 4., 4. 4., 4. 0.)))),
            // two disjoint polygons
            wkt!(MULTIPOLYGON(((0. 0., 1. 0., 1. 1., 0. 0.)), ((5. 5., 6. 5., 6. 6., 5. 5.)))),
            // too few distinct points
            wkt!(MULTIPOLYGON(((0. 0., 1. 1., 1. 1., 0. 0.)))),
            // a spike back along an edge
            wkt!(MULTIPOLYGON(((0. 0., 4. 0., 2. 0., 2. 3., 0. 0.)))),
        ];
        for mp in &cases {
            let (g, ours) = both(mp);
            assert_eq!(g, ours, "{mp:?}");
            assert_eq!(check_multipolygon_fast(mp), g, "{mp:?}");
        }
    }

    #[test]
    fn fast_path_gives_geo_verdicts() {
        let cases = [
            // plain square: decided on the fast path
            (wkt!(MULTIPOLYGON(((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.)))), true),
            // a hole, and an island in it: valid, fast path
            (
                wkt!(MULTIPOLYGON(((0. 0., 9. 0., 9. 9., 0. 9., 0. 0.), (2. 2., 7. 2., 7. 7., 2. 7., 2. 2.)), ((3. 3., 6. 3., 6. 6., 3. 6., 3. 3.)))),
                true,
            ),
            // two squares touching at a corner: valid, but left to geo
            (wkt!(MULTIPOLYGON(((0. 0., 1. 0., 1. 1., 0. 1., 0. 0.)), ((1. 1., 2. 1., 2. 2., 1. 2., 1. 1.)))), false),
            // a hole inside another hole: invalid
            (
                wkt!(MULTIPOLYGON(((0. 0., 9. 0., 9. 9., 0. 9., 0. 0.), (1. 1., 8. 1., 8. 8., 1. 8., 1. 1.), (3. 3., 6. 3., 6. 6., 3. 6., 3. 3.)))),
                false,
            ),
            // one component inside another: invalid
            (wkt!(MULTIPOLYGON(((0. 0., 9. 0., 9. 9., 0. 9., 0. 0.)), ((3. 3., 6. 3., 6. 6., 3. 6., 3. 3.)))), false),
            // a hole outside the shell, not touching it: invalid
            (wkt!(MULTIPOLYGON(((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.), (5. 5., 6. 5., 6. 6., 5. 5.)))), false),
            // a repeated vertex: valid, fast path
            (wkt!(MULTIPOLYGON(((0. 0., 4. 0., 4. 0., 4. 4., 0. 4., 0. 0.)))), true),
        ];
        for (mp, fast) in &cases {
            assert_eq!(surely_valid(mp), *fast, "{mp:?}");
            assert_eq!(check_multipolygon_fast(mp), mp.check_validation(), "{mp:?}");
        }
    }

    #[test]
    fn long_rings_are_checked_fast_and_right() {
        // A circle of 40 000 vertices, and the same with two vertices swapped (a crossing).
        let n = 40_000;
        let mut c: Vec<Coord<f64>> = (0..n)
            .map(|k| {
                let a = k as f64 / n as f64 * std::f64::consts::TAU;
                Coord { x: 100.0 + a.cos(), y: 36.0 + a.sin() }
            })
            .collect();
        c.push(c[0]);
        let good = MultiPolygon(vec![Polygon::new(LineString(c.clone()), vec![])]);
        let t = std::time::Instant::now();
        assert_eq!(check_multipolygon(&good), Ok(()));
        c.swap(100, 101);
        let bad = MultiPolygon(vec![Polygon::new(LineString(c), vec![])]);
        assert_eq!(
            check_multipolygon(&bad),
            Err(InvalidMultiPolygon::InvalidPolygon(
                GeometryIndex(0),
                InvalidPolygon::SelfIntersection(RingRole::Exterior)
            ))
        );
        assert!(t.elapsed().as_secs_f64() < 5.0, "{:?}", t.elapsed());
    }

    #[test]
    fn converts_and_rejects_bad_rings() {
        let t = ToWgs84::new(&Crs::Wgs84).unwrap();
        let v = |s: &str| serde_json::from_str::<GeometryValue>(s).unwrap();
        let ok = to_multipolygon(&v(r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}"#), &t).unwrap();
        assert_eq!(ok.0.len(), 1);
        let e = to_multipolygon(&v(r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}"#), &t).unwrap_err();
        assert!(e.contains("exterior ring has 3 positions"), "{e}");
        let e = to_multipolygon(&v(r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}"#), &t).unwrap_err();
        assert!(e.contains("not closed"), "{e}");
        let e =
            to_multipolygon(&v(r#"{"type":"Polygon","coordinates":[[[0,0],[200,0],[1,1],[0,0]]]}"#), &t).unwrap_err();
        assert!(e.contains("out of range"), "{e}");
        let e = to_multipolygon(&v(r#"{"type":"Point","coordinates":[0,0]}"#), &t).unwrap_err();
        assert!(e.contains("Point"), "{e}");
    }
}
