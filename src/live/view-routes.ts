/**
 * The web view's routes on the host's control API (issue "See a move happen"; `dconnect view`):
 * - GET /view: one HTML page, the layout library (elkjs's bundle) and the page's script
 *   (live/web/view-app.ts, compiled by tsc) inlined, so it loads nothing from anywhere. It holds no
 *   data, so on TCP it is served without the token (`public`); it asks for the rest with the token
 *   the URL's fragment carries (`#token=...`, never sent to a server).
 * - GET /view/topology: the fabric as a picture's data (runtime/view-topology.ts).
 * - GET /view/events: Server-Sent Events, one `state` event every VIEW_PERIOD_MS: each drawn link
 *   direction's busy time and wire bytes, simulated time, the jobs' progress. The same counters as
 *   GET /counters' `fabric` (fabric-counters.ts). At most MAX_VIEW_STREAMS streams at once; a client
 *   that does not keep up misses states (nothing queues beyond the socket's buffer).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { DconnectError } from '../core/errors.js';
import type { CounterSet } from '../core/trace.js';
import type { ViewTopology } from '../runtime/view-topology.js';
import { EventStream, RawResponse, type Route } from './control-http.js';
import type { FabricCounters } from './fabric-counters.js';

/** How often a stream sends the fabric's state: a few times a second. */
export const VIEW_PERIOD_MS = 250;
/** Streams served at once (each asks every box for its counters every period). */
export const MAX_VIEW_STREAMS = 8;

export interface ViewJob {
  id: string;
  state: string;
  src: string;
  dst: string;
  via: string;
  lengthBytes: number;
  bytesDone: number;
}

/** One link direction in a `state` event: busy time (ps) and bytes on the wire, cumulative, and the simulated time of the node that counts them (s). */
export interface ViewCounter {
  busyPs: number;
  wireBytes: number;
  simulatedSeconds: number;
}

export interface ViewState {
  simulatedSeconds: number;
  /** Counters by trace source, for the sources the picture draws. */
  links: Record<string, ViewCounter>;
  jobs: ViewJob[];
  nodes: FabricCounters['nodes'];
}

/** The counters the view shows of one source: a PCIe direction's wireBytes, an Ethernet port's txWireBytes. */
export function viewCounter(c: CounterSet | undefined, simulatedSeconds: number): ViewCounter {
  return { busyPs: c?.busyPs ?? 0, wireBytes: c?.wireBytes ?? c?.txWireBytes ?? 0, simulatedSeconds };
}

/** `ownerOf`: the node that counts a source (fabric-counters.ts ownerOfSource). */
export function viewState(topology: ViewTopology, f: FabricCounters, jobs: ViewJob[], ownerOf: (source: string) => string): ViewState {
  const links: Record<string, ViewCounter> = {};
  for (const l of topology.links) for (const d of l.directions) links[d.source] = viewCounter(f.trace[d.source], f.nodeSeconds[ownerOf(d.source)] ?? f.simulatedSeconds);
  return { simulatedSeconds: f.simulatedSeconds, links, jobs, nodes: f.nodes };
}

/** The page's shell: the script draws everything into #app. */
const SHELL = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dconnect view</title>
<link rel="icon" href="data:,">
<style>
body { font: 14px 'DejaVu Sans', system-ui, sans-serif; margin: 0; color: #222; }
header { padding: 8px 14px; border-bottom: 1px solid #ddd; display: flex; gap: 18px; align-items: center; flex-wrap: wrap; }
header h1 { font-size: 16px; margin: 0; }
#status { color: #555; }
#jobs { font-variant-numeric: tabular-nums; }
#app { padding: 8px; }
svg text { font: 11px 'DejaVu Sans', system-ui, sans-serif; }
.legend { font-size: 12px; color: #555; }
#replay { display: flex; gap: 10px; align-items: center; }
#slider { width: 420px; }
</style>
</head>
<body>
<header>
<h1>dconnect view</h1>
<span id="status">starting</span>
<span id="jobs"></span>
<span id="replay"><label>replay a trace: <input type="file" id="tracefile" accept=".json,application/json"></label>
<input type="range" id="slider" min="0" max="0" value="0" disabled><span id="time"></span></span>
</header>
<div id="app"></div>
<!--TRACE-->
<!--ELK-->
<!--APP-->
</body>
</html>
`;

let page: string | null = null;

/** The page, built once: the shell with the layout library and the script inlined. */
export function viewPage(): string {
  if (page !== null) return page;
  const require = createRequire(import.meta.url);
  const elk = readFileSync(require.resolve('elkjs/lib/elk.bundled.js'), 'utf8');
  const app = readFileSync(fileURLToPath(new URL('./web/view-app.js', import.meta.url)), 'utf8');
  // A script's text may not contain "</script": it would end the element early.
  const inline = (js: string) => js.replace(/<\/script/gi, '<\\/script');
  page = SHELL.replace('<!--ELK-->', () => `<script>${inline(elk)}</script>`).replace('<!--APP-->', () => `<script type="module">${inline(app)}</script>`);
  return page;
}

export function viewRoutes(o: { topology: () => Promise<ViewTopology>; counters: () => Promise<FabricCounters>; jobs: () => ViewJob[]; ownerOf: (source: string) => string }): Route[] {
  let streams = 0;
  return [
    { method: 'GET', pattern: '/view', public: true, handler: () => new RawResponse('text/html; charset=utf-8', viewPage()) },
    { method: 'GET', pattern: '/view/topology', handler: async () => ({ topology: await o.topology() }) },
    {
      method: 'GET',
      pattern: '/view/events',
      handler: async () => {
        if (streams >= MAX_VIEW_STREAMS) throw new DconnectError('CONFLICT', `the web view serves ${MAX_VIEW_STREAMS} streams at once, and that many are open`, 'close a view tab');
        const topology = await o.topology();
        return new EventStream((send, onClose) => {
          streams++;
          let busy = false;
          const tick = () => {
            if (busy) return; // the last state is still being gathered: skip this period
            busy = true;
            o.counters().then(
              (f) => {
                busy = false;
                send('state', viewState(topology, f, o.jobs(), o.ownerOf));
              },
              () => (busy = false),
            );
          };
          tick();
          const timer = setInterval(tick, VIEW_PERIOD_MS);
          onClose(() => {
            clearInterval(timer);
            streams--;
          });
        });
      },
    },
  ];
}
