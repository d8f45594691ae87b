/**
 * `SigmaSocketClient`: the original TypeScript client's API on top of the sans-IO
 * {@link ClientSession} (a port of the Python client's state machine), for browsers and Node.
 *
 * The session decides everything (when to connect, reconnect, resume, give up); this class
 * opens and closes WebSockets when told, moves messages, keeps one timer armed at the session's
 * next deadline, and turns session outputs into events and the `connect()` promise.
 *
 * In browsers the WebSocket is `globalThis.WebSocket`. In Node 20 (no global WebSocket) pass
 * one: `new SigmaSocketClient({ url, WebSocket })` with `import WebSocket from "ws"`.
 */

import {
  ConnectionFailed,
  RecoveryFailedError,
  ServerError,
  SessionLostError,
  TokenRefreshError,
} from "./errors.js";
import {
  PayloadDecodeError,
  RAW,
  checkSerializerName,
  encodePayload,
  type Serializer,
} from "./serializers.js";
import type { ClientInfoInit, Presence, StreamPosition, TopicRecovery } from "./messages.js";
import {
  ClientSession,
  DEFAULT_SESSION_CONFIG,
  SUBPROTOCOL,
  type ConnectionStatus,
  type SessionConfig,
  type SessionOutput,
} from "./session.js";

// ----------------------------------------------------------------------------- WebSocket shape

/** The part of the WHATWG WebSocket this client uses (browsers, `ws`, undici). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly protocol: string;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** What the `WebSocket` option accepts: the browser's, `ws`'s, or any WHATWG-like class. Typed
 * loosely because the DOM and `ws` typings of the event handlers differ from each other. */
export type AnyWebSocketConstructor = new (url: string, protocols?: string | string[]) => unknown;

/** Timer functions (injectable for tests). */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const OPEN = 1;

/**
 * Where the client hears that the network went away or came back. In a browser the default
 * is {@link browserNetwork} (the window's `online`/`offline` events); elsewhere (Node) there
 * is none unless one is passed, so nothing changes for a Node user.
 */
export interface NetworkMonitor {
  /** Call `onChange(online)` on every change; returns a function that stops listening. */
  subscribe(onChange: (online: boolean) => void): () => void;
}

/**
 * The browser's network signal: `window` `online`/`offline` events. Null outside a browser
 * (no `addEventListener` on the global object, or no `navigator.onLine`).
 */
export function browserNetwork(): NetworkMonitor | null {
  const g = globalThis as {
    addEventListener?: (type: string, listener: () => void) => void;
    removeEventListener?: (type: string, listener: () => void) => void;
    navigator?: { onLine?: unknown };
  };
  if (typeof g.addEventListener !== "function" || typeof g.removeEventListener !== "function"
      || typeof g.navigator?.onLine !== "boolean") {
    return null;
  }
  const add = g.addEventListener.bind(g);
  const remove = g.removeEventListener.bind(g);
  return {
    subscribe(onChange) {
      const online = () => onChange(true);
      const offline = () => onChange(false);
      add("online", online);
      add("offline", offline);
      return () => {
        remove("online", online);
        remove("offline", offline);
      };
    },
  };
}

// ----------------------------------------------------------------------------- options, events

