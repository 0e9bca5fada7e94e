//! The ticket as a PDF of W×H mm per slip, for driver-based CUPS/IPP queues (ELQ sent fpdf output to CUPS).
//!
//! Text is drawn as glyph outlines of the vendored DejaVu Sans Mono, each glyph once as a form XObject, so the
//! file needs no embedded font program, stays a few kilobytes, and looks the same on every driver. The
//! monospace font keeps the PDF on the same character grid as the paper the layout was cut for.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::LazyLock;

use ttf_parser::{Face, GlyphId, OutlineBuilder};

use crate::ticket::{Line, Ticket, centered};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");
static FACE: LazyLock<Face<'static>> =
    LazyLock::new(|| Face::parse(FONT, 0).expect("the vendored font parses"));

pub const PT_PER_MM: f32 = 72.0 / 25.4;
const MARGIN_MM: f32 = 1.0;
const LINE_SPACING: f32 = 1.25;

/// Where text goes on a page, in points.
struct Pen<'a> {
    content: &'a mut String,
    glyphs: &'a mut BTreeSet<u16>,
    left: f32,
}

/// One page per slip, each `paper.width_mm` wide and at least `paper.height_mm` tall (longer when a slip has
/// more lines than fit, as on a roll).
pub fn render(ticket: &Ticket) -> Vec<u8> {
    let face = &*FACE;
    let em = f32::from(face.units_per_em());
    let advance = face
        .glyph_index('0')
        .and_then(|g| face.glyph_hor_advance(g))
        .map_or(0.6, |a| f32::from(a) / em);
    let columns = ticket.paper.columns();
    let width = ticket.paper.width_mm as f32 * PT_PER_MM;
    let margin = MARGIN_MM * PT_PER_MM;
    // The font size that puts `columns` characters across the printable width.
    let size = (width - 2.0 * margin) / columns as f32 / advance;

    let mut glyphs = BTreeSet::new();
    let mut pages = Vec::new();
    for slip in &ticket.slips {
        let needed: f32 = slip
            .lines
            .iter()
            .map(|line| line_height(line, size, width))
            .sum::<f32>()
            + 2.0 * margin;
        let height = (ticket.paper.height_mm as f32 * PT_PER_MM).max(needed);
        let mut content = String::new();
        let mut pen = Pen {
            content: &mut content,
            glyphs: &mut glyphs,
            left: margin,
        };
        let mut top = height - margin;
        for line in &slip.lines {
            let step = line_height(line, size, width);
            let baseline = top - step * 0.8;
            match line {
                Line::Text(text) => pen.text(text, baseline, size, false),
                Line::Centered(text) => pen.text(&centered(text, columns), baseline, size, false),
                Line::Big(text) => {
                    pen.text(&centered(text, columns / 2), baseline, size * 2.0, true)
                }
                Line::Blank => {}
                Line::Rule => {
                    let y = top - step / 2.0;
                    let _ = writeln!(
                        pen.content,
                        "0.5 w {margin:.2} {y:.2} m {:.2} {y:.2} l S",
                        width - margin
                    );
                }
                Line::Qr(text) => qr(pen.content, text, width, top, step),
            }
            top -= step;
        }
        pages.push((height, content));
    }
    document(width, &pages, &glyphs.into_iter().collect::<Vec<_>>())
}

fn line_height(line: &Line, size: f32, width: f32) -> f32 {
    match line {
        Line::Big(_) => 2.0 * size * LINE_SPACING,
        Line::Qr(_) => qr_side(width) + size,
        _ => size * LINE_SPACING,
    }
}

fn qr_side(width: f32) -> f32 {
    width * 0.45
}

