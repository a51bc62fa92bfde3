//! Integration tests for allocmap: one test binary, one module per concern.

mod binning; // bin_extents: exact proportions for known layouts, conservation of bytes
mod human; // human_bytes against the real `du -h --apparent-size`
mod render; // the SVG: well-formed, one bar per image, scale, escaping, size budget
mod snapshot; // the whole SVG of a small fixed case, reviewed as a file snapshot
mod support; // shared fixtures: a tiny XML tree built with quick-xml, a seeded PRNG
