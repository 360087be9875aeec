//! Households of each village: how many, where, with which status (pure).

use super::*;

/// One village ready for households.
pub(super) struct VillageJob<'a> {
    pub(super) county: &'a CountyOut,
    pub(super) township: UnitIdx,
    pub(super) village: &'a Placed,
    pub(super) polygon: &'a MultiPolygon<f64>,
    pub(super) pastoral: bool,
    pub(super) count: usize,
}

/// The households and grids of one village.
pub(super) struct VillageOut {
    pub(super) households: Vec<HouseholdRow>,
    pub(super) grids: Vec<(String, String, MultiPolygon<f64>)>,
    /// Grid polygons kept unrounded, and invalid even so.
    pub(super) fallbacks: [usize; 2],
}

pub(super) fn households_and_grids(
    ctx: &Ctx,
    outs: &[CountyOut],
    pastoral: &HashSet<UnitIdx>,
    params: &GenerateParams,
) -> Result<(Households, Grids, Vec<String>), GenerateError> {
    let div = ctx.div;
    let mut jobs: Vec<VillageJob> = Vec::new();
    let mut weights = Vec::new();
    for o in outs {
        let is_pastoral = pastoral.contains(&o.county);
        for v in &o.villages {
            let Some(polygon) = &v.polygon else { continue };
            let mut rng = unit_rng(ctx.seed, &div.get(v.unit).code, "weight");
            let base = if v.urban {
                3.0
            } else if is_pastoral {
                0.5
            } else {
                1.0
            };
            let noise: f64 = LogNormal::new(0.0, 0.45).expect("valid").sample(&mut rng);
            weights.push(base * noise);
            let township = div.get(v.unit).parent.expect("a village has a parent");
            jobs.push(VillageJob { county: o, township, village: v, polygon, pastoral: is_pastoral, count: 0 });
        }
    }
    if jobs.is_empty() {
        if params.households > 0 {
            return Err(GenerateError::NoVillageAreas { households: params.households });
        }
        return Ok((Households::default(), Grids::default(), Vec::new()));
    }
    for (j, n) in jobs.iter_mut().zip(largest_remainder(&weights, params.households)) {
        j.count = n;
    }

    let mut households = Households::default();
    let mut grids = Grids::default();
    let mut ungridded = 0usize;
    let mut next_id = 1usize;
    let mut fallbacks = [0usize; 2];
    // A block of villages at a time: their households wait as rows only until they are
    // columns (45 million rows at once would take several times the columns' memory).
    for block in jobs.chunks(VILLAGE_BLOCK) {
        let results: Vec<VillageOut> = block.par_iter().map(|j| village_households(ctx, j, params)).collect();
        for (j, r) in block.iter().zip(results) {
            fallbacks[0] += r.fallbacks[0];
            fallbacks[1] += r.fallbacks[1];
            if j.count > 0 && r.grids.is_empty() {
                ungridded += 1;
            }
            for mut h in r.households {
                h.id = format!("H{next_id:09}");
                next_id += 1;
                households.push(h);
            }
            for (id, worker, mp) in r.grids {
                grids.id.push(id);
                grids.worker.push(worker);
                grids.unit.push(Some(j.village.unit));
                grids.geometry.push(mp);
            }
        }
    }
    let with_hh = jobs.iter().filter(|j| j.count > 0).count();
    let mut notes = vec![format!("{ungridded} of {with_hh} villages with households have no grid")];
    notes.extend(fallback_note("grids", fallbacks));
    Ok((households, grids, notes))
}

/// Villages whose households are made at a time.
const VILLAGE_BLOCK: usize = 4096;

/// Splits `total` in proportion to `weights` (largest remainders; ties to the lower index).
pub(super) fn largest_remainder(weights: &[f64], total: usize) -> Vec<usize> {
    let sum: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| w / sum * total as f64).collect();
    let mut out: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let given: usize = out.iter().sum();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    for &i in order.iter().cycle().take(total.saturating_sub(given)) {
        out[i] += 1;
    }
    out
}

