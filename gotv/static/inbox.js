// Live conversations: new replies, message statuses and changes to a conversation (given to
// another volunteer, closed, opted out) arrive as Server-Sent Events (/texting/events, the
// signed-in volunteer's own only) and are shown in place: a new bubble in an open thread, the
// row's preview, unread and waiting badges in the list, and where the volunteer is looking, why
// a reply can no longer be sent. A polite live region announces each. The browser's
// EventSource reconnects when a stream ends; a signed_out event sends the page to sign-in.
//
// A reply being typed is never lost: it is kept in this tab (sessionStorage, per conversation)
// until the server has taken it, put back in the box when the page comes back, and left in
// place, read-only, when the conversation changes under it.
//
// Keys (the "?" overlay lists them): Ctrl/Cmd+Enter sends the reply; j and k the next and
// previous conversation waiting; 1-9 (Alt+1-9 while typing) put a canned response in the reply;
// r goes to the reply box, Esc leaves it; on the list, j opens the one waiting longest, s goes
// back to sending.
(() => {
  "use strict";
  const { say, count, since, localizeTimes, typing, listen } = window.gotvStrings;
  const thread = document.getElementById("thread");
  const list = document.getElementById("conversation-list");
  const announcer = document.getElementById("live-announcer");

  function announce(message) {
    if (announcer) announcer.textContent = message;
  }

  function plainKey(event) {
    return !event.ctrlKey && !event.metaKey && !event.altKey && !typing(event);
  }

  // --- Copy buttons (the page of a reply that was not sent) ---------------------------------
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      source.select();
      try {
        await navigator.clipboard.writeText(source.value);
      } catch (error) {
        document.execCommand("copy");
      }
      button.textContent = say("copied");
    });
  }

  // --- The thread ---------------------------------------------------------------------------
  const replyForm = document.getElementById("reply-form");
  const reply = document.getElementById("body");
  const draftKey = thread ? "gotv:draft:" + thread.dataset.contactId : null;

  function keepDrafts() {
    const params = new URLSearchParams(location.search);
    const sentFor = params.get("sent");
    if (sentFor) {
      sessionStorage.removeItem("gotv:draft:" + sentFor); // the server took it
      params.delete("sent");
      const query = params.toString();
      history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
    }
    if (!reply) return;
    const draft = sessionStorage.getItem(draftKey);
    if (draft && !reply.value) {
      reply.value = draft;
      announce(say("draft_restored"));
    }
    reply.addEventListener("input", () => {
      if (reply.value) sessionStorage.setItem(draftKey, reply.value);
      else sessionStorage.removeItem(draftKey);
    });
    const thenNext = document.getElementById("then-next");
    if (thenNext) {
      thenNext.checked = localStorage.getItem("gotv:then-next") === "yes";
      thenNext.addEventListener("change", () =>
        localStorage.setItem("gotv:then-next", thenNext.checked ? "yes" : "no"));
    }
    // The reply goes with fetch and the page stays (no reload of the thread): the answer
    // gives the next reply's key, or the conversation to go on to.
    let sending = false;
    replyForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (sending || reply.readOnly || !reply.value.trim()) return; // one press, one reply
      sending = true;
      const body = new FormData(replyForm);
      try {
        const response = await fetch(replyForm.action, {
          method: "POST", body, credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
        const answer = await response.json();
        if (!response.ok) {
          notify(answer.error);
          return;
        }
        sessionStorage.removeItem(draftKey);
        if (answer.next_url) {
          location.assign(answer.next_url);
          return;
        }
        if (answer.sent) thread.append(sentBubble(answer.sent));
        replyForm.elements.namedItem("idempotency_key").value = answer.idempotency_key;
        reply.value = "";
        announce(say("reply_sent"));
        reply.focus();
      } catch (error) {
        replyForm.submit(); // no JSON (a dropped connection, a new login): the plain way
      } finally {
        sending = false;
      }
    });
    reply.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        if (reply.value.trim()) replyForm.requestSubmit();
      } else if (event.key === "Escape") {
        reply.blur();
      }
    });
  }

  function bubble(event) {
    const item = document.createElement("li");
    item.className = "bubble inbound";
    item.dataset.messageId = String(event.message_id);
    const body = document.createElement("span");
    body.className = "body";
    body.textContent = event.body;
    const meta = document.createElement("span");
    meta.className = "meta";
    const when = document.createElement("time");
    when.dateTime = new Date().toISOString();
    const status = document.createElement("span");
    status.className = "status";
    status.textContent = say("statuses.received");
    meta.append(when, " · ", status);
    item.append(body, meta);
    localizeTimes(item);
    return item;
  }

  function sentBubble(sent) {
    const item = bubble({ message_id: sent.message_id, body: sent.body });
    item.className = "bubble outbound";
    item.querySelector("time").dateTime = sent.created_at;
    item.querySelector(".status").textContent = say("statuses.queued");
    localizeTimes(item);
    return item;
  }

  // The conversation changed under the volunteer: say why where they are looking, and keep
  // what they typed, read-only, to copy.
  function closeThread(change) {
    notify(say("changes." + change));
  }

  function notify(why) {
    const notice = document.getElementById("conversation-notice");
    notice.textContent = why;
    if (reply && reply.value.trim()) {
      notice.append(" ", say("kept"));
      reply.readOnly = true;
    }
    notice.hidden = false;
    for (const button of document.querySelectorAll(
      "#reply-form button, .conversation-actions button, #opt-out-suggestion button, #opt-out-step button")) {
      button.disabled = true;
    }
    announce(notice.textContent);
  }

  function onThreadReply(event) {
    if (String(event.contact_id) !== thread.dataset.contactId) return;
    if (thread.querySelector(`[data-message-id="${event.message_id}"]`)) return;
    thread.append(bubble(event));
    const suggestion = document.getElementById("opt-out-suggestion");
    if (suggestion && event.opt_out_suggested) suggestion.hidden = false;
    announce(say("new_reply", { name: event.name }) + ": " + event.body);
    if (event.opted_out) closeThread("opted_out");
    // The volunteer is looking at it: it is read.
    fetch(thread.dataset.readUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": thread.dataset.csrfToken },
    }).catch(() => {});
  }

  function onThreadChange(event) {
    if (event.contact_ids.map(String).includes(thread.dataset.contactId)) {
      closeThread(event.change);
    }
  }

  function cannedButtons() {
    return [...document.querySelectorAll("[data-canned-body]")];
  }

  function threadKeys(event) {
    const digit = /^Digit([1-9])$/.exec(event.code);
    if (digit && (event.altKey || plainKey(event)) && !event.ctrlKey && !event.metaKey) {
      const button = cannedButtons()[Number(digit[1]) - 1];
      if (button && !button.disabled) {
        event.preventDefault();
        button.click();
      }
      return;
    }
    if (!plainKey(event)) return;
    const go = { j: "next-waiting", k: "previous-waiting" }[event.key];
    if (go) {
      const link = document.getElementById(go);
      if (link) link.click(); else announce(say("no_next"));
    } else if (event.key === "r" && reply && !reply.readOnly) {
      event.preventDefault();
      reply.focus();
    }
  }

  // --- The list -----------------------------------------------------------------------------
  function badge(className, label) {
    const node = document.createElement("span");
    node.className = "badge " + className;
    node.textContent = label;
    return node;
  }

  function showWaited() {
    for (const node of list.querySelectorAll(".badge.waited[data-since]")) {
      node.textContent = say("waiting_for", { time: since(node.dataset.since) });
    }
  }

  function onListReply(event) {
    if (String(event.campaign_id) !== list.dataset.campaignId) return;
    let item = list.querySelector(`[data-contact-id="${event.contact_id}"]`);
    if (!item) {
      item = document.createElement("li");
      item.dataset.contactId = String(event.contact_id);
      const link = document.createElement("a");
      link.href = list.dataset.conversationUrl.replace(/0$/, String(event.contact_id));
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = event.name;
      const preview = document.createElement("span");
      preview.className = "last-message";
      link.append(who, " ", preview);
      const badges = document.createElement("span");
      badges.className = "badges";
      item.append(link, " ", badges);
      list.querySelector("li.empty")?.remove();
    }
    item.querySelector(".last-message").textContent = event.body;
    const badges = item.querySelector(".badges");
    const when = document.createElement("time");
    when.className = "when muted";
    when.dateTime = new Date().toISOString();
    badges.replaceChildren(when, " ");
    localizeTimes(badges);
    if (event.unread) badges.append(badge("unread-count", count("unread", event.unread)), " ");
    if (event.needs_reply) {
      badges.append(badge("unread", say("needs_reply")), " ");
      if (event.waiting_since) {
        const waited = badge("waited", "");
        waited.dataset.since = event.waiting_since;
        badges.append(waited, " ");
      }
    }
    if (event.opt_out_suggested) badges.append(badge("warning", say("maybe_opt_out")));
    if (event.opted_out) badges.append(badge("stopped", say("opted_out_mark")));
    const wasWaiting = item.dataset.needsReply === "yes";
    item.classList.toggle("needs-reply", event.needs_reply);
    item.classList.toggle("suggested", event.opt_out_suggested);
    item.dataset.needsReply = event.needs_reply ? "yes" : "no";
    if (!item.isConnected || event.needs_reply !== wasWaiting) {
      // Longest waiting first: a newly waiting conversation goes after those already waiting;
      // one no longer waiting, before the rest.
      const waitingRows = [...list.querySelectorAll('li[data-needs-reply="yes"]')]
        .filter((row) => row !== item);
      const last = waitingRows[waitingRows.length - 1];
      if (last) last.after(item); else list.prepend(item);
    }
    showWaited();
    announce(say("new_reply", { name: event.name }));
  }

  function onListChange(event) {
    if (event.change !== "reassigned") return;
    for (const id of event.contact_ids) {
      list.querySelector(`[data-contact-id="${id}"]`)?.remove();
    }
    announce(say("moved_away"));
  }

  function listKeys(event) {
    if (!plainKey(event)) return;
    if (event.key === "j") {
      list.querySelector('li[data-needs-reply="yes"] a')?.click();
    } else if (event.key === "s") {
      document.querySelector(".links a.button")?.click();
    }
  }

  function onStatus(event) {
    if (!thread) return;
    const status = thread.querySelector(`[data-message-id="${event.message_id}"] .status`);
    if (status) status.textContent = say("statuses." + event.status);
  }

  // --- Wiring -------------------------------------------------------------------------------
  if (thread) {
    keepDrafts();
    document.addEventListener("keydown", threadKeys);
  }
  if (list) {
    showWaited();
    setInterval(showWaited, 60000);
    document.addEventListener("keydown", listKeys);
  }
  const host = thread || list;
  if (!host || !window.EventSource) return;
  listen(host, {
    inbound: (event) => (thread ? onThreadReply(event) : onListReply(event)),
    conversation: (event) => (thread ? onThreadChange(event) : onListChange(event)),
    status: onStatus,
  });
})();
