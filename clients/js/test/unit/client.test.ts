/**
 * SigmaSocketClient driven by a fake server (FakeWebSocket) on a manual clock: every rule of
 * the Python client's state machine that the TypeScript port mirrors.
 */

import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import {
  CloseCode,
  ConnectionFailed,
  ErrorCode,
  LocalProtocolError,
  RecoveryFailedError,
  ServerError,
  SessionLostError,
} from "../../src/errors.js";
import { PresenceAction, RecoveryStatus } from "../../src/messages.js";
import { SigmaSocketClient } from "../../src/client.js";
import { FakeWebSocket, WALL, flush, makeClient, text, untext } from "../helpers/fake.js";

const closeCode = (ws: FakeWebSocket) => ws.closedWith?.code;
const events = (log: unknown[][], name: string) => log.filter((e) => e[0] === name);

/** connect() and complete the first connection with a fresh Welcome. */
async function connected(extra = {}, randoms: number[] = []) {
  const made = makeClient(extra, randoms);
  const promise = made.client.connect();
  const ws = FakeWebSocket.last;
  ws.accept();
  ws.welcome();
  await promise;
  return { ...made, ws };
}

beforeEach(() => FakeWebSocket.reset());

describe("connect", () => {
  test("opens with the subprotocol, sends Hello, resolves at CONNECTED", async () => {
    const { client, log } = makeClient({ authToken: "secret", clientInfo: { name: "t", version: "1" } });
    assert.equal(client.getStatus(), "disconnected");
    let resolved = false;
    const promise = client.connect().then(() => { resolved = true; });
    const ws = FakeWebSocket.last;
    assert.equal(ws.url, "ws://test.invalid:9/sigma");
    assert.deepEqual(ws.protocols, ["sigma.v1"]);
    assert.equal(ws.binaryType, "arraybuffer");
    assert.equal(client.getStatus(), "connecting");
    ws.accept();
    const [hello] = ws.sent;
    assert.equal(hello?.type, "Hello");
    if (hello?.type !== "Hello") return;
    assert.equal(hello.protocolVersion, 1);
    assert.equal(hello.sessionId, "");
    assert.equal(hello.resumeToken.length, 0);
    assert.equal(hello.authToken, "secret");
    assert.equal(hello.client?.name, "t");
    await flush();
    assert.equal(resolved, false);
    ws.welcome();
    await promise;
    assert.equal(client.getStatus(), "connected");
    assert.deepEqual(events(log, "connection").map((e) => e[1]), ["connecting", "connected"]);
    const session = client.getSession();
    assert.equal(session?.id, "S1");
    assert.equal(session?.resumed, false);
    assert.equal(session?.connectedAt, WALL);
    assert.equal(session?.pending, 0);
  });

  test("connect() while connected resolves at once; getSession is null before", async () => {
    const { client } = makeClient();
    assert.equal(client.getSession(), null);
    const p = client.connect();
    FakeWebSocket.last.accept();
    FakeWebSocket.last.welcome();
    await p;
    await client.connect();
    assert.equal(FakeWebSocket.instances.length, 1);
  });

  test("a server that selects no subprotocol fails the attempt", async () => {
    const { client, log } = makeClient();
    void client.connect().catch(() => {});
    FakeWebSocket.last.accept("");
    assert.equal(FakeWebSocket.last.sent.length, 0);
    assert.notEqual(FakeWebSocket.last.closedWith, null);
    assert.equal(client.getStatus(), "reconnecting");
    const [, code, reason] = events(log, "disconnection")[0]!;
    assert.equal(code, 1006);
    assert.match(String(reason), /subprotocol/);
  });

  test("without a WebSocket implementation connect() rejects", async () => {
    const saved = (globalThis as { WebSocket?: unknown }).WebSocket;
    delete (globalThis as { WebSocket?: unknown }).WebSocket;
    try {
      const client = new SigmaSocketClient({ url: "ws://x.invalid/" });
      await assert.rejects(client.connect(), /no WebSocket implementation/);
    } finally {
      if (saved !== undefined) (globalThis as { WebSocket?: unknown }).WebSocket = saved;
    }
  });

  test("bad options are refused", () => {
    assert.throws(() => new SigmaSocketClient({ url: "http://x/" }), TypeError);
    assert.throws(() => new SigmaSocketClient({ url: "ws://x/", maxPending: 0 }), RangeError);
    assert.throws(() => new SigmaSocketClient({ url: "ws://x/", heartbeatInterval: 10,
                                                heartbeatTimeout: 5 }), RangeError);
    assert.throws(() => new SigmaSocketClient({ url: "ws://x/", maxReconnectAttempts: 0 }),
                  RangeError);
  });
});

