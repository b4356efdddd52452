// conversme realtime client: the public API (clients/js/README.md).
export { AiAssembler, type AiAnswer, type AiAnswerState } from "./ai.js";
export {
  Client, type ClientEvents, type ClientOptions, type CloseInfo, type Session, type Status, type StatusDetail,
  type WebSocketConstructor, type WebSocketLike,
} from "./client.js";
export { CLOSE_CODES, ERROR_CODES, describeClose, describeError, type ClientCloseCode } from "./codes.js";
export { ReplyError, type ClientErrorCode } from "./errors.js";
export type * from "./events.js";
export { ERROR_DESCRIPTIONS } from "./events.js";
export { LiveSession, type LiveEvents } from "./live.js";
export { localStoragePositions, memoryPositions, type Position, type PositionStore } from "./positions.js";
export { Presence, type PresenceChange } from "./presence.js";
export { Topic, type JoinReply, type Msg, type TopicEvents, type TopicLifecycle, type TopicOptions, type TopicState } from "./topic.js";
