//! A hand-written SVG bar chart of the results: one panel per case and
//! mode, one bar per tool (median time), a whisker from the fastest to the
//! slowest run, and each other tool's ratio against ours.

use std::fmt::Write;

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
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r##"<text x="12" y="24" font-size="16" font-weight="bold">sparsecp benchmarks</text><text x="12" y="44" fill="#4b5563">{}</text>"##,
        esc(subtitle)
    );
    legend(&mut svg, 12.0, HEADER - 16.0);
    let mut y = HEADER;
    for (case, m) in panels {
        panel(&mut svg, case, m, y);
        y += panel_height(case, m) + GAP;
    }
    svg.push_str("</svg>\n");
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
        let _ = write!(
            svg,
            r#"<rect x="{cx}" y="{}" width="10" height="10" fill="{color}"/><text x="{}" y="{y}">{label}</text>"#,
            y - 9.0,
            cx + 14.0
        );
        cx += 26.0 + label.len() as f64 * 6.6;
    }
    let _ = writeln!(
        svg,
        r##"<text x="{cx}" y="{y}" fill="#4b5563">bar = median, whisker = min–max; "sparsecp auto 0.72×" = its median ÷ this tool's</text>"##
    );
}

fn panel_height(case: &CaseResult, _mode: usize) -> f64 {
    PANEL_TITLE + case.tools.len().max(1) as f64 * ROW + AXIS
}

fn panel(svg: &mut String, case: &CaseResult, mode: usize, top: f64) {
    let m = &case.modes[mode];
    let _ = writeln!(
        svg,
        r##"<text x="12" y="{}" font-size="13" font-weight="bold">{} · {}</text><text x="{}" y="{}" fill="#4b5563" text-anchor="end">{}</text>"##,
        top + 16.0,
        esc(&case.name),
        m.mode.label(),
        WIDTH - 12.0,
        top + 16.0,
        esc(&truncate(&case.fixture, 95))
    );
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
        let x = BAR_X + t as f64 * step * scale;
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="#e5e7eb"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#6b7280" font-size="10">{}</text>"##,
            y1 + 14.0,
            tick_label(t as f64 * step, step)
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{BAR_X}" y1="{y0}" x2="{BAR_X}" y2="{y1}" stroke="#374151"/>"##
    );
    for (i, tool) in case.tools.iter().enumerate() {
        let cy = y0 + i as f64 * ROW + ROW / 2.0;
        let Some(s) = m.summaries[i] else {
            let _ = writeln!(
                svg,
                r##"<text x="{LABEL_X}" y="{:.1}" text-anchor="end" fill="#6b7280">{}</text><text x="{}" y="{:.1}" fill="{SLOWER}" font-style="italic">did not run (see report.md)</text>"##,
                cy + 4.0,
                esc(&tool.name),
                BAR_X + 6.0,
                cy + 4.0
            );
            continue;
        };
        let color = match tool.role {
            Role::Ours => OURS,
            Role::Theirs => THEIRS,
            Role::Limit => LIMIT,
        };
        let weight = if tool.role == Role::Ours {
            r#" font-weight="bold""#
        } else {
            ""
        };
        let (xm, xa, xb) = (
            s.median * scale,
            BAR_X + s.min * scale,
            BAR_X + s.max * scale,
        );
        let _ = write!(
            svg,
            r##"<text x="{LABEL_X}" y="{:.1}" text-anchor="end"{weight}>{}</text><rect x="{BAR_X}" y="{:.1}" width="{:.1}" height="{BAR_H}" fill="{color}"/><line x1="{xa:.1}" y1="{cy:.1}" x2="{xb:.1}" y2="{cy:.1}" stroke="#111827"/><line x1="{xa:.1}" y1="{:.1}" x2="{xa:.1}" y2="{:.1}" stroke="#111827"/><line x1="{xb:.1}" y1="{:.1}" x2="{xb:.1}" y2="{:.1}" stroke="#111827"/>"##,
            cy + 4.0,
            esc(&tool.name),
            cy - BAR_H / 2.0,
            xm.max(1.0),
            cy - 4.0,
            cy + 4.0,
            cy - 4.0,
            cy + 4.0,
        );
        let mut label = format!(
            r#"<text x="{:.1}" y="{:.1}">{}"#,
            xb.max(BAR_X + xm) + 6.0,
            cy + 4.0,
            human_seconds(s.median)
        );
        if let Some(r) = m.ratios.iter().find(|r| r.theirs == tool.name) {
            let ours = esc(&r.ours);
            let fill = match (tool.role, r.of_medians <= 1.0) {
                (Role::Limit, _) => "#4b5563",
                (_, true) => FASTER,
                (_, false) => SLOWER,
            };
            let _ = write!(
                label,
                r#"<tspan fill="{fill}" dx="8">{ours} {:.2}×</tspan>"#,
                r.of_medians
            );
        }
        label.push_str("</text>\n");
        svg.push_str(&label);
    }
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

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
