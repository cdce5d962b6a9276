// The send loop without page reloads. The page works as a plain form; this script takes over:
// it keeps the next few contacts of the volunteer's batch (queue.json), sends with one press of
// Enter or one click through send.json, and shows the next contact from the answer.
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

  function show(state) {
    ready = state.ready;
    text("ready-count", plural(state.ready_count, "ready to text", "ready to text"));
    text("held-count", String(state.held));
    showLater(state.later);
    const contact = ready[0];
    if (!contact) {
      card.hidden = true;
      empty.hidden = false;
      if (state.held === 0) {
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

  async function send() {
    const contact = ready[0];
    if (inFlight || !contact) return;
    inFlight = true;
    button.setAttribute("aria-disabled", "true");
    button.classList.add("busy");
    try {
      const state = await request(loop.dataset.sendUrl, {
        method: "POST",
        body: JSON.stringify({ contact_id: contact.contact_id,
                               idempotency_key: contact.idempotency_key }),
      });
      if (state.error) {
        status.textContent = state.error;
      } else {
        sent += 1;
        status.textContent = "Sent to " + (contact.first_name || "this voter") + ". " +
          plural(sent, "text", "texts") + " sent this session.";
      }
      show(state);
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

  request(loop.dataset.queueUrl, { method: "GET" })
    .then((state) => { if (!inFlight && sent === 0) show(state); })
    .catch(() => { /* keep the server-rendered form: it works without this script */ });
})();