impl Pen<'_> {
    /// Draws `text` on the character grid, one cell per character.
    fn text(&mut self, text: &str, baseline: f32, size: f32, bold: bool) {
        let face = &*FACE;
        let scale = size / f32::from(face.units_per_em());
        let cell = face
            .glyph_index('0')
            .and_then(|g| face.glyph_hor_advance(g))
            .map_or(size * 0.6, |a| f32::from(a) * scale);
        for (i, ch) in text.chars().enumerate() {
            if ch == ' ' {
                continue;
            }
            let Some(GlyphId(id)) = face.glyph_index(ch).or_else(|| face.glyph_index('?')) else {
                continue;
            };
            self.glyphs.insert(id);
            let left = self.left + i as f32 * cell;
            // Bold without a bold font: the glyph twice, a hair apart.
            let strikes: &[f32] = if bold { &[0.0, 0.03] } else { &[0.0] };
            for offset in strikes {
                let _ = writeln!(
                    self.content,
                    "q {scale:.5} 0 0 {scale:.5} {:.2} {baseline:.2} cm /G{id} Do Q",
                    left + offset * size
                );
            }
        }
    }
}

fn qr(content: &mut String, text: &str, width: f32, top: f32, step: f32) {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else {
        return;
    };
    let modules = code.width();
    let side = qr_side(width);
    let module = side / modules as f32;
    let left = (width - side) / 2.0;
    let top = top - (step - side) / 2.0;
    for (index, color) in code.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (col, row) = (index % modules, index / modules);
            let x = left + col as f32 * module;
            let y = top - (row + 1) as f32 * module;
            let _ = writeln!(content, "{x:.2} {y:.2} {module:.2} {module:.2} re");
        }
    }
    content.push_str("f\n");
}

/// A glyph outline as PDF path operators in font units; quadratic segments become cubic ones.
#[derive(Default)]
struct Path {
    ops: String,
    last: (f32, f32),
}

impl OutlineBuilder for Path {
    fn move_to(&mut self, x: f32, y: f32) {
        let _ = writeln!(self.ops, "{x} {y} m");
        self.last = (x, y);
    }
    fn line_to(&mut self, x: f32, y: f32) {
        let _ = writeln!(self.ops, "{x} {y} l");
        self.last = (x, y);
    }
    fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
        let (x0, y0) = self.last;
        let c1 = (x0 + 2.0 / 3.0 * (x1 - x0), y0 + 2.0 / 3.0 * (y1 - y0));
        let c2 = (x + 2.0 / 3.0 * (x1 - x), y + 2.0 / 3.0 * (y1 - y));
        let _ = writeln!(
            self.ops,
            "{:.1} {:.1} {:.1} {:.1} {x} {y} c",
            c1.0, c1.1, c2.0, c2.1
        );
        self.last = (x, y);
    }
    fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
        let _ = writeln!(self.ops, "{x1} {y1} {x2} {y2} {x} {y} c");
        self.last = (x, y);
    }
    fn close(&mut self) {
        self.ops.push_str("h\n");
    }
}

/// Writes the objects: catalog, page tree, shared resources, one form XObject per glyph, then the pages.
fn document(width: f32, pages: &[(f32, String)], glyphs: &[u16]) -> Vec<u8> {
    let face = &*FACE;
    let bbox = face.global_bounding_box();
    let first_glyph = 4;
    let first_page = first_glyph + glyphs.len();
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", first_page + 2 * i))
        .collect();
    let names: Vec<String> = glyphs
        .iter()
        .enumerate()
        .map(|(i, id)| format!("/G{id} {} 0 R", first_glyph + i))
        .collect();
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            pages.len()
        )
        .into_bytes(),
        format!("<< /XObject << {} >> >>", names.join(" ")).into_bytes(),
    ];
    for id in glyphs {
        let mut path = Path::default();
        face.outline_glyph(GlyphId(*id), &mut path);
        path.ops.push_str("f\n");
        let form = format!(
            "/Type /XObject /Subtype /Form /BBox [{} {} {} {}]",
            bbox.x_min, bbox.y_min, bbox.x_max, bbox.y_max
        );
        objects.push(stream(&form, path.ops.as_bytes()));
    }
    for (i, (height, content)) in pages.iter().enumerate() {
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width:.2} {height:.2}] /Resources 3 0 R /Contents {} 0 R >>",
                first_page + 2 * i + 1
            )
            .into_bytes(),
        );
        objects.push(stream("", content.as_bytes()));
    }

    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend(object);
        out.extend(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn stream(dictionary: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("<< {dictionary} /Length {} >>\nstream\n", data.len()).into_bytes();
    out.extend(data);
    out.extend(b"\nendstream");
    out
}
