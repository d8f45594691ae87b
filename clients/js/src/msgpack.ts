/**
 * The MessagePack payload serializer (`@msgpack/msgpack`), the same name and values as Python's
 * `sigma_core.serializers.MsgpackSerializer`: `import { MSGPACK } from "sigmasockets-client/msgpack"`.
 * An entry point of its own, so that the main one has no dependency outside this package.
 */

import { decode as msgpackDecode, encode as msgpackEncode } from "@msgpack/msgpack";

import type { Serializer } from "./serializers.js";

export const MSGPACK: Serializer = {
  name: "msgpack",
  encode: (value: unknown): Uint8Array => msgpackEncode(value),
  decode: (data: Uint8Array): unknown => msgpackDecode(data),
};
