//! [`RespCodec`]: a tokio-util codec over [`FrameDecoder`] and [`encode`].

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::decode::{FrameDecoder, Limits};
use crate::encode::encode;
use crate::error::ProtocolError;
use crate::frame::{Frame, ProtocolVersion};

/// Why a [`RespCodec`] stream failed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The peer sent malformed or over-limit RESP.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Reading or writing the transport failed, or it closed in the middle of a frame.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Frames in, frames out: for `tokio_util::codec::Framed`.
///
/// Decoding accepts RESP2 and RESP3 alike; encoding uses the codec's [`ProtocolVersion`],
/// which a connection switches with [`set_version`](RespCodec::set_version) after `HELLO`.
/// An end of stream in the middle of a frame is a [`CodecError::Io`].
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use cachalot_protocol::{Frame, Limits, ProtocolVersion, RespCodec};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = RespCodec::new(Limits::default(), ProtocolVersion::Resp3);
/// let mut buf = BytesMut::new();
/// codec.encode(Frame::Boolean(true), &mut buf).unwrap();
/// assert_eq!(codec.decode(&mut buf).unwrap(), Some(Frame::Boolean(true)));
/// ```
#[derive(Debug)]
pub struct RespCodec {
    decoder: FrameDecoder,
    version: ProtocolVersion,
}

impl RespCodec {
    /// A codec that decodes under `limits` and encodes in `version`.
    pub fn new(limits: Limits, version: ProtocolVersion) -> Self {
        RespCodec {
            decoder: FrameDecoder::new(limits),
            version,
        }
    }

    /// The dialect frames are encoded in.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// Switches the dialect frames are encoded in, from the next frame on.
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.version = version;
    }
}

impl Default for RespCodec {
    fn default() -> Self {
        RespCodec::new(Limits::default(), ProtocolVersion::default())
    }
}

impl Decoder for RespCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        Ok(self.decoder.decode(src)?)
    }
}

impl Encoder<Frame> for RespCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode(&frame, self.version, dst);
        Ok(())
    }
}

impl Encoder<&Frame> for RespCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode(frame, self.version, dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_stream_inside_a_frame_is_an_io_error() {
        let mut codec = RespCodec::default();
        let mut buf = BytesMut::from(&b"$5\r\nab"[..]);
        assert!(matches!(codec.decode_eof(&mut buf), Err(CodecError::Io(_))));
    }

    #[test]
    fn protocol_errors_keep_their_text() {
        let mut codec = RespCodec::default();
        let mut buf = BytesMut::from(&b"?\r\n"[..]);
        let err = codec.decode(&mut buf).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("Protocol error: unknown type byte '?'")
        );
    }

    #[test]
    fn the_version_switches_the_encoding() {
        let mut codec = RespCodec::default();
        let mut buf = BytesMut::new();
        codec.encode(&Frame::Null, &mut buf).ok();
        codec.set_version(ProtocolVersion::Resp3);
        codec.encode(Frame::Null, &mut buf).ok();
        assert_eq!(&buf[..], b"$-1\r\n_\r\n");
    }
}
