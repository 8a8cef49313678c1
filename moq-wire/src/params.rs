//! Message Parameters (draft-18/19 §9.2): typed, strictly validated.
//!
//! The block is `Number of Parameters (vi64)` followed by parameters whose types are delta-encoded in ascending
//! order. Every parameter must be understood (unknown ⇒ `PROTOCOL_VIOLATION`), may only appear in the messages
//! its definition lists, and may repeat only where the draft allows it (AUTHORIZATION_TOKEN, range filters).

use bytes::{Buf, BufMut};

use crate::coding::{Decode, Encode, decode_bounded, encode_len_prefixed, get_len, get_u8, get_vi, put_vi};
use crate::ids::{GroupId, Location};
use crate::namespace::TrackNamespace;
use crate::token::AuthToken;
use crate::{DecodeError, EncodeError, GroupOrder, Version};

/// Parameter type code points.
pub mod param_type {
    /// OBJECT_DELIVERY_TIMEOUT: varint, ms.
    pub const OBJECT_DELIVERY_TIMEOUT: u64 = 0x02;
    /// AUTHORIZATION_TOKEN: length-prefixed Token; may repeat.
    pub const AUTHORIZATION_TOKEN: u64 = 0x03;
    /// RENDEZVOUS_TIMEOUT: varint, ms.
    pub const RENDEZVOUS_TIMEOUT: u64 = 0x04;
    /// SUBGROUP_DELIVERY_TIMEOUT: varint, ms.
    pub const SUBGROUP_DELIVERY_TIMEOUT: u64 = 0x06;
    /// EXPIRES: varint, ms.
    pub const EXPIRES: u64 = 0x08;
    /// LARGEST_OBJECT: Location.
    pub const LARGEST_OBJECT: u64 = 0x09;
    /// FILL_TIMEOUT: varint, ms.
    pub const FILL_TIMEOUT: u64 = 0x0A;
    /// FORWARD: uint8, 0 or 1.
    pub const FORWARD: u64 = 0x10;
    /// SUBSCRIBER_PRIORITY: uint8.
    pub const SUBSCRIBER_PRIORITY: u64 = 0x20;
    /// LOCATION_FILTER (SUBSCRIPTION_FILTER in -18): length-prefixed Location Filter.
    pub const LOCATION_FILTER: u64 = 0x21;
    /// GROUP_ORDER: uint8, 1 or 2.
    pub const GROUP_ORDER: u64 = 0x22;
    /// SUBGROUP_FILTER (-19): range filter.
    pub const SUBGROUP_FILTER: u64 = 0x25;
    /// OBJECTID_FILTER (-19): range filter.
    pub const OBJECTID_FILTER: u64 = 0x26;
    /// PRIORITY_FILTER (-19): range filter.
    pub const PRIORITY_FILTER: u64 = 0x27;
    /// OBJECT_PROPERTY_FILTER (-19): range filter with a property type.
    pub const OBJECT_PROPERTY_FILTER: u64 = 0x28;
    /// TRACK_PROPERTY_FILTER (-19): range filter with a property type.
    pub const TRACK_PROPERTY_FILTER: u64 = 0x29;
    /// NEW_GROUP_REQUEST: varint.
    pub const NEW_GROUP_REQUEST: u64 = 0x32;
    /// TRACK_NAMESPACE_PREFIX: Track Namespace.
    pub const TRACK_NAMESPACE_PREFIX: u64 = 0x34;
}

use param_type as pt;

/// The message a parameter block belongs to; it decides which parameters are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamContext {
    /// SUBSCRIBE.
    Subscribe,
    /// SUBSCRIBE_OK.
    SubscribeOk,
    /// REQUEST_UPDATE (for any kind of request: the stream decides, so the union is accepted here).
    RequestUpdate,
    /// PUBLISH.
    Publish,
    /// REQUEST_OK (PUBLISH_OK, REQUEST_UPDATE_OK, TRACK_STATUS_OK and the namespace OKs).
    RequestOk,
    /// FETCH.
    Fetch,
    /// FETCH_OK.
    FetchOk,
    /// TRACK_STATUS.
    TrackStatus,
    /// PUBLISH_NAMESPACE.
    PublishNamespace,
    /// SUBSCRIBE_NAMESPACE.
    SubscribeNamespace,
    /// SUBSCRIBE_TRACKS.
    SubscribeTracks,
}

