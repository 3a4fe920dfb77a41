/* PASSID widget behaviour that htmx does not cover: keep data-state in step with the
   partial on screen, announce changes, run the countdown, check at once when the customer
   comes back from the PASSID app, and tell the embedding page that the widget is ready, how tall
   it is and what happened — only ever to the allow-listed parent origin the server rendered. */
(function () {
  "use strict";
  var root = document.getElementById("passid-widget");
  if (!root) return;
  var stateBox = document.getElementById("passid-state");
  var announcer = document.getElementById("passid-announcer");
  var parentOrigin = root.getAttribute("data-parent-origin");
  var timer = null;

  function post(message) {
    if (parentOrigin && window.parent !== window) window.parent.postMessage(message, parentOrigin);
  }

  // The embedding page sizes its frame to the content (embed.js): the body's own height, which a frame taller
  // than its content does not inflate as <html>'s scrollHeight would, so a shorter state shrinks the frame.
  var height = 0;
  function resize() {
    var now = Math.ceil(document.body.getBoundingClientRect().height);
    if (now !== height) post({ type: "passid:resize", height: (height = now) });
  }

  function announce(text) {
    announcer.textContent = "";
    setTimeout(function () { announcer.textContent = text; }, 50);
  }

  // From seconds remaining, not the expiry time: the customer's clock may be wrong. The clock shows
  // m:ss; a screen reader hears a sentence as each whole minute begins. The server rendered those
  // sentences (data-minutes-left, {"4": "4 minutes left", ...}) in the page's language and plural
  // form, which a script cannot choose.
  function countdown(view) {
    clearTimeout(timer);
    var node = view.querySelector("[data-seconds-remaining]");
    if (!node) return;
    var deadline = Date.now() + Number(node.getAttribute("data-seconds-remaining")) * 1000;
    var sentences = {};
    try { sentences = JSON.parse(node.getAttribute("data-minutes-left") || "{}"); } catch (ignored) { /* none */ }
    var said = null;
    (function tick() {
      if (!node.isConnected) return;
      var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      node.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
      var minute = left % 60 === 0 ? sentences[left / 60] : null;
      if (minute && said !== null && said !== minute) announce(minute);
      said = minute || said || "";
      if (left === 0) {
        document.body.dispatchEvent(new Event("passid:expired"));
        return;
      }
      timer = setTimeout(tick, ((deadline - Date.now()) % 1000) || 1000);
    })();
  }

  function settle(initial) {
    var view = stateBox.querySelector(".passid-view");
    if (!view) return;
    root.setAttribute("data-state", view.getAttribute("data-view"));
    var text = view.getAttribute("data-announce");
    if (!initial && text) announce(text);
    if (!initial) {
      var focus = view.querySelector("[autofocus], .passid-view__title");
      if (focus) focus.focus();
    }
    countdown(view);
    var event = view.querySelector(".passid-event");
    if (event) {
      try { post(JSON.parse(event.getAttribute("data-event"))); } catch (ignored) { /* malformed: send nothing */ }
    }
    resize();
  }

  function offline(evt) {
    // A failed poll is retried by the next tick; anything the customer did gets an answer.
    if (evt.detail && evt.detail.elt && evt.detail.elt.id === "passid-poller") return;
    var template = document.getElementById("passid-offline");
    stateBox.replaceChildren(template.content.cloneNode(true));
    settle(false);
    post({ type: "passid:error", message: "The verification service could not be reached" });
  }

  // Back from the PASSID app on the same phone: ask now, not at the next 2.5 s tick. Returning fires
  // visibilitychange, pageshow and focus together, so a check within a second of the last is dropped
  // (a timestamp, not a timer: a throttled background tab must not delay it).
  var lastCheck = -Infinity;
  function checkOnReturn(evt) {
    if (evt.type === "visibilitychange" && document.visibilityState !== "visible") return;
    if (evt.type === "pageshow" && !evt.persisted) return;
    var poller = document.getElementById("passid-poller");
    if (!poller || !window.htmx) return;
    var now = performance.now();
    if (now - lastCheck < 1000) return;
    lastCheck = now;
    window.htmx.trigger(poller, "passid:check");
  }

  document.body.addEventListener("htmx:afterSettle", function (evt) {
    if (evt.target === stateBox) settle(false);
  });
  // The layout widget.css chose (phone or desktop, by the pointer), for the console's funnel; nothing else.
  // The poll sends back the check window its last check was in (app/widget/polling.py).
  var checked = "";
  document.body.addEventListener("htmx:configRequest", function (evt) {
    evt.detail.headers["PASSID-Layout"] = window.matchMedia("(pointer: coarse)").matches ? "phone" : "desktop";
    if (checked && evt.detail.elt.id === "passid-poller") evt.detail.headers["PASSID-Checked"] = checked;
  });
  document.body.addEventListener("htmx:afterRequest", function (evt) {
    checked = evt.detail.xhr.getResponseHeader("PASSID-Checked") || checked;
  });
  document.body.addEventListener("htmx:sendError", offline);
  document.body.addEventListener("htmx:responseError", offline);
  // Every change of height, whatever caused it: a new state, a line wrapping after a resize, a late font.
  if (window.ResizeObserver) new ResizeObserver(resize).observe(document.body);
  else window.addEventListener("resize", resize);
  document.addEventListener("visibilitychange", checkOnReturn);
  window.addEventListener("pageshow", checkOnReturn);
  window.addEventListener("focus", checkOnReturn);
  settle(true);
  // Interactive once htmx has wired the forms: it does so on DOMContentLoaded, which fires after this deferred
  // script, and its listener was added before this one.
  document.addEventListener("DOMContentLoaded", function () { post({ type: "passid:ready" }); });
})();
