// The console's small comforts; every page works without them. Choosing a canned reply puts
// its text in the reply box at once (without script, the "put in" button does it), and a
// print button prints the page. Served by the hub: the Content-Security-Policy allows no
// other script.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("select[data-fills]").forEach(function (select) {
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var box = document.getElementById(select.getAttribute("data-fills"));
      if (box && option && option.hasAttribute("data-text")) {
        box.value = option.getAttribute("data-text");
      }
    });
  });
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      window.print();
    });
  });
});
