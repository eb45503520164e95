//! Parallel uploads (tus concatenation): how a file is split into parts, and what
//! `localStorage` remembers so that a reload resumes every part.

use std::ops::Range;

/// The smallest part worth its own request stream: a smaller file uses fewer parts.
pub const MIN_PART: u64 = 1 << 20;

/// Splits `size` bytes into at most `wanted` parts of near-equal size, none under
/// [`MIN_PART`] (one part, the whole file, when it is too small to split).
pub fn plan(size: u64, wanted: usize) -> Vec<Range<u64>> {
    let n = (wanted.max(1) as u64).min((size / MIN_PART).max(1));
    (0..n).map(|i| i * size / n..(i + 1) * size / n).collect()
}

/// What is remembered for a file: its upload's URL, or its parts' URLs in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remembered {
    /// One upload (a whole file, or the final upload of a finished join).
    Whole(String),
    /// The partial uploads of a parallel upload not yet joined.
    Parts(Vec<String>),
}

const PARTS: &str = "parts ";

impl Remembered {
    /// Reads a stored value (URLs contain no spaces).
    pub fn decode(value: &str) -> Remembered {
        match value.strip_prefix(PARTS) {
            Some(urls) => Remembered::Parts(urls.split(' ').filter(|u| !u.is_empty()).map(str::to_string).collect()),
            None => Remembered::Whole(value.to_string()),
        }
    }

    /// The value to store.
    pub fn encode(&self) -> String {
        match self {
            Remembered::Whole(url) => url.clone(),
            Remembered::Parts(urls) => format!("{PARTS}{}", urls.join(" ")),
        }
    }

    /// Every upload URL it names.
    pub fn urls(&self) -> Vec<String> {
        match self {
            Remembered::Whole(url) => vec![url.clone()],
            Remembered::Parts(urls) => urls.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_file_in_order_and_are_never_tiny() {
        for (size, wanted) in
            [(0, 4), (1, 4), (MIN_PART * 4, 4), (MIN_PART * 4 + 3, 4), (MIN_PART * 3 - 1, 8), (10 * MIN_PART, 1)]
        {
            let parts = plan(size, wanted);
            assert!(!parts.is_empty() && parts.len() <= wanted.max(1));
            assert_eq!(parts.first().unwrap().start, 0);
            assert_eq!(parts.last().unwrap().end, size);
            assert!(parts.windows(2).all(|w| w[0].end == w[1].start));
            if parts.len() > 1 {
                assert!(parts.iter().all(|p| p.end - p.start >= MIN_PART), "{size} in {wanted}: {parts:?}");
            }
        }
        assert_eq!(plan(MIN_PART * 3 - 1, 8).len(), 2);
        assert_eq!(plan(MIN_PART - 1, 4), vec![0..MIN_PART - 1]);
    }

    #[test]
    fn remembered_round_trips() {
        let whole = Remembered::Whole("http://h/files/a".into());
        assert_eq!(Remembered::decode(&whole.encode()), whole);
        let parts = Remembered::Parts(vec!["http://h/files/a".into(), "http://h/files/b".into()]);
        assert_eq!(parts.encode(), "parts http://h/files/a http://h/files/b");
        assert_eq!(Remembered::decode(&parts.encode()), parts);
        assert_eq!(parts.urls().len(), 2);
    }
}
