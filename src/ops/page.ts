/**
 * The live view's page: one self-contained HTML document (inline CSS and script, nothing
 * fetched but `/status` and `/events` of the server that serves it). It draws each
 * producer's stream tree (Routers as circles coloured by their Worker's load, pipes as
 * edges, the consumers on each Router inside its circle), the Workers with their loads and
 * the rooms, and redraws on every status the server pushes (Server-Sent Events on
 * `/events`; polling `/status` every 2 s when the event stream fails).
 *
 * For tests and scripts, the page keeps the last status in `window.mafaldaStatus` and the
 * number of statuses drawn in `document.body.dataset.updates`; every drawn Router is an
 * element `.hop` with `data-router`, `data-worker`, `data-consumers`, `data-depth`, `data-load`.
 *
 * @module
 */
import { LOAD_COLOURS } from "./loadColours.js"

const style = `
body{font:14px/1.4 system-ui,sans-serif;margin:20px;color:#222;max-width:1400px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:18px 0 6px}
.muted{color:#666}.bad{color:#b30000}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}
.bar{display:inline-block;height:10px;vertical-align:middle;border:1px solid #999;background:#fff;width:120px;position:relative}
.bar>span{display:block;height:100%}.bar>i{position:absolute;top:-3px;bottom:-3px;border-left:2px solid #333}
.key span{display:inline-block;width:12px;height:12px;border:1px solid #333;border-radius:50%;vertical-align:middle;margin:0 4px 0 12px}
.tree{border:1px solid #ddd;margin:8px 0;padding:6px;background:#fff}
.tree svg{display:block;max-width:100%;height:auto;font:11px system-ui,sans-serif}
.tree .pipe{stroke:#888;stroke-width:1.2}.tree circle{stroke:#333;stroke-width:.8}
.tree .origin circle{stroke-width:2.2}.tree .pipe.hidden{stroke-dasharray:3 3}
.tree .label{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
`

