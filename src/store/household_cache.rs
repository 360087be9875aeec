//! A file snapshot of the store's households, without names and addresses, for the server's
//! restart.
//!
//! Reading 45 million household rows from SQLite is a long step of a national restart (about
//! 30 s on one core: the rows are wide, with the names, addresses, statuses and import hashes
//! the server does not read at start). The columns the server reads — id, position, veterans,
//! given admin code, hardship and martyr's family — change only by an import (a status edit
//! touches `status` and `version` alone). So they are kept, as read, in
//! `.gridcover-cache/<store file>.households` beside the store, and the next start of the same
//! store state reads that file instead (a couple of seconds).
//!
//! - **Key:** SHA-256 of the format and the store's import history as two imports: its first
//!   (id, time, files' SHA-256: another store, even of the same folder, has another) and its
//!   last (every import adds one, so the households as any import left them have their own
//!   key). Any other key is a miss.
//! - **Content:** the columns, little endian: the ids as text and ends (the Arrow layout of
//!   [`StrColumn`]), longitude and latitude (`f64`), veterans (`u32`), the given admin code as
//!   an index into the file's own list of codes (`u32`, `u32::MAX` for none: the codes are
//!   matched to the folder's divisions at each load, so a change of `divisions.csv` cannot
//!   shift them), and hardship and martyr's family as two bits of a byte.
//! - **Checks:** a file of the wrong size, ids that are not UTF-8 or whose ends do not fit, a
//!   code index out of range or a code the divisions do not hold is a miss (the store is read
//!   as if there were no file). A file is written to a temporary name, synced and renamed, so a
//!   crash leaves the old file or the new one. Failing to write it costs the next start its
//!   time, nothing else: a note on stderr.
//!
//! Household personal data: the file holds each household's id, place, veterans and the two
//! sensitive flags (hardship, martyr's family), no name or address. It is never served; it sits
//! in the data folder's cache beside the store, which holds all of that and more, and is given
//! the store file's own permissions.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::{Divisions, Households, OptStrColumn, StrColumn, UnitIdx};

use super::cache_file::{self, read_text, read_words, write_words, CHUNK};

/// Format of the file (its first eight bytes).
const MAGIC: &[u8; 8] = b"GCHOUS01";

/// No given code.
const NO_CODE: u32 = u32::MAX;

/// Bytes of the header: magic, key, and four counts.
const HEAD: usize = 8 + 32 + 8 * 4;

/// The snapshot of one store state.
pub(super) struct HouseholdCache {
    path: PathBuf,
    key: [u8; 32],
}

impl HouseholdCache {
    /// The snapshot of the store at `store` (its file) whose import history is `imports` (its
    /// first and last import, as [`super::Store`] reads them in the households' transaction).
    pub fn new(store: &Path, imports: &str) -> HouseholdCache {
        let mut h = Sha256::new();
        h.update(MAGIC);
        h.update((imports.len() as u64).to_le_bytes());
        h.update(imports.as_bytes());
        HouseholdCache { path: cache_file::path(store, "households"), key: h.finalize().into() }
    }

    /// The households of the snapshot, if the file is there, of this key, whole, and its codes
    /// are among `divisions`. Names and addresses are absent.
    pub fn load(&self, divisions: &Divisions) -> Option<Households> {
        let f = std::fs::File::open(&self.path).ok()?;
        let len = f.metadata().ok()?.len();
        let mut r = BufReader::with_capacity(CHUNK, f);
        let mut head = [0u8; HEAD];
        r.read_exact(&mut head).ok()?;
        if &head[..8] != MAGIC || head[8..40] != self.key {
            return None;
        }
        let word = |i: usize| u64::from_le_bytes(head[40 + 8 * i..48 + 8 * i].try_into().unwrap_or_default());
        let (n, text_len, codes, codes_len) = (word(0), word(1), word(2), word(3));
        let want = (HEAD as u64)
            .checked_add(n.checked_mul(8 + 8 + 8 + 4 + 4 + 1)?)?
            .checked_add(text_len)?
            .checked_add(codes.checked_mul(8)?)?
            .checked_add(codes_len)?;
        if len != want {
            return None;
        }
        let (n, codes) = (usize::try_from(n).ok()?, usize::try_from(codes).ok()?);
        let ends: Vec<u64> = read_words(&mut r, n, u64::from_le_bytes)?;
        let text = read_text(&mut r, usize::try_from(text_len).ok()?)?;
        let id = StrColumn::from_parts(text, ends)?;
        let lon: Vec<f64> = read_words(&mut r, n, f64::from_le_bytes)?;
        let lat: Vec<f64> = read_words(&mut r, n, f64::from_le_bytes)?;
        let veterans: Vec<u32> = read_words(&mut r, n, u32::from_le_bytes)?;
        let code_at: Vec<u32> = read_words(&mut r, n, u32::from_le_bytes)?;
        let mut flags = vec![0u8; n];
        r.read_exact(&mut flags).ok()?;
        let code_ends: Vec<u64> = read_words(&mut r, codes, u64::from_le_bytes)?;
        let code_text = read_text(&mut r, usize::try_from(codes_len).ok()?)?;
        let code_list = StrColumn::from_parts(code_text, code_ends)?;
        let units: Vec<UnitIdx> = code_list.iter().map(|c| divisions.find(c)).collect::<Option<_>>()?;
        let code = code_at
            .iter()
            .map(|&c| if c == NO_CODE { Some(None) } else { units.get(c as usize).map(|&u| Some(u)) })
            .collect::<Option<crate::model::UnitColumn>>()?;
        drop(code_at);
        if flags.iter().any(|&f| f > 3) {
            return None;
        }
        Some(Households {
            id,
            lon,
            lat,
            veterans,
            code,
            difficulty: flags.iter().map(|&f| f & 1 != 0).collect(),
            martyr_family: flags.iter().map(|&f| f & 2 != 0).collect(),
            name: OptStrColumn::absent(n),
            address: OptStrColumn::absent(n),
        })
    }

