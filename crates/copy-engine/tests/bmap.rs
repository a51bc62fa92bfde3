use copy_engine::bmap::BMAP_BLOCK_SIZE;
use copy_engine::plan::{self, Destination, FsFacts};
use copy_engine::{Bmap, BmapRange, CopyOptions, NoProgress, ReflinkMode};

/// A bmap of a 10-block image whose last block holds 1000 bytes.
fn sample() -> Bmap {
    let range = |first, last, fill| BmapRange {
        first,
        last,
        sha256: (fill > 0).then_some([fill; 32]),
    };
    Bmap {
        image_size: 9 * BMAP_BLOCK_SIZE + 1000,
        block_size: BMAP_BLOCK_SIZE,
        ranges: vec![range(0, 1, 1), range(4, 4, 2), range(7, 9, 0)],
    }
}

/// `to_xml` of `bmap`, with one range's text replaced (the file checksum
/// is recomputed, so only the ranges' validation can refuse it).
fn with_range(bmap: &Bmap, index: usize, first: u64, last: u64) -> String {
    let mut b = bmap.clone();
    b.ranges[index].first = first;
    b.ranges[index].last = last;
    b.to_xml()
}

#[test]
fn written_bmaps_parse_back_equal() {
    let b = sample();
    let text = b.to_xml();
    assert_eq!(Bmap::parse(text.as_bytes()).unwrap(), b);
    assert!(text.contains("<Range chksum=\"0202"), "{text}");
    assert!(text.contains("> 4 </Range>") && text.contains("<Range> 7-9 </Range>"));
    assert!(
        !text.contains("<!--")
            || !text
                .split("<!--")
                .skip(1)
                .any(|c| { c.split("-->").next().unwrap().contains("--") }),
        "no double hyphen inside a comment (bmaptool's parser refuses it)"
    );
    assert_eq!(b.byte_range(&b.ranges[2]), (7 * 4096, 2 * 4096 + 1000));
}

#[test]
fn ranges_out_of_order_overlapping_or_outside_the_image_are_refused() {
    let b = sample();
    let cases = [
        (with_range(&b, 1, 1, 4), "overlaps or precedes"),
        (with_range(&b, 1, 5, 4), "runs backwards"),
        (with_range(&b, 2, 7, 10), "beyond the image's 10 blocks"),
    ];
    for (text, expected) in cases {
        let err = Bmap::parse(text.as_bytes()).unwrap_err();
        assert!(err.contains(expected), "{expected:?} in {err:?}");
    }
}

#[test]
fn other_versions_checksum_types_and_a_damaged_file_are_refused() {
    let text = sample().to_xml();
    let sha1 = text.replace("<ChecksumType> sha256 ", "<ChecksumType> sha1 ");
    let err = Bmap::parse(sha1.as_bytes()).unwrap_err();
    assert!(
        err.contains("checksum type \"sha1\" is not supported"),
        "{err}"
    );
    let v13 = text.replace("version=\"2.0\"", "version=\"1.3\"");
    let err = Bmap::parse(v13.as_bytes()).unwrap_err();
    assert!(
        err.contains("version 1.3") && err.contains("not supported"),
        "{err}"
    );
    let v3 = text.replace("version=\"2.0\"", "version=\"3.0\"");
    assert!(Bmap::parse(v3.as_bytes())
        .unwrap_err()
        .contains("version 3.0"));
    let edited = text.replace("<ImageSize> 37864 ", "<ImageSize> 37865 ");
    assert_ne!(edited, text);
    let err = Bmap::parse(edited.as_bytes()).unwrap_err();
    assert!(err.contains("own checksum does not match"), "{err}");
    let cut = &text[..text.find("</BlockMap>").unwrap()];
    let err = Bmap::parse(cut.as_bytes()).unwrap_err();
    assert!(err.starts_with("not a bmap file"), "{err}");
}

#[test]
fn the_plan_of_a_bmap_reads_exactly_its_ranges() {
    let b = sample();
    let facts = FsFacts {
        free_bytes: 1 << 40,
        block_size: 4096,
        copy_file_range_pays: true,
    };
    let opts = CopyOptions {
        reflink: ReflinkMode::Never,
        ..CopyOptions::auto()
    };
    let ranges = plan::Ranges::Listed(b.ranges.iter().map(|r| b.byte_range(r)).collect());
    let layout = b.layout("img".as_ref());
    let new_file = plan::plan(&layout, &Destination::NewFile(facts), &opts);
    assert_eq!(new_file.ranges, ranges, "{new_file}");
    assert_eq!(new_file.space_needed, Some(6 * 4096));
    let in_place = plan::plan(&layout, &Destination::InPlace, &opts);
    assert_eq!(in_place.ranges, ranges, "{in_place}");
}

#[test]
fn created_bmaps_map_allocated_blocks_and_hash_them() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(3 << 20).unwrap();
    f.write_all_at(&[7u8; 5000], 1 << 20).unwrap();
    f.write_all_at(&[9u8; 10], (3 << 20) - 10).unwrap();
    let b = Bmap::create(&path, BMAP_BLOCK_SIZE, &Default::default(), &NoProgress).unwrap();
    assert_eq!(b.image_size, 3 << 20);
    let first = b.ranges.first().unwrap();
    assert_eq!((first.first, first.last), (256, 257), "{b:?}");
    let mut block = vec![0u8; 8192];
    block[..5000].fill(7);
    use sha2::Digest;
    assert_eq!(
        first.sha256,
        Some(<[u8; 32]>::from(sha2::Sha256::digest(&block)))
    );
    assert_eq!(b.ranges.last().unwrap().last, b.blocks_count() - 1);
}
