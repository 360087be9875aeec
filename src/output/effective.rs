//! The effective-coverage table ([`crate::analysis::effective()`]) of one level: CSV, Excel and
//! the text `gridcover report --effective` prints.

use unicode_width::UnicodeWidthStr;

use super::table::Table;
use super::Field;
use crate::analysis::effective::ServiceFigures;
use crate::analysis::Effective;
use crate::model::service::format_day;
use crate::model::{Dataset, Level, UnitIdx};

/// Columns of the table: CSV name and Chinese header.
pub const EFFECTIVE_COLUMNS: [(&str, &str); 16] = [
    ("code", "代码"),
    ("name", "名称"),
    ("level", "级别"),
    ("parent_code", "上级代码"),
    ("households", "户数"),
    ("contacted_households", "近期已联系户数"),
    ("contacted_share", "联系率"),
    ("overdue_households", "逾期未联系户数"),
    ("hardship_households", "困难户数"),
    ("hardship_overdue_households", "困难户逾期未联系户数"),
    ("never_contacted_households", "从未联系户数"),
    ("open_need_households", "有未结诉求户数"),
    ("open_needs", "未结诉求数"),
    ("open_needs_median_days", "未结诉求天数中位数"),
    ("needs_in_window", "期内诉求数"),
    ("needs_resolved_30d_share", "30天内解决率"),
];

/// The row of one unit, in [`EFFECTIVE_COLUMNS`] order.
pub fn effective_fields(ds: &Dataset, f: &ServiceFigures, u: UnitIdx) -> Vec<Field> {
    let d = ds.divisions.get(u);
    let mut row = vec![
        Field::Text(d.code.clone()),
        Field::Text(d.name.clone()),
        Field::Text(d.level.as_str().to_string()),
        Field::MaybeText(d.parent.map(|p| ds.divisions.get(p).code.clone())),
    ];
    row.extend(figure_fields(f));
    row
}

/// The figures of a row, from `households` on (the columns of [`EFFECTIVE_COLUMNS`] after the
/// four that name the unit, and of the workers' table after the two that name the worker).
fn figure_fields(f: &ServiceFigures) -> Vec<Field> {
    let n = |x: u64| Field::Int(x as i64);
    vec![
        n(f.households),
        n(f.contacted_households),
        Field::Real(f.contacted_share, 4),
        n(f.overdue_households),
        n(f.hardship_households),
        n(f.hardship_overdue_households),
        n(f.never_contacted_households),
        n(f.open_need_households),
        n(f.open_needs),
        Field::Real(f.open_needs_median_days, 1),
        n(f.needs_in_window),
        Field::Real(f.needs_resolved_30d_share, 4),
    ]
}

/// Units of `level`, least contacted first (lowest contacted share, then most overdue, then
/// code); units without households last.
pub fn worst_contacted_first(ds: &Dataset, e: &Effective, level: Level) -> Vec<UnitIdx> {
    let mut units: Vec<UnitIdx> = ds.divisions.at_level(level).collect();
    let key = |u: UnitIdx| {
        let f = &e.units[u as usize];
        (f.contacted_share.unwrap_or(f64::INFINITY), std::cmp::Reverse(f.overdue_households))
    };
    units.sort_by(|&x, &y| {
        let (kx, ky) = (key(x), key(y));
        kx.0.total_cmp(&ky.0)
            .then(kx.1.cmp(&ky.1))
            .then_with(|| ds.divisions.get(x).code.cmp(&ds.divisions.get(y).code))
    });
    units
}

/// The table of every unit of `level`, least contacted first.
pub fn effective_table(ds: &Dataset, e: &Effective, level: Level) -> Table {
    Table {
        sheet: format!("有效覆盖 {} {}", level.zh(), format_day(e.as_of)),
        columns: EFFECTIVE_COLUMNS.to_vec(),
        rows: worst_contacted_first(ds, e, level)
            .into_iter()
            .map(|u| effective_fields(ds, &e.units[u as usize], u))
            .collect(),
    }
}

