//! PostgreSQL state against a real server (`SLUICE_TEST_POSTGRES`; skipped with a
//! notice without it): the storage contract over PostgreSQL records and disk bytes, and
//! the lock service across two instances (two pools, as two processes would have).

use crate::common;

use common::pg::{fresh_schema, server_url};
use sluice_server::id::UploadId;
use sluice_server::lock::{LockError, Locks, PgLocks};
use sluice_server::store::contract::{self, Stores};
use sluice_server::store::postgres::{PgRecords, Pool, Postgres};
use sluice_server::store::{fs, Fence, Kind, Protocol, RecordStore, StoreError, UploadRecord};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A test's own schema on the test server, or `None` when there is no server.
async fn database(test: &str) -> Option<String> {
    Some(fresh_schema(&server_url(test)?).await)
}

async fn instance(url: &str, takeover_wait: Duration, lease: Duration) -> (Postgres, PgLocks) {
    let pg = Postgres::open(url, 4).await.expect("open PostgreSQL");
    let locks = PgLocks::open(pg.pool().clone(), takeover_wait, lease, CancellationToken::new()).await.expect("locks");
    (pg, locks)
}

fn id() -> UploadId {
    UploadId::random().unwrap()
}

#[actix_web::test]
async fn postgres_records_meet_the_contract() {
    let Some(url) = database("postgres_records_meet_the_contract").await else { return };
    Postgres::open(&url, 2).await.expect("migrate");
    let dir = tempfile::tempdir().unwrap();
    // Each call is a restarted process: a new pool over the same database.
    contract::run(|| -> Stores {
        let records = PgRecords::new(Pool::new(&url, 4).unwrap());
        (Arc::new(records), Arc::new(fs::open_bytes(dir.path(), false).unwrap()))
    })
    .await;
}

#[actix_web::test]
async fn instances_starting_together_migrate_once() {
    let Some(url) = database("instances_starting_together_migrate_once").await else { return };
    let (a, b, c) = tokio::join!(Postgres::open(&url, 1), Postgres::open(&url, 1), Postgres::open(&url, 1));
    let (a, _, _) = (a.unwrap(), b.unwrap(), c.unwrap());
    let conn = a.pool().get().await.unwrap();
    let rows = conn.query("SELECT version FROM sluice_migrations ORDER BY version", &[]).await.unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, [1, 2], "each migration applied exactly once");
}

#[actix_web::test]
async fn every_instance_shares_one_secret() {
    let Some(url) = database("every_instance_shares_one_secret").await else { return };
    let a = Postgres::open(&url, 1).await.unwrap().shared_secret().await.unwrap();
    let b = Postgres::open(&url, 1).await.unwrap().shared_secret().await.unwrap();
    assert_eq!(a.bytes(), b.bytes());
}

#[actix_web::test]
async fn a_newer_request_on_another_instance_takes_over() {
    let Some(url) = database("a_newer_request_on_another_instance_takes_over").await else { return };
    let (_pa, a) = instance(&url, Duration::from_secs(5), Duration::from_secs(10)).await;
    let (_pb, b) = instance(&url, Duration::from_secs(5), Duration::from_secs(10)).await;
    let id = id();
    let old = a.acquire(&id).await.unwrap();
    let old_fence = old.fence();
    let asked = old.cancellation();
    let holder = async move {
        asked.cancelled().await; // the request from instance B, through NOTIFY
        old.release().await;
    };
    let (new, ()) = tokio::join!(b.acquire(&id), holder);
    let new = new.expect("B takes over once A lets go");
    assert!(new.fence() > old_fence, "fences grow across instances");
    assert_eq!((a.held(), b.held()), (0, 1));
    assert!(a.try_acquire(&id).await.unwrap().is_none(), "held on B: A cannot take it without waiting");
    new.release().await;
    assert!(a.try_acquire(&id).await.unwrap().is_some(), "released: free for anyone");
}

