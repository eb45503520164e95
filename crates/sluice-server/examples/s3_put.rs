//! "Garage alone" for `cargo xtask bench`: plain S3 multipart uploads of `LEN` bytes
//! (`COUNT` of them at once), 8 MiB parts sent one after another per upload, bodies streamed
//! from one 1 MiB buffer; no protocol, no spool. Signs with `rusty-s3` and sends with
//! `awc`, as Sluice's S3 store does. Prints the seconds the uploads took, then deletes them.
//!
//! `s3_put LEN COUNT`, with the bucket and keys in `SLUICE_TEST_S3`, `SLUICE_S3_ENDPOINT`,
//! `SLUICE_S3_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (path-style addressing).

#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use rusty_s3::actions::{CompleteMultipartUpload, CreateMultipartUpload, DeleteObject, UploadPart};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use std::time::{Duration, Instant};

const PART: u64 = 8 << 20;
const SIGNED_FOR: Duration = Duration::from_secs(3600);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

async fn upload(bucket: &Bucket, creds: &Credentials, key: &str, len: u64, buf: Bytes) {
    let http = awc::Client::builder().timeout(Duration::from_secs(900)).finish();
    let url = CreateMultipartUpload::new(bucket, Some(creds), key).sign(SIGNED_FOR);
    let mut reply = http.post(url.as_str()).send().await.unwrap();
    let text = String::from_utf8(reply.body().await.unwrap().to_vec()).unwrap();
    let upload_id = CreateMultipartUpload::parse_response(&text).unwrap().upload_id().to_string();
    let mut etags = Vec::new();
    let mut offset = 0;
    while offset < len {
        let size = PART.min(len - offset);
        let number = u16::try_from(etags.len() + 1).unwrap();
        let url = UploadPart::new(bucket, Some(creds), key, number, &upload_id).sign(SIGNED_FOR);
        let chunks = (0..size.div_ceil(buf.len() as u64)).map({
            let buf = buf.clone();
            move |i| {
                let start = i * buf.len() as u64;
                Ok::<_, std::io::Error>(buf.slice(..(size - start).min(buf.len() as u64) as usize))
            }
        });
        let body = actix_http::body::SizedStream::new(size, futures_util::stream::iter(chunks));
        let reply = http.put(url.as_str()).send_body(body).await.unwrap();
        assert!(reply.status().is_success(), "UploadPart {number}: {}", reply.status());
        etags.push(reply.headers().get("etag").unwrap().to_str().unwrap().to_string());
        offset += size;
    }
    let action = CompleteMultipartUpload::new(bucket, Some(creds), key, &upload_id, etags.iter().map(String::as_str));
    let url = action.sign(SIGNED_FOR);
    let reply = http.post(url.as_str()).send_body(action.body()).await.unwrap();
    assert!(reply.status().is_success(), "CompleteMultipartUpload: {}", reply.status());
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("LEN COUNT")).collect();
    let [len, count] = args[..] else { panic!("usage: s3_put LEN COUNT") };
    let location = env("SLUICE_TEST_S3");
    let name = location.trim_start_matches("s3://").trim_end_matches('/').to_string();
    let endpoint = env("SLUICE_S3_ENDPOINT").parse().unwrap();
    let bucket = Bucket::new(endpoint, UrlStyle::Path, name, env("SLUICE_S3_REGION")).unwrap();
    let creds = Credentials::new(env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"));
    let mut x = 0x5eed_u64;
    let buf: Bytes = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into();
    actix_web::rt::System::new().block_on(async {
        let keys: Vec<String> = (0..count).map(|i| format!("bench-plain/{i}")).collect();
        let t = Instant::now();
        futures_util::future::join_all(keys.iter().map(|key| upload(&bucket, &creds, key, len, buf.clone()))).await;
        println!("{:.3}", t.elapsed().as_secs_f64());
        let http = awc::Client::default();
        for key in &keys {
            let url = DeleteObject::new(&bucket, Some(&creds), key).sign(SIGNED_FOR);
            let _ = http.delete(url.as_str()).send().await;
        }
    });
}
