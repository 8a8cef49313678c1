// MoQT wire codec for draft-ietf-moq-transport-19 and -18, written from the draft text.

export * from "./buffer.ts";
export * from "./codes.ts";
export * from "./control.ts";
export * from "./data.ts";
export * from "./errors.ts";
export * from "./kvp.ts";
export * from "./namespace.ts";
export * from "./params.ts";
export * from "./version.ts";
