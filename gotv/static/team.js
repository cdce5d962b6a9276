// The Team page: "Copy link" copies the invitation link just created.
document.querySelectorAll("[data-copy]").forEach((button) => {
  button.addEventListener("click", async () => {
    const field = document.getElementById(button.dataset.copy);
    const status = document.getElementById("copy-status");
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      status.textContent = "Copied. Paste it into a text or an email.";
    } catch {
      // No clipboard access (plain http, old browser): the link is selected; copy by hand.
      status.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
    }
  });
});
