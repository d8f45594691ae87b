/**
 * The envelope bodies of the SigmaSockets wire protocol (`schemas/sigma.fbs`) as plain objects,
 * one interface per member of the `Body` union, discriminated by `type`. Field names are the
 * schema's in camelCase (as `flatc --ts` names its accessors); `ulong` fields are `bigint`,
 * `uint`/`ushort` fields are `number`.
 *
 * `decode()` returns every field filled in (defaults for absent ones). `encode()` takes a
 * {@link BodyInit}: only `type` and the schema's `(required)` fields must be given.
 */

export const PROTOCOL_VERSION = 1;

/** Where a message stands in a topic: `offset` (1, 2, ...) within `epoch`. */
export interface StreamPosition {
  epoch: bigint;
  offset: bigint;
}

/** `RecoveryStatus` values (an unknown status decodes as `Failed`). */
export const RecoveryStatus = { Recovered: 0, Failed: 1, Fresh: 2 } as const;
export type RecoveryStatus = (typeof RecoveryStatus)[keyof typeof RecoveryStatus];

/** `PresenceAction` values. */
export const PresenceAction = { Join: 0, Leave: 1 } as const;
export type PresenceAction = (typeof PresenceAction)[keyof typeof PresenceAction];

export interface TopicPosition {
  topic: string;
  position: StreamPosition;
}

export interface TopicRecovery {
  topic: string;
  status: RecoveryStatus;
  position: StreamPosition | null;
  lostFrom: bigint;
  lostTo: bigint;
  replayed: bigint;
}

export interface ClientInfo {
  name: string;
  version: string;
  platform: string;
  /** Key/value pairs (a repeated key: the last one wins on decode). */
  metadata: Record<string, string>;
}

export interface Limits {
  maxMessageSize: number;
  maxUnacked: number;
  maxTopics: number;
  maxMessagesPerSecond: number;
  maxBytesPerSecond: number;
}

export interface Hello {
  type: "Hello";
  protocolVersion: number;
  sessionId: string;
  resumeToken: Uint8Array;
  positions: TopicPosition[];
  lastAckedSeq: bigint;
  authToken: string;
  client: ClientInfo | null;
  /** The payload serializer's name; "" means "raw". */
  serializer: string;
}

export interface Welcome {
  type: "Welcome";
  sessionId: string;
  resumeToken: Uint8Array;
  resumed: boolean;
  recovery: TopicRecovery[];
  lastReceivedSeq: bigint;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  limits: Limits | null;
  serverTimeMs: bigint;
  freshReason: string;
  /** When the client's credentials expire, wall-clock ms since the epoch; 0n: never. */
  credentialsExpireMs: bigint;
  serializer: string;
}

export interface Data {
  type: "Data";
  topic: string;
  position: StreamPosition | null;
  seq: bigint;
  timestampMs: bigint;
  /** On decode: a view into the received buffer (no copy). */
  payload: Uint8Array;
}

export interface Ack {
  type: "Ack";
  seq: bigint;
  positions: TopicPosition[];
}

export interface Ping {
  type: "Ping";
  id: number;
  timestampMs: bigint;
}

export interface Pong {
  type: "Pong";
  id: number;
  echoTimestampMs: bigint;
  timestampMs: bigint;
}

export interface Subscribe {
  type: "Subscribe";
  requestId: number;
  topic: string;
  position: StreamPosition | null;
}

export interface Unsubscribe {
  type: "Unsubscribe";
  requestId: number;
  topic: string;
}

export interface Subscribed {
  type: "Subscribed";
  requestId: number;
  recovery: TopicRecovery;
}

export interface Unsubscribed {
  type: "Unsubscribed";
  requestId: number;
  topic: string;
}

export interface Presence {
  type: "Presence";
  topic: string;
  action: PresenceAction;
  sessionId: string;
  metadata: Record<string, string>;
}

/** The `Error` envelope (named `ErrorBody` so it does not shadow the global `Error`). */
export interface ErrorBody {
  type: "Error";
  code: number;
  message: string;
  details: string;
  retryable: boolean;
  requestId: number;
}

export interface Goodbye {
  type: "Goodbye";
  code: number;
  reason: string;
  reconnectAfterMs: number;
}

/** Client -> server: a new credential for the open connection. */
export interface Refresh {
  type: "Refresh";
  token: string;
}

/** Server -> client: the Refresh was accepted; credentials now expire then (ms). */
export interface Refreshed {
  type: "Refreshed";
  credentialsExpireMs: bigint;
}

export type Body =
  | Hello
  | Welcome
  | Data
  | Ack
  | Ping
  | Pong
  | Subscribe
  | Unsubscribe
  | Subscribed
  | Unsubscribed
  | Presence
  | ErrorBody
  | Goodbye
  | Refresh
  | Refreshed;

export type BodyType = Body["type"];

type Init<T, Req extends keyof T> = Pick<T, Req> & Partial<Omit<T, Req>>;

export type TopicRecoveryInit = Init<TopicRecovery, "topic">;
export type ClientInfoInit = Partial<ClientInfo>;

/** What `encode()` accepts: `type`, the `(required)` fields, and any others. */
export type BodyInit =
  | (Init<Omit<Hello, "client">, "type"> & { client?: ClientInfoInit | null })
  | (Init<Omit<Welcome, "recovery" | "limits">, "type" | "sessionId" | "resumeToken"> & {
      recovery?: TopicRecoveryInit[];
      limits?: Partial<Limits> | null;
    })
  | Init<Data, "type">
  | Init<Ack, "type">
  | Init<Ping, "type">
  | Init<Pong, "type">
  | Init<Subscribe, "type" | "topic">
  | Init<Unsubscribe, "type" | "topic">
  | (Init<Omit<Subscribed, "recovery">, "type"> & { recovery: TopicRecoveryInit })
  | Init<Unsubscribed, "type" | "topic">
  | Init<Presence, "type" | "topic" | "sessionId">
  | Init<ErrorBody, "type">
  | Init<Goodbye, "type">
  | Init<Refresh, "type">
  | Init<Refreshed, "type">;
