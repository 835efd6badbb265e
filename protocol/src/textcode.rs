//! Short text codes people paste, read aloud or scan as QR codes.
//!
//! A code is `PREFIX` + `-` + RFC 4648 base32 (no padding) of the payload followed by a 4-byte
//! checksum. Base32 upper case is QR alphanumeric mode, so codes make small QR symbols, and the
//! checksum turns a mistyped or truncated code into a clear error instead of a wrong key.

use data_encoding::BASE32_NOPAD;

use crate::ids::{context, hash};

/// Why a text code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextCodeError {
    /// The code is for something else (e.g. an invite pasted where a join request was expected).
    #[error("this is not a {expected} code (it should start with {expected}-)")]
    WrongKind {
        /// The prefix that was expected.
        expected: &'static str,
    },
    /// The code has characters outside base32 or is cut short.
    #[error("the code is damaged: check it was copied completely")]
    Damaged,
    /// The checksum does not match: a typo or a changed character.
    #[error("the code's checksum does not match: it was mistyped or altered")]
    BadChecksum,
    /// The code is longer than any valid code.
    #[error("the code is too long")]
    TooLong,
}

const CHECKSUM_LEN: usize = 4;
/// Longest code accepted, in characters.
pub const MAX_CODE_CHARS: usize = 8192;

/// Encode `payload` as a code starting with `prefix`.
pub fn encode(prefix: &str, payload: &[u8]) -> String {
    let mut bytes = payload.to_vec();
    let sum = hash(context::TEXT_CHECKSUM, &[prefix.as_bytes(), payload]);
    bytes.extend_from_slice(&sum[..CHECKSUM_LEN]);
    format!("{prefix}-{}", BASE32_NOPAD.encode(&bytes))
}

/// Decode a code that must start with `prefix`. White space and case are forgiven.
pub fn decode(prefix: &'static str, code: &str) -> Result<Vec<u8>, TextCodeError> {
    if code.len() > MAX_CODE_CHARS {
        return Err(TextCodeError::TooLong);
    }
    let cleaned: String = code
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let body = cleaned
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .ok_or(TextCodeError::WrongKind { expected: prefix })?;
    let bytes = BASE32_NOPAD
        .decode(body.as_bytes())
        .map_err(|_| TextCodeError::Damaged)?;
    if bytes.len() < CHECKSUM_LEN {
        return Err(TextCodeError::Damaged);
    }
    let (payload, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    let expected = hash(context::TEXT_CHECKSUM, &[prefix.as_bytes(), payload]);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        sum,
        &expected[..CHECKSUM_LEN],
    )) {
        return Err(TextCodeError::BadChecksum);
    }
    Ok(payload.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let code = encode("LKTEST", b"hello world");
        assert!(code.starts_with("LKTEST-"));
        assert_eq!(decode("LKTEST", &code).as_deref(), Ok(&b"hello world"[..]));
        assert_eq!(
            decode("LKTEST", &code.to_lowercase().replace("lktest", "LKTEST")).as_deref(),
            Ok(&b"hello world"[..])
        );
        assert_eq!(
            decode("LKOTHER", &code),
            Err(TextCodeError::WrongKind {
                expected: "LKOTHER"
            })
        );
        let mut chars: Vec<char> = code.chars().collect();
        let last = chars.len() - 3;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        let typo: String = chars.into_iter().collect();
        assert!(matches!(
            decode("LKTEST", &typo),
            Err(TextCodeError::BadChecksum | TextCodeError::Damaged)
        ));
        assert_eq!(decode("LKTEST", "LKTEST-!!"), Err(TextCodeError::Damaged));
    }
}
