//! Human-friendly sizes and durations in policy files.
//!
//! A size is an integer number of bytes or a string such as `"4 GiB"` or
//! `"500 MB"` (parsed by `bytesize`: binary and decimal units). A duration is
//! an integer number of seconds or a string such as `"24h"` or `"7days"`
//! (parsed by `humantime`).

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// A byte count read from a number or a size string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

/// A duration read from a number of seconds or a duration string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a byte count or a size such as \"4 GiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v).map(Size).map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Size, E> {
                Err(E::custom("a size must be a whole number of bytes or a string such as \"1.5 GiB\""))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of seconds or a duration such as \"24h\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Span, E> {
                Ok(Span(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Span, E> {
                u64::try_from(v)
                    .map(|s| Span(Duration::from_secs(s)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
                humantime::parse_duration(v.trim()).map(Span).map_err(|e| E::custom(format!("bad duration {v:?}: {e}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses `"4 GiB"`, `"500MB"`, `"1024"`; refuses negatives and overflow.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("bad size {text:?}: a size cannot be negative"));
    }
    text.parse::<bytesize::ByteSize>().map(|b| b.as_u64()).map_err(|e| format!("bad size {text:?}: {e}"))
}

/// Parses `"24h"`, `"90s"`, `"500ms"` (humantime syntax).
pub fn parse_span(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("bad duration {text:?}: {e}"))
}

/// Formats a byte count for people: `"4.0 GiB"`, `"512 B"`.
pub fn format_size(bytes: u64) -> String {
    bytesize::ByteSize(bytes).to_string()
}

/// Formats a duration for people and policy files: `"1day"`, `"30m"`.
pub fn format_span(span: Duration) -> String {
    humantime::format_duration(span).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_from_strings() {
        assert_eq!(parse_size("4 GiB"), Ok(4 << 30));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("500 MB"), Ok(500_000_000));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("-1 GiB").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn sizes_and_spans_deserialize_from_numbers_or_strings() {
        let s: Size = serde_json::from_str("123").unwrap();
        assert_eq!(s, Size(123));
        let s: Size = serde_json::from_str("\"1 KiB\"").unwrap();
        assert_eq!(s, Size(1024));
        assert!(serde_json::from_str::<Size>("-5").is_err());
        assert!(serde_json::from_str::<Size>("1.5").is_err());
        let d: Span = serde_json::from_str("\"24h\"").unwrap();
        assert_eq!(d, Span(Duration::from_secs(86_400)));
        let d: Span = serde_json::from_str("60").unwrap();
        assert_eq!(d, Span(Duration::from_secs(60)));
        assert!(serde_json::from_str::<Span>("\"soon\"").is_err());
    }
}
