// Live numbers for the campaign dashboard: poll its JSON every 10 seconds and update each
// figure in place (the progress bar, replies waiting and the oldest wait too). Without
// JavaScript the page still shows the numbers as of its loading.
document.addEventListener("DOMContentLoaded", () => {
  const panel = document.getElementById("dashboard");
  if (!panel || !panel.dataset.dashboardUrl) return;
  const cells = panel.querySelectorAll("[data-stat]");
  const bar = document.getElementById("texted-progress");

  const wait = (minutes) => {
    if (minutes === null || minutes === undefined) return "none";
    return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  };
  const format = (cell, value) =>
    cell.dataset.format === "percent" ? `${(Number(value) * 100).toFixed(1)}%` : String(value);

  const show = (numbers) => {
    numbers.oldest_wait = wait(numbers.oldest_wait_minutes);
    cells.forEach((cell) => {
      if (!(cell.dataset.stat in numbers)) return;
      const text = cell.dataset.stat === "oldest_wait"
        ? numbers.oldest_wait : format(cell, numbers[cell.dataset.stat]);
      if (cell.textContent !== text) cell.textContent = text;
    });
    if (bar) {
      bar.max = Math.max(numbers.contacts, 1);
      bar.value = numbers.texted;
    }
  };

  const poll = async () => {
    try {
      const response = await fetch(panel.dataset.dashboardUrl, {
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      if (response.ok) show(await response.json());
    } catch (error) {
      // A dropped connection: keep the last numbers and try again.
    }
    window.setTimeout(poll, 10000);
  };
  window.setTimeout(poll, 10000);
});
