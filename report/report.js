(function () {
  "use strict";
  // Filters read only data attributes and set visibility: no markup is
  // ever built from the evidence's text.
  var boxes = document.querySelectorAll("input[data-sev-filter]");
  var search = document.getElementById("finding-search");
  var rows = document.querySelectorAll("tr[data-sev]");
  function apply() {
    var on = {};
    for (var i = 0; i < boxes.length; i++) {
      on[boxes[i].getAttribute("data-sev-filter")] = boxes[i].checked;
    }
    var q = search ? search.value.toLowerCase() : "";
    for (var j = 0; j < rows.length; j++) {
      var r = rows[j];
      var show = on[r.getAttribute("data-sev")] !== false;
      if (show && q) {
        show = (r.getAttribute("data-text") || "").toLowerCase().indexOf(q) >= 0;
      }
      if (show) {
        r.classList.remove("hidden");
      } else {
        r.classList.add("hidden");
      }
    }
  }
  for (var k = 0; k < boxes.length; k++) {
    boxes[k].addEventListener("change", apply);
  }
  if (search) {
    search.addEventListener("input", apply);
  }
  apply();
})();