export interface SigmaSocketClientOptions {
  /** `ws://host:port/path` or `wss://...`. */
  url: string;
  /** Ceiling of the first reconnect delay in ms (doubles per attempt; each delay is drawn
   * uniformly below its ceiling: "full jitter"). Default 1000. */
  reconnectInterval?: number;
  /** Cap of the reconnect delay ceiling in ms. Default 30000. */
  maxReconnectInterval?: number;
  /** Consecutive failed attempts before giving up (`null` or `Infinity`: never). Default 10. */
  maxReconnectAttempts?: number | null;
  /** Client ping interval in ms (0: none); the server's Welcome value wins. Default 30000. */
  heartbeatInterval?: number;
  /** Silence in ms after which the server is presumed dead; the Welcome's value wins.
   * Default 70000. */
  heartbeatTimeout?: number;
  /** Messages kept until acknowledged (queued offline too); `send()` returns false beyond.
   * Default 1000. */
  maxPending?: number;
  /** Opaque credential for the server's authentication hook. */
  authToken?: string;
  /** Sent in Hello (informational). */
  clientInfo?: ClientInfoInit;
  /** How long opening the socket may take, in ms. Default 10000. */
  connectTimeout?: number;
  /** How long the Welcome may take once the socket is open, in ms. Default 10000. */
  handshakeTimeout?: number;
  /** Largest message accepted (whole envelope), in bytes. Default 1 MiB. */
  maxMessageSize?: number;
  /**
   * Network changes (browser `online`/`offline`): going offline (or coming back) while
   * connected sends a Ping probe, and the connection is given up if nothing arrives within
   * `probeTimeout`; coming back online while waiting to reconnect reconnects at once, skipping
   * the backoff. Default {@link browserNetwork}() (null outside a browser); `null` turns it off.
   */
  network?: NetworkMonitor | null;
  /** How long a network-change probe waits for any answer, in ms. Default 3000. */
  probeTimeout?: number;
  /**
   * Acknowledge `$inbox` messages to the server (protocol.md §7) after this many, or
   * `inboxAckDelay` ms after the first unacknowledged one, so it can let go of them.
   * Defaults 128 and 1000; `inboxAckEvery: 0` never acknowledges.
   */
  inboxAckEvery?: number;
  inboxAckDelay?: number;
  /** WebSocket constructor; default `globalThis.WebSocket`. In Node 20 pass `ws`'s. */
  WebSocket?: AnyWebSocketConstructor;
  /** Uniform random number in [0, 1) for the reconnect jitter. Default `Math.random`. */
  random?: () => number;
  /**
   * How payloads are encoded (`send` takes values) and decoded (`message` gives values):
   * {@link RAW} (default, `Uint8Array`), {@link JSON_SERIALIZER}, `MSGPACK` (from `sigmasockets-client/msgpack`), or your own.
   * Must be the server's: its name goes in the Hello (a mismatch is refused, close 4011).
   */
  serializer?: Serializer;
  /**
   * Called for a new token before the credentials the server announced expire, and after a
   * close for expired credentials (the client reconnects with the new token instead of giving
   * up). May return a Promise. Unset: tokens are not refreshed.
   */
  getToken?: () => string | Promise<string>;
  /** Ms before the credentials expire to call `getToken` (at most halfway). Default 30000. */
  tokenRefreshMargin?: number;
  /** Share of the server's advertised rate limits the client sends at (0: off). Default 0.9. */
  ratePacing?: number;
  /** Clock in ms, for tests. Also stamps wire timestamps, so give it wall-clock-like values.
   * Default: a monotonic clock (`performance.now()`) offset to the wall clock once. */
  now?: () => number;
  /** Timer functions, for tests. Default `globalThis.setTimeout` / `clearTimeout`. */
  timers?: Timers;
}

export interface ReconnectInfo {
  /** Consecutive failed attempts so far (1 for the first reconnect). */
  attempt: number;
  /** `null` when retrying forever. */
  maxAttempts: number | null;
  /** Milliseconds until the attempt. */
  nextRetryIn: number;
}

export interface RecoveryFailedInfo {
  topic: string;
  /** First offset that will never arrive (in the client's old epoch). */
  lostFrom: number;
  /** Last offset that will never arrive; 0 when unknown (the epoch is gone). */
  lostTo: number;
  /** Delivery continues after this position. */
  position: StreamPosition | null;
}

export interface SessionResetInfo {
  oldSessionId: string;
  newSessionId: string;
  reason: string;
  /** Unacknowledged messages sent again under the new session (at-least-once). */
  resent: number;
}