/// The text table of `gridcover report --effective`: at most `limit` units of `level`, least
/// contacted first.
pub fn effective_text(ds: &Dataset, e: &Effective, level: Level, limit: usize) -> String {
    let header = [
        "code 代码",
        "name 名称",
        "households 户",
        "contacted 已联系",
        "share 联系率",
        "overdue 逾期",
        "hardship overdue 困难逾期",
        "never 从未",
        "open needs 未结诉求",
        "median days 中位天数",
        "resolved 30d 解决率",
    ];
    let pct = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{:.1}%", v * 100.0));
    let rows: Vec<Vec<String>> = worst_contacted_first(ds, e, level)
        .into_iter()
        .take(limit)
        .map(|u| {
            let d = ds.divisions.get(u);
            let f = &e.units[u as usize];
            vec![
                d.code.clone(),
                d.name.clone(),
                f.households.to_string(),
                f.contacted_households.to_string(),
                pct(f.contacted_share),
                f.overdue_households.to_string(),
                f.hardship_overdue_households.to_string(),
                f.never_contacted_households.to_string(),
                f.open_needs.to_string(),
                f.open_needs_median_days.map_or("–".into(), |m| format!("{m:.0}")),
                pct(f.needs_resolved_30d_share),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].width()).chain([header[i].width()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let fill = " ".repeat(widths[i].saturating_sub(s.width()));
                if i >= 2 {
                    format!("{fill}{s}")
                } else {
                    format!("{s}{fill}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = format!(
        "Effective coverage 有效覆盖 by {} ({}) as of {} (contact within {} days, hardship {}), least contacted first — {} of {} units\n",
        level,
        level.zh(),
        format_day(e.as_of),
        e.config.contact_days,
        e.config.hardship_days,
        rows.len(),
        ds.divisions.count(level)
    );
    out.push_str(&line(&header.map(String::from)));
    out.push('\n');
    out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

/// The columns that name a worker in `effective_workers.csv`, before the figures.
const WORKER_NAME_COLUMNS: [(&str, &str); 2] = [("worker", "网格员"), ("grids", "网格数")];

/// The table of every grid worker, least contacted first.
pub fn workers_table(ds: &Dataset, e: &Effective) -> Table {
    let mut grids: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for w in &ds.grids.worker {
        *grids.entry(w.as_str()).or_default() += 1;
    }
    // In name order, then (a stable sort) by contacted share: the least contacted first, a
    // tie by name. The key is read from the pair, not looked up by name in the map for each
    // comparison (600,000 workers nationally).
    let mut workers: Vec<(&String, &ServiceFigures)> = e.workers.iter().collect();
    workers.sort_by(|(_, a), (_, b)| {
        a.contacted_share.unwrap_or(f64::INFINITY).total_cmp(&b.contacted_share.unwrap_or(f64::INFINITY))
    });
    Table {
        sheet: format!("网格员 {}", format_day(e.as_of)),
        columns: WORKER_NAME_COLUMNS.iter().chain(&EFFECTIVE_COLUMNS[4..]).copied().collect(),
        rows: workers
            .into_iter()
            .map(|(w, f)| {
                let mut row = vec![Field::Text(w.clone()), Field::Int(grids.get(w.as_str()).copied().unwrap_or(0))];
                row.extend(figure_fields(f));
                row
            })
            .collect(),
    }
}

/// Writes `effective_<level>.csv` for the five levels and `effective_workers.csv` into `out`.
///
/// # Errors
/// A file cannot be written.
pub fn write_effective(out: &std::path::Path, ds: &Dataset, e: &Effective) -> Result<(), super::OutputError> {
    std::fs::create_dir_all(out).map_err(|source| super::OutputError::Io { path: out.to_path_buf(), source })?;
    for level in Level::ALL {
        effective_table(ds, e, level).write(&out.join(format!("effective_{}.csv", level.as_str())))?;
    }
    workers_table(ds, e).write(&out.join("effective_workers.csv"))
}
