//! `bin_extents`: which share of each bin is data, unwritten or shared.

use allocmap::{bin_extents, Bin, ExtentKind::*};

use crate::support::{extent, image, random_sparse, GIB, KIB, MIB};

fn data_shares(bins: &[Bin]) -> Vec<f64> {
    bins.iter().map(|bin| bin.data).collect()
}

#[test]
fn half_data_then_half_hole_splits_exactly() {
    let img = image("half.img", MIB, vec![extent(0, 512 * KIB, Data)]);
    assert_eq!(data_shares(&bin_extents(&img, 1)), [0.5]);
    assert_eq!(data_shares(&bin_extents(&img, 2)), [1.0, 0.0]);
    assert_eq!(data_shares(&bin_extents(&img, 4)), [1.0, 1.0, 0.0, 0.0]);

    // 1000 bins do not divide 1 MiB evenly, but bin 499 ends exactly at 512 KiB.
    let bins = bin_extents(&img, 1000);
    assert_eq!(bins.len(), 1000);
    assert!(
        bins[..500].iter().all(|b| b.data == 1.0),
        "first half is all data"
    );
    assert!(
        bins[500..].iter().all(|b| b.data == 0.0),
        "second half is all hole"
    );
    assert!(bins.iter().all(|b| b.unwritten == 0.0 && b.shared == 0.0));
}

#[test]
fn four_alternating_extents_average_to_half() {
    // Eight 128 KiB slots, data in slots 0, 2, 4 and 6.
    let slot = 128 * KIB;
    let extents = (0..4).map(|i| extent(2 * i * slot, slot, Data)).collect();
    let img = image("alternating.img", 8 * slot, extents);
    assert_eq!(
        data_shares(&bin_extents(&img, 8)),
        [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    );
    assert_eq!(
        data_shares(&bin_extents(&img, 16)),
        [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    );
    assert_eq!(data_shares(&bin_extents(&img, 4)), [0.5; 4]);
    assert_eq!(data_shares(&bin_extents(&img, 2)), [0.5; 2]);
    assert_eq!(data_shares(&bin_extents(&img, 1)), [0.5]);
}

#[test]
fn kinds_are_counted_separately() {
    let q = 256 * KIB;
    let img = image(
        "kinds.img",
        4 * q,
        vec![
            extent(0, q, Data),
            extent(q, q, Shared),
            extent(2 * q, q, Unwritten),
        ],
    );
    let whole = bin_extents(&img, 1)[0];
    assert_eq!(
        whole,
        Bin {
            data: 0.25,
            unwritten: 0.25,
            shared: 0.25
        }
    );
    assert_eq!(whole.allocated(), 0.75);
    assert_eq!(whole.hole(), 0.25);

    let quarters = bin_extents(&img, 4);
    let one_hot = |data, unwritten, shared| Bin {
        data,
        unwritten,
        shared,
    };
    assert_eq!(
        quarters,
        [
            one_hot(1.0, 0.0, 0.0),
            one_hot(0.0, 0.0, 1.0),
            one_hot(0.0, 1.0, 0.0),
            one_hot(0.0, 0.0, 0.0),
        ]
    );
}

#[test]
fn uneven_bins_split_an_extent_by_bytes() {
    // 1000 bytes in 3 bins: 0..333, 333..666, 666..1000.
    let img = image("uneven.img", 1000, vec![extent(100, 400, Data)]);
    assert_eq!(
        data_shares(&bin_extents(&img, 3)),
        [233.0 / 333.0, 167.0 / 333.0, 0.0]
    );
}

#[test]
fn extent_past_the_logical_size_is_clipped() {
    let img = image("short.img", 1000, vec![extent(900, 1100, Data)]);
    assert_eq!(data_shares(&bin_extents(&img, 2)), [0.0, 0.2]);
}

#[test]
fn more_bins_than_bytes_leaves_empty_bins_at_zero() {
    // 4 bytes in 8 bins: every other bin is zero bytes long.
    let img = image("tiny.img", 4, vec![extent(0, 2, Data)]);
    assert_eq!(
        data_shares(&bin_extents(&img, 8)),
        [0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    );
}

#[test]
fn degenerate_inputs_give_empty_or_zero_bins() {
    let img = image("half.img", MIB, vec![extent(0, 512 * KIB, Data)]);
    assert!(bin_extents(&img, 0).is_empty());

    let empty = image("empty.img", 0, vec![]);
    assert_eq!(bin_extents(&empty, 3), [Bin::default(); 3]);
}

#[test]
fn bins_account_for_every_extent_byte() {
    let img = random_sparse("random.img", 3 * GIB, 50_000, 7);
    let total: u64 = img.extents.iter().map(|e| e.length).sum();
    let bins = bin_extents(&img, 1000);
    let mut counted = 0.0;
    for (i, bin) in bins.iter().enumerate() {
        assert!((0.0..=1.0).contains(&bin.data), "bin {i}: {bin:?}");
        let len = (i as u64 + 1) * img.size / 1000 - i as u64 * img.size / 1000;
        counted += bin.data * len as f64;
    }
    let error = (counted - total as f64).abs() / total as f64;
    assert!(error < 1e-9, "bins hold {counted} bytes, extents {total}");
}

/// A streamed map of more extents than it keeps condenses them into cells,
/// yet every column's shares stay within one sixteenth (one drawn step) of
/// the exact ones, and no byte is lost.
#[test]
fn streamed_extents_condense_within_one_step_per_column() {
    // 40,000 extents of 4 KiB, the first half every 8 KiB, the rest every
    // 20 KiB, with a shared and an unwritten one in every hundred.
    let mut exact = Vec::new();
    let mut at = 0;
    for i in 0..40_000u64 {
        let kind = match i % 100 {
            7 => Shared,
            9 => Unwritten,
            _ => Data,
        };
        exact.push(extent(at, 4 * KIB, kind));
        at += if i < 20_000 { 8 * KIB } else { 20 * KIB };
    }
    let size = at + 3 * KIB;
    let streamed = allocmap::ImageMap::from_extents(
        "frag.img",
        size,
        0,
        exact.iter().map(|e| Ok::<_, ()>(*e)),
        1000,
    )
    .unwrap();
    assert!(streamed.extents.len() < exact.len() / 2, "condensed");
    let total = |extents: &[allocmap::MapExtent]| extents.iter().map(|e| e.length).sum::<u64>();
    assert_eq!(total(&streamed.extents), total(&exact));
    let exact = image("frag.img", size, exact);
    let (a, b) = (bin_extents(&exact, 1000), bin_extents(&streamed, 1000));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        for (p, q) in [
            (x.data, y.data),
            (x.shared, y.shared),
            (x.unwritten, y.unwritten),
        ] {
            assert!(
                (p - q).abs() <= 1.0 / 16.0 + 1e-9,
                "column {i}: {x:?} vs {y:?}"
            );
        }
    }
}
