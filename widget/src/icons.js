// Inline SVG icons, built with createElementNS (no markup strings). Decorative: aria-hidden.

export const CHAT_ICON = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z";
export const CLOSE_ICON = "M6 6l12 12M18 6L6 18";
export const SEND_ICON = "M3 20l18-8L3 4v6l12 2-12 2z";

/**
 * An icon: a 24×24 SVG with one path.
 * @param {Document} d
 * @param {string} path the path's `d`
 * @param {string} className
 */
export function svg(d, path, className) {
  const ns = "http://www.w3.org/2000/svg";
  const icon = d.createElementNS(ns, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("aria-hidden", "true");
  icon.setAttribute("focusable", "false");
  icon.setAttribute("class", className);
  const p = d.createElementNS(ns, "path");
  p.setAttribute("d", path);
  icon.appendChild(p);
  return icon;
}
