//! Finding all-zero blocks fast: the check that turns runs of zeros into
//! holes sits on the hot path of every sparse copy and of `dig`.

/// Whether every byte of `buf` is zero.
///
/// Data blocks almost always have a non-zero byte near the start, so the
/// first 16 bytes are tested alone. The rest is folded 256 bytes at a time
/// with no early exit inside a stride: the compiler turns that into wide
/// vector ORs, an order of magnitude faster than a byte loop.
pub fn is_zero(buf: &[u8]) -> bool {
    let head = buf.len().min(16);
    if buf[..head].iter().any(|&b| b != 0) {
        return false;
    }
    let mut strides = buf.chunks_exact(256);
    for stride in &mut strides {
        let acc = stride.chunks_exact(8).fold(0u64, |acc, w| {
            acc | u64::from_ne_bytes(w.try_into().expect("8 bytes"))
        });
        if acc != 0 {
            return false;
        }
    }
    strides.remainder().iter().all(|&b| b == 0)
}

/// Data runs of `buf` at `block` granularity: `(start, len)` pairs of
/// adjacent non-zero blocks, in order. A trailing partial block counts as a
/// block of its own.
pub fn data_runs(buf: &[u8], block: usize, runs: &mut Vec<(usize, usize)>) {
    runs.clear();
    let mut start = None;
    let mut pos = 0;
    while pos < buf.len() {
        let end = (pos + block).min(buf.len());
        let zero = is_zero(&buf[pos..end]);
        match (zero, start) {
            (false, None) => start = Some(pos),
            (true, Some(s)) => {
                runs.push((s, pos - s));
                start = None;
            }
            _ => {}
        }
        pos = end;
    }
    if let Some(s) = start {
        runs.push((s, buf.len() - s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_non_zero_buffers_are_told_apart_at_every_position() {
        let mut buf = vec![0u8; 4099];
        assert!(is_zero(&buf));
        for i in [0, 1, 15, 16, 17, 4095, 4096, 4098] {
            buf[i] = 1;
            assert!(!is_zero(&buf), "byte {i}");
            buf[i] = 0;
        }
        assert!(is_zero(&[]));
    }

    #[test]
    fn data_runs_merge_adjacent_blocks_and_keep_a_partial_tail() {
        let mut buf = vec![0u8; 4 * 4096 + 100];
        buf[5000] = 1; // block 1
        buf[9000] = 1; // block 2
        buf[4 * 4096 + 99] = 7; // partial tail
        let mut runs = Vec::new();
        data_runs(&buf, 4096, &mut runs);
        assert_eq!(runs, vec![(4096, 8192), (16384, 100)]);
    }
}
