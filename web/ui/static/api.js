// The API as the dashboard uses it: same origin, the key from sessionStorage in a header.
// The key never goes into a URL (it would land in logs and history) nor into a cookie.

const KEY_NAME = "neonomaly.apiKey";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
  }
}

// The one client of the API. A page is given `client.scoped(signal)`: the same client whose
// requests are cancelled when the page is left, so that nothing it asked for lands later.
export class ApiClient {
  constructor(signal = null) {
    this.signal = signal;
  }

  scoped(signal) {
    return new ApiClient(signal);
  }

  get signedIn() {
    return Boolean(sessionStorage.getItem(KEY_NAME));
  }

  // Checks the key against the API before keeping it: a wrong key is refused at once.
  async signIn(key) {
    await this.request("/api/services", { key });
    sessionStorage.setItem(KEY_NAME, key);
  }

  signOut() {
    sessionStorage.removeItem(KEY_NAME);
  }

  // GET (or `method`) a path with query `params`; resolves to the JSON body or throws
  // ApiError. Cancelled by the client's signal: throws the AbortError as it is.
  async request(path, { method = "GET", params = {}, body, key = sessionStorage.getItem(KEY_NAME) } = {}) {
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
        signal: this.signal,
      });
    } catch (error) {
      if (this.signal && this.signal.aborted) throw error;
      throw new ApiError(0, `the server did not answer (${error.message})`);
    }
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) throw new ApiError(response.status, data && data.detail ? data.detail : text);
    return data;
  }

  // Every page of a cursor-paged list (anomalies), up to `maxItems`.
  async allPages(path, params, field, maxItems) {
    const items = [];
    let cursor = null;
    do {
      const page = await this.request(path, { params: { ...params, cursor } });
      items.push(...page[field]);
      cursor = page.next_cursor;
    } while (cursor && items.length < maxItems);
    return { items: items.slice(0, maxItems), truncated: Boolean(cursor) || items.length > maxItems };
  }
}

// An error as one line a person reads.
export function errorText(error) {
  if (error instanceof ApiError && error.status === 0) return error.message;
  if (error instanceof ApiError) return `${error.status}: ${error.message}`;
  return String(error);
}

// A 422's list of problems, as one line a person can act on.
export function detailText(error) {
  if (!(error instanceof ApiError)) return String(error);
  try {
    const detail = JSON.parse(error.message);
    if (Array.isArray(detail)) {
      return detail.map((p) => `${p.loc.filter((part) => part !== "body").join(".")}: ${p.msg}`).join("; ");
    }
  } catch {
    // not a list of problems: the message is the detail
  }
  return errorText(error);
}
