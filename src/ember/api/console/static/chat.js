// Chat: a model picker, streamed answers with stop, grounded answers from vector stores with
// citations that open the cited passage, abstentions shown with their reason.

import { api, streamChat } from "./api.js";
import { clear, errorNode, h } from "./dom.js";
import { t } from "./i18n.js";
import { renderMarkdown } from "./markdown.js";

const DRAFT = "ember.chatDraft";
const MODEL = "ember.chatModel";
// The conversation outlives a visit to another page (not a reload: it is not stored).
const state = { messages: [], stores: new Set(), controller: null, redraw: () => {}, buttons: null };

export async function render(main) {
  const models = h("select", { id: "chat-model" });
  const storesBox = h("div", { class: "stores" });
  const log = h("div", { id: "messages", class: "messages", role: "log", "aria-live": "polite" });
  const prompt = h("textarea", {
    id: "prompt", rows: 3, "aria-describedby": "prompt-hint",
    placeholder: t("chat.placeholder"),
  });
  prompt.value = sessionStorage.getItem(DRAFT) || "";
  const send = h("button", { type: "submit", id: "send", class: "primary" }, t("chat.send"));
  const stop = h("button", { type: "button", id: "stop", disabled: true }, t("chat.stop"));
  const errors = h("div", { id: "chat-error" });
  const viewer = sourceViewer();
  const form = h("form", { id: "composer", class: "composer" },
    h("label", { for: "prompt", class: "visually-hidden" }, t("chat.message")),
    prompt,
    h("div", { class: "row" },
      h("span", { id: "prompt-hint", class: "hint" }, t("chat.hint")), send, stop));
  const newChat = h("button", { type: "button", id: "new-chat" }, t("chat.new"));
  clear(main,
    h("h1", {}, t("nav.chat")),
    h("div", { class: "toolbar" },
      h("label", { for: "chat-model" }, t("chat.model")), models, newChat),
    h("fieldset", { class: "grounding" }, h("legend", {}, t("chat.ground")), storesBox),
    log, errors, form, viewer.dialog);

  // A stream outlives a visit to another page: it redraws whichever chat view is current.
  const draw = () => state.redraw();
  state.redraw = () => drawMessages(log, viewer);
  state.buttons = { send, stop };
  send.disabled = Boolean(state.controller);
  stop.disabled = !state.controller;
  draw();

  prompt.addEventListener("input", () => sessionStorage.setItem(DRAFT, prompt.value));
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    } else if (event.key === "Escape" && state.controller) {
      state.controller.abort();
    }
  });
  stop.addEventListener("click", () => state.controller && state.controller.abort());
  newChat.addEventListener("click", () => {
    if (state.controller) state.controller.abort();
    state.messages = [];
    clear(errors);
    draw();
    prompt.focus();
  });
  models.addEventListener("change", () => sessionStorage.setItem(MODEL, models.value));

  // The lists load while the user types; a message sent before they arrive waits for them.
  const ready = Promise.all([loadModels(models, errors), loadStores(storesBox, errors)]);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await ready;
    const text = prompt.value;
    if (!text.trim() || state.controller || !models.value) return;
    clear(errors);
    const history = state.messages.filter((m) => !m.failed).map(({ role, content }) =>
      ({ role, content }));
    const user = { role: "user", content: text };
    const answer = { role: "assistant", content: "", streaming: true };
    state.messages.push(user, answer);
    prompt.value = "";
    sessionStorage.removeItem(DRAFT);
    draw();
    const body = {
      model: models.value,
      messages: [...history, { role: "user", content: text }],
      stream_options: { include_usage: true },
    };
    const stores = [...state.stores];
    if (stores.length) body.ember = { vector_store_ids: stores };
    answer.stores = stores;
    state.controller = new AbortController();
    send.disabled = true;
    stop.disabled = false;
    try {
      await streamChat(body, {
        signal: state.controller.signal,
        onChunk(chunk) {
          const choice = chunk.choices && chunk.choices[0];
          if (choice && choice.delta && choice.delta.content) answer.content += choice.delta.content;
          if (choice && choice.finish_reason) answer.finish = choice.finish_reason;
          if (chunk.ember) answer.ember = chunk.ember;
          draw();
        },
      });
    } catch (err) {
      if (err.name === "AbortError") {
        answer.stopped = true;
      } else {
        // Nothing typed is lost: the question goes back into the box, the failed turn away.
        state.messages.splice(state.messages.indexOf(user), 2);
        if (!prompt.value) prompt.value = text;
        sessionStorage.setItem(DRAFT, prompt.value);
        clear(errors, errorNode(err));
      }
    } finally {
      answer.streaming = false;
      state.controller = null;
      state.buttons.send.disabled = false;
      state.buttons.stop.disabled = true;
      draw();
      if (prompt.isConnected) prompt.focus();
    }
  });

  await ready;
  prompt.focus();
}

async function loadModels(select, errors) {
  try {
    const list = await api("/v1/models");
    const ids = list.data.map((m) => m.id).sort();
    const wanted = sessionStorage.getItem(MODEL);
    // A fine-tuning checkpoint is served by name without being listed: keep the one chosen.
    if (wanted && !ids.includes(wanted)) ids.push(wanted);
    clear(select, ids.map((id) => h("option", { value: id }, id)));
    select.value = ids.includes(wanted) ? wanted : ids.includes("default") ? "default" : ids[0];
  } catch (err) {
    errors.append(errorNode(err));
  }
}

