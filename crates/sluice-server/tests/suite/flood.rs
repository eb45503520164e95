//! Connection floods against the real binary: 2000 slow-header connections from 127.0.0.1 while
//! 127.0.0.2 uploads 256 MiB and polls; every request of the second client is answered within
//! the stated bound (1 s, the contract in the README), its upload completes, and the server's
//! memory stays within its stated bound. With `--ops-listen`, the probes answer on the
//! operations listener during the flood.

#![allow(clippy::unwrap_used)]

use crate::blackbox;
use blackbox::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The stated bound on how long a flood from one address may delay another address's request.
const FAIRNESS_BOUND: Duration = Duration::from_secs(1);
/// The stated bound on the server's peak resident memory during the flood and the upload.
const RSS_BOUND_MIB: u64 = 64;
const FLOOD: usize = 2000;

fn raise_open_files_limit(wanted: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|c| c < wanted) {
        let target = limit.maximum.map_or(wanted, |max| max.min(wanted));
        setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: limit.maximum }).unwrap();
    }
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    assert!(now >= wanted, "the open-files limit ({now}) is below {wanted}: raise `ulimit -Hn`");
}

/// `FLOOD` connections from 127.0.0.1 that each sent a request line and add a header line every
/// half second, never ending their head. A connection the server closes is opened again (at most
/// once a second per slot), as a persistent attacker would.
struct Flood {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<u64>>,
}

