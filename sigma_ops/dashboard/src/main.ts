// The live dashboard of a SigmaSockets node and its cluster (sigma_ops). Connects over
// SigmaSockets to the page's own host and subscribes to the stats topic: every node publishes
// a point there once a second, so with a shared cluster engine this page receives every node's
// points. "This node" shows the page's own node (its last minutes arrive first, in the inbox);
// "Cluster" lists every node seen, marks one down when its points stop (src/cluster.ts), and
// charts the totals from the moment the page opened.
// It speaks the server's payload serializer (named by the page, sigma_ops/routes.py): with raw
// the points are JSON text, with json or msgpack they are values.
import { JSON_SERIALIZER, RAW, SigmaSocketClient, type Serializer } from "sigmasockets-client";
import { MSGPACK } from "sigmasockets-client/msgpack";
import { ClusterView, type NodeRow, type Point, type Totals } from "./cluster";

const TOPIC = "sigma-ops.nodes";
const CLIENT_NAME = "sigmasockets-dashboard";
const TOKEN_KEY = "sigma-dashboard-token";

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

const CLUSTER_TILES: [keyof Totals, string, (p: Totals) => string, boolean][] = [
  ["nodes_up", "Nodes up", (p) => fmt(p.nodes_up), false],
  ["nodes_down", "Nodes down", (p) => fmt(p.nodes_down), true],
  ["connections", "Connections", (p) => fmt(p.connections), false],
  ["clients", "Clients", (p) => fmt(p.clients), false],
  ["sessions", "Sessions", (p) => fmt(p.sessions), false],
  ["messages_in_per_s", "Messages in/s", (p) => fmt(p.messages_in_per_s), false],
  ["deliveries_per_s", "Deliveries/s", (p) => fmt(p.deliveries_per_s), false],
  ["resumes", "Resumes", (p) => fmt(p.resumes), false],
  ["failed_resumes", "Failed resumes", (p) => fmt(p.failed_resumes), true],
  ["lost_messages", "Lost messages", (p) => fmt(p.lost_messages), true],
  ["slow_consumers", "Slow consumers", (p) => fmt(p.slow_consumers), true],
  ["rtt_ms", "Heartbeat RTT", (p) => p.rtt_ms === null
    ? "no pong yet"
    : `${p.rtt_ms.toFixed(1)} ms` + (p.rtt_p95_ms === null ? "" : ` (worst p95 ≤ ${p.rtt_p95_ms} ms)`),
   false],
];
const CLUSTER_CHARTS: [keyof Totals, string][] = [
  ["connections", "Cluster connections"],
  ["messages_in_per_s", "Cluster messages in / s"],
  ["deliveries_per_s", "Cluster deliveries / s"],
  ["nodes_up", "Nodes up"],
];
const COLUMNS: [string, (r: NodeRow) => string][] = [
  ["Node", (r) => r.name],
  ["State", (r) => r.state],
  ["Connections", (r) => fmt(r.last.connections)],
  ["Clients", (r) => fmt(r.last.clients)],
  ["Sessions", (r) => fmt(r.last.sessions)],
  ["Msg in/s", (r) => fmt(r.last.messages_in_per_s)],
  ["Deliveries/s", (r) => fmt(r.last.deliveries_per_s)],
  ["Resumes", (r) => fmt(r.last.resumes)],
  ["Lost", (r) => fmt(r.last.lost_messages)],
  ["Slow", (r) => fmt(r.last.slow_consumers)],
  ["RTT ms", (r) => (r.last.rtt_ms === 0 && r.last.rtt_p95_ms === null ? "–" : r.last.rtt_ms.toFixed(1))],
  ["Last point", (r) => `${Math.max(0, Math.round(r.ageMs / 1000))} s ago`],
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
let localId: string | null = null;
let cluster = new ClusterView(5000);

function buildTiles(parent: string, prefix: string, tiles: [string, string, ...unknown[]][]): void {
  const box = $(parent);
  for (const [key, label] of tiles) {
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.id = `${prefix}-${key}`;
    tile.innerHTML = `<div class="label"></div><div class="value">–</div>`;
    (tile.querySelector(".label") as HTMLElement).textContent = label;
    box.append(tile);
  }
}

function buildCharts(parent: string, prefix: string, charts: [string, string][]): void {
  const box = $(parent);
  for (const [key, label] of charts) {
    const chart = document.createElement("div");
    chart.className = "chart";
    chart.id = `${prefix}-${key}`;
    const h2 = document.createElement("h2");
    h2.textContent = label;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 300 90");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.append(document.createElementNS(SVG, "polyline"));
    const max = document.createElement("div");
    max.className = "max";
    chart.append(h2, svg, max);
    box.append(chart);
  }
}

function build(): void {
  buildTiles("tiles", "tile", TILES);
  buildCharts("charts", "chart", CHARTS);
  buildTiles("cluster-tiles", "ctile", CLUSTER_TILES);
  buildCharts("cluster-charts", "cchart", CLUSTER_CHARTS);
  const head = $("nodes").querySelector("thead tr") as HTMLElement;
  for (const [label] of COLUMNS) {
    const th = document.createElement("th");
    th.textContent = label;
    head.append(th);
  }
}

function drawTiles<T>(prefix: string, tiles: [keyof T & string, string, (p: T) => string, boolean][],
  last: T): void {
  for (const [key, , show, alertWhenNonZero] of tiles) {
    const tile = $(`${prefix}-${key}`);
    (tile.querySelector(".value") as HTMLElement).textContent = show(last);
    tile.classList.toggle("alert", alertWhenNonZero && Number(last[key]) > 0);
  }
}

function drawCharts<T extends { t: number }>(prefix: string, charts: [keyof T & string, string][],
  series: T[], spanMs: number): void {
  const last = series[series.length - 1];
  if (!last) return;
  const t1 = last.t;
  // The last `keep` points' span, or less on a node (or a page) younger than that.
  const t0 = Math.max(series[0].t, t1 - spanMs);
  const shown = series.filter((p) => p.t >= t0);
  for (const [key] of charts) {
    const chart = $(`${prefix}-${key}`);
    const max = Math.max(1, ...shown.map((p) => Number(p[key]) || 0));
    const coords = shown.map((p) => {
      const x = ((p.t - t0) / (t1 - t0 || 1)) * 300;
      const y = 88 - ((Number(p[key]) || 0) / max) * 84;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    (chart.querySelector("polyline") as SVGPolylineElement).setAttribute("points", coords.join(" "));
    (chart.querySelector(".max") as HTMLElement).textContent =
      `max ${fmt(max)} · ${shown.length} points`;
    chart.dataset.points = String(shown.length);
  }
}

function render(): void {
  const last = points[points.length - 1];
  if (!last) return;
  $("node").textContent = last.node ? `· ${last.node}` : "";
  drawTiles("tile", TILES, last);
  drawCharts("chart", CHARTS, points, keep * 1000);
  const status = $("status");
  if (last.draining) {
    status.textContent = "draining";
    status.dataset.state = "reconnecting";
  }
}

function renderCluster(): void {
  const now = Date.now();
  const rows = cluster.rows(now);
  if (!rows.length) return;
  const totals = cluster.totals(now);
  $("cluster-summary").textContent =
    `${totals.nodes_up} up · ${totals.nodes_down} down · a node is down after ` +
    `${cluster.staleAfterMs / 1000} s without a point`;
  drawTiles("ctile", CLUSTER_TILES, totals);
  drawCharts("cchart", CLUSTER_CHARTS, cluster.samples, keep * 1000);
  const body = $("nodes").querySelector("tbody") as HTMLElement;
  body.replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    tr.dataset.node = row.name;
    tr.dataset.state = row.state;
    if (row.key === localId) tr.className = "local";
    for (const [, show] of COLUMNS) {
      const td = document.createElement("td");
      td.textContent = show(row);
      tr.append(td);
    }
    return tr;
  }));
}

