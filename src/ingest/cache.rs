//! The working form of a polygon layer (I/O): the features of `boundaries.geojson` and
//! `grids.geojson` as read and checked — properties, WGS84 multipolygons, the reason a feature
//! or its geometry was refused — kept in a compact binary file beside the input and read back
//! instead of the GeoJSON while the input is unchanged.
//!
//! GeoJSON stays the interchange format; parsing it is most of the time a national folder
//! takes to read (a 700 MB `boundaries.geojson` of 660,000 units and a 280 MB
//! `grids.geojson`: text to numbers, GCJ-02 to WGS84, the validity checks). The cache holds
//! the result of all of that, so a hit costs a hash of the input and a copy of its coordinates.
//!
//! - **Where:** `.gridcover-cache/<file name>.geo` in the input's folder, one file per input.
//! - **Key:** the SHA-256 of the input's bytes, the CRS it is read in, the cache format and
//!   gridcover's version. A file whose key differs is not used and is replaced; one that cannot
//!   be decoded (truncated, damaged, another format) is treated as absent. A hit gives exactly
//!   the features the GeoJSON gives, so rejects, notes and every output are the same.
//! - **Writing** is best effort, into a temporary file synced and renamed into place
//!   (`replace_file`, with the input's permissions): a folder that cannot
//!   be written (read-only data) only costs the next run the parse again, with a note on
//!   standard error.
//! - `GRIDCOVER_GEO_CACHE=off` in the environment reads the GeoJSON every time and writes no
//!   cache (benchmarks compare both ways with it); it turns off the cache of the folder's
//!   service records files too (`crate::store::folder_records`).
//!
//! - **Scoped reads:** reading a cache walks the records and parses only the properties; a
//!   feature's geometry is decoded when it is asked for, so a read limited to one region
//!   (`gridcover plan --within`) skips the coordinates of every feature it does not need,
//!   choosing them by the bounding box each record carries.
//!
//! Format 2 (little-endian): the 16-byte magic, the 32-byte key, the feature count (u64), then
//! per feature a tag byte — 0 not a feature (its reason), 1 a feature whose geometry was refused
//! (properties as JSON, the reason), 2 a feature with its geometry (properties as JSON, its
//! bounding box as four `f64` — min x, min y, max x, max y; NaN for a geometry without points —,
//! then polygon count, per polygon its ring count, per ring its coordinate count and the `f64`
//! pairs) — each string a u32 length and UTF-8 bytes.

use std::path::{Path, PathBuf};

use geo::{Coord, LineString, MultiPolygon, Polygon};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::table::PolygonFeature;
use crate::crs::Crs;
use crate::model::Bbox;

const MAGIC: &[u8; 16] = b"gridcover-geo\0v2";
const FORMAT: u32 = 2;

/// The folder of the caches, inside the input's folder.
pub const CACHE_DIR: &str = ".gridcover-cache";

/// Whether caches of the inputs are used (`GRIDCOVER_GEO_CACHE=off` turns them off: this
/// one and the data folder's service records' cache, `crate::store::folder_records`).
pub(crate) fn enabled() -> bool {
    !matches!(std::env::var("GRIDCOVER_GEO_CACHE").as_deref(), Ok("off" | "0" | "false"))
}

/// The cache file of `input`.
pub fn cache_path(input: &Path) -> PathBuf {
    let dir = input.parent().unwrap_or(Path::new("."));
    let name = input.file_name().map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned());
    dir.join(CACHE_DIR).join(format!("{name}.geo"))
}

/// The key of `bytes` read in `crs`.
fn key(bytes: &[u8], crs: &Crs) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(bytes);
    key_end(h, crs)
}

/// The key of the file `path` read in `crs`, hashed as it is read (not held in memory), or from
/// its hash [remembered](sha256_remembered) moments before.
fn key_of_file(path: &Path, crs: &Crs) -> std::io::Result<[u8; 32]> {
    if let Some(h) = take_remembered(path) {
        return Ok(key_end(h, crs));
    }
    let mut h = Sha256::new();
    hash_file(path, &mut h)?;
    Ok(key_end(h, crs))
}

