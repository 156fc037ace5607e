// Models: every model and alias the server answers to, which are loaded (engine, memory,
// process), load / unload, and pulling a model from the hub with its progress.

import { api } from "./api.js";
import { clear, errorNode, h } from "./dom.js";
import { t } from "./i18n.js";
import { renderPulls } from "./pulls.js";

export async function render(main) {
  const table = h("div", { id: "model-list" });
  const errors = h("div", { id: "models-error" });
  const pulls = h("section", { id: "pull-panel", class: "panel" });
  clear(main, h("h1", {}, t("nav.models")), errors, table, pulls);
  const refresh = async () => {
    try {
      const [models, loaded] = await Promise.all([api("/v1/models"), api("/v1/ember/models/loaded")]);
      const byId = new Map(loaded.data.map((m) => [m.id, m]));
      const budget = loaded.budget_bytes ? ` / ${mb(loaded.budget_bytes)}` : "";
      clear(table, h("p", { class: "hint" },
        `${t("models.loadedCount", { n: loaded.data.length })}${budget}`),
      h("table", {},
        h("thead", {}, h("tr", {}, [t("models.id"), t("models.owner"), t("models.state"),
          t("models.engine"), t("models.memory"), ""].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, models.data.map((model) => {
          const entry = byId.get(model.id);
          const busy = (button, path) => async () => {
            clear(errors);
            button.disabled = true;
            button.textContent = t("loading");
            try {
              await api(`/v1/ember/models/${encodeURIComponent(model.id)}/${path}`, { method: "POST" });
            } catch (err) {
              errors.append(errorNode(err));
            }
            await refresh();
          };
          const button = h("button", { type: "button", "data-model": model.id },
            entry ? t("models.unload") : t("models.load"));
          button.addEventListener("click", busy(button, entry ? "unload" : "load"));
          return h("tr", { "data-model": model.id },
            h("td", {}, model.id), h("td", {}, model.owned_by),
            h("td", { class: entry ? "status completed" : "status" },
              entry ? t("models.loaded") : t("models.notLoaded")),
            h("td", {}, entry ? entry.engine : ""), h("td", { class: "num" }, entry ? mb(entry.memory_bytes) : ""),
            h("td", {}, button));
        }))));
    } catch (err) {
      clear(table, errorNode(err));
    }
  };
  await Promise.all([refresh(), renderPulls(pulls, { onPulled: refresh })]);
}

function mb(bytes) {
  return `${(bytes / 1048576).toFixed(0)} MB`;
}
