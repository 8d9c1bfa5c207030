/* school-edge pages: the outbox (answers and hand-ins survive a Wi-Fi drop), logout, the service worker.
   Every queued request carries an Idempotency-Key that never changes between tries, so the
   appliance records it once however often the tablet retries. Items belong to the person who
   made them and are only ever sent from a page of that same person. */
(function () {
  "use strict";
  var KEY = "school-edge-outbox";
  var net = document.getElementById("net");
  function meta(name) { var m = document.querySelector("meta[name=" + name + "]"); return m ? m.content : ""; }
  var me = meta("person");

  function load() { try { return JSON.parse(localStorage.getItem(KEY) || "[]"); } catch (e) { return []; } }
  function save(items) { localStorage.setItem(KEY, JSON.stringify(items)); }
  function mine(items) { return items.filter(function (i) { return me && i.who === me; }); }
  function uuid() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  }
  function show(kind) {
    if (!net) { return; }
    net.hidden = false;
    net.className = "net" + (kind === "sent" ? " ok" : "");
    net.textContent = net.dataset[kind];
    if (kind === "sent") { setTimeout(function () { net.hidden = true; }, 4000); }
  }
  function dataUrlToBlob(url) {
    var parts = url.split(","), type = parts[0].split(":")[1].split(";")[0], bin = atob(parts[1]);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return new Blob([bytes], {type: type});
  }

  function send(item) {
    var headers = {"Idempotency-Key": item.key, "X-CSRF-Token": meta("csrf-token")};
    var body;
    if (item.multipart) {
      body = new FormData();
      body.append("text", item.body.text || "");
      (item.body.files || []).forEach(function (f) { body.append("files", dataUrlToBlob(f.data), f.name); });
    } else {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(item.body);
    }
    return fetch(item.url, {method: item.method || "POST", credentials: "same-origin", headers: headers, body: body})
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) { return {status: r.status, data: data}; });
      });
  }
  function emit(name, detail) { document.dispatchEvent(new CustomEvent(name, {detail: detail})); }
  function drop(key) { save(load().filter(function (i) { return i.key !== key; })); }

  var flushing = false;
  function flush() {
    if (flushing || !mine(load()).length) { return Promise.resolve(); }
    flushing = true;
    var sentQueued = false;
    function kept(item, err) {
      var all = load();
      all.forEach(function (i) { if (i.key === item.key) { i.tries = (i.tries || 0) + 1; } });
      save(all);
      // the link is down: everything waiting behind this item waits too; tell each page part
      if (String(err.message) !== "login") { mine(load()).forEach(function (i) { emit("outbox:kept", {item: i}); }); }
      throw err;
    }
    function answered(item, res) {
      // an expired session looks like 401, or like a CSRF refusal (no session, no token): keep it, log in again
      if (res.status === 403 && (res.data.error || {}).code === "csrf") {
        return fetch("/api/v1/session", {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (s) {
          if (!s.logged_in) { emit("outbox:login", {item: item}); throw new Error("login"); }
          throw new Error("stale token");
        });
      }
      if (res.status === 401) { emit("outbox:login", {item: item}); throw new Error("login"); }
      if (res.status >= 500 || res.status === 408 || res.status === 429) { throw new Error("server " + res.status); }
      drop(item.key);  // answered for good (a 4xx will not change by sending again)
      if (item.tries) { sentQueued = true; }
      emit("outbox:sent", {item: item, status: res.status, data: res.data});
    }
    function next() {
      var all = mine(load());
      if (!all.length) { return Promise.resolve(); }
      var item = all[0];
      return send(item).then(function (res) { return answered(item, res); })
        .catch(function (err) { return kept(item, err); })
        .then(next);
    }
    return next().then(function () {
      flushing = false;
      if (sentQueued) { show("sent"); }
    }, function (err) {
      flushing = false;
      if (String(err.message).indexOf("login") < 0) { show("offline"); }
    });
  }

  // Queue a request and try at once. Calls onResult(detail) when the server has answered
  // (now or later, even after a reload of the page), onKept(item) when it is kept for later.
  function post(url, body, opts) {
    opts = opts || {};
    var item = {key: uuid(), url: url, body: body, who: me, at: Date.now(), multipart: !!opts.multipart, tag: opts.tag || ""};
    var items = load(); items.push(item);
    try { save(items); } catch (e) { item.unsaved = true; }  // storage full: still try to send it now
    return item;
  }

  window.SchoolEdge = {
    submit: function (url, body, opts) {
      var item = post(url, body, opts);
      if (item.unsaved) { return send(item).then(function (res) { emit("outbox:sent", {item: item, status: res.status, data: res.data}); }); }
      return flush();
    },
    flush: flush, csrf: function () { return meta("csrf-token"); }, uuid: uuid,
    pending: function (tag) { return mine(load()).filter(function (i) { return !tag || i.tag === tag; }); }
  };
  window.addEventListener("online", flush);
  setInterval(flush, 3000);

  document.querySelectorAll("button.logout").forEach(function (b) {
    b.addEventListener("click", function () {
      // the next person on this tablet must not see this person's pages offline (kept answers stay: they carry their owner)
      if (window.caches) { caches.keys().then(function (keys) { keys.forEach(function (k) { caches.delete(k); }); }); }
      fetch("/api/v1/logout", {method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": meta("csrf-token")}})
        .then(function () { location.href = b.dataset.to; }, function () { location.href = b.dataset.to; });
    });
  });
  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register(meta("sw") || "/sw.js", {scope: "/"}).catch(function () {});
  }
  document.addEventListener("DOMContentLoaded", flush);
  if (document.readyState !== "loading") { setTimeout(flush, 0); }
}());
