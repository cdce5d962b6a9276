// The send loop without page reloads. The page works as a plain form; this script takes over:
// it keeps a queue of the next few contacts of the volunteer's batch, sends with one press of
// Enter or one click through send.json, and shows the next contact at once. Each send's answer
// tops the queue up (the contacts after the last one held), so a send stays cheap; the whole
// state (queue.json: counts, who opens later) is fetched on load and when the queue runs dry.
// One press, one text: presses while a send is in flight, and a held key's repeats, are ignored.
// The server refuses a second send of the same contact anyway.
(() => {
  "use strict";
  const loop = document.getElementById("send-loop");
  const form = document.getElementById("send-form");
  if (!loop || !form) return;
  const button = document.getElementById("send-button");
  const card = document.getElementById("send-card");
  const empty = document.getElementById("send-empty");
  const status = document.getElementById("send-status");
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
  let later = [];
  let inFlight = false;
  let sent = 0;

  function text(id, value) {
    const node = document.getElementById(id);
    if (node) node.textContent = value;
  }

  function plural(count, one, many) {
    return count + " " + (count === 1 ? one : many);
  }

  function yourTime(iso) {
    return new Date(iso).toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  }

  function showLater(later) {
    const section = document.getElementById("later");
    const list = document.getElementById("later-list");
    if (!section || !list) return;
    list.replaceChildren();
    for (const group of later) {
      const item = document.createElement("li");
      const what = document.createElement("span");
      what.textContent = plural(group.count, "person opens", "people open") +
        " at " + group.local_time + " their time";
      const when = document.createElement("time");
      when.className = "muted";
      when.dateTime = group.opens_at;
      when.textContent = "(" + yourTime(group.opens_at) + " yours)";
      item.append(what, " ", when);
      list.append(item);
    }
    section.hidden = later.length === 0;
  }

  // The whole state, from queue.json.
  function load(state) {
    ready = state.ready;
    after = state.after;
    readyCount = state.ready_count;
    held = state.held;
    later = state.later;
    show();
  }

  function show() {
    text("ready-count", plural(readyCount, "ready to text", "ready to text"));
    text("held-count", String(held));
    showLater(later);
    const contact = ready[0];
    if (!contact) {
      card.hidden = true;
      empty.hidden = false;
      if (held === 0) {
        empty.textContent = "Your batch is done. Get another batch, or take a break: thank you!";
      } else {
        empty.textContent = "Everyone left in your batch is outside their texting hours for now.";
      }
      return;
    }
    card.hidden = false;
    empty.hidden = true;
    text("recipient-name", contact.first_name || "this voter");
    text("message-body", contact.body);
    text("segment-count", plural(contact.segments, "segment", "segments"));
    form.elements.namedItem("contact_id").value = String(contact.contact_id);
    form.elements.namedItem("idempotency_key").value = contact.idempotency_key;
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
      ready = ready.filter((queued) => queued.contact_id !== contact.contact_id)
        .concat(answer.next || []);
      after = answer.after;
      if (answer.error) {
        status.textContent = answer.error;
        load(await refresh()); // a refusal is rare: recount from the server
      } else {
        sent += 1;
        readyCount = Math.max(0, readyCount - 1);
        held = Math.max(0, held - 1);
        status.textContent = "Sent to " + (contact.first_name || "this voter") + ". " +
          plural(sent, "text", "texts") + " sent this session.";
        if (ready.length === 0) load(await refresh()); // who is left, and who opens later
        else show();
      }
    } catch (error) {
      status.textContent = "Could not send: check your connection and press Send again.";
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

  refresh()
    .then((state) => { if (!inFlight && sent === 0) load(state); })
    .catch(() => { /* keep the server-rendered form: it works without this script */ });
})();
