//! A request-response codec for raw byte messages: a 4-byte big-endian length, then the bytes.
//! Requests and responses have separate size limits; anything larger is refused before it is
//! read, so a peer cannot make us allocate more than the limit, and a frame's memory grows with
//! the bytes that actually arrive (a length prefix alone holds at most 64 KiB).

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;

/// Length-prefixed byte messages with a maximum size each way.
#[derive(Debug, Clone)]
pub struct BytesCodec {
    pub max_request: usize,
    pub max_response: usize,
}

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {max}"),
        ));
    }
    // The buffer grows with the bytes that arrive, from at most `FIRST_READ`: a length prefix
    // alone (then silence) holds no more than that, however large the frame it announces.
    let mut buf = Vec::with_capacity(len.min(FIRST_READ));
    io.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame ended after {} of its {len} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

/// Bytes reserved for a frame before any of it has arrived.
const FIRST_READ: usize = 64 * 1024;

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    data: &[u8],
    max: usize,
) -> io::Result<()> {
    if data.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes exceeds {max}", data.len()),
        ));
    }
    let len = u32::try_from(data.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(data).await?;
    io.close().await
}

impl Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_frame(io, self.max_request).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_frame(io, self.max_response).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        write_frame(io, &req, self.max_request).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        write_frame(io, &res, self.max_response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u32, body: &[u8]) -> futures::io::Cursor<Vec<u8>> {
        let mut b = len.to_be_bytes().to_vec();
        b.extend_from_slice(body);
        futures::io::Cursor::new(b)
    }

    /// A frame is read whole; one over the bound is refused before its bytes are read; one cut
    /// short is an error naming how much came (and its buffer held only what came).
    #[test]
    fn frames_are_read_whole_bounded_and_never_trusted_for_their_length() {
        futures::executor::block_on(async {
            let body: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
            let got = read_frame(&mut frame(200_000, &body), 1 << 20)
                .await
                .unwrap();
            assert_eq!(got, body);
            let e = read_frame(&mut frame(2 << 20, &body), 1 << 20)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            // A prefix announcing the bound, then 10 bytes and the end of the stream.
            let e = read_frame(&mut frame(1 << 20, &[7; 10]), 1 << 20)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
            assert!(
                e.to_string().contains("after 10 of its 1048576 bytes"),
                "{e}"
            );
            assert_eq!(read_frame(&mut frame(0, &[]), 16).await.unwrap(), b"");
        });
    }
}
