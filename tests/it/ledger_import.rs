//! Import of ledgers of contacts (台账) into the store: CSV and Excel give the same import,
//! rejects name file and row, importing twice adds nothing, and a data folder's own
//! contacts.csv and needs.csv come in with the folder and not twice.

use std::path::Path;

use gridcover::ingest::service::{read_folder_records, read_ledger};
use gridcover::model::{HouseholdRow, Households};
use gridcover::store::{Actor, RecordSource, Store};

fn small_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crate::common::copy_fixture_to("small", dir.path());
    dir
}

fn households(store: &Store) -> Households {
    let mut hh = Households::default();
    for id in store.household_ids().unwrap() {
        hh.push(HouseholdRow { id, veterans: 1, ..Default::default() });
    }
    hh
}

/// The ledger as an Excel sheet: Chinese headers, a date cell stored as an Excel date, a
/// numeric household id, then the rows of `csv_rows` (as text).
fn write_xlsx(path: &Path, rows: &[[&str; 4]]) {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["户编号", "日期", "方式", "情况"].into_iter().enumerate() {
        ws.write_string(0, c as u16, h).unwrap();
    }
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (r, row) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (c, v) in row.iter().enumerate() {
            if c == 1 && r == 1 {
                let (y, m, d) = (v[..4].parse().unwrap(), v[5..7].parse().unwrap(), v[8..].parse().unwrap());
                ws.write_datetime_with_format(r, 1, ExcelDateTime::from_ymd(y, m, d).unwrap(), &date).unwrap();
            } else if c == 0 && v.parse::<f64>().is_ok() {
                ws.write_number(r, 0, v.parse::<f64>().unwrap()).unwrap();
            } else if !v.is_empty() {
                ws.write_string(r, c as u16, *v).unwrap();
            }
        }
    }
    wb.save(path).unwrap();
}

#[test]
fn csv_and_xlsx_ledgers_import_alike_with_rejects_and_no_duplicates() {
    // Households H1, H2, … of the small fixture, and one with a numeric id.
    let rows: [[&str; 4]; 7] = [
        ["H1", "2026-11-29", "电话", "血压正常"],
        ["H2", "2026-11-01", "", ""],
        ["H2", "2026-11-01", "", ""],
        ["H9", "2026-11-01", "home", ""],
        ["H1", "2026-02-30", "home", ""],
        ["H2", "2026-11-02", "fax", ""],
        ["10023", "2026-10-05", "station", "来站咨询"],
    ];
    let mut results = Vec::new();
    for xlsx in [false, true] {
        let dir = small_folder();
        let hh = std::fs::read_to_string(dir.path().join("households.csv")).unwrap();
        std::fs::write(
            dir.path().join("households.csv"),
            format!("{hh}10023,100.25,40.5,1,990101001001,false,false\n"),
        )
        .unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.import(dir.path()).unwrap();
        let ledger = dir.path().join(if xlsx { "ledger.xlsx" } else { "ledger.csv" });
        if xlsx {
            write_xlsx(&ledger, &rows);
        } else {
            let body: String = rows.iter().map(|r| r.join(",") + "\n").collect();
            std::fs::write(&ledger, format!("household_id,date,kind,note\n{body}")).unwrap();
        }
        let hh = households(&store);
        let mut rejects = Vec::new();
        let read = read_ledger(&ledger, &hh, &mut rejects).unwrap();
        let named: Vec<(usize, String)> = rejects.iter().map(|r| (r.row, r.reason.clone())).collect();
        assert_eq!(named.len(), 3, "{named:?}");
        assert!(named[0].0 == 5 && named[0].1.contains("unknown household H9"), "{named:?}");
        assert!(named[1].0 == 6 && named[1].1.contains("is not a calendar date"), "{named:?}");
        assert!(named[2].0 == 7 && named[2].1.contains("kind \"fax\""), "{named:?}");
        assert!(rejects.iter().all(|r| r.file == ledger.file_name().unwrap().to_str().unwrap()));
        let source = RecordSource::of_file(&ledger, rejects.len()).unwrap();
        let first = store.import_contacts(&Actor::Import, &source, &read).unwrap();
        assert_eq!((first.added, first.same, first.rejected), (4, 0, 3));
        let again = store.import_contacts(&Actor::Import, &source, &read).unwrap();
        assert_eq!((again.added, again.same), (0, 4));
        let (records, unknown) = store.service_records(&hh).unwrap();
        assert_eq!(unknown, 0);
        assert_eq!(records.contact_count(), 4);
        let visits: Vec<(String, String, String, String)> = ["H1", "H2", "10023"]
            .into_iter()
            .flat_map(|h| store.visits(h).unwrap())
            .map(|v| (v.household_id, v.date, v.kind.as_str().to_string(), v.note + "/" + &v.user))
            .collect();
        assert_eq!(store.record_imports().unwrap().len(), 2);
        assert!(store.audit_log().unwrap().iter().any(|a| a.action == "contacts.import"));
        assert!(!store.users().unwrap().iter().any(|u| u.name == "import"), "the system user is not listed");
        results.push(visits);
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0].len(), 4);
    assert!(results[0].contains(&("10023".into(), "2026-10-05".into(), "station".into(), "来站咨询/import".into())));
}

#[test]
fn a_folders_contacts_and_needs_come_in_with_it_once() {
    let dir = small_folder();
    std::fs::write(
        dir.path().join("contacts.csv"),
        "household_id,date,kind,note\nH1,2026-11-29,phone,\nH1,2026-11-29,phone,\nH2,2026-11-01,home,x\nH404,2026-11-01,home,\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("needs.csv"),
        "household_id,category,date,status,status_date,note\nH1,medical,2026-10-01,resolved,2026-10-20,\nH2,housing,2026-11-01,open,2026-11-01,\n",
    )
    .unwrap();
    let store = Store::open(dir.path()).unwrap();
    let rep = store.import(dir.path()).unwrap();
    let (c, n) = (rep.contacts.unwrap(), rep.needs.unwrap());
    assert_eq!((c.added, c.same, c.rejected, n.added, n.same), (3, 0, 1, 2, 0));
    assert!(rep.rejects.iter().any(|r| r.file == "contacts.csv" && r.row == 5));
    let hh = households(&store);
    let (from_store, _) = store.service_records(&hh).unwrap();
    let from_files = read_folder_records(dir.path(), &hh, &mut Vec::new()).unwrap().unwrap();
    assert_eq!(from_store, from_files);
    let needs = store.needs("H1").unwrap();
    assert_eq!(needs.len(), 1);
    assert_eq!(needs[0].changes.len(), 2);
    assert_eq!(needs[0].version, 2);
    // The same files again: unchanged; changed elsewhere (the config): nothing added twice.
    assert!(store.import(dir.path()).unwrap().unchanged);
    std::fs::write(
        dir.path().join("gridcover.toml"),
        std::fs::read_to_string(dir.path().join("gridcover.toml")).unwrap() + "\n# again\n",
    )
    .unwrap();
    let rep = store.import(dir.path()).unwrap();
    let (c, n) = (rep.contacts.unwrap(), rep.needs.unwrap());
    assert_eq!((c.added, c.same, n.added, n.same), (0, 3, 0, 2));
    assert_eq!(store.service_records(&hh).unwrap().0, from_files);
}
