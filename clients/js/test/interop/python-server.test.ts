/**
 * The TypeScript client against the real Python server (sigma_asyncio.SigmaSocketServer, run
 * by test/python_server.py), over real sockets with the `ws` package as the WebSocket.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import WebSocket from "ws";

import { SigmaSocketClient, type SigmaSocketClientOptions } from "../../src/client.js";
import type { SigmaSocketClientEvents } from "../../src/client.js";
import { startServer, type PythonServer } from "../helpers/python.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

interface Received { data: string; id: number; topic: string }

/** A client on the real WebSocket with a short, deterministic backoff, and its event log. */
function makeClient(port: number, extra: Partial<SigmaSocketClientOptions> = {}) {
  const client = new SigmaSocketClient({
    url: `ws://127.0.0.1:${port}/`,
    WebSocket,
    reconnectInterval: 100,
    maxReconnectInterval: 400,
    maxReconnectAttempts: 50,
    random: () => 0.5,
    ...extra,
  });
  const messages: Received[] = [];
  const log: [string, ...unknown[]][] = [];
  client.on("message", (data, id, _ts, topic) => { messages.push({ data: dec(data as Uint8Array), id, topic }); });
  for (const name of ["connection", "reconnecting", "error", "recovery_failed", "session_reset",
                      "disconnection", "subscribed", "unsubscribed", "presence"] as const) {
    client.on(name, ((...args: unknown[]) => { log.push([name, ...args]); }) as never);
  }
  const of = (name: string) => log.filter((e) => e[0] === name);
  return { client, messages, log, of };
}

/** Resolve when `check()` holds (polled), or fail after `timeoutMs`. */
async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function once<E extends keyof SigmaSocketClientEvents>(
  client: SigmaSocketClient, event: E, timeoutMs = 5000,
): Promise<Parameters<SigmaSocketClientEvents[E]>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), timeoutMs);
    const listener = ((...args: Parameters<SigmaSocketClientEvents[E]>) => {
      clearTimeout(timer);
      client.off(event, listener);
      resolve(args);
    }) as SigmaSocketClientEvents[E];
    client.on(event, listener);
  });
}

/** The server's record of what this session delivered to the app ("stats" command). */
async function serverReceived(c: ReturnType<typeof makeClient>): Promise<string[]> {
  const before = c.messages.length;
  c.client.send(enc(""), "stats");
  await until(() => c.messages.slice(before).some((m) => m.data.startsWith('{"received"')),
              "the stats reply");
  const reply = c.messages.slice(before).find((m) => m.data.startsWith('{"received"'))!;
  c.messages.splice(c.messages.indexOf(reply), 1);
  return (JSON.parse(reply.data) as { received: string[] }).received.filter((p) => p !== "");
}

