//! The storage contract: what every record store and byte store must do, as one
//! test that any backend runs (`contract::run(open).await`, where `open` opens the
//! backend over the same data each time it is called, as a restarted process would).
//!
//! It panics with a message naming the broken promise.

use super::{AppendMode, BodyStopped, ByteStore, Fence, Kind, Protocol, RecordStore, State, StoreError, UploadRecord};
use crate::id::UploadId;
use bytes::Bytes;
use futures_util::{stream, TryStreamExt};
use sluice_core::tus::Metadata;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A backend: its record store and byte store.
pub type Stores = (Arc<dyn RecordStore>, Arc<dyn ByteStore>);

fn record(length: Option<u64>) -> UploadRecord {
    let mut record = UploadRecord::new(
        UploadId::random().expect("random id"),
        Protocol::Tus,
        Kind::Whole,
        length,
        Metadata::from_pairs([("filename", "a.txt")]),
    );
    record.owner = Some("alice".into());
    record.client = Some("192.0.2.1".into());
    record
}

async fn append(
    bytes: &dyn ByteStore,
    id: &UploadId,
    offset: u64,
    parts: Vec<Result<&'static [u8], BodyStopped>>,
    mode: AppendMode,
) -> Result<u64, StoreError> {
    let mut body = stream::iter(parts.into_iter().map(|p| p.map(Bytes::from_static)));
    bytes.append(id, offset, &mut body, mode, Fence(1)).await
}

async fn read(bytes: &dyn ByteStore, id: &UploadId, from: u64, to: u64) -> Vec<u8> {
    let chunks: Vec<Bytes> = bytes.read(id, from..to).await.expect("read").try_collect().await.expect("read stream");
    chunks.concat()
}

/// Creates an upload in both stores.
async fn create((records, bytes): &Stores, record: &UploadRecord) {
    bytes.create(&record.id).await.expect("bytes create");
    records.insert(record).await.expect("record insert");
}

/// Appends and commits, as the engine does.
async fn write(stores: &Stores, record: &mut UploadRecord, data: &'static [u8]) {
    let expected = record.offset;
    record.offset =
        append(&*stores.1, &record.id, expected, vec![Ok(data)], AppendMode::KeepPartial).await.expect("append");
    stores.0.commit(record, expected).await.expect("commit");
}

