// The widget's settings: the script tag's data attributes, overridden by
// `window.FrontdeskSettings`. Pure functions (no DOM), unit-tested in test/config.test.js.

import { pickLanguage } from "./i18n.js";

/** Default primary colour: white text on it has a contrast ratio of 6.7:1 (WCAG AA). */
export const DEFAULT_PRIMARY = "#1d4ed8";

/**
 * Parses a CSS hex colour (#rgb or #rrggbb) into [r, g, b] (0..255), or null.
 * @param {unknown} value
 * @returns {number[]|null}
 */
export function parseHexColor(value) {
  if (typeof value !== "string") return null;
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(value.trim());
  if (!m) return null;
  const hex = m[1].length === 3 ? m[1].replace(/./g, (c) => c + c) : m[1];
  return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

/**
 * WCAG 2.x relative luminance of an sRGB colour.
 * Source: https://www.w3.org/TR/WCAG21/#dfn-relative-luminance
 * @param {number[]} rgb [r, g, b], 0..255
 */
export function luminance(rgb) {
  const [r, g, b] = rgb.map((c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/**
 * WCAG contrast ratio (1..21) of two colours.
 * Source: https://www.w3.org/TR/WCAG21/#dfn-contrast-ratio
 */
export function contrastRatio(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/**
 * The text colour for a background: white or black, whichever contrasts more (one of them
 * always reaches 4.58:1, above the WCAG AA bar of 4.5:1 for normal text).
 * @param {number[]} rgb
 * @returns {"#ffffff"|"#000000"}
 */
export function textColorOn(rgb) {
  return contrastRatio(rgb, [255, 255, 255]) >= contrastRatio(rgb, [0, 0, 0]) ? "#ffffff" : "#000000";
}

function str(value) {
  return typeof value === "string" && value.trim() ? value.trim() : undefined;
}

/**
 * The identity to send in `hello` (PROTOCOL.md: `{user_id, user_hash}` or `{jwt}`), or undefined.
 * Accepts camelCase or snake_case keys.
 */
export function identityFrom(settings, data) {
  const s = (settings && settings.identity) || {};
  const jwt = str(s.jwt) || str(data.userJwt);
  if (jwt) return { jwt };
  const userId = str(s.userId) || str(s.user_id) || str(data.userId);
  const userHash = str(s.userHash) || str(s.user_hash) || str(data.userHash);
  if (userId && userHash) return { user_id: userId, user_hash: userHash };
  return undefined;
}

/**
 * The widget's configuration.
 * @param {Record<string,string>} data the script tag's `dataset` (data-site-key → siteKey, …)
 * @param {object|undefined} settings `window.FrontdeskSettings`
 * @param {{pageLang?: string, languages?: string[], scriptSrc?: string, pageUrl?: string}} env
 * @returns {{siteKey?: string, server: string, wsUrl: string, position: "left"|"right",
 *   primary: string, onPrimary: string, language: string, greeting?: string, title?: string,
 *   identity?: object, locale: string}}
 */
export function readConfig(data, settings, env) {
  const s = settings && typeof settings === "object" ? settings : {};
  const d = data || {};
  const colors = s.colors && typeof s.colors === "object" ? s.colors : {};
  const base = str(s.server) || str(d.server) || env.scriptSrc || env.pageUrl;
  let origin;
  try {
    origin = new URL(base, env.pageUrl).origin;
  } catch {
    origin = "";
  }
  const position = (str(s.position) || str(d.position)) === "left" ? "left" : "right";
  const primaryRgb =
    parseHexColor(colors.primary) || parseHexColor(s.color) || parseHexColor(d.color);
  const primary = primaryRgb
    ? `rgb(${primaryRgb.join(",")})`
    : DEFAULT_PRIMARY;
  const language = pickLanguage([
    s.language,
    d.language,
    env.pageLang,
    ...(env.languages || []),
  ]);
  return {
    siteKey: str(s.siteKey) || str(d.siteKey),
    server: origin,
    wsUrl: origin.replace(/^http/, "ws") + "/v1/ws",
    position,
    primary,
    onPrimary: textColorOn(primaryRgb || parseHexColor(DEFAULT_PRIMARY)),
    language,
    greeting: str(s.greeting) || str(d.greeting),
    title: str(s.title) || str(d.title),
    identity: identityFrom(s, d),
    locale: str(s.language) || str(d.language) || (env.languages && env.languages[0]) || language,
  };
}
