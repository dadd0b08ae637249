/* The payment panel shared by /fund and /topup: QR, invoice, Ark address, expiry, new invoice, demo payer. */
"use strict";
const Funding = (() => {
  let state = { token: "", amount: 0, funding: null, timer: null, live: null };
  const $ = (id) => document.getElementById(id);

  function show(token, amount, funding) {
    state.token = token; state.amount = amount; state.funding = funding;
    $("funding").hidden = false;
    document.querySelectorAll("#funding [data-amount]").forEach((el) => { el.textContent = Number(amount).toLocaleString("en-US"); });
    $("bip321").value = funding.bip321 || "";
    $("invoice").value = funding.lightning_invoice || "";
    $("ark-address").value = funding.ark_address || "";
    const qr = $("funding-qr");
    if (funding.payment_hash) qr.src = "/fund/qr.svg?payment_hash=" + encodeURIComponent(funding.payment_hash);
    qr.closest(".qr").classList.remove("expired");
    startExpiry(funding.invoice_expires_at);
  }

  function startExpiry(iso) {
    if (state.timer) clearInterval(state.timer);
    const label = $("invoice-expiry");
    if (!iso) { label.textContent = ""; return; }
    const end = Date.parse(iso.endsWith("Z") ? iso : iso + "Z");
    const tick = () => {
      const left = Math.round((end - Date.now()) / 1000);
      if (left <= 0) {
        label.textContent = "This invoice has expired. Ask for a new invoice (the Ark address still works).";
        $("funding-qr").closest(".qr").classList.add("expired");
        clearInterval(state.timer);
        return;
      }
      const m = Math.floor(left / 60), s = String(left % 60).padStart(2, "0");
      label.textContent = "Invoice expires in " + m + ":" + s + " (at " + Ark.when(iso) + " UTC)";
    };
    tick();
    state.timer = setInterval(tick, 1000);
  }

  async function newInvoice() {
    const button = $("new-invoice");
    button.disabled = true;
    const result = await Ark.api("POST", "/v1/sessions/topup", { token: state.token, body: { amount_sats: state.amount } });
    button.disabled = false;
    const demoState = $("demo-state");
    if (!result.ok) { if (demoState) demoState.textContent = Ark.errorText(result); alert(Ark.errorText(result)); return; }
    show(state.token, state.amount, result.data.funding);
  }

  async function demo(kind) {
    const out = $("demo-state");
    out.textContent = "Asking the simulator…";
    const result = kind === "ark"
      ? await Ark.api("POST", "/demo/send-ark", { body: { address: state.funding.ark_address, amount_sats: state.amount } })
      : await Ark.api("POST", "/demo/pay-invoice", { body: { invoice: state.funding.lightning_invoice } });
    out.textContent = result.ok ? (kind === "ark" ? "Sent over Ark." : "Invoice paid.") : Ark.errorText(result);
  }

  /* status: {status, balance_sats}; payment: {amount_sats, balance_sats, rail}. */
  function follow(token, render) {
    if (state.live) state.live.stop();
    state.live = new Ark.Live(token, render);
    state.live.start();
  }

  function wire() {
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

  return { show, follow, wire, amountFrom, wireAmount };
})();
