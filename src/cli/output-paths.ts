import { accessSync, constants, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DconnectError } from '../core/errors.js';

/**
 * The one check of where a command will write, made before any work: a run of minutes must not end in
 * ENOENT. Nothing is created here (a refused command writes nothing); `writeArtifacts` makes a
 * missing --out directory later, and a --pcap file is opened at its first frame.
 */

const statOf = (path: string): Stats | null => {
  try {
    return statSync(path);
  } catch {
    return null;
  }
};

const writable = (path: string): boolean => {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
};

const refuse = (option: string, path: string, why: string): never => {
  throw new DconnectError('BAD_OPTION', `${option} '${path}': ${why}`, `give ${option} a path this user can write to${option === '--out' ? ' (a directory; missing ones are created)' : ' (its directory must exist)'}`);
};

/** `--out DIR`: a writable directory, or a path whose nearest existing ancestor is a writable directory. */
export function checkOutputDir(dir: string, option = '--out'): void {
  let at = resolve(dir);
  let st = statOf(at);
  if (st && !st.isDirectory()) refuse(option, dir, `${at} exists and is not a directory`);
  while (!st) {
    const up = dirname(at);
    st = statOf(up);
    if (st && !st.isDirectory()) refuse(option, dir, `${up} is not a directory, so ${dir} cannot be made`);
    at = up;
  }
  if (!writable(at)) refuse(option, dir, `${at} is not writable`);
}

/** `--pcap FILE` (and any single output file): its directory exists and is writable; the file, if there, is a writable file. */
export function checkOutputFile(file: string, option: string): void {
  const path = resolve(file);
  const st = statOf(path);
  if (st?.isDirectory()) refuse(option, file, 'is a directory');
  if (st && !writable(path)) refuse(option, file, 'the file exists and is not writable');
  const parent = dirname(path);
  const ps = statOf(parent);
  if (!ps) refuse(option, file, `the directory ${parent} does not exist`);
  if (!ps!.isDirectory()) refuse(option, file, `${parent} is not a directory`);
  if (!st && !writable(parent)) refuse(option, file, `the directory ${parent} is not writable`);
}
