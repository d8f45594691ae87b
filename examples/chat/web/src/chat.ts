/**
 * The chat's client side: one SigmaSocketClient and the reactive state the UI renders.
 *
 * Protocol (JSON in SigmaSockets payloads; see ../README.md): rooms are topics `room:<name>`
 * joined with `client.subscribe`; a chat message is sent as {t:"msg", room, id, text} with a
 * client-made id and shows as "pending" until the server publishes it to the room. Its place is
 * its position in the room topic: `boot` = the topic's epoch, `n` = its offset (a live message
 * gets them from the client: the offset is the message id, the epoch the topic's position; a
 * history item carries them). The timeline is kept sorted by (boot, n) (epochs in the order
 * this page saw them) and deduplicated by id, so history, replay after a reconnect, messages
 * resent to a restarted server and messages published through other chat nodes merge into one
 * list, each message once, in the topic's order — the same on every screen.
 *
 * Members come as one list when we join (`members`, in pages, at version `v`: the room topic's
 * offset it stands at) and then as changes: join/leave notices on the room topic (version: their
 * offset), away/back (`member`) on the room's live topic `live:<name>`, which also carries
 * typing. A join or leave not newer than the list we hold is ignored, and those newer than a
 * list that arrives late are applied on top of it. The room list works the same way: the whole
 * list in `hello`, then `rooms` changes, each with the room-list version `v`.
 */

import { reactive } from "vue";
import {
  SigmaSocketClient,
  type ConnectionStatus,
  type RecoveryFailedInfo,
  type ReconnectInfo,
  type SessionResetInfo,
} from "sigmasockets-client";

export const ROOM_PREFIX = "room:";
export const LIVE_PREFIX = "live:";
/** Member changes remembered per room, to re-apply on top of a member list that arrives late. */
const MEMBER_CHANGES_KEPT = 256;
const TYPING_SHOW_MS = 6000;
const TYPING_REPEAT_MS = 2500;
const TYPING_IDLE_MS = 4000;
export const MAX_TEXT = 2000;

export type Status = "connecting" | "connected" | "reconnecting" | "offline";

export interface User {
  sid: string;
  user: string;
  online: boolean;
}

export interface ChatMessage {
  kind: "msg";
  key: string;
  id: string;
  room: string;
  sid: string;
  user: string;
  text: string;
  ts: number;
  boot: string;
  n: number;
  mine: boolean;
}

export interface Notice {
  kind: "notice";
  key: string;
  room: string;
  text: string;
  icon: string;
  ts: number;
  boot: string;
  n: number;
}

export type TimelineItem = ChatMessage | Notice;

export interface PendingMessage {
  id: string;
  room: string;
  text: string;
  ts: number;
  error: string;
}

export interface RoomState {
  name: string;
  joined: boolean;
  timeline: TimelineItem[];
  pending: PendingMessage[];
  members: User[];
  /** sid -> who is typing and until when (ms, Date.now()). */
  typing: Record<string, { user: string; until: number }>;
  unread: number;
}

/** A change to a room's member list: `user` undefined removes the member. */
interface MemberChange {
  v: number;
  sid: string;
  user?: User;
}

/** Member-list bookkeeping per room (not rendered). */
interface MemberSync {
  /** Version of the list shown (0: none yet). */
  v: number;
  /** Pages of a list being received. */
  pages: User[];
  recent: MemberChange[];
}

export interface RoomInfo {
  name: string;
  users: number;
}

