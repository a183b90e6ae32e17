// The hosted payment page's script: live checks of the card form, the installment table
// from the card's BIN, the card encrypted in the browser (JWE: RSA-OAEP-256 wraps a random
// AES-256-GCM key; compact serialization; aud = this checkout session), the submit, and
// following the outcome. Only the JWE leaves the page; texts come from the page's catalogue.
"use strict";

(function () {
  const root = document.getElementById("checkout");
  if (!root) return;
  const data = JSON.parse(root.dataset.page);
  const msg = data.messages;
  const form = document.getElementById("card-form");
  const enc = new TextEncoder();
  const base = `/checkout/${data.session}`;
  // Back from the issuer's challenge (/return?payment_id=...): the outcome may not have
  // reached intake yet, so a "requires_action" still shown is waited out, not followed back
  // to the finished challenge. A new submit clears it.
  let backFromChallenge = new URLSearchParams(window.location.search).has("challenged");
  if (backFromChallenge && (data.state.status === "succeeded" || data.state.final)) {
    window.location.assign(`${base}/return`); // the outcome is in: on to the shop
    return;
  }

  const text = (key, vars) =>
    (msg[key] || key).replace(/\{(\w+)\}/g, (_, name) => String((vars || {})[name] ?? ""));
  const digitsOf = (value) => value.replace(/\D/g, "");

  function scheme(digits) {
    for (const [first, last, name] of data.ranges) {
      const head = digits.slice(0, first.length);
      if (head.length === first.length && first <= head && head <= last) return name;
    }
    return "unknown";
  }

  function luhn(digits) {
    let sum = 0;
    for (let i = 0; i < digits.length; i++) {
      let d = Number(digits[digits.length - 1 - i]);
      if (i % 2 === 1) {
        d *= 2;
        if (d > 9) d -= 9;
      }
      sum += d;
    }
    return sum % 10 === 0;
  }

  function parseExpiry(value) {
    const m = value.replace(/\s/g, "").match(/^(\d{1,2})\/?(\d{2}|\d{4})$/);
    if (!m) return null;
    const month = Number(m[1]);
    const year = m[2].length === 2 ? 2000 + Number(m[2]) : Number(m[2]);
    return month >= 1 && month <= 12 ? { month, year } : null;
  }

  const fields = {
    name: document.getElementById("cc-name"),
    number: document.getElementById("cc-number"),
    exp: document.getElementById("cc-exp"),
    csc: document.getElementById("cc-csc"),
  };
  if (!form) return; // paid already: the page only links back to the shop
  const brandOut = document.getElementById("cc-number-brand");
  const statusOut = document.getElementById("form-status");
  const button = document.getElementById("pay-button");
  const table = document.getElementById("installments");
  const rows = document.getElementById("installment-rows");

  const checks = {
    name(value) {
      return value.trim() ? null : "js_name_required";
    },
    number(value) {
      const digits = digitsOf(value);
      if (!digits) return "js_number_required";
      if (digits.length < 12 || digits.length > 19 || !luhn(digits)) return "js_number_invalid";
      return null;
    },
    exp(value) {
      if (!value.trim()) return "js_expiry_required";
      const exp = parseExpiry(value);
      if (!exp) return "js_expiry_invalid";
      const now = new Date();
      if (exp.year * 12 + exp.month < now.getFullYear() * 12 + now.getMonth() + 1) {
        return "js_expiry_past";
      }
      if (exp.year > now.getFullYear() + 25) return "js_expiry_invalid";
      return null;
    },
    csc(value) {
      const n = cscLength();
      if (!value) return "js_csc_required";
      return new RegExp(`^\\d{${n}}$`).test(value) ? null : ["js_csc_invalid", { n }];
    },
  };

  function cscLength() {
    return scheme(digitsOf(fields.number.value)) === "amex" ? 4 : 3;
  }

  function showError(name, problem) {
    const input = fields[name];
    const out = document.getElementById(`${input.id}-error`);
    if (problem) {
      const [key, vars] = Array.isArray(problem) ? problem : [problem, {}];
      out.textContent = text(key, vars);
      out.hidden = false;
      input.setAttribute("aria-invalid", "true");
    } else {
      out.textContent = "";
      out.hidden = true;
      input.removeAttribute("aria-invalid");
    }
  }

  function check(name) {
    const problem = checks[name](fields[name].value);
    showError(name, problem);
    return !problem;
  }

  const touched = new Set();
  for (const name of Object.keys(fields)) {
    fields[name].addEventListener("blur", () => {
      if (fields[name].value) touched.add(name);
      if (touched.has(name)) check(name);
    });
    fields[name].addEventListener("input", () => {
      if (touched.has(name)) check(name);
    });
  }

  // Number: grouped by four as typed, brand from its range, installments from its BIN.
  let lastBin = null;
  fields.number.addEventListener("input", () => {
    const digits = digitsOf(fields.number.value).slice(0, 19);
    const grouped = digits.replace(/(\d{4})(?=\d)/g, "$1 ");
    if (grouped !== fields.number.value) fields.number.value = grouped;
    const name = digits.length >= 1 ? scheme(digits) : "unknown";
    brandOut.textContent = name === "unknown" ? "" : data.schemes[name];
    brandOut.dataset.brand = name;
    fields.csc.maxLength = cscLength();
    if (digits.length === 16 || digits.length === 19) check("number");
    const bin = digits.length >= 8 ? digits.slice(0, 8) : digits.length >= 6 ? digits.slice(0, 6) : null;
    if (bin !== lastBin) {
      lastBin = bin;
      if (bin) loadInstallments(bin);
      else table.hidden = true;
    }
  });

  fields.exp.addEventListener("input", () => {
    const raw = fields.exp.value;
    const d = digitsOf(raw).slice(0, 4);
    const typedSlash = raw.endsWith("/") && d.length === 2;
    const formatted = d.length > 2 || typedSlash ? `${d.slice(0, 2)}/${d.slice(2)}` : d;
    if (formatted !== raw) fields.exp.value = formatted;
    if (d.length === 4) check("exp");
  });

  fields.csc.addEventListener("input", () => {
    const d = digitsOf(fields.csc.value).slice(0, 4);
    if (d !== fields.csc.value) fields.csc.value = d;
  });

  const cache = new Map();
  async function loadInstallments(bin) {
    let plan = cache.get(bin);
    if (!plan) {
      const response = await fetch(`${base}/installments?bin=${bin}`, { credentials: "same-origin" });
      if (!response.ok) return;
      plan = await response.json();
      cache.set(bin, plan);
    }
    if (bin !== lastBin) return; // the number changed while we asked
    renderInstallments(plan);
  }

  function cell(tag, content, className) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (content instanceof Node) el.appendChild(content);
    else el.textContent = content;
    return el;
  }

  function renderInstallments(plan) {
    const chosen = selectedInstallments();
    rows.replaceChildren();
    plan.installments.forEach((option, index) => {
      const id = `inst-${option.count}`;
      const label = document.createElement("label");
      label.htmlFor = id;
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "installments";
      radio.id = id;
      radio.value = String(option.count);
      radio.checked = option.count === chosen || (index === 0 && !plan.installments.some((o) => o.count === chosen));
      label.append(radio, document.createTextNode(
        option.count === 1 ? text("js_single_payment") : text("js_installment_n", { n: option.count })));
      const tr = document.createElement("tr");
      tr.dataset.count = String(option.count);
      tr.append(cell("td", label), cell("td", option.monthly_text, "num"), cell("td", option.total_text, "num"));
      rows.appendChild(tr);
    });
    if (plan.card_type === "debit" || plan.card_type === "prepaid") {
      const tr = document.createElement("tr");
      const td = cell("td", text("js_debit_single"));
      td.colSpan = 3;
      tr.appendChild(td);
      rows.appendChild(tr);
    }
    table.hidden = false;
  }

  function selectedInstallments() {
    const picked = form.querySelector('input[name="installments"]:checked');
    return picked ? Number(picked.value) : 1;
  }

  // --- encryption (Web Crypto only) ---
  const b64url = (bytes) =>
    btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

  async function encryptCard(card) {
    const jwk = data.jwk;
    const rsa = await crypto.subtle.importKey(
      "jwk", { kty: "RSA", n: jwk.n, e: jwk.e, alg: "RSA-OAEP-256", ext: true },
      { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt"]);
    const header = b64url(enc.encode(JSON.stringify({
      alg: "RSA-OAEP-256", enc: "A256GCM", kid: jwk.kid,
      aud: data.session, // pays in this checkout session only
      iat: Math.floor(Date.now() / 1000),
      jti: b64url(crypto.getRandomValues(new Uint8Array(16))),
    })));
    const cek = crypto.getRandomValues(new Uint8Array(32));
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const wrapped = await crypto.subtle.encrypt({ name: "RSA-OAEP" }, rsa, cek);
    const aes = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["encrypt"]);
    const sealed = new Uint8Array(await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: enc.encode(header), tagLength: 128 },
      aes, enc.encode(JSON.stringify(card))));
    cek.fill(0);
    return [header, b64url(wrapped), b64url(iv), b64url(sealed.slice(0, -16)), b64url(sealed.slice(-16))].join(".");
  }

  function say(key, vars, bad) {
    statusOut.textContent = key ? text(key, vars) : "";
    statusOut.classList.toggle("bad", Boolean(bad));
  }

  const serverFields = { number: "number", exp_month: "exp", exp_year: "exp", cvc: "csc", holder_name: "name" };
  let busy = false;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    const ok = Object.keys(fields).map(check).every(Boolean);
    if (!ok) {
      say("js_fix_errors", {}, true);
      const first = Object.values(fields).find((f) => f.getAttribute("aria-invalid") === "true");
      if (first) first.focus();
      return;
    }
    busy = true;
    backFromChallenge = false;
    button.disabled = true;
    say("js_processing");
    const exp = parseExpiry(fields.exp.value);
    try {
      const jwe = await encryptCard({
        number: digitsOf(fields.number.value),
        exp_month: exp.month,
        exp_year: exp.year,
        cvc: fields.csc.value,
        holder_name: fields.name.value.trim(),
      });
      const response = await fetch(`${base}/pay`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": data.csrf },
        body: JSON.stringify({ encrypted_card: jwe, installments: selectedInstallments() }),
      });
      const body = await response.json();
      if (!response.ok) {
        refused(body);
        return;
      }
      follow(body);
    } catch (err) {
      say("js_error", {}, true);
      release();
    }
  });

  function release() {
    busy = false;
    button.disabled = false;
  }

  function refused(problem) {
    const errors = problem.errors || [];
    let shown = false;
    for (const e of errors) {
      const part = (e.field || "").split(".")[1];
      if (part && serverFields[part]) {
        showError(serverFields[part], e.code === "jwe_reused" ? "js_card_reused" : "js_number_invalid");
        shown = true;
      } else if ((e.code || "").startsWith("jwe_")) {
        say("js_card_reused", {}, true);
        shown = true;
      }
    }
    if (problem.type && /checkout-attempts-exhausted|checkout-session-(expired|completed)/.test(problem.type)) {
      window.location.assign(`${base}/return`);
      return;
    }
    if (!shown) say("js_error", {}, true);
    release();
  }

  function follow(state) {
    if (state.status === "requires_action" && state.next_action_url && !backFromChallenge) {
      say("js_redirecting");
      window.location.assign(state.next_action_url);
    } else if (state.status === "succeeded") {
      say("js_succeeded");
      window.location.assign(`${base}/return`);
    } else if (state.final) {
      window.location.assign(`${base}/return`);
    } else if (state.status === "declined") {
      say(`js_reason_${state.reason || "declined"}`, {}, true);
      statusOut.append(" ", text("js_attempts_left", { n: state.attempts_left }));
      fields.csc.value = "";
      // Not an error to show on leaving it: a new code is asked for, not missed (an error
      // appearing on blur would also move the links under a shopper's click).
      touched.delete("csc");
      release();
      fields.csc.focus();
    } else if (state.status === "open") {
      release();
    } else {
      setTimeout(poll, 700);
    }
  }

  async function poll() {
    try {
      const response = await fetch(`${base}/status`, { credentials: "same-origin" });
      follow(await response.json());
    } catch (err) {
      setTimeout(poll, 1500);
    }
  }

  if (data.state.status === "pending" || data.state.status === "requires_action") {
    busy = true;
    button.disabled = true;
    say("js_processing");
    follow(data.state);
  } else if (data.state.status === "declined" && !data.state.final) {
    say(`js_reason_${data.state.reason || "declined"}`, {}, true);
  }
})();
