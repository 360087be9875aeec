//! The five levels of China's administrative and service hierarchy.

use std::fmt;
use std::str::FromStr;

/// An administrative level, from the province (0) down to the village or community (4).
///
/// The statistical division codes of the National Bureau of Statistics have 2, 4, 6, 9 and
/// 12 digits at these levels (`62`, `6201`, `620102`, `620102001`, `620102001001`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// 省 province (2-digit code).
    Province = 0,
    /// 市 prefecture-level city (4-digit code).
    City = 1,
    /// 县 county-level unit (6-digit code).
    County = 2,
    /// 乡镇街道 township, town or sub-district (9-digit code).
    Township = 3,
    /// 村社区 village or community (12-digit code).
    Village = 4,
}

impl Level {
    /// All five levels, top down.
    pub const ALL: [Level; 5] = [Level::Province, Level::City, Level::County, Level::Township, Level::Village];

    /// The level's position, 0 (province) to 4 (village).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The level at a position 0..5.
    pub fn from_index(i: usize) -> Option<Level> {
        Level::ALL.get(i).copied()
    }

    /// The lowercase English name used in files and URLs (`province` … `village`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::City => "city",
            Level::County => "county",
            Level::Township => "township",
            Level::Village => "village",
        }
    }

    /// The Chinese name of the level.
    pub fn zh(self) -> &'static str {
        match self {
            Level::Province => "省",
            Level::City => "市",
            Level::County => "县",
            Level::Township => "乡镇",
            Level::Village => "村社区",
        }
    }

    /// Number of digits of a statistical division code at this level.
    pub fn code_len(self) -> usize {
        match self {
            Level::Province => 2,
            Level::City => 4,
            Level::County => 6,
            Level::Township => 9,
            Level::Village => 12,
        }
    }

    /// The level whose statistical codes have `len` digits.
    pub fn from_code_len(len: usize) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.code_len() == len)
    }

    /// The level above, if any.
    pub fn parent(self) -> Option<Level> {
        self.index().checked_sub(1).and_then(Level::from_index)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Level`] from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown level {0:?} (expected province, city, county, township or village)")]
pub struct UnknownLevel(pub String);

impl FromStr for Level {
    type Err = UnknownLevel;

    /// Accepts the English names (any case) and the Chinese ones.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Ok(match t.to_ascii_lowercase().as_str() {
            "province" | "省" => Level::Province,
            "city" | "prefecture" | "市" => Level::City,
            "county" | "district" | "县" | "区县" => Level::County,
            "township" | "town" | "street" | "乡镇" | "乡镇街道" => Level::Township,
            "village" | "community" | "村" | "社区" | "村社区" => Level::Village,
            _ => return Err(UnknownLevel(t.to_string())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_lengths_round_trip() {
        for l in Level::ALL {
            assert_eq!(Level::from_code_len(l.code_len()), Some(l));
            assert_eq!(l.as_str().parse::<Level>().unwrap(), l);
            assert_eq!(l.zh().parse::<Level>().unwrap(), l);
        }
        assert_eq!(Level::Village.parent(), Some(Level::Township));
        assert_eq!(Level::Province.parent(), None);
        assert!("hamlet".parse::<Level>().is_err());
    }
}
