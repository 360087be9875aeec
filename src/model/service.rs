//! Service records as the analysis reads them (pure data): every household's contacts (visits,
//! calls, station visits) and needs (诉求) with the days their status changed.
//!
//! Days are civil dates counted from 1970-01-01 ([`Day`], [`day_from_ymd`], [`ymd_of_day`]);
//! "as of" a day means everything recorded on or before it. The store keeps the records
//! themselves (who, notes, history); this is the compact form the effective-coverage figures are
//! computed from: contact days per household in one column (no heap object per household; two
//! bytes a contact, offsets from the earliest, while they span at most 179 years: [`DayColumn`]),
//! and each need's status changes.

use serde::{Deserialize, Serialize};

/// A civil date as days since 1970-01-01.
pub type Day = i32;

/// Longest note of a contact or a need, in characters.
pub const MAX_NOTE_CHARS: usize = 4000;

/// How a household was contacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    /// A home visit (入户走访), the default.
    #[default]
    Home,
    /// A phone call.
    Phone,
    /// A visit to the station.
    Station,
    /// Anything else.
    Other,
}

impl ContactKind {
    /// Every kind.
    pub const ALL: [ContactKind; 4] = [ContactKind::Home, ContactKind::Phone, ContactKind::Station, ContactKind::Other];

    /// Its name in records and requests.
    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::Home => "home",
            ContactKind::Phone => "phone",
            ContactKind::Station => "station",
            ContactKind::Other => "other",
        }
    }

    /// The kind named `s`: its English name, or the Chinese word of a ledger (入户, 电话, 来站,
    /// 其他).
    pub fn parse(s: &str) -> Option<ContactKind> {
        match s.trim() {
            "home" | "入户" | "入户走访" | "走访" => Some(ContactKind::Home),
            "phone" | "电话" => Some(ContactKind::Phone),
            "station" | "来站" | "到站" => Some(ContactKind::Station),
            "other" | "其他" => Some(ContactKind::Other),
            _ => None,
        }
    }
}

/// What a need is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeedCategory {
    /// 就业 employment.
    Employment,
    /// 医疗 medical.
    Medical,
    /// 住房 housing.
    Housing,
    /// 养老 pension.
    Pension,
    /// 法律 legal.
    Legal,
    /// 困难帮扶 hardship.
    Hardship,
    /// 其他 other.
    Other,
}

impl NeedCategory {
    /// Every category.
    pub const ALL: [NeedCategory; 7] = [
        NeedCategory::Employment,
        NeedCategory::Medical,
        NeedCategory::Housing,
        NeedCategory::Pension,
        NeedCategory::Legal,
        NeedCategory::Hardship,
        NeedCategory::Other,
    ];

    /// Its name in records and requests.
    pub fn as_str(self) -> &'static str {
        match self {
            NeedCategory::Employment => "employment",
            NeedCategory::Medical => "medical",
            NeedCategory::Housing => "housing",
            NeedCategory::Pension => "pension",
            NeedCategory::Legal => "legal",
            NeedCategory::Hardship => "hardship",
            NeedCategory::Other => "other",
        }
    }

    /// The category named `s` (its English name).
    pub fn parse(s: &str) -> Option<NeedCategory> {
        NeedCategory::ALL.into_iter().find(|c| c.as_str() == s.trim())
    }
}

/// Where a need stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeedStatus {
    /// Raised, not yet taken up.
    Open,
    /// Being worked on.
    InProgress,
    /// Resolved.
    Resolved,
}

impl NeedStatus {
    /// Every status.
    pub const ALL: [NeedStatus; 3] = [NeedStatus::Open, NeedStatus::InProgress, NeedStatus::Resolved];

    /// Its name in records and requests.
    pub fn as_str(self) -> &'static str {
        match self {
            NeedStatus::Open => "open",
            NeedStatus::InProgress => "in_progress",
            NeedStatus::Resolved => "resolved",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<NeedStatus> {
        match s.trim() {
            "open" => Some(NeedStatus::Open),
            "in_progress" => Some(NeedStatus::InProgress),
            "resolved" => Some(NeedStatus::Resolved),
            _ => None,
        }
    }
}

/// One need as the analysis reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedSpan {
    /// Its household (index into the data set's households).
    pub household: u32,
    /// What it is about.
    pub category: NeedCategory,
    /// Its status changes, oldest first: the first is the day it was raised (status
    /// [`NeedStatus::Open`] or whatever it was raised with).
    pub changes: Vec<(Day, NeedStatus)>,
}

impl NeedSpan {
    /// The day it was raised.
    pub fn opened(&self) -> Option<Day> {
        self.changes.first().map(|c| c.0)
    }

    /// Its status as of `day` (None: not raised yet).
    pub fn status_on(&self, day: Day) -> Option<NeedStatus> {
        self.changes.iter().take_while(|c| c.0 <= day).last().map(|c| c.1)
    }

