//! Webhooks against a small real HTTP receiver on loopback: the pre-create
//! hook decides, the post-finish hook is told.

#![allow(clippy::unwrap_used)]

use crate::common;
use actix_web::http::Method;
use common::*;
use sluice_server::hooks::Hooks;
use sluice_server::Settings;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Answers every POST: 403 with a message when the body mentions "forbidden",
/// after a long pause when it mentions "slow", 200 otherwise. Keeps the bodies.
fn receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let text = String::from_utf8_lossy(&body).into_owned();
            log.lock().unwrap().push(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null));
            if text.contains("slow") {
                std::thread::sleep(Duration::from_secs(2));
            }
            let reply = if text.contains("forbidden") {
                let body = r#"{"message":"No forbidden files here."}"#;
                format!("HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            } else {
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
            };
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (url, seen)
}

fn settings(pre: Option<String>, post: Option<String>) -> Settings {
    Settings {
        hooks: Hooks { pre_create: pre, post_finish: post, timeout: Duration::from_millis(500) },
        ..Default::default()
    }
}

fn create_named(name: &str) -> actix_web::test::TestRequest {
    tus(Method::POST, "/files/")
        .insert_header(("Upload-Length", "5"))
        .insert_header(("Upload-Metadata", format!("filename {}", b64(name))))
}

#[actix_web::test]
async fn the_pre_create_hook_decides() {
    let (url, seen) = receiver();
    let h = harness_with("", settings(Some(url), None)).await;
    assert_eq!(send(&h.app, create_named("fine.txt")).await.status, 201);
    let refused = send(&h.app, create_named("forbidden.txt")).await;
    assert_eq!((refused.status, refused.code().as_deref()), (403, Some("refused_by_hook")));
    let message = serde_json::from_slice::<serde_json::Value>(&refused.body).unwrap()["message"].clone();
    assert_eq!(message, "No forbidden files here.", "the application's own words reach the user");
    let slow = send(&h.app, create_named("slow.txt")).await;
    assert_eq!((slow.status, slow.code().as_deref()), (503, Some("hook_unavailable")));
    assert_eq!(slow.header("retry-after"), Some("1"));
    let events = seen.lock().unwrap().clone();
    assert_eq!(events[0]["event"], "pre-create");
    assert_eq!(events[0]["upload"]["filename"], "fine.txt");
    assert_eq!(events[0]["upload"]["length"], 5);
    assert_eq!(events[0]["upload"]["protocol"], "tus");
    assert_eq!(h.data_files().await, 1, "refused uploads were never created");
}

#[actix_web::test]
async fn an_unreachable_pre_create_hook_refuses_with_503() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // bound, then dropped: nothing listens
    let h = harness_with("", settings(Some(format!("http://{closed}/hook")), None)).await;
    let reply = send(&h.app, create_named("a.txt")).await;
    assert_eq!((reply.status, reply.code().as_deref()), (503, Some("hook_unavailable")));
}

#[actix_web::test]
async fn the_post_finish_hook_hears_about_finished_uploads() {
    let (url, seen) = receiver();
    let h = harness_with("", settings(None, Some(url))).await;
    let up = create(&h.app, Some(5), Some(&format!("filename {}", b64("done.txt")))).await;
    assert_eq!(send(&h.app, patch(&up, 0, b"hello")).await.status, 204);
    for _ in 0..200 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let events = seen.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "post-finish");
    assert_eq!(events[0]["upload"]["id"], up.rsplit('/').next().unwrap());
    assert_eq!(events[0]["upload"]["type"], "text/plain");
    assert_eq!(events[0]["upload"]["filename"], "done.txt");
}
