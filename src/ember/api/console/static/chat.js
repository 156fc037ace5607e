// Chat: a model picker; conversations kept on the server (the Conversations and Responses
// APIs) and listed by title; streamed answers with stop; grounded answers from vector stores
// with citations that open the cited passage, abstentions with their reason; MCP tool calls
// and approval requests as cards, approved or denied here.

import { api, streamEvents } from "./api.js";
import { clear, errorNode, h } from "./dom.js";
import { t } from "./i18n.js";
import { renderMarkdown } from "./markdown.js";

const DRAFT = "ember.chatDraft";
const MODEL = "ember.chatModel";
const OPEN = "ember.chatConversation"; // the open conversation's id, reopened after a reload
const SERVERS = "ember.chatServers"; // the MCP server labels ticked (JSON)
const STORES = "ember.chatStores"; // the vector store ids ticked (JSON)
const TITLE_LENGTH = 80;
const PAGE = 20;

function saved(key) {
  try {
    return new Set(JSON.parse(sessionStorage.getItem(key) || "[]"));
  } catch {
    return new Set();
  }
}

// What outlives a visit to another page. The conversation itself is the server's: `items` is
// the open one's items as the API lists them, plus the turn being streamed.
const state = {
  conversation: sessionStorage.getItem(OPEN) || null,
  items: [],
  loaded: null, // the conversation `items` belong to
  list: [],
  more: false,
  stores: saved(STORES),
  servers: saved(SERVERS),
  controller: null,
  redraw: () => {},
  view: null,
};

export async function render(main) {
  const models = h("select", { id: "chat-model" });
  const storesBox = h("div", { class: "stores" });
  const serversBox = h("div", { class: "stores", id: "mcp-servers" });
  const serversField = h("fieldset", { class: "grounding", hidden: true },
    h("legend", {}, t("chat.tools")), serversBox);
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
  const list = h("ul", { id: "conversations", class: "conversations" });
  const more = h("button", { type: "button", id: "more-conversations", class: "link", hidden: true },
    t("chat.more"));
  clear(main,
    h("h1", {}, t("nav.chat")),
    h("div", { class: "toolbar" },
      h("label", { for: "chat-model" }, t("chat.model")), models, newChat),
    h("div", { class: "chat-layout" },
      h("nav", { class: "conversation-list", "aria-labelledby": "conversations-title" },
        h("h2", { id: "conversations-title" }, t("chat.conversations")), list, more),
      h("div", { class: "chat-main" },
        h("fieldset", { class: "grounding" }, h("legend", {}, t("chat.ground")), storesBox),
        serversField, log, errors, form)),
    viewer.dialog);

  // A stream outlives a visit to another page: it redraws whichever chat view is current.
  state.view = { send, stop, prompt, errors, models };
  state.redraw = () => {
    drawItems(log, viewer);
    drawList(list, more);
  };
  setBusy(Boolean(state.controller));
  state.redraw();

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
    openConversation(null);
    prompt.focus();
  });
  more.addEventListener("click", () => loadList(true));
  models.addEventListener("change", () => sessionStorage.setItem(MODEL, models.value));

  // The lists load while the user types; a message sent before they arrive waits for them.
  const ready = Promise.all([
    loadModels(models, errors), loadStores(storesBox, errors),
    loadServers(serversField, serversBox), loadList(false),
    state.loaded === state.conversation ? null : openConversation(state.conversation),
  ]);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await ready;
    const text = prompt.value;
    if (!text.trim() || state.controller || !models.value) return;
    await ask(text);
  });

  await ready;
  prompt.focus();
}

function setBusy(busy) {
  if (!state.view) return;
  state.view.send.disabled = busy;
  state.view.stop.disabled = !busy;
}

function showError(err) {
  if (state.view) clear(state.view.errors, errorNode(err));
}

// -- conversations --------------------------------------------------------------------------

async function loadList(append) {
  const after = append && state.list.length ? `&after=${encodeURIComponent(state.list.at(-1).id)}` : "";
  try {
    const page = await api(`/v1/ember/conversations?limit=${PAGE}${after}`);
    state.list = append ? [...state.list, ...page.data] : page.data;
    state.more = page.has_more;
  } catch (err) {
    showError(err);
  }
  state.redraw();
}

