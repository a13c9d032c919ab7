import { CliCommand } from '../command.js';
import type { Io } from '../io.js';
import { jsonOption, type JsonOptions } from '../options.js';

export interface MergeOptions extends JsonOptions {
  out: string;
}

export function mergeCommand(io: Io): CliCommand {
  return new CliCommand('merge')
    .description('combine the shard result files of a repro or sweep run with --shard I/N into the tables, charts and report one run writes')
    .argument('<files...>', 'every shard result file of one run: NAME.shard-I-of-N.json for I = 1..N')
    .option('--out <dir>', 'where to write what the run would have written (fig5/fig6 and report.md, or sweep)', 'results')
    .addOption(jsonOption(' (files are still written)'))
    .action(async (files: string[], o: MergeOptions) => {
      const { mergeAction } = await import('../experiments.js');
      await mergeAction(io, files, o);
    });
}
