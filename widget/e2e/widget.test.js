// End-to-end: the widget in Debian's Chromium (playwright-core) against the real server
// (`frontdesk serve`, demo help center, in-memory store). Screenshots go to
// test-output/widget/ (gitignored).
//
// The agent's side is the real built-in inbox: its page at /inbox, signed in with the one-time
// `admin` password the server logs when no agents are configured. What the demo server cannot
// produce on demand (an offline team) is rendered from scripted socket frames in the last test,
// and marked as such.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { readFileSync, mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, launchBrowser, screenshotPath } from "./harness.js";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const dist = (name) => readFileSync(new URL(`../dist/${name}`, import.meta.url), "utf8");

/** Every frame the page's sockets send and receive, parsed. */
function recordFrames(page) {
  const frames = { sent: [], received: [], sockets: [] };
  page.on("websocket", (ws) => {
    frames.sockets.push(ws.url());
    ws.on("framesent", (f) => frames.sent.push(JSON.parse(f.payload)));
    ws.on("framereceived", (f) => frames.received.push(JSON.parse(f.payload)));
  });
  return frames;
}

async function newPage({ viewport = { width: 1280, height: 800 }, context } = {}) {
  const ctx = context || (await browser.newContext({ viewport, locale: "en-US" }));
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  return { ctx, page, errors };
}

async function openWidget(page) {
  await page.locator("frontdesk-widget .launcher").click();
  await page.locator("#fd-input").waitFor({ state: "visible" });
}

/** Assistant replies shown (the greeting excluded). */
const answers = (page) => page.locator(".msg.assistant:not(.greeting)");

async function ask(page, text) {
  const before = await answers(page).count();
  await page.locator("#fd-input").fill(text);
  await page.keyboard.press("Enter");
  await page.waitForFunction(
    (n) => {
      const root = document.querySelector("frontdesk-widget").shadowRoot;
      return root.querySelectorAll(".msg.assistant:not(.greeting):not([aria-busy])").length > n;
    },
    before,
  );
}

/** Records the text of the answer being streamed at every DOM change. */
async function watchStreaming(page) {
  await page.evaluate(() => {
    const root = document.querySelector("frontdesk-widget").shadowRoot;
    window.__streamed = [];
    new MutationObserver(() => {
      const streaming = root.querySelector(".msg.streaming .body");
      if (streaming) window.__streamed.push(streaming.textContent);
    }).observe(root.querySelector(".log"), { childList: true, subtree: true, characterData: true });
  });
}

test("only the launcher loads before the widget is opened, and the served widget is under 15 KB gzipped", async () => {
  const { ctx, page, errors } = await newPage();
  const requests = [];
  page.on("request", (r) => requests.push(new URL(r.url()).pathname + new URL(r.url()).search));
  const frames = recordFrames(page);
  await page.goto(`${server.url}/`);
  await page.locator("frontdesk-widget .launcher").waitFor();
  await page.waitForLoadState("networkidle");
  const beforeOpen = requests.filter((r) => r !== "/favicon.ico");
  assert.deepEqual(beforeOpen, ["/", "/widget.js"], "only the page and the launcher");
  assert.deepEqual(frames.sockets, [], "no socket before the visitor opens the widget");
  assert.equal(await page.locator("#fd-panel").count(), 0, "no panel in the DOM yet");
  await page.screenshot({ path: screenshotPath("01-launcher-closed") });

  // What the server sends, gzipped.
  const launcher = await (await fetch(`${server.url}/widget.js`)).text();
  assert.ok(launcher === dist("widget.min.js"), "/widget.js serves the committed build (rebuild the server?)");
  const sizes = { launcher: gzipSync(launcher).length };
  for (const lang of ["en", "es", "fr", "de"]) {
    const response = await fetch(`${server.url}/widget.js?part=chat&lang=${lang}&v=test`);
    assert.equal(response.headers.get("content-type"), "application/javascript; charset=utf-8");
    assert.equal(response.headers.get("cache-control"), "public, max-age=86400");
    const chat = await response.text();
    assert.ok(chat === dist(`chat-${lang}.min.js`), `chat-${lang} is the committed build`);
    sizes[lang] = gzipSync(chat).length;
    assert.ok(sizes.launcher + sizes[lang] < 15 * 1024, `launcher + chat-${lang} = ${sizes.launcher + sizes[lang]} B gzipped`);
  }
  console.log(`# widget gzipped sizes (bytes): ${JSON.stringify(sizes)}`);

  await openWidget(page);
  const afterOpen = requests.slice(beforeOpen.length).filter((r) => r !== "/favicon.ico");
  assert.equal(afterOpen.length, 1);
  assert.match(afterOpen[0], /^\/widget\.js\?part=chat&lang=en&v=[0-9a-f]{12}$/);
  await page.waitForFunction(() => document.querySelector("frontdesk-widget").shadowRoot.querySelector(".conn").hidden);
  assert.deepEqual(frames.sockets, [`${server.url.replace("http", "ws")}/v1/ws`]);
  assert.equal(frames.sent[0].type, "hello");
  assert.deepEqual(errors, []);
  await ctx.close();
});

