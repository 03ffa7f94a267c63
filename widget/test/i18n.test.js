import { test } from "node:test";
import assert from "node:assert/strict";
import { pickLanguage, LANGUAGES, LAUNCHER, format, translator } from "../src/i18n.js";
import en from "../src/strings/en.js";
import es from "../src/strings/es.js";
import fr from "../src/strings/fr.js";
import de from "../src/strings/de.js";

const tables = { en, es, fr, de };

test("the language is the first supported one among the candidates", () => {
  assert.equal(pickLanguage(["fr-CA", "en"]), "fr");
  assert.equal(pickLanguage([undefined, "", "pt-BR", "de-AT"]), "de");
  assert.equal(pickLanguage(["ES"]), "es");
  assert.equal(pickLanguage(["es_MX"]), "es");
  assert.equal(pickLanguage(["ja", "zh"]), "en");
  assert.equal(pickLanguage([]), "en");
});

test("every language has every key, with the same placeholders, and no markup", () => {
  assert.deepEqual(Object.keys(tables), LANGUAGES);
  const keys = Object.keys(en).sort();
  for (const [language, table] of Object.entries(tables)) {
    assert.deepEqual(Object.keys(table).sort(), keys, language);
    for (const key of keys) {
      const placeholders = (s) => (s.match(/\{\w+\}/g) || []).sort();
      assert.deepEqual(placeholders(table[key]), placeholders(en[key]), `${language}.${key}`);
      assert.ok(table[key].trim(), `${language}.${key} is empty`);
      assert.ok(!/[<>]/.test(table[key]), `${language}.${key} has markup`);
    }
    assert.deepEqual(Object.keys(LAUNCHER[language]).sort(), Object.keys(LAUNCHER.en).sort());
  }
});

test("the languages really differ from English", () => {
  // Words that are spelt the same in that language.
  const cognates = { fr: ["assistant"], de: [] , es: [] };
  for (const language of ["es", "fr", "de"]) {
    const same = Object.keys(en).filter(
      (k) => tables[language][k] === en[k] && en[k].length > 8 && !cognates[language].includes(k),
    );
    assert.deepEqual(same, [], `${language} copies English for ${same}`);
  }
});

test("translations fill placeholders and honour site overrides", () => {
  const t = translator(fr);
  assert.equal(t("handoffPending", { team: "l’équipe facturation" }), "Nous vous mettons en relation avec l’équipe facturation…");
  assert.equal(translator(de)("queue", { n: 3 }), "Sie sind Nummer 3 in der Warteschlange.");
  assert.equal(translator(es)("reconnecting", { s: 4 }), "Se perdió la conexión. Reconectando en 4 s…");
  assert.equal(translator(en, { greeting: "Welcome to Lumen!" })("greeting"), "Welcome to Lumen!");
  assert.equal(translator(en)("no-such-key"), "no-such-key");
  assert.equal(format("{a} and {b}", { a: 1 }), "1 and {b}");
});
