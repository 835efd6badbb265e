//! Serde for byte vectors (`Vec<u8>`) as one block of bytes.
//!
//! postcard encodes a byte string (`serialize_bytes`) exactly as it encodes a sequence of `u8`
//! (a varint length, then the bytes), so a field marked `#[serde(with =
//! "lookout_protocol::serde_byte_vec")]` keeps its encoding byte for byte; only decoding gets
//! faster: one copy of the slice instead of one visit per byte. Sequences are still accepted
//! (formats that write bytes as a list of numbers, such as JSON).

use serde::de::{SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// Serialize `bytes` as a byte string.
pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// Deserialize a byte vector written by [`serialize`] or as a sequence of `u8`.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    struct ByteVec;
    impl<'de> Visitor<'de> for ByteVec {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            // At most 64 KiB reserved up front, whatever length the input claims.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64 * 1024));
            while let Some(byte) = seq.next_element()? {
                out.push(byte);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_bytes(ByteVec)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Plain {
        a: u8,
        bytes: Vec<u8>,
        b: u64,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Fast {
        a: u8,
        #[serde(with = "super")]
        bytes: Vec<u8>,
        b: u64,
    }

    #[test]
    fn a_byte_vector_keeps_its_postcard_encoding() {
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
