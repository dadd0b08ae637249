/* /session: balance, expiry, payments and recent calls of a token kept in session storage. */
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const field = $("session-token");

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  function fill(tableId, emptyId, rows, build) {
    const body = document.querySelector("#" + tableId + " tbody");
    body.replaceChildren();
    for (const item of rows) { const tr = document.createElement("tr"); build(tr, item); body.appendChild(tr); }
    $(emptyId).hidden = rows.length > 0;
  }

  let generation = 0;  // a "Forget token" or a newer load makes an answer in flight stale

  async function load(token) {
    const error = $("session-error");
    error.textContent = "";
    const mine = ++generation;
    const [balance, payments, calls] = await Promise.all([
      Ark.api("GET", "/v1/balance", { token }),
      Ark.api("GET", "/v1/sessions/me/payments", { token }),
      Ark.api("GET", "/v1/sessions/me/calls", { token, query: { limit: 50 } }),
    ]);
    if (mine !== generation) return;
    if (!balance.ok) { error.textContent = Ark.errorText(balance); $("session-view").hidden = true; return; }
    Ark.setToken(token);
    const b = balance.data;
    $("view-balance").textContent = Ark.sats(b.balance_sats);
    $("view-status").textContent = b.status.replace("_", " ");
    $("view-expires").textContent = Ark.when(b.expires_at) + " UTC";
    $("view-address").textContent = b.ark_address || "none";
    fill("payments-table", "payments-empty", payments.ok ? payments.data.payments : [], (tr, p) => {
      cell(tr, Ark.when(p.credited_at)); cell(tr, p.rail); cell(tr, Number(p.amount_sats).toLocaleString("en-US"), "num");
    });
    fill("calls-table", "calls-empty", calls.ok ? calls.data.calls : [], (tr, c) => {
      cell(tr, Ark.when(c.created_at)); cell(tr, c.endpoint); cell(tr, String(c.cost_sats), "num");
      cell(tr, c.status === "refunded" ? "refunded" + (c.refund_reason ? ": " + c.refund_reason : "") : "ok");
    });
    $("session-view").hidden = false;
  }

  $("session-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = field.value.trim();
    if (!token) { $("session-error").textContent = "Paste your session token (it starts with ak_)."; field.focus(); return; }
    load(token);
  });
  $("session-forget").addEventListener("click", () => {
    generation++;
    Ark.clearToken(); field.value = ""; $("session-view").hidden = true; $("session-error").textContent = ""; field.focus();
  });

  const saved = Ark.getToken();
  if (saved) { field.value = saved; load(saved); }
})();
