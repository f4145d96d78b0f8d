/**
 * Endpoint specs: "host:port", "[ipv6]:port", optionally prefixed with the
 * node id that listens there ("n1=10.0.0.5:7001"), which lets the client go
 * straight to the leader a reply names without asking the node who it is.
 */

export interface EndpointSpec {
  /** host:port as handed to gRPC. */
  readonly address: string;
  /** The node id given with the endpoint, if any. */
  readonly node: string | null;
}

/** Parses one endpoint spec; throws an Error that says what is wrong with it. */
export function parseEndpoint(spec: string): EndpointSpec {
  const text = spec.trim();
  let node: string | null = null;
  let address = text;
  const equals = text.indexOf('=');
  if (equals >= 0) {
    node = text.slice(0, equals).trim();
    address = text.slice(equals + 1).trim();
    if (node === '') throw new Error(`endpoint "${spec}": the node id before "=" is empty`);
  }
  const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]/=]+):(\d{1,5})$/.exec(address);
  if (match === null) throw new Error(`endpoint "${spec}" is not host:port`);
  const port = Number(match[2]);
  if (port < 1 || port > 65535) throw new Error(`endpoint "${spec}": port ${match[2]} is not in 1..65535`);
  return { address: `${match[1]}:${port}`, node };
}

/** Parses a list of endpoint specs, dropping duplicates; throws when the list is empty or a spec is malformed. */
export function parseEndpoints(specs: readonly string[]): EndpointSpec[] {
  const parsed = new Map<string, EndpointSpec>();
  for (const spec of specs) {
    if (spec.trim() === '') continue;
    const endpoint = parseEndpoint(spec);
    const same = parsed.get(endpoint.address);
    if (same !== undefined && same.node !== null && endpoint.node !== null && same.node !== endpoint.node) {
      throw new Error(`endpoint ${endpoint.address} is given twice with different node ids`);
    }
    if (same === undefined || same.node === null) parsed.set(endpoint.address, endpoint);
  }
  if (parsed.size === 0) throw new Error('no endpoints given (expected host:port, ...)');
  return [...parsed.values()];
}

/** Splits a comma-separated endpoint list, e.g. from --endpoints or RAFTLOG_ENDPOINTS. */
export function splitEndpointList(list: string): string[] {
  return list
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}