impl ParamContext {
    /// The message name, for errors.
    pub const fn name(self) -> &'static str {
        match self {
            ParamContext::Subscribe => "SUBSCRIBE",
            ParamContext::SubscribeOk => "SUBSCRIBE_OK",
            ParamContext::RequestUpdate => "REQUEST_UPDATE",
            ParamContext::Publish => "PUBLISH",
            ParamContext::RequestOk => "REQUEST_OK",
            ParamContext::Fetch => "FETCH",
            ParamContext::FetchOk => "FETCH_OK",
            ParamContext::TrackStatus => "TRACK_STATUS",
            ParamContext::PublishNamespace => "PUBLISH_NAMESPACE",
            ParamContext::SubscribeNamespace => "SUBSCRIBE_NAMESPACE",
            ParamContext::SubscribeTracks => "SUBSCRIBE_TRACKS",
        }
    }
}

/// Whether parameter `param` is defined in version `v`.
pub fn is_known(param: u64, v: Version) -> bool {
    match param {
        pt::OBJECT_DELIVERY_TIMEOUT
        | pt::AUTHORIZATION_TOKEN
        | pt::RENDEZVOUS_TIMEOUT
        | pt::SUBGROUP_DELIVERY_TIMEOUT
        | pt::EXPIRES
        | pt::LARGEST_OBJECT
        | pt::FILL_TIMEOUT
        | pt::FORWARD
        | pt::SUBSCRIBER_PRIORITY
        | pt::LOCATION_FILTER
        | pt::GROUP_ORDER
        | pt::NEW_GROUP_REQUEST
        | pt::TRACK_NAMESPACE_PREFIX => true,
        pt::SUBGROUP_FILTER..=pt::TRACK_PROPERTY_FILTER => v >= Version::Draft19,
        _ => false,
    }
}

/// Whether the draft allows parameter `param` in a message of kind `ctx`.
///
/// Taken from the "MAY appear in" sentence of each parameter's definition in the draft. REQUEST_OK and
/// REQUEST_UPDATE stand for several logical messages, so they accept the union; the session layer, which
/// knows what the stream is for, applies the finer rule.
pub fn is_allowed(param: u64, ctx: ParamContext, v: Version) -> bool {
    use ParamContext as C;
    let d19 = v >= Version::Draft19;
    let object_range_filter = matches!(param, pt::SUBGROUP_FILTER..=pt::OBJECT_PROPERTY_FILTER);
    match ctx {
        C::Subscribe => {
            matches!(
                param,
                pt::OBJECT_DELIVERY_TIMEOUT
                    | pt::AUTHORIZATION_TOKEN
                    | pt::RENDEZVOUS_TIMEOUT
                    | pt::SUBGROUP_DELIVERY_TIMEOUT
                    | pt::FORWARD
                    | pt::SUBSCRIBER_PRIORITY
                    | pt::LOCATION_FILTER
                    | pt::GROUP_ORDER
                    | pt::NEW_GROUP_REQUEST
            ) || (d19 && object_range_filter)
        }
        C::SubscribeOk => matches!(param, pt::EXPIRES | pt::LARGEST_OBJECT),
        C::RequestUpdate => {
            matches!(
                param,
                pt::OBJECT_DELIVERY_TIMEOUT
                    | pt::AUTHORIZATION_TOKEN
                    | pt::SUBGROUP_DELIVERY_TIMEOUT
                    | pt::FORWARD
                    | pt::SUBSCRIBER_PRIORITY
                    | pt::LOCATION_FILTER
                    | pt::NEW_GROUP_REQUEST
                    | pt::TRACK_NAMESPACE_PREFIX
            ) || (d19 && (object_range_filter || param == pt::TRACK_PROPERTY_FILTER))
        }
        C::Publish => {
            matches!(param, pt::AUTHORIZATION_TOKEN | pt::EXPIRES | pt::LARGEST_OBJECT | pt::FORWARD)
                // -19 §9.19.1: a PUBLISH caused by SUBSCRIBE_TRACKS carries its GROUP_ORDER.
                || (d19 && param == pt::GROUP_ORDER)
        }
        C::RequestOk => {
            matches!(
                param,
                // PUBLISH_OK
                pt::OBJECT_DELIVERY_TIMEOUT
                    | pt::SUBGROUP_DELIVERY_TIMEOUT
                    | pt::FORWARD
                    | pt::SUBSCRIBER_PRIORITY
                    | pt::LOCATION_FILTER
                    | pt::NEW_GROUP_REQUEST
                    // PUBLISH_OK, REQUEST_UPDATE_OK and the namespace OKs
                    | pt::EXPIRES
                    // REQUEST_UPDATE_OK, TRACK_STATUS_OK
                    | pt::LARGEST_OBJECT
            ) || (!d19 && param == pt::GROUP_ORDER)
                || (d19 && object_range_filter)
        }
        C::Fetch => {
            matches!(param, pt::AUTHORIZATION_TOKEN | pt::FILL_TIMEOUT | pt::SUBSCRIBER_PRIORITY | pt::GROUP_ORDER)
                || (d19 && object_range_filter)
        }
        C::FetchOk => false,
        C::TrackStatus | C::PublishNamespace | C::SubscribeNamespace => param == pt::AUTHORIZATION_TOKEN,
        C::SubscribeTracks => {
            if d19 {
                // "Any Parameter that can be specified on a Subscription (ie: in SUBSCRIBE) is valid in
                // SUBSCRIBE_TRACKS", plus the track property filter.
                is_allowed(param, C::Subscribe, v) || param == pt::TRACK_PROPERTY_FILTER
            } else {
                matches!(param, pt::AUTHORIZATION_TOKEN | pt::FORWARD)
            }
        }
    }
}

