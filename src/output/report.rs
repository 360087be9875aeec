//! The readable coverage table of `gridcover report`.

use unicode_width::UnicodeWidthStr;

use crate::analysis::Analysis;
use crate::model::{Dataset, Level, UnitIdx};

/// Units of `level` ordered worst first: lowest coverage share, then most uncovered veterans,
/// then code. Units without veterans come last.
pub fn sort_worst_first(ds: &Dataset, a: &Analysis, level: Level) -> Vec<UnitIdx> {
    let mut units: Vec<UnitIdx> = ds.divisions.at_level(level).collect();
    let key = |u: &UnitIdx| {
        let c = &a.coverage.units[*u as usize];
        let share = if c.veterans == 0 { f64::INFINITY } else { c.coverage_share() };
        (share, -(c.veterans - c.covered_veterans))
    };
    units.sort_by(|x, y| {
        let (kx, ky) = (key(x), key(y));
        kx.0.total_cmp(&ky.0)
            .then(kx.1.cmp(&ky.1))
            .then_with(|| ds.divisions.get(*x).code.cmp(&ds.divisions.get(*y).code))
    });
    units
}

fn pad(s: &str, w: usize, right: bool) -> String {
    let n = UnicodeWidthStr::width(s);
    let fill = " ".repeat(w.saturating_sub(n));
    if right {
        format!("{fill}{s}")
    } else {
        format!("{s}{fill}")
    }
}

/// A text table of the units of `level`, worst first, at most `limit` rows.
pub fn report_table(ds: &Dataset, a: &Analysis, level: Level, limit: usize) -> String {
    let header = [
        "code 代码",
        "name 名称",
        "households 户",
        "veterans 人",
        "covered 覆盖",
        "share 覆盖率",
        "median m",
        "p90 m",
        "stations 站",
        "no-stn townships",
        "no-stn villages",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for u in sort_worst_first(ds, a, level).into_iter().take(limit) {
        let d = ds.divisions.get(u);
        let c = &a.coverage.units[u as usize];
        let share = c.coverage_share();
        rows.push(vec![
            d.code.clone(),
            d.name.clone(),
            c.households.to_string(),
            c.veterans.to_string(),
            c.covered_veterans.to_string(),
            if share.is_finite() { format!("{:.1}%", share * 100.0) } else { "–".into() },
            if c.nearest_median_m.is_finite() { format!("{:.0}", c.nearest_median_m) } else { "–".into() },
            if c.nearest_p90_m.is_finite() { format!("{:.0}", c.nearest_p90_m) } else { "–".into() },
            c.stations.iter().sum::<i64>().to_string(),
            c.townships_without_station.to_string(),
            c.villages_without_station.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| UnicodeWidthStr::width(r[i].as_str()))
                .chain([UnicodeWidthStr::width(header[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| -> String {
        cells.iter().enumerate().map(|(i, s)| pad(s, widths[i], i >= 2)).collect::<Vec<_>>().join("  ")
    };
    let mut out = format!(
        "Coverage by {} ({}), worst first — {} of {} units\n",
        level,
        level.zh(),
        rows.len(),
        ds.divisions.count(level)
    );
    out.push_str(&line(header.iter().map(|s| s.to_string()).collect()));
    out.push('\n');
    out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}
