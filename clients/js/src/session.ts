/**
 * The client side of SigmaSockets as a sans-IO state machine: a port of
 * `sigma_core/client.py` (`ClientSession`) and of the client half of
 * `sigma_core/connection.py` (Hello/Welcome, heartbeats), at the level of whole WebSocket
 * messages (the browser's WebSocket does the framing).
 *
 * {@link ClientSession} never opens a socket and never reads a clock. It asks its adapter to
 * (`open` / `send` / `close` outputs, each quoting an `attempt` number), the adapter reports
 * back with {@link ClientSession.transportOpened}, {@link ClientSession.receive},
 * {@link ClientSession.transportError} and {@link ClientSession.transportClosed} quoting that
 * number (reports about an older attempt are ignored). Timers: the adapter keeps one timer at
 * {@link ClientSession.nextDeadline} and calls {@link ClientSession.handleTimer}. Time is
 * `now` in milliseconds on any monotonic clock; wire timestamps add `wallClockOffset`.
 *
 * Statuses (the original's `ConnectionStatus`):
 *
 *     disconnected --connect()--> connecting --Welcome--> connected
 *                                     |                      |
 *                                     +---- lost/failed -----+--> reconnecting --Welcome--> connected
 *                                                                    |
 *                                                    attempts exhausted / refused --> error
 *
 * Reconnects wait `floor + random() * min(maxDelay, initialDelay * multiplier^(n-1))` before
 * consecutive failed attempt n ("full jitter"); `floor` is the last Goodbye's
 * `reconnect_after_ms`, reset by the next Welcome.
 *
 * Client to server: every `send()` gets the next sequence number and stays in a bounded buffer
 * until acknowledged; after each Welcome everything the server has not received is sent again,
 * in order. Server to client: the last position per topic is kept, handed to the server on
 * resume, and a message at or before a known position (same epoch) is a duplicate and dropped.
 * A resume that became a fresh session, and every topic that could not be recovered, is an
 * explicit event: never silent.
 */

import { decode, encode } from "./codec.js";
import {
  CloseCode,
  DecodeError,
  ErrorCode,
  LocalProtocolError,
  RemoteProtocolError,
  UnknownMessageType,
  truncateReason,
} from "./errors.js";
import {
  RecoveryStatus,
  type Body,
  type BodyInit,
  type ClientInfoInit,
  type Data,
  type ErrorBody,
  type Goodbye,
  type Presence,
  type StreamPosition,
  type TopicRecovery,
  type Welcome,
} from "./messages.js";

export const SUBPROTOCOL = "sigma.v1";

/** Bytes an envelope adds to a payload and topic, at most (Data: ~100). */
export const ENVELOPE_OVERHEAD = 128;

export type ConnectionStatus = "disconnected" | "connecting" | "connected" | "reconnecting" | "error";

/** Everything the session needs to know; durations in milliseconds. */
export interface SessionConfig {
  url: string;
  /** Ceiling of the first reconnect delay; multiplied by `reconnectMultiplier` per attempt. */
  reconnectInterval: number;
  maxReconnectInterval: number;
  reconnectMultiplier: number;
  /** Consecutive failed attempts before giving up; `null` (or Infinity) retries forever. */
  maxReconnectAttempts: number | null;
  /** Our ping interval (0: no pings, no dead-peer detection); the Welcome's value wins. */
  heartbeatInterval: number;
  /** Silence after which the server is presumed dead; the Welcome's value wins. */
  heartbeatTimeout: number;
  /** How long opening the socket (TCP, TLS, upgrade) may take. */
  connectTimeout: number;
  /** How long the Welcome may take once the socket is open (then close 4002). */
  handshakeTimeout: number;
  /** Messages kept until acknowledged (including those queued while offline). */
  maxPending: number;
  /** Largest message (whole envelope) accepted, and sent until the Welcome says otherwise. */
  maxMessageSize: number;
  authToken: string;
  clientInfo: ClientInfoInit | null;
  /** The payload serializer's name, sent in the Hello ("" or "raw": nothing sent). */
  serializer: string;
  /**
   * The app can supply new tokens (`getToken`): the session asks for one (`token_needed`)
   * `refreshMargin` ms before the credentials the Welcome announced expire (at most halfway),
   * and after a close for expired or refused credentials instead of giving up.
   */
  refreshTokens: boolean;
  refreshMargin: number;
  /** Share of the Welcome's advertised rate limits to send at (0: no pacing). */
  pace: number;
  /** Added to `now` to stamp `*_ms` wire timestamps. */
  wallClockOffset: number;
  /**
   * After {@link ClientSession.networkChanged} reports the network offline (or back online)
   * while connected, a Ping probes the socket: if nothing at all arrives within this many ms
   * the connection is given up (close 4003) instead of waiting for the heartbeat timeout.
   */
  probeTimeout: number;
  /**
   * Acknowledge `$inbox` messages (a C→S `Ack` with the `$inbox` position, protocol.md §7) once
   * this many arrived since the last such Ack, or `inboxAckDelay` ms after the first of them,
   * so the server can let go of them; 0 never acknowledges (the server keeps them until its
   * history limits drop them).
   */
  inboxAckEvery: number;
  inboxAckDelay: number;
}

export const DEFAULT_SESSION_CONFIG: Omit<SessionConfig, "url"> = {
  reconnectInterval: 1000,
  maxReconnectInterval: 30000,
  reconnectMultiplier: 2,
  maxReconnectAttempts: 10,
  heartbeatInterval: 30000,
  heartbeatTimeout: 70000,
  connectTimeout: 10000,
  handshakeTimeout: 10000,
  maxPending: 1000,
  maxMessageSize: 1 << 20,
  authToken: "",
  clientInfo: null,
  serializer: "",
  refreshTokens: false,
  refreshMargin: 30000,
  pace: 0.9,
  wallClockOffset: 0,
  probeTimeout: 3000,
  inboxAckEvery: 128,
  inboxAckDelay: 1000,
};

// ----------------------------------------------------------------------------- outputs

/** Adapter: open a WebSocket to `url` with subprotocol `sigma.v1`; report with `attempt`. */
export interface OpenTransport { kind: "open"; attempt: number; url: string }
/** Adapter: send one binary message on the socket of `attempt`. */
export interface SendData { kind: "send"; attempt: number; data: Uint8Array }
/** Adapter: close the socket of `attempt` (after the sends queued before this). */
export interface CloseTransport { kind: "close"; attempt: number; code: number; reason: string }

export interface StatusChanged { kind: "status"; status: ConnectionStatus; previous: ConnectionStatus }
/** A Welcome arrived. */
export interface Connected { kind: "connected"; sessionId: string; resumed: boolean; freshReason: string }
/**
 * The server could not resume our session and started a fresh one. Messages not seen
 * acknowledged (`resent`) were sent again under the new session (at-least-once across a loss).
 */
