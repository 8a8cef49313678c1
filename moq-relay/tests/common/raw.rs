//! A MoQT peer written by hand on top of moq-wire, for tests that need exact control over what goes on the wire
//! (which stream opens first, which subgroup ids, datagrams) where our own session would choose for itself.

use bytes::{Bytes, BytesMut};
use moq_transport::quic::{Client, path_and_authority};
use moq_transport::wire::codes::StreamCode;
use moq_transport::wire::control::*;
use moq_transport::wire::data::{
    DatagramContent, FetchHeader, FetchObject, FetchWriter, ObjectDatagram, SubgroupHeader, SubgroupIdMode,
    SubgroupWriter,
};
use moq_transport::wire::kvp::Properties;
use moq_transport::wire::namespace::TrackNamespace;
use moq_transport::wire::params::Parameters;
use moq_transport::wire::setup::SetupOptions;
use moq_transport::wire::token::AuthToken;
use moq_transport::wire::{
    Decode, Encode, GroupId, GroupOrder, Location, ObjectId, RequestId, SubgroupId, TrackAlias, Version,
};
use moq_transport::{SessionConfig, app_code};
use tokio::time::timeout;
use web_transport_quinn::{RecvStream, SendStream, Session};

use super::{Running, T};

/// Reads one control message from a stream, buffering what follows.
pub struct MessageReader {
    recv: RecvStream,
    buf: BytesMut,
    version: Version,
}

impl MessageReader {
    pub fn new(recv: RecvStream, version: Version) -> MessageReader {
        MessageReader { recv, buf: BytesMut::new(), version }
    }

    /// The next message; `None` at FIN.
    pub async fn next(&mut self) -> Option<ControlMessage> {
        loop {
            match ControlMessage::decode_from(&mut self.buf, self.version) {
                Ok(m) => return Some(m),
                Err(e) if e.is_short() => {}
                Err(e) => panic!("peer sent a malformed message: {e}"),
            }
            let read = web_transport_trait::RecvStream::read_chunk(&mut self.recv, 64 * 1024);
            let chunk = timeout(T, read).await.expect("a message in time").ok()??;
            self.buf.extend_from_slice(&chunk);
        }
    }

    pub fn stop(&mut self, code: StreamCode) {
        web_transport_trait::RecvStream::stop(&mut self.recv, app_code(code));
    }
}

/// A raw-QUIC MoQT session set up by hand: our control stream stays open for as long as this lives.
pub struct RawPeer {
    pub session: Session,
    pub version: Version,
    control: SendStream,
    _peer_control: RecvStream,
    next_request: u64,
}

impl RawPeer {
    /// A raw QUIC session.
    pub async fn connect(relay: &Running, version: Version) -> RawPeer {
        RawPeer::connect_over(relay, version, false).await
    }

    /// A raw QUIC or WebTransport session.
    pub async fn connect_over(relay: &Running, version: Version, webtransport: bool) -> RawPeer {
        RawPeer::connect_with_tokens(relay, version, webtransport, Vec::new()).await
    }

    /// A session whose SETUP carries these AUTHORIZATION_TOKEN options.
    pub async fn connect_with_tokens(
        relay: &Running,
        version: Version,
        webtransport: bool,
        tokens: Vec<AuthToken>,
    ) -> RawPeer {
        let (session, version, control) = send_setup(relay, version, webtransport, tokens).await;
        let mut peer_control = MessageReader::new(timeout(T, session.accept_uni()).await.unwrap().unwrap(), version);
        // The relay's control stream starts with its stream type, which is SETUP's message type.
        assert!(matches!(peer_control.next().await, Some(ControlMessage::Setup(_))));
        RawPeer { session, version, control, _peer_control: peer_control.recv, next_request: 0 }
    }

    /// Opens a request stream with `msg` and returns it with the first answer.
    pub async fn request(&mut self, msg: ControlMessage) -> (SendStream, MessageReader, ControlMessage) {
        let (mut send, recv) = self.session.open_bi().await.unwrap();
        send.write_all(&frame(msg, self.version)).await.unwrap();
        let mut reader = MessageReader::new(recv, self.version);
        let answer = reader.next().await.expect("an answer");
        (send, reader, answer)
    }

