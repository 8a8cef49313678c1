//! Optional per-session event logs in the MoQT qlog schema (draft-pardue-moq-qlog-moq-events-07, which follows
//! draft-ietf-moq-transport-19): one JSON-SEQ file per session (`application/qlog+json-seq`: each record is
//! 0x1E, a JSON text, a newline), written when [`SessionConfig::qlog_dir`](crate::SessionConfig::qlog_dir) is
//! set. Events: `moqt:control_message_created` / `_parsed` (control and request streams),
//! `moqt:stream_type_set`, `moqt:subgroup_header_created` / `_parsed`, `moqt:fetch_header_created` / `_parsed`
//! and `moqt:object_datagram_created` / `_parsed`. Per-object events on streams are not written (they would
//! dominate the file). `stream_id` is a number this session gives each stream in the order it meets them, not
//! the QUIC stream id (the transport interface does not expose it).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use moq_wire::control::ControlMessage;
use moq_wire::data::{ObjectDatagram, SubgroupHeader, SubgroupIdMode};
use moq_wire::namespace::{FullTrackName, TrackNamespace};
use serde_json::{Value, json};

/// The event schema this log follows (drafts of it carry their version).
const EVENT_SCHEMA: &str = "urn:ietf:params:qlog:events:moqt-07";

/// Names each session's file uniquely within one process.
static NEXT_FILE: AtomicU64 = AtomicU64::new(0);

/// One session's qlog file.
pub(crate) struct Qlog {
    start: Instant,
    out: Mutex<std::io::BufWriter<std::fs::File>>,
    next_stream: AtomicU64,
}

/// A stream as the log names it.
#[derive(Clone)]
pub(crate) struct StreamLog {
    pub(crate) log: Arc<Qlog>,
    pub(crate) id: u64,
}

impl Qlog {
    /// Creates `<dir>/moqt-<unix ms>-<pid>-<n>-<vantage>.sqlog` with its header; `vantage` is "client" or
    /// "server".
    pub(crate) fn create(dir: &Path, vantage: &str) -> std::io::Result<Arc<Qlog>> {
        std::fs::create_dir_all(dir)?;
        let epoch_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let n = NEXT_FILE.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("moqt-{epoch_ms}-{}-{n}-{vantage}.sqlog", std::process::id()));
        let file = std::fs::File::create(&path)?;
        let qlog =
            Qlog { start: Instant::now(), out: Mutex::new(std::io::BufWriter::new(file)), next_stream: 0.into() };
        let header = json!({
            "file_schema": "urn:ietf:params:qlog:file:sequential",
            "serialization_format": "application/qlog+json-seq",
            "title": "moq-transport session",
            "trace": {
                "common_fields": {
                    "time_format": "relative_to_epoch",
                    "reference_time": { "clock_type": "system", "epoch": epoch_ms as u64 },
                },
                "vantage_point": { "type": vantage },
                "event_schemas": [EVENT_SCHEMA],
            },
        });
        qlog.write(&header);
        tracing::debug!(path = %path.display(), "qlog");
        Ok(Arc::new(qlog))
    }

    /// A name for a stream met for the first time.
    pub(crate) fn stream(self: &Arc<Self>) -> StreamLog {
        StreamLog { log: self.clone(), id: self.next_stream.fetch_add(1, Ordering::Relaxed) }
    }

    /// Writes one event, `time` in ms since the session began.
    pub(crate) fn event(&self, name: &str, data: Value) {
        let time = self.start.elapsed().as_secs_f64() * 1e3;
        self.write(&json!({ "time": time, "name": name, "data": data }));
    }

    fn write(&self, record: &Value) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A log that cannot be written is not worth failing a session for.
        let _ = out.write_all(b"\x1e").and_then(|_| serde_json::to_writer(&mut *out, record).map_err(Into::into));
        let _ = out.write_all(b"\n").and_then(|_| out.flush());
    }
}

impl StreamLog {
    /// `moqt:stream_type_set`.
    pub(crate) fn stream_type(&self, local: bool, stream_type: &str) {
        let owner = if local { "local" } else { "remote" };
        self.log
            .event("moqt:stream_type_set", json!({ "owner": owner, "stream_id": self.id, "stream_type": stream_type }));
    }

    /// `moqt:control_message_created` (`created`) or `_parsed`.
    pub(crate) fn control(&self, created: bool, msg: &ControlMessage, length: usize) {
        let name = if created { "moqt:control_message_created" } else { "moqt:control_message_parsed" };
        self.log.event(name, json!({ "stream_id": self.id, "length": length, "message": message(msg) }));
    }