describe("server to client", () => {
  test("message event: data, messageId = offset, timestamp, topic", async () => {
    const { ws, log } = await connected();
    ws.deliver({ type: "Data", topic: "$all", position: { epoch: 11n, offset: 1n },
                 timestampMs: 1234n, payload: text("hi") });
    const [msg] = events(log, "message");
    assert.ok(msg);
    assert.equal(untext(msg[1] as Uint8Array), "hi");
    assert.equal(msg[2], 1);
    assert.equal(msg[3], 1234);
    assert.equal(msg[4], "$all");
  });

  test("dedup by position: same or older offset of the same epoch is dropped", async () => {
    const { client, ws, log } = await connected();
    const data = (offset: bigint, epoch = 11n) => ws.deliver({
      type: "Data", topic: "$all", position: { epoch, offset }, payload: text(`m${offset}`) });
    data(1n); data(2n); data(2n); data(1n); data(3n);
    data(1n, 99n); // another epoch: accepted, replaces the position
    data(2n, 99n);
    assert.deepEqual(events(log, "message").map((e) => untext(e[1] as Uint8Array)),
                     ["m1", "m2", "m3", "m1", "m2"]);
    assert.equal(client.core.duplicatesDropped, 2);
    assert.deepEqual(client.core.positions.get("$all"), { epoch: 99n, offset: 2n });
  });

  test("positions (from recovery, then data) go into the next Hello", async () => {
    const { clock, ws } = await connected({}, [0]);
    ws.deliver({ type: "Data", topic: "$inbox", position: { epoch: 22n, offset: 4n }, payload: text("x") });
    ws.serverClose(1006);
    clock.fireNext();
    const ws2 = FakeWebSocket.last;
    assert.notEqual(ws2, ws);
    ws2.accept();
    const hello = ws2.sentOf("Hello")[0]!;
    assert.equal(hello.sessionId, "S1");
    assert.deepEqual([...hello.resumeToken], [1, 2, 3, 4]);
    assert.deepEqual(hello.positions, [
      { topic: "$all", position: { epoch: 11n, offset: 0n } },
      { topic: "$inbox", position: { epoch: 22n, offset: 4n } },
    ]);
  });

  test("a Data without a position is ignored", async () => {
    const { ws, log } = await connected();
    ws.deliver({ type: "Data", topic: "x", payload: text("?") });
    assert.equal(events(log, "message").length, 0);
  });

  test("presence events", async () => {
    const { ws, log } = await connected();
    ws.deliver({ type: "Presence", topic: "room", action: PresenceAction.Leave, sessionId: "S9",
                 metadata: { user: "ann" } });
    assert.deepEqual(events(log, "presence")[0]?.[1],
                     { topic: "room", action: "leave", sessionId: "S9", metadata: { user: "ann" } });
  });
});

