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
    const [balance, payments, calls, payouts] = await Promise.all([
      Ark.api("GET", "/v1/balance", { token }),
      Ark.api("GET", "/v1/sessions/me/payments", { token }),
      Ark.api("GET", "/v1/sessions/me/calls", { token, query: { limit: 50 } }),
      $("refund-to") ? Ark.api("GET", "/v1/sessions/me/payouts", { token }) : null,
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
    if (payouts) $("refund-to").value = payouts.ok ? (payouts.data.refund_to || "") : "";
    $("session-view").hidden = false;
  }

  // --- withdraw, close and refund_to (shown when the gateway pays out) ---
  function withdrawBody(extra) {
    const body = { destination: $("withdraw-destination").value.trim(), ...extra };
    const amount = $("withdraw-amount").value.trim();
    if (amount) body.amount_sats = Number(amount);
    return body;
  }

  async function withdraw(path, extra) {
    const token = Ark.getToken();
    $("withdraw-error").textContent = ""; $("withdraw-status").textContent = "";
    if (!$("withdraw-destination").value.trim()) {
      $("withdraw-error").textContent = "Paste where the sats should go: an invoice, a Lightning address or an Ark address.";
      return null;
    }
    const result = await Ark.api("POST", path, { token, body: withdrawBody(extra) });
    if (!result.ok) { $("withdraw-error").textContent = Ark.errorText(result); return null; }
    return result.data;
  }

  if ($("withdraw-form")) {
    $("withdraw-quote").addEventListener("click", async () => {
      const q = await withdraw("/v1/sessions/withdraw", { quote_only: true });
      if (q) $("withdraw-status").textContent = "Fee " + Ark.sats(q.fee_sats) + ": the destination receives " +
        Ark.sats(q.net_sats) + " and " + Ark.sats(q.amount_sats) + " leave your balance.";
    });
    $("withdraw-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const r = await withdraw("/v1/sessions/withdraw", {});
      if (!r) return;
      $("withdraw-status").textContent = (r.status === "completed" ? "Sent " : "Sending ") + Ark.sats(r.net_sats) +
        " (fee " + Ark.sats(r.fee_sats) + "). Balance left: " + Ark.sats(r.balance_sats) + ".";
      load(Ark.getToken());
    });
    $("withdraw-close").addEventListener("click", async () => {
      $("withdraw-amount").value = "";
      const r = await withdraw("/v1/sessions/close", {});
      if (!r) return;
      const sent = r.payout ? "Sent " + Ark.sats(r.payout.net_sats) + " (fee " + Ark.sats(r.payout.fee_sats) + "). " : "";
      $("withdraw-status").textContent = sent + "The session is closed; its token no longer works.";
      Ark.clearToken();
    });
    $("refund-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      $("refund-error").textContent = ""; $("refund-status").textContent = "";
      const value = $("refund-to").value.trim();
      const result = await Ark.api("POST", "/v1/sessions/me/refund-to", { token: Ark.getToken(), body: { refund_to: value || null } });
      if (!result.ok) { $("refund-error").textContent = Ark.errorText(result); return; }
      $("refund-status").textContent = value ? "Saved: the remainder goes there when the session expires." : "Cleared.";
    });
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
