//! Requests from the peer: accepting request streams, validation, authorization and dispatch.

use std::sync::Arc;

use moq_wire::Version;
use moq_wire::codes::RequestErrorCode;
use moq_wire::control::{ControlMessage, RequestError, RequestOk, RequestUpdate};
use moq_wire::namespace::TrackNamespace;
use moq_wire::params::Parameters;
use web_transport_trait::Session as WtSession;

use super::Inner;
use super::authority::{Grant, request_scope, request_tokens};
use super::config::{Action, Role};
use super::fetch::serve_fetch;
use super::handles::Event;
use super::limits::Kind;
use super::namespaces::serve_namespaces;
use super::publisher::track_properties;
use super::receive::accept_publish;
use super::rules::check_range_filters;
use super::state::PrefixKind;
use super::subscribe::serve_subscribe;
use super::tracks::serve_tracks;
use crate::error::{Error, SessionError, from_wt};
use crate::io::{Reader, Writer};

/// The MAX_FILTER_RANGES we allow (we send no such setup option, so the peer's limit is its default, 0).
pub(super) const MAX_FILTER_RANGES: u64 = 0;

// ---- requests from the peer ----

pub(super) async fn run_bi<S: WtSession>(inner: Arc<Inner<S>>) {
    loop {
        let (send, recv) = match inner.transport.accept_bi().await {
            Ok(s) => s,
            Err(e) => {
                let e = from_wt(e);
                inner.record_closed(e.clone());
                return;
            }
        };
        let inner = inner.clone();
        let tasks = inner.tasks.clone();
        tasks.spawn(async move {
            let log = inner.stream_log(false, None);
            let mut writer = Writer::new(send).logged(log.clone());
            let mut reader = Reader::request(recv, inner.role == Role::Server).logged(log);
            if let Err(e) = handle_request(&inner, &mut writer, &mut reader).await {
                if e.is_session_error() {
                    inner.close(e);
                } else {
                    tracing::debug!(error = %e, "request ended");
                }
            }
        });
    }
}

pub(super) async fn reject<W: web_transport_trait::SendStream>(
    writer: &mut Writer<W>,
    v: Version,
    code: RequestErrorCode,
    reason: &str,
) -> Result<(), Error> {
    writer.message(&RequestError::new(code, reason).into(), v).await?;
    writer.finish();
    Ok(())
}

pub(super) async fn handle_request<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    reader: &mut Reader<S::RecvStream>,
) -> Result<(), Error> {
    let v = inner.version;
    let Some(first) = reader.message(v).await? else {
        return Ok(());
    };
    //= draft-ietf-moq-transport-19#session-init
    //# Bidirectional streams MUST NOT begin with any other message type unless negotiated. If they do,
    //# the peer MUST close the Session with a `PROTOCOL_VIOLATION`.
    if !first.is_request() {
        return Err(Error::protocol("request stream must start with a request"));
    }
    let request_id = match &first {
        ControlMessage::Subscribe(m) => m.request_id,
        ControlMessage::Publish(m) => m.request_id,
        ControlMessage::Fetch(m) => m.request_id,
        ControlMessage::TrackStatus(m) => m.request_id,
        ControlMessage::PublishNamespace(m) => m.request_id,
        ControlMessage::SubscribeNamespace(m) => m.request_id,
        ControlMessage::SubscribeTracks(m) => m.request_id,
        _ => return Err(Error::protocol("not a request")),
    };
    inner.check_peer_request(request_id)?;
    if inner.state().going_away() {
        return reject(writer, v, RequestErrorCode::GoingAway, "going away").await;
    }
    // Tokens go through the alias cache first: a REGISTER stands even if the request is refused.
    let tokens = match inner.resolve_tokens(request_tokens(&first)) {
        Ok(t) => t,
        Err((code, reason)) => return reject(writer, v, code, reason).await,
    };
    let scope = request_scope(&first);
    if let Some((action, namespace)) = scope
        && !inner.authorize(action, namespace, &tokens)
    {
        return reject(writer, v, RequestErrorCode::Unauthorized, "unauthorized").await;
    }
    let grant = Grant { action: scope.map_or(Action::Subscribe, |(a, _)| a), tokens };
    //= draft-ietf-moq-transport-19#subscription-amplification
    //# Relays
    //# SHOULD implement rate limiting on subscription requests and MAY reject
    //# excessive subscriptions with REQUEST_ERROR using the EXCESSIVE_LOAD error code.
    let Some(_slot) = inner.open_request(Kind::of(&first)) else {
        tracing::info!(request = first.name(), "request refused at a session limit");
        return reject(writer, v, RequestErrorCode::ExcessiveLoad, "too many requests of this kind").await;
    };
    let filters = match &first {
        ControlMessage::Subscribe(m) => Some(&m.params),
        ControlMessage::Fetch(m) => Some(&m.params),
        ControlMessage::SubscribeTracks(m) => Some(&m.params),
        _ => None,
    };
    if let Some(Err((code, reason))) = filters.map(|p| check_range_filters(p, MAX_FILTER_RANGES)) {
        return reject(writer, v, code, reason).await;
    }
    let origin = &inner.config.origin;
    match first {
        ControlMessage::Subscribe(m) => serve_subscribe(inner, writer, reader, m).await,
        ControlMessage::TrackStatus(m) => {
            let track = match origin.find(&m.track).await {
                Ok(track) => track,
                Err(e) => return reject(writer, v, e.code, &e.reason).await,
            };
            let ok = RequestOk {
                params: Parameters { largest_object: track.largest(), ..Default::default() },
                track_properties: track_properties(track.info()),
            };
            writer.message(&ok.into(), v).await?;
            writer.finish();
            Ok(())
        }
        ControlMessage::Fetch(m) => serve_fetch(inner, writer, reader, m).await,
        ControlMessage::PublishNamespace(m) => {
            writer.message(&RequestOk::default().into(), v).await?;
            inner.state().add_peer_namespace(m.namespace.clone());
            let _ = inner.events.send(Event::Announced(m.namespace.clone()));
            // The namespace stays published until the peer cancels the request (a FIN is not a cancel).
            let held = hold_request(inner, writer, reader).await;
            inner.state().remove_peer_namespace(&m.namespace);
            let _ = inner.events.send(Event::Unannounced(m.namespace));
            held
        }
        ControlMessage::SubscribeNamespace(m) => {
            //= draft-ietf-moq-transport-19#message-subscribe-ns
            //# PREFIX_OVERLAP: a prefix that overlaps another active SUBSCRIBE_NAMESPACE of this session is refused.
            let Some(claim) = PrefixClaim::new(inner, PrefixKind::Namespaces, &m.prefix) else {
                return reject(writer, v, RequestErrorCode::PrefixOverlap, "prefix overlaps").await;
            };
            serve_namespaces(inner, writer, reader, claim, &grant).await
        }
        ControlMessage::SubscribeTracks(m) => {
            // The overlap rule applies to SUBSCRIBE_TRACKS on its own.
            let Some(claim) = PrefixClaim::new(inner, PrefixKind::Tracks, &m.prefix) else {
                return reject(writer, v, RequestErrorCode::PrefixOverlap, "prefix overlaps").await;
            };
            serve_tracks(inner, writer, reader, claim, &grant, &m.params).await
        }
        ControlMessage::Publish(m) => accept_publish(inner, writer, reader, m).await,
        _ => Err(Error::protocol("not a request")),
    }
}

