//! `Upload-Limit`: the server's limits, as a Dictionary of sf-integers (version 6 on).

use super::structured::{self, MAX_INTEGER};
use super::InteropVersion;
use crate::policy::Policy;

/// The limits a server announces in `Upload-Limit`. Sizes are bytes; `max_age` is the
/// seconds an upload may live (spelt `expires` in version 6, `max-age` from 7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadLimit {
    /// The largest upload accepted.
    pub max_size: Option<u64>,
    /// The smallest upload accepted.
    pub min_size: Option<u64>,
    /// The most content one request may carry.
    pub max_append_size: Option<u64>,
    /// The least content one request must carry (unless it completes the upload).
    pub min_append_size: Option<u64>,
    /// Seconds until an upload may be removed.
    pub max_age: Option<u64>,
}

const MAX_SIZE: &str = "max-size";
const MIN_SIZE: &str = "min-size";
const MAX_APPEND_SIZE: &str = "max-append-size";
const MIN_APPEND_SIZE: &str = "min-append-size";

impl UploadLimit {
    /// The limits of a policy: `max_file_size`, `min_file_size` (when above zero),
    /// `max_chunk_size` per append and `upload_expiry` as the lifetime.
    pub fn from_policy(policy: &Policy) -> UploadLimit {
        UploadLimit {
            max_size: Some(policy.max_file_size),
            min_size: (policy.min_file_size > 0).then_some(policy.min_file_size),
            max_append_size: Some(policy.max_chunk_size),
            min_append_size: None,
            max_age: Some(policy.upload_expiry.as_secs()),
        }
    }

