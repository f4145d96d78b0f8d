/**
 * Every subcommand of the CLI, in the order `raftlog --help` lists them.
 * Adding a subcommand is one line here (plus its module).
 */
import type { CliCommand } from '../context.js';
import { appendCommand } from './append.js';
import { casCommand } from './cas.js';
import { consumersCommand } from './consumers.js';
import { dashboardCommand } from './dashboard.js';
import { delCommand } from './del.js';
import { getCommand } from './get.js';
import { logCommand } from './log.js';
import { memberCommand } from './member.js';
import { nodeCommand } from './node.js';
import { putCommand } from './put.js';
import { statusCommand } from './status.js';
import { tailCommand } from './tail.js';
import { transferLeaderCommand } from './transfer-leader.js';

export const commands: readonly CliCommand[] = [
  putCommand,
  getCommand,
  delCommand,
  casCommand,
  appendCommand,
  logCommand,
  tailCommand,
  consumersCommand,
  statusCommand,
  dashboardCommand,
  memberCommand,
  transferLeaderCommand,
  nodeCommand,
];