function titleOf(conversation) {
  return (conversation.metadata && conversation.metadata.title) || t("chat.untitled");
}

// The list is one Tab stop: arrows move between conversations, Enter opens, Delete deletes.
function drawList(list, more) {
  const open = state.list.findIndex((c) => c.id === state.conversation);
  const focusable = open >= 0 ? open : 0;
  clear(list, state.list.map((conversation, index) => {
    const title = titleOf(conversation);
    const button = h("button", {
      type: "button", class: "conv", "data-id": conversation.id,
      tabindex: index === focusable ? 0 : -1, "aria-current": index === open ? "true" : null,
      "aria-keyshortcuts": "Delete", title,
    }, title);
    button.addEventListener("click", () => openConversation(conversation.id));
    button.addEventListener("keydown", (event) => {
      const step = { ArrowDown: 1, ArrowUp: -1 }[event.key];
      if (step) {
        event.preventDefault();
        const buttons = [...list.querySelectorAll("button.conv")];
        const next = buttons[index + step];
        if (next) {
          button.tabIndex = -1;
          next.tabIndex = 0;
          next.focus();
        }
      } else if (event.key === "Delete") {
        event.preventDefault();
        removeConversation(conversation);
      }
    });
    const remove = h("button", {
      type: "button", class: "conv-delete", tabindex: -1,
      "aria-label": t("chat.deleteConversation", { title }), title: t("chat.deleteConversation", { title }),
    }, "×");
    remove.addEventListener("click", () => removeConversation(conversation));
    return h("li", {}, button, remove);
  }));
  if (!state.list.length) list.append(h("li", { class: "hint" }, t("chat.noConversations")));
  more.hidden = !state.more;
}

async function openConversation(id) {
  if (state.controller) state.controller.abort();
  state.conversation = id;
  if (id) sessionStorage.setItem(OPEN, id);
  else sessionStorage.removeItem(OPEN);
  state.items = [];
  state.loaded = id;
  if (state.view) clear(state.view.errors);
  state.redraw();
  if (!id) return;
  try {
    const items = [];
    let after = "";
    for (;;) {
      const page = await api(`/v1/conversations/${encodeURIComponent(id)}/items?order=asc&limit=100${after}`);
      items.push(...page.data);
      if (!page.has_more) break;
      after = `&after=${encodeURIComponent(page.last_id)}`;
    }
    if (state.conversation !== id) return; // another was opened meanwhile
    state.items = items;
    state.redraw();
    await Promise.all(items.filter(isGroundedAnswer).map(loadGrounding));
  } catch (err) {
    if (state.conversation !== id) return;
    if (err.status === 404) { // deleted elsewhere: start afresh
      state.conversation = null;
      sessionStorage.removeItem(OPEN);
    }
    showError(err);
  }
  state.redraw();
}

async function removeConversation(conversation) {
  if (!window.confirm(t("chat.confirmDelete", { title: titleOf(conversation) }))) return;
  try {
    // The grounded answers' stored responses (see isGroundedAnswer) go with it.
    const items = conversation.id === state.loaded ? state.items : [];
    await api(`/v1/conversations/${encodeURIComponent(conversation.id)}`, { method: "DELETE" });
    for (const item of items.filter(isGroundedAnswer)) {
      api(`/v1/responses/${encodeURIComponent(item.id)}`, { method: "DELETE" }).catch(() => {});
    }
  } catch (err) {
    if (err.status !== 404) {
      showError(err);
      return;
    }
  }
  state.list = state.list.filter((c) => c.id !== conversation.id);
  if (state.conversation === conversation.id) openConversation(null);
  state.redraw();
}

async function ensureConversation(text) {
  if (state.conversation) return state.conversation;
  const title = text.trim().replace(/\s+/g, " ").slice(0, TITLE_LENGTH);
  const created = await api("/v1/conversations", { method: "POST", body: { metadata: { title } } });
  state.conversation = created.id;
  state.loaded = created.id;
  sessionStorage.setItem(OPEN, created.id);
  state.list = [created, ...state.list.filter((c) => c.id !== created.id)];
  return created.id;
}

