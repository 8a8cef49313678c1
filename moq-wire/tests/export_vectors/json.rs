//! moq-wire values as JSON, in the shape of the TypeScript codec's types (`web/src/wire`).

use moq_wire::control::*;
use moq_wire::data::*;
use moq_wire::kvp::{Properties, Value as KvValue};
use moq_wire::namespace::{FullTrackName, TrackNamespace};
use moq_wire::params::{LocationFilter, Parameters, RangeFilter, RangeFilterKind};
use moq_wire::setup::SetupOptions;
use moq_wire::token::AuthToken;
use moq_wire::*;
use serde_json::{Map, Value, json};

/// Integers above 2^53 - 1 are strings, so JavaScript reads them exactly.
pub fn int(v: u64) -> Value {
    if v < (1 << 53) { v.into() } else { v.to_string().into() }
}

pub fn hexs(b: &[u8]) -> Value {
    b.iter().map(|x| format!("{x:02x}")).collect::<String>().into()
}

/// Builds an object, leaving out absent fields.
pub struct Obj(Map<String, Value>);

impl Obj {
    pub fn new() -> Obj {
        Obj(Map::new())
    }
    pub fn f(mut self, k: &str, v: impl Into<Value>) -> Obj {
        self.0.insert(k.into(), v.into());
        self
    }
    pub fn opt(self, k: &str, v: Option<impl Into<Value>>) -> Obj {
        match v {
            Some(v) => self.f(k, v),
            None => self,
        }
    }
    pub fn done(self) -> Value {
        Value::Object(self.0)
    }
}

/// A list, or nothing when it is empty.
pub fn list(v: Vec<Value>) -> Option<Value> {
    if v.is_empty() { None } else { Some(Value::Array(v)) }
}

// ---- moq-wire values in the TypeScript shape ----

pub fn ns_json(n: &TrackNamespace) -> Value {
    n.fields().iter().map(|f| hexs(f)).collect()
}

pub fn loc(l: &Location) -> Value {
    json!({ "group": int(l.group.0), "object": int(l.object.0) })
}

pub fn props(p: &Properties) -> Value {
    p.iter()
        .map(|kv| match &kv.value {
            KvValue::Int(v) => json!({ "key": int(kv.key), "int": int(*v) }),
            KvValue::Bytes(b) => json!({ "key": int(kv.key), "bytes": hexs(b) }),
        })
        .collect()
}

pub fn token(t: &AuthToken) -> Value {
    match t {
        AuthToken::Delete { alias } => json!({ "aliasType": 0, "alias": int(*alias) }),
        AuthToken::Register { alias, token_type, value } => json!({
            "aliasType": 1,
            "alias": int(*alias),
            "tokenType": int(*token_type),
            "value": hexs(value),
        }),
        AuthToken::UseAlias { alias } => json!({ "aliasType": 2, "alias": int(*alias) }),
        AuthToken::UseValue { token_type, value } => {
            json!({ "aliasType": 3, "tokenType": int(*token_type), "value": hexs(value) })
        }
    }
}

pub fn location_filter(f: &LocationFilter) -> Value {
    let o = Obj::new().f("type", f.filter_type());
    match f {
        LocationFilter::NextGroupStart | LocationFilter::LargestObject => o,
        LocationFilter::AbsoluteStart { start } => o.f("start", loc(start)),
        LocationFilter::AbsoluteRange { start, end_group_delta } => {
            o.f("start", loc(start)).f("endGroupDelta", int(*end_group_delta))
        }
    }
    .done()
}

pub fn range_filter(f: &RangeFilter) -> Value {
    let property = match f.kind {
        RangeFilterKind::ObjectProperty(t) | RangeFilterKind::TrackProperty(t) if f.set_id.is_some() => Some(t),
        _ => None,
    };
    let ranges: Vec<Value> =
        f.ranges.iter().map(|r| Obj::new().f("start", int(r.start)).opt("end", r.end.map(int)).done()).collect();
    Obj::new()
        .f("param", f.kind.param_type())
        .opt("setId", f.set_id)
        .opt("propertyType", property.map(int))
        .f("ranges", ranges)
        .done()
}

pub fn params(p: &Parameters) -> Value {
    Obj::new()
        .opt("objectDeliveryTimeout", p.object_delivery_timeout.map(int))
        .opt("authTokens", list(p.auth_tokens.iter().map(token).collect()))
        .opt("rendezvousTimeout", p.rendezvous_timeout.map(int))
        .opt("subgroupDeliveryTimeout", p.subgroup_delivery_timeout.map(int))
        .opt("expires", p.expires.map(int))
        .opt("largestObject", p.largest_object.as_ref().map(loc))
        .opt("fillTimeout", p.fill_timeout.map(int))
        .opt("forward", p.forward)
        .opt("subscriberPriority", p.subscriber_priority)
        .opt("locationFilter", p.location_filter.as_ref().map(location_filter))
        .opt("groupOrder", p.group_order.map(|g| g.to_u8()))
        .opt("rangeFilters", list(p.range_filters.iter().map(range_filter).collect()))
        .opt("newGroupRequest", p.new_group_request.map(int))
        .opt("trackNamespacePrefix", p.track_namespace_prefix.as_ref().map(ns_json))
        .done()
}

pub fn track(o: Obj, t: &FullTrackName) -> Obj {
    o.f("namespace", ns_json(&t.namespace)).f("name", hexs(t.name.as_bytes()))
}

