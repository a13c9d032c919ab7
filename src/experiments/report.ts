import { chunksText, fidelityLine, fidelityTag, granularityLine, summarizeFidelity, tagOf, type FidelitySummary } from './fidelity.js';
import { overridesOn } from '../topology/params.js';
import type { ReproResult } from './repro.js';
import { fmtSize } from './repro.js';
import { endsText, FIG8_MAX_BYTES, limitName } from './fig8.js';
import { crossoverText, FILES_AHEAD, FILES_DEFAULT_MAX_BYTES, FILES_MAX_BYTES, FILES_PER_TREE, filesLimitName, sizeText, type FilesResult } from './files.js';
import { relaysParagraph } from './relays.js';

const f1 = (x: number) => x.toFixed(1);
/** The paper's value, or a dash on a testbed that is not the paper's. */
const paperCell = (v: number | null) => (v === null ? '-' : `~${f1(v)}`);
/** Why no bound was checked, on a testbed that is not the paper's; null on the paper's. */
function boundsSkipped(r: ReproResult): string | null {
  if (!r.testbed) return null;
  return `not checked: the paper's values and bounds are for its own testbed, and \`${r.preset}\` differs (${r.testbed.differsFromPaper.join('; ')})`;
}
const detail = (s: FidelitySummary) => `${s.detailedChunks}/${s.totalChunks}`;

/** Plain-text tables for the terminal: the model beside the paper, and what limits each bar. */
export function reproTables(r: ReproResult): string {
  const out: string[] = overridesText(r).map((l) => `${l}\n`);
  if (r.fig5) {
    out.push(`Fig. 5: moving ${fmtSize(r.sizeBytes)} between two SSDs, multiplicity 3, ${r.runs} runs per bar (MB/s = 10^6 B/s); ${fidelityLine(r.fig5.fidelity)}`);
    const rows = r.fig5.bars.map((b) => [`x${b.hostLanes}`, b.mode, f1(b.mbPerSec), b.stdevMbPerSec.toFixed(2), paperCell(b.paperMbPerSec), fidelityTag(b.fidelity), b.limit.explanation]);
    const widths = [10, 13, 8, 6, 8, columnWidth('method', rows, 5)];
    out.push(pad(['host link', 'mode', 'model', 'sd', 'paper', 'method', 'limited by'], widths));
    for (const row of rows) out.push(pad(row, widths));
    const d = r.fig5.bars.find((b) => b.hostLanes === 1 && b.mode === 'direct');
    const c = r.fig5.bars.find((b) => b.hostLanes === 1 && b.mode === 'conventional');
    if (d && c) out.push(`  x1: direct is ${f1(100 * (d.mbPerSec / c.mbPerSec - 1))}% faster than conventional${r.testbed ? '' : ' (paper: 86%)'}`);
    out.push('');
  }
  if (r.fig6) {
    out.push(`Fig. 6: direct move against I/O commands in flight (source + destination), host link x${r.fig6.hostLanes}; ${fidelityLine(r.fig6.fidelity)}`);
    const rows = r.fig6.points.map((p) => [String(p.commands), f1(p.mbPerSec), paperCell(p.paperMbPerSec), tagOf(p.fidelity), p.limit.explanation]);
    const widths = [10, 8, 8, columnWidth('method', rows, 3)];
    out.push(pad(['commands', 'model', 'paper', 'method', 'limited by'], widths));
    for (const row of rows) out.push(pad(row, widths));
    out.push('');
  }
  if (r.fig7) {
    out.push(`Fig. 7 (beyond the paper): aggregate over concurrent pairs, ${fmtSize(r.sizeBytes)} per pair, box of 16 SSDs; ${fidelityLine(r.fig7.fidelity)}`);
    const rows = r.fig7.points.map((p) => [`x${p.hostLanes}`, p.mode, String(p.pairs), f1(p.mbPerSec), f1(p.perPairMbPerSec), `<= ${f1(p.predicted.mbPerSec)} (${p.predicted.resource})`, tagOf(p.fidelity), p.limit.explanation]);
    const widths = [10, 13, 6, 9, 9, columnWidth('ceiling (upper bound)', rows, 5), columnWidth('method', rows, 6)];
    out.push(pad(['host link', 'mode', 'pairs', 'aggregate', 'per pair', 'ceiling (upper bound)', 'method', 'limited by'], widths));
    for (const row of rows) out.push(pad(row, widths));
    out.push('');
  }
  if (r.fig8) {
    const f = r.fig8;
    out.push(`Fig. 8 (beyond the paper): moves through a NIC on ${f.preset}, ${fmtSize(f.sizeBytes)} per bar, seed 1; ${fidelityLine(f.fidelity)}`);
    const rows = f.bars.map((b) => [`x${b.hostLanes}`, b.move, endsText(b), b.mode, f1(b.mbPerSec), b.hostLinkBytesPerByte.toFixed(3), b.verified ? 'yes' : 'NO', limitName(b.limit), b.limit.explanation]);
    const widths = [10, 9, columnWidth('ends', rows, 2), 13, 8, 12, 9, columnWidth('limiting resource', rows, 7)];
    out.push(pad(['host link', 'move', 'ends', 'mode', 'MB/s', 'host B/B', 'verified', 'limiting resource', 'why'], widths));
    for (const row of rows) out.push(pad(row, widths));
    out.push(`  host B/B: payload bytes on the host link (both directions) per byte moved`);
    out.push('');
  }
  if (r.relays) {
    const f = r.relays;
    out.push(`Beside Fig. 5: the relay in the DC buffer, the destination's CMB (${f.cmbSizeBytes / 2 ** 20} MiB${f.cmbAdded ? ', added' : ''}) or host memory, ${fmtSize(r.sizeBytes)}, ${r.runs} runs per bar; ${fidelityLine(f.fidelity)}`);
    const rows = f.bars.map((b) => [`x${b.hostLanes}`, b.place, f1(b.mbPerSec), b.stdevMbPerSec.toFixed(2), b.hostLinkBytesPerByte.toFixed(3), fidelityTag(b.fidelity), b.limit.explanation]);
    const widths = [10, columnWidth('relay in', rows, 1), 8, 6, 9, columnWidth('method', rows, 5)];
    out.push(pad(['host link', 'relay in', 'MB/s', 'sd', 'host B/B', 'method', 'limited by'], widths));
    for (const row of rows) out.push(pad(row, widths));
    out.push('');
  }
  if (r.files) {
    const f = r.files;
    out.push(`Files (beyond the paper): copying trees of files on ${f.preset}, sda:/tree -> sdb:/tree (-r), seed 1; ${fidelityLine(f.fidelity)}`);
    const rows = f.points.map((p) => [sizeText(p.fileBytes), String(p.files), `x${p.hostLanes}`, p.mode, f1(p.mbPerSec), kib(p.hostLinkBytes), kib(p.metadataBytes), pct(p.metadataShare), filesLimitName(p)]);
    const widths = [9, 6, 10, 13, 8, 14, 12, 10];
    out.push(pad(['file', 'files', 'host link', 'mode', 'MB/s', 'host link KiB', 'metadata KiB', 'metadata', 'limited by'], widths));
    for (const row of rows) out.push(pad(row, widths));
    for (const line of crossoverLines(f)) out.push(`  ${line}`);
    out.push('');
  }
  if (!r.fig5 && !r.fig6) return out.join('\n');
  out.push(boundsSkipped(r) === null ? 'Fidelity bounds:' : `Fidelity bounds: ${boundsSkipped(r)}.`);
  for (const b of r.bounds) out.push(`  ${b.ok ? 'ok  ' : 'FAIL'} ${b.name}: ${b.value.toFixed(3)} (want ${b.range[0]}..${b.range[1]})`);
  return out.join('\n');
}