export interface SessionReset {
  kind: "session_reset"; oldSessionId: string; newSessionId: string; reason: string; resent: number;
}
/**
 * Messages on `topic` will never arrive: offsets `lostFrom..lostTo` of the client's old epoch
 * (`lostTo` 0: unknown). Delivery continues after `position`. Resync the topic's state.
 */
export interface RecoveryFailed {
  kind: "recovery_failed"; topic: string; lostFrom: bigint; lostTo: bigint;
  position: StreamPosition | null;
}
export interface MessageReceived {
  kind: "message"; topic: string; position: StreamPosition; payload: Uint8Array; timestampMs: bigint;
}
export interface SubscribedEvent { kind: "subscribed"; topic: string; recovery: TopicRecovery; requestId: number }
export interface UnsubscribedEvent { kind: "unsubscribed"; topic: string; requestId: number }
export interface PresenceReceived { kind: "presence"; presence: Presence }
/** The server reported an error (a refused subscription, say); the connection goes on. */
export interface ErrorReceived { kind: "server_error"; error: ErrorBody }
/** A connection (or attempt) ended. `willReconnect` tells whether `reconnecting` follows. */
export interface Disconnected {
  kind: "disconnected"; code: number; reason: string; cause: RemoteProtocolError | null;
  goodbye: Goodbye | null; willReconnect: boolean;
}
export interface Reconnecting {
  kind: "reconnecting"; attempt: number; maxAttempts: number | null; delay: number;
}
/** No more reconnects: attempts exhausted, or the server refused us for good. */
export interface GaveUp { kind: "gave_up"; reason: string }
/**
 * Ask the app for a new token and hand it to {@link ClientSession.refreshToken}: `"refresh"`
 * (the credentials expire soon; the connection stays open) or `"reconnect"` (closed for
 * expired or refused credentials; the session reconnects once it has the token).
 */
export interface TokenNeeded { kind: "token_needed"; reason: "refresh" | "reconnect" }

export type SessionOutput =
  | OpenTransport | SendData | CloseTransport
  | StatusChanged | Connected | SessionReset | RecoveryFailed | MessageReceived
  | SubscribedEvent | UnsubscribedEvent | PresenceReceived | ErrorReceived
  | Disconnected | Reconnecting | GaveUp | TokenNeeded;

// ----------------------------------------------------------------------------- helpers

/** Validate a ws:// or wss:// URL (throws TypeError otherwise). */
export function parseUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`not a WebSocket URL (ws:// or wss://): ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new TypeError(`not a WebSocket URL (ws:// or wss://): ${JSON.stringify(url)}`);
  }
  if (!parsed.hostname) throw new TypeError(`URL has no host: ${JSON.stringify(url)}`);
  return parsed;
}

/** The delay ceiling before consecutive failed attempt `attempt` (1-based). */
export function backoffCeiling(config: SessionConfig, attempt: number): number {
  const exponent = Math.min(attempt - 1, 64);
  return Math.min(config.maxReconnectInterval,
                  config.reconnectInterval * config.reconnectMultiplier ** exponent);
}

export function validateConfig(config: SessionConfig): void {
  parseUrl(config.url);
  const finite = (name: keyof SessionConfig, min: number, strict = false) => {
    const v = config[name] as number;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || (strict && v === min)) {
      throw new RangeError(`${name} must be a finite number ${strict ? ">" : ">="} ${min}, got ${v}`);
    }
  };
  finite("reconnectInterval", 0, true);
  finite("maxReconnectInterval", 0, true);
  finite("reconnectMultiplier", 1);
  finite("heartbeatInterval", 0);
  finite("heartbeatTimeout", 0);
  finite("connectTimeout", 0, true);
  finite("handshakeTimeout", 0, true);
  finite("probeTimeout", 0, true);
  finite("inboxAckDelay", 0);
  if (!(Number.isInteger(config.inboxAckEvery) && config.inboxAckEvery >= 0)) {
    throw new RangeError("inboxAckEvery must be an integer >= 0");
  }
  finite("maxMessageSize", ENVELOPE_OVERHEAD, true);
  if (config.reconnectInterval > config.maxReconnectInterval) {
    throw new RangeError("reconnectInterval must not exceed maxReconnectInterval");
  }
  const attempts = config.maxReconnectAttempts;
  if (attempts !== null && attempts !== Infinity && !(Number.isInteger(attempts) && attempts >= 1)) {
    throw new RangeError("maxReconnectAttempts must be an integer >= 1, or null/Infinity");
  }
  if (!(Number.isInteger(config.maxPending) && config.maxPending >= 1)) {
    throw new RangeError("maxPending must be an integer >= 1");
  }
  if (config.heartbeatInterval && config.heartbeatTimeout <= config.heartbeatInterval) {
    throw new RangeError(`heartbeatTimeout must exceed heartbeatInterval (${config.heartbeatTimeout}`
                         + ` <= ${config.heartbeatInterval})`);
  }
}

const utf8 = new TextEncoder();

interface Pending {
  seq: number;
  topic: string;
  payload: Uint8Array;
  timestampMs: bigint;
}

type ConnState = "opening" | "hello" | "open";

/** The socket of the current attempt, and its Hello/Welcome and heartbeat state. */
interface Conn {
  state: ConnState;
  openedAt: number;
  lastReceived: number;
  nextPing: number;
  pingId: number;
  interval: number;
  timeout: number;
  peerGoodbye: Goodbye | null;
  transportError: string;
  /** A network-change probe is out: fail unless something arrives by then. */
  probeDeadline: number;
}

const SERVER_SENDS: ReadonlySet<Body["type"]> = new Set([
  "Data", "Ack", "Subscribed", "Unsubscribed", "Presence", "Error", "Refreshed",
]);

// Reconnecting would not help: refused for good, or another connection now owns the session
// (taking it back would start a tug of war between the two).
const FATAL_GOODBYES: ReadonlySet<number> = new Set([
  ErrorCode.AUTH_FAILED, ErrorCode.UNSUPPORTED_VERSION, ErrorCode.SESSION_TAKEN_OVER,
  ErrorCode.SERIALIZER_MISMATCH,
]);

/** The ErrorCode sent in the Goodbye that precedes a close we initiate for a failure. */
const ERROR_FOR_CLOSE: Readonly<Record<number, number>> = {
  [CloseCode.BAD_ENVELOPE]: ErrorCode.BAD_ENVELOPE,
  [CloseCode.UNEXPECTED_MESSAGE]: ErrorCode.UNEXPECTED_MESSAGE,
  [CloseCode.HELLO_TIMEOUT]: ErrorCode.UNEXPECTED_MESSAGE,
  [CloseCode.HEARTBEAT_TIMEOUT]: ErrorCode.HEARTBEAT_TIMEOUT,
};