test("ask: the answer streams in, then shows its source; feedback is sent; a reload shows the history", async () => {
  const { ctx, page, errors } = await newPage();
  const frames = recordFrames(page);
  await page.goto(`${server.url}/`);
  await openWidget(page);
  await watchStreaming(page);
  await ask(page, "How can I track my order?");

  const end = frames.received.find((f) => f.type === "answer_end");
  const deltas = frames.received.filter((f) => f.type === "delta");
  assert.ok(deltas.length > 2, `${deltas.length} deltas`);
  assert.equal(end.decision, "answer");
  const streamed = await page.evaluate(() => window.__streamed);
  const partial = streamed.filter((text) => text.length > 0 && text.length < end.text.length);
  assert.ok(partial.length >= 2, `the DOM showed partial answers while streaming: ${partial.length}`);

  const answer = answers(page).last();
  assert.equal((await answer.locator(".body").textContent()).trim(), end.text.replace(/\s+/g, " ").trim());
  const source = answer.locator(".sources a");
  assert.equal(await source.textContent(), end.sources[0].title);
  assert.equal(await source.getAttribute("href"), end.sources[0].url);
  assert.equal(await source.getAttribute("rel"), "noopener noreferrer nofollow");
  await page.screenshot({ path: screenshotPath("02-answer-with-source-desktop") });

  await answer.locator("button.up").click();
  await page.waitForFunction(() => true);
  assert.equal(await answer.locator("button.up").getAttribute("aria-pressed"), "true");
  await page.waitForTimeout(100);
  assert.deepEqual(frames.sent.at(-1), { type: "feedback", answer_id: end.answer_id, helpful: true });
  assert.equal(frames.received.filter((f) => f.type === "error").length, 0);

  // Reload: the conversation (and the open panel) come back with their history.
  const reloadRequests = [];
  page.on("request", (r) => reloadRequests.push(new URL(r.url()).pathname));
  await page.reload();
  await page.locator(".msg.visitor").first().waitFor();
  await answers(page).first().waitFor();
  assert.ok(reloadRequests.filter((p) => p === "/widget.js").length === 2, "launcher and chat load at once for a kept conversation");
  assert.deepEqual(
    await page.locator(".msg:not(.greeting) .body").allTextContents(),
    ["How can I track my order?", end.text.replace(/\s+/g, " ").trim()].map((t) => t),
  );
  assert.equal(await answers(page).first().locator(".sources a").textContent(), end.sources[0].title);
  const hello = frames.sent.filter((f) => f.type === "hello").at(-1);
  assert.equal(hello.conversation_id, end && frames.received.find((f) => f.type === "welcome").conversation_id);
  assert.equal(hello.last_event_id, undefined, "a page load asks for the whole history");
  await page.screenshot({ path: screenshotPath("03-history-after-reload") });
  assert.deepEqual(errors, []);
  await ctx.close();
});

