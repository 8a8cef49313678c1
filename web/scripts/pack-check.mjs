// Checks the npm package as a consumer gets it: `npm pack`, unpack into a scratch project's node_modules, and
// type-check a module that uses the client, the player and the studio element from it. Exits non-zero on failure.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const pkg = JSON.parse(readFileSync("package.json", "utf8"));
const scratch = mkdtempSync(path.join(tmpdir(), "moq-pack-"));
try {
  // prepack (build, types) first, on its own: its output would mix with pack's JSON.
  execFileSync("npm", ["run", "prepack"], { stdio: "inherit" });
  const out = execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", scratch], {
    encoding: "utf8",
  });
  const [{ filename, files }] = JSON.parse(out);
  const names = files.map((f) => f.path);
  for (const needed of [
    "dist/moq.js",
    "dist/decoder-worker.js",
    "dist/moq-studio.js",
    "types/lib.d.ts",
    "CHANGELOG.md",
  ])
    if (!names.includes(needed)) throw new Error(`the package lacks ${needed}`);
  for (const f of names)
    if (f.startsWith("src/") || f.startsWith("test/")) throw new Error(`the package ships ${f}`);
  const home = path.join(scratch, "node_modules", ...pkg.name.split("/"));
  mkdirSync(home, { recursive: true });
  execFileSync("tar", ["-xzf", path.join(scratch, filename), "-C", home, "--strip-components=1"]);
  writeFileSync(
    path.join(scratch, "consumer.ts"),
    `import { MoqPlayer, Session, type PlayerStats } from "${pkg.name}";
import { MoqStudio } from "${pkg.name}/studio";
const player: MoqPlayer = document.createElement("moq-player") as MoqPlayer;
const stats: PlayerStats = player.stats;
const studio = document.createElement("moq-studio") as MoqStudio;
export async function watch(url: string): Promise<string> {
  const session = await Session.connect(url, { transport: "auto" });
  await studio.start();
  return \`\${session.transport} \${stats.state}\`;
}
`,
  );
  writeFileSync(
    path.join(scratch, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "ESNext",
        moduleResolution: "Bundler",
        lib: ["ES2022", "DOM", "DOM.Iterable"],
        strict: true,
        noEmit: true,
        types: [],
      },
      files: ["consumer.ts"],
    }),
  );
  execFileSync(process.execPath, [path.resolve("node_modules/typescript/lib/tsc.js"), "-p", scratch], {
    stdio: "inherit",
  });
  console.log(`${filename}: ${names.length} files; a consumer type-checks against it`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
