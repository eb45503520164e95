//! Parsed records kept while their files are unchanged, so a `HEAD` (the request a
//! resuming client and every poller sends most) costs one `stat` instead of an open,
//! a read, a close and a JSON parse.
//!
//! A record file is only ever replaced by a rename, which gives it a new inode, so a
//! parse is reused only while the file's inode, size and modification time are the
//! ones it was read at. That holds whoever replaced the file, so nothing here assumes
//! one process per data directory. Within the process, a parse is only kept if no record
//! was written here while it was read, so a write racing a read never leaves the older
//! parse behind (an inode freed by one rename can be reused by a later one).

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// How many parsed records are kept; past it the set starts over (a record is a few
/// hundred bytes, so this bounds the memory at well under a MiB).
const KEPT: usize = 1024;

/// What a record file looked like when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    inode: u64,
    len: u64,
    modified_ns: i128,
}

impl Stamp {
    pub(super) fn of(meta: &Metadata) -> Stamp {
        Stamp {
            inode: meta.ino(),
            len: meta.len(),
            modified_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

/// Parsed values by key, each with the [`Stamp`] of the file it came from.
#[derive(Debug)]
pub(super) struct Parsed<K, V> {
    kept: Mutex<HashMap<K, (Stamp, V)>>,
    /// Counts the writes announced with [`Parsed::forget`].
    writes: AtomicU64,
}

impl<K, V> Default for Parsed<K, V> {
    fn default() -> Self {
        Parsed { kept: Mutex::new(HashMap::new()), writes: AtomicU64::new(0) }
    }
}

/// Taken before a file is read, handed to [`Parsed::keep`] after.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reading(u64);

impl<K: std::hash::Hash + Eq, V: Clone> Parsed<K, V> {
    /// The value parsed from the file as it is now (`stamp`), if it was kept.
    pub(super) fn get(&self, key: &K, stamp: Stamp) -> Option<V> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.get(key).filter(|(at, _)| *at == stamp).map(|(_, value)| value.clone())
    }

    /// Call before taking a file's stamp and reading it.
    pub(super) fn reading(&self) -> Reading {
        Reading(self.writes.load(Ordering::Acquire))
    }

    /// Keeps `value`, parsed from the file as it was at `stamp` (read after the stamp was
    /// taken, so a newer file never hides behind an older stamp), unless a write was
    /// announced since `reading`.
    pub(super) fn keep(&self, key: K, stamp: Stamp, value: V, reading: Reading) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if self.writes.load(Ordering::Acquire) != reading.0 {
            return;
        }
        if kept.len() >= KEPT && !kept.contains_key(&key) {
            kept.clear();
        }
        kept.insert(key, (stamp, value));
    }

    /// Forgets the value for `key`: its file is about to be replaced or removed here.
    pub(super) fn forget(&self, key: &K) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        self.writes.fetch_add(1, Ordering::AcqRel);
        kept.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_replaced_file_is_never_served_from_an_old_parse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        fs::write(&path, b"one").unwrap();
        let parsed = Parsed::default();
        let reading = parsed.reading();
        let first = Stamp::of(&fs::metadata(&path).unwrap());
        parsed.keep("r", first, "one".to_string(), reading);
        assert_eq!(parsed.get(&"r", first), Some("one".to_string()));

        // Replaced as records are: a new file renamed over the old one.
        let tmp = dir.path().join("r.json.tmp");
        fs::write(&tmp, b"one").unwrap();
        fs::rename(&tmp, &path).unwrap();
        let second = Stamp::of(&fs::metadata(&path).unwrap());
        assert_ne!(first, second, "a rename gives the record a new inode");
        assert_eq!(parsed.get(&"r", second), None);
    }

    #[test]
    fn memory_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), b"x").unwrap();
        let stamp = Stamp::of(&fs::metadata(dir.path().join("f")).unwrap());
        let parsed = Parsed::default();
        for key in 0..3 * KEPT {
            parsed.keep(key, stamp, (), parsed.reading());
        }
        assert!(parsed.kept.lock().unwrap().len() <= KEPT);
    }

    #[test]
    fn a_parse_read_while_a_write_was_announced_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), b"x").unwrap();
        let stamp = Stamp::of(&fs::metadata(dir.path().join("f")).unwrap());
        let parsed = Parsed::default();
        let reading = parsed.reading();
        parsed.forget(&"other record");
        parsed.keep("r", stamp, "old", reading);
        assert_eq!(parsed.get(&"r", stamp), None);
    }
}