/// What tells a file changed: its length, modification time and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    ino: u64,
}

/// The [`Stamp`] of the file at `path`.
pub(crate) fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Ok(Stamp { len: m.len(), modified: m.modified().ok(), ino })
}

/// The SHA-256 states of whole files hashed by [`sha256_remembered`], each taken by the next
/// [`key_of_file`] of the same file, unchanged since; the last few only.
static REMEMBERED: std::sync::Mutex<Vec<(PathBuf, Stamp, Sha256)>> = std::sync::Mutex::new(Vec::new());

/// Remembered at most.
const REMEMBER: usize = 8;

/// SHA-256 of the file at `path`, whose hash is remembered for its cache's key: the store's
/// import fingerprints its inputs, then reads them, and a GeoJSON layer's cache key hashes the
/// same bytes (700 MB of national boundaries): the next [`key_of_file`] of the file takes
/// the remembered hash instead of reading the file again, while the file's length,
/// modification time and inode are those it had when it was hashed.
///
/// # Errors
/// As reading the file.
pub(crate) fn sha256_remembered(path: &Path) -> std::io::Result<[u8; 32]> {
    let before = stamp(path)?;
    let mut h = Sha256::new();
    hash_file(path, &mut h)?;
    if stamp(path)? == before {
        let mut known = REMEMBERED.lock().unwrap_or_else(|p| p.into_inner());
        known.retain(|(p, _, _)| p != path);
        if known.len() == REMEMBER {
            known.remove(0);
        }
        known.push((path.to_path_buf(), before, h.clone()));
    }
    Ok(h.finalize().into())
}

/// The remembered hash of `path` (taken: used once), when the file is unchanged since.
fn take_remembered(path: &Path) -> Option<Sha256> {
    let mut known = REMEMBERED.lock().unwrap_or_else(|p| p.into_inner());
    let k = known.iter().position(|(p, _, _)| p == path)?;
    let (_, was, h) = known.remove(k);
    (stamp(path).ok()? == was).then_some(h)
}

/// Feeds the file at `path` to `h` a block at a time ([`each_block`]).
pub(crate) fn hash_file(path: &Path, h: &mut Sha256) -> std::io::Result<()> {
    each_block(path, |b| h.update(b))
}

