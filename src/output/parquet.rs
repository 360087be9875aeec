//! Writing a large Parquet file a row group at a time, the groups encoded and compressed in
//! parallel: the same bytes as polars writing the whole frame at once.
//!
//! A group's columns are [`GroupColumn`]s: polars columns, encoded as polars' writer encodes
//! them, or text columns given as integer keys into their distinct values ([`TextColumn`]).
//! Polars writes a text column by hashing every value twice (an estimate of its distinct values,
//! then the dictionary); a column whose values come from a table the caller already numbers
//! (division codes, station and grid ids) is given as that table's numbers instead, and its
//! dictionary is made from them: the same dictionary, in the same order, with the same decision
//! between dictionary and plain encoding, so the same bytes.

use std::cell::RefCell;
use std::io::Write;

use polars::prelude::{
    Column, CompatLevel, DataType, ParquetCompression, ParquetWriter, PlSmallStr, PolarsError, Schema,
};
use polars_arrow::array::{Array, DictionaryArray, MutableBinaryViewArray, PrimitiveArray, Utf8ViewArray};
use polars_arrow::bitmap::MutableBitmap;
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use polars_compute::hyperloglogplus::HyperLogLog;
use polars_parquet::write::{array_to_columns, CompressedPage, Compressor, Encoding};
use rayon::prelude::*;

use crate::model::NONE;

/// Rows per row group: polars' default, so the file is the one polars writes for the whole
/// frame.
pub(crate) const ROW_GROUP: usize = 512 * 512;

/// The row ranges of the row groups polars makes of `n` rows (`chunk_df_for_writing` with the
/// default size): `n / ROW_GROUP` groups of `n / groups` rows, the last taking the remainder;
/// one group when `n < ROW_GROUP`.
pub(crate) fn row_groups(n: usize) -> Vec<std::ops::Range<usize>> {
    let groups = n / ROW_GROUP;
    if groups <= 1 {
        return std::iter::once(0..n).collect();
    }
    let size = n / groups;
    (0..groups).map(|g| g * size..if g + 1 == groups { n } else { (g + 1) * size }).collect()
}

/// One column of a row group.
pub(crate) enum GroupColumn {
    /// A polars column (one chunk), encoded as polars' writer encodes it.
    Polars(Column),
    /// A text column given by keys into its distinct values; written as polars writes the
    /// same text as a `String` column.
    Text(TextColumn),
}

impl From<Column> for GroupColumn {
    fn from(c: Column) -> Self {
        GroupColumn::Polars(c)
    }
}

impl GroupColumn {
    fn name(&self) -> PlSmallStr {
        match self {
            GroupColumn::Polars(c) => c.name().clone(),
            GroupColumn::Text(t) => t.name.clone(),
        }
    }

    fn dtype(&self) -> DataType {
        match self {
            GroupColumn::Polars(c) => c.dtype().clone(),
            GroupColumn::Text(_) => DataType::String,
        }
    }

    fn len(&self) -> usize {
        match self {
            GroupColumn::Polars(c) => c.len(),
            GroupColumn::Text(t) => t.keys.len(),
        }
    }
}

/// A row group's text column as a dictionary: each row's key into the column's distinct values,
/// numbered in the order they first occur (as polars numbers them), null where the row has none.
pub(crate) struct TextColumn {
    name: PlSmallStr,
    /// The distinct values, in order of first occurrence.
    values: Utf8ViewArray,
    keys: PrimitiveArray<u32>,
}

