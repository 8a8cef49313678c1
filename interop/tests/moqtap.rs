//! Our relay and library against an independent MoQT implementation: `moqtap-client` (crates.io, drafts 7-22)
//! at every draft both speak (18 and 19), in both directions: moqtap subscribes to and fetches from a track our
//! library publishes through our relay, and publishes (PUBLISH_NAMESPACE, answering the relay's SUBSCRIBE, and
//! PUBLISH) tracks our library subscribes to through the relay. docs/interop.md lists what this covers.

use std::time::Duration;

use moq_relay::{Config, Relay};
use moq_transport::quic::Client;
use moq_transport::tls::{Trust, parse_fingerprint};
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::{Object, Origin, SessionConfig, TrackEnd, TrackInfo, TrackProducer};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(10);

/// A relay on loopback until the returned sender drops: its QUIC port and how to trust it.
async fn relay() -> (u16, Trust, tokio::sync::oneshot::Sender<()>) {
    let config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        http_bind: String::new(),
        // A loaded test machine's late timers would make overload control skip groups.
        overload_lag: Duration::ZERO,
        ..Config::default()
    };
    let relay = Relay::bind(&config).await.unwrap();
    let port = relay.local_addr().unwrap().port();
    let trust = Trust::Fingerprints(vec![parse_fingerprint(relay.fingerprint()).unwrap()]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    (port, trust, stop)
}

/// Our library's session to the relay, serving `origin`.
async fn ours(port: u16, trust: &Trust, origin: Origin) -> moq_transport::Session {
    let client = Client::new(trust.clone(), SessionConfig { origin, ..Default::default() }).unwrap();
    let url = url(port);
    timeout(T, client.connect(&url)).await.unwrap().unwrap()
}

fn url(port: u16) -> url::Url {
    url::Url::parse(&format!("moqt://localhost:{port}/")).unwrap()
}

/// The payload our publisher writes for an object: checked on the other side.
fn payload(group: u64, object: u64) -> String {
    format!("group {group} object {object}")
}

