/**
 * Issue 21 on a live fabric: `up --nbd` on a taken port refuses before starting anything; the hints
 * `up` and a cancelled job print carry --state; Ctrl-C during a copy's verification cancels it (with
 * progress lines until then); `copy --resume J --no-verify` does not verify. Every command runs with a
 * time limit; the nodes are stopped and the state directory removed whatever happens.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, COMMAND_MS, dconnect } from '../helpers/cli.js';


describe('live: what a new user trips over', { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-live-ux-'));
  const state = join(dir, 's');
  const fabric = ['--state', state, '--topology', 'paper-2012-live', '--set', 'ssd.capacityBytes=128MiB', '--pace', 'none'];
  let blocker: Server | null = null;
  after(() => {
    blocker?.close();
    dconnect(['down', '--state', state]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('up --nbd on a taken port is refused before any node starts, and leaves nothing running', async () => {
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const r = dconnect(['up', ...fabric, '--nbd', `127.0.0.1:${port}`]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`error \\[BAD_OPTION\\]: --nbd 127\\.0\\.0\\.1:${port}: the port is taken`));
    assert.doesNotMatch(r.stderr, /EADDRINUSE|\n\s+at |started box/);
    const s = dconnect(['status', '--state', state]);
    assert.equal(s.status, 2, 'no fabric was set up');
    assert.match(s.stderr, /NOT_RUNNING/);
    blocker.close();
    blocker = null;
  });

  it('up prints a stop command with the --state given', () => {
    const r = dconnect(['up', ...fabric]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stderr.includes(`stop with: dconnect down --state ${state}`), r.stderr);
    assert.ok(r.stderr.includes(`--live --state ${state}`), r.stderr);
    assert.doesNotMatch(r.stderr, /for live speed/, 'a paper-2012-live fabric is not pointed elsewhere');
  });

  it('up on the paper\'s testbed, unpaced, points to its live tuning with a command that starts it beside', () => {
    const paper = join(dir, 'paper');
    try {
      const r = dconnect(['up', '--state', paper, '--set', 'ssd.capacityBytes=16MiB']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /fabric up in .*: paper-2012, pace none/);
      assert.ok(r.stderr.includes('for live speed') && r.stderr.includes('dconnect up --topology paper-2012-live --state .dconnect-live'), r.stderr);
    } finally {
      dconnect(['down', '--state', paper]);
    }
  });

  it('Ctrl-C during verification cancels it; the hint resumes with --state; --resume --no-verify does not verify', async () => {
    const child = spawn(process.execPath, [CLI, 'copy', 'sda', 'sdb', '--length', '32MiB', '--live', '--state', state], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let signalled = false;
    child.stderr.on('data', (d) => {
      stderr += d;
      if (!signalled && /^verify j\d+: /m.test(stderr)) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => child.kill('SIGKILL'), COMMAND_MS);
      child.on('close', (c) => (clearTimeout(t), resolve(c)));
    });
    assert.ok(signalled, `verification showed progress:\n${stderr}`);
    assert.equal(code, 130, stderr);
    const m = /job (j\d+): cancelled while verifying; .* (dconnect copy --resume j\d+ --live --state \S+) verifies it/.exec(stderr);
    assert.ok(m, stderr);
    assert.ok(m[2].endsWith(`--state ${state}`));
    const resumed = dconnect([...m[2].split(' ').slice(1), '--no-verify', '--json']);
    assert.equal(resumed.status, 0, resumed.stderr);
    const job = JSON.parse(resumed.stdout);
    assert.equal(job.state, 'done');
    assert.equal(job.result.verified, null, 'not verified, as asked');
    assert.equal(job.result.movedBytes, 0, 'the copy was whole already');
  });
});
