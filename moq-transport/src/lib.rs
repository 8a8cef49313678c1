//! Media over QUIC Transport sessions (draft-ietf-moq-transport-19 and -18) over raw QUIC and WebTransport.
#![warn(missing_docs)]

mod error;
mod io;
pub mod model;
pub mod origin;
pub mod session;

pub use error::Error;
pub use model::*;
pub use origin::{NamespaceEvent, Origin};
pub use session::*;

pub use moq_wire as wire;
pub mod memory;
pub mod quic;
pub mod tls;
