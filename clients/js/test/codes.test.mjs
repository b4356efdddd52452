// Every close code and error code the server uses (docs/asyncapi.yaml, via src/events.ts) has a human label.
import assert from "node:assert/strict";
import { test } from "node:test";

import { CLOSE_CODES, ERROR_CODES, ReplyError, describeClose, describeError } from "../dist/conversme.js";

test("every server close code has its own label", () => {
  assert.ok(CLOSE_CODES.length >= 8);
  const labels = new Set();
  for (const { code } of CLOSE_CODES) {
    const label = describeClose(code);
    assert.doesNotMatch(label, /code \d+/, `close ${code} has no label`);
    labels.add(label);
  }
  assert.equal(labels.size, CLOSE_CODES.length);
  assert.equal(describeClose(1006), "Connection lost");
  assert.match(describeClose(4999), /code 4999/);
  assert.match(describeClose(4001, "session ended"), /Signed out/);
});

test("every server error code and client code has its own label", () => {
  assert.ok(ERROR_CODES.includes("rate_limited"));
  const labels = new Set();
  for (const code of [...ERROR_CODES, "timeout", "disconnected", "not_connected", "closed"]) {
    const label = describeError(code);
    assert.doesNotMatch(label, /^Error: /, `${code} has no label`);
    labels.add(label);
  }
  assert.equal(labels.size, ERROR_CODES.length + 4);
  assert.equal(describeError("brand_new_code"), "Error: brand new code");
  const err = new ReplyError("not_found", "event x not found", "event:x", "chat.send");
  assert.ok(err instanceof Error);
  assert.equal(err.code, "not_found");
});
