/* Technician page: refresh the status, run a sync and follow its progress, import a roster. */
(function () {
  "use strict";
  var en = document.documentElement.lang === "en";
  function csrf() { var m = document.querySelector("meta[name=csrf-token]"); return m ? m.content : ""; }
  function msg(e) { e = e || {}; return (en ? e.message_en : e.message) || e.message || ""; }
  var dl = document.getElementById("status");
  function fmtBytes(n) { var u = ["B", "KB", "MB", "GB", "TB"], i = 0; while (n >= 1024 && i < 4) { n /= 1024; i++; } return n.toFixed(i ? 1 : 0) + " " + u[i]; }
  function refresh() {
    fetch(dl.dataset.api, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (s) {
      dl.querySelectorAll("dd[data-k]").forEach(function (dd) {
        var k = dd.dataset.k;
        if (!(k in s) || s[k] === null || s[k] === "" || s[k] === "-") { return; }
        if (dd.dataset.fmt === "bytes") { dd.textContent = fmtBytes(s.disk_free_bytes) + " / " + fmtBytes(s.disk_total_bytes); }
        else { dd.textContent = String(s[k]); }
      });
    }).catch(function () {});
  }
  setInterval(refresh, 5000);

  var btn = document.getElementById("sync-now");
  var bar = document.getElementById("sync-progress");
  var out = document.getElementById("sync-message");
  function poll() {
    fetch(btn.dataset.progress, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (p) {
      bar.hidden = false;
      bar.value = Math.round((p.fraction || 0) * 100);
      if (p.running) { out.className = ""; out.textContent = btn.dataset.running + " " + (p.message || ""); setTimeout(poll, 400); return; }
      btn.disabled = false;
      if (p.state === "failed") { out.className = "bad"; out.textContent = btn.dataset.failed + msg(p); }
      else if (p.state === "done") { out.className = "ok"; out.textContent = btn.dataset.done + "：" + (p.message || ""); bar.value = 100; }
      refresh();
    }).catch(function () { setTimeout(poll, 2000); });
  }
  if (btn) {
    btn.addEventListener("click", function () {
      if (btn.disabled) { return; }
      btn.disabled = true; out.className = ""; out.textContent = btn.dataset.running;
      fetch(btn.dataset.start, {method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": csrf()}})
        .then(function (r) { return r.json().then(function (d) { return {ok: r.ok, d: d}; }); })
        .then(function (res) {
          if (!res.ok) { btn.disabled = false; out.className = "bad"; out.textContent = btn.dataset.failed + msg(res.d.error); return; }
          poll();
        }).catch(function () { btn.disabled = false; out.className = "bad"; out.textContent = btn.dataset.failed; });
    });
    if (btn.dataset.wasRunning) { btn.disabled = true; poll(); }
  }

  var roster = document.getElementById("roster");
  if (roster) {
    roster.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var go = document.getElementById("roster-go"), err = document.getElementById("roster-file-error");
      var result = roster.querySelector(".form-result"), table = roster.querySelector("table.problems");
      var body = table.querySelector("tbody");
      err.textContent = ""; result.textContent = ""; table.hidden = true; body.textContent = "";
      var file = roster.file.files[0];
      if (!file) { err.textContent = document.getElementById("i18n").dataset.required; return; }
      if (go.disabled) { return; }
      go.disabled = true;
      var data = new FormData(); data.append("file", file);
      fetch(roster.dataset.url, {method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": csrf()}, body: data})
        .then(function (r) { return r.json().then(function (d) { return {ok: r.ok, d: d}; }); })
        .then(function (res) {
          go.disabled = false;
          if (res.ok) {
            result.className = "form-result ok";
            result.textContent = roster.dataset.done.replace("{c}", res.d.created).replace("{u}", res.d.updated);
            return;
          }
          err.textContent = msg(res.d.error);
          var problems = ((res.d.error || {}).details || {}).problems || [];
          problems.forEach(function (p) {
            var tr = document.createElement("tr"), a = document.createElement("td"), b = document.createElement("td");
            a.textContent = p.line; b.textContent = msg(p);  // textContent: a name in a roster is never markup
            tr.appendChild(a); tr.appendChild(b); body.appendChild(tr);
          });
          table.hidden = problems.length === 0;
        }).catch(function () { go.disabled = false; err.textContent = document.getElementById("i18n").dataset.offline; });
    });
  }
}());
/* USB sticks: what each would do (the appliance's plan), then provision, import or export. */
(function () {
  "use strict";
  var box = document.getElementById("usb");
  if (!box) { return; }
  var t = box.dataset, en = document.documentElement.lang === "en";
  var list = document.getElementById("usb-list"), bar = document.getElementById("usb-progress");
  var result = document.getElementById("usb-result");
  function csrf() { var m = document.querySelector("meta[name=csrf-token]"); return m ? m.content : ""; }
  function msg(e) { e = e || {}; return (en ? e.message_en : e.message) || e.message || ""; }
  function el(tag, text, cls) { var n = document.createElement(tag); if (text) { n.textContent = text; } if (cls) { n.className = cls; } return n; }
  function apply(stick, action, passphrase, err) {
    var headers = {"Content-Type": "application/json", "X-CSRF-Token": csrf(), "X-Requested-With": "school-edge"};
    bar.hidden = false; result.className = ""; result.textContent = t.working;
    list.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    fetch(t.apply, {method: "POST", credentials: "same-origin", headers: headers,
                    body: JSON.stringify({stick: stick, action: action, passphrase: passphrase})})
      .then(function (r) { return r.json().then(function (d) { return {ok: r.ok, d: d}; }); })
      .then(function (res) {
        bar.hidden = true;
        list.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
        if (res.ok) { result.className = "ok"; result.textContent = t.done; return; }
        result.textContent = "";
        (err || result).textContent = t.failed + msg(res.d.error);
        if (!err) { result.className = "bad"; }
      }, function () { bar.hidden = true; result.className = "bad"; result.textContent = t.failed; });
  }
  function render(sticks) {
    list.textContent = "";
    if (!sticks.length) { list.appendChild(el("p", t.none, "hint")); return; }
    sticks.forEach(function (s, i) {
      var card = el("div", "", "card usb-stick");
      card.style.padding = "12px";
      card.appendChild(el("strong", s.stick));
      if (s.schools && s.schools.length) { card.appendChild(el("p", t.schools + s.schools.join(", "), "meta")); }
      if (!s.ok) { card.appendChild(el("p", t.refused + msg(s.error), "bad")); list.appendChild(card); return; }
      var ul = el("ul");
      (s.actions || []).forEach(function (a) { ul.appendChild(el("li", a)); });
      card.appendChild(ul);
      var row = el("p", "", "actions");
      if (s.provision) {
        var id = "usb-pass-" + i, field = el("div", "", "field");
        var label = el("label", t.passphrase); label.htmlFor = id;
        var input = el("input"); input.id = id; input.type = "password"; input.autocomplete = "off";
        var err = el("p", "", "field-error"); err.id = id + "-error"; err.setAttribute("role", "alert");
        input.setAttribute("aria-describedby", err.id);
        field.appendChild(label); field.appendChild(input); field.appendChild(err); card.appendChild(field);
        var go = el("button", t.provision); go.type = "button"; go.className = "usb-provision";
        go.addEventListener("click", function () {
          err.textContent = "";
          if (s.provision.needs_passphrase && !input.value) { err.textContent = document.getElementById("i18n").dataset.required; input.focus(); return; }
          apply(s.stick, "provision", input.value, err);
        });
        row.appendChild(go);
      } else {
        ["import", "export"].forEach(function (action) {
          var b = el("button", t[action]); b.type = "button"; b.className = "usb-" + action;
          b.addEventListener("click", function () { apply(s.stick, action, null, null); });
          row.appendChild(b);
        });
      }
      card.appendChild(row);
      list.appendChild(card);
    });
  }
  function load() {
    fetch(t.api, {credentials: "same-origin"}).then(function (r) { return r.json().then(function (d) { return {ok: r.ok, d: d}; }); })
      .then(function (res) {
        if (!res.ok) { list.textContent = ""; list.appendChild(el("p", t.failed + msg(res.d.error), "bad")); return; }
        render(res.d.sticks || []);
      }, function () {});
  }
  document.getElementById("usb-refresh").addEventListener("click", load);
  load();
}());
/* Channel subscriptions: the hub's list, optional ones can be joined or left (effective at the next sync). */
(function () {
  "use strict";
  var box = document.getElementById("channels");
  if (!box) { return; }
  var t = box.dataset, en = document.documentElement.lang === "en";
  var rows = document.getElementById("channel-rows"), out = document.getElementById("channel-result");
  function csrf() { var m = document.querySelector("meta[name=csrf-token]"); return m ? m.content : ""; }
  function msg(e) { e = e || {}; return (en ? e.message_en : e.message) || e.message || ""; }
  function cell(tr, text) { var td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }
  function render(list) {
    rows.textContent = "";
    list.forEach(function (c) {
      var tr = document.createElement("tr");
      cell(tr, c.title + " (" + c.id + ")");
      cell(tr, "v" + c.version);
      cell(tr, c.mandatory ? t.mandatory : (c.subscribed ? t.subscribed : ""));
      var td = cell(tr, "");
      if (!c.mandatory) {
        var b = document.createElement("button");
        b.type = "button"; b.className = "secondary channel-toggle"; b.dataset.channel = c.id;
        b.textContent = c.subscribed ? t.off : t.on;
        b.addEventListener("click", function () {
          b.disabled = true;
          fetch(t.api + "/" + encodeURIComponent(c.id), {method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()}, body: JSON.stringify({on: !c.subscribed})})
            .then(function (r) { return r.json().then(function (d) { return {ok: r.ok, d: d}; }); })
            .then(function (res) {
              b.disabled = false;
              if (!res.ok) { out.className = "bad"; out.textContent = t.failed + msg(res.d.error); return; }
              c.subscribed = !c.subscribed;
              b.textContent = c.subscribed ? t.off : t.on;
              tr.children[2].textContent = c.subscribed ? t.subscribed : "";
              out.className = "ok"; out.textContent = t.changed;
            }, function () { b.disabled = false; out.className = "bad"; out.textContent = t.failed; });
        });
        td.appendChild(b);
      }
      rows.appendChild(tr);
    });
  }
  fetch(t.api, {credentials: "same-origin"}).then(function (r) { return r.json().then(function (d) { return {ok: r.ok, d: d}; }); })
    .then(function (res) {
      if (res.ok) { render(res.d.channels || []); } else { out.className = "bad"; out.textContent = t.failed + msg(res.d.error); }
    }, function () {});
}());
