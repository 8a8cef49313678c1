//! Serving the peer's SUBSCRIBE_NAMESPACE.

use std::collections::HashSet;
use std::sync::Arc;

use moq_wire::Version;
use moq_wire::codes::StreamCode;
use moq_wire::control::{ControlMessage, Namespace, NamespaceDone, RequestOk};
use moq_wire::namespace::TrackNamespace;
use web_transport_trait::Session as WtSession;

use super::Inner;
use super::authority::Grant;
use super::request::PrefixClaim;
use crate::error::Error;
use crate::io::{Reader, Writer};
use crate::origin::{NamespaceEvent, Origin};

pub(super) async fn serve_namespaces<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    reader: &mut Reader<S::RecvStream>,
    mut claim: PrefixClaim<'_, S>,
    grant: &Grant,
) -> Result<(), Error> {
    let v = inner.version;
    let origin = inner.config.origin.clone();
    let mut watch = origin.watch();
    writer.message(&RequestOk::default().into(), v).await?;
    let mut sent = HashSet::new();
    let mut fin = false;
    announce_all(writer, v, &origin, claim.prefix(), &mut sent).await?;
    loop {
        let prefix_now = claim.prefix().clone();
        let prefix = &prefix_now;
        tokio::select! {
            ev = watch.recv() => match ev {
                Ok(NamespaceEvent::Added(ns)) if ns.starts_with(prefix) && sent.insert(ns.clone()) => {
                    if let Some(suffix) = ns.strip_prefix(prefix) {
                        writer.message(&Namespace { suffix }.into(), v).await?;
                    }
                }
                Ok(NamespaceEvent::Removed(ns)) if sent.remove(&ns) => {
                    if let Some(suffix) = ns.strip_prefix(prefix) {
                        writer.message(&NamespaceDone { suffix }.into(), v).await?;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // We missed changes: resynchronise against the origin's current set.
                    let now: HashSet<TrackNamespace> = origin.namespaces(prefix).into_iter().collect();
                    for gone in sent.difference(&now).cloned().collect::<Vec<_>>() {
                        sent.remove(&gone);
                        if let Some(suffix) = gone.strip_prefix(prefix) {
                            writer.message(&NamespaceDone { suffix }.into(), v).await?;
                        }
                    }
                    for new in now {
                        if sent.insert(new.clone()) && let Some(suffix) = new.strip_prefix(prefix) {
                            writer.message(&Namespace { suffix }.into(), v).await?;
                        }
                    }
                }
                Err(_) => return Ok(()),
            },
            msg = reader.request_message(v), if !fin => match msg {
                Ok(Some(ControlMessage::RequestUpdate(u))) => {
                    //= draft-ietf-moq-transport-19#updating-namespace-subscriptions
                    //# If the update is
                    //# accepted, NAMESPACE and NAMESPACE_DONE messages following the
                    //# REQUEST_OK will contain Track Namespace suffixes relative to the
                    //# updated prefix.
                    if let Some(new) = claim.answer_update(grant, writer, &u).await? {
                        sent.clear();
                        announce_all(writer, v, &origin, &new, &mut sent).await?;
                    }
                }
                Ok(Some(_)) => return Err(Error::protocol("unexpected message on SUBSCRIBE_NAMESPACE")),
                // A FIN from the subscriber is not a cancel: keep sending until STOP_SENDING or a reset.
                Ok(None) => fin = true,
                Err(e) if e.is_session_error() => return Err(e),
                Err(_) => {
                    writer.reset(StreamCode::Cancelled);
                    return Ok(());
                }
            },
            _ = writer.closed() => return Ok(()),
        }
    }
}

/// Sends NAMESPACE for every published namespace under `prefix` not sent yet.
async fn announce_all<W: web_transport_trait::SendStream>(
    writer: &mut Writer<W>,
    v: Version,
    origin: &Origin,
    prefix: &TrackNamespace,
    sent: &mut HashSet<TrackNamespace>,
) -> Result<(), Error> {
    for ns in origin.namespaces(prefix) {
        if let Some(suffix) = ns.strip_prefix(prefix)
            && sent.insert(ns.clone())
        {
            writer.message(&Namespace { suffix }.into(), v).await?;
        }
    }
    Ok(())
}
