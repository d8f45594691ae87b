/** The codec: round trips of every message, the documented bytes, and malformed input. */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as flatbuffers from "flatbuffers";

import { decode, encode } from "../../src/codec.js";
import { DecodeError, LocalProtocolError, UnknownMessageType } from "../../src/errors.js";
import * as w from "../../src/generated/sigma-core/wire.js";
import { RecoveryStatus, type Body } from "../../src/messages.js";
import { FULL, MINIMAL } from "../helpers/samples.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** A seeded generator (mulberry32), so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** decode() either succeeds or throws DecodeError: nothing else, ever. */
function decodeOrDecodeError(buf: Uint8Array): Body | DecodeError {
  try {
    return decode(buf);
  } catch (exc) {
    assert.ok(exc instanceof DecodeError, `decode threw ${String(exc)} for ${hex(buf)}`);
    return exc;
  }
}

/** Finish a hand-built body in an envelope. */
function envelope(build: (b: flatbuffers.Builder) => number, type: number): Uint8Array {
  const b = new flatbuffers.Builder(64);
  const body = build(b);
  w.Envelope.startEnvelope(b);
  w.Envelope.addBody(b, body);
  w.Envelope.addBodyType(b, type);
  w.Envelope.finishEnvelopeBuffer(b, w.Envelope.endEnvelope(b));
  return b.asUint8Array().slice();
}

describe("round trip", () => {
  for (const body of FULL) {
    test(`${body.type}: every field`, () => {
      const bytes = encode(body);
      assert.equal(String.fromCharCode(...bytes.subarray(4, 8)), "SGM1");
      assert.deepEqual(decode(bytes), body);
      assert.deepEqual(decode(bytes.slice().buffer), body, "an ArrayBuffer decodes too");
    });
  }

  for (const [init, decoded] of MINIMAL) {
    test(`${init.type}: defaults`, () => {
      assert.deepEqual(decode(encode(init)), decoded);
    });
  }

  test("a metadata key named __proto__ is kept as a key, not taken for the prototype", () => {
    // Found by tests/test_codec_crosscheck.py: Python kept the key, TypeScript lost it.
    const metadata = JSON.parse('{"__proto__": "x", "a": "b"}') as Record<string, string>;
    const got = decode(encode({ type: "Presence", topic: "t", sessionId: "s", metadata }));
    assert.equal(got.type, "Presence");
    if (got.type !== "Presence") return;
    assert.deepEqual(Object.entries(got.metadata), [["__proto__", "x"], ["a", "b"]]);
    assert.equal(Object.getPrototypeOf(got.metadata), Object.prototype);
  });

  test("the 15 message types are all covered", () => {
    assert.equal(new Set(FULL.map((b) => b.type)).size, 15);
    assert.equal(new Set(MINIMAL.map(([b]) => b.type)).size, 15);
  });

  test("a Data envelope has exactly the bytes docs/protocol.md §3.3 shows (and Python writes)", () => {
    const bytes = encode({ type: "Data", topic: "chat", position: { epoch: 7n, offset: 1n },
                           timestampMs: 1700000000000n, payload: new TextEncoder().encode("hi") });
    assert.equal(hex(bytes),
      "1000000053474d3108000e000700080008000000000000031400000000000e0028000400140000000c00"
      + "08000e000000240000002c0000000068e5cf8b01000007000000000000000100000000000000000000"
      + "000400000063686174000000000200000068690000");
    assert.equal(bytes.length, 104);
  });

  test("decoded Data.payload is a view into the buffer (no copy)", () => {
    const bytes = encode({ type: "Data", payload: new Uint8Array([1, 2, 3]) });
    const body = decode(bytes);
    assert.equal(body.type, "Data");
    if (body.type === "Data") assert.equal(body.payload.buffer, bytes.buffer);
  });
});

describe("encode refuses what the schema cannot carry", () => {
  const cases: [string, () => unknown][] = [
    ["u64 negative", () => encode({ type: "Ack", seq: -1n })],
    ["u64 too big", () => encode({ type: "Ack", seq: 1n << 64n })],
    ["u32 too big", () => encode({ type: "Ping", id: 2 ** 32 })],
    ["u16 too big", () => encode({ type: "Goodbye", code: 65536 })],
    ["not an integer", () => encode({ type: "Ping", id: 1.5 })],
    ["lone surrogate", () => encode({ type: "Data", topic: "\ud800" })],
    ["unknown enum", () => encode({ type: "Presence", topic: "t", sessionId: "s", action: 7 as 0 })],
    ["missing required", () => encode({ type: "Subscribe" } as never)],
    ["unknown type", () => encode({ type: "Nope" } as never)],
  ];
  for (const [name, fn] of cases) {
    test(name, () => assert.throws(fn, LocalProtocolError));
  }
});

