// The phone menu: at narrow widths the navigation folds behind a "Menu" button. Without
// JavaScript the button stays hidden and the navigation is simply shown.
(function () {
  "use strict";
  var bar = document.getElementById("topbar");
  var button = document.getElementById("menu-button");
  if (!bar || !button) return;
  bar.classList.add("has-menu");
  button.hidden = false;
  button.addEventListener("click", function () {
    var open = bar.classList.toggle("menu-open");
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });
})();
