//! Golden values shared by `tests/vectors.rs` (which checks them against hand-written hex) and
//! `tests/export_vectors.rs` (which writes them to `web/test/vectors.json`), so each is written once.

#![allow(dead_code)] // each test crate uses a different part

use bytes::Bytes;
use moq_wire::codes::{PublishDoneCode, RequestErrorCode};
use moq_wire::control::*;
use moq_wire::data::*;
use moq_wire::kvp::{Properties, ReasonPhrase};
use moq_wire::namespace::{FullTrackName, TrackName, TrackNamespace};
use moq_wire::params::{LocationFilter, Parameters, RangeDelta, RangeFilter, RangeFilterKind};
use moq_wire::setup::SetupOptions;
use moq_wire::token::AuthToken;
use moq_wire::*;

pub const BOTH: &[Version] = &[Version::Draft18, Version::Draft19];
pub const D18: &[Version] = &[Version::Draft18];
pub const D19: &[Version] = &[Version::Draft19];

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

pub fn ns(fields: &[&str]) -> TrackNamespace {
    TrackNamespace::new(fields.iter().map(|f| Bytes::copy_from_slice(f.as_bytes()))).unwrap()
}

pub fn ftn(fields: &[&str], name: &str) -> FullTrackName {
    FullTrackName::new(ns(fields), name)
}

