//! The MSF catalog (draft-ietf-moq-msf): a JSON description of a broadcast's tracks, carried in its `catalog`
//! track.
//!
//! Object 0 of every catalog group is a complete catalog; later objects of the group are delta updates. We
//! publish only complete catalogs (a new group per change) and apply deltas from others.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::mp4::{Kind, TrackConfig};

/// The name of the catalog track.
pub const CATALOG_TRACK: &str = "catalog";
/// The catalog `version` we write.
pub const VERSION: &str = "draft-01";

/// Why a catalog could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Not JSON, or not a catalog.
    #[error("invalid catalog JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A delta names a track the catalog does not have.
    #[error("catalog delta refers to unknown track `{0}`")]
    UnknownTrack(String),
    /// A delta arrived before any complete catalog.
    #[error("catalog delta without a complete catalog to apply it to")]
    NoBase,
    /// Init data that is not base64.
    #[error("track `{0}`: init data is not valid base64")]
    InitData(String),
    /// A field beyond the bounds of `catalog_limits`.
    #[error("catalog refused: {0}")]
    Limit(String),
}

/// A complete catalog.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    /// `"draft-01"`; older publishers send the number 1, which we accept.
    #[serde(deserialize_with = "string_or_number")]
    pub version: String,
    /// Wall-clock milliseconds since the Unix epoch when this catalog was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<u64>,
    /// The broadcast has ended for good.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_complete: bool,
    /// The tracks.
    #[serde(default)]
    pub tracks: Vec<Track>,
    /// Init data the tracks refer to by `initRef`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_data_list: Vec<InitData>,
}

/// One track of a catalog. Unknown fields are ignored, as MSF requires.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Track {
    /// Track name, unique in the namespace.
    pub name: String,
    /// Namespace, when not the catalog's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `loc`, `cmaf`, ...
    pub packaging: String,
    /// A live track.
    #[serde(default = "yes")]
    pub is_live: bool,
    /// `video`, `audio`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// WebCodecs codec string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    /// Coded width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Coded height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Frames per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framerate: Option<f64>,
    /// Units per second of the track's media time (the MP4 timescale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timescale: Option<u64>,
    /// Peak bitrate in bits per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u64>,
    /// Audio sample rate in Hz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samplerate: Option<u32>,
    /// Audio channel configuration, e.g. `"2"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_config: Option<String>,
    /// Tracks rendered together share a render group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_group: Option<u64>,
    /// Alternatives of one another (renditions) share an alt group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_group: Option<u64>,
    /// Target end-to-end latency in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_latency: Option<u64>,
    /// The `id` of this track's entry in `initDataList`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_ref: Option<String>,
    /// Base64 init data inline (MSF-00 and CMSF-00 style; read, never written).
    #[serde(default, skip_serializing)]
    pub init_data: Option<String>,
    /// Delta `clone`: the track this one copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_name: Option<String>,
    /// Any other fields, kept so that a delta `update` of them round-trips.
    #[serde(flatten, default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub other: serde_json::Map<String, serde_json::Value>,
}

fn yes() -> bool {
    true
}

/// An entry of `initDataList`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitData {
    /// What `initRef` names.
    pub id: String,
    /// `inline` (base64 in `data`), `track-property` or `object-property`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Base64 init bytes for `inline`.
    pub data: String,
}

/// A delta update (objects after the first of a catalog group).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delta {
    generated_at: Option<u64>,
    delta_update: Vec<DeltaOp>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct DeltaOp {
    op: String,
    tracks: Vec<serde_json::Value>,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("version must be a string, not {other}"))),
    }
}

