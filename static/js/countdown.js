/*
 * Live countdowns: <span data-countdown-to="<ISO time>" data-done-text="…">.
 * Shows m:ss (or h:mm:ss) left; at zero shows the done text and fires
 * "confirma:countdown-done" on document so the page can refresh its state.
 */
(function () {
  "use strict";
  function format(ms) {
    var total = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }
  function tick() {
    document.querySelectorAll("[data-countdown-to]").forEach(function (el) {
      var left = Date.parse(el.dataset.countdownTo) - Date.now();
      if (left <= 0) {
        if (!el.dataset.countdownDone) {
          el.dataset.countdownDone = "1";
          el.textContent = el.dataset.doneText || "0:00";
          document.dispatchEvent(new CustomEvent("confirma:countdown-done", { detail: { element: el } }));
        }
        return;
      }
      el.textContent = format(left);
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);
})();
