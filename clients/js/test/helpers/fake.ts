/**
 * Test doubles: a manual clock with timers, and a fake WebSocket whose "server" side the test
 * drives by hand (envelopes in, decoded envelopes out).
 */

import { decode, encode } from "../../src/codec.js";
import type { Body, BodyInit, TopicRecoveryInit } from "../../src/messages.js";
import { RecoveryStatus } from "../../src/messages.js";
import {
  SigmaSocketClient,
  type SigmaSocketClientOptions,
  type Timers,
  type WebSocketLike,
} from "../../src/client.js";

export const WALL = 1_700_000_000_000;

interface Timer { id: number; at: number; cb: () => void }

export class FakeClock implements Timers {
  now = WALL;
  private timers: Timer[] = [];
  private nextId = 1;

  setTimeout(cb: () => void, ms: number): unknown {
    const timer = { id: this.nextId++, at: this.now + Math.max(0, ms), cb };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** When the earliest timer fires (null: none armed). */
  get nextAt(): number | null {
    return this.timers.length ? Math.min(...this.timers.map((t) => t.at)) : null;
  }

  /** Move time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    const target = this.now + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.id - b.id);
      const timer = due[0];
      if (timer === undefined) break;
      this.timers = this.timers.filter((t) => t !== timer);
      this.now = Math.max(this.now, timer.at);
      timer.cb();
    }
    this.now = target;
  }

  /** Jump to the next timer and fire it; returns the ms advanced. */
  fireNext(): number {
    const at = this.nextAt;
    if (at === null) throw new Error("no timer armed");
    const delta = at - this.now;
    this.advance(delta);
    return delta;
  }
}

export class FakeWebSocket implements WebSocketLike {
  static instances: FakeWebSocket[] = [];
  binaryType = "blob";
  readyState = 0;
  protocol = "";
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  /** What the client sent, decoded. */
  readonly sent: Body[] = [];
  /** The client's close() call, if any. */
  closedWith: { code: number | undefined; reason: string | undefined } | null = null;

  constructor(readonly url: string, readonly protocols?: string | string[]) {
    FakeWebSocket.instances.push(this);
  }

  static reset(): void {
    FakeWebSocket.instances = [];
  }

  static get last(): FakeWebSocket {
    const ws = FakeWebSocket.instances.at(-1);
    if (ws === undefined) throw new Error("no socket opened");
    return ws;
  }

  send(data: Uint8Array): void {
    if (this.readyState !== 1) throw new Error("send() on a socket that is not open");
    this.sent.push(decode(data.slice()));
  }

  close(code?: number, reason?: string): void {
    if (this.closedWith === null) this.closedWith = { code, reason };
    if (this.readyState < 2) this.readyState = 2;
  }

  // ---- server side

  /** The upgrade succeeded. */
  accept(protocol = "sigma.v1"): void {
    this.readyState = 1;
    this.protocol = protocol;
    this.onopen?.({});
  }

  /** The connection could not be opened (refused, DNS...). */
  refuse(message = "connect ECONNREFUSED"): void {
    this.readyState = 3;
    this.onerror?.({ message });
    this.onclose?.({ code: 1006, reason: "" });
  }

  deliver(body: BodyInit): void {
    this.deliverRaw(encode(body).slice().buffer);
  }

  deliverRaw(data: ArrayBuffer | string): void {
    this.onmessage?.({ data });
  }

  /** The server closes (or the socket drops, with 1006). */
  serverClose(code = 1006, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** Sent bodies of one type. */
  sentOf<T extends Body["type"]>(type: T): Extract<Body, { type: T }>[] {
    return this.sent.filter((b): b is Extract<Body, { type: T }> => b.type === type);
  }

  welcome(opts: {
    sessionId?: string; resumed?: boolean; lastReceivedSeq?: bigint; freshReason?: string;
    recovery?: TopicRecoveryInit[]; heartbeatIntervalMs?: number; heartbeatTimeoutMs?: number;
    maxUnacked?: number; maxMessageSize?: number;
  } = {}): void {
    this.deliver({
      type: "Welcome",
      sessionId: opts.sessionId ?? "S1",
      resumeToken: new Uint8Array([1, 2, 3, 4]),
      resumed: opts.resumed ?? false,
      lastReceivedSeq: opts.lastReceivedSeq ?? 0n,
      freshReason: opts.freshReason ?? "",
      heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 25000,
      heartbeatTimeoutMs: opts.heartbeatTimeoutMs ?? 60000,
      limits: { maxMessageSize: opts.maxMessageSize ?? 1 << 20, maxUnacked: opts.maxUnacked ?? 1000,
                maxTopics: 100 },
      recovery: opts.recovery ?? [
        { topic: "$all", status: RecoveryStatus.Fresh, position: { epoch: 11n, offset: 0n } },
        { topic: "$inbox", status: RecoveryStatus.Fresh, position: { epoch: 22n, offset: 0n } },
      ],
    });
  }
}

/** Records every event the client emits, in order, as [name, ...args]. */
export function record(client: SigmaSocketClient): unknown[][] {
  const log: unknown[][] = [];
  for (const name of ["connection", "message", "reconnecting", "error", "recovery_failed",
                      "session_reset", "disconnection", "subscribed", "unsubscribed",
                      "presence"] as const) {
    client.on(name, ((...args: unknown[]) => { log.push([name, ...args]); }) as never);
  }
  return log;
}

export function makeClient(extra: Partial<SigmaSocketClientOptions> = {},
                           randoms: number[] = []): {
  client: SigmaSocketClient; clock: FakeClock; log: unknown[][];
} {
  FakeWebSocket.reset();
  const clock = new FakeClock();
  const queue = [...randoms];
  const client = new SigmaSocketClient({
    url: "ws://test.invalid:9/sigma",
    WebSocket: FakeWebSocket,
    now: () => clock.now,
    timers: clock,
    random: () => queue.length ? queue.shift()! : 0.5,
    ...extra,
  });
  return { client, clock, log: record(client) };
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const untext = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Let pending promise callbacks run. */
export const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
