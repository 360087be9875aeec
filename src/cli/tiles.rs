//! `gridcover tiles`: every aggregate layer's vector tiles into a folder, for offline use.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use rayon::prelude::*;

use super::data::load_analysed;
use super::{CliError, DataArg};
use crate::output::atomic::write_atomic;
use crate::output::OutputError;
use crate::serve::geom::{mercator, TileId};
use crate::serve::tiles::{render, tilejson_value, Layer, MAX_ZOOM};
use crate::serve::World;

/// Arguments of `gridcover tiles`.
#[derive(Args)]
pub struct TilesArgs {
    #[command(flatten)]
    data: DataArg,
    /// Output folder (created).
    #[arg(long, default_value = "tiles")]
    out: PathBuf,
    /// Deepest zoom written (at most 16).
    #[arg(long, default_value_t = 10)]
    max_zoom: u8,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io { path: path.to_path_buf(), source }
}

/// Runs `gridcover tiles`: writes every aggregate layer's non-empty tiles from its minimum zoom
/// to `--max-zoom` over the data's extent into `OUT/{layer}/{z}/{x}/{y}.mvt`, with a TileJSON
/// `OUT/{layer}.json` (tile URLs relative to `OUT/`). Households appear as counts in cells, as
/// leaders see them; no household's identity or position is written.
///
/// # Errors
/// A `--max-zoom` above 16, a data folder that cannot be read or has no geometry (exit 2); a
/// tile that cannot be written (1).
pub fn run(a: &TilesArgs) -> Result<(), CliError> {
    if a.max_zoom > MAX_ZOOM {
        return Err(CliError::Usage(format!("--max-zoom must be at most {MAX_ZOOM}, got {}", a.max_zoom)));
    }
    let t = Instant::now();
    let (ds, an) = load_analysed(a.data.data.as_deref())?;
    let world = World::new(ds, an);
    eprintln!(
        "gridcover: {} households, {} stations, {} grids, {} admin units analysed in {:.1} s",
        world.ds().households.len(),
        world.ds().stations.len(),
        world.ds().grids.len(),
        world.ds().divisions.len(),
        t.elapsed().as_secs_f64()
    );
    write_tiles(&world, &a.out, a.max_zoom)?;
    Ok(())
}

/// Writes the tiles and TileJSONs of [`run`]; returns the number of tiles written.
///
/// # Errors
/// No geometry to tile (exit 2); a tile that cannot be encoded or a file that cannot be
/// written (1).
pub fn write_tiles(world: &World, out: &Path, max_zoom: u8) -> Result<usize, CliError> {
    // Offline tiles are what leaders see: the disclosure policy's aggregate view.
    let view = world.aggregate_view();
    let e = world.extent;
    if e.is_empty() {
        return Err(CliError::Usage("the data folder has no geometry to tile".into()));
    }
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
            let results: Vec<Result<usize, CliError>> = ids
                .par_iter()
                .map(|t| {
                    let b = render(world, &view, None, layer, *t)?;
                    if b.is_empty() {
                        return Ok(0);
                    }
                    let dir = out.join(&name).join(t.z.to_string()).join(t.x.to_string());
                    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
                    // Tiles are many small files that can always be written again: plain
                    // writes, not one fsync each; the TileJSONs below are written atomically.
                    let p = dir.join(format!("{}.mvt", t.y));
                    std::fs::write(&p, &b).map_err(io(&p))?;
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
        let tj = tilejson_value(world, layer, ".", max_zoom, true);
        let p = out.join(format!("{name}.json"));
        std::fs::create_dir_all(out).map_err(io(out))?;
        let text = serde_json::to_string_pretty(&tj).expect("a JSON value serialises");
        write_atomic(&p, text.as_bytes()).map_err(io(&p))?;
        eprintln!("gridcover: {name}: zooms {}–{max_zoom} written", layer.min_zoom());
    }
    eprintln!("gridcover: {written} tiles, {:.1} MB, in {}", bytes as f64 / 1e6, out.display());
    Ok(written)
}
