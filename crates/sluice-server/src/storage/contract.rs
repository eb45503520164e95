//! The storage contract: what every [`Storage`] backend must do, as one
//! test that any backend can run (`contract::run(&backend).await`).
//!
//! It panics with a message naming the broken promise.

use super::{AppendMode, BodyStopped, NewUpload, Storage, StorageError};
use crate::id::UploadId;
use bytes::Bytes;
use futures_util::{stream, StreamExt, TryStreamExt};
use std::time::{Duration, SystemTime};

fn new_upload(length: Option<u64>) -> NewUpload {
    NewUpload {
        id: UploadId::random().expect("random id"),
        length,
        metadata: "filename YS50eHQ=".into(),
        owner: Some("alice".into()),
    }
}

async fn append<S: Storage + ?Sized>(
    storage: &S,
    id: &UploadId,
    offset: u64,
    parts: Vec<Result<&'static [u8], BodyStopped>>,
    mode: AppendMode,
) -> Result<u64, StorageError> {
    let mut body = stream::iter(parts.into_iter().map(|p| p.map(Bytes::from_static)));
    storage.append(id, offset, &mut body, mode).await
}

async fn read_all<S: Storage + ?Sized>(storage: &S, id: &UploadId) -> Vec<u8> {
    let chunks: Vec<Bytes> = storage.read(id).await.expect("read").try_collect().await.expect("read stream");
    chunks.concat()
}

/// Runs every contract check against `storage`.
pub async fn run<S: Storage + ?Sized>(storage: &S) {
    // create + info
    let up = new_upload(Some(10));
    let id = up.id.clone();
    let info = storage.create(up.clone()).await.expect("create");
    assert_eq!((info.offset, info.length, info.metadata.as_str()), (0, Some(10), "filename YS50eHQ="));
    assert_eq!(info.owner.as_deref(), Some("alice"), "the owner is kept");
    assert_eq!(storage.info(&id).await.expect("info"), info, "info returns what create returned");
    assert!(storage.create(up).await.is_err(), "creating an existing id fails");

    // appends land in order; the wrong offset writes nothing
    let at = append(storage, &id, 0, vec![Ok(b"abc"), Ok(b"de")], AppendMode::KeepPartial).await;
    assert_eq!(at.expect("append"), 5);
    let wrong = append(storage, &id, 3, vec![Ok(b"zz")], AppendMode::KeepPartial).await;
    assert!(matches!(wrong, Err(StorageError::OffsetMismatch { actual: 5 })), "offset mismatch: {wrong:?}");
    assert_eq!(storage.info(&id).await.expect("info").offset, 5, "a refused append writes nothing");

    // a stopped body keeps its bytes, or none of them
    let kept = append(storage, &id, 5, vec![Ok(b"f"), Err(BodyStopped), Ok(b"x")], AppendMode::KeepPartial).await;
    assert_eq!(kept.expect("partial append"), 6, "KeepPartial keeps bytes before the stop");
    let dropped = append(storage, &id, 6, vec![Ok(b"gh"), Err(BodyStopped)], AppendMode::AllOrNothing).await;
    assert_eq!(dropped.expect("atomic append"), 6, "AllOrNothing keeps nothing of a stopped body");
    let whole = append(storage, &id, 6, vec![Ok(b"gh"), Ok(b"ij")], AppendMode::AllOrNothing).await;
    assert_eq!(whole.expect("atomic append"), 10);
    assert_eq!(storage.read_head(&id, 4).await.expect("head"), b"abcd");
    assert_eq!(storage.read_head(&id, 100).await.expect("head"), b"abcdefghij");
    assert_eq!(read_all(storage, &id).await, b"abcdefghij");
    storage.set_file_type(&id, "text/plain").await.expect("set type");
    assert_eq!(storage.info(&id).await.expect("info").file_type.as_deref(), Some("text/plain"));

    // deferred length
    let deferred = new_upload(None);
    storage.create(deferred.clone()).await.expect("create deferred");
    storage.declare_length(&deferred.id, 3).await.expect("declare");
    assert_eq!(storage.info(&deferred.id).await.expect("info").length, Some(3));

    // staleness: incomplete uploads only, by last write
    let future = SystemTime::now() + Duration::from_secs(3600);
    let stale = storage.stale(future).await.expect("stale");
    assert!(stale.contains(&deferred.id), "an idle incomplete upload is stale");
    assert!(!stale.contains(&id), "a complete upload is never stale");
    assert!(!storage.stale(SystemTime::UNIX_EPOCH).await.expect("stale").contains(&deferred.id));

    // termination: Gone, then NotFound once the tombstone is purged
    storage.terminate(&deferred.id).await.expect("terminate");
    assert!(matches!(storage.info(&deferred.id).await, Err(StorageError::Gone)));
    let late = append(storage, &deferred.id, 0, vec![Ok(b"a")], AppendMode::KeepPartial).await;
    assert!(matches!(late, Err(StorageError::Gone)), "append after terminate: {late:?}");
    assert!(matches!(storage.terminate(&deferred.id).await, Err(StorageError::Gone)));
    assert!(storage.purge_tombstones(future).await.expect("purge") >= 1);
    assert!(matches!(storage.info(&deferred.id).await, Err(StorageError::NotFound)));

    // unknown ids
    let unknown = UploadId::random().expect("random id");
    assert!(matches!(storage.info(&unknown).await, Err(StorageError::NotFound)));
    assert!(matches!(storage.read_head(&unknown, 1).await, Err(StorageError::NotFound)));
    assert!(matches!(storage.terminate(&unknown).await, Err(StorageError::NotFound)));
    let none = append(storage, &unknown, 0, vec![Ok(b"a")], AppendMode::KeepPartial).await;
    assert!(matches!(none, Err(StorageError::NotFound)));

    // memory does not depend on the body: a long body of many small parts streams through
    let big = new_upload(Some(64 << 20));
    storage.create(big.clone()).await.expect("create big");
    let mut parts = stream::iter(0..(64 * 16)).map(|_| Ok::<_, BodyStopped>(Bytes::from(vec![7u8; 64 << 10])));
    let end = storage.append(&big.id, 0, &mut parts, AppendMode::KeepPartial).await.expect("big append");
    assert_eq!(end, 64 << 20);
    storage.terminate(&big.id).await.expect("terminate big");
}
