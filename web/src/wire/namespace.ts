// Track Namespace (0–32 non-empty fields) and Track Name (draft-19 §2.4.1).

import { type Reader, text, utf8, type Writer } from "./buffer.ts";
import { DecodeError, EncodeError } from "./errors.ts";

export type Namespace = Uint8Array[];

export const MAX_NAMESPACE_FIELDS = 32;
export const MAX_FULL_NAME_LEN = 4096;

export function decodeNamespace(r: Reader): Namespace {
  const n = r.varint();
  if (n > MAX_NAMESPACE_FIELDS) throw new DecodeError(`namespace with ${n} fields`);
  const fields: Namespace = [];
  for (let i = 0; i < n; i++) {
    const f = r.lenBytes(MAX_FULL_NAME_LEN, "namespace field");
    if (f.length === 0) throw new DecodeError("empty namespace field");
    fields.push(f);
  }
  return fields;
}

export function encodeNamespace(w: Writer, ns: Namespace): void {
  if (ns.length > MAX_NAMESPACE_FIELDS) throw new EncodeError("more than 32 namespace fields");
  w.varint(ns.length);
  for (const f of ns) {
    if (f.length === 0) throw new EncodeError("empty namespace field");
    w.lenBytes(f, MAX_FULL_NAME_LEN, "namespace field");
  }
}

/** Namespace, then a length-prefixed name; the whole at most 4096 bytes. */
export function decodeFullName(r: Reader): { namespace: Namespace; name: Uint8Array } {
  const namespace = decodeNamespace(r);
  const name = r.lenBytes(MAX_FULL_NAME_LEN, "track name");
  const total = namespace.reduce((n, f) => n + f.length, name.length);
  if (total > MAX_FULL_NAME_LEN) throw new DecodeError(`full track name of ${total} bytes`);
  return { namespace, name };
}

export function encodeFullName(w: Writer, namespace: Namespace, name: Uint8Array): void {
  encodeNamespace(w, namespace);
  w.lenBytes(name, MAX_FULL_NAME_LEN, "track name");
}

/** `"demo/clip"` → `["demo", "clip"]` (our URL form; an empty string is the empty namespace). */
export function namespaceFromPath(path: string): Namespace {
  return path
    .split("/")
    .filter((s) => s.length > 0)
    .map((s) => utf8.encode(s));
}

export function namespaceToPath(ns: Namespace): string {
  return ns.map((f) => text(f)).join("/");
}

export function namespaceEquals(a: Namespace, b: Namespace): boolean {
  return a.length === b.length && a.every((f, i) => bytesEqual(f, b[i] as Uint8Array));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