/// Writes a group of three objects every 20 ms until aborted.
fn keep_publishing(track: TrackProducer) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for g in 0.. {
            let objects = (0..3).map(|o| Object::new(o, payload(g, o)));
            if track.write_group(g, objects).is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// The same tests for each draft: moqtap's modules per draft have the same shape.
macro_rules! interop {
    ($draft:ident, $version:expr, $variant:ident) => {
        mod $draft {
            use super::*;
            use moqtap_client::$draft::connection::{ClientConfig, Connection, ConnectionError, TransportType};
            use moqtap_codec::dispatch::AnySubgroupHeader;
            use moqtap_codec::types::TrackNamespace as TheirNamespace;
            use moqtap_codec::varint::VarInt;
            use moqtap_codec::$draft::data_stream::{GroupOrder, SubgroupHeader, SubgroupObject};
            use moqtap_codec::$draft::message::{ControlMessage, SubscribeOk};

            fn v(n: u64) -> VarInt {
                VarInt::from_u64(n).unwrap()
            }

            fn namespace(path: &str) -> TheirNamespace {
                TheirNamespace(path.split('/').map(|f| f.as_bytes().to_vec()).collect())
            }

            async fn theirs(port: u16) -> Connection {
                let config = ClientConfig {
                    draft: $version,
                    transport: TransportType::Quic,
                    skip_cert_verification: true,
                    ca_certs: Vec::new(),
                    setup_parameters: Vec::new(),
                };
                timeout(T, Connection::connect(&format!("127.0.0.1:{port}"), config)).await.unwrap().unwrap()
            }

            /// moqtap writes `objects` objects of group `group` on one subgroup stream (Subgroup ID in the header,
            /// publisher priority present, no properties) and FINs it.
            async fn write_group(conn: &Connection, alias: u64, group: u64, priority: u8, objects: u64) {
                let header = SubgroupHeader {
                    header_type: 0x14,
                    track_alias: v(alias),
                    group_id: v(group),
                    subgroup_id: v(0),
                    publisher_priority: Some(priority),
                };
                let mut stream = conn.open_subgroup_stream(&AnySubgroupHeader::$variant(header)).await.expect("open");
                for o in 0..objects {
                    let body = payload(group, o).into_bytes();
                    let object = SubgroupObject {
                        object_id: v(o),
                        extension_headers: Vec::new(),
                        payload_length: v(body.len() as u64),
                        object_status: None,
                        payload: body,
                    };
                    stream.write_subgroup_object(&object).await.expect("write");
                }
                stream.finish().await.expect("FIN");
            }

            /// Our side reads group `group` with `objects` objects, ids and payloads as `write_group` wrote them.
            async fn read_group(consumer: &mut moq_transport::TrackConsumer, group: u64, objects: u64) {
                let mut g = timeout(T, consumer.next_group()).await.unwrap().expect("a group");
                assert_eq!(g.id().0, group);
                let mut subgroup = timeout(T, g.next_subgroup()).await.unwrap().expect("a subgroup");
                for o in 0..objects {
                    let object = timeout(T, subgroup.next()).await.unwrap().expect("an object");
                    assert_eq!((object.id.0, &object.payload[..]), (o, payload(group, o).as_bytes()));
                }
            }

            /// moqtap offers only this draft's ALPN: the relay sets the session up at it.
            #[tokio::test]
            async fn the_session_is_set_up_at_this_draft() {
                let (port, _trust, _relay) = relay().await;
                let conn = theirs(port).await;
                assert_eq!(conn.draft(), $version);
            }

            /// moqtap subscribes through our relay to a track our library publishes, and every object arrives
            /// with the ids and payload it was written with.
            #[tokio::test]
            async fn moqtap_subscribes_to_our_publisher_through_the_relay() {
                let (port, trust, _relay) = relay().await;
                let origin = Origin::new();
                let track = TrackProducer::new(TrackInfo::new(FullTrackName::new(
                    TrackNamespace::from_path("interop/ours").unwrap(),
                    "video",
                )));
                origin.publish_track(track.clone());
                let publisher = ours(port, &trust, origin).await;
                let _announced =
                    publisher.publish_namespace(TrackNamespace::from_path("interop/ours").unwrap()).await.unwrap();
                let writer = keep_publishing(track);

                let mut conn = theirs(port).await;
                let mut sub = conn.subscribe(namespace("interop/ours"), b"video".to_vec(), Vec::new()).await.unwrap();
                let alias = match timeout(T, conn.recv_on_request_stream(&mut sub)).await.unwrap().unwrap() {
                    ControlMessage::SubscribeOk(ok) => ok.track_alias.into_inner(),
                    other => panic!("SUBSCRIBE answered with {other:?}"),
                };
                let mut groups = std::collections::BTreeSet::new();
                let mut objects = 0;
                while groups.len() < 3 {
                    let (header, mut stream) = timeout(T, conn.accept_subgroup_stream()).await.unwrap().unwrap();
                    assert_eq!(header.track_alias(), alias);
                    let group = header.group_id();
                    loop {
                        match timeout(T, stream.read_subgroup_object()).await.unwrap() {
                            Ok(o) => {
                                let id = o.object_id.into_inner();
                                assert_eq!(o.payload, payload(group, id).into_bytes(), "group {group} object {id}");
                                objects += 1;
                            }
                            Err(ConnectionError::UnexpectedEnd) => break,
                            Err(e) => panic!("group {group}: {e}"),
                        }
                    }
                    groups.insert(group);
                }
                assert!(objects >= 9, "{objects} objects in {groups:?}");
                writer.abort();
            }

            /// moqtap FETCHes two whole groups our relay holds in its cache.
            #[tokio::test]
            async fn moqtap_fetches_from_our_relays_cache() {
                let (port, trust, _relay) = relay().await;
                let origin = Origin::new();
                let name = FullTrackName::new(TrackNamespace::from_path("interop/cached").unwrap(), "video");
                let track = TrackProducer::new(TrackInfo::new(name.clone()));
                origin.publish_track(track.clone());
                let publisher = ours(port, &trust, origin).await;
                let _announced =
                    publisher.publish_namespace(TrackNamespace::from_path("interop/cached").unwrap()).await.unwrap();
                // A viewer of ours makes the relay subscribe, so that it caches the groups written from then on.
                let viewer = ours(port, &trust, Origin::new()).await;
                let sub = viewer.subscribe(name, Default::default()).await.unwrap();
                let mut consumer = sub.consumer();
                for g in 0..3 {
                    track.write_group(g, (0..3).map(|o| Object::new(o, payload(g, o)))).unwrap();
                }
                while timeout(T, consumer.next_group()).await.unwrap().unwrap().id().0 < 2 {}

                let mut conn = theirs(port).await;
                // Groups 0 and 1 whole: the end object 0 means the whole end group at this draft.
                let mut fetch = conn
                    .fetch(namespace("interop/cached"), b"video".to_vec(), v(0), v(0), v(1), v(0), Vec::new())
                    .await
                    .unwrap();
                match timeout(T, conn.recv_on_request_stream(&mut fetch)).await.unwrap().unwrap() {
                    ControlMessage::FetchOk(_) => {}
                    other => panic!("FETCH answered with {other:?}"),
                }
                let (_header, mut stream) = timeout(T, conn.accept_fetch_stream()).await.unwrap().unwrap();
                stream.begin_fetch_objects(GroupOrder::Ascending);
                let mut got = Vec::new();
                loop {
                    match timeout(T, stream.read_fetch_object()).await.unwrap() {
                        Ok((o, body)) if !body.is_empty() => {
                            assert_eq!(body, payload(o.group_id, o.object_id).into_bytes());
                            got.push((o.group_id, o.object_id));
                        }
                        Ok(_) => {}
                        Err(ConnectionError::UnexpectedEnd) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                assert_eq!(got, vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]);
            }

            /// moqtap publishes a namespace; our library subscribes through the relay, the relay subscribes to
            /// moqtap, and moqtap's objects and its PUBLISH_DONE reach our subscriber.
            #[tokio::test]
            async fn we_subscribe_through_the_relay_to_a_moqtap_publisher() {
                let (port, trust, _relay) = relay().await;
                let mut conn = theirs(port).await;
                let mut announce = conn.publish_namespace(namespace("interop/theirs"), Vec::new()).await.unwrap();
                match timeout(T, conn.recv_on_request_stream(&mut announce)).await.unwrap().unwrap() {
                    ControlMessage::RequestOk(_) => {}
                    other => panic!("PUBLISH_NAMESPACE answered with {other:?}"),
                }
                let serving = tokio::spawn(async move {
                    let mut req = loop {
                        let (msg, req) = conn.accept_request_stream().await.unwrap();
                        if let ControlMessage::Subscribe(s) = msg {
                            assert_eq!(s.track_name, b"audio".to_vec());
                            break req;
                        }
                    };
                    let ok = SubscribeOk { track_alias: v(7), parameters: Vec::new(), track_properties: Vec::new() };
                    conn.respond_subscribe_ok(&mut req, ok).await.expect("SUBSCRIBE_OK");
                    write_group(&conn, 7, 0, 128, 4).await;
                    // TRACK_ENDED, one stream.
                    conn.publish_done_on(&mut req, v(0x2), v(1), b"done".to_vec()).await.unwrap();
                    // Held until the end: dropping a request stream resets it, which could overtake PUBLISH_DONE.
                    (conn, announce, req)
                });

                let viewer = ours(port, &trust, Origin::new()).await;
                let name = FullTrackName::new(TrackNamespace::from_path("interop/theirs").unwrap(), "audio");
                let sub = timeout(T, viewer.subscribe(name, Default::default())).await.unwrap().unwrap();
                let mut consumer = sub.consumer();
                read_group(&mut consumer, 0, 4).await;
                let _held = timeout(T, serving).await.unwrap().unwrap();
                let end = timeout(T, consumer.next_group()).await.unwrap();
                assert_eq!(end.err(), Some(TrackEnd::Ended), "PUBLISH_DONE TRACK_ENDED ends our track");
            }

            /// moqtap pushes a track with PUBLISH; our library subscribes to it through the relay.
            #[tokio::test]
            async fn we_subscribe_through_the_relay_to_a_track_moqtap_pushes() {
                let (port, trust, _relay) = relay().await;
                let mut conn = theirs(port).await;
                let mut publish = conn
                    .publish(namespace("interop/pushed"), b"data".to_vec(), v(3), Vec::new(), Vec::new())
                    .await
                    .unwrap();
                match timeout(T, conn.recv_on_request_stream(&mut publish)).await.unwrap().unwrap() {
                    ControlMessage::RequestOk(_) => {}
                    other => panic!("PUBLISH answered with {other:?}"),
                }
                let (subscribed, wait_subscribed) = tokio::sync::oneshot::channel::<()>();
                let pushing = tokio::spawn(async move {
                    wait_subscribed.await.unwrap();
                    write_group(&conn, 3, 5, 64, 3).await;
                    conn.publish_done(&mut publish, v(0x2), v(1), Vec::new()).await.unwrap();
                    (conn, publish)
                });

                let viewer = ours(port, &trust, Origin::new()).await;
                let name = FullTrackName::new(TrackNamespace::from_path("interop/pushed").unwrap(), "data");
                let sub = timeout(T, viewer.subscribe(name, Default::default())).await.unwrap().unwrap();
                subscribed.send(()).unwrap();
                let mut consumer = sub.consumer();
                read_group(&mut consumer, 5, 3).await;
                let _held = timeout(T, pushing).await.unwrap().unwrap();
            }
        }
    };
}

interop!(draft18, moqtap_codec::version::DraftVersion::Draft18, Draft18);
interop!(draft19, moqtap_codec::version::DraftVersion::Draft19, Draft19);