/// Gives the file at `path` to `f` a block (1 MiB) at a time, for hashing: a national input
/// (GeoJSON of hundreds of MB, a `contacts.csv` of GBs) is never held in memory to be hashed.
pub(crate) fn each_block(path: &Path, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => f(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn key_end(mut h: Sha256, crs: &Crs) -> [u8; 32] {
    h.update(b"\0crs=");
    h.update(crs.to_string().as_bytes());
    h.update(b"\0format=");
    h.update(FORMAT.to_le_bytes());
    h.update(b"\0gridcover=");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.finalize().into()
}

/// The features of the polygon layer `path`, from its cache when the cache matches the input's
/// content and `crs` (the input is hashed as it is read, not held), else from `parse` of what
/// `read` gives, whose answer is then cached.
pub(crate) fn cached<E>(
    path: &Path,
    crs: &Crs,
    read: impl FnOnce() -> Result<Vec<u8>, E>,
    parse: impl FnOnce(Vec<u8>) -> Result<Vec<PolygonFeature>, E>,
) -> Result<LazyFeatures, E> {
    if !enabled() {
        return Ok(LazyFeatures::ready(parse(read()?)?));
    }
    let cp = cache_path(path);
    // The input is hashed while the cache is read; a file that cannot be hashed is read below,
    // for its error.
    let (k, data) = rayon::join(|| key_of_file(path, crs), || std::fs::read(&cp));
    if let (Ok(k), Ok(data)) = (k, data) {
        if let Some(features) = decode(data, &k) {
            return Ok(features);
        }
    }
    let bytes = read()?;
    // The key of what is parsed (the file may have changed since it was hashed).
    let k = key(&bytes, crs);
    let features = parse(bytes)?;
    if let Err(e) = write(&cp, &encode(&features, &k), path) {
        eprintln!("note: {} could not be written ({e}); the next run reads {} again", cp.display(), path.display());
    }
    Ok(LazyFeatures::ready(features))
}

/// Writes the cache file `cp` of the input `like` whole ([`replace_file`], with the input's
/// permissions: `grids.geojson` names the grid workers, and what the cache holds is no more open
/// than the file it holds it of).
fn write(cp: &Path, bytes: &[u8], like: &Path) -> std::io::Result<()> {
    use std::io::Write;
    replace_file(cp, Some(like), |w| w.write_all(bytes))
}

/// Replaces the cache file at `path` whole with what `write` writes: into a temporary file of
/// its own beside it (processes and threads writing the same cache at once each write theirs),
/// with the permissions of `like` when given, synced, then renamed into place, so that a crash
/// leaves the old file or the new one, never a part. On failure the temporary file is removed.
/// Every cache file is written so: the polygon layers' here, the store's and the service
/// records' (`crate::store`'s `cache_file::replace`).
///
/// # Errors
/// The step that failed (folder, create, permissions, write, sync, rename).
pub(crate) fn replace_file(
    path: &Path,
    like: Option<&Path>,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map_or_else(|| "cache".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    let done = (|| {
        let f = std::fs::File::create(&tmp)?;
        if let Some(like) = like {
            f.set_permissions(std::fs::metadata(like)?.permissions())?;
        }
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        write(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    })()
    .and_then(|()| std::fs::rename(&tmp, path));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

/// The cache file's bytes for `features` under `key`.
pub(crate) fn encode(features: &[PolygonFeature], key: &[u8; 32]) -> Vec<u8> {
    let coords: usize = features
        .iter()
        .filter_map(|f| f.as_ref().ok()?.1.as_ref().ok())
        .map(|mp| {
            mp.0.iter()
                .map(|p| p.exterior().0.len() + p.interiors().iter().map(|r| r.0.len()).sum::<usize>())
                .sum::<usize>()
        })
        .sum();
    let mut out = Vec::with_capacity(64 + coords * 16 + features.len() * 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(key);
    out.extend_from_slice(&(features.len() as u64).to_le_bytes());
    for f in features {
        match f {
            Err(reason) => {
                out.push(0);
                put_str(&mut out, reason);
            }
            Ok((props, geometry)) => {
                let props = serde_json::to_string(props).unwrap_or_else(|_| "{}".into());
                match geometry {
                    Err(reason) => {
                        out.push(1);
                        put_str(&mut out, &props);
                        put_str(&mut out, reason);
                    }
                    Ok(mp) => {
                        out.push(2);
                        put_str(&mut out, &props);
                        let b = bbox_of(mp).map_or([f64::NAN; 4], |b| b.to_array());
                        for v in b {
                            out.extend_from_slice(&v.to_le_bytes());
                        }
                        put_u32(&mut out, mp.0.len());
                        for p in &mp.0 {
                            put_u32(&mut out, 1 + p.interiors().len());
                            for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
                                put_u32(&mut out, ring.0.len());
                                for c in &ring.0 {
                                    out.extend_from_slice(&c.x.to_le_bytes());
                                    out.extend_from_slice(&c.y.to_le_bytes());
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// A bounds-checked reader of the cache's bytes: every read that would run past the end is
/// `None`, so a damaged file is a miss, never a panic.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = self.u32()?;
        std::str::from_utf8(self.take(n)?).ok()
    }
    fn f64(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    /// Skips one feature's record (checking only its bounds and counts), for the parallel
    /// decode; for a feature with a geometry, its bounding box and where its polygons start.
    fn skip_feature(&mut self) -> Option<Option<(Option<Bbox>, usize)>> {
        match self.u8()? {
            0 => {
                self.str()?;
                Some(None)
            }
            1 => {
                self.str()?;
                self.str()?;
                Some(None)
            }
            2 => {
                self.str()?;
                let (x0, y0, x1, y1) = (self.f64()?, self.f64()?, self.f64()?, self.f64()?);
                let bbox = (!x0.is_nan()).then(|| Bbox::new(x0, y0, x1, y1));
                let at = self.at;
                for _ in 0..self.u32()? {
                    for _ in 0..self.u32()? {
                        let n = self.u32()?;
                        self.take(n.checked_mul(16)?)?;
                    }
                }
                Some(Some((bbox, at)))
            }
            _ => None,
        }
    }
    fn ring(&mut self) -> Option<LineString<f64>> {
        let n = self.u32()?;
        let raw = self.take(n.checked_mul(16)?)?;
        Some(LineString(
            raw.chunks_exact(16)
                .map(|c| Coord {
                    x: f64::from_le_bytes(c[..8].try_into().unwrap_or_default()),
                    y: f64::from_le_bytes(c[8..].try_into().unwrap_or_default()),
                })
                .collect(),
        ))
    }
    /// A feature's tag and properties (and the reason of a refused one), its geometry left
    /// where it is.
    fn head(&mut self) -> Option<LazyFeature> {
        let props = |s: &str| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(s).ok();
        Some(match self.u8()? {
            0 => Err(self.str()?.to_string()),
            1 => {
                let p = props(self.str()?)?;
                Ok((p, Err(self.str()?.to_string())))
            }
            2 => Ok((props(self.str()?)?, Ok(LazyGeom { bbox: None, src: GeomSrc::Cached(0) }))),
            _ => return None,
        })
    }
    /// The polygons of a record, from where they start.
    fn multipolygon(&mut self) -> Option<MultiPolygon<f64>> {
        let n = self.u32()?;
        let mut polys = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let rings = self.u32()?;
            if rings == 0 {
                return None;
            }
            let exterior = self.ring()?;
            let mut interiors = Vec::with_capacity((rings - 1).min(1 << 16));
            for _ in 1..rings {
                interiors.push(self.ring()?);
            }
            polys.push(Polygon::new(exterior, interiors));
        }
        Some(MultiPolygon(polys))
    }
}

/// The bounding box of a geometry (`None` without points): what a cache record carries.
pub(crate) fn bbox_of(mp: &MultiPolygon<f64>) -> Option<Bbox> {
    use geo::BoundingRect;
    mp.bounding_rect().map(|r| Bbox::new(r.min().x, r.min().y, r.max().x, r.max().y))
}

/// A feature's checked geometry: decoded, or where it lies in a cache's bytes.
#[derive(Debug)]
pub(crate) struct LazyGeom {
    /// Its bounding box (`None` without points).
    pub bbox: Option<Bbox>,
    src: GeomSrc,
}

#[derive(Debug)]
enum GeomSrc {
    Ready(MultiPolygon<f64>),
    /// Offset of the polygons in [`LazyFeatures::bytes`].
    Cached(usize),
    /// Given out by [`LazyFeatures::geometries`].
    Taken,
}

/// A [`PolygonFeature`] whose geometry is decoded on demand.
pub(crate) type LazyFeature = Result<(serde_json::Map<String, serde_json::Value>, Result<LazyGeom, String>), String>;

/// The features of a polygon layer, in file order, their geometries decoded when asked for.
#[derive(Debug)]
pub(crate) struct LazyFeatures {
    /// The cache file's bytes (empty when every geometry is decoded).
    bytes: Vec<u8>,
    /// The features.
    pub features: Vec<LazyFeature>,
}

impl LazyFeatures {
    /// Features already decoded (from the GeoJSON).
    pub(crate) fn ready(features: Vec<PolygonFeature>) -> Self {
        let features = features
            .into_iter()
            .map(|f| f.map(|(p, g)| (p, g.map(|mp| LazyGeom { bbox: bbox_of(&mp), src: GeomSrc::Ready(mp) }))))
            .collect();
        LazyFeatures { bytes: Vec::new(), features }
    }

    /// The geometries of the features at `wanted` (positions with a geometry, each at most
    /// once), decoded in parallel, in the order given.
    ///
    /// # Panics
    /// A position without a geometry or asked twice.
    pub(crate) fn geometries(&mut self, wanted: &[usize]) -> Vec<MultiPolygon<f64>> {
        let mut srcs: Vec<GeomSrc> = wanted
            .iter()
            .map(|&i| match &mut self.features[i] {
                Ok((_, Ok(g))) => std::mem::replace(&mut g.src, GeomSrc::Taken),
                _ => panic!("feature {i} has no geometry"),
            })
            .collect();
        let bytes = &self.bytes;
        srcs.par_iter_mut()
            .with_min_len(64)
            .map(|s| match std::mem::replace(s, GeomSrc::Taken) {
                GeomSrc::Ready(mp) => mp,
                // The record was walked whole when the cache was read: it decodes.
                GeomSrc::Cached(at) => Reader { b: bytes, at }.multipolygon().expect("a checked record"),
                GeomSrc::Taken => panic!("a geometry asked twice"),
            })
            .collect()
    }

    /// Every feature with its geometry (what reading the GeoJSON gives).
    #[cfg(test)]
    pub(crate) fn into_features(mut self) -> Vec<PolygonFeature> {
        let wanted: Vec<usize> =
            (0..self.features.len()).filter(|&i| matches!(self.features[i], Ok((_, Ok(_))))).collect();
        let mut geoms = self.geometries(&wanted).into_iter();
        self.features
            .into_iter()
            .map(|f| f.map(|(p, g)| (p, g.map(|_| geoms.next().expect("one per geometry")))))
            .collect()
    }
}

/// The features of a cache file whose key is `key`; `None` for another key or a file that is
/// not a whole cache.
pub(crate) fn decode(data: Vec<u8>, key: &[u8; 32]) -> Option<LazyFeatures> {
    let mut r = Reader { b: &data, at: 0 };
    if r.take(16)? != MAGIC || r.take(32)? != key {
        return None;
    }
    let n = usize::try_from(r.u64()?).ok()?;
    // Each record is at least 5 bytes: a count beyond that is a damaged file.
    if n > data.len() / 5 {
        return None;
    }
    let mut starts = Vec::with_capacity(n + 1);
    let mut geoms = Vec::with_capacity(n);
    for _ in 0..n {
        starts.push(r.at);
        geoms.push(r.skip_feature()?);
    }
    if r.at != data.len() {
        return None;
    }
    starts.push(r.at);
    let heads: Option<Vec<LazyFeature>> = starts
        .par_windows(2)
        .zip(geoms.into_par_iter())
        .with_min_len(256)
        .map(|(w, geom)| {
            let mut fr = Reader { b: &data[..w[1]], at: w[0] };
            let mut f = fr.head()?;
            if let (Ok((_, Ok(g))), Some((bbox, at))) = (&mut f, geom) {
                *g = LazyGeom { bbox, src: GeomSrc::Cached(at) };
            }
            Some(f)
        })
        .collect();
    Some(LazyFeatures { bytes: data, features: heads? })
}

#[cfg(test)]
mod tests {
    use geo::polygon;
    use serde_json::json;

    use super::*;

    fn features() -> Vec<PolygonFeature> {
        let square = polygon![(x: 100.0, y: 30.0), (x: 101.0, y: 30.0), (x: 101.0, y: 31.0), (x: 100.0, y: 30.0)];
        let holed = Polygon::new(
            LineString::from(vec![(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0), (0.0, 0.0)]),
            vec![LineString::from(vec![(2.0, 2.0), (2.0, 3.0), (3.0, 3.0), (2.0, 2.0)])],
        );
        let props = |v: serde_json::Value| v.as_object().cloned().unwrap();
        vec![
            Ok((
                props(json!({"code": "62", "name": "甘肃省", "level": "province", "n": 1.5e-7})),
                Ok(MultiPolygon(vec![square, holed])),
            )),
            Err("not a valid GeoJSON feature: missing field `type`".into()),
            Ok((props(json!({"code": 620102})), Err("invalid geometry: self-intersection".into()))),
            Ok((serde_json::Map::new(), Ok(MultiPolygon(vec![])))),
        ]
    }

    #[test]
    fn a_cache_gives_back_exactly_what_was_read() {
        let k = [7u8; 32];
        let f = features();
        assert_eq!(decode(encode(&f, &k), &k).map(LazyFeatures::into_features), Some(f));
    }

    #[test]
    fn another_key_or_a_damaged_file_is_a_miss() {
        let k = [7u8; 32];
        let bytes = encode(&features(), &k);
        assert!(decode(bytes.clone(), &[8u8; 32]).is_none(), "another key");
        for cut in [0, 10, 48, 56, 57, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(bytes[..cut].to_vec(), &k).is_none(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(longer, &k).is_none(), "trailing bytes");
        let mut bad_tag = bytes.clone();
        bad_tag[56] = 9;
        assert!(decode(bad_tag, &k).is_none(), "unknown tag");
        let mut huge = bytes;
        huge[48..56].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(huge, &k).is_none(), "count beyond the file");
    }

    #[test]
    fn the_key_changes_with_content_and_crs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.geojson");
        std::fs::write(&p, b"{}").unwrap();
        assert_eq!(key_of_file(&p, &Crs::Gcj02).unwrap(), key(b"{}", &Crs::Gcj02), "hashed as read");
        let a = key(b"{}", &Crs::Wgs84);
        assert_eq!(a, key(b"{}", &Crs::Wgs84));
        assert_ne!(a, key(b"{ }", &Crs::Wgs84));
        assert_ne!(a, key(b"{}", &Crs::Gcj02));
    }

    #[test]
    fn a_remembered_hash_gives_the_key_once_and_only_for_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.geojson");
        std::fs::write(&p, b"{\"a\": 1}").unwrap();
        let digest = sha256_remembered(&p).unwrap();
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(b"{\"a\": 1}")));
        assert_eq!(key_of_file(&p, &Crs::Wgs84).unwrap(), key(b"{\"a\": 1}", &Crs::Wgs84));
        assert!(take_remembered(&p).is_none(), "taken once");
        // Changed after it was hashed (another length, inode and time): hashed again.
        sha256_remembered(&p).unwrap();
        let q = dir.path().join("new");
        std::fs::write(&q, b"{\"a\": 22}").unwrap();
        std::fs::rename(&q, &p).unwrap();
        assert_eq!(key_of_file(&p, &Crs::Wgs84).unwrap(), key(b"{\"a\": 22}", &Crs::Wgs84));
    }

    #[cfg(unix)]
    #[test]
    fn the_cache_is_written_with_its_inputs_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("grids.geojson");
        for mode in [0o600, 0o640, 0o644] {
            std::fs::write(&p, format!("{{\"mode\": {mode}}}")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let read = || std::fs::read(&p);
            let got = cached(&p, &Crs::Wgs84, read, |_| Ok::<_, std::io::Error>(features())).unwrap();
            assert_eq!(got.into_features(), features());
            let cp = cache_path(&p);
            assert_eq!(std::fs::metadata(&cp).unwrap().permissions().mode() & 0o777, mode, "{mode:o}");
            // And it is what the next read gives.
            let again = cached(&p, &Crs::Wgs84, read, |_| -> Result<Vec<PolygonFeature>, std::io::Error> {
                panic!("parsed again")
            });
            assert_eq!(again.unwrap().into_features(), features());
        }
    }

    #[test]
    fn the_cache_sits_beside_the_input() {
        assert_eq!(
            cache_path(Path::new("/data/gansu/boundaries.geojson")),
            Path::new("/data/gansu/.gridcover-cache/boundaries.geojson.geo")
        );
    }
}
