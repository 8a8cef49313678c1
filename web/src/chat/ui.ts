// The chat panel of the watch and studio pages: the room's messages, the name, and a box to post. Every piece
// of text from the network goes in with textContent, never as HTML.

import { ChatError, MAX_NAME_CHARS, MAX_TEXT_BYTES, type PendingPost } from "./messages.ts";
import { ChatRoom, type RoomOptions } from "./room.ts";

export type ChatOptions = RoomOptions;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls = "", text = ""): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text) e.textContent = text;
  return e;
}

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

  const render = () => {
    status.textContent = room.status;
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    const items = room.log.messages.map((m) => {
      const li = el("li", room.mine(m) ? "mine" : "");
      li.dataset.seq = String(m.seq);
      li.title = new Date(m.ts).toLocaleTimeString();
      li.append(el("span", "who", m.name), el("span", "text", m.text));
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
  room.onundelivered = (p) => {
    const li = waiting.get(p);
    waiting.delete(p);
    if (li) {
      li.className = "failed";
      li.lastElementChild?.append(" — not delivered");
    }
    showError("Not delivered: the relay did not accept that message (at most 5 at once, then 1 per second).");
  };

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
