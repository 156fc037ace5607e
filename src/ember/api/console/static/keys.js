// Keys (the admin API, /v1/ember/keys: create, shown once; list; edit limits; revoke) and
// usage (/v1/ember/usage: a table and a bar chart by day, key, model or route target).

import { api, session } from "./api.js";
import { clear, errorNode, formatTime, h, svg } from "./dom.js";
import { t } from "./i18n.js";

export function adminKeyField(onChange) {
  const input = h("input", {
    id: "admin-key", type: "password", autocomplete: "off", value: session.adminKey,
  });
  const form = h("form", { class: "inline", id: "admin-form" },
    h("label", { for: "admin-key" }, t("keys.adminKey")), input,
    h("button", { type: "submit" }, t("keys.useAdmin")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    session.adminKey = input.value.trim();
    onChange();
  });
  return form;
}

const numberOrNull = (input) => (input.value.trim() === "" ? undefined : Number(input.value));

export async function renderKeys(main) {
  const list = h("div", { id: "key-list" });
  const created = h("div", { id: "created-key", "aria-live": "polite" });
  const errors = h("div", { id: "keys-error" });
  const editor = h("section", { class: "panel", id: "key-editor", hidden: true });
  const name = h("input", { id: "key-name", required: true, autocomplete: "off" });
  const models = h("input", { id: "key-models", autocomplete: "off", placeholder: "default, gpt-4o-mini" });
  const budget = h("input", { id: "key-budget", type: "number", min: 0, step: "any" });
  const rpm = h("input", { id: "key-rpm", type: "number", min: 0, step: 1 });
  const form = h("form", { id: "create-key", class: "grid" },
    h("label", { for: "key-name" }, t("keys.name")), name,
    h("label", { for: "key-models" }, t("keys.models")), models,
    h("label", { for: "key-budget" }, t("keys.budgetDay")), budget,
    h("label", { for: "key-rpm" }, t("keys.rpm")), rpm,
    h("span"), h("button", { type: "submit", class: "primary" }, t("keys.create")));
  clear(main, h("h1", {}, t("nav.keys")), adminKeyField(() => refresh()),
    h("div", { class: "split" },
      h("section", { class: "panel" }, h("h2", {}, t("keys.new")), form, errors, created),
      h("section", { class: "panel" }, h("h2", {}, t("keys.list")), list)), editor);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(errors);
    const body = { name: name.value.trim() };
    const names = models.value.split(",").map((m) => m.trim()).filter(Boolean);
    if (names.length) body.models = names;
    if (numberOrNull(budget) !== undefined) body.budget_usd_day = numberOrNull(budget);
    if (numberOrNull(rpm) !== undefined) body.rpm = numberOrNull(rpm);
    try {
      const key = await api("/v1/ember/keys", { method: "POST", body, admin: true });
      form.reset();
      const secret = h("code", { id: "new-key-value", tabindex: 0 }, key.key);
      clear(created, h("div", { class: "notice", role: "status" },
        h("p", {}, t("keys.shownOnce", { name: key.name })), secret));
      await refresh();
    } catch (err) {
      errors.append(errorNode(err));
    }
  });

  async function refresh() {
    try {
      const keys = await api("/v1/ember/keys", { admin: true });
      if (!keys.data.length) {
        clear(list, h("p", { class: "hint" }, t("keys.none")));
        return;
      }
      clear(list, h("table", {},
        h("thead", {}, h("tr", {}, [t("keys.name"), "id", t("keys.models"), t("keys.limits"),
          t("keys.created"), t("keys.state"), ""].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, keys.data.map((key) => {
          const revoked = Boolean(key.revoked);
          const limits = limitsText(key);
          return h("tr", { "data-key": key.name },
            h("td", {}, key.name), h("td", {}, h("code", {}, key.id)),
            h("td", {}, (key.models || []).join(", ") || t("keys.all")),
            h("td", {}, limits), h("td", {}, formatTime(key.created_at)),
            h("td", {}, revoked ? t("keys.revoked") : t("keys.active")),
            h("td", {}, h("div", { class: "row" }, revoked ? "" : h("button", {
              type: "button", class: "edit", "aria-label": `${t("keys.edit")} ${key.name}`,
              onclick: () => editKey(editor, key, refresh),
            }, t("keys.edit")), revoked ? "" : h("button", {
              type: "button", class: "danger", "aria-label": `${t("keys.revoke")} ${key.name}`,
              onclick: async () => {
                if (!confirm(t("keys.confirmRevoke", { name: key.name }))) return;
                try {
                  await api(`/v1/ember/keys/${encodeURIComponent(key.id)}`, { method: "DELETE", admin: true });
                  await refresh();
                } catch (err) { list.prepend(errorNode(err)); }
              },
            }, t("keys.revoke")))));
        }))));
    } catch (err) {
      clear(list, errorNode(err));
    }
  }
  await refresh();
}

// Every limit of a key, in one line ("$5/day, 60 rpm, …"); a policy too.
function limitsText(key) {
  return LIMITS.filter(([field]) => key[field] != null)
    .map(([field, unit, format]) => `${(format || String)(key[field])}${unit()}`)
    .concat(key.policy ? [`${t("keys.policy")}: ${key.policy}`] : [])
    .join(", ");
}

// A key's limits: [field, unit shown after the value, how the value is written].
const LIMITS = [
  ["budget_usd_day", () => `/${t("keys.day")}`, (v) => `$${v}`],
  ["budget_usd_month", () => `/${t("keys.month")}`, (v) => `$${v}`],
  ["budget_tokens_day", () => ` ${t("keys.tokens")}/${t("keys.day")}`],
  ["budget_tokens_month", () => ` ${t("keys.tokens")}/${t("keys.month")}`],
  ["rpm", () => " rpm"],
  ["tpm", () => " tpm"],
];

