// dconnect as a library: the paper's two moves at host link x1, the paper's next step (a drive served
// to a client through the NIC, direct), a cancelled background run, and an error a script can match. Run from a project that has dconnect installed: node library.mjs
import { applySettings, DconnectError, loadTopology, runCopy, runMovesInBackground, runNicMove } from 'dconnect';

// A preset with a parameter changed, as `--set host.lanes=1` does on the command line.
const { topology } = applySettings(loadTopology('paper-2012'), ['host.lanes=1']);
const move = { topology, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 16 << 20, seed: 1 };
const direct = runCopy({ ...move, via: 'dc-buffer' });
const conventional = runCopy({ ...move, via: 'host' });
console.log(`direct ${direct.mbPerSec.toFixed(1)} MB/s, conventional ${conventional.mbPerSec.toFixed(1)} MB/s, both verified: ${direct.verified && conventional.verified}`);
console.log(`direct is ${((direct.mbPerSec / conventional.mbPerSec - 1) * 100).toFixed(0)}% faster (${direct.fidelity.mode} fidelity)`);

// A drive served to a client on the NIC's network, through the box's DC buffer (paper-2012-nic).
const serve = runNicMove({ topology: loadTopology('paper-2012-nic'), src: 'sda', dst: 'net:client0', lengthBytes: 4 << 20, via: 'dc-buffer', seed: 1 });
console.log(`serve through ${serve.nic}: ${serve.mbPerSec.toFixed(1)} MB/s, ${serve.frames} frames, verified: ${serve.verified}`);

// A long run on a worker thread, with progress, cancelled at its first report.
const stop = new AbortController();
try {
  await runMovesInBackground(
    { topology, pairs: [{ src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0 }], lengthBytes: 1 << 30, via: 'host', seed: 1, fidelity: 'full' },
    {
      signal: stop.signal,
      onProgress: (done, total) => {
        console.log(`progress: ${done} of ${total} bytes`);
        stop.abort();
      },
    },
  );
} catch (e) {
  if (!(e instanceof DconnectError && e.code === 'ABORTED')) throw e;
  console.log('cancelled: ABORTED');
}

// Bad input is a DconnectError with a code and a hint.
try {
  runCopy({ ...move, dst: 'sdz', via: 'dc-buffer' });
} catch (e) {
  if (!(e instanceof DconnectError)) throw e;
  console.log(`error ${e.code}: ${e.message}`);
}
