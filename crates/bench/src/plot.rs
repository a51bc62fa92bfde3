//! An SVG bar chart of the results: one panel per case and mode, one bar
//! per tool (median time), a whisker from the fastest to the slowest run,
//! and each other tool's ratio against ours. Written element by element
//! through allocmap's writer ([`allocmap::xml::Element`]), which escapes
//! every tool name and label.

use std::fmt::Display;

use allocmap::xml::{close, Element};

use crate::case::Role;
use crate::runner::CaseResult;
use crate::stats::human_seconds;

const WIDTH: f64 = 980.0;
const LABEL_X: f64 = 196.0;
const BAR_X: f64 = 204.0;
const BAR_W: f64 = 500.0;
const ROW: f64 = 20.0;
const BAR_H: f64 = 12.0;
const PANEL_TITLE: f64 = 26.0;
const AXIS: f64 = 26.0;
const GAP: f64 = 14.0;
const HEADER: f64 = 88.0;

const OURS: &str = "#2563eb";
const THEIRS: &str = "#9ca3af";
const LIMIT: &str = "#16a34a";
const FASTER: &str = "#15803d";
const SLOWER: &str = "#b91c1c";
const MUTED: &str = "#4b5563";
const GRID: &str = "#e5e7eb";
const AXIS_COLOR: &str = "#374151";
const WHISKER: &str = "#111827";

/// Renders every case and mode of `results` as one SVG document.
pub fn render(results: &[CaseResult], subtitle: &str) -> String {
    let panels: Vec<(&CaseResult, usize)> = results
        .iter()
        .flat_map(|c| (0..c.modes.len()).map(move |m| (c, m)))
        .collect();
    let height = HEADER
        + panels
            .iter()
            .map(|(c, m)| panel_height(c, *m) + GAP)
            .sum::<f64>();
    let mut svg = String::new();
    Element::new("svg")
        .attr("xmlns", "http://www.w3.org/2000/svg")
        .attr("width", WIDTH)
        .attr("height", height)
        .attr("viewBox", format!("0 0 {WIDTH} {height}"))
        .attr("font-family", "DejaVu Sans, Helvetica, Arial, sans-serif")
        .attr("font-size", 12)
        .open(&mut svg);
    svg.push('\n');
    Element::new("rect")
        .attr("width", "100%")
        .attr("height", "100%")
        .attr("fill", "white")
        .empty(&mut svg);
    svg.push('\n');
    Element::new("text")
        .attr("x", 12)
        .attr("y", 24)
        .attr("font-size", 16)
        .attr("font-weight", "bold")
        .text(&mut svg, "sparsecp benchmarks");
    Element::new("text")
        .attr("x", 12)
        .attr("y", 44)
        .attr("fill", MUTED)
        .text(&mut svg, subtitle);
    svg.push('\n');
    legend(&mut svg, 12.0, HEADER - 16.0);
    let mut y = HEADER;
    for (case, m) in panels {
        panel(&mut svg, case, m, y);
        y += panel_height(case, m) + GAP;
    }
    close(&mut svg, "svg");
    svg.push('\n');
    svg
}

fn legend(svg: &mut String, x: f64, y: f64) {
    let items = [
        (OURS, "sparsecp"),
        (THEIRS, "other tools"),
        (LIMIT, "read/write-once limit"),
    ];
    let mut cx = x;
    for (color, label) in items {
        Element::new("rect")
            .attr("x", cx)
            .attr("y", y - 9.0)
            .attr("width", 10)
            .attr("height", 10)
            .attr("fill", color)
            .empty(svg);
        Element::new("text")
            .attr("x", cx + 14.0)
            .attr("y", y)
            .text(svg, label);
        cx += 26.0 + label.len() as f64 * 6.6;
    }
    Element::new("text")
        .attr("x", cx)
        .attr("y", y)
        .attr("fill", MUTED)
        .text(
            svg,
            "bar = median, whisker = min–max; \"sparsecp auto 0.72×\" = its median ÷ this tool's",
        );
    svg.push('\n');
}

fn panel_height(case: &CaseResult, _mode: usize) -> f64 {
    PANEL_TITLE + case.tools.len().max(1) as f64 * ROW + AXIS
}

