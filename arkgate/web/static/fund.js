/* /fund: create a session, show the token once, the payment panel, and go live when paid. */
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("fund-form");
  Funding.wire();
  Funding.wireAmount(form);

  function render(event) {
    const line = $("session-status");
    if (event.type === "error") { line.textContent = event.error; return; }
    if (event.status === "active" || event.type === "payment") {
      line.textContent = "Session active";
      line.dataset.state = "active";
      $("session-balance").textContent = "Balance: " + Ark.sats(event.balance_sats);
      $("first-call").hidden = false;
      $("funding").hidden = true;  // paid: the invoice is spent; /topup gives a new one
    } else if (event.status === "expired") {
      line.textContent = "This unpaid session has lapsed; a late payment still credits it.";
    } else {
      line.textContent = "Waiting for payment…";
      $("session-balance").textContent = "Balance: " + Ark.sats(event.balance_sats || 0);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("fund-error");
    error.textContent = "";
    const amount = Funding.amountFrom(form);
    if (amount === null) { error.textContent = "Enter a whole number of sats."; return; }
    const button = $("create-session");
    button.disabled = true;
    const result = await Ark.api("POST", "/v1/sessions", { body: { amount_sats: amount } });
    button.disabled = false;
    if (!result.ok) { error.textContent = Ark.errorText(result); return; }
    const created = result.data;
    Ark.setToken(created.token);
    form.hidden = true;
    $("token").value = created.token;
    $("token-panel").hidden = false;
    $("status-panel").hidden = false;
    const snippet = $("first-call-snippet");
    if (snippet) {
      const d = snippet.dataset;
      const example = JSON.parse(d.example);
      snippet.textContent = d.method === "GET"
        ? "curl -s '" + d.base + d.path + "?" + new URLSearchParams(example) + "' \\\n  -H 'Authorization: Bearer " + created.token + "'"
        : "curl -s -X POST " + d.base + d.path + " \\\n  -H 'Authorization: Bearer " + created.token + "' \\\n  -H 'Content-Type: application/json' \\\n  -d '" + JSON.stringify(example) + "'";
    }
    if (created.funding && created.funding.lightning_invoice) {
      Funding.show(created.token, amount, created.funding);
    }
    render(created);
    Funding.follow(created.token, render);
    $("token").focus();
  });
})();
