//! Columns of text without a heap object per row: every row's bytes in one buffer and one end
//! offset per row (the Arrow layout). A national folder's 45 million household ids, names and
//! addresses are three buffers, not 135 million `String`s (24 bytes each plus an allocation).

use std::fmt;
use std::ops::{Index, Range};

/// A column of strings: row `i` is `text[ends[i - 1]..ends[i]]`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StrColumn {
    text: String,
    ends: Vec<u64>,
}

impl StrColumn {
    /// An empty column with room for `rows` rows of `bytes` bytes in all.
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        StrColumn { text: String::with_capacity(bytes), ends: Vec::with_capacity(rows) }
    }

    /// The column as stored: every row's text one after the other, and the end of each row
    /// in it (for hashing a whole column at once).
    pub fn parts(&self) -> (&str, &[u64]) {
        (&self.text, &self.ends)
    }

    /// The column of [`StrColumn::parts`] again, checked: the ends ascend, the last is the
    /// text's length, and each falls between two characters (so no row can panic when read).
    pub fn from_parts(text: String, ends: Vec<u64>) -> Option<Self> {
        let mut before = 0u64;
        for &e in &ends {
            if e < before || e > text.len() as u64 || !text.is_char_boundary(e as usize) {
                return None;
            }
            before = e;
        }
        (before == text.len() as u64).then_some(StrColumn { text, ends })
    }

    /// Appends a row.
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len() as u64);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Row `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.text[start..end])
    }

    /// The rows in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + DoubleEndedIterator + Clone + '_ {
        (0..self.len()).map(move |i| &self[i])
    }

    /// The rows of `r`, in order.
    pub fn range(&self, r: Range<usize>) -> impl ExactSizeIterator<Item = &str> + '_ {
        r.map(move |i| &self[i])
    }

    /// Bytes held (text and offsets).
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * 8
    }

    /// Gives back the room reserved beyond the rows held.
    pub fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

impl Index<usize> for StrColumn {
    type Output = str;
    fn index(&self, i: usize) -> &str {
        match self.get(i) {
            Some(s) => s,
            None => panic!("row {i} of a column of {} rows", self.len()),
        }
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for StrColumn {
    fn eq(&self, other: &[S; N]) -> bool {
        self.len() == N && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl fmt::Debug for StrColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<S: AsRef<str>> FromIterator<S> for StrColumn {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut c = StrColumn::default();
        for s in iter {
            c.push(s.as_ref());
        }
        c
    }
}

/// A column of optional strings: a [`StrColumn`] (an absent row is empty there) and whether
/// each row is present. Absent rows before the first present one take no memory, so a column
/// that was not read (or that no row has) costs nothing however many rows it has.
#[derive(Clone, Default)]
pub struct OptStrColumn {
    /// Rows before the first present one (all absent, not stored).
    leading_absent: usize,
    /// The rows from the first present one on.
    values: StrColumn,
    present: Vec<bool>,
}

impl OptStrColumn {
    /// An empty column with room for `rows` rows.
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        OptStrColumn {
            leading_absent: 0,
            values: StrColumn::with_capacity(rows, bytes),
            present: Vec::with_capacity(rows),
        }
    }

    /// A column of `rows` absent rows (it takes no memory).
    pub fn absent(rows: usize) -> Self {
        OptStrColumn { leading_absent: rows, ..OptStrColumn::default() }
    }

    /// Appends a row.
    pub fn push(&mut self, s: Option<&str>) {
        if s.is_none() && self.present.is_empty() {
            self.leading_absent += 1;
            return;
        }
        self.values.push(s.unwrap_or(""));
        self.present.push(s.is_some());
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.leading_absent + self.present.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`: `None` when absent (or past the end).
    pub fn get(&self, i: usize) -> Option<&str> {
        let j = i.checked_sub(self.leading_absent)?;
        if *self.present.get(j)? {
            self.values.get(j)
        } else {
            None
        }
    }

    /// The rows in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Bytes held (text, offsets and presence).
    pub fn heap_bytes(&self) -> usize {
        self.values.heap_bytes() + self.present.capacity()
    }

    /// Gives back the room reserved beyond the rows held.
    pub fn shrink_to_fit(&mut self) {
        self.values.shrink_to_fit();
        self.present.shrink_to_fit();
    }
}

