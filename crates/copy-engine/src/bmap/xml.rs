//! The XML text of a bmap file (format 2.0), read with quick-xml and
//! written by hand (a fixed, flat layout).
//!
//! The file's own checksum (`BmapFileChecksum`) is, as bmaptool 3.6
//! computes and checks it, the SHA-256 of the whole file with that
//! element's value replaced by as many ASCII `0`s: bmaptool finds the
//! first occurrence of the value in the file's bytes, zeroes it and hashes.

use std::fmt::Write as _;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use sha2::{Digest, Sha256};

use super::{hex, range_text, Bmap, BmapRange};
use crate::human::human_bytes;

/// Length of a SHA-256 in hex.
const SHA256_HEX: usize = 64;

/// What the elements said, before validation.
#[derive(Default)]
struct Fields {
    version: Option<String>,
    image_size: Option<u64>,
    block_size: Option<u64>,
    blocks_count: Option<u64>,
    mapped_blocks: Option<u64>,
    checksum_type: Option<String>,
    file_checksum: Option<String>,
    block_map: bool,
    ranges: Vec<BmapRange>,
}

/// Parses and checks a bmap file's bytes (see [`Bmap::read`]).
pub(super) fn parse(bytes: &[u8]) -> Result<Bmap, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| "not a bmap file: not UTF-8 text".to_string())?;
    let f = fields(text).map_err(|e| format!("not a bmap file: {e}"))?;
    let version = f.version.ok_or("not a bmap file: no <bmap version=...>")?;
    check_version(&version)?;
    let need = |v: Option<u64>, name: &str| v.ok_or(format!("not a bmap file: no <{name}>"));
    let image_size = need(f.image_size, "ImageSize")?;
    let block_size = need(f.block_size, "BlockSize")?;
    let kind = f
        .checksum_type
        .ok_or("not a bmap file: no <ChecksumType>")?;
    if kind != "sha256" {
        return Err(format!(
            "checksum type {kind:?} is not supported (only sha256, as bmap format 2.0 writes)"
        ));
    }
    let claimed = f
        .file_checksum
        .ok_or("not a bmap file: no <BmapFileChecksum>")?;
    check_file_checksum(bytes, &claimed)?;
    if !f.block_map {
        return Err("not a bmap file: no <BlockMap>".into());
    }
    let bmap = Bmap {
        image_size,
        block_size,
        ranges: f.ranges,
    };
    bmap.validate()?;
    if let Some(n) = f.blocks_count.filter(|&n| n != bmap.blocks_count()) {
        return Err(format!(
            "BlocksCount {n} does not match ImageSize {image_size} in blocks of {block_size} ({})",
            bmap.blocks_count()
        ));
    }
    if let Some(n) = f.mapped_blocks.filter(|&n| n != bmap.mapped_blocks()) {
        return Err(format!(
            "MappedBlocksCount {n} does not match the {} blocks of the BlockMap",
            bmap.mapped_blocks()
        ));
    }
    Ok(bmap)
}

/// Format 2.0, or 1.4, its identical twin (bmaptool released 2.0 as 1.4
/// first). Older 1.x files use SHA-1 or no checksums at all.
fn check_version(version: &str) -> Result<(), String> {
    let (major, minor) = version.split_once('.').unwrap_or((version, "0"));
    match (major.trim().parse::<u32>(), minor.trim().parse::<u32>()) {
        (Ok(2), Ok(_)) | (Ok(1), Ok(4)) => Ok(()),
        (Ok(1), Ok(_)) => Err(format!(
            "bmap format version {version} (SHA-1 or no checksums) is not supported; \
             only version 2.0 (sha256): recreate it with bmaptool create"
        )),
        (Ok(_), Ok(_)) => Err(format!(
            "bmap format version {version} is not supported (only 2.0)"
        )),
        _ => Err(format!("not a bmap file: version {version:?}")),
    }
}

/// Compares the claimed file checksum with the file's bytes hashed as
/// bmaptool does (the module docs).
fn check_file_checksum(bytes: &[u8], claimed: &str) -> Result<(), String> {
    if claimed.len() != SHA256_HEX || !claimed.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "BmapFileChecksum {claimed:?} is not a SHA-256 in hex"
        ));
    }
    let at = bytes
        .windows(SHA256_HEX)
        .position(|w| w == claimed.as_bytes())
        .expect("the value was read from these bytes");
    let mut zeroed = bytes.to_vec();
    zeroed[at..at + SHA256_HEX].fill(b'0');
    let actual = hex(&Sha256::digest(&zeroed));
    if !actual.eq_ignore_ascii_case(claimed) {
        return Err(format!(
            "the bmap file's own checksum does not match (the file says {claimed}, its content hashes to {actual}): the file is damaged or was edited"
        ));
    }
    Ok(())
}

