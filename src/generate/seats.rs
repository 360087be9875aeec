//! Placing the seats of each county's townships and villages and deriving their areas (pure).

use super::*;

/// Counties whose area per village is in the top `share` and at least twice the median.
pub(super) fn pastoral_counties(ctx: &Ctx, counties: &[UnitIdx], share: f64) -> Vec<UnitIdx> {
    let mut apv: Vec<(UnitIdx, f64)> = counties
        .iter()
        .filter_map(|&c| {
            let n: usize = ctx.div.children(c).iter().map(|&t| ctx.div.children(t).len()).sum();
            (n > 0).then(|| (c, geom::area_m2(ctx.areas[&c]) / n as f64))
        })
        .collect();
    if apv.is_empty() || share <= 0.0 {
        return Vec::new();
    }
    let mut v: Vec<f64> = apv.iter().map(|x| x.1).collect();
    v.sort_by(f64::total_cmp);
    let median = v[(v.len() - 1) / 2];
    let rank = ((1.0 - share) * v.len() as f64).ceil() as usize;
    let threshold = v[rank.min(v.len() - 1)];
    apv.retain(|&(_, a)| a >= threshold && a >= 2.0 * median);
    apv.into_iter().map(|x| x.0).collect()
}

/// Best of `k` candidates: the one farthest from every point in `placed`.
pub(super) fn best_of<R: Rng>(
    rng: &mut R,
    k: usize,
    placed: &[P],
    mut candidate: impl FnMut(&mut R) -> Option<P>,
) -> Option<P> {
    let mut best: Option<(P, f64)> = None;
    for _ in 0..k {
        let Some(c) = candidate(rng) else { continue };
        let d = placed.iter().map(|&q| geom::dist2(c, q)).fold(f64::INFINITY, f64::min);
        if best.is_none_or(|(_, bd)| d > bd) {
            best = Some((c, d));
        }
        if placed.is_empty() {
            break;
        }
    }
    best.map(|b| b.0)
}

/// A point surely inside `mp` (geo's interior point), or the centre of its box.
pub(super) fn fallback_point(mp: &MultiPolygon<f64>) -> Coord<f64> {
    mp.interior_point()
        .map(|p| p.0)
        .or_else(|| mp.bounding_rect().map(|r| r.center()))
        .unwrap_or(Coord { x: 0.0, y: 0.0 })
}

/// Places the seat, townships and villages of one county.
pub(super) fn place_county(ctx: &Ctx, county: UnitIdx) -> CountyOut {
    let div = ctx.div;
    let code = &div.get(county).code;
    let geom_c = ctx.areas[&county];
    let rect = geom_c.bounding_rect().expect("non-empty county");
    let frame = Frame::around(rect);
    let pip = Pip::new(geom_c).expect("non-empty county");
    let mut rng = unit_rng(ctx.seed, code, "place");
    let mut notes = Vec::new();

    // Seat: best of 24 interior points, far from the border (with some luck).
    let mut seat: Option<(Coord<f64>, f64)> = None;
    for _ in 0..24 {
        if let Some(c) = pip.sample_uniform(&mut rng, 500) {
            let score = geom::dist_to_boundary(&frame, geom_c, frame.fwd(c)) * (0.6 + 0.4 * rng.random::<f64>());
            if seat.is_none_or(|(_, s)| score > s) {
                seat = Some((c, score));
            }
        }
    }
    let seat = seat.map_or_else(|| fallback_point(geom_c), |s| s.0);
    let seat_p = frame.fwd(seat);
    let size = geom::area_m2(geom_c).sqrt();

    let towns = div.children(county);
    let town_sigma = Frame::units((0.08 * size).clamp(1_500.0, 6_000.0));
    let any_urban_town = towns.iter().any(|&t| names::is_urban_township(&div.get(t).name));
    let town_urban: Vec<bool> = towns.iter().map(|&t| names::is_urban_township(&div.get(t).name)).collect();
    let mut townships = place_children(
        ctx,
        &mut rng,
        &frame,
        geom_c,
        &pip,
        seat_p,
        towns,
        &town_urban,
        town_sigma,
        !any_urban_town,
        &mut notes,
    );

    let mut villages = Vec::new();
    for t in &townships {
        let Some(tpoly) = &t.polygon else { continue };
        let vs = div.children(t.unit);
        if vs.is_empty() {
            continue;
        }
        let tpip = Pip::new(tpoly).expect("non-empty township");
        let tsize = geom::area_m2(tpoly).sqrt();
        let sigma = Frame::units((0.15 * tsize).clamp(300.0, 2_000.0));
        let urban: Vec<bool> = vs.iter().map(|&v| names::is_urban_village(&div.get(v).name)).collect();
        let mut vrng = unit_rng(ctx.seed, &div.get(t.unit).code, "villages");
        let any_urban = urban.iter().any(|&u| u);
        let placed = place_children(
            ctx,
            &mut vrng,
            &frame,
            tpoly,
            &tpip,
            frame.fwd(t.point),
            vs,
            &urban,
            sigma,
            !any_urban,
            &mut notes,
        );
        villages.extend(placed);
    }

    set_remoteness(&frame, seat_p, &mut townships);
    set_remoteness(&frame, seat_p, &mut villages);
    CountyOut { county, frame, seat, townships, villages, notes }
}

/// Remoteness = rank of distance from the seat, scaled to 0..=1.
pub(super) fn set_remoteness(frame: &Frame, seat: P, units: &mut [Placed]) {
    let mut order: Vec<(usize, f64)> =
        units.iter().enumerate().map(|(i, u)| (i, geom::dist2(frame.fwd(u.point), seat))).collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1));
    let n = order.len().max(2) - 1;
    for (rank, (i, _)) in order.into_iter().enumerate() {
        units[i].remoteness = rank as f64 / n as f64;
    }
}

