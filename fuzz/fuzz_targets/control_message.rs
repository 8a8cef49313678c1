//! Control messages in both drafts: no panic; a decoded message re-encodes and decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_wire::control::ControlMessage;
use moq_wire::{Decode, Version};

fuzz_target!(|data: &[u8]| {
    for v in Version::ALL {
        let mut rest = data;
        // Several messages back to back, as on a request stream.
        while let Ok((msg, used)) = ControlMessage::decode_prefix(rest, v) {
            assert!(used > 0 && used <= rest.len());
            let bytes = msg.encode_to_vec(v).expect("a decoded message is encodable");
            let (again, n) = ControlMessage::decode_prefix(&bytes, v).expect("re-encoded message decodes");
            assert_eq!(n, bytes.len());
            assert_eq!(again, msg);
            rest = &rest[used..];
        }
    }
});