/// A Location Filter (draft-19 §5.1.2; SUBSCRIPTION_FILTER in -18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocationFilter {
    /// Next Group Start (0x1): from the group after the largest object.
    NextGroupStart,
    /// Largest Object (0x2): from the object after the largest object.
    LargestObject,
    /// AbsoluteStart (0x3): from `start`, open ended.
    AbsoluteStart {
        /// The first location.
        start: Location,
    },
    /// AbsoluteRange (0x4): from `start` to the end of group `start.group + end_group_delta`.
    AbsoluteRange {
        /// The first location.
        start: Location,
        /// The last group, as a delta from `start.group`.
        end_group_delta: u64,
    },
}

impl LocationFilter {
    /// The Filter Type code point.
    pub const fn filter_type(&self) -> u64 {
        match self {
            LocationFilter::NextGroupStart => 0x1,
            LocationFilter::LargestObject => 0x2,
            LocationFilter::AbsoluteStart { .. } => 0x3,
            LocationFilter::AbsoluteRange { .. } => 0x4,
        }
    }

    /// The last group of an AbsoluteRange.
    pub fn end_group(&self) -> Option<GroupId> {
        match self {
            LocationFilter::AbsoluteRange { start, end_group_delta } => {
                start.group.0.checked_add(*end_group_delta).map(GroupId)
            }
            _ => None,
        }
    }
}

impl Decode for LocationFilter {
    fn decode<B: Buf>(buf: &mut B, v: Version) -> Result<Self, DecodeError> {
        let filter_type = get_vi(buf, v)?;
        Ok(match filter_type {
            0x1 => LocationFilter::NextGroupStart,
            0x2 => LocationFilter::LargestObject,
            0x3 => LocationFilter::AbsoluteStart { start: Location::decode(buf, v)? },
            0x4 => {
                let start = Location::decode(buf, v)?;
                let end_group_delta = get_vi(buf, v)?;
                //= draft-ietf-moq-transport-19#location-filters
                //# If the resulting Group ID would be greater than 2^64 - 1, the endpoint MUST close the session with a
                //# `PROTOCOL_VIOLATION`.
                if start.group.0.checked_add(end_group_delta).is_none() {
                    return Err(DecodeError::Overflow("end group"));
                }
                LocationFilter::AbsoluteRange { start, end_group_delta }
            }
            //# An endpoint that receives a filter type other than the above MUST close the session with
            //# `PROTOCOL_VIOLATION`.
            other => {
                return Err(DecodeError::InvalidValue { field: "filter type", value: other });
            }
        })
    }
}

impl Encode for LocationFilter {
    fn encode<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        put_vi(buf, v, self.filter_type())?;
        match self {
            LocationFilter::NextGroupStart | LocationFilter::LargestObject => Ok(()),
            LocationFilter::AbsoluteStart { start } => start.encode(buf, v),
            LocationFilter::AbsoluteRange { start, end_group_delta } => {
                start.encode(buf, v)?;
                put_vi(buf, v, *end_group_delta)
            }
        }
    }
}

/// Which field a range filter tests (draft-19 §5.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RangeFilterKind {
    /// SUBGROUP_FILTER (0x25).
    Subgroup,
    /// OBJECTID_FILTER (0x26).
    ObjectId,
    /// PRIORITY_FILTER (0x27).
    Priority,
    /// OBJECT_PROPERTY_FILTER (0x28) on the given (even) property type.
    ObjectProperty(u64),
    /// TRACK_PROPERTY_FILTER (0x29) on the given (even) property type.
    TrackProperty(u64),
}