    /// Writes the snapshot of `hh` (whose codes are indexes into `divisions`), replacing the
    /// file whole, with the permissions of the store file `store`; a failure is a note on
    /// stderr.
    pub fn save(&self, hh: &Households, divisions: &Divisions, store: &Path) {
        // The codes given, each once, in the order first met.
        let mut local = vec![NO_CODE; divisions.len()];
        let mut codes = StrColumn::default();
        let code_at: Vec<u32> = hh
            .code
            .iter()
            .map(|c| match c {
                None => NO_CODE,
                Some(u) => {
                    let slot = &mut local[u as usize];
                    if *slot == NO_CODE {
                        *slot = codes.len() as u32;
                        codes.push(&divisions.get(u).code);
                    }
                    *slot
                }
            })
            .collect();
        let note = ("the households' snapshot", "reads them from the store");
        cache_file::replace(&self.path, Some(store), note, |w| {
            w.write_all(MAGIC)?;
            w.write_all(&self.key)?;
            let (text, ends) = hh.id.parts();
            let (code_text, code_ends) = codes.parts();
            for word in [ends.len(), text.len(), code_ends.len(), code_text.len()] {
                w.write_all(&(word as u64).to_le_bytes())?;
            }
            write_words(w, ends, |x: u64| x.to_le_bytes())?;
            w.write_all(text.as_bytes())?;
            write_words(w, &hh.lon, |x: f64| x.to_le_bytes())?;
            write_words(w, &hh.lat, |x: f64| x.to_le_bytes())?;
            write_words(w, &hh.veterans, |x: u32| x.to_le_bytes())?;
            write_words(w, &code_at, |x: u32| x.to_le_bytes())?;
            let flags: Vec<u8> =
                hh.difficulty.iter().zip(&hh.martyr_family).map(|(&d, &m)| u8::from(d) | u8::from(m) << 1).collect();
            w.write_all(&flags)?;
            write_words(w, code_ends, |x: u64| x.to_le_bytes())?;
            w.write_all(code_text.as_bytes())
        })
    }
}

/// Format of the cells' file (its first eight bytes).
const CELLS_MAGIC: &[u8; 8] = b"GCCELL01";

/// Bytes of the cells' file's header: magic, key, count.
const CELLS_HEAD: usize = 8 + 16 + 8;

/// A kept column of one `u64` per household that depends on the households' positions alone
/// and a resolution: the H3 cells of the privacy groups
/// ([`crate::privacy::groups::household_cells`]), 45 million of which take about 18 s of CPU to
/// find. In `.gridcover-cache/<store file>.cells<resolution>`, keyed by the format, the
/// resolution, the number of households and the xxh3-128 of their longitudes and latitudes
/// (any store, any state: the same positions give the same cells). Checked by size here and by
/// the caller for what the values must be; replaced whole like the households' snapshot.
pub(super) struct CellCache {
    path: PathBuf,
    key: [u8; 16],
}

impl CellCache {
    /// The cells' file beside the store file `store` for the positions of `hh` at
    /// `resolution`.
    pub fn new(store: &Path, hh: &Households, resolution: u8) -> CellCache {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(CELLS_MAGIC);
        h.update(&[resolution]);
        cache_file::hash_positions(&mut h, hh);
        CellCache { path: cache_file::path(store, &format!("cells{resolution}")), key: h.digest128().to_le_bytes() }
    }

    /// The kept cells, if the file is there, of this key, and whole.
    pub fn load(&self, households: usize) -> Option<Vec<u64>> {
        let f = std::fs::File::open(&self.path).ok()?;
        let len = f.metadata().ok()?.len();
        let mut r = BufReader::with_capacity(CHUNK, f);
        let mut head = [0u8; CELLS_HEAD];
        r.read_exact(&mut head).ok()?;
        let n = u64::from_le_bytes(head[24..32].try_into().ok()?);
        if &head[..8] != CELLS_MAGIC || head[8..24] != self.key || n != households as u64 {
            return None;
        }
        if len != CELLS_HEAD as u64 + 8 * n {
            return None;
        }
        read_words(&mut r, households, u64::from_le_bytes)
    }

    /// Keeps `cells` (replacing the file whole, with the permissions of the store file
    /// `store`); a failure is a note on stderr.
    pub fn save(&self, cells: &[u64], store: &Path) {
        let note = ("the households' cells", "finds them again");
        cache_file::replace(&self.path, Some(store), note, |w| {
            w.write_all(CELLS_MAGIC)?;
            w.write_all(&self.key)?;
            w.write_all(&(cells.len() as u64).to_le_bytes())?;
            write_words(w, cells, |x: u64| x.to_le_bytes())
        })
    }
}
