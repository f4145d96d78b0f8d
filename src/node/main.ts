/** Entry point of a node process: `tsx src/node/main.ts --id n1 ...` (the CLI's `raftlog node` runs the same). */
import { runNode } from './node-command.js';

const code = await runNode(process.argv.slice(2));
process.exitCode = code;
// runNode alone decides the exit code (1 after a fail-stop, even one during a graceful stop): nothing else sets it.
// A node that failed to start, fail-stopped or did not stop cleanly has nothing left to do. Should a library have
// left a handle open, the process would otherwise linger, holding its port and data dir: leave anyway, once the
// log lines are written.
if (code !== 0) setTimeout(() => process.exit(code), 2_000).unref();
