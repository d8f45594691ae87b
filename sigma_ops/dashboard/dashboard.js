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
	LIMIT_EXCEEDED: 4009
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
	NORMAL: 16
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
		return f(this.message);
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
}, s = class extends n {}, c = class extends n {}, l = class extends n {}, u = class extends n {
	code;
	constructor(e, t) {
		super(`server error ${e}: ${t}`), this.code = e;
	}
}, d = new TextEncoder();
function f(e, t = 123) {
	if (d.encode(e).length <= t) return e;
	let n = "", r = 0;
	for (let i of e) {
		let e = d.encode(i).length;
		if (r + e > t) break;
		n += i, r += e;
	}
	return n;
}
// ../../clients/js/node_modules/flatbuffers/mjs/utils.js
var p = /* @__PURE__ */ new Int32Array(2), ee = new Float32Array(p.buffer), te = new Float64Array(p.buffer), m = new Uint16Array(new Uint8Array([1, 0]).buffer)[0] === 1, ne;
(function(e) {
	e[e.UTF8_BYTES = 1] = "UTF8_BYTES", e[e.UTF16_STRING = 2] = "UTF16_STRING";
})(ne ||= {});
// ../../clients/js/node_modules/flatbuffers/mjs/byte-buffer.js
var h = class e {
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
		return p[0] = this.readInt32(e), ee[0];
	}
	readFloat64(e) {
		return p[+!m] = this.readInt32(e), p[+!!m] = this.readInt32(e + 4), te[0];
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
		ee[0] = t, this.writeInt32(e, p[0]);
	}
	writeFloat64(e, t) {
		te[0] = t, this.writeInt32(e, p[+!m]), this.writeInt32(e + 4, p[+!!m]);
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
		return t === ne.UTF8_BYTES ? r : this.text_decoder_.decode(r);
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
}, re = class e {
	constructor(e) {
		this.minalign = 1, this.vtable = null, this.vtable_in_use = 0, this.isNested = !1, this.object_start = 0, this.vtables = [], this.vector_num_elems = 0, this.force_defaults = !1, this.string_maps = null, this.text_encoder = new TextEncoder();
		let t;
		t = e || 1024, this.bb = h.allocate(t), this.space = t;
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
		let n = t << 1, r = h.allocate(n);
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
}, g = class {
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
}, _ = class e {
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
		return t ? (e || new g()).__init(this.bb_pos + t, this.bb) : null;
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
}, v = class e {
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
		return n ? (t || new _()).__init(this.bb.__indirect(this.bb.__vector(this.bb_pos + n) + e * 4), this.bb) : null;
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
}, y = class e {
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
		return t ? (e || new g()).__init(this.bb_pos + t, this.bb) : null;
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
}, b = class e {
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
}, x = class e {
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
}, S = class e {
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
}, C = class e {
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
		return n ? (t || new S()).__init(this.bb.__indirect(this.bb.__vector(this.bb_pos + n) + e * 4), this.bb) : null;
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
}, w = class e {
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
		return n ? (t || new _()).__init(this.bb.__indirect(this.bb.__vector(this.bb_pos + n) + e * 4), this.bb) : null;
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
		return t ? (e || new C()).__init(this.bb.__indirect(this.bb_pos + t), this.bb) : null;
	}
	static startHello(e) {
		e.startObject(7);
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
	static endHello(e) {
		return e.endObject();
	}
}, T = class e {
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
}, E = class e {
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
}, ie = /* @__PURE__ */ function(e) {
	return e[e.Join = 0] = "Join", e[e.Leave = 1] = "Leave", e;
}({}), D = class e {
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
		return e ? this.bb.readUint8(this.bb_pos + e) : ie.Join;
	}
	sessionId(e) {
		let t = this.bb.__offset(this.bb_pos, 8);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	metadata(e, t) {
		let n = this.bb.__offset(this.bb_pos, 10);
		return n ? (t || new S()).__init(this.bb.__indirect(this.bb.__vector(this.bb_pos + n) + e * 4), this.bb) : null;
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
		e.addFieldInt8(1, t, ie.Join);
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
}, O = class e {
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
		return t ? (e || new g()).__init(this.bb_pos + t, this.bb) : null;
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
}, ae = /* @__PURE__ */ function(e) {
	return e[e.Recovered = 0] = "Recovered", e[e.Failed = 1] = "Failed", e[e.Fresh = 2] = "Fresh", e;
}({}), k = class e {
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
		return e ? this.bb.readUint8(this.bb_pos + e) : ae.Recovered;
	}
	position(e) {
		let t = this.bb.__offset(this.bb_pos, 8);
		return t ? (e || new g()).__init(this.bb_pos + t, this.bb) : null;
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
		e.addFieldInt8(1, t, ae.Recovered);
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
}, A = class e {
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
		return t ? (e || new k()).__init(this.bb.__indirect(this.bb_pos + t), this.bb) : null;
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
}, j = class e {
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
}, M = class e {
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
}, N = class e {
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
}, P = class e {
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
		return n ? (t || new k()).__init(this.bb.__indirect(this.bb.__vector(this.bb_pos + n) + e * 4), this.bb) : null;
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
		return t ? (e || new N()).__init(this.bb.__indirect(this.bb_pos + t), this.bb) : null;
	}
	serverTimeMs() {
		let e = this.bb.__offset(this.bb_pos, 20);
		return e ? this.bb.readUint64(this.bb_pos + e) : BigInt("0");
	}
	freshReason(e) {
		let t = this.bb.__offset(this.bb_pos, 22);
		return t ? this.bb.__string(this.bb_pos + t, e) : null;
	}
	static startWelcome(e) {
		e.startObject(10);
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
	static endWelcome(e) {
		let t = e.endObject();
		return e.requiredField(t, 4), e.requiredField(t, 6), t;
	}
}, F = /* @__PURE__ */ function(e) {
	return e[e.NONE = 0] = "NONE", e[e.Hello = 1] = "Hello", e[e.Welcome = 2] = "Welcome", e[e.Data = 3] = "Data", e[e.Ack = 4] = "Ack", e[e.Ping = 5] = "Ping", e[e.Pong = 6] = "Pong", e[e.Subscribe = 7] = "Subscribe", e[e.Unsubscribe = 8] = "Unsubscribe", e[e.Subscribed = 9] = "Subscribed", e[e.Unsubscribed = 10] = "Unsubscribed", e[e.Presence = 11] = "Presence", e[e.Error = 12] = "Error", e[e.Goodbye = 13] = "Goodbye", e;
}({}), I = class e {
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
		return e ? this.bb.readUint8(this.bb_pos + e) : F.NONE;
	}
	body(e) {
		let t = this.bb.__offset(this.bb_pos, 6);
		return t ? this.bb.__union(e, this.bb_pos + t) : null;
	}
	static startEnvelope(e) {
		e.startObject(2);
	}
	static addBodyType(e, t) {
		e.addFieldInt8(0, t, F.NONE);
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
}, L = {
	Recovered: 0,
	Failed: 1,
	Fresh: 2
}, R = {
	Join: 0,
	Leave: 1
}, oe = 65535, se = 4294967295, ce = (1n << 64n) - 1n, le = {
	Hello: F.Hello,
	Welcome: F.Welcome,
	Data: F.Data,
	Ack: F.Ack,
	Ping: F.Ping,
	Pong: F.Pong,
	Subscribe: F.Subscribe,
	Unsubscribe: F.Unsubscribe,
	Subscribed: F.Subscribed,
	Unsubscribed: F.Unsubscribed,
	Presence: F.Presence,
	Error: F.Error,
	Goodbye: F.Goodbye
};
new TextEncoder();
function z(e, t) {
	let n;
	if (typeof e == "bigint") n = e;
	else if (typeof e == "number" && Number.isSafeInteger(e)) n = BigInt(e);
	else throw new r(`${t} must be an integer (bigint), not ${String(e)}`);
	if (n < 0n || n > ce) throw new r(`${t}=${n} is out of range for ulong (0..${ce})`);
	return n;
}
function ue(e, t, n, i) {
	let a = typeof e == "bigint" ? Number(e) : e;
	if (typeof a != "number" || !Number.isInteger(a)) throw new r(`${i} must be an integer, not ${String(e)}`);
	if (a < 0 || a > t) throw new r(`${i}=${a} is out of range for ${n} (0..${t})`);
	return a;
}
var B = (e, t) => ue(e, se, "uint", t), V = (e, t) => ue(e, oe, "ushort", t), de = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
function H(e, t) {
	if (typeof e != "string") throw new r(`${t} must be a string, not ${typeof e}`);
	if (de.test(e)) throw new r(`${t} cannot be encoded as UTF-8 (lone surrogate)`);
	return e;
}
function fe(e, t) {
	if (e instanceof Uint8Array) return e;
	if (e instanceof ArrayBuffer) return new Uint8Array(e);
	if (ArrayBuffer.isView(e)) return new Uint8Array(e.buffer, e.byteOffset, e.byteLength);
	throw new r(`${t} must be a Uint8Array`);
}
function U(e, t) {
	if (typeof e != "object" || !e || !("epoch" in e) || !("offset" in e)) throw new r(`${t} must be a StreamPosition {epoch, offset}`);
	let n = e;
	return [z(n.epoch, `${t}.epoch`), z(n.offset, `${t}.offset`)];
}
function pe(e, t, n, i) {
	if (typeof e != "number" || !Object.values(t).includes(e)) throw new r(`${i}=${String(e)} is not a ${n}`);
	return e;
}
function W(e, t, n) {
	let r = H(t ?? "", n);
	return r ? e.createString(r) : 0;
}
function me(e, t) {
	if (t.length === 0) return 0;
	e.startVector(4, t.length, 4);
	for (let n = t.length - 1; n >= 0; n--) e.addOffset(t[n]);
	return e.endVector();
}
function he(e, t) {
	if (e === void 0) return [];
	if (!Array.isArray(e)) throw new r(`${t} must be an array`);
	return e;
}
function ge(e, t, n) {
	let r = e.createString(H(t.topic, `${n}.topic`)), [i, a] = U(t.position, `${n}.position`);
	return _.startTopicPosition(e), _.addPosition(e, g.createStreamPosition(e, i, a)), _.addTopic(e, r), _.endTopicPosition(e);
}
function _e(e, t, n) {
	return me(e, he(t, n).map((t) => ge(e, t, n)));
}
function ve(e, t, n) {
	if (typeof t != "object" || !t) throw new r(`${n} must be a TopicRecovery`);
	let i = e.createString(H(t.topic, `${n}.topic`)), a = pe(t.status ?? L.Recovered, L, "RecoveryStatus", `${n}.status`), o = t.position == null ? null : U(t.position, `${n}.position`), s = z(t.lostFrom ?? 0n, `${n}.lostFrom`), c = z(t.lostTo ?? 0n, `${n}.lostTo`), l = z(t.replayed ?? 0n, `${n}.replayed`);
	return k.startTopicRecovery(e), o !== null && k.addPosition(e, g.createStreamPosition(e, o[0], o[1])), k.addLostFrom(e, s), k.addLostTo(e, c), k.addReplayed(e, l), k.addTopic(e, i), k.addStatus(e, a), k.endTopicRecovery(e);
}
function ye(e, t, n) {
	if (t === void 0) return 0;
	if (typeof t != "object" || !t) throw new r(`${n} must be an object of string values`);
	let i = [];
	for (let [r, a] of Object.entries(t)) {
		let t = e.createString(H(r, `${n} key`)), o = W(e, a, `${n}[${JSON.stringify(r)}]`);
		S.startKeyValue(e), S.addKey(e, t), S.addValue(e, o), i.push(S.endKeyValue(e));
	}
	return me(e, i);
}
function be(e, t) {
	let n = W(e, t.name, "ClientInfo.name"), r = W(e, t.version, "ClientInfo.version"), i = W(e, t.platform, "ClientInfo.platform"), a = ye(e, t.metadata, "ClientInfo.metadata");
	return C.startClientInfo(e), C.addName(e, n), C.addVersion(e, r), C.addPlatform(e, i), C.addMetadata(e, a), C.endClientInfo(e);
}
function xe(e, t) {
	let n = [
		B(t.maxMessageSize ?? 0, "Limits.maxMessageSize"),
		B(t.maxUnacked ?? 0, "Limits.maxUnacked"),
		B(t.maxTopics ?? 0, "Limits.maxTopics"),
		B(t.maxMessagesPerSecond ?? 0, "Limits.maxMessagesPerSecond"),
		B(t.maxBytesPerSecond ?? 0, "Limits.maxBytesPerSecond")
	];
	return N.startLimits(e), N.addMaxMessageSize(e, n[0]), N.addMaxUnacked(e, n[1]), N.addMaxTopics(e, n[2]), N.addMaxMessagesPerSecond(e, n[3]), N.addMaxBytesPerSecond(e, n[4]), N.endLimits(e);
}
function Se(e, t) {
	switch (t.type) {
		case "Hello": {
			let n = V(t.protocolVersion ?? 1, "Hello.protocolVersion"), r = W(e, t.sessionId, "Hello.sessionId"), i = fe(t.resumeToken ?? /* @__PURE__ */ new Uint8Array(), "Hello.resumeToken"), a = i.length ? e.createByteVector(i) : 0, o = _e(e, t.positions, "Hello.positions"), s = z(t.lastAckedSeq ?? 0n, "Hello.lastAckedSeq"), c = W(e, t.authToken, "Hello.authToken"), l = t.client == null ? 0 : be(e, t.client);
			return w.startHello(e), w.addLastAckedSeq(e, s), w.addSessionId(e, r), w.addResumeToken(e, a), w.addPositions(e, o), w.addAuthToken(e, c), w.addClient(e, l), w.addProtocolVersion(e, n), w.endHello(e);
		}
		case "Welcome": {
			let n = e.createString(H(t.sessionId, "Welcome.sessionId")), r = e.createByteVector(fe(t.resumeToken, "Welcome.resumeToken")), i = me(e, he(t.recovery, "Welcome.recovery").map((t) => ve(e, t, "Welcome.recovery"))), a = t.limits == null ? 0 : xe(e, t.limits), o = W(e, t.freshReason, "Welcome.freshReason"), s = z(t.lastReceivedSeq ?? 0n, "Welcome.lastReceivedSeq"), c = z(t.serverTimeMs ?? 0n, "Welcome.serverTimeMs"), l = B(t.heartbeatIntervalMs ?? 0, "Welcome.heartbeatIntervalMs"), u = B(t.heartbeatTimeoutMs ?? 0, "Welcome.heartbeatTimeoutMs");
			return P.startWelcome(e), P.addLastReceivedSeq(e, s), P.addServerTimeMs(e, c), P.addSessionId(e, n), P.addResumeToken(e, r), P.addRecovery(e, i), P.addHeartbeatIntervalMs(e, l), P.addHeartbeatTimeoutMs(e, u), P.addLimits(e, a), P.addFreshReason(e, o), P.addResumed(e, !!t.resumed), P.endWelcome(e);
		}
		case "Data": {
			let n = fe(t.payload ?? /* @__PURE__ */ new Uint8Array(), "Data.payload"), r = n.length ? e.createByteVector(n) : 0, i = W(e, t.topic, "Data.topic"), a = t.position == null ? null : U(t.position, "Data.position"), o = z(t.seq ?? 0n, "Data.seq"), s = z(t.timestampMs ?? 0n, "Data.timestampMs");
			return y.startData(e), a !== null && y.addPosition(e, g.createStreamPosition(e, a[0], a[1])), y.addTimestampMs(e, s), y.addSeq(e, o), y.addPayload(e, r), y.addTopic(e, i), y.endData(e);
		}
		case "Ack": {
			let n = _e(e, t.positions, "Ack.positions"), r = z(t.seq ?? 0n, "Ack.seq");
			return v.startAck(e), v.addSeq(e, r), v.addPositions(e, n), v.endAck(e);
		}
		case "Ping": {
			let n = B(t.id ?? 0, "Ping.id"), r = z(t.timestampMs ?? 0n, "Ping.timestampMs");
			return T.startPing(e), T.addTimestampMs(e, r), T.addId(e, n), T.endPing(e);
		}
		case "Pong": {
			let n = B(t.id ?? 0, "Pong.id"), r = z(t.echoTimestampMs ?? 0n, "Pong.echoTimestampMs"), i = z(t.timestampMs ?? 0n, "Pong.timestampMs");
			return E.startPong(e), E.addEchoTimestampMs(e, r), E.addTimestampMs(e, i), E.addId(e, n), E.endPong(e);
		}
		case "Subscribe": {
			let n = e.createString(H(t.topic, "Subscribe.topic")), r = B(t.requestId ?? 0, "Subscribe.requestId"), i = t.position == null ? null : U(t.position, "Subscribe.position");
			return O.startSubscribe(e), i !== null && O.addPosition(e, g.createStreamPosition(e, i[0], i[1])), O.addTopic(e, n), O.addRequestId(e, r), O.endSubscribe(e);
		}
		case "Unsubscribe": {
			let n = e.createString(H(t.topic, "Unsubscribe.topic")), r = B(t.requestId ?? 0, "Unsubscribe.requestId");
			return j.startUnsubscribe(e), j.addTopic(e, n), j.addRequestId(e, r), j.endUnsubscribe(e);
		}
		case "Subscribed": {
			let n = ve(e, t.recovery, "Subscribed.recovery"), r = B(t.requestId ?? 0, "Subscribed.requestId");
			return A.startSubscribed(e), A.addRecovery(e, n), A.addRequestId(e, r), A.endSubscribed(e);
		}
		case "Unsubscribed": {
			let n = e.createString(H(t.topic, "Unsubscribed.topic")), r = B(t.requestId ?? 0, "Unsubscribed.requestId");
			return M.startUnsubscribed(e), M.addTopic(e, n), M.addRequestId(e, r), M.endUnsubscribed(e);
		}
		case "Presence": {
			let n = e.createString(H(t.topic, "Presence.topic")), r = e.createString(H(t.sessionId, "Presence.sessionId")), i = ye(e, t.metadata, "Presence.metadata"), a = pe(t.action ?? R.Join, R, "PresenceAction", "Presence.action");
			return D.startPresence(e), D.addTopic(e, n), D.addSessionId(e, r), D.addMetadata(e, i), D.addAction(e, a), D.endPresence(e);
		}
		case "Error": {
			let n = W(e, t.message, "Error.message"), r = W(e, t.details, "Error.details"), i = V(t.code ?? 0, "Error.code"), a = B(t.requestId ?? 0, "Error.requestId");
			return b.startError(e), b.addMessage(e, n), b.addDetails(e, r), b.addRequestId(e, a), b.addCode(e, i), b.addRetryable(e, !!t.retryable), b.endError(e);
		}
		case "Goodbye": {
			let n = W(e, t.reason, "Goodbye.reason"), r = V(t.code ?? 0, "Goodbye.code"), i = B(t.reconnectAfterMs ?? 0, "Goodbye.reconnectAfterMs");
			return x.startGoodbye(e), x.addReason(e, n), x.addReconnectAfterMs(e, i), x.addCode(e, r), x.endGoodbye(e);
		}
		default: throw new r(`cannot encode a message of type ${String(t.type)}`);
	}
}
function Ce(e) {
	if (typeof e != "object" || !e || !(e.type in le)) throw new r(`cannot encode ${String(e?.type)}`);
	let t = new re(e.type === "Data" && e.payload ? e.payload.length + 128 : 256), n = Se(t, e);
	return I.startEnvelope(t), I.addBody(t, n), I.addBodyType(t, le[e.type]), I.finishEnvelopeBuffer(t, I.endEnvelope(t)), t.asUint8Array();
}
var we = {
	u8: 1,
	u16: 2,
	u32: 4,
	u64: 8,
	pos: 16,
	str: 4,
	bytes: 4,
	table: 4,
	tables: 4
}, G = (e, t, n = {}) => ({
	name: e,
	kind: t,
	...n
}), Te = {
	name: "TopicPosition",
	fields: [G("topic", "str", { required: !0 }), G("position", "pos", { required: !0 })]
}, Ee = {
	name: "TopicRecovery",
	fields: [
		G("topic", "str", { required: !0 }),
		G("status", "u8"),
		G("position", "pos"),
		G("lost_from", "u64"),
		G("lost_to", "u64"),
		G("replayed", "u64")
	]
}, De = {
	name: "KeyValue",
	fields: [G("key", "str", { required: !0 }), G("value", "str")]
}, Oe = {
	name: "ClientInfo",
	fields: [
		G("name", "str"),
		G("version", "str"),
		G("platform", "str"),
		G("metadata", "tables", { table: De })
	]
}, ke = {
	name: "Limits",
	fields: [
		G("max_message_size", "u32"),
		G("max_unacked", "u32"),
		G("max_topics", "u32"),
		G("max_messages_per_second", "u32"),
		G("max_bytes_per_second", "u32")
	]
}, Ae = {
	[F.Hello]: {
		name: "Hello",
		fields: [
			G("protocol_version", "u16"),
			G("session_id", "str"),
			G("resume_token", "bytes"),
			G("positions", "tables", { table: Te }),
			G("last_acked_seq", "u64"),
			G("auth_token", "str"),
			G("client", "table", { table: Oe })
		]
	},
	[F.Welcome]: {
		name: "Welcome",
		fields: [
			G("session_id", "str", { required: !0 }),
			G("resume_token", "bytes", { required: !0 }),
			G("resumed", "u8"),
			G("recovery", "tables", { table: Ee }),
			G("last_received_seq", "u64"),
			G("heartbeat_interval_ms", "u32"),
			G("heartbeat_timeout_ms", "u32"),
			G("limits", "table", { table: ke }),
			G("server_time_ms", "u64"),
			G("fresh_reason", "str")
		]
	},
	[F.Data]: {
		name: "Data",
		fields: [
			G("topic", "str"),
			G("position", "pos"),
			G("seq", "u64"),
			G("timestamp_ms", "u64"),
			G("payload", "bytes")
		]
	},
	[F.Ack]: {
		name: "Ack",
		fields: [G("seq", "u64"), G("positions", "tables", { table: Te })]
	},
	[F.Ping]: {
		name: "Ping",
		fields: [G("id", "u32"), G("timestamp_ms", "u64")]
	},
	[F.Pong]: {
		name: "Pong",
		fields: [
			G("id", "u32"),
			G("echo_timestamp_ms", "u64"),
			G("timestamp_ms", "u64")
		]
	},
	[F.Subscribe]: {
		name: "Subscribe",
		fields: [
			G("request_id", "u32"),
			G("topic", "str", { required: !0 }),
			G("position", "pos")
		]
	},
	[F.Unsubscribe]: {
		name: "Unsubscribe",
		fields: [G("request_id", "u32"), G("topic", "str", { required: !0 })]
	},
	[F.Subscribed]: {
		name: "Subscribed",
		fields: [G("request_id", "u32"), G("recovery", "table", {
			table: Ee,
			required: !0
		})]
	},
	[F.Unsubscribed]: {
		name: "Unsubscribed",
		fields: [G("request_id", "u32"), G("topic", "str", { required: !0 })]
	},
	[F.Presence]: {
		name: "Presence",
		fields: [
			G("topic", "str", { required: !0 }),
			G("action", "u8"),
			G("session_id", "str", { required: !0 }),
			G("metadata", "tables", { table: De })
		]
	},
	[F.Error]: {
		name: "Error",
		fields: [
			G("code", "u16"),
			G("message", "str"),
			G("details", "str"),
			G("retryable", "u8"),
			G("request_id", "u32")
		]
	},
	[F.Goodbye]: {
		name: "Goodbye",
		fields: [
			G("code", "u16"),
			G("reason", "str"),
			G("reconnect_after_ms", "u32")
		]
	}
}, je = new TextDecoder("utf-8", { fatal: !0 }), Me = class {
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
			je.decode(this.buf.subarray(e + 4, r));
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
			if (c < 4 || c + we[n.kind] > r) throw new a(`${s}: field offset ${c} is outside its table`);
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
function Ne(e) {
	let t = e.byteLength;
	if (t < 8) throw new a(`envelope too short (${t} bytes)`);
	let n = String.fromCharCode(e[4], e[5], e[6], e[7]);
	if (n !== "SGM1") throw new a(`not a SigmaSockets envelope (file identifier ${JSON.stringify(n)})`);
	let r = new Me(e), i = r.u32(0), { inline: s, fields: c } = r.openTable(i, 2, "Envelope"), [l, u] = c, d = 0;
	if (l) {
		if (!(l >= 4 && l < s)) throw new a("Envelope.body_type: field offset is outside its table");
		d = r.u8(i + l);
	}
	if (d === 0) throw new a("envelope has no body");
	if (!u) throw new a(`envelope of type ${d} has no body`);
	if (!(u >= 4 && u <= s - 4)) throw new a("Envelope.body: field offset is outside its table");
	let f = Ae[d];
	if (f === void 0) throw new o(d);
	let p = i + u, ee = p + r.u32(p);
	return r.table(ee, f, f.name), {
		bodyType: d,
		spec: f
	};
}
var Pe = /* @__PURE__ */ new Uint8Array();
function K(e) {
	return e === null ? null : {
		epoch: e.epoch(),
		offset: e.offset()
	};
}
function Fe(e) {
	return {
		topic: e.topic() ?? "",
		position: K(e.position())
	};
}
function Ie(e) {
	let t = e.status(), n = t === L.Recovered || t === L.Fresh ? t : L.Failed;
	return {
		topic: e.topic() ?? "",
		status: n,
		position: K(e.position()),
		lostFrom: e.lostFrom(),
		lostTo: e.lostTo(),
		replayed: e.replayed()
	};
}
function Le(e, t) {
	let n = {};
	for (let r = 0; r < e; r++) {
		let e = t(r);
		n[e.key() ?? ""] = e.value() ?? "";
	}
	return n;
}
function Re(e) {
	return e === null ? null : {
		name: e.name() ?? "",
		version: e.version() ?? "",
		platform: e.platform() ?? "",
		metadata: Le(e.metadataLength(), (t) => e.metadata(t))
	};
}
function ze(e) {
	return e === null ? null : {
		maxMessageSize: e.maxMessageSize(),
		maxUnacked: e.maxUnacked(),
		maxTopics: e.maxTopics(),
		maxMessagesPerSecond: e.maxMessagesPerSecond(),
		maxBytesPerSecond: e.maxBytesPerSecond()
	};
}
function Be(e, t) {
	switch (e) {
		case F.Hello: {
			let e = t.body(new w()), n = [];
			for (let t = 0; t < e.positionsLength(); t++) n.push(Fe(e.positions(t)));
			return {
				type: "Hello",
				protocolVersion: e.protocolVersion(),
				sessionId: e.sessionId() ?? "",
				resumeToken: (e.resumeTokenArray() ?? Pe).slice(),
				positions: n,
				lastAckedSeq: e.lastAckedSeq(),
				authToken: e.authToken() ?? "",
				client: Re(e.client())
			};
		}
		case F.Welcome: {
			let e = t.body(new P()), n = [];
			for (let t = 0; t < e.recoveryLength(); t++) n.push(Ie(e.recovery(t)));
			return {
				type: "Welcome",
				sessionId: e.sessionId() ?? "",
				resumeToken: (e.resumeTokenArray() ?? Pe).slice(),
				resumed: e.resumed(),
				recovery: n,
				lastReceivedSeq: e.lastReceivedSeq(),
				heartbeatIntervalMs: e.heartbeatIntervalMs(),
				heartbeatTimeoutMs: e.heartbeatTimeoutMs(),
				limits: ze(e.limits()),
				serverTimeMs: e.serverTimeMs(),
				freshReason: e.freshReason() ?? ""
			};
		}
		case F.Data: {
			let e = t.body(new y());
			return {
				type: "Data",
				topic: e.topic() ?? "",
				position: K(e.position()),
				seq: e.seq(),
				timestampMs: e.timestampMs(),
				payload: e.payloadArray() ?? Pe
			};
		}
		case F.Ack: {
			let e = t.body(new v()), n = [];
			for (let t = 0; t < e.positionsLength(); t++) n.push(Fe(e.positions(t)));
			return {
				type: "Ack",
				seq: e.seq(),
				positions: n
			};
		}
		case F.Ping: {
			let e = t.body(new T());
			return {
				type: "Ping",
				id: e.id(),
				timestampMs: e.timestampMs()
			};
		}
		case F.Pong: {
			let e = t.body(new E());
			return {
				type: "Pong",
				id: e.id(),
				echoTimestampMs: e.echoTimestampMs(),
				timestampMs: e.timestampMs()
			};
		}
		case F.Subscribe: {
			let e = t.body(new O());
			return {
				type: "Subscribe",
				requestId: e.requestId(),
				topic: e.topic() ?? "",
				position: K(e.position())
			};
		}
		case F.Unsubscribe: {
			let e = t.body(new j());
			return {
				type: "Unsubscribe",
				requestId: e.requestId(),
				topic: e.topic() ?? ""
			};
		}
		case F.Subscribed: {
			let e = t.body(new A());
			return {
				type: "Subscribed",
				requestId: e.requestId(),
				recovery: Ie(e.recovery())
			};
		}
		case F.Unsubscribed: {
			let e = t.body(new M());
			return {
				type: "Unsubscribed",
				requestId: e.requestId(),
				topic: e.topic() ?? ""
			};
		}
		case F.Presence: {
			let e = t.body(new D()), n = e.action();
			if (n !== R.Join && n !== R.Leave) throw new o(F.Presence, `Presence with unknown action ${n}`);
			return {
				type: "Presence",
				topic: e.topic() ?? "",
				action: n,
				sessionId: e.sessionId() ?? "",
				metadata: Le(e.metadataLength(), (t) => e.metadata(t))
			};
		}
		case F.Error: {
			let e = t.body(new b());
			return {
				type: "Error",
				code: e.code(),
				message: e.message() ?? "",
				details: e.details() ?? "",
				retryable: e.retryable(),
				requestId: e.requestId()
			};
		}
		case F.Goodbye: {
			let e = t.body(new x());
			return {
				type: "Goodbye",
				code: e.code(),
				reason: e.reason() ?? "",
				reconnectAfterMs: e.reconnectAfterMs()
			};
		}
		default: throw new o(e);
	}
}
function Ve(e) {
	let t = e instanceof Uint8Array ? e : new Uint8Array(e);
	try {
		let { bodyType: e } = Ne(t), n = new h(t);
		return Be(e, I.getRootAsEnvelope(n));
	} catch (e) {
		throw e instanceof a ? e : new a(`malformed envelope (${String(e)})`);
	}
}
// ../../clients/js/src/session.ts
var He = "sigma.v1", Ue = {
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
	wallClockOffset: 0,
	probeTimeout: 3e3
};
function We(e) {
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
function Ge(e, t) {
	let n = Math.min(t - 1, 64);
	return Math.min(e.maxReconnectInterval, e.reconnectInterval * e.reconnectMultiplier ** n);
}
function Ke(e) {
	We(e.url);
	let t = (t, n, r = !1) => {
		let i = e[t];
		if (typeof i != "number" || !Number.isFinite(i) || i < n || r && i === n) throw RangeError(`${t} must be a finite number ${r ? ">" : ">="} ${n}, got ${i}`);
	};
	if (t("reconnectInterval", 0, !0), t("maxReconnectInterval", 0, !0), t("reconnectMultiplier", 1), t("heartbeatInterval", 0), t("heartbeatTimeout", 0), t("connectTimeout", 0, !0), t("handshakeTimeout", 0, !0), t("probeTimeout", 0, !0), t("maxMessageSize", 128, !0), e.reconnectInterval > e.maxReconnectInterval) throw RangeError("reconnectInterval must not exceed maxReconnectInterval");
	let n = e.maxReconnectAttempts;
	if (n !== null && n !== Infinity && !(Number.isInteger(n) && n >= 1)) throw RangeError("maxReconnectAttempts must be an integer >= 1, or null/Infinity");
	if (!(Number.isInteger(e.maxPending) && e.maxPending >= 1)) throw RangeError("maxPending must be an integer >= 1");
	if (e.heartbeatInterval && e.heartbeatTimeout <= e.heartbeatInterval) throw RangeError(`heartbeatTimeout must exceed heartbeatInterval (${e.heartbeatTimeout} <= ${e.heartbeatInterval})`);
}
var qe = new TextEncoder(), Je = /* @__PURE__ */ new Set([
	"Data",
	"Ack",
	"Subscribed",
	"Unsubscribed",
	"Presence",
	"Error"
]), Ye = /* @__PURE__ */ new Set([
	t.AUTH_FAILED,
	t.UNSUPPORTED_VERSION,
	t.SESSION_TAKEN_OVER
]), Xe = {
	[e.BAD_ENVELOPE]: t.BAD_ENVELOPE,
	[e.UNEXPECTED_MESSAGE]: t.UNEXPECTED_MESSAGE,
	[e.HELLO_TIMEOUT]: t.UNEXPECTED_MESSAGE,
	[e.HEARTBEAT_TIMEOUT]: t.HEARTBEAT_TIMEOUT
}, Ze = class n {
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
	constructor(e, t) {
		Ke(e), this.config = e, this.random = t, this.maxUnacked = e.maxPending, this.maxMessageSize = e.maxMessageSize, this.checkHelloFits(null);
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
		let e = Math.min(this.attemptDeadline, this.reconnectAt), t = this.conn;
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
			reason: f(r)
		})), this.conn = null, this.attemptId += 1, this.forgetSession(), this.setStatus("disconnected");
	}
	send(e, t, n = "") {
		if (!(e instanceof Uint8Array)) throw new r("send() needs a Uint8Array payload");
		if (typeof n != "string") throw new r("topic must be a string");
		if (e.length + qe.encode(n).length + 128 > this.maxMessageSize) throw new r(`message of ${e.length} bytes is too large: the limit is ${this.maxMessageSize - 128} bytes of payload and topic`);
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
	transportOpened(t, n, r = He) {
		let i = this.conn;
		t === this.attemptId && i !== null && i.state === "opening" && this.wanted && (this.attemptDeadline = Infinity, r === "sigma.v1" ? (i.state = "hello", i.openedAt = i.lastReceived = n, this.sendBody(this.hello())) : (this.out.push({
			kind: "close",
			attempt: t,
			code: e.PROTOCOL_ERROR,
			reason: "no subprotocol"
		}), this.conn = null, this.attemptId += 1, this.lost(n, e.ABNORMAL_CLOSURE, `the server did not select the subprotocol ${He}` + (r ? ` (it chose ${JSON.stringify(r)})` : ""), null, null)));
	}
	transportError(e, t) {
		e === this.attemptId && this.conn !== null && t && (this.conn.transportError = t);
	}
	receive(t, n, r) {
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
			l = Ve(c);
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
		}), this.conn = null, this.attemptId += 1, this.lost(t, e.ABNORMAL_CLOSURE, `connect timed out after ${this.config.connectTimeout / 1e3} s`, null, null)), t >= this.reconnectAt && (this.reconnectAt = Infinity, this.open(t));
		let n = this.conn;
		n !== null && (n.state === "hello" ? t >= n.openedAt + this.config.handshakeTimeout && this.fail(new i("no Welcome within the handshake timeout", e.HELLO_TIMEOUT), t) : n.state === "open" && (t >= n.probeDeadline ? this.fail(new i(`the network went ${this.online ? "away and came back" : "offline"}: nothing received within ${this.config.probeTimeout / 1e3} s of the probe`, e.HEARTBEAT_TIMEOUT), t) : n.interval && (t >= n.lastReceived + n.timeout ? this.fail(new i(`nothing received for ${((t - n.lastReceived) / 1e3).toFixed(1)} s (heartbeat timeout ${n.timeout / 1e3} s)`, e.HEARTBEAT_TIMEOUT), t) : t >= n.nextPing && (n.pingId = n.pingId + 1 >>> 0, this.sendBody({
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
			authToken: this.config.authToken,
			client: this.config.clientInfo
		};
	}
	sendBody(e) {
		this.out.push({
			kind: "send",
			attempt: this.attemptId,
			data: Ce(e)
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
		}, i = Ce({
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
		}), this.latest.set(e, n), this.isOpen && this.sendBody(t ? {
			type: "Subscribe",
			topic: e,
			requestId: n,
			position: this.positions.get(e) ?? null
		} : {
			type: "Unsubscribe",
			topic: e,
			requestId: n
		}), n;
	}
	transmit() {
		if (!this.isOpen) return;
		let e = this.lastAckedSeq + this.maxUnacked;
		for (let t of this.pending) if (!(t.seq <= this.sentUpto)) {
			if (t.seq > e) break;
			this.sendBody({
				type: "Data",
				topic: t.topic,
				seq: BigInt(t.seq),
				timestampMs: t.timestampMs,
				payload: t.payload
			}), this.sentUpto = t.seq;
		}
	}
	fail(e, n) {
		let r = this.conn;
		r !== null && (r.state === "open" && this.sendBody({
			type: "Goodbye",
			code: Xe[e.code] ?? t.UNKNOWN,
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
		} else Je.has(t.type) ? this.onBody(t) : this.unexpected(e, t, n);
	}
	unexpected(t, n, r) {
		this.fail(new i(`unexpected ${n.type} from the server in state ${t.state === "hello" ? "hello" : "open"}`, e.UNEXPECTED_MESSAGE), r);
	}
	onWelcome(e, t) {
		let n = this.sessionId;
		if (e.resumed) this.dropAcked(Qe(e.lastReceivedSeq));
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
		this.sessionId = e.sessionId, this.token = e.resumeToken;
		let r = e.limits;
		r !== null && (r.maxUnacked && (this.maxUnacked = Math.min(this.config.maxPending, r.maxUnacked)), r.maxMessageSize && (this.maxMessageSize = Math.min(this.config.maxMessageSize, r.maxMessageSize))), this.sentUpto = this.lastAckedSeq;
		let i = /* @__PURE__ */ new Set();
		for (let [e, t] of this.latest) this.requests.get(t)?.subscribe && i.add(e);
		let a = /* @__PURE__ */ new Set();
		for (let t of e.recovery) {
			if (this.unsubscribing.has(t.topic)) this.updatePosition(t);
			else if (!this.applyRecovery(t)) continue;
			t.topic.startsWith("$") || a.add(t.topic);
		}
		this.failures = 0, this.goodbyeFloor = 0, this.connectedAt = t, this.resumed = e.resumed, this.setStatus("connected"), this.out.push({
			kind: "connected",
			sessionId: e.sessionId,
			resumed: e.resumed,
			freshReason: e.freshReason
		}), this.reconcile(a, i), this.transmit();
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
		e.status !== L.Failed && n !== void 0 && n.epoch === t.epoch && n.offset >= t.offset || this.positions.set(e.topic, t);
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
		return n.foreignReserved(t) || this.unaskedOverBudget(t) ? !1 : (this.updatePosition(e), !t.startsWith("$") && !this.unsubscribing.has(t) && this.subscriptions.add(t), e.status === L.Failed && this.out.push({
			kind: "recovery_failed",
			topic: t,
			lostFrom: e.lostFrom,
			lostTo: e.lostTo,
			position: e.position
		}), !0);
	}
	onBody(e) {
		switch (e.type) {
			case "Data":
				this.onData(e);
				break;
			case "Ack":
				this.dropAcked(Qe(e.seq)), this.transmit();
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
			case "Presence": this.out.push({
				kind: "presence",
				presence: e
			});
		}
	}
	isAnswer(e, t, n) {
		let r = this.latest.get(e);
		return t === 0 ? r === void 0 ? !n || !this.unsubscribing.has(e) : !1 : t === r && (this.latest.delete(e), !0);
	}
	onData(e) {
		let t = e.position;
		if (t === null) return;
		let r = e.topic;
		if (n.foreignReserved(r)) return;
		if (!this.subscriptions.has(r) && !r.startsWith("$")) {
			this.positions.has(r) && this.positions.set(r, t);
			return;
		}
		let i = this.positions.get(r);
		i !== void 0 && i.epoch === t.epoch && t.offset <= i.offset ? this.duplicatesDropped += 1 : (this.positions.set(r, t), this.out.push({
			kind: "message",
			topic: r,
			position: t,
			payload: e.payload.slice(),
			timestampMs: e.timestampMs
		}));
	}
	dropAcked(e) {
		let t = 0;
		for (; t < this.pending.length && this.pending[t].seq <= e;) t += 1;
		t && this.pending.splice(0, t), this.lastAckedSeq = Math.max(this.lastAckedSeq, e);
	}
	lost(e, n, r, i, a) {
		let o = a !== null && Ye.has(a.code);
		if (a !== null && a.code === t.NORMAL && this.wanted) {
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
		let u = this.goodbyeFloor + this.random() * Ge(this.config, this.failures);
		this.reconnectAt = e + u, this.setStatus("reconnecting"), this.out.push({
			kind: "reconnecting",
			attempt: this.failures,
			maxAttempts: s === Infinity ? null : s,
			delay: u
		});
	}
	forgetSession() {
		this.sessionId = "", this.token = /* @__PURE__ */ new Uint8Array(), this.positions.clear(), this.unsubscribing.clear(), this.latest.clear(), this.pending = [], this.requests.clear(), this.nextSeq = 1, this.sentUpto = 0, this.lastAckedSeq = 0;
	}
};
function Qe(e) {
	return e > BigInt(2 ** 53 - 1) ? 2 ** 53 - 1 : Number(e);
}
// ../../clients/js/src/client.ts
var $e = 1;
function et() {
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
function tt() {
	let e = globalThis.performance;
	return e === void 0 ? {
		now: () => Date.now(),
		wallClockOffset: 0
	} : {
		now: () => e.now(),
		wallClockOffset: Date.now() - e.now()
	};
}
var nt = class {
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
	constructor(e) {
		if (typeof e != "object" || !e) throw TypeError("SigmaSocketClient needs an options object with a url");
		let t = e.now === void 0 ? tt() : {
			now: e.now,
			wallClockOffset: 0
		};
		this.now = t.now;
		let n = Ue, r = e.reconnectInterval ?? n.reconnectInterval, i = {
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
			wallClockOffset: t.wallClockOffset,
			probeTimeout: e.probeTimeout ?? n.probeTimeout
		};
		this.session = new Ze(i, e.random ?? Math.random), this.WebSocketCtor = e.WebSocket ?? globalThis.WebSocket, this.timers = e.timers ?? {
			setTimeout: (e, t) => globalThis.setTimeout(e, t),
			clearTimeout: (e) => globalThis.clearTimeout(e)
		}, this.network = e.network === void 0 ? et() : e.network;
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
		let n = this.session.send(e, this.now(), t);
		return this.pump(), n !== null;
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
				e.attempt === this.socketAttempt && this.socket?.readyState === $e && this.socket.send(e.data);
				break;
			case "close":
				e.attempt === this.socketAttempt && this.closeSocket(e.code, e.reason);
				break;
			case "status":
				e.status === "connected" ? this.settle(null) : e.status === "disconnected" && this.settle(new s("disconnected before the server welcomed us")), this.emit("connection", e.status);
				break;
			case "connected": break;
			case "message":
				this.emit("message", e.payload, Number(e.position.offset), Number(e.timestampMs), e.topic);
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
				this.emit("error", new u(e.error.code, e.error.message));
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
			case "presence": this.emit("presence", rt(e.presence));
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
			n = new this.WebSocketCtor(t, [He]), n.binaryType = "arraybuffer";
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
function rt(e) {
	return {
		topic: e.topic,
		action: e.action === 0 ? "join" : "leave",
		sessionId: e.sessionId,
		metadata: e.metadata
	};
}
// src/cluster.ts
var it = [
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
], at = class {
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
		for (let e of it) n[e] = 0;
		let r = 0, i = 0;
		for (let t of this.rows(e)) {
			if (t.state === "down") {
				n.nodes_down += 1;
				continue;
			}
			n.nodes_up += 1;
			for (let e of it) n[e] += Number(t.last[e]) || 0;
			let e = t.last;
			(e.rtt_ms > 0 || e.rtt_p95_ms !== null) && (r += e.rtt_ms, i += 1), e.rtt_p95_ms !== null && (n.rtt_p95_ms = Math.max(n.rtt_p95_ms ?? 0, e.rtt_p95_ms));
		}
		for (let e of it) n[e] = Math.round(n[e] * 100) / 100;
		return n.rtt_ms = i ? Math.round(r / i * 1e3) / 1e3 : null, n;
	}
	sample(e, t = e) {
		let n = this.totals(e, t);
		return this.samples.push(n), this.samples.length > this.keep && this.samples.splice(0, this.samples.length - this.keep), n;
	}
}, ot = "sigma-ops.nodes", st = "sigmasockets-dashboard", ct = "sigma-dashboard-token", lt = [
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
], ut = [
	["connections", "Connections"],
	["messages_in_per_s", "Messages in / s"],
	["deliveries_per_s", "Deliveries / s"],
	["rtt_ms", "Heartbeat RTT (ms)"]
], dt = [
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
], ft = [
	["connections", "Cluster connections"],
	["messages_in_per_s", "Cluster messages in / s"],
	["deliveries_per_s", "Cluster deliveries / s"],
	["nodes_up", "Nodes up"]
], pt = [
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
var mt = "http://www.w3.org/2000/svg", Y = [], X = 300, Z = null, Q = new at(5e3);
function ht(e, t, n) {
	let r = J(e);
	for (let [e, i] of n) {
		let n = document.createElement("div");
		n.className = "tile", n.id = `${t}-${e}`, n.innerHTML = "<div class=\"label\"></div><div class=\"value\">–</div>", n.querySelector(".label").textContent = i, r.append(n);
	}
}
function gt(e, t, n) {
	let r = J(e);
	for (let [e, i] of n) {
		let n = document.createElement("div");
		n.className = "chart", n.id = `${t}-${e}`;
		let a = document.createElement("h2");
		a.textContent = i;
		let o = document.createElementNS(mt, "svg");
		o.setAttribute("viewBox", "0 0 300 90"), o.setAttribute("preserveAspectRatio", "none"), o.append(document.createElementNS(mt, "polyline"));
		let s = document.createElement("div");
		s.className = "max", n.append(a, o, s), r.append(n);
	}
}
function _t() {
	ht("tiles", "tile", lt), gt("charts", "chart", ut), ht("cluster-tiles", "ctile", dt), gt("cluster-charts", "cchart", ft);
	let e = J("nodes").querySelector("thead tr");
	for (let [t] of pt) {
		let n = document.createElement("th");
		n.textContent = t, e.append(n);
	}
}
function vt(e, t, n) {
	for (let [r, , i, a] of t) {
		let t = J(`${e}-${r}`);
		t.querySelector(".value").textContent = i(n), t.classList.toggle("alert", a && Number(n[r]) > 0);
	}
}
function yt(e, t, n, r) {
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
function bt() {
	let e = Y[Y.length - 1];
	if (!e) return;
	J("node").textContent = e.node ? `· ${e.node}` : "", vt("tile", lt, e), yt("chart", ut, Y, X * 1e3);
	let t = J("status");
	e.draining && (t.textContent = "draining", t.dataset.state = "reconnecting");
}
function xt() {
	let e = Date.now(), t = Q.rows(e);
	if (!t.length) return;
	let n = Q.totals(e);
	J("cluster-summary").textContent = `${n.nodes_up} up · ${n.nodes_down} down · a node is down after ${Q.staleAfterMs / 1e3} s without a point`, vt("ctile", dt, n), yt("cchart", ft, Q.samples, X * 1e3), J("nodes").querySelector("tbody").replaceChildren(...t.map((e) => {
		let t = document.createElement("tr");
		t.dataset.node = e.name, t.dataset.state = e.state, e.key === Z && (t.className = "local");
		for (let [, n] of pt) {
			let r = document.createElement("td");
			r.textContent = n(e), t.append(r);
		}
		return t;
	}));
}
function St(e) {
	let t = new Set(Y.map((e) => e.t));
	Y = Y.concat(e.filter((e) => !t.has(e.t))).sort((e, t) => e.t - t.t), Y.length > X && (Y = Y.slice(Y.length - X)), bt();
}
function Ct(e) {
	let t = Date.now();
	Q.observe(e, t), Z !== null && e.id === Z && (St([e]), Q.sample(t, e.t)), xt();
}
function $(e, t = e) {
	let n = J("status");
	n.dataset.state = e, n.textContent = t;
}
var wt = null;
function Tt(e) {
	wt?.disconnect();
	let t = new nt({
		url: `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/`,
		authToken: e,
		clientInfo: {
			name: st,
			version: "1",
			platform: "web",
			metadata: {}
		},
		maxReconnectAttempts: null,
		maxReconnectInterval: 1e4
	});
	wt = t;
	let n = new TextDecoder();
	t.on("connection", (e) => {
		e === "connected" ? ($("live"), J("problem").hidden = !0, t.subscribe(ot)) : e === "reconnecting" && $("reconnecting");
	}), t.on("message", (e, t, r, i) => {
		let a = JSON.parse(n.decode(e));
		a.type === "history" && a.points ? (a.interval && (X = Math.round(300 / a.interval)), a.id !== Z && (Z = a.id ?? null, Q = new at((a.stale_after ?? 5) * 1e3, X), Y = []), St(a.points)) : a.type === "point" && i === ot && Ct(a);
	}), t.on("error", (t) => {
		let n = t.message;
		if (/token/.test(n)) J("token-form").hidden = !1, J("token-error").textContent = e ? "wrong token" : "", $("error", "token needed");
		else {
			let e = J("problem");
			e.textContent = n, e.hidden = !1, /turned off/.test(n) && $("error", "off");
		}
	}), t.connect().catch(() => {});
}
_t(), setInterval(xt, 1e3), J("token-form").addEventListener("submit", (e) => {
	e.preventDefault();
	let t = J("token").value;
	sessionStorage.setItem(ct, t), J("token-form").hidden = !0, Tt(t);
}), Tt(sessionStorage.getItem(ct) ?? "");
