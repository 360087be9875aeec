//! A synthetic service history (pure): the grid workers' contacts with every household and
//! the needs (诉求) they raised, over the half year before a day, for the effective-coverage
//! figures to show something true to life on the first run.
//!
//! Drawn from one [`ChaCha8Rng`] seeded from `(seed, "contacts")`, household by household in
//! order, so the history depends on the seed and the households only, and the other files of
//! the folder are untouched by it. Per household:
//! - **Never contacted**: 4 % of households (10 % in pastoral counties, where the herders are
//!   far away); with those whose first contact falls before the half year, about 8 % in all.
//! - **Contacts**: a renewal process backwards from the day, with exponential gaps of mean 25
//!   days for hardship families, 40 for martyrs' families, 60 for the others (times 1.5 in
//!   pastoral counties), over [`HISTORY_DAYS`]; about three contacts per household, most
//!   households contacted in the last quarter. Kind: home visit 55 %, phone 30 %, at the
//!   station 10 %, other 5 %.
//! - **Needs**: 8 % of households raise one (20 % of hardship families), on one of their
//!   contact days, in a category weighted by status (hardship families ask for hardship help
//!   and medical care more often). 65 % are resolved after an exponential 18 days, 15 % are in
//!   progress after 7, the rest still open — as far as the day allows.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};

use crate::model::service::Day;
use crate::model::{ContactKind, Households, NeedCategory, NeedStatus};

/// Days of history before the last day.
pub const HISTORY_DAYS: Day = 182;

/// One contact of the ledger (台账): household, day, kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRow {
    /// Household index.
    pub household: u32,
    /// Day of the contact.
    pub day: Day,
    /// How.
    pub kind: ContactKind,
}

/// One need raised: household, category, the day raised, and its status on the last day with
/// the day it took that status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedRow {
    /// Household index.
    pub household: u32,
    /// What it is about.
    pub category: NeedCategory,
    /// Day raised.
    pub raised: Day,
    /// Status on the last day.
    pub status: NeedStatus,
    /// Day it took that status (`raised` while open).
    pub since: Day,
}

/// The service history of `hh` up to `until` (`pastoral[h]`: household `h` lives in a
/// pastoral county), from `seed`.
pub fn history(hh: &Households, pastoral: &[bool], seed: u64, until: Day) -> (Vec<ContactRow>, Vec<NeedRow>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x636f_6e74_6163_7473); // "contacts"
    let mut contacts = Vec::with_capacity(hh.len() * 3);
    let mut needs = Vec::new();
    let resolve: Exp<f64> = Exp::new(1.0 / 18.0).expect("positive rate");
    let take_up: Exp<f64> = Exp::new(1.0 / 7.0).expect("positive rate");
    let mut days: Vec<Day> = Vec::new();
    for h in 0..hh.len() {
        let remote = pastoral.get(h).copied().unwrap_or(false);
        let (hardship, martyr) = (hh.difficulty[h], hh.martyr_family[h]);
        if rng.random_bool(if remote { 0.10 } else { 0.04 }) {
            continue;
        }
        let mean = if hardship {
            25.0
        } else if martyr {
            40.0
        } else {
            60.0
        } * if remote { 1.5 } else { 1.0 };
        let gap: Exp<f64> = Exp::new(1.0 / mean).expect("positive rate");
        days.clear();
        // The first gap is drawn from the same law (the process has run for long).
        let mut back = gap.sample(&mut rng);
        while back < f64::from(HISTORY_DAYS) {
            days.push(until - back as Day);
            back += gap.sample(&mut rng).max(1.0);
        }
        days.reverse();
        for &day in &days {
            let kind = match rng.random_range(0..100) {
                0..55 => ContactKind::Home,
                55..85 => ContactKind::Phone,
                85..95 => ContactKind::Station,
                _ => ContactKind::Other,
            };
            contacts.push(ContactRow { household: h as u32, day, kind });
        }
        if days.is_empty() || !rng.random_bool(if hardship { 0.20 } else { 0.08 }) {
            continue;
        }
        let raised = days[rng.random_range(0..days.len())];
        let category = category(&mut rng, hardship, martyr);
        let (status, since) = match rng.random_range(0..100) {
            0..65 => (NeedStatus::Resolved, raised + resolve.sample(&mut rng).ceil() as Day),
            65..80 => (NeedStatus::InProgress, raised + take_up.sample(&mut rng).ceil() as Day),
            _ => (NeedStatus::Open, raised),
        };
        // What has not happened by the last day has not happened.
        let (status, since) = if since > until { (NeedStatus::Open, raised) } else { (status, since) };
        needs.push(NeedRow { household: h as u32, category, raised, status, since });
    }
    (contacts, needs)
}