pub fn setup_options(s: &SetupOptions) -> Value {
    Obj::new()
        .opt("path", s.path.as_ref().map(|b| hexs(b)))
        .opt("authTokens", list(s.auth_tokens.iter().map(token).collect()))
        .opt("maxAuthTokenCacheSize", s.max_auth_token_cache_size.map(int))
        .opt("authority", s.authority.as_ref().map(|b| hexs(b)))
        .opt("maxFilterRanges", s.max_filter_ranges.map(int))
        .opt("implementation", s.implementation.clone())
        .opt("maxRequestUpdates", s.max_request_updates.map(int))
        .opt("unknown", if s.unknown.is_empty() { None } else { Some(props(&s.unknown)) })
        .done()
}

pub fn control(m: &ControlMessage) -> Value {
    let o = Obj::new().f("type", m.name());
    match m {
        ControlMessage::Setup(x) => o.f("options", setup_options(&x.options)),
        ControlMessage::GoAway(x) => o
            .f("newSessionUri", hexs(&x.new_session_uri))
            .f("timeout", int(x.timeout_ms))
            .opt("requestId", x.request_id.map(|r| int(r.0))),
        ControlMessage::Subscribe(x) => {
            track(o.f("requestId", int(x.request_id.0)), &x.track).f("params", params(&x.params))
        }
        ControlMessage::SubscribeOk(x) => o
            .f("trackAlias", int(x.track_alias.0))
            .f("params", params(&x.params))
            .f("trackProperties", props(&x.track_properties)),
        ControlMessage::RequestUpdate(x) => o.f("requestId", int(x.request_id.0)).f("params", params(&x.params)),
        ControlMessage::Publish(x) => track(o.f("requestId", int(x.request_id.0)), &x.track)
            .f("trackAlias", int(x.track_alias.0))
            .f("params", params(&x.params))
            .f("trackProperties", props(&x.track_properties)),
        ControlMessage::PublishDone(x) => {
            o.f("status", int(x.status.to_u64())).f("streamCount", int(x.stream_count)).f("reason", x.reason.as_str())
        }
        ControlMessage::Fetch(x) => {
            let o = o.f("requestId", int(x.request_id.0)).f("fetchType", x.fetch_type.code());
            let o = match &x.fetch_type {
                FetchType::Standalone { track: t, start, end } => track(o, t).f("start", loc(start)).f("end", loc(end)),
                FetchType::RelativeJoining { joining_request_id, joining_start }
                | FetchType::AbsoluteJoining { joining_request_id, joining_start } => {
                    o.f("joiningRequestId", int(joining_request_id.0)).f("joiningStart", int(*joining_start))
                }
            };
            o.f("params", params(&x.params))
        }
        ControlMessage::FetchOk(x) => o
            .f("endOfTrack", x.end_of_track)
            .f("endLocation", loc(&x.end_location))
            .f("params", params(&x.params))
            .f("trackProperties", props(&x.track_properties)),
        ControlMessage::TrackStatus(x) => {
            track(o.f("requestId", int(x.request_id.0)), &x.track).f("params", params(&x.params))
        }
        ControlMessage::PublishNamespace(x) => {
            o.f("requestId", int(x.request_id.0)).f("namespace", ns_json(&x.namespace)).f("params", params(&x.params))
        }
        ControlMessage::SubscribeNamespace(x) => {
            o.f("requestId", int(x.request_id.0)).f("prefix", ns_json(&x.prefix)).f("params", params(&x.params))
        }
        ControlMessage::SubscribeTracks(x) => {
            o.f("requestId", int(x.request_id.0)).f("prefix", ns_json(&x.prefix)).f("params", params(&x.params))
        }
        ControlMessage::Namespace(x) => o.f("suffix", ns_json(&x.suffix)),
        ControlMessage::NamespaceDone(x) => o.f("suffix", ns_json(&x.suffix)),
        ControlMessage::PublishSkipped(x) => o.f("suffix", ns_json(&x.suffix)).f("name", hexs(x.name.as_bytes())),
        ControlMessage::RequestOk(x) => {
            o.f("params", params(&x.params)).f("trackProperties", props(&x.track_properties))
        }
        ControlMessage::RequestError(x) => o
            .f("code", int(x.code.to_u64()))
            .f("retryInterval", int(x.retry_interval))
            .f("reason", x.reason.as_str())
            .opt(
                "redirect",
                x.redirect.as_ref().map(|r| {
                    json!({
                        "connectUri": hexs(&r.connect_uri),
                        "namespace": ns_json(&r.namespace),
                        "name": hexs(r.name.as_bytes()),
                    })
                }),
            ),
    }
    .done()
}

pub fn subgroup_header(h: &SubgroupHeader) -> Value {
    let (mode, id) = match h.subgroup {
        SubgroupIdMode::Zero => (0, None),
        SubgroupIdMode::FirstObjectId => (1, None),
        SubgroupIdMode::Explicit(id) => (2, Some(int(id.0))),
    };
    Obj::new()
        .f("trackAlias", int(h.track_alias.0))
        .f("groupId", int(h.group_id.0))
        .f("subgroupMode", mode)
        .opt("subgroupId", id)
        .opt("publisherPriority", h.publisher_priority)
        .f("hasProperties", h.has_properties)
        .f("endOfGroup", h.end_of_group)
        .f("firstObject", h.first_object)
        .done()
}

pub fn datagram(d: &ObjectDatagram) -> Value {
    let o = Obj::new()
        .f("trackAlias", int(d.track_alias.0))
        .f("groupId", int(d.group_id.0))
        .f("objectId", int(d.object_id.0))
        .opt("publisherPriority", d.publisher_priority)
        .f("properties", props(&d.properties))
        .f("endOfGroup", d.end_of_group);
    match &d.content {
        DatagramContent::Payload(p) => o.f("payload", hexs(p)),
        DatagramContent::Status(s) => o.f("status", s.to_u64()),
    }
    .done()
}