test("talk to a person: from the header, or from an answer that offers one; the handoff is shown", async () => {
  const { ctx, page, errors } = await newPage();
  const frames = recordFrames(page);
  await page.goto(`${server.url}/`);
  await openWidget(page);
  await page.locator(".head .human").click();
  await page.locator(".msg.system").waitFor();
  const handoff = frames.received.find((f) => f.type === "handoff");
  // No inbox agent is online yet: recorded, in line, and the visitor is asked for an email.
  assert.equal(handoff.status, "offline");
  assert.deepEqual(frames.sent.at(-1), { type: "request_human" });
  assert.equal(await page.locator(".msg.system .body").textContent(), handoff.message);
  // The default routing sends it to the support team; the state line names it.
  assert.equal(handoff.team, "support team");
  assert.equal(await page.locator(".state").textContent(), `Our support team will reply as soon as someone is back. You’re number ${handoff.queue_position} in the queue.`);
  assert.equal(await page.locator(".head .human").isHidden(), true, "no second request while one is pending");
  await page.locator("#fd-email").fill("ana@example.com");
  await page.screenshot({ path: screenshotPath("04-handoff-requested") });
  await page.locator("#fd-email").press("Enter");
  await page.locator(".notice", { hasText: "Thanks! We’ll reply to ana@example.com." }).waitFor();
  assert.deepEqual(frames.sent.at(-1), { type: "contact", email: "ana@example.com" });
  await ctx.close();

  // An answer the assistant is unsure of offers a person (decision "handoff").
  const second = await newPage();
  const frames2 = recordFrames(second.page);
  await second.page.goto(`${server.url}/`);
  await openWidget(second.page);
  await ask(second.page, "qwzx blorfing zyxxy");
  const unsure = frames2.received.find((f) => f.type === "answer_end");
  assert.equal(unsure.decision, "handoff");
  const offer = answers(second.page).last().locator("button.human.inline");
  assert.equal(await offer.textContent(), "Talk to a person");
  await second.page.screenshot({ path: screenshotPath("05-answer-offers-a-person") });
  await offer.click();
  await second.page.locator(".msg.system").waitFor();
  assert.equal(await offer.isHidden(), true);
  assert.equal(frames2.received.filter((f) => f.type === "handoff").length, 1);
  assert.deepEqual([...errors, ...second.errors], []);
  await second.ctx.close();
});

test("a cut connection comes back with last_event_id and shows what was missed exactly once", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
  // Tab A's socket goes through a route the test can cut; tab B shares its localStorage.
  const a = await newPage({ context: ctx });
  let blocked = false;
  let current = null;
  const helloFrames = [];
  await a.page.routeWebSocket(/\/v1\/ws$/, (ws) => {
    if (blocked) {
      ws.close({ code: 4001, reason: "test: network down" });
      return;
    }
    const upstream = ws.connectToServer();
    ws.onMessage((message) => {
      const frame = JSON.parse(message);
      if (frame.type === "hello") helloFrames.push(frame);
      upstream.send(message);
    });
    upstream.onMessage((message) => ws.send(message));
    ws.onClose(() => upstream.close());
    upstream.onClose(() => ws.close());
    current = { ws, upstream };
  });
  await a.page.goto(`${server.url}/`);
  await openWidget(a.page);
  await ask(a.page, "How do I reset my password?");

  const b = await newPage({ context: ctx });
  await b.page.goto(`${server.url}/`);
  await answers(b.page).first().waitFor(); // the panel was open in tab A: it opens here too

  // Cut tab A off; it keeps retrying (with backoff) while the route refuses.
  blocked = true;
  await current.ws.close({ code: 4001, reason: "test: network down" });
  await a.page.locator(".conn").filter({ hasText: "Reconnecting" }).waitFor();
  await a.page.screenshot({ path: screenshotPath("06-connection-lost") });

  // Meanwhile the conversation goes on in tab B.
  await ask(b.page, "Do you ship internationally?");
  const missed = (await answers(b.page).last().locator(".body").textContent()).trim();

  // Back online: tab A reconnects with last_event_id and gets the missed events once.
  blocked = false;
  await a.page.locator(".conn button").click();
  await a.page.locator(".msg.visitor", { hasText: "Do you ship internationally?" }).waitFor();
  await a.page.waitForFunction(() => document.querySelector("frontdesk-widget").shadowRoot.querySelector(".conn").hidden);
  const reconnect = helloFrames.at(-1);
  assert.equal(reconnect.last_event_id, 2, "reconnects from the last event it saw");
  assert.equal(helloFrames[0].last_event_id, undefined);

  // The server replays events 3 and 4; deliver them again to check the widget drops repeats.
  const replayed = { type: "answer_end", answer_id: "00000000-0000-4000-8000-000000000000", event_id: 4, text: "a repeat", sources: [], confidence: 1, decision: "answer" };
  current.ws.send(JSON.stringify(replayed));
  await a.page.waitForTimeout(300);
  const texts = await a.page.locator(".msg:not(.greeting) .body").allTextContents();
  assert.deepEqual(texts.map((t) => t.trim()), [
    "How do I reset my password?",
    texts[1].trim(),
    "Do you ship internationally?",
    missed,
  ]);
  assert.equal(texts.filter((t) => t.includes("a repeat")).length, 0);
  await a.page.screenshot({ path: screenshotPath("07-missed-events-after-reconnect") });
  assert.deepEqual([...a.errors, ...b.errors], []);
  await ctx.close();
});

