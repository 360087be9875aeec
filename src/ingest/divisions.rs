//! `divisions.csv`: the statistical division table.

use std::collections::HashMap;
use std::path::Path;

use super::table::{csv_rows, RowError};
use super::{file_name, IngestError};
use crate::model::{DivisionError, Divisions, Level, Reject};

/// Reads `code,name,level,parent_code` rows into a [`Divisions`] table.
///
/// Rows may come in any order (they are added level by level, parents first). A row with an
/// unknown level, a code of the wrong length for its level, a duplicate code, or a parent that
/// is not a known unit one level up becomes a [`Reject`] (so do its descendants, whose parent
/// is then unknown).
///
/// # Errors
/// The file is missing or not CSV, a column is missing, or no province remains.
pub fn read_divisions(path: &Path, rejects: &mut Vec<Reject>) -> Result<Divisions, IngestError> {
    struct Row {
        line: usize,
        code: String,
        name: String,
        level: Level,
        parent: Option<String>,
    }
    let cols = [("code", true), ("name", true), ("level", true), ("parent_code", true)];
    let mut rows: Vec<Row> = Vec::new();
    csv_rows(path, &cols, rejects, |line, v| {
        let code = v[0].text().unwrap_or_default().into_owned();
        if code.is_empty() {
            return Err(RowError::new("", "code is empty"));
        }
        let name = v[1].text().unwrap_or_default().into_owned();
        let level_text = v[2].text().unwrap_or_default();
        let level: Level = level_text.parse().map_err(|e| RowError::new(&code, format!("{e}")))?;
        let parent = v[3].text().map(|p| p.into_owned());
        rows.push(Row { line, code, name, level, parent });
        Ok(())
    })?;
    rows.sort_by_key(|r| r.level);
    let file = file_name(path);
    let mut divisions = Divisions::new();
    let mut first_line: HashMap<String, usize> = HashMap::with_capacity(rows.len());
    for r in rows {
        match divisions.add(&r.code, &r.name, r.level, r.parent.as_deref()) {
            Ok(_) => {
                first_line.insert(r.code, r.line);
            }
            Err(e) => {
                let reason = match &e {
                    DivisionError::Duplicate(c) => match first_line.get(c) {
                        Some(l) => format!("duplicate code {c} (first on line {l})"),
                        None => e.to_string(),
                    },
                    _ => e.to_string(),
                };
                rejects.push(Reject { file: file.clone(), row: r.line, id: r.code, reason });
            }
        }
    }
    if divisions.count(Level::Province) == 0 {
        return Err(IngestError::NoProvince { path: path.to_path_buf() });
    }
    Ok(divisions)
}
