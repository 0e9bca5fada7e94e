//! The catalogue as CSV: `GET /admin/wares/export.csv?unit=ID` and `POST /admin/wares/import?unit=ID`.
//!
//! Both use the columns `code,full_name,short_name,station,catch_quantity` (the station by name) in UTF-8. An import
//! upserts by code and creates missing stations, all in one transaction, and only after every line has been
//! checked: one bad line and nothing is written, while the page lists every error as "line N, field F: message".

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tillwire_platform::admin::Admin;
use tillwire_platform::web::Lang;
use tillwire_platform::{now_ms, write_tx};

use super::stations::station_name;
use super::wares::{self, FieldError, ImportBox, ListQuery, WareFields, checked, unit_wares};
use super::{UnitPicker, UnitQuery};
use crate::model::Name;
use crate::{Kitchen, KitchenError};
use tillwire_platform::Text;

const HEADER: [&str; 5] = [
    "code",
    "full_name",
    "short_name",
    "station",
    "catch_quantity",
];
/// Enough for tens of thousands of wares.
const UPLOAD_LIMIT: usize = 8 * 1024 * 1024;

pub fn router() -> Router<Kitchen> {
    Router::new()
        .route("/admin/wares/export.csv", get(export_csv))
        .route(
            "/admin/wares/import",
            post(import_csv).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
}

async fn export_csv(
    State(kitchen): State<Kitchen>,
    _admin: Admin,
    Query(query): Query<UnitQuery>,
) -> Result<Response, KitchenError> {
    let unit = UnitPicker::load(&kitchen, query.unit).await?.id();
    let mut csv = csv::Writer::from_writer(Vec::new());
    // Writing equally long records into memory cannot fail.
    csv.write_record(HEADER).expect("CSV into memory");
    for ware in unit_wares(&kitchen, unit).await? {
        // `{}` of an f64 is the shortest text that reads back as the same number (1 → "1", 0.5 → "0.5").
        let quantity = ware.catch_quantity.to_string();
        csv.write_record([
            &ware.code,
            &ware.full_name,
            &ware.short_name,
            &ware.station_name,
            &quantity,
        ])
        .expect("CSV into memory");
    }
    let body = csv.into_inner().expect("CSV into memory");
    let disposition = format!("attachment; filename=\"wares-unit-{unit}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

async fn import_csv(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Query(query): Query<UnitQuery>,
    request: Request,
) -> Result<Response, KitchenError> {
    let picker = UnitPicker::load(&kitchen, query.unit).await?;
    let unit = picker.id();
    let upload = read_upload(request).await?;
    let rows = match parse_csv(&upload.text) {
        Ok(rows) => rows,
        Err(errors) => {
            let import = ImportBox {
                // Pasted text comes back so it can be fixed in place; a file is fixed where it lives.
                text: if upload.pasted {
                    upload.text
                } else {
                    String::new()
                },
                errors: errors.iter().map(|e| e.describe(admin.lang)).collect(),
            };
            tracing::info!(
                unit,
                errors = errors.len(),
                by = admin.username(),
                "CSV import of wares refused"
            );
            let page =
                wares::list_page(&kitchen, &admin, picker, ListQuery::default(), import).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let (added, updated) = upsert(&kitchen, unit, &rows).await?;
    tracing::info!(
        unit,
        added,
        updated,
        by = admin.username(),
        "wares imported from CSV"
    );
    Ok(Redirect::to(&format!(
        "{}?unit={unit}&added={added}&updated={updated}",
        wares::SECTION
    ))
    .into_response())
}

/// The CSV an import brought.
struct Upload {
    text: String,
    pasted: bool,
}

#[derive(Deserialize)]
struct PastedForm {
    #[serde(default)]
    text: String,
}

/// The page sends multipart (a file, else the pasted `text`); a urlencoded `text` field works too, for scripts.
async fn read_upload(request: Request) -> Result<Upload, KitchenError> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !is_multipart {
        let Form(form) = Form::<PastedForm>::from_request(request, &())
            .await
            .map_err(unreadable)?;
        return Ok(Upload {
            text: form.text,
            pasted: true,
        });
    }
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(unreadable)?;
    let (mut file, mut pasted) = (None, String::new());
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        match field.name() {
            Some("file") => {
                let bytes = field.bytes().await.map_err(unreadable)?;
                // A form without a chosen file still sends an empty "file" part.
                if !bytes.is_empty() {
                    file = Some(bytes);
                }
            }
            Some("text") => pasted = field.text().await.map_err(unreadable)?,
            _ => {}
        }
    }
    match file {
        Some(bytes) => String::from_utf8(bytes.to_vec())
            .map(|text| Upload {
                text,
                pasted: false,
            })
            .map_err(|_| {
                KitchenError::invalid(Text::new(
                    "Файл не в кодировке UTF-8: сохраните его как «CSV UTF-8».",
                    "The file is not UTF-8 text: save it as \"CSV UTF-8\".",
                ))
            }),
        None => Ok(Upload {
            text: pasted,
            pasted: true,
        }),
    }
}

/// An upload the multipart or form reader gave up on (cut off, malformed).
fn unreadable<E>(_: E) -> KitchenError {
    KitchenError::invalid(Text::new(
        "Файл не удалось прочитать: выберите его ещё раз.",
        "The upload could not be read: choose the file again.",
    ))
}

/// One checked line of an import.
struct CsvWare {
    fields: WareFields,
    station: Name,
}

/// Why a line was refused; `field` is a CSV column name.
#[derive(Debug)]
struct LineError {
    line: u64,
    field: Option<&'static str>,
    message: Text,
}

impl LineError {
    fn new(line: u64, field: Option<&'static str>, message: Text) -> Self {
        LineError {
            line,
            field,
            message,
        }
    }

    fn describe(&self, lang: Lang) -> String {
        let line = lang.pick("строка", "line");
        match self.field {
            Some(field) => format!(
                "{line} {}, {} {field}: {}",
                self.line,
                lang.pick("поле", "field"),
                self.message.get(lang)
            ),
            None => format!("{line} {}: {}", self.line, self.message.get(lang)),
        }
    }
}

/// Where each known column is in the file.
struct Columns {
    index: [Option<usize>; 5],
    count: usize,
}

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Self, Vec<LineError>> {
        let mut index = [None; 5];
        let mut errors = Vec::new();
        for (position, name) in header.iter().enumerate() {
            let name = name.trim().to_lowercase();
            match HEADER.iter().position(|known| *known == name) {
                Some(known) if index[known].is_some() => errors.push(LineError::new(
                    1,
                    None,
                    Text::new(
                        format!("столбец {name} указан дважды"),
                        format!("column {name} appears twice"),
                    ),
                )),
                Some(known) => index[known] = Some(position),
                None => errors.push(LineError::new(
                    1,
                    None,
                    Text::new(
                        format!(
                            "неизвестный столбец {name:?}; ожидаются {}",
                            HEADER.join(",")
                        ),
                        format!("unknown column {name:?}; expected {}", HEADER.join(",")),
                    ),
                )),
            }
        }
        // catch_quantity may be left out: every ware then gets ELQ's default of 1.
        for (known, name) in HEADER.iter().enumerate().take(4) {
            if index[known].is_none() {
                errors.push(LineError::new(
                    1,
                    None,
                    Text::new(
                        format!("нет столбца {name}"),
                        format!("missing column {name}"),
                    ),
                ));
            }
        }
        if errors.is_empty() {
            Ok(Columns {
                index,
                count: header.len(),
            })
        } else {
            Err(errors)
        }
    }

    fn get<'r>(&self, record: &'r csv::StringRecord, column: usize) -> &'r str {
        self.index[column]
            .and_then(|i| record.get(i))
            .unwrap_or_default()
    }
}

