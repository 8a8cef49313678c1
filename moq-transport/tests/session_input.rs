//! The session fuzz target's driver as a property test: arbitrary peer input (random, and built from valid
//! messages) never panics the session, and every close carries a code the draft defines.

use std::cell::Cell;
use std::sync::Once;

use bytes::BytesMut;
use moq_transport::fuzzing::{Outcome, session_input};
use moq_transport::wire::Version;
use moq_transport::wire::control::*;
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::wire::params::Parameters;
use moq_transport::wire::{Location, RequestId};
use proptest::prelude::*;

thread_local! {
    /// Set by the panic hook on the thread that panicked: the session's tasks run on the test's own thread.
    static PANICKED: Cell<bool> = const { Cell::new(false) };
}

fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.with(|p| p.set(true));
            default(info);
        }));
    });
}

fn frame(msg: ControlMessage) -> Vec<u8> {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, Version::Draft19).unwrap();
    buf.to_vec()
}

/// Valid requests a peer might send, as (op, bytes) events: 1 opens a request stream, 2 writes to it.
fn requests() -> Vec<Vec<u8>> {
    let track = FullTrackName::new(TrackNamespace::from_path("live").unwrap(), "v");
    let subscribe = Subscribe { request_id: RequestId(0), track: track.clone(), params: Parameters::default() };
    let fetch = Fetch {
        request_id: RequestId(2),
        fetch_type: FetchType::Standalone { track, start: Location::new(0, 0), end: Location::new(2, 0) },
        params: Parameters::default(),
    };
    let update = RequestUpdate { request_id: RequestId(4), params: Parameters::default() };
    let ns =
        SubscribeNamespace { request_id: RequestId(6), prefix: TrackNamespace::empty(), params: Parameters::default() };
    [subscribe.into(), fetch.into(), update.into(), ns.into()].into_iter().map(frame).collect()
}

fn event(op: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![op, bytes.len().min(255) as u8];
    out.extend_from_slice(&bytes[..bytes.len().min(255)]);
    out
}

fn check(input: &[u8]) -> Outcome {
    watch_panics();
    PANICKED.with(|p| p.set(false));
    let outcome = session_input(input);
    assert!(!PANICKED.with(|p| p.get()), "a session task panicked on {input:?}");
    outcome
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..400)) {
        check(&input);
    }

    #[test]
    fn mutated_requests_never_panic(
        picks in proptest::collection::vec((0usize..4, 1u8..3, any::<u8>(), any::<u8>()), 1..6),
    ) {
        let requests = requests();
        let mut input = vec![0u8];
        for (which, op, flip_at, flip) in picks {
            let mut bytes = requests[which].clone();
            let i = flip_at as usize % bytes.len();
            bytes[i] ^= flip;
            input.extend(event(op, &bytes));
        }
        check(&input);
    }
}

#[test]
fn valid_requests_keep_the_session_open() {
    let mut input = vec![0u8];
    for r in requests().iter().take(2) {
        input.extend(event(1, r));
    }
    assert_eq!(check(&input), Outcome::Open);
    // A garbage control message after SETUP closes with a draft code.
    let closed = check(&[0, 0, 3, 0x3f, 0x00, 0x00]);
    assert!(matches!(closed, Outcome::Closed(_)), "{closed:?}");
}
