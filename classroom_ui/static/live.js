/* The live lesson's player (classroom screen and tablets) and the tablet's way back to the central teacher.
   Plays /live/<L>/master.m3u8 from this appliance with the vendored hls.js (Chromium has no native HLS),
   reads /live/<L>/status.json for how far behind live it is, audio-only and the current slide, and on a
   tablet posts hands, questions and poll answers through the outbox (app.js) to /api/v1/live/<L>/. */
(function () {
  "use strict";
  var SCHEDULE_EVERY_MS = 10000;
  var box = document.getElementById("live");
  var lesson = box ? box.dataset.lesson : "";
  // the timetable moves on: a lesson starting (or ending, or another one on) reloads the page
  setInterval(function () {
    fetch("/api/v1/live/schedule", {credentials: "same-origin", cache: "no-store"}).then(function (r) { return r.json(); })
      .then(function (s) { var now = s.current ? s.current.lesson : ""; if (now !== lesson) { location.reload(); } })
      .catch(function () {});
  }, SCHEDULE_EVERY_MS);
  if (!lesson) { return; }
  var base = "/live/" + encodeURIComponent(lesson) + "/";
  var video = document.getElementById("live-video");
  var slide = document.getElementById("live-slide");
  var note = document.getElementById("live-note");
  var sound = document.getElementById("live-sound");
  var BEHIND_SHOWN_S = 8;  // a little behind live is normal (the player starts MARGIN_SEGMENTS back)
  // a player keeps this many segments between itself and the newest the appliance holds: what it
  // plays on while the WAN is cut (the appliance's playlist starts as far back: EXT-X-START)
  var MARGIN_SEGMENTS = 5;
  var hls = null;
  var RESTART_MS = 8000;
  var startedAt = 0;

  function text(name, s) { return (box.dataset[name] || "").replace("{s}", s); }

  function start() {
    startedAt = Date.now();
    var src = base + "master.m3u8";
    if (window.Hls && window.Hls.isSupported()) {
      hls = new window.Hls({liveSyncDurationCount: MARGIN_SEGMENTS, liveMaxLatencyDurationCount: 30, maxBufferLength: 30,
                            manifestLoadingMaxRetry: 1e6, levelLoadingMaxRetry: 1e6, fragLoadingMaxRetry: 1e6});
      // the player keeps its distance from the newest held segment for as long as it plays (hls.js
      // never slows down to make room), so it starts only once that margin is buffered ahead: early
      // in a lesson the appliance holds less than the margin and a player starting at once would
      // have nothing to play on from when the WAN drops
      var own = hls;
      own.on(window.Hls.Events.FRAG_BUFFERED, function (_e, data) {
        if (own !== hls || !video.paused || video.ended) { return; }
        var level = own.levels[data.frag.level];
        var details = level && level.details;
        var margin = (MARGIN_SEGMENTS - 0.5) * (details ? details.targetduration : data.frag.duration);
        if (!details || !details.live || aheadS() >= margin) { video.play().catch(function () {}); }
      });
      hls.on(window.Hls.Events.ERROR, function (_e, data) {
        // the lesson may not be there yet, or the appliance's Wi-Fi dropped: try again, never give up
        if (data.fatal) { setTimeout(function () { hls.loadSource(src); hls.startLoad(); }, 3000); }
      });
      hls.loadSource(src);
      hls.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = src;
      video.play().catch(function () {});
    }
  }

  function aheadS() {
    var b = video.buffered;
    return b.length ? b.end(b.length - 1) - video.currentTime : 0;
  }

  function behindS() {
    if (hls && hls.liveSyncPosition && video.currentTime > 0) { return Math.max(0, hls.liveSyncPosition - video.currentTime); }
    return 0;
  }

  function show(status) {
    var lines = [];
    var audioOnly = /^a/.test(status.rung || "") || (video.readyState > 1 && video.videoWidth === 0);
    // picture to sound only: buffers made with a picture track stall where the picture ends, however
    // much sound follows; the appliance's playlist starts again where the sound only began, so the
    // player starts afresh there (at most every RESTART_MS)
    if (hls && /^a/.test(status.rung || "") && video.videoWidth > 0 && Date.now() - startedAt > RESTART_MS) {
      hls.destroy();
      start();
    }
    box.classList.toggle("audio-only", audioOnly);
    if (status.state === "waiting") { lines.push(text("waiting")); }
    if (status.state === "stalled") { lines.push(text("stalled")); }
    var behind = Math.round(Math.max(status.behind_s || 0, behindS()));
    if (behind >= BEHIND_SHOWN_S && status.state !== "ended" && status.state !== "recorded") { lines.push(text("behind", behind)); }
    if (audioOnly) { lines.push(text("audio")); }
    if (status.state === "ended") { lines.push(text("ended")); }
    note.textContent = lines.join(" ");
    if (status.state === "recorded" && status.recording) {
      note.textContent = text("recorded") + " ";
      var a = document.createElement("a");
      a.href = "/library/" + encodeURIComponent(status.recording);
      a.textContent = text("open");
      note.appendChild(a);
    }
    // the slide: beside the picture while there is one, in its place when only sound goes on
    if (status.slide) {
      if (slide.getAttribute("src") !== status.slide) { slide.src = status.slide; }
      slide.hidden = false;
    } else {
      slide.hidden = true;
    }
    box.dataset.state = status.state || "";
  }

  function poll() {
    fetch(base + "status.json", {cache: "no-store"}).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (s) { show(s); } else { note.textContent = text("waiting"); } })
      .catch(function () {});
  }

  sound.addEventListener("click", function () { video.muted = false; video.play().catch(function () {}); sound.hidden = true; });
  start();
  poll();
  setInterval(poll, 2000);

  // -- the tablet: hands, questions, poll answers ---------------------------------------------------------
  var talk = document.querySelector(".live-talk");
  if (!talk || !window.SchoolEdge) { return; }
  var api = "/api/v1/live/" + encodeURIComponent(lesson) + "/";
  var mine = document.getElementById("live-mine");
  var pollBox = document.getElementById("live-poll");
  var shownPoll = "";

  function send(path, body) { window.SchoolEdge.submit(api + path, body, {tag: "live"}); setTimeout(refresh, 500); }

  function listMine(items) {
    mine.replaceChildren.apply(mine, items.slice(-8).map(function (m) {
      var li = document.createElement("li");
      li.className = "live-msg " + m.state;
      var what = m.kind === "hand" ? talk.dataset.hand : (m.kind === "question" ? m.text : talk.dataset.answered + (m.option + 1));
      li.textContent = what + " · " + (m.state === "delivered" ? talk.dataset.delivered : talk.dataset.queued);
      return li;
    }));
  }

  function showPoll(p) {
    if (!p) { pollBox.hidden = true; shownPoll = ""; return; }
    if (p.id === shownPoll) { return; }
    shownPoll = p.id;
    document.getElementById("live-poll-q").textContent = p.question;
    var opts = document.getElementById("live-poll-options");
    opts.replaceChildren.apply(opts, p.options.map(function (o, i) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = o;
      b.addEventListener("click", function () { send("answer", {poll: p.id, option: i}); });
      return b;
    }));
    pollBox.hidden = false;
  }

  function refresh() {
    fetch(box.dataset.scheduleUrl, {credentials: "same-origin", cache: "no-store"}).then(function (r) { return r.json(); })
      .then(function (s) { listMine(s.mine || []); showPoll(s.poll || null); })
      .catch(function () {});
  }

  document.getElementById("live-hand").addEventListener("click", function () { send("hand", {}); });
  document.getElementById("live-question").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var input = ev.target.elements.text;
    var q = input.value.trim();
    if (!q) { return; }
    send("question", {text: q});
    input.value = "";
  });
  refresh();
  setInterval(refresh, 3000);
})();
