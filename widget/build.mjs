// Builds the two bundles the server serves (and the repository commits):
//   dist/widget.min.js  the launcher, served at /widget.js
//   dist/chat-<lang>.min.js  the chat panel in one language (en, es, fr, de), served at
//                       /widget.js?part=chat&lang=<lang> and loaded when the visitor opens the widget
// `node build.mjs` writes them; test/build.test.js checks the committed files are current.

import * as esbuild from "esbuild";
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { LANGUAGES } from "./src/i18n.js";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

async function css(file) {
  const source = await readFile(here(`src/${file}`), "utf8");
  const { code } = await esbuild.transform(source, { loader: "css", minify: true });
  return code.trim();
}

/**
 * Builds both bundles in memory.
 * @returns {Promise<Record<string, string>>} file name in dist/ → contents
 */
export async function build() {
  const common = {
    bundle: true,
    minify: true,
    format: "iife",
    // Browsers from 2020 on (optional catch binding, Unicode property escapes).
    target: "es2019",
    charset: "utf8",
    legalComments: "none",
    // Members named _like_this are internal to one bundle: shorten them.
    mangleProps: /^_/,
    reserveProps: /^__/,
    write: false,
    logLevel: "silent",
  };
  const chatCss = JSON.stringify(await css("chat.css"));
  const files = {};
  for (const language of LANGUAGES) {
    const chat = await esbuild.build({
      ...common,
      entryPoints: [here("src/chat.js")],
      alias: { "fd-strings": here(`src/strings/${language}.js`) },
      define: { __CHAT_CSS__: chatCss },
    });
    files[`chat-${language}.min.js`] = chat.outputFiles[0].text;
  }
  const version = createHash("sha256")
    .update(Object.values(files).join("\n"))
    .digest("hex")
    .slice(0, 12);
  const launcher = await esbuild.build({
    ...common,
    entryPoints: [here("src/launcher.js")],
    define: {
      __LAUNCHER_CSS__: JSON.stringify(await css("launcher.css")),
      __CHAT_VERSION__: JSON.stringify(version),
    },
  });
  return { "widget.min.js": launcher.outputFiles[0].text, ...files };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const files = await build();
  await mkdir(here("dist"), { recursive: true });
  for (const [name, code] of Object.entries(files)) {
    await writeFile(here(`dist/${name}`), code);
    console.log(`dist/${name}: ${Buffer.byteLength(code)} bytes`);
  }
}
