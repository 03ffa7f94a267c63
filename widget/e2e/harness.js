// What the end-to-end tests share: the real server (`frontdesk serve` on a free port with a
// temporary data directory) and Debian's Chromium driven by playwright-core.
//
// The binary is $CARGO_TARGET_DIR/debug/frontdesk (build it with `cargo build -p frontdesk`);
// FRONTDESK_BIN overrides the path, CHROMIUM_PATH the browser (default /usr/bin/chromium).

import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, existsSync } from "node:fs";
import { tmpdir, homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

/** Where screenshots go: <repository>/test-output/widget (gitignored). */
export const OUTPUT_DIR = fileURLToPath(new URL("../../test-output/widget/", import.meta.url));

export function frontdeskBinary() {
  if (process.env.FRONTDESK_BIN) return process.env.FRONTDESK_BIN;
  const target = process.env.CARGO_TARGET_DIR || join(homedir(), ".cache/frontdesk/target");
  return join(target, "debug/frontdesk");
}

/**
 * Starts `frontdesk serve` on a free port. `env`: extra FRONTDESK__… settings.
 * @returns {Promise<{url: string, siteKey: string, stop: () => Promise<void>, logs: () => string}>}
 */
export async function startServer(env = {}) {
  const binary = frontdeskBinary();
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: run \`cargo build -p frontdesk\` first (or set FRONTDESK_BIN)`);
  }
  const dataDir = mkdtempSync(join(tmpdir(), "frontdesk-widget-e2e-"));
  const child = spawn(binary, ["serve"], {
    env: {
      ...process.env,
      RUST_LOG: "warn",
      FRONTDESK__SERVER__PORT: "0",
      FRONTDESK__KB__DATA_DIR: join(dataDir, "kb"),
      FRONTDESK__EMBEDDER__KIND: "none",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const [, url, siteKey] = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within 60 s:\n${output}`)), 60_000);
    const check = () => {
      const m = /Frontdesk is ready: (http:\/\/[^\s/]+)\/[\s\S]*Demo site key: (\S+)\n/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout.on("data", check);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code}:\n${output}`));
    });
  });
  child.removeAllListeners("exit");
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return {
    url,
    siteKey,
    logs: () => output,
    /** Stops the server (SIGTERM: graceful shutdown) and removes its data; idempotent. */
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
  });
}

export function screenshotPath(name) {
  mkdirSync(OUTPUT_DIR, { recursive: true });
  return join(OUTPUT_DIR, `${name}.png`);
}
