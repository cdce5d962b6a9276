// The contact tools on a conversation page: a canned response fills the reply box; an answer
// is saved as soon as it is chosen, the questions after it appear, and the script after it
// fills the reply box, ready to send with one click (unless the volunteer was writing
// something of their own, which is kept). Tags are saved without leaving the page. Without
// JavaScript every form still posts and comes back to the conversation.
document.addEventListener("DOMContentLoaded", () => {
  const tools = document.getElementById("contact-tools");
  if (!tools) return;
  const status = document.getElementById("tools-status");
  const strings = window.gotvStrings;
  const say = (text) => { status.textContent = text; };
  const reply = () => document.getElementById("body");
  // What we last put in the reply box: replaced freely, unlike what the volunteer typed.
  let inserted = "";

  const fill = (text, done) => {
    const box = reply();
    if (!box) return false;
    if (box.value.trim() && box.value !== inserted) return false;
    box.value = text;
    inserted = text;
    box.dispatchEvent(new Event("input", { bubbles: true }));
    box.focus();
    say(done);
    return true;
  };

  tools.addEventListener("click", (event) => {
    const button = event.target.closest("[data-canned-body], [data-script-body]");
    if (!button) return;
    const text = button.dataset.cannedBody ?? button.dataset.scriptBody;
    const box = reply();
    if (!box) return;
    box.value = text;
    inserted = text;
    box.dispatchEvent(new Event("input", { bubbles: true }));
    box.focus();
    if (button.dataset.cannedBody !== undefined) {
      const title = button.querySelector(".canned-title")?.textContent || button.textContent;
      say(strings.say("inserted", { title }));
    } else {
      say("The script is in your reply: check it, then send.");
    }
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

  const showSurvey = (html) => {
    const survey = document.getElementById("survey-questions");
    if (!survey || !html) return;
    const focused = document.activeElement && document.activeElement.id;
    const holder = document.createElement("div");
    holder.innerHTML = html;
    survey.replaceWith(holder.firstElementChild);
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
  };

  const send = async (form) => {
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
      if (result.survey_html) showSurvey(result.survey_html);
      if (response.ok && result.scripts && result.scripts.length) {
        if (!fill(result.scripts[0], `${result.message} The next script is in your reply: check it, then send.`)) {
          say(`${result.message} Your draft was kept: the next script is under the question.`);
        }
      }
      if (response.ok && form.querySelector("[name=name]")) form.reset();
    } catch (error) {
      form.submit();  // no JSON (a dropped connection, a new login): post it the plain way
    } finally {
      button.disabled = false;
    }
  };

  tools.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.matches("[data-tools-form]")) return;
    event.preventDefault();
    send(form);
  });

  // Choosing an answer saves it: one click, then the reply is ready to send.
  tools.addEventListener("change", (event) => {
    const form = event.target.closest("[data-survey-form]");
    if (form && event.target.name === "choice_id") send(form);
  });
});
