//! A server session fed arbitrary peer input (stream events on the control stream, request streams, data streams
//! and datagrams; see `moq_transport::fuzzing`): no panic, and every close carries a code the draft defines.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    moq_transport::fuzzing::session_input(data);
});
