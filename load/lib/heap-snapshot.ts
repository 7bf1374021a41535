/**
 * What the heap holds, by constructor: a V8 heap snapshot of this process, aggregated per object
 * type (self size), for "where do the bytes of an idle key go" in the scale scenario.
 */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';

interface Snapshot {
  readonly snapshot: { readonly meta: { readonly node_fields: string[]; readonly node_types: [string[], ...unknown[]] } };
  readonly nodes: number[];
  readonly strings: string[];
}

export interface HeapGroup {
  readonly name: string;
  readonly count: number;
  readonly bytes: number;
}

/** Self size per constructor (objects, closures) or per kind ("(string)", "(number)", "(array)"). */
export function heapByConstructor(): HeapGroup[] {
  const file = writeHeapSnapshot(join(tmpdir(), `sluice-load-${process.pid}.heapsnapshot`));
  try {
    const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
    const fields = snap.snapshot.meta.node_fields;
    const types = snap.snapshot.meta.node_types[0];
    const [iType, iName, iSize, width] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size'), fields.length];
    const groups = new Map<string, { count: number; bytes: number }>();
    for (let i = 0; i < snap.nodes.length; i += width) {
      const type = types[snap.nodes[i + iType] as number] as string;
      const name = type === 'object' || type === 'closure' ? (snap.strings[snap.nodes[i + iName] as number] as string) : `(${type})`;
      const group = groups.get(name) ?? { count: 0, bytes: 0 };
      group.count++;
      group.bytes += snap.nodes[i + iSize] as number;
      groups.set(name, group);
    }
    return [...groups.entries()].map(([name, g]) => ({ name, ...g })).sort((a, b) => b.bytes - a.bytes);
  } finally {
    rmSync(file, { force: true });
  }
}

/** The difference between two aggregations, largest growth first. */
export function heapGrowth(before: readonly HeapGroup[], after: readonly HeapGroup[]): HeapGroup[] {
  const base = new Map(before.map((g) => [g.name, g]));
  return after
    .map((g) => ({ name: g.name, count: g.count - (base.get(g.name)?.count ?? 0), bytes: g.bytes - (base.get(g.name)?.bytes ?? 0) }))
    .filter((g) => g.bytes > 0)
    .sort((a, b) => b.bytes - a.bytes);
}
