/* Viewers: tell the user clearly when a resource was removed while it was open. */
(function () {
  "use strict";
  var box = document.querySelector(".player");
  if (!box) { return; }
  var media = document.getElementById("media");
  var note = box.querySelector(".removed");
  function removed() { note.textContent = box.dataset.removed; note.hidden = false; }
  if (media && (media.tagName === "VIDEO" || media.tagName === "AUDIO" || media.tagName === "IMG")) {
    media.addEventListener("error", removed);
    if (media.tagName === "IMG" && media.complete && media.naturalWidth === 0) { removed(); }
  }
  if (media && media.tagName === "IFRAME" && box.dataset.src) {
    fetch(box.dataset.src, {method: "HEAD"}).then(function (r) { if (r.status === 404) { removed(); } }, function () {});
  }
  // a video or audio that stops loading mid-play: check whether it is gone
  if (media && media.addEventListener) {
    media.addEventListener("stalled", function () {
      fetch(box.dataset.src, {method: "HEAD"}).then(function (r) { if (r.status === 404) { removed(); } }, function () {});
    });
  }
}());