    /// The first day it was resolved, if it was by `day`.
    pub fn resolved_by(&self, day: Day) -> Option<Day> {
        self.changes.iter().take_while(|c| c.0 <= day).find(|c| c.1 == NeedStatus::Resolved).map(|c| c.0)
    }
}

/// The needs kept for `households` households (in range, with a change), and how many were
/// left out.
fn kept_needs(needs: Vec<NeedSpan>, households: usize) -> (Vec<NeedSpan>, usize) {
    let (kept, out): (Vec<NeedSpan>, Vec<NeedSpan>) =
        needs.into_iter().partition(|n| (n.household as usize) < households && !n.changes.is_empty());
    (kept, out.len())
}

/// The widest span of days (last − first) a [`DayColumn`] keeps as two-byte offsets.
pub const MAX_OFFSET_SPAN: Day = u16::MAX as Day;

/// Contact days in one column: two bytes a contact, as offsets from the first day, when they
/// span at most [`MAX_OFFSET_SPAN`] days (about 179 years, first to last); otherwise the days
/// themselves, four bytes each. Either way every day is kept as given.
///
/// A column is always in the one form its days call for (the base the earliest day, offsets
/// whenever they fit; a column without days is offsets from 0), so two columns are equal
/// exactly when they hold the same days in the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayColumn(DayRepr);

#[derive(Debug, Clone, PartialEq, Eq)]
enum DayRepr {
    /// Day `i` is `base + offsets[i]`; `base` is the earliest day (0 without days).
    Offsets { base: Day, offsets: Vec<u16> },
    /// The days themselves (they span more than [`MAX_OFFSET_SPAN`]).
    Days(Vec<Day>),
}

impl Default for DayColumn {
    fn default() -> Self {
        DayColumn(DayRepr::Offsets { base: 0, offsets: Vec::new() })
    }
}

/// The earliest and the latest of some days (None without days), in parallel.
fn span_of<T: Sync>(xs: &[T], day: impl Fn(&T) -> Day + Sync) -> Option<(Day, Day)> {
    use rayon::prelude::*;
    xs.par_iter().with_min_len(1 << 16).map(|x| (day(x), day(x))).reduce_with(|a, b| (a.0.min(b.0), a.1.max(b.1)))
}

