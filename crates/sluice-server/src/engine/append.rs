//! The one append pipeline: lock, check, admit, stream through a counting, capped,
//! sniffing body into the byte store, commit the offset, complete when asked.

use super::body::{IncomingBody, SniffWindow, Stop};
use super::{digest, Engine, Requester};
use crate::error::{Error, Result};
use crate::id::UploadId;
use crate::store::{AppendMode, BodyStream, Kind, StoreError, UploadRecord};
use bytes::Bytes;
use futures_util::Stream;
use sluice_core::{Algorithm, Append, Reason, SNIFF_LEN};
use std::time::SystemTime;

/// When an append completes its upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// When the bytes reach the declared length (tus, forms, Flow.js chunks).
    AtLength,
    /// Now: this is the last append (the IETF draft's `Upload-Complete: ?1`); a deferred
    /// length becomes the offset reached.
    Now,
    /// Not with this append (`Upload-Complete: ?0`), even if the length is reached.
    Later,
}

/// One append, as a front-end parsed it.
pub struct AppendInput<S> {
    /// Where the request says it starts.
    pub offset: u64,
    /// The body's declared length, if any.
    pub content_length: Option<u64>,
    /// A per-request checksum to verify (the append is then all or nothing).
    pub checksum: Option<(Algorithm, Vec<u8>)>,
    /// A length declared with this request (for a deferred one).
    pub declared_length: Option<u64>,
    /// The body must arrive whole, up to the bytes the upload still lacks: one that ends
    /// short is cut, and a cut body keeps nothing (Flow.js chunks, all or nothing).
    pub whole_body: bool,
    /// When to complete.
    pub finish: Finish,
    /// Compute the whole file's SHA-256 as it arrives (recorded in `UploadRecord::sha256`
    /// at completion), even if the client declared none.
    pub digest: bool,
    /// The body.
    pub body: S,
}

impl Engine {
    /// Streams a body into an upload at its offset and returns the record after it.
    /// Refusals the inputs allow come before a single byte is read; a stop mid-body
    /// keeps what the mode allows and answers why, with the offset reached.
    pub async fn append<S, E>(&self, who: Requester<'_>, id: &UploadId, input: AppendInput<S>) -> Result<UploadRecord>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let lease = self.lease(id).await?;
        let record = self.live(who, id).await?;
        let mut record = self.settle(record, Some(lease.fence())).await?;
        if record.is_complete() && input.finish != Finish::AtLength {
            // The draft: a completed upload takes no request at all (tus checks offsets as usual).
            return Err(Error::new(Reason::UploadCompleted, "This upload is complete; it takes no more bytes."));
        }
        if matches!(record.kind, Kind::Final(_)) {
            return Err(Error::new(
                Reason::FinalUploadImmutable,
                "This upload was joined from others; it takes no bytes of its own.",
            ));
        }
        let before = record.clone();
        if let Some(length) = input.declared_length {
            self.declare_length(who, &mut record, length)?;
        }
        let policy = who.caller.policy(&self.policy);
        let at = Append {
            upload_offset: record.offset,
            request_offset: input.offset,
            chunk_len: input.content_length,
            upload_length: record.length,
        };
        let allowed = policy.check_append(at)?;
        let _permit = self.admission.admit(&who.client)?;

        let sniff = self.sniff_window(&record, &policy);
        let mode = if input.checksum.is_some() || input.whole_body {
            AppendMode::AllOrNothing
        } else {
            AppendMode::KeepPartial
        };
        let checksum = input.checksum.map(|(algorithm, digest)| (algorithm.hasher(), digest));
        let mut body =
            IncomingBody::new(input.body, allowed, checksum, sniff, lease.cancellation(), self.settings.idle_timeout)
                .counting(self.metrics.received_bytes.clone());
        if input.whole_body {
            body = body.exact();
        }
        if let Some(state) = digest::resume(&record, input.digest) {
            body = body.digesting(state);
        }
        let start = record.offset;
        let stream: BodyStream<'_> = &mut body;
        self.metrics.in_flight.inc();
        let stored = self.bytes.append(id, start, stream, mode, lease.fence()).await;
        self.metrics.in_flight.dec();
        let (end, failure) = match stored {
            Ok(end) => (end, None),
            Err(StoreError::Partial { end, cause }) => (end, Some(*cause)),
            Err(e) => return Err(e.into()),
        };
        let stop = body.stop().cloned();
        if let Some(Stop::TypeRefused(refusal)) = stop {
            self.remove(id).await?;
            self.metrics.terminated.inc();
            return Err(refusal.into());
        }
        digest::keep(&mut record, body.take_digest(), body.received() == end - start);
        if let Some(mut head) = body.take_head() {
            // Only what was stored counts (an all-or-nothing chunk that failed stored nothing).
            head.truncate(usize::try_from(end).unwrap_or(usize::MAX));
            record.head = head;
        }
        if end != start || record != before {
            record.offset = end;
            record.fence = lease.fence();
            record.modified_at = SystemTime::now();
            self.records.commit(&record, start).await.map_err(|e| match e {
                StoreError::Fenced => interrupted(start),
                other => other.into(),
            })?;
        }
        if let Some(failure) = failure {
            tracing::warn!(upload = %id, offset = end, error = %failure, "append failed; what was stored is kept");
            return Err(failure.into());
        }
        if let Some(stop) = &stop {
            // For a body past its allowance, the same check with one byte more names the limit crossed.
            let too_long = || {
                policy.check_append(Append { chunk_len: Some(allowed + 1), ..at }).err().map_or_else(
                    || Error::new(Reason::ChunkTooLarge, "The request body was longer than allowed."),
                    Error::from,
                )
            };
            return Err(self.stop_error(id, end, stop, too_long));
        }
        let complete = match input.finish {
            // Not again for an empty append to a completed upload: one seal, one post-finish hook.
            Finish::AtLength => record.has_all_bytes() && !record.is_complete(),
            Finish::Now => {
                if record.length.is_none() {
                    policy.check_size(record.offset)?;
                    record.length = Some(record.offset);
                }
                if !record.has_all_bytes() {
                    return Err(Error::new(
                        Reason::InconsistentLength,
                        format!(
                            "The upload is declared complete at byte {}, but its length is {:?}.",
                            record.offset, record.length
                        ),
                    ));
                }
                true
            }
            Finish::Later => false,
        };
        if complete {
            record = self.complete(record, lease.fence()).await?;
        }
        lease.release().await;
        Ok(record)
    }

