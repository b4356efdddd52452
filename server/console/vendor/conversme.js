// conversme realtime client: the public API (clients/js/README.md).
export { AiAssembler } from "./ai.js";
export { Client, } from "./client.js";
export { CLOSE_CODES, ERROR_CODES, describeClose, describeError } from "./codes.js";
export { ReplyError } from "./errors.js";
export { ERROR_DESCRIPTIONS } from "./events.js";
export { LiveSession } from "./live.js";
export { localStoragePositions, memoryPositions } from "./positions.js";
export { Presence } from "./presence.js";
export { Topic } from "./topic.js";