/// The span covering both.
fn joined(a: Option<(Day, Day)>, b: Option<(Day, Day)>) -> Option<(Day, Day)> {
    match (a, b) {
        (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
        (a, b) => a.or(b),
    }
}

impl DayColumn {
    /// An empty column, with room for `n` days, for days from `span.0` to `span.1` (which
    /// must be the earliest and the latest pushed, for the column's form to be the one its
    /// days call for).
    fn for_span(span: Option<(Day, Day)>, n: usize) -> DayColumn {
        DayColumn(match span {
            Some((lo, hi)) if i64::from(hi) - i64::from(lo) > i64::from(MAX_OFFSET_SPAN) => {
                DayRepr::Days(Vec::with_capacity(n))
            }
            span => DayRepr::Offsets { base: span.map_or(0, |s| s.0), offsets: Vec::with_capacity(n) },
        })
    }

    /// The days of `xs` (`day` of each), in their order, exactly as long (in parallel).
    fn collect<T: Sync>(xs: &[T], day: impl Fn(&T) -> Day + Sync + Send) -> DayColumn {
        use rayon::prelude::*;
        let mut c = DayColumn::for_span(span_of(xs, &day), xs.len());
        match &mut c.0 {
            DayRepr::Offsets { base, offsets } => {
                let base = *base;
                xs.par_iter().map(|x| (day(x) - base) as u16).collect_into_vec(offsets);
            }
            DayRepr::Days(days) => xs.par_iter().map(day).collect_into_vec(days),
        }
        c
    }

    /// The column of `days`, in their order (two bytes a day when they fit).
    pub fn from_days(days: Vec<Day>) -> DayColumn {
        let c = DayColumn::for_span(span_of(&days, |&d| d), 0);
        match c.0 {
            DayRepr::Days(_) => DayColumn(DayRepr::Days(days)),
            DayRepr::Offsets { .. } => DayColumn::collect(&days, |&d| d),
        }
    }

    /// The column of days `base + offsets[i]` (what [`DayColumn::as_offsets`] gives back);
    /// None when one of them is past the last [`Day`].
    pub fn from_offsets(base: Day, mut offsets: Vec<u16>) -> Option<DayColumn> {
        let (Some(&least), Some(&most)) = (offsets.iter().min(), offsets.iter().max()) else {
            return Some(DayColumn::default());
        };
        base.checked_add(Day::from(most))?;
        if least > 0 {
            for o in &mut offsets {
                *o -= least;
            }
        }
        Some(DayColumn(DayRepr::Offsets { base: base + Day::from(least), offsets }))
    }

    /// Days in the column.
    pub fn len(&self) -> usize {
        match &self.0 {
            DayRepr::Offsets { offsets, .. } => offsets.len(),
            DayRepr::Days(days) => days.len(),
        }
    }

    /// True without days.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Day `i`.
    ///
    /// # Panics
    /// When `i` is not below [`DayColumn::len`], as a slice's index does.
    pub fn get(&self, i: usize) -> Day {
        match &self.0 {
            DayRepr::Offsets { base, offsets } => base + Day::from(offsets[i]),
            DayRepr::Days(days) => days[i],
        }
    }

    /// The days of positions `r`, in order.
    ///
    /// # Panics
    /// When `r` is not within the column, as a slice's range does.
    pub fn range(&self, r: std::ops::Range<usize>) -> impl Iterator<Item = Day> + '_ {
        let (offsets, days): (&[u16], &[Day]) = match &self.0 {
            DayRepr::Offsets { offsets, .. } => (&offsets[r], &[]),
            DayRepr::Days(days) => (&[], &days[r]),
        };
        let base = self.as_offsets().map_or(0, |(b, _)| b);
        offsets.iter().map(move |&o| base + Day::from(o)).chain(days.iter().copied())
    }

    /// Every day, in order.
    pub fn to_vec(&self) -> Vec<Day> {
        self.range(0..self.len()).collect()
    }

    /// `(base, offsets)` when the days are kept as offsets from the earliest (day `i` is
    /// `base + offsets[i]`).
    pub fn as_offsets(&self) -> Option<(Day, &[u16])> {
        match &self.0 {
            DayRepr::Offsets { base, offsets } => Some((*base, offsets)),
            DayRepr::Days(_) => None,
        }
    }

    /// The days when they are kept as days (they span more than [`MAX_OFFSET_SPAN`]).
    pub fn as_days(&self) -> Option<&[Day]> {
        match &self.0 {
            DayRepr::Offsets { .. } => None,
            DayRepr::Days(days) => Some(days),
        }
    }

    /// The earliest and the latest day (None without days).
    fn span(&self) -> Option<(Day, Day)> {
        match &self.0 {
            DayRepr::Offsets { base, offsets } => offsets.iter().max().map(|&m| (*base, base + Day::from(m))),
            DayRepr::Days(days) => span_of(days, |&d| d),
        }
    }

    /// True when the days of positions `r` are ascending.
    fn sorted_in(&self, r: std::ops::Range<usize>) -> bool {
        match &self.0 {
            DayRepr::Offsets { offsets, .. } => offsets[r].is_sorted(),
            DayRepr::Days(days) => days[r].is_sorted(),
        }
    }

    /// How many of the days of positions `r` (ascending) are on or before `day`.
    fn on_or_before(&self, r: std::ops::Range<usize>, day: Day) -> usize {
        match &self.0 {
            DayRepr::Offsets { base, offsets } => {
                let after_base = i64::from(day) - i64::from(*base);
                if after_base < 0 {
                    return 0;
                }
                // Every offset is at most `u16::MAX`: a day past that is after all of them.
                let o = after_base.min(i64::from(u16::MAX)) as u16;
                offsets[r].partition_point(|&x| x <= o)
            }
            DayRepr::Days(days) => days[r].partition_point(|&d| d <= day),
        }
    }

    /// Appends `day`, which must be within the span the column was made for
    /// ([`DayColumn::for_span`]).
    fn push(&mut self, day: Day) {
        match &mut self.0 {
            DayRepr::Offsets { base, offsets } => {
                debug_assert!((0..=MAX_OFFSET_SPAN).contains(&(day - *base)), "{day} out of the column's span");
                offsets.push((day - *base) as u16);
            }
            DayRepr::Days(days) => days.push(day),
        }
    }

    /// Appends the days of positions `r` of `other` (a copy of the slice when both keep them
    /// alike).
    fn extend_from(&mut self, other: &DayColumn, r: std::ops::Range<usize>) {
        match (&mut self.0, &other.0) {
            (DayRepr::Offsets { base, offsets }, DayRepr::Offsets { base: b, offsets: o }) if *base == *b => {
                offsets.extend_from_slice(&o[r]);
            }
            (DayRepr::Days(days), DayRepr::Days(d)) => days.extend_from_slice(&d[r]),
            _ => {
                for day in other.range(r) {
                    self.push(day);
                }
            }
        }
    }

    /// Inserts `day` among the days of positions `r` (ascending), after those on or before
    /// it: the column first takes an earlier base, or keeps days, if `day` calls for it.
    fn insert_in(&mut self, r: std::ops::Range<usize>, day: Day) {
        self.make_room_for(day);
        let at = r.start + self.on_or_before(r, day);
        match &mut self.0 {
            DayRepr::Offsets { base, offsets } => offsets.insert(at, (day - *base) as u16),
            DayRepr::Days(days) => days.insert(at, day),
        }
    }

    /// Puts the column in the form its days and `day` call for: offsets from `day` when it
    /// is the earliest (and the span still fits), days when the span no longer fits.
    fn make_room_for(&mut self, day: Day) {
        let DayRepr::Offsets { base, offsets } = &mut self.0 else { return };
        if offsets.is_empty() {
            *base = day;
            return;
        }
        let after_base = i64::from(day) - i64::from(*base);
        if (0..=i64::from(MAX_OFFSET_SPAN)).contains(&after_base) {
            return;
        }
        let last = i64::from(*base) + offsets.iter().max().map_or(0, |&m| i64::from(m));
        if after_base < 0 && last - i64::from(day) <= i64::from(MAX_OFFSET_SPAN) {
            let shift = (-after_base) as u16;
            for o in offsets.iter_mut() {
                *o += shift;
            }
            *base = day;
        } else {
            let base = *base;
            let days = offsets.iter().map(|&o| base + Day::from(o)).collect();
            self.0 = DayRepr::Days(days);
        }
    }
}

