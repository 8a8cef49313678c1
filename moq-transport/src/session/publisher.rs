//! Requests we make as a publisher: PUBLISH_NAMESPACE and PUBLISH.

use std::time::Duration;

use moq_wire::codes::StreamCode;
use moq_wire::control::{Publish, PublishNamespace};
use moq_wire::kvp::{Properties, property};
use moq_wire::namespace::TrackNamespace;
use moq_wire::params::Parameters;
use tokio::sync::oneshot;
use web_transport_trait::Session as WtSession;

use super::Session;
use super::answer::{EMPTY_REQUEST_OK, RESPONSE_TIMEOUT};
use super::handles::{Announcement, Published};
use super::request::unexpected;
use super::rules::{Start, subscription_window, track_group_order};
use super::serve::serve_subscription;
use super::subscription::{Served, SubState};
use crate::error::{Error, RequestFailure};
use crate::model::{TrackInfo, TrackProducer};

impl<S: WtSession> Session<S> {
    /// Publishes a namespace to the peer (PUBLISH_NAMESPACE) and waits for REQUEST_OK.
    pub async fn publish_namespace(&self, namespace: TrackNamespace) -> Result<Announcement, Error> {
        let request_id = self.request_id()?;
        let msg = PublishNamespace { request_id, namespace: namespace.clone(), params: Parameters::default() };
        let ((mut writer, mut reader), _) = self.request(msg.into(), false, EMPTY_REQUEST_OK).await?;
        let (cancel, mut cancelled) = oneshot::channel::<()>();
        let (v, inner) = (self.inner.version, self.inner.clone());
        let tasks = inner.tasks.clone();
        tasks.spawn(async move {
            //= draft-ietf-moq-transport-19#publishing-namespaces
            //# A PUBLISH_NAMESPACE is withdrawn by cancelling the request
            // Only a cancel ends it: the responder closing its side (FIN) or migrating it (GOAWAY) does not.
            let mut fin = false;
            loop {
                tokio::select! {
                    _ = &mut cancelled => break,
                    msg = reader.request_message(v), if !fin => match msg {
                        Ok(None) => fin = true,
                        Ok(Some(m)) => tracing::debug!(message = unexpected(&m), "ignored on a PUBLISH_NAMESPACE"),
                        Err(e) if e.is_session_error() => {
                            inner.close(e);
                            break;
                        }
                        // The responder reset its side: it revoked its acceptance.
                        Err(_) => break,
                    },
                    // The responder sent STOP_SENDING: it revoked its acceptance.
                    _ = writer.closed() => break,
                }
            }
            // Withdraw: cancel the request stream in both directions.
            writer.reset(StreamCode::Cancelled);
            reader.stop(StreamCode::Cancelled);
        });
        Ok(Announcement { namespace, _cancel: cancel })
    }

    /// Pushes a track to the peer (PUBLISH) and serves it once accepted.
    pub async fn publish(&self, track: TrackProducer) -> Result<Published, Error> {
        let open_within = self.inner.config.request_open_timeout;
        self.publish_with(track, &Parameters::default(), open_within).await
    }

    /// PUBLISH with `defaults` as the subscription's parameters where PUBLISH_OK gives none (a SUBSCRIBE_TRACKS's
    /// parameters; FORWARD and GROUP_ORDER are also sent in the PUBLISH), waiting at most `open_within` for the
    /// peer to allow the request stream.
    pub(super) async fn publish_with(
        &self,
        track: TrackProducer,
        defaults: &Parameters,
        open_within: Duration,
    ) -> Result<Published, Error> {
        let request_id = self.request_id()?;
        let alias = self.inner.state().next_alias();
        let params = Parameters {
            largest_object: track.largest(),
            forward: Some(defaults.forward.unwrap_or(true)),
            group_order: defaults.group_order,
            ..Default::default()
        };
        let msg = Publish {
            request_id,
            track: track.info().name.clone(),
            track_alias: alias,
            params,
            track_properties: track_properties(track.info()),
        };
        let ((mut writer, mut reader), ok) =
            self.request_opening(msg.into(), false, EMPTY_REQUEST_OK, open_within, RESPONSE_TIMEOUT).await?;
        let params = with_defaults(ok.params, defaults);
        //= draft-ietf-moq-transport-19#location-filter
        //# It MAY appear in a SUBSCRIBE, PUBLISH_OK or REQUEST_UPDATE (for a
        //# subscription) message.
        let largest = track.largest();
        let (start, end_group) = match subscription_window(params.location_filter, largest) {
            Ok(window) => window,
            Err((code, reason)) => {
                writer.reset(StreamCode::Cancelled);
                reader.stop(StreamCode::Cancelled);
                return Err(Error::Request(RequestFailure::Rejected { code, reason: reason.into() }));
            }
        };
        let consumer = match start {
            Start::Cached(_) => track.consume_from_start(),
            _ => track.consume(),
        };
        let (cancel, cancelled) = oneshot::channel::<()>();
        let inner = self.inner.clone();
        if let Some(value) = params.new_group_request {
            track.request_new_group(value);
        }
        let tasks = inner.tasks.clone();
        tasks.spawn(async move {
            let state = SubState::new(&params, track_group_order(&track.info().properties));
            state.set_joining(largest);
            inner.state().served.insert(request_id.0, Served { track: track.clone(), state: state.clone() });
            tokio::select! {
                _ = serve_subscription(&inner, &mut writer, &mut reader, track.clone(), consumer, alias, start, end_group, &state) => {}
                _ = cancelled => {
                    writer.reset(StreamCode::Cancelled);
                    reader.stop(StreamCode::Cancelled);
                }
            }
            inner.state().served.remove(&request_id.0);
        });
        Ok(Published { request_id, track_alias: alias, _cancel: cancel })
    }
}

/// A subscription's parameters: `given`, with `defaults` where it gives none.
fn with_defaults(given: Parameters, defaults: &Parameters) -> Parameters {
    Parameters {
        forward: given.forward.or(defaults.forward),
        subscriber_priority: given.subscriber_priority.or(defaults.subscriber_priority),
        group_order: given.group_order.or(defaults.group_order),
        location_filter: given.location_filter.or(defaults.location_filter),
        object_delivery_timeout: given.object_delivery_timeout.or(defaults.object_delivery_timeout),
        subgroup_delivery_timeout: given.subgroup_delivery_timeout.or(defaults.subgroup_delivery_timeout),
        ..given
    }
}

pub(super) fn track_properties(info: &TrackInfo) -> Properties {
    let mut props = info.properties.clone();
    if info.priority != 128 && props.get_int(property::DEFAULT_PUBLISHER_PRIORITY).is_none() {
        props = props.with_int(property::DEFAULT_PUBLISHER_PRIORITY, info.priority as u64).unwrap_or_default();
    }
    props
}
