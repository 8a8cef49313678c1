//! `--demo`: the built-in clip, looped in real time, published from the relay's own origin.

use moq_transport::Origin;
use moq_transport::wire::namespace::TrackNamespace;

/// Publishes the built-in clip in a loop, in real time, into the relay's own origin.
/// Its tracks keep the relay's cache window (`--cache-groups`, `--cache-bytes`), so viewers can rewind through it.
pub(crate) async fn demo(origin: Origin, namespace: TrackNamespace, window: usize, max_cache_bytes: u64) {
    let options = moq_media::BroadcastOptions { pace: true, window, max_cache_bytes, ..Default::default() };
    let mut broadcast = moq_media::Broadcast::new(origin, namespace, options);
    loop {
        let mut input = moq_media::Input::new(moq_media::DEMO_CLIP);
        if let Err(e) = broadcast.publish(&mut input).await {
            tracing::error!(error = %e, "demo clip failed");
            broadcast.finish();
            return;
        }
        broadcast.continue_timeline();
    }
}
