// The committed bundles in dist/ are what `npm run build` produces from src/, and are small.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { build } from "../build.mjs";

const dist = (name) => readFileSync(new URL(`../dist/${name}`, import.meta.url), "utf8");

test("dist/ is current: run `npm run build` in widget/ and commit dist/ if this fails", async () => {
  const files = await build();
  assert.deepEqual(Object.keys(files).sort(), ["chat-de.min.js", "chat-en.min.js", "chat-es.min.js", "chat-fr.min.js", "widget.min.js"]);
  for (const [name, code] of Object.entries(files)) {
    assert.ok(dist(name) === code, `dist/${name} is stale: run npm run build`);
  }
});

test("the launcher and the whole widget stay under 15 KB gzipped", () => {
  const gz = (name) => gzipSync(dist(name)).length;
  const launcher = gz("widget.min.js");
  assert.ok(launcher < 4 * 1024, `launcher ${launcher} B gzipped`);
  for (const language of ["en", "es", "fr", "de"]) {
    const total = launcher + gz(`chat-${language}.min.js`);
    assert.ok(total < 15 * 1024, `launcher + chat-${language}: ${total} B gzipped`);
  }
});

test("the server compiles in the committed bundles", () => {
  const pages = readFileSync(new URL("../../server/src/api/pages.rs", import.meta.url), "utf8");
  for (const name of ["widget.min.js", "chat-en.min.js", "chat-es.min.js", "chat-fr.min.js", "chat-de.min.js"]) {
    assert.ok(pages.includes(`include_str!("../../../widget/dist/${name}")`), name);
  }
});
