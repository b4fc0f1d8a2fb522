// Sortable tables: click (or press Enter on) a header button of a table.sortable to sort its rows by that
// column; again to reverse. Cells sort by their data-value (numbers numerically, empty values last).
"use strict";

(function () {
  function key(cell, numeric) {
    const raw = cell ? (cell.dataset.value ?? cell.textContent.trim()) : "";
    if (!numeric) return raw.toLowerCase();
    return raw === "" ? null : Number(raw);
  }

  function sortBy(table, th) {
    const headers = Array.from(th.parentElement.children);
    const index = headers.indexOf(th);
    const numeric = th.dataset.type === "number";
    const ascending = th.getAttribute("aria-sort") !== "ascending";
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort(function (a, b) {
      const x = key(a.cells[index], numeric);
      const y = key(b.cells[index], numeric);
      if (x === null || y === null) return (x === null) - (y === null); // missing values last
      const order = numeric ? x - y : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th button").forEach(function (button) {
      button.addEventListener("click", function () { sortBy(table, button.closest("th")); });
    });
  });
})();
