//! A sentence for a reason code, for when only the code is known: the plain HTML form's
//! redirect (`?error=CODE`), a log line, a stored failure. When a server or the local check
//! gives its own message (with the numbers in it) that one is better; this is the fallback.

use crate::error::code;
use sluice_core::Reason;

/// A sentence for `code` (one of core's reason codes or this crate's client codes). An unknown
/// code (a newer server's) gets a general sentence naming it.
pub fn message_for(code: &str) -> String {
    if let Some(reason) = Reason::from_code(code) {
        return reason_message(reason).to_string();
    }
    match code {
        code::CANCELLED => "The upload was cancelled.".into(),
        code::NETWORK_ERROR => "The server could not be reached.".into(),
        code::UNEXPECTED_RESPONSE => "The server answered in a way this page does not understand.".into(),
        code::READ_ERROR => "The file could not be read; it may have been moved or changed.".into(),
        code::INVALID_OPTIONS => "The page passed options the upload module does not accept.".into(),
        other => format!("The server refused the upload ({other})."),
    }
}

fn reason_message(reason: Reason) -> &'static str {
    use Reason::*;
    match reason {
        FileTooLarge => "A file was larger than the limit.",
        FileTooSmall => "A file was smaller than the minimum size.",
        ChunkTooLarge => "A piece of a file was larger than the server takes at once.",
        ExceedsUploadLength => "More data was sent than the file's declared size.",
        OffsetMismatch => "The upload and the server disagreed about how much was sent.",
        TypeNotAllowed => "A file was of a type that is not accepted.",
        ExtensionNotAllowed => "A file name had an extension that is not accepted.",
        FilenameRequired => "A file had no name.",
        FilenameTooLong => "A file name was too long.",
        InvalidFilename => "A file name was not acceptable.",
        TooManyFiles => "Too many files were sent at once.",
        BatchTooLarge => "The files sent at once were larger in total than allowed.",
        ChecksumMismatch => "A piece of a file arrived damaged.",
        ChecksumRequired => "The server requires a checksum with every piece.",
        ChecksumAlgorithmUnsupported => "The server does not accept this checksum algorithm.",
        InvalidHeader | InvalidMetadata | UploadLengthRequired | InvalidContentType | InvalidMultipart => {
            "The request was malformed."
        }
        MetadataTooLarge | RequestTooLarge | PartHeaderTooLarge => "The form was too large.",
        UnsupportedVersion => "The server does not speak this version of the upload protocol.",
        UploadNotFound => "The upload was not found on the server.",
        UploadGone => "The upload was removed from the server or expired.",
        UploadLocked => "Another request is writing to this upload.",
        UploadInterrupted => "A newer request for this upload took over.",
        IncompleteBody => "The connection ended before the whole piece arrived.",
        UploadIncomplete => "The upload is not finished yet.",
        TooManyFields => "The form had too many fields.",
        FieldTooLarge => "A form field was too long.",
        Unauthorized => "You are not allowed to upload here (sign in again).",
        RefusedByHook => "The application refused this upload.",
        HookUnavailable => "The application could not be asked about this upload; try again shortly.",
        ServerBusy => "The server is busy; try again shortly.",
        TooManyUploads => "Too many uploads from here at once; try again shortly.",
        IdleTimeout => "The connection stalled; what arrived was kept.",
        StorageFull => "The server has no room for this upload now; what arrived was kept.",
        InvalidPolicy => "The server's upload rules could not be read.",
        MethodNotAllowed => "The server does not allow this request.",
        BackendUnavailable => "The server's storage cannot be reached right now; try again shortly.",
        DigestMismatch => "The file arrived different from what was sent.",
        InvalidConcat | PartNotFinished | NotAPartial | FinalUploadImmutable => {
            "The parts of this upload could not be joined."
        }
        UploadCompleted => "The upload is already complete.",
        InconsistentLength => "The file's size did not match what was declared.",
        TooManyOpenUploads => "Too many unfinished uploads from here; finish or cancel some first.",
        RateLimited => "Uploads are started too quickly from here; try again shortly.",
        Internal => "The server failed; try again later.",
        _ => "The server refused the upload.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_sentence() {
        for &r in Reason::ALL {
            let m = message_for(r.code());
            assert!(m.ends_with('.') && !m.contains(r.code()), "{}: {m}", r.code());
        }
        assert_eq!(message_for("file_too_large"), "A file was larger than the limit.");
        assert_eq!(message_for("cancelled"), "The upload was cancelled.");
        assert_eq!(message_for("from_the_future"), "The server refused the upload (from_the_future).");
    }
}
