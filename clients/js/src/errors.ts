/**
 * Every code and error class of the client, mirroring `sigma_core/errors.py`.
 *
 * `CloseCode` values are WebSocket close codes (RFC 6455 §7.4.1 plus SigmaSockets' own in the
 * 4000-4999 range); `ErrorCode` values travel in `Error` and `Goodbye` envelopes.
 */

export const CloseCode = {
  NORMAL_CLOSURE: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  /** Never sent: reported when a close frame carried no code. */
  NO_STATUS_RCVD: 1005,
  /** Never sent: reported when the connection dropped without a close frame. */
  ABNORMAL_CLOSURE: 1006,
  INVALID_FRAME_PAYLOAD_DATA: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  MANDATORY_EXTENSION: 1010,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  /** The binary message was not a valid envelope. */
  BAD_ENVELOPE: 4000,
  /** A valid envelope that is not allowed in the current state. */
  UNEXPECTED_MESSAGE: 4001,
  /** No Welcome within the handshake timeout. */
  HELLO_TIMEOUT: 4002,
  /** Nothing received for longer than the heartbeat timeout. */
  HEARTBEAT_TIMEOUT: 4003,
  UNSUPPORTED_VERSION: 4004,
  AUTH_FAILED: 4005,
  SESSION_TAKEN_OVER: 4006,
  SLOW_CONSUMER: 4007,
  RATE_LIMITED: 4008,
  LIMIT_EXCEEDED: 4009,
  /** Credentials expired and were not refreshed within the server's grace period. */
  TOKEN_EXPIRED: 4010,
  /** The client's payload serializer is not the server's. */
  SERIALIZER_MISMATCH: 4011,
} as const;

export const ErrorCode = {
  UNKNOWN: 0,
  INVALID_TOPIC: 1,
  TOO_MANY_TOPICS: 2,
  SUBSCRIBE_DENIED: 3,
  NOT_SUBSCRIBED: 4,
  RESUME_FAILED: 5,
  SHUTTING_DOWN: 6,
  SESSION_TAKEN_OVER: 7,
  SLOW_CONSUMER: 8,
  RATE_LIMITED: 9,
  AUTH_FAILED: 10,
  UNSUPPORTED_VERSION: 11,
  BAD_ENVELOPE: 12,
  UNEXPECTED_MESSAGE: 13,
  HEARTBEAT_TIMEOUT: 14,
  LIMIT_EXCEEDED: 15,
  /** The peer closes normally (Goodbye before a 1000 close); from a client it ends the session. */
  NORMAL: 16,
  TOKEN_EXPIRED: 17,
  AUTH_UNAVAILABLE: 18,
  SERIALIZER_MISMATCH: 19,
} as const;

/** Base class of every error this package throws or emits. */
export class SigmaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The caller used the API wrongly (invalid topic, oversized message). Nothing was sent. */
export class LocalProtocolError extends SigmaError {}

/** The peer violated the protocol; `code` is the close code that answers it. */
export class RemoteProtocolError extends SigmaError {
  readonly code: number;

  constructor(message: string, code: number = CloseCode.PROTOCOL_ERROR) {
    super(message);
    this.code = code;
  }

  /** The message as put in a close frame's reason (at most 123 UTF-8 bytes). */
  get reason(): string {
    return truncateReason(this.message);
  }
}

/** The bytes are not a valid SigmaSockets envelope. */
export class DecodeError extends RemoteProtocolError {
  constructor(message: string) {
    super(message, CloseCode.BAD_ENVELOPE);
  }
}

/**
 * A well-formed envelope whose body is a union member this version does not know (a newer
 * peer's message). Connections ignore such messages, as the schema's evolution rules require.
 */
export class UnknownMessageType extends DecodeError {
  readonly bodyType: number;

  constructor(bodyType: number, message?: string) {
    super(message ?? `unknown message type ${bodyType} (union member from a newer peer?)`);
    this.bodyType = bodyType;
  }
}

/** The client could not connect, or gave up reconnecting (attempts exhausted, refused). */
export class ConnectionFailed extends SigmaError {}

/** The server could not resume the session: a fresh one was started (never silently). */
export class SessionLostError extends SigmaError {}

/** Messages on a topic were lost beyond the history bounds; the app must resync it. */
export class RecoveryFailedError extends SigmaError {}

/** The app's `getToken` failed (threw, or gave no token). */
export class TokenRefreshError extends SigmaError {}

/** The server reported an error (an `Error` envelope); `code` is an ErrorCode value. */
export class ServerError extends SigmaError {
  readonly code: number;

  constructor(code: number, message: string) {
    super(`server error ${code}: ${message}`);
    this.code = code;
  }
}

const utf8 = new TextEncoder();

/** RFC 6455 §5.5: a close reason is at most 123 bytes of UTF-8 (125 less the code). */
export function truncateReason(text: string, limit = 123): string {
  if (utf8.encode(text).length <= limit) return text;
  let out = "";
  let used = 0;
  for (const ch of text) {
    const size = utf8.encode(ch).length;
    if (used + size > limit) break;
    out += ch;
    used += size;
  }
  return out;
}