fn panel(svg: &mut String, case: &CaseResult, mode: usize, top: f64) {
    let m = &case.modes[mode];
    Element::new("text")
        .attr("x", 12)
        .attr("y", top + 16.0)
        .attr("font-size", 13)
        .attr("font-weight", "bold")
        .text(svg, &format!("{} · {}", case.name, m.mode.label()));
    Element::new("text")
        .attr("x", WIDTH - 12.0)
        .attr("y", top + 16.0)
        .attr("fill", MUTED)
        .attr("text-anchor", "end")
        .text(svg, &truncate(&case.fixture, 95));
    svg.push('\n');
    let max = m
        .summaries
        .iter()
        .flatten()
        .map(|s| s.max)
        .fold(0.0, f64::max);
    let (step, ticks) = nice_ticks(max);
    let scale = BAR_W / (step * ticks as f64);
    let y0 = top + PANEL_TITLE;
    let y1 = y0 + case.tools.len() as f64 * ROW;
    for t in 0..=ticks {
        let x = px(BAR_X + t as f64 * step * scale);
        line(svg, (&x, y0), (&x, y1), GRID);
        Element::new("text")
            .attr("x", &x)
            .attr("y", y1 + 14.0)
            .attr("text-anchor", "middle")
            .attr("fill", "#6b7280")
            .attr("font-size", 10)
            .text(svg, &tick_label(t as f64 * step, step));
    }
    line(svg, (&BAR_X, y0), (&BAR_X, y1), AXIS_COLOR);
    svg.push('\n');
    for (i, tool) in case.tools.iter().enumerate() {
        let cy = y0 + i as f64 * ROW + ROW / 2.0;
        let Some(s) = m.summaries[i] else {
            Element::new("text")
                .attr("x", LABEL_X)
                .attr("y", px(cy + 4.0))
                .attr("text-anchor", "end")
                .attr("fill", "#6b7280")
                .text(svg, &tool.name);
            Element::new("text")
                .attr("x", BAR_X + 6.0)
                .attr("y", px(cy + 4.0))
                .attr("fill", SLOWER)
                .attr("font-style", "italic")
                .text(svg, "did not run (see report.md)");
            svg.push('\n');
            continue;
        };
        let color = match tool.role {
            Role::Ours => OURS,
            Role::Theirs => THEIRS,
            Role::Limit => LIMIT,
        };
        let label = Element::new("text")
            .attr("x", LABEL_X)
            .attr("y", px(cy + 4.0))
            .attr("text-anchor", "end");
        if tool.role == Role::Ours {
            label.attr("font-weight", "bold")
        } else {
            label
        }
        .text(svg, &tool.name);
        let (xm, xa, xb) = (
            s.median * scale,
            px(BAR_X + s.min * scale),
            px(BAR_X + s.max * scale),
        );
        Element::new("rect")
            .attr("x", BAR_X)
            .attr("y", px(cy - BAR_H / 2.0))
            .attr("width", px(xm.max(1.0)))
            .attr("height", BAR_H)
            .attr("fill", color)
            .empty(svg);
        let cy_px = px(cy);
        line(svg, (&xa, &cy_px), (&xb, &cy_px), WHISKER);
        for x in [&xa, &xb] {
            line(svg, (x, px(cy - 4.0)), (x, px(cy + 4.0)), WHISKER);
        }
        Element::new("text")
            .attr("x", px((BAR_X + s.max * scale).max(BAR_X + xm) + 6.0))
            .attr("y", px(cy + 4.0))
            .open(svg);
        svg.push_str(&allocmap::xml::escape(&human_seconds(s.median)));
        if let Some(r) = m.ratios.iter().find(|r| r.theirs == tool.name) {
            let fill = match (tool.role, r.of_medians <= 1.0) {
                (Role::Limit, _) => MUTED,
                (_, true) => FASTER,
                (_, false) => SLOWER,
            };
            Element::new("tspan")
                .attr("fill", fill)
                .attr("dx", 8)
                .text(svg, &format!("{} {:.2}×", r.ours, r.of_medians));
        }
        close(svg, "text");
        svg.push('\n');
    }
}

/// A one-pixel line from `from` to `to`.
fn line(
    svg: &mut String,
    from: (impl Display, impl Display),
    to: (impl Display, impl Display),
    stroke: &str,
) {
    Element::new("line")
        .attr("x1", from.0)
        .attr("y1", from.1)
        .attr("x2", to.0)
        .attr("y2", to.1)
        .attr("stroke", stroke)
        .empty(svg);
}

/// A coordinate to one decimal, as the chart writes them.
fn px(value: f64) -> String {
    format!("{value:.1}")
}

/// A tick step of 1, 2 or 5 times a power of ten, and how many ticks cover
/// `max` (at least one).
pub fn nice_ticks(max: f64) -> (f64, usize) {
    if max <= 0.0 || !max.is_finite() {
        return (1.0, 1);
    }
    let rough = max / 4.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|f| f * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power);
    ((step), ((max / step).ceil() as usize).max(1))
}

fn tick_label(value: f64, step: f64) -> String {
    if value == 0.0 {
        "0".to_owned()
    } else if step >= 1.0 {
        format!("{value:.0} s")
    } else if step >= 0.1 {
        format!("{value:.1} s")
    } else if step >= 0.001 {
        format!("{:.0} ms", value * 1e3)
    } else {
        format!("{:.1} ms", value * 1e3)
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    text.chars()
        .take(max - 1)
        .chain(std::iter::once('…'))
        .collect()
}
