/** Payload serializers: the same names and behaviour as sigma_core.serializers (Python). */

import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { describe, test } from "node:test";

import { LocalProtocolError } from "../../src/errors.js";
import { MSGPACK } from "../../src/msgpack.js";
import {
  JSON_SERIALIZER,
  RAW,
  checkSerializerName,
  encodePayload,
  type Serializer,
} from "../../src/serializers.js";

const utf8 = new TextEncoder();

describe("serializers", () => {
  test("JSON and MessagePack round-trip values", () => {
    const value = { text: "héllo", n: 3, ok: true, none: null, list: [1, 2.5, "x"] };
    for (const s of [JSON_SERIALIZER, MSGPACK]) {
      assert.deepEqual(s.decode(s.encode(value)), value);
    }
    const blob = new Uint8Array([0, 255]);
    assert.deepEqual(MSGPACK.decode(MSGPACK.encode({ blob })), { blob });
  });

  test("JSON bytes are what Python's JSON serializer writes (compact UTF-8)", () => {
    // Python: json.dumps({"a":[1,"é"]}, separators=(",", ":"), ensure_ascii=False)
    assert.deepEqual(JSON_SERIALIZER.encode({ a: [1, "é"] }), utf8.encode('{"a":[1,"é"]}'));
  });

  test("raw passes bytes through and refuses other values", () => {
    const data = new Uint8Array([1, 2]);
    assert.equal(encodePayload(RAW, data), data);
    assert.throws(() => encodePayload(RAW, "text"), LocalProtocolError);
    assert.throws(() => encodePayload(JSON_SERIALIZER, undefined), /json serializer/);
  });

  test("a bad payload throws from decode (the client reports it per message)", () => {
    assert.throws(() => JSON_SERIALIZER.decode(new Uint8Array([0xff])));
    assert.throws(() => JSON_SERIALIZER.decode(utf8.encode("{broken")));
  });

  test("names are checked like Python's check_name", () => {
    assert.equal(checkSerializerName("protobuf.chat-v2"), "protobuf.chat-v2");
    for (const bad of ["", "JSON", "a".repeat(33), "with space", "-lead"]) {
      assert.throws(() => checkSerializerName(bad), TypeError);
    }
    const own: Serializer = { name: "text", encode: (v) => utf8.encode(String(v)),
                              decode: (d) => new TextDecoder().decode(d) };
    assert.equal(own.decode(encodePayload(own, "hi")), "hi");
  });
});

describe("entry points", () => {
  test("the main one needs nothing but flatbuffers (a page loads it with one import map entry)", () => {
    // MessagePack is the subpath sigmasockets-client/msgpack: its dependency stays out of the
    // main entry, which the FastAPI example loads as native ES modules.
    const root = new URL("../../src/", import.meta.url);
    const bare = new Set<string>();
    for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith(".js") || entry.name === "msgpack.js") continue;
      const text = readFileSync(`${entry.parentPath}/${entry.name}`, "utf8");
      // Static imports only (a line's own statement; a dynamic import("ws") runs in Node alone).
      const statics = /^(?:import|export)\b[^;=]*?["']([^"']+)["'];/gm;
      for (const match of text.matchAll(statics)) {
        if (!match[1]!.startsWith(".")) bare.add(match[1]!);
      }
    }
    assert.deepEqual([...bare], ["flatbuffers"]);
  });
});