/// Contact days grouped by household, checked to fit together (what
/// [`ServiceRecords::contact_days`] gives and [`ServiceRecords::with_added`] takes): household
/// `h`'s are `days[start[h]..start[h + 1]]`, ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedDays {
    start: Vec<u32>,
    days: DayColumn,
}

impl GroupedDays {
    /// `start` and `days` when they fit together: offsets from 0 to the days' count, never
    /// going back, each household's days ascending; `None` otherwise.
    pub fn new(start: Vec<u32>, days: Vec<Day>) -> Option<GroupedDays> {
        GroupedDays::of_column(start, DayColumn::from_days(days))
    }

    /// The same of days already in a column.
    pub fn of_column(start: Vec<u32>, days: DayColumn) -> Option<GroupedDays> {
        let fits = start.first() == Some(&0)
            && start.last().is_some_and(|&e| e as usize == days.len())
            && start.windows(2).all(|w| w[0] <= w[1])
            && start.windows(2).all(|w| days.sorted_in(w[0] as usize..w[1] as usize));
        fits.then_some(GroupedDays { start, days })
    }
}

/// The service records of a data set's households.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceRecords {
    /// Contact days of household `h`: `days[start[h]..start[h + 1]]`, ascending.
    start: Vec<u32>,
    days: DayColumn,
    /// The needs, in the order given.
    pub needs: Vec<NeedSpan>,
}

impl ServiceRecords {
    /// The records of `households` households from their contacts `(household, day)` (any
    /// order; a household out of range is skipped and counted in the second value) and needs.
    pub fn new(
        households: usize,
        contacts: impl IntoIterator<Item = (u32, Day)>,
        needs: Vec<NeedSpan>,
    ) -> (ServiceRecords, usize) {
        let mut skipped = 0;
        // Given a `Vec`, this keeps its allocation (an in-place collect): the contacts are not
        // copied once more.
        let mut pairs: Vec<(u32, Day)> = contacts
            .into_iter()
            .filter(|&(h, _)| {
                let kept = (h as usize) < households;
                skipped += usize::from(!kept);
                kept
            })
            .collect();
        // In parallel (144 million contacts for the country); equal pairs are alike, so the
        // order is the one sort gives.
        rayon::slice::ParallelSliceMut::par_sort_unstable(&mut pairs[..]);
        let mut start = vec![0u32; households + 1];
        for &(h, _) in &pairs {
            start[h as usize + 1] += 1;
        }
        for h in 0..households {
            start[h + 1] += start[h];
        }
        // Exactly as long as the contacts (two bytes each when they fit).
        let days = DayColumn::collect(&pairs, |p| p.1);
        drop(pairs);
        let (needs, out) = kept_needs(needs, households);
        (ServiceRecords { start, days, needs }, skipped + out)
    }

