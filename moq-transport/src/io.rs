//! Framed reading and writing of MoQT messages on QUIC / WebTransport streams.

use bytes::{Buf, BytesMut};
use moq_wire::codes::StreamCode;
use moq_wire::control::{ControlMessage, MAX_MESSAGE_LEN};
use moq_wire::{Decode, Version};
use web_transport_trait::{RecvStream, SendStream};

use crate::error::{Error, SessionError, StreamError, app_code, from_wt};
use crate::qlog::StreamLog;

/// The most we buffer ahead of the decoder on one stream before giving up on it: a control message plus slack.
const MAX_BUFFERED: usize = MAX_MESSAGE_LEN + 16;

/// The largest object payload we accept; a peer cannot make us buffer more for one object.
pub const MAX_OBJECT_PAYLOAD: usize = 64 * 1024 * 1024;

/// Reads messages and data headers from one receive stream, buffering partial input.
pub(crate) struct Reader<R> {
    stream: R,
    buf: BytesMut,
    fin: bool,
    /// GOAWAYs seen on this stream (request streams allow one).
    goaways: u8,
    /// Whether the peer writing this stream is the client (which may not name a new session URI).
    from_client: bool,
    /// The session's qlog, if it keeps one: messages read are logged.
    log: Option<StreamLog>,
}

impl<R: RecvStream> Reader<R> {
    pub(crate) fn new(stream: R) -> Self {
        Reader { stream, buf: BytesMut::new(), fin: false, goaways: 0, from_client: false, log: None }
    }

    /// A reader of a request stream's incoming side, written by a client peer if `from_client`.
    pub(crate) fn request(stream: R, from_client: bool) -> Self {
        Reader { from_client, ..Reader::new(stream) }
    }

    /// Logs the messages read to `log` (the session's qlog).
    pub(crate) fn logged(mut self, log: Option<StreamLog>) -> Self {
        self.log = log;
        self
    }

    /// Reads more bytes; returns false at FIN.
    async fn fill(&mut self) -> Result<bool, Error> {
        if self.fin {
            return Ok(false);
        }
        match self.stream.read_chunk(64 * 1024).await.map_err(from_wt)? {
            Some(chunk) => {
                self.buf.extend_from_slice(&chunk);
                Ok(true)
            }
            None => {
                self.fin = true;
                Ok(false)
            }
        }
    }