interface Wire {
  t?: unknown;
  [key: string]: unknown;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function randomId(): string {
  // crypto.getRandomValues works on plain http:// too (randomUUID needs a secure context).
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function num(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

function sortUsers(list: User[]): User[] {
  const key = (u: User): string => u.user.toLowerCase();
  return list.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a.sid < b.sid ? -1 : a.sid > b.sid ? 1 : 0));
}

function users(value: unknown): User[] {
  if (!Array.isArray(value)) return [];
  return value.map((u: Wire) => ({ sid: str(u.sid), user: str(u.user), online: u.online === true }));
}

/**
 * Where the chat server's WebSocket is: /ws on the page's own host and port. `?ws=ws://...`
 * overrides it (tests put a proxy in between), but only for the page's own host name, so a
 * crafted link cannot send your messages to another machine.
 */
export function defaultUrl(): string {
  const override = new URLSearchParams(location.search).get("ws");
  if (override) {
    try {
      const url = new URL(override);
      if ((url.protocol === "ws:" || url.protocol === "wss:") && url.hostname === location.hostname) {
        return url.href;
      }
    } catch {
      // not a URL: ignored
    }
    console.warn(`chat: ignoring ?ws=${override} (must be ws:// or wss:// on ${location.hostname})`);
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

export class Chat {
  readonly state = reactive({
    phase: "login" as "login" | "chat",
    username: "",
    loginError: "",
    status: "connecting" as Status,
    attempt: 0,
    maxAttempts: null as number | null,
    nextRetryAt: 0,
    sid: "",
    rooms: [] as RoomInfo[],
    joined: {} as Record<string, RoomState>,
    active: "",
    historySize: 0,
    notice: "",
    noticeColor: "info",
    noticeSerial: 0,
    now: Date.now(),
  });

  private client: SigmaSocketClient | null = null;
  private readonly ownIds = new Set<string>();
  /** Room topics' epochs (`boot`) in the order this page first saw them: sorts timelines across
   * restarts and failovers. */
  private readonly boots = new Map<string, number>();
  private autoJoined = false;
  private roomsVersion = 0;
  /** Rooms that always exist (listed first, in the server's order). */
  private fixedRooms = new Set<string>();
  private readonly memberSync = new Map<string, MemberSync>();
  private welcomed = false;
  private typingOn = false;
  private typingSentAt = 0;
  private typingRoom = "";
  private typingIdle: ReturnType<typeof setTimeout> | null = null;
  private ticker: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly url: string = defaultUrl()) {}

  // ------------------------------------------------------------------ lifecycle

  start(username: string): void {
    const name = username.trim().replace(/\s+/g, " ");
    if (!name) return;
    this.stop();
    const s = this.state;
    s.username = name;
    s.loginError = "";
    s.phase = "chat";
    s.status = "connecting";
    this.welcomed = false;
    const client = new SigmaSocketClient({
      url: this.url,
      clientInfo: { name: "sigmasockets-chat", version: "0.1.0", platform: "web",
                    metadata: { user: name } },
      reconnectInterval: 1000,
      maxReconnectInterval: 8000,
      maxReconnectAttempts: 20,
      heartbeatTimeout: 60000,
    });
    this.client = client;
    client.on("connection", (status) => this.onStatus(status));
    client.on("reconnecting", (info) => this.onReconnecting(info));
    client.on("message", (data, offset, timestamp, topic) => this.onMessage(data, offset, timestamp, topic));
    client.on("session_reset", (info) => this.onSessionReset(info));
    client.on("recovery_failed", (info) => this.onRecoveryFailed(info));
    client.on("error", (error) => console.warn("chat:", error.message));
    this.ticker = setInterval(() => this.tick(), 250);
    client.connect().catch((error: Error) => {
      if (this.client === client && !this.welcomed) {
        // Never got in (e.g. the server refused the name): back to the login form.
        this.stop();
        s.phase = "login";
        s.loginError = error.message.replace(/^.*?: /, "");
      }
    });
  }

  /** Leave for good (ends the session on the server: others see us leave). */
  stop(): void {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    const client = this.client;
    this.client = null;
    if (client !== null && client.getStatus() !== "disconnected") client.disconnect();
    const s = this.state;
    s.joined = {};
    s.active = "";
    s.rooms = [];
    s.sid = "";
    this.autoJoined = false;
    this.roomsVersion = 0;
    this.memberSync.clear();
  }

  logout(): void {
    this.stop();
    this.state.phase = "login";
  }

  /** Try again after giving up (status "offline"). */
  retry(): void {
    if (this.client !== null && this.state.status === "offline") {
      this.state.status = "connecting";
      this.client.connect().catch(() => undefined);
    }
  }

  // ------------------------------------------------------------------ rooms

  join(name: string): void {
    const s = this.state;
    const client = this.client;
    if (client === null) return;
    if (!s.joined[name]) {
      s.joined[name] = {
        name, joined: true, timeline: [], pending: [], members: [], typing: {}, unread: 0,
      };
      client.subscribe(ROOM_PREFIX + name);
    }
    this.select(name);
  }

  leave(name: string): void {
    const s = this.state;
    if (!s.joined[name] || this.client === null) return;
    this.setTyping(false);
    this.client.unsubscribe(ROOM_PREFIX + name);
    delete s.joined[name];
    this.memberSync.delete(name);
    if (s.active === name) s.active = Object.keys(s.joined)[0] ?? "";
  }

  select(name: string): void {
    const room = this.state.joined[name];
    if (room === undefined) return;
    if (this.state.active !== name) this.setTyping(false);
    this.state.active = name;
    room.unread = 0;
  }

  // ------------------------------------------------------------------ sending

  /** Send a chat message to the active room. False if it could not be queued. */
  send(text: string): boolean {
    const s = this.state;
    const room = s.joined[s.active];
    const client = this.client;
    const body = text.trim() ? text.replace(/\s+$/, "") : "";
    if (room === undefined || client === null || !body) return false;
    if (body.length > MAX_TEXT) {
      this.flash(`Messages are limited to ${MAX_TEXT} characters`, "error");
      return false;
    }
    const id = randomId();
    this.typingOn = false;
    if (this.typingIdle !== null) clearTimeout(this.typingIdle);
    const ok = client.send(encoder.encode(JSON.stringify({ t: "msg", room: room.name, id, text: body })),
                           ROOM_PREFIX + room.name);
    if (!ok) {
      this.flash("Too many messages waiting to be sent: try again when connected", "error");
      return false;
    }
    this.ownIds.add(id);
    room.pending.push({ id, room: room.name, text: body, ts: Date.now(), error: "" });
    return true;
  }

  /** Call on every edit of the message box: sends typing on/off (never queued offline). */
  typed(text: string): void {
    if (!text.trim()) {
      this.setTyping(false);
      return;
    }
    const now = Date.now();
    if (!this.typingOn || now - this.typingSentAt > TYPING_REPEAT_MS) this.setTyping(true);
    if (this.typingIdle !== null) clearTimeout(this.typingIdle);
    this.typingIdle = setTimeout(() => this.setTyping(false), TYPING_IDLE_MS);
  }

  private setTyping(on: boolean): void {
    const room = on ? this.state.active : this.typingRoom;
    if (!on && this.typingIdle !== null) clearTimeout(this.typingIdle);
    if (!on && !this.typingOn) return;
    this.typingOn = on;
    this.typingRoom = room;
    this.typingSentAt = Date.now();
    const client = this.client;
    // Ephemeral: only while connected (a queued "typing" would arrive long after the fact).
    if (client === null || client.getStatus() !== "connected" || !this.state.joined[room]) return;
    client.send(encoder.encode(JSON.stringify({ t: "typing", room, on })), ROOM_PREFIX + room);
  }

  // ------------------------------------------------------------------ events

  private onStatus(status: ConnectionStatus): void {
    const s = this.state;
    if (status === "connected") {
      s.status = "connected";
      s.attempt = 0;
    } else if (status === "reconnecting") {
      s.status = "reconnecting";
    } else if (status === "connecting") {
      s.status = "connecting";
    } else {
      s.status = "offline";
    }
    if (status !== "connected") {
      // Nobody can be shown typing while we cannot hear them stop.
      for (const room of Object.values(s.joined)) room.typing = {};
    }
  }

  private onReconnecting(info: ReconnectInfo): void {
    const s = this.state;
    s.attempt = info.attempt;
    s.maxAttempts = info.maxAttempts;
    s.nextRetryAt = Date.now() + info.nextRetryIn;
    s.now = Date.now();
  }

  private onSessionReset(info: SessionResetInfo): void {
    const resent = info.resent ? ` — ${info.resent} unconfirmed message(s) sent again` : "";
    this.flash(`The server restarted: your session was renewed${resent}`, "warning");
  }

  private onRecoveryFailed(info: RecoveryFailedInfo): void {
    // Part of a room's stream (or of its live topic: away/back) could not be replayed: ask
    // for the room's members and history again (the server rate-limits sync).
    const prefix = [ROOM_PREFIX, LIVE_PREFIX].find((p) => info.topic.startsWith(p));
    if (prefix === undefined || this.client === null) return;
    const room = info.topic.slice(prefix.length);
    // A new epoch numbers member changes from 1 again: the next list starts over.
    if (prefix === ROOM_PREFIX) this.memberSync.delete(room);
    if (this.state.joined[room]) {
      this.client.send(encoder.encode(JSON.stringify({ t: "sync", room })), ROOM_PREFIX + room);
    }
  }

  /** The epoch of `topic`'s position as the client holds it (that of the message being
   * delivered), as a decimal string: a live message's `boot`. */
  private epochOf(topic: string): string {
    const position = this.client?.core.positions.get(topic);
    return position === undefined ? "" : position.epoch.toString();
  }

  private onMessage(data: Uint8Array, offset: number, timestamp: number, topic: string): void {
    let m: Wire;
    try {
      m = JSON.parse(decoder.decode(data)) as Wire;
    } catch {
      return;
    }
    if (typeof m !== "object" || m === null) return;
    const s = this.state;
    switch (m.t) {
      case "hello": {
        this.welcomed = true;
        s.sid = str(m.sid);
        s.historySize = num(m.history_size);
        this.setRooms(m.rooms, num(m.v));
        if (!this.autoJoined) {
          this.autoJoined = true;
          const first = s.rooms[0]?.name;
          if (first !== undefined && Object.keys(s.joined).length === 0) this.join(first);
        }
        break;
      }
      case "rooms":
        this.changeRooms(m.changes, num(m.v));
        break;
      case "history": {
        const room = s.joined[str(m.room)];
        if (room === undefined) break;
        if (Array.isArray(m.items)) {
          for (const item of m.items as Wire[]) this.addMessage(room, item, false);
        }
        break;
      }
      case "members": {
        const room = s.joined[str(m.room)];
        if (room !== undefined) this.memberPage(room, m);
        break;
      }
      case "member": {
        // Away (connection lost, session waiting) or back: a listed member's online flag.
        const room = s.joined[str(m.room)];
        const sid = str(m.sid);
        if (room === undefined || !sid) break;
        const online = m.online === true;
        if (room.members.some((u) => u.sid === sid && u.online !== online)) {
          room.members = room.members.map((u) => (u.sid === sid ? { ...u, online } : u));
        }
        break;
      }
      case "msg": {
        const room = s.joined[str(m.room)];
        if (room === undefined || topic !== ROOM_PREFIX + room.name) break;
        this.addMessage(room, { ...m, boot: this.epochOf(topic), n: offset }, true);
        delete room.typing[str(m.sid)];
        break;
      }
      case "presence": {
        const room = s.joined[str(m.room)];
        if (room === undefined || topic !== ROOM_PREFIX + room.name) break;
        const join = m.action === "join";
        const sid = str(m.sid);
        const boot = this.epochOf(topic);
        // A second leave of someone already gone (two nodes both saw a dead node's member
        // go): nothing to show. Before any list arrived (v 0) every leave counts.
        const listed = this.sync(room).v === 0 || room.members.some((u) => u.sid === sid);
        this.changeMembers(room, {
          v: offset, sid,
          user: join ? { sid, user: str(m.user), online: m.online !== false } : undefined,
        });
        if (m.quiet !== true && (join || listed)) {  // quiet: put back after a restart
          const who = str(m.sid) === s.sid ? "You" : str(m.user);
          this.insert(room, {
            kind: "notice", key: `${boot}:${offset}`, room: room.name,
            text: `${who} ${join ? "joined" : "left"} #${room.name}`,
            icon: join ? "mdi-account-plus-outline" : "mdi-account-minus-outline",
            ts: num(m.ts), boot, n: offset,
          });
        }
        if (!join) delete room.typing[str(m.sid)];
        break;
      }
      case "typing": {
        const room = s.joined[str(m.room)];
        const sid = str(m.sid);
        if (room === undefined || sid === s.sid) break;
        // Replayed after an outage: old news.
        if (Date.now() - (num(m.ts) || timestamp) > TYPING_SHOW_MS) break;
        if (m.on === true) room.typing[sid] = { user: str(m.user), until: Date.now() + TYPING_SHOW_MS };
        else delete room.typing[sid];
        break;
      }
      case "error": {
        const id = str(m.id);
        let marked = false;
        for (const room of Object.values(s.joined)) {
          for (const p of room.pending) {
            if (p.id === id) {
              p.error = str(m.message);
              marked = true;
            }
          }
        }
        if (!marked) this.flash(str(m.message) || "The server refused a request", "error");
        break;
      }
      default:
        break;
    }
  }

  // ------------------------------------------------------------------ state helpers

  private setRooms(value: unknown, version: number): void {
    if (!Array.isArray(value)) return;
    this.roomsVersion = version;
    this.fixedRooms = new Set(value.filter((r: Wire) => r.fixed === true).map((r: Wire) => str(r.name)));
    this.state.rooms = value.map((r: Wire) => ({ name: str(r.name), users: num(r.users) }));
  }

  /** Room-list changes: counts, new rooms, removed rooms (older than the list we hold: ignored). */
  private changeRooms(value: unknown, version: number): void {
    if (!Array.isArray(value) || version <= this.roomsVersion) return;
    this.roomsVersion = version;
    const rooms = this.state.rooms;
    for (const change of value as Wire[]) {
      const name = str(change.name);
      const index = rooms.findIndex((r) => r.name === name);
      if (change.removed === true) {
        if (index >= 0) rooms.splice(index, 1);
      } else if (index >= 0) {
        rooms[index]!.users = num(change.users);
      } else if (name) {
        rooms.push({ name, users: num(change.users) });
      }
    }
    // The server's order: the fixed rooms as listed, then the others by name.
    const fixed = rooms.filter((r) => this.fixedRooms.has(r.name));
    const others = rooms.filter((r) => !this.fixedRooms.has(r.name))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.state.rooms = [...fixed, ...others];
  }

  private sync(room: RoomState): MemberSync {
    let sync = this.memberSync.get(room.name);
    if (sync === undefined) {
      sync = { v: 0, pages: [], recent: [] };
      this.memberSync.set(room.name, sync);
    }
    return sync;
  }

  /** One page of a room's member list; the last page replaces the list shown. */
  private memberPage(room: RoomState, m: Wire): void {
    const sync = this.sync(room);
    if (num(m.page) <= 1) sync.pages = [];
    sync.pages.push(...users(m.users));
    if (num(m.page) < num(m.pages)) return;
    const version = num(m.v);
    const list = new Map(sync.pages.map((u) => [u.sid, u]));
    sync.pages = [];
    // Changes newer than this list (they arrived before it) still apply.
    for (const change of sync.recent) {
      if (change.v <= version) continue;
      if (change.user === undefined) list.delete(change.sid);
      else list.set(change.sid, change.user);
    }
    sync.v = Math.max(version, ...sync.recent.map((c) => c.v));
    room.members = sortUsers([...list.values()]);
  }

  private changeMembers(room: RoomState, change: MemberChange): void {
    const sync = this.sync(room);
    sync.recent.push(change);
    if (sync.recent.length > MEMBER_CHANGES_KEPT) sync.recent.shift();
    if (change.v <= sync.v) return;  // already in the list we hold
    sync.v = change.v;
    const members = room.members.filter((u) => u.sid !== change.sid);
    if (change.user !== undefined) members.push(change.user);
    room.members = sortUsers(members);
  }

  private bootIndex(boot: string): number {
    let index = this.boots.get(boot);
    if (index === undefined) {
      index = this.boots.size;
      this.boots.set(boot, index);
    }
    return index;
  }

  private addMessage(room: RoomState, m: Wire, live: boolean): void {
    const id = str(m.id);
    if (!id) return;
    const pendingIndex = room.pending.findIndex((p) => p.id === id);
    if (pendingIndex >= 0) room.pending.splice(pendingIndex, 1);
    const added = this.insert(room, {
      kind: "msg", key: id, id, room: room.name, sid: str(m.sid), user: str(m.user),
      text: str(m.text), ts: num(m.ts), boot: str(m.boot), n: num(m.n),
      mine: this.ownIds.has(id) || (str(m.sid) === this.state.sid && str(m.user) === this.state.username),
    });
    if (added && live && room.name !== this.state.active) room.unread += 1;
  }

  /** Insert keeping (boot order, n) order; false if an item with that key is already shown. */
  private insert(room: RoomState, item: TimelineItem): boolean {
    const timeline = room.timeline;
    if (timeline.some((t) => t.key === item.key)) return false;
    const rank = (t: TimelineItem): [number, number] => [this.bootIndex(t.boot), t.n];
    const [b, n] = rank(item);
    let i = timeline.length;
    while (i > 0) {
      const [pb, pn] = rank(timeline[i - 1]!);
      if (pb < b || (pb === b && pn < n)) break;
      i -= 1;
    }
    timeline.splice(i, 0, item);
    return true;
  }

  private tick(): void {
    const s = this.state;
    s.now = Date.now();
    for (const room of Object.values(s.joined)) {
      for (const [sid, t] of Object.entries(room.typing)) {
        if (t.until <= s.now) delete room.typing[sid];
      }
    }
  }

  private flash(text: string, color: string): void {
    const s = this.state;
    s.notice = text;
    s.noticeColor = color;
    s.noticeSerial += 1;
  }

  /** Messages queued or unconfirmed across rooms. */
  pendingCount(): number {
    return Object.values(this.state.joined).reduce((n, r) => n + r.pending.length, 0);
  }
}
