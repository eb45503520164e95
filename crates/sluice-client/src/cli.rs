//! `sluice upload`: the flags, the run, and what is printed.
//!
//! stdout gets one line per uploaded file, `FILE<TAB>URL` (or one JSON object
//! per file with `--json`); stderr gets `FILE: code: message` for each file
//! refused or failed, and progress: bars on a terminal, plain lines otherwise,
//! nothing with `--quiet`. Exit status: 0 when every file is uploaded, 1 when
//! any is not (the others are still finished), 2 for usage errors (clap).

use crate::{expand, ChecksumChoice, Client, Error, LocalFile, Options, Progress, Uploaded};
use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sluice_core::{units, Algorithm};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Flags of `sluice upload`.
#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    /// Files to upload; a directory stands for every file below it.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// The server's creation URL, e.g. http://127.0.0.1:8080/files/.
    #[arg(long, env = "SLUICE_ENDPOINT")]
    pub endpoint: String,

    /// Bearer token (for a server run with --auth-secret).
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Files uploaded at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub parallel: u32,

    /// Parts of each file sent in parallel and joined by the server (needs its concatenation
    /// extension; otherwise each file goes up whole).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub parts: u32,

    /// Most bytes per request (e.g. "8 MiB"); the server's max_chunk_size caps it.
    #[arg(long, default_value = "32 MiB", value_parser = parse_chunk_size)]
    pub chunk_size: u64,

    /// Checksum per chunk; default: the strongest the server accepts (none if it takes none).
    #[arg(long, value_parser = ["sha256", "crc32c", "sha1", "none"])]
    pub checksum: Option<String>,

    /// Where resumption records are kept (default: the user's cache dir, e.g. ~/.cache/sluice/uploads).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,

    /// Print one JSON object per file on stdout instead of FILE<TAB>URL lines.
    #[arg(long)]
    pub json: bool,

    /// Print nothing on stderr (no progress, no reasons); the exit status still tells.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_chunk_size(text: &str) -> Result<u64, String> {
    match units::parse_size(text)? {
        0 => Err("the chunk size must be at least 1 byte".into()),
        n => Ok(n),
    }
}

impl UploadArgs {
    fn options(&self) -> Options {
        let checksum = match self.checksum.as_deref() {
            None => ChecksumChoice::Best,
            Some("none") => ChecksumChoice::Off,
            Some(name) => Algorithm::from_name(name).map_or(ChecksumChoice::Best, ChecksumChoice::Use),
        };
        let mut options = Options {
            token: self.token.clone().filter(|t| !t.is_empty()),
            chunk_size: self.chunk_size,
            checksum,
            parts: self.parts as usize,
            ..Options::default()
        };
        if let Some(dir) = &self.state_dir {
            options.state_dir = Some(dir.clone());
        }
        options
    }
}

/// Runs `sluice upload` on its own runtime; returns the exit status.
pub fn run(args: UploadArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("internal_error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(upload_all(args))
}

async fn upload_all(args: UploadArgs) -> ExitCode {
    let out = Output::new(&args);
    let client = match Client::connect(&args.endpoint, args.options()).await {
        Ok(client) => client,
        Err(e) => {
            out.reason(&args.endpoint, &e);
            return ExitCode::FAILURE;
        }
    };
    // Every file is checked before any is sent: a refused one costs no request.
    let mut failed = false;
    let mut accepted = Vec::new();
    for (path, listed) in expand(&args.files) {
        let opened = match listed {
            Ok(()) => client.open(&path).await,
            Err(e) => Err(e),
        };
        match opened {
            Ok(file) => accepted.push(file),
            Err(e) => {
                failed = true;
                out.failed(&path.display().to_string(), &e);
            }
        }
    }
    let mut uploads = futures_util::stream::iter(accepted)
        .map(|file| {
            let (client, out) = (&client, &out);
            async move {
                let result = out.send(&file, client).await;
                (file, result)
            }
        })
        .buffer_unordered(args.parallel as usize);
    while let Some((file, result)) = uploads.next().await {
        let shown = file.path.display().to_string();
        match result {
            Ok(done) => out.uploaded(&shown, &done),
            Err(e) => {
                failed = true;
                out.failed(&shown, &e);
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Everything printed.
struct Output {
    json: bool,
    quiet: bool,
    /// Progress bars when stderr is a terminal.
    bars: Option<MultiProgress>,
}

impl Output {
    fn new(args: &UploadArgs) -> Output {
        let bars = (!args.quiet && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Output { json: args.json, quiet: args.quiet, bars }
    }

    async fn send(&self, file: &LocalFile, client: &Client) -> Result<Uploaded, Error> {
        let shown = file.path.display().to_string();
        let progress = FileProgress::new(self, &shown, file.size);
        let result = client.upload(file, &progress).await;
        progress.finish(result.is_ok());
        result
    }

    fn uploaded(&self, file: &str, done: &Uploaded) {
        let line = if self.json {
            serde_json::json!({
                "file": file, "url": done.url, "size": done.size,
                "resumed_from": done.resumed_from, "parts": done.parts,
            })
            .to_string()
        } else {
            format!("{file}\t{}", done.url)
        };
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }

    fn failed(&self, file: &str, e: &Error) {
        if self.json {
            let line = serde_json::json!({"file": file, "error": {"code": e.code, "message": e.message}});
            println!("{line}");
        }
        self.reason(file, e);
    }

    fn reason(&self, what: &str, e: &Error) {
        if !self.quiet {
            self.note(format!("{what}: {e}"));
        }
    }

    fn note(&self, line: String) {
        match &self.bars {
            Some(bars) => bars.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}

/// One file's progress: a bar, plain lines every tenth, or nothing.
struct FileProgress<'a> {
    out: &'a Output,
    name: String,
    size: u64,
    bar: Option<ProgressBar>,
    /// Tenths reported so far as plain lines.
    tenths: AtomicU64,
}

impl<'a> FileProgress<'a> {
    fn new(out: &'a Output, name: &str, size: u64) -> FileProgress<'a> {
        let bar = out.bars.as_ref().map(|bars| {
            let style = ProgressStyle::with_template(
                "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            let bar = bars.add(ProgressBar::new(size).with_style(style));
            bar.set_message(name.to_string());
            bar
        });
        FileProgress { out, name: name.to_string(), size, bar, tenths: AtomicU64::new(0) }
    }

    fn finish(&self, ok: bool) {
        if let Some(bar) = &self.bar {
            if ok {
                bar.finish();
            } else {
                bar.abandon();
            }
        }
    }
}

impl Progress for FileProgress<'_> {
    fn acknowledged(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
            return;
        }
        if self.out.quiet || self.size == 0 {
            return;
        }
        let tenth = bytes.saturating_mul(10) / self.size;
        if tenth > self.tenths.fetch_max(tenth, Ordering::Relaxed) {
            self.out.note(format!("{}: {}% of {}", self.name, tenth * 10, units::format_size(self.size)));
        }
    }

    fn retrying(&self, error: &Error, delay: Duration) {
        if !self.out.quiet {
            self.out.note(format!("{}: {error}; retrying in {:.1} s", self.name, delay.as_secs_f64()));
        }
    }
}