    /// The records from contact days already grouped by household and more contacts
    /// `(household, day)`, merged in their places: the same records as [`ServiceRecords::new`]
    /// of all the contacts (a contact of a household out of range is skipped and counted).
    /// `None` when there are more contacts than a `u32` counts.
    pub fn with_added(
        grouped: GroupedDays,
        mut added: Vec<(u32, Day)>,
        needs: Vec<NeedSpan>,
    ) -> Option<(ServiceRecords, usize)> {
        let GroupedDays { start, days } = grouped;
        let households = start.len() - 1;
        let before = added.len();
        added.retain(|&(h, _)| (h as usize) < households);
        let skipped = before - added.len();
        let (start, days) = if added.is_empty() {
            (start, days)
        } else {
            rayon::slice::ParallelSliceMut::par_sort_unstable(&mut added[..]);
            let span = joined(days.span(), span_of(&added, |p| p.1));
            let mut merged = DayColumn::for_span(span, days.len() + added.len());
            let mut new_start = Vec::with_capacity(start.len());
            new_start.push(0u32);
            let mut more = added.iter().peekable();
            for h in 0..households {
                let (mut i, end) = (start[h] as usize, start[h + 1] as usize);
                while let Some(&&(_, d)) = more.peek().filter(|p| p.0 as usize == h) {
                    let n = days.on_or_before(i..end, d);
                    merged.extend_from(&days, i..i + n);
                    i += n;
                    merged.push(d);
                    more.next();
                }
                merged.extend_from(&days, i..end);
                new_start.push(u32::try_from(merged.len()).ok()?);
            }
            (new_start, merged)
        };
        let (needs, out) = kept_needs(needs, households);
        Some((ServiceRecords { start, days, needs }, skipped + out))
    }

    /// The contact days grouped by household: household `h`'s are `days[start[h]..start[h +
    /// 1]]`, ascending (what [`GroupedDays::of_column`] takes back).
    pub fn contact_days(&self) -> (&[u32], &DayColumn) {
        (&self.start, &self.days)
    }

