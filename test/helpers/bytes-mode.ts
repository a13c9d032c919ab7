/**
 * Preloaded (`node --import`) by `npm test`'s second pass over test/integration/: every fabric built
 * without a channel of its own carries its frames as bytes (expether/bytes-channel.ts), so the whole
 * integration suite, with its pinned and cross-checked results, runs through the PDU codec too.
 */
import { connectBytes } from '../../src/expether/bytes-channel.js';
import { setDefaultConnect } from '../../src/topology/builder.js';

process.env.DCONNECT_TEST_CHANNEL = 'bytes';
setDefaultConnect(connectBytes);
