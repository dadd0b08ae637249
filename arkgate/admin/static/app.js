// arkgate operator console: reads /admin/api/* with the admin token kept in sessionStorage.
"use strict";
(function () {
  const KEY = "arkgate.admin.token";
  const $ = (id) => document.getElementById(id);
  const charts = {};
  let loads = 0;
  let timer = null;

  const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
  function setNumber(id, value) {
    const el = $(id);
    el.textContent = fmt(value);
    el.dataset.value = value === null || value === undefined ? "" : String(value);
  }
  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) td.className = cls;
    return td;
  }
  function fillTable(id, rows) {
    const body = $(id).querySelector("tbody");
    body.replaceChildren(...rows.map((cells) => {
      const tr = document.createElement("tr");
      tr.append(...cells);
      return tr;
    }));
  }
  const shortTime = (iso) => (iso ? iso.replace("T", " ").slice(0, 19) : "");
  const short = (id) => (id && id.length > 20 ? id.slice(0, 10) + "…" + id.slice(-6) : id);

  async function api(path) {
    const token = sessionStorage.getItem(KEY);
    const response = await fetch("/admin/api/" + path, { headers: { Authorization: "Bearer " + token } });
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (response.status === 401) throw Object.assign(new Error("unauthorized"), { status: 401 });
    if (!response.ok) throw Object.assign(new Error((body && body.error) || "HTTP " + response.status), { status: response.status });
    return body;
  }

  function chart(id, config) {
    config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: false }, config.options || {});
    if (charts[id]) {
      charts[id].data = config.data;
      charts[id].update("none");
    } else {
      charts[id] = new window.Chart($(id), config);
    }
  }

  const PALETTE = ["#3b5bdb", "#f08c00", "#2f9e44", "#e03131", "#7048e8", "#1098ad", "#d6336c", "#5c940d"];

  function renderOverview(o) {
    setNumber("liabilities", o.liabilities_sats);
    setNumber("assets", o.assets_sats);
    const solvent = $("solvent");
    solvent.textContent = o.solvent ? "yes" : "NO";
    solvent.dataset.value = String(o.solvent);
    solvent.className = "big " + (o.solvent ? "yes" : "no");
    $("surplus").textContent = o.surplus_sats === null ? (o.wallet_error || "no wallet") : "surplus " + fmt(o.surplus_sats) + " sats";
    setNumber("revenue-today", o.revenue_today_sats);
    setNumber("revenue-7d", o.revenue_7d_sats);
    setNumber("revenue-all", o.revenue_all_time_sats);
    setNumber("receive-fees", o.receive_fees_sats);
    setNumber("attention", o.attention.orphan_payments + o.attention.late_payments);
    setNumber("orphans", o.attention.orphan_payments);
    setNumber("late", o.attention.late_payments);

    const cats = o.wallet_categories || {};
    fillTable("wallet-categories", Object.keys(cats).map((k) => [cell(k.replace(/_sats$/, "").replace(/_/g, " ")), cell(fmt(cats[k]), "num")]));
    fillTable("sessions", Object.keys(o.sessions).map((k) => [cell(k), cell(o.sessions[k].count, "num"), cell(fmt(o.sessions[k].balance_sats), "num")]));
    fillTable("endpoints", o.endpoints.map((e) => [cell(e.endpoint), cell(e.calls, "num"), cell(e.refunds, "num"), cell(fmt(e.sats), "num")]));

    chart("chart-hourly", {
      type: "bar",
      data: {
        labels: o.hourly.hours.map((h) => h.slice(11, 13) + "h"),
        datasets: [
          { type: "bar", label: "sats", data: o.hourly.sats, backgroundColor: "#3b5bdb", yAxisID: "sats" },
          { type: "line", label: "calls", data: o.hourly.calls, borderColor: "#f08c00", backgroundColor: "#f08c00", yAxisID: "calls" },
        ],
      },
      options: { scales: { sats: { position: "left", beginAtZero: true }, calls: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } } } },
    });
    chart("chart-endpoints", {
      type: "bar",
      data: {
        labels: o.endpoints.map((e) => e.endpoint),
        datasets: [{ label: "sats", data: o.endpoints.map((e) => e.sats), backgroundColor: PALETTE }],
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } } },
    });
    const rails = Object.keys(o.funding);
    chart("chart-funding", {
      type: "doughnut",
      data: { labels: rails, datasets: [{ data: rails.map((r) => o.funding[r].amount_sats), backgroundColor: PALETTE }] },
    });
  }

  function renderHealth(h) {
    const problems = h.problems || [];
    $("problems").textContent = problems.join(" · ");
    const rows = [
      ["barkd reachable", h.barkd_reachable],
      ["Ark server connected", h.ark_connected],
      ["network", h.ark_network ? h.ark_network + (h.network_matches ? " (matches)" : " (MISMATCH: configured " + h.network + ")") : h.network],
      ["chain tip", h.tip_height],
      ["next expiry height", h.next_expiry_height],
      ["next refresh due in (blocks)", h.next_refresh_due_in_blocks],
      ["refresh threshold (blocks)", h.refresh_before_blocks],
      ["next scheduled refresh height", h.next_scheduled_refresh_height === null ? "–" : h.next_scheduled_refresh_height],
      ["barkd API", h.barkd_version || "–"],
      ["unused keys since last payment", h.address_gap ? h.address_gap.gap + " of " + h.address_gap.limit : "–"],
      ["auto-exit after (s)", h.monitor.auto_exit_after_s === null ? "off" : h.monitor.auto_exit_after_s],
      ["Ark server unreachable since", h.monitor.disconnected_since || "–"],
    ];
    fillTable("health", rows.map(([k, v]) => {
      const value = v === true ? "yes" : v === false ? "no" : v;
      return [cell(k), cell(value, v === true ? "yes" : v === false ? "no" : "")];
    }));
    fillTable("rounds", (h.pending_rounds || []).map((r) => [cell(r.id), cell(r.state || (r.status && r.status.status)), cell(r.scheduled_height === undefined || r.scheduled_height === null ? "–" : r.scheduled_height, "num"), cell((r.participation && r.participation.inputs || []).length, "num")]));
    const vtxos = (h.vtxos || []).filter((v) => v.state === "spendable" || v.state === "locked");
    chart("chart-vtxos", {
      type: "bar",
      data: {
        labels: vtxos.map((v) => short(v.id) + " · " + fmt(v.amount_sats)),
        datasets: [
          { label: "blocks left", data: vtxos.map((v) => v.blocks_left), backgroundColor: vtxos.map((v) => (v.refresh_due ? "#e03131" : "#2f9e44")) },
          { type: "line", label: "refresh threshold", data: vtxos.map(() => h.refresh_before_blocks), borderColor: "#868e96", pointRadius: 0, borderDash: [4, 4] },
        ],
      },
      options: { scales: { y: { beginAtZero: true } } },
    });
  }

  function renderExits(list) {
    fillTable("exits", list.map((e) => {
      const tr = [cell(short(e.vtxo_id)), cell(e.state, "state"), cell(fmt(e.amount_sats), "num"), cell((e.history || []).concat([e.state]).join(" → "))];
      tr[0].title = e.vtxo_id;
      return tr;
    }));
    $("exits").dataset.states = list.map((e) => e.state).join(",");
  }

  function renderActivity(a) {
    fillTable("calls", a.calls.slice(0, 20).map((c) => [cell(shortTime(c.created_at)), cell(c.endpoint), cell(c.kind), cell(fmt(c.amount_sats), "num")]));
    fillTable("payments", a.payments.slice(0, 20).map((p) => [cell(shortTime(p.created_at)), cell(p.rail), cell(fmt(p.amount_sats), "num"), cell(fmt(p.fee_sats), "num"), cell(p.session_id === null ? "orphan" : p.session_id)]));
  }

  async function load() {
    try {
      const overview = await api("overview");
      showConsole();
      renderOverview(overview);
      const [health, activity] = await Promise.all([api("health"), api("activity?limit=50")]);
      renderHealth(health);
      renderActivity(activity);
      if (overview.payment_mode !== "free") {
        renderExits((await api("exits")).exits);
      } else {
        renderExits([]);
      }
      loads += 1;
      document.body.dataset.loads = String(loads);
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (err) {
      if (err.status === 401) {
        sessionStorage.removeItem(KEY);
        showLogin("The admin token was refused (401). Enter it again.");
      } else {
        $("problems").textContent = "Could not load: " + err.message;
      }
    }
  }

  function showLogin(message) {
    if (timer) { clearInterval(timer); timer = null; }
    $("console").hidden = true;
    $("toolbar").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
  }

  function showConsole() {
    $("login").hidden = true;
    $("console").hidden = false;
    $("toolbar").hidden = false;
    if (!timer) timer = setInterval(load, 10000);
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("token").value.trim());
    $("token").value = "";
    load();
  });
  $("reload").addEventListener("click", load);
  $("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); showLogin(""); });

  if (sessionStorage.getItem(KEY)) load(); else showLogin("");
})();
