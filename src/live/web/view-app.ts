/// <reference lib="dom" />
/**
 * The web view's page script (issue "See a move happen"), run in the browser. Served inline by the
 * host's control API (live/view-routes.ts) beside elkjs's bundle (global `ELK`), or written into a
 * standalone page with a trace in it (`dconnect view --replay`). No imports: tsc compiles it to one
 * script the page inlines.
 *
 * Live: asks GET /view/topology, lays the fabric out with ELK (layered, boxes and the host as compound
 * nodes), then reads GET /view/events (Server-Sent Events, read with fetch so the token can travel in
 * a header) and colours each link by its busiest direction's utilisation over the last period
 * (busy time's change over simulated time's change), with the bytes each direction carried.
 * Replay: a trace-event file of a simulated run (copy --trace-events) carries its picture and its
 * counter tracks (otherData.runs); a slider moves through its windows.
 */

interface VNode {
  id: string;
  label: string;
  kind: string;
  parent?: string;
}
interface VDirection {
  source: string;
  from: string;
  to: string;
}
interface VLink {
  id: string;
  label: string;
  kind: 'ethernet' | 'pcie';
  a: string;
  b: string;
  directions: VDirection[];
}
interface VTopology {
  name: string;
  nodes: VNode[];
  links: VLink[];
}
interface VCounter {
  busyPs: number;
  wireBytes: number;
  simulatedSeconds: number;
}
interface VJob {
  id: string;
  state: string;
  src: string;
  dst: string;
  via: string;
  lengthBytes: number;
  bytesDone: number;
}
interface VState {
  simulatedSeconds: number;
  links: Record<string, VCounter>;
  jobs: VJob[];
  nodes: Record<string, string>;
}
interface ElkShape {
  id: string;
  x?: number;
  y?: number;
  width?: number;
  height?: number;
  children?: ElkShape[];
  labels?: { text: string; width?: number; height?: number }[];
  layoutOptions?: Record<string, string>;
  edges?: { id: string; sources: string[]; targets: string[]; sections?: { startPoint: P; endPoint: P; bendPoints?: P[] }[] }[];
}
interface P {
  x: number;
  y: number;
}
declare const ELK: new () => { layout(g: ElkShape): Promise<ElkShape> };
interface Window {
  DCONNECT_TRACE?: unknown;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
const $ = (id: string) => document.getElementById(id)!;
const token = new URLSearchParams(location.hash.slice(1)).get('token');
const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};