// ----------------------------------------------------------------------------- machine

/** One logical client: keeps its session, positions and unacked sends across sockets. */
/** A control envelope waiting for the pacing: [kind, topic or token, request id]. */
type Control = ["subscribe" | "unsubscribe" | "refresh", string, number];

export class ClientSession {
  readonly config: SessionConfig;
  private readonly random: () => number;
  private _status: ConnectionStatus = "disconnected";
  private out: SessionOutput[] = [];
  private conn: Conn | null = null;
  private attemptId = 0;
  private attemptDeadline = Infinity;
  private reconnectAt = Infinity;
  /** Consecutive failed attempts since the last Welcome. */
  private failures = 0;
  private goodbyeFloor = 0;
  /** The app wants to be connected. */
  private wanted = false;
  // session
  sessionId = "";
  private token: Uint8Array = new Uint8Array(0);
  /** Last position per topic (`$all` and `$inbox` included). */
  readonly positions = new Map<string, StreamPosition>();
  /** Rooms the app wants (or the server put us in). */
  readonly subscriptions = new Set<string>();
  /** Left by the app, not yet confirmed by the server (their positions are kept until then). */
  private unsubscribing = new Set<string>();
  private requests = new Map<number, { topic: string; subscribe: boolean }>();
  /**
   * topic -> id of the app's latest (un)subscribe request still unanswered. The server answers
   * in order, so only the answer to the latest request decides the topic's state; answers to
   * superseded requests are ignored.
   */
  private latest = new Map<string, number>();
  private nextRequest = 1;
  // client -> server
  private pending: Pending[] = [];
  private nextSeq = 1;
  /** Highest seq written on the current connection. */
  private sentUpto = 0;
  private maxUnacked: number;
  private maxMessageSize: number;
  /** Highest client sequence the server acknowledged. */
  lastAckedSeq = 0;
  /** Duplicates dropped on receipt (a replay overlapping what had arrived). */
  duplicatesDropped = 0;
  /** Envelopes of a message type this version does not know, ignored. */
  unknownMessages = 0;
  /** `now` of the last Welcome, and whether it resumed the session. */
  connectedAt: number | null = null;
  resumed = false;
  /** Smoothed heartbeat round-trip time in ms (null until the first Pong). */
  rtt: number | null = null;
  /** The platform's last network report ({@link networkChanged}); true until told otherwise. */
  online = true;
  // credentials: the token the next Hello carries, when to ask for a new one, whether the app
  // gave a new one since the last refusal (a second refusal then gives up)
  authToken: string;
  credentialsExpireMs = 0n;
  private refreshAt = Infinity;
  private awaitingToken = false;
  private tokenFresh = false;
  private serverSkewMs = 0n;
  // pacing to Welcome.limits: [rate, tokens, updatedMs, capacity] per messages and bytes, or null
  private paceMsgs: number[] | null = null;
  private paceBytes: number[] | null = null;
  private paceAt = Infinity;
  /** Subscribe/Unsubscribe/Refresh waiting for the pacing (sent before waiting Data). */
  private pacedControl: Control[] = [];
  /** Ping and Pong sent and not yet charged to the pacing (the server counts them too). */
  private heartbeatsOwed = 0;
  /** `$inbox` messages delivered since the last inbox Ack (this session). */
  private inboxUnacked = 0;
  /** When the next inbox Ack is due (Infinity: none). */
  private inboxAckAt = Infinity;
  private lastNow = 0;

  constructor(config: SessionConfig, random: () => number) {
    validateConfig(config);
    this.config = config;
    this.random = random;
    this.maxUnacked = config.maxPending;
    this.maxMessageSize = config.maxMessageSize;
    this.authToken = config.authToken;
    this.checkHelloFits(null); // an auth token or client info too large for any Hello
  }

  // ------------------------------------------------------------------ queries

  get status(): ConnectionStatus {
    return this._status;
  }

  /** Messages sent (or queued) and not yet acknowledged. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** The attempt whose socket reports are current. */
  get attempt(): number {
    return this.attemptId;
  }

