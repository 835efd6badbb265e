//! The `/lookout/sync/2` wire codec: one length-prefixed byte string each way.
//!
//! A frame is a big-endian `u32` length followed by that many bytes. The reader checks the
//! length against a hard cap before reading anything else, and grows its buffer only as bytes
//! actually arrive, so a peer that claims 4 GiB and sends nothing costs us nothing.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{request_response, StreamProtocol};

/// The protocol name of the sync request-response exchange.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/lookout/sync/2");

/// The largest sync request we send or accept, in bytes (256 KiB).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// The largest sync response we send or accept, in bytes (4 MiB).
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Length of the frame prefix in bytes.
const PREFIX_BYTES: usize = 4;

/// A [`request_response::Codec`] whose requests and responses are opaque byte strings, one
/// length-prefixed frame each way, of at most `REQUEST` and `RESPONSE` bytes.
///
/// The node's protocols encode their own messages into these bytes; this codec only frames
/// them and enforces the caps.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameCodec<const REQUEST: usize, const RESPONSE: usize>;

/// The sync codec: caps [`MAX_REQUEST_BYTES`] and [`MAX_RESPONSE_BYTES`].
pub type BytesCodec = FrameCodec<MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES>;

impl<const REQUEST: usize, const RESPONSE: usize> request_response::Codec
    for FrameCodec<REQUEST, RESPONSE>
{
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, REQUEST).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, RESPONSE).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request, REQUEST).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response, RESPONSE).await
    }
}

/// Reads one frame of at most `max` bytes.
///
/// Errors with [`io::ErrorKind::InvalidData`] if the prefix exceeds `max` (before reading or
/// allocating the body) and with [`io::ErrorKind::UnexpectedEof`] if the stream ends early.
pub async fn read_frame<T>(io: &mut T, max: usize) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut prefix = [0u8; PREFIX_BYTES];
    io.read_exact(&mut prefix).await?;
    let claimed = u64::from(u32::from_be_bytes(prefix));
    let max_u64 = u64::try_from(max).unwrap_or(u64::MAX);
    if claimed > max_u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("peer announced a {claimed}-byte sync frame; the limit is {max}"),
        ));
    }
    // Grow with the bytes that actually arrive rather than reserving `claimed` up front.
    let mut body = Vec::new();
    io.take(claimed).read_to_end(&mut body).await?;
    if u64::try_from(body.len()).unwrap_or(u64::MAX) != claimed {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "sync frame truncated: {} of {claimed} bytes arrived",
                body.len()
            ),
        ));
    }
    Ok(body)
}

/// Writes one frame, refusing (with [`io::ErrorKind::InvalidInput`]) bodies over `max` bytes.
pub async fn write_frame<T>(io: &mut T, body: &[u8], max: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    let len = match u32::try_from(body.len()) {
        Ok(len) if body.len() <= max => len,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing to send a {}-byte sync frame; the limit is {max}",
                    body.len()
                ),
            ))
        }
    };
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(body).await?;
    io.flush().await
}

#[cfg(test)]
mod tests {
    use futures::{executor::block_on, io::Cursor};

    use super::*;

    #[test]
    fn frame_round_trips() {
        let mut wire = Cursor::new(Vec::new());
        assert!(block_on(write_frame(&mut wire, b"hello", 16)).is_ok());
        assert_eq!(wire.get_ref().as_slice(), b"\x00\x00\x00\x05hello");
        wire.set_position(0);
        assert_eq!(
            block_on(read_frame(&mut wire, 16)).ok(),
            Some(b"hello".to_vec())
        );
    }

    #[test]
    fn oversized_prefix_is_rejected_before_the_body() {
        let mut wire = Cursor::new(vec![0x00, 0x00, 0x00, 0x11]);
        let err = block_on(read_frame(&mut wire, 16)).err().map(|e| e.kind());
        assert_eq!(err, Some(io::ErrorKind::InvalidData));
    }

    #[test]
    fn truncated_body_is_rejected() {
        let mut wire = Cursor::new(b"\x00\x00\x00\x05hel".to_vec());
        let err = block_on(read_frame(&mut wire, 16)).err().map(|e| e.kind());
        assert_eq!(err, Some(io::ErrorKind::UnexpectedEof));
    }

    #[test]
    fn oversized_body_is_not_written() {
        let mut wire = Cursor::new(Vec::new());
        let err = block_on(write_frame(&mut wire, &[0u8; 17], 16))
            .err()
            .map(|e| e.kind());
        assert_eq!(err, Some(io::ErrorKind::InvalidInput));
        assert!(wire.get_ref().is_empty());
    }
}