/// The control messages of `tests/vectors.rs`: name, the versions that accept it, and the value.
pub fn golden_control() -> Vec<(&'static str, &'static [Version], ControlMessage)> {
    let uri = Bytes::from_static(b"moqt://b");
    vec![
        (
            "SETUP",
            BOTH,
            Setup {
                options: SetupOptions {
                    path: Some(Bytes::from_static(b"/moq")),
                    max_auth_token_cache_size: Some(256),
                    authority: Some(Bytes::from_static(b"h")),
                    implementation: Some("moq-rs".into()),
                    ..Default::default()
                },
            }
            .into(),
        ),
        (
            "SETUP (draft-19 options)",
            BOTH,
            Setup {
                options: SetupOptions {
                    auth_tokens: vec![AuthToken::UseValue { token_type: 0, value: Bytes::from_static(b"tok") }],
                    max_filter_ranges: Some(4),
                    max_request_updates: Some(2),
                    ..Default::default()
                },
            }
            .into(),
        ),
        ("GOAWAY", BOTH, GoAway { new_session_uri: uri.clone(), timeout_ms: 5000, request_id: None }.into()),
        (
            "GOAWAY (draft-18, control stream)",
            D18,
            GoAway { new_session_uri: uri, timeout_ms: 5000, request_id: Some(RequestId(7)) }.into(),
        ),
        (
            "SUBSCRIBE",
            BOTH,
            Subscribe {
                request_id: RequestId(2),
                track: ftn(&["live", "demo"], "video"),
                params: Parameters {
                    object_delivery_timeout: Some(100),
                    auth_tokens: vec![AuthToken::UseValue { token_type: 0, value: Bytes::from_static(b"t") }],
                    rendezvous_timeout: Some(1000),
                    forward: Some(true),
                    subscriber_priority: Some(128),
                    location_filter: Some(LocationFilter::AbsoluteStart { start: Location::new(1, 0) }),
                    group_order: Some(GroupOrder::Descending),
                    new_group_request: Some(0),
                    ..Default::default()
                },
            }
            .into(),
        ),
        (
            "SUBSCRIBE with OBJECTID_FILTER",
            D19,
            Subscribe {
                request_id: RequestId(0),
                track: ftn(&["a"], "b"),
                params: Parameters {
                    range_filters: vec![RangeFilter {
                        kind: RangeFilterKind::ObjectId,
                        set_id: Some(0),
                        ranges: vec![RangeDelta { start: 3, end: Some(2) }, RangeDelta { start: 5, end: Some(5) }],
                    }],
                    ..Default::default()
                },
            }
            .into(),
        ),
        (
            "SUBSCRIBE_OK",
            BOTH,
            SubscribeOk {
                track_alias: TrackAlias(9),
                params: Parameters {
                    expires: Some(60_000),
                    largest_object: Some(Location::new(12, 3)),
                    ..Default::default()
                },
                track_properties: Properties::new().with_int(0x0e, 64).unwrap().with_int(0x22, 1).unwrap(),
            }
            .into(),
        ),
        (
            "REQUEST_UPDATE",
            BOTH,
            RequestUpdate {
                request_id: RequestId(4),
                params: Parameters { forward: Some(false), subscriber_priority: Some(10), ..Default::default() },
            }
            .into(),
        ),
        (
            "REQUEST_UPDATE prefix",
            BOTH,
            RequestUpdate {
                request_id: RequestId(6),
                params: Parameters { track_namespace_prefix: Some(ns(&["live"])), ..Default::default() },
            }
            .into(),
        ),
        (
            "REQUEST_UPDATE remove filter",
            D19,
            RequestUpdate {
                request_id: RequestId(8),
                params: Parameters {
                    range_filters: vec![RangeFilter { kind: RangeFilterKind::Subgroup, set_id: None, ranges: vec![] }],
                    ..Default::default()
                },
            }
            .into(),
        ),
        (
            "PUBLISH",
            BOTH,
            Publish {
                request_id: RequestId(1),
                track: ftn(&["a"], "b"),
                track_alias: TrackAlias(3),
                params: Parameters { forward: Some(false), ..Default::default() },
                track_properties: Properties::new().with_int(0x30, 1).unwrap(),
            }
            .into(),
        ),
        (
            "PUBLISH_DONE",
            BOTH,
            PublishDone { status: PublishDoneCode::TrackEnded, stream_count: 3, reason: ReasonPhrase::new("bye") }
                .into(),
        ),
        (
            "PUBLISH_DONE unknown count",
            BOTH,
            PublishDone {
                status: PublishDoneCode::TooFarBehind,
                stream_count: PublishDone::UNKNOWN_STREAM_COUNT,
                reason: ReasonPhrase::default(),
            }
            .into(),
        ),
        (
            "FETCH standalone",
            BOTH,
            Fetch {
                request_id: RequestId(6),
                fetch_type: FetchType::Standalone {
                    track: ftn(&["a"], "b"),
                    start: Location::new(1, 0),
                    end: Location::new(3, 0),
                },
                params: Parameters {
                    fill_timeout: Some(0),
                    subscriber_priority: Some(1),
                    group_order: Some(GroupOrder::Descending),
                    ..Default::default()
                },
            }
            .into(),
        ),
        (
            "FETCH relative joining",
            BOTH,
            Fetch {
                request_id: RequestId(8),
                fetch_type: FetchType::RelativeJoining { joining_request_id: RequestId(2), joining_start: 1 },
                params: Parameters::default(),
            }
            .into(),
        ),
        (
            "FETCH absolute joining",
            BOTH,
            Fetch {
                request_id: RequestId(8),
                fetch_type: FetchType::AbsoluteJoining { joining_request_id: RequestId(2), joining_start: 5 },
                params: Parameters::default(),
            }
            .into(),
        ),
        (
            "FETCH_OK",
            BOTH,
            FetchOk {
                end_of_track: true,
                end_location: Location::new(4, 0),
                params: Parameters::default(),
                track_properties: Properties::new().with_int(0x04, 1000).unwrap(),
            }
            .into(),
        ),
        (
            "TRACK_STATUS",
            BOTH,
            TrackStatus { request_id: RequestId(10), track: ftn(&["a"], "b"), params: Parameters::default() }.into(),
        ),
        (
            "PUBLISH_NAMESPACE",
            BOTH,
            PublishNamespace {
                request_id: RequestId(12),
                namespace: ns(&["live"]),
                params: Parameters { auth_tokens: vec![AuthToken::UseAlias { alias: 1 }], ..Default::default() },
            }
            .into(),
        ),
        (
            "SUBSCRIBE_NAMESPACE (empty prefix)",
            BOTH,
            SubscribeNamespace {
                request_id: RequestId(14),
                prefix: TrackNamespace::empty(),
                params: Parameters::default(),
            }
            .into(),
        ),
        (
            "SUBSCRIBE_TRACKS",
            BOTH,
            SubscribeTracks {
                request_id: RequestId(16),
                prefix: ns(&["live"]),
                params: Parameters { forward: Some(false), ..Default::default() },
            }
            .into(),
        ),
        (
            "SUBSCRIBE_TRACKS with GROUP_ORDER",
            D19,
            SubscribeTracks {
                request_id: RequestId(16),
                prefix: ns(&["live"]),
                params: Parameters { group_order: Some(GroupOrder::Descending), ..Default::default() },
            }
            .into(),
        ),
        ("NAMESPACE_DONE", BOTH, NamespaceDone { suffix: ns(&["demo"]) }.into()),
        (
            "PUBLISH_SKIPPED / PUBLISH_BLOCKED",
            BOTH,
            PublishSkipped { suffix: ns(&["demo"]), name: TrackName::from("v") }.into(),
        ),
        (
            "REQUEST_OK",
            BOTH,
            RequestOk { params: Parameters { expires: Some(0), ..Default::default() }, ..Default::default() }.into(),
        ),
        (
            "REQUEST_OK (TRACK_STATUS_OK)",
            BOTH,
            RequestOk {
                params: Parameters { largest_object: Some(Location::new(5, 3)), ..Default::default() },
                track_properties: Properties::new().with_int(0x0e, 1).unwrap(),
            }
            .into(),
        ),
        (
            "REQUEST_ERROR",
            BOTH,
            RequestError {
                code: RequestErrorCode::DoesNotExist,
                retry_interval: 1001,
                reason: ReasonPhrase::new("no"),
                redirect: None,
            }
            .into(),
        ),
        (
            "REQUEST_ERROR redirect",
            BOTH,
            RequestError {
                code: RequestErrorCode::Redirect,
                retry_interval: 0,
                reason: ReasonPhrase::default(),
                redirect: Some(Redirect {
                    connect_uri: Bytes::new(),
                    namespace: ns(&["x"]),
                    name: TrackName::default(),
                }),
            }
            .into(),
        ),
    ]
}

