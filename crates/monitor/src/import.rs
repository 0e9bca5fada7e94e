//! `tillwire monitor import FILE.csv`: registers from a CSV file with the header `unit,name,url,timezone` (and
//! optionally `region`). All or nothing: every line is read and checked first ([`parse`], pure), every problem is
//! reported as `line N, field: message`, and only a file without one is written, in one transaction.

use std::collections::HashMap;
use std::fmt;

use tillwire_platform::Store;
use tillwire_units::Units;

use crate::model::{BaseUrl, RegisterName, parse_region, parse_zone};
use crate::storage::{ImportCounts, NewRegister, Registers};

/// A unit as the file may name it.
#[derive(Debug, Clone)]
pub struct UnitRef {
    pub id: i64,
    pub name: String,
    pub is_default: bool,
}

/// One problem of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The line of the file, from 1 (the header).
    pub line: u64,
    pub field: String,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, {}: {}", self.line, self.field, self.message)
    }
}

const COLUMNS: [&str; 5] = ["unit", "name", "url", "timezone", "region"];

/// Reads the file: the registers it lists, or every problem it has. `declared` are the registers of
/// `tillwire.toml` (unit id and name), which the file may not change.
pub fn parse(
    text: &str,
    units: &[UnitRef],
    declared: &[(i64, String)],
) -> Result<Vec<NewRegister>, Vec<LineError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut errors = Vec::new();
    let mut registers = Vec::new();
    // Where each (unit, name) was first seen.
    let mut seen: HashMap<(i64, String), u64> = HashMap::new();
    let mut columns = 0;
    for (index, record) in reader.records().enumerate() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error
                    .position()
                    .map_or(index as u64 + 1, |position| position.line());
                errors.push(LineError {
                    line,
                    field: "csv".into(),
                    message: format!("not readable as CSV ({error})"),
                });
                continue;
            }
        };
        let line = record
            .position()
            .map_or(index as u64 + 1, |position| position.line());
        if index == 0 {
            let header: Vec<String> = record
                .iter()
                .map(|cell| cell.trim().to_lowercase())
                .collect();
            if header.len() == 4 && header[..] == COLUMNS[..4] || header[..] == COLUMNS[..] {
                columns = header.len();
                continue;
            }
            return Err(vec![LineError {
                line,
                field: "header".into(),
                message:
                    "the first line must be unit,name,url,timezone (optionally followed by ,region)"
                        .into(),
            }]);
        }
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        if record.len() != columns {
            errors.push(LineError {
                line,
                field: "columns".into(),
                message: format!("expected {columns} columns, found {}", record.len()),
            });
            continue;
        }
        let mut fail = |field: &str, message: String| {
            errors.push(LineError {
                line,
                field: field.into(),
                message,
            })
        };
        let cell = |i: usize| record.get(i).unwrap_or("").trim();
        let unit = if cell(0).is_empty() {
            let unit = units.iter().find(|unit| unit.is_default);
            if unit.is_none() {
                fail("unit", "there is no default unit: name the unit".into());
            }
            unit
        } else {
            let unit = units.iter().find(|unit| unit.name == cell(0));
            if unit.is_none() {
                fail("unit", format!("no unit named {:?}", cell(0)));
            }
            unit
        };
        let name = RegisterName::parse(cell(1))
            .map_err(|error| fail(error.field, error.message.to_string()))
            .ok();
        let url = BaseUrl::parse(cell(2))
            .map_err(|error| fail(error.field, error.message.to_string()))
            .ok();
        let zone = if cell(3).is_empty() {
            Some(None)
        } else {
            parse_zone(cell(3))
                .map(Some)
                .map_err(|error| fail(error.field, error.message.to_string()))
                .ok()
        };
        let region = parse_region(cell(4))
            .map_err(|error| fail(error.field, error.message.to_string()))
            .ok();
        if let (Some(unit), Some(name)) = (unit, &name) {
            let key = (unit.id, name.as_str().to_owned());
            if let Some(first) = seen.get(&key) {
                fail(
                    "name",
                    format!(
                        "{:?} is listed for unit {:?} on line {first} already",
                        name.as_str(),
                        unit.name
                    ),
                );
            } else if declared.contains(&key) {
                fail(
                    "name",
                    format!(
                        "{:?} of unit {:?} is declared in tillwire.toml: change it there",
                        name.as_str(),
                        unit.name
                    ),
                );
            } else {
                seen.insert(key, line);
            }
        }
        if let (Some(unit), Some(name), Some(url), Some(zone), Some(region)) =
            (unit, name, url, zone, region)
        {
            registers.push(NewRegister {
                unit_id: unit.id,
                name,
                url,
                zone,
                region,
                enabled: true,
                overrides: Default::default(),
            });
        }
    }
    if columns == 0 && errors.is_empty() {
        errors.push(LineError {
            line: 1,
            field: "header".into(),
            message: "the file is empty: the first line must be unit,name,url,timezone".into(),
        });
    }
    if errors.is_empty() {
        Ok(registers)
    } else {
        Err(errors)
    }
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{} problem(s) in the file; nothing was imported", .0.len())]
    Lines(Vec<LineError>),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Checks the file against the units and registers there are, then writes all of it in one transaction.
