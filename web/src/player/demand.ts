// What the player should be subscribed to: video only while it can be seen, audio only while it can be heard, and
// nothing while the viewer has paused.

/** The tracks the player wants now. */
export interface Wants {
  video: boolean;
  audio: boolean;
}

export interface Demand {
  /** The element has no `no-audio` attribute. */
  audioAllowed: boolean;
  /** The viewer has unmuted (and not muted again). */
  unmuted: boolean;
  /** `document.visibilityState === "hidden"` (a background tab, a minimised window). */
  pageHidden: boolean;
  /** Some of the element is in the viewport (IntersectionObserver). */
  inView: boolean;
  /** The viewer paused (the play/pause control): nothing is subscribed; play resumes at the live edge. */
  paused?: boolean;
}

/**
 * Video needs a visible page and the element in view; audio needs permission and an unmute, hidden or not; a
 * paused player wants neither.
 */
export function wanted(d: Demand): Wants {
  if (d.paused) return { video: false, audio: false };
  return { video: !d.pageHidden && d.inView, audio: d.audioAllowed && d.unmuted };
}