/// Excel in a Russian locale saves CSV with semicolons; take whichever separator the header line uses more.
fn separator(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or_default();
    if header.matches(';').count() > header.matches(',').count() {
        b';'
    } else {
        b','
    }
}

fn parse_csv(text: &str) -> Result<Vec<CsvWare>, Vec<LineError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(vec![LineError::new(
            1,
            None,
            Text::new(
                "нечего импортировать: выберите файл или вставьте CSV",
                "nothing to import: choose a file or paste the CSV",
            ),
        )]);
    }
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator(text))
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let columns = match reader.headers() {
        Ok(header) => Columns::from_header(header)?,
        Err(error) => {
            return Err(vec![LineError::new(
                1,
                None,
                Text::new(
                    format!("не CSV: {error}"),
                    format!("not valid CSV: {error}"),
                ),
            )]);
        }
    };
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut first_line_of_code: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line());
                errors.push(LineError::new(
                    line,
                    None,
                    Text::new(
                        format!("не CSV: {error}"),
                        format!("not valid CSV: {error}"),
                    ),
                ));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        // Spreadsheets like to leave rows of bare separators at the end.
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != columns.count {
            errors.push(LineError::new(
                line,
                None,
                Text::new(
                    format!(
                        "ожидается полей: {}, найдено: {}",
                        columns.count,
                        record.len()
                    ),
                    format!("expected {} fields, found {}", columns.count, record.len()),
                ),
            ));
            continue;
        }
        let mut line_errors = Vec::new();
        let fields = WareFields::parse(
            columns.get(&record, 0),
            columns.get(&record, 1),
            columns.get(&record, 2),
            columns.get(&record, 4),
        )
        .map_err(|field_errors| line_errors.extend(field_errors))
        .ok();
        let station = checked(
            &mut line_errors,
            "station",
            station_name(columns.get(&record, 3)),
        );
        errors.extend(
            line_errors
                .into_iter()
                .map(|FieldError { field, message }| LineError::new(line, Some(field), message)),
        );
        let (Some(fields), Some(station)) = (fields, station) else {
            continue;
        };
        match first_line_of_code.entry(fields.code.as_str().to_owned()) {
            Entry::Occupied(first) => {
                errors.push(LineError::new(
                    line,
                    Some("code"),
                    Text::new(
                        format!("код {} уже есть в строке {}", first.key(), first.get()),
                        format!("code {} is already on line {}", first.key(), first.get()),
                    ),
                ));
                continue;
            }
            Entry::Vacant(slot) => {
                slot.insert(line);
            }
        }
        rows.push(CsvWare { fields, station });
    }
    if errors.is_empty() && rows.is_empty() {
        errors.push(LineError::new(
            2,
            None,
            Text::new(
                "после строки заголовка нет товаров",
                "no wares after the header line",
            ),
        ));
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// Writes a checked import in one transaction; returns how many wares were added and how many updated.
async fn upsert(
    kitchen: &Kitchen,
    unit: i64,
    rows: &[CsvWare],
) -> Result<(usize, usize), KitchenError> {
    let now = now_ms();
    let mut station_names: Vec<&str> = rows.iter().map(|r| r.station.as_str()).collect();
    station_names.sort_unstable();
    station_names.dedup();
    let written: Result<(usize, usize), KitchenError> = write_tx!(kitchen.store(), tx => {
        let existing: Vec<(String,)> = sqlx::query_as("SELECT code FROM wares WHERE unit_id = $1")
            .bind(unit)
            .fetch_all(&mut **tx)
            .await?;
        let existing: HashSet<String> = existing.into_iter().map(|(code,)| code).collect();
        let mut stations: HashMap<&str, i64> = HashMap::new();
        for name in &station_names {
            // The no-op update makes RETURNING give the id of an existing station too.
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO stations (unit_id, name, created_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (unit_id, name) DO UPDATE SET name = excluded.name RETURNING id",
            )
            .bind(unit)
            .bind(*name)
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
            stations.insert(name, id);
        }
        for row in rows {
            sqlx::query(
                "INSERT INTO wares (unit_id, code, full_name, short_name, station_id, catch_quantity, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (unit_id, code) DO UPDATE SET full_name = excluded.full_name,
                 short_name = excluded.short_name, station_id = excluded.station_id,
                 catch_quantity = excluded.catch_quantity",
            )
            .bind(unit)
            .bind(row.fields.code.as_str())
            .bind(row.fields.full_name.as_str())
            .bind(row.fields.short_name.as_str())
            .bind(stations[row.station.as_str()])
            .bind(row.fields.catch_quantity.value())
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        let added = rows.iter().filter(|r| !existing.contains(r.fields.code.as_str())).count();
        Ok((added, rows.len() - added))
    });
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(text: &str) -> Vec<String> {
        match parse_csv(text) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(|e| e.describe(Lang::En)).collect(),
        }
    }

    #[test]
    fn reads_commas_semicolons_bom_and_decimal_commas() {
        let rows = parse_csv("\u{feff}code;full_name;short_name;station;catch_quantity\n1;Пицца;Пицца;Пиццерия;0,5\n")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(rows[0].fields.catch_quantity.value(), 0.5);
        let rows =
            parse_csv("code,full_name,short_name,station\n\"7\",\"Вок, острый\",Вок,Вок\n,,,\n")
                .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].fields.full_name.as_str(), "Вок, острый");
        assert_eq!(rows[0].fields.catch_quantity.value(), 1.0);
    }

    #[test]
    fn names_every_bad_field_with_its_line() {
        let errors = errors_of(
            "code,full_name,short_name,station,catch_quantity\n1,A,A,S,1\n,B,B,S,-1\n1,C,C,,1\n2,D\n",
        );
        assert!(
            errors.iter().any(|e| e.starts_with("line 3, field code:")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("line 3, field catch_quantity:")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("line 4, field station:")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("line 5: expected 5 fields")),
            "{errors:?}"
        );
    }

    #[test]
    fn refuses_duplicates_and_unknown_columns() {
        let errors = errors_of("code,full_name,short_name,station\n1,A,A,S\n1,B,B,S\n");
        assert!(
            errors.iter().any(|e| e.contains("already on line 2")),
            "{errors:?}"
        );
        let errors = errors_of("code,name,short_name,station\n1,A,A,S\n");
        assert!(
            errors.iter().any(|e| e.contains("unknown column \"name\"")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("missing column full_name")),
            "{errors:?}"
        );
        assert!(!errors_of("").is_empty());
        assert!(!errors_of("code,full_name,short_name,station\n").is_empty());
    }
}
