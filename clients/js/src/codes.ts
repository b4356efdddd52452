// Human labels for every close code and error code the server uses, for a UI to show instead of numbers. The
// code lists come from docs/asyncapi.yaml (events.ts): a code added there without a label here fails `tsc`.
import type { CloseCode, ErrorCode } from "./events.js";
import type { ClientErrorCode } from "./errors.js";

export { CLOSE_CODES, ERROR_CODES } from "./events.js";

/** Close codes this client (or the browser) reports besides the server's. */
export type ClientCloseCode = 1005 | 1006 | 4000;

const CLOSE_LABELS: Record<CloseCode | ClientCloseCode, string> = {
  1000: "Connection closed",
  1005: "Connection closed without a reason",
  1006: "Connection lost",
  1008: "Closed by the server: too many malformed messages (a client bug)",
  1009: "Closed by the server: a message was too large (a client bug)",
  1011: "Server error — reconnecting",
  1012: "Server restarting — reconnecting",
  4000: "Reconnecting (no answer from the server, or asked to)",
  4001: "Not signed in or the sign-in expired",
  4008: "Connection too slow to keep up — reconnecting",
  4029: "Too many requests — waiting before reconnecting",
};

const ERROR_LABELS: Record<ErrorCode | ClientErrorCode, string> = {
  bad_frame: "The server could not read a message (a client bug)",
  unknown_op: "The server does not know this request (a client bug)",
  invalid: "Invalid request",
  unauthorized: "Not signed in or the sign-in expired",
  forbidden: "Not allowed",
  not_found: "Not found, or not visible to you",
  not_joined: "Not in this room",
  conflict: "Conflicts with the current state",
  rate_limited: "Too many requests — slow down",
  too_many_topics: "Too many rooms open on this connection",
  ai_unavailable: "The assistant is not available",
  unavailable: "The server is briefly unavailable — try again",
  internal: "Server error",
  timeout: "No answer from the server in time",
  disconnected: "The connection was lost before the server answered",
  not_connected: "Not connected",
  closed: "The connection was closed",
};

/** A human label for a WebSocket close code (`session ended` gets its own when `reason` is given). */
export function describeClose(code: number, reason?: string): string {
  if (code === 4001 && reason === "session ended") return "Signed out: the sign-in session ended";
  return (CLOSE_LABELS as Record<number, string>)[code] ?? `Connection closed (code ${code})`;
}

/** A human label for an error code from a reply, an `error` frame, an AI stream, or the client itself. */
export function describeError(code: string): string {
  if (code === "interrupted") return "The assistant was interrupted (its server stopped)";
  return (ERROR_LABELS as Record<string, string>)[code] ?? `Error: ${code.replace(/_/g, " ")}`;
}