// A grounded answer's message item is named after the stored response that holds its
// citations (`ember`): the console adds it to the conversation itself, since a grounded
// answer (the file_search tool alone) does not take `conversation`.
function isGroundedAnswer(item) {
  return item.type === "message" && item.role === "assistant" && /^resp_/.test(item.id || "");
}

async function loadGrounding(item) {
  try {
    const response = await api(`/v1/responses/${encodeURIComponent(item.id)}`);
    item.ember = response.ember;
    const tool = (response.tools || []).find((x) => x.type === "file_search");
    item.stores = tool ? tool.vector_store_ids : [];
  } catch { /* deleted: the answer shows without its sources */ }
}

// -- a turn -----------------------------------------------------------------------------------

function mcpTools(labels) {
  return [...labels].map((label) => ({ type: "mcp", server_label: label }));
}

async function ask(text) {
  const view = state.view;
  const stores = [...state.stores];
  const servers = [...state.servers];
  const grounded = stores.length > 0 && servers.length === 0;
  clear(view.errors);
  let conversation;
  try {
    conversation = await ensureConversation(text);
  } catch (err) {
    showError(err);
    return;
  }
  const user = { type: "message", role: "user", content: [{ type: "input_text", text }] };
  state.items.push(user);
  view.prompt.value = "";
  sessionStorage.removeItem(DRAFT);
  const body = { model: view.models.value, input: text };
  const tools = [...mcpTools(servers)];
  if (stores.length) tools.unshift({ type: "file_search", vector_store_ids: stores });
  if (tools.length) body.tools = tools;
  if (!grounded) body.conversation = conversation;
  await run(body, { conversation, user, text, stores, grounded });
}

// Approve or deny: the response goes on in the conversation with an mcp_approval_response.
async function answerApproval(request, approve) {
  if (state.controller || !state.conversation) return;
  const view = state.view;
  const reply = {
    type: "mcp_approval_response", approval_request_id: request.id, approve,
  };
  state.items.push(reply);
  const labels = new Set([...state.servers, request.server_label]);
  const body = {
    model: view.models.value, conversation: state.conversation,
    input: [reply], tools: mcpTools(labels),
  };
  if (state.stores.size) body.tools.unshift({ type: "file_search", vector_store_ids: [...state.stores] });
  await run(body, { conversation: state.conversation, user: reply, text: null, stores: [], grounded: false });
}

async function run(body, turn) {
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  state.redraw();
  const output = [];
  let finished = null;
  try {
    await streamEvents("/v1/responses", body, {
      signal: controller.signal,
      onEvent(event) {
        onStreamEvent(event, output, turn);
        if (/^response\.(completed|incomplete|failed)$/.test(event.type)) finished = event.response;
        state.redraw();
      },
    });
    if (finished) await finish(finished, output, turn);
  } catch (err) {
    if (err.name === "AbortError") {
      await keepStopped(output, turn);
    } else {
      // Nothing typed is lost: the question goes back into the box, the failed turn away.
      state.items = state.items.filter((item) => item !== turn.user && !output.includes(item));
      const view = state.view;
      if (turn.text !== null && view) {
        if (!view.prompt.value) view.prompt.value = turn.text;
        sessionStorage.setItem(DRAFT, view.prompt.value);
      }
      showError(err);
    }
  } finally {
    for (const item of output) item.streaming = false;
    if (state.controller === controller) state.controller = null;
    setBusy(false);
    state.redraw();
    const prompt = state.view && state.view.prompt;
    if (prompt && prompt.isConnected) prompt.focus();
  }
}

function onStreamEvent(event, output, turn) {
  const byId = (id) => output.find((item) => item.id === id);
  if (event.type === "response.output_item.added") {
    const item = { ...event.item, streaming: true, stores: turn.stores };
    if (item.type === "message") item.content = [{ type: "output_text", text: "" }];
    output.push(item);
    if (state.loaded === turn.conversation) state.items.push(item);
  } else if (event.type === "response.output_text.delta") {
    const item = byId(event.item_id);
    if (item) item.content[0].text += event.delta;
  } else if (event.type === "response.output_item.done") {
    const item = byId(event.item.id);
    if (item) Object.assign(item, event.item, { streaming: false });
  }
}

