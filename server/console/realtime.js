// Everything the console asks of the realtime connection, in one place: the rest of the console calls
// connect/close/join/leave/push and receives onMsg/onResync/onPresence/onLeft/onStatus, and shows errors
// and close codes through describeClose/describeError/describeLeft. The transport underneath is
// swappable without touching the panels.

import { Socket } from "./socket.js";

const CLOSES = {
  1000: "closed",
  1001: "the server went away; reconnecting",
  1006: "connection lost; reconnecting",
  1008: "refused: too many malformed messages",
  1009: "refused: a message was too large",
  1011: "server error; reconnecting",
  1012: "server restarting; reconnecting",
  4001: "signed out or session expired",
  4008: "too slow to keep up; reconnecting",
  4029: "too many requests; waiting before reconnecting",
};

const ERRORS = {
  not_found: "not found (or not yours to see)",
  forbidden: "not allowed",
  invalid: "that was not accepted",
  bad_request: "that was not accepted",
  conflict: "busy: something else is in progress",
  rate_limited: "too many requests; wait a moment",
  too_many_topics: "too many rooms open at once",
  ai_unavailable: "the AI is not configured on this server",
  unavailable: "the server is temporarily unavailable",
  internal: "the server hit an error",
  timeout: "no reply from the server",
  not_connected: "offline: waiting for the connection",
  closed: "the connection closed before a reply",
  unauthorized: "signed out",
};

/** A close code as words (the code kept for the curious). */
export function describeClose(code) {
  if (code === undefined || code === null) return "offline";
  return CLOSES[code] ?? `disconnected (code ${code})`;
}

/** An error (socket reply, REST ApiError or plain Error) as a sentence; the server's message adds detail. */
export function describeError(err) {
  const known = ERRORS[err?.code];
  const detail = err?.message && err.message !== err.code ? err.message : "";
  if (known && detail && !detail.startsWith("HTTP ")) return `${known} (${detail})`;
  return known || detail || "something went wrong";
}

/** Why the server took us off a topic (`left`). */
export function describeLeft(reason) {
  return { revoked: "you are no longer a member", deleted: "it was deleted" }[reason] ?? reason;
}

export class Realtime {
  /**
   * @param {object} o
   * @param {import("./api.js").Api} o.api  for tokens
   * @param {(frame: {topic, event, data, ts}) => void} o.onMsg
   * @param {(topic: string) => Promise<void>} o.onResync  reload the topic over REST
   * @param {(topic: string, joins: object, leaves: object|null) => void} o.onPresence  leaves null: a snapshot
   * @param {(topic: string, reason: string) => void} o.onLeft
   * @param {(state: "connecting"|"online"|"offline"|"signed-out", label: string) => void} o.onStatus
   */
  constructor(o) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.socket = new Socket({
      url: `${scheme}//${location.host}/ws`,
      getToken: (force) => o.api.token(force),
      onStatus: (state, code) => o.onStatus(state, state === "offline" ? describeClose(code) : state),
      onMsg: o.onMsg,
      onResync: o.onResync,
      onPresence: o.onPresence,
      onLeft: o.onLeft,
    });
  }

  connect() {
    this.socket.connect();
  }

  close() {
    this.socket.close();
  }

  join(topic) {
    return this.socket.join(topic);
  }

  leave(topic) {
    return this.socket.leave(topic);
  }

  /** A push; resolves with the reply's data, rejects with an Error carrying `code`. */
  push(topic, event, data) {
    return this.socket.push(topic, event, data);
  }
}
