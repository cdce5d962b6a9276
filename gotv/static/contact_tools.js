// The contact tools on a conversation page: a canned response fills the reply box, and survey
// answers and tags are saved without leaving the page. Without JavaScript every form still
// posts and comes back to the conversation.
document.addEventListener("DOMContentLoaded", () => {
  const tools = document.getElementById("contact-tools");
  if (!tools) return;
  const status = document.getElementById("tools-status");
  const strings = window.gotvStrings;
  const say = (text) => { status.textContent = text; };

  tools.querySelectorAll("[data-canned-body]").forEach((button) => {
    button.addEventListener("click", () => {
      const reply = document.getElementById("body");
      if (!reply) return;
      reply.value = button.dataset.cannedBody;
      reply.dispatchEvent(new Event("input", { bubbles: true }));
      reply.focus();
      const title = button.querySelector(".canned-title")?.textContent || button.textContent;
      say(strings.say("inserted", { title }));
    });
  });

  const tagList = document.getElementById("tag-list");
  const token = () => tools.querySelector("input[name=csrf_token]").value;

  const removeForm = (tag) => {
    const item = document.createElement("li");
    const form = document.createElement("form");
    form.method = "post";
    form.action = tag.remove_url;
    form.dataset.toolsForm = "";
    const csrf = document.createElement("input");
    csrf.type = "hidden"; csrf.name = "csrf_token"; csrf.value = token();
    const badge = document.createElement("span");
    badge.className = "badge"; badge.textContent = tag.name;
    const button = document.createElement("button");
    button.type = "submit"; button.className = "link"; button.textContent = strings.say("remove");
    button.setAttribute("aria-label", strings.say("remove_tag", { name: tag.name }));
    form.append(csrf, badge, " ", button);
    item.append(form);
    return item;
  };

  const showTags = (tags) => {
    tagList.replaceChildren(...tags.map(removeForm));
    if (!tags.length) {
      const empty = document.createElement("li");
      empty.className = "muted"; empty.textContent = strings.say("no_tags");
      tagList.append(empty);
    }
  };

  tools.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.matches("[data-tools-form]")) return;
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const result = await response.json();
      say(result.message);
      showTags(result.tags);
      if (response.ok && form.querySelector("[name=name]")) form.reset();
    } catch (error) {
      form.submit();  // no JSON (a dropped connection, a new login): post it the plain way
    } finally {
      button.disabled = false;
    }
  });
});
