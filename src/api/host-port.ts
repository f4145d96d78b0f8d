/** HOST:PORT as every listen flag and endpoint takes it: a name or IPv4 address, or an IPv6 address in brackets. */

export interface HostPort {
  /** Without brackets for IPv6. */
  readonly host: string;
  readonly port: number;
}

/** "127.0.0.1:7001", "localhost:0", "[::1]:9090"; null for anything else (a port above 65535 included). */
export function parseHostPort(address: string): HostPort | null {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/]+)):(\d{1,5})$/.exec(address.trim());
  if (match === null) return null;
  const port = Number(match[3]);
  if (port > 65_535) return null;
  return { host: match[1] ?? match[2] ?? '', port };
}

/** Whether a host is this machine's loopback interface: reachable only from this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