    /// Decodes one value, reading until it is complete. `Ok(None)` at a clean FIN before any byte of it.
    pub(crate) async fn decode<T: Decode>(&mut self, v: Version) -> Result<Option<T>, Error> {
        loop {
            if !self.buf.is_empty() {
                match T::decode_from(&mut self.buf, v) {
                    Ok(value) => return Ok(Some(value)),
                    Err(e) if e.is_short() => {}
                    Err(e) => {
                        // The bytes, for `moqt-decode` and interop reports.
                        let shown = &self.buf[..self.buf.len().min(256)];
                        tracing::debug!(error = %e, bytes = %crate::tls::hex(shown), "undecodable message");
                        return Err(e.into());
                    }
                }
            }
            if self.buf.len() > MAX_BUFFERED {
                return Err(Error::protocol("message too long"));
            }
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(Error::protocol("stream ended inside a message"))
                };
            }
        }
    }

    /// Reads one control message. Known departures of deployed peers that are unambiguous are accepted (see
    /// `moq_wire::control::compat` and docs/interop.md).
    /// The next message on a request stream, GOAWAY handled as the draft says: the first asks to migrate this one
    /// request (the request carries on here until the peer ends it); a second is a PROTOCOL_VIOLATION.
    pub(crate) async fn request_message(&mut self, v: Version) -> Result<Option<ControlMessage>, Error> {
        loop {
            match self.message(v).await? {
                Some(ControlMessage::GoAway(g)) => {
                    //= draft-ietf-moq-transport-19#message-goaway
                    //# The endpoint MUST close the session with a `PROTOCOL_VIOLATION`
                    //# ({{session-termination}}) if it receives more than one GOAWAY on the
                    //# control stream or on a single request stream.
                    self.goaways += 1;
                    if self.goaways > 1 {
                        return Err(Error::protocol("second GOAWAY on a request stream"));
                    }
                    //= draft-ietf-moq-transport-19#message-goaway
                    //# If a server receives a GOAWAY with a non-zero New Session URI Length it MUST
                    //# close the session with a `PROTOCOL_VIOLATION`.
                    if self.from_client && !g.new_session_uri.is_empty() {
                        return Err(Error::protocol("GOAWAY URI from a client"));
                    }
                    let uri = String::from_utf8_lossy(&g.new_session_uri);
                    tracing::debug!(%uri, timeout_ms = g.timeout_ms, "GOAWAY on a request stream");
                }
                other => return Ok(other),
            }
        }
    }

    pub(crate) async fn message(&mut self, v: Version) -> Result<Option<ControlMessage>, Error> {
        let mut length = 0;
        let msg = self
            .decode_with(|b| moq_wire::control::compat::decode_lenient(b, v).inspect(|(_, used)| length = *used))
            .await;
        if let Err(Error::Session(SessionError::Decode(e))) = &msg {
            let shown = &self.buf[..self.buf.len().min(256)];
            tracing::debug!(error = %e, bytes = %crate::tls::hex(shown), "undecodable message");
        }
        if let (Some(log), Ok(Some(m))) = (&self.log, &msg) {
            log.control(false, m, length);
        }
        msg
    }

    /// Runs a sans-IO decoder that reports how many header bytes it used, reading until it succeeds.
    pub(crate) async fn decode_with<T>(
        &mut self,
        mut f: impl FnMut(&[u8]) -> Result<(T, usize), moq_wire::DecodeError>,
    ) -> Result<Option<T>, Error> {
        loop {
            if !self.buf.is_empty() {
                match f(&self.buf) {
                    Ok((value, used)) => {
                        self.buf.advance(used);
                        return Ok(Some(value));
                    }
                    Err(e) if e.is_short() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if self.buf.len() > MAX_BUFFERED {
                return Err(Error::protocol("header too long"));
            }
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(Error::protocol("stream ended inside a header"))
                };
            }
        }
    }

    /// Reads exactly `len` payload bytes. Bytes already buffered are split off without copying; the rest is read
    /// straight from the stream, never more than the payload needs. A payload that arrives as one chunk is
    /// kept as that chunk (no copy); one that spans several is copied once into a buffer of its exact size
    /// (no reallocation while it grows).
    pub(crate) async fn payload(&mut self, len: usize) -> Result<bytes::Bytes, Error> {
        if len > MAX_OBJECT_PAYLOAD {
            return Err(Error::Stream(StreamError::ObjectTooLarge(len)));
        }
        if self.buf.len() >= len {
            return Ok(self.buf.split_to(len).freeze());
        }
        let mut out = self.buf.split();
        while out.len() < len {
            let chunk = if self.fin { None } else { self.stream.read_chunk(len - out.len()).await.map_err(from_wt)? };
            let Some(chunk) = chunk else {
                self.fin = true;
                return Err(Error::protocol("stream ended inside an object payload"));
            };
            if out.is_empty() && chunk.len() == len {
                return Ok(chunk);
            }
            if out.capacity() < len {
                out.reserve(len - out.len());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }

    /// Asks the peer to stop sending.
    pub(crate) fn stop(&mut self, code: StreamCode) {
        self.stream.stop(app_code(code));
    }
}

/// Writes messages on one send stream.
///
/// Dropping a writer that was neither finished nor reset resets the stream with CANCELLED: quinn would
/// otherwise FIN it, and a FIN claims that everything was delivered (draft-19 §10.4.3: early termination MUST
/// reset the stream).
pub(crate) struct Writer<S: SendStream> {
    stream: S,
    buf: BytesMut,
    done: bool,
    /// The session's qlog, if it keeps one: messages written are logged.
    log: Option<StreamLog>,
}

impl<S: SendStream> Drop for Writer<S> {
    fn drop(&mut self) {
        if !self.done {
            self.stream.reset(app_code(StreamCode::Cancelled));
        }
    }
}

impl<S: SendStream> Writer<S> {
    pub(crate) fn new(stream: S) -> Self {
        Writer { stream, buf: BytesMut::new(), done: false, log: None }
    }

    /// Logs the messages written to `log` (the session's qlog).
    pub(crate) fn logged(mut self, log: Option<StreamLog>) -> Self {
        self.log = log;
        self
    }

    pub(crate) async fn message(&mut self, msg: &ControlMessage, v: Version) -> Result<(), Error> {
        self.buf.clear();
        msg.encode(&mut self.buf, v)?;
        if let Some(log) = &self.log {
            log.control(true, msg, self.buf.len());
        }
        self.stream.write_all(&self.buf).await.map_err(from_wt)
    }

    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.stream.write_all(bytes).await.map_err(from_wt)
    }

    pub(crate) async fn write_chunk(&mut self, bytes: bytes::Bytes) -> Result<(), Error> {
        self.stream.write_chunk(bytes).await.map_err(from_wt)
    }

    pub(crate) fn finish(&mut self) {
        if !self.done {
            self.done = true;
            let _ = self.stream.finish();
        }
    }

    /// Resets the stream with the draft's `code`.
    pub(crate) fn reset(&mut self, code: StreamCode) {
        if !self.done {
            self.done = true;
            self.stream.reset(app_code(code));
        }
    }

    pub(crate) fn set_priority(&mut self, order: i32) {
        self.stream.set_priority(order);
    }

    /// Resolves when the peer stops the stream (STOP_SENDING) or it is otherwise closed.
    pub(crate) async fn closed(&mut self) -> Result<(), Error> {
        self.stream.closed().await.map_err(from_wt)
    }
}
