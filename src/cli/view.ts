import { readFileSync, writeFileSync } from 'node:fs';
import { DconnectError } from '../core/errors.js';
import { hostClient } from '../live/control-client.js';
import { StateDir } from '../live/state-dir.js';
import { readSettings } from '../live/supervisor.js';
import { viewPage } from '../live/view-routes.js';
import { checkOutputFile } from './output-paths.js';
import { stateArg } from './live-format.js';

/**
 * `dconnect view`: the web view of a live fabric. The page is served by the host's control API on its
 * loopback TCP address (`up --control-tcp`), under the API's rules (loopback only, the Host header,
 * the bearer token); this prints its address, the token in the URL's fragment (which a browser never
 * sends to a server). `--replay FILE --out PAGE.html` instead writes a page with a recorded trace in
 * it, to open from disk with no fabric at all.
 */
export async function viewAction(o: { state: string; json?: boolean; replay?: string; out?: string }): Promise<void> {
  if (o.replay !== undefined || o.out !== undefined) return replayPage(o);
  const state = new StateDir(o.state);
  const s = readSettings(state);
  if (!s) throw new DconnectError('NOT_RUNNING', `no fabric in ${state.root}`, 'start one with: dconnect up --control-tcp 127.0.0.1:7070 (or pass the --state DIR it was started with); or replay a simulated run: dconnect view --replay trace.json --out view.html');
  const tcp = state.readNodeRecord('host')?.control?.tcp;
  if (!tcp) {
    throw new DconnectError('BAD_OPTION', `the fabric in ${state.root} serves its control API on the Unix socket only, and a browser cannot reach that`, `restart it with a loopback TCP address for the view: dconnect down${stateArg(o.state)}; dconnect up --control-tcp 127.0.0.1:7070${stateArg(o.state)}`);
  }
  // The fabric must answer (a stale record would print a dead address).
  await hostClient({ socketPath: state.controlSocketPath }).status();
  const host = tcp.host.includes(':') ? `[${tcp.host}]` : tcp.host;
  const url = `http://${host}:${tcp.port}/view#token=${state.controlToken()}`;
  if (o.json) process.stdout.write(JSON.stringify({ url }) + '\n');
  else process.stdout.write(`open in a browser on this machine (the URL carries the control token: keep it to yourself):\n  ${url}\n`);
}

/** Refuses a file that is not a trace dconnect wrote with its picture; returns its text. */
function readTrace(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DconnectError('BAD_OPTION', `--replay '${file}': ${(e as Error).message}`, 'give the file copy --trace-events wrote');
  }
  let parsed: { traceEvents?: unknown; otherData?: { runs?: { topology?: unknown }[] } };
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new DconnectError('BAD_OPTION', `--replay '${file}' is not JSON`, 'give the file copy --trace-events wrote');
  }
  if (!Array.isArray(parsed.traceEvents) || !(parsed.otherData?.runs ?? []).some((r) => r.topology)) {
    throw new DconnectError('BAD_OPTION', `--replay '${file}' is not a trace of a simulated dconnect run with its fabric's picture`, 'write one with: dconnect copy sda sdb --length 64MiB --trace-events trace.json');
  }
  return text;
}

function replayPage(o: { replay?: string; out?: string }): void {
  if (o.replay === undefined || o.out === undefined) throw new Error('viewCommand declares that --replay and --out go together');
  if (!/\.html?$/i.test(o.out)) throw new DconnectError('BAD_OPTION', `--out '${o.out}': the page is HTML`, 'name it e.g. view.html');
  checkOutputFile(o.out, '--out');
  const trace = readTrace(o.replay);
  // The trace goes in as a script's data: "</" is escaped so no string in it can end the element.
  const data = `<script>window.DCONNECT_TRACE = ${trace.trim().replace(/<\//g, '<\\/')};</script>`;
  writeFileSync(o.out, viewPage().replace('<!--TRACE-->', () => data));
  process.stderr.write(`wrote ${o.out}: open it in a browser (it loads nothing from anywhere) and move the slider\n`);
}