describe("decode rejects malformed input with DecodeError", () => {
  test("too short, wrong identifier, empty", () => {
    assert.throws(() => decode(new Uint8Array(0)), DecodeError);
    assert.throws(() => decode(new Uint8Array(7)), DecodeError);
    const bytes = encode({ type: "Ping", id: 1 }).slice();
    bytes[4] = "X".charCodeAt(0);
    assert.throws(() => decode(bytes), /file identifier/);
  });

  test("an envelope without a body", () => {
    const b = new flatbuffers.Builder(16);
    w.Envelope.startEnvelope(b);
    w.Envelope.finishEnvelopeBuffer(b, w.Envelope.endEnvelope(b));
    assert.throws(() => decode(b.asUint8Array()), /no body/);
  });

  test("a missing required field", () => {
    const welcome = envelope((b) => {
      // (the generated endWelcome() refuses this: build the table by hand)
      const token = b.createByteVector(new Uint8Array([1]));
      b.startObject(10);
      b.addFieldOffset(1, token, 0);
      return b.endObject();
    }, w.Body.Welcome);
    assert.throws(() => decode(welcome), /missing required field Welcome.session_id/);
    const subscribed = envelope((b) => {
      b.startObject(2);
      b.addFieldInt32(0, 1, 0);
      return b.endObject();
    }, w.Body.Subscribed);
    assert.throws(() => decode(subscribed), /missing required field Subscribed.recovery/);
  });

  test("invalid UTF-8 in a string", () => {
    const bytes = encode({ type: "Data", topic: "abc" }).slice();
    const at = Buffer.from(bytes).indexOf("abc");
    bytes[at] = 0xff;
    assert.throws(() => decode(bytes), /invalid UTF-8/);
  });

  test("a string that is not NUL-terminated", () => {
    const bytes = encode({ type: "Unsubscribe", topic: "abc" }).slice();
    const at = Buffer.from(bytes).indexOf("abc");
    bytes[at + 3] = 0x41;
    assert.throws(() => decode(bytes), /NUL/);
  });

  test("a vector longer than the buffer", () => {
    const bytes = encode({ type: "Data", payload: new Uint8Array([7, 7, 7]) }).slice();
    const view = new DataView(bytes.buffer);
    const at = Buffer.from(bytes).indexOf(Buffer.from([3, 0, 0, 0, 7, 7, 7]));
    view.setUint32(at, 1000, true);
    assert.throws(() => decode(bytes), /runs past the buffer/);
  });

  test("every truncation of every message", () => {
    for (const body of FULL) {
      const bytes = encode(body);
      for (let n = 0; n < bytes.length; n++) decodeOrDecodeError(bytes.slice(0, n));
    }
  });

  test("random byte corruption (seeded) never throws anything but DecodeError", () => {
    const random = rng(20240601);
    let rejected = 0;
    for (let round = 0; round < 3000; round++) {
      const body = FULL[round % FULL.length]!;
      const bytes = encode(body).slice();
      const flips = 1 + Math.floor(random() * 4);
      for (let i = 0; i < flips; i++) {
        bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      }
      if (decodeOrDecodeError(bytes) instanceof DecodeError) rejected++;
    }
    assert.ok(rejected > 100, `only ${rejected} corrupted buffers rejected`);
  });

  test("random garbage with a valid identifier", () => {
    const random = rng(7);
    for (let round = 0; round < 2000; round++) {
      const bytes = new Uint8Array(8 + Math.floor(random() * 120));
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
      bytes.set([0x53, 0x47, 0x4d, 0x31], 4);
      if (round % 2) new DataView(bytes.buffer).setUint32(0, 8 + (round % 40), true);
      decodeOrDecodeError(bytes);
    }
  });
});

describe("evolution rules", () => {
  test("an unknown union member is UnknownMessageType (a DecodeError subclass)", () => {
    const bytes = envelope((b) => {
      w.Ping.startPing(b);
      return w.Ping.endPing(b);
    }, 42);
    assert.throws(() => decode(bytes), (e: unknown) => e instanceof UnknownMessageType
      && e instanceof DecodeError && e.bodyType === 42);
  });

  test("an unknown RecoveryStatus reads as Failed", () => {
    const bytes = envelope((b) => {
      const topic = b.createString("t");
      w.TopicRecovery.startTopicRecovery(b);
      w.TopicRecovery.addTopic(b, topic);
      w.TopicRecovery.addStatus(b, 9 as w.RecoveryStatus);
      const recovery = w.TopicRecovery.endTopicRecovery(b);
      w.Subscribed.startSubscribed(b);
      w.Subscribed.addRecovery(b, recovery);
      return w.Subscribed.endSubscribed(b);
    }, w.Body.Subscribed);
    const body = decode(bytes);
    assert.equal(body.type === "Subscribed" && body.recovery.status, RecoveryStatus.Failed);
  });

  test("a Presence with an unknown action is an unknown message (ignored, not misread)", () => {
    const bytes = envelope((b) => {
      const topic = b.createString("t");
      const session = b.createString("s");
      w.Presence.startPresence(b);
      w.Presence.addTopic(b, topic);
      w.Presence.addSessionId(b, session);
      w.Presence.addAction(b, 5 as w.PresenceAction);
      return w.Presence.endPresence(b);
    }, w.Body.Presence);
    assert.throws(() => decode(bytes), UnknownMessageType);
  });

  test("fields beyond an older writer's vtable read as defaults; unknown fields are ignored", () => {
    // An older Goodbye writer (code only) and a newer one (an extra field 3).
    const old = envelope((b) => {
      b.startObject(1);
      b.addFieldInt16(0, 6, 0);
      return b.endObject();
    }, w.Body.Goodbye);
    assert.deepEqual(decode(old), { type: "Goodbye", code: 6, reason: "", reconnectAfterMs: 0 });
    const newer = envelope((b) => {
      b.startObject(4);
      b.addFieldInt16(0, 6, 0);
      b.addFieldInt32(2, 100, 0);
      b.addFieldInt32(3, 12345, 0);
      return b.endObject();
    }, w.Body.Goodbye);
    assert.deepEqual(decode(newer), { type: "Goodbye", code: 6, reason: "", reconnectAfterMs: 100 });
  });
});
