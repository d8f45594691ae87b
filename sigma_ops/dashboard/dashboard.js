// ../../clients/js/src/errors.ts
var e = {
	NORMAL_CLOSURE: 1e3,
	GOING_AWAY: 1001,
	PROTOCOL_ERROR: 1002,
	UNSUPPORTED_DATA: 1003,
	NO_STATUS_RCVD: 1005,
	ABNORMAL_CLOSURE: 1006,
	INVALID_FRAME_PAYLOAD_DATA: 1007,
	POLICY_VIOLATION: 1008,
	MESSAGE_TOO_BIG: 1009,
	MANDATORY_EXTENSION: 1010,
	INTERNAL_ERROR: 1011,
	SERVICE_RESTART: 1012,
	TRY_AGAIN_LATER: 1013,
	BAD_ENVELOPE: 4e3,
	UNEXPECTED_MESSAGE: 4001,
	HELLO_TIMEOUT: 4002,
	HEARTBEAT_TIMEOUT: 4003,
	UNSUPPORTED_VERSION: 4004,
	AUTH_FAILED: 4005,
	SESSION_TAKEN_OVER: 4006,
	SLOW_CONSUMER: 4007,
	RATE_LIMITED: 4008,
	LIMIT_EXCEEDED: 4009,
	TOKEN_EXPIRED: 4010,
	SERIALIZER_MISMATCH: 4011
}, t = {
	UNKNOWN: 0,
	INVALID_TOPIC: 1,
	TOO_MANY_TOPICS: 2,
	SUBSCRIBE_DENIED: 3,
	NOT_SUBSCRIBED: 4,
	RESUME_FAILED: 5,
	SHUTTING_DOWN: 6,
	SESSION_TAKEN_OVER: 7,
	SLOW_CONSUMER: 8,
	RATE_LIMITED: 9,
	AUTH_FAILED: 10,
	UNSUPPORTED_VERSION: 11,
	BAD_ENVELOPE: 12,
	UNEXPECTED_MESSAGE: 13,
	HEARTBEAT_TIMEOUT: 14,
	LIMIT_EXCEEDED: 15,
	NORMAL: 16,
	TOKEN_EXPIRED: 17,
	AUTH_UNAVAILABLE: 18,
	SERIALIZER_MISMATCH: 19
}, n = class extends Error {
	constructor(e) {
		super(e), this.name = new.target.name;
	}
}, r = class extends n {}, i = class extends n {
	code;
	constructor(t, n = e.PROTOCOL_ERROR) {
		super(t), this.code = n;
	}
	get reason() {
		return ee(this.message);
	}
}, a = class extends i {
	constructor(t) {
		super(t, e.BAD_ENVELOPE);
	}
}, o = class extends a {
	bodyType;
	constructor(e, t) {
		super(t ?? `unknown message type ${e} (union member from a newer peer?)`), this.bodyType = e;
	}
}, s = class extends n {}, c = class extends n {}, l = class extends n {}, u = class extends n {}, d = class extends n {
	code;
	constructor(e, t) {
		super(`server error ${e}: ${t}`), this.code = e;
	}
}, f = new TextEncoder();
function ee(e, t = 123) {
	if (f.encode(e).length <= t) return e;
	let n = "", r = 0;
	for (let i of e) {
		let e = f.encode(i).length;
		if (r + e > t) break;
		n += i, r += e;
	}
	return n;
}
// ../../clients/js/src/serializers.ts
var p = {
	name: "raw",
	encode(e) {
		if (!(e instanceof Uint8Array)) throw TypeError(`the raw serializer sends Uint8Array, got ${typeof e}`);
		return e;
	},
	decode: (e) => e
}, te = new TextEncoder(), ne = new TextDecoder("utf-8", { fatal: !0 }), re = {
	name: "json",
	encode(e) {
		let t = JSON.stringify(e);
		if (t === void 0) throw TypeError(`${typeof e} is not JSON`);
		return te.encode(t);
	},
	decode: (e) => JSON.parse(ne.decode(e))
}, ie = /^[a-z0-9][a-z0-9._+-]{0,31}$/;
function ae(e) {
	if (!ie.test(e)) throw TypeError(`serializer name ${JSON.stringify(e)} is invalid: 1-32 of a-z 0-9 . _ + -`);
	return e;
}
function oe(e, t) {
	if (e === p && t instanceof Uint8Array) return t;
	try {
		return e.encode(t);
	} catch (n) {
		throw new r(`the ${e.name} serializer cannot encode ${typeof t}: ${String(n)}`);
	}
}
var se = class extends n {
	serializer;
	data;
	topic;
	messageId;
	constructor(e, t, n, r, i) {
		super(`cannot decode message ${i} on ${JSON.stringify(r)} with the ${e} serializer: ${t}`), this.serializer = e, this.data = n, this.topic = r, this.messageId = i, this.name = "PayloadDecodeError";
	}
}, m = /* @__PURE__ */ new Int32Array(2), ce = new Float32Array(m.buffer), le = new Float64Array(m.buffer), ue = new Uint16Array(new Uint8Array([1, 0]).buffer)[0] === 1, de;
(function(e) {
	e[e.UTF8_BYTES = 1] = "UTF8_BYTES", e[e.UTF16_STRING = 2] = "UTF16_STRING";
})(de ||= {});
// ../../clients/js/node_modules/flatbuffers/mjs/byte-buffer.js
var fe = class e {
	constructor(e) {
		this.bytes_ = e, this.position_ = 0, this.text_decoder_ = new TextDecoder();
	}
	static allocate(t) {
		return new e(new Uint8Array(t));
	}
	clear() {
		this.position_ = 0;
	}
	bytes() {
		return this.bytes_;
	}
	position() {
		return this.position_;
	}
	setPosition(e) {
		this.position_ = e;
	}
	capacity() {
		return this.bytes_.length;
	}
	readInt8(e) {
		return this.readUint8(e) << 24 >> 24;
	}
	readUint8(e) {
		return this.bytes_[e];
	}
	readInt16(e) {
		return this.readUint16(e) << 16 >> 16;
	}
	readUint16(e) {
		return this.bytes_[e] | this.bytes_[e + 1] << 8;
	}
	readInt32(e) {
		return this.bytes_[e] | this.bytes_[e + 1] << 8 | this.bytes_[e + 2] << 16 | this.bytes_[e + 3] << 24;
	}
	readUint32(e) {
		return this.readInt32(e) >>> 0;
	}
	readInt64(e) {
		return BigInt.asIntN(64, BigInt(this.readUint32(e)) + (BigInt(this.readUint32(e + 4)) << BigInt(32)));
	}
	readUint64(e) {
		return BigInt.asUintN(64, BigInt(this.readUint32(e)) + (BigInt(this.readUint32(e + 4)) << BigInt(32)));
	}
	readFloat32(e) {
		return m[0] = this.readInt32(e), ce[0];
	}
	readFloat64(e) {
		return m[+!ue] = this.readInt32(e), m[+!!ue] = this.readInt32(e + 4), le[0];
	}
	writeInt8(e, t) {
		this.bytes_[e] = t;
	}
	writeUint8(e, t) {
		this.bytes_[e] = t;
	}
	writeInt16(e, t) {
		this.bytes_[e] = t, this.bytes_[e + 1] = t >> 8;
	}
	writeUint16(e, t) {
		this.bytes_[e] = t, this.bytes_[e + 1] = t >> 8;
	}
	writeInt32(e, t) {
		this.bytes_[e] = t, this.bytes_[e + 1] = t >> 8, this.bytes_[e + 2] = t >> 16, this.bytes_[e + 3] = t >> 24;
	}
	writeUint32(e, t) {
		this.bytes_[e] = t, this.bytes_[e + 1] = t >> 8, this.bytes_[e + 2] = t >> 16, this.bytes_[e + 3] = t >> 24;
	}
	writeInt64(e, t) {
		this.writeInt32(e, Number(BigInt.asIntN(32, t))), this.writeInt32(e + 4, Number(BigInt.asIntN(32, t >> BigInt(32))));
	}
	writeUint64(e, t) {
		this.writeUint32(e, Number(BigInt.asUintN(32, t))), this.writeUint32(e + 4, Number(BigInt.asUintN(32, t >> BigInt(32))));
	}
	writeFloat32(e, t) {
		ce[0] = t, this.writeInt32(e, m[0]);
	}
	writeFloat64(e, t) {
		le[0] = t, this.writeInt32(e, m[+!ue]), this.writeInt32(e + 4, m[+!!ue]);
	}
	getBufferIdentifier() {
		if (this.bytes_.length < this.position_ + 4 + 4) throw Error("FlatBuffers: ByteBuffer is too short to contain an identifier.");
		let e = "";
		for (let t = 0; t < 4; t++) e += String.fromCharCode(this.readInt8(this.position_ + 4 + t));
		return e;
	}
	__offset(e, t) {
		let n = e - this.readInt32(e);
		return t < this.readInt16(n) ? this.readInt16(n + t) : 0;
	}
	__union(e, t) {
		return e.bb_pos = t + this.readInt32(t), e.bb = this, e;
	}
	__string(e, t) {
		e += this.readInt32(e);
		let n = this.readInt32(e);
		e += 4;
		let r = this.bytes_.subarray(e, e + n);
		return t === de.UTF8_BYTES ? r : this.text_decoder_.decode(r);
	}
	__union_with_string(e, t) {
		return typeof e == "string" ? this.__string(t) : this.__union(e, t);
	}
	__indirect(e) {
		return e + this.readInt32(e);
	}
	__vector(e) {
		return e + this.readInt32(e) + 4;
	}
	__vector_len(e) {
		return this.readInt32(e + this.readInt32(e));
	}
	__has_identifier(e) {
		if (e.length != 4) throw Error("FlatBuffers: file identifier must be length 4");
		for (let t = 0; t < 4; t++) if (e.charCodeAt(t) != this.readInt8(this.position() + 4 + t)) return !1;
		return !0;
	}
	createScalarList(e, t) {
		let n = [];
		for (let r = 0; r < t; ++r) {
			let t = e(r);
			t !== null && n.push(t);
		}
		return n;
	}
	createObjList(e, t) {
		let n = [];
		for (let r = 0; r < t; ++r) {
			let t = e(r);
			t !== null && n.push(t.unpack());
		}
		return n;
	}
}, pe = class e {
	constructor(e) {
		this.minalign = 1, this.vtable = null, this.vtable_in_use = 0, this.isNested = !1, this.object_start = 0, this.vtables = [], this.vector_num_elems = 0, this.force_defaults = !1, this.string_maps = null, this.text_encoder = new TextEncoder();
		let t;
		t = e || 1024, this.bb = fe.allocate(t), this.space = t;
	}
	clear() {
		this.bb.clear(), this.space = this.bb.capacity(), this.minalign = 1, this.vtable = null, this.vtable_in_use = 0, this.isNested = !1, this.object_start = 0, this.vtables = [], this.vector_num_elems = 0, this.force_defaults = !1, this.string_maps = null;
	}
	forceDefaults(e) {
		this.force_defaults = e;
	}
	dataBuffer() {
		return this.bb;
	}
	asUint8Array() {
		return this.bb.bytes().subarray(this.bb.position(), this.bb.position() + this.offset());
	}
	prep(t, n) {
		t > this.minalign && (this.minalign = t);
		let r = ~(this.bb.capacity() - this.space + n) + 1 & t - 1;
		for (; this.space < r + t + n;) {
			let t = this.bb.capacity();
			this.bb = e.growByteBuffer(this.bb), this.space += this.bb.capacity() - t;
		}
		this.pad(r);
	}
	pad(e) {
		for (let t = 0; t < e; t++) this.bb.writeInt8(--this.space, 0);
	}
	writeInt8(e) {
		this.bb.writeInt8(--this.space, e);
	}
	writeInt16(e) {
		this.bb.writeInt16(this.space -= 2, e);
	}
	writeInt32(e) {
		this.bb.writeInt32(this.space -= 4, e);
	}
	writeInt64(e) {
		this.bb.writeInt64(this.space -= 8, e);
	}
	writeFloat32(e) {
		this.bb.writeFloat32(this.space -= 4, e);
	}
	writeFloat64(e) {
		this.bb.writeFloat64(this.space -= 8, e);
	}
	addInt8(e) {
		this.prep(1, 0), this.writeInt8(e);
	}
	addInt16(e) {
		this.prep(2, 0), this.writeInt16(e);
	}
	addInt32(e) {
		this.prep(4, 0), this.writeInt32(e);
	}
	addInt64(e) {
		this.prep(8, 0), this.writeInt64(e);
	}
	addFloat32(e) {
		this.prep(4, 0), this.writeFloat32(e);
	}
	addFloat64(e) {
		this.prep(8, 0), this.writeFloat64(e);
	}
	addFieldInt8(e, t, n) {
		(this.force_defaults || t != n) && (this.addInt8(t), this.slot(e));
	}
	addFieldInt16(e, t, n) {
		(this.force_defaults || t != n) && (this.addInt16(t), this.slot(e));
	}
	addFieldInt32(e, t, n) {
		(this.force_defaults || t != n) && (this.addInt32(t), this.slot(e));
	}
	addFieldInt64(e, t, n) {
		(this.force_defaults || t !== n) && (this.addInt64(t), this.slot(e));
	}
	addFieldFloat32(e, t, n) {
		(this.force_defaults || t != n) && (this.addFloat32(t), this.slot(e));
	}
	addFieldFloat64(e, t, n) {
		(this.force_defaults || t != n) && (this.addFloat64(t), this.slot(e));
	}
	addFieldOffset(e, t, n) {
		(this.force_defaults || t != n) && (this.addOffset(t), this.slot(e));
	}
	addFieldStruct(e, t, n) {
		t != n && (this.nested(t), this.slot(e));
	}
	nested(e) {
		if (e != this.offset()) throw TypeError("FlatBuffers: struct must be serialized inline.");
	}
	notNested() {
		if (this.isNested) throw TypeError("FlatBuffers: object serialization must not be nested.");
	}
	slot(e) {
		this.vtable !== null && (this.vtable[e] = this.offset());
	}
	offset() {
		return this.bb.capacity() - this.space;
	}
	static growByteBuffer(e) {
		let t = e.capacity();
		if (t & 3221225472) throw Error("FlatBuffers: cannot grow buffer beyond 2 gigabytes.");
		let n = t << 1, r = fe.allocate(n);
		return r.setPosition(n - t), r.bytes().set(e.bytes(), n - t), r;
	}
	addOffset(e) {
		this.prep(4, 0), this.writeInt32(this.offset() - e + 4);
	}
	startObject(e) {
		this.notNested(), this.vtable ??= [], this.vtable_in_use = e;
		for (let t = 0; t < e; t++) this.vtable[t] = 0;
		this.isNested = !0, this.object_start = this.offset();
	}
	endObject() {
		if (this.vtable == null || !this.isNested) throw Error("FlatBuffers: endObject called without startObject");
		this.addInt32(0);
		let e = this.offset(), t = this.vtable_in_use - 1;
		for (; t >= 0 && this.vtable[t] == 0; t--);
		let n = t + 1;
		for (; t >= 0; t--) this.addInt16(this.vtable[t] == 0 ? 0 : e - this.vtable[t]);
		this.addInt16(e - this.object_start);
		let r = (n + 2) * 2;
		this.addInt16(r);
		let i = 0, a = this.space;
		outer_loop: for (t = 0; t < this.vtables.length; t++) {
			let e = this.bb.capacity() - this.vtables[t];
			if (r == this.bb.readInt16(e)) {
				for (let t = 2; t < r; t += 2) if (this.bb.readInt16(a + t) != this.bb.readInt16(e + t)) continue outer_loop;
				i = this.vtables[t];
				break;
			}
		}
		return i ? (this.space = this.bb.capacity() - e, this.bb.writeInt32(this.space, i - e)) : (this.vtables.push(this.offset()), this.bb.writeInt32(this.bb.capacity() - e, this.offset() - e)), this.isNested = !1, e;
	}
	finish(e, t, n) {
		let r = n ? 4 : 0;
		if (t) {
			let e = t;
			if (this.prep(this.minalign, 8 + r), e.length != 4) throw TypeError("FlatBuffers: file identifier must be length 4");
			for (let t = 3; t >= 0; t--) this.writeInt8(e.charCodeAt(t));
		}
		this.prep(this.minalign, 4 + r), this.addOffset(e), r && this.addInt32(this.bb.capacity() - this.space), this.bb.setPosition(this.space);
	}
	finishSizePrefixed(e, t) {
		this.finish(e, t, !0);
	}
	requiredField(e, t) {
		let n = this.bb.capacity() - e, r = n - this.bb.readInt32(n);
		if (!(t < this.bb.readInt16(r) && this.bb.readInt16(r + t) != 0)) throw TypeError("FlatBuffers: field " + t + " must be set");
	}
	startVector(e, t, n) {
		this.notNested(), this.vector_num_elems = t, this.prep(4, e * t), this.prep(n, e * t);
	}
	endVector() {
		return this.writeInt32(this.vector_num_elems), this.offset();
	}
	createSharedString(e) {
		if (!e) return 0;
		if (this.string_maps ||= /* @__PURE__ */ new Map(), this.string_maps.has(e)) return this.string_maps.get(e);
		let t = this.createString(e);
		return this.string_maps.set(e, t), t;
	}
	createString(e) {
		if (e == null) return 0;
		let t;
		return t = e instanceof Uint8Array ? e : this.text_encoder.encode(e), this.addInt8(0), this.startVector(1, t.length, 1), this.bb.setPosition(this.space -= t.length), this.bb.bytes().set(t, this.space), this.endVector();
	}
	createByteVector(e) {
		return e == null ? 0 : (this.startVector(1, e.length, 1), this.bb.setPosition(this.space -= e.length), this.bb.bytes().set(e, this.space), this.endVector());
	}
	createObjectOffset(e) {
		return e === null ? 0 : typeof e == "string" ? this.createString(e) : e.pack(this);
	}
	createObjectOffsetList(e) {
		let t = [];
		for (let n = 0; n < e.length; ++n) {
			let r = e[n];
			if (r !== null) t.push(this.createObjectOffset(r));
			else throw TypeError("FlatBuffers: Argument for createObjectOffsetList cannot contain null.");
		}
		return t;
	}
	createStructOffsetList(e, t) {
		return t(this, e.length), this.createObjectOffsetList(e.slice().reverse()), this.endVector();
	}
}, h = class {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	epoch() {
		return this.bb.readUint64(this.bb_pos);
	}
	offset() {
		return this.bb.readUint64(this.bb_pos + 8);
	}
	static sizeOf() {
		return 16;
	}
	static createStreamPosition(e, t, n) {
		return e.prep(8, 16), e.writeInt64(BigInt(n ?? 0)), e.writeInt64(BigInt(t ?? 0)), e.offset();
	}
}, g = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsTopicPosition(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsTopicPosition(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	topic(e) {
		let t = this.bb.__offset(this.bb_pos, 4);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	position(e) {
		let t = this.bb.__offset(this.bb_pos, 6);
		return t ? (e || new h()).__init(this.bb_pos + t, this.bb) : null;
	}
	static startTopicPosition(e) {
		e.startObject(2);
	}
	static addTopic(e, t) {
		e.addFieldOffset(0, t, 0);
	}
	static addPosition(e, t) {
		e.addFieldStruct(1, t, 0);
	}
	static endTopicPosition(e) {
		let t = e.endObject();
		return e.requiredField(t, 4), e.requiredField(t, 6), t;
	}
}, _ = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsAck(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsAck(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	seq() {
		let e = this.bb.__offset(this.bb_pos, 4);
		return e ? this.bb.readUint64(this.bb_pos + e) : BigInt("0");
	}
	positions(e, t) {
		let n = this.bb.__offset(this.bb_pos, 6);
		return n ? (t || new g()).__init(this.bb.__indirect(this.bb.__vector(this.bb_pos + n) + e * 4), this.bb) : null;
	}
	positionsLength() {
		let e = this.bb.__offset(this.bb_pos, 6);
		return e ? this.bb.__vector_len(this.bb_pos + e) : 0;
	}
	static startAck(e) {
		e.startObject(2);
	}
	static addSeq(e, t) {
		e.addFieldInt64(0, t, BigInt("0"));
	}
	static addPositions(e, t) {
		e.addFieldOffset(1, t, 0);
	}
	static createPositionsVector(e, t) {
		e.startVector(4, t.length, 4);
		for (let n = t.length - 1; n >= 0; n--) e.addOffset(t[n]);
		return e.endVector();
	}
	static startPositionsVector(e, t) {
		e.startVector(4, t, 4);
	}
	static endAck(e) {
		return e.endObject();
	}
	static createAck(t, n, r) {
		return e.startAck(t), e.addSeq(t, n), e.addPositions(t, r), e.endAck(t);
	}
}, v = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsData(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsData(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	topic(e) {
		let t = this.bb.__offset(this.bb_pos, 4);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	position(e) {
		let t = this.bb.__offset(this.bb_pos, 6);
		return t ? (e || new h()).__init(this.bb_pos + t, this.bb) : null;
	}
	seq() {
		let e = this.bb.__offset(this.bb_pos, 8);
		return e ? this.bb.readUint64(this.bb_pos + e) : BigInt("0");
	}
	timestampMs() {
		let e = this.bb.__offset(this.bb_pos, 10);
		return e ? this.bb.readUint64(this.bb_pos + e) : BigInt("0");
	}
	payload(e) {
		let t = this.bb.__offset(this.bb_pos, 12);
		return t ? this.bb.readUint8(this.bb.__vector(this.bb_pos + t) + e) : 0;
	}
	payloadLength() {
		let e = this.bb.__offset(this.bb_pos, 12);
		return e ? this.bb.__vector_len(this.bb_pos + e) : 0;
	}
	payloadArray() {
		let e = this.bb.__offset(this.bb_pos, 12);
		return e ? new Uint8Array(this.bb.bytes().buffer, this.bb.bytes().byteOffset + this.bb.__vector(this.bb_pos + e), this.bb.__vector_len(this.bb_pos + e)) : null;
	}
	static startData(e) {
		e.startObject(5);
	}
	static addTopic(e, t) {
		e.addFieldOffset(0, t, 0);
	}
	static addPosition(e, t) {
		e.addFieldStruct(1, t, 0);
	}
	static addSeq(e, t) {
		e.addFieldInt64(2, t, BigInt("0"));
	}
	static addTimestampMs(e, t) {
		e.addFieldInt64(3, t, BigInt("0"));
	}
	static addPayload(e, t) {
		e.addFieldOffset(4, t, 0);
	}
	static createPayloadVector(e, t) {
		e.startVector(1, t.length, 1);
		for (let n = t.length - 1; n >= 0; n--) e.addInt8(t[n]);
		return e.endVector();
	}
	static startPayloadVector(e, t) {
		e.startVector(1, t, 1);
	}
	static endData(e) {
		return e.endObject();
	}
}, y = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsError(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsError(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	code() {
		let e = this.bb.__offset(this.bb_pos, 4);
		return e ? this.bb.readUint16(this.bb_pos + e) : 0;
	}
	message(e) {
		let t = this.bb.__offset(this.bb_pos, 6);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	details(e) {
		let t = this.bb.__offset(this.bb_pos, 8);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	retryable() {
		let e = this.bb.__offset(this.bb_pos, 10);
		return e ? !!this.bb.readInt8(this.bb_pos + e) : !1;
	}
	requestId() {
		let e = this.bb.__offset(this.bb_pos, 12);
		return e ? this.bb.readUint32(this.bb_pos + e) : 0;
	}
	static startError(e) {
		e.startObject(5);
	}
	static addCode(e, t) {
		e.addFieldInt16(0, t, 0);
	}
	static addMessage(e, t) {
		e.addFieldOffset(1, t, 0);
	}
	static addDetails(e, t) {
		e.addFieldOffset(2, t, 0);
	}
	static addRetryable(e, t) {
		e.addFieldInt8(3, +t, 0);
	}
	static addRequestId(e, t) {
		e.addFieldInt32(4, t, 0);
	}
	static endError(e) {
		return e.endObject();
	}
	static createError(t, n, r, i, a, o) {
		return e.startError(t), e.addCode(t, n), e.addMessage(t, r), e.addDetails(t, i), e.addRetryable(t, a), e.addRequestId(t, o), e.endError(t);
	}
}, b = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsGoodbye(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsGoodbye(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	code() {
		let e = this.bb.__offset(this.bb_pos, 4);
		return e ? this.bb.readUint16(this.bb_pos + e) : 0;
	}
	reason(e) {
		let t = this.bb.__offset(this.bb_pos, 6);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	reconnectAfterMs() {
		let e = this.bb.__offset(this.bb_pos, 8);
		return e ? this.bb.readUint32(this.bb_pos + e) : 0;
	}
	static startGoodbye(e) {
		e.startObject(3);
	}
	static addCode(e, t) {
		e.addFieldInt16(0, t, 0);
	}
	static addReason(e, t) {
		e.addFieldOffset(1, t, 0);
	}
	static addReconnectAfterMs(e, t) {
		e.addFieldInt32(2, t, 0);
	}
	static endGoodbye(e) {
		return e.endObject();
	}
	static createGoodbye(t, n, r, i) {
		return e.startGoodbye(t), e.addCode(t, n), e.addReason(t, r), e.addReconnectAfterMs(t, i), e.endGoodbye(t);
	}
}, x = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsKeyValue(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsKeyValue(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	key(e) {
		let t = this.bb.__offset(this.bb_pos, 4);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	value(e) {
		let t = this.bb.__offset(this.bb_pos, 6);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	static startKeyValue(e) {
		e.startObject(2);
	}
	static addKey(e, t) {
		e.addFieldOffset(0, t, 0);
	}
	static addValue(e, t) {
		e.addFieldOffset(1, t, 0);
	}
	static endKeyValue(e) {
		let t = e.endObject();
		return e.requiredField(t, 4), t;
	}
	static createKeyValue(t, n, r) {
		return e.startKeyValue(t), e.addKey(t, n), e.addValue(t, r), e.endKeyValue(t);
	}
}, S = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsClientInfo(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsClientInfo(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	name(e) {
		let t = this.bb.__offset(this.bb_pos, 4);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	version(e) {
		let t = this.bb.__offset(this.bb_pos, 6);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	platform(e) {
		let t = this.bb.__offset(this.bb_pos, 8);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	metadata(e, t) {
		let n = this.bb.__offset(this.bb_pos, 10);
		return n ? (t || new x()).__init(this.bb.__indirect(this.bb.__vector(this.bb_pos + n) + e * 4), this.bb) : null;
	}
	metadataLength() {
		let e = this.bb.__offset(this.bb_pos, 10);
		return e ? this.bb.__vector_len(this.bb_pos + e) : 0;
	}
	static startClientInfo(e) {
		e.startObject(4);
	}
	static addName(e, t) {
		e.addFieldOffset(0, t, 0);
	}
	static addVersion(e, t) {
		e.addFieldOffset(1, t, 0);
	}
	static addPlatform(e, t) {
		e.addFieldOffset(2, t, 0);
	}
	static addMetadata(e, t) {
		e.addFieldOffset(3, t, 0);
	}
	static createMetadataVector(e, t) {
		e.startVector(4, t.length, 4);
		for (let n = t.length - 1; n >= 0; n--) e.addOffset(t[n]);
		return e.endVector();
	}
	static startMetadataVector(e, t) {
		e.startVector(4, t, 4);
	}
	static endClientInfo(e) {
		return e.endObject();
	}
	static createClientInfo(t, n, r, i, a) {
		return e.startClientInfo(t), e.addName(t, n), e.addVersion(t, r), e.addPlatform(t, i), e.addMetadata(t, a), e.endClientInfo(t);
	}
}, C = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsHello(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsHello(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	protocolVersion() {
		let e = this.bb.__offset(this.bb_pos, 4);
		return e ? this.bb.readUint16(this.bb_pos + e) : 1;
	}
	sessionId(e) {
		let t = this.bb.__offset(this.bb_pos, 6);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	resumeToken(e) {
		let t = this.bb.__offset(this.bb_pos, 8);
		return t ? this.bb.readUint8(this.bb.__vector(this.bb_pos + t) + e) : 0;
	}
	resumeTokenLength() {
		let e = this.bb.__offset(this.bb_pos, 8);
		return e ? this.bb.__vector_len(this.bb_pos + e) : 0;
	}
	resumeTokenArray() {
		let e = this.bb.__offset(this.bb_pos, 8);
		return e ? new Uint8Array(this.bb.bytes().buffer, this.bb.bytes().byteOffset + this.bb.__vector(this.bb_pos + e), this.bb.__vector_len(this.bb_pos + e)) : null;
	}
	positions(e, t) {
		let n = this.bb.__offset(this.bb_pos, 10);
		return n ? (t || new g()).__init(this.bb.__indirect(this.bb.__vector(this.bb_pos + n) + e * 4), this.bb) : null;
	}
	positionsLength() {
		let e = this.bb.__offset(this.bb_pos, 10);
		return e ? this.bb.__vector_len(this.bb_pos + e) : 0;
	}
	lastAckedSeq() {
		let e = this.bb.__offset(this.bb_pos, 12);
		return e ? this.bb.readUint64(this.bb_pos + e) : BigInt("0");
	}
	authToken(e) {
		let t = this.bb.__offset(this.bb_pos, 14);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	client(e) {
		let t = this.bb.__offset(this.bb_pos, 16);
		return t ? (e || new S()).__init(this.bb.__indirect(this.bb_pos + t), this.bb) : null;
	}
	serializer(e) {
		let t = this.bb.__offset(this.bb_pos, 18);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	static startHello(e) {
		e.startObject(8);
	}
	static addProtocolVersion(e, t) {
		e.addFieldInt16(0, t, 1);
	}
	static addSessionId(e, t) {
		e.addFieldOffset(1, t, 0);
	}
	static addResumeToken(e, t) {
		e.addFieldOffset(2, t, 0);
	}
	static createResumeTokenVector(e, t) {
		e.startVector(1, t.length, 1);
		for (let n = t.length - 1; n >= 0; n--) e.addInt8(t[n]);
		return e.endVector();
	}
	static startResumeTokenVector(e, t) {
		e.startVector(1, t, 1);
	}
	static addPositions(e, t) {
		e.addFieldOffset(3, t, 0);
	}
	static createPositionsVector(e, t) {
		e.startVector(4, t.length, 4);
		for (let n = t.length - 1; n >= 0; n--) e.addOffset(t[n]);
		return e.endVector();
	}
	static startPositionsVector(e, t) {
		e.startVector(4, t, 4);
	}
	static addLastAckedSeq(e, t) {
		e.addFieldInt64(4, t, BigInt("0"));
	}
	static addAuthToken(e, t) {
		e.addFieldOffset(5, t, 0);
	}
	static addClient(e, t) {
		e.addFieldOffset(6, t, 0);
	}
	static addSerializer(e, t) {
		e.addFieldOffset(7, t, 0);
	}
	static endHello(e) {
		return e.endObject();
	}
}, w = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsPing(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsPing(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	id() {
		let e = this.bb.__offset(this.bb_pos, 4);
		return e ? this.bb.readUint32(this.bb_pos + e) : 0;
	}
	timestampMs() {
		let e = this.bb.__offset(this.bb_pos, 6);
		return e ? this.bb.readUint64(this.bb_pos + e) : BigInt("0");
	}
	static startPing(e) {
		e.startObject(2);
	}
	static addId(e, t) {
		e.addFieldInt32(0, t, 0);
	}
	static addTimestampMs(e, t) {
		e.addFieldInt64(1, t, BigInt("0"));
	}
	static endPing(e) {
		return e.endObject();
	}
	static createPing(t, n, r) {
		return e.startPing(t), e.addId(t, n), e.addTimestampMs(t, r), e.endPing(t);
	}
}, T = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsPong(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsPong(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	id() {
		let e = this.bb.__offset(this.bb_pos, 4);
		return e ? this.bb.readUint32(this.bb_pos + e) : 0;
	}
	echoTimestampMs() {
		let e = this.bb.__offset(this.bb_pos, 6);
		return e ? this.bb.readUint64(this.bb_pos + e) : BigInt("0");
	}
	timestampMs() {
		let e = this.bb.__offset(this.bb_pos, 8);
		return e ? this.bb.readUint64(this.bb_pos + e) : BigInt("0");
	}
	static startPong(e) {
		e.startObject(3);
	}
	static addId(e, t) {
		e.addFieldInt32(0, t, 0);
	}
	static addEchoTimestampMs(e, t) {
		e.addFieldInt64(1, t, BigInt("0"));
	}
	static addTimestampMs(e, t) {
		e.addFieldInt64(2, t, BigInt("0"));
	}
	static endPong(e) {
		return e.endObject();
	}
	static createPong(t, n, r, i) {
		return e.startPong(t), e.addId(t, n), e.addEchoTimestampMs(t, r), e.addTimestampMs(t, i), e.endPong(t);
	}
}, me = /* @__PURE__ */ function(e) {
	return e[e.Join = 0] = "Join", e[e.Leave = 1] = "Leave", e;
}({}), E = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsPresence(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsPresence(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	topic(e) {
		let t = this.bb.__offset(this.bb_pos, 4);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	action() {
		let e = this.bb.__offset(this.bb_pos, 6);
		return e ? this.bb.readUint8(this.bb_pos + e) : me.Join;
	}
	sessionId(e) {
		let t = this.bb.__offset(this.bb_pos, 8);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	metadata(e, t) {
		let n = this.bb.__offset(this.bb_pos, 10);
		return n ? (t || new x()).__init(this.bb.__indirect(this.bb.__vector(this.bb_pos + n) + e * 4), this.bb) : null;
	}
	metadataLength() {
		let e = this.bb.__offset(this.bb_pos, 10);
		return e ? this.bb.__vector_len(this.bb_pos + e) : 0;
	}
	static startPresence(e) {
		e.startObject(4);
	}
	static addTopic(e, t) {
		e.addFieldOffset(0, t, 0);
	}
	static addAction(e, t) {
		e.addFieldInt8(1, t, me.Join);
	}
	static addSessionId(e, t) {
		e.addFieldOffset(2, t, 0);
	}
	static addMetadata(e, t) {
		e.addFieldOffset(3, t, 0);
	}
	static createMetadataVector(e, t) {
		e.startVector(4, t.length, 4);
		for (let n = t.length - 1; n >= 0; n--) e.addOffset(t[n]);
		return e.endVector();
	}
	static startMetadataVector(e, t) {
		e.startVector(4, t, 4);
	}
	static endPresence(e) {
		let t = e.endObject();
		return e.requiredField(t, 4), e.requiredField(t, 8), t;
	}
	static createPresence(t, n, r, i, a) {
		return e.startPresence(t), e.addTopic(t, n), e.addAction(t, r), e.addSessionId(t, i), e.addMetadata(t, a), e.endPresence(t);
	}
}, he = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsRefresh(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsRefresh(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	token(e) {
		let t = this.bb.__offset(this.bb_pos, 4);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	static startRefresh(e) {
		e.startObject(1);
	}
	static addToken(e, t) {
		e.addFieldOffset(0, t, 0);
	}
	static endRefresh(e) {
		return e.endObject();
	}
	static createRefresh(t, n) {
		return e.startRefresh(t), e.addToken(t, n), e.endRefresh(t);
	}
}, ge = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsRefreshed(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsRefreshed(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	credentialsExpireMs() {
		let e = this.bb.__offset(this.bb_pos, 4);
		return e ? this.bb.readUint64(this.bb_pos + e) : BigInt("0");
	}
	static startRefreshed(e) {
		e.startObject(1);
	}
	static addCredentialsExpireMs(e, t) {
		e.addFieldInt64(0, t, BigInt("0"));
	}
	static endRefreshed(e) {
		return e.endObject();
	}
	static createRefreshed(t, n) {
		return e.startRefreshed(t), e.addCredentialsExpireMs(t, n), e.endRefreshed(t);
	}
}, D = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsSubscribe(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsSubscribe(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	requestId() {
		let e = this.bb.__offset(this.bb_pos, 4);
		return e ? this.bb.readUint32(this.bb_pos + e) : 0;
	}
	topic(e) {
		let t = this.bb.__offset(this.bb_pos, 6);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	position(e) {
		let t = this.bb.__offset(this.bb_pos, 8);
		return t ? (e || new h()).__init(this.bb_pos + t, this.bb) : null;
	}
	static startSubscribe(e) {
		e.startObject(3);
	}
	static addRequestId(e, t) {
		e.addFieldInt32(0, t, 0);
	}
	static addTopic(e, t) {
		e.addFieldOffset(1, t, 0);
	}
	static addPosition(e, t) {
		e.addFieldStruct(2, t, 0);
	}
	static endSubscribe(e) {
		let t = e.endObject();
		return e.requiredField(t, 6), t;
	}
}, _e = /* @__PURE__ */ function(e) {
	return e[e.Recovered = 0] = "Recovered", e[e.Failed = 1] = "Failed", e[e.Fresh = 2] = "Fresh", e;
}({}), O = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsTopicRecovery(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsTopicRecovery(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	topic(e) {
		let t = this.bb.__offset(this.bb_pos, 4);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	status() {
		let e = this.bb.__offset(this.bb_pos, 6);
		return e ? this.bb.readUint8(this.bb_pos + e) : _e.Recovered;
	}
	position(e) {
		let t = this.bb.__offset(this.bb_pos, 8);
		return t ? (e || new h()).__init(this.bb_pos + t, this.bb) : null;
	}
	lostFrom() {
		let e = this.bb.__offset(this.bb_pos, 10);
		return e ? this.bb.readUint64(this.bb_pos + e) : BigInt("0");
	}
	lostTo() {
		let e = this.bb.__offset(this.bb_pos, 12);
		return e ? this.bb.readUint64(this.bb_pos + e) : BigInt("0");
	}
	replayed() {
		let e = this.bb.__offset(this.bb_pos, 14);
		return e ? this.bb.readUint64(this.bb_pos + e) : BigInt("0");
	}
	static startTopicRecovery(e) {
		e.startObject(6);
	}
	static addTopic(e, t) {
		e.addFieldOffset(0, t, 0);
	}
	static addStatus(e, t) {
		e.addFieldInt8(1, t, _e.Recovered);
	}
	static addPosition(e, t) {
		e.addFieldStruct(2, t, 0);
	}
	static addLostFrom(e, t) {
		e.addFieldInt64(3, t, BigInt("0"));
	}
	static addLostTo(e, t) {
		e.addFieldInt64(4, t, BigInt("0"));
	}
	static addReplayed(e, t) {
		e.addFieldInt64(5, t, BigInt("0"));
	}
	static endTopicRecovery(e) {
		let t = e.endObject();
		return e.requiredField(t, 4), t;
	}
}, k = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsSubscribed(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsSubscribed(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	requestId() {
		let e = this.bb.__offset(this.bb_pos, 4);
		return e ? this.bb.readUint32(this.bb_pos + e) : 0;
	}
	recovery(e) {
		let t = this.bb.__offset(this.bb_pos, 6);
		return t ? (e || new O()).__init(this.bb.__indirect(this.bb_pos + t), this.bb) : null;
	}
	static startSubscribed(e) {
		e.startObject(2);
	}
	static addRequestId(e, t) {
		e.addFieldInt32(0, t, 0);
	}
	static addRecovery(e, t) {
		e.addFieldOffset(1, t, 0);
	}
	static endSubscribed(e) {
		let t = e.endObject();
		return e.requiredField(t, 6), t;
	}
}, A = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsUnsubscribe(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsUnsubscribe(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	requestId() {
		let e = this.bb.__offset(this.bb_pos, 4);
		return e ? this.bb.readUint32(this.bb_pos + e) : 0;
	}
	topic(e) {
		let t = this.bb.__offset(this.bb_pos, 6);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	static startUnsubscribe(e) {
		e.startObject(2);
	}
	static addRequestId(e, t) {
		e.addFieldInt32(0, t, 0);
	}
	static addTopic(e, t) {
		e.addFieldOffset(1, t, 0);
	}
	static endUnsubscribe(e) {
		let t = e.endObject();
		return e.requiredField(t, 6), t;
	}
	static createUnsubscribe(t, n, r) {
		return e.startUnsubscribe(t), e.addRequestId(t, n), e.addTopic(t, r), e.endUnsubscribe(t);
	}
}, j = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsUnsubscribed(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsUnsubscribed(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	requestId() {
		let e = this.bb.__offset(this.bb_pos, 4);
		return e ? this.bb.readUint32(this.bb_pos + e) : 0;
	}
	topic(e) {
		let t = this.bb.__offset(this.bb_pos, 6);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	static startUnsubscribed(e) {
		e.startObject(2);
	}
	static addRequestId(e, t) {
		e.addFieldInt32(0, t, 0);
	}
	static addTopic(e, t) {
		e.addFieldOffset(1, t, 0);
	}
	static endUnsubscribed(e) {
		let t = e.endObject();
		return e.requiredField(t, 6), t;
	}
	static createUnsubscribed(t, n, r) {
		return e.startUnsubscribed(t), e.addRequestId(t, n), e.addTopic(t, r), e.endUnsubscribed(t);
	}
}, M = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsLimits(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsLimits(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	maxMessageSize() {
		let e = this.bb.__offset(this.bb_pos, 4);
		return e ? this.bb.readUint32(this.bb_pos + e) : 0;
	}
	maxUnacked() {
		let e = this.bb.__offset(this.bb_pos, 6);
		return e ? this.bb.readUint32(this.bb_pos + e) : 0;
	}
	maxTopics() {
		let e = this.bb.__offset(this.bb_pos, 8);
		return e ? this.bb.readUint32(this.bb_pos + e) : 0;
	}
	maxMessagesPerSecond() {
		let e = this.bb.__offset(this.bb_pos, 10);
		return e ? this.bb.readUint32(this.bb_pos + e) : 0;
	}
	maxBytesPerSecond() {
		let e = this.bb.__offset(this.bb_pos, 12);
		return e ? this.bb.readUint32(this.bb_pos + e) : 0;
	}
	static startLimits(e) {
		e.startObject(5);
	}
	static addMaxMessageSize(e, t) {
		e.addFieldInt32(0, t, 0);
	}
	static addMaxUnacked(e, t) {
		e.addFieldInt32(1, t, 0);
	}
	static addMaxTopics(e, t) {
		e.addFieldInt32(2, t, 0);
	}
	static addMaxMessagesPerSecond(e, t) {
		e.addFieldInt32(3, t, 0);
	}
	static addMaxBytesPerSecond(e, t) {
		e.addFieldInt32(4, t, 0);
	}
	static endLimits(e) {
		return e.endObject();
	}
	static createLimits(t, n, r, i, a, o) {
		return e.startLimits(t), e.addMaxMessageSize(t, n), e.addMaxUnacked(t, r), e.addMaxTopics(t, i), e.addMaxMessagesPerSecond(t, a), e.addMaxBytesPerSecond(t, o), e.endLimits(t);
	}
}, N = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsWelcome(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsWelcome(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	sessionId(e) {
		let t = this.bb.__offset(this.bb_pos, 4);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	resumeToken(e) {
		let t = this.bb.__offset(this.bb_pos, 6);
		return t ? this.bb.readUint8(this.bb.__vector(this.bb_pos + t) + e) : 0;
	}
	resumeTokenLength() {
		let e = this.bb.__offset(this.bb_pos, 6);
		return e ? this.bb.__vector_len(this.bb_pos + e) : 0;
	}
	resumeTokenArray() {
		let e = this.bb.__offset(this.bb_pos, 6);
		return e ? new Uint8Array(this.bb.bytes().buffer, this.bb.bytes().byteOffset + this.bb.__vector(this.bb_pos + e), this.bb.__vector_len(this.bb_pos + e)) : null;
	}
	resumed() {
		let e = this.bb.__offset(this.bb_pos, 8);
		return e ? !!this.bb.readInt8(this.bb_pos + e) : !1;
	}
	recovery(e, t) {
		let n = this.bb.__offset(this.bb_pos, 10);
		return n ? (t || new O()).__init(this.bb.__indirect(this.bb.__vector(this.bb_pos + n) + e * 4), this.bb) : null;
	}
	recoveryLength() {
		let e = this.bb.__offset(this.bb_pos, 10);
		return e ? this.bb.__vector_len(this.bb_pos + e) : 0;
	}
	lastReceivedSeq() {
		let e = this.bb.__offset(this.bb_pos, 12);
		return e ? this.bb.readUint64(this.bb_pos + e) : BigInt("0");
	}
	heartbeatIntervalMs() {
		let e = this.bb.__offset(this.bb_pos, 14);
		return e ? this.bb.readUint32(this.bb_pos + e) : 0;
	}
	heartbeatTimeoutMs() {
		let e = this.bb.__offset(this.bb_pos, 16);
		return e ? this.bb.readUint32(this.bb_pos + e) : 0;
	}
	limits(e) {
		let t = this.bb.__offset(this.bb_pos, 18);
		return t ? (e || new M()).__init(this.bb.__indirect(this.bb_pos + t), this.bb) : null;
	}
	serverTimeMs() {
		let e = this.bb.__offset(this.bb_pos, 20);
		return e ? this.bb.readUint64(this.bb_pos + e) : BigInt("0");
	}
	freshReason(e) {
		let t = this.bb.__offset(this.bb_pos, 22);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	credentialsExpireMs() {
		let e = this.bb.__offset(this.bb_pos, 24);
		return e ? this.bb.readUint64(this.bb_pos + e) : BigInt("0");
	}
	serializer(e) {
		let t = this.bb.__offset(this.bb_pos, 26);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	static startWelcome(e) {
		e.startObject(12);
	}
	static addSessionId(e, t) {
		e.addFieldOffset(0, t, 0);
	}
	static addResumeToken(e, t) {
		e.addFieldOffset(1, t, 0);
	}
	static createResumeTokenVector(e, t) {
		e.startVector(1, t.length, 1);
		for (let n = t.length - 1; n >= 0; n--) e.addInt8(t[n]);
		return e.endVector();
	}
	static startResumeTokenVector(e, t) {
		e.startVector(1, t, 1);
	}
	static addResumed(e, t) {
		e.addFieldInt8(2, +t, 0);
	}
	static addRecovery(e, t) {
		e.addFieldOffset(3, t, 0);
	}
	static createRecoveryVector(e, t) {
		e.startVector(4, t.length, 4);
		for (let n = t.length - 1; n >= 0; n--) e.addOffset(t[n]);
		return e.endVector();
	}
	static startRecoveryVector(e, t) {
		e.startVector(4, t, 4);
	}
	static addLastReceivedSeq(e, t) {
		e.addFieldInt64(4, t, BigInt("0"));
	}
	static addHeartbeatIntervalMs(e, t) {
		e.addFieldInt32(5, t, 0);
	}
	static addHeartbeatTimeoutMs(e, t) {
		e.addFieldInt32(6, t, 0);
	}
	static addLimits(e, t) {
		e.addFieldOffset(7, t, 0);
	}
	static addServerTimeMs(e, t) {
		e.addFieldInt64(8, t, BigInt("0"));
	}
	static addFreshReason(e, t) {
		e.addFieldOffset(9, t, 0);
	}
	static addCredentialsExpireMs(e, t) {
		e.addFieldInt64(10, t, BigInt("0"));
	}
	static addSerializer(e, t) {
		e.addFieldOffset(11, t, 0);
	}
	static endWelcome(e) {
		let t = e.endObject();
		return e.requiredField(t, 4), e.requiredField(t, 6), t;
	}
}, P = /* @__PURE__ */ function(e) {
	return e[e.NONE = 0] = "NONE", e[e.Hello = 1] = "Hello", e[e.Welcome = 2] = "Welcome", e[e.Data = 3] = "Data", e[e.Ack = 4] = "Ack", e[e.Ping = 5] = "Ping", e[e.Pong = 6] = "Pong", e[e.Subscribe = 7] = "Subscribe", e[e.Unsubscribe = 8] = "Unsubscribe", e[e.Subscribed = 9] = "Subscribed", e[e.Unsubscribed = 10] = "Unsubscribed", e[e.Presence = 11] = "Presence", e[e.Error = 12] = "Error", e[e.Goodbye = 13] = "Goodbye", e[e.Refresh = 14] = "Refresh", e[e.Refreshed = 15] = "Refreshed", e;
}({}), F = class e {
	bb = null;
	bb_pos = 0;
	__init(e, t) {
		return this.bb_pos = e, this.bb = t, this;
	}
	static getRootAsEnvelope(t, n) {
		return (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static getSizePrefixedRootAsEnvelope(t, n) {
		return t.setPosition(t.position() + 4), (n || new e()).__init(t.readInt32(t.position()) + t.position(), t);
	}
	static bufferHasIdentifier(e) {
		return e.__has_identifier("SGM1");
	}
	bodyType() {
		let e = this.bb.__offset(this.bb_pos, 4);
		return e ? this.bb.readUint8(this.bb_pos + e) : P.NONE;
	}
	body(e) {
		let t = this.bb.__offset(this.bb_pos, 6);
		return t ? this.bb.__union(e, this.bb_pos + t) : null;
	}
	static startEnvelope(e) {
		e.startObject(2);
	}
	static addBodyType(e, t) {
		e.addFieldInt8(0, t, P.NONE);
	}
	static addBody(e, t) {
		e.addFieldOffset(1, t, 0);
	}
	static endEnvelope(e) {
		return e.endObject();
	}
	static finishEnvelopeBuffer(e, t) {
		e.finish(t, "SGM1");
	}
	static finishSizePrefixedEnvelopeBuffer(e, t) {
		e.finish(t, "SGM1", !0);
	}
	static createEnvelope(t, n, r) {
		return e.startEnvelope(t), e.addBodyType(t, n), e.addBody(t, r), e.endEnvelope(t);
	}
}, I = {
	Recovered: 0,
	Failed: 1,
	Fresh: 2
}, ve = {
	Join: 0,
	Leave: 1
}, ye = 65535, be = 4294967295, xe = (1n << 64n) - 1n, Se = {
	Hello: P.Hello,
	Welcome: P.Welcome,
	Data: P.Data,
	Ack: P.Ack,
	Ping: P.Ping,
	Pong: P.Pong,
	Subscribe: P.Subscribe,
	Unsubscribe: P.Unsubscribe,
	Subscribed: P.Subscribed,
	Unsubscribed: P.Unsubscribed,
	Presence: P.Presence,
	Error: P.Error,
	Goodbye: P.Goodbye,
	Refresh: P.Refresh,
	Refreshed: P.Refreshed
};
new TextEncoder();
function L(e, t) {
	let n;
	if (typeof e == "bigint") n = e;
	else if (typeof e == "number" && Number.isSafeInteger(e)) n = BigInt(e);
	else throw new r(`${t} must be an integer (bigint), not ${String(e)}`);
	if (n < 0n || n > xe) throw new r(`${t}=${n} is out of range for ulong (0..${xe})`);
	return n;
}
function Ce(e, t, n, i) {
	let a = typeof e == "bigint" ? Number(e) : e;
	if (typeof a != "number" || !Number.isInteger(a)) throw new r(`${i} must be an integer, not ${String(e)}`);
	if (a < 0 || a > t) throw new r(`${i}=${a} is out of range for ${n} (0..${t})`);
	return a;
}
var R = (e, t) => Ce(e, be, "uint", t), we = (e, t) => Ce(e, ye, "ushort", t), Te = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
function z(e, t) {
	if (typeof e != "string") throw new r(`${t} must be a string, not ${typeof e}`);
	if (Te.test(e)) throw new r(`${t} cannot be encoded as UTF-8 (lone surrogate)`);
	return e;
}
function Ee(e, t) {
	if (e instanceof Uint8Array) return e;
	if (e instanceof ArrayBuffer) return new Uint8Array(e);
	if (ArrayBuffer.isView(e)) return new Uint8Array(e.buffer, e.byteOffset, e.byteLength);
	throw new r(`${t} must be a Uint8Array`);
}
function B(e, t) {
	if (typeof e != "object" || !e || !("epoch" in e) || !("offset" in e)) throw new r(`${t} must be a StreamPosition {epoch, offset}`);
	let n = e;
	return [L(n.epoch, `${t}.epoch`), L(n.offset, `${t}.offset`)];
}
function De(e, t, n, i) {
	if (typeof e != "number" || !Object.values(t).includes(e)) throw new r(`${i}=${String(e)} is not a ${n}`);
	return e;
}
function V(e, t, n) {
	let r = z(t ?? "", n);
	return r ? e.createString(r) : 0;
}
function Oe(e, t) {
	if (t.length === 0) return 0;
	e.startVector(4, t.length, 4);
	for (let n = t.length - 1; n >= 0; n--) e.addOffset(t[n]);
	return e.endVector();
}
function ke(e, t) {
	if (e === void 0) return [];
	if (!Array.isArray(e)) throw new r(`${t} must be an array`);
	return e;
}
function Ae(e, t, n) {
	let r = e.createString(z(t.topic, `${n}.topic`)), [i, a] = B(t.position, `${n}.position`);
	return g.startTopicPosition(e), g.addPosition(e, h.createStreamPosition(e, i, a)), g.addTopic(e, r), g.endTopicPosition(e);
}
function je(e, t, n) {
	return Oe(e, ke(t, n).map((t) => Ae(e, t, n)));
}
function Me(e, t, n) {
	if (typeof t != "object" || !t) throw new r(`${n} must be a TopicRecovery`);
	let i = e.createString(z(t.topic, `${n}.topic`)), a = De(t.status ?? I.Recovered, I, "RecoveryStatus", `${n}.status`), o = t.position == null ? null : B(t.position, `${n}.position`), s = L(t.lostFrom ?? 0n, `${n}.lostFrom`), c = L(t.lostTo ?? 0n, `${n}.lostTo`), l = L(t.replayed ?? 0n, `${n}.replayed`);
	return O.startTopicRecovery(e), o !== null && O.addPosition(e, h.createStreamPosition(e, o[0], o[1])), O.addLostFrom(e, s), O.addLostTo(e, c), O.addReplayed(e, l), O.addTopic(e, i), O.addStatus(e, a), O.endTopicRecovery(e);
}
function Ne(e, t, n) {
	if (t === void 0) return 0;
	if (typeof t != "object" || !t) throw new r(`${n} must be an object of string values`);
	let i = [];
	for (let [r, a] of Object.entries(t)) {
		let t = e.createString(z(r, `${n} key`)), o = V(e, a, `${n}[${JSON.stringify(r)}]`);
		x.startKeyValue(e), x.addKey(e, t), x.addValue(e, o), i.push(x.endKeyValue(e));
	}
	return Oe(e, i);
}
function Pe(e, t) {
	let n = V(e, t.name, "ClientInfo.name"), r = V(e, t.version, "ClientInfo.version"), i = V(e, t.platform, "ClientInfo.platform"), a = Ne(e, t.metadata, "ClientInfo.metadata");
	return S.startClientInfo(e), S.addName(e, n), S.addVersion(e, r), S.addPlatform(e, i), S.addMetadata(e, a), S.endClientInfo(e);
}
function Fe(e, t) {
	let n = [
		R(t.maxMessageSize ?? 0, "Limits.maxMessageSize"),
		R(t.maxUnacked ?? 0, "Limits.maxUnacked"),
		R(t.maxTopics ?? 0, "Limits.maxTopics"),
		R(t.maxMessagesPerSecond ?? 0, "Limits.maxMessagesPerSecond"),
		R(t.maxBytesPerSecond ?? 0, "Limits.maxBytesPerSecond")
	];
	return M.startLimits(e), M.addMaxMessageSize(e, n[0]), M.addMaxUnacked(e, n[1]), M.addMaxTopics(e, n[2]), M.addMaxMessagesPerSecond(e, n[3]), M.addMaxBytesPerSecond(e, n[4]), M.endLimits(e);
}
function Ie(e, t) {
	switch (t.type) {
		case "Hello": {
			let n = we(t.protocolVersion ?? 1, "Hello.protocolVersion"), r = V(e, t.sessionId, "Hello.sessionId"), i = Ee(t.resumeToken ?? /* @__PURE__ */ new Uint8Array(), "Hello.resumeToken"), a = i.length ? e.createByteVector(i) : 0, o = je(e, t.positions, "Hello.positions"), s = L(t.lastAckedSeq ?? 0n, "Hello.lastAckedSeq"), c = V(e, t.authToken, "Hello.authToken"), l = t.client == null ? 0 : Pe(e, t.client), u = V(e, t.serializer, "Hello.serializer");
			return C.startHello(e), C.addLastAckedSeq(e, s), C.addSessionId(e, r), C.addResumeToken(e, a), C.addPositions(e, o), C.addAuthToken(e, c), C.addClient(e, l), C.addSerializer(e, u), C.addProtocolVersion(e, n), C.endHello(e);
		}
		case "Welcome": {
			let n = e.createString(z(t.sessionId, "Welcome.sessionId")), r = e.createByteVector(Ee(t.resumeToken, "Welcome.resumeToken")), i = Oe(e, ke(t.recovery, "Welcome.recovery").map((t) => Me(e, t, "Welcome.recovery"))), a = t.limits == null ? 0 : Fe(e, t.limits), o = V(e, t.freshReason, "Welcome.freshReason"), s = V(e, t.serializer, "Welcome.serializer"), c = L(t.credentialsExpireMs ?? 0n, "Welcome.credentialsExpireMs"), l = L(t.lastReceivedSeq ?? 0n, "Welcome.lastReceivedSeq"), u = L(t.serverTimeMs ?? 0n, "Welcome.serverTimeMs"), d = R(t.heartbeatIntervalMs ?? 0, "Welcome.heartbeatIntervalMs"), f = R(t.heartbeatTimeoutMs ?? 0, "Welcome.heartbeatTimeoutMs");
			return N.startWelcome(e), N.addLastReceivedSeq(e, l), N.addServerTimeMs(e, u), N.addCredentialsExpireMs(e, c), N.addSessionId(e, n), N.addResumeToken(e, r), N.addRecovery(e, i), N.addHeartbeatIntervalMs(e, d), N.addHeartbeatTimeoutMs(e, f), N.addLimits(e, a), N.addFreshReason(e, o), N.addSerializer(e, s), N.addResumed(e, !!t.resumed), N.endWelcome(e);
		}
		case "Data": {
			let n = Ee(t.payload ?? /* @__PURE__ */ new Uint8Array(), "Data.payload"), r = n.length ? e.createByteVector(n) : 0, i = V(e, t.topic, "Data.topic"), a = t.position == null ? null : B(t.position, "Data.position"), o = L(t.seq ?? 0n, "Data.seq"), s = L(t.timestampMs ?? 0n, "Data.timestampMs");
			return v.startData(e), a !== null && v.addPosition(e, h.createStreamPosition(e, a[0], a[1])), v.addTimestampMs(e, s), v.addSeq(e, o), v.addPayload(e, r), v.addTopic(e, i), v.endData(e);
		}
		case "Ack": {
			let n = je(e, t.positions, "Ack.positions"), r = L(t.seq ?? 0n, "Ack.seq");
			return _.startAck(e), _.addSeq(e, r), _.addPositions(e, n), _.endAck(e);
		}
		case "Ping": {
			let n = R(t.id ?? 0, "Ping.id"), r = L(t.timestampMs ?? 0n, "Ping.timestampMs");
			return w.startPing(e), w.addTimestampMs(e, r), w.addId(e, n), w.endPing(e);
		}
		case "Pong": {
			let n = R(t.id ?? 0, "Pong.id"), r = L(t.echoTimestampMs ?? 0n, "Pong.echoTimestampMs"), i = L(t.timestampMs ?? 0n, "Pong.timestampMs");
			return T.startPong(e), T.addEchoTimestampMs(e, r), T.addTimestampMs(e, i), T.addId(e, n), T.endPong(e);
		}
		case "Subscribe": {
			let n = e.createString(z(t.topic, "Subscribe.topic")), r = R(t.requestId ?? 0, "Subscribe.requestId"), i = t.position == null ? null : B(t.position, "Subscribe.position");
			return D.startSubscribe(e), i !== null && D.addPosition(e, h.createStreamPosition(e, i[0], i[1])), D.addTopic(e, n), D.addRequestId(e, r), D.endSubscribe(e);
		}
		case "Unsubscribe": {
			let n = e.createString(z(t.topic, "Unsubscribe.topic")), r = R(t.requestId ?? 0, "Unsubscribe.requestId");
			return A.startUnsubscribe(e), A.addTopic(e, n), A.addRequestId(e, r), A.endUnsubscribe(e);
		}
		case "Subscribed": {
			let n = Me(e, t.recovery, "Subscribed.recovery"), r = R(t.requestId ?? 0, "Subscribed.requestId");
			return k.startSubscribed(e), k.addRecovery(e, n), k.addRequestId(e, r), k.endSubscribed(e);
		}
		case "Unsubscribed": {
			let n = e.createString(z(t.topic, "Unsubscribed.topic")), r = R(t.requestId ?? 0, "Unsubscribed.requestId");
			return j.startUnsubscribed(e), j.addTopic(e, n), j.addRequestId(e, r), j.endUnsubscribed(e);
		}
		case "Presence": {
			let n = e.createString(z(t.topic, "Presence.topic")), r = e.createString(z(t.sessionId, "Presence.sessionId")), i = Ne(e, t.metadata, "Presence.metadata"), a = De(t.action ?? ve.Join, ve, "PresenceAction", "Presence.action");
			return E.startPresence(e), E.addTopic(e, n), E.addSessionId(e, r), E.addMetadata(e, i), E.addAction(e, a), E.endPresence(e);
		}
		case "Error": {
			let n = V(e, t.message, "Error.message"), r = V(e, t.details, "Error.details"), i = we(t.code ?? 0, "Error.code"), a = R(t.requestId ?? 0, "Error.requestId");
			return y.startError(e), y.addMessage(e, n), y.addDetails(e, r), y.addRequestId(e, a), y.addCode(e, i), y.addRetryable(e, !!t.retryable), y.endError(e);
		}
		case "Goodbye": {
			let n = V(e, t.reason, "Goodbye.reason"), r = we(t.code ?? 0, "Goodbye.code"), i = R(t.reconnectAfterMs ?? 0, "Goodbye.reconnectAfterMs");
			return b.startGoodbye(e), b.addReason(e, n), b.addReconnectAfterMs(e, i), b.addCode(e, r), b.endGoodbye(e);
		}
		case "Refresh": {
			let n = V(e, t.token, "Refresh.token");
			return he.startRefresh(e), he.addToken(e, n), he.endRefresh(e);
		}
		case "Refreshed": {
			let n = L(t.credentialsExpireMs ?? 0n, "Refreshed.credentialsExpireMs");
			return ge.startRefreshed(e), ge.addCredentialsExpireMs(e, n), ge.endRefreshed(e);
		}
		default: throw new r(`cannot encode a message of type ${String(t.type)}`);
	}
}
function Le(e) {
	if (typeof e != "object" || !e || !(e.type in Se)) throw new r(`cannot encode ${String(e?.type)}`);
	let t = new pe(e.type === "Data" && e.payload ? e.payload.length + 128 : 256), n = Ie(t, e);
	return F.startEnvelope(t), F.addBody(t, n), F.addBodyType(t, Se[e.type]), F.finishEnvelopeBuffer(t, F.endEnvelope(t)), t.asUint8Array();
}
var Re = {
	u8: 1,
	u16: 2,
	u32: 4,
	u64: 8,
	pos: 16,
	str: 4,
	bytes: 4,
	table: 4,
	tables: 4
}, H = (e, t, n = {}) => ({
	name: e,
	kind: t,
	...n
}), ze = {
	name: "TopicPosition",
	fields: [H("topic", "str", { required: !0 }), H("position", "pos", { required: !0 })]
}, Be = {
	name: "TopicRecovery",
	fields: [
		H("topic", "str", { required: !0 }),
		H("status", "u8"),
		H("position", "pos"),
		H("lost_from", "u64"),
		H("lost_to", "u64"),
		H("replayed", "u64")
	]
}, Ve = {
	name: "KeyValue",
	fields: [H("key", "str", { required: !0 }), H("value", "str")]
}, He = {
	name: "ClientInfo",
	fields: [
		H("name", "str"),
		H("version", "str"),
		H("platform", "str"),
		H("metadata", "tables", { table: Ve })
	]
}, Ue = {
	name: "Limits",
	fields: [
		H("max_message_size", "u32"),
		H("max_unacked", "u32"),
		H("max_topics", "u32"),
		H("max_messages_per_second", "u32"),
		H("max_bytes_per_second", "u32")
	]
}, We = {
	[P.Hello]: {
		name: "Hello",
		fields: [
			H("protocol_version", "u16"),
			H("session_id", "str"),
			H("resume_token", "bytes"),
			H("positions", "tables", { table: ze }),
			H("last_acked_seq", "u64"),
			H("auth_token", "str"),
			H("client", "table", { table: He }),
			H("serializer", "str")
		]
	},
	[P.Welcome]: {
		name: "Welcome",
		fields: [
			H("session_id", "str", { required: !0 }),
			H("resume_token", "bytes", { required: !0 }),
			H("resumed", "u8"),
			H("recovery", "tables", { table: Be }),
			H("last_received_seq", "u64"),
			H("heartbeat_interval_ms", "u32"),
			H("heartbeat_timeout_ms", "u32"),
			H("limits", "table", { table: Ue }),
			H("server_time_ms", "u64"),
			H("fresh_reason", "str"),
			H("credentials_expire_ms", "u64"),
			H("serializer", "str")
		]
	},
	[P.Data]: {
		name: "Data",
		fields: [
			H("topic", "str"),
			H("position", "pos"),
			H("seq", "u64"),
			H("timestamp_ms", "u64"),
			H("payload", "bytes")
		]
	},
	[P.Ack]: {
		name: "Ack",
		fields: [H("seq", "u64"), H("positions", "tables", { table: ze })]
	},
	[P.Ping]: {
		name: "Ping",
		fields: [H("id", "u32"), H("timestamp_ms", "u64")]
	},
	[P.Pong]: {
		name: "Pong",
		fields: [
			H("id", "u32"),
			H("echo_timestamp_ms", "u64"),
			H("timestamp_ms", "u64")
		]
	},
	[P.Subscribe]: {
		name: "Subscribe",
		fields: [
			H("request_id", "u32"),
			H("topic", "str", { required: !0 }),
			H("position", "pos")
		]
	},
	[P.Unsubscribe]: {
		name: "Unsubscribe",
		fields: [H("request_id", "u32"), H("topic", "str", { required: !0 })]
	},
	[P.Subscribed]: {
		name: "Subscribed",
		fields: [H("request_id", "u32"), H("recovery", "table", {
			table: Be,
			required: !0
		})]
	},
	[P.Unsubscribed]: {
		name: "Unsubscribed",
		fields: [H("request_id", "u32"), H("topic", "str", { required: !0 })]
	},
	[P.Presence]: {
		name: "Presence",
		fields: [
			H("topic", "str", { required: !0 }),
			H("action", "u8"),
			H("session_id", "str", { required: !0 }),
			H("metadata", "tables", { table: Ve })
		]
	},
	[P.Error]: {
		name: "Error",
		fields: [
			H("code", "u16"),
			H("message", "str"),
			H("details", "str"),
			H("retryable", "u8"),
			H("request_id", "u32")
		]
	},
	[P.Goodbye]: {
		name: "Goodbye",
		fields: [
			H("code", "u16"),
			H("reason", "str"),
			H("reconnect_after_ms", "u32")
		]
	},
	[P.Refresh]: {
		name: "Refresh",
		fields: [H("token", "str")]
	},
	[P.Refreshed]: {
		name: "Refreshed",
		fields: [H("credentials_expire_ms", "u64")]
	}
}, Ge = new TextDecoder("utf-8", { fatal: !0 }), Ke = class {
	buf;
	view;
	size;
	budget;
	strings = /* @__PURE__ */ new Set();
	constructor(e) {
		this.buf = e, this.view = new DataView(e.buffer, e.byteOffset, e.byteLength), this.size = e.byteLength, this.budget = this.size;
	}
	u8(e) {
		return this.view.getUint8(e);
	}
	u32(e) {
		return this.view.getUint32(e, !0);
	}
	openTable(e, t, n) {
		let r = this.size;
		if (e < 0 || e + 4 > r) throw new a(`${n}: table offset ${e} is outside the ${r}-byte buffer`);
		let i = e - this.view.getInt32(e, !0);
		if (i < 0 || i + 4 > r) throw new a(`${n}: vtable offset ${i} is outside the buffer`);
		let o = this.view.getUint16(i, !0), s = this.view.getUint16(i + 2, !0);
		if (o < 4 || o & 1 || o >= 32768 || i + o > r) throw new a(`${n}: bad vtable size ${o}`);
		if (s < 4 || s >= 32768 || e + s > r) throw new a(`${n}: bad table size ${s}`);
		let c = o - 4 >> 1, l = [];
		for (let e = 0; e < t; e++) l.push(e < c ? this.view.getUint16(i + 4 + 2 * e, !0) : 0);
		return {
			inline: s,
			fields: l
		};
	}
	charge(e, t) {
		if (this.budget -= e, this.budget < 0) throw new a(`${t}: the envelope decodes to more than its own size`);
	}
	follow(e, t) {
		let n = e + this.u32(e);
		if (n + 4 > this.size) throw new a(`${t}: offset ${n} is outside the ${this.size}-byte buffer`);
		return n;
	}
	string(e, t) {
		if (this.strings.has(e)) return;
		let n = this.u32(e), r = e + 4 + n;
		if (r >= this.size) throw new a(`${t}: string of ${n} bytes runs past the buffer`);
		if (this.buf[r] !== 0) throw new a(`${t}: string is not NUL-terminated`);
		this.charge(n + 1, t);
		try {
			Ge.decode(this.buf.subarray(e + 4, r));
		} catch {
			throw new a(`${t}: invalid UTF-8`);
		}
		this.strings.add(e);
	}
	vector(e, t, n, r = !0) {
		let i = this.u32(e), o = e + 4;
		if (o + i * t > this.size) throw new a(`${n}: vector of ${i} elements runs past the buffer`);
		return r && this.charge(i, n), [o, i];
	}
	table(e, t, n) {
		let { inline: r, fields: i } = this.openTable(e, t.fields.length, n);
		t.fields.forEach((n, o) => {
			let s = `${t.name}.${n.name}`, c = i[o];
			if (!c) {
				if (n.required) throw new a(`missing required field ${s}`);
				return;
			}
			if (c < 4 || c + Re[n.kind] > r) throw new a(`${s}: field offset ${c} is outside its table`);
			let l = e + c;
			switch (n.kind) {
				case "str":
					this.string(this.follow(l, s), s);
					break;
				case "bytes":
					this.vector(this.follow(l, s), 1, s, s !== "Data.payload");
					break;
				case "table":
					this.table(this.follow(l, s), n.table, s);
					break;
				case "tables": {
					let [e, t] = this.vector(this.follow(l, s), 4, s);
					for (let r = 0; r < t; r++) this.table(this.follow(e + 4 * r, s), n.table, s);
					break;
				}
			}
		});
	}
};
function qe(e) {
	let t = e.byteLength;
	if (t < 8) throw new a(`envelope too short (${t} bytes)`);
	let n = String.fromCharCode(e[4], e[5], e[6], e[7]);
	if (n !== "SGM1") throw new a(`not a SigmaSockets envelope (file identifier ${JSON.stringify(n)})`);
	let r = new Ke(e), i = r.u32(0), { inline: s, fields: c } = r.openTable(i, 2, "Envelope"), [l, u] = c, d = 0;
	if (l) {
		if (!(l >= 4 && l < s)) throw new a("Envelope.body_type: field offset is outside its table");
		d = r.u8(i + l);
	}
	if (d === 0) throw new a("envelope has no body");
	if (!u) throw new a(`envelope of type ${d} has no body`);
	if (!(u >= 4 && u <= s - 4)) throw new a("Envelope.body: field offset is outside its table");
	let f = We[d];
	if (f === void 0) throw new o(d);
	let ee = i + u, p = ee + r.u32(ee);
	return r.table(p, f, f.name), {
		bodyType: d,
		spec: f
	};
}
var Je = /* @__PURE__ */ new Uint8Array();
function U(e) {
	return e === null ? null : {
		epoch: e.epoch(),
		offset: e.offset()
	};
}
function Ye(e) {
	return {
		topic: e.topic() ?? "",
		position: U(e.position())
	};
}
function Xe(e) {
	let t = e.status(), n = t === I.Recovered || t === I.Fresh ? t : I.Failed;
	return {
		topic: e.topic() ?? "",
		status: n,
		position: U(e.position()),
		lostFrom: e.lostFrom(),
		lostTo: e.lostTo(),
		replayed: e.replayed()
	};
}
function Ze(e, t) {
	let n = {};
	for (let r = 0; r < e; r++) {
		let e = t(r);
		Object.defineProperty(n, e.key() ?? "", {
			value: e.value() ?? "",
			enumerable: !0,
			writable: !0,
			configurable: !0
		});
	}
	return n;
}
function Qe(e) {
	return e === null ? null : {
		name: e.name() ?? "",
		version: e.version() ?? "",
		platform: e.platform() ?? "",
		metadata: Ze(e.metadataLength(), (t) => e.metadata(t))
	};
}
function $e(e) {
	return e === null ? null : {
		maxMessageSize: e.maxMessageSize(),
		maxUnacked: e.maxUnacked(),
		maxTopics: e.maxTopics(),
		maxMessagesPerSecond: e.maxMessagesPerSecond(),
		maxBytesPerSecond: e.maxBytesPerSecond()
	};
}
function et(e, t) {
	switch (e) {
		case P.Hello: {
			let e = t.body(new C()), n = [];
			for (let t = 0; t < e.positionsLength(); t++) n.push(Ye(e.positions(t)));
			return {
				type: "Hello",
				protocolVersion: e.protocolVersion(),
				sessionId: e.sessionId() ?? "",
				resumeToken: (e.resumeTokenArray() ?? Je).slice(),
				positions: n,
				lastAckedSeq: e.lastAckedSeq(),
				authToken: e.authToken() ?? "",
				client: Qe(e.client()),
				serializer: e.serializer() ?? ""
			};
		}
		case P.Welcome: {
			let e = t.body(new N()), n = [];
			for (let t = 0; t < e.recoveryLength(); t++) n.push(Xe(e.recovery(t)));
			return {
				type: "Welcome",
				sessionId: e.sessionId() ?? "",
				resumeToken: (e.resumeTokenArray() ?? Je).slice(),
				resumed: e.resumed(),
				recovery: n,
				lastReceivedSeq: e.lastReceivedSeq(),
				heartbeatIntervalMs: e.heartbeatIntervalMs(),
				heartbeatTimeoutMs: e.heartbeatTimeoutMs(),
				limits: $e(e.limits()),
				serverTimeMs: e.serverTimeMs(),
				freshReason: e.freshReason() ?? "",
				credentialsExpireMs: e.credentialsExpireMs(),
				serializer: e.serializer() ?? ""
			};
		}
		case P.Data: {
			let e = t.body(new v());
			return {
				type: "Data",
				topic: e.topic() ?? "",
				position: U(e.position()),
				seq: e.seq(),
				timestampMs: e.timestampMs(),
				payload: e.payloadArray() ?? Je
			};
		}
		case P.Ack: {
			let e = t.body(new _()), n = [];
			for (let t = 0; t < e.positionsLength(); t++) n.push(Ye(e.positions(t)));
			return {
				type: "Ack",
				seq: e.seq(),
				positions: n
			};
		}
		case P.Ping: {
			let e = t.body(new w());
			return {
				type: "Ping",
				id: e.id(),
				timestampMs: e.timestampMs()
			};
		}
		case P.Pong: {
			let e = t.body(new T());
			return {
				type: "Pong",
				id: e.id(),
				echoTimestampMs: e.echoTimestampMs(),
				timestampMs: e.timestampMs()
			};
		}
		case P.Subscribe: {
			let e = t.body(new D());
			return {
				type: "Subscribe",
				requestId: e.requestId(),
				topic: e.topic() ?? "",
				position: U(e.position())
			};
		}
		case P.Unsubscribe: {
			let e = t.body(new A());
			return {
				type: "Unsubscribe",
				requestId: e.requestId(),
				topic: e.topic() ?? ""
			};
		}
		case P.Subscribed: {
			let e = t.body(new k());
			return {
				type: "Subscribed",
				requestId: e.requestId(),
				recovery: Xe(e.recovery())
			};
		}
		case P.Unsubscribed: {
			let e = t.body(new j());
			return {
				type: "Unsubscribed",
				requestId: e.requestId(),
				topic: e.topic() ?? ""
			};
		}
		case P.Presence: {
			let e = t.body(new E()), n = e.action();
			if (n !== ve.Join && n !== ve.Leave) throw new o(P.Presence, `Presence with unknown action ${n}`);
			return {
				type: "Presence",
				topic: e.topic() ?? "",
				action: n,
				sessionId: e.sessionId() ?? "",
				metadata: Ze(e.metadataLength(), (t) => e.metadata(t))
			};
		}
		case P.Error: {
			let e = t.body(new y());
			return {
				type: "Error",
				code: e.code(),
				message: e.message() ?? "",
				details: e.details() ?? "",
				retryable: e.retryable(),
				requestId: e.requestId()
			};
		}
		case P.Goodbye: {
			let e = t.body(new b());
			return {
				type: "Goodbye",
				code: e.code(),
				reason: e.reason() ?? "",
				reconnectAfterMs: e.reconnectAfterMs()
			};
		}
		case P.Refresh: return {
			type: "Refresh",
			token: t.body(new he()).token() ?? ""
		};
		case P.Refreshed: return {
			type: "Refreshed",
			credentialsExpireMs: t.body(new ge()).credentialsExpireMs()
		};
		default: throw new o(e);
	}
}
function tt(e) {
	let t = e instanceof Uint8Array ? e : new Uint8Array(e);
	try {
		let { bodyType: e } = qe(t), n = new fe(t);
		return et(e, F.getRootAsEnvelope(n));
	} catch (e) {
		throw e instanceof a ? e : new a(`malformed envelope (${String(e)})`);
	}
}
// ../../clients/js/src/session.ts
var nt = "sigma.v1", rt = {
	reconnectInterval: 1e3,
	maxReconnectInterval: 3e4,
	reconnectMultiplier: 2,
	maxReconnectAttempts: 10,
	heartbeatInterval: 3e4,
	heartbeatTimeout: 7e4,
	connectTimeout: 1e4,
	handshakeTimeout: 1e4,
	maxPending: 1e3,
	maxMessageSize: 1 << 20,
	authToken: "",
	clientInfo: null,
	serializer: "",
	refreshTokens: !1,
	refreshMargin: 3e4,
	pace: .9,
	wallClockOffset: 0,
	probeTimeout: 3e3,
	inboxAckEvery: 128,
	inboxAckDelay: 1e3
};
function it(e) {
	let t;
	try {
		t = new URL(e);
	} catch {
		throw TypeError(`not a WebSocket URL (ws:// or wss://): ${JSON.stringify(e)}`);
	}
	if (t.protocol !== "ws:" && t.protocol !== "wss:") throw TypeError(`not a WebSocket URL (ws:// or wss://): ${JSON.stringify(e)}`);
	if (!t.hostname) throw TypeError(`URL has no host: ${JSON.stringify(e)}`);
	return t;
}
function at(e, t) {
	let n = Math.min(t - 1, 64);
	return Math.min(e.maxReconnectInterval, e.reconnectInterval * e.reconnectMultiplier ** n);
}
function ot(e) {
	it(e.url);
	let t = (t, n, r = !1) => {
		let i = e[t];
		if (typeof i != "number" || !Number.isFinite(i) || i < n || r && i === n) throw RangeError(`${t} must be a finite number ${r ? ">" : ">="} ${n}, got ${i}`);
	};
	if (t("reconnectInterval", 0, !0), t("maxReconnectInterval", 0, !0), t("reconnectMultiplier", 1), t("heartbeatInterval", 0), t("heartbeatTimeout", 0), t("connectTimeout", 0, !0), t("handshakeTimeout", 0, !0), t("probeTimeout", 0, !0), t("inboxAckDelay", 0), !(Number.isInteger(e.inboxAckEvery) && e.inboxAckEvery >= 0)) throw RangeError("inboxAckEvery must be an integer >= 0");
	if (t("maxMessageSize", 128, !0), e.reconnectInterval > e.maxReconnectInterval) throw RangeError("reconnectInterval must not exceed maxReconnectInterval");
	let n = e.maxReconnectAttempts;
	if (n !== null && n !== Infinity && !(Number.isInteger(n) && n >= 1)) throw RangeError("maxReconnectAttempts must be an integer >= 1, or null/Infinity");
	if (!(Number.isInteger(e.maxPending) && e.maxPending >= 1)) throw RangeError("maxPending must be an integer >= 1");
	if (e.heartbeatInterval && e.heartbeatTimeout <= e.heartbeatInterval) throw RangeError(`heartbeatTimeout must exceed heartbeatInterval (${e.heartbeatTimeout} <= ${e.heartbeatInterval})`);
}
var st = new TextEncoder(), ct = /* @__PURE__ */ new Set([
	"Data",
	"Ack",
	"Subscribed",
	"Unsubscribed",
	"Presence",
	"Error",
	"Refreshed"
]), lt = /* @__PURE__ */ new Set([
	t.AUTH_FAILED,
	t.UNSUPPORTED_VERSION,
	t.SESSION_TAKEN_OVER,
	t.SERIALIZER_MISMATCH
]), ut = {
	[e.BAD_ENVELOPE]: t.BAD_ENVELOPE,
	[e.UNEXPECTED_MESSAGE]: t.UNEXPECTED_MESSAGE,
	[e.HELLO_TIMEOUT]: t.UNEXPECTED_MESSAGE,
	[e.HEARTBEAT_TIMEOUT]: t.HEARTBEAT_TIMEOUT
}, dt = class n {
	config;
	random;
	_status = "disconnected";
	out = [];
	conn = null;
	attemptId = 0;
	attemptDeadline = Infinity;
	reconnectAt = Infinity;
	failures = 0;
	goodbyeFloor = 0;
	wanted = !1;
	sessionId = "";
	token = /* @__PURE__ */ new Uint8Array();
	positions = /* @__PURE__ */ new Map();
	subscriptions = /* @__PURE__ */ new Set();
	unsubscribing = /* @__PURE__ */ new Set();
	requests = /* @__PURE__ */ new Map();
	latest = /* @__PURE__ */ new Map();
	nextRequest = 1;
	pending = [];
	nextSeq = 1;
	sentUpto = 0;
	maxUnacked;
	maxMessageSize;
	lastAckedSeq = 0;
	duplicatesDropped = 0;
	unknownMessages = 0;
	connectedAt = null;
	resumed = !1;
	rtt = null;
	online = !0;
	authToken;
	credentialsExpireMs = 0n;
	refreshAt = Infinity;
	awaitingToken = !1;
	tokenFresh = !1;
	serverSkewMs = 0n;
	paceMsgs = null;
	paceBytes = null;
	paceAt = Infinity;
	pacedControl = [];
	heartbeatsOwed = 0;
	inboxUnacked = 0;
	inboxAckAt = Infinity;
	lastNow = 0;
	constructor(e, t) {
		ot(e), this.config = e, this.random = t, this.maxUnacked = e.maxPending, this.maxMessageSize = e.maxMessageSize, this.authToken = e.authToken, this.checkHelloFits(null);
	}
	get status() {
		return this._status;
	}
	get pendingCount() {
		return this.pending.length;
	}
	get attempt() {
		return this.attemptId;
	}
	takeOutputs() {
		let e = this.out;
		return this.out = [], e;
	}
	nextDeadline() {
		let e = Math.min(this.attemptDeadline, this.reconnectAt, this.refreshAt, this.paceAt, this.inboxAckAt), t = this.conn;
		return t !== null && (t.state === "hello" ? e = Math.min(e, t.openedAt + this.config.handshakeTimeout) : t.state === "open" && (t.interval && (e = Math.min(e, t.nextPing, t.lastReceived + t.timeout)), e = Math.min(e, t.probeDeadline))), e === Infinity ? null : e;
	}
	connect(e) {
		(this._status === "disconnected" || this._status === "error") && (this.wanted = !0, this.failures = 0, this.setStatus("connecting"), this.open(e));
	}
	disconnect(n, r = "client disconnect") {
		this.wanted = !1, this.reconnectAt = this.attemptDeadline = Infinity;
		let i = this.conn;
		i !== null && (i.state === "open" && this.sendBody({
			type: "Goodbye",
			code: t.NORMAL,
			reason: r
		}), this.out.push({
			kind: "close",
			attempt: this.attemptId,
			code: e.NORMAL_CLOSURE,
			reason: ee(r)
		})), this.conn = null, this.attemptId += 1, this.inboxAckAt = Infinity, this.forgetSession(), this.setStatus("disconnected");
	}
	refreshToken(e, t) {
		if (!e) throw new r("refreshToken needs a token");
		this.authToken = e, this.tokenFresh = !0, this.refreshAt = Infinity, this.isOpen ? this.sendControl([
			"refresh",
			e,
			0
		]) : this.awaitingToken && this.wanted && (this.awaitingToken = !1, this.reconnectAt = t);
	}
	send(e, t, n = "") {
		if (this.lastNow = t, !(e instanceof Uint8Array)) throw new r("send() needs a Uint8Array payload");
		if (typeof n != "string") throw new r("topic must be a string");
		if (e.length + st.encode(n).length + 128 > this.maxMessageSize) throw new r(`message of ${e.length} bytes is too large: the limit is ${this.maxMessageSize - 128} bytes of payload and topic`);
		if (this.pending.length >= this.config.maxPending) return null;
		let i = {
			seq: this.nextSeq,
			topic: n,
			payload: e.slice(),
			timestampMs: this.wallMs(t)
		};
		return this.nextSeq += 1, this.pending.push(i), this.transmit(), i.seq;
	}
	subscribe(e, t) {
		if (typeof e != "string" || !e || e.startsWith("$")) throw new r(`invalid topic name ${JSON.stringify(e)}`);
		return this.subscriptions.has(e) || this.checkHelloFits(e), this.subscriptions.add(e), this.unsubscribing.delete(e), this.request(e, !0);
	}
	unsubscribe(e, t) {
		if (!this.subscriptions.has(e)) throw new r(`not subscribed to ${JSON.stringify(e)}`);
		return this.subscriptions.delete(e), this.unsubscribing.add(e), this.request(e, !1);
	}
	transportOpened(t, n, r = nt) {
		let i = this.conn;
		t === this.attemptId && i !== null && i.state === "opening" && this.wanted && (this.attemptDeadline = Infinity, r === "sigma.v1" ? (i.state = "hello", i.openedAt = i.lastReceived = n, this.sendBody(this.hello())) : (this.out.push({
			kind: "close",
			attempt: t,
			code: e.PROTOCOL_ERROR,
			reason: "no subprotocol"
		}), this.conn = null, this.attemptId += 1, this.lost(n, e.ABNORMAL_CLOSURE, `the server did not select the subprotocol ${nt}` + (r ? ` (it chose ${JSON.stringify(r)})` : ""), null, null)));
	}
	transportError(e, t) {
		e === this.attemptId && this.conn !== null && t && (this.conn.transportError = t);
	}
	receive(t, n, r) {
		this.lastNow = r;
		let s = this.conn;
		if (t !== this.attemptId || s === null || s.state === "opening") return;
		if (s.lastReceived = r, s.probeDeadline = Infinity, typeof n == "string") {
			this.fail(new i("text message", e.UNSUPPORTED_DATA), r);
			return;
		}
		let c = n instanceof Uint8Array ? n : new Uint8Array(n);
		if (c.length > this.config.maxMessageSize) {
			this.fail(new i(`message of ${c.length} bytes exceeds max_message_size ${this.config.maxMessageSize}`, e.MESSAGE_TOO_BIG), r);
			return;
		}
		let l;
		try {
			l = tt(c);
		} catch (e) {
			if (e instanceof o) {
				this.unknownMessages += 1;
				return;
			}
			this.fail(e instanceof a ? e : new a(String(e)), r);
			return;
		}
		this.onEnvelope(s, l, r);
	}
	transportClosed(t, n, r, i) {
		let a = this.conn;
		t === this.attemptId && a !== null && (this.conn = null, this.attemptId += 1, a.state === "opening" ? (this.attemptDeadline = Infinity, this.lost(i, e.ABNORMAL_CLOSURE, a.transportError || r || "connect failed", null, null)) : this.lost(i, n || e.NO_STATUS_RCVD, r, null, a.peerGoodbye));
	}
	handleTimer(t) {
		t >= this.attemptDeadline && (this.attemptDeadline = Infinity, this.out.push({
			kind: "close",
			attempt: this.attemptId,
			code: e.NORMAL_CLOSURE,
			reason: "connect timeout"
		}), this.conn = null, this.attemptId += 1, this.lost(t, e.ABNORMAL_CLOSURE, `connect timed out after ${this.config.connectTimeout / 1e3} s`, null, null)), t >= this.reconnectAt && (this.reconnectAt = Infinity, this.open(t)), t >= this.refreshAt && (this.refreshAt = Infinity, this.out.push({
			kind: "token_needed",
			reason: "refresh"
		})), t >= this.paceAt && (this.paceAt = Infinity, this.lastNow = t, this.transmit()), t >= this.inboxAckAt && this.sendInboxAck();
		let n = this.conn;
		n !== null && (this.lastNow = t, n.state === "hello" ? t >= n.openedAt + this.config.handshakeTimeout && this.fail(new i("no Welcome within the handshake timeout", e.HELLO_TIMEOUT), t) : n.state === "open" && (t >= n.probeDeadline ? this.fail(new i(`the network went ${this.online ? "away and came back" : "offline"}: nothing received within ${this.config.probeTimeout / 1e3} s of the probe`, e.HEARTBEAT_TIMEOUT), t) : n.interval && (t >= n.lastReceived + n.timeout ? this.fail(new i(`nothing received for ${((t - n.lastReceived) / 1e3).toFixed(1)} s (heartbeat timeout ${n.timeout / 1e3} s)`, e.HEARTBEAT_TIMEOUT), t) : t >= n.nextPing && (n.pingId = n.pingId + 1 >>> 0, this.sendBody({
			type: "Ping",
			id: n.pingId,
			timestampMs: this.wallMs(t)
		}), n.nextPing = t + n.interval))));
	}
	networkChanged(e, t) {
		this.online = e;
		let n = this.conn;
		n !== null && n.state === "open" ? n.probeDeadline === Infinity && (n.pingId = n.pingId + 1 >>> 0, this.sendBody({
			type: "Ping",
			id: n.pingId,
			timestampMs: this.wallMs(t)
		}), n.probeDeadline = t + this.config.probeTimeout) : e && this._status === "reconnecting" && this.reconnectAt !== Infinity && (this.reconnectAt = Infinity, this.open(t));
	}
	wallMs(e) {
		return BigInt(Math.max(0, Math.floor(e + this.config.wallClockOffset)));
	}
	setStatus(e) {
		if (e !== this._status) {
			let t = this._status;
			this._status = e, this.out.push({
				kind: "status",
				status: e,
				previous: t
			});
		}
	}
	open(e) {
		this.attemptId += 1, this.attemptDeadline = e + this.config.connectTimeout, this.conn = {
			state: "opening",
			openedAt: e,
			lastReceived: e,
			nextPing: Infinity,
			pingId: 0,
			interval: this.config.heartbeatInterval,
			timeout: this.config.heartbeatTimeout,
			peerGoodbye: null,
			transportError: "",
			probeDeadline: Infinity
		}, this.out.push({
			kind: "open",
			attempt: this.attemptId,
			url: this.config.url
		});
	}
	hello() {
		return {
			type: "Hello",
			sessionId: this.sessionId,
			resumeToken: this.token,
			positions: [...this.positions].map(([e, t]) => ({
				topic: e,
				position: t
			})),
			lastAckedSeq: BigInt(this.lastAckedSeq),
			authToken: this.authToken,
			client: this.config.clientInfo,
			serializer: this.config.serializer === "raw" ? "" : this.config.serializer
		};
	}
	sendBody(e) {
		(e.type === "Ping" || e.type === "Pong" || e.type === "Ack") && (this.heartbeatsOwed += 1), this.out.push({
			kind: "send",
			attempt: this.attemptId,
			data: Le(e)
		});
	}
	get isOpen() {
		return this.conn !== null && this.conn.state === "open";
	}
	checkHelloFits(e) {
		let t = /* @__PURE__ */ new Set([
			...this.subscriptions,
			...this.unsubscribing,
			...this.positions.keys(),
			"$all",
			"$inbox"
		]);
		e !== null && t.add(e);
		let n = {
			epoch: 18446744073709551615n,
			offset: 18446744073709551615n
		}, i = Le({
			type: "Hello",
			sessionId: this.sessionId || "x".repeat(32),
			resumeToken: this.token.length ? this.token : /* @__PURE__ */ new Uint8Array(64),
			positions: [...t].map((e) => ({
				topic: e,
				position: n
			})),
			lastAckedSeq: 18446744073709551615n,
			authToken: this.config.authToken,
			client: this.config.clientInfo
		}).length;
		if (i > this.maxMessageSize) throw e === null ? new r(`the Hello would be ${i} bytes, over the ${this.maxMessageSize}-byte message limit: authToken or clientInfo too large`) : new r(`cannot subscribe to ${JSON.stringify(e)}: with ${t.size} streams the Hello that resumes this session would be ${i} bytes, over the ${this.maxMessageSize}-byte message limit; unsubscribe from some topics or use shorter names`);
	}
	request(e, t) {
		let n = this.nextRequest;
		return this.nextRequest = this.nextRequest % 4294967295 + 1, this.requests.set(n, {
			topic: e,
			subscribe: t
		}), this.latest.set(e, n), this.sendControl([
			t ? "subscribe" : "unsubscribe",
			e,
			n
		]), n;
	}
	sendControl(e) {
		this.isOpen && (this.paceMsgs === null ? this.sendBody(this.controlBody(e)) : (this.pacedControl.push(e), this.transmit()));
	}
	controlBody([e, t, n]) {
		return e === "subscribe" ? {
			type: "Subscribe",
			topic: t,
			requestId: n,
			position: this.positions.get(t) ?? null
		} : e === "unsubscribe" ? {
			type: "Unsubscribe",
			topic: t,
			requestId: n
		} : {
			type: "Refresh",
			token: t
		};
	}
	transmit() {
		if (!this.isOpen) return;
		let e = this.lastAckedSeq + this.maxUnacked, t = this.paceMsgs !== null || this.paceBytes !== null;
		for (; this.pacedControl.length > 0;) {
			if (t && !this.paced(0)) return;
			this.sendBody(this.controlBody(this.pacedControl.shift()));
		}
		for (let n of this.pending) if (!(n.seq <= this.sentUpto)) {
			if (n.seq > e || t && !this.paced(n.payload.length)) break;
			this.sendBody({
				type: "Data",
				topic: n.topic,
				seq: BigInt(n.seq),
				timestampMs: n.timestampMs,
				payload: n.payload
			}), this.sentUpto = n.seq;
		}
	}
	paced(e) {
		let t = Math.round(this.lastNow), n = 0, r = this.heartbeatsOwed;
		this.heartbeatsOwed = 0;
		for (let [i, a] of [[this.paceMsgs, 1], [this.paceBytes, e]]) {
			if (i === null) continue;
			let e = i[0], o = i[3], s = Math.min(o, i[1] + (t - i[2]) * e / 1e3);
			i === this.paceMsgs && (s -= r), i[1] = s, i[2] = t;
			let c = Math.min(a, o);
			s < c && (n = Math.max(n, Math.ceil((c - s) * 1e3 / e), 1));
		}
		if (n) return this.paceAt = Math.min(this.paceAt, t + n), !1;
		for (let [t, n] of [[this.paceMsgs, 1], [this.paceBytes, e]]) t !== null && (t[1] -= n);
		return !0;
	}
	onCredentials(e, t, n) {
		if (this.credentialsExpireMs = e, this.refreshAt = Infinity, !e || !this.config.refreshTokens) return;
		let r = 0;
		t && (r = Math.max(0, Number(e - t)));
		let i = Math.max(r - Math.round(this.config.refreshMargin), Math.floor(r / 2));
		this.refreshAt = n + i;
	}
	fail(e, n) {
		let r = this.conn;
		r !== null && (r.state === "open" && this.sendBody({
			type: "Goodbye",
			code: ut[e.code] ?? t.UNKNOWN,
			reason: e.reason
		}), this.out.push({
			kind: "close",
			attempt: this.attemptId,
			code: e.code,
			reason: e.reason
		}), this.conn = null, this.attemptId += 1, this.lost(n, e.code, e.reason, e, r.peerGoodbye));
	}
	onEnvelope(e, t, n) {
		switch (t.type) {
			case "Ping":
				if (e.state === "open") {
					this.sendBody({
						type: "Pong",
						id: t.id,
						echoTimestampMs: t.timestampMs,
						timestampMs: this.wallMs(n)
					});
					return;
				}
				break;
			case "Pong":
				if (e.state === "open") {
					let e = Math.max(0, Number(this.wallMs(n) - t.echoTimestampMs));
					this.rtt = this.rtt === null ? e : this.rtt + (e - this.rtt) / 8;
					return;
				}
				break;
			case "Goodbye":
				e.peerGoodbye = t;
				return;
		}
		if (e.state === "hello") {
			if (t.type === "Welcome") {
				t.heartbeatIntervalMs && (e.interval = t.heartbeatIntervalMs), t.heartbeatTimeoutMs > t.heartbeatIntervalMs && (e.timeout = t.heartbeatTimeoutMs), e.state = "open", e.lastReceived = n, e.nextPing = e.interval ? n + e.interval : Infinity, this.onWelcome(t, n);
				return;
			}
			this.unexpected(e, t, n);
		} else ct.has(t.type) ? this.onBody(t, n) : this.unexpected(e, t, n);
	}
	unexpected(t, n, r) {
		this.fail(new i(`unexpected ${n.type} from the server in state ${t.state === "hello" ? "hello" : "open"}`, e.UNEXPECTED_MESSAGE), r);
	}
	onWelcome(e, t) {
		let n = this.sessionId;
		if (e.resumed) this.dropAcked(ft(e.lastReceivedSeq));
		else {
			let t = this.pending.length;
			this.pending.forEach((e, t) => {
				e.seq = t + 1;
			}), this.nextSeq = t + 1, this.lastAckedSeq = 0, n && this.out.push({
				kind: "session_reset",
				oldSessionId: n,
				newSessionId: e.sessionId,
				reason: e.freshReason,
				resent: t
			});
		}
		this.sessionId = e.sessionId, this.token = e.resumeToken, this.tokenFresh = !1, this.serverSkewMs = e.serverTimeMs ? e.serverTimeMs - this.wallMs(t) : 0n, this.onCredentials(e.credentialsExpireMs, e.serverTimeMs, t);
		let r = this.config.pace, i = e.limits, a = Math.round(t);
		if (this.paceMsgs = null, this.paceBytes = null, i !== null && r && i.maxMessagesPerSecond) {
			let e = i.maxMessagesPerSecond * r, t = Math.max(Math.min(e, 1), e - 2);
			this.paceMsgs = [
				e,
				t,
				a,
				t
			];
		}
		if (i !== null && r && i.maxBytesPerSecond) {
			let e = i.maxBytesPerSecond * r;
			this.paceBytes = [
				e,
				e,
				a,
				e
			];
		}
		this.paceAt = Infinity, this.heartbeatsOwed = 0, this.pacedControl = [], this.lastNow = t;
		let o = e.limits;
		o !== null && (o.maxUnacked && (this.maxUnacked = Math.min(this.config.maxPending, o.maxUnacked)), o.maxMessageSize && (this.maxMessageSize = Math.min(this.config.maxMessageSize, o.maxMessageSize))), this.sentUpto = this.lastAckedSeq;
		let s = /* @__PURE__ */ new Set();
		for (let [e, t] of this.latest) this.requests.get(t)?.subscribe && s.add(e);
		let c = /* @__PURE__ */ new Set();
		for (let t of e.recovery) {
			if (this.unsubscribing.has(t.topic)) this.updatePosition(t);
			else if (!this.applyRecovery(t)) continue;
			t.topic.startsWith("$") || c.add(t.topic);
		}
		this.failures = 0, this.goodbyeFloor = 0, this.connectedAt = t, this.resumed = e.resumed, e.resumed ? this.inboxUnacked && this.inboxAckAt === Infinity && (this.inboxAckAt = t + this.config.inboxAckDelay) : this.inboxUnacked = 0, this.setStatus("connected"), this.out.push({
			kind: "connected",
			sessionId: e.sessionId,
			resumed: e.resumed,
			freshReason: e.freshReason
		}), this.reconcile(c, s), this.transmit();
	}
	reconcile(e, t) {
		this.requests.clear(), this.latest.clear();
		let n = (e) => [...e].sort((e, t) => e < t ? -1 : +(e > t));
		for (let r of n(this.subscriptions)) e.has(r) || (t.has(r) || !this.positions.has(r)) && (this.positions.delete(r), this.request(r, !0));
		for (let t of n(this.unsubscribing)) e.has(t) ? this.request(t, !1) : (this.unsubscribing.delete(t), this.positions.delete(t));
	}
	updatePosition(e) {
		let t = e.position;
		if (t === null) return;
		let n = this.positions.get(e.topic);
		e.status !== I.Failed && n !== void 0 && n.epoch === t.epoch && n.offset >= t.offset || this.positions.set(e.topic, t);
	}
	static foreignReserved(e) {
		return e.startsWith("$") && e !== "$all" && e !== "$inbox";
	}
	unaskedOverBudget(e) {
		if (e.startsWith("$") || this.subscriptions.has(e) || this.unsubscribing.has(e)) return !1;
		try {
			this.checkHelloFits(e);
		} catch (e) {
			if (e instanceof r) return !0;
			throw e;
		}
		return !1;
	}
	applyRecovery(e) {
		let t = e.topic;
		return n.foreignReserved(t) || this.unaskedOverBudget(t) ? !1 : (this.updatePosition(e), !t.startsWith("$") && !this.unsubscribing.has(t) && this.subscriptions.add(t), e.status === I.Failed && this.out.push({
			kind: "recovery_failed",
			topic: t,
			lostFrom: e.lostFrom,
			lostTo: e.lostTo,
			position: e.position
		}), !0);
	}
	onBody(e, t) {
		switch (e.type) {
			case "Data":
				this.onData(e, t);
				break;
			case "Ack":
				this.dropAcked(ft(e.seq)), this.transmit();
				break;
			case "Subscribed": {
				let t = e.recovery;
				if (this.requests.delete(e.requestId), !this.isAnswer(t.topic, e.requestId, !0) || !this.applyRecovery(t)) break;
				this.out.push({
					kind: "subscribed",
					topic: t.topic,
					recovery: t,
					requestId: e.requestId
				});
				break;
			}
			case "Unsubscribed":
				if (this.requests.delete(e.requestId), !this.isAnswer(e.topic, e.requestId, !1)) break;
				this.subscriptions.delete(e.topic), this.unsubscribing.delete(e.topic), this.positions.delete(e.topic), this.out.push({
					kind: "unsubscribed",
					topic: e.topic,
					requestId: e.requestId
				});
				break;
			case "Error": {
				let t = this.requests.get(e.requestId);
				this.requests.delete(e.requestId), t !== void 0 && this.latest.get(t.topic) === e.requestId && (this.latest.delete(t.topic), t.subscribe ? this.subscriptions.delete(t.topic) : (this.unsubscribing.delete(t.topic), this.positions.delete(t.topic))), this.out.push({
					kind: "server_error",
					error: e
				});
				break;
			}
			case "Presence":
				this.out.push({
					kind: "presence",
					presence: e
				});
				break;
			case "Refreshed": this.onCredentials(e.credentialsExpireMs, this.wallMs(t) + this.serverSkewMs, t);
		}
	}
	isAnswer(e, t, n) {
		let r = this.latest.get(e);
		return t === 0 ? r === void 0 ? !n || !this.unsubscribing.has(e) : !1 : t === r && (this.latest.delete(e), !0);
	}
	onData(e, t) {
		let r = e.position;
		if (r === null) return;
		let i = e.topic;
		if (n.foreignReserved(i)) return;
		if (!this.subscriptions.has(i) && !i.startsWith("$")) {
			this.positions.has(i) && this.positions.set(i, r);
			return;
		}
		let a = this.positions.get(i);
		a !== void 0 && a.epoch === r.epoch && r.offset <= a.offset ? this.duplicatesDropped += 1 : (this.positions.set(i, r), this.out.push({
			kind: "message",
			topic: i,
			position: r,
			payload: e.payload.slice(),
			timestampMs: e.timestampMs
		}), i === "$inbox" && this.config.inboxAckEvery && (this.inboxUnacked += 1, this.inboxUnacked >= this.config.inboxAckEvery ? this.sendInboxAck() : this.inboxAckAt === Infinity && (this.inboxAckAt = t + this.config.inboxAckDelay)));
	}
	sendInboxAck() {
		this.inboxUnacked = 0, this.inboxAckAt = Infinity;
		let e = this.positions.get("$inbox");
		this.isOpen && e !== void 0 && this.sendBody({
			type: "Ack",
			seq: 0n,
			positions: [{
				topic: "$inbox",
				position: e
			}]
		});
	}
	dropAcked(e) {
		let t = 0;
		for (; t < this.pending.length && this.pending[t].seq <= e;) t += 1;
		t && this.pending.splice(0, t), this.lastAckedSeq = Math.max(this.lastAckedSeq, e);
	}
	lost(e, n, r, i, a) {
		this.refreshAt = Infinity, this.paceAt = Infinity, this.inboxAckAt = Infinity;
		let o = a !== null && lt.has(a.code);
		if (a !== null && (a.code === t.TOKEN_EXPIRED || a.code === t.AUTH_FAILED) && this.wanted && this.config.refreshTokens && !this.tokenFresh) {
			this.out.push({
				kind: "disconnected",
				code: n,
				reason: r,
				cause: i,
				goodbye: a,
				willReconnect: !0
			}), this.awaitingToken = !0, this.reconnectAt = Infinity, this.setStatus("reconnecting"), this.out.push({
				kind: "token_needed",
				reason: "reconnect"
			});
			return;
		}
		if (o ||= a !== null && a.code === t.TOKEN_EXPIRED, a !== null && a.code === t.NORMAL && this.wanted) {
			this.out.push({
				kind: "disconnected",
				code: n,
				reason: r,
				cause: i,
				goodbye: a,
				willReconnect: !1
			}), this.wanted = !1, this.reconnectAt = Infinity, this.attemptDeadline = Infinity, this.forgetSession(), this.setStatus("disconnected");
			return;
		}
		a !== null && a.reconnectAfterMs && (this.goodbyeFloor = a.reconnectAfterMs), this.failures += 1;
		let s = this.config.maxReconnectAttempts, c = s !== null && this.failures > s, l = this.wanted && !o && !c;
		if (this.out.push({
			kind: "disconnected",
			code: n,
			reason: r,
			cause: i,
			goodbye: a,
			willReconnect: l
		}), !this.wanted) return;
		if (!l) {
			this.wanted = !1, this.setStatus("error");
			let e = o && a !== null ? a.reason || `refused by the server (code ${a.code})` : `gave up after ${s} reconnect attempts`;
			this.out.push({
				kind: "gave_up",
				reason: e
			});
			return;
		}
		let u = this.goodbyeFloor + this.random() * at(this.config, this.failures);
		this.reconnectAt = e + u, this.setStatus("reconnecting"), this.out.push({
			kind: "reconnecting",
			attempt: this.failures,
			maxAttempts: s === Infinity ? null : s,
			delay: u
		});
	}
	forgetSession() {
		this.sessionId = "", this.token = /* @__PURE__ */ new Uint8Array(), this.positions.clear(), this.unsubscribing.clear(), this.latest.clear(), this.pending = [], this.requests.clear(), this.nextSeq = 1, this.sentUpto = 0, this.lastAckedSeq = 0, this.inboxUnacked = 0, this.awaitingToken = !1, this.refreshAt = Infinity, this.credentialsExpireMs = 0n;
	}
};
function ft(e) {
	return e > BigInt(2 ** 53 - 1) ? 2 ** 53 - 1 : Number(e);
}
// ../../clients/js/src/client.ts
var pt = 1;
function mt() {
	let e = globalThis;
	if (typeof e.addEventListener != "function" || typeof e.removeEventListener != "function" || typeof e.navigator?.onLine != "boolean") return null;
	let t = e.addEventListener.bind(e), n = e.removeEventListener.bind(e);
	return { subscribe(e) {
		let r = () => e(!0), i = () => e(!1);
		return t("online", r), t("offline", i), () => {
			n("online", r), n("offline", i);
		};
	} };
}
function ht() {
	let e = globalThis.performance;
	return e === void 0 ? {
		now: () => Date.now(),
		wallClockOffset: 0
	} : {
		now: () => e.now(),
		wallClockOffset: Date.now() - e.now()
	};
}
var gt = class {
	session;
	WebSocketCtor;
	now;
	timers;
	listeners = /* @__PURE__ */ new Map();
	socket = null;
	socketAttempt = 0;
	timer = null;
	timerAt = null;
	busy = !1;
	waiters = [];
	lastFailure = "";
	network;
	stopNetwork = null;
	serializer;
	getToken;
	constructor(e) {
		if (typeof e != "object" || !e) throw TypeError("SigmaSocketClient needs an options object with a url");
		let t = e.now === void 0 ? ht() : {
			now: e.now,
			wallClockOffset: 0
		};
		this.now = t.now;
		let n = rt, r = e.reconnectInterval ?? n.reconnectInterval, i = {
			url: e.url,
			reconnectInterval: r,
			maxReconnectInterval: Math.max(e.maxReconnectInterval ?? n.maxReconnectInterval, r),
			reconnectMultiplier: n.reconnectMultiplier,
			maxReconnectAttempts: e.maxReconnectAttempts === void 0 ? n.maxReconnectAttempts : e.maxReconnectAttempts,
			heartbeatInterval: e.heartbeatInterval ?? n.heartbeatInterval,
			heartbeatTimeout: e.heartbeatTimeout ?? n.heartbeatTimeout,
			connectTimeout: e.connectTimeout ?? n.connectTimeout,
			handshakeTimeout: e.handshakeTimeout ?? n.handshakeTimeout,
			maxPending: e.maxPending ?? n.maxPending,
			maxMessageSize: e.maxMessageSize ?? n.maxMessageSize,
			authToken: e.authToken ?? "",
			clientInfo: e.clientInfo ?? null,
			serializer: ae((e.serializer ?? p).name),
			refreshTokens: e.getToken !== void 0,
			refreshMargin: e.tokenRefreshMargin ?? n.refreshMargin,
			pace: e.ratePacing ?? n.pace,
			wallClockOffset: t.wallClockOffset,
			probeTimeout: e.probeTimeout ?? n.probeTimeout,
			inboxAckEvery: e.inboxAckEvery ?? n.inboxAckEvery,
			inboxAckDelay: e.inboxAckDelay ?? n.inboxAckDelay
		};
		this.session = new dt(i, e.random ?? Math.random), this.serializer = e.serializer ?? p, this.getToken = e.getToken ?? null, this.WebSocketCtor = e.WebSocket ?? globalThis.WebSocket, this.timers = e.timers ?? {
			setTimeout: (e, t) => globalThis.setTimeout(e, t),
			clearTimeout: (e) => globalThis.clearTimeout(e)
		}, this.network = e.network === void 0 ? mt() : e.network;
	}
	connect() {
		if (this.session.status === "connected") return Promise.resolve();
		if (this.WebSocketCtor === void 0) return Promise.reject(/* @__PURE__ */ TypeError("no WebSocket implementation: pass { WebSocket } (in Node 20: import WebSocket from 'ws')"));
		let e = new Promise((e, t) => {
			this.waiters.push({
				resolve: e,
				reject: t
			});
		});
		return this.network !== null && this.stopNetwork === null && (this.stopNetwork = this.network.subscribe((e) => {
			this.session.networkChanged(e, this.now()), this.pump();
		})), this.session.connect(this.now()), this.pump(), e;
	}
	disconnect() {
		this.stopListening(), this.session.disconnect(this.now()), this.pump();
	}
	stopListening() {
		this.stopNetwork?.(), this.stopNetwork = null;
	}
	send(e, t = "") {
		let n = this.session.send(oe(this.serializer, e), this.now(), t);
		return this.pump(), n !== null;
	}
	async fetchToken(e) {
		let t;
		try {
			t = await e();
		} catch (e) {
			this.emit("error", new u(`getToken failed: ${String(e)}`));
			return;
		}
		typeof t != "string" || !t ? this.emit("error", new u("getToken must return a non-empty string")) : (this.session.refreshToken(t, this.now()), this.pump());
	}
	subscribe(e) {
		this.session.subscribe(e, this.now()), this.pump();
	}
	unsubscribe(e) {
		this.session.unsubscribe(e, this.now()), this.pump();
	}
	getStatus() {
		return this.session.status;
	}
	getSession() {
		let e = this.session;
		return !e.sessionId || e.connectedAt === null ? null : {
			id: e.sessionId,
			resumed: e.resumed,
			connectedAt: e.connectedAt + e.config.wallClockOffset,
			pending: e.pendingCount
		};
	}
	getRtt() {
		return this.session.rtt;
	}
	get core() {
		return this.session;
	}
	on(e, t) {
		let n = this.listeners.get(e) ?? [];
		return n.push(t), this.listeners.set(e, n), this;
	}
	off(e, t) {
		let n = this.listeners.get(e), r = n?.indexOf(t) ?? -1;
		return n !== void 0 && r >= 0 && n.splice(r, 1), this;
	}
	emit(e, ...t) {
		for (let n of [...this.listeners.get(e) ?? []]) try {
			n(...t);
		} catch (t) {
			let n = t instanceof Error ? t : Error(String(t));
			e !== "error" && (this.listeners.get("error")?.length ?? 0) > 0 ? this.emit("error", n) : console.error("exception in a SigmaSocketClient listener:", n);
		}
	}
	pump() {
		if (!this.busy) {
			this.busy = !0;
			try {
				for (;;) {
					let e = this.session.takeOutputs();
					if (e.length === 0) break;
					for (let t of e) this.handle(t);
				}
			} finally {
				this.busy = !1;
			}
			this.rearm();
		}
	}
	handle(e) {
		switch (e.kind) {
			case "open":
				this.openSocket(e.attempt, e.url);
				break;
			case "send":
				e.attempt === this.socketAttempt && this.socket?.readyState === pt && this.socket.send(e.data);
				break;
			case "close":
				e.attempt === this.socketAttempt && this.closeSocket(e.code, e.reason);
				break;
			case "status":
				e.status === "connected" ? this.settle(null) : e.status === "disconnected" && this.settle(new s("disconnected before the server welcomed us")), this.emit("connection", e.status);
				break;
			case "connected": break;
			case "message": {
				let t = e.payload;
				if (this.serializer !== p) try {
					t = this.serializer.decode(e.payload);
				} catch (t) {
					this.emit("error", new se(this.serializer.name, String(t), e.payload, e.topic, Number(e.position.offset)));
					break;
				}
				this.emit("message", t, Number(e.position.offset), Number(e.timestampMs), e.topic);
				break;
			}
			case "token_needed":
				this.getToken !== null && this.fetchToken(this.getToken);
				break;
			case "reconnecting":
				this.emit("reconnecting", {
					attempt: e.attempt,
					maxAttempts: e.maxAttempts,
					nextRetryIn: e.delay
				});
				break;
			case "gave_up": {
				let t = this.lastFailure ? ` (last error: ${this.lastFailure})` : "", n = new s(e.reason + t);
				this.stopListening(), this.settle(n), this.emit("error", n);
				break;
			}
			case "recovery_failed":
				this.emit("recovery_failed", {
					topic: e.topic,
					lostFrom: Number(e.lostFrom),
					lostTo: Number(e.lostTo),
					position: e.position
				}), this.emit("error", new l(`messages lost on topic ${JSON.stringify(e.topic)} (offsets ${e.lostFrom}..${e.lostTo || "?"}); resync it`));
				break;
			case "session_reset":
				this.emit("session_reset", {
					oldSessionId: e.oldSessionId,
					newSessionId: e.newSessionId,
					reason: e.reason,
					resent: e.resent
				}), this.emit("error", new c(`session ${e.oldSessionId} could not be resumed: ${e.reason}`));
				break;
			case "server_error":
				this.emit("error", new d(e.error.code, e.error.message));
				break;
			case "disconnected":
				this.lastFailure = e.reason, this.emit("disconnection", e.code, e.reason);
				break;
			case "subscribed":
				this.emit("subscribed", e.topic, e.recovery);
				break;
			case "unsubscribed":
				this.emit("unsubscribed", e.topic);
				break;
			case "presence": this.emit("presence", _t(e.presence));
		}
	}
	settle(e) {
		let t = this.waiters;
		this.waiters = [];
		for (let n of t) e === null ? n.resolve() : n.reject(e);
	}
	openSocket(e, t) {
		this.dropSocket(), this.socketAttempt = e;
		let n;
		try {
			n = new this.WebSocketCtor(t, [nt]), n.binaryType = "arraybuffer";
		} catch (t) {
			let n = this.session;
			n.transportError(e, t instanceof Error ? t.message : String(t)), n.transportClosed(e, 1006, "", this.now());
			return;
		}
		this.socket = n;
		let r = this.session;
		n.onopen = () => {
			r.transportOpened(e, this.now(), n.protocol), this.pump();
		}, n.onmessage = (t) => {
			let n = t.data;
			typeof n == "string" || n instanceof ArrayBuffer || n instanceof Uint8Array ? r.receive(e, n, this.now()) : ArrayBuffer.isView(n) ? r.receive(e, new Uint8Array(n.buffer, n.byteOffset, n.byteLength), this.now()) : r.receive(e, String(n), this.now()), this.pump();
		}, n.onerror = (t) => {
			let n = t, i = typeof n?.message == "string" ? n.message : typeof n?.error?.message == "string" ? n.error.message : "";
			r.transportError(e, i);
		}, n.onclose = (t) => {
			this.socket === n && (this.socket = null), r.transportClosed(e, t.code, t.reason, this.now()), this.pump();
		};
	}
	closeSocket(e, t) {
		let n = this.socket;
		if (n !== null) try {
			n.close(e, t);
		} catch {
			try {
				n.close();
			} catch {}
		}
	}
	dropSocket() {
		this.socket = null;
	}
	rearm() {
		let e = this.session.nextDeadline();
		e !== this.timerAt && (this.timer !== null && this.timers.clearTimeout(this.timer), this.timerAt = e, this.timer = e === null ? null : this.timers.setTimeout(() => this.onTimer(), Math.max(0, e - this.now())));
	}
	onTimer() {
		let e = this.timerAt ?? 0;
		this.timer = this.timerAt = null, this.session.handleTimer(Math.max(this.now(), e)), this.pump();
	}
};
function _t(e) {
	return {
		topic: e.topic,
		action: e.action === 0 ? "join" : "leave",
		sessionId: e.sessionId,
		metadata: e.metadata
	};
}
// ../../clients/js/node_modules/@msgpack/msgpack/dist.esm/utils/utf8.mjs
function vt(e) {
	let t = e.length, n = 0, r = 0;
	for (; r < t;) {
		let i = e.charCodeAt(r++);
		if (!(i & 4294967168)) n++;
		else if (!(i & 4294965248)) n += 2;
		else {
			if (i >= 55296 && i <= 56319 && r < t) {
				let t = e.charCodeAt(r);
				(t & 64512) == 56320 && (++r, i = ((i & 1023) << 10) + (t & 1023) + 65536);
			}
			i & 4294901760 ? n += 4 : n += 3;
		}
	}
	return n;
}
function yt(e, t, n) {
	let r = e.length, i = n, a = 0;
	for (; a < r;) {
		let n = e.charCodeAt(a++);
		if (!(n & 4294967168)) t[i++] = n;
		else {
			if (!(n & 4294965248)) t[i++] = n >> 6 & 31 | 192;
			else {
				if (n >= 55296 && n <= 56319 && a < r) {
					let t = e.charCodeAt(a);
					(t & 64512) == 56320 && (++a, n = ((n & 1023) << 10) + (t & 1023) + 65536);
				}
				n & 4294901760 ? (t[i++] = n >> 18 & 7 | 240, t[i++] = n >> 12 & 63 | 128, t[i++] = n >> 6 & 63 | 128) : (t[i++] = n >> 12 & 15 | 224, t[i++] = n >> 6 & 63 | 128);
			}
			t[i++] = n & 63 | 128;
		}
	}
}
var bt = new TextEncoder(), xt = 50;
function St(e, t, n) {
	bt.encodeInto(e, t.subarray(n));
}
function Ct(e, t, n) {
	e.length > xt ? St(e, t, n) : yt(e, t, n);
}
var wt = 4096;
function Tt(e, t, n) {
	let r = t, i = r + n, a = [], o = "";
	for (; r < i;) {
		let t = e[r++];
		if (!(t & 128)) a.push(t);
		else if ((t & 224) == 192) {
			let n = e[r++] & 63;
			a.push((t & 31) << 6 | n);
		} else if ((t & 240) == 224) {
			let n = e[r++] & 63, i = e[r++] & 63;
			a.push((t & 31) << 12 | n << 6 | i);
		} else if ((t & 248) == 240) {
			let n = e[r++] & 63, i = e[r++] & 63, o = e[r++] & 63, s = (t & 7) << 18 | n << 12 | i << 6 | o;
			s > 65535 && (s -= 65536, a.push(s >>> 10 & 1023 | 55296), s = 56320 | s & 1023), a.push(s);
		} else a.push(t);
		a.length >= wt && (o += String.fromCharCode(...a), a.length = 0);
	}
	return a.length > 0 && (o += String.fromCharCode(...a)), o;
}
var Et = new TextDecoder(), Dt = 200;
function Ot(e, t, n) {
	let r = e.subarray(t, t + n);
	return Et.decode(r);
}
function kt(e, t, n) {
	return n > Dt ? Ot(e, t, n) : Tt(e, t, n);
}
// ../../clients/js/node_modules/@msgpack/msgpack/dist.esm/ExtData.mjs
var At = class {
	type;
	data;
	constructor(e, t) {
		this.type = e, this.data = t;
	}
}, W = class e extends Error {
	constructor(t) {
		super(t);
		let n = Object.create(e.prototype);
		Object.setPrototypeOf(this, n), Object.defineProperty(this, "name", {
			configurable: !0,
			enumerable: !1,
			value: e.name
		});
	}
};
function jt(e, t, n) {
	let r = n / 4294967296, i = n;
	e.setUint32(t, r), e.setUint32(t + 4, i);
}
function Mt(e, t, n) {
	let r = Math.floor(n / 4294967296), i = n;
	e.setUint32(t, r), e.setUint32(t + 4, i);
}
function Nt(e, t) {
	let n = e.getInt32(t), r = e.getUint32(t + 4);
	return n * 4294967296 + r;
}
function Pt(e, t) {
	let n = e.getUint32(t), r = e.getUint32(t + 4);
	return n * 4294967296 + r;
}
var Ft = 4294967295, It = 17179869183;
function Lt({ sec: e, nsec: t }) {
	if (e >= 0 && t >= 0 && e <= It) {
		if (t === 0 && e <= Ft) {
			let t = /* @__PURE__ */ new Uint8Array(4);
			return new DataView(t.buffer).setUint32(0, e), t;
		}
		{
			let n = e / 4294967296, r = e | 0, i = /* @__PURE__ */ new Uint8Array(8), a = new DataView(i.buffer);
			return a.setUint32(0, t << 2 | n & 3), a.setUint32(4, r), i;
		}
	}
	{
		let n = /* @__PURE__ */ new Uint8Array(12), r = new DataView(n.buffer);
		return r.setUint32(0, t), Mt(r, 4, e), n;
	}
}
function Rt(e) {
	let t = e.getTime(), n = Math.floor(t / 1e3), r = (t - n * 1e3) * 1e6, i = Math.floor(r / 1e9);
	return {
		sec: n + i,
		nsec: r - i * 1e9
	};
}
function zt(e) {
	return e instanceof Date ? Lt(Rt(e)) : null;
}
function Bt(e) {
	let t = new DataView(e.buffer, e.byteOffset, e.byteLength);
	switch (e.byteLength) {
		case 4: return {
			sec: t.getUint32(0),
			nsec: 0
		};
		case 8: {
			let e = t.getUint32(0), n = t.getUint32(4);
			return {
				sec: (e & 3) * 4294967296 + n,
				nsec: e >>> 2
			};
		}
		case 12: return {
			sec: Nt(t, 4),
			nsec: t.getUint32(0)
		};
		default: throw new W(`Unrecognized data size for timestamp (expected 4, 8, or 12): ${e.length}`);
	}
}
function Vt(e) {
	let t = Bt(e);
	return /* @__PURE__ */ new Date(t.sec * 1e3 + t.nsec / 1e6);
}
var Ht = {
	type: -1,
	encode: zt,
	decode: Vt
}, Ut = class e {
	static defaultCodec = new e();
	__brand;
	builtInEncoders = [];
	builtInDecoders = [];
	encoders = [];
	decoders = [];
	constructor() {
		this.register(Ht);
	}
	register({ type: e, encode: t, decode: n }) {
		if (e >= 0) this.encoders[e] = t, this.decoders[e] = n;
		else {
			let r = -1 - e;
			this.builtInEncoders[r] = t, this.builtInDecoders[r] = n;
		}
	}
	tryToEncode(e, t) {
		for (let n = 0; n < this.builtInEncoders.length; n++) {
			let r = this.builtInEncoders[n];
			if (r != null) {
				let i = r(e, t);
				if (i != null) return new At(-1 - n, i);
			}
		}
		for (let n = 0; n < this.encoders.length; n++) {
			let r = this.encoders[n];
			if (r != null) {
				let i = r(e, t);
				if (i != null) return new At(n, i);
			}
		}
		return e instanceof At ? e : null;
	}
	decode(e, t, n) {
		let r = t < 0 ? this.builtInDecoders[-1 - t] : this.decoders[t];
		return r ? r(e, t, n) : new At(t, e);
	}
};
// ../../clients/js/node_modules/@msgpack/msgpack/dist.esm/utils/typedArrays.mjs
function Wt(e) {
	return e instanceof ArrayBuffer || typeof SharedArrayBuffer < "u" && e instanceof SharedArrayBuffer;
}
function Gt(e) {
	return e instanceof Uint8Array ? e : ArrayBuffer.isView(e) ? new Uint8Array(e.buffer, e.byteOffset, e.byteLength) : Wt(e) ? new Uint8Array(e) : Uint8Array.from(e);
}
var Kt = class e {
	extensionCodec;
	context;
	useBigInt64;
	maxDepth;
	initialBufferSize;
	sortKeys;
	forceFloat32;
	ignoreUndefined;
	forceIntegerToFloat;
	pos;
	view;
	bytes;
	entered = !1;
	constructor(e) {
		this.extensionCodec = e?.extensionCodec ?? Ut.defaultCodec, this.context = e?.context, this.useBigInt64 = e?.useBigInt64 ?? !1, this.maxDepth = e?.maxDepth ?? 100, this.initialBufferSize = e?.initialBufferSize ?? 2048, this.sortKeys = e?.sortKeys ?? !1, this.forceFloat32 = e?.forceFloat32 ?? !1, this.ignoreUndefined = e?.ignoreUndefined ?? !1, this.forceIntegerToFloat = e?.forceIntegerToFloat ?? !1, this.pos = 0, this.view = new DataView(new ArrayBuffer(this.initialBufferSize)), this.bytes = new Uint8Array(this.view.buffer);
	}
	clone() {
		return new e({
			extensionCodec: this.extensionCodec,
			context: this.context,
			useBigInt64: this.useBigInt64,
			maxDepth: this.maxDepth,
			initialBufferSize: this.initialBufferSize,
			sortKeys: this.sortKeys,
			forceFloat32: this.forceFloat32,
			ignoreUndefined: this.ignoreUndefined,
			forceIntegerToFloat: this.forceIntegerToFloat
		});
	}
	reinitializeState() {
		this.pos = 0;
	}
	encodeSharedRef(e) {
		if (this.entered) return this.clone().encodeSharedRef(e);
		try {
			return this.entered = !0, this.reinitializeState(), this.doEncode(e, 1), this.bytes.subarray(0, this.pos);
		} finally {
			this.entered = !1;
		}
	}
	encode(e) {
		if (this.entered) return this.clone().encode(e);
		try {
			return this.entered = !0, this.reinitializeState(), this.doEncode(e, 1), this.bytes.slice(0, this.pos);
		} finally {
			this.entered = !1;
		}
	}
	doEncode(e, t) {
		if (t > this.maxDepth) throw Error(`Too deep objects in depth ${t}`);
		e == null ? this.encodeNil() : typeof e == "boolean" ? this.encodeBoolean(e) : typeof e == "number" ? this.forceIntegerToFloat ? this.encodeNumberAsFloat(e) : this.encodeNumber(e) : typeof e == "string" ? this.encodeString(e) : this.useBigInt64 && typeof e == "bigint" ? this.encodeBigInt64(e) : this.encodeObject(e, t);
	}
	ensureBufferSizeToWrite(e) {
		let t = this.pos + e;
		this.view.byteLength < t && this.resizeBuffer(t * 2);
	}
	resizeBuffer(e) {
		let t = new ArrayBuffer(e), n = new Uint8Array(t), r = new DataView(t);
		n.set(this.bytes), this.view = r, this.bytes = n;
	}
	encodeNil() {
		this.writeU8(192);
	}
	encodeBoolean(e) {
		e === !1 ? this.writeU8(194) : this.writeU8(195);
	}
	encodeNumber(e) {
		!this.forceIntegerToFloat && Number.isSafeInteger(e) ? e >= 0 ? e < 128 ? this.writeU8(e) : e < 256 ? (this.writeU8(204), this.writeU8(e)) : e < 65536 ? (this.writeU8(205), this.writeU16(e)) : e < 4294967296 ? (this.writeU8(206), this.writeU32(e)) : this.useBigInt64 ? this.encodeNumberAsFloat(e) : (this.writeU8(207), this.writeU64(e)) : e >= -32 ? this.writeU8(224 | e + 32) : e >= -128 ? (this.writeU8(208), this.writeI8(e)) : e >= -32768 ? (this.writeU8(209), this.writeI16(e)) : e >= -2147483648 ? (this.writeU8(210), this.writeI32(e)) : this.useBigInt64 ? this.encodeNumberAsFloat(e) : (this.writeU8(211), this.writeI64(e)) : this.encodeNumberAsFloat(e);
	}
	encodeNumberAsFloat(e) {
		this.forceFloat32 ? (this.writeU8(202), this.writeF32(e)) : (this.writeU8(203), this.writeF64(e));
	}
	encodeBigInt64(e) {
		e >= BigInt(0) ? (this.writeU8(207), this.writeBigUint64(e)) : (this.writeU8(211), this.writeBigInt64(e));
	}
	writeStringHeader(e) {
		if (e < 32) this.writeU8(160 + e);
		else if (e < 256) this.writeU8(217), this.writeU8(e);
		else if (e < 65536) this.writeU8(218), this.writeU16(e);
		else if (e < 4294967296) this.writeU8(219), this.writeU32(e);
		else throw Error(`Too long string: ${e} bytes in UTF-8`);
	}
	encodeString(e) {
		let t = vt(e);
		this.ensureBufferSizeToWrite(5 + t), this.writeStringHeader(t), Ct(e, this.bytes, this.pos), this.pos += t;
	}
	encodeObject(e, t) {
		let n = this.extensionCodec.tryToEncode(e, this.context);
		if (n != null) this.encodeExtension(n);
		else if (Array.isArray(e)) this.encodeArray(e, t);
		else if (ArrayBuffer.isView(e)) this.encodeBinary(e);
		else if (typeof e == "object") this.encodeMap(e, t);
		else throw Error(`Unrecognized object: ${Object.prototype.toString.apply(e)}`);
	}
	encodeBinary(e) {
		let t = e.byteLength;
		if (t < 256) this.writeU8(196), this.writeU8(t);
		else if (t < 65536) this.writeU8(197), this.writeU16(t);
		else if (t < 4294967296) this.writeU8(198), this.writeU32(t);
		else throw Error(`Too large binary: ${t}`);
		let n = Gt(e);
		this.writeU8a(n);
	}
	encodeArray(e, t) {
		let n = e.length;
		if (n < 16) this.writeU8(144 + n);
		else if (n < 65536) this.writeU8(220), this.writeU16(n);
		else if (n < 4294967296) this.writeU8(221), this.writeU32(n);
		else throw Error(`Too large array: ${n}`);
		for (let n of e) this.doEncode(n, t + 1);
	}
	countWithoutUndefined(e, t) {
		let n = 0;
		for (let r of t) e[r] !== void 0 && n++;
		return n;
	}
	encodeMap(e, t) {
		let n = Object.keys(e);
		this.sortKeys && n.sort();
		let r = this.ignoreUndefined ? this.countWithoutUndefined(e, n) : n.length;
		if (r < 16) this.writeU8(128 + r);
		else if (r < 65536) this.writeU8(222), this.writeU16(r);
		else if (r < 4294967296) this.writeU8(223), this.writeU32(r);
		else throw Error(`Too large map object: ${r}`);
		for (let r of n) {
			let n = e[r];
			this.ignoreUndefined && n === void 0 || (this.encodeString(r), this.doEncode(n, t + 1));
		}
	}
	encodeExtension(e) {
		if (typeof e.data == "function") {
			let t = e.data(this.pos + 6), n = t.length;
			if (n >= 4294967296) throw Error(`Too large extension object: ${n}`);
			this.writeU8(201), this.writeU32(n), this.writeI8(e.type), this.writeU8a(t);
			return;
		}
		let t = e.data.length;
		if (t === 1) this.writeU8(212);
		else if (t === 2) this.writeU8(213);
		else if (t === 4) this.writeU8(214);
		else if (t === 8) this.writeU8(215);
		else if (t === 16) this.writeU8(216);
		else if (t < 256) this.writeU8(199), this.writeU8(t);
		else if (t < 65536) this.writeU8(200), this.writeU16(t);
		else if (t < 4294967296) this.writeU8(201), this.writeU32(t);
		else throw Error(`Too large extension object: ${t}`);
		this.writeI8(e.type), this.writeU8a(e.data);
	}
	writeU8(e) {
		this.ensureBufferSizeToWrite(1), this.view.setUint8(this.pos, e), this.pos++;
	}
	writeU8a(e) {
		let t = e.length;
		this.ensureBufferSizeToWrite(t), this.bytes.set(e, this.pos), this.pos += t;
	}
	writeI8(e) {
		this.ensureBufferSizeToWrite(1), this.view.setInt8(this.pos, e), this.pos++;
	}
	writeU16(e) {
		this.ensureBufferSizeToWrite(2), this.view.setUint16(this.pos, e), this.pos += 2;
	}
	writeI16(e) {
		this.ensureBufferSizeToWrite(2), this.view.setInt16(this.pos, e), this.pos += 2;
	}
	writeU32(e) {
		this.ensureBufferSizeToWrite(4), this.view.setUint32(this.pos, e), this.pos += 4;
	}
	writeI32(e) {
		this.ensureBufferSizeToWrite(4), this.view.setInt32(this.pos, e), this.pos += 4;
	}
	writeF32(e) {
		this.ensureBufferSizeToWrite(4), this.view.setFloat32(this.pos, e), this.pos += 4;
	}
	writeF64(e) {
		this.ensureBufferSizeToWrite(8), this.view.setFloat64(this.pos, e), this.pos += 8;
	}
	writeU64(e) {
		this.ensureBufferSizeToWrite(8), jt(this.view, this.pos, e), this.pos += 8;
	}
	writeI64(e) {
		this.ensureBufferSizeToWrite(8), Mt(this.view, this.pos, e), this.pos += 8;
	}
	writeBigUint64(e) {
		this.ensureBufferSizeToWrite(8), this.view.setBigUint64(this.pos, e), this.pos += 8;
	}
	writeBigInt64(e) {
		this.ensureBufferSizeToWrite(8), this.view.setBigInt64(this.pos, e), this.pos += 8;
	}
};
// ../../clients/js/node_modules/@msgpack/msgpack/dist.esm/encode.mjs
function qt(e, t) {
	return new Kt(t).encodeSharedRef(e);
}
// ../../clients/js/node_modules/@msgpack/msgpack/dist.esm/utils/prettyByte.mjs
function Jt(e) {
	return `${e < 0 ? "-" : ""}0x${Math.abs(e).toString(16).padStart(2, "0")}`;
}
// ../../clients/js/node_modules/@msgpack/msgpack/dist.esm/CachedKeyDecoder.mjs
var Yt = 16, Xt = 16, Zt = class {
	hit = 0;
	miss = 0;
	caches;
	maxKeyLength;
	maxLengthPerKey;
	constructor(e = Yt, t = Xt) {
		this.maxKeyLength = e, this.maxLengthPerKey = t, this.caches = [];
		for (let e = 0; e < this.maxKeyLength; e++) this.caches.push([]);
	}
	canBeCached(e) {
		return e > 0 && e <= this.maxKeyLength;
	}
	find(e, t, n) {
		let r = this.caches[n - 1];
		FIND_CHUNK: for (let i of r) {
			let r = i.bytes;
			for (let i = 0; i < n; i++) if (r[i] !== e[t + i]) continue FIND_CHUNK;
			return i.str;
		}
		return null;
	}
	store(e, t) {
		let n = this.caches[e.length - 1], r = {
			bytes: e,
			str: t
		};
		n.length >= this.maxLengthPerKey ? n[Math.random() * n.length | 0] = r : n.push(r);
	}
	decode(e, t, n) {
		let r = this.find(e, t, n);
		if (r != null) return this.hit++, r;
		this.miss++;
		let i = Tt(e, t, n), a = Uint8Array.prototype.slice.call(e, t, t + n);
		return this.store(a, i), i;
	}
}, Qt = "array", G = "map_key", $t = "map_value", en = (e) => {
	if (typeof e == "string" || typeof e == "number") return e;
	throw new W("The type of key must be string or number but " + typeof e);
}, tn = class {
	stack = [];
	stackHeadPosition = -1;
	get length() {
		return this.stackHeadPosition + 1;
	}
	top() {
		return this.stack[this.stackHeadPosition];
	}
	pushArrayState(e) {
		let t = this.getUninitializedStateFromPool();
		t.type = Qt, t.position = 0, t.size = e, t.array = Array(e);
	}
	pushMapState(e) {
		let t = this.getUninitializedStateFromPool();
		t.type = G, t.readCount = 0, t.size = e, t.map = {};
	}
	getUninitializedStateFromPool() {
		return this.stackHeadPosition++, this.stackHeadPosition === this.stack.length && this.stack.push({
			type: void 0,
			size: 0,
			array: void 0,
			position: 0,
			readCount: 0,
			map: void 0,
			key: null
		}), this.stack[this.stackHeadPosition];
	}
	release(e) {
		if (this.stack[this.stackHeadPosition] !== e) throw Error("Invalid stack state. Released state is not on top of the stack.");
		if (e.type === Qt) {
			let t = e;
			t.size = 0, t.array = void 0, t.position = 0, t.type = void 0;
		}
		if (e.type === G || e.type === $t) {
			let t = e;
			t.size = 0, t.map = void 0, t.readCount = 0, t.type = void 0;
		}
		this.stackHeadPosition--;
	}
	reset() {
		this.stack.length = 0, this.stackHeadPosition = -1;
	}
}, K = -1, nn = /* @__PURE__ */ new DataView(/* @__PURE__ */ new ArrayBuffer(0)), rn = new Uint8Array(nn.buffer);
try {
	nn.getInt8(0);
} catch (e) {
	if (!(e instanceof RangeError)) throw Error("This module is not supported in the current JavaScript engine because DataView does not throw RangeError on out-of-bounds access");
}
var an = /* @__PURE__ */ RangeError("Insufficient data"), on = new Zt(), sn = class e {
	extensionCodec;
	context;
	useBigInt64;
	rawStrings;
	maxStrLength;
	maxBinLength;
	maxArrayLength;
	maxMapLength;
	maxExtLength;
	keyDecoder;
	mapKeyConverter;
	totalPos = 0;
	pos = 0;
	view = nn;
	bytes = rn;
	headByte = K;
	stack = new tn();
	entered = !1;
	constructor(e) {
		this.extensionCodec = e?.extensionCodec ?? Ut.defaultCodec, this.context = e?.context, this.useBigInt64 = e?.useBigInt64 ?? !1, this.rawStrings = e?.rawStrings ?? !1, this.maxStrLength = e?.maxStrLength ?? 4294967295, this.maxBinLength = e?.maxBinLength ?? 4294967295, this.maxArrayLength = e?.maxArrayLength ?? 4294967295, this.maxMapLength = e?.maxMapLength ?? 4294967295, this.maxExtLength = e?.maxExtLength ?? 4294967295, this.keyDecoder = e?.keyDecoder === void 0 ? on : e.keyDecoder, this.mapKeyConverter = e?.mapKeyConverter ?? en;
	}
	clone() {
		return new e({
			extensionCodec: this.extensionCodec,
			context: this.context,
			useBigInt64: this.useBigInt64,
			rawStrings: this.rawStrings,
			maxStrLength: this.maxStrLength,
			maxBinLength: this.maxBinLength,
			maxArrayLength: this.maxArrayLength,
			maxMapLength: this.maxMapLength,
			maxExtLength: this.maxExtLength,
			keyDecoder: this.keyDecoder
		});
	}
	reinitializeState() {
		this.totalPos = 0, this.headByte = K, this.stack.reset();
	}
	setBuffer(e) {
		let t = Gt(e);
		this.bytes = t, this.view = new DataView(t.buffer, t.byteOffset, t.byteLength), this.pos = 0;
	}
	appendBuffer(e) {
		if (this.headByte === K && !this.hasRemaining(1)) this.setBuffer(e);
		else {
			let t = this.bytes.subarray(this.pos), n = Gt(e), r = new Uint8Array(t.length + n.length);
			r.set(t), r.set(n, t.length), this.setBuffer(r);
		}
	}
	hasRemaining(e) {
		return this.view.byteLength - this.pos >= e;
	}
	createExtraByteError(e) {
		let { view: t, pos: n } = this;
		return /* @__PURE__ */ RangeError(`Extra ${t.byteLength - n} of ${t.byteLength} byte(s) found at buffer[${e}]`);
	}
	decode(e) {
		if (this.entered) return this.clone().decode(e);
		try {
			this.entered = !0, this.reinitializeState(), this.setBuffer(e);
			let t = this.doDecodeSync();
			if (this.hasRemaining(1)) throw this.createExtraByteError(this.pos);
			return t;
		} finally {
			this.entered = !1;
		}
	}
	*decodeMulti(e) {
		if (this.entered) yield* this.clone().decodeMulti(e);
		else try {
			for (this.entered = !0, this.reinitializeState(), this.setBuffer(e); this.hasRemaining(1);) yield this.doDecodeSync();
		} finally {
			this.entered = !1;
		}
	}
	async decodeAsync(e) {
		if (this.entered) return this.clone().decodeAsync(e);
		try {
			this.entered = !0;
			let t = !1, n;
			for await (let r of e) {
				if (t) throw this.entered = !1, this.createExtraByteError(this.totalPos);
				this.appendBuffer(r);
				try {
					n = this.doDecodeSync(), t = !0;
				} catch (e) {
					if (!(e instanceof RangeError)) throw e;
				}
				this.totalPos += this.pos;
			}
			if (t) {
				if (this.hasRemaining(1)) throw this.createExtraByteError(this.totalPos);
				return n;
			}
			let { headByte: r, pos: i, totalPos: a } = this;
			throw RangeError(`Insufficient data in parsing ${Jt(r)} at ${a} (${i} in the current buffer)`);
		} finally {
			this.entered = !1;
		}
	}
	decodeArrayStream(e) {
		return this.decodeMultiAsync(e, !0);
	}
	decodeStream(e) {
		return this.decodeMultiAsync(e, !1);
	}
	async *decodeMultiAsync(e, t) {
		if (this.entered) yield* this.clone().decodeMultiAsync(e, t);
		else try {
			this.entered = !0;
			let n = t, r = -1;
			for await (let i of e) {
				if (t && r === 0) throw this.createExtraByteError(this.totalPos);
				this.appendBuffer(i), n && (r = this.readArraySize(), n = !1, this.complete());
				try {
					for (; yield this.doDecodeSync(), --r !== 0;);
				} catch (e) {
					if (!(e instanceof RangeError)) throw e;
				}
				this.totalPos += this.pos;
			}
		} finally {
			this.entered = !1;
		}
	}
	doDecodeSync() {
		DECODE: for (;;) {
			let e = this.readHeadByte(), t;
			if (e >= 224) t = e - 256;
			else if (e < 192) {
				if (e < 128) t = e;
				else if (e < 144) {
					let n = e - 128;
					if (n !== 0) {
						this.pushMapState(n), this.complete();
						continue DECODE;
					}
					t = {};
				} else if (e < 160) {
					let n = e - 144;
					if (n !== 0) {
						this.pushArrayState(n), this.complete();
						continue DECODE;
					}
					t = [];
				} else {
					let n = e - 160;
					t = this.decodeString(n, 0);
				}
			} else if (e === 192) t = null;
			else if (e === 194) t = !1;
			else if (e === 195) t = !0;
			else if (e === 202) t = this.readF32();
			else if (e === 203) t = this.readF64();
			else if (e === 204) t = this.readU8();
			else if (e === 205) t = this.readU16();
			else if (e === 206) t = this.readU32();
			else if (e === 207) t = this.useBigInt64 ? this.readU64AsBigInt() : this.readU64();
			else if (e === 208) t = this.readI8();
			else if (e === 209) t = this.readI16();
			else if (e === 210) t = this.readI32();
			else if (e === 211) t = this.useBigInt64 ? this.readI64AsBigInt() : this.readI64();
			else if (e === 217) {
				let e = this.lookU8();
				t = this.decodeString(e, 1);
			} else if (e === 218) {
				let e = this.lookU16();
				t = this.decodeString(e, 2);
			} else if (e === 219) {
				let e = this.lookU32();
				t = this.decodeString(e, 4);
			} else if (e === 220) {
				let e = this.readU16();
				if (e !== 0) {
					this.pushArrayState(e), this.complete();
					continue DECODE;
				}
				t = [];
			} else if (e === 221) {
				let e = this.readU32();
				if (e !== 0) {
					this.pushArrayState(e), this.complete();
					continue DECODE;
				}
				t = [];
			} else if (e === 222) {
				let e = this.readU16();
				if (e !== 0) {
					this.pushMapState(e), this.complete();
					continue DECODE;
				}
				t = {};
			} else if (e === 223) {
				let e = this.readU32();
				if (e !== 0) {
					this.pushMapState(e), this.complete();
					continue DECODE;
				}
				t = {};
			} else if (e === 196) {
				let e = this.lookU8();
				t = this.decodeBinary(e, 1);
			} else if (e === 197) {
				let e = this.lookU16();
				t = this.decodeBinary(e, 2);
			} else if (e === 198) {
				let e = this.lookU32();
				t = this.decodeBinary(e, 4);
			} else if (e === 212) t = this.decodeExtension(1, 0);
			else if (e === 213) t = this.decodeExtension(2, 0);
			else if (e === 214) t = this.decodeExtension(4, 0);
			else if (e === 215) t = this.decodeExtension(8, 0);
			else if (e === 216) t = this.decodeExtension(16, 0);
			else if (e === 199) {
				let e = this.lookU8();
				t = this.decodeExtension(e, 1);
			} else if (e === 200) {
				let e = this.lookU16();
				t = this.decodeExtension(e, 2);
			} else if (e === 201) {
				let e = this.lookU32();
				t = this.decodeExtension(e, 4);
			} else throw new W(`Unrecognized type byte: ${Jt(e)}`);
			this.complete();
			let n = this.stack;
			for (; n.length > 0;) {
				let e = n.top();
				if (e.type === Qt) {
					if (e.array[e.position] = t, e.position++, e.position === e.size) t = e.array, n.release(e);
					else continue DECODE;
				} else if (e.type === G) {
					if (t === "__proto__") throw new W("The key __proto__ is not allowed");
					e.key = this.mapKeyConverter(t), e.type = $t;
					continue DECODE;
				} else if (e.map[e.key] = t, e.readCount++, e.readCount === e.size) t = e.map, n.release(e);
				else {
					e.key = null, e.type = G;
					continue DECODE;
				}
			}
			return t;
		}
	}
	readHeadByte() {
		return this.headByte === K && (this.headByte = this.readU8()), this.headByte;
	}
	complete() {
		this.headByte = K;
	}
	readArraySize() {
		let e = this.readHeadByte();
		switch (e) {
			case 220: return this.readU16();
			case 221: return this.readU32();
			default:
				if (e < 160) return e - 144;
				throw new W(`Unrecognized array type byte: ${Jt(e)}`);
		}
	}
	pushMapState(e) {
		if (e > this.maxMapLength) throw new W(`Max length exceeded: map length (${e}) > maxMapLengthLength (${this.maxMapLength})`);
		this.stack.pushMapState(e);
	}
	pushArrayState(e) {
		if (e > this.maxArrayLength) throw new W(`Max length exceeded: array length (${e}) > maxArrayLength (${this.maxArrayLength})`);
		this.stack.pushArrayState(e);
	}
	decodeString(e, t) {
		return !this.rawStrings || this.stateIsMapKey() ? this.decodeUtf8String(e, t) : this.decodeBinary(e, t);
	}
	decodeUtf8String(e, t) {
		if (e > this.maxStrLength) throw new W(`Max length exceeded: UTF-8 byte length (${e}) > maxStrLength (${this.maxStrLength})`);
		if (this.bytes.byteLength < this.pos + t + e) throw an;
		let n = this.pos + t, r;
		return r = this.stateIsMapKey() && this.keyDecoder?.canBeCached(e) ? this.keyDecoder.decode(this.bytes, n, e) : kt(this.bytes, n, e), this.pos += t + e, r;
	}
	stateIsMapKey() {
		return this.stack.length > 0 && this.stack.top().type === G;
	}
	decodeBinary(e, t) {
		if (e > this.maxBinLength) throw new W(`Max length exceeded: bin length (${e}) > maxBinLength (${this.maxBinLength})`);
		if (!this.hasRemaining(e + t)) throw an;
		let n = this.pos + t, r = this.bytes.subarray(n, n + e);
		return this.pos += t + e, r;
	}
	decodeExtension(e, t) {
		if (e > this.maxExtLength) throw new W(`Max length exceeded: ext length (${e}) > maxExtLength (${this.maxExtLength})`);
		let n = this.view.getInt8(this.pos + t), r = this.decodeBinary(e, t + 1);
		return this.extensionCodec.decode(r, n, this.context);
	}
	lookU8() {
		return this.view.getUint8(this.pos);
	}
	lookU16() {
		return this.view.getUint16(this.pos);
	}
	lookU32() {
		return this.view.getUint32(this.pos);
	}
	readU8() {
		let e = this.view.getUint8(this.pos);
		return this.pos++, e;
	}
	readI8() {
		let e = this.view.getInt8(this.pos);
		return this.pos++, e;
	}
	readU16() {
		let e = this.view.getUint16(this.pos);
		return this.pos += 2, e;
	}
	readI16() {
		let e = this.view.getInt16(this.pos);
		return this.pos += 2, e;
	}
	readU32() {
		let e = this.view.getUint32(this.pos);
		return this.pos += 4, e;
	}
	readI32() {
		let e = this.view.getInt32(this.pos);
		return this.pos += 4, e;
	}
	readU64() {
		let e = Pt(this.view, this.pos);
		return this.pos += 8, e;
	}
	readI64() {
		let e = Nt(this.view, this.pos);
		return this.pos += 8, e;
	}
	readU64AsBigInt() {
		let e = this.view.getBigUint64(this.pos);
		return this.pos += 8, e;
	}
	readI64AsBigInt() {
		let e = this.view.getBigInt64(this.pos);
		return this.pos += 8, e;
	}
	readF32() {
		let e = this.view.getFloat32(this.pos);
		return this.pos += 4, e;
	}
	readF64() {
		let e = this.view.getFloat64(this.pos);
		return this.pos += 8, e;
	}
};
// ../../clients/js/node_modules/@msgpack/msgpack/dist.esm/decode.mjs
function cn(e, t) {
	return new sn(t).decode(e);
}
// ../../clients/js/src/msgpack.ts
var ln = {
	name: "msgpack",
	encode: (e) => qt(e),
	decode: (e) => cn(e)
}, un = [
	"connections",
	"clients",
	"sessions",
	"viewers",
	"messages_in_per_s",
	"messages_out_per_s",
	"deliveries_per_s",
	"resumes",
	"failed_resumes",
	"failed_recoveries",
	"lost_messages",
	"slow_consumers",
	"rate_limited"
], dn = class {
	staleAfterMs;
	keep;
	nodes = /* @__PURE__ */ new Map();
	samples = [];
	constructor(e, t = 300) {
		if (this.staleAfterMs = e, this.keep = t, !(e > 0)) throw Error(`staleAfterMs must be > 0, not ${e}`);
	}
	observe(e, t) {
		let n = e.id ?? e.node, r = this.nodes.get(n);
		r && r.last.t > e.t || this.nodes.set(n, {
			last: e,
			arrived: t
		});
	}
	rows(e) {
		let t = /* @__PURE__ */ new Map();
		for (let { last: e } of this.nodes.values()) t.set(e.node, (t.get(e.node) ?? 0) + 1);
		let n = [];
		for (let [r, { last: i, arrived: a }] of this.nodes) {
			let o = e - a, s = o > this.staleAfterMs ? "down" : i.draining ? "draining" : "up", c = (t.get(i.node) ?? 0) > 1 || !i.node ? `${i.node || "node"} (${r})` : i.node;
			n.push({
				key: r,
				name: c,
				state: s,
				last: i,
				ageMs: o
			});
		}
		return n.sort((e, t) => e.name < t.name ? -1 : +(e.name > t.name));
	}
	totals(e, t = e) {
		let n = {
			t,
			nodes_up: 0,
			nodes_down: 0,
			rtt_ms: null,
			rtt_p95_ms: null
		};
		for (let e of un) n[e] = 0;
		let r = 0, i = 0;
		for (let t of this.rows(e)) {
			if (t.state === "down") {
				n.nodes_down += 1;
				continue;
			}
			n.nodes_up += 1;
			for (let e of un) n[e] += Number(t.last[e]) || 0;
			let e = t.last;
			(e.rtt_ms > 0 || e.rtt_p95_ms !== null) && (r += e.rtt_ms, i += 1), e.rtt_p95_ms !== null && (n.rtt_p95_ms = Math.max(n.rtt_p95_ms ?? 0, e.rtt_p95_ms));
		}
		for (let e of un) n[e] = Math.round(n[e] * 100) / 100;
		return n.rtt_ms = i ? Math.round(r / i * 1e3) / 1e3 : null, n;
	}
	sample(e, t = e) {
		let n = this.totals(e, t);
		return this.samples.push(n), this.samples.length > this.keep && this.samples.splice(0, this.samples.length - this.keep), n;
	}
}, fn = "sigma-ops.nodes", pn = "sigmasockets-dashboard", mn = "sigma-dashboard-token", hn = [
	[
		"connections",
		"Connections",
		(e) => q(e.connections),
		!1
	],
	[
		"clients",
		"Clients",
		(e) => q(e.clients),
		!1
	],
	[
		"sessions",
		"Sessions",
		(e) => q(e.sessions),
		!1
	],
	[
		"viewers",
		"Dashboard viewers",
		(e) => q(e.viewers ?? 0),
		!1
	],
	[
		"messages_in_per_s",
		"Messages in/s",
		(e) => q(e.messages_in_per_s),
		!1
	],
	[
		"deliveries_per_s",
		"Deliveries/s",
		(e) => q(e.deliveries_per_s),
		!1
	],
	[
		"resumes",
		"Resumes",
		(e) => q(e.resumes),
		!1
	],
	[
		"failed_resumes",
		"Failed resumes",
		(e) => q(e.failed_resumes),
		!0
	],
	[
		"lost_messages",
		"Lost messages",
		(e) => q(e.lost_messages),
		!0
	],
	[
		"slow_consumers",
		"Slow consumers",
		(e) => q(e.slow_consumers),
		!0
	],
	[
		"rate_limited",
		"Rate limited",
		(e) => q(e.rate_limited),
		!0
	],
	[
		"rtt_ms",
		"Heartbeat RTT",
		(e) => e.rtt_ms === 0 && e.rtt_p95_ms === null ? "no pong yet" : `${e.rtt_ms.toFixed(1)} ms` + (e.rtt_p95_ms === null ? "" : ` (p95 ≤ ${e.rtt_p95_ms} ms)`),
		!1
	]
], gn = [
	["connections", "Connections"],
	["messages_in_per_s", "Messages in / s"],
	["deliveries_per_s", "Deliveries / s"],
	["rtt_ms", "Heartbeat RTT (ms)"]
], _n = [
	[
		"nodes_up",
		"Nodes up",
		(e) => q(e.nodes_up),
		!1
	],
	[
		"nodes_down",
		"Nodes down",
		(e) => q(e.nodes_down),
		!0
	],
	[
		"connections",
		"Connections",
		(e) => q(e.connections),
		!1
	],
	[
		"clients",
		"Clients",
		(e) => q(e.clients),
		!1
	],
	[
		"sessions",
		"Sessions",
		(e) => q(e.sessions),
		!1
	],
	[
		"messages_in_per_s",
		"Messages in/s",
		(e) => q(e.messages_in_per_s),
		!1
	],
	[
		"deliveries_per_s",
		"Deliveries/s",
		(e) => q(e.deliveries_per_s),
		!1
	],
	[
		"resumes",
		"Resumes",
		(e) => q(e.resumes),
		!1
	],
	[
		"failed_resumes",
		"Failed resumes",
		(e) => q(e.failed_resumes),
		!0
	],
	[
		"lost_messages",
		"Lost messages",
		(e) => q(e.lost_messages),
		!0
	],
	[
		"slow_consumers",
		"Slow consumers",
		(e) => q(e.slow_consumers),
		!0
	],
	[
		"rtt_ms",
		"Heartbeat RTT",
		(e) => e.rtt_ms === null ? "no pong yet" : `${e.rtt_ms.toFixed(1)} ms` + (e.rtt_p95_ms === null ? "" : ` (worst p95 ≤ ${e.rtt_p95_ms} ms)`),
		!1
	]
], vn = [
	["connections", "Cluster connections"],
	["messages_in_per_s", "Cluster messages in / s"],
	["deliveries_per_s", "Cluster deliveries / s"],
	["nodes_up", "Nodes up"]
], yn = [
	["Node", (e) => e.name],
	["State", (e) => e.state],
	["Connections", (e) => q(e.last.connections)],
	["Clients", (e) => q(e.last.clients)],
	["Sessions", (e) => q(e.last.sessions)],
	["Msg in/s", (e) => q(e.last.messages_in_per_s)],
	["Deliveries/s", (e) => q(e.last.deliveries_per_s)],
	["Resumes", (e) => q(e.last.resumes)],
	["Lost", (e) => q(e.last.lost_messages)],
	["Slow", (e) => q(e.last.slow_consumers)],
	["RTT ms", (e) => e.last.rtt_ms === 0 && e.last.rtt_p95_ms === null ? "–" : e.last.rtt_ms.toFixed(1)],
	["Last point", (e) => `${Math.max(0, Math.round(e.ageMs / 1e3))} s ago`]
];
function q(e) {
	return Number.isInteger(e) ? e.toLocaleString("en") : e.toFixed(1);
}
function J(e) {
	let t = document.getElementById(e);
	if (!t) throw Error(`#${e} missing`);
	return t;
}
var bn = "http://www.w3.org/2000/svg", Y = [], X = 300, Z = null, Q = new dn(5e3);
function xn(e, t, n) {
	let r = J(e);
	for (let [e, i] of n) {
		let n = document.createElement("div");
		n.className = "tile", n.id = `${t}-${e}`, n.innerHTML = "<div class=\"label\"></div><div class=\"value\">–</div>", n.querySelector(".label").textContent = i, r.append(n);
	}
}
function Sn(e, t, n) {
	let r = J(e);
	for (let [e, i] of n) {
		let n = document.createElement("div");
		n.className = "chart", n.id = `${t}-${e}`;
		let a = document.createElement("h2");
		a.textContent = i;
		let o = document.createElementNS(bn, "svg");
		o.setAttribute("viewBox", "0 0 300 90"), o.setAttribute("preserveAspectRatio", "none"), o.append(document.createElementNS(bn, "polyline"));
		let s = document.createElement("div");
		s.className = "max", n.append(a, o, s), r.append(n);
	}
}
function Cn() {
	xn("tiles", "tile", hn), Sn("charts", "chart", gn), xn("cluster-tiles", "ctile", _n), Sn("cluster-charts", "cchart", vn);
	let e = J("nodes").querySelector("thead tr");
	for (let [t] of yn) {
		let n = document.createElement("th");
		n.textContent = t, e.append(n);
	}
}
function wn(e, t, n) {
	for (let [r, , i, a] of t) {
		let t = J(`${e}-${r}`);
		t.querySelector(".value").textContent = i(n), t.classList.toggle("alert", a && Number(n[r]) > 0);
	}
}
function Tn(e, t, n, r) {
	let i = n[n.length - 1];
	if (!i) return;
	let a = i.t, o = Math.max(n[0].t, a - r), s = n.filter((e) => e.t >= o);
	for (let [n] of t) {
		let t = J(`${e}-${n}`), r = Math.max(1, ...s.map((e) => Number(e[n]) || 0)), i = s.map((e) => {
			let t = (e.t - o) / (a - o || 1) * 300, i = 88 - (Number(e[n]) || 0) / r * 84;
			return `${t.toFixed(1)},${i.toFixed(1)}`;
		});
		t.querySelector("polyline").setAttribute("points", i.join(" ")), t.querySelector(".max").textContent = `max ${q(r)} · ${s.length} points`, t.dataset.points = String(s.length);
	}
}
function En() {
	let e = Y[Y.length - 1];
	if (!e) return;
	J("node").textContent = e.node ? `· ${e.node}` : "", wn("tile", hn, e), Tn("chart", gn, Y, X * 1e3);
	let t = J("status");
	e.draining && (t.textContent = "draining", t.dataset.state = "reconnecting");
}
function Dn() {
	let e = Date.now(), t = Q.rows(e);
	if (!t.length) return;
	let n = Q.totals(e);
	J("cluster-summary").textContent = `${n.nodes_up} up · ${n.nodes_down} down · a node is down after ${Q.staleAfterMs / 1e3} s without a point`, wn("ctile", _n, n), Tn("cchart", vn, Q.samples, X * 1e3), J("nodes").querySelector("tbody").replaceChildren(...t.map((e) => {
		let t = document.createElement("tr");
		t.dataset.node = e.name, t.dataset.state = e.state, e.key === Z && (t.className = "local");
		for (let [, n] of yn) {
			let r = document.createElement("td");
			r.textContent = n(e), t.append(r);
		}
		return t;
	}));
}
function On(e) {
	let t = new Set(Y.map((e) => e.t));
	Y = Y.concat(e.filter((e) => !t.has(e.t))).sort((e, t) => e.t - t.t), Y.length > X && (Y = Y.slice(Y.length - X)), En();
}
function kn(e) {
	let t = Date.now();
	Q.observe(e, t), Z !== null && e.id === Z && (On([e]), Q.sample(t, e.t)), Dn();
}
function $(e, t = e) {
	let n = J("status");
	n.dataset.state = e, n.textContent = t;
}
var An = null, jn = {
	raw: p,
	json: re,
	msgpack: ln
}, Mn = document.querySelector("meta[name=\"sigma-serializer\"]")?.content ?? "raw", Nn = jn[Mn];
function Pn(e) {
	if (An?.disconnect(), Nn === void 0) {
		let e = J("problem");
		e.textContent = `this server's payloads use the ${JSON.stringify(Mn)} serializer; the dashboard reads raw (JSON text), json and msgpack`, e.hidden = !1, $("error", "unsupported");
		return;
	}
	let t = new gt({
		url: `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/`,
		authToken: e,
		clientInfo: {
			name: pn,
			version: "1",
			platform: "web",
			metadata: {}
		},
		maxReconnectAttempts: null,
		maxReconnectInterval: 1e4,
		serializer: Nn
	});
	An = t;
	let n = new TextDecoder();
	t.on("connection", (e) => {
		e === "connected" ? ($("live"), J("problem").hidden = !0, t.subscribe(fn)) : e === "reconnecting" && $("reconnecting");
	}), t.on("message", (e, t, r, i) => {
		let a = Nn === p ? JSON.parse(n.decode(e)) : e;
		a.type === "history" && a.points ? (a.interval && (X = Math.round(300 / a.interval)), a.id !== Z && (Z = a.id ?? null, Q = new dn((a.stale_after ?? 5) * 1e3, X), Y = []), On(a.points)) : a.type === "point" && i === fn && kn(a);
	}), t.on("error", (t) => {
		let n = t.message;
		if (/token/.test(n)) J("token-form").hidden = !1, J("token-error").textContent = e ? "wrong token" : "", $("error", "token needed");
		else {
			let e = J("problem");
			e.textContent = n, e.hidden = !1, /turned off/.test(n) && $("error", "off");
		}
	}), t.connect().catch(() => {});
}
Cn(), setInterval(Dn, 1e3), J("token-form").addEventListener("submit", (e) => {
	e.preventDefault();
	let t = J("token").value;
	sessionStorage.setItem(mn, t), J("token-form").hidden = !0, Pn(t);
}), Pn(sessionStorage.getItem(mn) ?? "");