function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(1)} ${u[i]}`;
}

/** Idle (under 1%) grey; then blue through green and yellow to red. */
function colour(u: number): string {
  const x = Math.max(0, Math.min(1, u));
  return x < 0.01 ? '#b8c4d6' : `hsl(${Math.round(200 - 200 * x)}, 85%, ${Math.round(48 - 8 * x)}%)`;
}

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, parent: Element): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  parent.appendChild(e);
  return e;
}

/** What a drawn picture offers: set each link's per-direction utilisation and bytes. */
interface Picture {
  update(util: Record<string, number>, bytes: Record<string, number> | null): void;
}

async function draw(t: VTopology): Promise<Picture> {
  const app = $('app');
  app.replaceChildren();
  const NODE_W = 150;
  const NODE_H = 34;
  const shape = (n: VNode): ElkShape => ({ id: n.id, width: NODE_W, height: NODE_H, labels: [{ text: n.label }] });
  const compound = new Map<string, ElkShape>();
  const roots: ElkShape[] = [];
  for (const n of t.nodes) {
    if (n.kind === 'host' || n.kind === 'box') {
      const c: ElkShape = { id: n.id, labels: [{ text: n.label, width: 60, height: 16 }], children: [], layoutOptions: { 'elk.padding': '[top=28,left=12,bottom=12,right=12]', 'elk.direction': 'DOWN', 'elk.nodeLabels.placement': 'INSIDE V_TOP H_LEFT', 'elk.layered.spacing.nodeNodeBetweenLayers': '90', 'elk.spacing.nodeNode': '18' } };
      compound.set(n.id, c);
      roots.push(c);
    }
  }
  for (const n of t.nodes) {
    if (compound.has(n.id)) continue;
    const s = shape(n);
    if (n.parent && compound.has(n.parent)) compound.get(n.parent)!.children!.push(s);
    else roots.push(s);
  }
  const graph: ElkShape = {
    id: 'root',
    layoutOptions: { 'elk.algorithm': 'layered', 'elk.direction': 'RIGHT', 'elk.hierarchyHandling': 'INCLUDE_CHILDREN', 'elk.json.shapeCoords': 'ROOT', 'elk.json.edgeCoords': 'ROOT', 'elk.layered.spacing.nodeNodeBetweenLayers': '90', 'elk.spacing.nodeNode': '22', 'elk.spacing.edgeEdge': '14' },
    children: roots,
    edges: t.links.map((l) => ({ id: l.id, sources: [l.a], targets: [l.b] })),
  };
  const laid = await new ELK().layout(graph);
  const width = (laid.width ?? 800) + 20;
  const height = (laid.height ?? 600) + 20;
  const svg = el('svg', { width, height, viewBox: `-10 -10 ${width} ${height}`, id: 'fabric' }, app);
  const kinds = new Map(t.nodes.map((n) => [n.id, n.kind]));
  const fill: Record<string, string> = { host: '#f4f6fa', box: '#f4f6fa', switch: '#e7eef8', bridge: '#fff', 'root-complex': '#fff', device: '#fff8e8' };
  const drawShape = (s: ElkShape) => {
    const kind = kinds.get(s.id) ?? '';
    const g = el('g', { 'data-node': s.id }, svg);
    el('rect', { x: s.x ?? 0, y: s.y ?? 0, width: s.width ?? 0, height: s.height ?? 0, rx: 5, fill: fill[kind] ?? '#fff', stroke: kind === 'host' || kind === 'box' ? '#8a97ab' : '#5b6b82', 'stroke-width': 1 }, g);
    const label = el('text', { x: (s.x ?? 0) + (s.children ? 8 : (s.width ?? 0) / 2), y: (s.y ?? 0) + (s.children ? 16 : (s.height ?? 0) / 2 + 4), 'text-anchor': s.children ? 'start' : 'middle', 'font-weight': s.children ? 'bold' : 'normal' }, g);
    label.textContent = s.labels?.[0]?.text ?? s.id;
    for (const c of s.children ?? []) drawShape(c);
  };
  for (const s of laid.children ?? []) drawShape(s);
  // Links above the nodes, each with its label.
  const paths = new Map<string, { path: SVGPathElement; label: SVGTextElement; link: VLink }>();
  for (const e of laid.edges ?? []) {
    const link = t.links.find((l) => l.id === e.id)!;
    const sec = e.sections?.[0];
    if (!sec) continue;
    const pts = [sec.startPoint, ...(sec.bendPoints ?? []), sec.endPoint];
    const d = pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x},${p.y}`).join(' ');
    const path = el('path', { d, fill: 'none', stroke: colour(0), 'stroke-width': 3, 'stroke-dasharray': link.kind === 'pcie' ? '7 3' : '', 'data-link': link.id, class: 'link' }, svg);
    el('title', {}, path).textContent = link.label;
    // The label sits on the longest segment: above it if horizontal, beside it if vertical.
    let k = 0;
    for (let i = 1; i + 1 < pts.length; i++) if (Math.hypot(pts[i + 1].x - pts[i].x, pts[i + 1].y - pts[i].y) > Math.hypot(pts[k + 1].x - pts[k].x, pts[k + 1].y - pts[k].y)) k = i;
    const [p0, p1] = [pts[k], pts[k + 1]];
    const vertical = Math.abs(p1.x - p0.x) < Math.abs(p1.y - p0.y);
    const label = el('text', { x: (p0.x + p1.x) / 2 + (vertical ? 6 : 0), y: (p0.y + p1.y) / 2 + (vertical ? 4 : -6), 'text-anchor': vertical ? 'start' : 'middle', fill: '#334', 'font-size': 10, 'data-link-label': link.id }, svg);
    paths.set(link.id, { path, label, link });
  }
  // A table of every link direction: the numbers the picture shows, one row each.
  const table = document.createElement('table');
  table.id = 'links';
  table.innerHTML = '<thead><tr><th align="left">link</th><th align="left">direction</th><th align="right">busy</th><th align="right">bytes</th></tr></thead>';
  const body = document.createElement('tbody');
  table.appendChild(body);
  const cells = new Map<string, { busy: HTMLTableCellElement; bytes: HTMLTableCellElement }>();
  const nameOf = new Map(t.nodes.map((n) => [n.id, n.label]));
  for (const l of t.links) {
    for (const d of l.directions) {
      const tr = document.createElement('tr');
      tr.dataset.source = d.source;
      const cell = (text: string, right = false) => {
        const td = document.createElement('td');
        td.textContent = text;
        if (right) td.align = 'right';
        tr.appendChild(td);
        return td;
      };
      cell(l.label);
      cell(`${nameOf.get(d.from) ?? d.from} -> ${nameOf.get(d.to) ?? d.to}`);
      cells.set(d.source, { busy: cell('0%', true), bytes: cell('0 B', true) });
      body.appendChild(tr);
    }
  }
  app.appendChild(table);
  const legend = document.createElement('p');
  legend.className = 'legend';
  legend.textContent = 'Each link is coloured by its busier direction (grey: under 1% busy; blue, green, yellow to red: busier); dashed: PCIe, solid: Ethernet. Labels: bytes carried each way.';
  app.appendChild(legend);
  return {
    update(util, bytes) {
      for (const { path, label, link } of paths.values()) {
        const u = Math.max(...link.directions.map((d) => util[d.source] ?? 0));
        path.setAttribute('stroke', colour(u));
        path.setAttribute('stroke-width', String(3 + 7 * Math.min(1, u)));
        path.dataset.util = u.toFixed(4);
        const [x, y] = link.directions.map((d) => bytes?.[d.source] ?? 0);
        path.dataset.bytes = String(x + y);
        label.textContent = bytes ? `${Math.round(u * 100)}% · ${fmtBytes(x)} / ${fmtBytes(y)}` : `${Math.round(u * 100)}%`;
      }
      for (const [source, c] of cells) {
        c.busy.textContent = `${((util[source] ?? 0) * 100).toFixed(1)}%`;
        if (bytes) {
          c.bytes.textContent = fmtBytes(bytes[source] ?? 0);
          c.bytes.dataset.bytes = String(bytes[source] ?? 0);
        } else c.bytes.textContent = '-';
      }
    },
  };
}

