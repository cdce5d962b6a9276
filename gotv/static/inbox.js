// Live conversations: new replies and message statuses arrive as Server-Sent Events
// (/texting/events, the signed-in volunteer's own only) and are shown in place: a new bubble in
// an open thread, an unread badge and needs-reply order in the list. A polite live region
// announces each new reply. The browser's EventSource reconnects when a stream ends.
(() => {
  "use strict";
  const thread = document.getElementById("thread");
  const list = document.getElementById("conversation-list");
  const host = thread || list;
  if (!host || !window.EventSource) return;
  const announcer = document.getElementById("live-announcer");

  function announce(message) {
    if (announcer) announcer.textContent = message;
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
    const status = document.createElement("span");
    status.className = "status";
    status.textContent = "received";
    meta.append(status);
    item.append(body, meta);
    return item;
  }

  function onThreadReply(event) {
    if (String(event.contact_id) !== thread.dataset.contactId) return;
    if (thread.querySelector(`[data-message-id="${event.message_id}"]`)) return;
    thread.append(bubble(event));
    const suggestion = document.getElementById("opt-out-suggestion");
    if (suggestion && event.opt_out_suggested) suggestion.hidden = false;
    announce("New reply from " + event.name + ": " + event.body);
    // The volunteer is looking at it: it is read.
    fetch(thread.dataset.readUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": thread.dataset.csrfToken },
    }).catch(() => {});
  }

  function badge(className, label) {
    const node = document.createElement("span");
    node.className = "badge " + className;
    node.textContent = label;
    return node;
  }

  function onListReply(event) {
    if (String(event.campaign_id) !== list.dataset.campaignId) return;
    let item = list.querySelector(`[data-contact-id="${event.contact_id}"]`);
    if (!item) {
      item = document.createElement("li");
      item.dataset.contactId = String(event.contact_id);
      const link = document.createElement("a");
      link.href = list.dataset.conversationUrl.replace(/0$/, String(event.contact_id));
      link.textContent = event.name;
      const badges = document.createElement("span");
      badges.className = "badges";
      item.append(link, " ", badges);
      const placeholder = list.querySelector("li.empty");
      if (placeholder) placeholder.remove();
    }
    const badges = item.querySelector(".badges");
    badges.replaceChildren();
    if (event.unread) badges.append(badge("unread-count", event.unread + " unread"), " ");
    if (event.needs_reply) badges.append(badge("unread", "needs reply"), " ");
    if (event.opt_out_suggested) badges.append(badge("warning", "maybe an opt-out"));
    item.classList.toggle("needs-reply", event.needs_reply);
    item.classList.toggle("suggested", event.opt_out_suggested);
    item.dataset.needsReply = event.needs_reply ? "yes" : "no";
    list.prepend(item);  // the newest activity first, as the server orders it
    announce("New reply from " + event.name);
  }

  function onStatus(event) {
    if (!thread) return;
    const status = thread.querySelector(`[data-message-id="${event.message_id}"] .status`);
    if (status) status.textContent = event.status;
  }

  const source = new EventSource(host.dataset.eventsUrl);
  source.addEventListener("inbound", (message) => {
    const event = JSON.parse(message.data);
    if (thread) onThreadReply(event); else onListReply(event);
  });
  source.addEventListener("status", (message) => onStatus(JSON.parse(message.data)));
})();
