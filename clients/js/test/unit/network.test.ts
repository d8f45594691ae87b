/**
 * Browser offline detection with fakes: a NetworkMonitor the test flips, a FakeWebSocket, a
 * manual clock. Offline while connected -> a Ping probe, the connection is given up after
 * probeTimeout without an answer (not after the 70 s heartbeat timeout); an answer keeps it;
 * back online while waiting to reconnect -> reconnect at once, skipping the backoff.
 */

import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { browserNetwork, type NetworkMonitor } from "../../src/client.js";
import { CloseCode } from "../../src/errors.js";
import { FakeWebSocket, makeClient } from "../helpers/fake.js";

class FakeNetwork implements NetworkMonitor {
  listeners: ((online: boolean) => void)[] = [];
  subscribe(onChange: (online: boolean) => void): () => void {
    this.listeners.push(onChange);
    return () => { this.listeners = this.listeners.filter((l) => l !== onChange); };
  }
  set(online: boolean): void {
    for (const l of [...this.listeners]) l(online);
  }
}

async function connectedWith(network: FakeNetwork, extra = {}) {
  const made = makeClient({ network, heartbeatInterval: 30000, heartbeatTimeout: 70000, ...extra },
                          [0.9, 0.9, 0.9]);
  const p = made.client.connect();
  const ws = FakeWebSocket.last;
  ws.accept();
  ws.welcome({ heartbeatIntervalMs: 30000, heartbeatTimeoutMs: 70000 });
  await p;
  return { ...made, ws };
}

beforeEach(() => FakeWebSocket.reset());

describe("network changes", () => {
  test("offline while connected: a Ping probe, then close 4003 after probeTimeout", async () => {
    const network = new FakeNetwork();
    const { client, clock, ws, log } = await connectedWith(network);
    clock.advance(1000);
    network.set(false);
    assert.equal(ws.sentOf("Ping").length, 1);
    clock.advance(2999);
    assert.equal(client.getStatus(), "connected");
    clock.advance(1);
    assert.equal(ws.closedWith?.code, CloseCode.HEARTBEAT_TIMEOUT);
    assert.equal(client.getStatus(), "reconnecting");
    const disconnection = log.find((e) => e[0] === "disconnection");
    assert.match(String(disconnection?.[2]), /network went offline/);
  });

  test("an answer to the probe keeps the connection", async () => {
    const network = new FakeNetwork();
    const { client, clock, ws } = await connectedWith(network, { probeTimeout: 500 });
    network.set(false);
    clock.advance(100);
    const ping = ws.sentOf("Ping")[0]!;
    ws.deliver({ type: "Pong", id: ping.id, echoTimestampMs: ping.timestampMs, timestampMs: 0n });
    clock.advance(10000);
    assert.equal(ws.closedWith, null);
    assert.equal(client.getStatus(), "connected");
  });

  test("back online while waiting to reconnect: the attempt starts now", async () => {
    const network = new FakeNetwork();
    const { client, clock, ws } = await connectedWith(network);
    ws.serverClose(1006);
    assert.equal(client.getStatus(), "reconnecting");
    assert.equal(FakeWebSocket.instances.length, 1);
    const due = clock.nextAt! - clock.now;
    assert.ok(due >= 800, `the backoff (${due} ms) would have made the user wait`);
    network.set(true);
    assert.equal(FakeWebSocket.instances.length, 2);
    assert.equal(client.getStatus(), "reconnecting");
    FakeWebSocket.last.accept();
    FakeWebSocket.last.welcome({ resumed: true });
    assert.equal(client.getStatus(), "connected");
  });

  test("disconnect() stops listening; without a monitor nothing changes (Node)", async () => {
    const network = new FakeNetwork();
    const { client } = await connectedWith(network);
    assert.equal(network.listeners.length, 1);
    client.disconnect();
    assert.equal(network.listeners.length, 0);
    assert.equal(browserNetwork(), null); // Node: no window events, no navigator.onLine
  });

  test("browserNetwork() listens to the global online/offline events", () => {
    const g = globalThis as unknown as Record<string, unknown>;
    const target = new EventTarget();
    const saved = { add: g.addEventListener, remove: g.removeEventListener,
                    nav: Object.getOwnPropertyDescriptor(globalThis, "navigator") };
    g.addEventListener = target.addEventListener.bind(target);
    g.removeEventListener = target.removeEventListener.bind(target);
    Object.defineProperty(globalThis, "navigator", { value: { onLine: true }, configurable: true });
    try {
      const monitor = browserNetwork();
      assert.notEqual(monitor, null);
      const seen: boolean[] = [];
      const stop = monitor!.subscribe((online) => seen.push(online));
      target.dispatchEvent(new Event("offline"));
      target.dispatchEvent(new Event("online"));
      stop();
      target.dispatchEvent(new Event("offline"));
      assert.deepEqual(seen, [false, true]);
    } finally {
      g.addEventListener = saved.add;
      g.removeEventListener = saved.remove;
      if (saved.nav) Object.defineProperty(globalThis, "navigator", saved.nav);
      else delete g.navigator;
    }
  });
});
