/* Teacher and staff pages: staff login, forms that post JSON to /api/v1/, uploads, printing login cards. */
(function () {
  "use strict";
  var lang = document.documentElement.lang;
  var t = document.getElementById("i18n").dataset;
  function csrf() { var m = document.querySelector("meta[name=csrf-token]"); return m ? m.content : ""; }
  function message(data) { var e = (data && data.error) || {}; return (lang === "en" ? e.message_en : e.message) || e.message || ""; }
  function call(url, opts) {
    opts.credentials = "same-origin";
    opts.headers = opts.headers || {};
    if (!opts.headers["X-Requested-With"]) { opts.headers["X-CSRF-Token"] = csrf(); }
    return fetch(url, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (d) { return {ok: r.ok, status: r.status, data: d}; });
    });
  }
  function json(url, body, headers) {
    return call(url, {method: "POST", headers: Object.assign({"Content-Type": "application/json"}, headers || {}), body: JSON.stringify(body)});
  }
  function fieldError(input, text) {
    var p = input && document.getElementById(input.id + "-error");
    if (p) { p.textContent = text; return true; }
    return false;
  }
  function clearErrors(form) { form.querySelectorAll(".field-error").forEach(function (p) { p.textContent = ""; }); }
  function missing(form) {
    var bad = Array.prototype.filter.call(form.querySelectorAll("[required]"), function (i) { return !i.value.trim() && !(i.files && i.files.length); });
    bad.forEach(function (i) { fieldError(i, t.required); });
    if (bad.length) { bad[0].focus(); }
    return bad.length > 0;
  }

  // staff login, then the first-password form if the account needs it
  var login = document.getElementById("staff-login");
  if (login) {
    var go = document.getElementById("staff-go"), person = null, oldPassword = "", token = "";
    var after = function () {
      var roles = person.roles || [];
      function has(role) { return roles.indexOf(role) >= 0; }
      // a parent has no page of staff: the library is theirs as everybody's
      var home = has("teacher") || has("head_teacher") ? "/teacher" : has("technician") || has("admin") ? "/technician" : "/library";
      location.href = login.dataset.next || home;
    };
    login.addEventListener("submit", function (ev) {
      ev.preventDefault(); clearErrors(login);
      if (go.disabled || missing(login)) { return; }
      go.disabled = true;
      oldPassword = login.password.value;
      json("/api/v1/login/staff", {number: login.number.value.trim(), password: oldPassword}, {"X-Requested-With": "school-edge"})
        .then(function (res) {
          go.disabled = false;
          if (!res.ok) { fieldError(login.password, message(res.data)); login.password.value = ""; login.password.focus(); return; }
          person = res.data.person; token = res.data.csrf_token;
          if (res.data.must_change) { login.hidden = true; document.getElementById("first-password").hidden = false; return; }
          after();
        }, function () { go.disabled = false; fieldError(login.password, t.offline); });
    });
    document.getElementById("first-password").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var input = document.getElementById("new-password");
      json("/api/v1/password", {old: oldPassword, "new": input.value}, {"X-CSRF-Token": token}).then(function (res) {
        if (res.ok) { after(); } else { fieldError(input, message(res.data)); }
      }, function () { fieldError(input, t.offline); });
    });
  }

  // forms that post their fields as JSON
  document.querySelectorAll("form.api-form").forEach(function (form) {
    var result = form.querySelector(".form-result");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault(); clearErrors(form);
      var btn = form.querySelector("button[type=submit]");
      if (btn.disabled || missing(form)) { return; }
      var body = {}, url = form.dataset.url;
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || el.value === "") { return; }
        if (el.name === "class_id") { url = form.dataset.urlTemplate.replace("{id}", el.value); return; }
        if (el.type === "datetime-local") { body[el.name] = Math.floor(new Date(el.value).getTime() / 1000); }
        else if (el.dataset.int) { body[el.name] = parseInt(el.value, 10); }
        else if (el.dataset.number) { body[el.name] = Number(el.value); }
        else { body[el.name] = el.value; }
      });
      btn.disabled = true;
      json(url, body).then(function (res) {
        btn.disabled = false;
        if (!res.ok) {
          var first = form.querySelector("input:not([type=hidden]),textarea");
          if (!fieldError(first, message(res.data))) { result.className = "form-result bad"; result.textContent = t.failed + message(res.data); }
          return;
        }
        result.className = "form-result ok"; result.textContent = form.dataset.done;
        if (form.dataset.reload) { setTimeout(function () { location.reload(); }, 600); }
        else if (form.dataset.remove) { var item = form.closest("li"); setTimeout(function () { item.remove(); }, 600); }
        else { form.reset(); }
      }, function () { btn.disabled = false; result.className = "form-result bad"; result.textContent = t.offline; });
    });
  });

  // a teacher's own resource
  var up = document.getElementById("upload");
  if (up) {
    up.addEventListener("submit", function (ev) {
      ev.preventDefault(); clearErrors(up);
      var btn = document.getElementById("upload-go"), file = up.file.files[0], result = up.querySelector(".form-result");
      if (btn.disabled || missing(up)) { return; }
      if (file.size > +up.dataset.max) { fieldError(up.file, up.dataset.tooBig); return; }
      btn.disabled = true;
      call(up.dataset.url, {method: "POST", body: new FormData(up)}).then(function (res) {
        btn.disabled = false;
        if (!res.ok) { fieldError(res.status === 413 || res.status === 415 ? up.file : up.title, message(res.data) || up.dataset.tooBig); return; }
        result.className = "form-result ok"; result.textContent = up.dataset.done;
        setTimeout(function () { location.reload(); }, 600);
      }, function () { btn.disabled = false; result.className = "form-result bad"; result.textContent = t.offline; });
    });
  }

  // printing login cards revokes the old ones: ask by a second tap, not a dialog
  var cards = document.getElementById("print-cards");
  if (cards) {
    var armed = false;
    cards.addEventListener("click", function () {
      if (!armed) { armed = true; cards.textContent = cards.dataset.warn; return; }
      cards.disabled = true;
      fetch(cards.dataset.url, {method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": csrf()}})
        .then(function (r) { return r.text(); })
        .then(function (html) { cards.disabled = false; location.href = URL.createObjectURL(new Blob([html], {type: "text/html"})); });
    });
  }
}());