function add(list: Point[]): void {
  const seen = new Set(points.map((p) => p.t));
  points = points.concat(list.filter((p) => !seen.has(p.t))).sort((a, b) => a.t - b.t);
  if (points.length > keep) points = points.slice(points.length - keep);
  render();
}

function received(point: Point): void {
  const now = Date.now();
  cluster.observe(point, now);
  if (localId !== null && point.id === localId) {
    add([point]);
    // The cluster's totals are sampled at the page's own node's pace.
    cluster.sample(now, point.t);
  }
  renderCluster();
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
    const msg = value as
      { type: string; points?: Point[]; interval?: number; stale_after?: number } & Point;
    if (msg.type === "history" && msg.points) {
      if (msg.interval) keep = Math.round(300 / msg.interval);
      if (msg.id !== localId) {
        // First history, or the node restarted: a new cluster view with its rule.
        localId = msg.id ?? null;
        cluster = new ClusterView((msg.stale_after ?? 5) * 1000, keep);
        points = [];
      }
      add(msg.points);
    } else if (msg.type === "point" && topic === TOPIC) {
      received(msg);
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
setInterval(renderCluster, 1000);  // a node whose points stop turns down without any message
($("token-form") as HTMLFormElement).addEventListener("submit", (event) => {
  event.preventDefault();
  const token = ($("token") as HTMLInputElement).value;
  sessionStorage.setItem(TOKEN_KEY, token);
  ($("token-form") as HTMLFormElement).hidden = true;
  connect(token);
});
connect(sessionStorage.getItem(TOKEN_KEY) ?? "");
