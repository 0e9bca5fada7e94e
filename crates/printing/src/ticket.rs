//! The ticket (ELQ spec §4): what is printed, as lines of text on a character grid, independent of the printer.
//! The ESC/POS encoder and the PDF writer both draw this one model, so every driver prints the same ticket.

use crate::settings::PrintSettings;
use tillwire_kitchen::model::{OrderView, format_quantity};

pub const TITLE: &str = "Электронная очередь";
pub const GREETING: &str = "Приятного аппетита :)";
/// Between the name and the count of a ware line, as ELQ printed it.
const GAP: &str = "   ";

/// The paper a ticket is laid out for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paper {
    pub width_mm: u32,
    pub height_mm: u32,
}

impl Paper {
    pub fn from_settings(settings: &PrintSettings) -> Self {
        Paper {
            width_mm: settings.paper_width_mm,
            height_mm: settings.paper_height_mm,
        }
    }

    /// Characters per line in a thermal printer's standard 12-dot font: 32 on 57/58 mm paper (48 mm printable),
    /// 48 on 80 mm (72 mm printable); narrower paper scales down from 8 dots/mm.
    pub fn columns(self) -> usize {
        match self.width_mm {
            0..=56 => (self.width_mm.saturating_sub(8) as usize * 2 / 3).max(16),
            57..=75 => 32,
            _ => 48,
        }
    }
}

/// One line of a slip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Left-aligned text, already cut to the paper width.
    Text(String),
    /// Centred text.
    Centered(String),
    /// Bold, double width and height, centred: the queue number.
    Big(String),
    Blank,
    /// A horizontal rule across the paper.
    Rule,
    /// A QR code of the text, centred.
    Qr(String),
}

/// What is printed between two cuts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slip {
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub paper: Paper,
    pub slips: Vec<Slip>,
}

/// What to print besides the ticket copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extras {
    pub qr_code: bool,
    pub station_slips: bool,
}

impl Extras {
    pub fn from_settings(settings: &PrintSettings) -> Self {
        Extras {
            qr_code: settings.qr_code,
            station_slips: settings.station_slips,
        }
    }
}

/// ELQ's `CALC_PRINT_TICKETS`: −1 prints one copy per station plus two, a positive value that many, else one.
pub fn copies(rule: i64, stations: usize) -> usize {
    match rule {
        -1 => stations + 2,
        n if n > 0 => usize::try_from(n).unwrap_or(1),
        _ => 1,
    }
}

/// `short name   count`, the name cut so the line fits `columns`.
pub fn ware_line(name: &str, quantity: f64, columns: usize) -> String {
    let count = format_quantity(quantity);
    let room = columns.saturating_sub(GAP.len() + count.chars().count());
    let name: String = name.chars().take(room).collect();
    format!("{}{GAP}{count}", name.trim_end())
}

/// Station names by id, for the per-station slips.
pub type StationNames = [(i64, String)];

impl Ticket {
    /// Lays out an order's ticket: `copies` identical tickets, then (when asked) one slip per station.
    /// `when` is the local `YYYY-MM-DD HH:MM` printed on it.
    pub fn layout(
        order: &OrderView,
        stations: &StationNames,
        when: &str,
        paper: Paper,
        copies_rule: i64,
        extras: Extras,
    ) -> Ticket {
        let columns = paper.columns();
        let number = format!("№ {}", order.number);
        let wares = |station: Option<i64>| {
            order
                .lines
                .iter()
                .filter(move |l| station.is_none_or(|s| s == l.station_id))
                .map(move |l| Line::Text(ware_line(&l.short_name, l.quantity, columns)))
        };
        let head = |first: &str| {
            vec![
                Line::Centered(cut(first, columns)),
                Line::Big(number.clone()),
                Line::Centered(when.to_owned()),
                Line::Blank,
            ]
        };
        let mut ticket = head(TITLE);
        ticket.extend(wares(None));
        ticket.push(Line::Blank);
        if extras.qr_code {
            ticket.push(Line::Qr(order.number.to_string()));
        }
        ticket.push(Line::Centered(GREETING.into()));
        ticket.push(Line::Rule);

        let copies = copies(copies_rule, order.stations.len());
        let mut slips = vec![Slip { lines: ticket }; copies];
        if extras.station_slips {
            for part in &order.stations {
                let name = stations
                    .iter()
                    .find(|(id, _)| *id == part.station_id)
                    .map_or("?", |(_, name)| name.as_str());
                let mut lines = head(name);
                lines.extend(wares(Some(part.station_id)));
                lines.push(Line::Rule);
                slips.push(Slip { lines });
            }
        }
        Ticket { paper, slips }
    }