  /** Drain the outputs produced since the last call, in order. */
  takeOutputs(): SessionOutput[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  /** When {@link handleTimer} must next be called (null: no timer needed). */
  nextDeadline(): number | null {
    let deadline = Math.min(this.attemptDeadline, this.reconnectAt, this.refreshAt, this.paceAt,
                            this.inboxAckAt);
    const conn = this.conn;
    if (conn !== null) {
      if (conn.state === "hello") {
        deadline = Math.min(deadline, conn.openedAt + this.config.handshakeTimeout);
      } else if (conn.state === "open") {
        if (conn.interval) {
          deadline = Math.min(deadline, conn.nextPing, conn.lastReceived + conn.timeout);
        }
        deadline = Math.min(deadline, conn.probeDeadline);
      }
    }
    return deadline === Infinity ? null : deadline;
  }

  // ------------------------------------------------------------------ app commands

  /** Start connecting (no-op if already connected or trying). */
  connect(now: number): void {
    if (this._status !== "disconnected" && this._status !== "error") return;
    this.wanted = true;
    this.failures = 0;
    this.setStatus("connecting");
    this.open(now);
  }

  /**
   * Leave for good: Goodbye(NORMAL) ends the session on the server; unacknowledged messages are
   * dropped. `connect()` afterwards starts a fresh session (wanted subscriptions are kept).
   */
  disconnect(now: number, reason = "client disconnect"): void {
    void now;
    this.wanted = false;
    this.reconnectAt = this.attemptDeadline = Infinity;
    const conn = this.conn;
    if (conn !== null) {
      if (conn.state === "open") {
        this.sendBody({ type: "Goodbye", code: ErrorCode.NORMAL, reason });
      }
      this.out.push({ kind: "close", attempt: this.attemptId, code: CloseCode.NORMAL_CLOSURE,
                      reason: truncateReason(reason) });
    }
    this.conn = null;
    this.attemptId += 1; // whatever the old socket reports from now on is stale
    this.inboxAckAt = Infinity;
    this.forgetSession();
    this.setStatus("disconnected");
  }

  /**
   * Queue a message for the server; returns its sequence number, or `null` (nothing queued)
   * while `maxPending` messages await acknowledgement. Delivered exactly once, in order, across
   * reconnects, as long as the session survives. Throws {@link LocalProtocolError} for a
   * message the server could never accept (larger than its limit less the envelope overhead).
   */
  /**
   * The app's new token (answer to `token_needed`, or unasked): sent at once over an open
   * connection (`Refresh`), and used by every later Hello. A session waiting for a token to
   * reconnect reconnects now. Throws LocalProtocolError for an empty token.
   */
  refreshToken(token: string, now: number): void {
    if (!token) throw new LocalProtocolError("refreshToken needs a token");
    this.authToken = token;
    this.tokenFresh = true;
    this.refreshAt = Infinity;
    if (this.isOpen) {
      this.sendControl(["refresh", token, 0]);
    } else if (this.awaitingToken && this.wanted) {
      this.awaitingToken = false;
      this.reconnectAt = now;
    }
  }

  send(payload: Uint8Array, now: number, topic = ""): number | null {
    this.lastNow = now;
    if (!(payload instanceof Uint8Array)) {
      throw new LocalProtocolError("send() needs a Uint8Array payload");
    }
    if (typeof topic !== "string") throw new LocalProtocolError("topic must be a string");
    const size = payload.length + utf8.encode(topic).length + ENVELOPE_OVERHEAD;
    if (size > this.maxMessageSize) {
      throw new LocalProtocolError(
        `message of ${payload.length} bytes is too large: the limit is `
        + `${this.maxMessageSize - ENVELOPE_OVERHEAD} bytes of payload and topic`);
    }
    if (this.pending.length >= this.config.maxPending) return null;
    const item: Pending = { seq: this.nextSeq, topic, payload: payload.slice(),
                            timestampMs: this.wallMs(now) };
    this.nextSeq += 1;
    this.pending.push(item);
    this.transmit();
    return item.seq;
  }

  /**
   * Subscribe to `topic` (sent now, or on the next connection); returns the request id that
   * the Subscribed / Error answer quotes.
   */
  subscribe(topic: string, now: number): number {
    void now;
    if (typeof topic !== "string" || !topic || topic.startsWith("$")) {
      throw new LocalProtocolError(`invalid topic name ${JSON.stringify(topic)}`);
    }
    if (!this.subscriptions.has(topic)) this.checkHelloFits(topic);
    this.subscriptions.add(topic);
    this.unsubscribing.delete(topic);
    return this.request(topic, true);
  }

  /**
   * Stop receiving `topic`: nothing more is delivered for it from this call on. Sent now, or
   * after the next Welcome; the topic's position is kept until the server confirms, so a resume
   * in between neither replays the topic from its start nor gives it back.
   */
  unsubscribe(topic: string, now: number): number {
    void now;
    if (!this.subscriptions.has(topic)) {
      throw new LocalProtocolError(`not subscribed to ${JSON.stringify(topic)}`);
    }
    this.subscriptions.delete(topic);
    this.unsubscribing.add(topic);
    return this.request(topic, false);
  }

  // ------------------------------------------------------------------ adapter inputs

  /**
   * The socket of `attempt` is open (the upgrade is done): Hello goes out. `protocol` is the
   * subprotocol the server selected; anything but `sigma.v1` fails the attempt.
   */
  transportOpened(attempt: number, now: number, protocol: string = SUBPROTOCOL): void {
    const conn = this.conn;
    if (attempt !== this.attemptId || conn === null || conn.state !== "opening" || !this.wanted) {
      return;
    }
    this.attemptDeadline = Infinity;
    if (protocol !== SUBPROTOCOL) {
      this.out.push({ kind: "close", attempt, code: CloseCode.PROTOCOL_ERROR,
                      reason: "no subprotocol" });
      this.conn = null;
      this.attemptId += 1;
      this.lost(now, CloseCode.ABNORMAL_CLOSURE,
                `the server did not select the subprotocol ${SUBPROTOCOL}`
                + (protocol ? ` (it chose ${JSON.stringify(protocol)})` : ""), null, null);
      return;
    }
    conn.state = "hello";
    conn.openedAt = conn.lastReceived = now;
    this.sendBody(this.hello());
  }

  /** The socket of `attempt` reported an error (the close report follows). */
  transportError(attempt: number, message: string): void {
    if (attempt === this.attemptId && this.conn !== null && message) {
      this.conn.transportError = message;
    }
  }

  /** One whole WebSocket message from the socket of `attempt` (binary, or a string for text). */
  receive(attempt: number, data: Uint8Array | ArrayBuffer | string, now: number): void {
    this.lastNow = now;
    const conn = this.conn;
    if (attempt !== this.attemptId || conn === null || conn.state === "opening") return;
    conn.lastReceived = now;
    conn.probeDeadline = Infinity; // the socket is alive
    if (typeof data === "string") {
      this.fail(new RemoteProtocolError("text message", CloseCode.UNSUPPORTED_DATA), now);
      return;
    }
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    if (bytes.length > this.config.maxMessageSize) {
      this.fail(new RemoteProtocolError(
        `message of ${bytes.length} bytes exceeds max_message_size ${this.config.maxMessageSize}`,
        CloseCode.MESSAGE_TOO_BIG), now);
      return;
    }
    let body: Body;
    try {
      body = decode(bytes);
    } catch (exc) {
      if (exc instanceof UnknownMessageType) {
        // A newer peer's message type: ignored, per the schema's evolution rules.
        this.unknownMessages += 1;
        return;
      }
      this.fail(exc instanceof DecodeError ? exc : new DecodeError(String(exc)), now);
      return;
    }
    this.onEnvelope(conn, body, now);
  }

  /** The socket of `attempt` is closed (by us or the peer), with the close frame's code. */
  transportClosed(attempt: number, code: number, reason: string, now: number): void {
    const conn = this.conn;
    if (attempt !== this.attemptId || conn === null) return;
    this.conn = null;
    this.attemptId += 1;
    if (conn.state === "opening") {
      this.attemptDeadline = Infinity;
      this.lost(now, CloseCode.ABNORMAL_CLOSURE,
                conn.transportError || reason || "connect failed", null, null);
      return;
    }
    this.lost(now, code || CloseCode.NO_STATUS_RCVD, reason, null, conn.peerGoodbye);
  }

  handleTimer(now: number): void {
    if (now >= this.attemptDeadline) {
      this.attemptDeadline = Infinity;
      this.out.push({ kind: "close", attempt: this.attemptId, code: CloseCode.NORMAL_CLOSURE,
                      reason: "connect timeout" });
      this.conn = null;
      this.attemptId += 1;
      this.lost(now, CloseCode.ABNORMAL_CLOSURE,
                `connect timed out after ${this.config.connectTimeout / 1000} s`, null, null);
    }
    if (now >= this.reconnectAt) {
      this.reconnectAt = Infinity;
      this.open(now);
    }
    if (now >= this.refreshAt) {
      this.refreshAt = Infinity;
      this.out.push({ kind: "token_needed", reason: "refresh" });
    }
    if (now >= this.paceAt) {
      this.paceAt = Infinity;
      this.lastNow = now;
      this.transmit();
    }
    if (now >= this.inboxAckAt) this.sendInboxAck();
    const conn = this.conn;
    if (conn === null) return;
    this.lastNow = now; // as the Python client's _process: the pacing counts from here
    if (conn.state === "hello") {
      if (now >= conn.openedAt + this.config.handshakeTimeout) {
        this.fail(new RemoteProtocolError("no Welcome within the handshake timeout",
                                          CloseCode.HELLO_TIMEOUT), now);
      }
      return;
    }
    if (conn.state !== "open") return;
    if (now >= conn.probeDeadline) {
      this.fail(new RemoteProtocolError(
        `the network went ${this.online ? "away and came back" : "offline"}: nothing received `
        + `within ${this.config.probeTimeout / 1000} s of the probe`,
        CloseCode.HEARTBEAT_TIMEOUT), now);
      return;
    }
    if (!conn.interval) return;
    if (now >= conn.lastReceived + conn.timeout) {
      this.fail(new RemoteProtocolError(
        `nothing received for ${((now - conn.lastReceived) / 1000).toFixed(1)} s (heartbeat `
        + `timeout ${conn.timeout / 1000} s)`, CloseCode.HEARTBEAT_TIMEOUT), now);
      return;
    }
    if (now >= conn.nextPing) {
      conn.pingId = (conn.pingId + 1) >>> 0;
      this.sendBody({ type: "Ping", id: conn.pingId, timestampMs: this.wallMs(now) });
      conn.nextPing = now + conn.interval;
    }
  }

  /**
   * The platform says the network went offline (`online` false: the browser's `offline`
   * event) or came back (`online` true). Connected: the socket is suspect, so a Ping probes it
   * and the connection is failed (close 4003, then the usual reconnect) unless something
   * arrives within `probeTimeout`. Back online while waiting to reconnect: the next attempt
   * starts now, without waiting for the backoff. Not part of the Python session (which has no
   * such platform signal); the other inputs behave the same.
   */
  networkChanged(online: boolean, now: number): void {
    this.online = online;
    const conn = this.conn;
    if (conn !== null && conn.state === "open") {
      if (conn.probeDeadline === Infinity) {
        conn.pingId = (conn.pingId + 1) >>> 0;
        this.sendBody({ type: "Ping", id: conn.pingId, timestampMs: this.wallMs(now) });
        conn.probeDeadline = now + this.config.probeTimeout;
      }
      return;
    }
    if (online && this._status === "reconnecting" && this.reconnectAt !== Infinity) {
      this.reconnectAt = Infinity;
      this.open(now);
    }
  }

  // ------------------------------------------------------------------ internals

  private wallMs(now: number): bigint {
    return BigInt(Math.max(0, Math.floor(now + this.config.wallClockOffset)));
  }

  private setStatus(status: ConnectionStatus): void {
    if (status !== this._status) {
      const previous = this._status;
      this._status = status;
      this.out.push({ kind: "status", status, previous });
    }
  }

  private open(now: number): void {
    this.attemptId += 1;
    this.attemptDeadline = now + this.config.connectTimeout;
    this.conn = {
      state: "opening", openedAt: now, lastReceived: now, nextPing: Infinity, pingId: 0,
      interval: this.config.heartbeatInterval, timeout: this.config.heartbeatTimeout,
      peerGoodbye: null, transportError: "", probeDeadline: Infinity,
    };
    this.out.push({ kind: "open", attempt: this.attemptId, url: this.config.url });
  }

  private hello(): BodyInit {
    return {
      type: "Hello",
      sessionId: this.sessionId,
      resumeToken: this.token,
      positions: [...this.positions].map(([topic, position]) => ({ topic, position })),
      lastAckedSeq: BigInt(this.lastAckedSeq),
      authToken: this.authToken,
      client: this.config.clientInfo,
      serializer: this.config.serializer === "raw" ? "" : this.config.serializer,
    };
  }

  private sendBody(body: BodyInit): void {
    // Heartbeats and inbox Acks are sent at once; the server counts them against the rate.
    if (body.type === "Ping" || body.type === "Pong" || body.type === "Ack") {
      this.heartbeatsOwed += 1;
    }
    this.out.push({ kind: "send", attempt: this.attemptId, data: encode(body) });
  }

  private get isOpen(): boolean {
    return this.conn !== null && this.conn.state === "open";
  }

  /**
   * Refuse a subscription that would make our resuming Hello (one position per topic) larger
   * than the message size limit: the server would close every attempt with 1009, and the
   * session could never come back.
   */
  private checkHelloFits(topic: string | null): void {
    const topics = new Set<string>([...this.subscriptions, ...this.unsubscribing,
                                    ...this.positions.keys(), "$all", "$inbox"]);
    if (topic !== null) topics.add(topic);
    const worst = { epoch: 0xffffffffffffffffn, offset: 0xffffffffffffffffn };
    const size = encode({
      type: "Hello", sessionId: this.sessionId || "x".repeat(32),
      resumeToken: this.token.length ? this.token : new Uint8Array(64),
      positions: [...topics].map((t) => ({ topic: t, position: worst })),
      lastAckedSeq: 0xffffffffffffffffn, authToken: this.config.authToken,
      client: this.config.clientInfo,
    }).length;
    if (size > this.maxMessageSize) {
      if (topic === null) {
        throw new LocalProtocolError(
          `the Hello would be ${size} bytes, over the ${this.maxMessageSize}-byte message limit: `
          + "authToken or clientInfo too large");
      }
      throw new LocalProtocolError(
        `cannot subscribe to ${JSON.stringify(topic)}: with ${topics.size} streams the Hello that `
        + `resumes this session would be ${size} bytes, over the ${this.maxMessageSize}-byte `
        + "message limit; unsubscribe from some topics or use shorter names");
    }
  }

  private request(topic: string, subscribe: boolean): number {
    const requestId = this.nextRequest;
    this.nextRequest = (this.nextRequest % 0xffffffff) + 1;
    this.requests.set(requestId, { topic, subscribe });
    this.latest.set(topic, requestId);
    this.sendControl([subscribe ? "subscribe" : "unsubscribe", topic, requestId]);
    return requestId;
  }

  /**
   * Send a Subscribe, Unsubscribe or Refresh over the open connection (nothing otherwise):
   * now, or in turn when the server's rate limits (Welcome.limits) are paced, before any Data
   * that waits (the server counts every envelope).
   */
  private sendControl(item: Control): void {
    if (!this.isOpen) return;
    if (this.paceMsgs === null) {
      this.sendBody(this.controlBody(item));
      return;
    }
    this.pacedControl.push(item);
    this.transmit();
  }

  private controlBody([kind, text, requestId]: Control): BodyInit {
    if (kind === "subscribe") { // the position as it is when it leaves
      return { type: "Subscribe", topic: text, requestId, position: this.positions.get(text) ?? null };
    }
    if (kind === "unsubscribe") return { type: "Unsubscribe", topic: text, requestId };
    return { type: "Refresh", token: text };
  }

  /**
   * Send the paced control envelopes, then pending messages not yet written on this
   * connection, within the unacked window and the rate limits.
   */
  private transmit(): void {
    if (!this.isOpen) return;
    const limit = this.lastAckedSeq + this.maxUnacked;
    const pacing = this.paceMsgs !== null || this.paceBytes !== null;
    while (this.pacedControl.length > 0) {
      if (pacing && !this.paced(0)) return;
      this.sendBody(this.controlBody(this.pacedControl.shift()!));
    }
    for (const item of this.pending) {
      if (item.seq <= this.sentUpto) continue;
      if (item.seq > limit) break;
      if (pacing && !this.paced(item.payload.length)) break;
      this.sendBody({ type: "Data", topic: item.topic, seq: BigInt(item.seq),
                      timestampMs: item.timestampMs, payload: item.payload });
      this.sentUpto = item.seq;
    }
  }

  /**
   * Whether a message of `size` bytes may go now under the advertised rate limits; if not,
   * `paceAt` is when it may. Whole milliseconds, the same arithmetic as the Python client.
   */
  private paced(size: number): boolean {
    const nowMs = Math.round(this.lastNow);
    let waitMs = 0;
    // Heartbeats (Ping, Pong) are never held back, but the server counts them: they are
    // charged when sent since the last look, and may put the message bucket in debt.
    const owed = this.heartbeatsOwed;
    this.heartbeatsOwed = 0;
    for (const [bucket, amount] of [[this.paceMsgs, 1], [this.paceBytes, size]] as const) {
      if (bucket === null) continue;
      const rate = bucket[0]!;
      const capacity = bucket[3]!;
      let tokens = Math.min(capacity, bucket[1]! + (nowMs - bucket[2]!) * rate / 1000);
      if (bucket === this.paceMsgs) tokens -= owed;
      bucket[1] = tokens;
      bucket[2] = nowMs;
      const need = Math.min(amount, capacity);
      if (tokens < need) waitMs = Math.max(waitMs, Math.ceil((need - tokens) * 1000 / rate), 1);
    }
    if (waitMs) {
      this.paceAt = Math.min(this.paceAt, nowMs + waitMs);
      return false;
    }
    for (const [bucket, amount] of [[this.paceMsgs, 1], [this.paceBytes, size]] as const) {
      if (bucket !== null) bucket[1]! -= amount;
    }
    return true;
  }

  /** Schedule the `token_needed` for credentials expiring at `expireMs` (server wall clock). */
  private onCredentials(expireMs: bigint, serverTimeMs: bigint, now: number): void {
    this.credentialsExpireMs = expireMs;
    this.refreshAt = Infinity;
    if (!expireMs || !this.config.refreshTokens) return;
    let remaining = 0;
    if (serverTimeMs) remaining = Math.max(0, Number(expireMs - serverTimeMs));
    const waitMs = Math.max(remaining - Math.round(this.config.refreshMargin),
                            Math.floor(remaining / 2));
    this.refreshAt = now + waitMs;
  }

  /**
   * Close now with `error.code` (a Goodbye first when open), without waiting for the peer:
   * RFC 6455 §7.1.7, "fail the connection".
   */
  private fail(error: RemoteProtocolError, now: number): void {
    const conn = this.conn;
    if (conn === null) return;
    if (conn.state === "open") {
      this.sendBody({ type: "Goodbye", code: ERROR_FOR_CLOSE[error.code] ?? ErrorCode.UNKNOWN,
                      reason: error.reason });
    }
    this.out.push({ kind: "close", attempt: this.attemptId, code: error.code, reason: error.reason });
    this.conn = null;
    this.attemptId += 1;
    this.lost(now, error.code, error.reason, error, conn.peerGoodbye);
  }

  private onEnvelope(conn: Conn, body: Body, now: number): void {
    switch (body.type) {
      case "Ping":
        if (conn.state === "open") {
          this.sendBody({ type: "Pong", id: body.id, echoTimestampMs: body.timestampMs,
                          timestampMs: this.wallMs(now) });
          return;
        }
        break;
      case "Pong":
        if (conn.state === "open") {
          const sample = Math.max(0, Number(this.wallMs(now) - body.echoTimestampMs));
          this.rtt = this.rtt === null ? sample : this.rtt + (sample - this.rtt) / 8;
          return;
        }
        break;
      case "Goodbye":
        conn.peerGoodbye = body;
        return;
      default:
        break;
    }
    if (conn.state === "hello") {
      if (body.type === "Welcome") {
        // The server's heartbeat settings win: it sized its timeouts for them.
        if (body.heartbeatIntervalMs) conn.interval = body.heartbeatIntervalMs;
        if (body.heartbeatTimeoutMs > body.heartbeatIntervalMs) {
          conn.timeout = body.heartbeatTimeoutMs;
        }
        conn.state = "open";
        conn.lastReceived = now;
        conn.nextPing = conn.interval ? now + conn.interval : Infinity;
        this.onWelcome(body, now);
        return;
      }
      this.unexpected(conn, body, now);
      return;
    }
    if (!SERVER_SENDS.has(body.type)) {
      this.unexpected(conn, body, now);
      return;
    }
    this.onBody(body, now);
  }

  private unexpected(conn: Conn, body: Body, now: number): void {
    this.fail(new RemoteProtocolError(
      `unexpected ${body.type} from the server in state ${conn.state === "hello" ? "hello" : "open"}`,
      CloseCode.UNEXPECTED_MESSAGE), now);
  }

  private onWelcome(welcome: Welcome, now: number): void {
    const oldSession = this.sessionId;
    if (welcome.resumed) {
      this.dropAcked(safeNumber(welcome.lastReceivedSeq));
    } else {
      // A new session numbers from 1: renumber what the old one never acknowledged.
      const resent = this.pending.length;
      this.pending.forEach((item, i) => { item.seq = i + 1; });
      this.nextSeq = resent + 1;
      this.lastAckedSeq = 0;
      if (oldSession) {
        this.out.push({ kind: "session_reset", oldSessionId: oldSession,
                        newSessionId: welcome.sessionId, reason: welcome.freshReason, resent });
      }
    }
    this.sessionId = welcome.sessionId;
    this.token = welcome.resumeToken;
    this.tokenFresh = false;
    this.serverSkewMs = welcome.serverTimeMs ? welcome.serverTimeMs - this.wallMs(now) : 0n;
    this.onCredentials(welcome.credentialsExpireMs, welcome.serverTimeMs, now);
    const pace = this.config.pace;
    const lim = welcome.limits;
    const nowMs = Math.round(now);
    // [rate, tokens, updatedMs, capacity]. Capacity: one second's worth, less two messages
    // kept for the heartbeats (a Ping and a Pong may leave at any moment, never held back;
    // charged once sent).
    this.paceMsgs = null;
    this.paceBytes = null;
    if (lim !== null && pace && lim.maxMessagesPerSecond) {
      const rate = lim.maxMessagesPerSecond * pace;
      const capacity = Math.max(Math.min(rate, 1), rate - 2);
      this.paceMsgs = [rate, capacity, nowMs, capacity];
    }
    if (lim !== null && pace && lim.maxBytesPerSecond) {
      const rate = lim.maxBytesPerSecond * pace;
      this.paceBytes = [rate, rate, nowMs, rate];
    }
    this.paceAt = Infinity;
    // Heartbeats sent before this Welcome are not the new limits' business.
    this.heartbeatsOwed = 0;
    this.pacedControl = [];
    this.lastNow = now;
    const limits = welcome.limits;
    if (limits !== null) {
      if (limits.maxUnacked) this.maxUnacked = Math.min(this.config.maxPending, limits.maxUnacked);
      if (limits.maxMessageSize) {
        this.maxMessageSize = Math.min(this.config.maxMessageSize, limits.maxMessageSize);
      }
    }
    this.sentUpto = this.lastAckedSeq;
    // What the server holds now, against what the app wants (see reconcile).
    const pendingSubscribe = new Set<string>();
    for (const [topic, rid] of this.latest) {
      if (this.requests.get(rid)?.subscribe) pendingSubscribe.add(topic);
    }
    const serverTopics = new Set<string>();
    for (const recovery of welcome.recovery) {
      if (this.unsubscribing.has(recovery.topic)) {
        this.updatePosition(recovery); // kept until the server confirms the Unsubscribe
      } else if (!this.applyRecovery(recovery)) {
        continue;
      }
      if (!recovery.topic.startsWith("$")) serverTopics.add(recovery.topic);
    }
    this.failures = 0;
    this.goodbyeFloor = 0;
    this.connectedAt = now;
    this.resumed = welcome.resumed;
    if (!welcome.resumed) {
      this.inboxUnacked = 0; // the old inbox is gone
    } else if (this.inboxUnacked && this.inboxAckAt === Infinity) {
      // Inbox messages that arrived after the last Ack, before the link dropped: the server
      // still keeps them (an Ack, not a Hello, lets them go).
      this.inboxAckAt = now + this.config.inboxAckDelay;
    }
    this.setStatus("connected");
    this.out.push({ kind: "connected", sessionId: welcome.sessionId, resumed: welcome.resumed,
                    freshReason: welcome.freshReason });
    this.reconcile(serverTopics, pendingSubscribe);
    this.transmit();
  }

  /**
   * After a Welcome, bring the server's topics in line with the app's requests (the Python
   * client's `_reconcile`). Requests unanswered when the link dropped are lost; they are made
   * again from what the app wants now. A topic the app wants but the server lacks is asked for
   * again if our Subscribe never got through; if the server dropped it while we were away (it
   * was confirmed and nothing was pending), the server's Unsubscribed, which follows the
   * Welcome, says so. A topic the app left but the server still holds is left again.
   */
  private reconcile(serverTopics: Set<string>, pendingSubscribe: Set<string>): void {
    this.requests.clear();
    this.latest.clear();
    const sorted = (items: Iterable<string>) => [...items].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const topic of sorted(this.subscriptions)) {
      if (serverTopics.has(topic)) continue;
      if (pendingSubscribe.has(topic) || !this.positions.has(topic)) {
        this.positions.delete(topic);
        this.request(topic, true);
      }
    }
    for (const topic of sorted(this.unsubscribing)) {
      if (serverTopics.has(topic)) {
        this.request(topic, false);
      } else {
        this.unsubscribing.delete(topic);
        this.positions.delete(topic);
      }
    }
  }

