//! What of a data folder a question limited to one admin unit needs (pure): the decision a
//! scoped read ([`crate::ingest::read_data_folder_within`]) follows.
//!
//! A plan `within` a unit `U` only looks at the households assigned to `U` or below, at the
//! candidates located in it, and at the stations (all of them: the distance to the nearest
//! station of a level can be any length). A household is assigned to `U` either by position —
//! it lies in a boundary of `U`'s subtree, so inside their bounding box, the *area* — or by its
//! given code, which then names `U` or a unit below it. So a scoped read keeps:
//!
//! - **households** whose position is in the area or whose code is in `U`'s subtree
//!   ([`Scope::keeps_household`]);
//! - **grids** of `U`'s subtree or whose bounding box meets the area ([`Scope::keeps_grid`]);
//! - **boundaries** of `U`'s subtree, and every boundary whose bounding box meets the area or a
//!   box added with [`Scope::add_extra`] ([`Scope::keeps_boundary`]): every boundary that can
//!   contain a kept point is kept, so point-in-polygon answers for kept points (households,
//!   stations, candidate sites in the area) are those of the whole folder. Households kept by
//!   code outside the area and the grids kept are added as extra boxes for the same reason.
//!
//! Point-in-polygon answers the lowest position among the boundaries containing a point, and
//! the kept ones keep their order, so every kept household is assigned exactly as in the
//! whole folder, and every household assigned within `U` is kept.

use rstar::primitives::Rectangle;
use rstar::{RTree, AABB};

use super::{Bbox, Divisions, UnitIdx, NO_UNIT};

/// The part of a data folder a question within one unit needs.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The unit ([`NO_UNIT`] for a code that names none: nothing is in scope).
    unit: UnitIdx,
    /// The bounding box of the boundaries of the unit's subtree (`None` when it has none).
    area: Option<Bbox>,
    /// Boxes beyond the area whose boundaries are needed as well.
    extra: RTree<Rectangle<[f64; 2]>>,
}

impl Scope {
    /// The scope of `unit`, given the unit and bounding box of every boundary.
    pub fn new(
        divisions: &Divisions,
        unit: Option<UnitIdx>,
        boundaries: impl IntoIterator<Item = (UnitIdx, Option<Bbox>)>,
    ) -> Self {
        let unit = unit.unwrap_or(NO_UNIT);
        let mut area = Bbox::EMPTY;
        if unit != NO_UNIT {
            for (u, b) in boundaries {
                if let Some(b) = b.filter(|_| divisions.is_within(u, unit)) {
                    area = area.union(&b);
                }
            }
        }
        Scope { unit, area: (!area.is_empty()).then_some(area), extra: RTree::new() }
    }

    /// The bounding box of the unit's boundaries.
    pub fn area(&self) -> Option<Bbox> {
        self.area
    }

    /// True for the unit and the units below it.
    pub fn has_unit(&self, divisions: &Divisions, u: UnitIdx) -> bool {
        self.unit != NO_UNIT && u != NO_UNIT && divisions.is_within(u, self.unit)
    }

    /// True for a point in the area.
    pub fn in_area(&self, lon: f64, lat: f64) -> bool {
        self.area.is_some_and(|a| a.contains(lon, lat))
    }

    /// A household at (`lon`, `lat`) with the given code: kept when it lies in the area or its
    /// code is in the subtree.
    pub fn keeps_household(&self, divisions: &Divisions, lon: f64, lat: f64, code: Option<UnitIdx>) -> bool {
        self.in_area(lon, lat) || code.is_some_and(|c| self.has_unit(divisions, c))
    }

    /// A grid of `unit` with bounding box `bbox`: kept when of the subtree or meeting the area.
    pub fn keeps_grid(&self, divisions: &Divisions, unit: Option<UnitIdx>, bbox: Option<&Bbox>) -> bool {
        unit.is_some_and(|u| self.has_unit(divisions, u)) || self.meets_area(bbox)
    }

    fn meets_area(&self, bbox: Option<&Bbox>) -> bool {
        matches!((bbox, self.area), (Some(b), Some(a)) if b.intersects(&a))
    }

