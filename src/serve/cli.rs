//! The server's commands: `gridcover serve`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{default_web_dir, load_world, run_state, Limits};
use crate::app;
use crate::store::Store;

/// `gridcover serve`: loads the data folder from its store (importing it first on a first
/// start), analyses it and serves it on `addr`, with a progress line for each step.
pub fn serve(data: Option<&Path>, addr: SocketAddr, web: Option<PathBuf>) -> anyhow::Result<()> {
    let t = Instant::now();
    let dir = app::data_dir(data, &app::quiet)?;
    // The store is the truth once it exists: stations as edited, households' statuses. A folder
    // never imported is imported first.
    let store = Store::open(&dir)?;
    if !store.is_imported()? {
        eprintln!("gridcover: first start: importing {} into its store …", dir.display());
        let t0 = Instant::now();
        store.import(&dir)?;
        eprintln!("gridcover: imported in {:.1} s", t0.elapsed().as_secs_f64());
    }
    eprintln!("gridcover: loading {} from its store …", dir.display());
    let t1 = Instant::now();
    let ds = store.load_dataset(&dir)?;
    eprintln!(
        "gridcover: {} households, {} stations, {} grids read in {:.1} s; analysing …",
        ds.households.len(),
        ds.stations.len(),
        ds.grids.len(),
        t1.elapsed().as_secs_f64()
    );
    let t2 = Instant::now();
    let state = super::edits::state_with_store(store, ds, Limits::default(), web.or_else(default_web_dir))?;
    eprintln!(
        "gridcover: analysed in {:.1} s; ready {:.1} s after start",
        t2.elapsed().as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    run_state(state, addr)
}

/// `gridcover tiles`: writes every aggregate layer's non-empty tiles from its minimum zoom to
/// `max_zoom` over the data's extent into `out/{layer}/{z}/{x}/{y}.mvt`, with a TileJSON
/// `out/{layer}.json` (tile URLs relative to `out/`). Households appear as counts in cells,
/// as leaders see them; no household's identity or position is written. Returns the number of
/// tiles written.
pub fn tiles(data: Option<&Path>, out: &Path, max_zoom: u8) -> anyhow::Result<usize> {
    use anyhow::Context;
    use rayon::prelude::*;

    use super::geom::{mercator, TileId};
    use super::tiles::{render, tilejson_value, Layer};

    anyhow::ensure!(max_zoom <= super::tiles::MAX_ZOOM, "--max-zoom must be at most {}", super::tiles::MAX_ZOOM);
    let world = load_world(data)?;
    // Offline tiles are what leaders see: the disclosure policy's aggregate view.
    let view = world.aggregate_view();
    let e = world.extent;
    anyhow::ensure!(!e.is_empty(), "the data folder has no geometry to tile");
    let mut written = 0usize;
    let mut bytes = 0usize;
    for layer in Layer::ALL {
        let name = layer.name();
        for z in layer.min_zoom()..=max_zoom {
            let n = 1u32 << z;
            let (x0, y0) = mercator(e.min_x, e.max_y);
            let (x1, y1) = mercator(e.max_x, e.min_y);
            let cl = |v: f64| ((v * f64::from(n)).floor().max(0.0) as u32).min(n - 1);
            let ids: Vec<TileId> =
                (cl(x0)..=cl(x1)).flat_map(|x| (cl(y0)..=cl(y1)).map(move |y| TileId { z, x, y })).collect();
            let results: Vec<anyhow::Result<usize>> = ids
                .par_iter()
                .map(|t| {
                    let b = render(&world, &view, layer, *t);
                    if b.is_empty() {
                        return Ok(0);
                    }
                    let dir = out.join(&name).join(t.z.to_string()).join(t.x.to_string());
                    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
                    let p = dir.join(format!("{}.mvt", t.y));
                    std::fs::write(&p, &b).with_context(|| format!("cannot write {}", p.display()))?;
                    Ok(b.len())
                })
                .collect();
            for r in results {
                let b = r?;
                if b > 0 {
                    written += 1;
                    bytes += b;
                }
            }
        }
        let tj = tilejson_value(&world, layer, ".", max_zoom, true);
        let p = out.join(format!("{name}.json"));
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        std::fs::write(&p, serde_json::to_string_pretty(&tj)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
        eprintln!("gridcover: {name}: zooms {}–{max_zoom} written", layer.min_zoom());
    }
    eprintln!("gridcover: {written} tiles, {:.1} MB, in {}", bytes as f64 / 1e6, out.display());
    Ok(written)
}
