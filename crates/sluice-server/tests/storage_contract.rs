//! The storage contract, run against every backend (today: the file system),
//! plus what the file-system backend promises after a crash.

#![allow(clippy::unwrap_used)]

use sluice_server::id::UploadId;
use sluice_server::storage::{contract, FsStorage, NewUpload, Storage};
use std::io::Write;

#[actix_web::test]
async fn filesystem_backend_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract::run(&FsStorage::open(dir.path()).unwrap()).await;
}

#[actix_web::test]
async fn the_durable_filesystem_backend_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract::run(&FsStorage::open(dir.path()).unwrap().durable(true)).await;
}

#[actix_web::test]
async fn state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let id = UploadId::random().unwrap();
    {
        let storage = FsStorage::open(dir.path()).unwrap();
        storage
            .create(NewUpload { id: id.clone(), length: Some(9), metadata: "k dg==".into(), owner: None })
            .await
            .unwrap();
        let mut body = futures_util::stream::iter([Ok(bytes::Bytes::from_static(b"abc"))]);
        storage.append(&id, 0, &mut body, sluice_server::storage::AppendMode::KeepPartial).await.unwrap();
    }
    let reopened = FsStorage::open(dir.path()).unwrap();
    let info = reopened.info(&id).await.unwrap();
    assert_eq!((info.offset, info.length, info.metadata.as_str()), (3, Some(9), "k dg=="));
}

#[actix_web::test]
async fn a_crash_mid_way_through_an_all_or_nothing_append_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let id = UploadId::random().unwrap();
    let uploads = dir.path().join("uploads");
    {
        let storage = FsStorage::open(dir.path()).unwrap();
        storage
            .create(NewUpload { id: id.clone(), length: Some(100), metadata: String::new(), owner: None })
            .await
            .unwrap();
    }
    // What a process killed during a checksummed append leaves: the marker
    // with the offset to return to, and unverified bytes past it.
    std::fs::write(uploads.join(format!("{id}.pending")), "0").unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(uploads.join(format!("{id}.bin")))
        .unwrap()
        .write_all(b"unverified")
        .unwrap();
    // And a stray temporary record and an orphan data file.
    std::fs::write(uploads.join(format!("{id}.json.tmp")), "{").unwrap();
    let orphan = UploadId::random().unwrap();
    std::fs::write(uploads.join(format!("{orphan}.bin")), "x").unwrap();

    let storage = FsStorage::open(dir.path()).unwrap();
    assert_eq!(storage.info(&id).await.unwrap().offset, 0, "unverified bytes are dropped");
    assert!(!uploads.join(format!("{id}.pending")).exists());
    assert!(!uploads.join(format!("{id}.json.tmp")).exists());
    assert!(!uploads.join(format!("{orphan}.bin")).exists());
}
