// Bundles the library, the player's worker and audio worklet, the evaluation's hls.js page, and copies the pages
// into dist/.
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { build } from "esbuild";

const watch = process.argv.includes("--dev");
rmSync("dist", { recursive: true, force: true });
mkdirSync("dist", { recursive: true });

const common = {
  bundle: true,
  format: "esm",
  target: "es2022",
  sourcemap: watch, // the committed dist/ (served by the relay) carries no maps
  minify: !watch,
  logLevel: "warning",
};
await build({
  ...common,
  entryPoints: {
    moq: "src/lib.ts",
    "decoder-worker": "src/player/decoder-worker.ts",
    "audio-worklet": "src/player/audio-worklet.ts",
    app: "src/app.ts",
    studio: "src/studio/page.ts",
    "moq-studio": "src/studio/element.ts",
    "studio-worker": "src/studio/encoder-worker.ts",
    "capture-worklet": "src/studio/capture-worklet.ts",
    "eval-hls": "src/eval/hls-page.ts",
  },
  outdir: "dist",
});
for (const f of readdirSync("src"))
  if (f.endsWith(".html") || f.endsWith(".css")) copyFileSync(`src/${f}`, `dist/${f}`);
console.log("built dist/");
