//! A packet-level network emulator that needs no netem: a TUN device in each of two network namespaces, and
//! between them, per direction, a [`Link`] deciding for every IP packet whether and when it arrives.
//!
//! [`spec`] parses the impairments, [`link`] is the seeded, sans-IO model (tested on its own), [`tun`] moves
//! packets.

pub mod link;
pub mod spec;
pub mod tun;

pub use link::{Counters, Link, Verdict};
pub use spec::{LinkSpec, Loss, SpecError};