    /// A page that shows a printer works and how its paper and code page come out.
    pub fn test_page(printer: &str, when: &str, paper: Paper) -> Ticket {
        let columns = paper.columns();
        let lines = vec![
            Line::Centered(TITLE.into()),
            Line::Big("ТЕСТ".into()),
            Line::Centered(when.to_owned()),
            Line::Blank,
            Line::Text(cut(printer, columns)),
            Line::Text(cut(
                &format!(
                    "{} x {} mm, {columns} col.",
                    paper.width_mm, paper.height_mm
                ),
                columns,
            )),
            Line::Text(cut("АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ", columns)),
            Line::Text(cut("абвгдеёжзийклмнопрстуфхцчшщъыьэюя", columns)),
            Line::Text("0123456789 №".into()),
            Line::Rule,
        ];
        Ticket {
            paper,
            slips: vec![Slip { lines }],
        }
    }

    /// The ticket as plain text on its character grid (what a person reads off the paper), cuts marked.
    pub fn to_text(&self) -> String {
        let columns = self.paper.columns();
        let mut text = String::new();
        for slip in &self.slips {
            for line in &slip.lines {
                let rendered = match line {
                    Line::Text(t) => t.clone(),
                    Line::Centered(t) => centered(t, columns),
                    // Double width: each character takes two columns.
                    Line::Big(t) => centered(
                        &t.chars().flat_map(|c| [c, ' ']).collect::<String>(),
                        columns,
                    ),
                    Line::Blank => String::new(),
                    Line::Rule => "-".repeat(columns),
                    Line::Qr(t) => centered(&format!("[QR {t}]"), columns),
                };
                text.push_str(rendered.trim_end());
                text.push('\n');
            }
            text.push_str(&format!("{:=^columns$}\n", " cut "));
        }
        text
    }
}

fn cut(text: &str, columns: usize) -> String {
    text.chars().take(columns).collect()
}

/// `text` centred on `columns` characters (left-padded; the right side stays ragged).
pub fn centered(text: &str, columns: usize) -> String {
    let width = text.chars().count();
    format!("{}{text}", " ".repeat(columns.saturating_sub(width) / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_follow_elq() {
        assert_eq!(copies(-1, 3), 5);
        assert_eq!(copies(-1, 0), 2);
        assert_eq!(copies(4, 3), 4);
        assert_eq!(copies(0, 3), 1);
        assert_eq!(copies(-7, 3), 1);
    }

    #[test]
    fn ware_lines_fit_the_paper_without_spurious_fraction() {
        assert_eq!(ware_line("Пицца 4 сыра", 4.0, 32), "Пицца 4 сыра   4");
        assert_eq!(
            ware_line("Вок остр. пр. соус", 1.0, 32),
            "Вок остр. пр. соус   1"
        );
        let long = ware_line("Очень длинное название шаурмы с сыром", 0.5, 32);
        assert_eq!(long.chars().count(), 32);
        assert!(long.ends_with("   0.5"), "{long}");
    }

    #[test]
    fn paper_widths_give_printer_columns() {
        let paper = |width_mm| Paper {
            width_mm,
            height_mm: 120,
        };
        assert_eq!(paper(46).columns(), 25);
        assert_eq!(paper(57).columns(), 32);
        assert_eq!(paper(58).columns(), 32);
        assert_eq!(paper(80).columns(), 48);
    }
}
