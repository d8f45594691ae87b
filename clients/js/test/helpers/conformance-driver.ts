/**
 * The TypeScript side of the conformance harness (docs/conformance-traces.md): reads JSON lines
 * on stdin, one request per line, and writes one JSON line per request on stdout.
 *
 *   {"trace": {...}}        run a session trace through a fresh ClientSession; answers
 *                           {"steps": [{"events": [...], "sends": [...], "deadline": ms|null}]}
 *   {"decode": "<hex>"}     decode one envelope; answers {"ok": <canonical JSON>} or
 *                           {"error": "DecodeError" | "UnknownMessageType" | "<other class>"}
 *   {"encode": <canonical>} encode a body; answers {"hex": "..."} or {"error": "<class>"}
 *
 * The tests in tests/test_differential.py and tests/test_codec_crosscheck.py start one
 * long-lived `node dist/test/helpers/conformance-driver.js` and feed it thousands of requests.
 */

import { createInterface } from "node:readline";

import { decode, encode } from "../../src/codec.js";
import { ClientSession, DEFAULT_SESSION_CONFIG, type SessionOutput } from "../../src/session.js";
import type { BodyInit } from "../../src/messages.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const U64_FIELDS = new Set([
  "epoch", "offset", "lost_from", "lost_to", "replayed", "last_acked_seq", "last_received_seq",
  "server_time_ms", "seq", "timestamp_ms", "echo_timestamp_ms", "credentials_expire_ms",
]);
const BYTES_FIELDS = new Set(["resume_token", "payload"]);

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const camel = (k: string): string => k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

/** A decoded value as canonical JSON: snake_case keys, bytes as hex, u64 as a number when safe. */
export function canonical(value: unknown, key = ""): Json {
  if (value === null || value === undefined) return null;
  if (typeof value === "bigint") {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  }
  if (value instanceof Uint8Array) return hex(value);
  if (Array.isArray(value)) return value.map((v) => canonical(v));
  if (typeof value === "object") {
    const out: { [k: string]: Json } = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      put(out, k === "type" || key === "metadata" ? k : snake(k), canonical(v, snake(k)));
    }
    return out;
  }
  return value as Json;
}

/** An own property even for the key "__proto__" (an assignment would set the prototype). */
function put(out: object, key: string, value: unknown): void {
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Canonical JSON back into a BodyInit (the inverse of {@link canonical}). */
export function fromCanonical(value: Json, key = ""): unknown {
  if (value === null) return null;
  if (U64_FIELDS.has(key) && (typeof value === "number" || typeof value === "string")) {
    return BigInt(value);
  }
  if (BYTES_FIELDS.has(key) && typeof value === "string") {
    return new Uint8Array(Buffer.from(value, "hex"));
  }
  if (Array.isArray(value)) return value.map((v) => fromCanonical(v, key));
  if (typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      put(out, key === "metadata" ? k : camel(k), key === "metadata" ? v : fromCanonical(v, k));
    }
    return out;
  }
  return value;
}

const pos = (p: { epoch: bigint; offset: bigint } | null): Json =>
  p === null ? null : [canonical(p.epoch), canonical(p.offset)];

/** One session output in the harness's normal form (null: not compared, e.g. `send`). */
function normal(o: SessionOutput): Json {
  switch (o.kind) {
    case "open": return { open: o.attempt };
    case "close": return { close: o.attempt };
    case "send": return null;
    case "status": return { status: o.status };
    case "connected":
      return { connected: { session_id: o.sessionId, resumed: o.resumed, fresh_reason: o.freshReason } };
    case "session_reset":
      return { session_reset: { old: o.oldSessionId, new: o.newSessionId, reason: o.reason,
                                resent: o.resent } };
    case "recovery_failed":
      return { recovery_failed: { topic: o.topic, lost_from: canonical(o.lostFrom),
                                  lost_to: canonical(o.lostTo), position: pos(o.position) } };
    case "message":
      return { message: { topic: o.topic, position: pos(o.position), payload: hex(o.payload),
                          timestamp_ms: canonical(o.timestampMs) } };
    case "subscribed":
      return { subscribed: { topic: o.topic, request_id: o.requestId, status: o.recovery.status,
                             position: pos(o.recovery.position) } };
    case "unsubscribed": return { unsubscribed: { topic: o.topic, request_id: o.requestId } };
    case "presence":
      return { presence: { topic: o.presence.topic, session_id: o.presence.sessionId,
                           action: o.presence.action } };
    case "server_error": return { server_error: { code: o.error.code, request_id: o.error.requestId } };
    case "disconnected":
      return { disconnected: { code: o.code, goodbye: o.goodbye === null ? null : o.goodbye.code,
                               will_reconnect: o.willReconnect } };
    case "reconnecting":
      return { reconnecting: { attempt: o.attempt, delay_ms: Math.round(o.delay) } };
    case "gave_up": return { gave_up: true };
    case "token_needed": return { token_needed: o.reason };
    default: return { unknown: (o as { kind: string }).kind };
  }
}

