//! The storage contract, run against every backend, plus what the file-system
//! backend promises after a crash.

#![allow(clippy::unwrap_used)]

use sluice_server::id::UploadId;
use sluice_server::store::contract::{self, Stores};
use sluice_server::store::memory::{MemoryBytes, MemoryRecords};
use sluice_server::store::s3::{S3Bytes, S3Config};
use sluice_server::store::{fs, AppendMode, ByteStore, Fence, Kind, Protocol, RecordStore, UploadRecord};
use std::io::Write;
use std::sync::Arc;

fn open_fs(dir: &std::path::Path, durable: bool) -> Stores {
    let (records, bytes) = fs::open(dir, durable).unwrap();
    (Arc::new(records), Arc::new(bytes))
}

#[actix_web::test]
async fn filesystem_backend_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract::run(|| open_fs(dir.path(), false)).await;
}

#[actix_web::test]
async fn the_durable_filesystem_backend_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract::run(|| open_fs(dir.path(), true)).await;
}

#[actix_web::test]
async fn memory_backend_meets_the_contract() {
    let records: Arc<dyn RecordStore> = Arc::new(MemoryRecords::default());
    let bytes: Arc<dyn ByteStore> = Arc::new(MemoryBytes::default());
    contract::run(|| (records.clone(), bytes.clone())).await;
}

/// S3 bytes (real Garage under `cargo xtask test`), records on the disk.
#[actix_web::test]
async fn s3_backend_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("contract-{}", UploadId::random().unwrap());
    let Some(config) = S3Config::from_test_env(&prefix, &dir.path().join("spool")) else {
        println!("skipped: SLUICE_TEST_S3 is not set (cargo xtask test starts Garage and sets it)");
        return;
    };
    contract::run(|| {
        let records = fs::open_records(dir.path(), false).unwrap();
        let bytes = S3Bytes::open(config.clone()).unwrap();
        (Arc::new(records) as Arc<dyn RecordStore>, Arc::new(bytes) as Arc<dyn ByteStore>)
    })
    .await;
}

fn new_record(length: u64) -> UploadRecord {
    UploadRecord::new(UploadId::random().unwrap(), Protocol::Tus, Kind::Whole, Some(length), Default::default())
}

#[actix_web::test]
async fn after_a_crash_received_bytes_are_kept_and_stray_files_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = dir.path().join("uploads");
    let mut record = new_record(100);
    {
        let (records, bytes) = fs::open(dir.path(), false).unwrap();
        bytes.create(&record.id).await.unwrap();
        records.insert(&record).await.unwrap();
        let mut body = futures_util::stream::iter([Ok(bytes::Bytes::from_static(b"abc"))]);
        record.offset = bytes.append(&record.id, 0, &mut body, AppendMode::KeepPartial, Fence(1)).await.unwrap();
        records.commit(&record, 0).await.unwrap();
    }
    // What a process killed mid-append leaves: bytes past the committed offset, a
    // half-written record, a rollback marker of the first version, an orphan data file.
    let id = &record.id;
    std::fs::OpenOptions::new()
        .append(true)
        .open(uploads.join(format!("{id}.bin")))
        .unwrap()
        .write_all(b"unacknowledged")
        .unwrap();
    std::fs::write(uploads.join(format!("{id}.json.tmp")), "{").unwrap();
    std::fs::write(uploads.join(format!("{id}.pending")), "0").unwrap();
    let orphan = UploadId::random().unwrap();
    std::fs::write(uploads.join(format!("{orphan}.bin")), "x").unwrap();

    let (records, _bytes) = fs::open(dir.path(), false).unwrap();
    assert_eq!(records.get(id).await.unwrap().offset, 3, "an all-or-nothing append cut by a crash is rolled back");
    assert_eq!(std::fs::metadata(uploads.join(format!("{id}.bin"))).unwrap().len(), 3, "its bytes are dropped");
    assert!(!uploads.join(format!("{id}.json.tmp")).exists());
    assert!(!uploads.join(format!("{id}.pending")).exists());

    // Without the marker, bytes that arrived in order before the crash are kept.
    drop(records);
    std::fs::OpenOptions::new()
        .append(true)
        .open(uploads.join(format!("{id}.bin")))
        .unwrap()
        .write_all(b"defg")
        .unwrap();
    let (records, _bytes) = fs::open(dir.path(), false).unwrap();
    let kept = records.get(id).await.unwrap();
    assert_eq!((kept.offset, kept.head.as_slice()), (7, &b"abcdefg"[..]), "received bytes are kept");
    assert!(!uploads.join(format!("{orphan}.bin")).exists());
}

