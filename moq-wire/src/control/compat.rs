//! Leniency for known departures of deployed peers from the draft, applied only when strict decoding fails.
//!
//! Everything here turns a message the draft calls malformed into the message the peer evidently meant; it can
//! never change the meaning of a message that decodes strictly. Each departure is recorded in `docs/interop.md`.

use bytes::{BufMut, BytesMut};

use super::{FrameHeader, Message, Publish, RequestOk, SubscribeOk};
use crate::coding::{Decode, get_len, get_u8, get_vi, vi_len};
use crate::namespace::{FullTrackName, TrackNamespace};
use crate::params::param_type as pt;
use crate::{DecodeError, Version};

/// Rewrites a framed SUBSCRIBE_OK, PUBLISH or REQUEST_OK whose LARGEST_OBJECT parameter was written with a length
/// prefix (`09 len group object`, as some draft-18 peers do) into the draft's form (`09 group object`).
///
/// Returns `None` when the message is not one of those, has no such parameter, or the candidate prefix does not
/// equal the size of the two varints after it.
pub fn repair_largest_object(frame: &[u8], v: Version) -> Option<Vec<u8>> {
    let header = FrameHeader::peek(frame, v).ok()?;
    let body = frame.get(header.header_len..header.total_len())?;
    let mut cursor = body;
    match header.message_type {
        SubscribeOk::TYPE => {
            get_vi(&mut cursor, v).ok()?;
        }
        Publish::TYPE => {
            get_vi(&mut cursor, v).ok()?;
            FullTrackName::decode(&mut cursor, v).ok()?;
            get_vi(&mut cursor, v).ok()?;
        }
        RequestOk::TYPE => {}
        _ => return None,
    }
    let params_at = body.len() - cursor.len();
    let count = get_vi(&mut cursor, v).ok()?;
    let mut ty = 0u64;
    for _ in 0..count {
        ty = ty.checked_add(get_vi(&mut cursor, v).ok()?)?;
        let value_at = body.len() - cursor.len();
        match ty {
            pt::LARGEST_OBJECT => {
                let mut probe = cursor;
                let len = get_vi(&mut probe, v).ok()?;
                let mut loc = probe;
                let g = get_vi(&mut loc, v).ok()?;
                let o = get_vi(&mut loc, v).ok()?;
                let used = (probe.len() - loc.len()) as u64;
                if len != used || used != (vi_len(v, g) + vi_len(v, o)) as u64 {
                    return None;
                }
                // Drop the length prefix and re-frame.
                let prefix_len = cursor.len() - probe.len();
                let mut new_body = Vec::with_capacity(body.len());
                new_body.extend_from_slice(&body[..value_at]);
                new_body.extend_from_slice(&body[value_at + prefix_len..]);
                let _ = params_at;
                let mut out = BytesMut::new();
                crate::coding::put_vi(&mut out, v, header.message_type).ok()?;
                out.put_u16(u16::try_from(new_body.len()).ok()?);
                out.extend_from_slice(&new_body);
                return Some(out.to_vec());
            }
            pt::FORWARD | pt::SUBSCRIBER_PRIORITY | pt::GROUP_ORDER => {
                get_u8(&mut cursor).ok()?;
            }
            pt::AUTHORIZATION_TOKEN | pt::LOCATION_FILTER | pt::SUBGROUP_FILTER..=pt::TRACK_PROPERTY_FILTER => {
                let len = get_len(&mut cursor, v, "parameter", u16::MAX as usize).ok()?;
                cursor = cursor.get(len..)?;
            }
            pt::TRACK_NAMESPACE_PREFIX => {
                TrackNamespace::decode(&mut cursor, v).ok()?;
            }
            _ => {
                get_vi(&mut cursor, v).ok()?;
            }
        }
    }
    None
}

/// Decodes a control message strictly, and on failure retries with [`repair_largest_object`].
pub fn decode_lenient(frame: &[u8], v: Version) -> Result<(super::ControlMessage, usize), DecodeError> {
    match super::ControlMessage::decode_prefix(frame, v) {
        Err(e) if !e.is_short() => {
            let header = FrameHeader::peek(frame, v)?;
            let repaired = repair_largest_object(frame, v).ok_or(e)?;
            let (msg, _) = super::ControlMessage::decode_prefix(&repaired, v).map_err(|_| e)?;
            Ok((msg, header.total_len()))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Location;
    use crate::control::ControlMessage;

    #[test]
    fn length_prefixed_largest_object() {
        // Seen from a draft-18 relay: SUBSCRIBE_OK alias 0, LARGEST_OBJECT with a length prefix 02, 26/19.
        let bytes = [0x04, 0x00, 0x06, 0x00, 0x01, 0x09, 0x02, 0x1a, 0x13];
        let v = Version::Draft18;
        assert!(ControlMessage::decode_prefix(&bytes, v).is_err());
        let (msg, used) = decode_lenient(&bytes, v).unwrap();
        assert_eq!(used, bytes.len());
        let ControlMessage::SubscribeOk(ok) = msg else { panic!("{msg:?}") };
        assert_eq!(ok.params.largest_object, Some(Location::new(26, 19)));
        // A strictly valid message is never rewritten.
        let strict = [0x04, 0x00, 0x05, 0x00, 0x01, 0x09, 0x02, 0x1a];
        assert_eq!(decode_lenient(&strict, v), ControlMessage::decode_prefix(&strict, v));
        // A prefix that does not match the varints after it is not a repair.
        assert!(repair_largest_object(&[0x04, 0x00, 0x06, 0x00, 0x01, 0x09, 0x05, 0x1a, 0x13], v).is_none());
        // Short input stays short.
        assert!(decode_lenient(&bytes[..5], v).unwrap_err().is_short());
    }
}
