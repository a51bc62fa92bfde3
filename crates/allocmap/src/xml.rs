//! Escaping text for XML, where labels are file names and may hold anything.

use std::fmt::Write;

/// Appends `text` to `out` escaped for use both as element content and inside a
/// double- or single-quoted attribute.
///
/// Besides the five markup characters, tabs and line breaks become character
/// references (an attribute value would otherwise have them normalised to spaces), and
/// characters that XML 1.0 forbids even as references (the other C0 controls, U+FFFE
/// and U+FFFF) become U+FFFD, so that any file name still gives a well-formed document.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            _ => out.push(c),
        }
    }
}

/// `text` escaped as by [`escape_into`].
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

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
}
