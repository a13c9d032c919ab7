import { Option, type Command } from 'commander';
import type { CliCommand } from './command.js';
import type { FidelityMode } from '../runtime/copy.js';
import type { Granularity } from '../runtime/moves.js';
import { faultHelp } from '../runtime/faults.js';
import { DEFAULT_PRESET, loadTopology } from '../topology/load.js';
import { applySettings, overridesOf, type Override } from '../topology/params.js';
import type { Topology } from '../topology/schema.js';
import { FIDELITY_MODES } from './args.js';

/**
 * The options several commands take, each built here once (a fresh `Option` per command: commander
 * keeps an option's state on it), with the part of the commands' option types they give.
 */

/** A repeatable option's values, in the order given. */
export const repeatable = (v: string, prev: string[] = []): string[] => [...prev, v];

export interface TopologyOptions {
  topology: string;
  set?: string[];
}
export interface SeedOptions {
  seed: string;
}
export interface StateOptions {
  state: string;
}
export interface JsonOptions {
  json?: boolean;
}
/** How a simulated run is carried out: --fidelity and --granularity. */
export interface RunModeOptions {
  fidelity: FidelityMode;
  granularity: Granularity;
}

export const topologyOption = () => new Option('--topology <preset|file>', 'topology preset name or YAML file').default(DEFAULT_PRESET);
export const setOption = () =>
  new Option('--set <path=value>', 'change one topology parameter, repeatable, after --topology is loaded; paths as sweep --param: host.lanes=1  ssd.capacityBytes=64MiB  boxes.0.slots.1.serial=X  (a list or object in YAML flow syntax replaces it whole)').argParser(repeatable);
export const stateOption = () => new Option('--state <dir>', 'the live fabric\'s state directory: node records, logs, drive files, jobs').default('.dconnect');
export const shardOption = () =>
  new Option(
    '--shard <I/N>',
    'run only the I-th of N shares of the jobs (I counts from 1: 1/3, 2/3, 3/3; job k, from 0, is in share (k mod N) + 1) and write NAME.shard-I-of-N.json into --out instead of the figures; then `dconnect merge` them',
  );
export const seedOption = () => new Option('--seed <n>', 'root seed of every random stream').default('1');
export const granularityOption = () =>
  new Option('--granularity <g>', 'tlp: every TLP its own events, the reference; burst: the TLPs of one flow sent back to back travel as one burst (far fewer events; simulated time within a stated bound; implies --fidelity full; moves through a NIC run per TLP)').choices(['tlp', 'burst']).default('tlp');
export const fidelityOption = () =>
  new Option('--fidelity <mode>', 'fast: same answers from far fewer events (exact where the state repeats, else with a stated 99.7% interval); full: every TLP simulated, the reference')
    .choices(FIDELITY_MODES)
    .default('fast');
export const jsonOption = (also = '') => new Option('--json', `one JSON object on stdout${also}`);
/** --fault, simulated (`copy`) or live (`up`, `node`): the help lists every fault form. */
export const faultOption = (live: boolean) => new Option('--fault <spec>', faultHelp(live)).argParser(repeatable);
export const imageOption = (description: string) => new Option('--image <dev=file>', description).argParser(repeatable);

/** --topology, then every --set (then `extra`, e.g. --host-lanes), validated together. */
export function topologyOf(o: TopologyOptions, extra: { spec: string; shown: string }[] = []): { topology: Topology; overrides: Override[] } {
  const { topology, settings } = applySettings(loadTopology(o.topology), [...(o.set ?? []), ...extra]);
  return { topology, overrides: overridesOf(settings) };
}

/** Burst granularity implies the full fidelity unless --fidelity was given (then the run refuses fast with burst). A value, not a flag: commander's implies() cannot say it. */
export function fidelityOf(o: RunModeOptions, fidelityGiven: boolean): FidelityMode {
  return o.granularity === 'burst' && !fidelityGiven ? 'full' : o.fidelity;
}

/** The options of a live fabric's settings, which `up` and `node` both take (cli/live.ts reads them as LiveFabricOptions). */
export function addLiveFabricOptions<C extends CliCommand>(c: C): C {
  return c
    .addOption(new Option('--pace <mode>', 'none: as fast as this machine goes; model: links and flash at their modelled rates, dilated (dilation and lag reported)').choices(['model', 'none']).default('none'))
    .option('--time-dilation <n|auto>', 'wall seconds per simulated second with --pace model (default auto: measured here)')
    .option('--hard-limit <ms>', 'stop a node with an error when an event runs this late (default: best effort, lag reported)')
    .addOption(seedOption())
    .addOption(faultOption(true))
    .option('--control-tcp <host:port>', 'serve the control API on loopback TCP too (the Unix socket is always there)')
    .option('--peer-timeout <ms>', 'the host gives up on a box it waits on after this long without hearing from it (boxes send keepalives; slow progress is not silence); the job fails, resumable; default 5000')
    .option('--nbd <host:port>', 'serve the block devices over NBD on TCP too, e.g. 127.0.0.1:10809, with TLS-PSK required (keys: nbd.psk in the state directory); the Unix socket nbd.sock is always there')
    .option('--nbd-insecure', 'with --nbd: plain TCP, no TLS (anyone who can reach the port reads and writes every drive)')
    .option('--preallocate', "reserve each drive file's whole capacity on disk at its creation (fallocate), so a declared capacity is real and a full disk cannot fail a write later")
    .addOption(new Option('--granularity <g>', 'burst: the TLPs of one flow move as one burst (far fewer events; the default with --pace none unless --fault names a box\'s own cables); tlp: every TLP its own events (the default with --pace model)').choices(['tlp', 'burst']))
    .option('--burst-bytes <size>', 'largest burst with --granularity burst (4KiB..1MiB; default 64KiB)')
    .requires('nbdInsecure', 'nbd', 'e.g. dconnect up --nbd 127.0.0.1:10809 (TLS-PSK), or add --nbd-insecure to it for plain TCP');
}

/** What `repro` and `sweep` both take: how their jobs run (threads, fidelity, granularity, a shard) and on what topology. */
export interface JobRunOptions extends TopologyOptions, RunModeOptions {
  threads?: string;
  shard?: string;
}

export function addJobRunOptions<C extends Command>(c: C): C {
  return c
    .option('--threads <n>', 'worker threads (default: one per core)')
    .addOption(fidelityOption())
    .addOption(topologyOption())
    .addOption(setOption())
    .addOption(shardOption())
    .addOption(granularityOption());
}