describe("client to server", () => {
  test("sequence numbers, topic hint, acks drop pending", async () => {
    const { client, ws } = await connected();
    assert.equal(client.send(text("a")), true);
    assert.equal(client.send(text("b"), "room"), true);
    const data = ws.sentOf("Data");
    assert.deepEqual(data.map((d) => [d.seq, d.topic, untext(d.payload)]),
                     [[1n, "", "a"], [2n, "room", "b"]]);
    assert.equal(data[0]!.timestampMs, BigInt(WALL));
    assert.equal(client.getSession()?.pending, 2);
    ws.deliver({ type: "Ack", seq: 1n });
    assert.equal(client.getSession()?.pending, 1);
    ws.deliver({ type: "Ack", seq: 2n });
    assert.equal(client.getSession()?.pending, 0);
    assert.equal(client.core.lastAckedSeq, 2);
  });

  test("the pending buffer is bounded: send() returns false when full, also offline", async () => {
    const { client } = makeClient({ maxPending: 3 });
    assert.equal(client.send(text("1")), true);
    assert.equal(client.send(text("2")), true);
    assert.equal(client.send(text("3")), true);
    assert.equal(client.send(text("4")), false);
    const p = client.connect();
    const ws = FakeWebSocket.last;
    ws.accept();
    ws.welcome();
    await p;
    // queued offline, sent after the Welcome, in order
    assert.deepEqual(ws.sentOf("Data").map((d) => untext(d.payload)), ["1", "2", "3"]);
    assert.equal(client.send(text("4")), false);
    ws.deliver({ type: "Ack", seq: 2n });
    assert.equal(client.send(text("4")), true);
    assert.equal(client.send(text("5")), true);
    assert.equal(client.send(text("6")), false);
  });

  test("the Welcome's max_unacked limits what is in flight", async () => {
    const { client } = makeClient();
    const p = client.connect();
    const ws = FakeWebSocket.last;
    ws.accept();
    ws.welcome({ maxUnacked: 2 });
    await p;
    for (const s of ["a", "b", "c", "d"]) client.send(text(s));
    assert.deepEqual(ws.sentOf("Data").map((d) => d.seq), [1n, 2n]);
    ws.deliver({ type: "Ack", seq: 1n });
    assert.deepEqual(ws.sentOf("Data").map((d) => d.seq), [1n, 2n, 3n]);
    ws.deliver({ type: "Ack", seq: 3n });
    assert.deepEqual(ws.sentOf("Data").map((d) => d.seq), [1n, 2n, 3n, 4n]);
  });

  test("retransmission after resume: everything after Welcome.last_received_seq, same seqs", async () => {
    const { client, clock, ws, log } = await connected({}, [0]);
    for (const s of ["1", "2", "3", "4", "5"]) client.send(text(s));
    ws.deliver({ type: "Ack", seq: 2n });
    ws.serverClose(1006);
    assert.equal(client.getStatus(), "reconnecting");
    client.send(text("6")); // queued while offline
    clock.fireNext();
    const ws2 = FakeWebSocket.last;
    ws2.accept();
    assert.equal(ws2.sentOf("Hello")[0]!.lastAckedSeq, 2n);
    assert.equal(ws2.sentOf("Data").length, 0, "nothing but Hello before the Welcome");
    ws2.welcome({ resumed: true, lastReceivedSeq: 4n });
    assert.deepEqual(ws2.sentOf("Data").map((d) => [d.seq, untext(d.payload)]),
                     [[5n, "5"], [6n, "6"]]);
    assert.equal(client.getSession()?.pending, 2);
    assert.equal(client.getSession()?.resumed, true);
    client.send(text("7"));
    assert.equal(ws2.sentOf("Data").at(-1)!.seq, 7n);
    assert.equal(events(log, "session_reset").length, 0);
  });

  test("a message too large for the server throws; the Welcome's limit applies", async () => {
    const { client } = makeClient();
    const p = client.connect();
    const ws = FakeWebSocket.last;
    ws.accept();
    ws.welcome({ maxMessageSize: 1000 });
    await p;
    assert.throws(() => client.send(new Uint8Array(1000 - 128 + 1)), LocalProtocolError);
    assert.equal(client.send(new Uint8Array(1000 - 128)), true);
  });
});

