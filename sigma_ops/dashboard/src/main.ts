// The live dashboard of one SigmaSockets node (sigma_ops). Connects over SigmaSockets to the
// page's own host, subscribes to the stats topic, and draws tiles and small charts from the
// points the server publishes once a second (the last minutes arrive first, in the inbox).
// It speaks the server's payload serializer (named by the page, sigma_ops/routes.py): with raw
// the points are JSON text, with json or msgpack they are values.
import { JSON_SERIALIZER, RAW, SigmaSocketClient, type Serializer } from "sigmasockets-client";
import { MSGPACK } from "sigmasockets-client/msgpack";

const TOPIC = "sigma-ops.stats";
const CLIENT_NAME = "sigmasockets-dashboard";
const TOKEN_KEY = "sigma-dashboard-token";

interface Point {
  t: number; node: string; uptime: number; draining: boolean; connections: number;
  clients: number; sessions: number; viewers: number; messages_in_per_s: number; messages_out_per_s: number;
  deliveries_per_s: number; resumes: number; failed_resumes: number; failed_recoveries: number;
  lost_messages: number; slow_consumers: number; rate_limited: number; rtt_ms: number;
  rtt_p95_ms: number | null;
}

const TILES: [keyof Point, string, (p: Point) => string, boolean][] = [
  ["connections", "Connections", (p) => fmt(p.connections), false],
  ["clients", "Clients", (p) => fmt(p.clients), false],
  ["sessions", "Sessions", (p) => fmt(p.sessions), false],
  ["viewers", "Dashboard viewers", (p) => fmt(p.viewers ?? 0), false],
  ["messages_in_per_s", "Messages in/s", (p) => fmt(p.messages_in_per_s), false],
  ["deliveries_per_s", "Deliveries/s", (p) => fmt(p.deliveries_per_s), false],
  ["resumes", "Resumes", (p) => fmt(p.resumes), false],
  ["failed_resumes", "Failed resumes", (p) => fmt(p.failed_resumes), true],
  ["lost_messages", "Lost messages", (p) => fmt(p.lost_messages), true],
  ["slow_consumers", "Slow consumers", (p) => fmt(p.slow_consumers), true],
  ["rate_limited", "Rate limited", (p) => fmt(p.rate_limited), true],
  ["rtt_ms", "Heartbeat RTT", (p) => p.rtt_ms === 0 && p.rtt_p95_ms === null
    ? "no pong yet"
    : `${p.rtt_ms.toFixed(1)} ms` + (p.rtt_p95_ms === null ? "" : ` (p95 ≤ ${p.rtt_p95_ms} ms)`),
   false],
];
const CHARTS: [keyof Point, string][] = [
  ["connections", "Connections"],
  ["messages_in_per_s", "Messages in / s"],
  ["deliveries_per_s", "Deliveries / s"],
  ["rtt_ms", "Heartbeat RTT (ms)"],
];

function fmt(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString("en") : n.toFixed(1);
}

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
let points: Point[] = [];
let keep = 300;

function build(): void {
  const tiles = $("tiles");
  for (const [key, label] of TILES) {
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.id = `tile-${key}`;
    tile.innerHTML = `<div class="label"></div><div class="value">–</div>`;
    (tile.querySelector(".label") as HTMLElement).textContent = label;
    tiles.append(tile);
  }
  const charts = $("charts");
  for (const [key, label] of CHARTS) {
    const chart = document.createElement("div");
    chart.className = "chart";
    chart.id = `chart-${key}`;
    const h2 = document.createElement("h2");
    h2.textContent = label;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 300 90");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.append(document.createElementNS(SVG, "polyline"));
    const max = document.createElement("div");
    max.className = "max";
    chart.append(h2, svg, max);
    charts.append(chart);
  }
}