  /**
   * protocol.md §6.4: a `Failed` recovery or a position in another epoch replaces the stored
   * position; `Recovered` and `Fresh` only move it forward (their replay may overlap what has
   * already arrived, and is deduplicated against the stored position).
   */
  private updatePosition(recovery: TopicRecovery): void {
    const position = recovery.position;
    if (position === null) return;
    const known = this.positions.get(recovery.topic);
    if (recovery.status !== RecoveryStatus.Failed && known !== undefined
        && known.epoch === position.epoch && known.offset >= position.offset) {
      return;
    }
    this.positions.set(recovery.topic, position);
  }

  /**
   * A `$` topic other than `$all` and `$inbox`: no client subscribes to one, so a server (or
   * anything on a plain `ws://` path) naming it is ignored (the Python client's
   * `_foreign_reserved`).
   */
  private static foreignReserved(topic: string): boolean {
    return topic.startsWith("$") && topic !== "$all" && topic !== "$inbox";
  }

  /**
   * A room the client never subscribed to (nor asked to, nor is leaving) that the server
   * announces (a server-side subscription) and that would make the resuming Hello too large
   * for the message limit: ignored, so the session can always resume (the Python client's
   * `_unasked_over_budget`).
   */
  private unaskedOverBudget(topic: string): boolean {
    if (topic.startsWith("$") || this.subscriptions.has(topic) || this.unsubscribing.has(topic)) {
      return false;
    }
    try {
      this.checkHelloFits(topic);
    } catch (err) {
      if (err instanceof LocalProtocolError) return true;
      throw err;
    }
    return false;
  }

