// Staff page: filter the patient table as staff type; start wide charts at their most recent end.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".scroll").forEach(function (box) { box.scrollLeft = box.scrollWidth; });
  var filter = document.getElementById("filter");
  var table = document.getElementById("patient-table");
  if (!filter || !table) { return; }
  filter.addEventListener("input", function () {
    var needle = filter.value.trim().toLowerCase();
    table.querySelectorAll("tbody tr").forEach(function (row) {
      row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) === -1;
    });
  });
});
