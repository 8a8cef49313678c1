//! A whole unidirectional data stream: header, then objects until the input ends. No panic, nothing consumed
//! on error, and every decoded header re-encodes to an equal value.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use moq_wire::data::{DataStreamHeader, FetchReader, SubgroupReader};
use moq_wire::{Decode, Encode, GroupOrder, Version};

fuzz_target!(|data: &[u8]| {
    let (descending, data) = match data.split_first() {
        Some((b, rest)) => (b & 1 == 1, rest),
        None => return,
    };
    for v in Version::ALL {
        let mut buf = BytesMut::from(data);
        let Ok(header) = DataStreamHeader::decode_from(&mut buf, v) else {
            continue;
        };
        let enc = header.encode_to_vec(v).expect("decoded header encodes");
        assert_eq!(DataStreamHeader::decode_prefix(&enc, v).map(|(h, _)| h), Ok(header.clone()));
        match header {
            DataStreamHeader::Subgroup(h) => {
                let mut r = SubgroupReader::new(h, v);
                loop {
                    let before = buf.len();
                    match r.read_object(&mut buf) {
                        Ok(o) => assert_eq!(o.payload.len(), o.header.payload_len),
                        Err(_) => {
                            assert_eq!(buf.len(), before);
                            break;
                        }
                    }
                }
            }
            DataStreamHeader::Fetch(_) => {
                let order = if descending { GroupOrder::Descending } else { GroupOrder::Ascending };
                let mut r = FetchReader::new(order, v);
                loop {
                    let before = buf.len();
                    if r.read_entry(&mut buf).is_err() {
                        assert_eq!(buf.len(), before);
                        break;
                    }
                }
            }
            DataStreamHeader::Padding => {}
        }
    }
});
