// Filters on the runs index: show only the rows matching the chosen runbook and status.
(function () {
  function apply() {
    var chosen = {};
    document.querySelectorAll("[data-rb-filter]").forEach(function (select) {
      chosen[select.getAttribute("data-rb-filter")] = select.value;
    });
    document.querySelectorAll(".rb-runs tbody tr").forEach(function (row) {
      var visible = Object.keys(chosen).every(function (key) {
        return !chosen[key] || row.getAttribute("data-" + key) === chosen[key];
      });
      row.style.display = visible ? "" : "none";
    });
  }
  function bind() {
    document.querySelectorAll("[data-rb-filter]").forEach(function (select) {
      select.addEventListener("change", apply);
    });
  }
  if (window.document$) { window.document$.subscribe(bind); } else {
    document.addEventListener("DOMContentLoaded", bind);
  }
})();
