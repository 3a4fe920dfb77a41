/* PASSID Verify embed: <div id="passid"></div>
   <script src="https://verify.bank.example/embed.js" data-target="#passid"
           data-permissions="full_score,identity_verified"></script>
   Inserts the widget in an iframe and re-dispatches its messages as DOM events on the
   target: passid:ready, passid:success, passid:decline, passid:error, and passid:cancel when the
   customer cancels a session (its sessionId in the detail).
   The iframe takes the height of what the widget shows, in every state; data-height="560px"
   (any CSS length) fixes it instead, and the widget then scrolls inside it.
   If the frame does not report ready (this page's origin not allowed, a blocker, no network),
   passid:error comes with detail.reason "frame-refused": send the customer to the hosted page.
   With data-session="<id>" (from your server's POST /api/sessions) the iframe shows that
   session: its permissions and institution name are the session's, and the events carry
   sessionId.
   data-locale="fr" (en fr de es pt it nl pl sw ar), data-color-scheme="light|dark|auto",
   data-radius="square|small|medium|large|round" and data-font="system|sans-serif|serif|rounded|inherit"
   choose the language and the look; a session's own locale comes first. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var widgetOrigin = new URL(script.src).origin;
  var target = document.querySelector(script.getAttribute("data-target") || "#passid");
  if (!target) {
    if (window.console) console.error("PASSID: no element matches data-target");
    return;
  }
  var params = new URLSearchParams({ origin: window.location.origin });
  var options = { permissions: "permissions", institutionName: "institution-name", theme: "theme",
                  locale: "locale", colorScheme: "color-scheme", radius: "radius", font: "font" };
  Object.keys(options).forEach(function (name) {
    var value = script.getAttribute("data-" + options[name]);
    if (value) params.set(name, value);
  });
  var session = script.getAttribute("data-session");
  var path = "/verify";
  if (session) {
    // The session locks its own permissions and name; only the look and the origin come from here.
    params.set("id", session);
    params.delete("permissions");
    params.delete("institutionName");
    path = "/verify/session";
  }
  var fixedHeight = script.getAttribute("data-height");
  var frame = document.createElement("iframe");
  frame.src = widgetOrigin + path + "?" + params.toString();
  frame.title = script.getAttribute("data-title") || "Verify with PASSID";
  frame.style.display = "block"; // an inline frame would leave a line's descent blank below it
  frame.style.width = "100%";
  frame.style.maxWidth = "28rem";
  // Until the widget reports its height, about what its first screen needs.
  frame.style.height = fixedHeight || "480px";
  frame.style.border = "0";
  // Sized to the content there is nothing to scroll; a scroll bar flashing while the frame catches up with a
  // taller state would narrow the content and wrap its lines again.
  if (!fixedHeight) frame.setAttribute("scrolling", "no");
  target.appendChild(frame);

  function dispatch(type, detail) {
    target.dispatchEvent(new CustomEvent(type, { detail: detail, bubbles: true }));
  }

  // The widget reports ready once it is interactive. A refused frame never does: the page hears why it cannot
  // count on it, and can offer the hosted page instead. A frame that loaded without reporting (the browser's
  // own error page loads too) is given a moment, for the message still on its way; one that never loads, 8 s.
  var answered = false; // ready, or refused: decided once
  var refusal = null;
  function refuseAfter(ms) {
    clearTimeout(refusal);
    refusal = setTimeout(function () {
      if (answered) return;
      answered = true;
      dispatch("passid:error", { reason: "frame-refused", message: "The PASSID frame did not load" });
    }, ms);
  }
  refuseAfter(8000);
  frame.addEventListener("load", function () { if (!answered) refuseAfter(1500); });

  window.addEventListener("message", function (event) {
    if (event.origin !== widgetOrigin || event.source !== frame.contentWindow) return;
    var data = event.data || {};
    if (data.type === "passid:resize") {
      if (!fixedHeight) frame.style.height = Math.min(Math.max(Number(data.height) || 0, 100), 4000) + "px";
      return;
    }
    if (data.type === "passid:ready") {
      answered = true; // a ready later than a refusal is still dispatched: the frame works after all
      clearTimeout(refusal);
    }
    if (["passid:ready", "passid:success", "passid:decline", "passid:error", "passid:cancel"]
        .indexOf(data.type) === -1) return;
    var detail = {};
    Object.keys(data).forEach(function (key) { if (key !== "type") detail[key] = data[key]; });
    dispatch(data.type, detail);
  });
})();
