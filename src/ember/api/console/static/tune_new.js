// A new fine-tuning job: pick or upload the training (and validation) file, the model, the
// method, hyperparameters ("auto" by default) and a suffix; "Check data" shows what the
// server's data check finds in the files (POST /v1/ember/fine_tuning/check) and only a
// clean check offers "Start the job". What the user chose is kept in sessionStorage, so a
// reload or a refused request loses nothing; the API's refusals are shown as it words them.

import { api } from "./api.js";
import { clear, errorNode, h } from "./dom.js";
import { t } from "./i18n.js";

const DRAFT = "ember.tuneDraft";
const HYPER = { supervised: ["n_epochs", "batch_size", "learning_rate_multiplier"] };
HYPER.dpo = [...HYPER.supervised, "beta"];

export function loadDraft() {
  try { return JSON.parse(sessionStorage.getItem(DRAFT) || "{}"); } catch { return {}; }
}

export function saveDraft(draft) { sessionStorage.setItem(DRAFT, JSON.stringify(draft)); }

// "auto" (or nothing) stays "auto"; a number is sent as one; anything else is sent as typed,
// for the API to refuse with its own message.
function hyperValue(text) {
  const value = text.trim();
  if (value === "" || value === "auto") return "auto";
  return Number.isFinite(Number(value)) ? Number(value) : value;
}

function fileOptions(select, files, chosen, none) {
  clear(select, none ? h("option", { value: "" }, t("tune.noFile")) : null,
    files.map((f) => h("option", { value: f.id }, `${f.filename} (${f.id})`)));
  if (chosen && files.some((f) => f.id === chosen)) select.value = chosen;
}

// One file field: a select of the fine-tune files, and an upload that adds to it.
function fileField(id, label, none) {
  const select = h("select", { id });
  const upload = h("input", { id: `${id}-upload`, type: "file", accept: ".jsonl,.json,.txt" });
  const row = h("div", { class: "row" }, select,
    h("label", { for: `${id}-upload`, class: "hint" }, t("tune.orUpload")), upload);
  return { select, upload, none, row, label: h("label", { for: id }, label) };
}

