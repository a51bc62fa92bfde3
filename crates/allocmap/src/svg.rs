//! Drawing the bars, the offset axis and the legend.
//!
//! Every bar is cut into one bin per pixel column ([`bin_extents`]). A column is
//! filled from the bottom to the share of its bytes that is allocated, quantized to
//! [`LEVELS`] steps, so the coloured *area* of a bar is its allocation: a dense copy is
//! a solid block and a sparse original visibly is not, in colour or in greyscale.
//! Columns with the same quantized fill merge into one `<rect>`, which keeps a 3 GiB
//! image with tens of thousands of extents to a few thousand elements at most.
//!
//! All coordinates are integers and nothing depends on time or randomness, so the same
//! input always gives the same bytes (the snapshot tests rely on it).

use std::fmt::Write;

use crate::bins::{bin_extents, Steps};
use crate::xml::{escape, escape_into};
use crate::{ImageMap, MapOptions};
use copy_engine::human_bytes;

/// Space around the drawing.
const MARGIN: u32 = 16;
/// Height of the bar of one image.
const BAR_HEIGHT: u32 = 32;
/// Quantization of a column's fill; 16 steps of 2 px each.
const LEVELS: u32 = 16;
const STEP_PX: u32 = BAR_HEIGHT / LEVELS;
/// Room for the line of text above each bar.
const LABEL_LINE: u32 = 20;
/// Vertical space between one bar and the next image's text.
const BAR_GAP: u32 = 14;
/// Text does not shrink with the bars; a narrower canvas would clip it.
const MIN_TEXT_WIDTH: u32 = 560;

const FONT: &str = "DejaVu Sans, Verdana, Arial, sans-serif";
const TEXT: &str = "#222222";
const HOLE_FILL: &str = "#ececec";
const HOLE_STROKE: &str = "#8c8c8c";
// Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
const DATA_FILL: &str = "#0072b2";
const SHARED_FILL: &str = "#009e73";
const UNWRITTEN_FILL: &str = "url(#allocmap-unwritten)";
/// Unwritten extents are hatched, so they differ from data in greyscale too. The id is
/// prefixed because several maps may be inlined in one HTML page.
const UNWRITTEN_PATTERN: &str = r##"<pattern id="allocmap-unwritten" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#e69f00"/><rect width="3" height="6" fill="#f7d68f"/></pattern>"##;

/// Renders one bar per image, stacked in the given order, as a standalone SVG
/// document.
///
/// All bars share one scale: the largest logical size spans `opts.width_px` pixels
/// and a smaller image gets a proportionally shorter bar, so the same offset lines up
/// across images. Holes are light grey inside a thin outline; allocated bytes fill each
/// pixel column from the bottom, data in blue, shared (reflinked) extents in green above
/// it, unwritten extents hatched orange on top; the filled height of a column is the
/// allocated share of its bytes, quantized to 1/16 (a column with any allocation shows
/// at least one step).
///
/// Above each bar: the label, the logical size and allocated size in `du -h` style
/// ([`human_bytes`]), the allocated percentage of the logical size, and the ratio of
/// allocated bytes to those of `opts.reference` (`×1.84`). Below the bars: an offset
/// axis and a legend.
///
/// For tools and tests, each bar is a `<g class="image">` carrying `data-label`,
/// `data-size` and `data-allocated` (bytes), with a `<title>` for hover text; inside,
/// `rect.hole` is the bar and `g.data`, `g.shared` and `g.unwritten` hold the filled
/// columns (a group is left out when it would be empty). The output is deterministic
/// and every label is escaped.
pub fn render_svg(images: &[ImageMap], opts: &MapOptions) -> String {
    let width_px = opts.width_px.max(1);
    let max_size = images.iter().map(|image| image.size).max().unwrap_or(0);
    let canvas_width = width_px.max(MIN_TEXT_WIDTH) + 2 * MARGIN;
    let reference = opts
        .reference
        .and_then(|index| images.get(index))
        .filter(|image| image.allocated > 0);

    let mut body = String::new();
    let mut y = MARGIN;
    if let Some(title) = &opts.title {
        let _ = writeln!(
            body,
            r#"<text class="title" x="{MARGIN}" y="{}" font-size="16" font-weight="bold">{}</text>"#,
            y + 16,
            escape(title)
        );
        y += 30;
    }
    for (index, image) in images.iter().enumerate() {
        if index > 0 {
            y += BAR_GAP;
        }
        let bar_width = bar_width(image.size, max_size, width_px);
        y = draw_image(&mut body, image, bar_width, reference, y);
    }
    if max_size > 0 {
        y = draw_axis(&mut body, max_size, width_px, y);
    }
    y = draw_legend(&mut body, max_size, width_px, reference, y + 10);
    let height = y + MARGIN;

    let mut svg = String::with_capacity(body.len() + 1024);
    let _ = writeln!(svg, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{canvas_width}" height="{height}" viewBox="0 0 {canvas_width} {height}" font-family="{FONT}" font-size="13" fill="{TEXT}">"#
    );
    let doc_title = opts.title.as_deref().unwrap_or("Allocation map");
    let _ = writeln!(svg, "<title>{}</title>", escape(doc_title));
    let _ = writeln!(svg, "<defs>{UNWRITTEN_PATTERN}</defs>");
    // An explicit background, so PNG conversions and dark-mode viewers show the same.
    let _ = writeln!(
        svg,
        "<rect width=\"{canvas_width}\" height=\"{height}\" fill=\"#ffffff\"/>"
    );
    svg.push_str(&body);
    svg.push_str("</svg>\n");
    svg
}