impl RangeFilterKind {
    /// The parameter type.
    pub const fn param_type(&self) -> u64 {
        match self {
            RangeFilterKind::Subgroup => pt::SUBGROUP_FILTER,
            RangeFilterKind::ObjectId => pt::OBJECTID_FILTER,
            RangeFilterKind::Priority => pt::PRIORITY_FILTER,
            RangeFilterKind::ObjectProperty(_) => pt::OBJECT_PROPERTY_FILTER,
            RangeFilterKind::TrackProperty(_) => pt::TRACK_PROPERTY_FILTER,
        }
    }
}

/// One range of a range filter, as sent: `start` is a delta from the previous range's end (or from 0) and
/// `end` a delta from this range's start. The last range may have no end (unbounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RangeDelta {
    /// Start, as a delta.
    pub start: u64,
    /// End, as a delta from the start, or `None` for "no end" (last range only).
    pub end: Option<u64>,
}

/// A range filter parameter (draft-19 §5.1.3). An empty `ranges` with `set_id` 0 and no property
/// type is the "Length 0" form that removes the filter in REQUEST_UPDATE.
///
/// Ranges are kept exactly as sent; [`RangeFilter::absolute`] resolves them and reports the errors that the draft
/// answers with REQUEST_ERROR `INVALID_FILTER` rather than a session close.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RangeFilter {
    /// What the filter tests.
    pub kind: RangeFilterKind,
    /// Filters with the same SetID are ANDed; sets are ORed. `None` for the removal form.
    pub set_id: Option<u8>,
    /// The ranges.
    pub ranges: Vec<RangeDelta>,
}

/// Why a range filter cannot be applied (REQUEST_ERROR `INVALID_FILTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeFilterError {
    /// A delta takes a bound past 2^64 - 1.
    #[error("range bound overflows")]
    Overflow,
    /// A priority bound is above 255.
    #[error("priority above 255")]
    Priority,
    /// A property filter names an odd property type.
    #[error("property filter on an odd type")]
    OddPropertyType,
    /// Only the last range may omit its end.
    #[error("open range before the last")]
    OpenRange,
}

impl RangeFilter {
    /// The inclusive ranges in absolute values (`None` end = unbounded).
    pub fn absolute(&self) -> Result<Vec<(u64, Option<u64>)>, RangeFilterError> {
        match self.kind {
            RangeFilterKind::ObjectProperty(t) | RangeFilterKind::TrackProperty(t) if t % 2 == 1 => {
                return Err(RangeFilterError::OddPropertyType);
            }
            _ => {}
        }
        let mut out = Vec::with_capacity(self.ranges.len());
        let mut prev_end = 0u64;
        for (i, r) in self.ranges.iter().enumerate() {
            let start = prev_end.checked_add(r.start).ok_or(RangeFilterError::Overflow)?;
            let end = match r.end {
                Some(d) => Some(start.checked_add(d).ok_or(RangeFilterError::Overflow)?),
                None if i + 1 == self.ranges.len() => None,
                None => return Err(RangeFilterError::OpenRange),
            };
            if self.kind == RangeFilterKind::Priority && end.unwrap_or(start).max(start) > 255 {
                return Err(RangeFilterError::Priority);
            }
            out.push((start, end));
            prev_end = end.unwrap_or(start);
        }
        Ok(out)
    }

    fn decode_value(param: u64, body: &mut &[u8], v: Version) -> Result<RangeFilter, DecodeError> {
        let has_property = matches!(param, pt::OBJECT_PROPERTY_FILTER | pt::TRACK_PROPERTY_FILTER);
        let mk = |t: u64| match param {
            pt::SUBGROUP_FILTER => RangeFilterKind::Subgroup,
            pt::OBJECTID_FILTER => RangeFilterKind::ObjectId,
            pt::PRIORITY_FILTER => RangeFilterKind::Priority,
            pt::OBJECT_PROPERTY_FILTER => RangeFilterKind::ObjectProperty(t),
            _ => RangeFilterKind::TrackProperty(t),
        };
        if body.is_empty() {
            return Ok(RangeFilter { kind: mk(0), set_id: None, ranges: Vec::new() });
        }
        let set_id = get_u8(body)?;
        let property = if has_property { get_vi(body, v)? } else { 0 };
        let mut ranges = Vec::new();
        while !body.is_empty() {
            let start = get_vi(body, v)?;
            let end = if body.is_empty() { None } else { Some(get_vi(body, v)?) };
            ranges.push(RangeDelta { start, end });
        }
        Ok(RangeFilter { kind: mk(property), set_id: Some(set_id), ranges })
    }

