/* Passkeys for staff: add one (a staff member's own page, or a first enrolment) and sign in with one.
   The server makes the options and checks the answers (app/staff/passkeys.py); this file only carries
   them between it and the browser's WebAuthn API, turning base64url text into bytes and back. */
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  function bytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    var out = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) out[i] = binary.charCodeAt(i);
    return out.buffer;
  }

  function text(buffer) {
    var view = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < view.length; i += 1) binary += String.fromCharCode(view[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function post(box, url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": box.getAttribute("data-csrf") },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new Error(data.error || box.getAttribute("data-failed"));
        return data;
      });
    });
  }

  function credentials(list) {
    return (list || []).map(function (item) {
      return { type: item.type, id: bytes(item.id), transports: item.transports };
    });
  }

  function create(box) {
    return post(box, box.getAttribute("data-options-url")).then(function (options) {
      options.challenge = bytes(options.challenge);
      options.user.id = bytes(options.user.id);
      options.excludeCredentials = credentials(options.excludeCredentials);
      return navigator.credentials.create({ publicKey: options });
    }).then(function (made) {
      var response = made.response;
      var name = box.querySelector("input[name=name]");
      return post(box, box.getAttribute("data-url"), {
        name: name ? name.value : "",
        credential: {
          id: made.id, rawId: text(made.rawId), type: made.type,
          authenticatorAttachment: made.authenticatorAttachment,
          clientExtensionResults: made.getClientExtensionResults(),
          response: {
            clientDataJSON: text(response.clientDataJSON),
            attestationObject: text(response.attestationObject),
            transports: response.getTransports ? response.getTransports() : []
          }
        }
      });
    });
  }

  function get(box) {
    return post(box, box.getAttribute("data-options-url")).then(function (options) {
      options.challenge = bytes(options.challenge);
      options.allowCredentials = credentials(options.allowCredentials);
      return navigator.credentials.get({ publicKey: options });
    }).then(function (used) {
      var response = used.response;
      return post(box, box.getAttribute("data-url"), {
        credential: {
          id: used.id, rawId: text(used.rawId), type: used.type,
          authenticatorAttachment: used.authenticatorAttachment,
          clientExtensionResults: used.getClientExtensionResults(),
          response: {
            clientDataJSON: text(response.clientDataJSON),
            authenticatorData: text(response.authenticatorData),
            signature: text(response.signature),
            userHandle: response.userHandle ? text(response.userHandle) : null
          }
        }
      });
    });
  }

  function wire(selector, ceremony) {
    var box = document.querySelector(selector);
    if (!box) return;
    var button = box.querySelector("button");
    var problem = box.querySelector("[data-passkey-error]");
    button.addEventListener("click", function () {
      button.disabled = true;
      problem.hidden = true;
      ceremony(box).then(function (done) {
        window.location.assign(done.redirect);
      }).catch(function (error) {
        // A cancelled or timed-out browser prompt is a DOMException: its words are the browser's, not ours.
        problem.textContent = error instanceof DOMException ? box.getAttribute("data-failed") : error.message;
        problem.hidden = false;
        button.disabled = false;
      });
    });
  }

  wire("[data-passkey-register]", create);
  wire("[data-passkey-sign-in]", get);
}());