function render(): void {
  const last = points[points.length - 1];
  if (!last) return;
  $("node").textContent = last.node ? `· ${last.node}` : "";
  for (const [key, , show, alertWhenNonZero] of TILES) {
    const tile = $(`tile-${key}`);
    (tile.querySelector(".value") as HTMLElement).textContent = show(last);
    tile.classList.toggle("alert", alertWhenNonZero && Number(last[key]) > 0);
  }
  const t1 = last.t;
  // The last `keep` points' span, or less on a node younger than that.
  const t0 = Math.max(points[0].t, t1 - keep * 1000);
  for (const [key] of CHARTS) {
    const chart = $(`chart-${key}`);
    const shown = points.filter((p) => p.t >= t0);
    const max = Math.max(1, ...shown.map((p) => Number(p[key])));
    const coords = shown.map((p) => {
      const x = ((p.t - t0) / (t1 - t0 || 1)) * 300;
      const y = 88 - (Number(p[key]) / max) * 84;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    (chart.querySelector("polyline") as SVGPolylineElement).setAttribute("points", coords.join(" "));
    (chart.querySelector(".max") as HTMLElement).textContent =
      `max ${fmt(max)} · ${shown.length} points`;
    chart.dataset.points = String(shown.length);
  }
  const status = $("status");
  if (last.draining) {
    status.textContent = "draining";
    status.dataset.state = "reconnecting";
  }
}

function add(list: Point[]): void {
  const seen = new Set(points.map((p) => p.t));
  points = points.concat(list.filter((p) => !seen.has(p.t))).sort((a, b) => a.t - b.t);
  if (points.length > keep) points = points.slice(points.length - keep);
  render();
}

function setStatus(state: string, text = state): void {
  const status = $("status");
  status.dataset.state = state;
  status.textContent = text;
}

let client: SigmaSocketClient | null = null;

const SERIALIZERS: Record<string, Serializer> = { raw: RAW, json: JSON_SERIALIZER, msgpack: MSGPACK };
const serializerName =
  document.querySelector<HTMLMetaElement>('meta[name="sigma-serializer"]')?.content ?? "raw";
const serializer = SERIALIZERS[serializerName];

function connect(token: string): void {
  client?.disconnect();
  if (serializer === undefined) {
    const problem = $("problem");
    problem.textContent = `this server's payloads use the ${JSON.stringify(serializerName)} `
      + "serializer; the dashboard reads raw (JSON text), json and msgpack";
    problem.hidden = false;
    setStatus("error", "unsupported");
    return;
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const c = new SigmaSocketClient({
    url: `${scheme}//${location.host}/`,
    authToken: token,
    clientInfo: { name: CLIENT_NAME, version: "1", platform: "web", metadata: {} },
    maxReconnectAttempts: null,
    maxReconnectInterval: 10000,
    serializer,
  });
  client = c;
  const decoder = new TextDecoder();
  c.on("connection", (status) => {
    if (status === "connected") {
      setStatus("live");
      $("problem").hidden = true;
      c.subscribe(TOPIC);
    } else if (status === "reconnecting") {
      setStatus("reconnecting");
    }
  });
  c.on("message", (data, _id, _ts, topic) => {
    const value = serializer === RAW ? JSON.parse(decoder.decode(data as Uint8Array)) : data;
    const msg = value as { type: string; points?: Point[]; interval?: number } & Point;
    if (msg.type === "history" && msg.points) {
      if (msg.interval) keep = Math.round(300 / msg.interval);
      add(msg.points);
    } else if (msg.type === "point" && topic === TOPIC) {
      add([msg]);
    }
  });
  c.on("error", (error) => {
    const text = error.message;
    if (/token/.test(text)) {
      ($("token-form") as HTMLFormElement).hidden = false;
      $("token-error").textContent = token ? "wrong token" : "";
      setStatus("error", "token needed");
    } else {
      const problem = $("problem");
      problem.textContent = text;
      problem.hidden = false;
      if (/turned off/.test(text)) setStatus("error", "off");
    }
  });
  c.connect().catch(() => { /* reported through "error" */ });
}

build();
($("token-form") as HTMLFormElement).addEventListener("submit", (event) => {
  event.preventDefault();
  const token = ($("token") as HTMLInputElement).value;
  sessionStorage.setItem(TOKEN_KEY, token);
  ($("token-form") as HTMLFormElement).hidden = true;
  connect(token);
});
connect(sessionStorage.getItem(TOKEN_KEY) ?? "");