describe("resume outcomes", () => {
  test("a fresh session instead of a resume: session_reset, renumbered resend", async () => {
    const { client, clock, ws, log } = await connected({}, [0]);
    for (const s of ["a", "b", "c"]) client.send(text(s));
    ws.deliver({ type: "Ack", seq: 1n });
    ws.serverClose(1006);
    clock.fireNext();
    const ws2 = FakeWebSocket.last;
    ws2.accept();
    ws2.welcome({ sessionId: "S2", resumed: false, freshReason: "session could not be resumed",
                  recovery: [
                    { topic: "$all", status: RecoveryStatus.Failed, position: { epoch: 77n, offset: 0n },
                      lostFrom: 1n, lostTo: 0n },
                  ] });
    const [reset] = events(log, "session_reset");
    assert.deepEqual(reset?.[1], { oldSessionId: "S1", newSessionId: "S2",
                                   reason: "session could not be resumed", resent: 2 });
    assert.deepEqual(ws2.sentOf("Data").map((d) => [d.seq, untext(d.payload)]),
                     [[1n, "b"], [2n, "c"]]);
    assert.equal(client.core.lastAckedSeq, 0);
    client.send(text("d"));
    assert.equal(ws2.sentOf("Data").at(-1)!.seq, 3n);
    const errors = events(log, "error").map((e) => e[1]);
    assert.ok(errors.some((e) => e instanceof SessionLostError));
    assert.equal(client.getSession()?.id, "S2");
    assert.equal(client.getSession()?.resumed, false);
    // order: session_reset comes before the status change to connected
    const names = log.map((e) => e[0]);
    assert.ok(names.indexOf("session_reset") < names.lastIndexOf("connection"));
  });

  test("recovery_failed per topic, delivery continues after the reported head", async () => {
    const { client, clock, ws, log } = await connected({}, [0]);
    client.subscribe("room");
    ws.deliver({ type: "Subscribed", requestId: 1,
                 recovery: { topic: "room", status: RecoveryStatus.Fresh, position: { epoch: 5n, offset: 3n } } });
    ws.serverClose(1006);
    clock.fireNext();
    const ws2 = FakeWebSocket.last;
    ws2.accept();
    ws2.welcome({ resumed: true, recovery: [
      { topic: "$all", status: RecoveryStatus.Recovered, position: { epoch: 11n, offset: 0n } },
      { topic: "room", status: RecoveryStatus.Failed, position: { epoch: 5n, offset: 40n },
        lostFrom: 4n, lostTo: 40n },
    ] });
    assert.deepEqual(events(log, "recovery_failed").map((e) => e[1]), [
      { topic: "room", lostFrom: 4, lostTo: 40, position: { epoch: 5n, offset: 40n } },
    ]);
    assert.ok(events(log, "error").some((e) => e[1] instanceof RecoveryFailedError));
    ws2.deliver({ type: "Data", topic: "room", position: { epoch: 5n, offset: 40n }, payload: text("old") });
    ws2.deliver({ type: "Data", topic: "room", position: { epoch: 5n, offset: 41n }, payload: text("new") });
    assert.deepEqual(events(log, "message").map((e) => untext(e[1] as Uint8Array)), ["new"]);
  });
});

