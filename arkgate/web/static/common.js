/* Shared helpers: the token in session storage, API calls, copy buttons, the live event stream. */
"use strict";
const Ark = (() => {
  const key = document.body.dataset.tokenKey || "arkgate.token";

  function getToken() { try { return sessionStorage.getItem(key) || ""; } catch (e) { return ""; } }
  function setToken(token) { try { sessionStorage.setItem(key, token); } catch (e) { /* storage off: keep going */ } }
  function clearToken() { try { sessionStorage.removeItem(key); } catch (e) { /* nothing to clear */ } }

  async function api(method, path, { token = "", body = undefined, query = undefined } = {}) {
    const headers = { "Accept": "application/json" };
    if (token) headers["Authorization"] = "Bearer " + token;
    let url = path;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) {
        if (v !== undefined && v !== null && v !== "") params.set(k, typeof v === "object" ? JSON.stringify(v) : String(v));
      }
      const qs = params.toString();
      if (qs) url += "?" + qs;
    }
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    let response;
    try { response = await fetch(url, init); } catch (e) {
      return { ok: false, status: 0, data: { error: "the gateway could not be reached" } };
    }
    let data = null;
    try { data = await response.json(); } catch (e) { data = {}; }
    return { ok: response.ok, status: response.status, data };
  }

  function errorText(result) {
    const d = result.data || {};
    return d.error || d.detail || d.message || ("request failed (HTTP " + result.status + ")");
  }

  function sats(n) { return Number(n).toLocaleString("en-US") + " sats"; }

  function when(iso) {
    if (!iso) return "";
    return iso.replace("T", " ").replace(/(\+00:00)?Z?$/, "");
  }

  async function copy(text, button) {
    let done = false;
    try { await navigator.clipboard.writeText(text); done = true; } catch (e) { done = false; }
    if (!done) {
      const area = document.createElement("textarea");
      area.value = text; area.setAttribute("readonly", ""); area.style.position = "fixed"; area.style.opacity = "0";
      document.body.appendChild(area); area.select();
      try { done = document.execCommand("copy"); } catch (e) { done = false; }
      area.remove();
    }
    if (button) {
      const label = button.dataset.label || button.textContent;
      button.dataset.label = label;
      button.textContent = done ? "Copied" : "Select and copy by hand";
      setTimeout(() => { button.textContent = label; }, 2000);
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button.copy[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    const text = source ? (source.value || source.textContent || "").trim() : "";
    if (!text) return;  // nothing on screen to copy (an emptied panel's button)
    if (source.select) source.select();
    copy(text, button);
  });

  /* Follows one session's events. EventSource cannot send a bearer header and a token must never
     be in a URL, so each connection uses a fresh one-use ticket; on any error, get a new one. */
  class Live {
    constructor(token, onEvent) {
      this.token = token; this.onEvent = onEvent; this.source = null; this.closed = false; this.delay = 500;
    }
    async start() {
      if (this.closed) return;
      const result = await api("POST", "/v1/sessions/stream-ticket", { token: this.token });
      if (!result.ok) {
        if (result.status === 401) { this.onEvent({ type: "error", error: errorText(result) }); return; }
        return this.retry();
      }
      const source = new EventSource("/v1/sessions/events?ticket=" + encodeURIComponent(result.data.ticket));
      this.source = source;
      const handle = (e) => { this.delay = 500; try { this.onEvent(JSON.parse(e.data)); } catch (err) { /* ignore bad frame */ } };
      source.addEventListener("status", handle);
      source.addEventListener("payment", handle);
      source.onerror = () => { source.close(); this.retry(); };
    }
    retry() {
      if (this.closed) return;
      setTimeout(() => this.start(), this.delay);
      this.delay = Math.min(this.delay * 2, 15000);
    }
    stop() { this.closed = true; if (this.source) this.source.close(); }
  }

  return { getToken, setToken, clearToken, api, errorText, sats, when, copy, Live };
})();
