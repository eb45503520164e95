//! Cutting a file into chunks.

use std::ops::Range;

/// The byte ranges that cover `offset..total` in pieces of at most `chunk_size`
/// bytes, in order, each byte exactly once. `chunk_size` 0 is treated as 1.
pub fn plan(offset: u64, total: u64, chunk_size: u64) -> impl Iterator<Item = Range<u64>> {
    let step = chunk_size.max(1);
    let mut start = offset.min(total);
    std::iter::from_fn(move || {
        if start >= total {
            return None;
        }
        let end = start.saturating_add(step).min(total);
        let range = start..end;
        start = end;
        Some(range)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_exactly_once() {
        for (offset, total, size) in
            [(0, 0, 5), (0, 10, 3), (4, 10, 3), (0, 10, 10), (0, 10, 100), (10, 10, 1), (0, 7, 0)]
        {
            let ranges: Vec<_> = plan(offset, total, size).collect();
            let mut expect = offset.min(total);
            for r in &ranges {
                assert_eq!(r.start, expect);
                assert!(r.end > r.start && r.end - r.start <= size.max(1));
                expect = r.end;
            }
            assert_eq!(expect, total.max(offset.min(total)));
        }
        assert_eq!(plan(0, u64::MAX, u64::MAX - 1).count(), 2);
    }
}