pub async fn import(store: &Store, text: &str) -> Result<ImportCounts, ImportError> {
    let units: Vec<UnitRef> = Units(store)
        .list()
        .await
        .map_err(anyhow::Error::from)?
        .into_iter()
        .map(|unit| UnitRef {
            id: unit.id,
            name: unit.name,
            is_default: unit.is_default,
        })
        .collect();
    let registers = Registers(store.clone());
    let declared: Vec<(i64, String)> = registers
        .list()
        .await
        .map_err(anyhow::Error::from)?
        .into_iter()
        .filter(|register| register.declared)
        .map(|register| (register.unit_id, register.name))
        .collect();
    let rows = parse(text, &units, &declared).map_err(ImportError::Lines)?;
    Ok(registers.import(&rows).await.map_err(anyhow::Error::from)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units() -> Vec<UnitRef> {
        vec![
            UnitRef {
                id: 1,
                name: "Главный".into(),
                is_default: true,
            },
            UnitRef {
                id: 2,
                name: "Москва 1-1".into(),
                is_default: false,
            },
        ]
    }

    #[test]
    fn a_good_file_gives_every_register() {
        let text = "\u{feff}unit,name,url,timezone\n\
                    ,Касса 1,http://10.1.16.11:8080,\n\
                    Москва 1-1,Касса 1,http://10.1.16.12:8080/ukm,Europe/Moscow\n\
                    \n\
                    Москва 1-1,\"Касса, 2\",https://k2.local/,Asia/Yekaterinburg\n";
        let rows = parse(text, &units(), &[]).expect("good file");
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (
                rows[0].unit_id,
                rows[0].name.as_str(),
                rows[0].url.as_str(),
                rows[0].zone
            ),
            (1, "Касса 1", "http://10.1.16.11:8080/", None)
        );
        assert_eq!(rows[1].zone, Some(chrono_tz::Europe::Moscow));
        assert_eq!(rows[2].name.as_str(), "Касса, 2");
        assert_eq!(rows[2].region, "");
    }

    #[test]
    fn the_region_column_is_optional() {
        let text = "unit,name,url,timezone,region\nМосква 1-1,K,http://k/,,Москва\n";
        let rows = parse(text, &units(), &[]).expect("good file");
        assert_eq!(rows[0].region, "Москва");
    }

    #[test]
    fn every_problem_is_reported_with_its_line_and_field() {
        let text = "unit,name,url,timezone\n\
                    Нигде,K1,http://k/,\n\
                    ,,ftp://k/,Mars/Base\n\
                    ,K2,http://k/,\n\
                    ,K2,http://k/,\n\
                    ,K3\n\
                    Москва 1-1,Declared,http://k/,\n";
        let errors = parse(text, &units(), &[(2, "Declared".into())]).unwrap_err();
        let lines: Vec<String> = errors
            .iter()
            .map(|e| format!("line {}, {}", e.line, e.field))
            .collect();
        assert_eq!(
            lines,
            [
                "line 2, unit",
                "line 3, name",
                "line 3, url",
                "line 3, timezone",
                "line 5, name",
                "line 6, columns",
                "line 7, name",
            ]
        );
        assert!(errors[4].message.contains("line 4"), "{}", errors[4]);
        assert_eq!(
            errors[0].to_string(),
            "line 2, unit: no unit named \"Нигде\""
        );
    }

    #[test]
    fn a_wrong_header_or_an_empty_file_is_refused() {
        assert_eq!(
            parse("name,url\nK,http://k/\n", &units(), &[]).unwrap_err()[0].field,
            "header"
        );
        assert_eq!(parse("", &units(), &[]).unwrap_err()[0].field, "header");
        assert!(
            parse("unit,name,url,timezone\n", &units(), &[])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn without_a_default_unit_an_empty_unit_is_an_error() {
        let units = vec![UnitRef {
            id: 2,
            name: "A".into(),
            is_default: false,
        }];
        let errors = parse("unit,name,url,timezone\n,K,http://k/,\n", &units, &[]).unwrap_err();
        assert_eq!((errors[0].line, errors[0].field.as_str()), (2, "unit"));
    }
}