impl Catalog {
    /// An empty live catalog stamped now.
    pub fn new() -> Catalog {
        Catalog { version: VERSION.into(), generated_at: Some(crate::now_millis()), ..Default::default() }
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A complete catalog from JSON.
    pub fn from_json(json: &[u8]) -> Result<Catalog, CatalogError> {
        Catalog::apply(None, json)
    }

    /// Applies one catalog object to the current catalog: a complete catalog replaces it, a delta
    /// (`deltaUpdate`) updates it. Returns the result.
    pub fn apply(current: Option<&Catalog>, json: &[u8]) -> Result<Catalog, CatalogError> {
        if json.len() > crate::catalog_limits::MAX_CATALOG_BYTES {
            return Err(CatalogError::Limit("larger than 4 MiB".into()));
        }
        let catalog = Catalog::apply_unchecked(current, json)?;
        crate::catalog_limits::check(&catalog)?;
        Ok(catalog)
    }

    fn apply_unchecked(current: Option<&Catalog>, json: &[u8]) -> Result<Catalog, CatalogError> {
        let value: serde_json::Value = serde_json::from_slice(json)?;
        if value.get("deltaUpdate").is_none() {
            return Ok(serde_json::from_value(value)?);
        }
        let delta: Delta = serde_json::from_value(value)?;
        let mut catalog = current.ok_or(CatalogError::NoBase)?.clone();
        catalog.generated_at = delta.generated_at.or(catalog.generated_at);
        for op in delta.delta_update {
            for entry in op.tracks {
                let name = entry.get("name").and_then(|n| n.as_str()).unwrap_or_default().to_string();
                match op.op.as_str() {
                    "add" => catalog.tracks.push(serde_json::from_value(entry)?),
                    "remove" => catalog.tracks.retain(|t| t.name != name),
                    "update" | "clone" => {
                        let parent = entry.get("parentName").and_then(|n| n.as_str()).unwrap_or(&name).to_string();
                        let base = catalog
                            .tracks
                            .iter()
                            .find(|t| t.name == parent)
                            .ok_or_else(|| CatalogError::UnknownTrack(parent.clone()))?;
                        let mut merged = serde_json::to_value(base)?;
                        if let (Some(m), Some(e)) = (merged.as_object_mut(), entry.as_object()) {
                            for (k, v) in e {
                                if k != "parentName" && k != "parentNamespace" {
                                    m.insert(k.clone(), v.clone());
                                }
                            }
                        }
                        let track: Track = serde_json::from_value(merged)?;
                        if op.op == "update" {
                            catalog.tracks.retain(|t| t.name != parent);
                        }
                        catalog.tracks.push(track);
                    }
                    other => tracing::debug!(op = other, "ignoring unknown catalog delta op"),
                }
            }
        }
        Ok(catalog)
    }

    /// The track named `name`.
    pub fn track(&self, name: &str) -> Option<&Track> {
        self.tracks.iter().find(|t| t.name == name)
    }

    /// The init bytes of a track: its `initRef` entry, or legacy inline `initData`.
    pub fn init_data(&self, track: &Track) -> Result<Option<Vec<u8>>, CatalogError> {
        let b64 = match (&track.init_ref, &track.init_data) {
            (Some(r), _) => self.init_data_list.iter().find(|d| &d.id == r && d.kind == "inline").map(|d| &d.data),
            (None, Some(d)) => Some(d),
            (None, None) => None,
        };
        b64.map(|d| base64::engine::general_purpose::STANDARD.decode(d))
            .transpose()
            .map_err(|_| CatalogError::InitData(track.name.clone()))
    }

    /// Adds inline init data for `track` (sets its `initRef`).
    pub fn set_init_data(&mut self, track: usize, bytes: &[u8]) {
        let id = format!("init-{}", self.tracks[track].name);
        self.init_data_list.retain(|d| d.id != id);
        self.init_data_list.push(InitData {
            id: id.clone(),
            kind: "inline".into(),
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
        });
        self.tracks[track].init_ref = Some(id);
    }
}

impl Track {
    /// A catalog entry for a media track.
    pub fn media(name: &str, packaging: &str, config: &TrackConfig) -> Track {
        let mut t = Track {
            name: name.into(),
            packaging: packaging.into(),
            is_live: true,
            codec: Some(config.codec.clone()),
            // LOC timestamps are microseconds whatever the source's timescale; CMAF keeps the source's.
            timescale: (packaging == "cmaf").then_some(config.timescale.into()),
            bitrate: config.bitrate,
            render_group: Some(1),
            ..Default::default()
        };
        match config.kind {
            Kind::Video => {
                t.role = Some("video".into());
                t.width = Some(config.width.into());
                t.height = Some(config.height.into());
            }
            Kind::Audio => {
                t.role = Some("audio".into());
                t.samplerate = Some(config.sample_rate);
                t.channel_config = Some(config.channels.to_string());
            }
        }
        t
    }

    /// Video, audio, or neither (by `role`, else by codec).
    pub fn kind(&self) -> Option<Kind> {
        match self.role.as_deref() {
            Some("video") => return Some(Kind::Video),
            Some("audio") => return Some(Kind::Audio),
            Some(_) => return None,
            None => {}
        }
        let codec = self.codec.as_deref()?;
        let video = ["avc1", "avc3", "vp8", "vp09", "av01", "hev1", "hvc1"];
        if video.iter().any(|p| codec.starts_with(p)) {
            Some(Kind::Video)
        } else if ["opus", "mp4a", "flac"].iter().any(|p| codec.starts_with(p)) {
            Some(Kind::Audio)
        } else {
            None
        }
    }

