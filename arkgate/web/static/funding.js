/* The payment panel shared by /fund and /topup: QR, invoice, Ark address, expiry, new invoice, demo payer.

   The panel has three states (data-state on #funding): "empty" (hidden, nothing shown), "awaiting" (an
   invoice to pay) and "expired" (the invoice lapsed; the Ark address still works). Every transition
   starts from reset(), so no QR, countdown, invoice or timer of an earlier state survives it, and
   every button handler checks there is something to act on. */
"use strict";
const Funding = (() => {
  const state = { token: "", amount: 0, funding: null, timer: null, live: null, busy: false };
  const $ = (id) => document.getElementById(id);

  function stopTimer() {
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
  }

  function setText(id, text) { const el = $(id); if (el) el.textContent = text; }

  /* Empty and hide the panel: the state before a session, and after its invoice is paid. */
  function reset() {
    stopTimer();
    state.funding = null;
    const panel = $("funding");
    panel.hidden = true;
    panel.dataset.state = "empty";
    const qr = $("funding-qr");
    qr.removeAttribute("src");
    qr.hidden = true;
    $("qr-expired").hidden = true;
    for (const id of ["bip321", "invoice", "ark-address"]) $(id).value = "";
    $("bip321-field").hidden = false;
    $("invoice-field").hidden = false;
    for (const id of ["invoice-expiry", "funding-error", "demo-state"]) setText(id, "");
    document.querySelectorAll("#funding [data-amount]").forEach((el) => { el.textContent = ""; });
    document.querySelectorAll("#funding button.copy[data-label]").forEach((b) => { b.textContent = b.dataset.label; });
    const pay = $("demo-pay");
    if (pay) pay.hidden = false;
  }

  function show(token, amount, funding) {
    reset();
    if (!funding || !funding.lightning_invoice) return;
    state.token = token; state.amount = amount; state.funding = funding;
    const panel = $("funding");
    panel.dataset.state = "awaiting";
    document.querySelectorAll("#funding [data-amount]").forEach((el) => { el.textContent = Number(amount).toLocaleString("en-US"); });
    $("bip321").value = funding.bip321 || "";
    $("invoice").value = funding.lightning_invoice;
    $("ark-address").value = funding.ark_address || "";
    $("ark-field").hidden = !funding.ark_address;
    const qr = $("funding-qr");
    if (funding.payment_hash) {
      qr.src = "/fund/qr.svg?payment_hash=" + encodeURIComponent(funding.payment_hash);
      qr.hidden = false;
    }
    panel.hidden = false;
    startExpiry(funding.invoice_expires_at);
  }

  /* The invoice lapsed: no QR or invoice to pay any more, only the Ark address and "New invoice". */
  function expire() {
    stopTimer();
    const panel = $("funding");
    if (panel.hidden || !state.funding) return;
    panel.dataset.state = "expired";
    const qr = $("funding-qr");
    qr.removeAttribute("src");
    qr.hidden = true;
    $("qr-expired").hidden = false;
    $("bip321-field").hidden = true;
    $("invoice-field").hidden = true;
    $("bip321").value = "";
    $("invoice").value = "";
    const pay = $("demo-pay");
    if (pay) pay.hidden = true;
    setText("invoice-expiry", "");  // the box in place of the QR says it
  }

  function startExpiry(iso) {
    stopTimer();
    const label = $("invoice-expiry");
    if (!iso) { label.textContent = ""; return; }
    const end = Date.parse(/(Z|[+-]\d\d:\d\d)$/.test(iso) ? iso : iso + "Z");
    const tick = () => {
      const left = Math.round((end - Date.now()) / 1000);
      if (left <= 0) { expire(); return; }
      const m = Math.floor(left / 60), s = String(left % 60).padStart(2, "0");
      label.replaceChildren();
      const big = document.createElement("span");
      big.className = "countdown";
      big.textContent = "Invoice expires in " + m + ":" + s;
      label.append(big, " at " + Ark.when(iso) + " UTC");
    };
    tick();
    if (!state.funding || $("funding").dataset.state !== "awaiting") return;
    state.timer = setInterval(tick, 1000);
  }

  async function busy(button, work) {
    if (state.busy) return;
    state.busy = true;
    if (button) button.disabled = true;
    try { await work(); } finally {
      state.busy = false;
      if (button) button.disabled = false;
    }
  }

  async function newInvoice() {
    // Only an invoice on screen (awaiting or expired) can be replaced; a paid one stays paid.
    if (!state.token || !state.amount || !state.funding) { setText("funding-error", "There is no invoice to replace."); return; }
    const token = state.token, amount = state.amount;
    await busy($("new-invoice"), async () => {
      setText("funding-error", "");
      const result = await Ark.api("POST", "/v1/sessions/topup", { token, body: { amount_sats: amount } });
      if (token !== state.token) return;  // the page moved on while we waited
      if (!result.ok) { setText("funding-error", Ark.errorText(result)); return; }
      show(token, amount, result.data.funding);
    });
  }

  async function demo(kind) {
    const funding = state.funding;
    if (!funding) { setText("demo-state", "There is nothing to pay yet."); return; }
    if (kind === "lightning" && $("funding").dataset.state !== "awaiting") {
      setText("demo-state", "This invoice has expired: get a new invoice first."); return;
    }
    if (kind === "ark" && !funding.ark_address) { setText("demo-state", "This session has no Ark address."); return; }
    const button = $(kind === "ark" ? "demo-ark" : "demo-pay");
    await busy(button, async () => {
      setText("demo-state", "Asking the simulator…");
      const result = kind === "ark"
        ? await Ark.api("POST", "/demo/send-ark", { body: { address: funding.ark_address, amount_sats: state.amount } })
        : await Ark.api("POST", "/demo/pay-invoice", { body: { invoice: funding.lightning_invoice } });
      setText("demo-state", result.ok ? (kind === "ark" ? "Sent over Ark." : "Invoice paid.") : Ark.errorText(result));
    });
  }

  /* status: {status, balance_sats}; payment: {amount_sats, balance_sats, rail}. */
  function follow(token, render) {
    unfollow();
    state.live = new Ark.Live(token, render);
    state.live.start();
  }

  function unfollow() {
    if (state.live) state.live.stop();
    state.live = null;
  }

  /* Forget the session entirely (the page goes back to its form). */
  function stop() {
    unfollow();
    reset();
    state.token = ""; state.amount = 0;
  }

  function wire() {
    reset();
    $("new-invoice").addEventListener("click", newInvoice);
    const pay = $("demo-pay"), ark = $("demo-ark");
    if (pay) pay.addEventListener("click", () => demo("lightning"));
    if (ark) ark.addEventListener("click", () => demo("ark"));
  }

  function amountFrom(form) {
    const choice = form.querySelector('input[name="preset"]:checked');
    const raw = choice && choice.value !== "custom" ? choice.value : form.querySelector("#custom-amount").value;
    const n = Number(raw);
    if (!raw || !Number.isInteger(n) || n <= 0) return null;
    return n;
  }

  function wireAmount(form) {
    const custom = form.querySelector("#custom-amount");
    custom.addEventListener("input", () => {
      const other = form.querySelector('input[name="preset"][value="custom"]');
      if (custom.value) other.checked = true;
    });
  }

  /* After a payment: the invoice is spent, so the panel empties; the Ark address is on /session. */
  function paid() { reset(); }

  return { show, paid, reset, stop, follow, wire, amountFrom, wireAmount };
})();