/** The one-time inbox password `serve` logs when no agents are configured. */
function adminPassword() {
  const m = /sign in at \/inbox as \\?"admin\\?" with the one-time password ([0-9a-f]{32})/.exec(server.logs());
  assert.ok(m, `the server logs the admin password:\n${server.logs()}`);
  return m[1];
}

test("an agent answers from the inbox page: the visitor sees it live, and a reply sent while the connection is cut arrives once after it comes back", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
  const visitor = await newPage({ context: ctx });
  let blocked = false;
  let current = null;
  await visitor.page.routeWebSocket(/\/v1\/ws$/, (ws) => {
    if (blocked) {
      ws.close({ code: 4001, reason: "test: network down" });
      return;
    }
    const upstream = ws.connectToServer();
    ws.onMessage((message) => upstream.send(message));
    upstream.onMessage((message) => ws.send(message));
    ws.onClose(() => upstream.close());
    upstream.onClose(() => ws.close());
    current = { ws, upstream };
  });
  await visitor.page.goto(`${server.url}/`);
  await openWidget(visitor.page);
  await ask(visitor.page, "My lamp keeps disconnecting from the wifi");
  await visitor.page.locator(".head .human").click();
  await visitor.page.locator(".msg.system").waitFor();

  // The agent signs in on the inbox page (another browser context: another person).
  const agentCtx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
  const agent = await newPage({ context: agentCtx });
  await agent.page.goto(`${server.url}/inbox`);
  await agent.page.getByLabel(/agent/i).fill("admin");
  await agent.page.getByLabel(/password/i).fill(adminPassword());
  await agent.page.getByRole("button", { name: /sign in/i }).click();
  const item = agent.page.locator("button", { hasText: "My lamp keeps disconnecting from the wifi" }).first();
  await item.click();
  await agent.page.locator("text=My lamp keeps disconnecting from the wifi").last().waitFor();
  await agent.page.getByLabel(/^reply/i).fill("Hi, I'm from support. Is the lamp within 10 m of the router?");
  await agent.page.getByRole("button", { name: /^send/i }).click();
  await agent.page.screenshot({ path: screenshotPath("20-inbox-agent-replied") });

  // The visitor sees the agent join and reply, live.
  const live = visitor.page.locator(".msg.agent", { hasText: "Is the lamp within 10 m of the router?" });
  await live.waitFor();
  await visitor.page.screenshot({ path: screenshotPath("21-agent-reply-in-widget") });

  // The visitor's connection is cut; the agent replies again meanwhile.
  blocked = true;
  await current.ws.close({ code: 4001, reason: "test: network down" });
  await visitor.page.locator(".conn").filter({ hasText: "Reconnecting" }).waitFor();
  await agent.page.getByLabel(/^reply/i).fill("If it is, please restart the router and tell me what happens.");
  await agent.page.getByRole("button", { name: /^send/i }).click();
  await agent.page.locator("text=please restart the router").last().waitFor();

  // Back online: the missed reply arrives, exactly once.
  blocked = false;
  await visitor.page.locator(".conn button").click();
  const missed = visitor.page.locator(".msg.agent", { hasText: "please restart the router" });
  await missed.waitFor();
  await visitor.page.waitForTimeout(300);
  assert.equal(await missed.count(), 1, "the missed reply is shown once");
  assert.equal(await live.count(), 1, "the live reply is not repeated");
  await visitor.page.screenshot({ path: screenshotPath("22-missed-agent-reply-after-reconnect") });

  // A reload shows the history, each agent reply under the agent's name.
  await visitor.page.reload();
  await visitor.page.locator(".msg.agent", { hasText: "please restart the router" }).waitFor();
  assert.deepEqual(await visitor.page.locator(".msg.agent .who").allTextContents(), ["Support agent", "Support agent"]);

  // The agent closes the conversation: the visitor is asked for a rating.
  agent.page.on("dialog", (dialog) => dialog.accept());
  await agent.page.getByRole("button", { name: /close conversation/i }).click();
  await visitor.page.locator("#fd-csat").waitFor();
  await visitor.page.screenshot({ path: screenshotPath("23-csat-after-the-agent-closed") });
  assert.deepEqual([...visitor.errors, ...agent.errors], []);
  await agentCtx.close();
  await ctx.close();
});

