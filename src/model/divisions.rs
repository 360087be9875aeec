//! The statistical division table: every admin unit of the five levels with its parent.

use std::collections::HashMap;

use super::Level;

/// Dense index of an admin unit in [`Divisions`].
pub type UnitIdx = u32;

/// Marker for "no unit" in compact columns of [`UnitIdx`].
pub const NO_UNIT: UnitIdx = UnitIdx::MAX;

/// One admin unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Division {
    /// Statistical code as written in China (2/4/6/9/12 digits).
    pub code: String,
    /// Name in Chinese as published.
    pub name: String,
    /// Level of the unit.
    pub level: Level,
    /// Parent unit (None only for a province).
    pub parent: Option<UnitIdx>,
}

/// All admin units, indexed densely, with their ancestry precomputed.
///
/// Units are stored in the order they were added; [`Divisions::chain`] gives a unit's ancestor
/// at every level in O(1), so per-household tables only need the finest unit.
#[derive(Debug, Clone, Default)]
pub struct Divisions {
    units: Vec<Division>,
    by_code: HashMap<String, UnitIdx>,
    chains: Vec<[UnitIdx; 5]>,
    children: Vec<Vec<UnitIdx>>,
}

/// Why a division could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DivisionError {
    /// The code is already in the table.
    #[error("duplicate code {0}")]
    Duplicate(String),
    /// The parent code is not (yet) in the table; parents must come first.
    #[error("parent code {parent} of {code} is not a known division")]
    UnknownParent {
        /// Code of the unit.
        code: String,
        /// The parent code that was not found.
        parent: String,
    },
    /// The parent is not exactly one level above.
    #[error("parent {parent} of {code} is a {parent_level}, expected a {expected}")]
    WrongParentLevel {
        /// Code of the unit.
        code: String,
        /// Parent code.
        parent: String,
        /// Level of the parent found.
        parent_level: Level,
        /// Level expected.
        expected: Level,
    },
    /// Only provinces may have no parent.
    #[error("{code} is a {level} without a parent")]
    MissingParent {
        /// Code of the unit.
        code: String,
        /// Its level.
        level: Level,
    },
    /// The code is not made of the digits its level requires.
    #[error("code {code:?} of a {level} must have {} digits", level.code_len())]
    BadCode {
        /// The code given.
        code: String,
        /// The level given.
        level: Level,
    },
}

