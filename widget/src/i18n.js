// The widget's languages (English, Spanish, French, German), the choice among them, and the translator.
//
// The launcher bundle carries `LAUNCHER` (a few strings in every language); the chat panel's
// strings live in src/strings/<language>.js and each language gets its own chat bundle, so a
// visitor downloads one language. Placeholders are `{name}`; `t` replaces them with text (never HTML: every
// string ends up in `textContent`).

/** Languages the widget speaks; the first is the fallback. */
export const LANGUAGES = ["en", "es", "fr", "de"];

/**
 * The first supported language among `candidates` (BCP 47 tags such as "fr-CA", in order of
 * preference), or "en".
 * @param {Array<string|undefined|null>} candidates
 * @returns {"en"|"es"|"fr"|"de"}
 */
export function pickLanguage(candidates) {
  for (const tag of candidates) {
    if (typeof tag !== "string") continue;
    const base = tag.trim().toLowerCase().split(/[-_]/)[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return "en";
}

/** Strings the launcher needs before the chat bundle is loaded. */
export const LAUNCHER = {
  en: { open: "Open chat", close: "Close chat", unread: "{n} unread", loadFailed: "Chat unavailable. Select to retry." },
  es: { open: "Abrir chat", close: "Cerrar chat", unread: "{n} sin leer", loadFailed: "Chat no disponible. Selecciona para reintentar." },
  fr: { open: "Ouvrir le chat", close: "Fermer le chat", unread: "{n} non lu(s)", loadFailed: "Chat indisponible. Sélectionnez pour réessayer." },
  de: { open: "Chat öffnen", close: "Chat schließen", unread: "{n} ungelesen", loadFailed: "Chat nicht verfügbar. Erneut versuchen?" },
};

/**
 * Fills `{name}` placeholders of `template` from `params` (missing ones stay as written).
 * @param {string} template
 * @param {Record<string, string|number>} [params]
 * @returns {string}
 */
export function format(template, params) {
  return template.replace(/\{(\w+)\}/g, (whole, name) =>
    params && params[name] !== undefined ? String(params[name]) : whole,
  );
}

/**
 * A translator over one language's table (`src/strings/<language>.js`): `t(key, params)`
 * returns the site's override, else the table's string, else the key itself.
 * @param {Record<string, string>} table
 * @param {Record<string, string>} [overrides] strings the site set (e.g. its own greeting)
 */
export function translator(table, overrides) {
  return (key, params) => {
    const template =
      (overrides && typeof overrides[key] === "string" && overrides[key]) || table[key] || key;
    return format(template, params);
  };
}
