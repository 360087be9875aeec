//! A prebuilt spatial index of bounding boxes (an R-tree), so that a tile or a `bbox` page
//! looks only at the records whose box meets it instead of scanning every record of a layer.

use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};

use super::geom::Bbox;

type Entry = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// Records (by their number) and their boxes; records with an empty box are left out (they
/// meet nothing).
#[derive(Default)]
pub struct BoxIndex {
    tree: RTree<Entry>,
}

impl BoxIndex {
    /// The index of `(record, box)` pairs.
    pub fn new(items: impl IntoIterator<Item = (u32, Bbox)>) -> BoxIndex {
        let entries: Vec<Entry> = items
            .into_iter()
            .filter(|(_, b)| !b.is_empty())
            .map(|(i, b)| GeomWithData::new(Rectangle::from_corners([b.min_x, b.min_y], [b.max_x, b.max_y]), i))
            .collect();
        BoxIndex { tree: RTree::bulk_load(entries) }
    }

    /// The records whose box meets `q` (as [`Bbox::intersects`] decides: edges touching
    /// count), ascending: the order a scan of every record would give.
    pub fn query(&self, q: &Bbox) -> Vec<u32> {
        if q.is_empty() {
            return Vec::new();
        }
        let env = AABB::from_corners([q.min_x, q.min_y], [q.max_x, q.max_y]);
        let mut v: Vec<u32> = self.tree.locate_in_envelope_intersecting(&env).map(|e| e.data).collect();
        v.sort_unstable();
        v
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.tree.size()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_the_scan() {
        // A lattice of boxes, some touching, some empty; every query box against the scan.
        let mut boxes = Vec::new();
        for i in 0..400u32 {
            let (x, y) = (f64::from(i % 20), f64::from(i / 20));
            let b = if i % 37 == 0 { Bbox::EMPTY } else { Bbox::new(x, y, x + 1.0 + f64::from(i % 3), y + 0.5) };
            boxes.push(b);
        }
        let idx = BoxIndex::new(boxes.iter().enumerate().map(|(i, b)| (i as u32, *b)));
        assert_eq!(idx.len(), boxes.iter().filter(|b| !b.is_empty()).count());
        let queries = [
            Bbox::new(3.0, 4.0, 3.0, 4.0),
            Bbox::new(-5.0, -5.0, 0.0, 0.0),
            Bbox::new(2.5, 2.5, 7.25, 9.0),
            Bbox::new(-100.0, -100.0, 100.0, 100.0),
            Bbox::new(19.0, 19.5, 30.0, 30.0),
            Bbox::new(50.0, 50.0, 60.0, 60.0),
            Bbox::EMPTY,
        ];
        for q in &queries {
            let scan: Vec<u32> = (0..boxes.len() as u32).filter(|&i| boxes[i as usize].intersects(q)).collect();
            assert_eq!(idx.query(q), scan, "query {q:?}");
        }
    }
}
