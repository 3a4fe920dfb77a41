/* Branch counter: format the token as it is typed, clear the result after a while,
   and show the staff view of a QR result the framed widget reports. */
(function () {
  "use strict";
  var region = document.getElementById("branch-region");
  if (!region) return;
  var resetTimer = null;

  // "passid ke8v3txy" → "KE8V-3TXY": upper case, groups of four, no PASSID- prefix.
  function formatToken(input) {
    var chars = input.value.toUpperCase().replace(/[^A-Z0-9]/g, "").replace(/^PASSID/, "").slice(0, 16);
    input.value = (chars.match(/.{1,4}/g) || []).join("-");
  }

  function nextCustomer() {
    clearInterval(resetTimer);
    window.htmx.ajax("GET", region.getAttribute("data-next-url"), { target: "#branch-region" });
  }

  function settle() {
    clearInterval(resetTimer);
    var input = region.querySelector("[data-token-input]");
    if (input) {
      input.addEventListener("input", function () { formatToken(input); });
      input.focus();
    }
    var result = region.querySelector("[data-reset-after]");
    if (result) {
      var heading = result.querySelector("h2");
      if (heading) heading.focus();
      var left = Number(result.getAttribute("data-reset-after"));
      var counter = result.querySelector("[data-reset-countdown]");
      resetTimer = setInterval(function () {
        left -= 1;
        if (counter) counter.textContent = String(Math.max(left, 0));
        if (left <= 0) nextCustomer();
      }, 1000);
    }
  }

  var frame = region.querySelector("[data-branch-widget]");
  if (frame) {
    window.addEventListener("message", function (event) {
      if (event.origin !== window.location.origin || event.source !== frame.contentWindow) return;
      var data = event.data || {};
      if ((data.type === "passid:success" || data.type === "passid:decline") && data.resultId) {
        var url = region.getAttribute("data-results-url").replace("RESULT", encodeURIComponent(data.resultId));
        window.htmx.ajax("GET", url, { target: "#branch-region" });
      }
    });
  }

  document.body.addEventListener("htmx:afterSettle", function (evt) {
    if (evt.target === region) settle();
  });
  settle();
})();
