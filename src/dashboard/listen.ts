/** Where the dashboard serves its page, and how often it polls: what its command line needs without loading the server. */

import { type HostPort, isLoopback, parseHostPort } from '../api/host-port.js';

export const DEFAULT_LISTEN = '127.0.0.1:8080';
export const DEFAULT_POLL_INTERVAL_MS = 1000;

export type ListenAddress = HostPort;

/** Parses --listen: "host:port" (IPv6 as "[::1]:port"); throws an Error saying what is wrong. */
export function parseListen(text: string): ListenAddress {
  const parsed = parseHostPort(text);
  if (parsed === null) throw new Error(`listen address "${text}" is not host:port (port 0..65535; 0 picks a free one)`);
  return parsed;
}

/** The page has no login: off the loopback interface, anyone who reaches the port sees the cluster. */
export { isLoopback };
