/** Entry point of a node process: `tsx src/node/main.ts --id n1 ...` (the CLI's `raftlog node` runs the same). */
import { runNode } from './node-command.js';

process.exitCode = await runNode(process.argv.slice(2));