/** Cells past the last width (the explanation) are left as they are. */
function pad(cells: string[], widths: number[]): string {
  return '  ' + cells.map((c, i) => (i < widths.length ? c.padEnd(widths[i]) : c)).join(' ');
}

/** Wide enough for the longest cell, plus one space so the next column does not touch it. */
const columnWidth = (head: string, rows: string[][], i: number) => 1 + Math.max(head.length, ...rows.map((row) => row[i].length));

/** results/report.md: the same tables in Markdown, with the charts and how to read them. */
export function reproMarkdown(r: ReproResult, run: { wallSeconds: number; shards?: number }): string {
  const wall = `${run.wallSeconds.toFixed(1)} s of wall time${run.shards === undefined ? '' : ` (summed over ${run.shards} shard${run.shards === 1 ? '' : 's'}, merged by \`dconnect merge\`)`}`;
  // A run of Fig. 8 alone says Fig. 8's own topology and size.
  const [preset, size] = r.fig8 && !r.fig5 && !r.fig6 && !r.fig7 ? [r.fig8.preset, r.fig8.sizeBytes] : [r.preset, r.sizeBytes];
  // A run of the files figure alone copies trees of many sizes, not one size per move.
  const perMove = r.files && !r.fig5 && !r.fig6 && !r.fig7 && !r.fig8 ? `trees of files from ${sizeText(r.files.sizes[0])} to ${sizeText(r.files.sizes[r.files.sizes.length - 1])}` : `${fmtSize(size)} per move`;
  const md: string[] = [`# dconnect: the paper's evaluation, regenerated`, '', `Preset \`${preset}\`, ${perMove}, regenerated by \`npx dconnect repro\`: ${r.fidelity.moves} moves in ${wall}. MB/s = 10^6 bytes per simulated second. The limiting resource comes from the trace counters (busy time of every link, port, flash and DDR); docs/calibration.md derives each bar.`, '', `${granularityLine(r.granularity)}${r.granularity.mode === 'burst' && r.fig8 ? '; Fig. 8\'s moves through a NIC run per TLP' : ''}.`, ''];
  md.push(...methodSection(r));
  if (r.overrides.length > 0) md.push('## Topology overrides', '', ...overridesText(r), '');
  if (r.fig5) {
    md.push('## Fig. 5: direct against conventional, host link x8 and x1', '', '![Fig. 5](fig5.png)', '', '| host link | mode | model (MB/s) | sd | paper (MB/s) | method | chunks in detail (all runs) | limited by |', '|---|---|---|---|---|---|---|---|');
    for (const b of r.fig5.bars) md.push(`| x${b.hostLanes} | ${b.mode} | ${f1(b.mbPerSec)} | ${b.stdevMbPerSec.toFixed(2)} | ${paperCell(b.paperMbPerSec)} | ${fidelityTag(b.fidelity)} | ${detail(b.fidelity)} | ${b.limit.explanation} |`);
    md.push('');
  }
  if (r.fig6) {
    md.push('## Fig. 6: bandwidth against commands in flight', '', '![Fig. 6](fig6.png)', '', '| commands | model (MB/s) | paper (MB/s) | method | chunks in detail | limited by |', '|---|---|---|---|---|---|');
    for (const p of r.fig6.points) md.push(`| ${p.commands} | ${f1(p.mbPerSec)} | ${paperCell(p.paperMbPerSec)} | ${tagOf(p.fidelity)} | ${detail(summarizeFidelity([p.fidelity]))} | ${p.limit.explanation} |`);
    md.push('');
  }
  if (r.fig7) {
    md.push(
      '## Fig. 7 (beyond the paper): aggregate bandwidth against concurrent pairs',
      '',
      '![Fig. 7](fig7.png)',
      '',
      `The paper's claim (section 3): with many SSDs, pairs move in parallel, and Direct Connect's aggregate grows while the conventional system carries every byte over the host link twice. The box is the preset's, grown to 16 SSDs; ${fmtSize(r.sizeBytes)} per pair. "Ceiling" is the smallest bandwidth ceiling computed by hand from the preset's parameters before the run (docs/calibration.md, "Fig. 7: predicted saturation"): an upper bound, not a prediction. Where the model lands well below it, a window binds, and "limited by" says which.`,
      '',
      '| host link | mode | pairs | aggregate (MB/s) | per pair (MB/s) | ceiling (MB/s, upper bound) | ceiling resource | method | limited by |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const p of r.fig7.points) md.push(`| x${p.hostLanes} | ${p.mode} | ${p.pairs} | ${f1(p.mbPerSec)} | ${f1(p.perPairMbPerSec)} | ${f1(p.predicted.mbPerSec)} | ${p.predicted.resource} | ${tagOf(p.fidelity)} | ${p.limit.explanation} |`);
    md.push('');
  }
  if (r.fig8) {
    const f = r.fig8;
    const other = f.preset === r.preset ? '' : ` (the run's topology, \`${r.preset}\`, has no NIC)`;
    const cut = f.sizeBytes < r.sizeBytes ? ` (the run's size cut to ${fmtSize(FIG8_MAX_BYTES)}: these moves simulate every TLP and frame)` : '';
    md.push(
      '## Fig. 8 (beyond the paper): moves through a NIC, direct against conventional',
      '',
      '![Fig. 8](fig8.png)',
      '',
      `The paper's section 4 names moves between SSDs and NICs as the next step. Serve: a drive's data sent to a client; ingest: a client's backup written to a drive; pipeline: HDFS-style forwarding, data received from one client sent on to another by the same NIC. Direct, the frames' payloads are relayed in the DC buffer and the host only posts descriptors, builds and parses headers and commands the drive; conventional, every payload goes through host memory. Preset \`${f.preset}\`${other}, ${fmtSize(f.sizeBytes)} per bar${cut}, seed 1, ${fidelityLine(f.fidelity)}; each move verified byte for byte at the far end. "Host link B/B" is the payload crossing the host link, both directions together, per byte moved; the limiting resource is from the trace counters (bottleneck.ts), the last column says why with the numbers.`,
      '',
      '| move | ends | mode | host link | MB/s | host link B/B | verified | limiting resource | why |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const b of f.bars) md.push(`| ${b.move} | ${endsText(b)} | ${b.mode} | x${b.hostLanes} | ${f1(b.mbPerSec)} | ${b.hostLinkBytesPerByte.toFixed(3)} | ${b.verified ? 'yes' : '**NO**'} | ${limitName(b.limit)} | ${b.limit.explanation} |`);
    md.push('');
  }
  if (r.relays) {
    const f = r.relays;
    md.push('## Beside Fig. 5: the relay in the DC buffer, the destination\'s CMB or host memory', '', '![Relays](relays.png)', '', relaysParagraph(f), '', '| host link | relay in | MB/s | sd | host link B/B | method | limited by |', '|---|---|---|---|---|---|---|');
    for (const b of f.bars) md.push(`| x${b.hostLanes} | ${b.place} | ${f1(b.mbPerSec)} | ${b.stdevMbPerSec.toFixed(2)} | ${b.hostLinkBytesPerByte.toFixed(3)} | ${fidelityTag(b.fidelity)} | ${b.limit.explanation} |`);
    md.push('');
  }
  if (r.files) md.push(...filesSection(r.files, r));
  if (!r.fig5 && !r.fig6) return md.join('\n');
  if (boundsSkipped(r) !== null) md.push('## Fidelity bounds', '', `${boundsSkipped(r)}.`, '');
  else md.push('## Fidelity bounds', '', '| bound | value | wanted | |', '|---|---|---|---|');
  for (const b of r.bounds) md.push(`| ${b.name} | ${b.value.toFixed(3)} | ${b.range[0]} .. ${b.range[1]} | ${b.ok ? 'ok' : '**FAIL**'} |`);
  md.push('');
  return md.join('\n');
}

const kib = (b: number) => (b / 1024).toFixed(b < 10 * 1024 ? 1 : 0);
const pct = (x: number) => `${(100 * x).toFixed(x < 0.01 ? 2 : 1)}%`;

/** Per host link: the crossover, and direct over conventional at each size. */
function crossoverLines(f: FilesResult): string[] {
  return f.crossover.map((c) => {
    const ratios = f.sizes.map((s) => {
      const at = (mode: string) => f.points.find((p) => p.hostLanes === c.hostLanes && p.mode === mode && p.fileBytes === s)!.mbPerSec;
      return `${sizeText(s)} ${(at('direct') / at('conventional')).toFixed(2)}x`;
    });
    return `${crossoverText(c, f)}; direct/conventional: ${ratios.join(', ')}`;
  });
}

/** The files figure's section of report.md: chart, the paragraph that reads it, the table. */
function filesSection(f: FilesResult, r: ReproResult): string[] {
  const at = (lanes: number, mode: string, s: number) => f.points.find((p) => p.hostLanes === lanes && p.mode === mode && p.fileBytes === s)!;
  const small = f.sizes[0];
  const large = f.sizes[f.sizes.length - 1];
  const d1s = at(1, 'direct', small);
  const d1l = at(1, 'direct', large);
  const c1l = at(1, 'conventional', large);
  const x1 = f.crossover.find((c) => c.hostLanes === 1)!;
  const x8 = f.crossover.find((c) => c.hostLanes === 8)!;
  const cut = large < FILES_MAX_BYTES ? ` Files stop at ${sizeText(large)}${large === FILES_DEFAULT_MAX_BYTES ? ' by default' : ''}: file copies run at the full fidelity (the fast fidelity's jump does not cover run lists), about 7 s of one core per 128 MiB; \`--max-file-size 1GiB\` adds the larger ones.` : '';
  const para = [
    `The paper's other next step (section 4): handling the file-system metadata of data moved directly. Each point copies a tree of ${FILES_PER_TREE} equal files (fewer where they would pass 64 MiB) from \`sda:/tree\` to \`sdb:/tree\` with \`-r\`, on ext4 images dconnect generates (${sizeText(f.fsBytes)} each); the file system's work (mount, lookups, reserving the destination as unwritten extents, committing) goes through the host's NVMe driver and a bounce buffer in host memory, one command at a time, and only the data moves directly. Bandwidth is file bytes over the whole copy, metadata included; every copy is verified file by file.${cut}`,
    '',
    `**Where direct pays off.** ${x1.fileBytes === null ? `At x1 the direct copy is not ${FILES_AHEAD * 100}% ahead even at ${sizeText(large)} here.` : `At x1 the crossover is at ${sizeText(x1.fileBytes)}: from there the direct copy has at least half of the advantage it reaches with ${sizeText(large)} files (${x1.ratio!.toFixed(2)}x there; ${(d1l.mbPerSec / c1l.mbPerSec).toFixed(2)}x at ${sizeText(large)}, ${f1(d1l.mbPerSec)} against ${f1(c1l.mbPerSec)} MB/s, the paper's Fig. 5 gap), while at ${sizeText(small)} it is only ${(d1s.mbPerSec / at(1, 'conventional', small).mbPerSec).toFixed(2)}x.`} Small files are bound by the metadata's round trips: ${sizeText(small)} files copy at ${f1(d1s.mbPerSec)} MB/s directly, ${d1s.metadataCommands} metadata commands, one at a time, taking ${pct(1 - d1s.dataMoveSeconds / d1s.simulatedSeconds)} of the copy's time, and the metadata is ${pct(d1s.metadataShare)} of the host link's payload: the data the direct path keeps off the host link is a small part of what the copy waits for, so both paths wait on the same round trips. As files grow, the data move's share of the time grows (it passes half ${f.dataBoundFrom === null ? 'at no size here' : `from ${sizeText(f.dataBoundFrom)} files`}), the metadata's share of host-link bytes falls (direct, x1: ${f.sizes.map((s) => `${sizeText(s)} ${pct(at(1, 'direct', s).metadataShare)}`).join(', ')}), and the conventional copy meets the host link's limit while the direct one reaches the drive's. ${x8.fileBytes === null ? `At x8 there is no crossover: the two are within ${FILES_AHEAD * 100}% at every size, since the x8 link is never the limit of a 250 MB/s drive.` : `At x8 the crossover is at ${sizeText(x8.fileBytes)} (${x8.ratio!.toFixed(2)}x).`}`,
  ];
  const md = ['## Files (beyond the paper): copying trees of files, direct against conventional', '', '![Files](files.png)', '', ...para, '', ...crossoverLines(f).map((l) => `- ${l}`), '', `${granularityLine(r.granularity)}; ${fidelityLine(f.fidelity)}.`, ''];
  md.push('| file size | files | host link | mode | MB/s | host link (KiB) | metadata (KiB) | metadata share | data move / copy time | limiting resource | why |', '|---|---|---|---|---|---|---|---|---|---|---|');
  for (const p of f.points) md.push(`| ${sizeText(p.fileBytes)} | ${p.files} | x${p.hostLanes} | ${p.mode} | ${f1(p.mbPerSec)} | ${kib(p.hostLinkBytes)} | ${kib(p.metadataBytes)} | ${pct(p.metadataShare)} | ${pct(p.dataMoveSeconds / p.simulatedSeconds)} | ${filesLimitName(p)} | ${p.limit.explanation} |`);
  md.push('');
  return md;
}

/**
 * The `--set`s this run applied to every move's topology, and those a figure supersedes because it
 * varies that parameter itself (Fig. 5 the host link's lanes, Fig. 6 the commands in flight).
 */
export function overridesText(r: ReproResult): string[] {
  if (r.overrides.length === 0) return [];
  const out = [`Topology overrides applied to every move: ${r.overrides.map((o) => `\`--set ${o.set}\``).join(', ')}.`];
  const superseded = (path: string, figure: string, what: string) => {
    const os = overridesOn(r.overrides, path);
    if (os.length > 0) out.push(`${figure} sets ${what} itself, over ${os.map((o) => `\`--set ${o.set}\``).join(', ')}.`);
  };
  if (r.fig5) superseded('host.link.lanes', 'Fig. 5', 'the host link\'s lanes (x8 and x1)');
  if (r.fig6) superseded('copy.depth', 'Fig. 6', 'the commands in flight (1 to 8)');
  if (r.fig8) superseded('host.link.lanes', 'Fig. 8', 'the host link\'s lanes (x8 and x1)');
  if (r.files) superseded('host.link.lanes', 'Files', 'the host link\'s lanes (x8 and x1)');
  return out;
}

/** How the numbers were obtained: the reader can tell an exact bar from an estimated one. */
function methodSection(r: ReproResult): string[] {
  const f = r.fidelity;
  const how =
    f.mode === 'full'
      ? 'Every TLP of every move was simulated (`--fidelity full`, the reference).'
      : 'Moves ran with `--fidelity fast`: the same answers from far fewer events, exact where the state of the copy repeats, otherwise estimated with a stated 99.7% interval; `--fidelity full` simulates every TLP and is the reference.';
  return ['## Method', '', `${fidelityLine(f)}; ${chunksText(f)}. ${how} A bar averaged over seeds is within the largest error of its runs; the JSON files give each move's method.`, ''];
}