    /// The decoder configuration this entry describes, with `description` as its WebCodecs description.
    pub fn config(&self, description: Option<Vec<u8>>) -> Option<TrackConfig> {
        let kind = self.kind()?;
        Some(TrackConfig {
            kind,
            codec: self.codec.clone()?,
            description: description.map(Into::into),
            timescale: self.timescale.and_then(|t| u32::try_from(t).ok()).filter(|t| *t > 0).unwrap_or(match kind {
                Kind::Video => 90_000,
                Kind::Audio => self.samplerate.unwrap_or(48_000),
            }),
            width: self.width.and_then(|w| u16::try_from(w).ok()).unwrap_or(0),
            height: self.height.and_then(|h| u16::try_from(h).ok()).unwrap_or(0),
            sample_rate: self.samplerate.unwrap_or(0),
            channels: self.channel_config.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0),
            bitrate: self.bitrate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The draft's video + audio example (captions and SCTE-35 removed), with a field we do not know.
    const DRAFT_EXAMPLE: &str = r#"{
      "version": "draft-01",
      "generatedAt": 1746104606044,
      "tracks": [
        { "name": "video", "packaging": "loc", "isLive": true, "targetLatency": 4000,
          "role": "video", "renderGroup": 1, "codec": "avc1.4d401f",
          "width": 1920, "height": 1080, "framerate": 30, "bitrate": 5000000, "com.example-tier": 3 },
        { "name": "audio", "packaging": "loc", "isLive": true, "targetLatency": 4000,
          "role": "audio", "renderGroup": 1, "codec": "opus",
          "samplerate": 48000, "channelConfig": "2", "bitrate": 128000 }
      ]
    }"#;

    #[test]
    fn reads_the_draft_example() {
        let c = Catalog::from_json(DRAFT_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(c.version, "draft-01");
        assert_eq!(c.tracks.len(), 2);
        let v = c.track("video").unwrap();
        assert_eq!((v.width, v.height, v.framerate, v.bitrate), (Some(1920), Some(1080), Some(30.0), Some(5_000_000)));
        assert_eq!(v.kind(), Some(Kind::Video));
        let a = c.track("audio").unwrap().config(None).unwrap();
        assert_eq!((a.sample_rate, a.channels, a.codec.as_str()), (48_000, 2, "opus"));
        // Round trip, unknown fields included.
        let again = Catalog::from_json(c.to_json().as_bytes()).unwrap();
        assert_eq!(again, c);
        assert!(c.to_json().contains("com.example-tier"));
    }

    #[test]
    fn accepts_numeric_version_and_legacy_init_data() {
        let json =
            r#"{"version":1,"tracks":[{"name":"v","packaging":"cmaf","initData":"AAEC","codec":"avc1.64001f"}]}"#;
        let c = Catalog::from_json(json.as_bytes()).unwrap();
        assert_eq!(c.version, "1");
        assert!(c.tracks[0].is_live, "isLive defaults to true when omitted");
        assert_eq!(c.init_data(&c.tracks[0]).unwrap(), Some(vec![0, 1, 2]));
        assert!(Catalog::from_json(b"{\"version\":[1],\"tracks\":[]}").is_err());
        assert!(Catalog::from_json(b"not json").is_err());
    }

    #[test]
    fn init_data_round_trips_through_init_data_list() {
        let mut c = Catalog::new();
        c.tracks.push(Track { name: "video0".into(), packaging: "loc".into(), ..Default::default() });
        c.set_init_data(0, &[1, 2, 3, 250]);
        let json = c.to_json();
        assert!(json.contains("\"initRef\":\"init-video0\""), "{json}");
        assert!(json.find("\"tracks\"") < json.find("\"initDataList\""), "initDataList comes after tracks");
        let back = Catalog::from_json(json.as_bytes()).unwrap();
        assert_eq!(back.init_data(&back.tracks[0]).unwrap(), Some(vec![1, 2, 3, 250]));
    }

    #[test]
    fn applies_the_draft_delta_ops() {
        let base = Catalog::from_json(DRAFT_EXAMPLE.as_bytes()).unwrap();
        let delta = r#"{ "generatedAt": 1746104607000, "deltaUpdate": [
            {"op":"update","tracks":[{"name":"video","bitrate":4000000}]},
            {"op":"clone","tracks":[{"parentName":"video","name":"video-720","width":1280,"height":720}]},
            {"op":"add","tracks":[{"name":"slides","packaging":"loc","isLive":true}]},
            {"op":"remove","tracks":[{"name":"audio"}]} ] }"#;
        let c = Catalog::apply(Some(&base), delta.as_bytes()).unwrap();
        let names: Vec<_> = c.tracks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["video", "video-720", "slides"]);
        assert_eq!(c.track("video").unwrap().bitrate, Some(4_000_000));
        let v720 = c.track("video-720").unwrap();
        assert_eq!(
            (v720.width, v720.codec.as_deref(), v720.bitrate),
            (Some(1280), Some("avc1.4d401f"), Some(4_000_000))
        );
        assert_eq!(c.generated_at, Some(1_746_104_607_000));
        assert!(matches!(Catalog::apply(None, delta.as_bytes()), Err(CatalogError::NoBase)));
        let bad = r#"{"deltaUpdate":[{"op":"update","tracks":[{"name":"nope"}]}]}"#;
        assert!(matches!(Catalog::apply(Some(&base), bad.as_bytes()), Err(CatalogError::UnknownTrack(_))));
    }
}