fn category(rng: &mut ChaCha8Rng, hardship: bool, martyr: bool) -> NeedCategory {
    // Weights of employment, medical, housing, pension, legal, hardship, other.
    let w: [u32; 7] = if hardship {
        [10, 30, 15, 10, 5, 25, 5]
    } else if martyr {
        [10, 25, 10, 30, 10, 5, 10]
    } else {
        [30, 20, 10, 15, 10, 5, 10]
    };
    let mut x = rng.random_range(0..w.iter().sum::<u32>());
    for (c, &wi) in NeedCategory::ALL.iter().zip(&w) {
        if x < wi {
            return *c;
        }
        x -= wi;
    }
    NeedCategory::Other
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HouseholdRow;

    fn households(n: usize) -> Households {
        let mut hh = Households::default();
        for i in 0..n {
            hh.push(HouseholdRow {
                id: format!("H{i}"),
                veterans: 1,
                difficulty: i % 10 == 0,
                martyr_family: i % 33 == 1,
                ..Default::default()
            });
        }
        hh
    }

    #[test]
    fn a_history_true_to_life_and_the_same_every_time() {
        let n = 20_000;
        let hh = households(n);
        let until = crate::model::service::day_from_ymd(2026, 11, 30);
        let (c, needs) = history(&hh, &vec![false; n], 7, until);
        assert_eq!(history(&hh, &vec![false; n], 7, until), (c.clone(), needs.clone()));
        assert_ne!(history(&hh, &vec![false; n], 8, until).0, c);
        // About three contacts per household, all within the half year, in order per household.
        let per = c.len() as f64 / n as f64;
        assert!((2.5..4.0).contains(&per), "{per} contacts per household");
        assert!(c.iter().all(|r| r.day <= until && r.day > until - HISTORY_DAYS));
        assert!(c.windows(2).all(|w| w[0].household < w[1].household || w[0].day <= w[1].day));
        // Most households contacted in the last quarter; hardship families more often; some never.
        let mut last = vec![None; n];
        for r in &c {
            last[r.household as usize] = Some(r.day);
        }
        let share = |pick: &dyn Fn(usize) -> bool, within: Day| {
            let all: Vec<usize> = (0..n).filter(|&h| pick(h)).collect();
            all.iter().filter(|&&h| last[h].is_some_and(|d| d > until - within)).count() as f64 / all.len() as f64
        };
        let quarter = share(&|_| true, 90);
        assert!((0.65..0.9).contains(&quarter), "{quarter} contacted in the last quarter");
        let hardship_month = share(&|h| hh.difficulty[h], 30);
        let others_month = share(&|h| !hh.difficulty[h] && !hh.martyr_family[h], 30);
        assert!(hardship_month > others_month + 0.2, "{hardship_month} vs {others_month}");
        let never = last.iter().filter(|d| d.is_none()).count() as f64 / n as f64;
        assert!((0.05..0.12).contains(&never), "{never} never contacted");
        // Needs: on a contact day of their household; statuses as of the day.
        let raised = needs.len() as f64 / n as f64;
        assert!((0.05..0.15).contains(&raised), "{raised} of households raised a need");
        for nd in &needs {
            assert!(c.iter().any(|r| r.household == nd.household && r.day == nd.raised));
            assert!(nd.since >= nd.raised && nd.since <= until);
            if nd.status == NeedStatus::Open {
                assert_eq!(nd.since, nd.raised);
            } else {
                assert!(nd.since > nd.raised, "{nd:?}");
            }
        }
        let open = needs.iter().filter(|n| n.status != NeedStatus::Resolved).count();
        assert!(open > 0 && open < needs.len() / 2, "{open} of {} open", needs.len());
        // Herders are reached less.
        let (cp, _) = history(&hh, &vec![true; n], 7, until);
        assert!(cp.len() < c.len() * 3 / 4, "{} pastoral contacts vs {}", cp.len(), c.len());
    }
}