    /// Boxes whose boundaries must be kept too (the positions of households kept by code, the
    /// boxes of the grids kept).
    pub fn add_extra(&mut self, boxes: impl IntoIterator<Item = Bbox>) {
        let mut all: Vec<Rectangle<[f64; 2]>> = std::mem::take(&mut self.extra).into_iter().collect();
        all.extend(
            boxes
                .into_iter()
                .filter(|b| !b.is_empty())
                .map(|b| Rectangle::from_corners([b.min_x, b.min_y], [b.max_x, b.max_y])),
        );
        self.extra = RTree::bulk_load(all);
    }

    /// A boundary of `unit` with bounding box `bbox`: kept when of the subtree, or meeting the
    /// area or an extra box.
    pub fn keeps_boundary(&self, divisions: &Divisions, unit: UnitIdx, bbox: Option<&Bbox>) -> bool {
        self.has_unit(divisions, unit)
            || self.meets_area(bbox)
            || bbox.is_some_and(|b| {
                let env = AABB::from_corners([b.min_x, b.min_y], [b.max_x, b.max_y]);
                self.extra.locate_in_envelope_intersecting(&env).next().is_some()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Level;

    fn divisions() -> Divisions {
        let mut d = Divisions::new();
        d.add("62", "甘肃省", Level::Province, None).unwrap();
        d.add("6201", "兰州市", Level::City, Some("62")).unwrap();
        d.add("6202", "嘉峪关市", Level::City, Some("62")).unwrap();
        d.add("63", "青海省", Level::Province, None).unwrap();
        d
    }

    #[test]
    fn the_scope_keeps_what_can_be_in_it() {
        let d = divisions();
        let (u, other, qh) = (d.find("6201").unwrap(), d.find("6202").unwrap(), d.find("63").unwrap());
        let mut s = Scope::new(
            &d,
            Some(u),
            [
                (u, Some(Bbox::new(103.0, 36.0, 104.0, 37.0))),
                (other, Some(Bbox::new(98.0, 39.0, 99.0, 40.0))),
                (qh, Some(Bbox::new(90.0, 31.0, 103.5, 39.0))),
            ],
        );
        assert_eq!(s.area(), Some(Bbox::new(103.0, 36.0, 104.0, 37.0)));
        assert!(s.keeps_household(&d, 103.5, 36.5, None));
        assert!(s.keeps_household(&d, 103.5, 36.5, Some(qh)));
        assert!(s.keeps_household(&d, 80.0, 30.0, Some(u)), "by its code");
        assert!(!s.keeps_household(&d, 80.0, 30.0, Some(other)));
        assert!(!s.keeps_household(&d, 104.1, 36.5, None));
        assert!(s.keeps_boundary(&d, qh, Some(&Bbox::new(90.0, 31.0, 103.5, 39.0))), "meets the area");
        assert!(!s.keeps_boundary(&d, other, Some(&Bbox::new(98.0, 39.0, 99.0, 40.0))));
        assert!(s.keeps_boundary(&d, u, None), "of the subtree, without points");
        s.add_extra([Bbox::new(98.5, 39.5, 98.5, 39.5)]);
        assert!(s.keeps_boundary(&d, other, Some(&Bbox::new(98.0, 39.0, 99.0, 40.0))), "meets an extra box");
        assert!(s.keeps_grid(&d, Some(u), Some(&Bbox::new(0.0, 0.0, 1.0, 1.0))));
        assert!(!s.keeps_grid(&d, None, Some(&Bbox::new(0.0, 0.0, 1.0, 1.0))));
        assert!(s.keeps_grid(&d, None, Some(&Bbox::new(103.9, 36.9, 105.0, 38.0))));
        let none = Scope::new(&d, None, [(u, Some(Bbox::new(103.0, 36.0, 104.0, 37.0)))]);
        assert!(!none.keeps_household(&d, 103.5, 36.5, Some(u)));
        assert!(!none.keeps_boundary(&d, u, Some(&Bbox::new(103.0, 36.0, 104.0, 37.0))));
    }
}