    fn encode_value(&self, out: &mut Vec<u8>, v: Version) -> Result<(), EncodeError> {
        let Some(set_id) = self.set_id else {
            return Ok(());
        };
        out.put_u8(set_id);
        if let RangeFilterKind::ObjectProperty(t) | RangeFilterKind::TrackProperty(t) = self.kind {
            put_vi(out, v, t)?;
        }
        for (i, r) in self.ranges.iter().enumerate() {
            put_vi(out, v, r.start)?;
            match r.end {
                Some(e) => put_vi(out, v, e)?,
                None if i + 1 == self.ranges.len() => {}
                None => {
                    return Err(EncodeError::InvalidValue { field: "open range before the last", value: i as u64 });
                }
            }
        }
        Ok(())
    }
}

/// The parameters of one control message. Absent parameters are `None` / empty.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Parameters {
    /// OBJECT_DELIVERY_TIMEOUT (0x02), ms.
    pub object_delivery_timeout: Option<u64>,
    /// AUTHORIZATION_TOKEN (0x03), in order; may repeat.
    pub auth_tokens: Vec<AuthToken>,
    /// RENDEZVOUS_TIMEOUT (0x04), ms.
    pub rendezvous_timeout: Option<u64>,
    /// SUBGROUP_DELIVERY_TIMEOUT (0x06), ms.
    pub subgroup_delivery_timeout: Option<u64>,
    /// EXPIRES (0x08), ms.
    pub expires: Option<u64>,
    /// LARGEST_OBJECT (0x09).
    pub largest_object: Option<Location>,
    /// FILL_TIMEOUT (0x0A), ms.
    pub fill_timeout: Option<u64>,
    /// FORWARD (0x10).
    pub forward: Option<bool>,
    /// SUBSCRIBER_PRIORITY (0x20); lower is more important, 128 when absent.
    pub subscriber_priority: Option<u8>,
    /// LOCATION_FILTER (0x21).
    pub location_filter: Option<LocationFilter>,
    /// GROUP_ORDER (0x22).
    pub group_order: Option<GroupOrder>,
    /// Range filters (0x25..=0x29, draft-19), sorted by parameter type on the wire.
    pub range_filters: Vec<RangeFilter>,
    /// NEW_GROUP_REQUEST (0x32).
    pub new_group_request: Option<u64>,
    /// TRACK_NAMESPACE_PREFIX (0x34).
    pub track_namespace_prefix: Option<TrackNamespace>,
}

impl std::fmt::Debug for Parameters {
    /// Shows only the parameters that are present.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Parameters");
        macro_rules! opt {
            ($($field:ident),*) => {$(
                if let Some(x) = &self.$field {
                    d.field(stringify!($field), x);
                }
            )*};
        }
        opt!(object_delivery_timeout, rendezvous_timeout, subgroup_delivery_timeout, expires, largest_object);
        opt!(fill_timeout, forward, subscriber_priority, location_filter, group_order, new_group_request);
        opt!(track_namespace_prefix);
        if !self.auth_tokens.is_empty() {
            d.field("auth_tokens", &self.auth_tokens);
        }
        if !self.range_filters.is_empty() {
            d.field("range_filters", &self.range_filters);
        }
        d.finish()
    }
}

impl Parameters {
    /// Whether no parameter is set.
    pub fn is_empty(&self) -> bool {
        *self == Parameters::default()
    }

    /// Reads a parameter block for a message of kind `ctx`.
    pub fn decode<B: Buf>(buf: &mut B, v: Version, ctx: ParamContext) -> Result<Parameters, DecodeError> {
        let count = get_vi(buf, v)?;
        let mut p = Parameters::default();
        let mut ty = 0u64;
        for _ in 0..count {
            let delta = get_vi(buf, v)?;
            //= draft-ietf-moq-transport-19#message-params
            //# If the resulting Type would be greater than 2^64 - 1, the endpoint MUST close the session with a
            //# `PROTOCOL_VIOLATION`.
            ty = ty.checked_add(delta).ok_or(DecodeError::Overflow("parameter type"))?;
            //# An endpoint that receives an unknown Message Parameter MUST close the session with
            //# `PROTOCOL_VIOLATION`.
            if !is_known(ty, v) {
                return Err(DecodeError::UnknownParameter(ty));
            }
            //# If it appears in some other type of message, the receiving endpoint MUST close the connection
            //# with a `PROTOCOL_VIOLATION`.
            if !is_allowed(ty, ctx, v) {
                return Err(DecodeError::ParameterNotAllowed { param: ty, message: ctx.name() });
            }
            p.decode_one(ty, buf, v)?;
        }
        Ok(p)
    }

