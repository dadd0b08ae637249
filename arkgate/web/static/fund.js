/* /fund: create a session, show the token once, the payment panel, and go live when paid.

   Page states: "amount" (the form), "pay" (token, status, payment panel), "use" (paid: token,
   status, first call; the spent invoice is gone). Each transition sets every panel's visibility. */
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("fund-form");
  let token = "";
  Funding.wire();
  Funding.wireAmount(form);

  function step(name) {
    const order = ["amount", "pay", "use"];
    document.querySelectorAll("#progress li").forEach((li) => {
      const here = li.dataset.step === name;
      if (here) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
      li.classList.toggle("done", order.indexOf(li.dataset.step) < order.indexOf(name));
    });
    form.hidden = name !== "amount";
    $("token-panel").hidden = name === "amount";
    $("status-panel").hidden = name === "amount";
    $("first-call").hidden = name !== "use";
  }

  function render(event) {
    const line = $("session-status");
    if (event.type === "error") { line.textContent = event.error; line.dataset.state = "error"; return; }
    if (event.status === "active" || event.type === "payment") {
      line.textContent = "Session active";
      line.dataset.state = "active";
      $("session-balance").textContent = "Balance: " + Ark.sats(event.balance_sats);
      Funding.paid();  // the invoice is spent; /topup gives a new one
      step("use");
    } else if (event.status === "expired") {
      line.textContent = "This unpaid session has lapsed; a late payment still credits it.";
      line.dataset.state = "lapsed";
    } else {
      line.textContent = "Waiting for payment…";
      line.dataset.state = "waiting";
      $("session-balance").textContent = "Balance: " + Ark.sats(event.balance_sats || 0);
    }
  }

  function writeSnippet(created) {
    const snippet = $("first-call-snippet");
    if (!snippet) return;
    const d = snippet.dataset;
    const example = JSON.parse(d.example);
    snippet.textContent = d.method === "GET"
      ? "curl -s '" + d.base + d.path + "?" + new URLSearchParams(example) + "' \\\n  -H 'Authorization: Bearer " + created.token + "'"
      : "curl -s -X POST " + d.base + d.path + " \\\n  -H 'Authorization: Bearer " + created.token + "' \\\n  -H 'Content-Type: application/json' \\\n  -d '" + JSON.stringify(example) + "'";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("fund-error");
    error.textContent = "";
    if (token) return;  // one session per visit: a second submit would orphan the first token
    const amount = Funding.amountFrom(form);
    if (amount === null) { error.textContent = "Enter a whole number of sats."; return; }
    const button = $("create-session");
    if (button.disabled) return;
    button.disabled = true;
    let result;
    try {
      result = await Ark.api("POST", "/v1/sessions", { body: { amount_sats: amount } });
    } finally {
      button.disabled = false;
    }
    if (!result.ok) { error.textContent = Ark.errorText(result); return; }
    const created = result.data;
    token = created.token;
    Ark.setToken(created.token);
    $("token").value = created.token;
    writeSnippet(created);
    step("pay");
    Funding.show(created.token, amount, created.funding);
    render(created);
    Funding.follow(created.token, render);
    $("token").focus();
  });

  step("amount");
})();
