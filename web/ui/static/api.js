// The API as the dashboard uses it: same origin, the key from sessionStorage in a header.
// The key never goes into a URL (it would land in logs and history) nor into a cookie.

const KEY_NAME = "neonomaly.apiKey";

export function storedKey() {
  return sessionStorage.getItem(KEY_NAME);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_NAME);
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
  }
}

// GET (or `method`) a path with query `params`; resolves to the JSON body or throws ApiError.
export async function api(path, { method = "GET", params = {}, body, key = storedKey() } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { "X-API-Key": key || "" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
    });
  } catch (error) {
    throw new ApiError(0, `the server did not answer (${error.message})`);
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data && data.detail ? data.detail : text);
  return data;
}

// Checks the key against the API before keeping it: a wrong key is refused at once.
export async function signIn(key) {
  await api("/api/services", { key });
  sessionStorage.setItem(KEY_NAME, key);
}

// Every page of a cursor-paged list (anomalies), up to `maxItems`.
export async function allPages(path, params, field, maxItems) {
  const items = [];
  let cursor = null;
  do {
    const page = await api(path, { params: { ...params, cursor } });
    items.push(...page[field]);
    cursor = page.next_cursor;
  } while (cursor && items.length < maxItems);
  return { items: items.slice(0, maxItems), truncated: Boolean(cursor) || items.length > maxItems };
}
