// The chat panel of the watch and studio pages: the room's messages (the streamer's with a badge), the name, a
// box to post, why the relay refused a post, and for the streamer "remove" and "mute" on others' messages. Every
// piece of text from the network goes in with textContent, never as HTML, and no longer than the relay allows.

import { ChatError, MAX_NAME_CHARS, MAX_TEXT_BYTES, type PendingPost, type RoomMessage } from "./messages.ts";
import { ChatRoom, type RoomOptions } from "./room.ts";

export interface ChatOptions extends RoomOptions {
  /** The streamer's own panel (the studio): moderation buttons from the start, not only once the relay says so. */
  moderate?: boolean;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls = "", text = ""): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text) e.textContent = text;
  return e;
}

/** At most `n` UTF-16 units of `s` (the relay's limits bound what it sends; this bounds what we show). */
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}…` : s);

/** Builds the chat panel in `host` and joins the room; returns the room (also `globalThis.moqChat`). */
export function mountChat(host: HTMLElement, o: ChatOptions): ChatRoom {
  (globalThis as { moqChat?: ChatRoom }).moqChat?.close();
  const room = new ChatRoom(o);
  (globalThis as { moqChat?: ChatRoom }).moqChat = room;
  const status = el("p", "chat-status");
  const list = el("ol", "messages");
  const outbox = el("ol", "outbox");
  const nameForm = el("form", "name-form");
  const name = el("input");
  name.name = "name";
  name.maxLength = MAX_NAME_CHARS;
  name.value = room.name;
  name.setAttribute("aria-label", "display name");
  nameForm.append(name);
  const postForm = el("form", "post-form");
  const text = el("input");
  text.name = "text";
  text.placeholder = "Say something";
  text.autocomplete = "off";
  text.setAttribute("aria-label", "message");
  const send = el("button", "", "Send");
  send.type = "submit";
  postForm.append(text, send);
  const error = el("p", "error chat-error");
  error.setAttribute("role", "alert");
  host.replaceChildren(el("h2", "", "Chat"), status, list, outbox, nameForm, postForm, error);
  host.hidden = false;

  const waiting = new Map<PendingPost, HTMLElement>();

  const showError = (message: string) => {
    error.textContent = message;
  };

  /** "remove" and "mute" for a message of someone else. */
  const moderation = (m: RoomMessage): HTMLElement[] => {
    const act = (label: string, what: string, f: () => void) => {
      const b = el("button", `mod-${label}`, label);
      b.type = "button";
      b.setAttribute("aria-label", `${label} ${what}`);
      b.addEventListener("click", () => {
        try {
          f();
          b.disabled = true;
        } catch (err) {
          showError(err instanceof Error ? err.message : String(err));
        }
      });
      return b;
    };
    const who = clip(m.name, MAX_NAME_CHARS);
    return [
      act("remove", `this message of ${who}`, () => room.remove(m.seq)),
      act("mute", who, () => room.mute(m.id)),
    ];
  };

  const render = () => {
    status.textContent = room.status;
    const moderating = o.moderate === true || room.streamer;
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    const items = room.log.messages.map((m) => {
      const li = el("li", room.mine(m) ? "mine" : "");
      li.dataset.seq = String(m.seq);
      li.dataset.id = m.id;
      li.title = new Date(m.ts).toLocaleTimeString();
      li.append(el("bdi", "who", clip(m.name, 4 * MAX_NAME_CHARS)));
      if (m.role === "streamer") li.append(el("span", "badge", "streamer"));
      li.append(el("bdi", "text", clip(m.text, MAX_TEXT_BYTES)));
      if (moderating && !room.mine(m)) li.append(...moderation(m));
      return li;
    });
    list.replaceChildren(...items);
    if (atBottom) list.scrollTop = list.scrollHeight;
    name.disabled = room.posted;
  };
  room.onchange = render;
  // Delivered posts leave the outbox: they are in the room now.
  room.ondelivered = (p) => {
    waiting.get(p)?.remove();
    waiting.delete(p);
  };
  // Refused by the relay (its reason, from a notice), or not seen in the room in time (no reason).
  room.onundelivered = (p, reason) => {
    const li = waiting.get(p);
    waiting.delete(p);
    if (li) {
      li.className = "failed";
      li.lastElementChild?.append(reason ? ` — not delivered: ${reason}` : " — not delivered");
    }
    showError(
      reason
        ? `Not delivered: ${reason}`
        : "Not delivered: the relay did not accept that message (at most 5 at once, then 1 per second).",
    );
  };
  room.onrefused = (reason, what) => showError(what ? `Refused (${what}): ${reason}` : `Refused: ${reason}`);

  nameForm.addEventListener("submit", (e) => e.preventDefault());
  name.addEventListener("change", () => {
    try {
      room.rename(name.value);
      showError("");
    } catch (err) {
      showError(err instanceof Error ? err.message : String(err));
      name.value = room.name;
    }
  });
  postForm.addEventListener("submit", (e) => {
    e.preventDefault();
    try {
      if (!room.posted && name.value !== room.name) room.rename(name.value);
      const p = room.post(text.value);
      const li = el("li", "pending");
      li.append(el("span", "who", room.name), el("span", "text", p.text));
      outbox.append(li);
      waiting.set(p, li);
      text.value = "";
      showError("");
      render();
    } catch (err) {
      const message = err instanceof ChatError ? err.message : String(err);
      showError(message.includes("bytes") ? `${message} (limit ${MAX_TEXT_BYTES})` : message);
    }
  });
  render();
  return room;
}