thread_local! {
    /// Each thread's table from a caller's number to its key in the column being made
    /// (`u32::MAX`: not seen), set back after each column for the values it saw.
    static KEY_OF: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

impl TextColumn {
    /// The column `name` of rows whose values are `ids` (numbers below `space`, or [`NONE`] for
    /// a null), the text of number `i` being `text(i)`. Numbers must name distinct texts: two
    /// numbers of the same text would make two dictionary entries where polars makes one.
    pub(crate) fn from_ids<'a>(
        name: impl Into<PlSmallStr>,
        ids: impl ExactSizeIterator<Item = u32>,
        space: usize,
        text: impl Fn(u32) -> &'a str,
    ) -> TextColumn {
        let n = ids.len();
        let mut keys = Vec::with_capacity(n);
        let mut validity: Option<MutableBitmap> = None;
        let mut distinct: Vec<u32> = Vec::new();
        KEY_OF.with_borrow_mut(|key_of| {
            if key_of.len() < space {
                key_of.resize(space, u32::MAX);
            }
            for (row, id) in ids.enumerate() {
                if id == NONE {
                    validity
                        .get_or_insert_with(|| {
                            let mut v = MutableBitmap::with_capacity(n);
                            v.extend_constant(row, true);
                            v
                        })
                        .push(false);
                    keys.push(0);
                    continue;
                }
                let slot = &mut key_of[id as usize];
                if *slot == u32::MAX {
                    *slot = distinct.len() as u32;
                    distinct.push(id);
                }
                keys.push(*slot);
                if let Some(v) = validity.as_mut() {
                    v.push(true);
                }
            }
            for &id in &distinct {
                key_of[id as usize] = u32::MAX;
            }
        });
        let mut values = MutableBinaryViewArray::<str>::with_capacity(distinct.len());
        for &id in &distinct {
            values.push_value(text(id));
        }
        TextColumn {
            name: name.into(),
            values: values.into(),
            keys: PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), validity.map(Into::into)),
        }
    }

    /// polars' estimate of the column's distinct values (`estimate_cardinality`): HyperLogLog
    /// over every row's bytes, a null counting as the empty text. The sketch keeps a maximum
    /// per register, so the distinct values (and the empty text once, if a row is null) give
    /// the very estimate every row gives.
    fn estimated_cardinality(&self) -> usize {
        let n = self.keys.len();
        let nulls = self.keys.null_count();
        if n == 0 {
            return 0;
        }
        if nulls == n {
            return 1;
        }
        let mut hll = HyperLogLog::<[u8]>::new();
        for v in self.values.values_iter() {
            hll.add(v.as_bytes());
        }
        if nulls > 0 {
            hll.add(b"");
        }
        hll.count()
    }

    /// The array to encode and its encoding, as polars decides for a text column
    /// (`encode_as_dictionary_optional`): plain when it has more than 128 rows and its
    /// estimated distinct values are more than three quarters of them, else the dictionary.
    fn to_array(&self) -> (Box<dyn Array>, Encoding) {
        let dict = DictionaryArray::<u32>::try_new(
            ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(ArrowDataType::Utf8View), false),
            self.keys.clone(),
            self.values.clone().boxed(),
        )
        .expect("every key is below the number of distinct values");
        let n = self.keys.len();
        if n == 0 || (n > 128 && self.estimated_cardinality() as f64 / n as f64 > 0.75) {
            // polars encodes an empty column through a dictionary of its own type (no rows
            // either way) and a column of many distinct values plainly.
            let mut text = MutableBinaryViewArray::<str>::with_capacity(n);
            for i in 0..n {
                text.push(dict.is_valid(i).then(|| self.text(i)));
            }
            let text: Utf8ViewArray = text.into();
            let encoding = if n == 0 { Encoding::RleDictionary } else { Encoding::Plain };
            return (text.boxed(), encoding);
        }
        (dict.boxed(), Encoding::RleDictionary)
    }

    fn text(&self, row: usize) -> &str {
        self.values.value(self.keys.value(row) as usize)
    }
}

/// Writes a Parquet file of `n` rows to `w`, one row group ([`row_groups`]) at a time, `group`
/// giving each group's columns (the same names and types in every group): the same bytes as
/// polars writing the whole frame at once with the same compression, a [`TextColumn`] as the
/// `String` column of its texts.
///
/// The groups are made, encoded and compressed in parallel, a wave at a time
/// ([`groups_in_flight`]), and written in order: polars' own batched writer encodes the columns
/// of one group in parallel but compresses them on the writing thread, one after the other.
/// This is what polars' streaming sink does (`array_to_columns`, then `Compressor`, then
/// `write_row_group`), with the same schema, encodings and options as the batched writer.
pub(crate) fn write_parquet_groups<W: Write + Send, E: Send>(
    w: W,
    compression: ParquetCompression,
    n: usize,
    group: impl Fn(&std::ops::Range<usize>) -> Result<Vec<GroupColumn>, E> + Sync,
    err: impl Fn(PolarsError) -> E + Sync,
) -> Result<(), E> {
    write_parquet_groups_by(w, compression, n, groups_in_flight(), group, err)
}

/// Row groups made and encoded by [`write_parquet_groups`] between two writes: eight per
/// thread, so that the threads seldom wait for the slowest group of a wave. A group's columns
/// live only while a thread encodes them; what waits to be written is its compressed pages
/// (about 7 MB for a group of a national `assignments.parquet`).
fn groups_in_flight() -> usize {
    8 * rayon::current_num_threads().max(1)
}

