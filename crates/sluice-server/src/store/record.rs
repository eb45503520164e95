//! The upload record: what the server knows of an upload, in no protocol's terms.

use crate::id::UploadId;
use serde::{Deserialize, Serialize};
use sluice_core::tus::Metadata;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How an upload reached the server. Set by the server from the route that created
/// it, never from anything a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// tus 1.0 at `/files/`.
    Tus,
    /// The IETF resumable-uploads draft at `/files/`.
    Ietf,
    /// A plain HTML form at `/upload`.
    Form,
    /// The Flow.js / Resumable.js chunk protocol at `/flow`.
    Flow,
}

impl Protocol {
    /// The label used in hooks, logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tus => "tus",
            Protocol::Ietf => "ietf",
            Protocol::Form => "form",
            Protocol::Flow => "flow",
        }
    }
}

/// Whether an upload is a file of its own or a piece of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A whole file: sniffed, checked and announced when complete.
    #[default]
    Whole,
    /// A part of a file to be joined later: never sniffed, never announced.
    Partial,
    /// A file joined from partial uploads, in this order.
    Final(Vec<UploadId>),
}

/// Where an upload is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Taking bytes.
    #[default]
    Receiving,
    /// Every byte is in and the upload was finished: it takes no more.
    Complete,
}

/// A writer's fencing token: a store refuses a commit from a token older than the
/// last one it accepted, so a writer that lost its lease cannot overwrite a newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Fence(pub u64);

/// Everything the server records of an upload (bytes live in the byte store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// Its id.
    pub id: UploadId,
    /// The protocol that created it.
    pub protocol: Protocol,
    /// Whole, partial or final.
    pub kind: Kind,
    /// Declared length, `None` while deferred.
    pub length: Option<u64>,
    /// Bytes acknowledged: every byte below it is stored as received.
    pub offset: u64,
    /// Receiving or complete.
    pub state: State,
    /// Client-declared metadata (file name, type, anything else), parsed.
    #[serde(with = "metadata_text")]
    pub metadata: Metadata,
    /// The token subject that owns it, when authorization is on.
    pub owner: Option<String>,
    /// The client that created it (for per-client quotas).
    pub client: Option<String>,
    /// When it was created.
    #[serde(with = "unix_millis")]
    pub created_at: SystemTime,
    /// When bytes last arrived (creation time if none have).
    #[serde(with = "unix_millis")]
    pub modified_at: SystemTime,
    /// The file's leading bytes (at most [`sluice_core::SNIFF_LEN`]), kept so a type check
    /// never reads bytes back from the byte store.
    #[serde(with = "base64_bytes")]
    pub head: Vec<u8>,
    /// The sniffed MIME type, once complete.
    pub file_type: Option<String>,
    /// The whole file's SHA-256 (hex), once complete, when the client declared one
    /// (then verified) or the server computed it on the way (forms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The SHA-256 the client declared for the whole file (hex), checked at completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_sha256: Option<String>,
    /// The SHA-256 state over the bytes received so far, so a whole-file digest survives
    /// between requests and restarts without reading the file again.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_base64")]
    pub hash_state: Option<Vec<u8>>,
    /// The last writer's fencing token.
    pub fence: Fence,
    /// For a final upload gathered as its parts finish (Flow.js): how many leading
    /// parts are known to be complete.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parts_ready: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl UploadRecord {
    /// A new, empty record created now.
    pub fn new(id: UploadId, protocol: Protocol, kind: Kind, length: Option<u64>, metadata: Metadata) -> Self {
        let now = SystemTime::now();
        UploadRecord {
            id,
            protocol,
            kind,
            length,
            offset: 0,
            state: State::Receiving,
            metadata,
            owner: None,
            client: None,
            created_at: now,
            modified_at: now,
            head: Vec::new(),
            file_type: None,
            sha256: None,
            expected_sha256: None,
            hash_state: None,
            fence: Fence::default(),
            parts_ready: 0,
        }
    }

    /// Whether the upload was finished (it takes no more bytes).
    pub fn is_complete(&self) -> bool {
        self.state == State::Complete
    }

    /// Whether every declared byte has arrived (which, under the IETF draft, is not yet "complete").
    pub fn has_all_bytes(&self) -> bool {
        self.length == Some(self.offset)
    }

    /// Declared bytes not received yet (0 while the length is deferred).
    pub fn unreceived(&self) -> u64 {
        if self.is_complete() {
            return 0;
        }
        self.length.map_or(0, |length| length.saturating_sub(self.offset))
    }

    /// The declared file name.
    pub fn file_name(&self) -> Option<String> {
        self.metadata.file_name()
    }
}

mod metadata_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use sluice_core::tus::Metadata;

    pub(super) fn serialize<S: Serializer>(metadata: &Metadata, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&metadata.encode())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Metadata, D::Error> {
        let text = String::deserialize(d)?;
        Metadata::parse(&text).map_err(|e| serde::de::Error::custom(e.message))
    }
}

mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

mod optional_base64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => s.serialize_some(&STANDARD.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| STANDARD.decode(text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod unix_millis {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(to_millis(*at))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        Ok(UNIX_EPOCH + Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn to_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_json() {
        let mut record = UploadRecord::new(
            UploadId::random().unwrap(),
            Protocol::Tus,
            Kind::Final(vec![UploadId::random().unwrap()]),
            Some(10),
            Metadata::from_pairs([("filename", "a.txt")]),
        );
        record.head = b"\x89PNG".to_vec();
        record.offset = 4;
        let json = serde_json::to_string(&record).unwrap();
        let mut back: UploadRecord = serde_json::from_str(&json).unwrap();
        // Millisecond precision on the wire.
        back.created_at = record.created_at;
        back.modified_at = record.modified_at;
        assert_eq!(back, record);
    }
}
