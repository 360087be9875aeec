//! The one bounding-box type (pure): of boundaries, of tiles, of a request's `bbox`.

use geo::BoundingRect;

use super::Boundaries;

/// An axis-aligned box in lon/lat degrees (or any plane), `min ≤ max` unless empty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bbox {
    /// West.
    pub min_x: f64,
    /// South.
    pub min_y: f64,
    /// East.
    pub max_x: f64,
    /// North.
    pub max_y: f64,
}

impl Bbox {
    /// The empty box (union identity).
    pub const EMPTY: Bbox =
        Bbox { min_x: f64::INFINITY, min_y: f64::INFINITY, max_x: f64::NEG_INFINITY, max_y: f64::NEG_INFINITY };

    /// A box from its corners.
    pub fn new(min_x: f64, min_y: f64, max_x: f64, max_y: f64) -> Self {
        Bbox { min_x, min_y, max_x, max_y }
    }

    /// True when it holds no point.
    pub fn is_empty(&self) -> bool {
        !(self.min_x <= self.max_x && self.min_y <= self.max_y)
    }

    /// The smallest box holding both.
    pub fn union(&self, o: &Bbox) -> Bbox {
        Bbox::new(self.min_x.min(o.min_x), self.min_y.min(o.min_y), self.max_x.max(o.max_x), self.max_y.max(o.max_y))
    }

    /// True when the boxes share a point.
    pub fn intersects(&self, o: &Bbox) -> bool {
        !self.is_empty()
            && !o.is_empty()
            && self.min_x <= o.max_x
            && o.min_x <= self.max_x
            && self.min_y <= o.max_y
            && o.min_y <= self.max_y
    }

    /// True when the point lies inside or on the edge.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        self.min_x <= x && x <= self.max_x && self.min_y <= y && y <= self.max_y
    }

    /// `[min_x, min_y, max_x, max_y]`.
    pub fn to_array(&self) -> [f64; 4] {
        [self.min_x, self.min_y, self.max_x, self.max_y]
    }

    /// The bounding box of all boundaries; `None` when there are none.
    pub fn of(boundaries: &Boundaries) -> Option<Bbox> {
        let b = boundaries
            .areas
            .iter()
            .filter_map(|a| a.geometry.bounding_rect())
            .fold(Bbox::EMPTY, |acc, r| acc.union(&Bbox::new(r.min().x, r.min().y, r.max().x, r.max().y)));
        (!b.is_empty()).then_some(b)
    }

    /// The box grown by `d` on every side.
    pub fn expanded(&self, d: f64) -> Bbox {
        Bbox::new(self.min_x - d, self.min_y - d, self.max_x + d, self.max_y + d)
    }
}
