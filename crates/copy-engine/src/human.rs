//! Byte counts the way `du -h` prints them: the one style every report of
//! this workspace uses (copy, dig, verify and inspect reports, the
//! allocation maps, the benchmark and scenario tables).

/// Formats a byte count the way GNU `du -h` does, so numbers in pictures match what
/// reviewers see in a terminal.
///
/// - Powers of 1024 with the suffixes `K M G T P E`; below 1024 the plain number
///   without a suffix (`0`, `512`, `1023`).
/// - Values under 10 in their unit get one decimal (`4.0K`, `1.7G`), the others none
///   (`12M`, `512M`).
/// - Rounding is always **up** (GNU's `human_ceiling`, du's default), to the shown
///   precision: 1025 bytes is `1.1K`, 1.7 GiB plus one byte is `1.8G`. A value that
///   rounds up to 10 drops its decimal (`10K` for 10239 bytes), and one that rounds up
///   to 1024 moves to the next unit (`1.0M` for 1048575 bytes).
///
/// ```
/// use copy_engine::human_bytes;
/// assert_eq!(human_bytes(0), "0");
/// assert_eq!(human_bytes(4096), "4.0K");
/// assert_eq!(human_bytes(3 << 30), "3.0G");
/// assert_eq!(human_bytes(512 << 20), "512M");
/// ```
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [char; 6] = ['K', 'M', 'G', 'T', 'P', 'E'];
    if bytes < 1024 {
        return bytes.to_string();
    }
    let bytes = u128::from(bytes);
    // Largest unit that fits at least once; u64 tops out at 16E, so E always fits.
    let mut exp = 1;
    while exp < UNITS.len() && bytes >= 1024u128.pow(exp as u32 + 1) {
        exp += 1;
    }
    let unit = 1024u128.pow(exp as u32);
    if bytes < 10 * unit {
        let tenths = (bytes * 10).div_ceil(unit);
        if tenths < 100 {
            return format!("{}.{}{}", tenths / 10, tenths % 10, UNITS[exp - 1]);
        }
        // Rounded up to exactly 10: printed as an integer, like du.
        return format!("10{}", UNITS[exp - 1]);
    }
    let whole = bytes.div_ceil(unit);
    if whole == 1024 && exp < UNITS.len() {
        return format!("1.0{}", UNITS[exp]);
    }
    format!("{whole}{}", UNITS[exp - 1])
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn rounds_up_like_du_at_every_boundary() {
        const K: u64 = 1024;
        const M: u64 = K * K;
        const G: u64 = K * M;
        let cases = [
            (0, "0"),
            (1, "1"),
            (1023, "1023"),
            (K, "1.0K"),
            (K + 1, "1.1K"),
            (4 * K, "4.0K"),
            (10 * K - 1, "10K"),
            (10 * K, "10K"),
            (10 * K + 1, "11K"),
            (M - 1, "1.0M"),
            (M, "1.0M"),
            (12 * M, "12M"),
            (512 * M, "512M"),
            (G - 1, "1.0G"),
            (17 * G / 10, "1.7G"),
            (17 * G / 10 + 1, "1.8G"),
            (3 * G, "3.0G"),
            (31 * G / 10, "3.1G"),
            (1024 * G, "1.0T"),
            (u64::MAX, "16E"),
        ];
        for (bytes, want) in cases {
            assert_eq!(human_bytes(bytes), want, "human_bytes({bytes})");
        }
    }
}
