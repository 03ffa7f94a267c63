// The conversation kept across page loads, in localStorage under "frontdesk:<site key>"
// (visitor_id, conversation_id, resume_token, read_event_id, pending messages, open, closed),
// and the recently sent texts under "frontdesk:<site key>:sent" for other tabs.
// Storage can be missing or full (private browsing): the widget then works for this page only.

/**
 * @param {Storage|undefined} storage window.localStorage (may throw on access)
 * @param {string} siteKey
 */
export function createStore(storage, siteKey) {
  const key = `frontdesk:${siteKey}`;
  const read = (k) => {
    try {
      const value = JSON.parse(storage.getItem(k));
      return value && typeof value === "object" ? value : {};
    } catch {
      return {};
    }
  };
  const write = (k, value) => {
    try {
      storage.setItem(k, JSON.stringify(value));
    } catch {
      // Private mode or quota: keep going without persistence.
    }
  };
  return {
    load: () => read(key),
    save: (state) => write(key, state),
    loadSent: () => read(`${key}:sent`),
    saveSent: (sent) => write(`${key}:sent`, sent),
  };
}