/// Places the children of one unit: seeds (urban ones near `centre`, the others spread out),
/// then polygons (input ones if every child has one, else clipped Voronoi cells).
#[allow(clippy::too_many_arguments)]
pub(super) fn place_children(
    ctx: &Ctx,
    rng: &mut ChaCha8Rng,
    frame: &Frame,
    parent: &MultiPolygon<f64>,
    pip: &Pip,
    centre: P,
    children: &[UnitIdx],
    urban: &[bool],
    sigma: f64,
    first_at_centre: bool,
    notes: &mut Vec<String>,
) -> Vec<Placed> {
    let div = ctx.div;
    // Children that all have their own input boundaries keep them.
    if children.iter().all(|c| ctx.areas.get(c).is_some_and(|mp| !mp.0.is_empty())) {
        return children
            .iter()
            .zip(urban)
            .map(|(&c, &u)| {
                let mp = ctx.areas[&c];
                let cp = Pip::new(mp).expect("non-empty");
                let point = cp.sample_uniform(rng, 1000).unwrap_or_else(|| fallback_point(mp));
                Placed { unit: c, point, polygon: Some(mp.clone()), derived: false, urban: u, remoteness: 0.0 }
            })
            .collect();
    }
    let mut seeds: Vec<Option<P>> = vec![None; children.len()];
    let mut placed: Vec<P> = Vec::with_capacity(children.len() + 1);
    let inside = |c: Coord<f64>| pip.contains(c);
    // Urban ones first, around the centre.
    for (i, _) in urban.iter().enumerate().filter(|(_, &u)| u) {
        seeds[i] = best_of(rng, 8, &placed, |r| pip.sample_normal(r, frame, centre, sigma, 50).map(|c| frame.fwd(c)));
        if let Some(s) = seeds[i] {
            placed.push(s);
        }
    }
    if first_at_centre && !children.is_empty() && inside(frame.inv(centre)) {
        seeds[0] = Some(centre);
        placed.push(centre);
    }
    let n_urban = placed.len();
    if n_urban == 0 {
        placed.push(centre); // rural children keep clear of the centre too
    }
    for seed in seeds.iter_mut().filter(|s| s.is_none()) {
        *seed = best_of(rng, 12, &placed, |r| pip.sample_uniform(r, 200).map(|c| frame.fwd(c)));
        if let Some(s) = *seed {
            placed.push(s);
        }
    }
    let mut sites: Vec<P> = seeds.iter().map(|s| s.unwrap_or_else(|| frame.fwd(fallback_point(parent)))).collect();
    geom::make_distinct(&mut sites);

    // Voronoi cells in a box well around the parent, clipped to the parent.
    let rect = parent.bounding_rect().expect("non-empty parent");
    let (lo, hi) = frame_box(frame, rect, &sites);
    let cells = geom::voronoi_cells(&sites, lo, hi);
    let mut fallbacks = [0usize; 2];
    let placed: Vec<Placed> = children
        .iter()
        .zip(urban)
        .zip(sites.iter().zip(&cells))
        .map(|((&c, &u), (&site, cell))| {
            let polygon = derive_polygon(parent, &geom::cell_polygon(frame, cell), &mut fallbacks);
            if polygon.is_none() {
                notes.push(format!(
                    "{} {}: its Voronoi cell does not meet its parent; it has no area (and nothing below it)",
                    div.get(c).code,
                    div.get(c).name
                ));
            }
            Placed { unit: c, point: frame.inv(site), polygon, derived: true, urban: u, remoteness: 0.0 }
        })
        .collect();
    if let Some(parent_unit) = children.first().and_then(|&c| div.get(c).parent) {
        notes.extend(fallback_note(&div.get(parent_unit).code, fallbacks));
    }
    placed
}

/// A frame box containing `rect` and every site, with a wide margin.
pub(super) fn frame_box(frame: &Frame, rect: Rect<f64>, sites: &[P]) -> (P, P) {
    let a = frame.fwd(rect.min());
    let b = frame.fwd(rect.max());
    let mut lo = [a[0].min(b[0]), a[1].min(b[1])];
    let mut hi = [a[0].max(b[0]), a[1].max(b[1])];
    for s in sites {
        lo = [lo[0].min(s[0]), lo[1].min(s[1])];
        hi = [hi[0].max(s[0]), hi[1].max(s[1])];
    }
    let m = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(1e-6);
    ([lo[0] - m, lo[1] - m], [hi[0] + m, hi[1] + m])
}

/// `cell ∩ parent`, rounded to 7 decimals when that stays valid; None when empty.
/// `fallbacks` counts those kept unrounded (`[0]`) and those invalid even so (`[1]`).
pub(super) fn derive_polygon(
    parent: &MultiPolygon<f64>,
    cell: &geo::Polygon<f64>,
    fallbacks: &mut [usize; 2],
) -> Option<MultiPolygon<f64>> {
    let raw = geom::clip(parent, cell);
    if raw.0.is_empty() {
        return None;
    }
    let rounded = geom::round_mp(&raw);
    if !rounded.0.is_empty() && rounded.is_valid() {
        return Some(rounded);
    }
    fallbacks[0] += 1;
    if !raw.is_valid() {
        fallbacks[1] += 1;
    }
    Some(raw)
}

/// A note on polygons that could not be rounded or are invalid, if any.
pub(super) fn fallback_note(what: &str, fallbacks: [usize; 2]) -> Option<String> {
    (fallbacks[0] > 0).then(|| {
        format!(
            "{what}: {} derived polygons kept unrounded (rounding made them invalid), {} of them invalid even so",
            fallbacks[0], fallbacks[1]
        )
    })
}