const script = `
"use strict";
// The bands of loadColours.ts (the report draws the same).
const colours = ${JSON.stringify(LOAD_COLOURS)};
const pct = (n) => String(Math.round(n * 10) / 10);
const bandsFor = (w) => [
  { below: w / 2, colour: colours[0], label: "under " + pct(w / 2) + " % (half the watermark)" },
  { below: w, colour: colours[1], label: pct(w / 2) + "–" + pct(w) + " % (under the watermark)" },
  { below: 100, colour: colours[2], label: pct(w) + "–100 % (at or over the watermark)" },
  { below: Infinity, colour: colours[3], label: "100 % or more (overloaded)" }];
let watermark = 60;
const colourOf = (load) => bandsFor(watermark).find((b) => load < b.below).colour;
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\\"":"&quot;"}[c]));
const short = (id) => String(id ?? "?").split("/").pop();
const $ = (id) => document.getElementById(id);
const MAX_CHILDREN = 10, MAX_NODES = 240;
const plural = (n, one, many) => n + " " + (n === 1 ? one : many);

function drawKey() {
  $("key").innerHTML = "Router colour, by its Worker's load:" + bandsFor(watermark)
    .map((b) => '<span style="background:' + b.colour + '"></span>' + esc(b.label)).join("");
}

function visible(hops) {
  // Each Router with at most MAX_CHILDREN children drawn; the rest of them, with their
  // subtrees, become one "+n" node.
  const children = new Map(), byRouter = new Map(hops.map((h) => [h.router, h]));
  const roots = [];
  for (const h of hops) {
    if (h.parent === null || !byRouter.has(h.parent)) roots.push(h);
    else {
      if (!children.has(h.parent)) children.set(h.parent, []);
      children.get(h.parent).push(h);
    }
  }
  const subtree = (h) => (children.get(h.router) || []).reduce((a, k) => {
    const s = subtree(k);
    return { routers: a.routers + s.routers, consumers: a.consumers + s.consumers };
  }, { routers: 1, consumers: h.consumers });
  const nodes = [];
  const walk = (h, parent) => {
    nodes.push({ id: h.router, parent, depth: h.depth, hop: h });
    const kids = children.get(h.router) || [];
    const shown = kids.slice(0, Math.max(0, Math.min(MAX_CHILDREN, MAX_NODES - nodes.length)));
    for (const k of shown) walk(k, h.router);
    const hidden = kids.slice(shown.length).map(subtree);
    if (hidden.length > 0) nodes.push({ id: "more:" + h.router, parent: h.router, depth: h.depth + 1,
      more: hidden.reduce((a, s) => ({ routers: a.routers + s.routers, consumers: a.consumers + s.consumers }),
        { routers: 0, consumers: 0 }) });
  };
  for (const r of roots) walk(r, null);
  return nodes;
}

function layout(nodes) {
  // A tidy layered layout: leaves left to right, each parent centred over its children.
  const children = new Map();
  for (const n of nodes) if (n.parent !== null) {
    if (!children.has(n.parent)) children.set(n.parent, []);
    children.get(n.parent).push(n);
  }
  const pos = new Map();
  let next = 0;
  const place = (n) => {
    const kids = children.get(n.id) || [];
    const x = kids.length === 0 ? next++ : (() => { const xs = kids.map(place); return (xs[0] + xs[xs.length - 1]) / 2; })();
    pos.set(n.id, x);
    return x;
  };
  for (const n of nodes) if (n.parent === null) place(n);
  return { pos, leaves: Math.max(1, next) };
}

function treeSvg(tree, loads) {
  const nodes = visible(tree.hops);
  const { pos, leaves } = layout(nodes);
  const maxDepth = Math.max(0, ...nodes.map((n) => n.depth));
  const colW = 84, rowH = 82, padX = 30, padY = 30;
  const W = Math.max(320, leaves * colW + padX * 2), H = padY * 2 + maxDepth * rowH + 24;
  const xy = (n) => [padX + (pos.get(n.id) + 0.5) * colW, padY + n.depth * rowH];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const parts = [];
  for (const n of nodes) {
    const p = n.parent === null ? undefined : byId.get(n.parent);
    if (p === undefined) continue;
    const [x1, y1] = xy(p), [x2, y2] = xy(n);
    parts.push('<line class="pipe' + (n.more ? " hidden" : "") + '"' + (n.more ? "" : ' data-from="' + esc(p.id) +
      '" data-to="' + esc(n.id) + '"') + ' x1="' + x1 + '" y1="' + y1 + '" x2="' + x2 + '" y2="' + y2 + '"/>');
  }
  for (const n of nodes) {
    const [x, y] = xy(n);
    if (n.more) {
      parts.push('<g class="more"><title>' + plural(n.more.routers, "more Router", "more Routers") + " (with " +
        plural(n.more.consumers, "consumer", "consumers") + ') not drawn</title><rect x="' + (x - 26) + '" y="' + (y - 12) +
        '" width="52" height="24" rx="12" fill="#eee" stroke="#999"/><text x="' + x + '" y="' + (y + 4) +
        '" text-anchor="middle">+' + n.more.routers + '</text><text x="' + x + '" y="' + (y + 26) +
        '" text-anchor="middle" class="label">' + plural(n.more.consumers, "consumer", "consumers") + "</text></g>");
      continue;
    }
    const h = n.hop;
    const load = loads.get(h.worker);
    const r = h.parent === null ? 16 : 14;
    parts.push('<g class="hop' + (h.parent === null ? " origin" : "") + '" data-router="' + esc(h.router) +
      '" data-worker="' + esc(h.worker ?? "") + '" data-consumers="' + h.consumers + '" data-depth="' + h.depth +
      '" data-load="' + (load ?? "") + '"><title>Router ' + esc(h.router) + " on " + esc(h.worker ?? "?") +
      ": depth " + h.depth + ", " + plural(h.consumers, "consumer", "consumers") + ", Worker load " +
      (load === undefined ? "?" : load.toFixed(1) + " %") + '</title><circle cx="' + x + '" cy="' + y +
      '" r="' + r + '" fill="' + (load === undefined ? "#ddd" : colourOf(load)) + '"/><text x="' + x +
      '" y="' + (y + 4) + '" text-anchor="middle" font-weight="600">' + h.consumers + '</text><text x="' + x +
      '" y="' + (y + r + 13) + '" text-anchor="middle" class="label">' + esc(short(h.worker)) + '</text><text x="' + x +
      '" y="' + (y + r + 25) + '" text-anchor="middle" class="label muted">' +
      (load === undefined ? "" : load.toFixed(0) + " %") + "</text></g>");
  }
  return '<svg viewBox="0 0 ' + W + " " + H + '" width="' + W + '" height="' + H + '" role="img">' + parts.join("") + "</svg>";
}

function draw(s) {
  window.mafaldaStatus = s;
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  if (typeof s.watermark === "number") watermark = s.watermark;
  drawKey();
  const t = s.totals;
  $("summary").textContent = "Node " + s.node + ": " + [plural(t.workers, "Worker", "Workers"),
    plural(t.rooms, "room", "rooms"), plural(t.transports, "transport", "transports"),
    plural(t.producers, "producer", "producers"), plural(t.consumers, "consumer", "consumers"),
    plural(t.pipes, "pipe", "pipes")].join(", ") + "; deepest tree " + plural(t.treeDepthMax, "hop", "hops") +
    " (watermark " + watermark + " %)";
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  const loads = new Map(s.workers.map((w) => [w.id, w.load]));
  $("workers").innerHTML = "<tr><th>Worker</th><th>pid</th><th>load</th><th></th><th>Routers</th><th>transports</th><th>producers</th><th>consumers</th></tr>" +
    s.workers.map((w) => "<tr><td>" + esc(w.id) + "</td><td>" + (w.pid ?? "-") + "</td><td>" + w.load.toFixed(1) +
      ' %</td><td><span class="bar"><span style="width:' + Math.min(100, w.load) + "%;background:" + colourOf(w.load) +
      '"></span><i style="left:' + Math.min(100, watermark) + '%"></i></span></td><td>' + w.routers.length +
      "</td><td>" + w.transports + "</td><td>" + w.producers + "</td><td>" + w.consumers + "</td></tr>").join("");
  $("rooms").innerHTML = "<tr><th>room (Mafalda Router)</th><th>Routers</th><th>Workers</th><th>transports</th><th>producers</th><th>consumers</th></tr>" +
    s.rooms.map((r) => "<tr><td>" + esc(r.id) + "</td><td>" + r.routers.length + "</td><td>" + r.workers.length +
      "</td><td>" + r.transports + "</td><td>" + r.producers + "</td><td>" + r.consumers + "</td></tr>").join("");
  $("trees").innerHTML = s.trees.length === 0 ? '<p class="muted">No producer yet.</p>' :
    s.trees.map((tree) => '<div class="tree" data-producer="' + esc(tree.producer) + '"><b>producer ' +
      esc(tree.producer) + "</b> (" + esc(tree.kind ?? "?") + ", room " + esc(short(tree.room)) + "): " +
      plural(tree.hops.length, "Router", "Routers") + ", " + plural(tree.hops.length - 1, "pipe", "pipes") + ", " +
      plural(tree.hops.reduce((n, h) => n + h.consumers, 0), "consumer", "consumers") + treeSvg(tree, loads) +
      "</div>").join("");
}

function poll() {
  $("link").textContent = "polling";
  const once = () => fetch("status", { cache: "no-store" }).then((r) => r.json()).then(draw)
    .catch(() => { $("link").textContent = "server unreachable"; });
  once();
  setInterval(once, 2000);
}

function listen() {
  const events = new EventSource("events");
  events.onopen = () => { $("link").textContent = "live"; };
  events.onmessage = (e) => draw(JSON.parse(e.data));
  events.onerror = () => { if (events.readyState === EventSource.CLOSED) poll(); else $("link").textContent = "reconnecting"; };
}

try { listen(); } catch { poll(); }
`

/** The live view's HTML page. */
export const livePage = (title = "mafalda: live view"): string => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${style}</style></head><body>
<h1>${title}</h1>
<p><span id="summary">waiting for the first status…</span> <span class="muted">(<span id="link">connecting</span>, <span id="updated"></span>)</span></p>
<p class="key" id="key"></p>
<h2>Stream trees</h2>
<p class="muted">One tree per producer: circles are mediasoup Routers (the number: consumers of the producer there; below: the Worker and its load), lines are pipes, the origin is at the top with a thick outline; depth grows downwards. A Router with more than 10 pipes out shows the first 10; a grey "+n" stands for the other n Routers below it.</p>
<div id="trees"></div>
<h2>Workers</h2><table id="workers"></table>
<h2>Rooms</h2><table id="rooms"></table>
<p class="muted">Also: <a href="status">/status</a> (JSON), <a href="metrics">/metrics</a> (Prometheus).</p>
<script>${script}</script>
</body></html>
`
