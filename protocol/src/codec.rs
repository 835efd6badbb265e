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

/// Padding bytes as the wire carries them (a length-prefixed byte string, encoded exactly as a
/// `Vec<u8>` is), kept in memory as a count while every byte is zero: a padded item does not
/// hold its padding twice (once in its encoded bytes, once decoded). A padding with any
/// non-zero byte keeps its bytes, so that a decoder can refuse it and tests can forge it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Padding(PaddingRepr);

#[derive(Clone, Debug, PartialEq, Eq)]
enum PaddingRepr {
    Zeros(usize),
    Bytes(Vec<u8>),
}

impl Default for PaddingRepr {
    fn default() -> Self {
        Self::Zeros(0)
    }
}

impl Padding {
    /// `len` zero bytes.
    pub fn zeros(len: usize) -> Self {
        Self(PaddingRepr::Zeros(len))
    }

    /// How many bytes the padding has.
    pub fn len(&self) -> usize {
        match &self.0 {
            PaddingRepr::Zeros(len) => *len,
            PaddingRepr::Bytes(bytes) => bytes.len(),
        }
    }

    /// Whether the padding has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every byte is zero.
    pub fn is_zero(&self) -> bool {
        matches!(self.0, PaddingRepr::Zeros(_))
    }

    /// The bytes themselves.
    pub fn to_vec(&self) -> Vec<u8> {
        match &self.0 {
            PaddingRepr::Zeros(len) => vec![0; *len],
            PaddingRepr::Bytes(bytes) => bytes.clone(),
        }
    }
}

impl From<Vec<u8>> for Padding {
    fn from(bytes: Vec<u8>) -> Self {
        if bytes.iter().all(|b| *b == 0) {
            Self::zeros(bytes.len())
        } else {
            Self(PaddingRepr::Bytes(bytes))
        }
    }
}

impl Serialize for Padding {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The same calls `Vec<u8>` makes (a sequence of `u8`), so the bytes are the same.
        use serde::ser::SerializeSeq;
        match &self.0 {
            PaddingRepr::Zeros(len) => {
                let mut seq = serializer.serialize_seq(Some(*len))?;
                for _ in 0..*len {
                    seq.serialize_element(&0u8)?;
                }
                seq.end()
            }
            PaddingRepr::Bytes(bytes) => bytes.serialize(serializer),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Padding {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Padding;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("padding bytes")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Padding, A::Error> {
                // Count zeros without storing them; keep the bytes only once one is not zero.
                let mut zeros = 0usize;
                while let Some(byte) = seq.next_element::<u8>()? {
                    if byte != 0 {
                        let mut bytes = vec![0; zeros];
                        bytes.push(byte);
                        while let Some(byte) = seq.next_element::<u8>()? {
                            bytes.push(byte);
                        }
                        return Ok(Padding(PaddingRepr::Bytes(bytes)));
                    }
                    zeros += 1;
                }
                Ok(Padding::zeros(zeros))
            }
        }
        deserializer.deserialize_seq(Visitor)
    }
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

    #[test]
    fn padding_is_encoded_as_its_bytes_and_kept_as_a_count() {
        for bytes in [
            vec![],
            vec![0; 1],
            vec![0; 127],
            vec![0; 128],
            vec![0; 1300],
            vec![0, 0, 7, 0],
            vec![9; 200],
        ] {
            let padding = Padding::from(bytes.clone());
            assert_eq!(padding.len(), bytes.len());
            assert_eq!(padding.is_zero(), bytes.iter().all(|b| *b == 0));
            assert_eq!(padding.to_vec(), bytes);
            // The same bytes on the wire as the `Vec<u8>` it replaces, inside a struct too.
            assert_eq!(encode(&padding), encode(&bytes));
            assert_eq!(encode(&(3u8, &padding, 4u8)), encode(&(3u8, &bytes, 4u8)));
            let wire = encode(&bytes);
            assert_eq!(decode::<Padding>(&wire, 4096), Ok(padding.clone()));
            if padding.is_zero() {
                assert_eq!(padding, Padding::zeros(bytes.len()));
            }
        }
        // A length prefix claiming more bytes than there are: malformed, nothing allocated.
        let hostile = [0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0];
        assert_eq!(decode::<Padding>(&hostile, 64), Err(DecodeError::Malformed));
    }

    /// Byte vectors marked `#[serde(with = "serde_bytes")]` (envelopes, stored records, sync
    /// messages) decode as one block and keep postcard's encoding of a `Vec<u8>` byte for byte.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_byte_vector_keeps_its_postcard_encoding() {
        #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Plain {
            a: u8,
            bytes: Vec<u8>,
            b: u64,
        }
        #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Fast {
            a: u8,
            #[serde(with = "serde_bytes")]
            bytes: Vec<u8>,
            b: u64,
        }
        for len in [0usize, 1, 127, 128, 300, 20_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let plain = Plain {
                a: 9,
                bytes: bytes.clone(),
                b: 1 << 40,
            };
            let fast = Fast {
                a: 9,
                bytes,
                b: 1 << 40,
            };
            let encoded = postcard::to_allocvec(&plain).unwrap();
            assert_eq!(postcard::to_allocvec(&fast).unwrap(), encoded);
            assert_eq!(postcard::from_bytes::<Fast>(&encoded).unwrap(), fast);
            // A length beyond the input is refused, not trusted.
            assert!(postcard::from_bytes::<Fast>(&encoded[..encoded.len() - 1]).is_err());
            let json = serde_json::to_string(&fast).unwrap();
            assert_eq!(serde_json::from_str::<Fast>(&json).unwrap(), fast);
        }
    }
}