    /// `moqt:subgroup_header_created` or `_parsed`.
    pub(crate) fn subgroup_header(&self, created: bool, h: &SubgroupHeader) {
        let name = if created { "moqt:subgroup_header_created" } else { "moqt:subgroup_header_parsed" };
        let (mode, subgroup_id) = match h.subgroup {
            SubgroupIdMode::Zero => (0, None),
            SubgroupIdMode::FirstObjectId => (1, None),
            SubgroupIdMode::Explicit(id) => (2, Some(id.0)),
        };
        let mut data = json!({
            "stream_id": self.id,
            "track_alias": h.track_alias.0,
            "group_id": h.group_id.0,
            "subgroup_id_mode": mode,
            "contains_end_of_group": h.end_of_group,
            "properties_present": h.has_properties,
        });
        if let Some(id) = subgroup_id {
            data["subgroup_id"] = id.into();
        }
        if let Some(p) = h.publisher_priority {
            data["publisher_priority"] = p.into();
        }
        self.log.event(name, data);
    }

    /// `moqt:fetch_header_created` or `_parsed`.
    pub(crate) fn fetch_header(&self, created: bool, request_id: u64) {
        let name = if created { "moqt:fetch_header_created" } else { "moqt:fetch_header_parsed" };
        self.log.event(name, json!({ "stream_id": self.id, "request_id": request_id }));
    }
}

impl Qlog {
    /// `moqt:object_datagram_created` or `_parsed`.
    pub(crate) fn datagram(&self, created: bool, d: &ObjectDatagram, payload_len: usize) {
        let name = if created { "moqt:object_datagram_created" } else { "moqt:object_datagram_parsed" };
        let mut data = json!({
            "track_alias": d.track_alias.0,
            "group_id": d.group_id.0,
            "object_id": d.object_id.0,
            "end_of_group": d.end_of_group,
            "object_payload_length": payload_len,
        });
        if let Some(p) = d.publisher_priority {
            data["publisher_priority"] = p.into();
        }
        self.event(name, data);
    }
}

/// A control message as the schema writes it: its type (the draft's name in snake case) and the fields that
/// identify it (request id, track or namespace).
fn message(msg: &ControlMessage) -> Value {
    let ty = match msg {
        ControlMessage::PublishSkipped(_) => "publish_blocked".to_string(),
        m => m.name().to_ascii_lowercase(),
    };
    let mut out = json!({ "type": ty });
    let (request_id, track, namespace) = match msg {
        ControlMessage::Subscribe(m) => (Some(m.request_id.0), Some(&m.track), None),
        ControlMessage::Publish(m) => (Some(m.request_id.0), Some(&m.track), None),
        ControlMessage::TrackStatus(m) => (Some(m.request_id.0), Some(&m.track), None),
        ControlMessage::Fetch(m) => (Some(m.request_id.0), None, None),
        ControlMessage::PublishNamespace(m) => (Some(m.request_id.0), None, Some(&m.namespace)),
        ControlMessage::SubscribeNamespace(m) => (Some(m.request_id.0), None, Some(&m.prefix)),
        ControlMessage::SubscribeTracks(m) => (Some(m.request_id.0), None, Some(&m.prefix)),
        ControlMessage::RequestUpdate(m) => (Some(m.request_id.0), None, None),
        _ => (None, None, None),
    };
    if let Some(id) = request_id {
        out["request_id"] = id.into();
    }
    if let Some(FullTrackName { namespace, name }) = track {
        out["track_namespace"] = fields(namespace);
        out["track_name"] = text(&name.0);
    }
    if let Some(ns) = namespace {
        out["track_namespace"] = fields(ns);
    }
    out
}

fn fields(ns: &TrackNamespace) -> Value {
    Value::Array(ns.fields().iter().map(|f| text(f)).collect())
}

/// `{value}` for UTF-8 text, `{value_bytes}` (hex) otherwise.
fn text(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => json!({ "value": s }),
        Err(_) => json!({ "value_bytes": crate::tls::hex(bytes) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_is_json_seq_with_a_header_and_events() {
        let dir = std::env::temp_dir().join(format!("moq-qlog-unit-{}", std::process::id()));
        let log = Qlog::create(&dir, "client").unwrap();
        let stream = log.stream();
        stream.stream_type(true, "control");
        let name = FullTrackName::new(TrackNamespace::from_path("live/a").unwrap(), "video");
        let sub = moq_wire::control::Subscribe {
            request_id: moq_wire::RequestId(2),
            track: name,
            params: Default::default(),
        };
        stream.control(true, &sub.into(), 20);
        drop(stream);
        drop(log);
        let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        let text = std::fs::read_to_string(&file).unwrap();
        let records: Vec<Value> =
            text.split('\x1e').filter(|r| !r.is_empty()).map(|r| serde_json::from_str(r).unwrap()).collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0]["trace"]["event_schemas"][0], EVENT_SCHEMA);
        assert_eq!(records[1]["name"], "moqt:stream_type_set");
        assert_eq!(records[2]["data"]["message"]["type"], "subscribe");
        assert_eq!(records[2]["data"]["message"]["track_namespace"][1]["value"], "a");
        assert_eq!(records[2]["data"]["message"]["track_name"]["value"], "video");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