describe("subscriptions", () => {
  test("subscribe online: Subscribe with a request id; Subscribed -> event", async () => {
    const { client, ws, log } = await connected();
    client.subscribe("room");
    const [sub] = ws.sentOf("Subscribe");
    assert.deepEqual(sub, { type: "Subscribe", requestId: 1, topic: "room", position: null });
    ws.deliver({ type: "Subscribed", requestId: 1,
                 recovery: { topic: "room", status: RecoveryStatus.Fresh, position: { epoch: 5n, offset: 0n } } });
    assert.equal(events(log, "subscribed")[0]?.[1], "room");
    assert.deepEqual(client.core.positions.get("room"), { epoch: 5n, offset: 0n });
  });

  test("subscriptions asked offline or unconfirmed are re-requested after the Welcome", async () => {
    const { client, clock } = makeClient({}, [0]);
    client.subscribe("b-room");
    client.subscribe("a-room");
    const p = client.connect();
    let ws = FakeWebSocket.last;
    ws.accept();
    assert.equal(ws.sentOf("Subscribe").length, 0);
    ws.welcome();
    await p;
    assert.deepEqual(ws.sentOf("Subscribe").map((s) => [s.topic, s.requestId]),
                     [["a-room", 3], ["b-room", 4]]);
    // a-room confirmed (position known: it goes in Hello), b-room unanswered when the link drops
    ws.deliver({ type: "Subscribed", requestId: 3,
                 recovery: { topic: "a-room", status: RecoveryStatus.Fresh, position: { epoch: 1n, offset: 0n } } });
    ws.serverClose(1006);
    clock.fireNext();
    ws = FakeWebSocket.last;
    ws.accept();
    assert.ok(ws.sentOf("Hello")[0]!.positions.some((p) => p.topic === "a-room"));
    ws.welcome({ resumed: true });
    assert.deepEqual(ws.sentOf("Subscribe").map((s) => s.topic), ["b-room"]);
  });

  test("unsubscribe, Unsubscribed, refused subscribe, server-initiated subscribe", async () => {
    const { client, ws, log } = await connected();
    assert.throws(() => client.subscribe("$all"), LocalProtocolError);
    assert.throws(() => client.subscribe(""), LocalProtocolError);
    assert.throws(() => client.unsubscribe("nope"), LocalProtocolError);
    client.subscribe("r1");
    ws.deliver({ type: "Error", code: ErrorCode.TOO_MANY_TOPICS, message: "too many", requestId: 1 });
    assert.equal(client.core.subscriptions.has("r1"), false);
    const err = events(log, "error").map((e) => e[1]).find((e) => e instanceof ServerError) as ServerError;
    assert.equal(err.code, ErrorCode.TOO_MANY_TOPICS);
    ws.deliver({ type: "Subscribed", requestId: 0,
                 recovery: { topic: "pushed", status: RecoveryStatus.Fresh, position: { epoch: 3n, offset: 0n } } });
    assert.ok(client.core.subscriptions.has("pushed"));
    client.unsubscribe("pushed");
    assert.deepEqual(ws.sentOf("Unsubscribe")[0], { type: "Unsubscribe", requestId: 2, topic: "pushed" });
    // The position is kept until the server confirms (a resume in between must not replay it).
    assert.equal(client.core.positions.has("pushed"), true);
    ws.deliver({ type: "Data", topic: "pushed", position: { epoch: 3n, offset: 1n },
                 payload: text("late") });
    assert.equal(events(log, "message").length, 0, "nothing of a left room is delivered");
    ws.deliver({ type: "Unsubscribed", requestId: 2, topic: "pushed" });
    assert.equal(client.core.positions.has("pushed"), false);
    assert.deepEqual(events(log, "unsubscribed").map((e) => e[1]), ["pushed"]);
    // a Subscribed for a topic we no longer want (and not server-initiated) is ignored
    ws.deliver({ type: "Subscribed", requestId: 9,
                 recovery: { topic: "stale", status: RecoveryStatus.Fresh } });
    assert.equal(client.core.subscriptions.has("stale"), false);
  });
});

