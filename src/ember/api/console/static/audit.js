// Audit: the tamper-evident chain's newest records, filtered as you type, a Verify button
// that names the first broken record, and an export of the records shown (JSON lines).

import { api } from "./api.js";
import { adminKeyField } from "./keys.js";
import { clear, errorNode, formatTime, h } from "./dom.js";
import { t } from "./i18n.js";

const COLUMNS = ["seq", "created_at", "tenant", "endpoint", "model", "status", "verdicts", "hash"];

export async function render(main) {
  const limit = h("input", { id: "audit-limit", type: "number", min: 1, max: 1000, value: 50 });
  const filter = h("input", { id: "audit-filter", type: "search", autocomplete: "off" });
  const verify = h("button", { type: "button", id: "audit-verify", class: "primary" }, t("audit.verify"));
  const exportLink = h("a", { id: "audit-export", download: "ember-audit.jsonl", class: "button" },
    t("audit.export"));
  const verdict = h("div", { id: "audit-verdict", "aria-live": "polite" });
  const table = h("div", { id: "audit-table" });
  const form = h("form", { class: "inline", id: "audit-form" },
    h("label", { for: "audit-limit" }, t("audit.limit")), limit,
    h("label", { for: "audit-filter" }, t("audit.filter")), filter,
    h("button", { type: "submit" }, t("refresh")), verify, exportLink);
  clear(main, h("h1", {}, t("nav.audit")), adminKeyField(() => load()),
    h("p", { class: "hint" }, t("audit.about")), form, verdict, table);
  let records = [];

  const draw = () => {
    const needle = filter.value.trim().toLowerCase();
    const shown = records.filter((r) => !needle
      || COLUMNS.some((c) => String(r[c] ?? "").toLowerCase().includes(needle)));
    const lines = shown.map((r) => JSON.stringify(r)).join("\n");
    if (exportLink.href) URL.revokeObjectURL(exportLink.href);
    exportLink.href = URL.createObjectURL(new Blob([lines ? `${lines}\n` : ""], { type: "application/jsonl" }));
    if (!shown.length) {
      clear(table, h("p", { class: "hint" }, t("audit.none")));
      return;
    }
    clear(table, h("table", {},
      h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", { scope: "col" }, t(`audit.${c}`))))),
      h("tbody", {}, shown.map((r) => h("tr", { "data-seq": r.seq },
        h("td", { class: "num" }, String(r.seq)), h("td", {}, formatTime(r.created_at)),
        h("td", {}, r.tenant || ""), h("td", {}, r.endpoint), h("td", {}, r.model),
        h("td", {}, r.status), h("td", { class: "verdicts" }, r.verdicts),
        h("td", {}, h("code", { title: r.hash }, r.hash.slice(0, 12))))))));
  };

  async function load() {
    try {
      records = (await api(`/v1/ember/audit?limit=${Number(limit.value) || 50}`, { admin: true })).data;
      draw();
    } catch (err) {
      records = [];
      clear(table, errorNode(err));
    }
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  filter.addEventListener("input", draw);
  verify.addEventListener("click", async () => {
    clear(verdict, h("p", { class: "hint" }, t("loading")));
    await load(); // show the records as they are now, beside the verdict
    try {
      const result = await api("/v1/ember/audit/verify", { admin: true });
      const message = result.ok
        ? t("audit.ok", { n: result.checked })
        : t("audit.broken", { seq: result.first_bad_seq, reason: result.reason, n: result.checked });
      clear(verdict, h("p", { class: result.ok ? "verified ok" : "verified broken", role: "status" }, message));
      for (const row of table.querySelectorAll("tr.bad")) row.classList.remove("bad");
      if (!result.ok) {
        const row = table.querySelector(`tr[data-seq="${Number(result.first_bad_seq)}"]`);
        if (row) { row.classList.add("bad"); row.scrollIntoView({ block: "center" }); }
      }
    } catch (err) {
      clear(verdict, errorNode(err));
    }
  });
  await load();
}
