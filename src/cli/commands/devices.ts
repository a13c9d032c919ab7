import { listDevices } from '../../runtime/devices.js';
import { kindOf } from '../../topology/device-registry.js';
import { parseSeed } from '../args.js';
import { CliCommand } from '../command.js';
import { table } from '../format.js';
import type { Io } from '../io.js';
import { jsonOption, seedOption, setOption, stateOption, topologyOf, topologyOption, type JsonOptions, type SeedOptions, type StateOptions, type TopologyOptions } from '../options.js';

export interface DevicesOptions extends TopologyOptions, SeedOptions, StateOptions, JsonOptions {
  host?: string;
  live?: boolean;
}

/** What `devices --live` refuses: the running fabric's devices are the fabric's own. */
const fixedAtUp = (flag: string) => `the live fabric's devices are those of the topology it was started with (dconnect up): drop ${flag}`;

export function devicesCommand(io: Io): CliCommand {
  return new CliCommand('devices')
    .description('list the devices the host finds on the fabric')
    .addOption(topologyOption())
    .addOption(setOption())
    .addOption(seedOption())
    .option('--host <name>', "which host's view, in a topology of several (extraHosts): each enumerates only its ExpEther group's devices (default: the first, 'host')")
    .option('--live', 'ask the running live fabric (dconnect up) instead of simulating one')
    .addOption(stateOption())
    .addOption(jsonOption())
    .refuses('live', { topology: fixedAtUp('--topology'), set: fixedAtUp('--set'), seed: fixedAtUp('--seed'), host: 'a live fabric has one host: drop --host' })
    .action(async (o: DevicesOptions) => {
      if (o.live) {
        const { liveDevicesAction } = await import('../live.js');
        return liveDevicesAction(o);
      }
      const devices = listDevices(topologyOf(o).topology, parseSeed(o.seed), o.host);
      if (o.json) {
        io.out.write(JSON.stringify({ devices }) + '\n');
        return;
      }
      const rows = devices.map((d) => {
        const c = kindOf(d.kind).columns(d);
        return [d.name, d.kind, `${d.box}/slot${d.slot}`, d.bdf, c.capacity, `0x${d.bar0.toString(16)}`, c.id];
      });
      io.out.write(table(['NAME', 'KIND', 'BOX/SLOT', 'BDF', 'CAPACITY', 'BAR0', 'SERIAL'], rows) + '\n');
    });
}