export interface PresenceInfo {
  topic: string;
  action: "join" | "leave";
  sessionId: string;
  metadata: Record<string, string>;
}

export interface SessionInfo {
  id: string;
  /** Whether the last Welcome resumed the session (false: a fresh one). */
  resumed: boolean;
  /** Wall-clock time (ms since the epoch) of the last Welcome. */
  connectedAt: number;
  /** Messages sent and not yet acknowledged. */
  pending: number;
}

export interface SigmaSocketClientEvents {
  /** Every status change. */
  connection: (status: ConnectionStatus) => void;
  /** `messageId` is the message's offset in its topic; `timestamp` ms since the epoch. */
  message: (data: unknown, messageId: number, timestamp: number, topic: string) => void;
  reconnecting: (info: ReconnectInfo) => void;
  /** Gave up (ConnectionFailed), recovery failed, session reset, server error reports, and
   * exceptions thrown by listeners. */
  error: (error: Error) => void;
  recovery_failed: (info: RecoveryFailedInfo) => void;
  session_reset: (info: SessionResetInfo) => void;
  /** A connection (or an attempt) ended: close code and reason. */
  disconnection: (code: number, reason: string) => void;
  subscribed: (topic: string, recovery: TopicRecovery) => void;
  unsubscribed: (topic: string) => void;
  presence: (info: PresenceInfo) => void;
}

export type SigmaSocketClientEvent = keyof SigmaSocketClientEvents;

type AnyListener = (...args: never[]) => void;

function defaultClock(): { now: () => number; wallClockOffset: number } {
  const perf = (globalThis as { performance?: { now(): number } }).performance;
  if (perf === undefined) return { now: () => Date.now(), wallClockOffset: 0 };
  return { now: () => perf.now(), wallClockOffset: Date.now() - perf.now() };
}

// ----------------------------------------------------------------------------- client

export class SigmaSocketClient {
  private readonly session: ClientSession;
  private readonly WebSocketCtor: WebSocketConstructor | undefined;
  private readonly now: () => number;
  private readonly timers: Timers;
  private readonly listeners = new Map<string, AnyListener[]>();
  private socket: WebSocketLike | null = null;
  private socketAttempt = 0;
  private timer: unknown = null;
  private timerAt: number | null = null;
  private busy = false;
  private waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private lastFailure = "";
  private readonly network: NetworkMonitor | null;
  private stopNetwork: (() => void) | null = null;
  private readonly serializer: Serializer;
  private readonly getToken: (() => string | Promise<string>) | null;

