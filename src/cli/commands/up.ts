import type { Command } from 'commander';
import { CliCommand } from '../command.js';
import type { LiveFabricOptions } from '../live.js';
import { addLiveFabricOptions, imageOption, jsonOption, setOption, stateOption, topologyOf, topologyOption, type JsonOptions, type TopologyOptions } from '../options.js';

export interface UpOptions extends LiveFabricOptions, TopologyOptions, JsonOptions {
  image?: string[];
}

export function upCommand(): CliCommand {
  return addLiveFabricOptions(
    new CliCommand('up')
      .description('start a live fabric on this machine: the host and one process per box on loopback, SSDs in sparse files in the state directory; restarts nodes that stopped')
      .addOption(topologyOption())
      .addOption(setOption())
      .addOption(stateOption()),
  )
    .addOption(imageOption("seed a drive's file from a raw image at the fabric's first start (mkfs.ext4 -d TREE img 64M); refused if it does not fit or the drive already holds data; repeatable"))
    .addOption(jsonOption())
    .action(async (o: UpOptions, cmd: Command) => {
      const { upAction } = await import('../live.js');
      const given = cmd.getOptionValueSource('topology') === 'cli' || (o.set?.length ?? 0) > 0;
      // A state directory keeps its fabric's topology; --topology/--set must agree with it when given.
      await upAction(topologyOf(o).topology, given, o);
    });
}