test("offline: the visitor is told, and the widget reconnects when the network is back", async () => {
  const { ctx, page } = await newPage();
  await page.goto(`${server.url}/`);
  await openWidget(page);
  await ask(page, "What are your shipping times?");
  await ctx.setOffline(true);
  await page.locator(".conn", { hasText: "You’re offline" }).waitFor();
  await page.screenshot({ path: screenshotPath("08-offline") });
  await ctx.setOffline(false);
  await page.waitForFunction(() => document.querySelector("frontdesk-widget").shadowRoot.querySelector(".conn").hidden);
  await ask(page, "How do I change my email?");
  assert.equal(await answers(page).count(), 2);
  await ctx.close();
});

test("rate limits and a server going away are shown, never silent", async () => {
  const limited = await startServer({ FRONTDESK__WS__MESSAGE_BURST: "1", FRONTDESK__WS__MESSAGES_PER_MINUTE: "1" });
  try {
    const { ctx, page } = await newPage();
    const frames = recordFrames(page);
    await page.goto(`${limited.url}/`);
    await openWidget(page);
    await ask(page, "How do I reset my password?");
    await page.locator("#fd-input").fill("And how do I change my email?");
    await page.keyboard.press("Enter");
    const note = page.locator(".msg.visitor .meta", { hasText: "sending messages quickly" });
    await note.waitFor();
    const error = frames.received.find((f) => f.type === "error");
    assert.equal(error.code, "rate_limited");
    assert.ok(error.retry_after_ms > 0);
    assert.match(await note.textContent(), /We’ll send this in \d+ s\./);
    await page.screenshot({ path: screenshotPath("09-rate-limited") });

    await limited.stop();
    await page.locator(".conn", { hasText: "Connection lost" }).waitFor();
    assert.equal(await page.locator(".conn button").textContent(), "Retry now");
    await page.screenshot({ path: screenshotPath("10-server-gone") });
    await ctx.close();
  } finally {
    await limited.stop();
  }
});