  /** Apply a topic's recovery; false if the topic was ignored. */
  private applyRecovery(recovery: TopicRecovery): boolean {
    const topic = recovery.topic;
    if (ClientSession.foreignReserved(topic) || this.unaskedOverBudget(topic)) return false;
    this.updatePosition(recovery);
    if (!topic.startsWith("$") && !this.unsubscribing.has(topic)) this.subscriptions.add(topic);
    if (recovery.status === RecoveryStatus.Failed) {
      this.out.push({ kind: "recovery_failed", topic, lostFrom: recovery.lostFrom,
                      lostTo: recovery.lostTo, position: recovery.position });
    }
    return true;
  }

  private onBody(body: Body, now: number): void {
    switch (body.type) {
      case "Data":
        this.onData(body, now);
        break;
      case "Ack":
        this.dropAcked(safeNumber(body.seq));
        this.transmit();
        break;
      case "Subscribed": {
        const recovery = body.recovery;
        this.requests.delete(body.requestId);
        if (!this.isAnswer(recovery.topic, body.requestId, true)) break;
        if (!this.applyRecovery(recovery)) break;
        this.out.push({ kind: "subscribed", topic: recovery.topic, recovery,
                        requestId: body.requestId });
        break;
      }
      case "Unsubscribed":
        this.requests.delete(body.requestId);
        if (!this.isAnswer(body.topic, body.requestId, false)) break;
        this.subscriptions.delete(body.topic);
        this.unsubscribing.delete(body.topic);
        this.positions.delete(body.topic);
        this.out.push({ kind: "unsubscribed", topic: body.topic, requestId: body.requestId });
        break;
      case "Error": {
        const request = this.requests.get(body.requestId);
        this.requests.delete(body.requestId);
        if (request !== undefined && this.latest.get(request.topic) === body.requestId) {
          this.latest.delete(request.topic);
          if (request.subscribe) {
            this.subscriptions.delete(request.topic); // a refused subscription
          } else { // an Unsubscribe the server could not honour: done anyway
            this.unsubscribing.delete(request.topic);
            this.positions.delete(request.topic);
          }
        }
        this.out.push({ kind: "server_error", error: body });
        break;
      }
      case "Presence":
        this.out.push({ kind: "presence", presence: body });
        break;
      case "Refreshed":
        this.onCredentials(body.credentialsExpireMs, this.wallMs(now) + this.serverSkewMs, now);
        break;
      default:
        break;
    }
  }

