//! Property tests: every type round-trips, every strict prefix of a valid encoding is "short" and leaves the
//! buffer alone, and arbitrary bytes never panic any decoder.

use bytes::{Bytes, BytesMut};
use moq_wire::codes::{PublishDoneCode, RequestErrorCode};
use moq_wire::coding::varint::{leading_ones, quic};
use moq_wire::control::*;
use moq_wire::data::*;
use moq_wire::kvp::{KeyValuePair, Properties, ReasonPhrase};
use moq_wire::namespace::{FullTrackName, TrackName, TrackNamespace};
use moq_wire::params::*;
use moq_wire::setup::SetupOptions;
use moq_wire::token::AuthToken;
use moq_wire::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::Draft18), Just(Version::Draft19)]
}

/// Integers spread over every encoded length.
fn int() -> impl Strategy<Value = u64> {
    prop_oneof![0..128u64, 128..16_384u64, any::<u32>().prop_map(u64::from), any::<u64>()]
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn namespace() -> impl Strategy<Value = TrackNamespace> {
    vec(vec(any::<u8>(), 1..6), 0..4).prop_map(|f| TrackNamespace::new(f.into_iter().map(Bytes::from)).unwrap())
}

fn track() -> impl Strategy<Value = FullTrackName> {
    (namespace(), bytes(8)).prop_map(|(ns, n)| FullTrackName::new(ns, TrackName(n)))
}

fn location() -> impl Strategy<Value = Location> {
    (int(), int()).prop_map(|(g, o)| Location::new(g, o))
}

fn properties() -> impl Strategy<Value = Properties> {
    vec(
        prop_oneof![
            (0..200u64, int()).prop_map(|(k, v)| KeyValuePair::int(k * 2, v).unwrap()),
            (0..200u64, bytes(6)).prop_map(|(k, b)| KeyValuePair::bytes(k * 2 + 1, b).unwrap()),
        ],
        0..4,
    )
    .prop_map(|pairs| pairs.into_iter().collect())
}

fn token() -> impl Strategy<Value = AuthToken> {
    prop_oneof![
        int().prop_map(|alias| AuthToken::Delete { alias }),
        (int(), int(), bytes(8)).prop_map(|(alias, token_type, value)| AuthToken::Register {
            alias,
            token_type,
            value
        }),
        int().prop_map(|alias| AuthToken::UseAlias { alias }),
        (int(), bytes(8)).prop_map(|(token_type, value)| AuthToken::UseValue { token_type, value }),
    ]
}

fn location_filter() -> impl Strategy<Value = LocationFilter> {
    prop_oneof![
        Just(LocationFilter::NextGroupStart),
        Just(LocationFilter::LargestObject),
        location().prop_map(|start| LocationFilter::AbsoluteStart { start }),
        (0..1u64 << 40, int(), 0..1000u64)
            .prop_map(|(g, o, d)| LocationFilter::AbsoluteRange { start: Location::new(g, o), end_group_delta: d }),
    ]
}

fn range_filter() -> impl Strategy<Value = RangeFilter> {
    let kind = prop_oneof![
        Just(RangeFilterKind::Subgroup),
        Just(RangeFilterKind::ObjectId),
        Just(RangeFilterKind::Priority),
        int().prop_map(RangeFilterKind::ObjectProperty),
        int().prop_map(RangeFilterKind::TrackProperty),
    ];
    (kind, option::of(any::<u8>()), vec((int(), int()), 0..3), any::<bool>()).prop_map(|(kind, set_id, r, open)| {
        let mut ranges: Vec<RangeDelta> =
            r.into_iter().map(|(start, end)| RangeDelta { start, end: Some(end) }).collect();
        if open && let Some(last) = ranges.last_mut() {
            last.end = None;
        }
        match set_id {
            // The removal form carries nothing.
            None => RangeFilter { kind: strip_property(kind), set_id: None, ranges: vec![] },
            Some(_) => RangeFilter { kind, set_id, ranges },
        }
    })
}

fn strip_property(kind: RangeFilterKind) -> RangeFilterKind {
    match kind {
        RangeFilterKind::ObjectProperty(_) => RangeFilterKind::ObjectProperty(0),
        RangeFilterKind::TrackProperty(_) => RangeFilterKind::TrackProperty(0),
        k => k,
    }
}

fn parameters() -> impl Strategy<Value = Parameters> {
    (
        (option::of(int()), vec(token(), 0..2), option::of(int()), option::of(int()), option::of(int())),
        (option::of(location()), option::of(int()), option::of(any::<bool>()), option::of(any::<u8>())),
        (
            option::of(location_filter()),
            option::of(prop_oneof![Just(GroupOrder::Ascending), Just(GroupOrder::Descending)]),
            vec(range_filter(), 0..2),
            option::of(int()),
            option::of(namespace()),
        ),
    )
        .prop_map(|((odt, tokens, rt, sdt, exp), (lo, ft, fwd, prio), (lf, go, rf, ngr, tnp))| {
            let mut range_filters = rf;
            range_filters.sort_by_key(|f| f.kind.param_type());
            Parameters {
                object_delivery_timeout: odt,
                auth_tokens: tokens,
                rendezvous_timeout: rt,
                subgroup_delivery_timeout: sdt,
                expires: exp,
                largest_object: lo,
                fill_timeout: ft,
                forward: fwd,
                subscriber_priority: prio,
                location_filter: lf,
                group_order: go,
                range_filters,
                new_group_request: ngr,
                track_namespace_prefix: tnp,
            }
        })
}

/// Drops the parameters the draft does not allow in `ctx` for `v`.
fn restrict(mut p: Parameters, ctx: ParamContext, v: Version) -> Parameters {
    use moq_wire::params::param_type as pt;
    let ok = |t| is_known(t, v) && is_allowed(t, ctx, v);
    if !ok(pt::OBJECT_DELIVERY_TIMEOUT) {
        p.object_delivery_timeout = None;
    }
    if !ok(pt::AUTHORIZATION_TOKEN) {
        p.auth_tokens.clear();
    }
    if !ok(pt::RENDEZVOUS_TIMEOUT) {
        p.rendezvous_timeout = None;
    }
    if !ok(pt::SUBGROUP_DELIVERY_TIMEOUT) {
        p.subgroup_delivery_timeout = None;
    }
    if !ok(pt::EXPIRES) {
        p.expires = None;
    }
    if !ok(pt::LARGEST_OBJECT) {
        p.largest_object = None;
    }
    if !ok(pt::FILL_TIMEOUT) {
        p.fill_timeout = None;
    }
    if !ok(pt::FORWARD) {
        p.forward = None;
    }
    if !ok(pt::SUBSCRIBER_PRIORITY) {
        p.subscriber_priority = None;
    }
    if !ok(pt::LOCATION_FILTER) {
        p.location_filter = None;
    }
    if !ok(pt::GROUP_ORDER) {
        p.group_order = None;
    }
    p.range_filters.retain(|f| ok(f.kind.param_type()));
    if !ok(pt::NEW_GROUP_REQUEST) {
        p.new_group_request = None;
    }
    if !ok(pt::TRACK_NAMESPACE_PREFIX) {
        p.track_namespace_prefix = None;
    }
    p
}

fn control_message(v: Version) -> impl Strategy<Value = ControlMessage> {
    let p = move |ctx| parameters().prop_map(move |p| restrict(p, ctx, v));
    let reason = "[a-z ]{0,12}".prop_map(ReasonPhrase);
    prop_oneof![
        (
            option::of(bytes(6)),
            vec(token(), 0..2),
            option::of(int()),
            option::of(bytes(4)),
            option::of(int()),
            option::of("[a-z]{0,6}"),
            option::of(int())
        )
            .prop_map(|(path, auth_tokens, cache, authority, mfr, implementation, mru)| Setup {
                options: SetupOptions {
                    path,
                    auth_tokens,
                    max_auth_token_cache_size: cache,
                    authority,
                    max_filter_ranges: mfr,
                    implementation,
                    max_request_updates: mru,
                    unknown: Properties::new(),
                }
            }
            .into()),
        (bytes(16), int(), option::of(int())).prop_map(move |(uri, t, id)| GoAway {
            new_session_uri: uri,
            timeout_ms: t,
            request_id: if v == Version::Draft18 { id.map(RequestId) } else { None },
        }
        .into()),
        (int(), track(), p(ParamContext::Subscribe)).prop_map(|(id, track, params)| Subscribe {
            request_id: RequestId(id),
            track,
            params
        }
        .into()),
        (int(), p(ParamContext::SubscribeOk), properties()).prop_map(|(a, params, track_properties)| SubscribeOk {
            track_alias: TrackAlias(a),
            params,
            track_properties
        }
        .into()),
        (int(), p(ParamContext::RequestUpdate)).prop_map(|(id, params)| RequestUpdate {
            request_id: RequestId(id),
            params
        }
        .into()),
        (int(), track(), int(), p(ParamContext::Publish), properties()).prop_map(|(id, track, a, params, tp)| {
            Publish { request_id: RequestId(id), track, track_alias: TrackAlias(a), params, track_properties: tp }
                .into()
        }),
        (int(), int(), reason.clone()).prop_map(|(s, c, reason)| PublishDone {
            status: PublishDoneCode::from(s),
            stream_count: c,
            reason
        }
        .into()),
        (
            int(),
            prop_oneof![
                (track(), location(), location()).prop_map(|(track, start, end)| FetchType::Standalone {
                    track,
                    start,
                    end
                }),
                (int(), int()).prop_map(|(j, s)| FetchType::RelativeJoining {
                    joining_request_id: RequestId(j),
                    joining_start: s
                }),
                (int(), int()).prop_map(|(j, s)| FetchType::AbsoluteJoining {
                    joining_request_id: RequestId(j),
                    joining_start: s
                }),
            ],
            p(ParamContext::Fetch)
        )
            .prop_map(|(id, fetch_type, params)| Fetch { request_id: RequestId(id), fetch_type, params }.into()),
        (any::<bool>(), location(), properties()).prop_map(|(e, l, tp)| FetchOk {
            end_of_track: e,
            end_location: l,
            params: Parameters::default(),
            track_properties: tp
        }
        .into()),
        (int(), track(), p(ParamContext::TrackStatus))
            .prop_map(|(id, track, params)| { TrackStatus { request_id: RequestId(id), track, params }.into() }),
        (int(), namespace(), p(ParamContext::PublishNamespace)).prop_map(|(id, namespace, params)| PublishNamespace {
            request_id: RequestId(id),
            namespace,
            params
        }
        .into()),
        (int(), namespace(), p(ParamContext::SubscribeNamespace)).prop_map(|(id, prefix, params)| SubscribeNamespace {
            request_id: RequestId(id),
            prefix,
            params
        }
        .into()),
        (int(), namespace(), p(ParamContext::SubscribeTracks))
            .prop_map(|(id, prefix, params)| { SubscribeTracks { request_id: RequestId(id), prefix, params }.into() }),
        namespace().prop_map(|suffix| Namespace { suffix }.into()),
        namespace().prop_map(|suffix| NamespaceDone { suffix }.into()),
        (namespace(), bytes(6)).prop_map(|(suffix, n)| PublishSkipped { suffix, name: TrackName(n) }.into()),
        (p(ParamContext::RequestOk), properties())
            .prop_map(|(params, track_properties)| { RequestOk { params, track_properties }.into() }),
        (int(), int(), reason, option::of((bytes(8), namespace(), bytes(4)))).prop_map(
            move |(c, r, reason, redirect)| {
                let code = match redirect {
                    Some(_) => RequestErrorCode::Redirect,
                    None if c == 0x34 => RequestErrorCode::InternalError,
                    None => RequestErrorCode::from_wire(c, v),
                };
                RequestError {
                    code,
                    retry_interval: r,
                    reason,
                    redirect: redirect.map(|(connect_uri, namespace, n)| Redirect {
                        connect_uri,
                        namespace,
                        name: TrackName(n),
                    }),
                }
                .into()
            }
        ),
    ]
}

fn versioned_message() -> impl Strategy<Value = (Version, ControlMessage)> {
    version().prop_flat_map(|v| control_message(v).prop_map(move |m| (v, m)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn varint_round_trip(x in int()) {
        let mut out = Vec::new();
        leading_ones::put(&mut out, x);
        prop_assert_eq!(out.len(), leading_ones::len(x));
        prop_assert_eq!(leading_ones::get(&mut &out[..]), Ok(x));
        for cut in 0..out.len() {
            let mut short = &out[..cut];
            prop_assert!(leading_ones::get(&mut short).unwrap_err().is_short());
            prop_assert_eq!(short.len(), cut);
        }
        if x <= quic::MAX {
            let mut q = Vec::new();
            quic::put(&mut q, x).unwrap();
            prop_assert_eq!(quic::get(&mut &q[..]), Ok(x));
        }
    }

    #[test]
    fn control_round_trip_and_prefixes((v, msg) in versioned_message()) {
        let bytes = msg.encode_to_vec(v).unwrap();
        let (decoded, used) = ControlMessage::decode_prefix(&bytes, v).unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(&decoded, &msg);
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            let err = ControlMessage::decode_from(&mut buf, v).unwrap_err();
            prop_assert!(err.is_short(), "prefix {} of {}: {}", cut, msg.name(), err);
            prop_assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn subgroup_round_trip(
        v in version(),
        alias in int(), group in int(), mode in 0..3u8, sg in int(), prio in option::of(any::<u8>()),
        has_properties in any::<bool>(), eog in any::<bool>(), first in any::<bool>(),
        objects in vec((0..5u64, properties(), bytes(12)), 0..5),
    ) {
        let header = SubgroupHeader {
            track_alias: TrackAlias(alias),
            group_id: GroupId(group),
            subgroup: match mode { 0 => SubgroupIdMode::Zero, 1 => SubgroupIdMode::FirstObjectId, _ => SubgroupIdMode::Explicit(SubgroupId(sg)) },
            publisher_priority: prio,
            has_properties,
            end_of_group: eog,
            first_object: first,
        };
        let mut w = SubgroupWriter::new(header, v);
        let mut out = Vec::new();
        w.write_header(&mut out).unwrap();
        let header_len = out.len();
        let mut id = 0u64;
        let mut expect = Vec::new();
        for (gap, props, payload) in objects {
            id += gap;
            let props = if has_properties { props } else { Properties::new() };
            w.write_object(&mut out, ObjectId(id), props.clone(), &payload).unwrap();
            expect.push((ObjectId(id), props, payload));
            id += 1;
        }
        for cut in 0..header_len {
            prop_assert!(SubgroupHeader::decode_prefix(&out[..cut], v).unwrap_err().is_short());
        }
        let mut buf = BytesMut::from(&out[..]);
        let h = SubgroupHeader::decode_from(&mut buf, v).unwrap();
        prop_assert_eq!(h, header);
        let mut r = SubgroupReader::new(h, v);
        for (id, props, payload) in expect {
            // Every prefix of the remaining object is short and consumes nothing.
            let whole = buf.clone();
            for cut in 0..whole.len().min(24) {
                let mut part = BytesMut::from(&whole[..cut]);
                let mut probe = r.clone();
                if let Err(e) = probe.read_object(&mut part) {
                    prop_assert!(e.is_short());
                    prop_assert_eq!(part.len(), cut);
                }
            }
            let o = r.read_object(&mut buf).unwrap();
            prop_assert_eq!(o.header.object_id, id);
            prop_assert_eq!(o.header.properties, props);
            prop_assert_eq!(o.payload, payload);
        }
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn datagram_round_trip(
        v in version(), alias in int(), group in int(), object in prop_oneof![Just(0u64), int()],
        prio in option::of(any::<u8>()), props in properties(), eog in any::<bool>(),
        content in prop_oneof![
            bytes(20).prop_map(DatagramContent::Payload),
            prop_oneof![Just(ObjectStatus::Normal), Just(ObjectStatus::EndOfGroup), Just(ObjectStatus::EndOfTrack)].prop_map(DatagramContent::Status),
        ],
    ) {
        let is_status = matches!(content, DatagramContent::Status(_));
        let normal = !matches!(content, DatagramContent::Status(s) if s != ObjectStatus::Normal);
        let d = ObjectDatagram {
            track_alias: TrackAlias(alias),
            group_id: GroupId(group),
            object_id: ObjectId(object),
            publisher_priority: prio,
            properties: if normal { props } else { Properties::new() },
            end_of_group: eog && !is_status,
            content,
        };
        let bytes = Bytes::from(d.encode_to_vec(v).unwrap());
        prop_assert_eq!(Datagram::decode(&bytes, v), Ok(Datagram::Object(d)));
    }

    #[test]
    fn fetch_round_trip(
        v in version(), descending in any::<bool>(),
        steps in vec((0..3u64, 0..4u64, option::of(0..4u64), any::<u8>(), properties(), 0..6usize, any::<bool>()), 1..8),
    ) {
        let order = if descending { GroupOrder::Descending } else { GroupOrder::Ascending };
        let mut group: u64 = 1_000;
        let mut object: u64 = 0;
        let mut entries = Vec::new();
        for (i, (gstep, ostep, sg, prio, props, len, range)) in steps.into_iter().enumerate() {
            if i > 0 && gstep > 0 {
                group = if descending { group - gstep } else { group + gstep };
                object = ostep;
            } else if i > 0 {
                object += ostep + 1;
            } else {
                object = ostep;
            }
            if range && i > 0 {
                entries.push(FetchEntry::EndOfRange(EndOfRange { unknown: prio % 2 == 0, end: Location::new(group, object) }));
                object += 1;
            }
            entries.push(FetchEntry::Object(FetchObject {
                group_id: GroupId(group),
                subgroup_id: sg.map(SubgroupId),
                object_id: ObjectId(object),
                publisher_priority: prio,
                properties: props,
                payload_len: len,
            }));
        }
        let mut w = FetchWriter::new(order, v);
        let mut out = Vec::new();
        for e in &entries {
            match e {
                FetchEntry::Object(o) => { w.write_object(&mut out, o).unwrap(); out.extend(std::iter::repeat_n(7u8, o.payload_len)); }
                FetchEntry::EndOfRange(r) => w.write_end_of_range(&mut out, r).unwrap(),
            }
        }
        let mut buf = BytesMut::from(&out[..]);
        let mut r = FetchReader::new(order, v);
        for e in &entries {
            let (got, payload) = r.read_entry(&mut buf).unwrap();
            prop_assert_eq!(&got, e);
            if let FetchEntry::Object(o) = e { prop_assert_eq!(payload.len(), o.payload_len); }
        }
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn random_bytes_never_panic(v in version(), data in vec(any::<u8>(), 0..256), order in any::<bool>()) {
        let _ = ControlMessage::decode_prefix(&data, v);
        let _ = FrameHeader::peek(&data, v);
        let _ = StreamKind::peek(&data, v);
        let _ = Datagram::decode(&Bytes::from(data.clone()), v);
        let mut buf = BytesMut::from(&data[..]);
        if let Ok(h) = DataStreamHeader::decode_from(&mut buf, v) {
            match h {
                DataStreamHeader::Subgroup(h) => {
                    let mut r = SubgroupReader::new(h, v);
                    while r.read_object(&mut buf).is_ok() {}
                }
                DataStreamHeader::Fetch(_) => {
                    let mut r = FetchReader::new(if order { GroupOrder::Descending } else { GroupOrder::Ascending }, v);
                    while r.read_entry(&mut buf).is_ok() {}
                }
                DataStreamHeader::Padding => {}
            }
        }
    }

    #[test]
    fn messages_after_a_valid_type_never_panic(v in version(), ty in prop_oneof![Just(0x2f00u64), 0x02..0x20u64, 0x50..0x52u64], body in vec(any::<u8>(), 0..64)) {
        // Random bodies behind real message types reach the per-message decoders, not just the type check.
        let mut bytes = Vec::new();
        leading_ones::put(&mut bytes, ty);
        bytes.extend_from_slice(&(body.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&body);
        if let Ok((msg, _)) = ControlMessage::decode_prefix(&bytes, v) {
            let again = msg.encode_to_vec(v).unwrap();
            prop_assert_eq!(ControlMessage::decode_prefix(&again, v).unwrap().0, msg);
        }
    }
}
