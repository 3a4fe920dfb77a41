// Keeps the consent screen's countdown right to the second, from the server's expiry time.
(function () {
  var node = document.querySelector("[data-expires-at]");
  if (!node) return;
  // From seconds remaining, not the expiry time: the phone's clock may be wrong.
  var deadline = Date.now() + Number(node.getAttribute("data-seconds-remaining")) * 1000;
  function tick() {
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    node.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    if (left === 0) {
      document.querySelectorAll("button[value=share]").forEach(function (b) { b.disabled = true; });
      return;
    }
    setTimeout(tick, 1000 - (Date.now() % 1000));
  }
  tick();
})();