/// Walks the XML and collects the elements a bmap has.
fn fields(text: &str) -> Result<Fields, String> {
    let mut reader = Reader::from_str(text);
    let mut f = Fields::default();
    let mut stack: Vec<String> = Vec::new();
    let mut content = String::new();
    let mut chksum: Option<String> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("{e} at byte {}", reader.error_position()))?;
        match event {
            Event::Start(e) => {
                let name = element_name(&e)?;
                match (stack.len(), name.as_str()) {
                    (0, "bmap") => f.version = attribute(&e, "version")?,
                    (0, other) => return Err(format!("root element <{other}>, not <bmap>")),
                    (_, "BlockMap") => f.block_map = true,
                    (_, "Range") => chksum = attribute(&e, "chksum")?,
                    _ => {}
                }
                stack.push(name);
                content.clear();
            }
            Event::Empty(e) if element_name(&e)? == "Range" => {
                return Err("an empty <Range/>".into());
            }
            Event::Text(t) => content.push_str(&t.decode().map_err(|e| e.to_string())?),
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                let value = content.trim();
                match name.as_str() {
                    "ImageSize" => f.image_size = Some(number(&name, value)?),
                    "BlockSize" => f.block_size = Some(number(&name, value)?),
                    "BlocksCount" => f.blocks_count = Some(number(&name, value)?),
                    "MappedBlocksCount" => f.mapped_blocks = Some(number(&name, value)?),
                    "ChecksumType" => f.checksum_type = Some(value.to_string()),
                    "BmapFileChecksum" => f.file_checksum = Some(value.to_string()),
                    "Range" => f.ranges.push(range(value, chksum.take())?),
                    _ => {}
                }
                content.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("the file ends inside <{open}>"));
    }
    Ok(f)
}

fn element_name(e: &BytesStart<'_>) -> Result<String, String> {
    std::str::from_utf8(e.name().as_ref())
        .map(str::to_string)
        .map_err(|e| e.to_string())
}

fn attribute(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
    match e.try_get_attribute(name).map_err(|e| e.to_string())? {
        Some(a) => Ok(Some(
            a.unescape_value().map_err(|e| e.to_string())?.into_owned(),
        )),
        None => Ok(None),
    }
}

fn number(name: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("<{name}> {value:?} is not a number"))
}

/// `first-last` or `first`, with its `chksum`.
fn range(value: &str, chksum: Option<String>) -> Result<BmapRange, String> {
    let bad = || format!("<Range> {value:?} is not a block or a block range");
    let (first, last) = match value.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (value, value),
    };
    let first: u64 = first.parse().map_err(|_| bad())?;
    let last: u64 = last.parse().map_err(|_| bad())?;
    // bmaptool create --no-checksum leaves the attribute out; such ranges
    // are copied unchecked, as bmaptool does.
    let sha256 = match chksum {
        None => None,
        Some(chksum) => Some(digest(&chksum).ok_or_else(|| {
            format!("<Range> {value}: chksum {chksum:?} is not a SHA-256 in hex")
        })?),
    };
    Ok(BmapRange {
        first,
        last,
        sha256,
    })
}

/// A SHA-256 from its hex text.
fn digest(text: &str) -> Option<[u8; 32]> {
    if text.len() != SHA256_HEX || !text.is_ascii() {
        return None;
    }
    let mut sha256 = [0u8; 32];
    for (i, b) in sha256.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(sha256)
}

/// The file's text: the elements bmaptool reads, its checksum filled in.
pub(super) fn render(b: &Bmap) -> String {
    let mapped = b.mapped_blocks();
    let percent = if b.blocks_count() == 0 {
        0.0
    } else {
        100.0 * mapped as f64 / b.blocks_count() as f64
    };
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        r#"<?xml version="1.0" ?>
<!-- A block map (bmap) of an image, written by sparsecp in bmaptool's
     format 2.0: the blocks of the image that hold data, each range with
     the SHA-256 of its bytes, for sparsecp copy or bmaptool copy. (No
     double hyphen may appear in an XML comment.) -->
<bmap version="2.0">
    <!-- Image size in bytes: {human_size} -->
    <ImageSize> {size} </ImageSize>

    <!-- Size of a block in bytes -->
    <BlockSize> {block} </BlockSize>

    <!-- Count of blocks in the image file -->
    <BlocksCount> {blocks} </BlocksCount>

    <!-- Count of mapped blocks: {human_mapped} or {percent:.1}% -->
    <MappedBlocksCount> {mapped} </MappedBlocksCount>

    <!-- Type of checksum used in this file -->
    <ChecksumType> sha256 </ChecksumType>

    <!-- The SHA-256 of this file, computed with this value as zeros -->
    <BmapFileChecksum> "#,
        human_size = human_bytes(b.image_size),
        size = b.image_size,
        block = b.block_size,
        blocks = b.blocks_count(),
        human_mapped = human_bytes(mapped * b.block_size),
    );
    let at = s.len();
    s.push_str(&"0".repeat(SHA256_HEX));
    s.push_str(
        " </BmapFileChecksum>\n\n    <!-- The mapped blocks: ranges first-last or single blocks -->\n    <BlockMap>\n",
    );
    for r in &b.ranges {
        let chksum = r
            .sha256
            .map_or_else(String::new, |d| format!(" chksum=\"{}\"", hex(&d)));
        let _ = writeln!(s, "        <Range{chksum}> {} </Range>", range_text(r));
    }
    s.push_str("    </BlockMap>\n</bmap>\n");
    let sum = hex(&Sha256::digest(s.as_bytes()));
    s.replace_range(at..at + SHA256_HEX, &sum);
    s
}
