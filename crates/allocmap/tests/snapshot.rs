//! The complete SVG of a small case, so that any change to the drawing is reviewed.

use allocmap::{render_svg, ExtentKind::*, MapOptions};

use crate::support::{dense, extent, image, KIB, MIB};

#[test]
fn two_small_images_snapshot() {
    // 1 MiB with four 128 KiB data extents, one shared and one unwritten extent, and
    // its filled copy; 64 px wide, so each column is 16 KiB.
    let slot = 128 * KIB;
    let mut extents: Vec<_> = (0..4).map(|i| extent(2 * i * slot, slot, Data)).collect();
    extents[2].kind = Shared;
    extents.push(extent(7 * slot + slot / 2, slot / 4, Unwritten));
    let active = image("active.img", MIB, extents);
    let passive = dense("passive.img (iocopy)", MIB);
    let opts = MapOptions {
        width_px: 64,
        title: Some("active.img → passive.img".to_string()),
        reference: Some(0),
    };
    insta::assert_snapshot!("two_small_images", render_svg(&[active, passive], &opts));
}
