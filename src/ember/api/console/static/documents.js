// Documents: vector stores (list, create with an expiry, delete), uploads of many files with
// each file's ingestion status and error, the PII the guard finds in a file, and a search box
// showing hybrid results with their scores.

import { api } from "./api.js";
import { clear, errorNode, formatTime, h } from "./dom.js";
import { t } from "./i18n.js";

const state = { selected: null, filenames: new Map() };
const FINAL = new Set(["completed", "failed", "cancelled"]);

export async function render(main) {
  const list = h("div", { id: "store-list" });
  const detail = h("section", { id: "store-detail", class: "panel" });
  const name = h("input", { id: "store-name", required: true, autocomplete: "off" });
  const expiry = h("input", {
    id: "store-expiry", type: "number", min: 1, max: 365, step: 1, placeholder: t("docs.never"),
  });
  const errors = h("div");
  const create = h("form", { id: "create-store", class: "inline" },
    h("label", { for: "store-name" }, t("docs.storeName")), name,
    h("label", { for: "store-expiry" }, t("docs.expiryDays")), expiry,
    h("button", { type: "submit", class: "primary" }, t("docs.create")));
  clear(main, h("h1", {}, t("nav.documents")),
    h("div", { class: "split" },
      h("section", { class: "panel" }, h("h2", {}, t("docs.stores")), create, errors, list),
      detail));
  create.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(errors);
    try {
      const body = { name: name.value };
      // OpenAI's expiry: N days after the store was last used (searched, files added).
      if (expiry.value.trim()) body.expires_after = { anchor: "last_active_at", days: Number(expiry.value) };
      const store = await api("/v1/vector_stores", { method: "POST", body });
      name.value = "";
      expiry.value = "";
      state.selected = store.id;
      await refresh();
    } catch (err) {
      errors.append(errorNode(err));
    }
  });

  async function refresh() {
    try {
      const stores = await api("/v1/vector_stores?limit=100");
      if (!stores.data.some((s) => s.id === state.selected)) state.selected = null;
      drawList(stores.data);
      const chosen = stores.data.find((s) => s.id === state.selected);
      if (chosen) await drawDetail(detail, chosen, refreshList);
      else clear(detail, h("p", { class: "hint" }, t("docs.pick")));
    } catch (err) {
      clear(list, errorNode(err));
    }
  }

  async function refreshList() {
    try {
      drawList((await api("/v1/vector_stores?limit=100")).data);
    } catch (err) {
      clear(list, errorNode(err));
    }
  }

  function drawList(stores) {
    if (!stores.length) {
      clear(list, h("p", { class: "hint" }, t("docs.noStores")));
      return;
    }
    clear(list, h("table", {},
      h("thead", {}, h("tr", {}, [t("docs.name"), t("docs.files"), t("docs.status"), ""].map(
        (c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, stores.map((store) => {
        const counts = store.file_counts || {};
        const open = h("button", {
          type: "button", class: `link${store.id === state.selected ? " current" : ""}`,
          "aria-pressed": String(store.id === state.selected),
          onclick: async () => { state.selected = store.id; await refresh(); },
        }, store.name || store.id);
        const remove = h("button", {
          type: "button", class: "danger", "aria-label": `${t("docs.delete")} ${store.name || store.id}`,
          onclick: async () => {
            if (!confirm(t("docs.confirmDelete", { name: store.name || store.id }))) return;
            try {
              await api(`/v1/vector_stores/${store.id}`, { method: "DELETE" });
              await refresh();
            } catch (err) {
              list.prepend(errorNode(err));
            }
          },
        }, t("docs.delete"));
        // When it expires (OpenAI's expires_at), under its name; the rule in the tooltip.
        const expiry = h("div", {
          class: "expiry",
          title: store.expires_after ? t("docs.expiryRule", { days: store.expires_after.days }) : null,
        }, `${t("docs.expiresCol")}: `,
        store.expires_at ? new Date(store.expires_at * 1000).toLocaleDateString() : t("docs.never"));
        return h("tr", {}, h("td", {}, open, expiry),
          h("td", {}, `${counts.completed || 0}/${counts.total || 0}`),
          h("td", {}, store.status || ""), h("td", {}, remove));
      }))));
  }

  await refresh();
}

async function loadFilenames() {
  const files = await api("/v1/files?limit=10000");
  for (const f of files.data) state.filenames.set(f.id, f.filename);
}

async function drawDetail(detail, store, refreshStores) {
  const files = h("tbody", { id: "store-files" });
  const uploads = h("tbody", { id: "uploads" });
  const input = h("input", { type: "file", id: "upload", multiple: true });
  const drop = h("div", { class: "drop", id: "drop" },
    h("label", { for: "upload" }, t("docs.upload")), input,
    h("p", { class: "hint" }, t("docs.drop")));
  const query = h("input", { id: "search-query", type: "search", autocomplete: "off" });
  const results = h("div", { id: "search-results" });
  const piiPanel = h("div", { id: "file-pii", "aria-live": "polite" });
  const search = h("form", { id: "search", class: "inline", role: "search" },
    h("label", { for: "search-query" }, t("docs.search")), query,
    h("button", { type: "submit", class: "primary" }, t("docs.searchGo")));
  clear(detail,
    h("h2", {}, store.name || store.id), h("p", { class: "hint" }, store.id,
      store.expires_at ? ` · ${t("docs.expires")} ${formatTime(store.expires_at)}` : ""),
    drop,
    h("table", { class: "uploads" }, h("caption", {}, t("docs.uploads")), uploads),
    h("table", {}, h("caption", {}, t("docs.files")),
      h("thead", {}, h("tr", {}, [t("docs.filename"), t("docs.status"), t("docs.error"), ""].map(
        (c) => h("th", { scope: "col" }, c)))), files),
    piiPanel, search, results);

  const drawFiles = async () => {
    try {
      await loadFilenames();
      const list = await api(`/v1/vector_stores/${store.id}/files?limit=100`);
      clear(files, list.data.map((f) => h("tr", {},
        h("td", {}, state.filenames.get(f.id) || f.id),
        h("td", { class: `status ${f.status}` }, t(`status.${f.status}`)),
        h("td", {}, f.last_error ? f.last_error.message : ""),
        h("td", {}, h("div", { class: "row" }, h("button", {
          type: "button", class: "pii",
          "aria-label": `${t("docs.pii")} ${state.filenames.get(f.id) || f.id}`,
          onclick: () => showPii(piiPanel, f.id),
        }, t("docs.pii")), h("button", {
          type: "button", class: "danger",
          "aria-label": `${t("docs.remove")} ${state.filenames.get(f.id) || f.id}`,
          onclick: async () => {
            try {
              await api(`/v1/vector_stores/${store.id}/files/${f.id}`, { method: "DELETE" });
              await drawFiles();
            } catch (err) { results.prepend(errorNode(err)); }
          },
        }, t("docs.remove")))))));
    } catch (err) {
      clear(files, h("tr", {}, h("td", { colspan: 4 }, errorNode(err))));
    }
  };

  const upload = async (fileList) => {
    const jobs = [...fileList].map((file) => uploadOne(store, file, uploads));
    await Promise.all(jobs);
    await drawFiles();
    await refreshStores();
  };
  input.addEventListener("change", () => { upload(input.files); });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    upload(event.dataTransfer.files);
  });
  search.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(results, h("p", { class: "hint" }, t("loading")));
    try {
      const found = await api(`/v1/vector_stores/${store.id}/search`, {
        method: "POST", body: { query: query.value, max_num_results: 10 },
      });
      if (!found.data.length) {
        clear(results, h("p", { class: "hint" }, t("docs.noResults")));
        return;
      }
      clear(results, h("ol", { class: "results" }, found.data.map((hit) => h("li", {},
        h("div", { class: "result-head" },
          h("span", { class: "score" }, hit.score.toFixed(3)), " ", h("strong", {}, hit.filename)),
        h("p", {}, hit.content.map((part) => part.text).join("\n"))))));
    } catch (err) {
      clear(results, errorNode(err));
    }
  });
  await drawFiles();
}

