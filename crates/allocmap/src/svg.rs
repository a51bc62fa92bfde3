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
//! input always gives the same bytes (the snapshot tests rely on it). Elements are
//! written through [`crate::xml::Element`], which escapes every label; only the fixed
//! prolog and the hatch pattern are literal markup.

use std::fmt::Write;

use crate::bins::{bin_extents, Steps};
use crate::xml::{close, Element};
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
/// Axis labels and the notes under the legend.
const NOTE: &str = "#555555";
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
        Element::new("text")
            .attr("class", "title")
            .attr("x", MARGIN)
            .attr("y", y + 16)
            .attr("font-size", 16)
            .attr("font-weight", "bold")
            .text(&mut body, title);
        body.push('\n');
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
    Element::new("svg")
        .attr("xmlns", "http://www.w3.org/2000/svg")
        .attr("width", canvas_width)
        .attr("height", height)
        .attr("viewBox", format_args!("0 0 {canvas_width} {height}"))
        .attr("font-family", FONT)
        .attr("font-size", 13)
        .attr("fill", TEXT)
        .open(&mut svg);
    svg.push('\n');
    let doc_title = opts.title.as_deref().unwrap_or("Allocation map");
    Element::new("title").text(&mut svg, doc_title);
    let _ = writeln!(svg, "\n<defs>{UNWRITTEN_PATTERN}</defs>");
    // An explicit background, so PNG conversions and dark-mode viewers show the same.
    Element::new("rect")
        .attr("width", canvas_width)
        .attr("height", height)
        .attr("fill", "#ffffff")
        .empty(&mut svg);
    svg.push('\n');
    svg.push_str(&body);
    close(&mut svg, "svg");
    svg.push('\n');
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
    Element::new("g")
        .attr("class", "image")
        .attr("data-label", &image.label)
        .attr("data-size", image.size)
        .attr("data-allocated", image.allocated)
        .open(out);
    out.push('\n');

    let mut hover = format!("{}: {}", image.label, stats.summary);
    if let (Some(ratio), Some(reference)) = (&stats.ratio, reference) {
        let _ = write!(hover, " · {ratio} vs {}", reference.label);
    }
    Element::new("title").text(out, &hover);
    out.push('\n');

    Element::new("text")
        .attr("x", MARGIN)
        .attr("y", y + 14)
        .open(out);
    Element::new("tspan")
        .attr("font-weight", "bold")
        .text(out, &image.label);
    Element::new("tspan")
        .attr("dx", 12)
        .text(out, &stats.summary);
    if let Some(ratio) = &stats.ratio {
        Element::new("tspan")
            .attr("dx", 12)
            .attr("font-weight", "bold")
            .text(out, ratio);
    }
    close(out, "text");
    out.push('\n');

    let bar_y = y + LABEL_LINE;
    if bar_width > 0 {
        Element::new("rect")
            .attr("class", "hole")
            .attr("x", MARGIN)
            .attr("y", bar_y)
            .attr("width", bar_width)
            .attr("height", BAR_HEIGHT)
            .attr("fill", HOLE_FILL)
            .empty(out);
        out.push('\n');
        draw_columns(out, image, bar_width, bar_y);
        // The outline goes on top, half a pixel outside the bar, so it stays crisp and
        // does not hide the first and last columns.
        Element::new("rect")
            .attr("class", "outline")
            .attr("x", format_args!("{}.5", MARGIN - 1))
            .attr("y", format_args!("{}.5", bar_y - 1))
            .attr("width", bar_width + 1)
            .attr("height", BAR_HEIGHT + 1)
            .attr("fill", "none")
            .attr("stroke", HOLE_STROKE)
            .empty(out);
        out.push('\n');
    }
    close(out, "g");
    out.push('\n');
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
        Element::new("g")
            .attr("class", class)
            .attr("fill", fill)
            .attr("shape-rendering", "crispEdges")
            .open(out);
        out.push('\n');
        for (start, len, base, height) in runs {
            Element::new("rect")
                .attr("x", MARGIN as usize + start)
                .attr("y", bottom - (base + height) * STEP_PX)
                .attr("width", len)
                .attr("height", height * STEP_PX)
                .empty(out);
            out.push('\n');
        }
        close(out, "g");
        out.push('\n');
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
        Element::new("text")
            .attr("x", x)
            .attr("y", y + 19)
            .text(&mut labels, &human_bytes(offset));
        labels.push('\n');
        match offset.checked_add(step) {
            Some(next) if next <= max_size => offset = next,
            _ => break,
        }
    }
    Element::new("g")
        .attr("class", "axis")
        .attr("fill", NOTE)
        .attr("font-size", 11)
        .attr("text-anchor", "middle")
        .open(out);
    out.push('\n');
    Element::new("path")
        .attr("d", ticks)
        .attr("stroke", HOLE_STROKE)
        .empty(out);
    out.push('\n');
    out.push_str(&labels);
    close(out, "g");
    out.push('\n');
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
    Element::new("g").attr("class", "legend").open(out);
    out.push('\n');
    let mut x = MARGIN;
    for (name, fill, outlined) in keys {
        let key = Element::new("rect")
            .attr("x", format_args!("{x}.5"))
            .attr("y", format_args!("{y}.5"))
            .attr("width", 13)
            .attr("height", 13)
            .attr("fill", fill);
        if outlined {
            key.attr("stroke", HOLE_STROKE)
        } else {
            key
        }
        .empty(out);
        Element::new("text")
            .attr("x", x + 20)
            .attr("y", y + 12)
            .text(out, name);
        out.push('\n');
        // No font metrics here: 6.5 px per character fits 13 px DejaVu Sans.
        x += 20 + (name.chars().count() as u32 * 13).div_ceil(2) + 18;
    }
    let mut notes = Vec::new();
    if max_size > 0 {
        let per_column = max_size.div_ceil(u64::from(width_px));
        notes.push(format!(
            "Filled height of a column: allocated share of its bytes (1 column ≈ {}).",
            human_bytes(per_column)
        ));
    }
    if let Some(reference) = reference {
        notes.push(format!(
            "×: allocated size relative to {}.",
            reference.label
        ));
    }
    let mut y = y + 20;
    for note in notes {
        Element::new("text")
            .attr("x", MARGIN)
            .attr("y", y + 12)
            .attr("font-size", 12)
            .attr("fill", NOTE)
            .text(out, &note);
        out.push('\n');
        y += 18;
    }
    close(out, "g");
    out.push('\n');
    y
}