describe("heartbeats", () => {
  test("Ping is answered with a Pong echoing its timestamp", async () => {
    const { clock, ws } = await connected();
    clock.advance(5);
    ws.deliver({ type: "Ping", id: 7, timestampMs: 42n });
    assert.deepEqual(ws.sentOf("Pong")[0],
                     { type: "Pong", id: 7, echoTimestampMs: 42n, timestampMs: BigInt(WALL + 5) });
  });

  test("the client pings at the Welcome's interval and measures the RTT", async () => {
    const { client, clock } = makeClient({ heartbeatInterval: 1000, heartbeatTimeout: 3000 });
    const p = client.connect();
    const ws = FakeWebSocket.last;
    ws.accept();
    ws.welcome({ heartbeatIntervalMs: 400, heartbeatTimeoutMs: 5000 });
    await p;
    clock.advance(399);
    assert.equal(ws.sentOf("Ping").length, 0);
    clock.advance(1);
    const [ping] = ws.sentOf("Ping");
    assert.deepEqual(ping, { type: "Ping", id: 1, timestampMs: BigInt(WALL + 400) });
    clock.advance(30);
    ws.deliver({ type: "Pong", id: 1, echoTimestampMs: ping!.timestampMs, timestampMs: 0n });
    assert.equal(client.getRtt(), 30);
    clock.advance(400);
    assert.deepEqual(ws.sentOf("Ping").map((x) => x.id), [1, 2]);
  });

  test("silence for the heartbeat timeout closes with 4003 and reconnects", async () => {
    const { client, clock, log } = makeClient({}, [0.5]);
    const p = client.connect();
    const ws = FakeWebSocket.last;
    ws.accept();
    ws.welcome({ heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 2500 });
    await p;
    clock.advance(2000);
    ws.deliver({ type: "Ack", seq: 0n }); // any message proves the server alive
    clock.advance(2499);
    assert.equal(ws.closedWith, null);
    clock.advance(1);
    assert.equal(closeCode(ws), CloseCode.HEARTBEAT_TIMEOUT);
    assert.equal(ws.sentOf("Goodbye")[0]?.code, ErrorCode.HEARTBEAT_TIMEOUT);
    assert.equal(events(log, "disconnection")[0]?.[1], 4003);
    assert.deepEqual(events(log, "reconnecting")[0]?.[1], { attempt: 1, maxAttempts: 10, nextRetryIn: 500 });
    assert.equal(client.getStatus(), "reconnecting");
  });

  test("no Welcome within the handshake timeout: close 4002", async () => {
    const { client, clock, log } = makeClient({ handshakeTimeout: 3000 });
    void client.connect();
    const ws = FakeWebSocket.last;
    ws.accept();
    clock.advance(3000);
    assert.equal(ws.closedWith?.code, CloseCode.HELLO_TIMEOUT);
    assert.equal(ws.sentOf("Goodbye").length, 0);
    assert.equal(events(log, "disconnection")[0]?.[1], 4002);
  });

  test("a socket that does not open within connectTimeout is a failed attempt", async () => {
    const { client, clock, log } = makeClient({ connectTimeout: 2000 });
    void client.connect();
    clock.advance(2000);
    assert.notEqual(FakeWebSocket.instances[0]!.closedWith, null);
    assert.match(String(events(log, "disconnection")[0]?.[2]), /connect timed out/);
    assert.equal(client.getStatus(), "reconnecting");
  });
});