// Upload one file, attach it to the store, and follow its ingestion to the end.
async function uploadOne(store, file, uploads) {
  const status = h("td", { class: "status" }, t("status.uploading"));
  const error = h("td");
  uploads.append(h("tr", {}, h("td", {}, file.name), status, error));
  const set = (code) => { status.className = `status ${code}`; status.textContent = t(`status.${code}`); };
  try {
    const form = new FormData();
    form.append("purpose", "assistants");
    form.append("file", file, file.name);
    const uploaded = await api("/v1/files", { method: "POST", form });
    set("in_progress");
    let entry = await api(`/v1/vector_stores/${store.id}/files`, {
      method: "POST", body: { file_id: uploaded.id },
    });
    while (!FINAL.has(entry.status)) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      entry = await api(`/v1/vector_stores/${store.id}/files/${uploaded.id}`);
    }
    set(entry.status);
    if (entry.last_error) error.textContent = entry.last_error.message;
  } catch (err) {
    set("failed");
    error.append(errorNode(err));
  }
}

// The PII the guard finds in one file (GET /v1/ember/files/{id}/pii): counts by type, then
// each finding with where it is. Findings are shown as text, like everything else.
async function showPii(panel, fileId) {
  clear(panel, h("p", { class: "hint" }, t("loading")));
  try {
    const report = await api(`/v1/ember/files/${encodeURIComponent(fileId)}/pii`);
    const types = Object.entries(report.entities);
    const title = h("h3", {}, t("docs.piiIn", { name: report.filename }));
    if (!types.length) {
      clear(panel, title, h("p", { class: "hint", id: "pii-none" }, t("docs.piiNone")));
      return;
    }
    clear(panel, title,
      h("p", { class: "pii-counts", id: "pii-counts" },
        types.map(([type, n]) => h("span", { class: "pii-type", "data-type": type }, `${type} × ${n}`))),
      h("table", { id: "pii-findings" },
        h("thead", {}, h("tr", {}, [t("docs.piiType"), t("docs.piiText"), t("docs.piiWhere"), t("docs.piiScore")]
          .map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, report.findings.map((f) => h("tr", {},
          h("td", {}, f.type), h("td", {}, h("code", {}, f.text)),
          h("td", {}, [f.page ? `p. ${f.page}` : "", f.heading || ""].filter(Boolean).join(" · ")),
          h("td", { class: "num" }, f.score.toFixed(2)))))),
      report.has_more ? h("p", { class: "hint" }, t("docs.piiMore", { n: report.total })) : null);
  } catch (err) {
    clear(panel, errorNode(err));
  }
}
