//! Renders the installer's situation as an SVG: a 3 GiB sparse `active.img`, the copy
//! `io.Copy` makes of it (every hole written out), and the copy sparsecp makes.
//!
//! ```text
//! cargo run -p allocmap --example demo -- /tmp/allocmap-demo.svg
//! ```
//!
//! The extents are synthetic but shaped like a used ext4 image: dense metadata at the
//! start, files scattered with denser and sparser regions, about 55% allocated.

use std::{env, fs, process::ExitCode};

use allocmap::{human_bytes, render_svg, ExtentKind, ImageMap, MapExtent, MapOptions};

const GIB: u64 = 1 << 30;
const BLOCK: u64 = 4096;

fn main() -> ExitCode {
    let Some(path) = env::args_os().nth(1) else {
        eprintln!("usage: demo OUTPUT.svg");
        return ExitCode::FAILURE;
    };
    let active = sparse_active_image(3 * GIB);
    let filled = ImageMap {
        label: "passive.img (io.Copy)".to_string(),
        size: active.size,
        allocated: active.size,
        extents: vec![MapExtent {
            offset: 0,
            length: active.size,
            kind: ExtentKind::Data,
        }],
    };
    let sparse_copy = ImageMap {
        label: "passive.img (sparsecp)".to_string(),
        ..active.clone()
    };
    let options = MapOptions {
        title: Some("active.img copied to passive.img".to_string()),
        ..MapOptions::default()
    };
    let svg = render_svg(&[active.clone(), filled, sparse_copy], &options);
    if let Err(err) = fs::write(&path, &svg) {
        eprintln!("cannot write {}: {err}", path.to_string_lossy());
        return ExitCode::FAILURE;
    }
    println!(
        "{}: {} extents, {} of {} allocated; SVG is {} bytes",
        path.to_string_lossy(),
        active.extents.len(),
        human_bytes(active.allocated),
        human_bytes(active.size),
        svg.len()
    );
    ExitCode::SUCCESS
}

/// A sparse image of `size` bytes whose allocation density drifts along the file.
fn sparse_active_image(size: u64) -> ImageMap {
    let mut rng = SplitMix64(0x5eed_a11c_0ca7_e000);
    let mut extents = vec![MapExtent {
        offset: 0,
        length: 64 << 20,
        kind: ExtentKind::Data,
    }];
    let mut offset = 64 << 20;
    while offset < size {
        // Density between roughly 20% and 90%, changing slowly with the offset, so the
        // picture has regions a reviewer can point at.
        let phase = offset as f64 / size as f64 * std::f64::consts::TAU * 2.5;
        let density = 0.50 + 0.35 * phase.sin();
        // Log-uniform run lengths from 4 KiB to 16 MiB: many small files and a few
        // large ones, as on a real file system.
        let data = blocks(BLOCK as f64 * 2f64.powf(12.0 * rng.unit()));
        let hole = blocks(data as f64 * (1.0 - density) / density * 2.0 * rng.unit());
        let start = offset + hole;
        if start >= size {
            break;
        }
        let length = data.min(size - start);
        extents.push(MapExtent {
            offset: start,
            length,
            kind: ExtentKind::Data,
        });
        offset = start + length;
    }
    let allocated = extents.iter().map(|e| e.length).sum();
    ImageMap {
        label: "active.img".to_string(),
        size,
        allocated,
        extents,
    }
}

/// `bytes` rounded down to whole blocks.
fn blocks(bytes: f64) -> u64 {
    bytes as u64 / BLOCK * BLOCK
}

/// A tiny deterministic generator, so the demo draws the same picture every time.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
