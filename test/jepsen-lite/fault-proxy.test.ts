import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait-for.js';
import { FaultNetwork } from './fault-proxy.js';

/** A node stand-in that answers every byte with the same byte, upper-cased. */
async function shoutServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.on('data', (chunk: Buffer) => socket.write(chunk.toString().toUpperCase())));
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  return { server, port };
}

function connect(address: string): Promise<{ socket: Socket; received: () => string }> {
  const [host, port] = address.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = createConnection({ host, port: Number(port) }, () => resolve({ socket, received: () => text }));
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.once('error', reject);
  });
}

describe('fault proxy between two nodes', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function network() {
    const target = await shoutServer();
    cleanups.push(() => new Promise<void>((resolve) => target.server.close(() => resolve())));
    const net = await FaultNetwork.start(['a', 'b'], () => target.port, 1);
    cleanups.push(() => net.close());
    return net;
  }

  it('passes bytes both ways unchanged when healthy', async () => {
    const net = await network();
    const client = await connect(net.address('a', 'b'));
    cleanups.push(() => void client.socket.destroy());
    client.socket.write('hello');
    await waitFor('the echo', () => client.received() === 'HELLO');
  });

  it('holds every byte while cut, then delivers them in order on heal', async () => {
    const net = await network();
    const client = await connect(net.address('a', 'b'));
    cleanups.push(() => void client.socket.destroy());
    client.socket.write('one ');
    await waitFor('the first echo', () => client.received() === 'ONE ');

    net.link('a', 'b').setCut(true);
    client.socket.write('two ');
    client.socket.write('three');
    // Nothing may pass while cut; wait for a later event to prove time went by.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(client.received()).toBe('ONE ');
    expect(net.cutLinks()).toEqual(['a->b']);

    net.healCuts();
    await waitFor('the held bytes', () => client.received() === 'ONE TWO THREE');
  });

  it('cutting one direction leaves the other working (a one-way partition)', async () => {
    const net = await network();
    net.link('a', 'b').setCut(true);
    const fromB = await connect(net.address('b', 'a'));
    cleanups.push(() => void fromB.socket.destroy());
    fromB.socket.write('b speaks');
    await waitFor('b reaching a', () => fromB.received() === 'B SPEAKS');
  });

  it('a slow link delays each chunk by at least its latency and keeps the order', async () => {
    const net = await network();
    net.link('a', 'b').setSlow({ delayMs: 100, jitterMs: 50, lossRate: 0.5, retransmitMs: 100 });
    const client = await connect(net.address('a', 'b'));
    cleanups.push(() => void client.socket.destroy());
    const sent = Date.now();
    for (const word of ['a', 'b', 'c', 'd', 'e', 'f']) client.socket.write(word);
    await waitFor('every delayed byte', () => client.received().length === 6, 10_000);
    expect(client.received()).toBe('ABCDEF');
    // The request and the reply each crossed the slow link once at least in one direction: the delay is a lower bound.
    expect(Date.now() - sent).toBeGreaterThanOrEqual(100);
  });
});