  constructor(options: SigmaSocketClientOptions) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError("SigmaSocketClient needs an options object with a url");
    }
    const clock = options.now !== undefined
      ? { now: options.now, wallClockOffset: 0 } : defaultClock();
    this.now = clock.now;
    const d = DEFAULT_SESSION_CONFIG;
    const reconnectInterval = options.reconnectInterval ?? d.reconnectInterval;
    const config: SessionConfig = {
      url: options.url,
      reconnectInterval,
      maxReconnectInterval: Math.max(options.maxReconnectInterval ?? d.maxReconnectInterval,
                                     reconnectInterval),
      reconnectMultiplier: d.reconnectMultiplier,
      maxReconnectAttempts: options.maxReconnectAttempts === undefined
        ? d.maxReconnectAttempts : options.maxReconnectAttempts,
      heartbeatInterval: options.heartbeatInterval ?? d.heartbeatInterval,
      heartbeatTimeout: options.heartbeatTimeout ?? d.heartbeatTimeout,
      connectTimeout: options.connectTimeout ?? d.connectTimeout,
      handshakeTimeout: options.handshakeTimeout ?? d.handshakeTimeout,
      maxPending: options.maxPending ?? d.maxPending,
      maxMessageSize: options.maxMessageSize ?? d.maxMessageSize,
      authToken: options.authToken ?? "",
      clientInfo: options.clientInfo ?? null,
      serializer: checkSerializerName((options.serializer ?? RAW).name),
      refreshTokens: options.getToken !== undefined,
      refreshMargin: options.tokenRefreshMargin ?? d.refreshMargin,
      pace: options.ratePacing ?? d.pace,
      wallClockOffset: clock.wallClockOffset,
      probeTimeout: options.probeTimeout ?? d.probeTimeout,
      inboxAckEvery: options.inboxAckEvery ?? d.inboxAckEvery,
      inboxAckDelay: options.inboxAckDelay ?? d.inboxAckDelay,
    };
    this.session = new ClientSession(config, options.random ?? Math.random);
    this.serializer = options.serializer ?? RAW;
    this.getToken = options.getToken ?? null;
    this.WebSocketCtor = (options.WebSocket as WebSocketConstructor | undefined)
      ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    this.timers = options.timers ?? {
      setTimeout: (cb, ms) => globalThis.setTimeout(cb, ms),
      clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
    };
    this.network = options.network === undefined ? browserNetwork() : options.network;
  }

  // ------------------------------------------------------------------ lifecycle

  /**
   * Connect; resolves once the server welcomed us (status `connected`). Rejects with
   * {@link ConnectionFailed} if the client gives up first (attempts exhausted, authentication
   * refused) or `disconnect()` is called meanwhile.
   */
  connect(): Promise<void> {
    if (this.session.status === "connected") return Promise.resolve();
    if (this.WebSocketCtor === undefined) {
      return Promise.reject(new TypeError(
        "no WebSocket implementation: pass { WebSocket } (in Node 20: import WebSocket from 'ws')"));
    }
    const promise = new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
    });
    if (this.network !== null && this.stopNetwork === null) {
      this.stopNetwork = this.network.subscribe((online) => {
        this.session.networkChanged(online, this.now());
        this.pump();
      });
    }
    this.session.connect(this.now());
    this.pump();
    return promise;
  }

  /** Goodbye (NORMAL) and close 1000: the server ends the session. Status `disconnected`. */
  disconnect(): void {
    this.stopListening();
    this.session.disconnect(this.now());
    this.pump();
  }

  private stopListening(): void {
    this.stopNetwork?.();
    this.stopNetwork = null;
  }

  // ------------------------------------------------------------------ commands and queries

  /**
   * Queue `data` for the server (delivered once, in order, across reconnects while the session
   * lives; queued while offline). `topic` is a hint for the server application. Returns false,
   * and queues nothing, while `maxPending` messages await acknowledgement. Throws
   * `LocalProtocolError` for a message larger than the server accepts.
   */
  send(data: unknown, topic = ""): boolean {
    const seq = this.session.send(encodePayload(this.serializer, data), this.now(), topic);
    this.pump();
    return seq !== null;
  }

  private async fetchToken(getToken: () => string | Promise<string>): Promise<void> {
    let token: unknown;
    try {
      token = await getToken();
    } catch (exc) {
      this.emit("error", new TokenRefreshError(`getToken failed: ${String(exc)}`));
      return;
    }
    if (typeof token !== "string" || !token) {
      this.emit("error", new TokenRefreshError("getToken must return a non-empty string"));
      return;
    }
    this.session.refreshToken(token, this.now());
    this.pump();
  }

  /** Subscribe to `topic` (now, or on the next connection). Throws for `$`-names and "". */
  subscribe(topic: string): void {
    this.session.subscribe(topic, this.now());
    this.pump();
  }

  /** Leave `topic`. Throws if not subscribed. */
  unsubscribe(topic: string): void {
    this.session.unsubscribe(topic, this.now());
    this.pump();
  }

  getStatus(): ConnectionStatus {
    return this.session.status;
  }

  /** The session the server gave us; null before the first Welcome (and after disconnect). */
  getSession(): SessionInfo | null {
    const s = this.session;
    if (!s.sessionId || s.connectedAt === null) return null;
    return { id: s.sessionId, resumed: s.resumed,
             connectedAt: s.connectedAt + s.config.wallClockOffset, pending: s.pendingCount };
  }

  /** Smoothed heartbeat round-trip time in ms (null until the first Pong). */
  getRtt(): number | null {
    return this.session.rtt;
  }

  /** The sans-IO state machine (positions, subscriptions, counters). */
  get core(): ClientSession {
    return this.session;
  }

  on<E extends SigmaSocketClientEvent>(event: E, listener: SigmaSocketClientEvents[E]): this {
    const list = this.listeners.get(event) ?? [];
    list.push(listener as AnyListener);
    this.listeners.set(event, list);
    return this;
  }

  off<E extends SigmaSocketClientEvent>(event: E, listener: SigmaSocketClientEvents[E]): this {
    const list = this.listeners.get(event);
    const index = list?.indexOf(listener as AnyListener) ?? -1;
    if (list !== undefined && index >= 0) list.splice(index, 1);
    return this;
  }

  // ------------------------------------------------------------------ plumbing

  private emit(event: SigmaSocketClientEvent, ...args: unknown[]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        (listener as (...a: unknown[]) => void)(...args);
      } catch (exc) {
        const error = exc instanceof Error ? exc : new Error(String(exc));
        if (event !== "error" && (this.listeners.get("error")?.length ?? 0) > 0) {
          this.emit("error", error);
        } else {
          console.error("exception in a SigmaSocketClient listener:", error);
        }
      }
    }
  }

  /** Act on everything the session produced, then re-arm the timer. */
  private pump(): void {
    if (this.busy) return; // a listener called a command: the running loop picks it up
    this.busy = true;
    try {
      for (;;) {
        const outputs = this.session.takeOutputs();
        if (outputs.length === 0) break;
        for (const output of outputs) this.handle(output);
      }
    } finally {
      this.busy = false;
    }
    this.rearm();
  }

  private handle(o: SessionOutput): void {
    switch (o.kind) {
      case "open":
        this.openSocket(o.attempt, o.url);
        break;
      case "send":
        if (o.attempt === this.socketAttempt && this.socket?.readyState === OPEN) {
          this.socket.send(o.data);
        }
        break;
      case "close":
        if (o.attempt === this.socketAttempt) this.closeSocket(o.code, o.reason);
        break;
      case "status":
        if (o.status === "connected") this.settle(null);
        else if (o.status === "disconnected") {
          this.settle(new ConnectionFailed("disconnected before the server welcomed us"));
        }
        this.emit("connection", o.status);
        break;
      case "connected":
        break;
      case "message": {
        let value: unknown = o.payload;
        if (this.serializer !== RAW) {
          try {
            value = this.serializer.decode(o.payload);
          } catch (exc) {
            this.emit("error", new PayloadDecodeError(this.serializer.name, String(exc), o.payload,
                                                      o.topic, Number(o.position.offset)));
            break;
          }
        }
        this.emit("message", value, Number(o.position.offset), Number(o.timestampMs), o.topic);
        break;
      }
      case "token_needed":
        if (this.getToken !== null) void this.fetchToken(this.getToken);
        break;
      case "reconnecting":
        this.emit("reconnecting", { attempt: o.attempt, maxAttempts: o.maxAttempts,
                                    nextRetryIn: o.delay } satisfies ReconnectInfo);
        break;
      case "gave_up": {
        const last = this.lastFailure ? ` (last error: ${this.lastFailure})` : "";
        const error = new ConnectionFailed(o.reason + last);
        this.stopListening();
        this.settle(error);
        this.emit("error", error);
        break;
      }
      case "recovery_failed":
        this.emit("recovery_failed", {
          topic: o.topic, lostFrom: Number(o.lostFrom), lostTo: Number(o.lostTo),
          position: o.position,
        } satisfies RecoveryFailedInfo);
        this.emit("error", new RecoveryFailedError(
          `messages lost on topic ${JSON.stringify(o.topic)} (offsets ${o.lostFrom}..`
          + `${o.lostTo || "?"}); resync it`));
        break;
      case "session_reset":
        this.emit("session_reset", {
          oldSessionId: o.oldSessionId, newSessionId: o.newSessionId, reason: o.reason,
          resent: o.resent,
        } satisfies SessionResetInfo);
        this.emit("error", new SessionLostError(
          `session ${o.oldSessionId} could not be resumed: ${o.reason}`));
        break;
      case "server_error":
        this.emit("error", new ServerError(o.error.code, o.error.message));
        break;
      case "disconnected":
        this.lastFailure = o.reason;
        this.emit("disconnection", o.code, o.reason);
        break;
      case "subscribed":
        this.emit("subscribed", o.topic, o.recovery);
        break;
      case "unsubscribed":
        this.emit("unsubscribed", o.topic);
        break;
      case "presence":
        this.emit("presence", presenceInfo(o.presence));
        break;
    }
  }

  private settle(error: Error | null): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (error === null) w.resolve();
      else w.reject(error);
    }
  }

  private openSocket(attempt: number, url: string): void {
    this.dropSocket();
    this.socketAttempt = attempt;
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketCtor!(url, [SUBPROTOCOL]);
      socket.binaryType = "arraybuffer";
    } catch (exc) {
      const session = this.session;
      session.transportError(attempt, exc instanceof Error ? exc.message : String(exc));
      session.transportClosed(attempt, 1006, "", this.now());
      return; // the running pump() picks up the outputs
    }
    this.socket = socket;
    const session = this.session;
    socket.onopen = () => {
      session.transportOpened(attempt, this.now(), socket.protocol);
      this.pump();
    };
    socket.onmessage = (event) => {
      const data = event.data;
      if (typeof data === "string" || data instanceof ArrayBuffer || data instanceof Uint8Array) {
        session.receive(attempt, data, this.now());
      } else if (ArrayBuffer.isView(data)) {
        session.receive(attempt, new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
                        this.now());
      } else {
        session.receive(attempt, String(data), this.now()); // e.g. a Blob: not our protocol
      }
      this.pump();
    };
    socket.onerror = (event) => {
      const message = (event as { message?: unknown; error?: { message?: unknown } } | null);
      const text = typeof message?.message === "string" ? message.message
        : typeof message?.error?.message === "string" ? message.error.message : "";
      session.transportError(attempt, text);
    };
    socket.onclose = (event) => {
      if (this.socket === socket) this.socket = null;
      session.transportClosed(attempt, event.code, event.reason, this.now());
      this.pump();
    };
  }

  private closeSocket(code: number, reason: string): void {
    const socket = this.socket;
    if (socket === null) return;
    try {
      socket.close(code, reason);
    } catch {
      // Browsers only let scripts send 1000 and 3000-4999: close without a code then.
      try {
        socket.close();
      } catch {
        // already closed
      }
    }
  }

  /** Forget the current socket (its late reports are stale for the session anyway). */
  private dropSocket(): void {
    this.socket = null;
  }

  private rearm(): void {
    const deadline = this.session.nextDeadline();
    if (deadline === this.timerAt) return;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timerAt = deadline;
    this.timer = deadline === null ? null
      : this.timers.setTimeout(() => this.onTimer(), Math.max(0, deadline - this.now()));
  }

  private onTimer(): void {
    // Never show the session a time before the deadline it asked for (timers can fire a hair
    // early), or it would ask again at once.
    const when = this.timerAt ?? 0;
    this.timer = this.timerAt = null;
    this.session.handleTimer(Math.max(this.now(), when));
    this.pump();
  }
}

function presenceInfo(p: Presence): PresenceInfo {
  return { topic: p.topic, action: p.action === 0 ? "join" : "leave", sessionId: p.sessionId,
           metadata: p.metadata };
}