test("keyboard only: open, ask, move through the answer, close with Escape", async () => {
  const { ctx, page } = await newPage();
  await page.goto(`${server.url}/`);
  await page.locator("frontdesk-widget .launcher").waitFor();
  const focused = () =>
    page.evaluate(() => {
      const el = document.querySelector("frontdesk-widget").shadowRoot.activeElement;
      return el ? el.id || el.className || el.tagName : null;
    });
  // Tab until the launcher has focus.
  for (let i = 0; i < 10 && (await focused()) !== "launcher"; i++) await page.keyboard.press("Tab");
  assert.equal(await focused(), "launcher");
  assert.equal(await page.locator(".launcher").getAttribute("aria-expanded"), "false");
  await page.keyboard.press("Enter");
  await page.locator("#fd-input").waitFor();
  assert.equal(await focused(), "fd-input", "opening moves focus to the message box");
  assert.equal(await page.locator(".launcher").getAttribute("aria-expanded"), "true");
  await page.keyboard.type("How do I reset my password?");
  await page.keyboard.press("Enter");
  await answers(page).first().locator(".sources a").waitFor();
  // Shift+Tab from the message box reaches the answer's controls.
  const seen = [];
  for (let i = 0; i < 6; i++) {
    await page.keyboard.press("Shift+Tab");
    seen.push(await focused());
  }
  assert.ok(seen.includes("down") && seen.includes("up"), `feedback buttons are reachable: ${seen}`);
  await page.keyboard.press("Escape");
  assert.equal(await page.locator("#fd-panel").isHidden(), true);
  assert.equal(await focused(), "launcher", "closing gives focus back to the launcher");
  // The log is a live region; the streamed answer is marked busy until complete.
  assert.equal(await page.locator(".log").getAttribute("aria-live"), "polite");
  assert.equal(await page.locator(".log").getAttribute("role"), "log");
  await ctx.close();
});

test("360 px wide: the panel fills the screen, nothing overflows", async () => {
  const { ctx, page } = await newPage({ viewport: { width: 360, height: 740 } });
  await page.goto(`${server.url}/`);
  await page.screenshot({ path: screenshotPath("11-mobile-360-closed") });
  await openWidget(page);
  await ask(page, "How can I track my order?");
  const box = await page.locator("#fd-panel").boundingBox();
  assert.deepEqual([box.x, box.y, box.width, box.height], [0, 0, 360, 740]);
  const overflow = await page.evaluate(() => {
    const root = document.querySelector("frontdesk-widget").shadowRoot;
    return [...root.querySelectorAll(".panel *")].filter((el) => el.getBoundingClientRect().right > 360.5).map((el) => el.className || el.tagName);
  });
  assert.deepEqual(overflow, []);
  await page.screenshot({ path: screenshotPath("12-mobile-360-answer") });
  await ctx.close();
});

test("the page's language picks the widget's; hostile page CSS does not reach it", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
  const page = await ctx.newPage();
  // A host page on the server's origin (so the socket is allowed), in French, with aggressive
  // CSS: written over a page of the server (its 404) rather than fulfilled by a route, which
  // Chromium would treat as a public page reaching into the local network.
  await page.goto(`${server.url}/host-page`);
  await page.setContent(`<!doctype html><html lang="fr"><head><meta charset="utf-8"><style>
        * { font-family: "Comic Sans MS", cursive !important; color: red !important; background: yellow !important; font-size: 30px !important; }
        div, button, textarea { display: none !important; padding: 50px !important; }
        </style></head><body><h1>Boutique</h1>
        <script src="/widget.js" data-site-key="${server.siteKey}" data-color="#0f766e" async></script></body></html>`);
  await page.locator("frontdesk-widget .launcher").waitFor();
  assert.equal(await page.locator(".launcher").getAttribute("aria-label"), "Ouvrir le chat");
  await page.locator(".launcher").click();
  await page.locator("#fd-input").waitFor();
  assert.equal(await page.locator("#fd-input").getAttribute("placeholder"), "Écrivez votre question…");
  assert.equal(await page.locator(".head .human").textContent(), "Parler à une personne");
  const styles = await page.evaluate(() => {
    const root = document.querySelector("frontdesk-widget").shadowRoot;
    const head = getComputedStyle(root.querySelector(".head"));
    const body = getComputedStyle(root.querySelector(".greeting .body"));
    return { headBg: head.backgroundColor, headColor: head.color, fontSize: body.fontSize, color: body.color };
  });
  assert.deepEqual(styles, { headBg: "rgb(15, 118, 110)", headColor: "rgb(255, 255, 255)", fontSize: "15px", color: "rgb(31, 35, 40)" });
  await ask(page, "Comment suivre ma commande ?");
  assert.equal(await page.locator(".msg.visitor .meta").isHidden(), true, "acknowledged");
  assert.equal(await answers(page).count(), 1, "answered over the socket");
  await page.screenshot({ path: screenshotPath("13-french-hostile-host-css") });
  await ctx.close();
});

