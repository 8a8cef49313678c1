//! Writes moq-wire's golden vectors to `web/test/vectors.json` for the TypeScript codec's tests.
//!
//! Every vector's bytes come from moq-wire's encoder and its expected value from moq-wire's decoder (converted to
//! the JSON shape the TypeScript types use), so the TypeScript tests check byte-for-byte agreement with this crate.
//! The messages are those of `tests/common` (shared with `tests/vectors.rs`), plus the forms the browser player
//! sends and receives.
//!
//! The test fails when the committed file differs from what it would write; `UPDATE_VECTORS=1 cargo test -p
//! moq-wire --test export_vectors` rewrites it.

mod common;
#[path = "export_vectors/json.rs"]
mod json;

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use common::*;
use json::*;
use moq_wire::coding::varint;
use moq_wire::control::*;
use moq_wire::data::*;
use moq_wire::kvp::Properties;
use moq_wire::params::{LocationFilter, Parameters, RangeDelta, RangeFilter, RangeFilterKind};
use moq_wire::setup::SetupOptions;
use moq_wire::*;
use serde_json::{Value, json};

// ---- the vectors ----

fn versions(vs: &[Version]) -> Value {
    vs.iter().map(|v| if *v == Version::Draft18 { 18 } else { 19 }).collect()
}

struct Vectors(Vec<Value>);

impl Vectors {
    /// A control message: encoded by moq-wire, decoded back to the same value, in every listed version.
    fn control(&mut self, name: &str, vs: &[Version], msg: ControlMessage) {
        let bytes = msg.encode_to_vec(vs[0]).unwrap_or_else(|e| panic!("{name}: {e}"));
        for &v in vs {
            assert_eq!(msg.encode_to_vec(v).unwrap(), bytes, "{name} ({v}): same bytes in each version");
            let (decoded, used) = ControlMessage::decode_prefix(&bytes, v).unwrap();
            assert_eq!((decoded, used), (msg.clone(), bytes.len()), "{name} ({v})");
        }
        self.push(name, "control", vs, &bytes, control(&msg));
    }

    /// The golden control message `name` of `tests/common`.
    fn golden(&mut self, name: &str) {
        let (vs, msg) = golden(name);
        self.control(name, vs, msg);
    }
    /// Bytes every listed version must refuse (not as "short").
    fn reject(&mut self, name: &str, kind: &'static str, vs: &[Version], h: &str) {
        let bytes = hex(h);
        for &v in vs {
            let err = match kind {
                "control" => ControlMessage::decode_prefix(&bytes, v).map(|_| ()).unwrap_err(),
                "datagram" => Datagram::decode(&Bytes::from(bytes.clone()), v).map(|_| ()).unwrap_err(),
                _ => {
                    let mut buf = BytesMut::from(&bytes[..]);
                    match DataStreamHeader::decode_from(&mut buf, v) {
                        Err(e) => e,
                        Ok(DataStreamHeader::Subgroup(sh)) => {
                            let mut r = SubgroupReader::new(sh, v);
                            loop {
                                match r.read_object(&mut buf) {
                                    Ok(_) if !buf.is_empty() => continue,
                                    Ok(_) => panic!("{name}: accepted"),
                                    Err(e) => break e,
                                }
                            }
                        }
                        Ok(DataStreamHeader::Fetch(_)) => {
                            let mut r = FetchReader::new(GroupOrder::Ascending, v);
                            loop {
                                match r.read_entry(&mut buf) {
                                    Ok(_) if !buf.is_empty() => continue,
                                    Ok(_) => panic!("{name}: accepted"),
                                    Err(e) => break e,
                                }
                            }
                        }
                        Ok(other) => panic!("{name}: {other:?}"),
                    }
                }
            };
            assert!(!err.is_short(), "{name} ({v}): {err} should be final");
        }
        let expect = json!({ "error": true });
        self.push(name, kind, vs, &bytes, expect);
    }

    fn push(&mut self, name: &str, kind: &'static str, vs: &[Version], bytes: &[u8], expect: Value) {
        self.0.push(json!({
            "name": name,
            "kind": kind,
            "versions": versions(vs),
            "hex": hexs(bytes),
            "expect": expect,
        }));
    }