    /// Households it covers.
    pub fn households(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    /// The positions in the day column of household `h`'s contacts (empty out of range).
    fn positions(&self, h: u32) -> std::ops::Range<usize> {
        let h = h as usize;
        match (self.start.get(h), self.start.get(h + 1)) {
            (Some(&a), Some(&b)) => a as usize..b as usize,
            _ => 0..0,
        }
    }

    /// All contact days of household `h`, ascending (a copy: they are kept as offsets).
    pub fn contacts(&self, h: u32) -> Vec<Day> {
        self.days.range(self.positions(h)).collect()
    }

    /// The last contact of household `h` on or before `day`.
    pub fn last_contact(&self, h: u32, day: Day) -> Option<Day> {
        let r = self.positions(h);
        let n = self.days.on_or_before(r.clone(), day);
        n.checked_sub(1).map(|i| self.days.get(r.start + i))
    }

    /// Contacts recorded in all.
    pub fn contact_count(&self) -> usize {
        self.days.len()
    }

    /// Adds a contact of household `h` on `day`, in its place (what a visit written through
    /// the server adds; the records stay as [`ServiceRecords::new`] would make them). False,
    /// and nothing added, when `h` is out of range. Moves the contacts after it: a few
    /// milliseconds for millions of contacts (and, once, rewrites them all when `day` is
    /// before every other contact or widens their span past [`MAX_OFFSET_SPAN`]).
    pub fn add_contact(&mut self, h: u32, day: Day) -> bool {
        let i = h as usize;
        if i >= self.households() {
            return false;
        }
        self.days.insert_in(self.positions(h), day);
        for s in &mut self.start[i + 1..] {
            *s += 1;
        }
        true
    }

    /// Adds a need (its household in range and at least one change), and gives its index in
    /// [`ServiceRecords::needs`]; None, and nothing added, otherwise.
    pub fn add_need(&mut self, need: NeedSpan) -> Option<usize> {
        if (need.household as usize) >= self.households() || need.changes.is_empty() {
            return None;
        }
        self.needs.push(need);
        Some(self.needs.len() - 1)
    }

    /// Appends a status change to need `i` (changes are dated on or after the last one, as
    /// the store requires). False when there is no need `i`.
    pub fn change_need(&mut self, i: usize, day: Day, status: NeedStatus) -> bool {
        match self.needs.get_mut(i) {
            Some(n) => {
                n.changes.push((day, status));
                true
            }
            None => false,
        }
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; Howard Hinnant's
/// `days_from_civil`).
pub fn day_from_ymd(y: i32, m: u32, d: u32) -> Day {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day (the inverse of [`day_from_ymd`]).
pub fn ymd_of_day(z: Day) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Today (UTC) by the system clock.
pub fn today() -> Day {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    (secs / 86_400) as Day
}

/// `YYYY-MM-DD` of a day.
pub fn format_day(day: Day) -> String {
    let (y, m, d) = ymd_of_day(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The day of a `YYYY-MM-DD` date ([`crate::model::rules`]-style error naming the text).
pub fn parse_day(s: &str) -> Result<Day, String> {
    let (y, m, d) = crate::model::rules::parse_date(s)?;
    Ok(day_from_ymd(y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_and_known_dates() {
        assert_eq!(day_from_ymd(1970, 1, 1), 0);
        assert_eq!(day_from_ymd(2000, 3, 1), 11_017);
        assert_eq!(day_from_ymd(2026, 11, 29), 20_786);
        assert_eq!(format_day(20_786), "2026-11-29");
        assert_eq!(parse_day("2024-02-29"), Ok(day_from_ymd(2024, 2, 29)));
        assert!(parse_day("2023-02-29").is_err());
        for z in -800_000..800_000 {
            if z % 997 == 0 || (20_000..21_000).contains(&z) {
                let (y, m, d) = ymd_of_day(z);
                assert_eq!(day_from_ymd(y, m, d), z, "{y}-{m}-{d}");
            }
        }
    }

    #[test]
    fn contacts_as_of_a_day() {
        let need = NeedSpan {
            household: 1,
            category: NeedCategory::Medical,
            changes: vec![(10, NeedStatus::Open), (12, NeedStatus::InProgress), (20, NeedStatus::Resolved)],
        };
        let bad = NeedSpan { household: 9, category: NeedCategory::Other, changes: vec![(1, NeedStatus::Open)] };
        let (r, skipped) = ServiceRecords::new(3, [(2, 30), (0, 5), (2, 10), (7, 1), (0, 1)], vec![need.clone(), bad]);
        assert_eq!(skipped, 2);
        assert_eq!(r.households(), 3);
        assert_eq!(r.contacts(0), [1, 5]);
        assert_eq!(r.contacts(1), [] as [Day; 0]);
        assert_eq!(r.contacts(2), [10, 30]);
        assert_eq!(r.contacts(3), [] as [Day; 0]);
        assert_eq!(r.last_contact(0, 0), None);
        assert_eq!(r.last_contact(0, 4), Some(1));
        assert_eq!(r.last_contact(2, 29), Some(10));
        assert_eq!(r.last_contact(2, 30), Some(30));
        assert_eq!(r.contact_count(), 4);
        assert_eq!(r.needs, vec![need.clone()]);
        assert_eq!(need.opened(), Some(10));
        assert_eq!(need.status_on(9), None);
        assert_eq!(need.status_on(15), Some(NeedStatus::InProgress));
        assert_eq!(need.status_on(20), Some(NeedStatus::Resolved));
        assert_eq!(need.resolved_by(19), None);
        assert_eq!(need.resolved_by(25), Some(20));
    }

    #[test]
    fn records_grow_as_a_rebuild_would_make_them() {
        let need =
            |household, changes: Vec<(Day, NeedStatus)>| NeedSpan { household, category: NeedCategory::Legal, changes };
        let (mut r, _) = ServiceRecords::new(4, [(2, 30), (0, 5), (2, 10), (3, 7)], vec![]);
        assert!(r.add_contact(2, 20));
        assert!(r.add_contact(0, 1));
        assert!(r.add_contact(1, 9));
        assert!(r.add_contact(2, 30));
        assert!(!r.add_contact(4, 1));
        assert_eq!(r.add_need(need(1, vec![(3, NeedStatus::Open)])), Some(0));
        assert_eq!(r.add_need(need(9, vec![(3, NeedStatus::Open)])), None);
        assert_eq!(r.add_need(need(1, vec![])), None);
        assert!(r.change_need(0, 8, NeedStatus::Resolved));
        assert!(!r.change_need(1, 8, NeedStatus::Resolved));
        let (rebuilt, _) = ServiceRecords::new(
            4,
            [(2, 30), (0, 5), (2, 10), (3, 7), (2, 20), (0, 1), (1, 9), (2, 30)],
            vec![need(1, vec![(3, NeedStatus::Open), (8, NeedStatus::Resolved)])],
        );
        assert_eq!(r, rebuilt);
        assert_eq!(r.contacts(2), [10, 20, 30, 30]);
    }

    #[test]
    fn names_parse_back() {
        for k in ContactKind::ALL {
            assert_eq!(ContactKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ContactKind::parse("电话"), Some(ContactKind::Phone));
        assert_eq!(ContactKind::parse("fax"), None);
        for c in NeedCategory::ALL {
            assert_eq!(NeedCategory::parse(c.as_str()), Some(c));
        }
        for s in [NeedStatus::Open, NeedStatus::InProgress, NeedStatus::Resolved] {
            assert_eq!(NeedStatus::parse(s.as_str()), Some(s));
        }
    }
}

#[cfg(test)]
mod with_added_tests {
    use super::*;

    /// A small deterministic generator (no dependency for a test).
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[test]
    fn contacts_added_to_grouped_days_make_the_records_of_all_of_them() {
        let mut seed = 7u64;
        for round in 0..200 {
            let households = (lcg(&mut seed) % 12) as usize;
            let n = (lcg(&mut seed) % 60) as usize;
            let pair = |seed: &mut u64| ((lcg(seed) % (households as u64 + 2)) as u32, (lcg(seed) % 20) as Day);
            let first: Vec<(u32, Day)> = (0..n).map(|_| pair(&mut seed)).collect();
            let more: Vec<(u32, Day)> = (0..(round % 7) * (n % 9)).map(|_| pair(&mut seed)).collect();
            let needs =
                vec![NeedSpan { household: 1, category: NeedCategory::Medical, changes: vec![(3, NeedStatus::Open)] }];
            let (base, skipped) = ServiceRecords::new(households, first.clone(), Vec::new());
            let (start, days) = base.contact_days();
            let grouped = GroupedDays::new(start.to_vec(), days.to_vec()).unwrap();
            let (added, skipped_more) = ServiceRecords::with_added(grouped, more.clone(), needs.clone()).unwrap();
            let all: Vec<(u32, Day)> = first.into_iter().chain(more).collect();
            let (whole, skipped_all) = ServiceRecords::new(households, all, needs);
            assert_eq!(added, whole, "round {round}");
            assert_eq!(skipped + skipped_more, skipped_all, "round {round}");
        }
    }

    #[test]
    fn grouped_days_that_do_not_fit_are_refused() {
        let ok = (vec![0, 2, 2, 3], vec![1, 5, 4]);
        assert!(GroupedDays::new(ok.0, ok.1).is_some());
        for (start, days) in [
            (vec![], vec![]),
            (vec![1, 2, 2, 3], vec![1, 5, 4]),
            (vec![0, 2, 2, 4], vec![1, 5, 4]),
            (vec![0, 2, 1, 3], vec![1, 5, 4]),
            (vec![0, 2, 2, 3], vec![5, 1, 4]),
        ] {
            assert!(GroupedDays::new(start.clone(), days.clone()).is_none(), "{start:?} {days:?}");
        }
    }
}

#[cfg(test)]
mod day_column_tests {
    use proptest::prelude::*;

    use super::*;

    /// Every household's days, sorted, as plain vectors (what the records must answer).
    fn by_household(households: usize, contacts: &[(u32, Day)]) -> Vec<Vec<Day>> {
        let mut out = vec![Vec::new(); households];
        for &(h, d) in contacts {
            if let Some(v) = out.get_mut(h as usize) {
                v.push(d);
            }
        }
        for v in &mut out {
            v.sort_unstable();
        }
        out
    }

    /// The records answer as the plain vectors do: every household's days, and the last
    /// contact on or before days around each contact, and far before and after them all.
    fn answers_as(r: &ServiceRecords, want: &[Vec<Day>]) -> Result<(), TestCaseError> {
        prop_assert_eq!(r.households(), want.len());
        prop_assert_eq!(r.contact_count(), want.iter().map(Vec::len).sum::<usize>());
        let mut asked: Vec<Day> = vec![Day::MIN, Day::MIN + 1, -1, 0, 1, Day::MAX - 1, Day::MAX];
        for d in want.iter().flatten() {
            asked.extend([d.saturating_sub(1), *d, d.saturating_add(1)]);
        }
        for (h, days) in want.iter().enumerate() {
            prop_assert_eq!(&r.contacts(h as u32), days);
            for &q in &asked {
                let last = days.iter().copied().filter(|&d| d <= q).max();
                prop_assert_eq!(r.last_contact(h as u32, q), last, "household {} as of {}", h, q);
            }
        }
        prop_assert_eq!(r.contacts(want.len() as u32), Vec::<Day>::new());
        let (start, days) = r.contact_days();
        prop_assert_eq!(start.len(), want.len() + 1);
        prop_assert_eq!(days.to_vec(), want.concat());
        Ok(())
    }

    /// Contacts of up to 6 households, their days `base + k`: most near 0 or near the widest
    /// span of offsets, on either side of it, some far beyond.
    fn contacts() -> impl Strategy<Value = (usize, Vec<(u32, Day)>)> {
        let base = prop_oneof![Just(0), -1_000_000..1_000_000, Just(Day::MIN), Just(Day::MAX - 70_000)];
        let k = prop_oneof![0..10, 65_530..65_540, 0..70_000, 0..1_000_000];
        (1usize..6, base, proptest::collection::vec((0u32..7, k), 0..30)).prop_map(|(households, base, ks)| {
            let contacts = ks.into_iter().map(|(h, k)| (h, base.saturating_add(k))).collect();
            (households, contacts)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Records of contacts within, at the edge of and beyond the widest span of offsets
        /// answer every question as the days themselves do; they keep two bytes a contact
        /// exactly when the span fits; and grown by contacts (one at a time, or merged into
        /// grouped days), they are the records of all of them.
        #[test]
        fn records_answer_as_their_days_do_across_the_offsets_edge((households, contacts) in contacts(), cut in 0usize..30) {
            let (r, _) = ServiceRecords::new(households, contacts.clone(), Vec::new());
            let want = by_household(households, &contacts);
            answers_as(&r, &want)?;
            let kept: Vec<Day> = want.concat();
            let span = kept.iter().max().map(|&m| i64::from(m) - i64::from(*kept.iter().min().unwrap()));
            let (_, days) = r.contact_days();
            prop_assert_eq!(days.as_offsets().is_some(), span.is_none_or(|s| s <= i64::from(MAX_OFFSET_SPAN)));
            prop_assert_eq!(days.as_days().is_some(), days.as_offsets().is_none());

            // The first `cut` contacts, then the others added one at a time, or merged.
            let cut = cut.min(contacts.len());
            let (mut grown, _) = ServiceRecords::new(households, contacts[..cut].to_vec(), Vec::new());
            let (start, days) = grown.contact_days();
            let grouped = GroupedDays::of_column(start.to_vec(), days.clone()).unwrap();
            prop_assert_eq!(&GroupedDays::new(start.to_vec(), days.to_vec()).unwrap(), &grouped);
            let (merged, _) = ServiceRecords::with_added(grouped, contacts[cut..].to_vec(), Vec::new()).unwrap();
            for &(h, d) in &contacts[cut..] {
                prop_assert_eq!(grown.add_contact(h, d), (h as usize) < households);
            }
            prop_assert_eq!(&grown, &r);
            prop_assert_eq!(&merged, &r);
        }
    }

    #[test]
    fn the_widest_span_of_offsets_and_one_day_more() {
        let base = day_from_ymd(2020, 1, 1);
        let edge = base + MAX_OFFSET_SPAN;
        let (r, _) = ServiceRecords::new(2, [(0, edge), (1, base), (0, base + 1)], Vec::new());
        assert_eq!(r.contact_days().1.as_offsets(), Some((base, &[1, MAX_OFFSET_SPAN as u16, 0][..])));
        assert_eq!((r.contacts(0), r.contacts(1)), (vec![base + 1, edge], vec![base]));
        assert_eq!(r.last_contact(0, Day::MAX), Some(edge));
        assert_eq!(r.last_contact(0, edge - 1), Some(base + 1));
        assert_eq!(r.last_contact(1, base - 1), None);

        // One day past it: the days themselves, the same answers.
        let mut wide = r.clone();
        assert!(wide.add_contact(1, edge + 1));
        assert_eq!(wide.contact_days().1.as_days(), Some(&[base + 1, edge, base, edge + 1][..]));
        assert_eq!(wide.last_contact(1, edge), Some(base));
        assert_eq!(wide.last_contact(1, Day::MAX), Some(edge + 1));
        let (rebuilt, _) = ServiceRecords::new(2, [(0, edge), (1, base), (0, base + 1), (1, edge + 1)], Vec::new());
        assert_eq!(wide, rebuilt);

        // A day before the first, the span still fitting: offsets from it.
        let (mut r, _) = ServiceRecords::new(2, [(0, base + 10), (1, base + 20)], Vec::new());
        assert!(r.add_contact(1, base - 5));
        assert_eq!(r.contact_days().1.as_offsets(), Some((base - 5, &[15, 0, 25][..])));
        assert_eq!(r, ServiceRecords::new(2, [(0, base + 10), (1, base + 20), (1, base - 5)], Vec::new()).0);
        // And one too far before the last: days.
        assert!(r.add_contact(0, base + 20 - MAX_OFFSET_SPAN - 1));
        assert!(r.contact_days().1.as_days().is_some());
        assert_eq!(r.contacts(0), [base + 20 - MAX_OFFSET_SPAN - 1, base + 10]);

        // The first contact of empty records sets the base, wherever it is.
        let (mut r, _) = ServiceRecords::new(1, [], Vec::new());
        assert_eq!(r.contact_days().1.as_offsets(), Some((0, &[][..])));
        assert!(r.add_contact(0, Day::MIN));
        assert_eq!(r.contact_days().1.as_offsets(), Some((Day::MIN, &[0][..])));
        assert_eq!(r.last_contact(0, Day::MIN), Some(Day::MIN));
        assert_eq!(r.last_contact(0, Day::MAX), Some(Day::MIN));
    }

    #[test]
    fn a_column_of_offsets_takes_its_earliest_as_base_and_never_a_day_past_the_last() {
        let c = DayColumn::from_offsets(100, vec![7, 5, 9]).unwrap();
        assert_eq!(c.as_offsets(), Some((105, &[2, 0, 4][..])));
        assert_eq!(c, DayColumn::from_days(vec![107, 105, 109]));
        assert_eq!(c.to_vec(), [107, 105, 109]);
        assert!(DayColumn::from_offsets(Day::MAX - 3, vec![0, 4]).is_none());
        assert_eq!(DayColumn::from_offsets(Day::MAX - 3, vec![3]).unwrap().to_vec(), [Day::MAX]);
        assert_eq!(DayColumn::from_offsets(5, vec![]), Some(DayColumn::default()));
        assert!(DayColumn::default().is_empty());
    }
}