/** Reads a Server-Sent Events stream with fetch (EventSource cannot send the token), calling `on` with each event's data. */
async function readEvents(url: string, on: (event: string, data: string) => void): Promise<void> {
  const res = await fetch(url, { headers: auth });
  if (!res.ok || !res.body) throw new Error(`${url}: HTTP ${res.status}`);
  const reader = res.body.getReader();
  const text = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += text.decode(value, { stream: true });
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      on(event, data.join('\n'));
    }
  }
}

let live = false;

async function startLive(): Promise<void> {
  const res = await fetch('/view/topology', { headers: auth });
  if (!res.ok) throw new Error(`GET /view/topology: HTTP ${res.status}${res.status === 401 ? ' (open the URL dconnect view prints: it carries the token)' : ''}`);
  const { topology } = (await res.json()) as { topology: VTopology };
  const pic = await draw(topology);
  live = true;
  let last: VState | null = null;
  let updates = 0;
  await readEvents('/view/events', (event, data) => {
    if (event !== 'state' || !live) return;
    const s = JSON.parse(data) as VState;
    const util: Record<string, number> = {};
    const bytes: Record<string, number> = {};
    for (const [source, c] of Object.entries(s.links)) {
      bytes[source] = c.wireBytes;
      // Busy time over the simulated time of the node that counts it (each live node keeps its own clock).
      const was = last?.links[source];
      const dt = was ? (c.simulatedSeconds - was.simulatedSeconds) * 1e12 : 0;
      util[source] = was && dt > 0 ? (c.busyPs - was.busyPs) / dt : 0;
    }
    last = s;
    pic.update(util, bytes);
    updates++;
    const away = Object.entries(s.nodes).filter(([, v]) => v === 'unreachable').map(([k]) => k);
    $('status').textContent = `live: ${topology.name}, simulated ${s.simulatedSeconds.toFixed(3)} s, update ${updates}${away.length ? `; no counters from ${away.join(', ')}` : ''}`;
    $('status').dataset.updates = String(updates);
    const active = s.jobs.filter((j) => j.state === 'running' || j.state === 'verifying' || j.state === 'queued');
    const shown = active.length > 0 ? active : s.jobs.slice(-1);
    $('jobs').textContent = shown.map((j) => `job ${j.id} ${j.src} -> ${j.dst} (${j.via}): ${j.state}, ${fmtBytes(j.bytesDone)} of ${fmtBytes(j.lengthBytes)} (${Math.floor((100 * j.bytesDone) / Math.max(1, j.lengthBytes))}%)`).join('; ');
  });
}

interface TraceEv {
  name: string;
  ph: string;
  ts?: number;
  pid: number;
  cat?: string;
  id?: string;
  args?: Record<string, unknown>;
}
interface TraceRunMeta {
  label: string;
  pidBase: number;
  links: { track: string; source: string }[];
  topology?: VTopology;
}

