//! tus concatenation: the server joining a final upload from finished parts, beside `cp`
//! copying the same number of bytes once (the goal: the join is not slower than that copy,
//! and the server's memory stays flat).

use super::{create_with, patch, Bench};
use crate::http::{Body, Conn};
use crate::report::Figure;
use std::process::Command;
use std::time::{Duration, Instant};

impl Bench {
    /// Uploads `parts` partial uploads of `len / parts` bytes (untimed), then times the
    /// `POST` of the final upload that joins them; checks the joined length.
    pub(super) fn join(&self, addr: &str, len: u64, parts: u64) -> Result<Duration, String> {
        let mut conn = Conn::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        let mut paths = Vec::new();
        for i in 0..parts {
            let part = (i + 1) * len / parts - i * len / parts;
            let path = create_with(&mut conn, part, &[("Upload-Concat", "partial")])?;
            patch(&mut conn, &path, 0, part, &self.buf)?;
            paths.push(path);
        }
        let concat = format!("final;{}", paths.join(" "));
        let t = Instant::now();
        let resp = conn
            .request("POST", "/files/", &[("Tus-Resumable", "1.0.0"), ("Upload-Concat", &concat)], Body::Empty)
            .map_err(|e| format!("POST final: {e}"))?;
        let took = t.elapsed();
        let want = len.to_string();
        if resp.status != 201 || resp.header("upload-offset") != Some(want.as_str()) {
            return Err(format!("POST final -> {}, Upload-Offset {:?}", resp.summary(), resp.header("upload-offset")));
        }
        Ok(took)
    }

    /// `cp` of a `len`-byte file on the bench's file system, `repeat` times. Each run writes
    /// its source first (untimed), as the join's parts were just uploaded: both copy bytes
    /// that are still in the page cache, with as much written back before them.
    pub(super) fn copy_scenario(&mut self, name: &'static str, len: u64) -> Figure {
        let mut fig = Figure::new(name, len);
        for _ in 0..self.repeat {
            self.runs += 1;
            let source = self.work.join(format!("copy-source-{}.bin", self.runs));
            let target = self.work.join(format!("copy-{}.bin", self.runs));
            if let Err(e) = self.write_file(&source, len) {
                fig.error = Some(e);
                break;
            }
            let t = Instant::now();
            let status = Command::new("cp").arg(&source).arg(&target).status();
            let took = t.elapsed();
            let _ = std::fs::remove_file(&source);
            let _ = std::fs::remove_file(&target);
            match status {
                Ok(s) if s.success() => fig.runs.push(took.as_secs_f64()),
                Ok(s) => {
                    fig.error = Some(format!("cp exited with {s}"));
                    break;
                }
                Err(e) => {
                    fig.error = Some(format!("cp: {e}"));
                    break;
                }
            }
        }
        fig
    }

    /// Writes `len` bytes of the bench buffer to `path`.
    fn write_file(&self, path: &std::path::Path, len: u64) -> Result<(), String> {
        use std::io::Write;
        let mut file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut left = len;
        while left > 0 {
            let n = left.min(self.buf.len() as u64);
            file.write_all(&self.buf[..n as usize]).map_err(|e| format!("{}: {e}", path.display()))?;
            left -= n;
        }
        Ok(())
    }
}
