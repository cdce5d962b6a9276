// The campaign builder (campaigns/show.html): every form marked data-builder is saved in
// place, without reloading the page or losing the place on it. A refused save says why
// beside its form and leaves every field as it was typed. While the organizer types, the
// first message is checked live (merge fields, previews, segments, cost, compliance advice),
// so are follow-up scripts and canned responses, and the texting hours show what they become
// in each state. Without JavaScript the forms post as usual (web/builder.py).
document.addEventListener("DOMContentLoaded", () => {
  const builder = document.getElementById("builder");
  if (!builder) return;
  const announcer = document.getElementById("builder-status");
  const announce = (text) => { announcer.textContent = text; };

  const statusOf = (form) => form.querySelector("[data-form-status]");
  const say = (form, text, failed) => {
    const line = statusOf(form);
    if (line) {
      line.textContent = text;
      line.classList.toggle("flash", !!failed);
      line.classList.toggle("error", !!failed);
      if (failed) line.setAttribute("role", "alert");
      else line.removeAttribute("role");
    }
    announce(failed ? "" : text);  // a refusal is announced by its own alert
  };

  const showMarks = (marks) => {
    Object.entries(marks || {}).forEach(([id, mark]) => {
      document.querySelectorAll(`[data-mark="${id}"]`).forEach((element) => {
        element.className = `mark ${mark.state}`;
        element.title = mark.label;
      });
      document.querySelectorAll(`[data-mark-text="${id}"]`).forEach((element) => {
        element.textContent = ` (${mark.label})`;
      });
      document.querySelectorAll(`[data-mark-label="${id}"]`).forEach((element) => {
        element.textContent = mark.label;
      });
    });
  };

  // A section drawn again by the server replaces the old one; focus goes back to the same
  // element (by id) when it is still there, else to the section's heading.
  const redraw = (sections) => {
    Object.entries(sections || {}).forEach(([id, html]) => {
      const old = document.getElementById(id);
      if (!old) return;
      const focused = document.activeElement && old.contains(document.activeElement)
        ? document.activeElement.id : "";
      const holder = document.createElement("div");
      holder.innerHTML = html;
      const fresh = holder.firstElementChild;
      old.replaceWith(fresh);  // every listener is on #builder: nothing to wire again
      const target = (focused && document.getElementById(focused)) || fresh.querySelector("h2");
      if (target) {
        if (!target.hasAttribute("tabindex") && target.tagName === "H2") target.tabIndex = -1;
        target.focus({ preventScroll: true });
      }
    });
  };

  const save = async (form, submitter) => {
    const buttons = form.querySelectorAll("button[type=submit]");
    buttons.forEach((button) => { button.disabled = true; });
    const body = new FormData(form);
    if (submitter && submitter.name) body.append(submitter.name, submitter.value);
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const result = await response.json();
      if (!result.ok) {
        say(form, result.message, true);
        const field = result.field && form.querySelector(`[name="${result.field}"]`);
        if (field) {
          field.setAttribute("aria-invalid", "true");
          field.focus();
        }
        return;
      }
      form.querySelectorAll("[aria-invalid]").forEach((field) => field.removeAttribute("aria-invalid"));
      Object.entries(result.fields || {}).forEach(([name, value]) => {
        const field = document.querySelector(`#builder [name="${name}"]`);
        if (field) {
          field.value = value;
          field.dispatchEvent(new Event("input", { bubbles: true }));
        }
      });
      showMarks(result.marks);
      if (form.id === "form-name") {
        document.getElementById("campaign-title").textContent = form.querySelector("[name=name]").value;
      }
      if (form.id === "form-status") {
        const badge = document.getElementById("campaign-status");
        const value = form.querySelector("[name=status]").value;
        badge.textContent = value;
        badge.className = `badge ${value}`;
      }
      const section = form.closest(".builder-section");
      redraw(result.sections);
      const again = document.body.contains(form) ? form : form.id && document.getElementById(form.id);
      if (again && statusOf(again)) {
        say(again, result.message, false);
      } else {
        announce(result.message);
        const line = section && document.querySelector(`#${section.id} [data-section-status]`);
        if (line) line.textContent = result.message;
      }
    } catch (error) {
      form.submit();  // no JSON (a dropped connection, a new login): post it the plain way
    } finally {
      buttons.forEach((button) => { button.disabled = false; });
    }
  };

  builder.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.matches("form[data-builder]")) return;
    event.preventDefault();
    save(form, event.submitter);
  });

  // --- Live checks ------------------------------------------------------------------------

  const debounce = (fn, wait) => {
    let timer = null;
    return (...args) => {
      window.clearTimeout(timer);
      timer = window.setTimeout(() => fn(...args), wait);
    };
  };
  const csrf = () => builder.querySelector("input[name=csrf_token]").value;
  const post = (url, fields) => {
    const body = new FormData();
    body.append("csrf_token", csrf());
    Object.entries(fields).forEach(([name, value]) => body.append(name, value));
    return fetch(url, { method: "POST", body, headers: { Accept: "application/json" }, credentials: "same-origin" });
  };

  // The first message: previews, unknown merge fields, advice, cost.
  const checks = document.getElementById("script-checks");
  let latest = 0;
  const item = (preview) => {
    const li = document.createElement("li");
    const name = document.createElement("strong");
    name.textContent = preview.name;
    const text = document.createElement("span");
    text.className = "message-preview";
    text.textContent = preview.text;
    const size = document.createElement("span");
    size.className = "muted";
    size.textContent = `${preview.characters} characters, ${preview.segments} ${preview.segments === 1 ? "segment" : "segments"}`;
    li.append(name, text, size);
    return li;
  };
  const showScriptChecks = (result) => {
    document.getElementById("preview-list").replaceChildren(...result.previews.map(item));
    const unknown = document.getElementById("preview-unknown");
    unknown.hidden = !result.unknown.length;
    unknown.textContent = result.unknown.length
      ? "Unknown merge field: " + result.unknown.map((n) => `{${n}}`).join(", ") : "";
    const warnings = document.getElementById("script-warnings");
    const list = warnings.querySelector("ul");
    list.replaceChildren(...result.warnings.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }));
    warnings.hidden = !result.warnings.length;
    document.getElementById("form-opt-out-language").hidden = !result.needs_opt_out;
    const cost = document.getElementById("script-cost");
    const holder = document.createElement("div");
    holder.innerHTML = result.cost_html;
    cost.replaceWith(holder.firstElementChild);
  };
  const checkScript = debounce(async (script) => {
    const request = ++latest;
    try {
      const response = await post(checks.dataset.previewUrl, { script: script.value, recipients: checks.dataset.recipients });
      if (response.ok && request === latest) showScriptChecks(await response.json());
    } catch (error) {
      // Offline for a moment: the last checks stay; the next keystroke tries again.
    }
  }, 250);

  // Follow-up scripts and canned responses: unknown merge fields, length and segments.
  const checkUrl = checks && checks.dataset.previewUrl.replace(/script\/preview$/, "check");
  const checkText = debounce(async (field) => {
    const result = field.parentElement.querySelector("[data-check-result]") || field.nextElementSibling;
    if (!result || !result.matches("[data-check-result]")) return;
    try {
      const response = await post(checkUrl, { text: field.value });
      if (!response.ok) return;
      const found = await response.json();
      if (!field.value.trim()) {
        result.textContent = "";
        result.classList.remove("error");
        return;
      }
      const size = `${found.characters} characters, ${found.segments} ${found.segments === 1 ? "segment" : "segments"}`;
      const who = found.sample_name ? ` for ${found.sample_name}` : "";
      result.textContent = found.unknown.length
        ? `Unknown merge field: ${found.unknown.map((n) => `{${n}}`).join(", ")}. ${size}${who}.`
        : `${size}${who}.`;
      result.classList.toggle("error", !!found.unknown.length);
    } catch (error) {
      // Offline: try again at the next keystroke.
    }
  }, 300);

  // Texting hours: the table of what they become in each state, before they are saved.
  const showHours = debounce(async (form) => {
    const query = new URLSearchParams({
      start_hour: form.querySelector("[name=start_hour]").value,
      end_hour: form.querySelector("[name=end_hour]").value,
    });
    try {
      const response = await fetch(`${form.dataset.hoursPreview}?${query}`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      const result = await response.json();
      if (result.ok) {
        document.getElementById("state-hours").innerHTML = result.html;
        say(form, "Not saved yet: the table shows these hours in each state.", false);
      } else {
        say(form, result.message, true);
      }
    } catch (error) {
      // Offline: the table stays as it was.
    }
  }, 150);

  builder.addEventListener("input", (event) => {
    const field = event.target;
    if (field.id === "script") checkScript(field);
    else if (field.matches("[data-check]")) checkText(field);
  });
  builder.addEventListener("change", (event) => {
    const form = event.target.closest("form[data-hours-preview]");
    if (form) showHours(form);
  });

  // Merge-field buttons put the tag where the cursor is in the first message.
  builder.addEventListener("click", (event) => {
    const chip = event.target.closest("[data-insert]");
    if (!chip) return;
    const box = document.getElementById("script");
    const at = box.selectionStart ?? box.value.length;
    box.setRangeText(chip.dataset.insert, at, box.selectionEnd ?? at, "end");
    box.focus();
    box.dispatchEvent(new Event("input", { bubbles: true }));
  });

  const anchor = builder.dataset.anchor;
  if (anchor && document.getElementById(anchor)) document.getElementById(anchor).scrollIntoView();
});