describe("reconnect", () => {
  test("backoff: full jitter from the injected random, doubling, capped", async () => {
    const randoms = [0.5, 0.25, 0.999, 0.1, 0.9, 0.5, 0.75, 0.3];
    const { client, clock, log } = makeClient({ maxReconnectAttempts: null }, randoms);
    void client.connect();
    const delays: number[] = [];
    for (let i = 0; i < randoms.length; i++) {
      FakeWebSocket.last.refuse();
      delays.push(clock.fireNext());
    }
    const ceilings = [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
    assert.deepEqual(delays, randoms.map((r, i) => r * ceilings[i]!));
    assert.deepEqual(events(log, "reconnecting").map((e) => e[1]),
                     randoms.map((r, i) => ({ attempt: i + 1, maxAttempts: null,
                                              nextRetryIn: r * ceilings[i]! })));
    assert.equal(FakeWebSocket.instances.length, randoms.length + 1);
    assert.match(String(events(log, "disconnection")[0]?.[2]), /ECONNREFUSED/);
  });

  test("gives up after maxReconnectAttempts: status error, connect() rejects", async () => {
    const { client, clock, log } = makeClient({ maxReconnectAttempts: 3 }, [0, 0, 0]);
    const p = client.connect();
    for (let i = 0; i < 3; i++) {
      FakeWebSocket.last.refuse();
      clock.fireNext();
    }
    FakeWebSocket.last.refuse();
    await assert.rejects(p, (e: unknown) => e instanceof ConnectionFailed
      && /gave up after 3 reconnect attempts/.test(e.message) && /ECONNREFUSED/.test(e.message));
    assert.equal(client.getStatus(), "error");
    assert.equal(FakeWebSocket.instances.length, 4);
    assert.equal(clock.nextAt, null);
    assert.ok(events(log, "error").some((e) => e[1] instanceof ConnectionFailed));
    assert.deepEqual(events(log, "connection").map((e) => e[1]),
                     ["connecting", "reconnecting", "error"]);
    // connect() again starts over
    const again = client.connect();
    FakeWebSocket.last.accept();
    FakeWebSocket.last.welcome();
    await again;
    assert.equal(client.getStatus(), "connected");
  });

  test("a Welcome resets the failure count", async () => {
    const { client, clock, log } = makeClient({ maxReconnectAttempts: 2 }, [0, 0, 0, 0]);
    void client.connect();
    FakeWebSocket.last.refuse();
    clock.fireNext();
    FakeWebSocket.last.refuse();
    clock.fireNext();
    FakeWebSocket.last.accept();
    FakeWebSocket.last.welcome();
    FakeWebSocket.last.serverClose(1006);
    assert.equal(client.getStatus(), "reconnecting");
    assert.deepEqual(events(log, "reconnecting").map((e) => (e[1] as { attempt: number }).attempt),
                     [1, 2, 1]);
  });

  test("a Goodbye's reconnect hint is a floor under the jittered delay", async () => {
    const { client, clock, ws, log } = await connected({}, [0.5, 0.5]);
    ws.deliver({ type: "Goodbye", code: ErrorCode.SHUTTING_DOWN, reason: "bye", reconnectAfterMs: 5000 });
    assert.equal(client.getStatus(), "connected", "Goodbye alone closes nothing");
    ws.serverClose(1001, "going away");
    assert.deepEqual(events(log, "disconnection")[0], ["disconnection", 1001, "going away"]);
    assert.deepEqual(events(log, "reconnecting")[0]?.[1], { attempt: 1, maxAttempts: 10, nextRetryIn: 5500 });
    clock.advance(5499);
    assert.equal(FakeWebSocket.instances.length, 1);
    clock.advance(1);
    assert.equal(FakeWebSocket.instances.length, 2);
    // the floor stays until the next Welcome
    FakeWebSocket.last.refuse();
    assert.equal((events(log, "reconnecting")[1]?.[1] as { nextRetryIn: number }).nextRetryIn, 6000);
  });

  for (const [name, code] of [["AUTH_FAILED", ErrorCode.AUTH_FAILED],
                              ["UNSUPPORTED_VERSION", ErrorCode.UNSUPPORTED_VERSION]] as const) {
    test(`a ${name} Goodbye is fatal: no reconnect`, async () => {
      const { client, clock, log } = makeClient();
      const p = client.connect();
      const ws = FakeWebSocket.last;
      ws.accept();
      ws.deliver({ type: "Goodbye", code, reason: "refused: " + name });
      ws.serverClose(code === ErrorCode.AUTH_FAILED ? 4005 : 4004, "refused");
      await assert.rejects(p, (e: unknown) => e instanceof ConnectionFailed && e.message.includes(name));
      assert.equal(client.getStatus(), "error");
      assert.equal(events(log, "reconnecting").length, 0);
      assert.equal(clock.nextAt, null);
    });
  }

  test("a stale socket's late reports are ignored", async () => {
    const { client, clock, ws, log } = await connected({}, [0]);
    ws.serverClose(1006);
    clock.fireNext();
    const ws2 = FakeWebSocket.last;
    ws.deliver({ type: "Data", topic: "$all", position: { epoch: 11n, offset: 1n }, payload: text("late") });
    ws.serverClose(1000);
    assert.equal(events(log, "message").length, 0);
    ws2.accept();
    ws2.welcome({ resumed: true });
    assert.equal(client.getStatus(), "connected");
  });
});

describe("disconnect", () => {
  test("Goodbye NORMAL + close 1000; the session is forgotten; no reconnect", async () => {
    const { client, clock, ws, log } = await connected();
    client.send(text("unacked"));
    client.disconnect();
    assert.deepEqual(ws.sentOf("Goodbye")[0], { type: "Goodbye", code: ErrorCode.NORMAL,
                                                reason: "client disconnect", reconnectAfterMs: 0 });
    assert.deepEqual(ws.closedWith, { code: 1000, reason: "client disconnect" });
    assert.equal(client.getStatus(), "disconnected");
    assert.equal(client.getSession(), null);
    ws.serverClose(1000);
    assert.equal(events(log, "reconnecting").length, 0);
    assert.equal(clock.nextAt, null);
    // connect() again: a fresh session (no id, no token, no positions); pending was dropped
    const p = client.connect();
    FakeWebSocket.last.accept();
    const hello = FakeWebSocket.last.sentOf("Hello")[0]!;
    assert.equal(hello.sessionId, "");
    assert.deepEqual(hello.positions, []);
    FakeWebSocket.last.welcome({ sessionId: "S3" });
    await p;
    assert.equal(FakeWebSocket.last.sentOf("Data").length, 0);
    assert.equal(events(log, "session_reset").length, 0);
  });

  test("disconnect() while connecting rejects connect()", async () => {
    const { client } = makeClient();
    const p = client.connect();
    client.disconnect();
    await assert.rejects(p, ConnectionFailed);
    assert.notEqual(FakeWebSocket.last.closedWith, null);
  });
});

describe("protocol errors", () => {
  test("a malformed envelope closes with 4000 and a Goodbye(BAD_ENVELOPE)", async () => {
    const { ws, log } = await connected();
    ws.deliverRaw(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]).buffer);
    assert.equal(ws.closedWith?.code, CloseCode.BAD_ENVELOPE);
    assert.equal(ws.sentOf("Goodbye")[0]?.code, ErrorCode.BAD_ENVELOPE);
    assert.equal(events(log, "disconnection")[0]?.[1], 4000);
  });

  test("a text message closes with 1003", async () => {
    const { ws } = await connected();
    ws.deliverRaw("hello");
    assert.equal(ws.closedWith?.code, CloseCode.UNSUPPORTED_DATA);
  });

  test("an unknown message type is ignored", async () => {
    const { client, ws } = await connected();
    const bytes = (await import("../../src/codec.js")).encode({ type: "Goodbye", code: 1 }).slice();
    // body_type is the Envelope's u8 field: patch it to an unknown union member
    const root = new DataView(bytes.buffer).getUint32(0, true);
    const vt = root - new DataView(bytes.buffer).getInt32(root, true);
    const typeOffset = new DataView(bytes.buffer).getUint16(vt + 4, true);
    bytes[root + typeOffset] = 99;
    ws.deliverRaw(bytes.buffer);
    assert.equal(ws.closedWith, null);
    assert.equal(client.core.unknownMessages, 1);
  });

  test("an unexpected message closes with 4001 (before and after the Welcome)", async () => {
    const { ws } = await connected();
    ws.deliver({ type: "Hello" });
    assert.equal(ws.closedWith?.code, CloseCode.UNEXPECTED_MESSAGE);
    const made = makeClient();
    void made.client.connect();
    FakeWebSocket.last.accept();
    FakeWebSocket.last.deliver({ type: "Data", topic: "x", position: { epoch: 1n, offset: 1n } });
    assert.equal(FakeWebSocket.last.closedWith?.code, CloseCode.UNEXPECTED_MESSAGE);
  });
});

describe("events", () => {
  test("off() removes a listener; a throwing listener reports to 'error'", async () => {
    const { client } = makeClient();
    const seen: string[] = [];
    const errors: Error[] = [];
    const listener = (s: string) => { seen.push(s); };
    client.on("connection", listener);
    client.on("connection", () => { throw new Error("boom"); });
    client.on("error", (e) => { errors.push(e); });
    const p = client.connect();
    client.off("connection", listener);
    FakeWebSocket.last.accept();
    FakeWebSocket.last.welcome();
    await p;
    assert.deepEqual(seen, ["connecting"]);
    assert.deepEqual(errors.map((e) => e.message), ["boom", "boom"]);
  });

  test("a listener may call commands re-entrantly", async () => {
    const { client } = makeClient();
    client.on("connection", (status) => {
      if (status === "connected") client.send(text("from listener"));
    });
    const p = client.connect();
    FakeWebSocket.last.accept();
    FakeWebSocket.last.welcome();
    await p;
    assert.deepEqual(FakeWebSocket.last.sentOf("Data").map((d) => untext(d.payload)), ["from listener"]);
  });
});