export async function renderNewJob(box, { onCreated }) {
  const draft = loadDraft();
  const training = fileField("ft-training", t("tune.trainingFile"), false);
  const validation = fileField("ft-validation", t("tune.validationFile"), true);
  const model = h("select", { id: "ft-model" });
  const method = h("select", { id: "ft-method" },
    h("option", { value: "supervised" }, t("tune.supervised")), h("option", { value: "dpo" }, "DPO"));
  method.value = draft.method || "supervised";
  const suffix = h("input", { id: "ft-suffix", autocomplete: "off", value: draft.suffix || "", maxlength: 64 });
  const hyper = {};
  for (const name of HYPER.dpo) {
    hyper[name] = h("input", {
      id: `ft-${name}`, autocomplete: "off", value: (draft.hyper || {})[name] || "auto", size: 8,
    });
  }
  const hyperRow = h("div", { class: "row" });
  const drawHyper = () => clear(hyperRow, HYPER[method.value].map((name) => h("span", { class: "check" },
    h("label", { for: `ft-${name}` }, t(`tune.${name}`)), hyper[name])));
  drawHyper();
  const findings = h("div", { id: "ft-findings", "aria-live": "polite" });
  const errors = h("div", { id: "ft-error" });
  const check = h("button", { type: "submit", id: "ft-check" }, t("tune.check"));
  const start = h("button", { type: "button", id: "ft-start", class: "primary", hidden: true }, t("tune.start"));
  const form = h("form", { id: "new-job", class: "grid" },
    training.label, training.row, validation.label, validation.row,
    h("label", { for: "ft-model" }, t("tune.model")), model,
    h("label", { for: "ft-method" }, t("tune.method")), method,
    h("span", {}, t("tune.hyperparameters")), hyperRow,
    h("label", { for: "ft-suffix" }, t("tune.suffix")), suffix,
    h("span", {}), h("div", { class: "row" }, check, start));
  clear(box, form, errors, findings);

  const save = () => saveDraft({
    training: training.select.value, validation: validation.select.value, model: model.value,
    method: method.value, suffix: suffix.value,
    hyper: Object.fromEntries(Object.entries(hyper).map(([k, v]) => [k, v.value])),
  });
  // Any change to what was checked asks for a new check before the job can start.
  const stale = () => { start.hidden = true; clear(findings); save(); };
  for (const el of [training.select, validation.select, method]) el.addEventListener("change", stale);
  method.addEventListener("change", drawHyper);
  for (const el of [model, suffix, ...Object.values(hyper)]) el.addEventListener("input", save);

  let files = [];
  const loadFiles = async () => {
    files = (await api("/v1/files?purpose=fine-tune&limit=100&order=desc")).data;
    fileOptions(training.select, files, loadDraft().training, false);
    fileOptions(validation.select, files, loadDraft().validation, true);
  };
  for (const field of [training, validation]) {
    field.upload.addEventListener("change", async () => {
      const file = field.upload.files[0];
      if (!file) return;
      clear(errors);
      const form = new FormData();
      form.append("purpose", "fine-tune");
      form.append("file", file);
      try {
        const uploaded = await api("/v1/files", { method: "POST", form });
        saveDraft({ ...loadDraft(), [field === training ? "training" : "validation"]: uploaded.id });
        await loadFiles();
        stale();
      } catch (err) {
        errors.append(errorNode(err));
      }
      field.upload.value = "";
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(errors);
    clear(findings, h("p", { class: "hint" }, t("loading")));
    start.hidden = true;
    if (!training.select.value) {
      clear(findings, h("p", { class: "hint" }, t("tune.needFile")));
      return;
    }
    const body = { training_file: training.select.value, method: method.value };
    if (validation.select.value) body.validation_file = validation.select.value;
    try {
      const result = await api("/v1/ember/fine_tuning/check", { method: "POST", body });
      clear(findings, drawFindings(result, files));
      start.hidden = !result.ok;
    } catch (err) {
      clear(findings, errorNode(err));
    }
  });

  start.addEventListener("click", async () => {
    clear(errors);
    const hyperparameters = Object.fromEntries(
      HYPER[method.value].map((name) => [name, hyperValue(hyper[name].value)]));
    const body = {
      model: model.value,
      training_file: training.select.value,
      method: { type: method.value, [method.value]: { hyperparameters } },
    };
    if (validation.select.value) body.validation_file = validation.select.value;
    if (suffix.value.trim()) body.suffix = suffix.value.trim();
    start.disabled = true;
    try {
      const job = await api("/v1/fine_tuning/jobs", { method: "POST", body });
      start.hidden = true;
      clear(findings);
      await onCreated(job);
    } catch (err) {
      errors.append(errorNode(err));
    } finally {
      start.disabled = false;
    }
  });
  // Lists are filled after the listeners are attached, so no early upload is lost.
  try {
    const [models] = await Promise.all([api("/v1/models"), loadFiles()]);
    clear(model, models.data.map((m) => h("option", { value: m.id }, m.id)));
    if (draft.model && models.data.some((m) => m.id === draft.model)) model.value = draft.model;
  } catch (err) {
    errors.append(errorNode(err));
  }
}

// The check's findings: per file its examples by format, and its bad lines by number.
function drawFindings(result, files) {
  const names = new Map(files.map((f) => [f.id, f.filename]));
  return h("div", { class: result.ok ? "findings ok" : "findings bad" },
    h("p", { role: "status", class: result.ok ? "verified ok" : "verified broken" },
      result.ok ? t("tune.checkOk") : t("tune.checkBad")),
    Object.entries(result.files).map(([param, file]) => {
      const formats = Object.entries(file.formats).map(([kind, n]) => `${n} ${kind}`).join(", ");
      return h("section", { class: "finding", "data-file": param },
        h("h4", {}, `${t(`tune.${param === "training_file" ? "trainingFile" : "validationFile"}`)}: ${names.get(file.id) || file.filename}`),
        h("p", {}, t("tune.examples", { n: file.examples }), formats ? ` (${formats})` : ""),
        file.problem_count ? h("p", {}, t("tune.problems", { n: file.problem_count })) : null,
        file.problems.length ? h("ul", { class: "problems" }, file.problems.map((p) => h("li", {},
          p.line ? `${t("tune.line", { n: p.line })}: ${p.reason}` : p.reason))) : null);
    }));
}
