//! Binning extents into pixel columns, and quantizing columns so that runs merge.

use crate::{ExtentKind, ImageMap};

/// What share of one bin's bytes is allocated, by kind.
///
/// Each field is a fraction in `0.0..=1.0` of the bin's bytes; whatever the three
/// leave is hole. For well-formed input (non-overlapping extents) they add up to at
/// most 1.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bin {
    /// Share of the bin that is [`ExtentKind::Data`].
    pub data: f64,
    /// Share of the bin that is [`ExtentKind::Unwritten`].
    pub unwritten: f64,
    /// Share of the bin that is [`ExtentKind::Shared`].
    pub shared: f64,
}

impl Bin {
    /// Share of the bin that is allocated in any way.
    pub fn allocated(&self) -> f64 {
        (self.data + self.unwritten + self.shared).min(1.0)
    }

    /// Share of the bin that is a hole.
    pub fn hole(&self) -> f64 {
        1.0 - self.allocated()
    }
}

/// Splits `image` into `bins` equal bins along its logical size and reports, for each,
/// the share of its bytes covered by each kind of extent.
///
/// Bin `i` covers bytes `floor(i * size / bins) .. floor((i + 1) * size / bins)`, so
/// bins differ in length by at most one byte and together cover the file exactly; the
/// fractions are exact ratios of byte counts. Extent bytes past `size` are ignored.
/// A bin of zero bytes (when `bins > size`) reports all zeros, and so does every bin
/// of an empty image. `bins == 0` gives an empty vector.
///
/// Runs in `O(extents + bins)` for sorted, non-overlapping extents.
pub fn bin_extents(image: &ImageMap, bins: u32) -> Vec<Bin> {
    if bins == 0 {
        return Vec::new();
    }
    let bounds = Bounds {
        size: image.size,
        bins,
    };
    // Exact byte counts first, fractions at the end, so that a bin made of several
    // extents is not the sum of rounded fractions.
    let mut bytes = vec![[0u64; 3]; bins as usize];
    for extent in &image.extents {
        let start = extent.offset;
        let end = extent.end().min(image.size);
        if start >= end {
            continue;
        }
        let slot = match extent.kind {
            ExtentKind::Data => 0,
            ExtentKind::Unwritten => 1,
            ExtentKind::Shared => 2,
        };
        let mut i = bounds.bin_of(start);
        while i < bins && bounds.start(i) < end {
            let overlap = end.min(bounds.start(i + 1)) - start.max(bounds.start(i));
            bytes[i as usize][slot] += overlap;
            i += 1;
        }
    }
    bytes
        .iter()
        .enumerate()
        .map(|(i, counts)| {
            let i = i as u32;
            let len = bounds.start(i + 1) - bounds.start(i);
            let share = |n: u64| {
                if len == 0 {
                    0.0
                } else {
                    (n as f64 / len as f64).min(1.0)
                }
            };
            Bin {
                data: share(counts[0]),
                unwritten: share(counts[1]),
                shared: share(counts[2]),
            }
        })
        .collect()
}

/// Bin boundaries of a file of `size` bytes cut into `bins` bins.
struct Bounds {
    size: u64,
    bins: u32,
}

impl Bounds {
    /// First byte of bin `i` (`i == bins` gives `size`).
    fn start(&self, i: u32) -> u64 {
        (u128::from(i) * u128::from(self.size) / u128::from(self.bins)) as u64
    }

    /// The bin holding byte `offset < size`: the largest `i` with `start(i) <= offset`,
    /// which is `ceil((offset + 1) * bins / size) - 1`.
    fn bin_of(&self, offset: u64) -> u32 {
        let num = (u128::from(offset) + 1) * u128::from(self.bins);
        let size = u128::from(self.size);
        (num.div_ceil(size) - 1) as u32
    }
}

/// A bin's allocation in whole steps of `1 / levels`, in drawing order from the bottom
/// of the bar: data, then shared, then unwritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Steps {
    pub(crate) data: u32,
    pub(crate) shared: u32,
    pub(crate) unwritten: u32,
}

impl Steps {
    /// Quantizes a bin to `levels` steps (`levels >= 3`).
    ///
    /// Each share rounds to the nearest step, except that a non-zero share keeps at
    /// least one step: a column holding a single 4 KiB block must not look like a hole.
    /// If rounding overshoots the full height, the largest share gives way.
    pub(crate) fn quantize(bin: &Bin, levels: u32) -> Steps {
        let step = |share: f64| {
            if share <= 0.0 {
                0
            } else {
                ((share * f64::from(levels)).round() as u32).clamp(1, levels)
            }
        };
        let mut steps = [step(bin.data), step(bin.shared), step(bin.unwritten)];
        while steps.iter().sum::<u32>() > levels {
            let largest = (0..3).fold(0, |best, k| if steps[k] > steps[best] { k } else { best });
            steps[largest] -= 1;
        }
        Steps {
            data: steps[0],
            shared: steps[1],
            unwritten: steps[2],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(size: u64, bins: u32) -> Bounds {
        Bounds { size, bins }
    }

    #[test]
    fn bin_of_agrees_with_bin_starts_for_uneven_splits() {
        for (size, bins) in [(3, 2), (1000, 3), (7, 7), (5, 9), (1 << 20, 1000)] {
            let b = bounds(size, bins);
            for offset in 0..size.min(5000) {
                let i = b.bin_of(offset);
                assert!(i < bins, "size {size} bins {bins} offset {offset}");
                assert!(b.start(i) <= offset && offset < b.start(i + 1));
            }
        }
    }

    #[test]
    fn quantize_rounds_but_keeps_tiny_shares_visible() {
        let bin = |data, shared, unwritten| Bin {
            data,
            unwritten,
            shared,
        };
        let q = |b: Bin| {
            let s = Steps::quantize(&b, 16);
            [s.data, s.shared, s.unwritten]
        };
        assert_eq!(q(bin(0.0, 0.0, 0.0)), [0, 0, 0]);
        assert_eq!(q(bin(1.0, 0.0, 0.0)), [16, 0, 0]);
        assert_eq!(q(bin(0.5, 0.0, 0.0)), [8, 0, 0]);
        assert_eq!(q(bin(0.0001, 0.0, 0.0)), [1, 0, 0]);
        assert_eq!(q(bin(0.99, 0.0, 0.0)), [16, 0, 0]);
        // 0.47 + 0.47 + 0.06 rounds to 8 + 8 + 1 = 17 steps; the first largest yields.
        assert_eq!(q(bin(0.47, 0.47, 0.06)), [7, 8, 1]);
        assert_eq!(q(bin(0.9999, 0.0, 0.0001)), [15, 0, 1]);
    }
}