describe("interop with the Python server", () => {
  let server: PythonServer;
  const clients: SigmaSocketClient[] = [];
  const track = <T extends ReturnType<typeof makeClient>>(c: T): T => {
    clients.push(c.client);
    return c;
  };

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await server?.kill();
  });

  test("connect, send and receive (echo)", async () => {
    const a = track(makeClient(server.port));
    await a.client.connect();
    assert.equal(a.client.getStatus(), "connected");
    const session = a.client.getSession();
    assert.match(session?.id ?? "", /^[0-9a-f]{24}$/);
    assert.equal(session?.resumed, false);
    a.client.send(enc("hello"));
    a.client.send(enc("world"), "echo");
    await until(() => a.messages.length === 2, "two echoes");
    assert.deepEqual(a.messages.map((m) => [m.data, m.topic, m.id]),
                     [["hello", "$inbox", 1], ["world", "$inbox", 2]]);
    await until(() => a.client.getSession()?.pending === 0, "the acks");
    assert.deepEqual(await serverReceived(a), ["hello", "world"]);
  });

  test("inbox acks: the server lets go of the replies the client acknowledged", async () => {
    const held = async (c: ReturnType<typeof makeClient>): Promise<number> => {
      const before = c.messages.length;
      c.client.send(enc(""), "inbox-held");
      await until(() => c.messages.slice(before).some((m) => m.data.startsWith('{"held"')),
                  "the inbox-held reply");
      const reply = c.messages.slice(before).find((m) => m.data.startsWith('{"held"'))!;
      return (JSON.parse(reply.data) as { held: number }).held;
    };
    const acking = track(makeClient(server.port, { inboxAckDelay: 50 }));
    const silent = track(makeClient(server.port, { inboxAckEvery: 0 }));
    await Promise.all([acking.client.connect(), silent.client.connect()]);
    for (const c of [acking, silent]) {
      for (const word of ["a", "b", "c"]) c.client.send(enc(word), "echo");
      await until(() => c.messages.length === 3, "three echoes");
    }
    await new Promise((r) => setTimeout(r, 300)); // past inboxAckDelay
    assert.equal(await held(acking), 0);
    assert.equal(await held(silent), 3); // kept until the history limits drop them
  });

  test("subscribe, publish to the room, presence", async () => {
    const a = track(makeClient(server.port));
    const b = track(makeClient(server.port));
    await Promise.all([a.client.connect(), b.client.connect()]);
    a.client.subscribe("room-1");
    const [topic] = await once(a.client, "subscribed");
    assert.equal(topic, "room-1");
    b.client.subscribe("room-1");
    await once(b.client, "subscribed");
    await until(() => a.of("presence").length > 0, "presence");
    assert.deepEqual(a.of("presence")[0]?.[1], {
      topic: "room-1", action: "join", sessionId: b.client.getSession()!.id, metadata: {},
    });
    b.client.send(enc("to the room"), "publish:room-1");
    await until(() => a.messages.length === 1 && b.messages.length === 1, "the publication");
    assert.deepEqual(a.messages[0], { data: "to the room", id: 1, topic: "room-1" });
    assert.deepEqual(b.messages[0], { data: "to the room", id: 1, topic: "room-1" });
    a.client.unsubscribe("room-1");
    await once(a.client, "unsubscribed");
    b.client.send(enc("after"), "publish:room-1");
    await until(() => b.messages.length === 2, "the second publication");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(a.messages.length, 1);
  });

  test("a dropped connection resumes with no loss and no duplicates, both ways", async () => {
    const a = track(makeClient(server.port, { reconnectInterval: 300, random: () => 0.99 }));
    const b = track(makeClient(server.port));
    await Promise.all([a.client.connect(), b.client.connect()]);
    a.client.subscribe("room-2");
    await once(a.client, "subscribed");
    for (let i = 1; i <= 5; i++) a.client.send(enc(`a${i}`));
    for (let i = 1; i <= 3; i++) b.client.send(enc(`r${i}`), "publish:room-2");
    await until(() => a.messages.length === 8, "echoes and publications before the cut");
    const sessionId = a.client.getSession()!.id;

    const lost = once(a.client, "disconnection");
    a.client.send(enc(""), "drop"); // the server aborts the socket: no close frame
    const [code] = await lost;
    assert.equal(code, 1006);
    assert.equal(a.client.getStatus(), "reconnecting");
    // while A is away: the room goes on, and A keeps sending (queued)
    for (let i = 4; i <= 6; i++) b.client.send(enc(`r${i}`), "publish:room-2");
    for (let i = 6; i <= 8; i++) assert.equal(a.client.send(enc(`a${i}`)), true);
    await until(() => a.client.getStatus() === "connected", "the resume");
    assert.equal(a.client.getSession()?.id, sessionId);
    assert.equal(a.client.getSession()?.resumed, true);

    await until(() => a.messages.length === 14, "replay and live messages after the resume");
    const room = a.messages.filter((m) => m.topic === "room-2");
    const inbox = a.messages.filter((m) => m.topic === "$inbox");
    assert.deepEqual(room.map((m) => m.data), ["r1", "r2", "r3", "r4", "r5", "r6"]);
    assert.deepEqual(room.map((m) => m.id), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(inbox.map((m) => m.data), ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"]);
    assert.deepEqual(await serverReceived(a), ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"]);
    assert.equal(a.of("session_reset").length, 0);
    assert.equal(a.of("recovery_failed").length, 0);
  });

  test("graceful server restart: the Goodbye's hint is honoured and the session resumes", async () => {
    const a = track(makeClient(server.port, { reconnectInterval: 100 }));
    await a.client.connect();
    a.client.send(enc("before"));
    await until(() => a.messages.length === 1, "echo");
    a.client.send(enc(""), "restart:300");
    const [info] = await once(a.client, "reconnecting");
    // shutdown_reconnect_after = 0.2 s is a floor under the jittered delay (0.5 * 100 ms)
    assert.equal(info.nextRetryIn, 250);
    const closes = a.of("disconnection");
    assert.equal(closes.at(-1)?.[1], 1001);
    await until(() => a.client.getStatus() === "connected", "the resume", 8000);
    assert.equal(a.client.getSession()?.resumed, true);
    a.client.send(enc("after"));
    await until(() => a.messages.length === 2, "echo after the restart");
    assert.deepEqual(a.messages.map((m) => m.data), ["before", "after"]);
    assert.equal(a.of("session_reset").length, 0);
  });

  test("disconnect_client ends the session: the client stays away", async () => {
    const a = track(makeClient(server.port));
    await a.client.connect();
    a.client.send(enc(""), "kick");
    const [code] = await once(a.client, "disconnection");
    assert.equal(code, 1000);
    await until(() => a.client.getStatus() === "disconnected", "status disconnected");
    assert.equal(a.client.getSession(), null);
    assert.equal(a.of("session_reset").length, 0);
    assert.equal(a.of("reconnecting").length, 0);
  });

  test("server killed and restarted on the same port: session_reset, recovery_failed, go on", async () => {
    const a = track(makeClient(server.port));
    await a.client.connect();
    a.client.subscribe("room-3");
    await once(a.client, "subscribed");
    a.client.send(enc("one"));
    await until(() => a.messages.length === 1 && a.client.getSession()?.pending === 0,
                "echo and ack");
    const oldSession = a.client.getSession()!.id;
    const port = server.port;

    await server.kill("SIGKILL");
    await until(() => a.client.getStatus() === "reconnecting", "the loss");
    // sent while the server is down: kept, then resent under the new session
    a.client.send(enc("two"));
    server = await startServer(["--port", String(port)]);

    await until(() => a.client.getStatus() === "connected", "the reconnect", 10000);
    const resets = a.of("session_reset");
    assert.equal(resets.length, 1);
    assert.deepEqual(resets[0]?.[1], {
      oldSessionId: oldSession, newSessionId: a.client.getSession()!.id,
      reason: (resets[0]?.[1] as { reason: string }).reason, resent: 1,
    });
    assert.match((resets[0]?.[1] as { reason: string }).reason, /could not be resumed/);
    const failed = a.of("recovery_failed").map((e) => (e[1] as { topic: string }).topic).sort();
    assert.deepEqual(failed, ["$all", "$inbox", "room-3"]);
    // messaging continues: the unacked message was resent, the room still works
    await until(() => a.messages.some((m) => m.data === "two"), "the resent message's echo");
    const b = track(makeClient(server.port));
    await b.client.connect();
    b.client.send(enc("room after restart"), "publish:room-3");
    await until(() => a.messages.some((m) => m.topic === "room-3"), "the room publication");
    assert.deepEqual(a.messages.find((m) => m.topic === "room-3"),
                     { data: "room after restart", id: 1, topic: "room-3" });
    assert.deepEqual(await serverReceived(a), ["two"]);
  });

  test("connection refused until give-up: connect() rejects with the last error", async () => {
    const dead = await startServer();
    const port = dead.port;
    await dead.kill();
    const a = track(makeClient(port, { maxReconnectAttempts: 2, reconnectInterval: 20 }));
    await assert.rejects(a.client.connect(), /gave up after 2 reconnect attempts.*ECONNREFUSED/);
    assert.equal(a.client.getStatus(), "error");
  });
});
