/* The staff alert bar: counts alerts nobody resolved yet and shows the latest one live
 * (`alert.raised` events to role:staff). A repeat of an open alert within its
 * de-duplication window is not sent again, so each event is a new problem.
 * People read the alert's translated label (from #alert-labels), never its code; the
 * code stays in data-code, the stored message in the title. */
(function () {
  "use strict";
  var labels = null;

  function labelOf(code, bar) {
    if (labels === null) {
      var source = document.getElementById("alert-labels");
      try {
        labels = source ? JSON.parse(source.textContent) : {};
      } catch (error) {
        labels = {};
      }
    }
    return labels[code] || bar.getAttribute("data-label-unknown") || "";
  }

  document.addEventListener("confirma:alert.raised", function (event) {
    var bar = document.getElementById("alert-bar");
    if (!bar) return;
    var payload = (event.detail && event.detail.payload) || {};
    var count = document.getElementById("alert-count");
    var open = parseInt(bar.getAttribute("data-open") || "0", 10) + 1;
    bar.setAttribute("data-open", String(open));
    count.textContent = String(open);
    var last = document.getElementById("alert-last");
    var code = String(payload.code || "");
    last.textContent = labelOf(code, bar);
    last.setAttribute("data-code", code);
    last.title = String(payload.message || "");
    bar.hidden = false;
  });
})();