/// [`write_parquet_groups`], `in_flight` groups at a time.
fn write_parquet_groups_by<W: Write + Send, E: Send>(
    w: W,
    compression: ParquetCompression,
    n: usize,
    in_flight: usize,
    group: impl Fn(&std::ops::Range<usize>) -> Result<Vec<GroupColumn>, E> + Sync,
    err: impl Fn(PolarsError) -> E + Sync,
) -> Result<(), E> {
    let groups = row_groups(n);
    let first = group(&groups[0])?;
    let schema: Schema = first.iter().map(|c| (c.name(), c.dtype())).collect();
    let mut writer = ParquetWriter::new(w).with_compression(compression).batched(&schema).map_err(&err)?;
    let (fields, options, encodings) = {
        let file = writer.get_writer().lock().expect("the writer is not shared yet");
        let encodings = polars::io::parquet::write::get_encodings(file.schema());
        (file.parquet_schema().fields().to_vec(), file.options(), encodings)
    };
    // A group's rows and its compressed pages, column by column.
    type Encoded = (usize, Vec<Vec<CompressedPage>>);
    let encode = |columns: Vec<GroupColumn>| -> Result<Encoded, E> {
        let rows = columns.first().map_or(0, GroupColumn::len);
        let mut out = Vec::with_capacity(fields.len());
        for ((column, ty), enc) in columns.iter().zip(&fields).zip(encodings.iter()) {
            let text_encoding;
            let (array, enc): (Box<dyn Array>, &[Encoding]) = match column {
                GroupColumn::Polars(c) => {
                    (c.as_materialized_series().rechunk().to_arrow(0, CompatLevel::newest()), enc.as_slice())
                }
                GroupColumn::Text(t) => {
                    let (array, e) = t.to_array();
                    text_encoding = [e];
                    (array, &text_encoding)
                }
            };
            for pages in array_to_columns(array, ty.clone(), options, enc).map_err(&err)? {
                let pages = pages.map(|p| {
                    p.map_err(|e| {
                        polars_parquet::parquet::error::ParquetError::FeatureNotSupported(format!(
                            "reraised in polars: {e}"
                        ))
                    })
                });
                let compressed = Compressor::new_from_vec(pages, options.compression, Vec::new())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| err(e.into()))?;
                out.push(compressed);
            }
        }
        Ok((rows, out))
    };
    let first = std::sync::Mutex::new(Some(first));
    for wave in groups.chunks(in_flight.max(1)) {
        let encoded: Vec<Result<_, E>> = wave
            .par_iter()
            .map(|r| {
                // The first group was made to learn the schema.
                let made = if r.start == 0 { first.lock().expect("not poisoned").take() } else { None };
                let columns = match made {
                    Some(columns) => columns,
                    None => group(r)?,
                };
                encode(columns)
            })
            .collect();
        for g in encoded {
            let (rows, pages) = g?;
            // polars writes no row group for no rows.
            if rows > 0 {
                writer.write_row_group(rows as u64, &pages).map_err(&err)?;
            }
        }
    }
    writer.finish().map(|_| ()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::{GroupColumn, TextColumn};
    use crate::model::NONE;
    use polars::prelude::*;

    #[test]
    fn row_groups_are_polars_own() {
        use super::{row_groups, ROW_GROUP};
        let one = |n: usize| std::iter::once(0..n).collect::<Vec<_>>();
        assert_eq!(row_groups(0), one(0));
        assert_eq!(row_groups(10), one(10));
        assert_eq!(row_groups(2 * ROW_GROUP - 1), one(2 * ROW_GROUP - 1));
        assert_eq!(row_groups(800_000), vec![0..266_666, 266_666..533_332, 533_332..800_000]);
    }

    const CODES: [&str; 4] = ["620102", "620103", "621102", "620000"];

    /// Row `i`'s values of the test table, as the caller's numbers (`NONE`: null): a code of
    /// four with nulls, a code never null, an id per row (too many distinct for a dictionary),
    /// and a column of nulls only.
    fn numbers(i: usize) -> [u32; 4] {
        let code = if i % 11 == 0 { NONE } else { ((i * 7) % 4) as u32 };
        [code, (i % 3) as u32, i as u32, NONE]
    }

    fn id_text(i: u32) -> String {
        format!("H{:07}", i as usize * 7919 % 1_000_003)
    }

    /// The test table as polars columns (`texts`: its text columns as `String` columns) or with
    /// its text columns as [`TextColumn`]s.
    fn table(r: &std::ops::Range<usize>, texts: bool, ids: &[String]) -> Vec<GroupColumn> {
        let names = ["code", "code_all", "id", "none"];
        let mut cols: Vec<GroupColumn> = Vec::new();
        for (k, name) in names.iter().enumerate() {
            let text = |x: u32| -> &str {
                if k == 2 {
                    &ids[x as usize]
                } else {
                    CODES[x as usize]
                }
            };
            if texts {
                let v: Vec<Option<&str>> =
                    r.clone().map(|i| numbers(i)[k]).map(|x| (x != NONE).then(|| text(x))).collect();
                cols.push(Column::new((*name).into(), v).into());
            } else {
                let space = if k == 2 { ids.len() } else { CODES.len() };
                let keys = r.clone().map(|i| numbers(i)[k]);
                cols.push(GroupColumn::Text(TextColumn::from_ids(*name, keys, space, text)));
            }
        }
        let m: Vec<Option<f32>> = r.clone().map(|i| (i % 5 != 0).then_some(i as f32 * 0.25)).collect();
        let b: Vec<bool> = r.clone().map(|i| i % 3 == 0).collect();
        cols.push(Column::new("m".into(), m).into());
        cols.push(Column::new("b".into(), b).into());
        cols
    }

    fn whole_frame(n: usize, ids: &[String]) -> Vec<u8> {
        let cols = table(&(0..n), true, ids)
            .into_iter()
            .map(|c| match c {
                GroupColumn::Polars(c) => c,
                GroupColumn::Text(_) => unreachable!("the table's texts are polars columns"),
            })
            .collect();
        let mut whole = Vec::new();
        ParquetWriter::new(&mut whole)
            .with_compression(ParquetCompression::Snappy)
            .finish(&mut DataFrame::new(n, cols).unwrap())
            .unwrap();
        whole
    }

    /// Written a group at a time, the file is byte for byte the one polars writes for the
    /// whole frame, with the text columns as polars columns or as keys: strings with nulls, of
    /// few and of many distinct values, all null; floats with nulls, booleans; four row groups.
    #[test]
    fn parquet_written_by_groups_equals_the_whole_frame() {
        let n = 3 * super::ROW_GROUP + 1234;
        let ids: Vec<String> = (0..n as u32).map(id_text).collect();
        let whole = whole_frame(n, &ids);
        // Two groups in flight, so that the four groups cross waves; and as many as there are.
        for in_flight in [2, super::groups_in_flight()] {
            for texts in [true, false] {
                let mut groups = Vec::new();
                let group =
                    |r: &std::ops::Range<usize>| -> Result<Vec<GroupColumn>, PolarsError> { Ok(table(r, texts, &ids)) };
                super::write_parquet_groups_by(&mut groups, ParquetCompression::Snappy, n, in_flight, group, |e| e)
                    .unwrap();
                assert!(
                    whole == groups,
                    "the files differ ({} and {} bytes; texts as polars columns: {texts})",
                    whole.len(),
                    groups.len()
                );
            }
        }
    }

    /// Small tables too: no rows, one row, 128 rows of distinct ids (a dictionary: polars
    /// estimates only above 128 rows) and 129 (plain).
    #[test]
    fn small_parquet_files_equal_polars_own() {
        for n in [0, 1, 2, 128, 129, 1000] {
            let ids: Vec<String> = (0..n as u32).map(id_text).collect();
            let whole = whole_frame(n, &ids);
            let mut groups = Vec::new();
            let group =
                |r: &std::ops::Range<usize>| -> Result<Vec<GroupColumn>, PolarsError> { Ok(table(r, false, &ids)) };
            super::write_parquet_groups_by(&mut groups, ParquetCompression::Snappy, n, 2, group, |e| e).unwrap();
            assert!(whole == groups, "{n} rows: the files differ ({} and {} bytes)", whole.len(), groups.len());
        }
    }

    /// The dictionary numbers values in the order they first occur and gives nulls no value.
    #[test]
    fn text_keys_in_order_of_first_occurrence() {
        let t = TextColumn::from_ids("c", [2, 0, NONE, 2, 3].into_iter(), 4, |i| CODES[i as usize]);
        assert_eq!(t.values.values_iter().collect::<Vec<_>>(), ["621102", "620102", "620000"]);
        assert_eq!(t.keys.iter().map(|k| k.copied()).collect::<Vec<_>>(), [Some(0), Some(1), None, Some(0), Some(2)]);
        // The thread's table is left clean for the next column.
        let u = TextColumn::from_ids("c", [3, 3].into_iter(), 4, |i| CODES[i as usize]);
        assert_eq!(u.values.values_iter().collect::<Vec<_>>(), ["620000"]);
        assert_eq!(u.keys.iter().map(|k| k.copied()).collect::<Vec<_>>(), [Some(0), Some(0)]);
    }
}
