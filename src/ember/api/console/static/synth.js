// Synthetic-data jobs (/v1/ember/synth_jobs): start one from a vector store or uploaded files,
// follow its passages as the model answers them, cancel it, and take a finished job's
// training file to a new fine-tuning job.

import { api } from "./api.js";
import { clear, errorNode, formatTime, h } from "./dom.js";
import { t } from "./i18n.js";
import { loadDraft, saveDraft } from "./tune_new.js";

const MOVING = new Set(["queued", "running"]);
const state = { timer: null, actionError: null };

export async function renderSynth(box, { onUseFile }) {
  const model = h("select", { id: "synth-model" });
  const store = h("select", { id: "synth-store" });
  const files = h("select", { id: "synth-files", multiple: true, size: 4 });
  const upload = h("input", { id: "synth-upload", type: "file", multiple: true });
  const perPassage = h("input", { id: "synth-per-passage", type: "number", min: 1, max: 10, value: 3 });
  const maxPassages = h("input", { id: "synth-max-passages", type: "number", min: 1, max: 2000, value: 200 });
  const system = h("input", { id: "synth-system", autocomplete: "off" });
  const errors = h("div", { id: "synth-error" });
  const list = h("div", { id: "synth-list" });
  const form = h("form", { id: "new-synth", class: "grid" },
    h("label", { for: "synth-model" }, t("tune.model")), model,
    h("label", { for: "synth-store" }, t("synth.store")), store,
    h("label", { for: "synth-files" }, t("synth.files")),
    h("div", { class: "row" }, files, h("label", { for: "synth-upload", class: "hint" }, t("tune.orUpload")), upload),
    h("label", { for: "synth-per-passage" }, t("synth.perPassage")), perPassage,
    h("label", { for: "synth-max-passages" }, t("synth.maxPassages")), maxPassages,
    h("label", { for: "synth-system" }, t("synth.system")), system,
    h("span", {}), h("div", {}, h("button", { type: "submit", class: "primary", id: "synth-start" }, t("synth.start"))));
  clear(box, h("p", { class: "hint" }, t("synth.about")),
    h("section", { class: "panel" }, h("h2", {}, t("synth.new")), form, errors),
    h("section", { class: "panel" }, h("h2", {}, t("synth.jobs")), list));

  // Keeps what is selected: an upload may land before the first list does.
  const loadFiles = async (chosen = [...files.selectedOptions].map((o) => o.value)) => {
    const found = (await api("/v1/files?limit=100&order=desc")).data
      .filter((f) => f.purpose !== "fine-tune");
    clear(files, found.map((f) => h("option", { value: f.id, selected: chosen.includes(f.id) },
      `${f.filename} (${f.id})`)));
  };
  upload.addEventListener("change", async () => {
    clear(errors);
    const chosen = [...files.selectedOptions].map((o) => o.value);
    for (const file of upload.files) {
      const body = new FormData();
      body.append("purpose", "user_data");
      body.append("file", file);
      try {
        chosen.push((await api("/v1/files", { method: "POST", form: body })).id);
      } catch (err) {
        errors.append(errorNode(err));
      }
    }
    upload.value = "";
    await loadFiles(chosen);
  });

  const refresh = async () => {
    if (!list.isConnected) return;
    clearTimeout(state.timer);
    try {
      const jobs = (await api("/v1/ember/synth_jobs?limit=50")).data;
      drawJobs(list, jobs, refresh, onUseFile);
      if (jobs.some((j) => MOVING.has(j.status))) state.timer = setTimeout(refresh, 1000);
    } catch (err) {
      clear(list, errorNode(err));
      state.timer = setTimeout(refresh, 5000);
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(errors);
    const body = {
      model: model.value,
      file_ids: [...files.selectedOptions].map((o) => o.value),
      questions_per_passage: Number(perPassage.value),
      max_passages: Number(maxPassages.value),
    };
    if (store.value) body.vector_store_id = store.value;
    if (system.value.trim()) body.system = system.value.trim();
    try {
      await api("/v1/ember/synth_jobs", { method: "POST", body });
    } catch (err) {
      errors.append(errorNode(err));
    }
    await refresh();
  });
  try { // after the listeners above, so no early upload or click is lost
    const [models, stores] = await Promise.all([
      api("/v1/models"), api("/v1/vector_stores?limit=100"), loadFiles()]);
    clear(model, models.data.map((m) => h("option", { value: m.id }, m.id)));
    clear(store, h("option", { value: "" }, t("synth.noStore")),
      stores.data.map((s) => h("option", { value: s.id }, s.name || s.id)));
  } catch (err) {
    errors.append(errorNode(err));
  }
  await refresh();
}

function drawJobs(list, jobs, refresh, onUseFile) {
  const errors = h("div", {}, state.actionError ? errorNode(state.actionError) : null);
  if (!jobs.length) {
    clear(list, h("p", { class: "hint" }, t("synth.none")));
    return;
  }
  clear(list, errors, h("table", { id: "synth-jobs" },
    h("thead", {}, h("tr", {}, [t("tune.job"), t("tune.model"), t("docs.status"), t("synth.passages"),
      t("synth.pairs"), t("keys.created"), ""].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, jobs.map((job) => {
      const { total, completed } = job.passages;
      const actions = [];
      if (MOVING.has(job.status)) {
        actions.push(h("button", {
          type: "button", onclick: async () => {
            state.actionError = null;
            try {
              await api(`/v1/ember/synth_jobs/${job.id}/cancel`, { method: "POST" });
            } catch (err) { state.actionError = err; }
            await refresh();
          },
        }, t("tune.cancel")));
      }
      if (job.output_file_id) {
        actions.push(h("button", {
          type: "button", onclick: () => {
            saveDraft({ ...loadDraft(), training: job.output_file_id });
            onUseFile(job.output_file_id);
          },
        }, t("synth.useFile")));
      }
      const dropped = Object.entries(job.pairs.dropped || {}).map(([why, n]) => `${why}: ${n}`).join(", ");
      return h("tr", { "data-job": job.id },
        h("td", {}, h("code", {}, job.id)), h("td", {}, job.model),
        h("td", { class: `status ${job.status}` }, job.status,
          job.error && job.error.message ? errorNode(job.error) : null),
        h("td", {}, h("progress", { value: completed, max: total || 1, "aria-label": t("synth.passages") }),
          " ", h("span", { class: "count" }, `${completed} / ${total}`)),
        h("td", {}, t("synth.kept", { kept: job.pairs.kept, written: job.pairs.written }),
          dropped ? h("div", { class: "hint" }, dropped) : null),
        h("td", {}, formatTime(job.created_at)),
        h("td", {}, h("div", { class: "row" }, actions)));
    }))));
}
