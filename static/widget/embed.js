/* PASSID Verify embed: <div id="passid"></div>
   <script src="https://verify.bank.example/embed.js" data-target="#passid"
           data-permissions="full_score,identity_verified"></script>
   Inserts the widget in an iframe and re-dispatches its messages as DOM events on the
   target: passid:success, passid:decline, passid:error.
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
  var frame = document.createElement("iframe");
  frame.src = widgetOrigin + path + "?" + params.toString();
  frame.title = script.getAttribute("data-title") || "Verify with PASSID";
  frame.style.width = "100%";
  frame.style.maxWidth = "28rem";
  frame.style.height = "480px";
  frame.style.border = "0";
  target.appendChild(frame);

  window.addEventListener("message", function (event) {
    if (event.origin !== widgetOrigin || event.source !== frame.contentWindow) return;
    var data = event.data || {};
    if (data.type === "passid:resize") {
      frame.style.height = Math.min(Math.max(Number(data.height) || 0, 200), 2000) + "px";
      return;
    }
    if (["passid:success", "passid:decline", "passid:error"].indexOf(data.type) === -1) return;
    var detail = {};
    Object.keys(data).forEach(function (key) { if (key !== "type") detail[key] = data[key]; });
    target.dispatchEvent(new CustomEvent(data.type, { detail: detail, bubbles: true }));
  });
})();
