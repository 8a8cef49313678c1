// Writes the package's type declarations to types/ (for `exports` in package.json): tsc's declarations of the
// public entry points, with the sources' `.ts` import specifiers rewritten to `.js` as consumers resolve them.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

rmSync("types", { recursive: true, force: true });
execFileSync(process.execPath, ["node_modules/typescript/lib/tsc.js", "-p", "tsconfig.types.json"], {
  stdio: "inherit",
});
const walk = (dir) =>
  readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
for (const file of walk("types").filter((f) => f.endsWith(".d.ts"))) {
  const text = readFileSync(file, "utf8").replace(/(from\s+|import\()"(\.{1,2}\/[^"]+)\.ts"/g, '$1"$2.js"');
  writeFileSync(file, text);
}
console.log("wrote types/");