    /// Sets a deferred length (or checks a repeated one) on a record about to be appended to.
    fn declare_length(&self, who: Requester<'_>, record: &mut UploadRecord, length: u64) -> Result<()> {
        match record.length {
            Some(known) if known != length => Err(Error::new(
                Reason::InvalidHeader,
                format!("The upload's length is already {known}; it cannot change to {length}."),
            )),
            Some(_) => Ok(()),
            None if length < record.offset => Err(Error::new(
                Reason::InvalidHeader,
                format!("Length {length} is less than the {} bytes already received.", record.offset),
            )),
            None => {
                if record.kind == Kind::Whole {
                    who.caller.policy(&self.policy).check_size(length)?;
                }
                record.length = Some(length);
                Ok(())
            }
        }
    }

    /// The sniff window an append gathers into: the file's leading bytes that the record
    /// does not hold yet. Whole files are judged as soon as it fills; parts only gather.
    fn sniff_window(&self, record: &UploadRecord, policy: &std::sync::Arc<sluice_core::Policy>) -> Option<SniffWindow> {
        let needed = record.length.map_or(SNIFF_LEN, |len| SNIFF_LEN.min(usize::try_from(len).unwrap_or(SNIFF_LEN)));
        if record.head.len() >= needed || record.offset != record.head.len() as u64 {
            return None;
        }
        Some(SniffWindow {
            seen: record.head.clone(),
            needed,
            file_name: record.file_name(),
            policy: (record.kind == Kind::Whole).then(|| policy.clone()),
        })
    }

    /// The answer for a body that stopped early, with `offset` the bytes kept;
    /// `too_long` builds the refusal for a body past its allowance.
    fn stop_error(&self, id: &UploadId, offset: u64, stop: &Stop, too_long: impl FnOnce() -> Error) -> Error {
        match stop {
            Stop::TypeRefused(refusal) => refusal.clone().into(),
            Stop::TooLong => too_long(),
            Stop::ChecksumMismatch => Error::new(
                Reason::ChecksumMismatch,
                "The chunk's bytes do not match Upload-Checksum; it was discarded.",
            ),
            Stop::Interrupted if self.shutdown.is_cancelled() => {
                tracing::info!(upload = %id, offset, "append ended by shutdown");
                Error::new(
                    Reason::ServerBusy,
                    format!("The server is restarting; the upload is at byte {offset}. Resume shortly."),
                )
                .with_header("retry-after", crate::admission::RETRY_AFTER_SECS)
            }
            Stop::Interrupted => {
                tracing::info!(upload = %id, offset, "append interrupted by a newer request");
                interrupted(offset)
            }
            Stop::Idle => {
                tracing::info!(upload = %id, offset, "body idle too long");
                Error::new(
                    Reason::IdleTimeout,
                    format!("No data arrived for {:?}; the upload is at byte {offset}.", self.settings.idle_timeout),
                )
            }
            Stop::Client(why) => {
                tracing::info!(upload = %id, offset, error = %why, "body ended early");
                Error::new(
                    Reason::IncompleteBody,
                    format!("The body ended early ({why}); the upload is at byte {offset}."),
                )
            }
        }
    }
}

fn interrupted(offset: u64) -> Error {
    Error::new(Reason::UploadInterrupted, format!("A newer request took over; the upload is at byte {offset}."))
}
