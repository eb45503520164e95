//! The structured-field shapes the draft uses (RFC 9651): sf-boolean, sf-integer and
//! Dictionary, read with `sfv`. Parameters on items are allowed and ignored.

use sfv::{BareItem, Dictionary, Item, ListEntry, Parser};

/// Why a value could not be read as the shape asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// The text is not a structured field of that kind at all.
    Syntax,
    /// The text is a structured field, but its value has another type.
    WrongType,
}

fn item(value: &str) -> Result<Item, Malformed> {
    Parser::new(value).parse::<Item>().map_err(|_| Malformed::Syntax)
}

/// Reads an sf-boolean (`?0` or `?1`).
pub(crate) fn boolean(value: &str) -> Result<bool, Malformed> {
    item(value)?.bare_item.as_boolean().ok_or(Malformed::WrongType)
}

/// Reads an sf-integer (at most 15 digits, so it always fits an `i64`).
pub(crate) fn integer(value: &str) -> Result<i64, Malformed> {
    item(value)?.bare_item.as_integer().map(i64::from).ok_or(Malformed::WrongType)
}

/// Reads a Dictionary.
pub(crate) fn dictionary(value: &str) -> Result<Dictionary, Malformed> {
    Parser::new(value).parse::<Dictionary>().map_err(|_| Malformed::Syntax)
}

/// The bare value of a dictionary member, `None` for an inner list.
pub(crate) fn member_item(entry: &ListEntry) -> Option<&BareItem> {
    match entry {
        ListEntry::Item(item) => Some(&item.bare_item),
        ListEntry::InnerList(_) => None,
    }
}

/// The largest sf-integer (15 digits).
pub(crate) const MAX_INTEGER: u64 = 999_999_999_999_999;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        assert_eq!(boolean("?1"), Ok(true));
        assert_eq!(boolean("?0"), Ok(false));
        assert_eq!(boolean(" ?1 "), Ok(true));
        assert_eq!(boolean("?1;note=x"), Ok(true), "parameters are allowed and ignored");
        assert_eq!(boolean("1"), Err(Malformed::WrongType));
        assert_eq!(boolean("true"), Err(Malformed::WrongType));
        for bad in ["", "?", "?2", "? 1", "?1,?0", "?1 ?0", "?1\t", "\u{e9}"] {
            assert_eq!(boolean(bad), Err(Malformed::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn integers() {
        assert_eq!(integer("0"), Ok(0));
        assert_eq!(integer("-0"), Ok(0));
        assert_eq!(integer("-5"), Ok(-5));
        assert_eq!(integer("999999999999999"), Ok(999_999_999_999_999));
        assert_eq!(integer("1.5"), Err(Malformed::WrongType), "a decimal is a structured field of another type");
        assert_eq!(integer("?1"), Err(Malformed::WrongType));
        assert_eq!(integer("\"1\""), Err(Malformed::WrongType));
        for bad in ["", "+1", "1000000000000000", "0x10", "1 2", "1,2", "1e3", "١"] {
            assert_eq!(integer(bad), Err(Malformed::Syntax), "{bad:?}");
        }
    }
}
