// Where the workers and worklets come from: beside moq.js by default, or under an `assets` base URL that another
// origin may host (a page embedding the player from a CDN or a relay). A worker cannot start from another origin's
// URL, so one from elsewhere starts from a same-origin blob that imports it (the host must allow CORS).

/** The URL of the asset `name`: under `base` if given, else beside this module. */
export function assetUrl(name: string, base?: string | null): URL {
  return new URL(name, base ?? new URL(".", import.meta.url).href);
}

/** A module worker running the script at `url`, wherever it is hosted. */
export function moduleWorker(url: URL): Worker {
  if (url.origin === globalThis.location?.origin) return new Worker(url, { type: "module" });
  const shim = URL.createObjectURL(
    new Blob([`import ${JSON.stringify(url.href)};`], { type: "text/javascript" }),
  );
  const worker = new Worker(shim, { type: "module" });
  // The worker has fetched its script long before; the URL need not live as long as the page.
  setTimeout(() => URL.revokeObjectURL(shim), 30_000);
  return worker;
}