#[actix_web::test]
async fn a_holder_that_does_not_let_go_means_locked() {
    let Some(url) = database("a_holder_that_does_not_let_go_means_locked").await else { return };
    let (_pa, a) = instance(&url, Duration::from_secs(5), Duration::from_secs(10)).await;
    let (_pb, b) = instance(&url, Duration::from_millis(300), Duration::from_secs(10)).await;
    let id = id();
    let stubborn = a.acquire(&id).await.unwrap();
    assert!(matches!(b.acquire(&id).await, Err(LockError::Locked)));
    assert!(stubborn.cancellation().is_cancelled(), "the holder was asked to stop");
    assert!(matches!(b.preempt(&id).await, Err(LockError::Locked)));
    assert!(b.acquire(&self::id()).await.is_ok(), "other uploads are unaffected");
}

#[actix_web::test]
async fn preempting_stops_the_writer_without_taking_the_lease() {
    let Some(url) = database("preempting_stops_the_writer_without_taking_the_lease").await else { return };
    let (_pa, a) = instance(&url, Duration::from_secs(5), Duration::from_secs(10)).await;
    let (_pb, b) = instance(&url, Duration::from_secs(5), Duration::from_secs(10)).await;
    let id = id();
    b.preempt(&id).await.expect("nobody writes: at once");
    let writer = a.acquire(&id).await.unwrap();
    let asked = writer.cancellation();
    let holder = async move {
        asked.cancelled().await;
        writer.release().await;
    };
    let (preempted, ()) = tokio::join!(b.preempt(&id), holder);
    preempted.expect("the writer let go");
    assert_eq!(b.held(), 0, "a reader holds nothing");
    assert!(b.try_acquire(&id).await.unwrap().is_some());
}

#[actix_web::test]
async fn a_dead_holders_lease_lapses_and_its_fence_cannot_commit() {
    let Some(url) = database("a_dead_holders_lease_lapses_and_its_fence_cannot_commit").await else { return };
    let lease = Duration::from_millis(900);
    let (pa, a) = instance(&url, Duration::from_secs(5), lease).await;
    let (pb, b) = instance(&url, Duration::from_secs(5), lease).await;
    let records_a = pa.records();
    let records_b = pb.records();
    let mut record = UploadRecord::new(id(), Protocol::Tus, Kind::Whole, Some(10), Default::default());
    records_a.insert(&record).await.unwrap();
    let id = record.id.clone();

    let dying = a.acquire(&id).await.unwrap();
    let stale_fence = dying.fence();
    // Renewal keeps a live holder's lease beyond its length.
    tokio::time::sleep(lease * 2).await;
    assert!(b.try_acquire(&id).await.unwrap().is_none(), "a renewed lease does not lapse");

    // Instance A dies: no renewal, no release (its lease is leaked, as by kill -9).
    std::mem::forget(dying);
    drop(a);
    let started = std::time::Instant::now();
    let newer = b.acquire(&id).await.expect("the dead holder's lease lapses");
    assert!(started.elapsed() < Duration::from_secs(5), "within about one lease");
    assert!(newer.fence() > stale_fence);

    record.offset = 4;
    record.fence = newer.fence();
    records_b.commit(&record, 0).await.expect("the new holder commits");
    let mut stale = record.clone();
    stale.offset = 6;
    stale.fence = stale_fence;
    assert!(
        matches!(records_a.commit(&stale, 4).await, Err(StoreError::Fenced)),
        "the old holder's fence cannot commit"
    );
    assert_eq!(records_b.get(&id).await.unwrap().offset, 4);
    assert_eq!(records_b.get(&id).await.unwrap().fence, Fence(newer.fence().0));
}

#[actix_web::test]
async fn an_unreachable_database_is_unavailable_not_a_failure() {
    // A port nothing listens on (ports below 1024 are not handed out to clients).
    let pool = Pool::new("postgres://sluice:sluice@127.0.0.1:9/sluice", 2).unwrap();
    let records = PgRecords::new(pool.clone());
    assert!(matches!(records.get(&id()).await, Err(StoreError::Unavailable(_))));
    assert!(matches!(records.check().await, Err(StoreError::Unavailable(_))));
    assert!(matches!(Postgres::open("postgres://a:b@127.0.0.1:9/x", 1).await, Err(StoreError::Unavailable(_))));
    let locks = PgLocks::open(pool, Duration::from_secs(1), Duration::from_secs(3), CancellationToken::new()).await;
    assert!(matches!(locks, Err(LockError::Unavailable(_))));
}
