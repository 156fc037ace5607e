// Fine-tuning: a new job (its data checked before it starts), jobs, a job's live events and
// loss curve, its checkpoints, cancel / pause / resume, and "chat with this model" for a
// finished job or a checkpoint; synthetic-data jobs on a tab of their own.

import { api } from "./api.js";
import { clear, errorNode, formatTime, h, svg } from "./dom.js";
import { t } from "./i18n.js";
import { renderSynth } from "./synth.js";
import { renderNewJob } from "./tune_new.js";

const LIVE = new Set(["validating_files", "queued", "running"]);
// actionError: the last refused pause/resume/cancel, kept across redraws until the next one.
const state = { selected: null, timer: null, actionError: null, tab: "jobs", openNew: false };
const TABS = ["jobs", "synth"];

export async function render(main) {
  const panel = h("div", { id: "tune-panel", role: "tabpanel" });
  const tabs = h("div", { class: "tabs", role: "tablist", id: "tune-tabs" }, TABS.map((name) => h("button", {
    type: "button", role: "tab", id: `tab-${name}`, "aria-selected": String(state.tab === name),
    onclick: () => { state.tab = name; render(main); },
  }, t(`tune.tab.${name}`))));
  clear(main, h("h1", {}, t("nav.tuning")), tabs, panel);
  if (state.tab === "synth") {
    await renderSynth(panel, {
      onUseFile: () => { state.tab = "jobs"; state.openNew = true; render(main); },
    });
    return;
  }
  await renderJobs(panel);
}

async function renderJobs(panel) {
  const list = h("div", { id: "job-list" });
  const detail = h("section", { id: "job-detail", class: "panel" });
  const newBox = h("div", {});
  const newJob = h("details", { class: "panel", id: "new-job-panel", open: state.openNew },
    h("summary", {}, t("tune.new")), newBox);
  newJob.addEventListener("toggle", () => { state.openNew = newJob.open; });
  clear(panel, newJob,
    h("section", { class: "panel" }, h("h2", {}, t("tune.jobs")), list), detail);
  const refresh = async () => {
    if (!list.isConnected) return; // the user went to another page
    try {
      const jobs = await api("/v1/fine_tuning/jobs?limit=50");
      drawJobs(list, jobs.data, refresh);
      const job = jobs.data.find((j) => j.id === state.selected);
      if (job) await drawJob(detail, job, refresh);
      else clear(detail, h("p", { class: "hint" }, jobs.data.length ? t("tune.pick") : ""));
      clearTimeout(state.timer);
      // A paused job is followed too: its pause checkpoint lands after the status changes,
      // and it may be resumed from elsewhere.
      const moving = (j) => LIVE.has(j.status) || j.status === "paused";
      if (jobs.data.some(moving)) state.timer = setTimeout(refresh, 2000);
    } catch (err) {
      // A failed poll (the server busy, the network away) says so and tries again: the
      // page never stops following a job that is still moving.
      clear(list, errorNode(err));
      clearTimeout(state.timer);
      state.timer = setTimeout(refresh, 5000);
    }
  };
  await Promise.all([refresh(), renderNewJob(newBox, {
    onCreated: async (job) => {
      state.selected = job.id;
      state.actionError = null;
      newJob.open = false;
      await refresh();
    },
  })]);
}

