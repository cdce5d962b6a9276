// Live totals for the campaign dashboard: poll its JSON every 10 seconds and update each number
// in place. Without JavaScript the page still shows the numbers as of its loading.
document.addEventListener("DOMContentLoaded", () => {
  const panel = document.getElementById("dashboard");
  if (!panel || !panel.dataset.dashboardUrl) return;
  const cells = panel.querySelectorAll("[data-stat]");

  const format = (cell, value) =>
    cell.dataset.format === "percent" ? `${(Number(value) * 100).toFixed(1)}%` : String(value);

  const show = (numbers) => {
    cells.forEach((cell) => {
      if (!(cell.dataset.stat in numbers)) return;
      const text = format(cell, numbers[cell.dataset.stat]);
      if (cell.textContent !== text) cell.textContent = text;
    });
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
