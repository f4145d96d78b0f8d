#!/usr/bin/env node
// The raftlog command line.
//
// Which code it runs is decided by what sits beside this file:
// - src/cli/main.ts is there (a development checkout): the TypeScript sources,
//   compiled on the fly by tsx, so an edit needs no build step and a dist/ left
//   behind by an earlier `npm run build` or `npm pack` is never run stale;
// - otherwise (an installed package ships dist/, not src/): the compiled
//   JavaScript in dist/, with no development dependency.
// A checkout without tsx (installed with --omit=dev) falls back to dist/ too.
import { existsSync } from 'node:fs';

const sources = new URL('../src/cli/main.ts', import.meta.url);
const compiled = new URL('../dist/cli/main.js', import.meta.url);

async function tsxRegistered() {
  try {
    const { register } = await import('tsx/esm/api');
    register();
    return true;
  } catch (error) {
    if (error?.code === 'ERR_MODULE_NOT_FOUND') return false;
    throw error;
  }
}

async function entry() {
  if (existsSync(sources) && (await tsxRegistered())) return sources;
  if (existsSync(compiled)) return compiled;
  const where = new URL('..', import.meta.url).pathname;
  console.error(
    existsSync(sources)
      ? `raftlog: ${where} is a development checkout without tsx: run \`npm ci\`, or \`npm run build\` to run from dist/`
      : `raftlog: ${compiled.pathname} is missing: this package was packed without its build (npm run build)`,
  );
  process.exit(1);
}

// `raftlog log | head` closes the pipe early: that ends the output, not the command with a stack trace.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

const { main } = await import((await entry()).href);
process.exitCode = await main(process.argv.slice(2));
