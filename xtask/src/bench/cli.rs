//! `sluice upload` against `curl`: the command-line client uploading a file from disk to
//! the release server, beside `curl -T` of the same file to the baseline handler and
//! `curl` sending the same file as one tus PATCH to Sluice (the client's cost alone).
//! The CLI's peak RSS is its own `VmHWM`, sampled while it runs.

use super::{Bench, GIB};
use crate::proc;
use crate::report::Figure;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

impl Bench {
    /// The input file of `len` bytes (from the bench buffer), written once per bench run.
    pub(super) fn input_file(&self, len: u64) -> Result<PathBuf, String> {
        let path = self.work.join(format!("input-{}.bin", len / GIB));
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == len) {
            return Ok(path);
        }
        let mut file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut left = len;
        while left > 0 {
            let n = left.min(self.buf.len() as u64);
            file.write_all(&self.buf[..n as usize]).map_err(|e| format!("{}: {e}", path.display()))?;
            left -= n;
        }
        Ok(path)
    }

    /// `curl -T FILE http://ADDR/bench.bin` (a PUT) to the baseline handler.
    pub(super) fn curl_put(&self, addr: &str, file: &Path) -> Result<Duration, String> {
        let t = Instant::now();
        curl(curl_cmd(file).arg(format!("http://{addr}/bench.bin")))?;
        Ok(t.elapsed())
    }

    /// Creates an upload, then `curl -T FILE -X PATCH` sends the whole file to it in one request.
    pub(super) fn curl_patch(&self, addr: &str, file: &Path) -> Result<Duration, String> {
        let len = std::fs::metadata(file).map_err(|e| format!("{}: {e}", file.display()))?.len();
        let mut conn = crate::http::Conn::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        let t = Instant::now();
        let path = super::create(&mut conn, len)?;
        curl(curl_cmd(file).args([
            "-X",
            "PATCH",
            "-H",
            "Tus-Resumable: 1.0.0",
            "-H",
            "Upload-Offset: 0",
            "-H",
            "Content-Type: application/offset+octet-stream",
            &format!("http://{addr}{path}"),
        ]))?;
        Ok(t.elapsed())
    }

    /// `sluice upload FILE` to a fresh release server, `repeat` times; the figure's peak RSS
    /// is the client's (largest of the runs).
    pub(super) fn cli_scenario(&mut self, name: &'static str, len: u64, flags: &[&str]) -> Figure {
        let mut fig = Figure::new(name, len);
        let file = match self.input_file(len) {
            Ok(f) => f,
            Err(e) => {
                fig.error = Some(e);
                return fig;
            }
        };
        for _ in 0..self.repeat {
            let (server, data) = match self.start(super::SLUICE) {
                Ok(s) => s,
                Err(e) => {
                    fig.error = Some(e);
                    return fig;
                }
            };
            let state = data.join("client-state");
            let result = self.cli_run(&server.addr, &file, &state, flags);
            drop(server);
            let _ = std::fs::remove_dir_all(&data);
            match result {
                Ok((took, peak)) => {
                    fig.runs.push(took.as_secs_f64());
                    fig.peak_rss_kib = fig.peak_rss_kib.max(Some(peak));
                }
                Err(e) => {
                    fig.error = Some(e);
                    return fig;
                }
            }
        }
        fig
    }

    /// One `sluice upload`: its wall time and peak RSS (KiB).
    fn cli_run(&self, addr: &str, file: &Path, state: &Path, flags: &[&str]) -> Result<(Duration, u64), String> {
        let mut cmd = Command::new(&self.sluice);
        cmd.args(["upload", "--quiet", "--endpoint", &format!("http://{addr}/files/"), "--state-dir"])
            .arg(state)
            .args(flags)
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let t = Instant::now();
        let child = cmd.spawn().map_err(|e| format!("cannot start sluice upload: {e}"))?;
        let pid = child.id();
        // Sample VmHWM (a high-water mark, so sampling misses nothing but the last instant).
        let sampler = std::thread::spawn(move || {
            let mut peak = 0;
            while let Some(k) = proc::status_kib(pid, "VmHWM:") {
                peak = peak.max(k);
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        let out = child.wait_with_output().map_err(|e| format!("sluice upload: {e}"))?;
        let took = t.elapsed();
        let peak = sampler.join().unwrap_or(0);
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !stdout.starts_with(&format!("{}\t", file.display())) {
            return Err(format!(
                "sluice upload exited {}: {}{}",
                out.status,
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok((took, peak))
    }
}

fn curl_cmd(file: &Path) -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail", "-o", "/dev/null", "-H", "Expect:", "-T"]).arg(file);
    cmd
}

fn curl(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("cannot run curl: {e}"))?;
    if !out.status.success() {
        return Err(format!("curl exited {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}
