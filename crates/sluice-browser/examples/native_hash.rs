//! The native baseline for the browser hashing benchmark: the same `sluice-core`
//! hashers over a file read in 1 MiB pieces (the size of the browser's reused
//! buffer). `cargo run --release -p sluice-browser --example native_hash -- FILE [ALG...]`
//! prints one JSON line per algorithm.

use std::io::Read;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: native_hash FILE [sha256|sha1|crc32c ...]")?;
    let mut algorithms: Vec<String> = args.collect();
    if algorithms.is_empty() {
        algorithms = vec!["sha256".into()];
    }
    let mut buf = vec![0u8; 1 << 20];
    for name in algorithms {
        let alg = sluice_core::Algorithm::from_name(&name).ok_or(format!("unknown algorithm {name}"))?;
        let mut hasher = alg.hasher();
        let mut file = std::fs::File::open(&path)?;
        let (start, mut total) = (Instant::now(), 0u64);
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            total += n as u64;
        }
        let secs = start.elapsed().as_secs_f64();
        let hex = sluice_core::checksum::to_hex(&hasher.finalize());
        println!(
            "{{\"algorithm\":\"{name}\",\"bytes\":{total},\"seconds\":{secs:.3},\"mb_s\":{:.1},\"digest\":\"{hex}\"}}",
            total as f64 / 1e6 / secs
        );
    }
    Ok(())
}
