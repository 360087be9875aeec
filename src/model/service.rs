//! Service records as the analysis reads them (pure data): every household's contacts (visits,
//! calls, station visits) and needs (诉求) with the days their status changed.
//!
//! Days are civil dates counted from 1970-01-01 ([`Day`], [`day_from_ymd`], [`ymd_of_day`]);
//! "as of" a day means everything recorded on or before it. The store keeps the records
//! themselves (who, notes, history); this is the compact form the effective-coverage figures are
//! computed from: contact days per household in one array (no heap object per household), and
//! each need's status changes.

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

/// Contact days grouped by household, checked to fit together (what
/// [`ServiceRecords::contact_days`] gives and [`ServiceRecords::with_added`] takes): household
/// `h`'s are `days[start[h]..start[h + 1]]`, ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedDays {
    start: Vec<u32>,
    days: Vec<Day>,
}

impl GroupedDays {
    /// `start` and `days` when they fit together: offsets from 0 to the days' count, never
    /// going back, each household's days ascending; `None` otherwise.
    pub fn new(start: Vec<u32>, days: Vec<Day>) -> Option<GroupedDays> {
        let fits = start.first() == Some(&0)
            && start.last().is_some_and(|&e| e as usize == days.len())
            && start.windows(2).all(|w| w[0] <= w[1])
            && start.windows(2).all(|w| days[w[0] as usize..w[1] as usize].is_sorted());
        fits.then_some(GroupedDays { start, days })
    }
}

/// The service records of a data set's households.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceRecords {
    /// Contact days of household `h`: `days[start[h]..start[h + 1]]`, ascending.
    start: Vec<u32>,
    days: Vec<Day>,
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
        // Exactly as long as the contacts (not a collect that could reuse the larger buffer).
        let mut days = Vec::with_capacity(pairs.len());
        days.extend(pairs.iter().map(|p| p.1));
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
            let mut merged = Vec::with_capacity(days.len() + added.len());
            let mut new_start = Vec::with_capacity(start.len());
            new_start.push(0u32);
            let mut more = added.iter().peekable();
            for h in 0..households {
                let old = &days[start[h] as usize..start[h + 1] as usize];
                let mut i = 0;
                while let Some(&&(_, d)) = more.peek().filter(|p| p.0 as usize == h) {
                    let n = old[i..].partition_point(|&o| o <= d);
                    merged.extend_from_slice(&old[i..i + n]);
                    i += n;
                    merged.push(d);
                    more.next();
                }
                merged.extend_from_slice(&old[i..]);
                new_start.push(u32::try_from(merged.len()).ok()?);
            }
            (new_start, merged)
        };
        let (needs, out) = kept_needs(needs, households);
        Some((ServiceRecords { start, days, needs }, skipped + out))
    }

    /// The contact days grouped by household: household `h`'s are `days[start[h]..start[h +
    /// 1]]`, ascending (what [`GroupedDays::new`] takes back).
    pub fn contact_days(&self) -> (&[u32], &[Day]) {
        (&self.start, &self.days)
    }

    /// Households it covers.
    pub fn households(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    /// All contact days of household `h`, ascending.
    pub fn contacts(&self, h: u32) -> &[Day] {
        let h = h as usize;
        match (self.start.get(h), self.start.get(h + 1)) {
            (Some(&a), Some(&b)) => &self.days[a as usize..b as usize],
            _ => &[],
        }
    }

    /// The last contact of household `h` on or before `day`.
    pub fn last_contact(&self, h: u32, day: Day) -> Option<Day> {
        let c = self.contacts(h);
        let n = c.partition_point(|&d| d <= day);
        n.checked_sub(1).map(|i| c[i])
    }

    /// Contacts recorded in all.
    pub fn contact_count(&self) -> usize {
        self.days.len()
    }

    /// Adds a contact of household `h` on `day`, in its place (what a visit written through
    /// the server adds; the records stay as [`ServiceRecords::new`] would make them). False,
    /// and nothing added, when `h` is out of range. Moves the contacts after it: a few
    /// milliseconds for millions of contacts.
    pub fn add_contact(&mut self, h: u32, day: Day) -> bool {
        let i = h as usize;
        if i >= self.households() {
            return false;
        }
        let (a, b) = (self.start[i] as usize, self.start[i + 1] as usize);
        let at = a + self.days[a..b].partition_point(|&d| d <= day);
        self.days.insert(at, day);
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
