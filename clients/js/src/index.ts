/**
 * sigmasockets-client: the SigmaSockets client for browsers and Node (wire protocol sigma.v1).
 *
 *     import { SigmaSocketClient } from "sigmasockets-client";
 *     const client = new SigmaSocketClient({ url: "ws://localhost:8080/" });
 *     client.on("message", (data, messageId, timestamp, topic) => { ... });
 *     await client.connect();
 *     client.send(new TextEncoder().encode("hello"));
 */

export {
  SigmaSocketClient,
  browserNetwork,
  type AnyWebSocketConstructor,
  type NetworkMonitor,
  type PresenceInfo,
  type ReconnectInfo,
  type RecoveryFailedInfo,
  type SessionInfo,
  type SessionResetInfo,
  type SigmaSocketClientEvent,
  type SigmaSocketClientEvents,
  type SigmaSocketClientOptions,
  type Timers,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./client.js";
export {
  ClientSession,
  DEFAULT_SESSION_CONFIG,
  ENVELOPE_OVERHEAD,
  SUBPROTOCOL,
  backoffCeiling,
  type ConnectionStatus,
  type SessionConfig,
  type SessionOutput,
} from "./session.js";
export { FILE_IDENTIFIER, decode, encode } from "./codec.js";
export * from "./errors.js";
export * from "./messages.js";
export {
  JSON_SERIALIZER,
  PayloadDecodeError,
  RAW,
  checkSerializerName,
  encodePayload,
  type Serializer,
} from "./serializers.js";
