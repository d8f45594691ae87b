/** One message of every type with every field set (non-default), plus minimal ones. */

import type { Body, BodyInit } from "../../src/messages.js";

const pos = (epoch: bigint, offset: bigint) => ({ epoch, offset });
const U64_MAX = (1n << 64n) - 1n;

/** Every field set: `decode(encode(x))` must give back exactly `x`. */
export const FULL: Body[] = [
  {
    type: "Hello", protocolVersion: 1, sessionId: "0123456789abcdef01234567",
    resumeToken: new Uint8Array([0, 1, 2, 253, 254, 255]),
    positions: [{ topic: "$all", position: pos(U64_MAX, 42n) },
                { topic: "chat/é✓", position: pos(7n, 0n) }],
    lastAckedSeq: 99n, authToken: "tok",
    client: { name: "sigmasockets-client", version: "0.1.0", platform: "node",
              metadata: { user: "ann", room: "" } },
    serializer: "json",
  },
  {
    type: "Welcome", sessionId: "S", resumeToken: new Uint8Array(32).fill(9), resumed: true,
    recovery: [
      { topic: "$all", status: 0, position: pos(1n, 2n), lostFrom: 0n, lostTo: 0n, replayed: 3n },
      { topic: "room", status: 1, position: pos(5n, 40n), lostFrom: 4n, lostTo: 40n, replayed: 0n },
      { topic: "new", status: 2, position: null, lostFrom: 0n, lostTo: 0n, replayed: 0n },
    ],
    lastReceivedSeq: 17n, heartbeatIntervalMs: 25000, heartbeatTimeoutMs: 60000,
    limits: { maxMessageSize: 1 << 20, maxUnacked: 1000, maxTopics: 100, maxMessagesPerSecond: 5,
              maxBytesPerSecond: 0xffffffff },
    serverTimeMs: 1700000000123n, freshReason: "expired", credentialsExpireMs: 1700000600000n,
    serializer: "json",
  },
  {
    type: "Data", topic: "chat", position: pos(7n, 1n), seq: 3n, timestampMs: 1700000000000n,
    payload: new Uint8Array([104, 105, 0, 255]),
  },
  { type: "Ack", seq: U64_MAX, positions: [{ topic: "$inbox", position: pos(3n, 9n) }] },
  { type: "Ping", id: 0xffffffff, timestampMs: 1n },
  { type: "Pong", id: 4, echoTimestampMs: 5n, timestampMs: 6n },
  { type: "Subscribe", requestId: 12, topic: "room", position: pos(8n, 9n) },
  { type: "Unsubscribe", requestId: 13, topic: "room" },
  {
    type: "Subscribed", requestId: 12,
    recovery: { topic: "room", status: 2, position: pos(8n, 9n), lostFrom: 0n, lostTo: 0n, replayed: 4n },
  },
  { type: "Unsubscribed", requestId: 13, topic: "room" },
  { type: "Presence", topic: "room", action: 1, sessionId: "S2", metadata: { name: "bob" } },
  { type: "Error", code: 2, message: "too many topics", details: "max 100", retryable: true,
    requestId: 12 },
  { type: "Goodbye", code: 6, reason: "shutting down", reconnectAfterMs: 1000 },
  { type: "Refresh", token: "eyJ.new.token" },
  { type: "Refreshed", credentialsExpireMs: 1700000900000n },
];

/** Minimal messages (defaults left out) and what they decode to. */
export const MINIMAL: [BodyInit, Body][] = [
  [{ type: "Hello" }, { type: "Hello", protocolVersion: 1, sessionId: "", resumeToken: new Uint8Array(0),
                        positions: [], lastAckedSeq: 0n, authToken: "", client: null,
                        serializer: "" }],
  [{ type: "Welcome", sessionId: "", resumeToken: new Uint8Array(0) },
   { type: "Welcome", sessionId: "", resumeToken: new Uint8Array(0), resumed: false, recovery: [],
     lastReceivedSeq: 0n, heartbeatIntervalMs: 0, heartbeatTimeoutMs: 0, limits: null,
     serverTimeMs: 0n, freshReason: "", credentialsExpireMs: 0n, serializer: "" }],
  [{ type: "Data" }, { type: "Data", topic: "", position: null, seq: 0n, timestampMs: 0n,
                       payload: new Uint8Array(0) }],
  [{ type: "Ack" }, { type: "Ack", seq: 0n, positions: [] }],
  [{ type: "Ping" }, { type: "Ping", id: 0, timestampMs: 0n }],
  [{ type: "Pong" }, { type: "Pong", id: 0, echoTimestampMs: 0n, timestampMs: 0n }],
  [{ type: "Subscribe", topic: "" }, { type: "Subscribe", requestId: 0, topic: "", position: null }],
  [{ type: "Unsubscribe", topic: "t" }, { type: "Unsubscribe", requestId: 0, topic: "t" }],
  [{ type: "Subscribed", recovery: { topic: "t" } },
   { type: "Subscribed", requestId: 0, recovery: { topic: "t", status: 0, position: null, lostFrom: 0n,
                                                   lostTo: 0n, replayed: 0n } }],
  [{ type: "Unsubscribed", topic: "t" }, { type: "Unsubscribed", requestId: 0, topic: "t" }],
  [{ type: "Presence", topic: "t", sessionId: "s" },
   { type: "Presence", topic: "t", action: 0, sessionId: "s", metadata: {} }],
  [{ type: "Error" }, { type: "Error", code: 0, message: "", details: "", retryable: false, requestId: 0 }],
  [{ type: "Goodbye" }, { type: "Goodbye", code: 0, reason: "", reconnectAfterMs: 0 }],
  [{ type: "Refresh" }, { type: "Refresh", token: "" }],
  [{ type: "Refreshed" }, { type: "Refreshed", credentialsExpireMs: 0n }],
];
