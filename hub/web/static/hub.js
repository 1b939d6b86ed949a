// Small comforts on top of pages that work without script. Served by the hub itself; the
// Content-Security-Policy allows no other script.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  // After a form came back with an error, move focus to the error, so that screen reader
  // and keyboard users hear and reach it first (WCAG 3.3.1).
  var problem = document.querySelector("[data-focus-on-load]");
  if (problem) {
    problem.focus();
  }
});
