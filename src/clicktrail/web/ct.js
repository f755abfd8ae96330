/* clicktrail first-party conversion snippet (docs/conversions.md#the-browser-snippet).
 *
 * <script src="https://SHORT-DOMAIN/ct.js" data-key="pk_..." async></script>
 *
 * On every page: keeps the click id of the landing URL (?ct_cid=...) for `data-days` days (30)
 * in a cookie of the page's own site and in localStorage. On a page that converts:
 *   clicktrail.convert({event: "purchase", value: "49.90", currency: "EUR", txn: "order-1"})
 * or, without writing code, data-event / data-value / data-currency / data-txn on the tag.
 * Reports go to the server the script came from: a beacon (POST, text/plain JSON), else a
 * keepalive fetch, else a 1x1 pixel. No other script, no third-party cookie, no fingerprinting.
 * Calls made before the script loaded wait in window.clicktrailq (an array of [name, args]).
 */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me) return;
  var data = me.dataset || {};
  var origin = new URL(me.src, location.href).origin;
  var key = data.key || "";
  var param = data.param || "ct_cid";
  var days = parseFloat(data.days || "30");
  if (!(days > 0 && days <= 400)) days = 30;
  var NAME = "_ct_cid";
  var WELL_FORMED = /^[A-Za-z0-9_-]{1,64}$/;

  function remember(cid) {
    var seconds = Math.round(days * 86400);
    var secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = NAME + "=" + cid + "; Max-Age=" + seconds + "; Path=/; SameSite=Lax" + secure;
    try {
      localStorage.setItem(NAME, JSON.stringify({ id: cid, until: Date.now() + seconds * 1000 }));
    } catch (e) { /* storage refused: the cookie stays */ }
  }

  function fromCookie() {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf(NAME + "=") === 0) return parts[i].slice(NAME.length + 1);
    }
    return null;
  }

  function fromStorage() {
    try {
      var saved = JSON.parse(localStorage.getItem(NAME) || "null");
      if (saved && saved.until > Date.now()) return saved.id;
      if (saved) localStorage.removeItem(NAME);
    } catch (e) { /* unreadable: ignored */ }
    return null;
  }

  function clickId() {
    var cid = fromCookie() || fromStorage();
    return cid && WELL_FORMED.test(cid) ? cid : null;
  }

  var landed = new URLSearchParams(location.search).get(param);
  if (landed && WELL_FORMED.test(landed)) remember(landed);

  function convert(conversion) {
    var c = conversion || {};
    var cid = c.click_id || clickId();
    if (!cid || !key) return false; // not from a tracked click: nothing to report
    var body = { key: key, ct_cid: cid };
    ["event", "value", "currency", "txn", "metadata"].forEach(function (name) {
      if (c[name] !== undefined && c[name] !== null && c[name] !== "") body[name] = c[name];
    });
    var text = JSON.stringify(body);
    var url = origin + "/v1/conversions/beacon";
    if (navigator.sendBeacon && navigator.sendBeacon(url, new Blob([text], { type: "text/plain" }))) {
      return true;
    }
    if (window.fetch) {
      fetch(url, { method: "POST", body: text, keepalive: true, mode: "no-cors",
                   headers: { "Content-Type": "text/plain" } });
      return true;
    }
    var q = new URLSearchParams({ key: key, cid: cid });
    ["event", "value", "currency", "txn"].forEach(function (name) {
      if (body[name] !== undefined) q.set(name, String(body[name]));
    });
    new Image(1, 1).src = origin + "/v1/conversions/pixel.gif?" + q.toString();
    return true;
  }

  var api = { convert: convert, clickId: clickId };
  var queued = window.clicktrailq || [];
  window.clicktrail = api;
  for (var i = 0; i < queued.length; i++) {
    if (queued[i] && api[queued[i][0]]) api[queued[i][0]].apply(null, [].slice.call(queued[i], 1));
  }
  if (data.event) {
    convert({ event: data.event, value: data.value, currency: data.currency, txn: data.txn });
  }
})();
