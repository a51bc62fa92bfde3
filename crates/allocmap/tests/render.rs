//! `render_svg`: structure, scale, fill, text, escaping, size and determinism.

use allocmap::{render_svg, ExtentKind::*, ImageMap, MapOptions};

use crate::support::{bars, dense, extent, image, parse, random_sparse, Element, GIB, KIB, MIB};

/// The installer's case: a sparse original, the filled `io.Copy` result.
fn installer_images() -> Vec<ImageMap> {
    let mut active = random_sparse("active.img", 3 * GIB, 2_000, 1);
    active.allocated = 17 * GIB / 10;
    let mut passive = dense("passive.img (iocopy)", 3 * GIB);
    passive.allocated = 31 * GIB / 10;
    vec![active, passive]
}

fn width(width_px: u32) -> MapOptions {
    MapOptions {
        width_px,
        ..MapOptions::default()
    }
}

/// The `rect`s of the fill layer `class` of one bar, as `(x, y, width, height)`.
fn layer(bar: &Element, class: &str) -> Vec<(u64, u64, u64, u64)> {
    bar.find("g", class)
        .iter()
        .flat_map(|g| g.elements())
        .map(|r| (r.num("x"), r.num("y"), r.num("width"), r.num("height")))
        .collect()
}

fn hole(bar: &Element) -> &Element {
    let holes = bar.find("rect", "hole");
    assert_eq!(holes.len(), 1, "one hole rect per bar");
    holes[0]
}

#[test]
fn renders_well_formed_svg_with_one_bar_per_image() {
    let images = installer_images();
    let svg = render_svg(&images, &MapOptions::default());
    let root = parse(&svg);
    assert_eq!(root.name, "svg");
    assert_eq!(root.attr("xmlns"), Some("http://www.w3.org/2000/svg"));
    let view_box = root.attr("viewBox").expect("viewBox");
    assert_eq!(
        view_box,
        format!("0 0 {} {}", root.num("width"), root.num("height"))
    );

    let bars = bars(&root);
    let labels: Vec<_> = bars.iter().map(|b| b.attr("data-label").unwrap()).collect();
    assert_eq!(labels, ["active.img", "passive.img (iocopy)"]);
    for (bar, image) in bars.iter().zip(&images) {
        assert_eq!(bar.num("data-size"), image.size);
        assert_eq!(bar.num("data-allocated"), image.allocated);
        let hover = bar.child_text("title").expect("a <title> per bar");
        assert!(hover.starts_with(&image.label), "hover text {hover:?}");
    }
}

#[test]
fn bars_share_one_scale_so_a_smaller_image_is_shorter() {
    let images = [dense("big.img", 3 * GIB), dense("small.img", GIB)];
    let root = parse(&render_svg(&images, &width(900)));
    let bars = bars(&root);
    let (big, small) = (hole(bars[0]), hole(bars[1]));
    assert_eq!(big.num("x"), small.num("x"), "bars start at the same x");
    assert_eq!(big.num("width"), 900);
    assert_eq!(small.num("width"), 300);
    assert!(small.num("y") > big.num("y"), "bars are stacked in order");
}

#[test]
fn a_dense_image_is_one_solid_rect() {
    let root = parse(&render_svg(&[dense("dense.img", 3 * GIB)], &width(1000)));
    let bar = bars(&root)[0];
    let hole = hole(bar);
    let (x, y, h) = (hole.num("x"), hole.num("y"), hole.num("height"));
    assert_eq!(layer(bar, "data"), [(x, y, 1000, h)]);
    assert!(layer(bar, "shared").is_empty() && layer(bar, "unwritten").is_empty());
}

#[test]
fn columns_fill_to_their_allocated_share() {
    // First half data: the left 500 columns full, the rest empty.
    let half = image("half.img", MIB, vec![extent(0, 512 * KIB, Data)]);
    // Data in every other 4 KiB block: every column half full, merged into one rect.
    let striped = image(
        "striped.img",
        MIB,
        (0..128)
            .map(|i| extent(i * 8 * KIB, 4 * KIB, Data))
            .collect(),
    );
    let root = parse(&render_svg(&[half, striped], &width(128)));
    let bars = bars(&root);

    let hole = hole(bars[0]);
    let (x, y, h) = (hole.num("x"), hole.num("y"), hole.num("height"));
    assert_eq!(layer(bars[0], "data"), [(x, y, 64, h)]);

    let hole = self::hole(bars[1]);
    let (x, y, h) = (hole.num("x"), hole.num("y"), hole.num("height"));
    assert_eq!(layer(bars[1], "data"), [(x, y + h / 2, 128, h / 2)]);
}

#[test]
fn kinds_stack_data_then_shared_then_unwritten() {
    let q = 256 * KIB;
    let mixed = image(
        "mixed.img",
        4 * q,
        vec![
            extent(0, q / 2, Data),
            extent(q / 2, q / 4, Shared),
            extent(3 * q / 4, q / 4, Unwritten),
        ],
    );
    // One column over the first quarter; the rest is hole.
    let root = parse(&render_svg(&[mixed], &width(4)));
    let bar = bars(&root)[0];
    let hole = hole(bar);
    let (x, y, h) = (hole.num("x"), hole.num("y"), hole.num("height"));
    assert_eq!(layer(bar, "data"), [(x, y + h / 2, 1, h / 2)]);
    assert_eq!(layer(bar, "shared"), [(x, y + h / 4, 1, h / 4)]);
    assert_eq!(layer(bar, "unwritten"), [(x, y, 1, h / 4)]);
}

