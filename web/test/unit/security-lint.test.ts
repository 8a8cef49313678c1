// No markup from strings, and pages that run under `script-src 'self'; style-src 'self'`: the Biome plugin
// (lint/no-html-strings.grit, run by `npm run check`) reports every way of turning a string into HTML and
// nothing else, and the HTML pages carry no inline <style>, style="", inline <script> or on…= handlers.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const PLUGIN = "lint/no-html-strings.grit";

const BAD = [
  'el.innerHTML = "<b>x</b>";',
  'el.outerHTML = "<b>x</b>";',
  'el.innerHTML += "<b>x</b>";',
  '(el as HTMLElement).innerHTML = "<b>x</b>";',
  'el["innerHTML"] = "<b>x</b>";',
  'frame.srcdoc = "<b>x</b>";',
  'el.shadowRoot!.innerHTML = "<b>x</b>";',
  'el.insertAdjacentHTML("beforeend", "<b>x</b>");',
  'el.setHTMLUnsafe("<b>x</b>");',
  'document.createRange().createContextualFragment("<b>x</b>");',
  'document.write("<b>x</b>");',
  'document.writeln("<b>x</b>");',
  'window.document.write("<b>x</b>");',
];
const GOOD = [
  'el.textContent = "<b>x</b>";',
  "const html = el.innerHTML;",
  "const outer = el.outerHTML;",
  "writer.write(new Uint8Array(1));",
  'log.write("x");',
  "el.append(document.createElement('b'));",
];

/** The plugin's diagnostics for each line of `lines`, run by the project's Biome on a copy of the plugin. */
function pluginHits(lines: string[]): number[] {
  const dir = mkdtempSync(path.join(tmpdir(), "moq-lint-"));
  try {
    copyFileSync(path.join(WEB, PLUGIN), path.join(dir, "rule.grit"));
    writeFileSync(path.join(dir, "biome.json"), JSON.stringify({ plugins: ["./rule.grit"] }));
    const prelude = "declare const el: HTMLElement, frame: HTMLIFrameElement, writer: any, log: any;\n";
    writeFileSync(path.join(dir, "sample.ts"), prelude + lines.join("\n"));
    let out: string;
    try {
      out = execFileSync(
        path.join(WEB, "node_modules/.bin/biome"),
        ["lint", "--reporter=json", "sample.ts"],
        {
          cwd: dir,
          encoding: "utf8",
          stdio: ["ignore", "pipe", "ignore"],
        },
      );
    } catch (e) {
      out = (e as { stdout: string }).stdout; // exit status 1: errors found
    }
    const report = JSON.parse(out) as {
      diagnostics: { category: string; location: { start: { line: number } } }[];
    };
    return report.diagnostics.filter((d) => d.category === "plugin").map((d) => d.location.start.line - 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the lint rule reports each way of making HTML from a string", () => {
  assert.deepEqual(
    pluginHits(BAD),
    BAD.map((_, i) => i),
  );
});

test("the lint rule leaves reads, textContent and other write() calls alone", () => {
  assert.deepEqual(pluginHits(GOOD), []);
});

test("biome.json enables the rule", () => {
  const config = JSON.parse(readFileSync(path.join(WEB, "biome.json"), "utf8")) as { plugins?: string[] };
  assert.ok(config.plugins?.includes(`./${PLUGIN}`));
});

test("the pages: no inline style or script, no event handler attributes", () => {
  const pages = readdirSync(path.join(WEB, "src")).filter((f) => f.endsWith(".html"));
  assert.ok(pages.length >= 5, pages.join(" "));
  for (const page of pages) {
    const html = readFileSync(path.join(WEB, "src", page), "utf8");
    assert.doesNotMatch(html, /<style/i, `${page}: <style>`);
    assert.doesNotMatch(html, /\sstyle\s*=/i, `${page}: style=""`);
    assert.doesNotMatch(html, /\son[a-z]+\s*=/i, `${page}: an event handler attribute`);
    assert.doesNotMatch(html, /javascript:/i, `${page}: a javascript: URL`);
    for (const script of html.match(/<script\b[^>]*>[^<]*<\/script>/gi) ?? [])
      assert.match(script, /^<script type="module" src="[a-z-]+\.js"><\/script>$/, `${page}: ${script}`);
    assert.equal(
      (html.match(/<script\b/gi) ?? []).length,
      (html.match(/<script\b[^>]*\ssrc=/gi) ?? []).length,
      `${page}: an inline script`,
    );
  }
});
