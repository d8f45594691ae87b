/**
 * Payload serializers: how the app's values become a message's payload bytes and back — the
 * same names and behaviour as `sigma_core.serializers` in Python (docs/serializers.md).
 *
 * | serializer | name | values |
 * |---|---|---|
 * | {@link RAW} (default) | `raw` | `Uint8Array` in and out, untouched |
 * | {@link JSON_SERIALIZER} | `json` | JSON values, UTF-8, compact |
 * | `MSGPACK` from `sigmasockets-client/msgpack` | `msgpack` | MessagePack values (`@msgpack/msgpack`), `Uint8Array` included |
 *
 * MessagePack lives in its own entry point so that the main one imports nothing outside this
 * package: a page can load `dist/src/index.js` as a native ES module, without a bundler or an
 * import map.
 *
 * Your own: any object with a `name` and `encode`/`decode` ({@link Serializer}). The name is
 * sent in the Hello: a server with another serializer refuses the connection (close 4011).
 * `decode` may throw for bad input: the client reports a {@link PayloadDecodeError} for that
 * one message (an `error` event) and goes on.
 */

import { LocalProtocolError, SigmaError } from "./errors.js";

export interface Serializer {
  /** Sent in the Hello: 1-32 of a-z 0-9 . _ + -, starting with a letter or digit. */
  readonly name: string;
  encode(value: unknown): Uint8Array;
  decode(data: Uint8Array): unknown;
}

export const RAW: Serializer = {
  name: "raw",
  encode(value: unknown): Uint8Array {
    if (!(value instanceof Uint8Array)) {
      throw new TypeError(`the raw serializer sends Uint8Array, got ${typeof value}`);
    }
    return value;
  },
  decode: (data: Uint8Array): Uint8Array => data,
};

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

export const JSON_SERIALIZER: Serializer = {
  name: "json",
  encode(value: unknown): Uint8Array {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`${typeof value} is not JSON`);
    return utf8.encode(text);
  },
  decode: (data: Uint8Array): unknown => JSON.parse(strictUtf8.decode(data)),
};

const NAME = /^[a-z0-9][a-z0-9._+-]{0,31}$/;

/** `name` if valid for a serializer; throws TypeError otherwise. */
export function checkSerializerName(name: string): string {
  if (!NAME.test(name)) {
    throw new TypeError(`serializer name ${JSON.stringify(name)} is invalid: 1-32 of a-z 0-9 . _ + -`);
  }
  return name;
}

/** `serializer.encode(value)`, a failure reported as LocalProtocolError (nothing sent). */
export function encodePayload(serializer: Serializer, value: unknown): Uint8Array {
  if (serializer === RAW && value instanceof Uint8Array) return value;
  try {
    return serializer.encode(value);
  } catch (exc) {
    throw new LocalProtocolError(
      `the ${serializer.name} serializer cannot encode ${typeof value}: ${String(exc)}`);
  }
}

/** A received payload the serializer could not decode: that message only, the rest goes on. */
export class PayloadDecodeError extends SigmaError {
  constructor(readonly serializer: string, reason: string, readonly data: Uint8Array,
              readonly topic: string, readonly messageId: number) {
    super(`cannot decode message ${messageId} on ${JSON.stringify(topic)} with the `
          + `${serializer} serializer: ${reason}`);
    this.name = "PayloadDecodeError";
  }
}
