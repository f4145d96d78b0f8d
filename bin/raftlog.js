#!/usr/bin/env node
// The raftlog command line. It runs from the TypeScript sources, compiled on
// the fly by tsx, so there is no build step: `npx raftlog --help`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
