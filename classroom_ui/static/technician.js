/* Technician page: refresh the status, run a sync and follow its progress. */
(function () {
  "use strict";
  var dl = document.getElementById("status");
  function fmtBytes(n) { var u = ["B", "KB", "MB", "GB", "TB"], i = 0; while (n >= 1024 && i < 4) { n /= 1024; i++; } return n.toFixed(i ? 1 : 0) + " " + u[i]; }
  function refresh() {
    fetch(dl.dataset.api, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (s) {
      dl.querySelectorAll("dd[data-k]").forEach(function (dd) {
        var k = dd.dataset.k;
        if (!(k in s) || s[k] === null || s[k] === "") { return; }
        if (dd.dataset.fmt === "bytes") { dd.textContent = fmtBytes(s.disk_free_bytes) + " / " + fmtBytes(s.disk_total_bytes); }
        else if (dd.dataset.fmt === "time" && typeof s[k] === "number") { dd.textContent = new Date(s[k] * 1000).toLocaleString(); }
        else { dd.textContent = typeof s[k] === "object" ? JSON.stringify(s[k]) : String(s[k]); }
      });
    }).catch(function () {});
  }
  setInterval(refresh, 5000);

  var btn = document.getElementById("sync-now");
  var bar = document.getElementById("sync-progress");
  var msg = document.getElementById("sync-message");
  function csrf() { var m = document.querySelector("meta[name=csrf-token]"); return m ? m.content : ""; }
  function poll() {
    fetch(btn.dataset.progress, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (p) {
      bar.hidden = false;
      bar.value = Math.round((p.fraction || 0) * 100);
      msg.textContent = (p.running ? btn.dataset.running + " " : "") + (p.message || "");
      if (p.running) { setTimeout(poll, 500); return; }
      btn.disabled = false;
      if (p.state === "failed") { msg.textContent = btn.dataset.failed + (p.message || ""); msg.className = "bad"; }
      else if (p.state === "done") { msg.textContent = btn.dataset.done + " " + (p.message || ""); msg.className = "ok"; bar.value = 100; }
      refresh();
    }).catch(function () { setTimeout(poll, 2000); });
  }
  if (btn && btn.dataset.start) {
    btn.addEventListener("click", function () {
      btn.disabled = true; msg.className = ""; msg.textContent = btn.dataset.running;
      fetch(btn.dataset.start, {method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": csrf()}})
        .then(function (r) { return r.json().then(function (d) { return {ok: r.ok, d: d}; }); })
        .then(function (res) {
          if (!res.ok) { btn.disabled = false; msg.className = "bad"; msg.textContent = btn.dataset.failed + ((res.d.error || {}).message || ""); return; }
          poll();
        }).catch(function () { btn.disabled = false; msg.className = "bad"; msg.textContent = btn.dataset.failed; });
    });
    poll();
  }
}());