/// One entry of [`golden_control`], by name.
pub fn golden(name: &str) -> (&'static [Version], ControlMessage) {
    golden_control()
        .into_iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, vs, msg)| (vs, msg))
        .unwrap_or_else(|| panic!("no golden control message {name:?}"))
}

/// A subgroup object: Object ID, properties, payload, status.
pub type Object = (u64, Properties, &'static [u8], ObjectStatus);

/// The draft's subgroup example 1 (§10.4.5): header and objects.
pub fn subgroup_example_1() -> (SubgroupHeader, Vec<Object>) {
    let header = SubgroupHeader {
        track_alias: TrackAlias(2),
        group_id: GroupId(0),
        subgroup: SubgroupIdMode::Explicit(SubgroupId(0)),
        publisher_priority: Some(0),
        has_properties: false,
        end_of_group: false,
        first_object: false,
    };
    (
        header,
        vec![
            (0, Properties::new(), b"abcd", ObjectStatus::Normal),
            (1, Properties::new(), b"efgh", ObjectStatus::Normal),
        ],
    )
}

/// The draft's subgroup example 2 (§10.4.5), with properties on the first object.
pub fn subgroup_example_2() -> (SubgroupHeader, Vec<Object>) {
    let header = SubgroupHeader {
        track_alias: TrackAlias(2),
        group_id: GroupId(0),
        subgroup: SubgroupIdMode::Explicit(SubgroupId(0)),
        publisher_priority: None,
        has_properties: true,
        end_of_group: false,
        first_object: false,
    };
    let props = Properties::new()
        .with_int(4, 2_186_796_243)
        .unwrap()
        .with_bytes(77, Bytes::from_static(b"traceID:123456"))
        .unwrap();
    (header, vec![(0, props, b"abcd", ObjectStatus::Normal), (1, Properties::new(), b"efgh", ObjectStatus::Normal)])
}

/// The fetch stream of `fetch_stream_with_ranges`: request 4, its entries and their payloads.
pub fn fetch_stream() -> (FetchHeader, Vec<(FetchEntry, &'static [u8])>) {
    let o = |g, s, ob, p, props: Properties, len| {
        FetchEntry::Object(FetchObject {
            group_id: GroupId(g),
            subgroup_id: Some(SubgroupId(s)),
            object_id: ObjectId(ob),
            publisher_priority: p,
            properties: props,
            payload_len: len,
        })
    };
    let entries = vec![
        (o(2, 1, 0, 9, Properties::new(), 1), &b"a"[..]),
        (FetchEntry::EndOfRange(EndOfRange { unknown: true, end: Location::new(2, 5) }), b""),
        (o(2, 1, 6, 9, Properties::new(), 1), b"b"),
        (FetchEntry::EndOfRange(EndOfRange { unknown: false, end: Location::new(4, 0) }), b""),
        (o(5, 1, 1, 9, Properties::new().with_int(0x10, 1).unwrap(), 0), b""),
    ];
    (FetchHeader { request_id: RequestId(4) }, entries)
}

/// The datagrams of `tests/vectors.rs`, in order.
pub fn golden_datagrams() -> Vec<ObjectDatagram> {
    vec![
        ObjectDatagram {
            track_alias: TrackAlias(2),
            group_id: GroupId(5),
            object_id: ObjectId(3),
            publisher_priority: Some(128),
            properties: Properties::new(),
            end_of_group: false,
            content: DatagramContent::Payload(Bytes::from_static(b"xyz")),
        },
        ObjectDatagram {
            track_alias: TrackAlias(2),
            group_id: GroupId(5),
            object_id: ObjectId(0),
            publisher_priority: None,
            properties: Properties::new(),
            end_of_group: false,
            content: DatagramContent::Status(ObjectStatus::EndOfGroup),
        },
        ObjectDatagram {
            track_alias: TrackAlias(2),
            group_id: GroupId(5),
            object_id: ObjectId(0),
            publisher_priority: None,
            properties: Properties::new().with_int(0x10, 7).unwrap(),
            end_of_group: true,
            content: DatagramContent::Payload(Bytes::from_static(b"hi")),
        },
        ObjectDatagram {
            track_alias: TrackAlias(2),
            group_id: GroupId(5),
            object_id: ObjectId(3),
            publisher_priority: Some(128),
            properties: Properties::new().with_int(0x10, 7).unwrap(),
            end_of_group: false,
            content: DatagramContent::Status(ObjectStatus::Normal),
        },
    ]
}
