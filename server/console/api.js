// REST calls with the signed-in user's tokens (kept in sessionStorage: one sign-in per tab).

const KEY = "conversme:console:tokens";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code;
  }
}

export class Api {
  constructor(base = "") {
    this.base = base;
    this.tokens = JSON.parse(sessionStorage.getItem(KEY) || "null");
    this.refreshing = null;
  }

  hasSession() {
    return Boolean(this.tokens?.accessToken);
  }

  save(tokens) {
    this.tokens = tokens;
    if (tokens) sessionStorage.setItem(KEY, JSON.stringify(tokens));
    else sessionStorage.removeItem(KEY);
  }

  async signIn(email, password) {
    const r = await fetch(`${this.base}/auth/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ username: email, password }),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new ApiError(r.status, body);
    this.save(body);
  }

  async signOut() {
    if (this.tokens) {
      await this.request("POST", "/auth/logout", { refreshToken: this.tokens.refreshToken }).catch(() => {});
    }
    this.save(null);
  }

  /** The access token; `force` swaps the refresh token for a new pair first (refresh tokens rotate). */
  async token(force = false) {
    if (!this.tokens) throw new ApiError(401, { detail: "not signed in" });
    if (force) {
      this.refreshing ??= this.refresh().finally(() => (this.refreshing = null));
      await this.refreshing;
    }
    return this.tokens.accessToken;
  }

  async refresh() {
    const r = await fetch(`${this.base}/auth/refresh`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refreshToken: this.tokens?.refreshToken }),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      this.save(null);
      throw new ApiError(r.status, body);
    }
    this.save(body);
  }

  async request(method, path, body, retry = true) {
    const headers = { Authorization: `Bearer ${this.tokens?.accessToken ?? ""}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(`${this.base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (r.status === 401 && retry && this.tokens?.refreshToken) {
      await this.token(true);
      return this.request(method, path, body, false);
    }
    if (r.status === 204) return null;
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new ApiError(r.status, data);
    return data;
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body) {
    return this.request("POST", path, body ?? {});
  }
}
