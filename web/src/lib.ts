// The public entry point: the MoQT client (subscribing and publishing), the wire codec and the <moq-player>
// element.

export * from "./client/publish.ts";
export * from "./client/requests.ts";
export * from "./client/session.ts";
export { parseCatalog } from "./player/catalog.ts";
export { MoqPlayer, type PlayerStats } from "./player/player.ts";
export * as wire from "./wire/index.ts";
