// The campaign page's script preview: while the organizer types, render the draft for a few
// real contacts (the server fills the merge fields) and name any field the list lacks.
document.addEventListener("DOMContentLoaded", () => {
  const panel = document.getElementById("script-preview");
  const script = document.getElementById("script");
  if (!panel || !script) return;
  const list = document.getElementById("preview-list");
  const unknown = document.getElementById("preview-unknown");
  let timer = null;
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

  const show = (result) => {
    list.replaceChildren(...result.previews.map(item));
    if (result.unknown.length) {
      unknown.textContent = "Unknown merge field: " + result.unknown.map((n) => `{${n}}`).join(", ");
      unknown.hidden = false;
    } else {
      unknown.hidden = true;
      unknown.textContent = "";
    }
  };

  const render = async () => {
    const request = ++latest;
    const body = new FormData(script.form);
    try {
      const response = await fetch(panel.dataset.previewUrl, {
        method: "POST",
        body,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (response.ok && request === latest) show(await response.json());
    } catch (error) {
      // Offline for a moment: the last preview stays; the next keystroke tries again.
    }
  };

  script.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(render, 250);
  });
});
