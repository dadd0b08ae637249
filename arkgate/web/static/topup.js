/* /topup: a new invoice for an existing token, plus the session's Ark address; live balance.

   Page states: "form" (token and amount), "pay" (status and payment panel), "paid" (status only).
   "Change amount" / "Top up again" goes back to the form and drops the invoice and the live stream. */
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("topup-form");
  const tokenField = $("topup-token");
  tokenField.value = Ark.getToken();
  Funding.wire();
  Funding.wireAmount(form);
  let before = null;

  function stage(name) {
    form.hidden = name !== "form";
    $("status-panel").hidden = name === "form";
    $("topup-restart").textContent = name === "paid" ? "Top up again" : "Change amount";
    $("topup-done").hidden = name !== "paid";
  }

  function render(event) {
    const line = $("session-status");
    if (event.type === "error") { line.textContent = event.error; line.dataset.state = "error"; return; }
    $("session-balance").textContent = "Balance: " + Ark.sats(event.balance_sats);
    if (event.type === "payment") {
      line.textContent = "Payment received: +" + Ark.sats(event.amount_sats);
      line.dataset.state = "active";
      Funding.paid();  // the invoice (or the Ark payment standing in for it) is done
      stage("paid");
    } else if (before === null) {
      before = event.balance_sats;
      line.textContent = "Waiting for payment…";
      line.dataset.state = "waiting";
    }
  }

  function restart() {
    Funding.stop();
    before = null;
    $("session-status").textContent = "Waiting for payment…";
    $("session-status").dataset.state = "waiting";
    $("session-balance").textContent = "";
    stage("form");
    tokenField.focus();
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
    if (button.disabled) return;
    button.disabled = true;
    let result;
    try {
      result = await Ark.api("POST", "/v1/sessions/topup", { token, body: { amount_sats: amount } });
    } finally {
      button.disabled = false;
    }
    if (!result.ok) { error.textContent = Ark.errorText(result); return; }
    Ark.setToken(token);
    before = null;
    const line = $("session-status");
    line.textContent = "Waiting for payment…";
    line.dataset.state = "waiting";
    $("session-balance").textContent = "";
    stage("pay");
    const funding = result.data.funding;
    if (!funding || !funding.lightning_invoice) {
      // Free mode: credited at once, there is nothing to pay.
      render({ type: "payment", amount_sats: amount, balance_sats: result.data.balance_sats });
      return;
    }
    Funding.show(token, amount, funding);
    Funding.follow(token, render);
  });

  $("topup-restart").addEventListener("click", restart);
  stage("form");
})();