/// Equal when they hold the same rows (however many leading absent rows each stores).
impl PartialEq for OptStrColumn {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for OptStrColumn {}

impl fmt::Debug for OptStrColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> FromIterator<Option<&'a str>> for OptStrColumn {
    fn from_iter<I: IntoIterator<Item = Option<&'a str>>>(iter: I) -> Self {
        let mut c = OptStrColumn::default();
        for s in iter {
            c.push(s);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// A column gives back every row as pushed, in order, empty strings included.
        #[test]
        fn columns_give_back_what_was_pushed(rows in proptest::collection::vec(proptest::option::of(".{0,12}"), 0..40)) {
            let c: StrColumn = rows.iter().map(|r| r.clone().unwrap_or_default()).collect();
            let o: OptStrColumn = rows.iter().map(|r| r.as_deref()).collect();
            prop_assert_eq!(c.len(), rows.len());
            prop_assert_eq!(o.len(), rows.len());
            for (i, r) in rows.iter().enumerate() {
                prop_assert_eq!(&c[i], r.as_deref().unwrap_or(""));
                prop_assert_eq!(o.get(i), r.as_deref());
            }
            prop_assert_eq!(c.get(rows.len()), None);
            prop_assert_eq!(o.get(rows.len()), None);
            prop_assert_eq!(c.iter().rev().count(), rows.len());
            let mid = rows.len() / 2;
            prop_assert_eq!(c.range(mid..rows.len()).collect::<Vec<_>>(), c.iter().skip(mid).collect::<Vec<_>>());
            let (text, ends) = c.parts();
            prop_assert_eq!(StrColumn::from_parts(text.to_owned(), ends.to_vec()), Some(c.clone()));
        }
    }

    #[test]
    fn parts_that_do_not_fit_are_refused() {
        let ok = |t: &str, e: &[u64]| StrColumn::from_parts(t.to_owned(), e.to_vec()).is_some();
        assert!(ok("ab张", &[1, 1, 5]));
        assert!(ok("", &[]));
        assert!(!ok("ab张", &[1, 0, 5]), "ends descend");
        assert!(!ok("ab张", &[1, 2]), "text left after the last end");
        assert!(!ok("ab张", &[1, 6]), "an end past the text");
        assert!(!ok("ab张", &[3, 5]), "an end inside a character");
        assert!(!ok("ab", &[]), "text without rows");
    }

    #[test]
    fn leading_absent_rows_take_no_memory() {
        let mut o = OptStrColumn::default();
        for _ in 0..100_000 {
            o.push(None);
        }
        assert_eq!(o.heap_bytes(), 0);
        assert_eq!((o.len(), o.get(99_999), o.get(100_000)), (100_000, None, None));
        o.push(Some("李四"));
        o.push(None);
        assert_eq!((o.len(), o.get(99_999), o.get(100_000), o.get(100_001)), (100_002, None, Some("李四"), None));
        let same: OptStrColumn = (0..100_002).map(|i| (i == 100_000).then_some("李四")).collect();
        assert_eq!(o, same);
        let mut other = same.clone();
        other.push(None);
        assert_ne!(o, other);
    }

    #[test]
    fn absent_and_empty_differ() {
        let o: OptStrColumn = [Some(""), None, Some("张三")].into_iter().collect();
        assert_eq!(o.iter().collect::<Vec<_>>(), vec![Some(""), None, Some("张三")]);
        assert_eq!(format!("{o:?}"), r#"[Some(""), None, Some("张三")]"#);
    }
}