interface TraceConfig {
  max_pending?: number;
  max_message_size?: number;
  connect_timeout_ms?: number;
  handshake_timeout_ms?: number;
  heartbeat_interval_ms?: number;
  heartbeat_timeout_ms?: number;
  reconnect?: { initial_ms?: number; max_ms?: number; multiplier?: number; max_attempts?: number | null };
  random?: number;
  auth_token?: string;
  serializer?: string;
  refresh_tokens?: boolean;
  refresh_margin_ms?: number;
  pace?: number;
  inbox_ack_every?: number;
  inbox_ack_delay_ms?: number;
}

interface Step { t: number; do: string; [key: string]: Json }

function runTrace(trace: { config?: TraceConfig; steps: Step[] }): Json {
  const c = trace.config ?? {};
  const r = c.reconnect ?? {};
  const rnd = c.random ?? 0.5;
  const session = new ClientSession({
    ...DEFAULT_SESSION_CONFIG,
    url: "ws://sigma.test/",
    maxPending: c.max_pending ?? DEFAULT_SESSION_CONFIG.maxPending,
    maxMessageSize: c.max_message_size ?? DEFAULT_SESSION_CONFIG.maxMessageSize,
    connectTimeout: c.connect_timeout_ms ?? 10000,
    handshakeTimeout: c.handshake_timeout_ms ?? 10000,
    heartbeatInterval: c.heartbeat_interval_ms ?? 30000,
    heartbeatTimeout: c.heartbeat_timeout_ms ?? 70000,
    reconnectInterval: r.initial_ms ?? 1000,
    maxReconnectInterval: r.max_ms ?? 30000,
    reconnectMultiplier: r.multiplier ?? 2,
    maxReconnectAttempts: r.max_attempts === undefined ? 10 : r.max_attempts,
    authToken: c.auth_token ?? "",
    serializer: c.serializer ?? "",
    refreshTokens: c.refresh_tokens ?? false,
    refreshMargin: c.refresh_margin_ms ?? 30000,
    pace: c.pace ?? 0.9,
    inboxAckEvery: c.inbox_ack_every ?? 128,
    inboxAckDelay: c.inbox_ack_delay_ms ?? 1000,
  }, () => rnd);
  let current = 0; // the attempt of the latest `open` output
  let opened = 0; // the latest attempt reported opened (a second report is not made)
  const steps: Json[] = [];
  for (const step of trace.steps) {
    const now = step.t;
    const events: Json[] = [];
    let result: Json = null;
    try {
      switch (step.do) {
        case "connect": session.connect(now); break;
        case "disconnect": session.disconnect(now); break;
        case "send": {
          const seq = session.send(new Uint8Array(Buffer.from(step.payload as string, "hex")), now,
                                   (step.topic as string | undefined) ?? "");
          result = seq === null ? { error: "BufferFullError" } : seq;
          break;
        }
        case "subscribe": result = session.subscribe(step.topic as string, now); break;
        case "unsubscribe": result = session.unsubscribe(step.topic as string, now); break;
        case "opened":
          if (opened === current) break;
          opened = current;
          session.transportOpened(current, now);
          break;
        case "open_failed":
          if (opened === current) break; // an open socket cannot fail to open
          session.transportError(current, "refused");
          session.transportClosed(current, 1006, "refused", now);
          break;
        case "recv":
          session.receive(current, new Uint8Array(Buffer.from(step.env as string, "hex")), now);
          break;
        case "server_close":
          session.transportClosed(current, step.code as number, (step.reason as string) ?? "", now);
          break;
        case "drop": session.transportClosed(current, 1006, "", now); break;
        case "timer": session.handleTimer(now); break;
        case "token": session.refreshToken(step.token as string, now); break;
        default: throw new Error(`unknown step ${step.do}`);
      }
    } catch (exc) {
      result = { error: (exc as Error).constructor.name };
    }
    const sends: Json[] = [];
    for (const o of session.takeOutputs()) {
      if (o.kind === "open") current = o.attempt;
      if (o.kind === "send") {
        sends.push(hex(o.data));
        continue;
      }
      events.push(normal(o));
    }
    const deadline = session.nextDeadline();
    steps.push({ result, events, sends, deadline: deadline === null ? null : Math.round(deadline) });
  }
  return { steps };
}

function handle(line: string): Json {
  const request = JSON.parse(line) as Record<string, Json>;
  if ("trace" in request) return runTrace(request.trace as unknown as { steps: Step[] });
  if ("decode" in request) {
    try {
      return { ok: canonical(decode(new Uint8Array(Buffer.from(request.decode as string, "hex")))) };
    } catch (exc) {
      return { error: (exc as Error).constructor.name, message: String((exc as Error).message) };
    }
  }
  if ("encode" in request) {
    try {
      return { hex: hex(encode(fromCanonical(request.encode) as BodyInit)) };
    } catch (exc) {
      return { error: (exc as Error).constructor.name, message: String((exc as Error).message) };
    }
  }
  return { error: "bad request" };
}

// `node --test dist/test/` loads every file under test/: there this is a helper, not a test,
// and must not wait for requests on stdin.
if (process.env.NODE_TEST_CONTEXT === undefined) serve();

function serve(): void {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on("line", (line) => {
    if (!line.trim()) return;
    let answer: Json;
    try {
      answer = handle(line);
    } catch (exc) {
      answer = { crash: String((exc as Error)?.stack ?? exc) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  });
}