  /**
   * Whether a Subscribed/Unsubscribed decides `topic`'s state: the answer to the latest
   * request, or a server-initiated change (request 0) with nothing pending.
   */
  private isAnswer(topic: string, requestId: number, subscribed: boolean): boolean {
    const latest = this.latest.get(topic);
    if (requestId === 0) {
      if (latest !== undefined) return false; // our pending request is processed after it
      return !subscribed || !this.unsubscribing.has(topic);
    }
    if (requestId !== latest) return false; // superseded: a later request will be answered
    this.latest.delete(topic);
    return true;
  }

  private onData(body: Data, now: number): void {
    const position = body.position;
    if (position === null) return; // a server never sends this; nothing to place it by
    const topic = body.topic;
    if (ClientSession.foreignReserved(topic)) return;
    if (!this.subscriptions.has(topic) && !topic.startsWith("$")) {
      // Left by the app: the server has not processed the Unsubscribe yet.
      if (this.positions.has(topic)) this.positions.set(topic, position);
      return;
    }
    const known = this.positions.get(topic);
    if (known !== undefined && known.epoch === position.epoch && position.offset <= known.offset) {
      this.duplicatesDropped += 1;
      return;
    }
    this.positions.set(topic, position);
    this.out.push({ kind: "message", topic, position, payload: body.payload.slice(),
                    timestampMs: body.timestampMs });
    if (topic === "$inbox" && this.config.inboxAckEvery) {
      this.inboxUnacked += 1;
      if (this.inboxUnacked >= this.config.inboxAckEvery) this.sendInboxAck();
      else if (this.inboxAckAt === Infinity) this.inboxAckAt = now + this.config.inboxAckDelay;
    }
  }