pub(super) fn village_households(ctx: &Ctx, job: &VillageJob, params: &GenerateParams) -> VillageOut {
    let div = ctx.div;
    let v = job.village;
    let code = &div.get(v.unit).code;
    let frame = &job.county.frame;
    let pip = Pip::new(job.polygon).expect("non-empty village");
    let mut rng = unit_rng(ctx.seed, code, "households");
    let size = geom::area_m2(job.polygon).sqrt();
    let centre = frame.fwd(v.point);

    // Hamlet centres and their spreads.
    let mut hamlets: Vec<(P, f64, f64)> = Vec::new(); // centre, sigma, weight
    if v.urban {
        hamlets.push((centre, Frame::units((0.25 * size).clamp(150.0, 600.0)), 1.0));
    } else {
        let sigma = Frame::units((0.2 * size).clamp(300.0, 2_000.0));
        hamlets.push((centre, sigma, 0.6));
        let extra = rng.random_range(0..=2usize);
        for _ in 0..extra {
            if let Some(c) = pip.sample_uniform(&mut rng, 200) {
                hamlets.push((frame.fwd(c), 0.5 * sigma, 0.4 / extra as f64));
            }
        }
    }
    let total_w: f64 = hamlets.iter().map(|h| h.2).sum();

    let address_prefix = format!(
        "{}{}{}",
        div.get(job.county.county).name,
        div.get(job.township).name,
        names::short(&div.get(v.unit).name)
    );
    let hardship = if v.urban { 0.05 } else { 0.09 };
    let mut households = Vec::with_capacity(job.count);
    let mut points = Vec::with_capacity(job.count);
    for _ in 0..job.count {
        let c = loop {
            let raw = if job.pastoral {
                pip.sample_uniform(&mut rng, 2_000)
            } else {
                let mut u = rng.random::<f64>() * total_w;
                let mut h = hamlets[0];
                for &x in &hamlets {
                    h = x;
                    if u < x.2 {
                        break;
                    }
                    u -= x.2;
                }
                pip.sample_normal(&mut rng, frame, h.0, h.1, 30).or_else(|| pip.sample_uniform(&mut rng, 2_000))
            };
            let c = raw.unwrap_or(v.point);
            let r = Coord { x: geom::round7(c.x), y: geom::round7(c.y) };
            if pip.contains(r) {
                break r;
            }
            if raw.is_none() {
                break c; // a sliver village: the seed point is the best there is
            }
        };
        let u: f64 = rng.random();
        let veterans = if u < 0.79 {
            1
        } else if u < 0.96 {
            2
        } else {
            3
        };
        let address = if v.urban {
            format!("{address_prefix}{}号楼{}单元", rng.random_range(1..=40u32), rng.random_range(1..=6u32))
        } else {
            format!("{address_prefix}{}号", rng.random_range(1..=(job.count as u32 * 2 + 20)))
        };
        points.push(frame.fwd(c));
        households.push(HouseholdRow {
            id: String::new(),
            lon: c.x,
            lat: c.y,
            veterans,
            code: Some(v.unit),
            difficulty: rng.random_bool(hardship),
            martyr_family: rng.random_bool(0.03),
            name: Some(names::person(&mut rng)),
            address: Some(address),
        });
    }

    let mut grng = unit_rng(ctx.seed, code, "grids");
    let skip = if v.urban { params.ungridded_share * 0.4 } else { params.ungridded_share * 1.15 };
    let mut fallbacks = [0usize; 2];
    let grids = if job.count == 0 || grng.random_bool(skip.min(1.0)) {
        Vec::new()
    } else {
        make_grids(
            &mut grng,
            code,
            frame,
            job.polygon,
            &households,
            &points,
            params.max_grid_households,
            &mut fallbacks,
        )
    };
    VillageOut { households, grids, fallbacks }
}
