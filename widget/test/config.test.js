import { test } from "node:test";
import assert from "node:assert/strict";
import { readConfig, contrastRatio, parseHexColor, textColorOn, DEFAULT_PRIMARY } from "../src/config.js";

const env = {
  pageLang: "en",
  languages: ["en-US"],
  scriptSrc: "https://chat.example.com/widget.js",
  pageUrl: "https://www.example.com/pricing",
};

test("data attributes configure the widget", () => {
  const config = readConfig(
    { siteKey: "pk_demo", position: "left", color: "#ffcc00", greeting: "Hi there", language: "de", userId: "u1", userHash: "abc" },
    undefined,
    env,
  );
  assert.equal(config.siteKey, "pk_demo");
  assert.equal(config.server, "https://chat.example.com");
  assert.equal(config.wsUrl, "wss://chat.example.com/v1/ws");
  assert.equal(config.position, "left");
  assert.equal(config.primary, "rgb(255,204,0)");
  assert.equal(config.onPrimary, "#000000", "black text on yellow");
  assert.equal(config.greeting, "Hi there");
  assert.equal(config.language, "de");
  assert.deepEqual(config.identity, { user_id: "u1", user_hash: "abc" });
});

test("window.FrontdeskSettings overrides the tag", () => {
  const config = readConfig(
    { siteKey: "pk_tag", position: "left" },
    { siteKey: "pk_settings", position: "right", colors: { primary: "#0a0" }, language: "es-MX", identity: { jwt: "a.b.c", userId: "ignored" } },
    env,
  );
  assert.equal(config.siteKey, "pk_settings");
  assert.equal(config.position, "right");
  assert.equal(config.primary, "rgb(0,170,0)");
  assert.equal(config.language, "es");
  assert.deepEqual(config.identity, { jwt: "a.b.c" });
});

test("defaults: page language, then the visitor's; same-origin relative script", () => {
  const config = readConfig({ siteKey: "k" }, null, { ...env, pageLang: "fr", scriptSrc: "/widget.js", pageUrl: "http://127.0.0.1:8080/" });
  assert.equal(config.language, "fr");
  assert.equal(config.server, "http://127.0.0.1:8080");
  assert.equal(config.wsUrl, "ws://127.0.0.1:8080/v1/ws");
  assert.equal(config.position, "right");
  assert.equal(config.primary, DEFAULT_PRIMARY);
  assert.equal(config.identity, undefined);
  assert.equal(readConfig({ siteKey: "k" }, null, { ...env, pageLang: "", languages: ["de-CH", "en"] }).language, "de");
  assert.equal(readConfig({}, null, env).siteKey, undefined);
});

test("a half identity (user id without hash) is not sent", () => {
  assert.equal(readConfig({ siteKey: "k", userId: "u1" }, null, env).identity, undefined);
  assert.deepEqual(readConfig({ siteKey: "k" }, { identity: { user_id: "u", user_hash: "h" } }, env).identity, { user_id: "u", user_hash: "h" });
});

test("colours: invalid values fall back; text on any primary reaches WCAG AA (4.5:1)", () => {
  assert.equal(parseHexColor("red"), null);
  assert.equal(parseHexColor("#12345"), null);
  assert.equal(parseHexColor("url(javascript:x)"), null);
  assert.deepEqual(parseHexColor("#abc"), [170, 187, 204]);
  assert.equal(readConfig({ siteKey: "k", color: "expression(alert(1))" }, null, env).primary, DEFAULT_PRIMARY);
  assert.ok(contrastRatio(parseHexColor(DEFAULT_PRIMARY), [255, 255, 255]) >= 4.5);
  assert.equal(Math.round(contrastRatio([0, 0, 0], [255, 255, 255])), 21);
  for (let r = 0; r < 256; r += 15) {
    for (let g = 0; g < 256; g += 15) {
      for (let b = 0; b < 256; b += 15) {
        const text = parseHexColor(textColorOn([r, g, b]));
        assert.ok(contrastRatio([r, g, b], text) >= 4.5, `rgb(${r},${g},${b})`);
      }
    }
  }
});

test("the panel's fixed colours meet WCAG AA (4.5:1) on their backgrounds", () => {
  // Text colour, background, where (src/chat.css and src/launcher.css).
  const pairs = [
    ["#1f2328", "#f3f4f6", "assistant bubble"],
    ["#1f2328", "#e9f5ec", "agent bubble"],
    ["#0b57d0", "#f3f4f6", "links in a bubble"],
    ["#424a53", "#f3f4f6", "sources and names in a bubble"],
    ["#424a53", "#ffffff", "system messages"],
    ["#424a53", "#f6f8fa", "notices"],
    ["#57606a", "#ffffff", "placeholder"],
    ["#b42318", "#ffffff", "errors"],
    ["#ffffff", "#b42318", "unread badge"],
    ["#3b2e00", "#fff8c5", "connection line"],
    ["#0a3069", "#ddf4ff", "handoff line"],
    ["#ffffff", "#1f2328", "pressed feedback button"],
  ];
  for (const [text, background, where] of pairs) {
    const ratio = contrastRatio(parseHexColor(text), parseHexColor(background));
    assert.ok(ratio >= 4.5, `${where}: ${ratio.toFixed(2)}:1`);
  }
});
