/**
 * ext4 images for tests, made and judged by the real tools (e2fsprogs): `mkfs.ext4 -d TREE` builds an
 * image from a directory, `debugfs -w -f` rearranges it (fragmenting a file), `e2fsck -fn` and
 * `debugfs dump`/`stat` judge what dconnect wrote. Tests skip with a clear message when the tools are absent.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
export const HAVE_E2FSPROGS = has('mkfs.ext4') && has('e2fsck') && has('debugfs');
export const SKIP_E2FS: string | false = HAVE_E2FSPROGS ? false : 'e2fsprogs (mkfs.ext4, e2fsck, debugfs) is not installed; .ci/run installs it';

export function tempDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `dconnect-${tag}-`));
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Seeded bytes (xorshift), so sources differ by file and tests are reproducible. */
export function seededBytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** Writes files under `root`: path -> bytes, or a sparse file (size with data at given offsets). */
export function writeTree(root: string, files: Record<string, Uint8Array | { size: number; data: [number, Uint8Array][] }>): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    const fd = openSync(p, 'w');
    try {
      if (content instanceof Uint8Array) writeSync(fd, content);
      else {
        ftruncateSync(fd, content.size);
        for (const [off, data] of content.data) writeSync(fd, data, 0, data.length, off);
      }
    } finally {
      closeSync(fd);
    }
  }
}

function run(cmd: string, args: string[]): { status: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** mkfs.ext4 -d TREE (Debian's defaults unless `opts` says otherwise) into a new image file of `size` (e.g. '64M'). */
export function mkfs(img: string, tree: string | null, size: string, opts: string[] = []): void {
  const r = run('mkfs.ext4', ['-q', '-F', ...opts, ...(tree ? ['-d', tree] : []), img, size]);
  if (r.status !== 0) throw new Error(`mkfs.ext4 failed: ${r.out}`);
}

/** Runs debugfs requests on the image (read-write with `write`). */
export function debugfs(img: string, requests: string[], write = false): string {
  const dir = tempDir('dbgfs');
  try {
    const f = join(dir, 'cmds');
    writeFileSync(f, requests.join('\n') + '\n');
    const r = run('debugfs', [...(write ? ['-w'] : []), '-f', f, img]);
    return r.out;
  } finally {
    cleanup(dir);
  }
}

export function e2fsck(img: string): { status: number; out: string } {
  return run('e2fsck', ['-fn', img]);
}

/** A file's bytes as debugfs reads them from the image. */
export function dump(img: string, path: string): Uint8Array {
  const dir = tempDir('dump');
  try {
    const out = join(dir, 'f');
    const r = run('debugfs', ['-R', `dump ${path} ${out}`, img]);
    try {
      return new Uint8Array(readFileSync(out));
    } catch {
      throw new Error(`debugfs dump ${path} failed: ${r.out}`);
    }
  } finally {
    cleanup(dir);
  }
}

export function stat(img: string, path: string): string {
  return run('debugfs', ['-R', `stat ${path}`, img]).out;
}

/** The fields of `debugfs stat` a copy must keep (`cp -p`): size, mode, owner, access and modification times. */
export function keptFields(statText: string): Record<string, string> {
  const grab = (re: RegExp) => statText.match(re)?.[1] ?? '';
  return {
    size: grab(/Size: (\d+)/),
    mode: grab(/Mode:\s+(\d+)/),
    user: grab(/User:\s+(\d+)/),
    group: grab(/Group:\s+(\d+)/),
    atime: grab(/atime: (0x[0-9a-f]+:[0-9a-f]+)/),
    mtime: grab(/mtime: (0x[0-9a-f]+:[0-9a-f]+)/),
  };
}

/**
 * Fragments a file: fills the image's free space with `pieces` small files, removes every other one,
 * then writes `hostFile` as `path` (debugfs takes the first free blocks: the holes) and removes the rest.
 */
export function fragmentedWrite(img: string, hostFile: string, path: string, pieces: number, pieceBytes: number): void {
  const dir = tempDir('frag');
  try {
    const piece = join(dir, 'piece');
    writeFileSync(piece, new Uint8Array(pieceBytes).fill(0xaa));
    const mk = ['mkdir /fill', ...Array.from({ length: pieces }, (_, i) => `write ${piece} /fill/p${i}`)];
    debugfs(img, mk, true);
    debugfs(img, Array.from({ length: pieces }, (_, i) => i).filter((i) => i % 2 === 0).map((i) => `rm /fill/p${i}`), true);
    debugfs(img, [`write ${hostFile} ${path}`], true);
    debugfs(img, [...Array.from({ length: pieces }, (_, i) => i).filter((i) => i % 2 === 1).map((i) => `rm /fill/p${i}`), 'rmdir /fill'], true);
  } finally {
    cleanup(dir);
  }
}

/** `debugfs ex PATH` lines that show extents (leaf entries), and whether any is unwritten (Uninit). */
export function extentsOf(img: string, path: string): { leaves: number; uninit: boolean; depth: number; text: string } {
  const text = run('debugfs', ['-R', `ex ${path}`, img]).out;
  const levels = text.split('\n').flatMap((l) => {
    const m = /^\s*(\d+)\/\s*(\d+)/.exec(l);
    return m ? [{ level: Number(m[1]), depth: Number(m[2]) }] : [];
  });
  const depth = levels.reduce((m, l) => Math.max(m, l.depth), 0);
  const leaves = levels.filter((l) => l.level === depth).length;
  return { leaves, uninit: /Uninit/.test(text), depth, text };
}
