//! Writing XML (SVG) elements with every text and attribute escaped: the
//! allocation maps and the benchmark chart are written through [`Element`],
//! where labels are file names and tool names and may hold anything.

use std::borrow::Cow;
use std::fmt::{Display, Write};

/// `text` escaped for use both as element content and inside a double- or
/// single-quoted attribute.
///
/// quick-xml escapes the five markup characters. Two things it leaves are
/// added here: tabs and line breaks become character references (an
/// attribute value would otherwise have them normalised to spaces), and
/// characters that XML 1.0 forbids even as references (the other C0
/// controls, U+FFFE and U+FFFF) become U+FFFD, so that any file name still
/// gives a well-formed document.
pub fn escape(text: &str) -> Cow<'_, str> {
    let escaped = quick_xml::escape::escape(text);
    if !escaped.chars().any(is_control) {
        return escaped;
    }
    let mut out = String::with_capacity(escaped.len() + 8);
    for c in escaped.chars() {
        match c {
            '\t' | '\n' | '\r' => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c if is_control(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// One element under construction: a name and its attributes, written
/// with [`Element::empty`], [`Element::text`] or [`Element::open`] (then
/// [`close`]). Attribute values are escaped; attributes keep their order,
/// so the same calls always give the same bytes.
///
/// ```
/// use allocmap::xml::{close, Element};
///
/// let mut svg = String::new();
/// Element::new("g").attr("class", "bars").open(&mut svg);
/// Element::new("rect").attr("x", 4).attr("width", 10.5).empty(&mut svg);
/// Element::new("text").attr("x", 0).text(&mut svg, "a < b");
/// close(&mut svg, "g");
/// assert_eq!(
///     svg,
///     r#"<g class="bars"><rect x="4" width="10.5"/><text x="0">a &lt; b</text></g>"#
/// );
/// ```
#[derive(Debug, Clone)]
#[must_use = "an element is written only by `empty`, `text` or `open`"]
pub struct Element {
    start: String,
}

impl Element {
    /// An element called `name` (a fixed tag name, written as is).
    pub fn new(name: &str) -> Element {
        Element {
            start: format!("<{name}"),
        }
    }

    /// Adds the attribute `name="value"`, `value` escaped.
    pub fn attr(mut self, name: &str, value: impl Display) -> Element {
        let value = value.to_string();
        let _ = write!(self.start, r#" {name}="{}""#, escape(&value));
        self
    }

    /// Writes `<name .../>`.
    pub fn empty(self, out: &mut String) {
        out.push_str(&self.start);
        out.push_str("/>");
    }

    /// Writes `<name ...>`; the caller writes the content and [`close`]s it.
    pub fn open(self, out: &mut String) {
        out.push_str(&self.start);
        out.push('>');
    }

    /// Writes `<name ...>text</name>`, `text` escaped.
    pub fn text(self, out: &mut String, text: &str) {
        let name = self.name().to_owned();
        self.open(out);
        out.push_str(&escape(text));
        close(out, &name);
    }

    fn name(&self) -> &str {
        self.start[1..].split(' ').next().unwrap_or("")
    }
}

/// Writes the end tag `</name>`.
pub fn close(out: &mut String, name: &str) {
    let _ = write!(out, "</{name}>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_whitespace_and_forbidden_controls() {
        assert_eq!(escape("plain.img"), "plain.img");
        assert_eq!(
            escape(r#"a&b <c> "d" 'e'"#),
            "a&amp;b &lt;c&gt; &quot;d&quot; &apos;e&apos;"
        );
        assert_eq!(escape("tab\tnl\ncr\r"), "tab&#9;nl&#10;cr&#13;");
        assert_eq!(escape("nul\0bell\u{7}"), "nul\u{fffd}bell\u{fffd}");
        assert_eq!(escape("passive × ü"), "passive × ü");
    }

    #[test]
    fn attributes_are_escaped_and_keep_their_order() {
        let mut out = String::new();
        Element::new("text")
            .attr("x", 1.5)
            .attr("data-label", "a\"b")
            .text(&mut out, "x & y");
        assert_eq!(
            out,
            r#"<text x="1.5" data-label="a&quot;b">x &amp; y</text>"#
        );
    }
}
