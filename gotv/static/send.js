// The send loop without page reloads. The page works as a plain form; this script takes over:
// it keeps a queue of the next few contacts of the volunteer's batch, sends with one press of
// Enter or one click through send.json, and shows the next contact at once. Each send's answer
// tops the queue up (the contacts after the last one held), so a send stays cheap; the whole
// state (queue.json: counts, who opens later) is fetched on load and when the queue runs dry.
//
// One deliberate press, one text, for a person who was read (what makes this peer to peer):
// a contact must have been on screen for data-min-read-ms (texts.MIN_READ) before Send counts;
// presses sooner, presses while a send is in flight and a held key's repeats are ignored. The
// server refuses a second send of the same contact, and a volunteer's sends closer together
// than texts.MIN_SEND_GAP, anyway.
//
// Replies arrive live (/texting/events): the waiting count and a banner with a way to them,
// announced to screen readers.
(() => {
  "use strict";
  const { say, count, localTime, typing, listen } = window.gotvStrings;
  const loop = document.getElementById("send-loop");
  const form = document.getElementById("send-form");
  if (!loop || !form) return;
  const button = document.getElementById("send-button");
  const card = document.getElementById("send-card");
  const empty = document.getElementById("send-empty");
  const status = document.getElementById("send-status");
  const hint = document.getElementById("send-hint");
  const minReadMs = Number(loop.dataset.minReadMs) || 500;
  // Until queue.json answers, the server-rendered contact is the one to send.
  let ready = card.hidden ? [] : [{
    contact_id: Number(form.elements.namedItem("contact_id").value),
    idempotency_key: form.elements.namedItem("idempotency_key").value,
    first_name: document.getElementById("recipient-name").textContent,
  }];
  const PREFETCH = 5;
  let after = ready.length ? ready[0].contact_id : 0; // the last contact id the queue has seen
  // The counts as the server rendered them, until queue.json answers.
  let readyCount = parseInt(document.getElementById("ready-count")?.textContent || "0", 10) || 0;
  let held = parseInt(document.getElementById("held-count")?.textContent || "0", 10) || 0;
  let later = null; // null: as the server rendered it
  let poolLater = null;
  let newcomer = false;
  let inFlight = false;
  let sent = 0;
  let shownId = null; // the contact on screen, and since when
  let shownAt = 0;
  let readyTimer = 0;

  function text(id, value) {
    const node = document.getElementById(id);
    if (node) node.textContent = value;
  }

  // The contact on screen may be sent once it has been there minReadMs: the button says so.
  function markShown(contactId) {
    if (contactId === shownId) return;
    shownId = contactId;
    shownAt = performance.now();
    button.removeAttribute("data-ready");
    clearTimeout(readyTimer);
    readyTimer = setTimeout(() => {
      button.dataset.ready = "true";
      hint.textContent = "";
    }, minReadMs);
  }

  function showGroups(sectionId, listId, groups) {
    const section = document.getElementById(sectionId);
    const list = document.getElementById(listId);
    if (!section || !list || groups === null) return;
    list.replaceChildren();
    for (const group of groups) {
      const item = document.createElement("li");
      const what = document.createElement("span");
      what.textContent = count("opens_at", group.count, { time: group.local_time });
      const when = document.createElement("time");
      when.className = "muted";
      when.dateTime = group.opens_at;
      when.textContent = say("your_time", { time: localTime(group.opens_at) });
      item.append(what, " ", when);
      list.append(item);
    }
    section.hidden = groups.length === 0;
  }

  // The whole state, from queue.json.
  function load(state) {
    ready = state.ready;
    after = state.after;
    readyCount = state.ready_count;
    held = state.held;
    later = state.later;
    poolLater = state.pool_later;
    newcomer = state.newcomer;
    waiting = new Set(state.waiting_ids);
    showWaiting();
    show();
  }

  function show() {
    text("ready-count", count("ready", readyCount));
    text("held-count", String(held));
    showGroups("later", "later-list", later);
    showGroups("pool-later", "pool-later-list", poolLater);
    const contact = ready[0];
    if (!contact) {
      card.hidden = true;
      empty.hidden = false;
      // A newcomer keeps the welcome the server wrote; the rest is said here.
      if (held > 0) {
        empty.textContent = say("batch_later");
      } else if (sent > 0 || (!newcomer && poolLater !== null && poolLater.length === 0)) {
        empty.textContent = say("batch_done");
      }
      return;
    }
    card.hidden = false;
    empty.hidden = true;
    text("recipient-name", contact.first_name || say("this_voter"));
    if (contact.body !== undefined) {
      text("message-body", contact.body);
      text("segment-count", count("segments", contact.segments));
    }
    form.elements.namedItem("contact_id").value = String(contact.contact_id);
    form.elements.namedItem("idempotency_key").value = contact.idempotency_key;
    markShown(contact.contact_id);
  }

  async function request(url, options) {
    const response = await fetch(url, {
      credentials: "same-origin",
      headers: { "Accept": "application/json", "Content-Type": "application/json",
                 "X-CSRFToken": loop.dataset.csrfToken },
      ...options,
    });
    const body = await response.json().catch(() => null);
    if (!body) throw new Error("status " + response.status);
    return body;
  }

  const refresh = () => request(loop.dataset.queueUrl, { method: "GET" });

  async function send() {
    const contact = ready[0];
    if (inFlight || !contact) return;
    if (contact.contact_id !== shownId || performance.now() - shownAt < minReadMs) {
      hint.textContent = say("read_first"); // too soon to have read it: this press is not a send
      return;
    }
    inFlight = true;
    button.setAttribute("aria-disabled", "true");
    button.classList.add("busy");
    try {
      const answer = await request(loop.dataset.sendUrl, {
        method: "POST",
        body: JSON.stringify({ contact_id: contact.contact_id,
                               idempotency_key: contact.idempotency_key,
                               after: after, want: PREFETCH - ready.length + 1 }),
      });
      const kept = answer.error && answer.keep;
      ready = ready.filter((queued) => kept || queued.contact_id !== contact.contact_id)
        .concat(answer.next || []);
      after = answer.after;
      if (kept) {
        hint.textContent = answer.error; // still theirs to send, once read
      } else if (answer.error) {
        status.textContent = answer.error;
        load(await refresh()); // a refusal is rare: recount from the server
      } else {
        sent += 1;
        readyCount = Math.max(0, readyCount - 1);
        held = Math.max(0, held - 1);
        status.textContent = say("sent_to", { name: contact.first_name || say("this_voter") }) +
          " " + count("sent_count", sent);
        if (ready.length === 0) load(await refresh()); // who is left, and who opens later
        else show();
      }
    } catch (error) {
      status.textContent = say("offline");
    } finally {
      inFlight = false;
      button.removeAttribute("aria-disabled");
      button.classList.remove("busy");
      if (!card.hidden) button.focus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  // A held Enter key repeats; only its first press counts.
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.repeat || inFlight)) event.preventDefault();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "c" && !typing(event) && !event.ctrlKey && !event.metaKey && !event.altKey) {
      document.getElementById("conversations-link")?.click();
    }
  });

  // --- Replies, live ------------------------------------------------------------------------
  const campaignId = loop.dataset.campaignId;
  const announcer = document.getElementById("live-announcer");
  const banner = document.getElementById("replies-banner");
  const bannerLink = document.getElementById("replies-banner-link");
  let waiting = new Set((loop.dataset.waitingIds || "").split(" ").filter(Boolean).map(Number));

  function showWaiting() {
    const badge = document.getElementById("replies-waiting");
    if (badge) {
      badge.textContent = count("waiting_badge", waiting.size);
      badge.hidden = waiting.size === 0;
    }
    text("replies-banner-count", count("waiting_banner", waiting.size));
    if (banner) banner.hidden = waiting.size === 0;
  }

  function onReply(event) {
    if (String(event.campaign_id) !== campaignId) return;
    if (event.needs_reply) waiting.add(event.contact_id); else waiting.delete(event.contact_id);
    showWaiting();
    if (!event.needs_reply) return;
    text("replies-banner-latest", say("new_reply_says", { name: event.name, body: event.body }));
    if (bannerLink) {
      bannerLink.href = bannerLink.dataset.threadUrl.replace(/0$/, String(event.contact_id));
    }
    if (announcer) announcer.textContent = say("new_reply", { name: event.name });
  }

  function onChange(event) {
    for (const id of event.contact_ids) waiting.delete(id);
    showWaiting();
  }

  if (window.EventSource && loop.dataset.eventsUrl) {
    listen(loop, { inbound: onReply, conversation: onChange });
  }

  if (ready.length) markShown(ready[0].contact_id);
  refresh()
    .then((state) => { if (!inFlight && sent === 0) load(state); })
    .catch(() => { /* keep the server-rendered form: it works without this script */ });
})();
