//! Flow.js / Resumable.js chunk parameters: any map of parameters is refused
//! or yields a chunk that lies inside the file and inside the policy.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sluice_core::Policy;
use sluice_server::fuzzing::Chunk;
use std::collections::HashMap;
use std::sync::OnceLock;

/// A parameter value: mostly numbers near the interesting edges, sometimes any text.
#[derive(Debug, Arbitrary)]
enum Value {
    Small(u8),
    Number(u64),
    Text(String),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Small(n) => n.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Text(t) => t.clone(),
        }
    }
}

const NAMES: [&str; 7] =
    ["ChunkNumber", "ChunkSize", "TotalSize", "TotalChunks", "Identifier", "Filename", "CurrentChunkSize"];

#[derive(Debug, Arbitrary)]
struct Input {
    policy: bool,
    resumable: bool,
    known: [Option<Value>; 7],
    extra: Vec<(String, String)>,
}

fn policies() -> &'static [Policy; 2] {
    static POLICIES: OnceLock<[Policy; 2]> = OnceLock::new();
    POLICIES.get_or_init(|| {
        [
            Policy::default(),
            Policy::from_toml(
                "max_file_size = 1000\nmax_chunk_size = 100\nmin_file_size = 1\nallowed_extensions = [\"png\"]",
            )
            .expect("seed policy"),
        ]
    })
}

fuzz_target!(|input: Input| {
    let policy = &policies()[usize::from(input.policy)];
    let prefix = if input.resumable { "resumable" } else { "flow" };
    let mut params: HashMap<String, String> = input.extra.into_iter().collect();
    for (name, value) in NAMES.iter().zip(&input.known) {
        if let Some(value) = value {
            params.insert(format!("{prefix}{name}"), value.text());
        }
    }
    let Ok(chunk) = Chunk::from_params(&params, policy) else { return };
    assert!(chunk.number >= 1 && chunk.number <= chunk.total_chunks, "{chunk:?}");
    let end = chunk.offset().checked_add(chunk.len()).expect("offset + len overflows");
    assert!(end <= chunk.total_size, "{chunk:?}");
    assert!(chunk.len() <= policy.max_chunk_size, "{chunk:?}");
    assert!(chunk.total_size <= policy.max_file_size, "{chunk:?}");
    if chunk.number == chunk.total_chunks {
        assert_eq!(end, chunk.total_size, "the last chunk ends the file: {chunk:?}");
    } else {
        assert_eq!(chunk.len(), chunk.chunk_size, "{chunk:?}");
    }
});
