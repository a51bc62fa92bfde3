//! Shared fixtures: parsing rendered SVG into a small tree, images, a seeded PRNG.

use std::collections::BTreeMap;

use allocmap::{ExtentKind, ImageMap, MapExtent};
use quick_xml::events::Event;
use quick_xml::Reader;

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// One element of a parsed document, with attributes already unescaped.
#[derive(Debug)]
pub struct Element {
    pub name: String,
    pub attrs: BTreeMap<String, String>,
    pub children: Vec<Node>,
}

/// Element content.
#[derive(Debug)]
pub enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }

    /// The attribute parsed as a number; panics if it is missing or not a number.
    pub fn num(&self, name: &str) -> u64 {
        let value = self
            .attr(name)
            .unwrap_or_else(|| panic!("<{}> has no {name}", self.name));
        value
            .parse()
            .unwrap_or_else(|_| panic!("<{}> {name}={value:?} is not a number", self.name))
    }

    pub fn has_class(&self, class: &str) -> bool {
        self.attr("class")
            .is_some_and(|classes| classes.split_whitespace().any(|c| c == class))
    }

    /// Child elements, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            Node::Text(_) => None,
        })
    }

    /// This element and all elements below it, in document order.
    pub fn descendants(&self) -> Vec<&Element> {
        let mut all = vec![self];
        for child in self.elements() {
            all.extend(child.descendants());
        }
        all
    }

    /// All elements below this one with the given name and class.
    pub fn find(&self, name: &str, class: &str) -> Vec<&Element> {
        self.descendants()
            .into_iter()
            .filter(|e| e.name == name && e.has_class(class))
            .collect()
    }

    /// The concatenated text of this element and its descendants, unescaped.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for node in &self.children {
            match node {
                Node::Text(t) => text.push_str(t),
                Node::Element(e) => text.push_str(&e.text()),
            }
        }
        text
    }

    /// The text of the first direct child element called `name`.
    pub fn child_text(&self, name: &str) -> Option<String> {
        self.elements().find(|e| e.name == name).map(Element::text)
    }
}

/// Parses `svg` as XML and returns its root element, panicking with the reason if the
/// document is not well-formed: mismatched or unclosed tags, duplicate or broken
/// attributes, unknown entities, characters XML 1.0 forbids, more than one root.
pub fn parse(svg: &str) -> Element {
    if let Some(bad) = svg.chars().find(|&c| !is_xml10_char(c)) {
        panic!("character {bad:?} is not allowed in XML 1.0");
    }
    assert!(
        svg.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "missing XML declaration"
    );
    let mut reader = Reader::from_str(svg);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("malformed at byte {}: {e}", reader.buffer_position()));
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let empty = matches!(event, Event::Empty(_));
                let name = String::from_utf8(start.name().as_ref().to_vec()).unwrap();
                let mut attrs = BTreeMap::new();
                for attr in start.attributes() {
                    let attr = attr.unwrap_or_else(|e| panic!("bad attribute on <{name}>: {e}"));
                    let key = String::from_utf8(attr.key.as_ref().to_vec()).unwrap();
                    let value = attr
                        .unescape_value()
                        .unwrap_or_else(|e| panic!("bad value of {key} on <{name}>: {e}"));
                    attrs.insert(key, value.into_owned());
                }
                let element = Element {
                    name,
                    attrs,
                    children: Vec::new(),
                };
                if empty {
                    attach(&mut stack, &mut root, element);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                let element = stack.pop().expect("end tag without start");
                attach(&mut stack, &mut root, element);
            }
            Event::Text(text) => {
                let text = text.decode().unwrap().into_owned();
                push_text(&mut stack, text);
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().expect("bad char ref") {
                    Some(c) => c.to_string(),
                    None => match reference.decode().unwrap().as_ref() {
                        "amp" => "&".to_string(),
                        "lt" => "<".to_string(),
                        "gt" => ">".to_string(),
                        "quot" => "\"".to_string(),
                        "apos" => "'".to_string(),
                        other => panic!("unknown entity &{other};"),
                    },
                };
                push_text(&mut stack, resolved);
            }
            Event::CData(_) | Event::DocType(_) => panic!("unexpected {event:?}"),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    assert!(stack.is_empty(), "unclosed elements at end of document");
    root.expect("document has no root element")
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(element)),
        None => {
            assert!(root.is_none(), "more than one root element");
            *root = Some(element);
        }
    }
}

fn push_text(stack: &mut [Element], text: String) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Text(text)),
        None => assert!(text.trim().is_empty(), "text outside the root: {text:?}"),
    }
}

fn is_xml10_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// The `<g class="image">` bars of a parsed document, in order.
pub fn bars(root: &Element) -> Vec<&Element> {
    root.find("g", "image")
}

/// One extent of `kind`.
pub fn extent(offset: u64, length: u64, kind: ExtentKind) -> MapExtent {
    MapExtent {
        offset,
        length,
        kind,
    }
}

/// An image whose `allocated` is the sum of its extents.
pub fn image(label: &str, size: u64, extents: Vec<MapExtent>) -> ImageMap {
    ImageMap {
        label: label.to_string(),
        size,
        allocated: extents.iter().map(|e| e.length).sum(),
        extents,
    }
}

/// An image that is data from end to end, as `io.Copy` leaves it.
pub fn dense(label: &str, size: u64) -> ImageMap {
    image(label, size, vec![extent(0, size, ExtentKind::Data)])
}

/// `count` data extents of random length with random gaps, 4 KiB aligned, filling
/// about half of `size`; the same for the same `seed`.
pub fn random_sparse(label: &str, size: u64, count: u64, seed: u64) -> ImageMap {
    let mut rng = SplitMix64(seed);
    // Mean extent and mean gap are both half a slot, so about half is data.
    let slot = size / count / (4 * KIB) * (4 * KIB);
    let mut extents = Vec::with_capacity(count as usize);
    let mut offset = 0;
    for _ in 0..count {
        let gap = 4 * KIB * rng.below(slot / (4 * KIB));
        let length = 4 * KIB * (1 + rng.below(slot / (4 * KIB)));
        let start = offset + gap;
        if start >= size {
            break;
        }
        let length = length.min(size - start);
        extents.push(extent(start, length, ExtentKind::Data));
        offset = start + length;
    }
    image(label, size, extents)
}

/// A tiny deterministic generator, so that "random" tests are reproducible.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
