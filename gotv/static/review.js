// Message review: "Select all on this page" ticks every conversation's box on the page.
(function () {
  var all = document.getElementById("select-page");
  if (!all) return;
  var boxes = document.querySelectorAll('input[type=checkbox][name="' + all.dataset.selects + '"]');
  all.disabled = boxes.length === 0;
  all.addEventListener("change", function () {
    boxes.forEach(function (box) { box.checked = all.checked; });
  });
})();