    /// The next Request ID of ours (a client's are even).
    pub fn request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 2;
        id
    }

    /// PUBLISH_NAMESPACE, answered with REQUEST_OK; the request stays open while the returned streams live.
    pub async fn announce(&mut self, ns: &str) -> (SendStream, MessageReader) {
        let request_id = self.request_id();
        let namespace = TrackNamespace::from_path(ns).unwrap();
        let msg = PublishNamespace { request_id, namespace, params: Parameters::default() };
        let (send, reader, answer) = self.request(msg.into()).await;
        assert!(matches!(answer, ControlMessage::RequestOk(_)), "{answer:?}");
        (send, reader)
    }

    /// PUBLISH of `ns`/`track` with `alias`, answered with REQUEST_OK (PUBLISH_OK); the request stays open.
    pub async fn publish(&mut self, ns: &str, track: &str, alias: u64) -> (SendStream, MessageReader, RequestOk) {
        let request_id = self.request_id();
        let msg = Publish {
            request_id,
            track: super::name(ns, track),
            track_alias: TrackAlias(alias),
            params: Parameters::default(),
            track_properties: Properties::new(),
        };
        let (send, reader, answer) = self.request(msg.into()).await;
        let ControlMessage::RequestOk(ok) = answer else { panic!("expected PUBLISH_OK, got {answer:?}") };
        (send, reader, ok)
    }

    /// Waits for the relay's SUBSCRIBE and accepts it with `alias`.
    pub async fn accept_subscribe(&mut self, alias: u64) -> (SendStream, MessageReader, Subscribe) {
        let (mut send, recv) = timeout(T, self.session.accept_bi()).await.expect("a SUBSCRIBE").unwrap();
        let mut reader = MessageReader::new(recv, self.version);
        let Some(ControlMessage::Subscribe(sub)) = reader.next().await else { panic!("expected SUBSCRIBE") };
        let ok = SubscribeOk {
            track_alias: TrackAlias(alias),
            params: Parameters::default(),
            track_properties: Properties::new(),
        };
        send.write_all(&frame(ok.into(), self.version)).await.unwrap();
        (send, reader, sub)
    }

    /// Waits for the relay's FETCH, answers FETCH_OK and opens the data stream with one object (0, 0) on it.
    pub async fn accept_fetch(&mut self, end: Location) -> (SendStream, SendStream) {
        let (mut send, recv) = timeout(T, self.session.accept_bi()).await.expect("a FETCH").unwrap();
        let mut reader = MessageReader::new(recv, self.version);
        let Some(ControlMessage::Fetch(fetch)) = reader.next().await else { panic!("expected FETCH") };
        std::mem::forget(reader);
        let ok = FetchOk { end_of_track: false, end_location: end, ..Default::default() };
        send.write_all(&frame(ok.into(), self.version)).await.unwrap();
        let mut data = self.session.open_uni().await.unwrap();
        let mut buf = BytesMut::new();
        FetchHeader { request_id: fetch.request_id }.encode(&mut buf, self.version).unwrap();
        let object = FetchObject {
            group_id: GroupId(0),
            subgroup_id: Some(SubgroupId(0)),
            object_id: ObjectId(0),
            publisher_priority: 128,
            properties: Properties::new(),
            payload_len: 5,
        };
        FetchWriter::new(GroupOrder::Ascending, self.version).write_object(&mut buf, &object).unwrap();
        buf.extend_from_slice(b"first");
        data.write_all(&buf).await.unwrap();
        (send, data)
    }

    /// Opens a subgroup stream and writes its header.
    pub async fn subgroup(&self, alias: u64, group: u64, subgroup: SubgroupIdMode, end_of_group: bool) -> Subgroup {
        let header = SubgroupHeader {
            track_alias: TrackAlias(alias),
            group_id: GroupId(group),
            subgroup,
            publisher_priority: Some(128),
            has_properties: false,
            end_of_group,
            first_object: true,
        };
        let mut stream = self.session.open_uni().await.unwrap();
        let writer = SubgroupWriter::new(header, self.version);
        let mut buf = BytesMut::new();
        writer.write_header(&mut buf).unwrap();
        stream.write_all(&buf).await.unwrap();
        Subgroup { stream, writer }
    }

    /// Sends one object as an OBJECT_DATAGRAM.
    pub fn datagram(&self, alias: u64, group: u64, object: u64, payload: &'static [u8]) {
        let d = ObjectDatagram {
            track_alias: TrackAlias(alias),
            group_id: GroupId(group),
            object_id: ObjectId(object),
            publisher_priority: Some(128),
            properties: Properties::new(),
            end_of_group: false,
            content: DatagramContent::Payload(Bytes::from_static(payload)),
        };
        self.session.send_datagram(Bytes::from(d.encode_to_vec(self.version).unwrap())).unwrap();
    }

    /// A session that sends SETUP and resets its control stream at once, without waiting for the answer.
    pub async fn setup_and_reset(relay: &Running, webtransport: bool) -> web_transport_quinn::Session {
        let (session, _, mut control) = send_setup(relay, Version::Draft19, webtransport, Vec::new()).await;
        let _ = control.reset(0);
        session
    }

    /// Resets our control stream, which the draft makes a PROTOCOL_VIOLATION.
    pub fn reset_control(&mut self) {
        let _ = self.control.reset(0);
    }
}

/// Connects and opens the control stream with our SETUP (with path and authority over raw QUIC).
pub async fn send_setup(
    relay: &Running,
    version: Version,
    webtransport: bool,
    auth_tokens: Vec<AuthToken>,
) -> (web_transport_quinn::Session, Version, SendStream) {
    let client = Client::new(relay.trust.clone(), SessionConfig::default()).unwrap().with_versions(&[version]);
    let url = relay.url(webtransport);
    let (session, version) = timeout(T, client.connect_transport(&url)).await.unwrap().unwrap();
    let mut control = session.open_uni().await.unwrap();
    let mut options = SetupOptions { auth_tokens, ..Default::default() };
    if !webtransport {
        let (path, authority) = path_and_authority(&url);
        options.path = Some(Bytes::from(path));
        options.authority = Some(Bytes::from(authority));
    }
    control.write_all(&frame(Setup { options }.into(), version)).await.unwrap();
    (session, version, control)
}

/// One subgroup stream being written.
pub struct Subgroup {
    stream: SendStream,
    writer: SubgroupWriter,
}

impl Subgroup {
    pub async fn object(&mut self, id: u64, payload: &[u8]) {
        let mut buf = BytesMut::new();
        self.writer.write_object(&mut buf, ObjectId(id), Properties::new(), payload).unwrap();
        self.stream.write_all(&buf).await.unwrap();
    }

    pub fn finish(mut self) {
        self.stream.finish().unwrap();
    }
}

/// An explicit subgroup id.
pub fn explicit(id: u64) -> SubgroupIdMode {
    SubgroupIdMode::Explicit(SubgroupId(id))
}

pub fn frame(msg: ControlMessage, v: Version) -> Vec<u8> {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, v).unwrap();
    buf.to_vec()
}
