import { createServer } from 'node:net';
import { DconnectError } from '../core/errors.js';

/**
 * Refuses a TCP address a node would fail to listen on (taken, or not an address of this machine),
 * before `up` starts anything: the node would otherwise die at start with a raw EADDRINUSE in its log.
 * Binds and closes at once; port 0 (any free port) always passes. `option` names the flag for the message.
 */
export function assertTcpFree(addr: { host: string; port: number }, option: string): Promise<void> {
  if (addr.port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (e: NodeJS.ErrnoException) => {
      const where = `${addr.host}:${addr.port}`;
      const why = e.code === 'EADDRINUSE' ? 'the port is taken (another program listens there)' : e.code === 'EADDRNOTAVAIL' ? 'not an address of this machine' : e.code === 'EACCES' ? 'this user may not listen on that port' : e.message;
      reject(new DconnectError('BAD_OPTION', `${option} ${where}: ${why}`, `give another port, e.g. ${option} ${addr.host}:0 for any free one, or stop what listens on ${where}`));
    });
    server.listen({ host: addr.host, port: addr.port, exclusive: true }, () => server.close(() => resolve()));
  });
}
