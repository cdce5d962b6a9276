// One press, one text: disable the Send button on the first submit so a held Enter key or a
// double click cannot post the form twice. The server refuses a second send anyway.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("send-form");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    const button = document.getElementById("send-button");
    if (button.disabled) { event.preventDefault(); return; }
    button.disabled = true;
    button.textContent = "Sending…";
  });
});
