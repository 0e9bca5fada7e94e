//! The ticket as a person reads it off the paper, for 57 and 80 mm, with long names and many lines (insta), and
//! the PDF page of the same ticket.

use tillwire_kitchen::model::{OrderLine, OrderStation, OrderView};
use tillwire_printing::pdf;
use tillwire_printing::ticket::{Extras, Paper, Ticket};

fn order() -> OrderView {
    let names = [
        ("Пицца 4 сыра", 1, 4.0),
        (
            "Шаурма в сырном лаваше с двойной порцией мяса и халапеньо",
            2,
            1.0,
        ),
        ("Вок остр. пр. соус", 3, 1.0),
        ("Вок остр. греча", 3, 2.5),
        ("Салат оливье", 4, 0.333),
        ("Суп-пюре из тыквы с гренками и семечками", 4, 12.0),
        ("Морс клюквенный 0,5 л", 4, 1.0),
        ("Пирожок с картофелем и грибами, жареный во фритюре", 1, 3.0),
    ];
    OrderView {
        id: 7,
        unit_id: 1,
        business_day: "2026-11-23".into(),
        number: 142,
        status_id: 1,
        created_ms: 0,
        status_changed_ms: 0,
        print_failed: false,
        external_number: None,
        lines: names
            .iter()
            .map(|(name, station, quantity)| OrderLine {
                order_id: 7,
                code: String::new(),
                short_name: (*name).into(),
                station_id: *station,
                quantity: *quantity,
                crossed_ms: None,
            })
            .collect(),
        stations: (1..=4)
            .map(|station_id| OrderStation {
                order_id: 7,
                station_id,
                ready_ms: None,
            })
            .collect(),
    }
}

fn stations() -> Vec<(i64, String)> {
    ["Пиццерия", "Шаурма", "Вок", "Салаты"]
        .iter()
        .zip(1..)
        .map(|(name, id)| (id, (*name).to_owned()))
        .collect()
}

fn ticket(width_mm: u32, extras: Extras) -> Ticket {
    let paper = Paper {
        width_mm,
        height_mm: 120,
    };
    Ticket::layout(&order(), &stations(), "2026-11-23 12:30", paper, 1, extras)
}

const PLAIN: Extras = Extras {
    qr_code: false,
    station_slips: false,
};
const ALL: Extras = Extras {
    qr_code: true,
    station_slips: true,
};

#[test]
fn ticket_57mm() {
    insta::assert_snapshot!(ticket(57, PLAIN).to_text());
}

#[test]
fn ticket_80mm() {
    insta::assert_snapshot!(ticket(80, PLAIN).to_text());
}

#[test]
fn ticket_57mm_with_qr_and_station_slips() {
    insta::assert_snapshot!(ticket(57, ALL).to_text());
}

#[test]
fn lines_never_exceed_the_paper() {
    for width in [57, 80] {
        let ticket = ticket(width, ALL);
        let columns = ticket.paper.columns();
        for line in ticket.to_text().lines() {
            assert!(line.chars().count() <= columns, "{width} mm: {line:?}");
        }
    }
}

#[test]
fn pdf_pages_are_paper_sized() {
    let pdf = pdf::render(&ticket(57, ALL));
    let text = String::from_utf8_lossy(&pdf);
    assert!(text.starts_with("%PDF-1.4"));
    assert!(text.ends_with("%%EOF\n"));
    // One page per slip: the ticket and four station slips, 57 × 120 mm each.
    assert_eq!(
        text.matches("/MediaBox [0 0 161.57 340.16]").count(),
        5,
        "{}",
        &text[..400]
    );
}
