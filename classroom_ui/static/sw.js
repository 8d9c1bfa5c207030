/* Service worker: keeps the page shell and static assets so a page opens while Wi-Fi flickers.
   Pages: network first, cached copy when the appliance cannot be reached.
   Assets (/assets/...?v=hash): cache first, they never change under the same URL.
   Answers and hand-ins are NOT handled here: the page's outbox (app.js) keeps them. */
var CACHE = "school-edge-v1";
self.addEventListener("install", function (e) { self.skipWaiting(); });
self.addEventListener("activate", function (e) { e.waitUntil(self.clients.claim()); });
self.addEventListener("fetch", function (e) {
  var req = e.request;
  var url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin) { return; }
  if (url.pathname.indexOf("/assets/") === 0) {
    e.respondWith(caches.open(CACHE).then(function (c) {
      return c.match(req).then(function (hit) {
        return hit || fetch(req).then(function (r) { if (r.ok) { c.put(req, r.clone()); } return r; });
      });
    }));
    return;
  }
  var accept = req.headers.get("Accept") || "";
  if (req.mode === "navigate" || accept.indexOf("text/html") >= 0) {
    e.respondWith(fetch(req).then(function (r) {
      // never keep what the server marks private (an exercise's answers opened by a teacher): the tablet is shared
      var mine = /private|no-store/.test(r.headers.get("Cache-Control") || "");
      if (r.ok && !mine) { var copy = r.clone(); caches.open(CACHE).then(function (c) { c.put(req, copy); }); }
      return r;
    }).catch(function () {
      return caches.match(req).then(function (hit) {
        return hit || new Response("<!doctype html><meta charset=utf-8><p>连不上学校服务器，请稍后再试。Cannot reach the school server; try again soon.</p>",
          {status: 503, headers: {"Content-Type": "text/html; charset=utf-8"}});
      });
    }));
  }
});
