/**
 * Node ids and the slots they run in. A removed id never becomes a member
 * again (the leader refuses it, as etcd does), so the membership nemesis
 * adds every new member under an id never used before. The network plumbing
 * (a proxy per directed pair, a namespace and address per node) is made once
 * per slot n1..nM: slot n3 hosts n3, then n3.2, n3.3, ..., one at a time, and
 * every fault that names a node reaches it through its slot.
 */

/** The slot a node id runs in: the part before the first '.' ("n3.2" → "n3"; "n3" → "n3"). */
export function slotOf(id: string): string {
  const dot = id.indexOf('.');
  return dot === -1 ? id : id.slice(0, dot);
}

/** Which of its slot's ids `id` is: 1 for the slot's own name, g for "slot.g". */
export function generationOf(id: string): number {
  const dot = id.indexOf('.');
  return dot === -1 ? 1 : Number(id.slice(dot + 1));
}

/** The slot's id of generation `generation` (1: the slot's own name). */
export function idInSlot(slot: string, generation: number): string {
  return generation === 1 ? slot : `${slot}.${generation}`;
}
