// The console's shell: sign-in, language, and the pages behind the hash routes.

import { ApiError, api, session, setUnauthorizedHandler } from "./api.js";
import * as audit from "./audit.js";
import * as chat from "./chat.js";
import * as documents from "./documents.js";
import { clear, errorNode, h } from "./dom.js";
import { applyI18n, getLang, setLang, t } from "./i18n.js";
import { renderKeys, renderUsage } from "./keys.js";
import * as models from "./models.js";
import * as tuning from "./tuning.js";

const PAGES = {
  chat: chat.render,
  documents: documents.render,
  keys: renderKeys,
  usage: renderUsage,
  audit: audit.render,
  tuning: tuning.render,
  models: models.render,
};

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const signOut = document.getElementById("signout");
const langSelect = document.getElementById("lang");
let signedIn = false;

function page() {
  const name = location.hash.replace(/^#\/?/, "");
  return PAGES[name] ? name : "chat";
}

async function show() {
  if (!signedIn) return;
  const name = page();
  for (const link of nav.querySelectorAll("a")) {
    if (link.getAttribute("href") === `#/${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${t(`nav.${name}`)} · Ember`;
  await PAGES[name](main);
  main.dataset.page = name;
}

function signInForm(error) {
  signedIn = false;
  nav.hidden = true;
  signOut.hidden = true;
  const input = h("input", { id: "api-key", type: "password", autocomplete: "off", required: true });
  const form = h("form", { id: "signin", class: "panel signin" },
    h("h1", {}, t("signin.title")), h("p", {}, t("signin.why")),
    h("label", { for: "api-key" }, t("signin.key")), input,
    h("button", { type: "submit", class: "primary" }, t("signin.go")),
    error ? errorNode(error) : null);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    session.key = input.value.trim();
    await start();
  });
  clear(main, form);
  main.dataset.page = "signin";
  input.focus();
}

// Keys are configured when /v1/models refuses a request without a valid one.
async function start() {
  try {
    await api("/v1/models");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      signInForm(session.key ? err : null);
      return;
    }
    clear(main, errorNode(err));
    return;
  }
  signedIn = true;
  nav.hidden = false;
  signOut.hidden = !session.key;
  await show();
}

setUnauthorizedHandler((err) => {
  if (signedIn) signInForm(err);
});
signOut.addEventListener("click", () => {
  session.key = "";
  session.adminKey = "";
  signInForm(null);
});
langSelect.value = getLang();
langSelect.addEventListener("change", async () => {
  setLang(langSelect.value);
  applyI18n(document);
  if (signedIn) await show();
  else signInForm(null);
});
window.addEventListener("hashchange", () => show());
applyI18n(document);
start();