/// A namespace prefix held by one active request of its kind, released on drop.
pub(super) struct PrefixClaim<'a, S: WtSession> {
    inner: &'a Inner<S>,
    kind: PrefixKind,
    prefix: TrackNamespace,
}

impl<'a, S: WtSession> PrefixClaim<'a, S> {
    /// Claims `prefix`, or `None` if it overlaps a prefix already claimed by a request of its kind.
    pub(super) fn new(inner: &'a Inner<S>, kind: PrefixKind, prefix: &TrackNamespace) -> Option<PrefixClaim<'a, S>> {
        inner.state().claim_prefix(kind, prefix).then(|| PrefixClaim { inner, kind, prefix: prefix.clone() })
    }

    /// The claimed prefix.
    pub(super) fn prefix(&self) -> &TrackNamespace {
        &self.prefix
    }

    /// Moves the claim to `prefix` (a REQUEST_UPDATE's TRACK_NAMESPACE_PREFIX); `false`, keeping the old one, if
    /// the new one overlaps another claim.
    pub(super) fn replace(&mut self, prefix: &TrackNamespace) -> bool {
        if !self.inner.state().move_prefix(self.kind, &self.prefix, prefix) {
            return false;
        }
        self.prefix = prefix.clone();
        true
    }

    /// Answers a REQUEST_UPDATE of the request holding this claim: REQUEST_OK, moving the claim to its
    /// TRACK_NAMESPACE_PREFIX if it has one, or REQUEST_ERROR (UNAUTHORIZED beyond the grant, PREFIX_OVERLAP),
    /// keeping the old claim. Returns the new prefix when it moved.
    pub(super) async fn answer_update(
        &mut self,
        grant: &Grant,
        writer: &mut Writer<S::SendStream>,
        update: &RequestUpdate,
    ) -> Result<Option<TrackNamespace>, Error> {
        let inner = self.inner;
        let v = inner.version;
        let new = update.params.track_namespace_prefix.as_ref();
        let refusal = match inner.authorize_update(grant, update, new) {
            Err(refusal) => Some(refusal),
            Ok(()) => match new {
                Some(new) if !self.replace(new) => Some((RequestErrorCode::PrefixOverlap, "prefix overlaps")),
                _ => None,
            },
        };
        if let Some((code, reason)) = refusal {
            writer.message(&RequestError::new(code, reason).into(), v).await?;
            return Ok(None);
        }
        writer.message(&RequestOk::default().into(), v).await?;
        Ok(new.cloned())
    }
}

impl<S: WtSession> Drop for PrefixClaim<'_, S> {
    fn drop(&mut self) {
        self.inner.state().release_prefix(self.kind, &self.prefix);
    }
}

/// Keeps a request open until the requester cancels it (reset, or STOP_SENDING), answering REQUEST_UPDATEs with
/// REQUEST_OK. A FIN means only that no more updates will come.
pub(super) async fn hold_request<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    reader: &mut Reader<S::RecvStream>,
) -> Result<(), Error> {
    let v = inner.version;
    loop {
        let msg = tokio::select! {
            m = reader.request_message(v) => m,
            _ = writer.closed() => return Ok(()),
        };
        match msg {
            Ok(Some(ControlMessage::RequestUpdate(u))) => {
                let answer = match inner.check_update(&u)? {
                    Ok(_) => RequestOk::default().into(),
                    Err((code, reason)) => RequestError::new(code, reason).into(),
                };
                writer.message(&answer, v).await?;
            }
            Ok(Some(m)) => return Err(Error::Session(SessionError::ProtocolViolation(unexpected(&m)))),
            Ok(None) => {
                let _ = writer.closed().await;
                return Ok(());
            }
            Err(e) if e.is_session_error() => return Err(e),
            Err(_) => return Ok(()),
        }
    }
}

pub(super) fn unexpected(m: &ControlMessage) -> &'static str {
    match m {
        ControlMessage::Setup(_) => "SETUP on a request stream",
        _ => "unexpected message on a request stream",
    }
}