/// Runs every contract check against the backend `open` opens.
pub async fn run(open: impl Fn() -> Stores) {
    let stores = open();
    let (records, bytes) = &stores;

    // insert + get, unknown ids, duplicates
    let mut up = record(Some(10));
    create(&stores, &up).await;
    let got = records.get(&up.id).await.expect("get");
    assert_eq!((got.offset, got.length, got.state), (0, Some(10), State::Receiving), "a new record");
    assert_eq!(got.metadata.file_name().as_deref(), Some("a.txt"), "metadata is kept");
    assert_eq!(got.client.as_deref(), Some("192.0.2.1"), "the client is kept");
    assert!(matches!(records.insert(&up).await, Err(StoreError::Exists)), "insert refuses a taken id");
    assert!(matches!(bytes.create(&up.id).await, Err(StoreError::Exists)), "create refuses a taken id");
    let unknown = UploadId::random().expect("id");
    assert!(matches!(records.get(&unknown).await, Err(StoreError::NotFound)), "get: unknown is NotFound");

    // append + commit + read
    write(&stores, &mut up, b"hello").await;
    assert_eq!(records.get(&up.id).await.expect("get").offset, 5, "commit moves the offset");
    assert_eq!(read(&**bytes, &up.id, 0, 5).await, b"hello", "read returns what was appended");
    assert_eq!(read(&**bytes, &up.id, 1, 4).await, b"ell", "read honours a range");

    // compare-and-set: a commit from a stale offset or an older fence is refused
    let mut stale = up.clone();
    stale.offset = 9;
    assert!(
        matches!(records.commit(&stale, 0).await, Err(StoreError::OffsetMismatch { actual: 5 })),
        "commit is a compare-and-set on the offset"
    );
    let mut newer = up.clone();
    newer.fence = Fence(10);
    records.commit(&newer, 5).await.expect("a newer fence commits");
    let mut older = up.clone();
    older.fence = Fence(9);
    assert!(matches!(records.commit(&older, 5).await, Err(StoreError::Fenced)), "an older fence is refused");
    up.fence = Fence(10);

    // an early stop: KeepPartial keeps, AllOrNothing keeps nothing
    let end = append(&**bytes, &up.id, 5, vec![Ok(b" w"), Err(BodyStopped)], AppendMode::KeepPartial).await;
    assert_eq!(end.expect("partial append"), 7, "KeepPartial keeps what arrived");
    let end = append(&**bytes, &up.id, 7, vec![Ok(b"or"), Err(BodyStopped)], AppendMode::AllOrNothing).await;
    assert_eq!(end.expect("all-or-nothing append"), 7, "AllOrNothing keeps nothing of a stopped body");

    // bytes past the committed offset (a crash before commit) are overwritten
    let end = append(&**bytes, &up.id, 5, vec![Ok(b"!!!!!")], AppendMode::KeepPartial).await;
    assert_eq!(end.expect("append over unacknowledged bytes"), 10);
    assert_eq!(read(&**bytes, &up.id, 0, 10).await, b"hello!!!!!", "the append starts at its offset");
    let far = append(&**bytes, &up.id, 50, vec![Ok(b"x")], AppendMode::KeepPartial).await;
    assert!(matches!(far, Err(StoreError::OffsetMismatch { .. })), "an append past the stored bytes is refused");

    // finish and concat
    let mut a = record(Some(3));
    let mut b = record(Some(4));
    for part in [&mut a, &mut b] {
        part.kind = Kind::Partial;
        create(&stores, part).await;
    }
    write(&stores, &mut a, b"abc").await;
    write(&stores, &mut b, b"defg").await;
    bytes.finish(&a.id, 3).await.expect("finish a");
    bytes.finish(&b.id, 4).await.expect("finish b");
    let joined = record(Some(7));
    create(&stores, &joined).await;
    let parts = [(a.id.clone(), 3), (b.id.clone(), 4)];
    if bytes.concat(&joined.id, &parts).await.expect("concat") {
        assert_eq!(read(&**bytes, &joined.id, 0, 7).await, b"abcdefg", "concat joins parts in order");
    }

    // concurrent appends to different uploads do not mix
    let mut x = record(Some(6));
    let mut y = record(Some(6));
    create(&stores, &x).await;
    create(&stores, &y).await;
    let (ex, ey) = tokio::join!(
        append(&**bytes, &x.id, 0, vec![Ok(b"xxx"), Ok(b"xxx")], AppendMode::KeepPartial),
        append(&**bytes, &y.id, 0, vec![Ok(b"yyy"), Ok(b"yyy")], AppendMode::KeepPartial),
    );
    x.offset = ex.expect("append x");
    y.offset = ey.expect("append y");
    records.commit(&x, 0).await.expect("commit x");
    records.commit(&y, 0).await.expect("commit y");
    assert_eq!(read(&**bytes, &x.id, 0, 6).await, b"xxxxxx");
    assert_eq!(read(&**bytes, &y.id, 0, 6).await, b"yyyyyy");

    // usage of unfinished uploads, per client and in total
    let usage = records.open_usage("192.0.2.1").await.expect("usage");
    assert!(usage.uploads >= 2, "open uploads are counted per client: {usage:?}");
    assert!(records.promised_bytes().await.expect("promised") >= 10 - 5, "declared bytes not received are promised");
    let mut done = x.clone();
    done.state = State::Complete;
    let before = records.open_usage("192.0.2.1").await.expect("usage").uploads;
    records.commit(&done, 6).await.expect("complete x");
    assert_eq!(records.open_usage("192.0.2.1").await.expect("usage").uploads, before - 1, "complete is not open");

    // stale uploads, termination, tombstones
    let future = SystemTime::now() + Duration::from_secs(3600);
    let stale_ids = records.stale(future).await.expect("stale");
    assert!(stale_ids.contains(&up.id), "an unfinished upload is stale after its cutoff");
    assert!(!stale_ids.contains(&x.id), "a complete upload never is");
    let past = SystemTime::now() - Duration::from_secs(3600);
    assert!(!records.stale(past).await.expect("stale").contains(&up.id), "not before its cutoff");

    // restart: everything above is still there
    drop(stores);
    let stores = open();
    let (records, bytes) = &stores;
    let again = records.get(&up.id).await.expect("get after restart");
    assert_eq!(again.fence, Fence(10), "records survive a restart");
    // A backend may keep bytes appended in order but not committed before the restart
    // (the file system does); every byte below the offset is as appended either way.
    assert!(again.offset >= 5, "a restart never loses a committed offset ({})", again.offset);
    let expected = &b"hello!!!!!"[..again.offset as usize];
    assert_eq!(read(&**bytes, &up.id, 0, again.offset).await, expected, "bytes below the offset survive a restart");

    bytes.delete(&up.id).await.expect("delete");
    records.mark_gone(&up.id).await.expect("mark gone");
    assert!(matches!(records.get(&up.id).await, Err(StoreError::Gone)), "gone after mark_gone");
    assert!(matches!(records.mark_gone(&up.id).await, Err(StoreError::Gone)), "mark_gone twice is Gone");
    assert_eq!(records.purge_tombstones(past).await.expect("purge"), 0, "recent tombstones are kept");
    assert!(records.purge_tombstones(future).await.expect("purge") >= 1);
    assert!(matches!(records.get(&up.id).await, Err(StoreError::NotFound)), "purged ids are unknown");
    records.check().await.expect("records answer");
    bytes.check_writable().await.expect("bytes take writes");
}