function drawJobs(list, jobs, refresh) {
  if (!jobs.length) {
    clear(list, h("p", { class: "hint" }, t("tune.none")));
    return;
  }
  clear(list, h("table", {},
    h("thead", {}, h("tr", {}, [t("tune.job"), t("tune.model"), t("docs.status"),
      t("keys.created"), t("tune.result")].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, jobs.map((job) => h("tr", {},
      h("td", {}, h("button", {
        type: "button", class: `link${job.id === state.selected ? " current" : ""}`,
        onclick: () => { state.selected = job.id; state.actionError = null; refresh(); },
      }, job.id)),
      h("td", {}, job.model), h("td", { class: `status ${job.status}` }, job.status),
      h("td", {}, formatTime(job.created_at)), h("td", {}, job.fine_tuned_model || ""))))));
}

function chatWith(model) {
  return h("button", {
    type: "button", onclick: () => {
      sessionStorage.setItem("ember.chatModel", model);
      location.hash = "#/chat";
    },
  }, t("tune.chatWith"));
}

async function drawJob(detail, job, refresh) {
  const [events, checkpoints] = await Promise.all([
    api(`/v1/fine_tuning/jobs/${job.id}/events?limit=1000`),
    api(`/v1/fine_tuning/jobs/${job.id}/checkpoints?limit=100`),
  ]);
  const errors = h("div", {}, state.actionError ? errorNode(state.actionError) : null);
  const action = (name) => h("button", {
    type: "button", onclick: async () => {
      state.actionError = null;
      try {
        await api(`/v1/fine_tuning/jobs/${job.id}/${name}`, { method: "POST" });
      } catch (err) { state.actionError = err; }
      await refresh();
    },
  }, t(`tune.${name}`));
  const actions = [];
  if (LIVE.has(job.status)) actions.push(action("pause"), action("cancel"));
  if (job.status === "paused") actions.push(action("resume"), action("cancel"));
  if (job.fine_tuned_model) actions.push(chatWith(job.fine_tuned_model));
  const losses = events.data.filter((e) => e.data && typeof e.data.train_loss === "number")
    .map((e) => [e.data.step, e.data.train_loss]).sort((a, b) => a[0] - b[0]);
  clear(detail,
    h("h2", {}, job.id), h("p", {}, `${job.model} · ${job.status}`), h("div", { class: "row" }, actions),
    errors,
    job.error && job.error.message ? errorNode(job.error) : null,
    h("h3", {}, t("tune.loss")), losses.length ? lossCurve(losses) : h("p", { class: "hint" }, t("tune.noLoss")),
    h("h3", {}, t("tune.checkpoints")),
    checkpoints.data.length ? h("table", { id: "checkpoints" },
      h("thead", {}, h("tr", {}, [t("tune.step"), t("tune.loss"), t("tune.model"), ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, checkpoints.data.map((c) => h("tr", {},
        h("td", {}, String(c.step_number)),
        h("td", {}, c.metrics && c.metrics.train_loss != null ? Number(c.metrics.train_loss).toFixed(4) : ""),
        h("td", {}, h("code", {}, c.fine_tuned_model_checkpoint)),
        h("td", {}, chatWith(c.fine_tuned_model_checkpoint))))))
      : h("p", { class: "hint" }, t("tune.noCheckpoints")),
    h("h3", {}, t("tune.events")),
    h("ol", { id: "events", class: "events" }, events.data.map((e) => h("li", { class: e.level },
      h("time", {}, formatTime(e.created_at)), " ", e.message))));
}

// The training loss by step, as an SVG line with labelled axes.
export function lossCurve(points) {
  const width = 640;
  const height = 220;
  const pad = 40;
  const steps = points.map((p) => p[0]);
  const losses = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)];
  const [y0, y1] = [Math.min(...losses), Math.max(...losses)];
  const x = (s) => pad + ((s - x0) / (x1 - x0 || 1)) * (width - 2 * pad);
  const y = (l) => height - pad - ((l - y0) / (y1 - y0 || 1)) * (height - 2 * pad);
  const line = points.map(([s, l]) => `${x(s).toFixed(1)},${y(l).toFixed(1)}`).join(" ");
  return svg("svg", {
    class: "chart", id: "loss-curve", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `${t("tune.loss")}: ${losses[0].toFixed(3)} → ${losses[losses.length - 1].toFixed(3)}`,
  },
  svg("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "axis" }),
  svg("line", { x1: pad, y1: pad, x2: pad, y2: height - pad, class: "axis" }),
  svg("text", { x: pad, y: height - 12, text: `${t("tune.step")} ${x0}` }),
  svg("text", { x: width - pad, y: height - 12, "text-anchor": "end", text: String(x1) }),
  svg("text", { x: 4, y: pad, text: y1.toFixed(2) }),
  svg("text", { x: 4, y: height - pad, text: y0.toFixed(2) }),
  svg("polyline", { points: line, class: "loss" }),
  points.map(([s, l]) => svg("circle", { cx: x(s).toFixed(1), cy: y(l).toFixed(1), r: 2.5, class: "loss-point" })));
}
