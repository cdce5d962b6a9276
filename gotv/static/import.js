// Live progress for a list import: poll the import's JSON once a second and update the bar and
// the counts; when it finishes, reload so the server shows the summary. Without JavaScript the
// page offers a Refresh link instead.
document.addEventListener("DOMContentLoaded", () => {
  const panel = document.getElementById("import-progress");
  if (!panel || !panel.dataset.progressUrl) return;
  const bar = document.getElementById("import-bar");
  const status = document.getElementById("import-status");
  const counts = panel.querySelectorAll("[data-count]");

  const show = (progress) => {
    bar.value = Number(progress.percent) || 0;
    bar.textContent = `${bar.value}%`;
    status.textContent = progress.status;
    status.className = `badge ${progress.status}`;
    counts.forEach((cell) => {
      const value = String(progress[cell.dataset.count] ?? 0);
      if (cell.textContent !== value) cell.textContent = value;
    });
  };

  const poll = async () => {
    try {
      const response = await fetch(panel.dataset.progressUrl, {
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      if (response.ok) {
        const progress = await response.json();
        show(progress);
        if (progress.finished) {
          window.location.reload();
          return;
        }
      }
    } catch (error) {
      // A dropped connection: keep the last figures and try again.
    }
    window.setTimeout(poll, 1000);
  };
  window.setTimeout(poll, 1000);
});