/// Pixel length of the bar of an image of `size` bytes when `max_size` spans
/// `width_px`; never zero for a non-empty image.
fn bar_width(size: u64, max_size: u64, width_px: u32) -> u32 {
    if size == 0 || max_size == 0 {
        return 0;
    }
    let max = u128::from(max_size);
    let scaled = (u128::from(size) * u128::from(width_px) + max / 2) / max;
    (scaled as u32).max(1)
}

/// The numbers shown for one image.
struct Stats {
    summary: String,
    ratio: Option<String>,
}

impl Stats {
    fn of(image: &ImageMap, reference: Option<&ImageMap>) -> Stats {
        let mut summary = format!(
            "{} logical · {} allocated",
            human_bytes(image.size),
            human_bytes(image.allocated)
        );
        if image.size > 0 {
            let percent = image.allocated as f64 * 100.0 / image.size as f64;
            if image.allocated > 0 && percent < 0.5 {
                summary.push_str(" (<1%)");
            } else {
                let _ = write!(summary, " ({percent:.0}%)");
            }
        }
        let ratio = reference.map(|reference| {
            format!(
                "×{:.2}",
                image.allocated as f64 / reference.allocated as f64
            )
        });
        Stats { summary, ratio }
    }
}

/// Draws the text line and bar of one image with its top at `y`; returns the bottom
/// of the bar.
fn draw_image(
    out: &mut String,
    image: &ImageMap,
    bar_width: u32,
    reference: Option<&ImageMap>,
    y: u32,
) -> u32 {
    let stats = Stats::of(image, reference);
    out.push_str(r#"<g class="image" data-label=""#);
    escape_into(out, &image.label);
    let _ = writeln!(
        out,
        r#"" data-size="{}" data-allocated="{}">"#,
        image.size, image.allocated
    );

    out.push_str("<title>");
    escape_into(out, &image.label);
    let _ = write!(out, ": {}", escape(&stats.summary));
    if let (Some(ratio), Some(reference)) = (&stats.ratio, reference) {
        let _ = write!(out, " · {ratio} vs ");
        escape_into(out, &reference.label);
    }
    out.push_str("</title>\n");

    let _ = write!(
        out,
        r#"<text x="{MARGIN}" y="{}"><tspan font-weight="bold">"#,
        y + 14
    );
    escape_into(out, &image.label);
    let _ = write!(
        out,
        r#"</tspan><tspan dx="12">{}</tspan>"#,
        escape(&stats.summary)
    );
    if let Some(ratio) = &stats.ratio {
        let _ = write!(out, r#"<tspan dx="12" font-weight="bold">{ratio}</tspan>"#);
    }
    out.push_str("</text>\n");

    let bar_y = y + LABEL_LINE;
    if bar_width > 0 {
        let _ = writeln!(
            out,
            r#"<rect class="hole" x="{MARGIN}" y="{bar_y}" width="{bar_width}" height="{BAR_HEIGHT}" fill="{HOLE_FILL}"/>"#
        );
        draw_columns(out, image, bar_width, bar_y);
        // The outline goes on top, half a pixel outside the bar, so it stays crisp and
        // does not hide the first and last columns.
        let _ = writeln!(
            out,
            r#"<rect class="outline" x="{}.5" y="{}.5" width="{}" height="{}" fill="none" stroke="{HOLE_STROKE}"/>"#,
            MARGIN - 1,
            bar_y - 1,
            bar_width + 1,
            BAR_HEIGHT + 1
        );
    }
    out.push_str("</g>\n");
    bar_y + BAR_HEIGHT
}

/// One layer of filled columns: class, fill, and where the layer sits in a column
/// (`(first step, number of steps)` from the bottom).
type Layer = (&'static str, &'static str, fn(&Steps) -> (u32, u32));

const LAYERS: [Layer; 3] = [
    ("data", DATA_FILL, |s| (0, s.data)),
    ("shared", SHARED_FILL, |s| (s.data, s.shared)),
    ("unwritten", UNWRITTEN_FILL, |s| {
        (s.data + s.shared, s.unwritten)
    }),
];

/// Draws the filled part of each pixel column of a bar, merging equal neighbours.
fn draw_columns(out: &mut String, image: &ImageMap, bar_width: u32, bar_y: u32) {
    let steps: Vec<Steps> = bin_extents(image, bar_width)
        .iter()
        .map(|bin| Steps::quantize(bin, LEVELS))
        .collect();
    let bottom = bar_y + BAR_HEIGHT;
    for (class, fill, span) in LAYERS {
        let mut runs = Vec::new();
        let mut column = 0;
        while column < steps.len() {
            let (base, height) = span(&steps[column]);
            let start = column;
            while column < steps.len() && span(&steps[column]) == (base, height) {
                column += 1;
            }
            if height > 0 {
                runs.push((start, column - start, base, height));
            }
        }
        if runs.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            r#"<g class="{class}" fill="{fill}" shape-rendering="crispEdges">"#
        );
        for (start, len, base, height) in runs {
            let _ = writeln!(
                out,
                r#"<rect x="{}" y="{}" width="{len}" height="{}"/>"#,
                MARGIN as usize + start,
                bottom - (base + height) * STEP_PX,
                height * STEP_PX
            );
        }
        out.push_str("</g>\n");
    }
}

/// Draws offset ticks under the bars, whose bottom is at `y`; returns the new bottom.
fn draw_axis(out: &mut String, max_size: u64, width_px: u32, y: u32) -> u32 {
    // Power-of-two steps land on sizes people recognise (512M, 1.0G), and at most one
    // label per 80 px keeps them from overlapping.
    let max_intervals = u64::from((width_px / 80).clamp(1, 8));
    let mut step: u64 = 1;
    while max_size / step > max_intervals {
        step *= 2;
    }
    let mut ticks = String::new();
    let mut labels = String::new();
    let mut offset = 0;
    loop {
        let x = MARGIN + bar_width(offset, max_size, width_px);
        let _ = write!(ticks, "M{x} {}v4", y + 3);
        let _ = writeln!(
            labels,
            r#"<text x="{x}" y="{}">{}</text>"#,
            y + 19,
            human_bytes(offset)
        );
        match offset.checked_add(step) {
            Some(next) if next <= max_size => offset = next,
            _ => break,
        }
    }
    let _ = writeln!(
        out,
        r##"<g class="axis" fill="#555555" font-size="11" text-anchor="middle">"##
    );
    let _ = writeln!(out, r##"<path d="{ticks}" stroke="#8c8c8c"/>"##);
    out.push_str(&labels);
    out.push_str("</g>\n");
    y + 24
}

/// Draws the colour key and how to read the bars with its top at `y`; returns the new
/// bottom.
fn draw_legend(
    out: &mut String,
    max_size: u64,
    width_px: u32,
    reference: Option<&ImageMap>,
    y: u32,
) -> u32 {
    let keys = [
        ("hole", HOLE_FILL, true),
        ("data", DATA_FILL, false),
        ("shared (reflinked)", SHARED_FILL, false),
        ("unwritten (preallocated)", UNWRITTEN_FILL, false),
    ];
    out.push_str("<g class=\"legend\">\n");
    let mut x = MARGIN;
    for (name, fill, outlined) in keys {
        let stroke = if outlined {
            format!(r#" stroke="{HOLE_STROKE}""#)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            r#"<rect x="{x}.5" y="{}.5" width="13" height="13" fill="{fill}"{stroke}/><text x="{}" y="{}">{name}</text>"#,
            y,
            x + 20,
            y + 12
        );
        // No font metrics here: 6.5 px per character fits 13 px DejaVu Sans.
        x += 20 + (name.chars().count() as u32 * 13).div_ceil(2) + 18;
    }
    let mut y = y + 20;
    if max_size > 0 {
        let per_column = max_size.div_ceil(u64::from(width_px));
        let _ = writeln!(
            out,
            r##"<text x="{MARGIN}" y="{}" font-size="12" fill="#555555">Filled height of a column: allocated share of its bytes (1 column ≈ {}).</text>"##,
            y + 12,
            human_bytes(per_column)
        );
        y += 18;
    }
    if let Some(reference) = reference {
        let _ = write!(
            out,
            r##"<text x="{MARGIN}" y="{}" font-size="12" fill="#555555">×: allocated size relative to "##,
            y + 12
        );
        escape_into(out, &reference.label);
        out.push_str(".</text>\n");
        y += 18;
    }
    out.push_str("</g>\n");
    y
}
