import type { Command } from 'commander';
import { CliCommand } from '../command.js';
import type { Io } from '../io.js';
import { addJobRunOptions, fidelityOf, jsonOption, topologyOf, type JobRunOptions, type JsonOptions } from '../options.js';

export interface ReproOptions extends JobRunOptions, JsonOptions {
  runs: string;
  size: string;
  only?: string;
  maxFileSize?: string;
  out: string;
  traceEvents?: string;
  traceWindow?: string;
}

export function reproCommand(io: Io): CliCommand {
  return addJobRunOptions(
    new CliCommand('repro')
      .description("regenerate the paper's Fig. 5 and Fig. 6 from the model, beside the paper's values; --only fig7 adds concurrent pairs, --only fig8 moves through a NIC, --only relays puts the relay in three places, --only files copies trees of files (all beyond the paper)")
      .option('--runs <n>', 'runs per Fig. 5 bar (they differ by seed)', '10')
      .option('--size <size>', 'bytes moved per run (the paper: 1 GB)', '1GiB')
      .option('--only <figures>', "the figures to run, comma-separated: fig5, fig6 (the paper's, the default), fig7 (concurrent pairs), fig8 (moves through a NIC, on paper-2012-nic), relays (Fig. 5's move with the relay in the DC buffer, the destination's CMB or host memory), files (trees of files 4 KiB and up, direct against conventional; all beyond the paper)")
      .option('--max-file-size <size>', 'the largest file of --only files: 4KiB..1GiB (default 64MiB; 1GiB takes minutes)')
      .option('--out <dir>', 'where to write each figure run (fig5 to fig8, relays, files) as .json/.svg/.png, and report.md', 'results'),
  )
    .option('--trace-events <file>', "also write a Chrome/Perfetto trace-event JSON of the first move of each figure and mode, run again at --fidelity full (open at ui.perfetto.dev)")
    .option('--trace-window <time>', 'the first sampling window of --trace-events, e.g. 10us (default: sized to each move)')
    .addOption(jsonOption(' (files are still written)'))
    .refuses('shard', { traceEvents: '--trace-events traces a whole run, not a shard: drop --shard, or trace with a run of its own: dconnect repro --only fig5 --trace-events trace.json' })
    .action(async (o: ReproOptions, cmd: Command) => {
      const loaded = topologyOf(o);
      const { reproAction } = await import('../experiments.js');
      await reproAction(io, { ...o, fidelity: fidelityOf(o, cmd.getOptionValueSource('fidelity') === 'cli') }, loaded);
    });
}
