// The console's only way to the server: Ember's public API on the same origin. The API key
// lives in sessionStorage (this tab only); the admin key, for /v1/ember/keys, likewise.

const KEY = "ember.apiKey";
const ADMIN = "ember.adminKey";

export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  get key() { return sessionStorage.getItem(KEY) || ""; },
  set key(value) { value ? sessionStorage.setItem(KEY, value) : sessionStorage.removeItem(KEY); },
  get adminKey() { return sessionStorage.getItem(ADMIN) || ""; },
  set adminKey(value) {
    value ? sessionStorage.setItem(ADMIN, value) : sessionStorage.removeItem(ADMIN);
  },
};

// Called when a request with the session's key gets 401: the key expired or was revoked.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(handler) { onUnauthorized = handler; }

function headers(admin, json) {
  const out = {};
  const key = admin ? session.adminKey || session.key : session.key;
  if (key) out.Authorization = `Bearer ${key}`;
  if (json) out["Content-Type"] = "application/json";
  return out;
}

async function errorFrom(response) {
  let message = `${response.status} ${response.statusText}`;
  let code = null;
  try {
    const body = await response.json();
    if (body && body.error) {
      message = body.error.message || message;
      code = body.error.code || null;
    } else if (body && body.detail) {
      message = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    }
  } catch { /* not JSON: keep the status line */ }
  return new ApiError(message, response.status, code);
}

// api("/v1/models"), api(path, {method: "POST", body: {...}}), {form: FormData}, {admin: true}
export async function api(path, { method = "GET", body, form, admin = false, signal } = {}) {
  const init = { method, headers: headers(admin, body !== undefined), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  if (form) init.body = form;
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(err.message || String(err), 0, "network_error");
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401 && !admin) onUnauthorized(error);
    throw error;
  }
  return response.json();
}

// A streamed POST (/v1/responses with "stream": true): calls onEvent(event) per SSE data
// frame, in order; an `error` event throws the API's own message.
export async function streamEvents(path, body, { signal, onEvent }) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: headers(false, true),
      body: JSON.stringify({ ...body, stream: true }),
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(err.message || String(err), 0, "network_error");
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401) onUnauthorized(error);
    throw error;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of frame.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        const event = JSON.parse(data);
        if (event.type === "error") throw new ApiError(event.message, 200, event.code);
        if (event.error && !event.type) throw new ApiError(event.error.message, 200, event.error.code);
        onEvent(event);
      }
    }
  }
}