/** Replays one run of a trace-event file: the slider picks a window, the picture shows it. */
async function replay(file: { traceEvents: TraceEv[]; otherData?: { runs?: TraceRunMeta[] } }): Promise<void> {
  live = false;
  const runs = (file.otherData?.runs ?? []).filter((r) => r.topology);
  if (runs.length === 0) throw new Error('this file has no picture to replay on: write it with dconnect copy --trace-events (this version or later)');
  const pick = document.createElement('select');
  pick.id = 'run';
  runs.forEach((r, i) => pick.add(new Option(r.label || `run ${i + 1}`, String(i))));
  $('replay').appendChild(pick);
  const show = async (run: TraceRunMeta) => {
    const pic = await draw(run.topology!);
    const source = new Map(run.links.map((l) => [l.track, l.source]));
    const series = new Map<string, [number, number][]>();
    const times = new Set<number>();
    const writes: [number, number][] = [];
    const starts = new Map<string, number>();
    let total = 0;
    for (const e of file.traceEvents) {
      if (e.pid < run.pidBase || e.pid >= run.pidBase + 1000) continue;
      if (e.ph === 'C' && e.pid === run.pidBase + 1 && source.has(e.name)) {
        const s = source.get(e.name)!;
        if (!series.has(s)) series.set(s, []);
        series.get(s)!.push([e.ts!, e.args!.utilisation as number]);
        times.add(e.ts!);
      } else if (e.cat === 'nvme' && e.name.startsWith('write')) {
        if (e.ph === 'b') {
          starts.set(e.id!, e.args!.bytes as number);
          total += e.args!.bytes as number;
        } else if (e.ph === 'e') writes.push([e.ts!, starts.get(e.id!) ?? 0]);
      }
    }
    const ts = [...times].sort((a, b) => a - b);
    const slider = $('slider') as HTMLInputElement;
    slider.disabled = false;
    slider.max = String(Math.max(0, ts.length - 1));
    slider.value = '0';
    // A counter track is a step function; the picture shows its average over the last `span` µs
    // (a hundredth of the run), from its running integral, so short idle gaps between chunks do not flicker.
    const span = Math.max(1e-3, ((ts[ts.length - 1] ?? 0) - (ts[0] ?? 0)) / 100);
    const integrals = new Map<string, number[]>();
    for (const [s, list] of series) {
      const cum = [0];
      for (let i = 0; i + 1 < list.length; i++) cum.push(cum[i] + list[i][1] * (list[i + 1][0] - list[i][0]));
      integrals.set(s, cum);
    }
    const integral = (list: [number, number][], cum: number[], t: number) => {
      let lo = 0;
      let hi = list.length - 1;
      let i = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (list[mid][0] <= t) {
          i = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      return i < 0 ? 0 : cum[i] + list[i][1] * (t - list[i][0]);
    };
    const render = () => {
      const t = ts[Number(slider.value)] ?? 0;
      const from = Math.max(ts[0] ?? 0, t - span);
      const util: Record<string, number> = {};
      for (const [s, list] of series) util[s] = t > from ? (integral(list, integrals.get(s)!, t) - integral(list, integrals.get(s)!, from)) / (t - from) : 0;
      pic.update(util, null);
      const written = writes.reduce((n, [w, b]) => (w <= t ? n + b : n), 0);
      $('time').textContent = `t = ${(t / 1000).toFixed(3)} ms of ${((ts[ts.length - 1] ?? 0) / 1000).toFixed(3)} ms (busy: average over the last ${(span / 1000).toFixed(3)} ms)`;
      $('time').dataset.window = slider.value;
      $('status').textContent = `replay: ${run.label || 'run'} (simulated time)`;
      $('jobs').textContent = total > 0 ? `written ${fmtBytes(written)} of ${fmtBytes(total)} (${Math.floor((100 * written) / total)}%)` : '';
    };
    slider.oninput = render;
    render();
  };
  pick.onchange = () => void show(runs[Number(pick.value)]);
  await show(runs[0]);
}

function fail(e: unknown): void {
  $('status').textContent = `error: ${e instanceof Error ? e.message : String(e)}`;
  $('status').style.color = '#b00';
}

($('tracefile') as HTMLInputElement).onchange = async (ev) => {
  const f = (ev.target as HTMLInputElement).files?.[0];
  if (!f) return;
  try {
    document.getElementById('run')?.remove();
    await replay(JSON.parse(await f.text()));
  } catch (e) {
    fail(e);
  }
};

const embedded = (window as Window).DCONNECT_TRACE;
if (embedded) replay(embedded as Parameters<typeof replay>[0]).catch(fail);
else if (location.protocol === 'file:') $('status').textContent = 'choose a trace file to replay';
else startLive().catch(fail);