    /// A subgroup stream: header plus objects, written by moq-wire's writer and read back by its reader.
    fn subgroup(&mut self, name: &str, h: SubgroupHeader, objects: &[(u64, Properties, &[u8], ObjectStatus)]) {
        let v = Version::Draft19;
        let mut w = SubgroupWriter::new(h, v);
        let mut out = Vec::new();
        w.write_header(&mut out).unwrap();
        for (id, p, payload, st) in objects {
            let header = ObjectHeader {
                object_id: ObjectId(*id),
                properties: p.clone(),
                payload_len: payload.len(),
                status: *st,
            };
            w.write_object_header(&mut out, &header).unwrap();
            out.extend_from_slice(payload);
        }
        let mut buf = BytesMut::from(&out[..]);
        let DataStreamHeader::Subgroup(read) = DataStreamHeader::decode_from(&mut buf, v).unwrap() else { panic!() };
        assert_eq!(read, h, "{name}");
        let mut r = SubgroupReader::new(read, v);
        let mut objs = Vec::new();
        for (id, p, payload, st) in objects {
            let o = r.read_object(&mut buf).unwrap();
            assert_eq!(
                (o.header.object_id.0, &o.header.properties, &o.payload[..], o.header.status),
                (*id, p, *payload, *st)
            );
            objs.push(json!({
                "objectId": int(*id),
                "properties": props(p),
                "status": st.to_u64(),
                "payload": hexs(payload),
            }));
        }
        assert!(buf.is_empty());
        let expect = json!({ "streamType": h.stream_type(), "header": subgroup_header(&h), "objects": objs });
        self.push(name, "subgroup", BOTH, &out, expect);
    }
}

