// The live page: fetch the server-rendered fragment again every few seconds and put it in
// place when it changed (the server answers 304 to the ETag of what is shown).
(function () {
  "use strict";
  var view = document.getElementById("view");
  var status = document.getElementById("status");
  var etag = view.getAttribute("data-etag");
  var every = 3000;

  function wire() {
    var form = view.querySelector("form.choose");
    if (!form) return;
    form.classList.add("auto");
    form.addEventListener("change", function (e) {
      var q = new URLSearchParams();
      q.set("region", form.elements.region.value);
      if (e.target.name === "period") q.set("period", form.elements.period.value);
      window.location.search = q.toString();
    });
  }

  function poll() {
    var headers = etag ? { "If-None-Match": etag } : {};
    fetch("/v1/page" + window.location.search, { headers: headers, cache: "no-store" })
      .then(function (r) {
        if (r.status === 304) return null;
        if (!r.ok) throw new Error("HTTP " + r.status);
        etag = r.headers.get("ETag");
        return r.text();
      })
      .then(function (html) {
        var now = new Date().toLocaleTimeString();
        if (html !== null) {
          view.innerHTML = html;
          view.setAttribute("data-etag", etag || "");
          wire();
          status.textContent = "Live: updated " + now;
        } else {
          status.textContent = "Live: up to date at " + now;
        }
        status.classList.remove("stale");
      }, function () {
        status.textContent = "Live: no answer from the service, retrying";
        status.classList.add("stale");
      })
      .then(function () { window.setTimeout(poll, every); });
  }

  wire();
  window.setTimeout(poll, every);
})();
