/**
 * The README and `--help` agree (issue 21): every fault form is in `copy --help`, `up --help` and the
 * README (all written from one table, FAULT_FORMS); every subcommand is in the README; the
 * completion script, generated from the command tree, completes them; the LICENSE package.json names exists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FAULT_FORMS } from '../../src/runtime/faults.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, COLUMNS: '400' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const subcommands = (): string[] =>
  [...run('--help').stdout.matchAll(/^ {2}([a-z]+)\b/gm)].map((m) => m[1]).filter((c) => c !== 'help');

test('every fault form is in copy --help, up --help and the README', () => {
  const copy = run('copy', '--help').stdout.replace(/\s+/g, ' ');
  const up = run('up', '--help').stdout.replace(/\s+/g, ' ');
  for (const f of FAULT_FORMS) {
    assert.ok(copy.includes(f.form), `copy --help lists ${f.form}`);
    assert.ok(up.includes(f.form), `up --help lists ${f.form}`);
    assert.ok(README.includes(`${f.name}=`), `the README shows ${f.name}=`);
  }
});

test('every subcommand is in the README; repro --out names every figure; copy says a drive may be named by serial', () => {
  const cmds = subcommands();
  assert.ok(cmds.includes('copy') && cmds.includes('completion'), cmds.join(' '));
  for (const c of cmds) assert.ok(README.includes(`dconnect ${c}`), `the README shows dconnect ${c}`);
  assert.match(run('repro', '--help').stdout.replace(/\s+/g, ' '), /fig5 to fig8/);
  assert.match(run('copy', '--help').stdout.replace(/\s+/g, ' '), /serial/);
});

test('completion bash completes every subcommand and a command\'s options and choices', { skip: spawnSync('bash', ['--version']).status !== 0 && 'no bash' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-completion-'));
  try {
    const script = join(dir, 'c.sh');
    const r = run('completion', 'bash');
    assert.equal(r.code, 0, r.stderr);
    writeFileSync(script, r.stdout);
    const complete = (...words: string[]) => {
      const b = spawnSync('bash', ['-c', `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _dconnect; echo "\${COMPREPLY[@]}"`], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(b.status, 0, b.stderr);
      return b.stdout.trim().split(/\s+/);
    };
    assert.deepEqual(complete('dconnect', '').filter((w) => !w.startsWith('-')).sort(), subcommands().sort());
    assert.deepEqual(complete('dconnect', 'copy', '--fid'), ['--fidelity']);
    assert.deepEqual(complete('dconnect', 'copy', '--fidelity', ''), ['fast', 'full']);
    assert.deepEqual(complete('dconnect', 'up', '--pace', ''), ['model', 'none']);
    assert.equal(run('completion', 'fish').code, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a mistyped subcommand or option is answered with the nearest one', () => {
  const cmd = run('cpy', 'sda', 'sdb');
  assert.equal(cmd.code, 2);
  assert.match(cmd.stderr, /unknown command 'cpy'\n\(Did you mean copy\?\)/);
  const opt = run('copy', 'sda', 'sdb', '--lenght', '1MiB');
  assert.equal(opt.code, 2);
  assert.match(opt.stderr, /Did you mean --length\?/);
});

test('a mistyped --set path is answered with the nearest one', () => {
  const r = run('copy', 'sda', 'sdb', '--length', '1MiB', '--set', 'host.lane=1');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /'host\.lane' is not a parameter .*; did you mean host\.lanes\?/);
});

test('the LICENSE package.json names is there', () => {
  assert.equal(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).license, 'MIT');
  assert.ok(existsSync(join(ROOT, 'LICENSE')));
  assert.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /^MIT License/);
});
