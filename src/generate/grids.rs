//! Grids of each village: k-means over its households, cut from its area (pure).

use super::*;

/// Splits a village into grids of at most `cap` households (see the module docs).
#[allow(clippy::too_many_arguments)]
pub(super) fn make_grids(
    rng: &mut ChaCha8Rng,
    code: &str,
    frame: &Frame,
    polygon: &MultiPolygon<f64>,
    households: &[HouseholdRow],
    points: &[P],
    cap: usize,
    fallbacks: &mut [usize; 2],
) -> Vec<(String, String, MultiPolygon<f64>)> {
    let n = households.len();
    let mut k = n.div_ceil(cap);
    // Households stacked on one spot cannot be split; stop growing k at some point.
    let k_max = (4 * k + 8).min(n);
    let polys: Vec<MultiPolygon<f64>> = if k <= 1 {
        vec![polygon.clone()]
    } else {
        loop {
            let mut centres = kmeans(rng, points, k);
            geom::make_distinct(&mut centres);
            let rect = polygon.bounding_rect().expect("non-empty village");
            let (lo, hi) = frame_box(frame, rect, &centres);
            let cells = geom::voronoi_cells(&centres, lo, hi);
            let polys: Vec<MultiPolygon<f64>> = cells
                .iter()
                .filter_map(|c| derive_polygon(polygon, &geom::cell_polygon(frame, c), fallbacks))
                .collect();
            let pips: Vec<Pip> = polys.iter().filter_map(Pip::new).collect();
            let mut counts = vec![0usize; pips.len()];
            for h in households {
                for (i, p) in pips.iter().enumerate() {
                    if p.contains(Coord { x: h.lon, y: h.lat }) {
                        counts[i] += 1;
                    }
                }
            }
            if counts.iter().all(|&c| c <= cap) || k >= k_max {
                break polys;
            }
            k += 1;
        }
    };
    polys.into_iter().enumerate().map(|(i, mp)| (format!("G{code}-{}", i + 1), names::person(rng), mp)).collect()
}

/// A few rounds of Lloyd's k-means from a k-means++ start; empty clusters restart at the
/// point farthest from its centre.
pub(super) fn kmeans(rng: &mut ChaCha8Rng, points: &[P], k: usize) -> Vec<P> {
    let mut centres = vec![points[rng.random_range(0..points.len())]];
    let mut d2: Vec<f64> = points.iter().map(|&p| geom::dist2(p, centres[0])).collect();
    while centres.len() < k {
        let sum: f64 = d2.iter().sum();
        let next = if sum > 0.0 {
            let mut u = rng.random::<f64>() * sum;
            let mut idx = points.len() - 1;
            for (i, &d) in d2.iter().enumerate() {
                if u < d {
                    idx = i;
                    break;
                }
                u -= d;
            }
            points[idx]
        } else {
            points[rng.random_range(0..points.len())]
        };
        centres.push(next);
        for (d, &p) in d2.iter_mut().zip(points) {
            *d = d.min(geom::dist2(p, next));
        }
    }
    let mut assign = vec![0usize; points.len()];
    for _ in 0..15 {
        for (a, &p) in assign.iter_mut().zip(points) {
            *a = (0..k).min_by(|&x, &y| geom::dist2(p, centres[x]).total_cmp(&geom::dist2(p, centres[y]))).unwrap_or(0);
        }
        let mut sums = vec![[0.0f64; 3]; k];
        for (&a, &p) in assign.iter().zip(points) {
            sums[a][0] += p[0];
            sums[a][1] += p[1];
            sums[a][2] += 1.0;
        }
        for (c, s) in centres.iter_mut().zip(&sums) {
            if s[2] > 0.0 {
                *c = [s[0] / s[2], s[1] / s[2]];
            }
        }
        for ci in 0..k {
            if sums[ci][2] == 0.0 {
                let far = (0..points.len())
                    .max_by(|&x, &y| {
                        geom::dist2(points[x], centres[assign[x]])
                            .total_cmp(&geom::dist2(points[y], centres[assign[y]]))
                    })
                    .unwrap_or(0);
                centres[ci] = points[far];
                assign[far] = ci;
            }
        }
    }
    centres
}