impl Flood {
    fn start(addr: &str) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let (addr, stopping) = (addr.to_string(), stop.clone());
        let thread = thread::spawn(move || {
            let open = |addr: &str| -> Option<TcpStream> {
                let mut s = TcpStream::connect(addr).ok()?;
                s.write_all(b"GET /policy HTTP/1.1\r\nHost: flood\r\n").ok()?;
                s.set_nonblocking(true).ok()?;
                Some(s)
            };
            let mut slots: Vec<(Option<TcpStream>, Instant)> =
                (0..FLOOD).map(|_| (open(&addr), Instant::now())).collect();
            let mut reopened = 0u64;
            let mut buf = [0u8; 1024];
            while !stopping.load(Ordering::Relaxed) {
                for (slot, since) in &mut slots {
                    let alive = slot.as_mut().is_some_and(|s| {
                        let closed = matches!(s.read(&mut buf), Ok(0));
                        !closed
                            && s.write_all(b"X-Slow: 1\r\n")
                                .map_or_else(|e| e.kind() == ErrorKind::WouldBlock, |()| true)
                    });
                    if !alive && since.elapsed() >= Duration::from_secs(1) {
                        *slot = open(&addr);
                        *since = Instant::now();
                        reopened += 1;
                    } else if !alive {
                        *slot = None;
                    }
                }
                thread::sleep(Duration::from_millis(500));
            }
            reopened
        });
        Flood { stop, thread: Some(thread) }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// One GET from `source` on a fresh connection: its status and how long it took, connecting
/// included (the flood attacks exactly that).
fn timed_get(source: &str, addr: &str, path: &str) -> (u16, Duration, String) {
    let started = Instant::now();
    let res = request_on(connect_from(source, addr), "GET", path, &[], b"");
    (res.status, started.elapsed(), res.body)
}

fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

/// Waits (bounded) until the flood holds its per-client share of connections and is being refused.
fn wait_for_flood(metrics: impl Fn() -> String) -> String {
    for _ in 0..300 {
        let text = metrics();
        if metric(&text, "sluice_connections_refused_total{reason=\"too_many_connections\"}") > 0.0
            && metric(&text, "sluice_connections_open") >= 128.0
        {
            return text;
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("the flood never filled its per-client share: {}", metrics());
}

#[test]
fn a_slow_header_flood_from_one_address_does_not_delay_another() {
    raise_open_files_limit(FLOOD as u64 + 1024);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let flood = Flood::start(&server.addr);
    wait_for_flood(|| timed_get("127.0.0.2", &server.addr, "/metrics").2);

    let (addr, done) = (server.addr.clone(), Arc::new(AtomicBool::new(false)));
    let polling = done.clone();
    let poller = thread::spawn(move || {
        let mut slowest = Duration::ZERO;
        let mut polls = 0;
        while !polling.load(Ordering::Relaxed) {
            let (status, took, _) = timed_get("127.0.0.2", &addr, "/healthz");
            assert_eq!(status, 200);
            slowest = slowest.max(took);
            polls += 1;
            thread::sleep(Duration::from_millis(100));
        }
        (polls, slowest)
    });

    let block = data(1 << 20, 9);
    let total = 256usize << 20;
    let started = Instant::now();
    let created = request_on(
        connect_from("127.0.0.2", &server.addr),
        "POST",
        "/files/",
        &[("Upload-Length", total.to_string())],
        b"",
    );
    let create_took = started.elapsed();
    assert_eq!(created.status, 201, "{created:?}");
    let location = created.header("location").unwrap();
    let up = location[location.find("/files/").unwrap()..].to_string();
    let mut stream = connect_from("127.0.0.2", &server.addr);
    send_head(&mut stream, "PATCH", &up, &patch_headers(0), Some(total));
    for _ in 0..256 {
        stream.write_all(&block).unwrap();
    }
    let patched = read_response(&mut stream);
    assert_eq!(patched.status, 204, "{patched:?}");
    done.store(true, Ordering::Relaxed);
    let (polls, slowest) = poller.join().unwrap();

    let after = timed_get("127.0.0.2", &server.addr, "/metrics").2;
    let reopened = flood.stop();
    let peak = peak_rss_mib(server.child.id());
    eprintln!(
        "flood: {polls} polls, slowest {slowest:?}, create {create_took:?}, peak RSS {peak} MiB, {reopened} flood reconnects, \
         {} open, {} refused (too_many_connections)",
        metric(&after, "sluice_connections_open"),
        metric(&after, "sluice_connections_refused_total{reason=\"too_many_connections\"}")
    );
    assert!(polls > 0);
    assert!(slowest < FAIRNESS_BOUND, "a /healthz took {slowest:?} during the flood");
    assert!(create_took < FAIRNESS_BOUND, "the creation took {create_took:?} during the flood");
    assert!(metric(&after, "sluice_connections_open") >= 128.0, "the flood held its share throughout");
    let stored = std::fs::read(dir.path().join("uploads").join(format!("{}.bin", up.rsplit('/').next().unwrap())));
    let stored = stored.unwrap();
    assert_eq!(stored.len(), total);
    assert!(stored.chunks(1 << 20).all(|c| c == block), "every byte arrived intact");
    assert!(peak <= RSS_BOUND_MIB, "peak RSS {peak} MiB above the stated {RSS_BOUND_MIB} MiB");
}

#[test]
fn the_operations_listener_answers_during_the_flood_and_the_public_one_does_not_serve_it() {
    raise_open_files_limit(FLOOD as u64 + 1024);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), None, &["--ops-listen", "127.0.0.1:0"]);
    let ops = server.ops.clone().unwrap();
    for path in ["/healthz", "/readyz", "/metrics", "/status", "/status/samples"] {
        assert_eq!(server.request("GET", path, &[], b"").status, 404, "{path} is not public");
    }
    assert_eq!(request_on(connect_from("127.0.0.1", &ops), "OPTIONS", "/files/", &[], b"").status, 404);

    let flood = Flood::start(&server.addr);
    let seen = wait_for_flood(|| timed_get("127.0.0.1", &ops, "/metrics").2);
    assert!(metric(&seen, "sluice_connections_open") >= 128.0);
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        for path in ["/healthz", "/readyz", "/metrics", "/status", "/status/samples"] {
            // From the flooding address itself: the operations listener has no per-client cap.
            let (status, took, body) = timed_get("127.0.0.1", &ops, path);
            assert_eq!(status, 200, "{path}: {body}");
            slowest = slowest.max(took);
        }
        thread::sleep(Duration::from_millis(100));
    }
    let samples = timed_get("127.0.0.1", &ops, "/status/samples").2;
    assert!(samples.contains("\"too_many_connections\""), "the status page shows refused connections: {samples}");
    flood.stop();
    assert!(slowest < FAIRNESS_BOUND, "a probe took {slowest:?} during the flood");
}
