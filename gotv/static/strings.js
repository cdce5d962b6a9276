// What the volunteer's pages' scripts say, in the page's language: the page carries the strings
// as JSON (templates/inbox/_strings.html). say("new_reply", {name: "Ana"}) fills "{name}";
// count("unread", 3) picks the one-or-many form and fills "{n}". Also the page's language for
// dates and times, the "?" keyboard-shortcut overlay every volunteer page shares, and the
// page's live stream (listen).
window.gotvStrings = (() => {
  "use strict";
  const node = document.getElementById("gotv-strings");
  const strings = node ? JSON.parse(node.textContent) : {};
  const lang = document.documentElement.lang || "en";

  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, (whole, key) =>
      key in values ? String(values[key]) : whole);
  }

  function say(key, values = {}) {
    const found = key.split(".").reduce((at, part) => (at ? at[part] : undefined), strings);
    return fill(found === undefined ? key : found, values);
  }

  function count(key, n, values = {}) {
    const forms = strings[key] || { one: "{n}", other: "{n}" };
    return fill(n === 1 ? forms.one : forms.other, { n: n.toLocaleString(lang), ...values });
  }

  // A moment in the volunteer's own time zone: the time today, the date and time otherwise.
  function localTime(iso) {
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) return null;
    const today = new Date().toDateString() === moment.toDateString();
    const options = today ? { hour: "numeric", minute: "2-digit" }
      : { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" };
    return moment.toLocaleString(lang, options);
  }

  // How long since `iso`, short ("12 min", "3 h", "2 d"), in the page's language.
  function since(iso) {
    const minutes = Math.max(0, Math.floor((Date.now() - new Date(iso).getTime()) / 60000));
    const [value, unit] = minutes < 60 ? [minutes, "minute"]
      : minutes < 48 * 60 ? [Math.floor(minutes / 60), "hour"]
      : [Math.floor(minutes / 1440), "day"];
    return new Intl.NumberFormat(lang, { style: "unit", unit, unitDisplay: "short" }).format(value);
  }

  function localizeTimes(root = document) {
    for (const node of root.querySelectorAll("time[datetime]")) {
      const shown = localTime(node.dateTime);
      if (shown) node.textContent = shown;
    }
  }

  // Keys typed into a text field belong to it, not to the page's shortcuts.
  function typing(event) {
    const target = event.target;
    return target instanceof HTMLElement &&
      (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  const dialog = document.getElementById("shortcuts");
  function toggleShortcuts() {
    if (!dialog || !dialog.showModal) return;
    if (dialog.open) dialog.close(); else dialog.showModal();
  }
  document.getElementById("show-shortcuts")?.addEventListener("click", toggleShortcuts);
  document.addEventListener("keydown", (event) => {
    if (event.key === "?" && !typing(event) && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      toggleShortcuts();
    }
  });

  // The page's live stream (/texting/events) on `host`: data-live="connected" once the server
  // listens (it subscribes first). When the volunteer's sessions end (signed out everywhere,
  // suspended) the server sends signed_out and the stream ends; the page goes to sign-in,
  // which brings the volunteer back here (a draft reply is kept in the tab meanwhile).
  function listen(host, handlers) {
    const source = new EventSource(host.dataset.eventsUrl);
    source.addEventListener("open", () => { host.dataset.live = "connected"; });
    for (const [kind, handle] of Object.entries(handlers)) {
      source.addEventListener(kind, (message) => handle(JSON.parse(message.data)));
    }
    source.addEventListener("signed_out", () => {
      source.close();
      delete host.dataset.live;
      const here = location.pathname + location.search;
      location.assign(host.dataset.loginUrl + "?next=" + encodeURIComponent(here));
    });
    return source;
  }

  localizeTimes();
  return { say, count, lang, localTime, since, localizeTimes, typing, listen };
})();