impl Divisions {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a unit; its parent (by code) must already be present.
    ///
    /// # Errors
    /// See [`DivisionError`]: duplicate code, unknown parent, parent at the wrong level, a
    /// missing parent below province level, or a code of the wrong length.
    pub fn add(
        &mut self,
        code: &str,
        name: &str,
        level: Level,
        parent_code: Option<&str>,
    ) -> Result<UnitIdx, DivisionError> {
        if code.len() != level.code_len() || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DivisionError::BadCode { code: code.into(), level });
        }
        if self.by_code.contains_key(code) {
            return Err(DivisionError::Duplicate(code.into()));
        }
        let parent = match (parent_code, level.parent()) {
            (None, None) => None,
            (Some(p), Some(expected)) => {
                let pi = *self
                    .by_code
                    .get(p)
                    .ok_or_else(|| DivisionError::UnknownParent { code: code.into(), parent: p.into() })?;
                let pl = self.units[pi as usize].level;
                if pl != expected {
                    return Err(DivisionError::WrongParentLevel {
                        code: code.into(),
                        parent: p.into(),
                        parent_level: pl,
                        expected,
                    });
                }
                Some(pi)
            }
            (None, Some(_)) => return Err(DivisionError::MissingParent { code: code.into(), level }),
            // A province with a parent code: the parent is ignored by construction of levels.
            (Some(_), None) => None,
        };
        let idx = UnitIdx::try_from(self.units.len()).expect("fewer than 4 billion units");
        let mut chain = match parent {
            Some(p) => self.chains[p as usize],
            None => [NO_UNIT; 5],
        };
        chain[level.index()] = idx;
        self.units.push(Division { code: code.into(), name: name.into(), level, parent });
        self.by_code.insert(code.into(), idx);
        self.chains.push(chain);
        self.children.push(Vec::new());
        if let Some(p) = parent {
            self.children[p as usize].push(idx);
        }
        Ok(idx)
    }

    /// Number of units.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// True when there are no units.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// The unit at `idx`.
    ///
    /// # Panics
    /// If `idx` is out of range.
    pub fn get(&self, idx: UnitIdx) -> &Division {
        &self.units[idx as usize]
    }

    /// All units in index order.
    pub fn iter(&self) -> impl Iterator<Item = (UnitIdx, &Division)> {
        self.units.iter().enumerate().map(|(i, d)| (i as UnitIdx, d))
    }

    /// The units of one level, in index order.
    pub fn at_level(&self, level: Level) -> impl Iterator<Item = UnitIdx> + '_ {
        self.iter().filter(move |(_, d)| d.level == level).map(|(i, _)| i)
    }

    /// Number of units of a level.
    pub fn count(&self, level: Level) -> usize {
        self.units.iter().filter(|d| d.level == level).count()
    }

    /// The unit with this statistical code.
    pub fn find(&self, code: &str) -> Option<UnitIdx> {
        self.by_code.get(code).copied()
    }

    /// The unit's ancestors (and itself) by level; [`NO_UNIT`] below the unit's own level.
    pub fn chain(&self, idx: UnitIdx) -> [UnitIdx; 5] {
        self.chains[idx as usize]
    }

    /// The unit's ancestor at `level` (itself at its own level), if `level` is not below it.
    pub fn ancestor(&self, idx: UnitIdx, level: Level) -> Option<UnitIdx> {
        let a = self.chains[idx as usize][level.index()];
        (a != NO_UNIT).then_some(a)
    }

    /// True when `idx` is `ancestor` or lies below it.
    pub fn is_within(&self, idx: UnitIdx, ancestor: UnitIdx) -> bool {
        let l = self.units[ancestor as usize].level;
        self.chains[idx as usize][l.index()] == ancestor
    }

    /// Direct children of a unit.
    pub fn children(&self, idx: UnitIdx) -> &[UnitIdx] {
        &self.children[idx as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn tiny() -> Divisions {
        let mut d = Divisions::new();
        d.add("62", "甘肃省", Level::Province, None).unwrap();
        d.add("6201", "兰州市", Level::City, Some("62")).unwrap();
        d.add("620102", "城关区", Level::County, Some("6201")).unwrap();
        d.add("620102001", "酒泉路街道", Level::Township, Some("620102")).unwrap();
        d.add("620102001001", "某社区", Level::Village, Some("620102001")).unwrap();
        d
    }

    #[test]
    fn chains_and_lookups() {
        let d = tiny();
        let v = d.find("620102001001").unwrap();
        assert_eq!(d.chain(v), [0, 1, 2, 3, 4]);
        assert_eq!(d.ancestor(v, Level::City), Some(1));
        assert_eq!(d.ancestor(2, Level::Village), None);
        assert!(d.is_within(v, 1));
        assert!(!d.is_within(1, v));
        assert_eq!(d.children(0), &[1]);
        assert_eq!(d.count(Level::Village), 1);
    }

    #[test]
    fn rejects_bad_rows() {
        let mut d = tiny();
        assert_eq!(d.add("6201", "x", Level::City, Some("62")), Err(DivisionError::Duplicate("6201".into())));
        assert!(matches!(d.add("6299", "x", Level::City, Some("63")), Err(DivisionError::UnknownParent { .. })));
        assert!(matches!(d.add("620199", "x", Level::County, Some("62")), Err(DivisionError::WrongParentLevel { .. })));
        assert!(matches!(d.add("62a1", "x", Level::City, Some("62")), Err(DivisionError::BadCode { .. })));
        assert!(matches!(d.add("6209", "x", Level::City, None), Err(DivisionError::MissingParent { .. })));
    }
}