fn build() -> Vectors {
    let mut t = Vectors(Vec::new());

    // Varints: the draft's examples (§1.4.1), boundaries, and non-minimal forms.
    for (h, value) in [
        ("25", 37u64),
        ("8025", 37),
        ("bbbd", 15_293),
        ("ed7f3e7d", 226_442_877),
        ("faa1a0e403d8", 2_893_212_287_960),
        ("fc8998abc66bc0", 151_288_809_941_952),
        ("fefa318fa8e3ca11", 70_423_237_261_249_041),
        ("ffffffffffffffffff", u64::MAX),
        ("7f", 127),
        ("8080", 128),
        ("bfff", 16_383),
        ("c04000", 16_384),
        ("c000 00", 0),
    ] {
        let bytes = hex(h);
        let mut cur = &bytes[..];
        assert_eq!(varint::leading_ones::get(&mut cur).unwrap(), value, "{h}");
        assert!(cur.is_empty());
        let mut minimal = Vec::new();
        varint::leading_ones::put(&mut minimal, value);
        let expect = json!({ "value": value.to_string(), "minimal": hexs(&minimal) });
        t.push(&format!("varint {h}"), "varint", BOTH, &bytes, expect);
    }

    // Control messages: those of tests/common, plus the player's forms.
    t.golden("SETUP");
    t.golden("SETUP (draft-19 options)");
    // An unknown (GREASE) Setup Option is kept and ignored.
    t.control(
        "SETUP (grease option)",
        BOTH,
        Setup {
            options: SetupOptions {
                implementation: Some("moq-web".into()),
                unknown: Properties::new().with_int(0x9d + 0x7f, 7).unwrap(),
                ..Default::default()
            },
        }
        .into(),
    );
    t.golden("GOAWAY");
    t.golden("GOAWAY (draft-18, control stream)");
    t.reject("GOAWAY -18 form in -19", "control", D19, "10 000c 08 6d6f71743a2f2f62 9388 07");
    t.golden("SUBSCRIBE");
    t.control(
        "SUBSCRIBE (player form)",
        BOTH,
        Subscribe {
            request_id: RequestId(4),
            track: ftn(&["demo", "clip"], "video0"),
            params: Parameters {
                forward: Some(true),
                subscriber_priority: Some(200),
                location_filter: Some(LocationFilter::LargestObject),
                group_order: Some(GroupOrder::Ascending),
                ..Default::default()
            },
        }
        .into(),
    );
    t.golden("SUBSCRIBE with OBJECTID_FILTER");
    t.control(
        "SUBSCRIBE with property filter and open range",
        D19,
        Subscribe {
            request_id: RequestId(0),
            track: ftn(&["a"], "b"),
            params: Parameters {
                range_filters: vec![RangeFilter {
                    kind: RangeFilterKind::ObjectProperty(0x10),
                    set_id: Some(1),
                    ranges: vec![RangeDelta { start: 7, end: None }],
                }],
                ..Default::default()
            },
        }
        .into(),
    );
    t.reject("range filter in -18", "control", D18, "03 000e 00 01 01 61 01 62 01 26 05 00 03020505");
    t.reject("EXPIRES in SUBSCRIBE", "control", BOTH, "03 0008 00 01 01 61 01 62 01 08 00");
    t.reject("FORWARD = 2", "control", BOTH, "03 0008 00 01 01 61 01 62 01 10 02");
    t.reject("duplicate FORWARD", "control", BOTH, "03 000a 00 01 01 61 01 62 02 10 01 00 01");
    t.reject("unknown parameter", "control", BOTH, "03 0008 00 01 01 61 01 62 01 0c 00");
    t.golden("SUBSCRIBE_OK");
    t.control(
        "SUBSCRIBE_OK (large group id)",
        BOTH,
        SubscribeOk {
            track_alias: TrackAlias(1),
            params: Parameters { largest_object: Some(Location::new(1_795_563_535_412, 29)), ..Default::default() },
            track_properties: Properties::new(),
        }
        .into(),
    );
    t.golden("REQUEST_UPDATE");
    t.golden("REQUEST_UPDATE prefix");
    t.golden("REQUEST_UPDATE remove filter");
    t.golden("PUBLISH");
    t.reject("GROUP_ORDER in -18 PUBLISH", "control", D18, "1d 000a 01 01 01 61 01 62 03 01 22 02");
    t.golden("PUBLISH_DONE");
    t.golden("PUBLISH_DONE unknown count");
    t.golden("FETCH standalone");
    t.golden("FETCH relative joining");
    t.golden("FETCH absolute joining");
    t.reject("fetch type 4", "control", BOTH, "16 0005 08 04 02 05 00");
    t.golden("FETCH_OK");
    t.reject("param in FETCH_OK", "control", BOTH, "18 0006 00 04 00 01 08 00");
    t.golden("TRACK_STATUS");
    t.golden("PUBLISH_NAMESPACE");
    t.golden("SUBSCRIBE_NAMESPACE (empty prefix)");
    t.golden("SUBSCRIBE_TRACKS");
    t.golden("SUBSCRIBE_TRACKS with GROUP_ORDER");
    t.reject("GROUP_ORDER in -18 SUBSCRIBE_TRACKS", "control", D18, "51 000a 10 01 04 6c697665 01 22 02");
    t.control("NAMESPACE", BOTH, Namespace { suffix: ns(&["demo", "clip"]) }.into());
    t.golden("NAMESPACE_DONE");
    t.golden("PUBLISH_SKIPPED / PUBLISH_BLOCKED");
    t.golden("REQUEST_OK");
    t.golden("REQUEST_OK (TRACK_STATUS_OK)");
    t.reject("0x1E in -19", "control", D19, "1e 0001 00");
    t.golden("REQUEST_ERROR");
    t.golden("REQUEST_ERROR redirect");
    t.reject("unknown message type", "control", BOTH, "3f 0000");
    t.reject("length longer than the fields", "control", BOTH, "08 0003 00 00 00");
    t.reject("length shorter than the fields", "control", BOTH, "0b 0002 02 03");

    // Subgroup streams.
    let (h, objects) = subgroup_example_1();
    t.subgroup("subgroup: draft example 1", h, &objects);
    let (h, objects) = subgroup_example_2();
    t.subgroup("subgroup: draft example 2 (properties)", h, &objects);
    t.subgroup(
        "subgroup: status objects",
        SubgroupHeader {
            track_alias: TrackAlias(1),
            group_id: GroupId(7),
            subgroup: SubgroupIdMode::Zero,
            publisher_priority: Some(3),
            has_properties: false,
            end_of_group: true,
            first_object: true,
        },
        &[
            (0, Properties::new(), b"x", ObjectStatus::Normal),
            (1, Properties::new(), b"", ObjectStatus::Normal),
            (2, Properties::new(), b"", ObjectStatus::EndOfGroup),
        ],
    );
    // A LOC video object as moq-media writes it: TIMESTAMP, VIDEO_FRAME_MARKING, PUBLISH_TIME (0x3A10).
    t.subgroup(
        "subgroup: LOC video (gaps, first-object mode)",
        SubgroupHeader {
            track_alias: TrackAlias(5),
            group_id: GroupId(1_795_563_535_412),
            subgroup: SubgroupIdMode::FirstObjectId,
            publisher_priority: Some(128),
            has_properties: true,
            end_of_group: false,
            first_object: true,
        },
        &[
            (
                3,
                Properties::new()
                    .with_bytes(0x09, Bytes::from_static(&[0xe0]))
                    .unwrap()
                    .with_int(0x10, 1_795_563_535_412_000)
                    .unwrap()
                    .with_int(0x3a10, 1_795_563_535_412_900)
                    .unwrap(),
                b"\x00\x00\x00\x02\x65\x88",
                ObjectStatus::Normal,
            ),
            (
                5,
                Properties::new().with_int(0x10, 1_795_563_535_445_333).unwrap(),
                b"\x00\x00\x00\x01\x41",
                ObjectStatus::Normal,
            ),
            (6, Properties::new(), b"", ObjectStatus::EndOfTrack),
        ],
    );
    t.reject("subgroup type 0x16 (reserved mode)", "subgroup", BOTH, "16 02 00 00");
    t.reject("subgroup object after End of Group", "subgroup", BOTH, "10 01 07 00 00 00 03 00 01 78");
    t.reject("properties on a status object", "subgroup", BOTH, "11 01 07 00 00 02 10 01 00 03");

    // The fetch stream of tests/common, written by moq-wire's writer and read back by its reader.
    {
        let v = Version::Draft19;
        let (header, golden) = fetch_stream();
        let mut fetch_bytes = Vec::new();
        header.encode(&mut fetch_bytes, v).unwrap();
        let mut w = FetchWriter::new(GroupOrder::Ascending, v);
        for (e, payload) in &golden {
            match e {
                FetchEntry::Object(obj) => w.write_object(&mut fetch_bytes, obj).unwrap(),
                FetchEntry::EndOfRange(r) => w.write_end_of_range(&mut fetch_bytes, r).unwrap(),
            }
            fetch_bytes.extend_from_slice(payload);
        }
        let mut buf = BytesMut::from(&fetch_bytes[..]);
        let DataStreamHeader::Fetch(fh) = DataStreamHeader::decode_from(&mut buf, v).unwrap() else { panic!() };
        assert_eq!(fh, header);
        let mut r = FetchReader::new(GroupOrder::Ascending, v);
        let mut entries = Vec::new();
        for (want, want_payload) in &golden {
            let (e, payload) = r.read_entry(&mut buf).unwrap();
            assert_eq!((&e, &payload[..]), (want, *want_payload));
            entries.push(match e {
                FetchEntry::Object(o) => Obj::new()
                    .f("groupId", int(o.group_id.0))
                    .opt("subgroupId", o.subgroup_id.map(|s| int(s.0)))
                    .f("objectId", int(o.object_id.0))
                    .f("publisherPriority", o.publisher_priority)
                    .f("properties", props(&o.properties))
                    .f("payload", hexs(&payload))
                    .done(),
                FetchEntry::EndOfRange(e) => json!({ "endOfRange": true, "unknown": e.unknown, "end": loc(&e.end) }),
            });
        }
        assert!(buf.is_empty());
        let expect = json!({ "requestId": int(fh.request_id.0), "groupOrder": 1, "entries": entries });
        t.push("fetch stream with ranges", "fetch", BOTH, &fetch_bytes, expect);
    }
    t.reject("fetch: first object refers to a prior object", "fetch", BOTH, "05 00 01 01 61");

    // The datagrams of tests/common.
    let datagrams = golden_datagrams();
    for (i, d) in datagrams.iter().enumerate() {
        let bytes = d.encode_to_vec(Version::Draft19).unwrap();
        for &v in BOTH {
            assert_eq!(Datagram::decode(&Bytes::from(bytes.clone()), v), Ok(Datagram::Object(d.clone())));
        }
        t.push(&format!("datagram {i} (type 0x{:02x})", bytes[0]), "datagram", BOTH, &bytes, datagram(d));
    }
    for bad in ["22 02 05 03", "10 02 05 03 80", "2d 02 05 02 10 07 03", "01 02 05 03 80 00 78"] {
        t.reject(&format!("datagram {bad}"), "datagram", BOTH, bad);
    }
    t
}

#[test]
fn export_vectors() {
    let vectors = build();
    // Every golden control message is exported.
    for (name, ..) in golden_control() {
        assert!(vectors.0.iter().any(|v| v["name"] == name), "{name} is not exported");
    }
    // One vector a line, so a change shows as a one-line diff.
    let lines: Vec<String> = vectors.0.iter().map(|v| serde_json::to_string(v).unwrap()).collect();
    let generator = serde_json::to_string("moq-wire/tests/export_vectors.rs").unwrap();
    let out = format!("{{\"generator\":{generator},\"vectors\":[\n{}\n]}}\n", lines.join(",\n"));
    // The framing above must stay valid JSON.
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["vectors"], Value::Array(vectors.0));

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web/test/vectors.json");
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &out).expect("write web/test/vectors.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == out,
        "web/test/vectors.json is stale: run `UPDATE_VECTORS=1 cargo test -p moq-wire --test export_vectors`"
    );
}
