//! Codec benchmarks. Each group answers one question:
//!
//! * `varint`: what does one integer cost to encode and decode, at each length?
//! * `control`: what does a typical SUBSCRIBE / SUBSCRIBE_OK cost to frame and parse?
//! * `subgroup`: how fast can a relay walk the object headers of a subgroup stream (payloads skipped, not copied)?
//! * `datagram`: what does parsing one OBJECT_DATAGRAM cost?
//!
//! Run: `cargo bench -p moq-wire --bench codec`. Results are recorded in `docs/performance.md`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use moq_wire::coding::varint::leading_ones;
use moq_wire::control::{ControlMessage, Subscribe, SubscribeOk};
use moq_wire::data::{
    Datagram, DatagramContent, ObjectDatagram, SubgroupHeader, SubgroupIdMode, SubgroupReader, SubgroupWriter,
};
use moq_wire::kvp::Properties;
use moq_wire::namespace::{FullTrackName, TrackNamespace};
use moq_wire::params::{LocationFilter, Parameters};
use moq_wire::*;

const V: Version = Version::Draft19;

fn varint(c: &mut Criterion) {
    let mut g = c.benchmark_group("varint");
    for value in [37u64, 15_293, 226_442_877, u64::MAX] {
        let mut enc = Vec::new();
        leading_ones::put(&mut enc, value);
        g.throughput(Throughput::Bytes(enc.len() as u64));
        g.bench_with_input(BenchmarkId::new("encode", enc.len()), &value, |b, &v| {
            let mut out = Vec::with_capacity(16);
            b.iter(|| {
                out.clear();
                leading_ones::put(&mut out, black_box(v));
                black_box(&out);
            })
        });
        g.bench_with_input(BenchmarkId::new("decode", enc.len()), &enc, |b, enc| {
            b.iter(|| leading_ones::get(&mut black_box(&enc[..])))
        });
    }
    g.finish();
}

fn control(c: &mut Criterion) {
    let subscribe = ControlMessage::Subscribe(Subscribe {
        request_id: RequestId(42),
        track: FullTrackName::new(TrackNamespace::new(["live", "demo"]).unwrap(), "video-1080p"),
        params: Parameters {
            forward: Some(true),
            subscriber_priority: Some(64),
            location_filter: Some(LocationFilter::LargestObject),
            group_order: Some(GroupOrder::Ascending),
            ..Default::default()
        },
    });
    let ok = ControlMessage::SubscribeOk(SubscribeOk {
        track_alias: TrackAlias(7),
        params: Parameters { largest_object: Some(Location::new(1_234, 17)), ..Default::default() },
        track_properties: Properties::new().with_int(0x0e, 32).unwrap(),
    });
    let mut g = c.benchmark_group("control");
    for (name, msg) in [("subscribe", &subscribe), ("subscribe_ok", &ok)] {
        let bytes = msg.encode_to_vec(V).unwrap();
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(BenchmarkId::new("encode", name), |b| {
            let mut out = BytesMut::with_capacity(256);
            b.iter(|| {
                out.clear();
                black_box(msg).encode(&mut out, V).unwrap();
            })
        });
        g.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| ControlMessage::decode_prefix(black_box(&bytes), V).unwrap())
        });
    }
    g.finish();
}

fn subgroup(c: &mut Criterion) {
    let header = SubgroupHeader {
        track_alias: TrackAlias(1),
        group_id: GroupId(100),
        subgroup: SubgroupIdMode::Zero,
        publisher_priority: Some(0),
        has_properties: true,
        end_of_group: false,
        first_object: true,
    };
    let mut g = c.benchmark_group("subgroup");
    for (objects, payload) in [(30usize, 100usize), (30, 40_000)] {
        let mut w = SubgroupWriter::new(header, V);
        let mut stream = Vec::new();
        w.write_header(&mut stream).unwrap();
        let body = vec![0xab; payload];
        for i in 0..objects {
            let props = Properties::new().with_int(0x10, 1_700_000_000_000_000 + i as u64).unwrap();
            w.write_object(&mut stream, ObjectId(i as u64), props, &body).unwrap();
        }
        let stream = BytesMut::from(&stream[..]);
        g.throughput(Throughput::Bytes(stream.len() as u64));
        g.bench_with_input(BenchmarkId::new("read_objects", format!("{objects}x{payload}B")), &stream, |b, s| {
            // The buffer is cloned in the untimed setup; the timed part walks headers and splits payloads.
            b.iter_batched(
                || s.clone(),
                |mut buf| {
                    let h = SubgroupHeader::decode_from(&mut buf, V).unwrap();
                    let mut r = SubgroupReader::new(h, V);
                    let mut objects = Vec::with_capacity(32);
                    while !buf.is_empty() {
                        objects.push(r.read_object(&mut buf).unwrap());
                    }
                    // Returned so that freeing the buffer happens outside the timed part.
                    (buf, objects)
                },
                BatchSize::LargeInput,
            )
        });
        g.throughput(Throughput::Elements(objects as u64));
        g.bench_with_input(
            BenchmarkId::new("write_headers", format!("{objects}x{payload}B")),
            &objects,
            |b, &objects| {
                let mut out = Vec::with_capacity(64 * objects);
                b.iter(|| {
                    out.clear();
                    let mut w = SubgroupWriter::new(header, V);
                    w.write_header(&mut out).unwrap();
                    for i in 0..objects {
                        let h = moq_wire::data::ObjectHeader {
                            object_id: ObjectId(i as u64),
                            properties: Properties::new(),
                            payload_len: payload,
                            status: ObjectStatus::Normal,
                        };
                        w.write_object_header(&mut out, &h).unwrap();
                    }
                    black_box(&out);
                })
            },
        );
    }
    g.finish();
}

fn datagram(c: &mut Criterion) {
    let d = ObjectDatagram {
        track_alias: TrackAlias(3),
        group_id: GroupId(9_000),
        object_id: ObjectId(0),
        publisher_priority: None,
        properties: Properties::new().with_int(0x10, 1_700_000_000_000_000).unwrap(),
        end_of_group: true,
        content: DatagramContent::Payload(Bytes::from(vec![1u8; 160])),
    };
    let bytes = Bytes::from(d.encode_to_vec(V).unwrap());
    let mut g = c.benchmark_group("datagram");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("decode_opus_sized", |b| b.iter(|| Datagram::decode(black_box(&bytes), V).unwrap()));
    g.finish();
}

criterion_group!(benches, varint, control, subgroup, datagram);
criterion_main!(benches);
