use crate::support::{allocated, code, s, sparse_file, sparsecp, stderr, stdout};

const MIB: u64 = 1 << 20;

#[test]
fn inspect_json_lists_size_allocation_and_extents() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("img");
    sparse_file(&f, 16 * MIB, &[(4 * MIB, MIB), (12 * MIB, 4096)]);
    let out = sparsecp(&["inspect", "--json", s(&f)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["path"], s(&f));
    assert_eq!(v["size"], 16 * MIB);
    assert_eq!(v["allocated"], allocated(&f));
    assert_eq!(
        v["extents"],
        serde_json::json!([{"offset": 4 * MIB, "length": MIB}, {"offset": 12 * MIB, "length": 4096}])
    );
    assert_eq!(v["hole_bytes"], 16 * MIB - MIB - 4096);
    // Several files give an array.
    let out = sparsecp(&["inspect", "--json", s(&f), s(&f)]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
}

#[test]
fn inspect_text_and_map() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("img");
    sparse_file(&f, 8 * MIB, &[(0, 4096)]);
    let svg = dir.path().join("map.svg");
    let out = sparsecp(&["inspect", "--map", s(&svg), s(&f)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("size       8.0M (8388608 bytes)"), "{text}");
    assert!(text.contains("data       4.0K in 1 extents"), "{text}");
    let svg = std::fs::read_to_string(svg).unwrap();
    let mut reader = quick_xml::Reader::from_str(&svg);
    let mut bars = 0;
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) if e.name().as_ref() == b"g" => {
                bars += e
                    .attributes()
                    .flatten()
                    .any(|a| a.key.as_ref() == b"class" && a.value.as_ref() == b"image")
                    as usize;
            }
            _ => {}
        }
    }
    assert_eq!(bars, 1, "one bar per image");
}

#[test]
fn dig_reclaims_zero_blocks_and_verify_judges_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dense) = (dir.path().join("active"), dir.path().join("passive"));
    sparse_file(&src, 32 * MIB, &[(MIB, 2 * MIB)]);
    assert_eq!(
        code(&sparsecp(&[
            "copy",
            "-q",
            "--sparse",
            "never",
            s(&src),
            s(&dense)
        ])),
        0
    );
    // A dense copy fails verify (allocation), with the figures, exit 1.
    let out = sparsecp(&["verify", s(&src), s(&dense)]);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("FAILED") && stdout(&out).contains("32M"),
        "{}",
        stdout(&out)
    );
    let out = sparsecp(&["dig", "--json", s(&dense)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["allocated_after"], allocated(&dense));
    assert_eq!(allocated(&dense), allocated(&src));
    let out = sparsecp(&["verify", s(&src), s(&dense)]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    // Different content is a failed verdict naming the offset.
    sparse_file(&dense, 32 * MIB, &[(MIB, 2 * MIB), (20 * MIB, 1)]);
    let out = sparsecp(&["verify", "--max-ratio", "2", s(&src), s(&dense)]);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains(&format!("content differs at offset {}", 20 * MIB)),
        "{}",
        stdout(&out)
    );
}
