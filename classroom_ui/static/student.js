/* Student assignment page: the exercise player (instant feedback, score), hand-in with the camera,
   marking a resource as finished. Answers and hand-ins go through the outbox (app.js). */
(function () {
  "use strict";
  var lang = document.documentElement.lang;
  function message(data) { var e = (data && data.error) || {}; return (lang === "en" ? e.message_en : e.message) || e.message || ""; }

  var ex = document.getElementById("exercise");
  if (ex) {
    var btn = document.getElementById("submit-answers"), out = document.getElementById("exercise-result");
    var collect = function () {
      var answers = {};
      ex.querySelectorAll(".question").forEach(function (q) {
        var id = q.dataset.q, type = q.dataset.type;
        if (type === "multiple") {
          answers[id] = Array.prototype.map.call(q.querySelectorAll("input:checked"), function (i) { return +i.value; });
        } else if (type === "single") {
          var s = q.querySelector("input:checked"); answers[id] = s ? +s.value : null;
        } else if (type === "truefalse") {
          var t = q.querySelector("input:checked"); answers[id] = t ? t.value === "true" : null;
        } else { answers[id] = q.querySelector("input").value; }
      });
      return answers;
    };
    var showResult = function (detail) {
      btn.disabled = false;
      if (detail.status >= 400) { out.className = "bad"; out.textContent = ex.dataset.failed + message(detail.data); return; }
      var r = detail.data;
      ex.querySelectorAll(".question").forEach(function (q) {
        var ok = r.results && r.results[q.dataset.q];
        var fb = q.querySelector(".feedback");
        fb.textContent = ok ? "✓ " + ex.dataset.right : "✗ " + ex.dataset.wrong;
        fb.className = "feedback " + (ok ? "ok" : "bad");
      });
      out.className = "score";
      out.textContent = ex.dataset.score + " " + r.score + " / " + r.total;
      var count = document.getElementById("attempts");
      if (count) { count.dataset.n = +count.dataset.n + 1; count.textContent = count.dataset.text.replace("{n}", count.dataset.n); }
    };
    document.addEventListener("outbox:sent", function (e) { if (e.detail.item.tag === ex.dataset.url) { showResult(e.detail); } });
    document.addEventListener("outbox:kept", function (e) {
      if (e.detail.item.tag === ex.dataset.url) { out.className = "hint"; out.textContent = ex.dataset.queued; }
    });
    document.addEventListener("outbox:login", function (e) {
      if (e.detail.item.tag !== ex.dataset.url) { return; }
      out.className = "bad"; out.textContent = ex.dataset.expired + " ";
      var a = document.createElement("a"); a.href = "/student/login?expired=1&next=" + encodeURIComponent(location.pathname);
      a.textContent = ex.dataset.relogin; out.appendChild(a);
    });
    if (window.SchoolEdge.pending(ex.dataset.url).length) { out.className = "hint"; out.textContent = ex.dataset.queued; btn.disabled = true; }
    ex.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (btn.disabled) { return; }  // a double tap sends once
      btn.disabled = true;
      window.SchoolEdge.submit(ex.dataset.url, {answers: collect()}, {tag: ex.dataset.url});
    });
  }

  var hand = document.getElementById("handin");
  if (hand) {
    var photo = document.getElementById("photo"), perr = document.getElementById("photo-error");
    var preview = document.getElementById("photo-preview"), hres = document.getElementById("handin-result");
    var wbtn = document.getElementById("submit-work"), ready = null;
    // Photos from a tablet camera are large: shrink them to 1600 px JPEG before keeping them.
    var shrink = function (file) {
      return new Promise(function (resolve) {
        if (!/^image\/(jpeg|png|webp)$/.test(file.type)) {
          var fr = new FileReader(); fr.onload = function () { resolve({name: file.name, data: fr.result, size: file.size}); }; fr.readAsDataURL(file); return;
        }
        var img = new Image();
        img.onload = function () {
          var scale = Math.min(1, 1600 / Math.max(img.width, img.height));
          var c = document.createElement("canvas"); c.width = Math.round(img.width * scale); c.height = Math.round(img.height * scale);
          c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
          var url = c.toDataURL("image/jpeg", 0.8);
          URL.revokeObjectURL(img.src);
          resolve({name: file.name.replace(/\.\w+$/, "") + ".jpg", data: url, size: Math.round(url.length * 0.75)});
        };
        img.onerror = function () { resolve(null); };
        img.src = URL.createObjectURL(file);
      });
    };
    photo.addEventListener("change", function () {
      perr.textContent = ""; ready = null; preview.hidden = true;
      var f = photo.files[0];
      if (!f) { return; }
      if (f.size > +hand.dataset.max) { perr.textContent = hand.dataset.tooBig; photo.value = ""; return; }
      wbtn.disabled = true;
      ready = shrink(f).then(function (r) {
        wbtn.disabled = false;
        if (r && r.data.indexOf("data:image/") === 0) { preview.src = r.data; preview.hidden = false; }
        return r;
      });
    });
    document.addEventListener("outbox:sent", function (e) {
      if (e.detail.item.tag !== hand.dataset.url) { return; }
      wbtn.disabled = false;
      if (e.detail.status >= 400) {
        perr.textContent = message(e.detail.data) || hand.dataset.failed; hres.textContent = ""; return;
      }
      hres.className = "ok"; hres.textContent = hand.dataset.done;
      hand.reset(); preview.hidden = true; ready = null;
    });
    document.addEventListener("outbox:kept", function (e) {
      if (e.detail.item.tag === hand.dataset.url) { hres.className = "hint"; hres.textContent = hand.dataset.queued; }
    });
    document.addEventListener("outbox:login", function (e) {
      if (e.detail.item.tag === hand.dataset.url) { hres.className = "bad"; hres.textContent = hand.dataset.expired; }
    });
    hand.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (wbtn.disabled) { return; }
      var text = document.getElementById("text").value.trim();
      (ready || Promise.resolve(null)).then(function (file) {
        if (!file && !text) { perr.textContent = hand.dataset.empty; return; }
        if (file && file.size > +hand.dataset.max) { perr.textContent = hand.dataset.tooBig; return; }
        wbtn.disabled = true;
        window.SchoolEdge.submit(hand.dataset.url, {text: text, files: file ? [{name: file.name, data: file.data}] : []},
                                 {multipart: true, tag: hand.dataset.url});
      });
    });
  }

  var fin = document.getElementById("finished");
  if (fin) {
    var media = document.getElementById("media");
    var report = function (body) {
      return fetch("/api/v1/progress/" + encodeURIComponent(fin.dataset.resource), {method: "PUT", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": window.SchoolEdge.csrf()}, body: JSON.stringify(body)});
    };
    report({state: "in_progress", percent: 0}).catch(function () {});
    if (media && media.duration !== undefined) {
      var last = 0;
      media.addEventListener("timeupdate", function () {
        if (!media.duration || Date.now() - last < 10000) { return; }
        last = Date.now();
        report({state: "in_progress", percent: Math.min(100, 100 * media.currentTime / media.duration), position: media.currentTime}).catch(function () {});
      });
    }
    fin.addEventListener("click", function () {
      fin.disabled = true;
      report({state: "completed", percent: 100}).then(function (r) {
        fin.disabled = false;
        if (r.ok) { document.getElementById("finished-msg").textContent = fin.dataset.done; }
      }, function () { fin.disabled = false; });
    });
  }
}());
