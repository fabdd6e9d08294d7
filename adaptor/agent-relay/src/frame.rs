//! The ttrpc frame: a 10-byte header (big-endian length and stream id, type, flags) and its
//! data. A frame is kept as one buffer, header included, so relaying it is a stream-id patch
//! and one write.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::envelope;

/// Header bytes before the data.
pub const HEADER_LEN: usize = 10;
/// Largest data length ttrpc (Go and Rust) accepts: 4 MiB.
pub const MAX_DATA_LEN: usize = 4 << 20;

/// Frame type: a call (opens a stream).
pub const TYPE_REQUEST: u8 = 1;
/// Frame type: the final answer of a stream.
pub const TYPE_RESPONSE: u8 = 2;
/// Frame type: stream data (ttrpc 1.2 streaming).
pub const TYPE_DATA: u8 = 3;

/// Request/Data flag: the sender will send no more on this stream.
pub const FLAG_REMOTE_CLOSED: u8 = 0x01;
/// Request flag: the sender keeps sending Data frames (client streaming).
pub const FLAG_REMOTE_OPEN: u8 = 0x02;

/// One whole frame, header included.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    buf: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the data: agent payloads carry container specs and secrets.
        f.debug_struct("Frame")
            .field("stream_id", &self.stream_id())
            .field("type", &self.kind())
            .field("flags", &self.flags())
            .field("len", &self.data().len())
            .finish()
    }
}

impl Frame {
    /// A frame with the given header fields around `data`.
    pub fn new(stream_id: u32, kind: u8, flags: u8, data: &[u8]) -> Frame {
        let mut buf = Vec::with_capacity(HEADER_LEN + data.len());
        buf.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
        buf.extend_from_slice(&stream_id.to_be_bytes());
        buf.push(kind);
        buf.push(flags);
        buf.extend_from_slice(data);
        Frame { buf }
    }

    /// A Response frame carrying only an error status.
    pub fn error_response(stream_id: u32, code: i32, message: &str) -> Frame {
        Frame::new(stream_id, TYPE_RESPONSE, 0, &envelope::error_response(code, message))
    }

    /// Stream id.
    pub fn stream_id(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }

    /// Replaces the stream id in place.
    pub fn set_stream_id(&mut self, id: u32) {
        self.buf[4..8].copy_from_slice(&id.to_be_bytes());
    }

    /// Frame type.
    pub fn kind(&self) -> u8 {
        self.buf[8]
    }

    /// Flags.
    pub fn flags(&self) -> u8 {
        self.buf[9]
    }

    /// The data after the header.
    pub fn data(&self) -> &[u8] {
        &self.buf[HEADER_LEN..]
    }

    /// The frame as sent on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Parses one frame from the front of `bytes`: the frame and the bytes it used, `Ok(None)`
    /// when more bytes are needed.
    pub fn parse(bytes: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        let Some(header) = bytes.get(..HEADER_LEN) else { return Ok(None) };
        let header: &[u8; HEADER_LEN] = header.try_into().unwrap_or(&[0; HEADER_LEN]);
        let len = check_header(header)?;
        let total = HEADER_LEN + len;
        Ok(bytes.get(..total).map(|b| (Frame { buf: b.to_vec() }, total)))
    }
}

/// What can go wrong reading a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer announced more than [`MAX_DATA_LEN`]; the data was skipped, the stream can
    /// be answered and the connection stays usable.
    #[error("message length {len} exceeds the maximum message size of {MAX_DATA_LEN}")]
    Oversized {
        /// Stream id of the skipped frame.
        stream_id: u32,
        /// Its frame type.
        kind: u8,
        /// The announced length.
        len: usize,
    },
    /// The connection ended or failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn check_header(header: &[u8; HEADER_LEN]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len > MAX_DATA_LEN {
        let stream_id = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        return Err(FrameError::Oversized { stream_id, kind: header[8], len });
    }
    Ok(len)
}

/// Reads the next frame. `Ok(None)` on a clean end of stream between frames. An oversized
/// frame's data is read and dropped before [`FrameError::Oversized`] is returned.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Frame>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        got += n;
    }
    let len = match check_header(&header) {
        Ok(len) => len,
        Err(e @ FrameError::Oversized { len, .. }) => {
            let skipped = tokio::io::copy(&mut r.take(len as u64), &mut tokio::io::sink()).await?;
            if skipped < len as u64 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let mut buf = Vec::with_capacity(HEADER_LEN + len);
    buf.extend_from_slice(&header);
    buf.resize(HEADER_LEN + len, 0);
    r.read_exact(&mut buf[HEADER_LEN..]).await?;
    Ok(Some(Frame { buf }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_frames_are_skipped() {
        let a = Frame::new(7, TYPE_REQUEST, 0, b"abc");
        let mut bytes = a.as_bytes().to_vec();
        let mut big = Frame::new(9, TYPE_REQUEST, 0, b"").as_bytes().to_vec();
        big[..4].copy_from_slice(&((MAX_DATA_LEN + 1) as u32).to_be_bytes());
        bytes.extend_from_slice(&big);
        bytes.extend(std::iter::repeat_n(0u8, MAX_DATA_LEN + 1));
        let b = Frame::new(11, TYPE_RESPONSE, 0, b"");
        bytes.extend_from_slice(b.as_bytes());

        let mut r = bytes.as_slice();
        assert_eq!(read_frame(&mut r).await.unwrap(), Some(a.clone()));
        match read_frame(&mut r).await {
            Err(FrameError::Oversized { stream_id: 9, kind: TYPE_REQUEST, len }) => {
                assert_eq!(len, MAX_DATA_LEN + 1);
            }
            other => panic!("expected oversized, got {other:?}"),
        }
        let got = read_frame(&mut r).await.unwrap().unwrap();
        assert_eq!((got.stream_id(), got.kind(), got.data().len()), (11, TYPE_RESPONSE, 0));
        assert!(read_frame(&mut r).await.unwrap().is_none());
        assert_eq!(Frame::parse(a.as_bytes()).unwrap().unwrap().0, a);
        assert!(Frame::parse(&a.as_bytes()[..5]).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_truncated_frame_is_an_error() {
        let a = Frame::new(1, TYPE_REQUEST, 0, b"abcdef");
        let mut r = &a.as_bytes()[..12];
        assert!(matches!(read_frame(&mut r).await, Err(FrameError::Io(_))));
        let mut r = &a.as_bytes()[..4];
        assert!(matches!(read_frame(&mut r).await, Err(FrameError::Io(_))));
    }

    #[test]
    fn set_stream_id_patches_the_header_only() {
        let mut f = Frame::new(1, TYPE_REQUEST, FLAG_REMOTE_CLOSED, b"xyz");
        f.set_stream_id(0xdead_beef);
        assert_eq!(f.stream_id(), 0xdead_beef);
        assert_eq!(
            (f.kind(), f.flags(), f.data()),
            (TYPE_REQUEST, FLAG_REMOTE_CLOSED, &b"xyz"[..])
        );
    }
}