    /// The field value for `version`, e.g. `max-size=1000, max-age=3600`; `min-size=0`
    /// when there is no limit at all. `None` before version 6, which has no such field.
    /// A value beyond the largest sf-integer (15 digits) is sent as that integer.
    pub fn render(&self, version: InteropVersion) -> Option<String> {
        let lifetime_key = version.lifetime_key()?;
        let members: Vec<String> = [
            (MAX_SIZE, self.max_size),
            (MIN_SIZE, self.min_size),
            (MAX_APPEND_SIZE, self.max_append_size),
            (MIN_APPEND_SIZE, self.min_append_size),
            (lifetime_key, self.max_age),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|n| format!("{key}={}", n.min(MAX_INTEGER))))
        .collect();
        Some(if members.is_empty() { format!("{MIN_SIZE}=0") } else { members.join(", ") })
    }

    /// Reads a received `Upload-Limit`; `None` when the field is to be ignored: not a
    /// Dictionary, a version without the field, or (from version 8) a known key whose
    /// value is not a non-negative integer. Before version 8 such a key alone is
    /// ignored. Unknown keys, and the other version's lifetime key, are ignored.
    pub fn parse(version: InteropVersion, value: &str) -> Option<UploadLimit> {
        let lifetime_key = version.lifetime_key()?;
        let dictionary = structured::dictionary(value).ok()?;
        let mut limit = UploadLimit::default();
        for (key, entry) in &dictionary {
            let slot = match key.as_str() {
                MAX_SIZE => &mut limit.max_size,
                MIN_SIZE => &mut limit.min_size,
                MAX_APPEND_SIZE => &mut limit.max_append_size,
                MIN_APPEND_SIZE => &mut limit.min_append_size,
                key if key == lifetime_key => &mut limit.max_age,
                _ => continue,
            };
            let number = structured::member_item(entry)
                .and_then(|item| item.as_integer())
                .and_then(|n| u64::try_from(i64::from(n)).ok());
            match number {
                Some(n) => *slot = Some(n),
                None if version >= InteropVersion::LATEST => return None,
                None => {}
            }
        }
        Some(limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn v(n: i64) -> InteropVersion {
        InteropVersion::new(n).unwrap()
    }

    #[test]
    fn rendered_from_the_policy_per_version() {
        let policy = Policy {
            max_file_size: 1 << 30,
            min_file_size: 10,
            max_chunk_size: 8 << 20,
            upload_expiry: Duration::from_secs(3600),
            ..Policy::default()
        };
        let limit = UploadLimit::from_policy(&policy);
        assert_eq!(
            limit.render(v(6)).unwrap(),
            "max-size=1073741824, min-size=10, max-append-size=8388608, expires=3600"
        );
        for n in [7, 8] {
            assert_eq!(
                limit.render(v(n)).unwrap(),
                "max-size=1073741824, min-size=10, max-append-size=8388608, max-age=3600"
            );
        }
        for n in 3..=5 {
            assert_eq!(limit.render(v(n)), None, "version {n} has no Upload-Limit");
        }
        let no_minimum = UploadLimit::from_policy(&Policy::default());
        assert_eq!(no_minimum.min_size, None);
        assert!(!no_minimum.render(v(8)).unwrap().contains("min-size"));
    }

    #[test]
    fn no_limits_is_min_size_zero_never_empty() {
        assert_eq!(UploadLimit::default().render(v(6)).unwrap(), "min-size=0");
    }

    #[test]
    fn sizes_beyond_an_sf_integer_are_capped() {
        let limit = UploadLimit { max_size: Some(crate::MAX_LENGTH), ..UploadLimit::default() };
        assert_eq!(limit.render(v(8)).unwrap(), "max-size=999999999999999");
    }

    #[test]
    fn parsing_ignores_what_it_must() {
        let parsed =
            UploadLimit::parse(v(7), "max-size=100, foo=\"bar\", min-size=1;p=2, expires=5, max-age=60").unwrap();
        assert_eq!(
            parsed,
            UploadLimit { max_size: Some(100), min_size: Some(1), max_age: Some(60), ..UploadLimit::default() }
        );
        assert_eq!(UploadLimit::parse(v(6), "expires=5, max-age=60").unwrap().max_age, Some(5));
        // A known key with a value of another type: that key is dropped before 8, the field from 8.
        for bad in [
            "max-size=1.5, min-size=1",
            "max-size=?1, min-size=1",
            "max-size=(1 2), min-size=1",
            "max-size=-1, min-size=1",
        ] {
            assert_eq!(UploadLimit::parse(v(7), bad).unwrap(), UploadLimit { min_size: Some(1), ..Default::default() });
            assert_eq!(UploadLimit::parse(v(8), bad), None, "{bad}");
        }
        assert_eq!(UploadLimit::parse(v(8), "max-size=1,,"), None, "not a Dictionary");
        assert_eq!(UploadLimit::parse(v(5), "max-size=1"), None, "no such field in version 5");
        assert_eq!(UploadLimit::parse(v(8), "").unwrap(), UploadLimit::default());
    }

    fn any_limit() -> impl Strategy<Value = UploadLimit> {
        let size = || proptest::option::of(0..=crate::MAX_LENGTH);
        (size(), size(), size(), size(), size()).prop_map(|(a, b, c, d, e)| UploadLimit {
            max_size: a,
            min_size: b,
            max_append_size: c,
            min_append_size: d,
            max_age: e,
        })
    }

    proptest! {
        #[test]
        fn render_then_parse_round_trips(limit in any_limit(), n in 6i64..=8) {
            let version = v(n);
            let text = limit.render(version).unwrap();
            let mut expected = limit;
            for slot in [&mut expected.max_size, &mut expected.min_size, &mut expected.max_append_size, &mut expected.min_append_size, &mut expected.max_age] {
                *slot = slot.map(|n| n.min(MAX_INTEGER));
            }
            if expected == UploadLimit::default() {
                expected.min_size = Some(0);
            }
            prop_assert_eq!(UploadLimit::parse(version, &text), Some(expected), "{}", text);
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,80}", n in 3i64..=8) {
            let _ = UploadLimit::parse(v(n), &text);
        }

        #[test]
        fn parse_never_panics_on_dictionary_like_text(text in "[a-z-]{1,16}=[-?:()\" 0-9a-z.;,=]{0,24}(, [a-z-]{1,16}=[-?0-9.]{0,18}){0,4}", n in 6i64..=8) {
            let _ = UploadLimit::parse(v(n), &text);
        }
    }
}