async function finish(response, output, turn) {
  for (const item of output) {
    if (item.type === "message" && response.ember) item.ember = response.ember;
  }
  const last = output.at(-1);
  if (response.status !== "completed" && last) {
    last.incomplete = (response.incomplete_details && response.incomplete_details.reason) || response.status;
  }
  if (!turn.grounded) return;
  // A grounded answer is added to the conversation here, under its response's id.
  const answer = output.find((item) => item.type === "message");
  const text = answer ? answer.content.map((part) => part.text || "").join("") : "";
  if (answer) answer.id = response.id;
  await api(`/v1/conversations/${encodeURIComponent(turn.conversation)}/items`, {
    method: "POST",
    body: { items: [
      { type: "message", role: "user", content: turn.text },
      { type: "message", role: "assistant", id: response.id, content: [{ type: "output_text", text }] },
    ] },
  });
}

// A stopped answer is kept as far as it went: the server adds a turn only when it finishes.
async function keepStopped(output, turn) {
  const answer = output.find((item) => item.type === "message");
  if (answer) answer.stopped = true;
  else {
    const stopped = { type: "message", role: "assistant", content: [{ type: "output_text", text: "" }], stopped: true };
    output.push(stopped);
    if (state.loaded === turn.conversation) state.items.push(stopped);
  }
  if (turn.text === null) return;
  const text = answer ? answer.content.map((part) => part.text || "").join("") : "";
  const items = [{ type: "message", role: "user", content: turn.text }];
  if (text) items.push({ type: "message", role: "assistant", content: [{ type: "output_text", text }] });
  try {
    await api(`/v1/conversations/${encodeURIComponent(turn.conversation)}/items`, { method: "POST", body: { items } });
  } catch (err) {
    showError(err);
  }
}

// -- lists of models, stores and MCP servers ------------------------------------------------

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
    const known = new Set(list.data.map((store) => store.id));
    for (const id of [...state.stores]) if (!known.has(id)) state.stores.delete(id);
    if (!list.data.length) {
      clear(box, h("p", { class: "hint" }, t("chat.noStores")));
      return;
    }
    clear(box, list.data.map((store) => {
      const box = h("input", { type: "checkbox", value: store.id, checked: state.stores.has(store.id) });
      box.addEventListener("change", () => {
        if (box.checked) state.stores.add(store.id);
        else state.stores.delete(store.id);
        sessionStorage.setItem(STORES, JSON.stringify([...state.stores]));
      });
      return h("label", { class: "check" }, box, store.name || store.id);
    }));
  } catch (err) {
    errors.append(errorNode(err));
  }
}

// The MCP servers of ember.toml; none configured: the fieldset stays hidden.
async function loadServers(field, box) {
  let servers = [];
  try {
    servers = (await api("/v1/ember/mcp_servers")).data;
  } catch { /* an older server without the list: no tools to offer */ }
  const known = new Set(servers.map((s) => s.server_label));
  for (const label of [...state.servers]) if (!known.has(label)) state.servers.delete(label);
  field.hidden = servers.length === 0;
  clear(box, servers.map((server) => {
    const input = h("input", {
      type: "checkbox", value: server.server_label, checked: state.servers.has(server.server_label),
    });
    input.addEventListener("change", () => {
      if (input.checked) state.servers.add(server.server_label);
      else state.servers.delete(server.server_label);
      sessionStorage.setItem(SERVERS, JSON.stringify([...state.servers]));
    });
    const note = server.trusted ? "" : ` (${t("chat.needsApproval")})`;
    return h("label", { class: "check", title: server.description || "" },
      input, server.server_label + note);
  }));
}

// -- drawing ----------------------------------------------------------------------------------

function textOf(item) {
  return (item.content || []).map((part) => part.text ?? part.refusal ?? "").join("");
}

function drawItems(log, viewer) {
  // An approval request is answered by a later mcp_approval_response (or the call it made).
  const answered = new Map();
  for (const item of state.items) {
    if (item.type === "mcp_approval_response") answered.set(item.approval_request_id, item.approve);
    if (item.type === "mcp_call" && item.approval_request_id) answered.set(item.approval_request_id, true);
  }
  clear(log, state.items.map((item) => drawItem(item, answered, viewer)));
  log.scrollTop = log.scrollHeight;
}

