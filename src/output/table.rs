//! A table of typed rows ([`Field`]) in the forms leaders use: CSV, and Excel (`.xlsx`) with
//! Chinese column headers and codes kept as text (a code such as `620102001001` written as a
//! number would lose its leading digits' meaning and show in scientific notation).

use std::path::Path;

use rust_xlsxwriter::{Format, Workbook};

use super::{Field, OutputError};

/// A table: its sheet name, its columns (the CSV header and the Chinese header of each) and its
/// rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Sheet name (at most 31 characters, as Excel wants).
    pub sheet: String,
    /// `(csv_name, 中文表头)` of each column.
    pub columns: Vec<(&'static str, &'static str)>,
    /// The rows, each as long as `columns`.
    pub rows: Vec<Vec<Field>>,
}

impl Table {
    /// The table as CSV text (header: the CSV names).
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(self.columns.iter().map(|c| c.0));
        for r in &self.rows {
            let _ = w.write_record(r.iter().map(Field::to_csv));
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    /// The table as an `.xlsx` workbook of one sheet: Chinese headers in bold, frozen; text as
    /// text (codes too), counts and measures as numbers, absent values as empty cells.
    ///
    /// # Errors
    /// The workbook cannot be encoded (`path` names the file it was for).
    pub fn to_xlsx(&self, path: &Path) -> Result<Vec<u8>, OutputError> {
        let enc =
            |e: rust_xlsxwriter::XlsxError| OutputError::Encode { path: path.to_path_buf(), message: e.to_string() };
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        let name: String = self.sheet.chars().filter(|c| !"[]:*?/\\".contains(*c)).take(31).collect();
        ws.set_name(if name.is_empty() { "Sheet1" } else { name.as_str() }).map_err(enc)?;
        let bold = Format::new().set_bold();
        for (c, (_, zh)) in self.columns.iter().enumerate() {
            ws.write_string_with_format(0, c as u16, *zh, &bold).map_err(enc)?;
        }
        for (i, r) in self.rows.iter().enumerate() {
            let row = i as u32 + 1;
            for (c, f) in r.iter().enumerate() {
                let col = c as u16;
                match f {
                    Field::Text(s) => {
                        ws.write_string(row, col, s).map_err(enc)?;
                    }
                    Field::MaybeText(Some(s)) => {
                        ws.write_string(row, col, s).map_err(enc)?;
                    }
                    Field::Int(x) => {
                        ws.write_number(row, col, *x as f64).map_err(enc)?;
                    }
                    Field::Real(Some(_), _) => {
                        // The value as the CSV rounds it, so the two files agree.
                        let x: f64 = f.to_csv().parse().unwrap_or(f64::NAN);
                        ws.write_number(row, col, x).map_err(enc)?;
                    }
                    Field::Bool(b) => {
                        ws.write_boolean(row, col, *b).map_err(enc)?;
                    }
                    Field::MaybeText(None) | Field::Real(None, _) => {}
                }
            }
        }
        ws.set_freeze_panes(1, 0).map_err(enc)?;
        wb.save_to_buffer().map_err(enc)
    }

    /// Writes the table to `path`, as `.xlsx` when the name ends so, else as CSV (atomically).
    ///
    /// # Errors
    /// The file cannot be encoded or written.
    pub fn write(&self, path: &Path) -> Result<(), OutputError> {
        let xlsx = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
        let bytes = if xlsx { self.to_xlsx(path)? } else { self.to_csv().into_bytes() };
        super::write_bytes(path, &bytes)
    }
}
