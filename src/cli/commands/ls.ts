import { CliCommand } from '../command.js';
import { lsAction } from '../file-copy.js';
import { imageOption, jsonOption, seedOption, setOption, topologyOf, topologyOption, type JsonOptions, type SeedOptions, type TopologyOptions } from '../options.js';

export interface LsOptions extends TopologyOptions, SeedOptions, JsonOptions {
  image?: string[];
}

export function lsCommand(): CliCommand {
  return new CliCommand('ls')
    .description("list a directory of a drive's ext4 file system (name, type, size, extents), read through the host's file system code over the fabric")
    .argument('<dev:/path>', 'a drive and a path: sda:/ or sda:/data')
    .addOption(imageOption('load a raw image into a drive first (repeatable)'))
    .addOption(topologyOption())
    .addOption(setOption())
    .addOption(seedOption())
    .addOption(jsonOption())
    .action((target: string, o: LsOptions) => lsAction(topologyOf(o).topology, target, o));
}
