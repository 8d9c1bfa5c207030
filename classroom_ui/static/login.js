/* Student login: pictures in order or a PIN, a QR card (fragment #t=...), an in-page scanner where the tablet has one. */
(function () {
  "use strict";
  var lang = document.documentElement.lang;
  function message(data) {
    var e = (data && data.error) || {};
    return (lang === "en" ? e.message_en : e.message) || e.message || "";
  }
  function postLogin(url, body) {
    return fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-Requested-With": "school-edge"}, body: JSON.stringify(body)})
      .then(function (r) { return r.json().catch(function () { return {}; }).then(function (d) { return {ok: r.ok, data: d}; }); });
  }

  var form = document.getElementById("student-login");
  if (form) {
    var chosen = [], err = document.getElementById("login-error"), go = document.getElementById("login-go");
    var shown = document.getElementById("chosen");
    form.querySelectorAll("button.pic").forEach(function (b) {
      b.addEventListener("click", function () {
        if (chosen.length >= +form.dataset.count) { return; }
        chosen.push(b.dataset.pic);
        b.setAttribute("aria-pressed", "true");
        shown.textContent = chosen.map(function (p) { return form.querySelector("[data-pic=" + p + "] .pic-label").textContent; }).join(" → ");
        err.textContent = "";
      });
    });
    form.addEventListener("reset", function () {
      chosen = []; err.textContent = ""; if (shown) { shown.textContent = ""; }
      form.querySelectorAll("button.pic").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (go.disabled) { return; }
      var body = {class_id: +form.dataset["class"], person_id: +form.dataset.person};
      if (form.dataset.kind === "picture") { body.pictures = chosen; } else { body.pin = document.getElementById("pin").value; }
      go.disabled = true;
      postLogin("/api/v1/login/student", body).then(function (res) {
        if (res.ok) { location.href = form.dataset.next || "/student"; return; }
        go.disabled = false;
        form.dispatchEvent(new Event("reset"));
        err.textContent = message(res.data);
        var pin = document.getElementById("pin"); if (pin) { pin.value = ""; pin.focus(); }
      }, function () { go.disabled = false; err.textContent = document.getElementById("net").dataset.offline; });
    });
  }

  function cardLogin(token, status) {
    postLogin("/api/v1/login/card", {token: token}).then(function (res) {
      if (res.ok) { location.replace("/student"); return; }
      status.textContent = message(res.data) || status.dataset.bad;
    }, function () { status.textContent = status.dataset.bad; });
  }
  var status = document.getElementById("card-status");
  if (status) {
    var m = /[#&]t=([^&]+)/.exec(location.hash);
    if (m) { history.replaceState(null, "", location.pathname); cardLogin(decodeURIComponent(m[1]), status); }
    else { status.textContent = status.dataset.bad; }
  }

  // Scanning inside the page needs the browser's BarcodeDetector (Chrome on Android has it).
  var scan = document.getElementById("scan");
  if (scan && "BarcodeDetector" in window && navigator.mediaDevices) {
    scan.hidden = false;
    scan.addEventListener("click", function () {
      var video = document.getElementById("scan-view"), msg = document.getElementById("scan-msg");
      var detector = new window.BarcodeDetector({formats: ["qr_code"]});
      navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}}).then(function (stream) {
        video.srcObject = stream; video.hidden = false; video.play();
        var timer = setInterval(function () {
          detector.detect(video).then(function (codes) {
            var hit = codes.map(function (c) { return /[#&]t=([^&]+)/.exec(c.rawValue); }).filter(Boolean)[0];
            if (!hit) { return; }
            clearInterval(timer); stream.getTracks().forEach(function (t) { t.stop(); });
            msg.dataset.bad = scan.dataset.fail;
            cardLogin(decodeURIComponent(hit[1]), msg);
          });
        }, 400);
      }, function () { msg.textContent = scan.dataset.fail; });
    });
  }
}());
