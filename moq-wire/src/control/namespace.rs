//! PUBLISH_NAMESPACE, SUBSCRIBE_NAMESPACE, SUBSCRIBE_TRACKS and their response-stream messages NAMESPACE,
//! NAMESPACE_DONE and PUBLISH_SKIPPED.

use bytes::BufMut;

use super::Message;
use crate::coding::{Decode, Encode};
use crate::ids::RequestId;
use crate::namespace::{MAX_FULL_TRACK_NAME_LEN, TrackName, TrackNamespace};
use crate::params::{ParamContext, Parameters};
use crate::{DecodeError, EncodeError, Version};

macro_rules! namespace_request {
    ($(#[$doc:meta])* $name:ident, $ty:literal, $text:literal, $ctx:expr, $field:ident, $fdoc:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            /// The request id.
            pub request_id: RequestId,
            #[doc = $fdoc]
            pub $field: TrackNamespace,
            /// The parameters.
            pub params: Parameters,
        }

        impl Message for $name {
            const TYPE: u64 = $ty;
            const NAME: &'static str = $text;

            fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
                Ok($name {
                    request_id: RequestId::decode(body, v)?,
                    $field: TrackNamespace::decode(body, v)?,
                    params: Parameters::decode(body, v, $ctx)?,
                })
            }

            fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
                self.request_id.encode(buf, v)?;
                self.$field.encode(buf, v)?;
                self.params.encode(buf, v, $ctx)
            }
        }
    };
}

namespace_request!(
    /// PUBLISH_NAMESPACE (0x06): "route SUBSCRIBE and FETCH for tracks under this namespace to me". Withdrawn by
    /// cancelling the request stream.
    PublishNamespace, 0x06, "PUBLISH_NAMESPACE", ParamContext::PublishNamespace, namespace, "The namespace."
);
namespace_request!(
    /// SUBSCRIBE_NAMESPACE (0x50): discover namespaces published under a prefix (answered by NAMESPACE /
    /// NAMESPACE_DONE on the same stream).
    SubscribeNamespace, 0x50, "SUBSCRIBE_NAMESPACE", ParamContext::SubscribeNamespace, prefix, "The prefix (0 fields: everything)."
);
namespace_request!(
    /// SUBSCRIBE_TRACKS (0x51): ask the peer to PUBLISH every track under a prefix.
    SubscribeTracks, 0x51, "SUBSCRIBE_TRACKS", ParamContext::SubscribeTracks, prefix, "The prefix (0 fields: everything)."
);

macro_rules! namespace_suffix {
    ($(#[$doc:meta])* $name:ident, $ty:literal, $text:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            /// The namespace without the fields of the SUBSCRIBE_NAMESPACE prefix.
            pub suffix: TrackNamespace,
        }

        impl Message for $name {
            const TYPE: u64 = $ty;
            const NAME: &'static str = $text;

            fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
                Ok($name { suffix: TrackNamespace::decode(body, v)? })
            }

            fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
                self.suffix.encode(buf, v)
            }
        }
    };
}

namespace_suffix!(
    /// NAMESPACE (0x08): a namespace under the prefix is now published.
    Namespace, 0x08, "NAMESPACE"
);
namespace_suffix!(
    /// NAMESPACE_DONE (0x0E): a namespace under the prefix is no longer published.
    NamespaceDone, 0x0E, "NAMESPACE_DONE"
);

/// PUBLISH_SKIPPED (0x0F; named PUBLISH_BLOCKED in draft-18, same layout): the publisher will not send PUBLISH for
/// this track on a SUBSCRIBE_TRACKS stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSkipped {
    /// The track's namespace without the prefix fields.
    pub suffix: TrackNamespace,
    /// The track name.
    pub name: TrackName,
}

impl Message for PublishSkipped {
    const TYPE: u64 = 0x0F;
    const NAME: &'static str = "PUBLISH_SKIPPED";

    fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
        let suffix = TrackNamespace::decode(body, v)?;
        let name = TrackName::decode(body, v)?;
        let len = suffix.byte_len() + name.len();
        if len > MAX_FULL_TRACK_NAME_LEN {
            return Err(DecodeError::TooLong { field: "full track name", len, max: MAX_FULL_TRACK_NAME_LEN });
        }
        Ok(PublishSkipped { suffix, name })
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        self.suffix.encode(buf, v)?;
        self.name.encode(buf, v)
    }
}