  /**
   * Tell the server how far this client holds its `$inbox` (protocol.md §7): it may let go of
   * those messages. Sent at once like a heartbeat, charged to the pacing.
   */
  private sendInboxAck(): void {
    this.inboxUnacked = 0;
    this.inboxAckAt = Infinity;
    const position = this.positions.get("$inbox");
    if (!this.isOpen || position === undefined) return;
    this.sendBody({ type: "Ack", seq: 0n, positions: [{ topic: "$inbox", position }] });
  }

  private dropAcked(seq: number): void {
    let drop = 0;
    while (drop < this.pending.length && this.pending[drop]!.seq <= seq) drop += 1;
    if (drop) this.pending.splice(0, drop);
    this.lastAckedSeq = Math.max(this.lastAckedSeq, seq);
  }

  /** The current attempt or connection is over: schedule the next one, or give up. */
  private lost(now: number, code: number, reason: string, cause: RemoteProtocolError | null,
               goodbye: Goodbye | null): void {
    this.refreshAt = Infinity;
    this.paceAt = Infinity;
    this.inboxAckAt = Infinity; // due again after the next (resumed) Welcome
    let fatal = goodbye !== null && FATAL_GOODBYES.has(goodbye.code);
    const credentials = goodbye !== null && (goodbye.code === ErrorCode.TOKEN_EXPIRED
                                             || goodbye.code === ErrorCode.AUTH_FAILED);
    if (credentials && this.wanted && this.config.refreshTokens && !this.tokenFresh) {
      // Expired or refused credentials, and the app can get new ones: ask once, and reconnect
      // when it answers (refreshToken), never with the old token.
      this.out.push({ kind: "disconnected", code, reason, cause, goodbye, willReconnect: true });
      this.awaitingToken = true;
      this.reconnectAt = Infinity;
      this.setStatus("reconnecting");
      this.out.push({ kind: "token_needed", reason: "reconnect" });
      return;
    }
    fatal = fatal || (goodbye !== null && goodbye.code === ErrorCode.TOKEN_EXPIRED);
    if (goodbye !== null && goodbye.code === ErrorCode.NORMAL && this.wanted) {
      // The server ended our session on purpose (a kick): coming back would undo it.
      this.out.push({ kind: "disconnected", code, reason, cause, goodbye, willReconnect: false });
      this.wanted = false;
      this.reconnectAt = Infinity;
      this.attemptDeadline = Infinity;
      this.forgetSession();
      this.setStatus("disconnected");
      return;
    }
    if (goodbye !== null && goodbye.reconnectAfterMs) this.goodbyeFloor = goodbye.reconnectAfterMs;
    this.failures += 1;
    const max = this.config.maxReconnectAttempts;
    const exhausted = max !== null && this.failures > max;
    const willReconnect = this.wanted && !fatal && !exhausted;
    this.out.push({ kind: "disconnected", code, reason, cause, goodbye, willReconnect });
    if (!this.wanted) return;
    if (!willReconnect) {
      this.wanted = false;
      this.setStatus("error");
      const why = fatal && goodbye !== null
        ? goodbye.reason || `refused by the server (code ${goodbye.code})`
        : `gave up after ${max} reconnect attempts`;
      this.out.push({ kind: "gave_up", reason: why });
      return;
    }
    const delay = this.goodbyeFloor + this.random() * backoffCeiling(this.config, this.failures);
    this.reconnectAt = now + delay;
    this.setStatus("reconnecting");
    this.out.push({ kind: "reconnecting", attempt: this.failures,
                    maxAttempts: max === Infinity ? null : max, delay });
  }

  private forgetSession(): void {
    this.sessionId = "";
    this.token = new Uint8Array(0);
    this.positions.clear();
    this.unsubscribing.clear();
    this.latest.clear();
    this.pending = [];
    this.requests.clear();
    this.nextSeq = 1;
    this.sentUpto = 0;
    this.lastAckedSeq = 0;
    this.inboxUnacked = 0;
    this.awaitingToken = false;
    this.refreshAt = Infinity;
    this.credentialsExpireMs = 0n;
  }
}

/** A u64 counter as a number (sequence numbers stay far below 2^53 in practice). */
function safeNumber(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}
