// Refreshes the status page from status.json every 2 s. Builds the same rows as the server
// (html.rs); uses textContent only, never innerHTML, so no value is ever parsed as markup.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg", W = 120, H = 28;
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    (kids || []).forEach(function (c) {
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }
  function words(s) { return s.replace(/_/g, " "); }
  function pct(r) { return r == null ? "\u2014" : (r * 100).toFixed(1) + "%"; }
  function secs(ms) { return (ms / 1000).toFixed(1) + " s"; }
  function millis(ms) {
    if (ms == null) return "\u2014";
    if (ms >= 1000) return secs(ms);
    if (ms >= 10) return ms.toFixed(0) + " ms";
    return ms >= 1 ? ms.toFixed(1) + " ms" : (ms * 1000).toFixed(0) + " \u00b5s";
  }
  function rate(r) { return r == null ? "\u2014" : r.toFixed(1); }
  function clock(ms) { return new Date(ms).toISOString().slice(11, 19); }
  var BREAKER = { closed: "\u25cf", half_open: "\u25d0", open: "\u25cb", forced_open: "\u25cb", disabled: "\u2013" };
  var HEALTH = { healthy: "\u2714", degraded: "\u25b2", unhealthy: "\u2716" };
  function badge(cls, symbol, text) {
    return el("span", { "class": "badge " + cls }, [el("span", { "aria-hidden": "true" }, [symbol]), " " + text]);
  }
  function count(n, one, many) { return n + " " + (n === 1 ? one : many); }
  function change(t) { return words(t.from) + " \u2192 " + words(t.to); }
  function spark(history, capacity, key, cls) {
    var values = history.map(function (p) { return p[key]; });
    var max = 1;
    if (key === "p95_ms") values.forEach(function (v) { if (v != null && v > max) max = v; });
    var slots = Math.max(capacity, 2) - 1, offset = Math.max(capacity - values.length, 0);
    var d = "", down = false, last = null;
    values.forEach(function (v, i) {
      if (v == null) { down = false; return; }
      var x = (offset + i) * W / slots, y = 1 + (1 - Math.min(Math.max(v / max, 0), 1)) * (H - 2);
      d += down ? "L" + x.toFixed(1) + " " + y.toFixed(1) + " " : "M" + x.toFixed(1) + " " + y.toFixed(1) + " h0 ";
      down = true; last = v;
    });
    var label = key === "p95_ms"
      ? "p95, now " + millis(last) + " (max " + millis(max) + ")"
      : "success rate, now " + pct(last);
    var svg = document.createElementNS(SVG, "svg");
    [["class", cls], ["width", W], ["height", H], ["viewBox", "0 0 " + W + " " + H], ["role", "img"], ["aria-label", label]]
      .forEach(function (a) { svg.setAttribute(a[0], a[1]); });
    var title = document.createElementNS(SVG, "title");
    title.textContent = label;
    var path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d.trim());
    svg.appendChild(title); svg.appendChild(path);
    return svg;
  }
  function row(s, capacity) {
    var name = el("th", { scope: "row" }, [s.name]);
    if (s.critical) { name.appendChild(document.createTextNode(" ")); name.appendChild(el("small", { "class": "tag" }, ["critical"])); }
    if (s.observing && s.observing.length) {
      var t = s.totals, reasons = [["open", t.would_reject_open], ["throttled", t.would_reject_throttled],
        ["rate limited", t.would_reject_rate_limited], ["overloaded", t.would_reject_overloaded]]
        .filter(function (r) { return r[1] > 0; }).map(function (r) { return r[1] + " " + r[0]; });
      var total = t.would_reject_open + t.would_reject_throttled + t.would_reject_rate_limited + t.would_reject_overloaded;
      name.appendChild(document.createTextNode(" "));
      name.appendChild(el("small", { "class": "tag" }, ["observe: " + s.observing.map(words).join(", ")]));
      name.appendChild(el("br"));
      name.appendChild(el("small", {}, ["would have refused " + total + (reasons.length ? " (" + reasons.join(", ") + ")" : "")]));
    }
    var breaker = el("td", {}, [badge("b-" + s.breaker, BREAKER[s.breaker] || "", words(s.breaker))]);
    if (s.retry_after_ms != null) { breaker.appendChild(el("br")); breaker.appendChild(el("small", {}, ["probe in " + secs(s.retry_after_ms)])); }
    var last = s.transitions[0];
    var lastCell = last
      ? el("td", {}, [change(last), el("br"), el("small", {}, [last.summary + " \u00b7 ", el("time", {}, [clock(last.at_unix_ms)])])])
      : el("td", {}, ["\u2014"]);
    return el("tr", { "data-service": s.name, "data-breaker": s.breaker, "data-health": s.health }, [
      name, breaker,
      el("td", {}, [badge("h-" + s.health, HEALTH[s.health] || "", s.health)]),
      el("td", { "class": "num" }, [pct(s.success_rate), el("br"), el("small", {}, [s.window_failures + " of " + s.window_calls + " failed"])]),
      el("td", { "class": "num" }, [millis(s.p50_ms) + " / " + millis(s.p95_ms) + " / " + millis(s.p99_ms)]),
      el("td", { "class": "num" }, [rate(s.calls_per_sec)]),
      el("td", { "class": "num" }, s.observed_limit != null
        ? [s.in_flight + " / " + s.limit, el("br"), el("small", {}, ["limit " + s.observed_limit + " observed"])]
        : [s.in_flight + " / " + s.limit]),
      el("td", { "class": "spark" }, [spark(s.history, capacity, "success_rate", "ok"), spark(s.history, capacity, "p95_ms", "p95")]),
      lastCell
    ]);
  }
  function replaceBody(table, rows, empty, span) {
    var tbody = el("tbody", {}, rows.length ? rows : [el("tr", {}, [el("td", { colspan: span }, [empty])])]);
    var old = document.querySelector("#" + table + " tbody");
    old.parentNode.replaceChild(tbody, old);
  }
  function render(view) {
    replaceBody("services", view.services.map(function (s) { return row(s, view.history_len); }), "No service registered.", "9");
    var all = [];
    view.services.forEach(function (s) { s.transitions.forEach(function (t) { all.push([s.name, t]); }); });
    all.sort(function (a, b) { return b[1].at_unix_ms - a[1].at_unix_ms; });
    replaceBody("transitions", all.map(function (p) {
      var t = p[1], w = t.window;
      return el("tr", {}, [el("td", {}, [el("time", {}, [clock(t.at_unix_ms)])]), el("th", { scope: "row" }, [p[0]]),
        el("td", {}, [change(t)]), el("td", {}, [t.summary]),
        el("td", {}, [count(w.calls, "call", "calls") + ", " + w.failures + " failed, " + w.consecutive_failures + " in a row"])]);
    }), "No transition yet.", "5");
    var notClosed = view.services.filter(function (s) { return s.breaker !== "closed"; }).length;
    var summary = document.getElementById("summary");
    summary.textContent = (view.ready ? "Ready" : "NOT READY") + " \u00b7 " +
      count(view.services.length, "service", "services") + " \u00b7 " +
      count(notClosed, "breaker not closed", "breakers not closed") + " \u00b7 updated ";
    summary.appendChild(el("time", {}, [clock(view.generated_at_unix_ms)]));
    summary.appendChild(document.createTextNode(" UTC"));
    document.body.removeAttribute("data-stale");
    document.body.setAttribute("data-updated", String(view.generated_at_unix_ms));
  }
  function refresh() {
    fetch("status.json", { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(render)
      .catch(function () {
        document.body.setAttribute("data-stale", "true");
        document.getElementById("summary").textContent = "Refresh failed; showing the last answer. Retrying\u2026";
      });
  }
  refresh();
  setInterval(refresh, 2000);
})();