function drawItem(item, answered, viewer) {
  if (item.type === "message" && item.role === "user") {
    return h("article", { class: "msg user" }, h("header", {}, t("chat.you")),
      h("div", { class: "body" }, h("p", { class: "plain" }, textOf(item))));
  }
  if (item.type === "message" && item.role === "assistant") return drawAnswer(item, viewer);
  if (item.type === "mcp_list_tools") {
    return card(item, t("chat.toolList", { server: item.server_label }),
      item.error ? h("div", { class: "error" }, String(item.error))
        : h("p", { class: "tools" }, (item.tools || []).map((tool) => tool.name).join(", ")));
  }
  if (item.type === "mcp_call") {
    const result = item.error
      ? h("div", { class: "error" }, typeof item.error === "string" ? item.error
        : item.error.message || JSON.stringify(item.error))
      : item.output !== null && item.output !== undefined
        ? labelled(t("chat.output"), item.output)
        : h("p", { class: "hint" }, t("chat.running"));
    return card(item, `${item.server_label} · ${item.name}`, labelled(t("chat.arguments"), pretty(item.arguments)), result);
  }
  if (item.type === "mcp_approval_request") {
    const decided = answered.get(item.id);
    let footer;
    if (decided === undefined) {
      const approve = h("button", { type: "button", class: "primary approve", disabled: Boolean(state.controller) },
        t("chat.approve"));
      const deny = h("button", { type: "button", class: "deny", disabled: Boolean(state.controller) }, t("chat.deny"));
      approve.addEventListener("click", () => answerApproval(item, true));
      deny.addEventListener("click", () => answerApproval(item, false));
      footer = h("div", { class: "row" }, approve, deny);
    } else {
      footer = h("p", { class: `decision ${decided ? "approved" : "denied"}` },
        decided ? t("chat.approved") : t("chat.denied"));
    }
    const node = card(item, t("chat.approvalTitle", { tool: `${item.server_label} · ${item.name}` }),
      labelled(t("chat.arguments"), pretty(item.arguments)), footer);
    node.classList.add("approval");
    return node;
  }
  if (item.type === "mcp_approval_response") return null;
  if (item.type === "file_search_call") {
    return card(item, t("chat.searched"), h("p", {}, (item.queries || []).join(" · ")));
  }
  if (item.type === "message") return null; // system and developer messages
  return card(item, item.type, labelled("", pretty(JSON.stringify(item))));
}

function card(item, title, ...children) {
  return h("article", { class: `tool-card ${item.type}`, "data-type": item.type },
    h("header", {}, title, item.status === "in_progress" || item.streaming
      ? h("span", { class: "hint" }, ` · ${t("chat.running")}` ) : null),
    ...children);
}

function labelled(label, text) {
  return h("div", { class: "labelled" }, label ? h("span", { class: "hint" }, label) : null,
    h("pre", {}, h("code", {}, String(text))));
}

function pretty(json) {
  try {
    return JSON.stringify(JSON.parse(json), null, 2);
  } catch {
    return json || "";
  }
}

function drawAnswer(message, viewer) {
  const body = h("div", { class: "body" });
  const article = h("article", { class: "msg assistant" }, h("header", {}, t("chat.assistant")), body);
  const ember = message.ember;
  const cite = ember ? (n) => citeButton(ember, n, message.stores, viewer) : null;
  if (ember && ember.abstained) {
    article.classList.add("abstained");
    body.append(h("p", { class: "abstain", role: "note" },
      h("strong", {}, t("chat.abstained")), " ", reasonText(ember.abstain_reason)));
  }
  body.append(renderMarkdown(textOf(message), cite));
  if (message.streaming) body.append(h("span", { class: "cursor", "aria-hidden": "true" }, "▍"));
  if (message.stopped) body.append(h("p", { class: "note stopped" }, t("chat.stopped")));
  if (message.incomplete) body.append(h("p", { class: "note stopped" }, t("chat.incomplete", { reason: message.incomplete })));
  if (ember && ember.citations && ember.citations.length) {
    article.append(h("section", { class: "citations" },
      h("h2", {}, t("chat.sources")),
      h("ol", {}, ember.citations.map((c) => h("li", {},
        citeButton(ember, c.source, message.stores, viewer, c),
        " ", h("q", {}, c.quote || ""))))));
  }
  return article;
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