    fn decode_one<B: Buf>(&mut self, ty: u64, buf: &mut B, v: Version) -> Result<(), DecodeError> {
        fn once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), DecodeError> {
            if slot.is_some() {
                return Err(DecodeError::Duplicate(name));
            }
            *slot = Some(value);
            Ok(())
        }
        match ty {
            pt::OBJECT_DELIVERY_TIMEOUT => {
                once(&mut self.object_delivery_timeout, get_vi(buf, v)?, "OBJECT_DELIVERY_TIMEOUT")
            }
            pt::AUTHORIZATION_TOKEN => {
                let len = get_len(buf, v, "authorization token", u16::MAX as usize)?;
                let token = decode_bounded(buf, len, "authorization token", |body| AuthToken::decode_buf(body, v))?;
                self.auth_tokens.push(token);
                Ok(())
            }
            pt::RENDEZVOUS_TIMEOUT => once(&mut self.rendezvous_timeout, get_vi(buf, v)?, "RENDEZVOUS_TIMEOUT"),
            pt::SUBGROUP_DELIVERY_TIMEOUT => {
                once(&mut self.subgroup_delivery_timeout, get_vi(buf, v)?, "SUBGROUP_DELIVERY_TIMEOUT")
            }
            pt::EXPIRES => once(&mut self.expires, get_vi(buf, v)?, "EXPIRES"),
            pt::LARGEST_OBJECT => once(&mut self.largest_object, Location::decode(buf, v)?, "LARGEST_OBJECT"),
            pt::FILL_TIMEOUT => once(&mut self.fill_timeout, get_vi(buf, v)?, "FILL_TIMEOUT"),
            pt::FORWARD => {
                let value = match get_u8(buf)? {
                    0 => false,
                    1 => true,
                    //# If an endpoint receives a value outside this range, it MUST close the session with
                    //# `PROTOCOL_VIOLATION`.
                    other => {
                        return Err(DecodeError::InvalidValue { field: "FORWARD", value: other as u64 });
                    }
                };
                once(&mut self.forward, value, "FORWARD")
            }
            pt::SUBSCRIBER_PRIORITY => once(&mut self.subscriber_priority, get_u8(buf)?, "SUBSCRIBER_PRIORITY"),
            pt::LOCATION_FILTER => {
                let len = get_len(buf, v, "location filter", u16::MAX as usize)?;
                let filter = decode_bounded(buf, len, "location filter", |body| LocationFilter::decode(body, v))?;
                once(&mut self.location_filter, filter, "LOCATION_FILTER")
            }
            pt::GROUP_ORDER => {
                let order = GroupOrder::try_from(get_u8(buf)? as u64)?;
                once(&mut self.group_order, order, "GROUP_ORDER")
            }
            pt::SUBGROUP_FILTER..=pt::TRACK_PROPERTY_FILTER => {
                let len = get_len(buf, v, "range filter", u16::MAX as usize)?;
                let filter = decode_bounded(buf, len, "range filter", |body| RangeFilter::decode_value(ty, body, v))?;
                self.range_filters.push(filter);
                Ok(())
            }
            pt::NEW_GROUP_REQUEST => once(&mut self.new_group_request, get_vi(buf, v)?, "NEW_GROUP_REQUEST"),
            pt::TRACK_NAMESPACE_PREFIX => {
                once(&mut self.track_namespace_prefix, TrackNamespace::decode(buf, v)?, "TRACK_NAMESPACE_PREFIX")
            }
            other => Err(DecodeError::UnknownParameter(other)),
        }
    }

    /// Writes the parameter block, refusing parameters the draft does not allow in `ctx`.
    pub fn encode<B: BufMut>(&self, buf: &mut B, v: Version, ctx: ParamContext) -> Result<(), EncodeError> {
        // Collect (type, writer) in ascending type order, then write count + deltas.
        let mut entries: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut add = |ty: u64, f: &dyn Fn(&mut Vec<u8>) -> Result<(), EncodeError>| -> Result<(), EncodeError> {
            if !is_known(ty, v) {
                return Err(EncodeError::Unsupported { field: "parameter", version: v });
            }
            if !is_allowed(ty, ctx, v) {
                return Err(EncodeError::InvalidValue { field: "parameter not allowed in this message", value: ty });
            }
            let mut value = Vec::new();
            f(&mut value)?;
            entries.push((ty, value));
            Ok(())
        };
        if let Some(x) = self.object_delivery_timeout {
            add(pt::OBJECT_DELIVERY_TIMEOUT, &|o| put_vi(o, v, x))?;
        }
        for token in &self.auth_tokens {
            add(pt::AUTHORIZATION_TOKEN, &|o| {
                encode_len_prefixed(o, v, "authorization token", u16::MAX as usize, |t| token.encode_value(t, v))
            })?;
        }
        if let Some(x) = self.rendezvous_timeout {
            add(pt::RENDEZVOUS_TIMEOUT, &|o| put_vi(o, v, x))?;
        }
        if let Some(x) = self.subgroup_delivery_timeout {
            add(pt::SUBGROUP_DELIVERY_TIMEOUT, &|o| put_vi(o, v, x))?;
        }
        if let Some(x) = self.expires {
            add(pt::EXPIRES, &|o| put_vi(o, v, x))?;
        }
        if let Some(x) = self.largest_object {
            add(pt::LARGEST_OBJECT, &|o| x.encode(o, v))?;
        }
        if let Some(x) = self.fill_timeout {
            add(pt::FILL_TIMEOUT, &|o| put_vi(o, v, x))?;
        }
        if let Some(x) = self.forward {
            add(pt::FORWARD, &|o| {
                o.put_u8(x as u8);
                Ok(())
            })?;
        }
        if let Some(x) = self.subscriber_priority {
            add(pt::SUBSCRIBER_PRIORITY, &|o| {
                o.put_u8(x);
                Ok(())
            })?;
        }
        if let Some(x) = self.location_filter {
            add(pt::LOCATION_FILTER, &|o| {
                encode_len_prefixed(o, v, "location filter", u16::MAX as usize, |t| x.encode(t, v))
            })?;
        }
        if let Some(x) = self.group_order {
            add(pt::GROUP_ORDER, &|o| {
                o.put_u8(x.to_u8());
                Ok(())
            })?;
        }
        let mut filters: Vec<&RangeFilter> = self.range_filters.iter().collect();
        filters.sort_by_key(|f| f.kind.param_type());
        for f in filters {
            add(f.kind.param_type(), &|o| {
                encode_len_prefixed(o, v, "range filter", u16::MAX as usize, |t| f.encode_value(t, v))
            })?;
        }
        if let Some(x) = self.new_group_request {
            add(pt::NEW_GROUP_REQUEST, &|o| put_vi(o, v, x))?;
        }
        if let Some(x) = &self.track_namespace_prefix {
            add(pt::TRACK_NAMESPACE_PREFIX, &|o| x.encode(o, v))?;
        }
        put_vi(buf, v, entries.len() as u64)?;
        let mut prev = 0;
        for (ty, value) in entries {
            put_vi(buf, v, ty - prev)?;
            buf.put_slice(&value);
            prev = ty;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Version = Version::Draft19;

    fn enc(p: &Parameters, ctx: ParamContext) -> Vec<u8> {
        let mut out = Vec::new();
        p.encode(&mut out, V, ctx).unwrap();
        out
    }

    #[test]
    fn ascending_deltas() {
        let p = Parameters {
            forward: Some(true),
            subscriber_priority: Some(10),
            group_order: Some(GroupOrder::Descending),
            location_filter: Some(LocationFilter::LargestObject),
            ..Default::default()
        };
        let bytes = enc(&p, ParamContext::Subscribe);
        // 4 params: FORWARD 0x10 =1; +0x10 SUBSCRIBER_PRIORITY =10; +1 LOCATION_FILTER len 1 type 2;
        // +1 GROUP_ORDER =2.
        assert_eq!(bytes, [0x04, 0x10, 0x01, 0x10, 0x0a, 0x01, 0x01, 0x02, 0x01, 0x02]);
        assert_eq!(Parameters::decode(&mut &bytes[..], V, ParamContext::Subscribe), Ok(p));
    }

    #[test]
    fn strictness() {
        // Unknown parameter 0x0C.
        assert_eq!(
            Parameters::decode(&mut &[0x01, 0x0c, 0x00][..], V, ParamContext::Subscribe),
            Err(DecodeError::UnknownParameter(0x0c))
        );
        // EXPIRES is not allowed in SUBSCRIBE.
        assert!(matches!(
            Parameters::decode(&mut &[0x01, 0x08, 0x00][..], V, ParamContext::Subscribe),
            Err(DecodeError::ParameterNotAllowed { param: 0x08, .. })
        ));
        // Duplicate FORWARD (delta 0).
        assert_eq!(
            Parameters::decode(&mut &[0x02, 0x10, 0x01, 0x00, 0x01][..], V, ParamContext::Subscribe),
            Err(DecodeError::Duplicate("FORWARD"))
        );
        // FORWARD = 2.
        assert!(matches!(
            Parameters::decode(&mut &[0x01, 0x10, 0x02][..], V, ParamContext::Subscribe),
            Err(DecodeError::InvalidValue { .. })
        ));
        // GROUP_ORDER = 0.
        assert!(Parameters::decode(&mut &[0x01, 0x22, 0x00][..], V, ParamContext::Subscribe).is_err());
        // Range filters do not exist in -18.
        assert_eq!(
            Parameters::decode(&mut &[0x01, 0x25, 0x00][..], Version::Draft18, ParamContext::Subscribe),
            Err(DecodeError::UnknownParameter(0x25))
        );
        // Encoding refuses what decoding would refuse.
        let p = Parameters { expires: Some(1), ..Default::default() };
        assert!(p.encode(&mut Vec::new(), V, ParamContext::Subscribe).is_err());
    }

    #[test]
    fn tokens_repeat() {
        let p = Parameters {
            auth_tokens: vec![AuthToken::value(&b"a"[..]), AuthToken::value(&b"b"[..])],
            ..Default::default()
        };
        let bytes = enc(&p, ParamContext::Subscribe);
        assert_eq!(bytes, [0x02, 0x03, 0x03, 0x03, 0x00, b'a', 0x00, 0x03, 0x03, 0x00, b'b']);
        assert_eq!(Parameters::decode(&mut &bytes[..], V, ParamContext::Subscribe), Ok(p));
    }

    #[test]
    fn range_filter_draft_example() {
        // §5.1.3: ranges 3-5 and 10-15 are sent as 3, 2, 5, 5.
        let f = RangeFilter {
            kind: RangeFilterKind::ObjectId,
            set_id: Some(0),
            ranges: vec![RangeDelta { start: 3, end: Some(2) }, RangeDelta { start: 5, end: Some(5) }],
        };
        assert_eq!(f.absolute(), Ok(vec![(3, Some(5)), (10, Some(15))]));
        let p = Parameters { range_filters: vec![f], ..Default::default() };
        let bytes = enc(&p, ParamContext::Fetch);
        assert_eq!(bytes, [0x01, 0x26, 0x05, 0x00, 0x03, 0x02, 0x05, 0x05]);
        assert_eq!(Parameters::decode(&mut &bytes[..], V, ParamContext::Fetch), Ok(p));
        // An open last range.
        let open = RangeFilter {
            kind: RangeFilterKind::Priority,
            set_id: Some(1),
            ranges: vec![RangeDelta { start: 7, end: None }],
        };
        assert_eq!(open.absolute(), Ok(vec![(7, None)]));
        let bad = RangeFilter {
            kind: RangeFilterKind::Priority,
            set_id: Some(1),
            ranges: vec![RangeDelta { start: 250, end: Some(6) }],
        };
        assert_eq!(bad.absolute(), Err(RangeFilterError::Priority));
        let odd = RangeFilter { kind: RangeFilterKind::TrackProperty(3), set_id: Some(1), ranges: vec![] };
        assert_eq!(odd.absolute(), Err(RangeFilterError::OddPropertyType));
    }

    #[test]
    fn location_filters() {
        for (f, bytes) in [
            (LocationFilter::NextGroupStart, vec![0x01]),
            (LocationFilter::LargestObject, vec![0x02]),
            (LocationFilter::AbsoluteStart { start: Location::new(3, 4) }, vec![0x03, 0x03, 0x04]),
            (
                LocationFilter::AbsoluteRange { start: Location::new(3, 0), end_group_delta: 2 },
                vec![0x04, 0x03, 0x00, 0x02],
            ),
        ] {
            assert_eq!(f.encode_to_vec(V).unwrap(), bytes);
            assert_eq!(LocationFilter::decode_prefix(&bytes, V), Ok((f, bytes.len())));
        }
        assert!(LocationFilter::decode_prefix(&[0x05], V).is_err());
        let mut overflow = vec![0x04];
        crate::coding::varint::leading_ones::put(&mut overflow, u64::MAX);
        overflow.extend_from_slice(&[0x00, 0x01]);
        assert_eq!(LocationFilter::decode_prefix(&overflow, V), Err(DecodeError::Overflow("end group")));
    }
}