#[actix_web::test]
async fn a_record_past_its_data_is_lowered_to_what_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = dir.path().join("uploads");
    let mut record = new_record(100);
    {
        let (records, bytes) = fs::open(dir.path(), false).unwrap();
        bytes.create(&record.id).await.unwrap();
        records.insert(&record).await.unwrap();
        let mut body = futures_util::stream::iter([Ok(bytes::Bytes::from_static(b"abcdef"))]);
        record.offset = bytes.append(&record.id, 0, &mut body, AppendMode::KeepPartial, Fence(1)).await.unwrap();
        records.commit(&record, 0).await.unwrap();
    }
    // A power loss without --fsync: the file system came back with less data.
    std::fs::OpenOptions::new()
        .write(true)
        .open(uploads.join(format!("{}.bin", record.id)))
        .unwrap()
        .set_len(2)
        .unwrap();
    let (records, _bytes) = fs::open(dir.path(), false).unwrap();
    assert_eq!(records.get(&record.id).await.unwrap().offset, 2, "the client resumes from what is really there");
}

#[actix_web::test]
async fn records_of_the_first_version_are_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = dir.path().join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    let id = UploadId::random().unwrap();
    std::fs::write(uploads.join(format!("{id}.bin")), "abc").unwrap();
    std::fs::write(
        uploads.join(format!("{id}.json")),
        r#"{"length":9,"metadata":"filename YS50eHQ=","created_at":1700000000,"owner":"alice"}"#,
    )
    .unwrap();
    let (records, _bytes) = fs::open(dir.path(), false).unwrap();
    let record = records.get(&id).await.unwrap();
    assert_eq!((record.offset, record.length, record.owner.as_deref()), (3, Some(9), Some("alice")));
    assert_eq!(record.file_name().as_deref(), Some("a.txt"));
}

/// Joining finished uploads of at least 5 MiB copies them on the store's side
/// (UploadPartCopy), a source over S3's part limit included in ranges; smaller ones fall
/// back to streaming (`Ok(false)`).
#[actix_web::test]
async fn s3_concat_copies_parts_on_the_store_side() {
    use futures_util::TryStreamExt;
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("concat-{}", UploadId::random().unwrap());
    let Some(config) = S3Config::from_test_env(&prefix, &dir.path().join("spool")) else {
        println!("skipped: SLUICE_TEST_S3 is not set (cargo xtask test starts Garage and sets it)");
        return;
    };
    let bytes = S3Bytes::open(config).unwrap();
    let fill =
        |len: usize, seed: u8| (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<u8>>();
    let sources = [fill(6 << 20, 1), fill((5 << 20) + 3, 2), fill((5 << 20) + 1000, 3), fill(1000, 4)];
    let mut parts = Vec::new();
    for source in &sources {
        let id = UploadId::random().unwrap();
        bytes.create(&id).await.unwrap();
        let mut body = futures_util::stream::iter(source.chunks(1 << 20).map(|c| Ok(bytes::Bytes::copy_from_slice(c))));
        let end = bytes.append(&id, 0, &mut body, AppendMode::KeepPartial, Fence(1)).await.unwrap();
        assert_eq!(end, source.len() as u64);
        bytes.finish(&id, end).await.unwrap();
        parts.push((id, end));
    }
    let (copyable, small) = (&parts[..3], &parts[3]);
    let joined = UploadId::random().unwrap();
    bytes.create(&joined).await.unwrap();
    assert!(bytes.concat(&joined, copyable).await.unwrap(), "parts of at least 5 MiB are copied");
    let total: u64 = copyable.iter().map(|(_, len)| len).sum();
    bytes.finish(&joined, total).await.unwrap();
    let read: Vec<bytes::Bytes> = bytes.read(&joined, 0..total).await.unwrap().try_collect().await.unwrap();
    assert!(read.concat() == sources[..3].concat(), "the joined object is the parts in order");
    let tail: Vec<bytes::Bytes> = bytes.read(&joined, total - 10..total).await.unwrap().try_collect().await.unwrap();
    let last = &sources[2];
    assert_eq!(tail.concat(), last[last.len() - 10..].to_vec(), "ranged reads of the joined object");

    for (order, why) in [
        ([small.clone(), parts[0].clone()], "a part under 5 MiB before the last cannot be copied"),
        ([parts[0].clone(), small.clone()], "nor can a last part under 5 MiB (Garage refuses such copy sources)"),
    ] {
        let target = UploadId::random().unwrap();
        bytes.create(&target).await.unwrap();
        assert!(!bytes.concat(&target, &order).await.unwrap(), "{why}");
    }
}
