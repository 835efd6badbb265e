// The interface's only script (served from this origin; the page allows no inline script).
// Quick exit, live feed, check as you type, local dates, print, limits counted in bytes.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf"]')?.content || "";

  // Quick exit: lock the session on the server, then replace this page with a neutral one
  // (location.replace leaves no entry to go back to).
  function quickExit(event) {
    if (event) event.preventDefault();
    try {
      fetch("/lock", { method: "POST", keepalive: true, credentials: "same-origin",
        headers: { "x-csrf-token": csrf } }).catch(() => {});
    } catch (e) { /* leave anyway */ }
    document.body.innerHTML = "";
    window.location.replace("/exit");
  }
  document.getElementById("exit-form")?.addEventListener("submit", quickExit);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") quickExit(e); });

  // Dates in the reader's language and time zone.
  const html = document.documentElement;
  const locales = [html.lang, html.dataset.fallback || "en", "en"];
  function localDates(root) {
    let format, day;
    try {
      // The zone is named beside the time ("14:30 GMT+9").
      format = new Intl.DateTimeFormat(locales, {
        year: "numeric", month: "short", day: "numeric",
        hour: "2-digit", minute: "2-digit", timeZoneName: "short",
      });
      // A day given without a time of day ("2026-11-30") is that calendar day, not a moment.
      day = new Intl.DateTimeFormat(locales, { dateStyle: "medium", timeZone: "UTC" });
    } catch (e) { return; }
    root.querySelectorAll("time[datetime]").forEach((t) => {
      const value = t.getAttribute("datetime");
      const d = new Date(value);
      if (!isNaN(d)) t.textContent = (value.length === 10 ? day : format).format(d);
    });
  }
  localDates(document);

  // A box whose limit the node counts in bytes (UTF-8, as the protocol does: an accented
  // letter takes two) while `maxlength` counts characters: the browser refuses the text before
  // it is sent, in the page's language, and keeps it (Trial 12's T12-19).
  document.querySelectorAll("textarea[data-max-bytes]").forEach((box) => {
    const max = Number(box.dataset.maxBytes);
    const encoder = new TextEncoder();
    const check = () => box.setCustomValidity(
      encoder.encode(box.value.trim()).length > max ? box.dataset.tooLong : "");
    box.addEventListener("input", check);
    check();
  });

  // Live feed: the server says something changed (no content); fetch the feed again.
  const feed = document.getElementById("feed");
  if (feed && window.EventSource) {
    const live = document.getElementById("live");
    const source = new EventSource("/events");
    source.addEventListener("open", () => { feed.dataset.connected = "1"; });
    const refresh = () => {
      fetch(feed.dataset.live, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
        .then((text) => {
          feed.innerHTML = text;
          localDates(feed);
          if (live) live.textContent = feed.dataset.new || "";
        })
        .catch(() => {});
    };
    ["alert", "retracted", "members"].forEach((name) => source.addEventListener(name, refresh));
  }

  // Check as you type (POST, so what is looked up never lands in an address or history).
  const q = document.getElementById("q");
  const results = document.getElementById("check-results");
  if (q && results) {
    let timer = null;
    let asked = 0;
    const ask = () => {
      const mine = ++asked;
      const body = new URLSearchParams({ csrf: csrf, q: q.value });
      fetch("/check/results", { method: "POST", credentials: "same-origin", body: body,
        headers: { "x-csrf-token": csrf } })
        .then((r) => r.text().then((text) => ({ ok: r.ok, text: text })))
        .then(({ ok, text }) => {
          if (mine !== asked) return;
          if (!ok) { results.textContent = text; return; }
          results.innerHTML = text;
          localDates(results);
        })
        .catch(() => {});
    };
    q.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(ask, 250); });
  }

  // How guessable a new passphrase is, as it is typed (POST: it never lands in an address).
  const pass = document.getElementById("w-passphrase");
  const meter = document.getElementById("strength");
  if (pass && meter) {
    const name = document.getElementById("w-name");
    let timer = null;
    let asked = 0;
    const ask = () => {
      const mine = ++asked;
      const body = new URLSearchParams({ csrf: csrf, name: name ? name.value : "", passphrase: pass.value });
      fetch("/welcome/strength", { method: "POST", credentials: "same-origin", body: body,
        headers: { "x-csrf-token": csrf } })
        .then((r) => (r.ok ? r.text() : ""))
        .then((text) => { if (mine === asked) meter.innerHTML = text; })
        .catch(() => {});
    };
    pass.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(ask, 250); });
  }

  document.getElementById("print")?.addEventListener("click", () => window.print());
})();
