/* Landing page: the shared token field and the "try it" forms built from each request's JSON schema. */
"use strict";
(() => {
  const data = JSON.parse(document.getElementById("tryit-data").textContent);
  const tokenField = document.getElementById("try-token");
  const tokenState = document.getElementById("try-token-state");
  tokenField.value = Ark.getToken();

  function describeToken() {
    tokenState.textContent = tokenField.value.trim() ? "Calls below will spend from this token." : "No token entered: calls will be refused with 402.";
  }
  tokenField.addEventListener("change", () => {
    const t = tokenField.value.trim();
    if (t) Ark.setToken(t); else Ark.clearToken();
    describeToken();
  });
  describeToken();

  function resolve(schema, root) {
    if (schema && schema.$ref) {
      const name = schema.$ref.split("/").pop();
      return (root.$defs || {})[name] || {};
    }
    if (schema && Array.isArray(schema.anyOf)) {
      const branch = schema.anyOf.find((s) => s.type !== "null");
      if (branch) return Object.assign({}, schema, resolve(branch, root), { anyOf: undefined, nullable: true });
    }
    return schema || {};
  }

  function kindOf(s) {
    if (Array.isArray(s.enum)) return "enum";
    if (s.type === "boolean") return "boolean";
    if (s.type === "integer" || s.type === "number") return "number";
    if (s.type === "string") return "string";
    if (s.type === "array" && s.items && s.items.type === "string") return "list";
    return null;  // objects and nested shapes: edit them in the JSON box
  }

  function buildFields(form, id) {
    const spec = data[id];
    const root = spec.schema || {};
    const required = new Set(root.required || []);
    const box = form.querySelector("[data-fields]");
    const textarea = form.querySelector("textarea");
    const inputs = {};
    for (const [name, raw] of Object.entries(root.properties || {})) {
      const s = resolve(raw, root);
      const kind = kindOf(s);
      if (!kind) continue;
      const fieldId = "f-" + id + "-" + name;
      const wrap = document.createElement("div");
      wrap.className = "field";
      const label = document.createElement("label");
      label.htmlFor = fieldId;
      label.textContent = name + (required.has(name) ? " (required)" : "");
      wrap.appendChild(label);
      let input;
      if (kind === "enum") {
        input = document.createElement("select");
        if (!required.has(name)) input.appendChild(new Option("(default)", ""));
        for (const v of s.enum) input.appendChild(new Option(String(v), String(v)));
      } else {
        input = document.createElement("input");
        input.type = kind === "boolean" ? "checkbox" : kind === "number" ? "number" : "text";
        if (kind === "number") {
          input.step = s.type === "integer" ? "1" : "any";
          if (s.minimum !== undefined) input.min = s.minimum;
          if (s.maximum !== undefined) input.max = s.maximum;
        }
        if (kind === "list") input.placeholder = "comma-separated";
      }
      input.id = fieldId;
      input.dataset.kind = kind;
      input.dataset.type = s.type || "";
      wrap.appendChild(input);
      if (s.description) {
        const hint = document.createElement("p");
        hint.className = "hint";
        hint.id = fieldId + "-hint";
        hint.textContent = s.description + (s.default !== undefined && s.default !== null ? " Default: " + JSON.stringify(s.default) + "." : "");
        input.setAttribute("aria-describedby", hint.id);
        wrap.appendChild(hint);
      }
      box.appendChild(wrap);
      inputs[name] = input;
      input.addEventListener(kind === "boolean" || kind === "enum" ? "change" : "input", () => toJson());
    }

    function read(input) {
      const kind = input.dataset.kind;
      if (kind === "boolean") return input.checked;
      if (input.value === "") return undefined;
      if (kind === "number") return Number(input.value);
      if (kind === "list") return input.value.split(",").map((x) => x.trim()).filter(Boolean);
      if (kind === "enum" && (input.dataset.type === "integer" || input.dataset.type === "number")) return Number(input.value);
      return input.value;
    }

    function toJson() {
      let body = {};
      try { body = JSON.parse(textarea.value || "{}"); } catch (e) { body = {}; }
      for (const [name, input] of Object.entries(inputs)) {
        const value = read(input);
        if (value === undefined) delete body[name]; else body[name] = value;
      }
      textarea.value = JSON.stringify(body, null, 2);
    }

    function fromJson() {
      let body;
      try { body = JSON.parse(textarea.value || "{}"); } catch (e) { return; }
      for (const [name, input] of Object.entries(inputs)) {
        const v = body[name];
        if (input.dataset.kind === "boolean") input.checked = Boolean(v);
        else if (Array.isArray(v)) input.value = v.join(", ");
        else input.value = v === undefined || v === null ? "" : String(v);
      }
    }
    textarea.addEventListener("input", fromJson);
    fromJson();
  }

  function shorten(value) {
    if (typeof value === "string" && value.length > 400) return value.slice(0, 120) + "… (" + value.length + " characters)";
    if (Array.isArray(value)) return value.map(shorten);
    if (value && typeof value === "object") {
      const out = {};
      for (const [k, v] of Object.entries(value)) out[k] = shorten(v);
      return out;
    }
    return value;
  }

  async function call(form, id) {
    const spec = data[id];
    const status = form.parentElement.querySelector("[data-status]");
    const output = form.parentElement.querySelector("[data-output]");
    let body;
    try { body = JSON.parse(form.querySelector("textarea").value || "{}"); } catch (e) {
      status.className = "call-status fail"; status.textContent = "The request is not valid JSON: " + e.message; return;
    }
    const token = tokenField.value.trim();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    status.className = "call-status"; status.textContent = "Calling…";
    const result = spec.method === "GET"
      ? await Ark.api("GET", spec.path, { token, query: body })
      : await Ark.api("POST", spec.path, { token, body });
    button.disabled = false;
    const d = result.data || {};
    if (result.ok && d.success !== false) {
      status.className = "call-status ok";
      status.textContent = "Done: cost " + Ark.sats(d.cost_sats ?? 0) + (d.balance_remaining !== undefined ? ", balance left " + Ark.sats(d.balance_remaining) : "") + ".";
    } else {
      status.className = "call-status fail";
      status.textContent = "HTTP " + result.status + ": " + Ark.errorText(result) + (d.cost_sats !== undefined ? " (cost " + Ark.sats(d.cost_sats) + ")" : "");
    }
    output.hidden = false;
    output.textContent = JSON.stringify(shorten(d), null, 2);
    const old = form.parentElement.querySelector("img.result-image");
    if (old) old.remove();
    const uri = d.data && d.data.data_uri;
    if (typeof uri === "string" && uri.startsWith("data:image/")) {
      const img = document.createElement("img");
      img.className = "result-image"; img.src = uri; img.alt = "Image returned by " + id;
      img.style.maxWidth = "100%"; img.style.background = "#fff";
      output.before(img);
    }
  }

  document.querySelectorAll("form.tryit-form").forEach((form) => {
    const id = form.dataset.endpoint;
    buildFields(form, id);
    form.addEventListener("submit", (event) => { event.preventDefault(); call(form, id); });
  });

  /* Arriving at /#try-<id> opens that form. */
  const target = location.hash && document.getElementById(location.hash.slice(1));
  if (target && target.tagName === "DETAILS") target.open = true;
})();
