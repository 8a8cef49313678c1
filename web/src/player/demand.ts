// What the player should be subscribed to: video only while it can be seen, audio only while it can be heard.

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
}

/** Video needs a visible page and the element in view; audio needs permission and an unmute, hidden or not. */
export function wanted(d: Demand): Wants {
  return { video: !d.pageHidden && d.inView, audio: d.audioAllowed && d.unmuted };
}
