//! Serving the peer's FETCH from a track's cache, or with objects obtained upstream.

use super::*;

pub(super) async fn serve_fetch<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    m: Fetch,
) -> Result<(), Error> {
    let v = inner.version;
    let order = m.params.group_order.unwrap_or(GroupOrder::Ascending);
    let subscriber_priority = m.params.subscriber_priority.unwrap_or(128);
    let (track, start, end) = match m.fetch_type {
        FetchType::Standalone { track: name, start, end } => {
            let track = inner.config.origin.resolve(&name).await;
            // A range older than what is held here is fetched from upstream when the origin knows how.
            let held_from = track.as_ref().and_then(|t| t.consume().cached_groups().first().map(|g| g.id()));
            if held_from.is_none_or(|first| start.group < first)
                && let Some(fetcher) = inner.config.origin.fetcher()
                && let Some(objects) = fetcher(name.clone(), start, end, order).await
            {
                let request = (m.request_id, order, subscriber_priority);
                return serve_fetched(inner, writer, request, start, end, objects).await;
            }
            match track {
                Some(t) => (t, start, end),
                None => return reject(writer, v, RequestErrorCode::DoesNotExist, "no such track").await,
            }
        }
        FetchType::RelativeJoining { joining_request_id, joining_start }
        | FetchType::AbsoluteJoining { joining_request_id, joining_start } => {
            let relative = matches!(m.fetch_type, FetchType::RelativeJoining { .. });
            let served = lock(&inner.served)
                .get(&joining_request_id.0)
                .map(|s| (s.track.clone(), *lock(&s.state.joining), *s.state.forward.borrow()));
            let Some((track, joining, forward)) = served else {
                return reject(writer, v, RequestErrorCode::InvalidJoiningRequestId, "no such subscription").await;
            };
            //= draft-ietf-moq-transport-19#joining-fetches
            //# If no Objects have been published for the track the publisher MUST respond with a REQUEST_ERROR
            //# with error code `INVALID_RANGE`.
            if !forward {
                return reject(writer, v, RequestErrorCode::InvalidRange, "joining subscription has Forward 0").await;
            }
            let Some(joining) = joining else {
                return reject(writer, v, RequestErrorCode::InvalidRange, "nothing published yet").await;
            };
            let (start, end) = joining_range(relative, joining_start, joining);
            (track, start, end)
        }
    };
    let largest = track.largest();
    let end_location = match fetch_end(start, end, largest) {
        Ok(e) => e,
        Err((code, reason)) => return reject(writer, v, code, reason).await,
    };
    let clipped_end = largest.map(|l| Location::new(l.group.0, l.object.0.saturating_add(1))).unwrap_or_default();
    let in_range = |l: Location| in_fetch_range(l, start, end_location);
    let consumer = track.consume();
    let end_of_track = consumer.ended() == Some(TrackEnd::Ended) && end_location == clipped_end;
    let datagrams = track.info().delivery == Delivery::Datagrams;
    let mut groups: Vec<GroupConsumer> = consumer.cached_groups();
    if order == GroupOrder::Descending {
        groups.reverse();
    }
    let ok = FetchOk {
        end_of_track,
        end_location,
        params: Parameters::default(),
        track_properties: track_properties(track.info()),
    };
    writer.message(&ok.into(), v).await?;
    let stream = inner.transport.open_uni().await.map_err(from_wt)?;
    let mut data = Writer::new(stream);
    data.set_priority(fetch_send_order(subscriber_priority, track.info().priority));
    let mut buf = BytesMut::new();
    FetchHeader { request_id: m.request_id }.encode(&mut buf, v)?;
    let mut fw = FetchWriter::new(order, v);
    for g in groups {
        let mut objects: Vec<(u64, u8, crate::model::Object)> = Vec::new();
        for sg in g.subgroups() {
            let c = sg.clone();
            for o in c.available() {
                objects.push((sg.id().0, sg.priority(), o));
            }
            let _ = c.closed();
        }
        objects.sort_by_key(|(_, _, o)| o.id);
        for (sg, prio, o) in objects {
            if o.status != ObjectStatus::Normal || !in_range(Location { group: g.id(), object: o.id }) {
                continue;
            }
            let fo = FetchObject {
                group_id: g.id(),
                // Objects of a datagram track have no subgroup (serialization flag 0x40).
                subgroup_id: if datagrams { None } else { Some(SubgroupId(sg)) },
                object_id: o.id,
                publisher_priority: prio,
                properties: o.properties.clone(),
                payload_len: o.payload.len(),
            };
            fw.write_object(&mut buf, &fo)?;
            data.write(&buf).await?;
            buf.clear();
            data.write_chunk(o.payload.clone()).await?;
        }
    }
    if !buf.is_empty() {
        data.write(&buf).await?;
    }
    data.finish();
    writer.finish();
    Ok(())
}

/// Answers a FETCH with objects obtained elsewhere (upstream).
pub(super) async fn serve_fetched<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    (request_id, order, subscriber_priority): (RequestId, GroupOrder, u8),
    start: Location,
    end: Location,
    objects: Vec<FetchedObject>,
) -> Result<(), Error> {
    let v = inner.version;
    let Some(last) = objects.iter().map(|o| o.location).max() else {
        return reject(writer, v, RequestErrorCode::InvalidRange, "no objects in the range").await;
    };
    let reached = Location::new(last.group.0, last.object.0.saturating_add(1));
    let end_location = if end.object.0 == 0 && end.group > last.group { reached } else { end.min(reached).max(start) };
    writer.message(&FetchOk { end_of_track: false, end_location, ..Default::default() }.into(), v).await?;
    let stream = inner.transport.open_uni().await.map_err(from_wt)?;
    let mut data = Writer::new(stream);
    data.set_priority(fetch_send_order(subscriber_priority, 128));
    let mut buf = BytesMut::new();
    FetchHeader { request_id }.encode(&mut buf, v)?;
    let mut fw = FetchWriter::new(order, v);
    for o in objects {
        let fo = FetchObject {
            group_id: o.location.group,
            subgroup_id: o.subgroup,
            object_id: o.location.object,
            publisher_priority: o.priority,
            properties: o.properties,
            payload_len: o.payload.len(),
        };
        if fw.write_object(&mut buf, &fo).is_err() {
            buf.clear();
            continue; // out of the requested order: skip rather than fail the whole response
        }
        data.write(&buf).await?;
        buf.clear();
        data.write_chunk(o.payload).await?;
    }
    if !buf.is_empty() {
        data.write(&buf).await?;
    }
    data.finish();
    writer.finish();
    Ok(())
}
