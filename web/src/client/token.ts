// Tokens (JWTs) for a relay that requires one: how pages take them in, and which relays they may go to.
//
// A token never goes into a URL the browser requests. Pages read it from the address's fragment (`#token=…`,
// which no request carries, not even in a Referer) and erase it from the address bar at once; the session sends
// it in SETUP (session.ts). A `?token=` in the query is ignored and erased.

/** Splits `token=` out of a URL's fragment: the token (the first non-empty one) and the URL without it. */
export function splitFragmentToken(href: string): { token?: string; href: string } {
  const u = new URL(href);
  if (!u.hash) return { href };
  let token: string | undefined;
  const rest: string[] = [];
  for (const part of u.hash.slice(1).split("&")) {
    if (!part.startsWith("token=")) {
      rest.push(part);
      continue;
    }
    const raw = part.slice("token=".length);
    let value = raw;
    try {
      value = decodeURIComponent(raw);
    } catch {
      // Not percent-encoded: taken as it is.
    }
    if (!token && value) token = value;
  }
  u.hash = rest.filter((p) => p !== "").join("&");
  // `hash = ""` leaves a bare "#"; drop it.
  const out = u.hash ? u.href : u.href.replace(/#$/, "");
  return token ? { token, href: out } : { href: out };
}

/** The URL without `token` in its query, or undefined if it has none. */
export function withoutQueryToken(href: string): string | undefined {
  const u = new URL(href);
  if (!u.searchParams.has("token")) return undefined;
  u.searchParams.delete("token");
  return u.href;
}

/**
 * The page's token from `#token=`, erased from the address bar (history.replaceState; the rest of the fragment
 * stays). A `?token=` is not read: it is erased too, with a warning.
 */
export function takePageToken(): string | undefined {
  const { token, href } = splitFragmentToken(location.href);
  const clean = withoutQueryToken(href);
  if (clean !== undefined)
    console.warn("ignored ?token= in the address (it is sent to servers): pass it as #token= instead");
  const next = clean ?? href;
  if (next !== location.href) history.replaceState(history.state, "", next);
  return token;
}

/** The origin of a relay URL (relative to the page). */
export function originOf(relay: string, page = globalThis.location?.href): string {
  return new URL(relay, page).origin;
}

/** Whether `relay` is served from the page's own origin. */
export function sameOrigin(relay: string, page = globalThis.location?.href): boolean {
  return page !== undefined && originOf(relay, page) === new URL(page).origin;
}

const remembered = new Map<string, string>();

/**
 * Lets sessions to `relay`'s origin that are given no token use this one (the watch page's player, which
 * takes no token of its own). Only that exact origin gets it.
 */
export function rememberToken(relay: string, token: string | undefined): void {
  const origin = originOf(relay);
  if (token) remembered.set(origin, token);
  else remembered.delete(origin);
}

/** The token remembered for `url`'s origin, if any. */
export function rememberedToken(url: string): string | undefined {
  try {
    return remembered.get(originOf(url));
  } catch {
    return undefined;
  }
}

/**
 * A checkbox, unchecked, asking whether the token may go to `origin` (a relay on another site than the page).
 * Text only through textContent.
 */
export function consentBox(origin: string): { element: HTMLElement; checkbox: HTMLInputElement } {
  const element = document.createElement("p");
  element.className = "token-consent";
  const label = document.createElement("label");
  const checkbox = document.createElement("input");
  checkbox.type = "checkbox";
  checkbox.id = "token-consent";
  checkbox.checked = false;
  const text = document.createElement("span");
  text.textContent = ` Send my token to ${origin} (another site than this page)`;
  label.append(checkbox, text);
  element.append(label);
  return { element, checkbox };
}
