//! The peer's Request IDs seen so far, to refuse a duplicate, in bounded memory.
//!
//! Requests arrive on separate streams, so their IDs can arrive out of order and a plain "largest so far" would
//! refuse a legitimate late one; a set of every ID ever seen grows for as long as the session lives. Here every ID
//! below `floor` counts as used, and a window of flags covers the IDs from `floor` up: an ID more than
//! [`REORDER_WINDOW`] requests past the oldest gap moves the floor past that gap, which a request reordered that
//! far (more than any stream credit allows in flight) would then find closed.

use std::collections::VecDeque;

/// How many requests apart two out-of-order IDs may arrive.
pub(super) const REORDER_WINDOW: u64 = 16_384;

#[derive(Debug, Default)]
pub(super) struct PeerRequestIds {
    /// Requests (IDs halved: a peer's IDs all have the same parity) below this are used.
    floor: u64,
    /// Whether request `floor + i` has been seen; never longer than REORDER_WINDOW.
    seen: VecDeque<bool>,
}

impl PeerRequestIds {
    /// Records `id`; false if it was seen before (or is older than the window, so counts as seen).
    pub(super) fn insert(&mut self, id: u64) -> bool {
        let n = id >> 1;
        if n < self.floor {
            return false;
        }
        let mut offset = n - self.floor;
        if offset >= REORDER_WINDOW {
            // Give up on the oldest gaps: the window slides to end at `n`.
            let shift = offset - REORDER_WINDOW + 1;
            let kept = self.seen.len().saturating_sub(shift.min(usize::MAX as u64) as usize);
            self.seen.drain(..self.seen.len() - kept);
            self.floor += shift;
            offset = REORDER_WINDOW - 1;
        }
        let offset = offset as usize;
        if offset >= self.seen.len() {
            self.seen.resize(offset + 1, false);
        }
        if std::mem::replace(&mut self.seen[offset], true) {
            return false;
        }
        while self.seen.front() == Some(&true) {
            self.seen.pop_front();
            self.floor += 1;
        }
        true
    }

    /// The flags held now (for tests: the memory stays bounded).
    #[cfg(test)]
    fn window(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_ids_hold_no_memory_and_duplicates_are_refused() {
        let mut ids = PeerRequestIds::default();
        for id in (0..2000).step_by(2) {
            assert!(ids.insert(id));
        }
        assert_eq!(ids.window(), 0);
        assert!(!ids.insert(0));
        assert!(!ids.insert(1998));
    }

    #[test]
    fn ids_out_of_order_are_taken_once_each() {
        let mut ids = PeerRequestIds::default();
        for id in [4, 0, 8, 2, 6] {
            assert!(ids.insert(id), "{id}");
        }
        assert_eq!(ids.window(), 0, "the gaps closed");
        for id in [0, 2, 4, 6, 8] {
            assert!(!ids.insert(id), "{id} again");
        }
        // The server's IDs (odd) work the same way.
        let mut server = PeerRequestIds::default();
        assert!(server.insert(3));
        assert!(server.insert(1));
        assert!(!server.insert(3));
    }

    #[test]
    fn a_peer_that_skips_ids_cannot_grow_the_memory() {
        let mut ids = PeerRequestIds::default();
        // Every other request skipped: each one leaves a gap behind.
        for k in 0..100_000u64 {
            assert!(ids.insert(k * 4));
        }
        assert!(ids.window() <= REORDER_WINDOW as usize, "window {}", ids.window());
        // A gap far behind counts as used; one inside the window is still open, once.
        assert!(!ids.insert(2), "an ID older than the window");
        let recent = 99_999 * 4 - 2;
        assert!(ids.insert(recent));
        assert!(!ids.insert(recent));
    }

    #[test]
    fn a_jump_far_ahead_slides_the_window() {
        let mut ids = PeerRequestIds::default();
        assert!(ids.insert(0));
        assert!(ids.insert(2 * 10 * REORDER_WINDOW));
        assert!(ids.window() <= REORDER_WINDOW as usize);
        assert!(!ids.insert(2), "left behind by the jump");
        assert!(ids.insert(2 * 10 * REORDER_WINDOW - 2), "just before the jump: inside the window");
    }
}
