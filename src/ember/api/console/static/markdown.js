// Markdown-ish rendering of model answers, built node by node (never innerHTML): fenced code
// blocks, headings, lists, paragraphs, `code`, **bold**, and [n] citation markers as buttons.

import { h } from "./dom.js";

const INLINE = /(`[^`\n]+`|\*\*[^*\n]+\*\*|\[\d+\])/g;

function inline(text, cite) {
  const out = [];
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > last) out.push(text.slice(last, match.index));
    const token = match[0];
    if (token.startsWith("`")) out.push(h("code", {}, token.slice(1, -1)));
    else if (token.startsWith("**")) out.push(h("strong", {}, token.slice(2, -2)));
    else {
      const button = cite ? cite(Number(token.slice(1, -1))) : null;
      out.push(button || token);
    }
    last = match.index + token.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

// cite(n) returns a node for the marker [n], or null to leave it as text.
export function renderMarkdown(text, cite = null) {
  const root = document.createDocumentFragment();
  const lines = text.split("\n");
  let paragraph = [];
  let list = null;
  const flush = () => {
    if (paragraph.length) root.append(h("p", {}, inline(paragraph.join("\n"), cite)));
    paragraph = [];
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = line.match(/^\s*```\s*([\w+-]*)/);
    if (fence) {
      flush();
      const body = [];
      for (i++; i < lines.length && !/^\s*```/.test(lines[i]); i++) body.push(lines[i]);
      const code = h("code", fence[1] ? { "data-lang": fence[1] } : {}, body.join("\n"));
      root.append(h("pre", {}, code));
      continue;
    }
    const heading = line.match(/^(#{1,4})\s+(.*)$/);
    const item = line.match(/^\s*(?:[-*]|\d+[.)])\s+(.*)$/);
    if (heading) {
      flush();
      root.append(h(`h${Math.min(heading[1].length + 2, 6)}`, {}, inline(heading[2], cite)));
    } else if (item) {
      if (paragraph.length) { root.append(h("p", {}, inline(paragraph.join("\n"), cite))); paragraph = []; }
      if (!list) {
        list = h(/^\s*\d/.test(line) ? "ol" : "ul");
        root.append(list);
      }
      list.append(h("li", {}, inline(item[1], cite)));
    } else if (!line.trim()) {
      flush();
    } else {
      list = null;
      paragraph.push(line);
    }
  }
  flush();
  return root;
}