// The edit form of one key: its models, policy, budgets and rate limits. An empty field
// clears that limit (sent as null); the name is the key's tenant and is not editable.
function editKey(editor, key, refresh) {
  const fields = {};
  const input = (field, attrs) => {
    fields[field] = h("input", { id: `edit-${field}`, autocomplete: "off", ...attrs });
    return [h("label", { for: `edit-${field}` }, t(`keys.field.${field}`)), fields[field]];
  };
  const errors = h("div", { id: "edit-key-error" });
  const form = h("form", { id: "edit-key", class: "grid" },
    input("models", { value: (key.models || []).join(", "), placeholder: t("keys.all") }),
    input("policy", { value: key.policy || "", placeholder: "redact, local_only, …" }),
    LIMITS.map(([field]) => input(field, {
      type: "number", min: 0, step: field.startsWith("budget_usd") ? "any" : 1,
      value: key[field] ?? "",
    })),
    h("span"), h("div", { class: "row" },
      h("button", { type: "submit", class: "primary" }, t("keys.save")),
      h("button", { type: "button", onclick: () => { editor.hidden = true; } }, t("close"))));
  clear(editor, h("h2", {}, t("keys.editTitle", { name: key.name })),
    h("p", { class: "hint" }, t("keys.editHint")), form, errors);
  editor.hidden = false;
  fields.models.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(errors);
    const names = fields.models.value.split(",").map((m) => m.trim()).filter(Boolean);
    const body = { models: names.length ? names : null, policy: fields.policy.value.trim() || null };
    for (const [field] of LIMITS) body[field] = numberOrNull(fields[field]) ?? null;
    try {
      await api(`/v1/ember/keys/${encodeURIComponent(key.id)}`, { method: "POST", body, admin: true });
      editor.hidden = true;
      await refresh();
    } catch (err) {
      errors.append(errorNode(err));
    }
  });
}

const METRICS = ["requests", "prompt_tokens", "completion_tokens", "cost_usd", "cache_hits", "refusals"];
const COLUMN_KEYS = Object.fromEntries([...METRICS, "avg_latency_ms", "key", "model", "target", "day"]
  .map((c) => [c, true]));

export async function renderUsage(main) {
  const group = h("select", { id: "usage-group" },
    ["day", "key", "model", "target", "key,model", "day,model"].map((g) => h("option", { value: g }, g)));
  const metric = h("select", { id: "usage-metric" },
    METRICS.map((m) => h("option", { value: m }, t(`usage.${m}`))));
  const days = h("input", { id: "usage-days", type: "number", min: 1, value: 30 });
  const out = h("div", { id: "usage-out" });
  const form = h("form", { class: "inline", id: "usage-form" },
    h("label", { for: "usage-group" }, t("usage.groupBy")), group,
    h("label", { for: "usage-metric" }, t("usage.metric")), metric,
    h("label", { for: "usage-days" }, t("usage.days")), days,
    h("button", { type: "submit", class: "primary" }, t("refresh")));
  clear(main, h("h1", {}, t("nav.usage")), adminKeyField(() => load()),
    h("p", { class: "hint" }, t("usage.who")), form, out);
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  metric.addEventListener("change", () => load());

  async function load() {
    try {
      // The admin key sees every key's usage; any other key its own.
      const report = await api(`/v1/ember/usage?group_by=${encodeURIComponent(group.value)}&days=${Number(days.value) || 30}`,
        { admin: true });
      draw(report);
    } catch (err) {
      clear(out, errorNode(err));
    }
  }

  function draw(report) {
    if (!report.data.length) {
      clear(out, h("p", { class: "hint" }, t("usage.none")));
      return;
    }
    const label = (row) => report.group_by.map((g) => row[g] ?? "—").join(" · ");
    const rows = [...report.data].sort((a, b) => String(label(a)).localeCompare(String(label(b))));
    const key = metric.value;
    clear(out, barChart(rows.map((row) => [label(row), row[key]]), t(`usage.${key}`)),
      h("table", { id: "usage-table" },
        h("thead", {}, h("tr", {}, [...report.group_by, ...METRICS, "avg_latency_ms"].map(
          (c) => h("th", { scope: "col" }, c in COLUMN_KEYS ? t(`usage.${c}`) : c)))),
        h("tbody", {}, rows.map((row) => h("tr", {},
          report.group_by.map((g) => h("td", {}, row[g] ?? "—")),
          METRICS.map((m) => h("td", { class: "num" }, String(row[m]))),
          h("td", { class: "num" }, String(row.avg_latency_ms)))))));
  }
  await load();
}

// A horizontal bar chart in SVG: one bar per group, labelled, with its value.
export function barChart(pairs, title) {
  const width = 720;
  const bar = 22;
  const left = 220;
  const max = Math.max(...pairs.map(([, v]) => v), 1e-9);
  const height = pairs.length * (bar + 6) + 30;
  return svg("svg", {
    class: "chart", id: "usage-chart", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": title,
  },
  svg("text", { x: 0, y: 16, class: "chart-title", text: title }),
  pairs.map(([name, value], i) => {
    const y = 28 + i * (bar + 6);
    const w = Math.max(1, ((width - left - 80) * value) / max);
    return svg("g", {},
      svg("text", { x: left - 8, y: y + bar * 0.7, "text-anchor": "end", text: String(name).slice(0, 32) }),
      svg("rect", { x: left, y, width: w, height: bar, class: "bar" }),
      svg("text", { x: left + w + 6, y: y + bar * 0.7, text: String(value) }));
  }));
}
