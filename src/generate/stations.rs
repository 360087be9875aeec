//! Stations for every unit: service centres at the seats, village stations, mobile stations in pastoral counties (pure).

use super::*;

/// Stations for every unit (see the module docs for the rules).
pub(super) fn make_stations(
    ctx: &Ctx,
    outs: &[CountyOut],
    pastoral: &HashSet<UnitIdx>,
    notes: &mut Vec<String>,
) -> Stations {
    let div = ctx.div;
    let by_county: HashMap<UnitIdx, &CountyOut> = outs.iter().map(|o| (o.county, o)).collect();
    let mut placed: HashMap<UnitIdx, (&Placed, UnitIdx)> = HashMap::new();
    for o in outs {
        for p in o.townships.iter().chain(&o.villages) {
            placed.insert(p.unit, (p, o.county));
        }
    }
    // Seats of cities and the province: those of their first county / city with one.
    let mut seats: HashMap<UnitIdx, Coord<f64>> = outs.iter().map(|o| (o.county, o.seat)).collect();
    for level in [Level::City, Level::Province] {
        for u in div.at_level(level) {
            let child_seat = div.children(u).iter().find_map(|c| seats.get(c).copied());
            if let Some(s) = child_seat.or_else(|| ctx.areas.get(&u).map(|mp| fallback_point(mp))) {
                seats.insert(u, s);
            }
        }
    }

    let mut st = Stations::default();
    let mut outside = 0usize;
    let mut missing_area = 0usize;
    for (u, d) in div.iter() {
        let mut rng = unit_rng(ctx.seed, &d.code, "station");
        let (at, jitter_m, missing_p, demo_p, mobile) = match d.level {
            Level::Province | Level::City | Level::County => {
                let at = seats.get(&u).copied().or_else(|| {
                    // A county without a boundary: somewhere inside the nearest ancestor with one.
                    let mp = std::iter::successors(d.parent, |&p| div.get(p).parent).find_map(|p| ctx.areas.get(&p))?;
                    outside += 1;
                    let pip = Pip::new(mp)?;
                    Some(pip.sample_uniform(&mut rng, 5_000).unwrap_or_else(|| fallback_point(mp)))
                });
                let demo = match d.level {
                    Level::Province => 1.0,
                    Level::City => 0.5,
                    _ => 0.35,
                };
                (at, if d.level == Level::County { 150.0 } else { 300.0 }, 0.0, demo, false)
            }
            Level::Township | Level::Village => {
                let Some(&(p, county)) = placed.get(&u).filter(|(p, _)| p.polygon.is_some()) else {
                    missing_area += 1;
                    continue;
                };
                let is_pastoral = pastoral.contains(&county);
                let town = d.level == Level::Township;
                let missing = match (p.urban, is_pastoral, town) {
                    (true, _, _) => 0.005,
                    (false, true, true) => 0.08,
                    (false, true, false) => 0.12,
                    (false, false, true) => 0.022 * (0.4 + 1.2 * p.remoteness),
                    (false, false, false) => 0.022 * (0.4 + 1.2 * p.remoteness),
                };
                let mobile = !town && is_pastoral && rng.random_bool(0.35);
                (Some(p.point), if town { 100.0 } else { 60.0 }, missing, if town { 0.20 } else { 0.08 }, mobile)
            }
        };
        let Some(at) = at else { continue };
        if rng.random_bool(missing_p) {
            continue;
        }
        let demonstration = rng.random_bool(demo_p);
        // A little jitter, kept inside the unit's own polygon when it has one.
        let poly = placed.get(&u).and_then(|(p, _)| p.polygon.as_ref()).or_else(|| ctx.areas.get(&u).copied());
        let pip = poly.and_then(Pip::new);
        let frame = by_county
            .get(&div.ancestor(u, Level::County).unwrap_or(u))
            .map(|o| o.frame)
            .unwrap_or_else(|| Frame::around(Rect::new(at, at)));
        let mut pos = at;
        for _ in 0..20 {
            let dx: f64 = StandardNormal.sample(&mut rng);
            let dy: f64 = StandardNormal.sample(&mut rng);
            let p0 = frame.fwd(at);
            let s = Frame::units(jitter_m);
            let c = frame.inv([p0[0] + s * dx, p0[1] + s * dy]);
            let c = Coord { x: geom::round7(c.x), y: geom::round7(c.y) };
            if pip.as_ref().is_none_or(|p| p.contains(c)) {
                pos = c;
                break;
            }
        }
        st.push(StationRow {
            id: format!("S{}", d.code),
            name: names::station(d.level, &d.name, mobile),
            level: d.level,
            unit: u,
            lon: pos.x,
            lat: pos.y,
            demonstration,
            mobile,
            radius_m: None,
        });
    }
    if outside > 0 {
        notes.push(format!(
            "{outside} county stations of counties without a boundary were placed inside their parent area"
        ));
    }
    if missing_area > 0 {
        notes.push(format!("{missing_area} township and village units have no area and got no station"));
    }
    st
}