async function loadStores(box, errors) {
  try {
    const list = await api("/v1/vector_stores?limit=100");
    if (!list.data.length) {
      clear(box, h("p", { class: "hint" }, t("chat.noStores")));
      return;
    }
    clear(box, list.data.map((store) => {
      const box = h("input", { type: "checkbox", value: store.id, checked: state.stores.has(store.id) });
      box.addEventListener("change", () => {
        if (box.checked) state.stores.add(store.id);
        else state.stores.delete(store.id);
      });
      return h("label", { class: "check" }, box, store.name || store.id);
    }));
  } catch (err) {
    errors.append(errorNode(err));
  }
}

function drawMessages(log, viewer) {
  clear(log, state.messages.map((message) => {
    const who = message.role === "user" ? t("chat.you") : t("chat.assistant");
    const body = h("div", { class: "body" });
    const article = h("article", { class: `msg ${message.role}` }, h("header", {}, who), body);
    if (message.role === "user") {
      body.append(h("p", { class: "plain" }, message.content));
      return article;
    }
    const ember = message.ember;
    const cite = ember ? (n) => citeButton(ember, n, message.stores, viewer) : null;
    if (ember && ember.abstained) {
      article.classList.add("abstained");
      body.append(h("p", { class: "abstain", role: "note" },
        h("strong", {}, t("chat.abstained")), " ", reasonText(ember.abstain_reason)));
    }
    body.append(renderMarkdown(message.content, cite));
    if (message.streaming) body.append(h("span", { class: "cursor", "aria-hidden": "true" }, "▍"));
    if (message.stopped) body.append(h("p", { class: "note stopped" }, t("chat.stopped")));
    if (ember && ember.citations && ember.citations.length) {
      article.append(h("section", { class: "citations" },
        h("h2", {}, t("chat.sources")),
        h("ol", {}, ember.citations.map((c) => h("li", {},
          citeButton(ember, c.source, message.stores, viewer, c),
          " ", h("q", {}, c.quote || ""))))));
    }
    return article;
  }));
  log.scrollTop = log.scrollHeight;
}

function reasonText(reason) {
  const key = `reason.${reason}`;
  const text = t(key);
  return text === key ? reason || "" : `${text} (${reason})`;
}

function citeButton(ember, source, stores, viewer, citation = null) {
  const found = citation || (ember.citations || []).find((c) => c.source === source);
  if (!found) return null;
  const page = found.page ? ` p.${found.page}` : "";
  const label = citation ? `[${source}] ${found.filename || found.file_id}${page}` : `[${source}]`;
  return h("button", {
    type: "button", class: "cite", title: found.filename || found.file_id,
    onclick: () => viewer.open(found, stores || []),
  }, label);
}

// A dialog showing a cited file's chunks with the cited passage marked.
function sourceViewer() {
  const title = h("h2", { id: "source-title" });
  const passages = h("div", { class: "passages" });
  const close = h("button", { type: "button", class: "close" }, t("close"));
  const dialog = h("dialog", { id: "source", "aria-labelledby": "source-title" },
    h("div", { class: "dialog-head" }, title, close), passages);
  close.addEventListener("click", () => dialog.close());
  async function open(citation, stores) {
    clear(title, citation.filename || citation.file_id);
    clear(passages, h("p", { class: "hint" }, t("loading")));
    dialog.showModal();
    let content = null;
    let lastError = null;
    for (const store of stores) {
      try {
        content = await api(`/v1/vector_stores/${encodeURIComponent(store)}/files/${encodeURIComponent(citation.file_id)}/content`);
        break;
      } catch (err) {
        lastError = err;
      }
    }
    if (!content) {
      clear(passages, errorNode(lastError || new Error(t("chat.noSource"))));
      return;
    }
    const quote = (citation.quote || "").trim();
    const chunks = content.data.map((part) => part.text);
    let best = chunks.findIndex((text) => quote && text.includes(quote));
    if (best < 0) best = closestChunk(chunks, quote);
    clear(passages, chunks.map((text, i) => {
      if (i !== best) return h("p", { class: "passage" }, text);
      const at = quote ? text.indexOf(quote) : -1;
      if (at < 0) return h("p", { class: "passage cited" }, h("mark", {}, text));
      return h("p", { class: "passage cited" }, text.slice(0, at),
        h("mark", {}, quote), text.slice(at + quote.length));
    }));
    const mark = passages.querySelector("mark");
    if (mark) mark.scrollIntoView({ block: "center" });
  }
  return { dialog, open };
}

function closestChunk(chunks, quote) {
  const words = new Set(quote.toLowerCase().split(/\s+/).filter(Boolean));
  let best = 0;
  let bestScore = -1;
  chunks.forEach((text, i) => {
    const score = text.toLowerCase().split(/\s+/).filter((w) => words.has(w)).length;
    if (score > bestScore) { best = i; bestScore = score; }
  });
  return best;
}
