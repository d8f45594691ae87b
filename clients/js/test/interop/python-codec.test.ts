/**
 * The TypeScript and Python codecs agree byte for byte: every message the TypeScript codec
 * encodes is decoded by sigma_core.codec and re-encoded to the very same bytes (so Python read
 * every field as written), and the TypeScript decoder reads those bytes back to the original.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { decode, encode } from "../../src/codec.js";
import { FULL, MINIMAL } from "../helpers/samples.js";
import { runPythonJson } from "../helpers/python.js";

const PYTHON = `
import json, sys
from sigma_core import codec
out = []
for item in json.load(sys.stdin):
    buf = bytes.fromhex(item)
    body = codec.decode(buf)
    out.append({"type": type(body).__name__, "encode": codec.encode(body).hex(),
                "builder": codec._encode_with_builder(body).hex()})
print(json.dumps(out))
`;

test("sigma_core.codec decodes and re-encodes every TypeScript envelope to the same bytes", () => {
  const bodies = [...FULL, ...MINIMAL.map(([init]) => init)];
  const hexes = bodies.map((b) => Buffer.from(encode(b)).toString("hex"));
  const results = runPythonJson(PYTHON, hexes) as { type: string; encode: string; builder: string }[];
  assert.equal(results.length, bodies.length);
  results.forEach((r, i) => {
    assert.equal(r.type, bodies[i]!.type);
    assert.equal(r.builder, hexes[i], `${r.type}: Python's builder wrote other bytes`);
    assert.equal(r.encode, hexes[i], `${r.type}: Python's encode() wrote other bytes`);
  });
  // and the bytes Python wrote decode in TypeScript to the original messages
  FULL.forEach((body, i) => {
    assert.deepEqual(decode(Buffer.from(results[i]!.encode, "hex")), body);
  });
});
