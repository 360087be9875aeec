//! The disclosure policy (pure): what a role that may not see households learns of them.
//!
//! Veterans' households are personal data, and hardship (困难) and martyr-family (烈属)
//! status are sensitive personal data. Grid workers see the households of their own grids in
//! full; everything else every role sees goes through this module, once, before it is shaped
//! into a response (items, single features, tiles, the report, plans, what-ifs, gaps, grids,
//! cells). The server never re-implements a rule: it asks a [`Disclosure`] whether a figure
//! may be shown, takes household cells and gap areas from [`Groups`] and [`gap_areas()`](gap_areas::gap_areas), and
//! runs plans and what-ifs on the k-anonymous [`demand`] only.
//!
//! # The promise
//! For `k` = [`Policy::min_households`] (default 5, never below [`MIN_K`]), a role without
//! household access never learns
//! 1. a household's position to better than about one H3 cell of
//!    [`Policy::cell_resolution`] (resolution 8, ≈ 0.74 km²): no shape shown to it is derived
//!    from household positions (cells are drawn as H3 hexagons, gap areas as admin units), and
//!    planning answers come from parts of groups, each at least `k` households of whole
//!    cells placed at the mean of their cells' centres;
//! 2. any figure of a group of fewer than `k` households, alone or by differencing: every
//!    figure belongs to a group (a unit's households, or its covered, hardship, martyr-family
//!    or outside-grid households, …); a figure is shown only when its group and the group's
//!    complement within the unit each hold `0` or at least `k` households (for hardship and
//!    martyr families: the complement at least `k` as well, so that a unit where *every*
//!    household is in hardship does not say so); and a withheld figure never follows from a
//!    parent's total minus its shown children ([`figures`]: complementary suppression down
//!    the five admin levels and the grids).
//!
//! # Why it holds across requests
//! - Figures: the shown/withheld decision is a function of the data alone, never of the
//!   request (bbox, page, zoom, code filter), so asking differently cannot change it.
//! - Household cells: one partition of the households into [`Groups`] of at least `k`; every
//!   zoom, filter and page shows sums of whole groups, so no difference of two answers is a
//!   part of a group.
//! - Plans and what-ifs: their population is the groups' parts ([`Part`]: each at its
//!   centre, with its counts), not the households, so every count they answer, and every
//!   difference of two answers, is a sum of whole parts of at least `k` households.
//! - Grid workers know their own households: their view withholds every figure that, minus
//!   what they know, would describe fewer than `k` others ([`Disclosure::compute`] with the
//!   known households).

pub mod demand;
pub mod figures;
pub mod gap_areas;
pub mod groups;

pub use demand::{demand_dataset, group_sizes, scenario_in_households};
pub use figures::{Disclosure, Family};
pub use gap_areas::{gap_areas, GapArea};
pub use groups::{cell_polygon, CellFigures, DisplayCell, Group, Groups, Part};

/// The day an effective-coverage figure asked "as of `asked`" is answered as of, by a role
/// without household access, on `today`: the last day of `asked`'s calendar month, and never
/// after today (today, and any day of the current month, is today: live).
///
/// Why: figures of two consecutive days differ by the few households whose facts changed
/// between them (a contact, a need, a contact leaving the window), so a series of days asked
/// one by one would describe single households. Past days are therefore answered only as of
/// month ends, whose differences span a month of changes of a unit's households; a month
/// rather than an ISO week, because leaders report monthly (月报), a week's changes in a
/// village are often a handful of households, and weeks straddle months. The residual risk —
/// today's answer against one saved yesterday — is in README's Privacy table.
pub fn as_of_day(asked: crate::model::Day, today: crate::model::Day) -> crate::model::Day {
    use crate::model::service::{day_from_ymd, ymd_of_day};
    let (y, m, _) = ymd_of_day(asked);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (day_from_ymd(ny, nm, 1) - 1).min(today)
}

/// The smallest `k` the policy accepts: below it, "a group" is one or two households.
pub const MIN_K: u32 = 3;