#[test]
fn text_shows_sizes_percent_and_ratio_to_the_reference() {
    let root = parse(&render_svg(&installer_images(), &MapOptions::default()));
    let bars = bars(&root);
    let line = |i: usize| bars[i].child_text("text").unwrap();
    assert_eq!(
        line(0),
        "active.img3.0G logical · 1.7G allocated (57%)×1.00"
    );
    assert_eq!(
        line(1),
        "passive.img (iocopy)3.0G logical · 3.1G allocated (103%)×1.82"
    );
    let hover = bars[1].child_text("title").unwrap();
    assert_eq!(
        hover,
        "passive.img (iocopy): 3.0G logical · 3.1G allocated (103%) · ×1.82 vs active.img"
    );

    let by_passive = MapOptions {
        reference: Some(1),
        ..MapOptions::default()
    };
    let root = parse(&render_svg(&installer_images(), &by_passive));
    let line = crate::support::bars(&root)[0].child_text("text").unwrap();
    assert!(line.ends_with("×0.55"), "{line}");
}

#[test]
fn ratio_is_left_out_without_a_usable_reference() {
    let unallocated = image("unallocated.img", GIB, vec![]);
    for (images, reference) in [
        (installer_images(), None),
        (installer_images(), Some(2)),
        (vec![unallocated, dense("dense.img", GIB)], Some(0)),
    ] {
        let opts = MapOptions {
            reference,
            ..MapOptions::default()
        };
        let svg = render_svg(&images, &opts);
        parse(&svg);
        assert!(!svg.contains('×'), "reference {reference:?} gave a ratio");
    }
}

#[test]
fn labels_and_title_with_markup_characters_are_escaped() {
    let labels = [
        r#"a&b <c> "d" 'e'.img"#,
        "tab\tand\nnewline.img",
        "control\u{1}char.img",
    ];
    let images: Vec<_> = labels.iter().map(|l| dense(l, MIB)).collect();
    let opts = MapOptions {
        title: Some("</svg> & <script>".to_string()),
        ..MapOptions::default()
    };
    let svg = render_svg(&images, &opts);
    assert!(!svg.contains("a&b") && !svg.contains("<c>") && !svg.contains("<script>"));

    let root = parse(&svg);
    assert_eq!(root.child_text("title").unwrap(), "</svg> & <script>");
    let bars = bars(&root);
    assert_eq!(bars.len(), 3);
    assert_eq!(bars[0].attr("data-label"), Some(labels[0]));
    assert!(bars[0].child_text("text").unwrap().starts_with(labels[0]));
    assert!(bars[0].child_text("title").unwrap().starts_with(labels[0]));
    assert_eq!(bars[1].attr("data-label"), Some(labels[1]));
    // XML 1.0 cannot carry U+0001 at all, not even as a reference.
    assert_eq!(bars[2].attr("data-label"), Some("control\u{fffd}char.img"));
}

#[test]
fn fifty_thousand_extents_render_under_200_kib() {
    let sparse = random_sparse("active.img", 3 * GIB, 50_000, 42);
    assert!(sparse.extents.len() >= 49_000, "{}", sparse.extents.len());
    let images = [sparse, dense("passive.img (iocopy)", 3 * GIB)];
    let svg = render_svg(&images, &MapOptions::default());
    eprintln!(
        "3 GiB, {} extents + dense copy: SVG is {} bytes",
        images[0].extents.len(),
        svg.len()
    );
    assert!(svg.len() < 200 * 1024, "SVG is {} bytes", svg.len());
    assert_eq!(bars(&parse(&svg)).len(), 2);
}

#[test]
fn same_input_gives_the_same_bytes() {
    let images = installer_images();
    let opts = MapOptions {
        title: Some("installer".to_string()),
        ..MapOptions::default()
    };
    assert_eq!(render_svg(&images, &opts), render_svg(&images, &opts));
}

#[test]
fn empty_inputs_still_give_a_valid_document() {
    let root = parse(&render_svg(&[], &MapOptions::default()));
    assert!(bars(&root).is_empty());

    let zero = image("zero.img", 0, vec![]);
    let root = parse(&render_svg(&[zero], &width(0)));
    let bars = bars(&root);
    assert_eq!(bars.len(), 1);
    assert!(bars[0].find("rect", "hole").is_empty(), "nothing to draw");
    assert_eq!(
        bars[0].child_text("text").unwrap(),
        "zero.img0 logical · 0 allocated"
    );
}

#[test]
fn every_column_different_in_every_layer_stays_under_200_kib() {
    // The worst case for merging: 1000 columns, each with its own mix of all three
    // kinds, so no two neighbouring columns share a rect in any layer.
    let size = 3 * GIB;
    let column = size / 1000;
    let mut extents = Vec::new();
    for i in 0..1000 {
        let start = i * column;
        let data = column * (1 + i % 7) / 16;
        let shared = column * (1 + i % 5) / 16;
        let unwritten = column * (1 + i % 3) / 16;
        extents.push(extent(start, data, Data));
        extents.push(extent(start + data, shared, Shared));
        extents.push(extent(start + data + shared, unwritten, Unwritten));
    }
    let svg = render_svg(&[image("worst.img", size, extents)], &MapOptions::default());
    let root = parse(&svg);
    let bar = bars(&root)[0];
    let rects: usize = ["data", "shared", "unwritten"]
        .iter()
        .map(|class| layer(bar, class).len())
        .sum();
    eprintln!("worst case: {rects} rects, SVG is {} bytes", svg.len());
    assert!(
        rects > 2500,
        "columns should not merge here, got {rects} rects"
    );
    assert!(svg.len() < 200 * 1024, "SVG is {} bytes", svg.len());
}
