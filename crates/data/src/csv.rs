//! CSV samples: a header row, one numeric column per dimension, and an optional `label` column.

use std::fmt::Write as _;
use std::path::Path;

use crate::{DataError, Result};

/// Points read from a CSV file, with their labels if the file had a `label` column.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Names of the coordinate columns.
    pub columns: Vec<String>,
    /// Row-major coordinates, `rows x columns.len()`.
    pub values: Vec<f64>,
    /// The `label` column, one entry per row, if present.
    pub labels: Option<Vec<String>>,
}

impl Table {
    /// The dimension d.
    pub fn dim(&self) -> usize {
        self.columns.len()
    }
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.values.len() / self.dim().max(1)
    }
    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The rows as vectors.
    pub fn rows(&self) -> Vec<Vec<f64>> {
        self.values
            .chunks(self.dim())
            .map(<[f64]>::to_vec)
            .collect()
    }
}

/// Reads a CSV file of samples. Every value must be a finite number.
pub fn read_csv(path: &Path) -> Result<Table> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: name.clone(),
        source,
    })?;
    parse_csv(&text, &name)
}

fn parse_csv(text: &str, name: &str) -> Result<Table> {
    let err = |line: u64, message: String| DataError::Content {
        path: name.to_string(),
        line: line as usize,
        message,
    };
    // The csv crate reads quoted fields, CRLF line ends and a leading byte-order mark.
    let mut reader = ::csv::ReaderBuilder::new()
        .trim(::csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let names: Vec<String> = reader
        .headers()
        .map_err(|e| err(1, e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    if names.iter().all(String::is_empty) {
        return Err(err(
            0,
            "the file is empty (expected a header row such as 'x' or 'x0,x1')".into(),
        ));
    }
    let label_col = names.iter().position(|n| n == "label");
    let columns: Vec<String> = names.iter().filter(|n| *n != "label").cloned().collect();
    if columns.is_empty() {
        return Err(err(1, "the header names no coordinate column".into()));
    }
    if let Some(c) = names.iter().find(|n| n.parse::<f64>().is_ok()) {
        return Err(err(
            1,
            format!("the first row must be a header of column names, found the number '{c}'"),
        ));
    }
    let mut values = Vec::new();
    let mut labels = label_col.map(|_| Vec::new());
    // The csv crate's position of a record is where the previous one ended (before the line
    // ends and blank lines it skips): the record's line is counted from its first character.
    let line_at = |p: Option<&::csv::Position>| {
        p.map_or(0, |p| {
            let bytes = text.as_bytes();
            let mut start = (p.byte() as usize).min(bytes.len());
            while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
                start += 1;
            }
            1 + bytes[..start].iter().filter(|b| **b == b'\n').count() as u64
        })
    };
    for record in reader.records() {
        let record = record.map_err(|e| err(line_at(e.position()), e.to_string()))?;
        let line = line_at(record.position());
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != names.len() {
            return Err(err(
                line,
                format!(
                    "{} fields, but the header has {}",
                    record.len(),
                    names.len()
                ),
            ));
        }
        for (j, f) in record.iter().enumerate() {
            if Some(j) == label_col {
                if f.trim().is_empty() {
                    return Err(err(
                        line,
                        "an empty label: every row of a 'label' column names its class".into(),
                    ));
                }
                if let Some(l) = labels.as_mut() {
                    l.push(f.to_string());
                }
                continue;
            }
            let v: f64 = f.parse().map_err(|_| {
                err(
                    line,
                    format!("column '{}': '{f}' is not a number", names[j]),
                )
            })?;
            if !v.is_finite() {
                return Err(err(
                    line,
                    format!("column '{}': {f} is not a finite number", names[j]),
                ));
            }
            values.push(v);
        }
    }
    if values.is_empty() {
        return Err(err(0, "the file has a header but no data rows".into()));
    }
    Ok(Table {
        columns,
        values,
        labels,
    })
}

/// The standard header for d dimensions: `x` in 1-D, `x0,x1,...` otherwise.
pub fn header(d: usize) -> Vec<String> {
    if d == 1 {
        vec!["x".into()]
    } else {
        (0..d).map(|j| format!("x{j}")).collect()
    }
}

/// Writes row-major samples with the standard header, written whole to a temporary file and
/// renamed into place.
pub fn write_csv(path: &Path, values: &[f64], d: usize) -> Result<()> {
    let mut s = header(d).join(",");
    s.push('\n');
    for row in values.chunks(d) {
        let line: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
        let _ = writeln!(s, "{}", line.join(","));
    }
    let name = path.display().to_string();
    let tmp = path.with_extension("csv.tmp");
    std::fs::write(&tmp, s)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|source| DataError::Io { path: name, source })
}

/// Writes row-major samples and their labels (a `label` column, quoted where a label needs it),
/// atomically as [`write_csv`].
pub fn write_labelled_csv(path: &Path, values: &[f64], d: usize, labels: &[String]) -> Result<()> {
    let name = path.display().to_string();
    let err = |message: String| DataError::Content {
        path: name.clone(),
        line: 0,
        message,
    };
    if labels.len() * d != values.len() {
        return Err(err(format!(
            "{} labels for {} rows",
            labels.len(),
            values.len() / d.max(1)
        )));
    }
    let mut w = ::csv::Writer::from_writer(vec![]);
    let mut head = header(d);
    head.push("label".into());
    w.write_record(&head).map_err(|e| err(e.to_string()))?;
    for (row, label) in values.chunks(d).zip(labels) {
        let mut record: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
        record.push(label.clone());
        w.write_record(&record).map_err(|e| err(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| err(e.to_string()))?;
    let tmp = path.with_extension("csv.tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|source| DataError::Io { path: name, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_rows_read_back_as_written() {
        let dir = std::env::temp_dir().join(format!("diffuse-labelled-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.csv");
        let labels = vec!["coat, long".to_string(), "a \"b\"".to_string()];
        write_labelled_csv(&path, &[1.5, -2.0, 3.0, 0.1], 2, &labels).unwrap();
        let t = read_csv(&path).unwrap();
        assert_eq!(t.values, vec![1.5, -2.0, 3.0, 0.1]);
        assert_eq!(t.labels, Some(labels));
        assert!(write_labelled_csv(&path, &[1.0], 1, &[]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_columns_and_labels() {
        let t = parse_csv("x0,label,x1\n1,a,2\n3,b,4\n", "t.csv").unwrap();
        assert_eq!(t.columns, vec!["x0", "x1"]);
        assert_eq!(t.values, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(t.labels, Some(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn reads_quotes_crlf_a_byte_order_mark_and_blank_lines() {
        let text = "\u{feff}\"x0\",x1,label\r\n1, 2,\"coat, long\"\r\n\r\n3,4,\"a \"\"b\"\"\"\r\n";
        let t = parse_csv(text, "t.csv").unwrap();
        assert_eq!(t.columns, vec!["x0", "x1"]);
        assert_eq!(t.values, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(t.labels, Some(vec!["coat, long".into(), "a \"b\"".into()]));
        let e = parse_csv("x\r\n1\r\n\r\nzz\r\n", "t.csv")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.csv:4:"), "{e}");
    }

    #[test]
    fn bad_files_name_the_line() {
        let cases = [
            ("", "t.csv:0: the file is empty"),
            ("x\n1\nnan\n", "t.csv:3: column 'x': NaN"),
            (
                "x\n1\nhello\n",
                "t.csv:3: column 'x': 'hello' is not a number",
            ),
            ("x,y\n1,2\n3\n", "t.csv:3: 1 fields, but the header has 2"),
            ("1,2\n3,4\n", "t.csv:1: the first row must be a header"),
            ("x\n", "t.csv:0: the file has a header but no data rows"),
        ];
        for (text, want) in cases {
            let e = parse_csv(text, "t.csv").unwrap_err().to_string();
            assert!(
                e.to_lowercase().starts_with(&want.to_lowercase()),
                "{e:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = std::env::temp_dir().join(format!("diffuse-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s.csv");
        let v = vec![0.1, -2.5, 1e-7, 3.0];
        write_csv(&p, &v, 2).unwrap();
        let t = read_csv(&p).unwrap();
        assert_eq!(t.columns, vec!["x0", "x1"]);
        assert_eq!(t.values, v);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
