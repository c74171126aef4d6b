// Elements from data, never from HTML strings: the page's CSP and its users' names (which
// may hold "<") both want it so.

// el("a", {href: "#/"}, "text", child): `on…` props become listeners; null children are left out.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export function message(text, kind = "info") {
  return el("p", { className: `message ${kind}`, role: kind === "error" ? "alert" : null }, text);
}

export function table(headers, rows) {
  return el("div", { className: "table-wrap" },
    el("table", {},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)));
}

// Newer / Older buttons of an offset-paged list; `go(offset)` shows that page.
export function pager(offset, nextOffset, pageSize, go) {
  return el("div", { className: "pager" },
    offset > 0
      ? el("button", { type: "button", onClick: () => go(Math.max(0, offset - pageSize)) }, "Newer")
      : null,
    nextOffset !== null ? el("button", { type: "button", onClick: () => go(nextOffset) }, "Older") : null);
}
