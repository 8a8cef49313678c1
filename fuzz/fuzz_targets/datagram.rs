//! Datagrams: no panic; a decoded OBJECT_DATAGRAM re-encodes and decodes to the same value.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use moq_wire::Version;
use moq_wire::data::Datagram;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    for v in Version::ALL {
        if let Ok(Datagram::Object(d)) = Datagram::decode(&bytes, v) {
            let enc = Bytes::from(d.encode_to_vec(v).expect("decoded datagram encodes"));
            assert_eq!(Datagram::decode(&enc, v), Ok(Datagram::Object(d)));
        }
    }
});
