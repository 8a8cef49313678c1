//! Both integer encodings: no panic, short input consumes nothing, and decode(encode(x)) == x.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_wire::coding::varint::{leading_ones, quic};

fuzz_target!(|data: &[u8]| {
    let mut cursor = data;
    match leading_ones::get(&mut cursor) {
        Ok(value) => {
            let used = data.len() - cursor.len();
            assert_eq!(used, leading_ones::len_from_first(data[0]));
            let mut out = Vec::new();
            leading_ones::put(&mut out, value);
            assert!(out.len() <= used, "minimal encoding is never longer");
            assert_eq!(leading_ones::get(&mut &out[..]), Ok(value));
        }
        Err(e) => {
            assert!(e.is_short());
            assert_eq!(cursor.len(), data.len(), "short input must not be consumed");
        }
    }
    let mut cursor = data;
    if let Ok(value) = quic::get(&mut cursor) {
        let mut out = Vec::new();
        quic::put(&mut out, value).expect("decoded QUIC varints are encodable");
        assert_eq!(quic::get(&mut &out[..]), Ok(value));
    } else {
        assert_eq!(cursor.len(), data.len());
    }
});
