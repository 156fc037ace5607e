// Pulling a model from the hub (admin key): POST /v1/ember/models/pull starts it, and the
// pulls list (GET /v1/ember/models/pulls) is polled for each pull's bytes until it ends.

import { api } from "./api.js";
import { clear, errorNode, formatTime, h } from "./dom.js";
import { t } from "./i18n.js";
import { adminKeyField } from "./keys.js";

const state = { timer: null };

export async function renderPulls(box, { onPulled }) {
  const repo = h("input", {
    id: "pull-repo", required: true, autocomplete: "off", size: 40,
    placeholder: "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
  });
  const file = h("input", { id: "pull-file", autocomplete: "off", placeholder: "model.Q4_K_M.gguf" });
  const revision = h("input", { id: "pull-revision", autocomplete: "off", placeholder: "main" });
  const modelId = h("input", { id: "pull-id", autocomplete: "off" });
  const errors = h("div", { id: "pull-error" });
  const list = h("div", { id: "pull-list" });
  const form = h("form", { id: "pull-form", class: "grid" },
    h("label", { for: "pull-repo" }, t("pull.repo")), repo,
    h("label", { for: "pull-file" }, t("pull.file")), file,
    h("label", { for: "pull-revision" }, t("pull.revision")), revision,
    h("label", { for: "pull-id" }, t("pull.id")), modelId,
    h("span", {}), h("div", {}, h("button", { type: "submit", class: "primary", id: "pull-start" }, t("pull.start"))));
  const ended = new Set();
  let first = true;
  const refresh = async () => {
    if (!list.isConnected) return;
    clearTimeout(state.timer);
    try {
      const pulls = (await api("/v1/ember/models/pulls", { admin: true })).data;
      drawPulls(list, pulls);
      // A pull that succeeded since the last poll: its model is listed now.
      const done = pulls.filter((p) => p.status === "succeeded" && !ended.has(p.id));
      for (const p of pulls) if (p.status !== "running") ended.add(p.id);
      if (done.length && !first) await onPulled();
      first = false;
      if (pulls.some((p) => p.status === "running")) state.timer = setTimeout(refresh, 500);
    } catch (err) {
      clear(list, errorNode(err));
    }
  };
  clear(box, h("h2", {}, t("pull.title")), h("p", { class: "hint" }, t("pull.about")),
    adminKeyField(() => refresh()), form, errors, list);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(errors);
    const body = { repo: repo.value.trim() };
    if (file.value.trim()) body.files = [file.value.trim()];
    if (revision.value.trim()) body.revision = revision.value.trim();
    if (modelId.value.trim()) body.model_id = modelId.value.trim();
    try {
      await api("/v1/ember/models/pull", { method: "POST", body, admin: true });
    } catch (err) {
      errors.append(errorNode(err));
    }
    await refresh();
  });
  await refresh();
}

function drawPulls(list, pulls) {
  if (!pulls.length) {
    clear(list, h("p", { class: "hint" }, t("pull.none")));
    return;
  }
  clear(list, h("table", { id: "pulls" },
    h("thead", {}, h("tr", {}, [t("pull.repo"), t("models.id"), t("models.state"), t("pull.progress"),
      t("keys.created")].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, pulls.map((p) => {
      const { bytes, total_bytes: total, file } = p.progress;
      const percent = total ? Math.floor((100 * bytes) / total) : 0;
      return h("tr", { "data-pull": p.id },
        h("td", {}, p.repo, p.revision !== "main" ? ` @ ${p.revision}` : ""),
        h("td", {}, p.model), h("td", { class: `status ${p.status}` }, t(`pull.${p.status}`),
          p.error ? errorNode(p.error) : null),
        h("td", {}, h("progress", { value: bytes, max: total || 1, "aria-label": t("pull.progress") }),
          " ", h("span", { class: "count" }, `${percent}% · ${mb(bytes)} / ${mb(total)}`),
          file ? h("div", { class: "hint" }, file) : null),
        h("td", {}, formatTime(p.created_at)));
    }))));
}

function mb(bytes) {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}