/// The settings of the disclosure policy (`[privacy]` in `gridcover.toml`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Fewest households in any group whose figures are shown (`min_households`, default 5,
    /// at least [`MIN_K`]).
    pub min_households: u32,
    /// H3 resolution of the finest cell shown and planned on (8: edges of about 460 m).
    pub cell_resolution: u8,
    /// Smallest service radius of a what-if station, metres.
    pub min_whatif_radius_m: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { min_households: 5, cell_resolution: 8, min_whatif_radius_m: 500.0 }
    }
}

impl Policy {
    /// A policy with `k` households per group.
    ///
    /// # Errors
    /// `k` below [`MIN_K`].
    pub fn with_min_households(k: u32) -> Result<Policy, String> {
        if k < MIN_K {
            return Err(format!("[privacy] min_households must be at least {MIN_K}, got {k}"));
        }
        Ok(Policy { min_households: k, ..Policy::default() })
    }

    /// `k` as a count.
    pub fn k(&self) -> u64 {
        u64::from(self.min_households)
    }

    /// True when a group of `n` households may be described: none, or at least `k`.
    pub fn group_ok(&self, n: u64) -> bool {
        n == 0 || n >= self.k()
    }
}

impl Policy {
    /// Brings a plan request asked by a role without household access to the policy's
    /// resolution: H3 candidates no finer than [`Policy::cell_resolution`] (a default finer
    /// than it is coarsened to it; an explicit one is refused), and a radius of at least
    /// [`Policy::min_whatif_radius_m`].
    ///
    /// # Errors
    /// The reason, naming the field and the bound.
    pub fn plan_request(
        &self,
        req: &mut crate::plan::PlanRequest,
        standard: &crate::model::Standard,
    ) -> Result<(), String> {
        let radius = req.radius_m.unwrap_or_else(|| standard.radius_m(req.level));
        if radius.is_finite() && radius < self.min_whatif_radius_m {
            return Err(format!(
                "radius_m {radius} is below the disclosure policy's smallest radius, {} m",
                self.min_whatif_radius_m
            ));
        }
        if let crate::plan::CandidateSource::H3 { resolution } = &mut req.candidates {
            match *resolution {
                Some(r) if r > self.cell_resolution => {
                    return Err(format!(
                    "candidates.resolution {r} is finer than the disclosure policy's cells (H3 resolution {} at most)",
                    self.cell_resolution
                ))
                }
                Some(_) => {}
                None => {
                    *resolution = Some(crate::plan::default_h3_resolution(radius.max(1.0)).min(self.cell_resolution));
                }
            }
        }
        Ok(())
    }

    /// Checks a what-if station's service radius (its own, else the standard's for its level
    /// and kind) against [`Policy::min_whatif_radius_m`].
    ///
    /// # Errors
    /// The reason, naming the bound.
    pub fn whatif_radius(&self, radius_m: f64) -> Result<(), String> {
        if radius_m.is_finite() && radius_m < self.min_whatif_radius_m {
            return Err(format!(
                "radius_m {radius_m} is below the disclosure policy's smallest what-if radius, {} m",
                self.min_whatif_radius_m
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::as_of_day;
    use crate::model::service::day_from_ymd;

    #[test]
    fn past_days_are_month_ends_and_the_current_month_is_today() {
        let today = day_from_ymd(2026, 12, 6);
        let d = |y, m, dd| day_from_ymd(y, m, dd);
        assert_eq!(as_of_day(d(2026, 11, 1), today), d(2026, 11, 30));
        assert_eq!(as_of_day(d(2026, 11, 29), today), d(2026, 11, 30));
        assert_eq!(as_of_day(d(2026, 11, 30), today), d(2026, 11, 30));
        assert_eq!(as_of_day(d(2024, 2, 3), today), d(2024, 2, 29));
        assert_eq!(as_of_day(d(2025, 12, 31), today), d(2025, 12, 31));
        assert_eq!(as_of_day(d(2026, 12, 1), today), today);
        assert_eq!(as_of_day(today, today), today);
        // The future is today too: a later day would only move the windows.
        assert_eq!(as_of_day(d(2027, 3, 1), today), today);
        assert_eq!(as_of_day(d(2200, 12, 31), today), today);
    }
}
