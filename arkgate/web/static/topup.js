/* /topup: a new invoice for an existing token, plus the session's Ark address; live balance. */
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("topup-form");
  const tokenField = $("topup-token");
  tokenField.value = Ark.getToken();
  Funding.wire();
  Funding.wireAmount(form);
  let before = null;

  function render(event) {
    const line = $("session-status");
    if (event.type === "error") { line.textContent = event.error; return; }
    $("session-balance").textContent = "Balance: " + Ark.sats(event.balance_sats);
    if (event.type === "payment") {
      line.textContent = "Payment received: +" + Ark.sats(event.amount_sats);
      line.dataset.state = "active";
    } else if (before === null) {
      before = event.balance_sats;
      line.textContent = "Waiting for payment…";
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("topup-error");
    error.textContent = "";
    const token = tokenField.value.trim();
    if (!token) { error.textContent = "Paste your session token (it starts with ak_)."; tokenField.focus(); return; }
    const amount = Funding.amountFrom(form);
    if (amount === null) { error.textContent = "Enter a whole number of sats."; return; }
    const button = $("create-topup");
    button.disabled = true;
    const result = await Ark.api("POST", "/v1/sessions/topup", { token, body: { amount_sats: amount } });
    button.disabled = false;
    if (!result.ok) { error.textContent = Ark.errorText(result); return; }
    Ark.setToken(token);
    $("status-panel").hidden = false;
    before = null;
    if (result.data.funding && result.data.funding.lightning_invoice) {
      Funding.show(token, amount, result.data.funding);
    }
    Funding.follow(token, render);
  });
})();
