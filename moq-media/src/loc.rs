//! LOC packaging (draft-ietf-moq-loc-04): one frame per object, its metadata in Object Properties.
//!
//! | Property | Type | Value |
//! |---|---|---|
//! | [`TIMESTAMP`] | 0x10 | presentation time, microseconds since the Unix epoch (no TIMESCALE is sent) |
//! | [`VIDEO_FRAME_MARKING`] | 0x09 | RFC 9626 byte: `0xE0` keyframe, `0xC0` other frames |
//! | [`VIDEO_CONFIG`] | 0x0D | avcC / av1C, on keyframes |
//! | [`PUBLISH_TIME`] | 0x3A10 | ours: wall-clock microseconds when the publisher wrote the object |
//!
//! The payload is the frame as WebCodecs takes it: H.264 in AVCC form (4-byte lengths, parameter sets in the
//! avcC), one Opus or AAC packet.

use bytes::Bytes;
use moq_transport::Object;
use moq_transport::wire::kvp::Properties;

/// TIMESTAMP: presentation time; without TIMESCALE, microseconds since the Unix epoch.
pub const TIMESTAMP: u64 = 0x10;
/// TIMESCALE: units per second of TIMESTAMP (we do not send it; we read it).
pub const TIMESCALE: u64 = 0x08;
/// VIDEO_FRAME_MARKING (RFC 9626 flags).
pub const VIDEO_FRAME_MARKING: u64 = 0x09;
/// VIDEO_CONFIG: the decoder configuration record.
pub const VIDEO_CONFIG: u64 = 0x0D;
/// AUDIO_CONFIG: the audio decoder configuration.
pub const AUDIO_CONFIG: u64 = 0x0F;
/// Our own property, in the transport's application-specific range (0x3800-0x3FFF): the wall-clock time in
/// microseconds since the Unix epoch at which the publisher wrote the object. A subscriber on the same host
/// (or with synchronised clocks) subtracts it from its receive time to get publish-to-receive latency.
pub const PUBLISH_TIME: u64 = 0x3A10;

/// RFC 9626 frame marking: start and end of frame, independent.
const MARK_KEY: u8 = 0xE0;
/// Start and end of frame.
const MARK_DELTA: u8 = 0xC0;
/// The independent (I) bit.
const MARK_I: u8 = 0x20;

/// A frame and its LOC metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Presentation time in microseconds (since the Unix epoch when the publisher follows LOC's default).
    pub timestamp_us: u64,
    /// A keyframe (video), or None when the object carries no frame marking (audio).
    pub keyframe: Option<bool>,
    /// Decoder configuration carried in-band (VIDEO_CONFIG / AUDIO_CONFIG).
    pub config: Option<Bytes>,
    /// When the publisher wrote it (our PUBLISH_TIME), microseconds since the Unix epoch.
    pub publish_time_us: Option<u64>,
    /// The coded frame.
    pub payload: Bytes,
}

impl Frame {
    /// The object carrying this frame, with id `id`.
    pub fn to_object(&self, id: u64) -> Object {
        let mut props = Properties::new();
        // Even types carry varints, odd types bytes: these cannot fail.
        let mut add_int = |k, v| {
            if let Ok(p) = moq_transport::wire::kvp::KeyValuePair::int(k, v) {
                props.push(p);
            }
        };
        add_int(TIMESTAMP, self.timestamp_us);
        if let Some(t) = self.publish_time_us {
            add_int(PUBLISH_TIME, t);
        }
        if let Some(k) = self.keyframe
            && let Ok(p) = moq_transport::wire::kvp::KeyValuePair::bytes(
                VIDEO_FRAME_MARKING,
                Bytes::from_static(if k { &[MARK_KEY] } else { &[MARK_DELTA] }),
            )
        {
            props.push(p);
        }
        if let Some(c) = &self.config
            && let Ok(p) = moq_transport::wire::kvp::KeyValuePair::bytes(VIDEO_CONFIG, c.clone())
        {
            props.push(p);
        }
        let mut object = Object::new(id, self.payload.clone());
        object.properties = props;
        object
    }

    /// The frame an object carries. Objects without a TIMESTAMP get `None` (not LOC).
    pub fn from_object(object: &Object) -> Option<Frame> {
        let p = &object.properties;
        let raw = p.get_int(TIMESTAMP)?;
        let timestamp_us = match p.get_int(TIMESCALE) {
            Some(scale) if scale > 0 && scale != 1_000_000 => {
                u64::try_from(u128::from(raw) * 1_000_000 / u128::from(scale)).unwrap_or(u64::MAX)
            }
            _ => raw,
        };
        Some(Frame {
            timestamp_us,
            keyframe: p.get_bytes(VIDEO_FRAME_MARKING).and_then(|m| m.first()).map(|b| b & MARK_I != 0),
            config: p.get_bytes(VIDEO_CONFIG).or(p.get_bytes(AUDIO_CONFIG)).cloned(),
            publish_time_us: p.get_int(PUBLISH_TIME),
            payload: object.payload.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moq_transport::wire::Version;

    #[test]
    fn keyframe_object_matches_the_draft_layout() {
        let f = Frame {
            timestamp_us: 1_700_000_000_000_000,
            keyframe: Some(true),
            config: Some(Bytes::from_static(&[1, 0x42, 0xc0, 0x1e])),
            publish_time_us: None,
            payload: Bytes::from_static(b"frame"),
        };
        let o = f.to_object(0);
        let mut wire = Vec::new();
        o.properties.encode_all(&mut wire, Version::Draft19).unwrap();
        // Types ascend, delta-coded: 0x09 (marking), +4 = 0x0D (config), +3 = 0x10 (timestamp).
        assert_eq!(&wire[..3], &[0x09, 0x01, 0xE0]);
        assert_eq!(&wire[3..9], &[0x04, 0x04, 1, 0x42, 0xc0, 0x1e]);
        assert_eq!(wire[9], 0x03);
        assert_eq!(Frame::from_object(&o), Some(f));
    }

    #[test]
    fn delta_frame_and_publish_time_round_trip() {
        let f = Frame {
            timestamp_us: 42,
            keyframe: Some(false),
            config: None,
            publish_time_us: Some(1_700_000_000_123_456),
            payload: Bytes::from_static(b"p"),
        };
        assert_eq!(Frame::from_object(&f.to_object(7)), Some(f));
        assert_eq!(Frame::from_object(&Object::new(0, "no properties")), None);
    }

    #[test]
    fn timescale_converts_to_microseconds() {
        let mut o = Object::new(0, "x");
        o.properties = Properties::new().with_int(TIMESCALE, 90_000).unwrap().with_int(TIMESTAMP, 180_000).unwrap();
        assert_eq!(Frame::from_object(&o).unwrap().timestamp_us, 2_000_000);
    }
}