test("hostile text and links from the knowledge base render as plain text and safe links", async () => {
  const kb = mkdtempSync(join(tmpdir(), "frontdesk-hostile-kb-"));
  mkdirSync(join(kb, "policies"));
  writeFileSync(
    join(kb, "policies/zebracorn.md"),
    [
      "---",
      'title: "Zebracorn <img src=x onerror=window.__pwned=1> policy"',
      'slug: "javascript:window.__pwned=2"',
      "---",
      "",
      "The zebracorn warranty covers <img src=x onerror=window.__pwned=3> every zebracorn lamp for two years.",
      "Zebracorn owners can <script>window.__pwned=4</script> claim the zebracorn warranty online.",
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(kb, "zebracorn-notes.txt"),
    "Zebracorn warranty notes: [claim here](javascript:window.__pwned=5) <b onmouseover=window.__pwned=6>zebracorn</b> ![x](javascript:window.__pwned=7)\n",
  );
  const hostile = await startServer({ FRONTDESK__KB__PATH: kb });
  try {
    const { ctx, page, errors } = await newPage();
    const frames = recordFrames(page);
    await page.goto(`${hostile.url}/`);
    await openWidget(page);
    await ask(page, "What does the zebracorn warranty cover?");
    const end = frames.received.find((f) => f.type === "answer_end");
    const payload = JSON.stringify(end);
    assert.ok(/onerror|javascript:|<script>|onmouseover/.test(payload), `the server passed hostile text through: ${payload}`);
    const answer = answers(page).last();
    await answer.locator(".body").hover();
    const report = await page.evaluate(() => {
      const root = document.querySelector("frontdesk-widget").shadowRoot;
      const log = root.querySelector(".log");
      return {
        pwned: window.__pwned,
        tags: [...new Set([...log.querySelectorAll("*")].map((el) => el.tagName))],
        hrefs: [...log.querySelectorAll("a")].map((a) => a.getAttribute("href")),
        handlers: [...log.querySelectorAll("*")].flatMap((el) => [...el.attributes].map((a) => a.name)).filter((n) => n.startsWith("on")),
      };
    });
    assert.equal(report.pwned, undefined);
    assert.deepEqual(report.handlers, []);
    for (const tag of ["IMG", "SCRIPT", "IFRAME", "SVG", "B"]) assert.ok(!report.tags.includes(tag), `${tag} in the log`);
    for (const href of report.hrefs) assert.match(href, /^(https?:|\/)/, href);
    await page.screenshot({ path: screenshotPath("14-hostile-kb-rendered-as-text") });
    assert.deepEqual(errors, []);
    await ctx.close();
  } finally {
    await hostile.stop();
  }
});

/**
 * Frames the current server cannot send yet (no inbox, no close, no offline team) come from a
 * scripted socket: the page and the widget are the real ones, served by the real server.
 */
test("scripted socket: agent replies, queue position, the offline email form and CSAT after close", async () => {
  const { ctx, page, errors } = await newPage();
  const sent = [];
  let socket;
  await page.routeWebSocket(/\/v1\/ws$/, (ws) => {
    socket = ws;
    ws.onMessage((message) => {
      const frame = JSON.parse(message);
      sent.push(frame);
      if (frame.type === "hello") {
        ws.send(JSON.stringify({ type: "welcome", conversation_id: "c1", visitor_id: "v1", resume_token: "r1", status: "bot", last_event_id: 0, history: [] }));
      } else if (frame.type === "message") {
        ws.send(JSON.stringify({ type: "ack", client_message_id: frame.client_message_id, message_id: "m1", event_id: 1, duplicate: false }));
      }
    });
  });
  await page.goto(`${server.url}/`);
  await openWidget(page);
  await page.locator("#fd-input").fill("I need help with an invoice");
  await page.keyboard.press("Enter");
  await page.locator(".msg.visitor .meta").waitFor({ state: "hidden" });
  const send = (frame) => socket.send(JSON.stringify(frame));
  send({ type: "handoff", event_id: 2, status: "pending", team: "billing team", message: "I'm connecting you with our billing team now.", queue_position: 3 });
  await page.locator(".state", { hasText: "You’re number 3 in the queue." }).waitFor();
  assert.equal(await page.locator(".state").textContent(), "Connecting you with our billing team… You’re number 3 in the queue.");
  send({ type: "typing", actor: "agent", is_typing: true });
  await page.locator(".typing .sr", { hasText: "Someone from our team is typing…" }).waitFor();
  send({
    type: "agent_message",
    event_id: 3,
    message_id: "m3",
    agent_name: "Sam <img src=x onerror=window.__pwned=1>",
    text: "Hi! I've **refunded** the duplicate charge. <script>window.__pwned=2</script> [Invoice](javascript:window.__pwned=3) — see [billing](https://example.com/billing).",
  });
  send({ type: "agent_message", event_id: 3, message_id: "m3", agent_name: "Sam", text: "a repeat" });
  await page.locator(".msg.agent").waitFor();
  assert.equal(await page.locator(".msg.agent").count(), 1);
  assert.equal(await page.locator(".msg.agent .who").textContent(), "Sam <img src=x onerror=window.__pwned=1>");
  assert.equal(await page.locator(".msg.agent strong").textContent(), "refunded");
  assert.deepEqual(await page.locator(".msg.agent a").evaluateAll((as) => as.map((a) => a.getAttribute("href"))), ["https://example.com/billing"]);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(await page.locator(".typing").isHidden(), true);
  await page.screenshot({ path: screenshotPath("15-scripted-agent-reply") });

  // Closed panel: a new agent message raises the unread badge.
  await page.locator(".head .x").click();
  send({ type: "agent_message", event_id: 4, message_id: "m4", agent_name: "Sam", text: "Anything else?" });
  await page.locator(".badge", { hasText: "1" }).waitFor();
  assert.equal(await page.locator(".launcher").getAttribute("aria-label"), "Open chat, 1 unread");
  await page.screenshot({ path: screenshotPath("16-scripted-unread-badge") });
  await page.locator(".launcher").click();
  assert.equal(await page.locator(".badge").isHidden(), true);

  // Nobody available: the email form, validated before it is sent.
  send({ type: "handoff", event_id: 5, status: "offline", message: "Nobody is available right now." });
  await page.locator("#fd-email").waitFor();
  await page.locator("#fd-email").fill("not an email");
  await page.locator("#fd-email").press("Enter");
  await page.locator(".card [role=alert]", { hasText: "valid email" }).waitFor();
  await page.locator("#fd-email").fill("ada@example.com");
  await page.locator("#fd-email").press("Enter");
  await page.locator(".notice", { hasText: "We’ll reply to ada@example.com" }).waitFor();
  assert.deepEqual(sent.at(-1), { type: "contact", email: "ada@example.com" });

  // Closed with CSAT.
  send({ type: "conversation_closed", event_id: 6, csat_requested: true });
  await page.locator(".stars").waitFor();
  assert.equal(await page.locator("#fd-input").isDisabled(), true);
  await page.locator(".star").nth(3).click();
  await page.locator("#fd-csat-comment").fill("Quick and clear");
  await page.screenshot({ path: screenshotPath("17-scripted-csat") });
  await page.locator(".card button[type=submit]").click();
  await page.locator(".notice", { hasText: "Thanks for rating us!" }).waitFor();
  assert.deepEqual(sent.at(-1), { type: "csat", rating: 4, comment: "Quick and clear" });
  assert.deepEqual(errors, []);
  await ctx.close();
});
