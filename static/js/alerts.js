/* The staff alert bar: counts alerts nobody resolved yet and shows the latest one live
 * (`alert.raised` events to role:staff). A repeat of an open alert within its
 * de-duplication window is not sent again, so each event is a new problem. */
(function () {
  "use strict";
  document.addEventListener("confirma:alert.raised", function (event) {
    var bar = document.getElementById("alert-bar");
    if (!bar) return;
    var payload = (event.detail && event.detail.payload) || {};
    var count = document.getElementById("alert-count");
    var open = parseInt(bar.getAttribute("data-open") || "0", 10) + 1;
    bar.setAttribute("data-open", String(open));
    count.textContent = String(open);
    document.getElementById("alert-last").textContent =
      (payload.code || "") + ": " + (payload.message || "");
    bar.hidden = false;
  });
})();
