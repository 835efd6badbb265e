//! The one deterministic encoding used for everything that is signed, hashed or sent.
//!
//! Postcard (varint integers, length-prefixed sequences, no field names) gives one canonical byte
//! string per value for the types used here. Decoding checks the size cap *before* parsing, so a
//! length prefix can never claim more elements than there are bytes, and rejects trailing bytes
//! so two different byte strings never decode to the same signed value.

use serde::{de::DeserializeOwned, Serialize};

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is larger than this kind of message may be.
    #[error("message is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The cap for this kind.
        max: usize,
    },
    /// The bytes are not a valid encoding of the expected type.
    #[error("malformed encoding")]
    Malformed,
    /// A valid value was followed by extra bytes.
    #[error("{0} unexpected bytes after the message")]
    TrailingBytes(usize),
    /// A value decoded but breaks a structural rule (a length or count cap, a bad key).
    #[error("invalid message: {0}")]
    Invalid(&'static str),
}

/// Encode a value. Encoding a value of the protocol's own types cannot fail.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Postcard fails only on types serde cannot represent (maps with unknown length from
    // iterators, `serialize_none` on unsupported...), none of which the protocol defines.
    postcard::to_allocvec(value).unwrap_or_default()
}

/// Decode exactly one value of type `T` from `bytes`, which may be at most `max` long.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|_| DecodeError::Malformed)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_trailing_and_oversized() {
        let bytes = encode(&(1u32, String::from("hi")));
        assert_eq!(decode::<(u32, String)>(&bytes, 64), Ok((1, "hi".into())));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode::<(u32, String)>(&longer, 64),
            Err(DecodeError::TrailingBytes(1))
        );
        assert!(matches!(
            decode::<(u32, String)>(&bytes, 2),
            Err(DecodeError::TooLarge { .. })
        ));
        // A length prefix claiming four billion elements fails without allocating them.
        let hostile = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert_eq!(
            decode::<Vec<u64>>(&hostile, 64),
            Err(DecodeError::Malformed)
        );
    }
}
